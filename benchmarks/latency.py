r"""XNNPACK latency of float, full-int8 and mixed TFLite models of the zoo, at 1, 2 and N threads.

For each zoo model (`--models`), on its canonical calibration split (`zoo_data.py`):

1. float: the plain float32 TFLite model (`tfq_mixed.latency.float_tflite`).
2. int8: TFLite's plain full-int8 model of the same calibration (`analysis.int8_model`, which is
   what `ratio=1.0` gives).
3. mixed: `tfq_mixed.analyze(model, images).quantize(--ratio)`.

The three are timed round-robin with `tfq_mixed.latency.compare` (one invoke of each per round after
a warm-up; LiteRT's default XNNPACK delegate; batch 1, the first calibration image) at every thread
count of `--threads` (N = os.cpu_count()). The machine may be shared with other jobs: absolute
milliseconds move with its load, so the figures to read are the ratios to float at the same thread
count, which the round-robin keeps fair. Results go to `--output_dir` as `latency.md` and
`latency.json`, written atomically, with the command that made them.

Usage:
  python benchmarks/latency.py [--models=efficientnet_lite0,tiny_darknet,resnet56_cifar10]
      [--threads=1,2,N] [--runs=100] [--shared=../shared]
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import platform
import shlex
import sys
import tempfile

from absl import app
from absl import flags

# Run as a script from a checkout: benchmark this checkout's tfq_mixed, not an installed copy.
sys.path[:0] = [os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                os.path.dirname(os.path.abspath(__file__))]
import zoo_data  # pylint: disable=g-import-not-at-top,wrong-import-position

_SHARED = flags.DEFINE_string(
    "shared", zoo_data.DEFAULT_SHARED,
    "Folder with zoo/ and data/ (default: ../shared relative to the repository root).")
_MODELS = flags.DEFINE_list("models", ["efficientnet_lite0", "tiny_darknet", "resnet56_cifar10"],
                            f"Zoo models, any of: {', '.join(zoo_data.MODELS)}.")
_THREADS = flags.DEFINE_list("threads", ["1", "2", "N"],
                             "XNNPACK thread counts; N is os.cpu_count(). Duplicates are dropped.")
_RATIO = flags.DEFINE_float("ratio", 0.9, "Share of MACs in int8 of the mixed model.",
                            lower_bound=0.0, upper_bound=1.0)
_NUM_IMAGES = flags.DEFINE_integer(
    "num_images", None, "Calibrate on the first N images of the split (default: all of it).",
    lower_bound=1)
_RUNS = flags.DEFINE_integer("runs", 100, "Timed rounds per thread count; medians reported.",
                             lower_bound=1)
_WARMUP = flags.DEFINE_integer("warmup", 10, "Untimed rounds first.", lower_bound=0)
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", os.path.join(zoo_data.REPO_ROOT, "benchmarks", "results"),
    "Where latency.md and latency.json are written.")

_RESULT_NAME = "latency"
KINDS = ("float", "int8", "mixed")


@contextlib.contextmanager
def _quiet_stdout():
  """Silences fd 1 (Keras' export prints every captured variable), keeps stderr for errors."""
  sys.stdout.flush()
  saved = os.dup(1)
  try:
    with open(os.devnull, "w", encoding="utf-8") as devnull:
      os.dup2(devnull.fileno(), 1)
      yield
  finally:
    sys.stdout.flush()
    os.dup2(saved, 1)
    os.close(saved)


def _setup_tensorflow():
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  import warnings  # pylint: disable=g-import-not-at-top
  warnings.filterwarnings("ignore")
  from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
  absl_logging.set_verbosity(absl_logging.WARNING)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.get_logger().setLevel("ERROR")


def thread_counts(values) -> list[int]:
  counts = []
  for value in values:
    count = (os.cpu_count() or 1) if value.strip().upper() == "N" else int(value)
    if count < 1:
      raise app.UsageError(f"--threads must be positive ints or N. Received: {','.join(values)}.")
    if count not in counts:
      counts.append(count)
  return counts


def build_models(name: str, shared: str) -> tuple[dict[str, bytes], dict]:
  """{'float', 'int8', 'mixed'} TFLite flatbuffers of zoo model `name`, and facts about them."""
  import tfq_mixed  # pylint: disable=g-import-not-at-top
  from tfq_mixed import latency  # pylint: disable=g-import-not-at-top
  model = zoo_data.load_model(shared, name)
  images, _ = zoo_data.load_split(shared, name, "calibration", _NUM_IMAGES.value)
  with _quiet_stdout():
    float_model = latency.float_tflite(model)
    analysis = tfq_mixed.analyze(model, images)
    mixed = analysis.quantize(_RATIO.value)
  facts = {"calibration_images": int(len(images)), "input": images[:1],
           "int8_mac_ratio": mixed.int8_mac_ratio, "float_layers": len(mixed.float_layers),
           "float_nodes": len(mixed.config.float_nodes)}
  return {"float": float_model, "int8": analysis.int8_model, "mixed": mixed.tflite}, facts


def _cpu_model() -> str:
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or "unknown"


def _git_revision() -> str:
  import subprocess  # pylint: disable=g-import-not-at-top
  try:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=zoo_data.REPO_ROOT,
                          capture_output=True, text=True, check=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "tfq_mixed"],
                           cwd=zoo_data.REPO_ROOT, capture_output=True, text=True,
                           check=True).stdout.strip()
    return head + ("+uncommitted tfq_mixed changes" if dirty else "")
  except (OSError, subprocess.CalledProcessError):
    return "unknown"


def _write_atomic(path: str, text: str) -> None:
  directory = os.path.dirname(path)
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(prefix=".tmp_" + os.path.basename(path), dir=directory)
  try:
    with os.fdopen(fd, "w", encoding="utf-8") as f:
      f.write(text)
    os.chmod(tmp, 0o644)  # mkstemp makes it 0600
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(OSError):
      os.unlink(tmp)
    raise


def ratio_table(r: dict) -> str:
  """The README table: per model and thread count, int8 and mixed latency / float latency."""
  lines = ["| model | threads | float ms | int8 ms | mixed ms | int8 / float | mixed / float "
           "| mixed / int8 |", "|---|---|---|---|---|---|---|---|"]
  for row in r["rows"]:
    ms = row["median_ms"]
    lines.append(f"| {row['model']} | {row['threads']} | {ms['float']:.2f} | {ms['int8']:.2f} | "
                 f"{ms['mixed']:.2f} | {ms['int8'] / ms['float']:.3f} | "
                 f"{ms['mixed'] / ms['float']:.3f} | {ms['mixed'] / ms['int8']:.3f} |")
  return "\n".join(lines)


def render_markdown(r: dict) -> str:
  lines = [
      "# XNNPACK latency: float vs full-int8 vs mixed (tfq_mixed)", "",
      f"Generated by `{r['command']}` on {r['date']} — do not edit by hand.", "",
      f"- mixed: `tfq_mixed.analyze(model, calibration).quantize({r['ratio']})`; int8: TFLite's "
      "plain full-int8 model of the same calibration; float: plain float32 TFLite",
      f"- timing: LiteRT {r['litert_version']} default XNNPACK delegate, batch 1, round-robin over "
      f"the three models, {r['warmup']} warm-up + {r['runs']} timed rounds per thread count; "
      "medians",
      f"- machine: {r['cpu_count']} CPUs ({r['cpu']}), load average {r['load_start']} at start, "
      f"{r['load_end']} at end. The machine is shared with other jobs: absolute ms move with its "
      "load; the ratios (same round-robin rounds) are the figures to read",
      f"- TensorFlow {r['tensorflow_version']}, Python {r['python_version']}, tfq_mixed "
      f"{r['tfq_mixed_version']} (git {r['git']})", "",
      ratio_table(r), "",
      "| model | calibration images | mixed int8 MAC ratio | float nodes "
      "| float / int8 / mixed MB |",
      "|---|---|---|---|---|"]
  for name, facts in r["models"].items():
    sizes = " / ".join(f"{facts['size_bytes'][k] / 1e6:.2f}" for k in KINDS)
    lines.append(f"| {name} | {facts['calibration_images']} | {facts['int8_mac_ratio']:.4f} | "
                 f"{facts['float_nodes']} | {sizes} |")
  return "\n".join(lines) + "\n"


def main(argv):
  if len(argv) > 1:
    raise app.UsageError("Too many command-line arguments.")
  unknown = [m for m in _MODELS.value if m not in zoo_data.MODELS]
  if unknown:
    raise app.UsageError(
        f"Unknown --models {unknown}. Expected any of: {', '.join(zoo_data.MODELS)}.")
  counts = thread_counts(_THREADS.value)
  shared = zoo_data.shared_dir(_SHARED.value)
  _setup_tensorflow()
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tfq_mixed  # pylint: disable=g-import-not-at-top
  from tfq_mixed import latency  # pylint: disable=g-import-not-at-top
  from importlib import metadata  # pylint: disable=g-import-not-at-top
  result = {
      "command": shlex.join(["python"] + [os.path.relpath(sys.argv[0], zoo_data.REPO_ROOT)]
                            + sys.argv[1:]),
      "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
      "ratio": _RATIO.value, "runs": _RUNS.value, "warmup": _WARMUP.value, "threads": counts,
      "cpu_count": os.cpu_count(), "cpu": _cpu_model(),
      "load_start": [round(x, 2) for x in os.getloadavg()],
      "tensorflow_version": tf.__version__, "python_version": platform.python_version(),
      "litert_version": metadata.version("ai-edge-litert"),
      "tfq_mixed_version": getattr(tfq_mixed, "__version__", metadata.version("tfq_mixed")),
      "git": _git_revision(), "models": {}, "rows": []}
  for name in _MODELS.value:
    print(f"[{name}] building float, int8 and mixed({_RATIO.value}) ...", flush=True)
    models, facts = build_models(name, shared)
    inputs = [facts.pop("input")]
    facts["size_bytes"] = {k: len(v) for k, v in models.items()}
    result["models"][name] = facts
    for threads in counts:
      timings = latency.compare(models, threads=threads, runs=_RUNS.value, warmup=_WARMUP.value,
                                inputs=inputs)
      row = {"model": name, "threads": threads,
             "median_ms": {t.name: t.median_ms for t in timings},
             "min_ms": {t.name: t.min_ms for t in timings},
             "mean_ms": {t.name: t.mean_ms for t in timings}}
      result["rows"].append(row)
      print(latency.render(timings), flush=True)
  result["load_end"] = [round(x, 2) for x in os.getloadavg()]
  out = _OUTPUT_DIR.value
  _write_atomic(os.path.join(out, _RESULT_NAME + ".json"),
                json.dumps(result, indent=2, sort_keys=True) + "\n")
  _write_atomic(os.path.join(out, _RESULT_NAME + ".md"), render_markdown(result))
  print(ratio_table(result))
  print(f"wrote {os.path.join(out, _RESULT_NAME)}.md|json; made by: {result['command']}")


if __name__ == "__main__":
  app.run(main)
