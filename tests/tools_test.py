"""The command-line tools (tfq_mixed/cli/) end to end on the digits CNN: flags in, files out, checked.

Most tests run a tool's main() in-process; the console commands are also run as installed, in
subprocesses started from another folder.
"""

import csv
import importlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib

import numpy as np
import pytest
from absl import app
from absl import flags

import tfq_mixed
from tfq_mixed import _tflite_private

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = ("quantize", "analyze", "sweep", "benchmark", "export_onnx")
FLAGS = flags.FLAGS
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _load_tool(name: str):
  """Imports tfq_mixed/cli/<name>.py afresh, its flags alone registered.

  absl flags are global, and --model means a Keras model to three tools but .tflite files to
  benchmark; so the flags of previously loaded tools are unregistered first.
  """
  package = importlib.import_module("tfq_mixed.cli")
  for module in [f"tfq_mixed.cli.{t}" for t in TOOLS] + ["tfq_mixed.cli._common"]:
    for flag in FLAGS.get_flags_for_module(module):
      if flag.name in FLAGS:
        delattr(FLAGS, flag.name)
    sys.modules.pop(module, None)
    if hasattr(package, module.rsplit(".", 1)[1]):  # else `from ... import _common` reuses it
      delattr(package, module.rsplit(".", 1)[1])
  return importlib.import_module(f"tfq_mixed.cli.{name}")


def run_tool(name: str, *args: str) -> int:
  """Runs a tool's main() in-process with `args` as its command line; returns its exit status."""
  module = _load_tool(name)
  FLAGS.unparse_flags()
  try:
    FLAGS([name, *args])
    return module.main([name])
  finally:
    FLAGS.unparse_flags()
    FLAGS.mark_as_parsed()


@pytest.fixture(scope="module")
def files(digits, tmp_path_factory):
  """The digits model as .keras, 64 calibration samples as .npy, 150 images in class folders."""
  from PIL import Image
  model, x, y = digits
  root = tmp_path_factory.mktemp("tool_inputs")
  paths = {"model": str(root / "digits.keras"), "calibration": str(root / "calibration.npy"),
           "eval": str(root / "eval.npy"), "labels": str(root / "labels.npy"),
           "images": str(root / "images")}
  model.save(paths["model"])
  np.save(paths["calibration"], x[:64])
  np.save(paths["eval"], x[1297:1447])
  np.save(paths["labels"], y[1297:1447])
  for i in range(1297, 1447):
    folder = os.path.join(paths["images"], f"digit_{y[i]}")
    os.makedirs(folder, exist_ok=True)
    Image.fromarray(np.round(x[i, :, :, 0] * 255).astype(np.uint8)).save(f"{folder}/{i}.png")
  return paths


def _csv(path):
  with open(path, newline="", encoding="utf-8") as f:
    return list(csv.DictReader(f))


def _png(path):
  from PIL import Image
  with open(path, "rb") as f:
    assert f.read(8) == PNG_MAGIC
  with Image.open(path) as image:
    return image.size


def _top1(tflite_path, x, y):
  from tfq_mixed.evaluation import scores
  with open(tflite_path, "rb") as f:
    return float(np.mean(scores.predict(f.read(), x).argmax(1) == y))


def test_quantize(files, digits, tmp_path, capsys):
  model, x, y = digits
  out = str(tmp_path / "q")
  assert run_tool("quantize", f"--model={files['model']}", f"--calibration={files['calibration']}",
                  "--ratio=0.8", f"--out={out}") == 0
  assert sorted(os.listdir(out)) == ["config.json", "model.tflite", "report.csv", "report.md"]
  with open(os.path.join(out, "config.json"), encoding="utf-8") as f:
    config = json.load(f)
  assert config["options"]["ratio"] == 0.8 and config["options"]["per_channel"] is True
  assert config["options"]["ranker"] == "quantune" and config["num_samples"] == 64
  assert 0.8 <= config["int8_mac_ratio"] < 1.0 and config["float_layers"]
  rows = _csv(os.path.join(out, "report.csv"))
  assert len(rows) == len(config["layers"]) == 13
  assert [int(r["rank"]) for r in rows] == list(range(1, 14))
  assert {r["layer"] for r in rows if r["precision"] == "float"} == set(config["float_layers"])
  # The mixed model is a working classifier: within 2 points of float on 150 held-out digits.
  float_top1 = float(np.mean(model.predict(x[1297:1447], verbose=0).argmax(1) == y[1297:1447]))
  assert _top1(os.path.join(out, "model.tflite"), x[1297:1447], y[1297:1447]) >= float_top1 - 0.02
  markdown = (tmp_path / "q" / "report.md").read_text()
  assert "achieved" in markdown and "| rank | layer | type |" in markdown
  printed = capsys.readouterr().out
  assert f"achieved {config['int8_mac_ratio']:.4f}" in printed and "wrote" in printed
  # Nothing is clobbered without --overwrite.
  before = (tmp_path / "q" / "model.tflite").read_bytes()
  assert run_tool("quantize", f"--model={files['model']}", f"--calibration={files['calibration']}",
                  "--ratio=1.0", f"--out={out}") == 1
  assert "already exists" in capsys.readouterr().err
  assert (tmp_path / "q" / "model.tflite").read_bytes() == before


def test_quantize_from_image_folder_per_tensor(files, tmp_path):
  out = str(tmp_path / "q")
  assert run_tool("quantize", f"--model={files['model']}", f"--calibration={files['images']}",
                  "--per_tensor", "--ranker=weight_sqnr", "--fallback=float", "--ratio=0.9",
                  "--max_samples=40",
                  f"--out={out}") == 0
  with open(os.path.join(out, "config.json"), encoding="utf-8") as f:
    config = json.load(f)
  assert config["options"]["per_channel"] is False and config["options"]["ranker"] == "weight_sqnr"
  assert config["num_samples"] == 40 and config["int8_mac_ratio"] >= 0.9


def test_analyze_writes_the_report_only(files, tmp_path, capsys):
  from tfq_mixed import report
  out = tmp_path / "a"
  assert run_tool("analyze", f"--model={files['model']}", f"--calibration={files['images']}",
                  f"--out={out}", "--top=5") == 0
  assert sorted(os.listdir(out)) == ["report.csv", "report.md", "sensitivity.png"]
  rows = _csv(out / "report.csv")
  assert tuple(rows[0]) == report.COLUMNS and len(rows) == 13
  assert {r["precision"] for r in rows} <= {"float", "dynamic_int8", "int8", "-"}
  assert any(r["precision"] == "float" for r in rows)
  sqnr = [float(r["activation_sqnr_db"]) for r in rows if r["activation_sqnr_db"]]
  assert len(sqnr) >= 5 and all(10 < s < 80 for s in sqnr)
  weight_sqnr = [float(r["weight_sqnr_db"]) for r in rows if r["weight_sqnr_db"]]
  assert len(weight_sqnr) == 6  # conv1, dw, pw, conv2, fc1, logits
  width, height = _png(out / "sensitivity.png")
  assert width > 600 and height > 300
  markdown = (out / "report.md").read_text()
  assert "![sensitivity](sensitivity.png)" in markdown and "150 samples" in markdown
  assert markdown.count("\n| ") == 14  # header + 13 layers
  printed = capsys.readouterr().out
  assert "... 8 more layers" in printed and "stay float" in printed


def test_sweep_with_class_folders(files, tmp_path, capsys):
  out = tmp_path / "s"
  assert run_tool("sweep", f"--model={files['model']}", f"--calibration={files['calibration']}",
                  f"--eval={files['images']}", "--ratios=0,0.5,0.9,1", f"--out={out}") == 0
  assert sorted(os.listdir(out)) == ["sweep.csv", "sweep.md", "sweep.png"]
  rows = _csv(out / "sweep.csv")
  assert [float(r["ratio"]) for r in rows] == [0.0, 0.5, 0.9, 1.0]
  for r in rows:
    assert float(r["int8_mac_ratio"]) >= float(r["ratio"])
    assert 0.8 < float(r["accuracy"]) <= 1.0 and 0.9 < float(r["agreement"]) <= 1.0
  assert int(rows[-1]["float_layers"]) == 0 and int(rows[0]["float_layers"]) > 0
  assert int(rows[-1]["size_bytes"]) < int(rows[0]["size_bytes"])  # full int8 is the smallest
  _png(out / "sweep.png")
  printed = capsys.readouterr().out
  assert "scored on 150 samples (labelled)" in printed and "float top-1: 0.9" in printed


def test_sweep_labels_from_npy_and_without_labels(files, tmp_path):
  assert run_tool("sweep", f"--model={files['model']}", f"--calibration={files['calibration']}",
                  f"--eval={files['eval']}", f"--labels={files['labels']}", "--ratios=1",
                  f"--out={tmp_path / 'l'}") == 0
  assert 0.8 < float(_csv(tmp_path / "l" / "sweep.csv")[0]["accuracy"]) <= 1.0
  assert run_tool("sweep", f"--model={files['model']}", f"--calibration={files['calibration']}",
                  "--ratios=0.9,1", f"--out={tmp_path / 'u'}") == 0
  rows = _csv(tmp_path / "u" / "sweep.csv")
  assert all(r["accuracy"] == "nan" for r in rows)  # no labels: agreement only
  assert all(0.9 < float(r["agreement"]) <= 1.0 for r in rows)
  assert "agreement with float" in (tmp_path / "u" / "sweep.md").read_text()


def test_tools_feed_a_fixed_batch_model_one_sample_at_a_time(digits, tmp_path):
  """A model saved with keras.Input(..., batch_size=1) and an (N, 8, 8, 1) .npy of samples."""
  import keras  # pylint: disable=g-import-not-at-top
  source, x, y = digits
  inputs = keras.Input((8, 8, 1), batch_size=1)
  model = keras.Model(inputs, source(inputs), name="digits_batch1")
  model.save(tmp_path / "batch1.keras")
  np.save(tmp_path / "calibration.npy", x[:24])
  np.save(tmp_path / "labels.npy", y[:24])
  assert run_tool("quantize", f"--model={tmp_path / 'batch1.keras'}",
                  f"--calibration={tmp_path / 'calibration.npy'}", "--ratio=0.8",
                  f"--out={tmp_path / 'q'}") == 0
  config = json.loads((tmp_path / "q" / "config.json").read_text())
  assert config["num_samples"] == 24 and config["int8_mac_ratio"] >= 0.8
  assert run_tool("sweep", f"--model={tmp_path / 'batch1.keras'}",
                  f"--calibration={tmp_path / 'calibration.npy'}", "--ratios=0.9,1",
                  f"--labels={tmp_path / 'labels.npy'}", f"--out={tmp_path / 's'}") == 0
  rows = _csv(tmp_path / "s" / "sweep.csv")
  assert len(rows) == 2 and all(0.8 < float(r["accuracy"]) <= 1.0 for r in rows)


def test_sweep_rejects_bad_ratios(files, tmp_path):
  with pytest.raises(app.UsageError, match="--ratios"):
    run_tool("sweep", f"--model={files['model']}", f"--calibration={files['calibration']}",
             "--ratios=0.5,2", f"--out={tmp_path}")


def test_benchmark(digits_analysis, digits, tmp_path, capsys):
  from tfq_mixed.deploy import latency
  model, _, _ = digits
  (tmp_path / "float.tflite").write_bytes(latency.float_tflite(model))
  (tmp_path / "int8.tflite").write_bytes(digits_analysis.int8_model)
  paths = [str(tmp_path / "float.tflite"), str(tmp_path / "int8.tflite")]
  assert run_tool("benchmark", f"--model={paths[0]}", f"--model={paths[1]}", "--runs=7",
                  "--warmup=2", "--threads=1", f"--out={tmp_path / 'b.json'}") == 0
  records = json.loads((tmp_path / "b.json").read_text())
  assert [r["name"] for r in records] == ["float.tflite", "int8.tflite"]
  assert all(r["runs"] == 7 and r["warmup"] == 2 and r["threads"] == 1 for r in records)
  assert records[0]["latency_ratio"] == 1.0
  assert records[1]["latency_ratio"] == pytest.approx(
      records[1]["median_ms"] / records[0]["median_ms"], rel=1e-5)
  assert all(0 < r["min_ms"] <= r["median_ms"] for r in records)
  assert records[1]["size_bytes"] == len(digits_analysis.int8_model)
  assert "latency / float.tflite" in capsys.readouterr().out
  assert run_tool("benchmark", f"--model={paths[1]}", "--runs=3",
                  f"--out={tmp_path / 'b.csv'}") == 0
  rows = _csv(tmp_path / "b.csv")
  assert len(rows) == 1 and float(rows[0]["latency_ratio"]) == 1.0
  # A list of thread counts: one table each, N is the CPU count, duplicates dropped.
  assert run_tool("benchmark", f"--model={paths[0]}", f"--model={paths[1]}", "--runs=3",
                  "--warmup=1", "--threads=1,2,N,2", f"--out={tmp_path / 't.json'}") == 0
  records = json.loads((tmp_path / "t.json").read_text())
  counts = list(dict.fromkeys([1, 2, os.cpu_count()]))
  assert [(r["threads"], r["name"]) for r in records] == [
      (t, n) for t in counts for n in ("float.tflite", "int8.tflite")]
  assert all(r["latency_ratio"] == 1.0 for r in records if r["name"] == "float.tflite")
  assert capsys.readouterr().out.count("latency / float.tflite") == len(counts)
  with pytest.raises(app.UsageError, match="--threads"):
    run_tool("benchmark", f"--model={paths[0]}", "--threads=1,zero")
  (tmp_path / "junk.tflite").write_bytes(b"not a model")
  assert run_tool("benchmark", f"--model={tmp_path / 'junk.tflite'}") == 1
  assert "junk.tflite" in capsys.readouterr().err


@pytest.mark.parametrize("tool", TOOLS)
def test_helpfull_explains_every_flag(tool):
  result = subprocess.run([sys.executable, os.path.join(REPO, "tools", f"{tool}.py"), "--helpfull"],
                          capture_output=True, text=True, timeout=60, check=False)
  assert result.returncode in (0, 1) and not result.stderr, result.stderr  # absl exits 1 on help
  text = result.stdout
  module = _load_tool(tool)
  names = {f.name for f in FLAGS.get_key_flags_for_module(module.__name__)}
  assert len(names) >= 4
  for name in names:
    assert f"--{name}" in text or f"--[no]{name}" in text, name
    assert len(FLAGS[name].help) > 15, name  # a sentence, not a placeholder
  assert (module.__doc__ or "").split("\n")[0] in text  # the tool's description comes first
  short = subprocess.run([sys.executable, os.path.join(REPO, "tools", f"{tool}.py"), "--help"],
                         capture_output=True, text=True, timeout=60, check=False).stdout
  assert all(f"--{n}" in short or f"--[no]{n}" in short for n in names)  # shared flags adopted


def test_console_scripts_point_into_the_package():
  with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
    project = tomllib.load(f)
  scripts = project["project"]["scripts"]
  # Console names use dashes (tfq-export-onnx); the modules they run use underscores.
  assert set(scripts) == {f"tfq-{t.replace('_', '-')}" for t in TOOLS}
  for name, target in scripts.items():
    tool = name[len("tfq-"):].replace("-", "_")
    module_name, function = target.split(":")
    assert module_name == f"tfq_mixed.cli.{tool}"
    assert callable(getattr(_load_tool(tool), function))
  # Only the package is installed: a top-level `tools` collides with tf2onnx's.
  assert project["tool"]["setuptools"]["packages"]["find"]["include"] == ["tfq_mixed*"]


def _console_command(name: str) -> str:
  path = shutil.which(name, path=sysconfig.get_path("scripts")) or shutil.which(name)
  assert path, (f"console command {name} is not installed; run the README's test command "
                "(python -m pip install -e \".[test]\") first")
  return path


def test_installed_console_commands_start_beside_tf2onnx(tmp_path):
  """Every console command starts, from another folder, where tf2onnx's top-level `tools` exists.

  The `test` extra installs every optional dependency; tf2onnx among them brings a top-level
  `tools` package, which shadowed ours when the commands lived there.
  """
  pytest.importorskip("tf2onnx", reason="needs the test extra: pip install -e '.[test]'")
  for tool in TOOLS:
    name = f"tfq-{tool.replace('_', '-')}"
    done = subprocess.run([_console_command(name), "--helpfull"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    # absl exits with status 1 after printing the help; a crash prints a traceback.
    assert done.returncode in (0, 1) and not done.stderr, f"{name} --helpfull:\n{done.stderr[-2000:]}"
    key_flag = {"benchmark": "--threads", "export_onnx": "--onnx"}.get(tool, "--calibration")
    assert key_flag in done.stdout, f"{name} --helpfull does not explain {key_flag}"


def test_installed_quantize_command_runs_from_another_folder(files, tmp_path):
  out = tmp_path / "q"
  done = subprocess.run([_console_command("tfq-quantize"), f"--model={files['model']}",
                         f"--calibration={files['calibration']}", "--ratio=0.8", "--out=q"],
                        cwd=tmp_path, capture_output=True, text=True, timeout=600)
  assert done.returncode == 0, done.stderr[-3000:]
  # TensorFlow's start-up lines and the converter's warnings are held back.
  for noise in ("oneDNN", "cuda", "cuInit", "absl::InitializeLog", "trackable_obj",
                "Statistics for quantized inputs", "Traceback"):
    assert noise not in done.stdout + done.stderr, noise
  config = json.loads((out / "config.json").read_text())
  assert config["options"]["ratio"] == 0.8 and config["int8_mac_ratio"] >= 0.8
  assert sorted(os.listdir(out)) == ["config.json", "model.tflite", "report.csv", "report.md"]


def test_quantize_accepts_a_savedmodel_op_by_op(digits, tmp_path):
  model, x, _ = digits
  model.export(str(tmp_path / "saved"), verbose=False)
  np.save(tmp_path / "calibration.npy", x[:32])
  assert run_tool("quantize", f"--model={tmp_path / 'saved'}", "--ratio=0.9",
                  f"--calibration={tmp_path / 'calibration.npy'}", f"--out={tmp_path / 'q'}") == 0
  config = json.loads((tmp_path / "q" / "config.json").read_text())
  # Its layers are the ops of TFLiteConverter's float model, named after the Keras layers.
  ops = [op["op_name"] for op in _tflite_private.ops(_tflite_private.make_interpreter(
      tfq_mixed.sources.saved_model_tflite(str(tmp_path / "saved"))))]
  assert [kind for _, kind in config["layers"]] == ops
  assert any("conv1" in name for name, _ in config["layers"])
  assert config["model_name"] == "saved" and config["num_samples"] == 32
  assert config["int8_mac_ratio"] >= 0.9
  assert (tmp_path / "q" / "model.tflite").stat().st_size > 10_000


def test_export_onnx(digits_analysis, tmp_path, capsys):
  reason = "tools/export_onnx.py needs tf2onnx and onnx: pip install -e '.[onnx]'"
  pytest.importorskip("tf2onnx", reason=reason)
  onnx = pytest.importorskip("onnx", reason=reason)
  from tfq_mixed.deploy import onnx_export
  result = digits_analysis.quantize(0.9)
  result.save(str(tmp_path / "out"))
  target = tmp_path / "m.onnx"
  assert run_tool("export_onnx", f"--tflite={tmp_path / 'out'}", f"--onnx={target}") == 0
  model = onnx.load(str(target))
  assert onnx_export.config_of(model) == json.loads(result.config.to_json())
  ops = onnx_export.compute_ops(model)
  assert f"{sum(op.int8 for op in ops)} of {len(ops)} weighted ops int8" in capsys.readouterr().out
  assert run_tool("export_onnx", f"--tflite={tmp_path / 'out'}", f"--onnx={target}") == 1
  assert "--overwrite" in capsys.readouterr().err
