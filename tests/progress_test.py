"""Progress output (tfq_mixed/progress.py): one line per stage in a log, nothing when disabled."""

from tfq_mixed.progress import Progress


def test_a_log_gets_one_line_per_stage(capsys):
  with Progress(40, "calibration") as bar:
    for _ in range(40):
      bar.update()
  with Progress(3, "float + int8 passes") as bar:
    for _ in range(3):
      bar.update()
  out = capsys.readouterr().out
  assert "\r" not in out and "\b" not in out
  lines = out.splitlines()
  assert len(lines) == 2
  assert lines[0].startswith("calibration: 40/40") and lines[1].startswith("float + int8 passes: 3/3")


def test_a_stage_stopped_early_still_ends_its_line(capsys):
  try:
    with Progress(10, "timing") as bar:
      bar.update(4)
      raise KeyboardInterrupt
  except KeyboardInterrupt:
    pass
  (line,) = capsys.readouterr().out.splitlines()
  assert line.startswith("timing:") and "4/10 - " in line


def test_disabled_is_silent(capsys):
  with Progress(5, "sweep", enabled=False) as bar:
    bar.update(5)
  assert capsys.readouterr().out == ""
