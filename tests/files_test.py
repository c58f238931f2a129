"""Result.save: all files or none, nothing clobbered unless asked, clear errors on I/O failures.

Disk-full and interrupted saves are simulated by making our own I/O calls (`os.fsync`, `os.replace`
as tfq_mixed.files calls them) fail part-way; the conversion itself is real.
"""

import errno
import os
import stat

import keras
import numpy as np
import pytest

import tfq_mixed
from tfq_mixed import files
from tfq_mixed import result as result_lib

FILES = sorted([result_lib.MODEL_FILE, result_lib.CONFIG_FILE, result_lib.REPORT_FILE])


@pytest.fixture(scope="module", autouse=True)
def _fresh_keras_names():
  """Resets Keras' auto-naming after this module, so tests that check names ('conv2d') don't
  depend on how many unnamed layers ran before them."""
  yield
  keras.backend.clear_session()


@pytest.fixture(scope="module")
def results():
  """Two different results of one tiny model (ratios 1.0 and 0.0)."""
  keras.utils.set_random_seed(0)
  inputs = keras.Input((6, 6, 2))
  x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
  outputs = keras.layers.Dense(3, name="head")(keras.layers.Flatten(name="flat")(x))
  model = keras.Model(inputs, outputs, name="tiny")
  analysis = tfq_mixed.analyze(model, np.random.default_rng(0).normal(size=(8, 6, 6, 2)).astype(
      np.float32))
  first, second = analysis.quantize(1.0), analysis.quantize(0.0)
  assert first.tflite != second.tflite
  return first, second


def _contents(folder) -> dict[str, bytes]:
  return {name: (folder / name).read_bytes() for name in sorted(os.listdir(folder))}


def _failing_on(call_number: int, real, error: BaseException):
  calls = []

  def fake(*args, **kwargs):
    calls.append(args)
    if len(calls) == call_number:
      raise error
    return real(*args, **kwargs)
  return fake


def test_save_writes_exactly_the_three_files(results, tmp_path):
  result, _ = results
  paths = result.save(tmp_path / "new" / "nested")
  assert sorted(os.listdir(tmp_path / "new" / "nested")) == FILES
  assert sorted(os.path.basename(p) for p in paths.values()) == FILES
  assert (tmp_path / "new" / "nested" / result_lib.MODEL_FILE).read_bytes() == result.tflite


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_saved_files_get_the_umask_mode_not_the_temp_files_0600(results, tmp_path, umask):
  result, _ = results
  previous = os.umask(umask)
  try:
    result.save(tmp_path / "out")
  finally:
    os.umask(previous)
  for name in FILES:
    assert stat.S_IMODE(os.stat(tmp_path / "out" / name).st_mode) == 0o666 & ~umask, name


def test_existing_files_are_not_clobbered_without_overwrite(results, tmp_path):
  first, second = results
  first.save(tmp_path)
  before = _contents(tmp_path)
  with pytest.raises(tfq_mixed.OutputError, match=r"model.tflite already exists. Pass "
                     r"overwrite=True to replace it, or choose another output folder"):
    second.save(tmp_path)
  assert _contents(tmp_path) == before


def test_one_existing_file_blocks_the_whole_save(results, tmp_path):
  result, _ = results
  (tmp_path / result_lib.CONFIG_FILE).write_text("mine")
  with pytest.raises(tfq_mixed.OutputError, match=r"config.json already exists"):
    result.save(tmp_path)
  assert _contents(tmp_path) == {result_lib.CONFIG_FILE: b"mine"}  # no model.tflite appeared


def test_overwrite_replaces_every_file(results, tmp_path):
  first, second = results
  first.save(tmp_path)
  second.save(tmp_path, overwrite=True)
  assert (tmp_path / result_lib.MODEL_FILE).read_bytes() == second.tflite
  assert (tmp_path / result_lib.CONFIG_FILE).read_text() == second.config.to_json()
  assert sorted(os.listdir(tmp_path)) == FILES


def test_folder_not_writable(results, tmp_path):
  result, _ = results
  folder = tmp_path / "locked"
  folder.mkdir()
  folder.chmod(stat.S_IRUSR | stat.S_IXUSR)  # 0o500
  try:
    if os.access(folder, os.W_OK):
      pytest.skip("running as root: a 0o500 folder is still writable")
    with pytest.raises(tfq_mixed.OutputError, match=r"Could not write the results to .*locked.*: "
                       r"Permission denied. Nothing was left half-written there. Check that the "
                       r"folder is writable"):
      result.save(folder)
    assert os.listdir(folder) == []
  finally:
    folder.chmod(stat.S_IRWXU)


def test_output_path_is_a_file_or_under_a_file(results, tmp_path):
  result, _ = results
  (tmp_path / "taken").write_text("x")
  with pytest.raises(tfq_mixed.OutputError, match=r"is a file, not a folder"):
    result.save(tmp_path / "taken")
  with pytest.raises(tfq_mixed.OutputError, match=r"Could not write the results to .*taken/sub"):
    result.save(tmp_path / "taken" / "sub")  # even root cannot create a folder under a file
  assert _contents(tmp_path) == {"taken": b"x"}


@pytest.mark.parametrize("overwrite", [False, True])
def test_disk_full_while_writing_leaves_nothing_behind(results, tmp_path, monkeypatch, overwrite):
  first, second = results
  if overwrite:
    first.save(tmp_path)
  before = _contents(tmp_path)
  # The second file's data is written, then flushing it to disk fails: disk full.
  monkeypatch.setattr(os, "fsync", _failing_on(2, os.fsync, OSError(errno.ENOSPC, os.strerror(
      errno.ENOSPC))))
  with pytest.raises(tfq_mixed.OutputError, match=r"No space left on device. Nothing was left "
                     r"half-written there.*the disk has space"):
    second.save(tmp_path, overwrite=overwrite)
  assert _contents(tmp_path) == before  # no partial model.tflite/config.json, no temp files


@pytest.mark.parametrize("overwrite", [False, True])
def test_failure_while_renaming_restores_the_folder(results, tmp_path, monkeypatch, overwrite):
  first, second = results
  if overwrite:
    first.save(tmp_path)
  before = _contents(tmp_path)
  real_replace = os.replace

  def fake_replace(src, dst):
    if os.path.basename(dst) == result_lib.CONFIG_FILE and ".tmp" in os.path.basename(src):
      raise OSError(errno.EIO, os.strerror(errno.EIO))
    return real_replace(src, dst)
  monkeypatch.setattr(os, "replace", fake_replace)
  with pytest.raises(tfq_mixed.OutputError, match=r"Input/output error"):
    second.save(tmp_path, overwrite=overwrite)
  assert _contents(tmp_path) == before  # model.tflite already renamed: undone / restored


def test_interrupted_save_leaves_the_folder_as_it_was(results, tmp_path, monkeypatch):
  first, second = results
  first.save(tmp_path)
  before = _contents(tmp_path)
  for call in range(1, 7):  # Ctrl-C at every rename of an overwriting save
    monkeypatch.setattr(os, "replace", _failing_on(call, os.replace, KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
      second.save(tmp_path, overwrite=True)
    monkeypatch.undo()
    assert _contents(tmp_path) == before, call


def test_write_atomic_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
  target = tmp_path / "model.tflite"
  target.write_bytes(b"old")
  monkeypatch.setattr(os, "fsync", _failing_on(1, os.fsync, OSError(errno.ENOSPC, "full")))
  with pytest.raises(OSError):
    files.write_atomic(str(target), b"new" * 1000)
  assert _contents(tmp_path) == {"model.tflite": b"old"}
