r"""Peak memory of `tfq_mixed.analyze` vs a plain full-int8 TFLite conversion, same samples.

Target (issue "Memory"): analysing efficientnet_lite0 with 500 calibration samples keeps peak memory
within 1.5x of the plain full-int8 conversion with the same samples.

Samples: 500 real ImageNet images, no repetition or augmentation. `../shared/data/imagenet-sample`
has only 100 calibration images (canonical split: sorted names, index % 10 == 0), so the 500 are those
100 followed by the first 400 of the evaluation split, preprocessed as `../shared/zoo/MODELS.md`
says (RGB, center-crop 87.5 % of the shorter side, bicubic resize to 224, (x - 127) / 128).

Each side runs in a fresh subprocess of this script (hidden flag `--_child`), started from a parent
that never imports TensorFlow, and reports `resource.getrusage(RUSAGE_SELF).ru_maxrss` (plus VmHWM
from /proc and a 20 ms RSS sampler that says which step the peak was in):

1. plain: `tf.lite.TFLiteConverter.from_keras_model(model)`, `Optimize.DEFAULT`, a representative
   dataset yielding the 500 images one at a time, `.convert()`.
2. analyze: `tfq_mixed.analyze(model, images)` (defaults: max_samples=500, batch_size=16); the
   target compares its peak. The same child then runs the main job's default budget on that
   analysis, `quantize(max_latency=1.1)` (the precision ladder: its candidate models and latency
   profile), and reports the peak of both together.

Both children hold the 500 preprocessed images (301 MB) before converting, as a user would.
Results go to `--output_dir` as `memory.md` and `memory.json`, written atomically.

History: before commit aa6ca8d, analyze copied the sample array (+287 MiB) and ran the two passes
16 samples a step (16 x 76 MiB of EfficientNet layer outputs): peak 3212 MiB vs plain 1501 MiB,
2.14x (FAIL). `--batch_size=4` alone gave 1986 MiB (1.32x), `--batch_size=1` 1750 MiB. Now the array
is used in place and the batch is sized to a 256 MiB budget of layer outputs (3 samples here).

Usage:
  python benchmarks/memory.py [--num_images=500] [--shared=../shared]
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import sys
import threading
import time

from absl import app
from absl import flags

# Run as a script from a checkout: measure this checkout's tfq_mixed, not an installed copy.
sys.path[:0] = [os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                os.path.dirname(os.path.abspath(__file__))]
import common  # pylint: disable=g-import-not-at-top,wrong-import-position

_SHARED = flags.DEFINE_string(
    "shared", common.DEFAULT_SHARED,
    "Folder with zoo/ and data/ (default: ../shared relative to the repository root).")
_MODEL = flags.DEFINE_enum("model", "efficientnet_lite0", list(common.IMAGENET_MODELS),
                           "ImageNet zoo model to convert.")
_NUM_IMAGES = flags.DEFINE_integer(
    "num_images", 500, "Real images: the 100 calibration images, then the evaluation split's first "
    "ones (500 = 100 + 400).", lower_bound=1, upper_bound=1000)
_BATCH_SIZE = flags.DEFINE_integer("batch_size", None,
                                   "batch_size of tfq_mixed.analyze (default: its default).")
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", os.path.join(common.REPO_ROOT, "benchmarks", "results"),
    "Where memory.md and memory.json are written.")
_CHILD = flags.DEFINE_enum("_child", None, ["plain", "analyze"],
                           "Internal: measure one conversion's peak memory in this process.")

TARGET = 1.5
QUANTIZE_BUDGET = {"max_latency": 1.1}
"""The main job's default budget, quantized on the analysis after it is measured (reported)."""
QUANTIZE_LABEL = ", ".join(f"{k}={v:g}" for k, v in QUANTIZE_BUDGET.items())
_CHILD_MARKER = "MEMORY_BENCHMARK_CHILD_RESULT "
_RESULT_NAME = "memory"
_SAMPLE_SECONDS = 0.02


class _RssSampler:
  """Samples VmRSS every 20 ms; `peak_step` says which labelled step the highest sample fell in."""

  def __init__(self, step: str):
    self.step = step
    self.peaks: dict[str, float] = {}
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._run, daemon=True)

  def _run(self):
    while not self._stop.is_set():
      rss = common.status_mib("VmRSS")
      if rss is not None:
        self.peaks[self.step] = max(self.peaks.get(self.step, 0.0), rss)
      time.sleep(_SAMPLE_SECONDS)

  def __enter__(self):
    self._thread.start()
    return self

  def __exit__(self, *exc):
    self._stop.set()
    self._thread.join()


def load_images(shared: str, model_name: str, num_images: int):
  """`num_images` real images: the calibration split, then the evaluation split's first images."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  calibration = common.imagenet_files(shared, "calibration")
  evaluation = common.imagenet_files(shared, "evaluation")
  files = (calibration + evaluation)[:num_images]
  images = np.stack([common.preprocess_imagenet(f, model_name) for f in files])
  return images, len(set(files) & set(calibration)), len(set(files) & set(evaluation))


def _instrument_analyze(sampler: _RssSampler):
  """Labels the sampler's steps by wrapping tfq_mixed's step functions (measurement only)."""
  from tfq_mixed import _tflite_private, analyzer, calibrator, dataset  # pylint: disable=g-import-not-at-top,g-multiple-import

  def labelled(module, name, label):
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
      previous, sampler.step = sampler.step, label
      try:
        return original(*args, **kwargs)
      finally:
        sampler.step = previous
    setattr(module, name, wrapper)

  labelled(dataset, "load_samples", "read samples")
  labelled(calibrator, "calibrate", "calibrate (trace + TFLite calibration)")
  labelled(_tflite_private, "layerwise_twins", "quantize (int8 model with float twins)")
  labelled(analyzer, "analyze_layers", "float + int8 passes")


def _run_child(kind: str) -> None:
  common.setup_tensorflow()
  import tfq_mixed  # pylint: disable=g-import-not-at-top
  shared = common.shared_dir(_SHARED.value)
  model = common.load_model(shared, _MODEL.value)
  images, _, _ = load_images(shared, _MODEL.value, _NUM_IMAGES.value)
  before = {"ru_maxrss_mib": common.maxrss_mib(), "vm_rss_mib": common.status_mib("VmRSS")}
  with _RssSampler(kind) as sampler:
    start = time.perf_counter()
    with common.quiet_stdout():
      if kind == "plain":
        common.plain_int8_convert(model, images)
      else:
        if os.environ.get("TFQ_MIXED_MEMORY_STEPS", "1") == "1":
          _instrument_analyze(sampler)
        kwargs = {} if _BATCH_SIZE.value is None else {"batch_size": _BATCH_SIZE.value}
        analysis = tfq_mixed.analyze(model, images, **kwargs)
        if analysis.num_samples != len(images):
          raise RuntimeError(f"analyze used {analysis.num_samples} samples, expected {len(images)}")
    seconds = time.perf_counter() - start
    peaks = {"ru_maxrss_mib": common.maxrss_mib(), "vm_hwm_mib": common.status_mib("VmHWM")}
    quantize = None
    if kind == "analyze":  # then the main job's default budget on that analysis
      sampler.step = f"quantize({QUANTIZE_LABEL}) (precision ladder)"
      start = time.perf_counter()
      with common.quiet_stdout():
        analysis.quantize(**QUANTIZE_BUDGET)
      quantize = {"seconds": time.perf_counter() - start, "ru_maxrss_mib": common.maxrss_mib()}
  common.report_child(_CHILD_MARKER, dict(peaks, **{
      "kind": kind, "seconds": seconds, "num_images": int(len(images)), "quantize": quantize,
      "images_mib": images.nbytes / 2**20, "before_convert": before,
      "sampled_peak_mib_by_step": {k: round(v, 1) for k, v in sampler.peaks.items()}}))


def _child_args(kind: str) -> list[str]:
  args = [sys.executable, os.path.abspath(__file__), f"--_child={kind}",
          f"--shared={_SHARED.value}", f"--model={_MODEL.value}",
          f"--num_images={_NUM_IMAGES.value}"]
  if _BATCH_SIZE.value is not None:
    args.append(f"--batch_size={_BATCH_SIZE.value}")
  return args


def measure(kind: str) -> dict:
  """Peak RSS of one conversion in a fresh subprocess of this script."""
  print(f"[memory] {kind} in a subprocess ...", flush=True)
  result = common.run_child(_child_args(kind), _CHILD_MARKER, kind)
  print(f"[memory] {kind}: peak {result['ru_maxrss_mib']:.0f} MiB, before converting "
        f"{result['before_convert']['ru_maxrss_mib']:.0f} MiB ({result['seconds']:.1f} s)",
        flush=True)
  return result


def render_markdown(r: dict) -> str:
  plain, ours = r["plain"], r["analyze"]
  lines = [
      "# Peak memory: tfq_mixed.analyze vs plain TFLite full-int8 conversion",
      "",
      f"Generated by `{r['command']}` on {r['date']} — do not edit by hand.",
      "",
      f"- model: `{r['model']}`; {r['num_images']} real ImageNet images = the "
      f"{r['images_from_calibration_split']} images of the canonical calibration split + the first "
      f"{r['images_from_evaluation_split']} of the evaluation split (the sample has only 100 "
      "calibration images; none repeated or augmented); preprocessing: RGB, center-crop 87.5 % of "
      "the shorter side, bicubic resize to 224, (x - 127) / 128; "
      f"{plain['images_mib']:.0f} MiB of float32 images held by both sides",
      f"- plain: `TFLiteConverter.from_keras_model` + `Optimize.DEFAULT` + representative dataset "
      f"(one image per step); analyze: `tfq_mixed.analyze(model, images"
      f"{'' if r['batch_size'] is None else ', batch_size=%d' % r['batch_size']})`",
      "- each side in a fresh subprocess; peak = `resource.getrusage(RUSAGE_SELF).ru_maxrss`",
      f"- TensorFlow {r['tensorflow_version']}, Python {r['python_version']}, git "
      f"{r['git_revision']}, {r['machine']['nproc']} CPUs, {r['machine']['mem_total_gib']} GiB RAM "
      "(shared machine)",
      "",
      "| check | value | target | verdict |",
      "|---|---|---|---|",
      f"| analyze / plain peak RSS | {r['ratio']:.3f} | <= {TARGET} | **{r['verdict']}** |",
  ]
  if ours.get("quantize"):
    q = ours["quantize"]
    lines.append(f"| then `quantize({QUANTIZE_LABEL})` on it: peak RSS / plain | "
                 f"{q['ru_maxrss_mib'] / plain['ru_maxrss_mib']:.3f} | | (reported: "
                 f"{q['seconds']:.1f} s, peak {q['ru_maxrss_mib']:.0f} MiB) |")
  lines += [
      "",
      "| side | peak RSS MiB | VmHWM MiB | RSS after loading TF, model, images MiB | "
      "peak while loading MiB | s |",
      "|---|---|---|---|---|---|",
  ]
  for name, side in (("plain", plain), ("analyze", ours)):
    before = side["before_convert"]
    lines.append(f"| {name} | {side['ru_maxrss_mib']:.0f} | {side['vm_hwm_mib']:.0f} | "
                 f"{before['vm_rss_mib']:.0f} | {before['ru_maxrss_mib']:.0f} | "
                 f"{side['seconds']:.1f} |")
  lines += ["", "Highest sampled RSS per step of analyze, then quantize (20 ms sampler; the label "
            "is the innermost step running, `analyze` = outside those steps):", "",
            "| step | MiB |", "|---|---|"]
  for step, mib in ours["sampled_peak_mib_by_step"].items():
    lines.append(f"| {step} | {mib:.0f} |")
  lines.append("")
  return "\n".join(lines)


def run_benchmark() -> dict:
  shared = common.shared_dir(_SHARED.value)
  calibration = common.imagenet_files(shared, "calibration")
  chosen = (calibration + common.imagenet_files(shared, "evaluation"))[:_NUM_IMAGES.value]
  plain, ours = measure("plain"), measure("analyze")
  ratio = ours["ru_maxrss_mib"] / plain["ru_maxrss_mib"]
  import tensorflow as tf  # pylint: disable=g-import-not-at-top  (after the children)
  with open("/proc/meminfo", encoding="ascii") as f:
    mem_total = int(f.readline().split()[1]) / 2**20
  return {
      "benchmark": _RESULT_NAME,
      "command": shlex.join(["python"] + sys.argv),
      "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
      "model": _MODEL.value,
      "num_images": len(chosen),
      "images_from_calibration_split": sum(1 for f in chosen if f in set(calibration)),
      "images_from_evaluation_split": sum(1 for f in chosen if f not in set(calibration)),
      "batch_size": _BATCH_SIZE.value,
      "target": TARGET,
      "ratio": ratio,
      "verdict": "PASS" if ratio <= TARGET else "FAIL",
      "plain": plain,
      "analyze": ours,
      "tensorflow_version": tf.__version__,
      "python_version": platform.python_version(),
      "git_revision": common.git_revision(),
      "machine": {"nproc": len(os.sched_getaffinity(0)), "mem_total_gib": round(mem_total, 1),
                  "platform": platform.platform()},
  }


def main(argv):
  if len(argv) > 1:
    raise app.UsageError("Too many command-line arguments.")
  if _CHILD.value:
    _run_child(_CHILD.value)
    return
  common.shared_dir(_SHARED.value)  # Exit with a clear message before any work.
  result = run_benchmark()
  markdown = render_markdown(result)
  output_dir = os.path.abspath(_OUTPUT_DIR.value)
  common.write_result(os.path.join(output_dir, _RESULT_NAME + ".json"),
                json.dumps(result, indent=2, sort_keys=True) + "\n")
  common.write_result(os.path.join(output_dir, _RESULT_NAME + ".md"), markdown)
  print(markdown)
  print(f"Wrote {os.path.join(output_dir, _RESULT_NAME)}.md and .json", flush=True)


if __name__ == "__main__":
  app.run(main)
