r"""Overhead of `tfq_mixed.convert` over a plain full-int8 TFLite conversion, on a zoo model.

Measured in one run, so that the load of a shared machine hits both sides alike:

1. plain: `tf.lite.TFLiteConverter.from_keras_model(model)` with `Optimize.DEFAULT` and a
   representative dataset yielding the calibration images one at a time, `.convert()`.
2. ours: what `tfq_mixed.convert(model, images, ratio=--ratio)` runs, `tfq_mixed.analyze` then
   `quantize(--ratio)`, each timed.
3. quantize: one more `quantize(--quantize_ratio)` on that fresh analysis: its first call at that
   budget (the precision ladder's walk goes on from where the first budget left it; a repeated
   call only looks up).
4. peak memory (RSS high-water mark) of plain and of ours, each in a fresh subprocess of this script
   (hidden flag `--_child`), started before this process imports TensorFlow.

The timed runs alternate (plain, ours, quantize, plain, ours, quantize, ...) after one untimed
warm-up `analyze` + `quantize` (run under cProfile for the time breakdown of ours); medians are
reported. Results go to `--output_dir` as `convert_overhead.md` and `convert_overhead.json`,
written atomically.

Usage:
  python benchmarks/convert_overhead.py [--repeats=2] [--shared=../shared]
"""

from __future__ import annotations

import datetime
import io
import json
import os
import platform
import pstats
import re
import shlex
import statistics
import sys
import time

from absl import app
from absl import flags

# Run as a script from a checkout: benchmark this checkout's tfq_mixed, not an installed copy.
sys.path[:0] = [os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                os.path.dirname(os.path.abspath(__file__))]
import common  # pylint: disable=g-import-not-at-top,wrong-import-position

_SHARED = flags.DEFINE_string(
    "shared", common.DEFAULT_SHARED,
    "Folder with zoo/ and data/ (default: ../shared relative to the repository root).")
_MODEL = flags.DEFINE_enum("model", "efficientnet_lite0", list(common.IMAGENET_MODELS),
                           "Zoo model; calibrated on the canonical 100-image ImageNet split.")
_NUM_IMAGES = flags.DEFINE_integer(
    "num_images", 100, "Use the first N images of the 100-image calibration split (smoke runs).",
    lower_bound=1, upper_bound=100)
_REPEATS = flags.DEFINE_integer("repeats", 2, "Timed rounds of plain, ours, quantize.",
                                lower_bound=1)
_RATIO = flags.DEFINE_float("ratio", 0.9, "Share of MACs in int8 for tfq_mixed.convert.")
_QUANTIZE_RATIO = flags.DEFINE_float("quantize_ratio", 0.8,
                                     "Ratio of the extra quantize() on an existing analysis.")
_MEMORY = flags.DEFINE_bool("memory", True, "Measure peak RSS of plain and ours in subprocesses.")
_PROFILE = flags.DEFINE_bool("profile", True,
                             "Profile the warm-up analysis with cProfile for a time breakdown.")
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", os.path.join(common.REPO_ROOT, "benchmarks", "results"),
    "Where convert_overhead.md and convert_overhead.json are written.")
_CHILD = flags.DEFINE_enum("_child", None, ["plain", "ours"],
                           "Internal: measure one conversion's peak memory in this process.")

OURS_TARGET = 1.5
OURS_AIM = 1.2
QUANTIZE_TARGET = 0.05
_CHILD_MARKER = "CONVERT_OVERHEAD_CHILD_RESULT "
_RESULT_NAME = "convert_overhead"


def ours_convert(model, images, ratio):
  import tfq_mixed  # pylint: disable=g-import-not-at-top
  with common.quiet_stdout():
    return tfq_mixed.convert(model, images, ratio=ratio)


def _timed(fn, *args):
  start = time.perf_counter()
  out = fn(*args)
  return time.perf_counter() - start, out


# Peak memory, one fresh process per side.

def _run_child(kind: str) -> None:
  common.setup_tensorflow()
  import tfq_mixed  # noqa: F401  # pylint: disable=g-import-not-at-top,unused-import
  shared = common.shared_dir(_SHARED.value)
  model = common.load_model(shared, _MODEL.value)
  images, _ = common.load_imagenet(shared, _MODEL.value, "calibration", _NUM_IMAGES.value)
  before = {"ru_maxrss_mib": common.maxrss_mib(), "vm_hwm_mib": common.status_mib("VmHWM")}
  if kind == "plain":
    seconds, _ = _timed(common.plain_int8_convert, model, images)
  else:
    seconds, _ = _timed(ours_convert, model, images, _RATIO.value)
  common.report_child(_CHILD_MARKER, {
      "kind": kind, "seconds": seconds, "before_convert": before,
      "ru_maxrss_mib": common.maxrss_mib(), "vm_hwm_mib": common.status_mib("VmHWM")})


def _child_args(kind: str) -> list[str]:
  return [sys.executable, os.path.abspath(__file__), f"--_child={kind}",
          f"--shared={_SHARED.value}", f"--model={_MODEL.value}",
          f"--num_images={_NUM_IMAGES.value}", f"--ratio={_RATIO.value!r}"]


def measure_memory(kind: str) -> dict:
  """Peak RSS of one conversion in a fresh subprocess of this script."""
  print(f"[memory] {kind} in a subprocess ...", flush=True)
  result = common.run_child(_child_args(kind), _CHILD_MARKER, f"{kind} memory")
  print(f"[memory] {kind}: peak {result['ru_maxrss_mib']:.0f} MiB "
        f"({result['seconds']:.1f} s cold)", flush=True)
  return result


# Time breakdown of ours from cProfile (no tfq_mixed internals imported, only their names read).

_CALIBRATOR = [("tfq_mixed/calibrator.py", "calibrate")]
_INT8_PASS = [("tfq_mixed/analyzer.py", "run")]
_READS = [("tfq_mixed/analyzer.py", "pairs"), ("tfq_mixed/analyzer.py", "twin_arrays")]
_PASSES = [("tfq_mixed/analyzer.py", "_run_passes")]
_BREAKDOWN = (
    # (label, functions as (file suffix, name), callers as [(file suffix, name)] or None): the
    # cumulative time of those functions, counting only calls from the callers when given. Every
    # entry must match a call in the profile (`_breakdown` raises otherwise), and every tfq_mixed
    # function it names must exist (`check_breakdown`): a moved function fails the run, it does
    # not report zero.
    ("calibrate: trace + convert + calibrate (once)", _CALIBRATOR, None),
    ("  trace and freeze the layer-scoped function",
     [("tfq_mixed/calibrator.py", "scoped_function")], _CALIBRATOR),
    ("  TFLite convert + calibrate (calibrate_only)",
     [("tfq_mixed/_tflite_private/__init__.py", "calibrate_only")], _CALIBRATOR),
    ("  flatten layers, read nodes", [("tfq_mixed/model_graph.py", "flatten_layers"),
                                      ("tfq_mixed/calibrator.py", "_output_layers"),
                                      ("tfq_mixed/calibrator.py", "read_nodes")], _CALIBRATOR),
    ("twin model (TFLite quantizer with NumericVerify twins, then those ops taken out)",
     [("tfq_mixed/_tflite_private/__init__.py", "layerwise_twins")], None),
    ("analyze_layers: float + int8 passes + metrics", [("tfq_mixed/analyzer.py", "analyze_layers")],
     None),
    # The float pass (Keras layers) and the metrics run in worker threads, which cProfile does not
    # see: what shows is the int8 pass and the time the main thread waited for the workers.
    ("  int8 pass with float twins (LiteRT invoke, one thread, the float pass beside it)",
     [("ai_edge_litert/interpreter.py", "invoke")], _INT8_PASS),
    ("  read int8 tensors (get_tensor, dequantize)",
     [("ai_edge_litert/interpreter.py", "get_tensor"),
      ("tfq_mixed/_tflite_private/__init__.py", "dequantized_tensor")], _READS),
    ("  waiting for the float pass and metrics workers",
     [("concurrent/futures/_base.py", "result")], _PASSES),
    ("  weight SQNR (Keras kernels)", [("tfq_mixed/analyzer.py", "keras_weight_sqnr_db")], None),
    ("  fused weight SQNR (TFLite filters)", [("tfq_mixed/analyzer.py", "_fused_weight_sqnr")],
     None),
    ("precision ladder: quantize(ratio) (walk, candidates, sizes)",
     [("tfq_mixed/analysis.py", "quantize")], None),
    ("  candidate models built (TFLite quantizer, then dynamic-range weights)",
     [("tfq_mixed/writer.py", "build")], None),
    ("    of which the TFLite quantizer", [("tfq_mixed/_tflite_private/__init__.py", "quantize")],
     [("tfq_mixed/writer.py", "build")]),
    ("  verification runs (each candidate and the float model, LiteRT, one thread)",
     [("tfq_mixed/analysis.py", "_run")], None),
)


def _matches(key, wanted) -> bool:
  filename, _, function = key
  return function == wanted[1] and filename.replace(os.sep, "/").endswith(wanted[0])


def check_breakdown() -> None:
  """Fails before any work if a tfq_mixed function `_BREAKDOWN` names is not where it says."""
  named = {f for _, functions, callers in _BREAKDOWN for f in functions + (callers or [])}
  for path, function in sorted(named):
    if not path.startswith("tfq_mixed/"):
      continue
    full = os.path.join(common.REPO_ROOT, path)
    text = open(full, encoding="utf-8").read() if os.path.isfile(full) else ""
    if not re.search(rf"^\s*def {function}\(", text, re.MULTILINE):
      raise SystemExit(f"error: _BREAKDOWN names {path}:{function}, which does not exist (the "
                       "code moved). Update _BREAKDOWN in benchmarks/convert_overhead.py.")


def _breakdown(stats: pstats.Stats, total: float) -> list[dict]:
  table = stats.stats  # pylint: disable=no-member
  rows = []
  for label, functions, wanted_callers in _BREAKDOWN:
    seconds, found = 0.0, False
    for key, (_, _, _, cumtime, callers) in table.items():
      if not any(_matches(key, f) for f in functions):
        continue
      if wanted_callers is None:
        seconds, found = seconds + cumtime, True
        continue
      for caller_key, caller_stats in callers.items():
        if any(_matches(caller_key, c) for c in wanted_callers):
          seconds, found = seconds + caller_stats[3], True
    if not found:
      raise RuntimeError(f"The time breakdown step {label.strip()!r} matched no call in the "
                         "profile: the functions or callers it names moved. Update _BREAKDOWN.")
    rows.append({"step": label, "seconds": seconds, "share": seconds / total if total else None})
  top_level = [row["seconds"] or 0.0 for row in rows if not row["step"].startswith(" ")]
  other = max(0.0, total - sum(top_level))
  rows.append({"step": "other (read samples, segments, noise model, config)", "seconds": other,
               "share": other / total if total else None})
  return rows


def profile_analysis(model, images, ratio):
  """The warm-up: `analyze` + `quantize(ratio)` under cProfile; returns the profile's steps."""
  import cProfile  # pylint: disable=g-import-not-at-top
  import tfq_mixed  # pylint: disable=g-import-not-at-top
  profiler = cProfile.Profile() if _PROFILE.value else None
  start = time.perf_counter()
  with common.quiet_stdout():
    if profiler:
      profiler.enable()
    analysis = tfq_mixed.analyze(model, images)
    analysis.quantize(ratio)
    if profiler:
      profiler.disable()
  total = time.perf_counter() - start
  if not profiler:
    return None
  stats = pstats.Stats(profiler, stream=io.StringIO())
  return {"seconds_under_profiler": total, "steps": _breakdown(stats, total)}


# Report.

def _median(values):
  return statistics.median(values) if values else None


def _verdict(ok: bool) -> str:
  return "PASS" if ok else "FAIL"


def _source_digest() -> str:
  """sha256 over tfq_mixed/**/*.py as they are on disk: names the exact code that was measured."""
  import hashlib  # pylint: disable=g-import-not-at-top
  digest = hashlib.sha256()
  package = os.path.join(common.REPO_ROOT, "tfq_mixed")
  for directory, _, files in sorted(os.walk(package)):
    for name in sorted(files):
      if name.endswith(".py"):
        path = os.path.join(directory, name)
        digest.update(os.path.relpath(path, package).encode() + b"\0")
        with open(path, "rb") as f:
          digest.update(f.read() + b"\0")
  return digest.hexdigest()[:16]


def _fmt(value, pattern="{:.3f}"):
  return "n/a" if value is None else pattern.format(value)


def render_markdown(r: dict) -> str:
  t, m, c = r["timing"], r.get("memory"), r["checks"]
  lines = [
      "# tfq_mixed.convert overhead vs plain TFLite full-int8 conversion",
      "",
      f"Generated by `{r['command']}` on {r['date']} — do not edit by hand.",
      "",
      f"- model: `{r['model']}`, {r['num_calibration_images']} calibration images "
      "(canonical ImageNet split), `ratio={}`, extra `quantize({})`".format(
          r["ratio"], r["quantize_ratio"]),
      f"- machine: {r['machine']['nproc']} CPUs usable ({r['machine']['cpu']}), "
      f"load average {r['machine']['load_average_start']} at start, "
      f"{r['machine']['load_average_end']} at end (shared machine)",
      f"- TensorFlow {r['tensorflow_version']}, Python {r['python_version']}, "
      f"tfq_mixed {r['tfq_mixed_version']} (git {r['git_revision']}; sources sha256 "
      f"{r['tfq_mixed_source_sha256']})",
      f"- timing: {r['repeats']} interleaved rounds after one untimed warm-up analysis; medians. "
      "A round: plain; then ours as `convert` runs it, `analyze` and `quantize(ratio)` on that "
      "fresh analysis; then one more `quantize` at the other budget on it (its first call: the "
      "precision ladder's walk goes on from where the first budget left it)",
      "",
      "| check | value | target | aim | verdict |",
      "|---|---|---|---|---|",
      f"| ours / plain time | {_fmt(t['ours_over_plain'])} | <= {OURS_TARGET} | <= {OURS_AIM} | "
      f"{c['ours_over_plain_target']} (aim: {c['ours_over_plain_aim']}) |",
      f"| of which analyze / plain | {_fmt(t['analyze_over_plain'])} | | | (reported) |",
      f"| of which quantize({r['ratio']}) / plain | {_fmt(t['quantize_ratio_over_plain'])} | | | "
      "(reported) |",
      f"| one more quantize / plain time | {_fmt(t['quantize_over_plain'])} | "
      f"<= {QUANTIZE_TARGET} | | {c['quantize_over_plain_target']} |",
  ]
  if m:
    lines.append(f"| ours / plain peak RSS | {_fmt(m['ours_over_plain'])} | | | (reported) |")
  lines += [
      "",
      "| measurement | median s | runs s |",
      "|---|---|---|",
  ]
  for key, label in (("plain_seconds", "plain TFLiteConverter (full int8)"),
                     ("ours_seconds", f"tfq_mixed.convert(ratio={r['ratio']}): analyze + quantize"),
                     ("analyze_seconds", "tfq_mixed.analyze"),
                     ("quantize_ratio_seconds", f"analysis.quantize({r['ratio']})"),
                     ("quantize_seconds", f"then analysis.quantize({r['quantize_ratio']})")):
    runs = ", ".join(f"{v:.2f}" for v in t["runs"][key])
    lines.append(f"| {label} | {_fmt(t[key], '{:.2f}')} | {runs} |")
  if m:
    lines += [
        "",
        "Peak memory, each in a fresh process started before the parent imports TensorFlow "
        "(`ru_maxrss` of the child; `VmHWM` from /proc, which excludes anything inherited):",
        "",
        "| side | peak MiB | VmHWM MiB | after loading TF, model, images MiB | cold run s |",
        "|---|---|---|---|---|",
    ]
    for side in ("plain", "ours"):
      s = m[side]
      lines.append(f"| {side} | {s['ru_maxrss_mib']:.0f} | {_fmt(s['vm_hwm_mib'], '{:.0f}')} | "
                   f"{s['before_convert']['ru_maxrss_mib']:.0f} | {s['seconds']:.1f} |")
    lines.append(f"| ours / plain | {m['ours_over_plain']:.2f} | | | |")
  p = r.get("profile")
  if p:
    lines += [
        "",
        "Where ours spends its time (cProfile of the warm-up `analyze` + "
        f"`quantize({r['ratio']})`, {p['seconds_under_profiler']:.1f} s under the profiler, whose "
        "overhead inflates Python-heavy steps; not used for the ratios):",
        "",
        "| step | s | share |",
        "|---|---|---|",
    ]
    for row in p["steps"]:
      lines.append(f"| {row['step']} | {_fmt(row['seconds'], '{:.2f}')} | "
                   f"{_fmt(row['share'], '{:.0%}')} |")
  lines.append("")
  return "\n".join(lines)


def run_benchmark() -> dict:
  shared = common.shared_dir(_SHARED.value)
  load_start = os.getloadavg()
  memory = None
  if _MEMORY.value:  # Before this process grows: the children start from a small parent.
    plain_mem, ours_mem = measure_memory("plain"), measure_memory("ours")
    memory = {"plain": plain_mem, "ours": ours_mem,
              "ours_over_plain": ours_mem["ru_maxrss_mib"] / plain_mem["ru_maxrss_mib"]}

  tf = common.setup_tensorflow()
  import tfq_mixed  # pylint: disable=g-import-not-at-top
  model = common.load_model(shared, _MODEL.value)
  images, _ = common.load_imagenet(shared, _MODEL.value, "calibration", _NUM_IMAGES.value)
  print(f"[time] {_MODEL.value}, {len(images)} calibration images; warm-up analysis "
        f"{'under cProfile ' if _PROFILE.value else ''}...", flush=True)
  profile = profile_analysis(model, images, _RATIO.value)

  runs = {"plain_seconds": [], "ours_seconds": [], "analyze_seconds": [],
          "quantize_ratio_seconds": [], "quantize_seconds": []}
  for round_index in range(_REPEATS.value):
    seconds, _ = _timed(common.plain_int8_convert, model, images)
    runs["plain_seconds"].append(seconds)
    with common.quiet_stdout():
      seconds, fresh = _timed(tfq_mixed.analyze, model, images)
      runs["analyze_seconds"].append(seconds)
      seconds, _ = _timed(fresh.quantize, _RATIO.value)
      runs["quantize_ratio_seconds"].append(seconds)
      runs["ours_seconds"].append(runs["analyze_seconds"][-1] + seconds)
      seconds, _ = _timed(fresh.quantize, _QUANTIZE_RATIO.value)
      runs["quantize_seconds"].append(seconds)
    print(f"[time] round {round_index + 1}/{_REPEATS.value}: "
          f"plain {runs['plain_seconds'][-1]:.2f} s, ours {runs['ours_seconds'][-1]:.2f} s "
          f"(analyze {runs['analyze_seconds'][-1]:.2f} s), "
          f"quantize {runs['quantize_seconds'][-1]:.2f} s", flush=True)

  timing = {key: _median(values) for key, values in runs.items()}
  timing["runs"] = runs
  for key in ("ours", "analyze", "quantize_ratio", "quantize"):
    timing[f"{key}_over_plain"] = timing[f"{key}_seconds"] / timing["plain_seconds"]
  checks = {
      "ours_over_plain_target": _verdict(timing["ours_over_plain"] <= OURS_TARGET),
      "ours_over_plain_aim": _verdict(timing["ours_over_plain"] <= OURS_AIM),
      "quantize_over_plain_target": _verdict(timing["quantize_over_plain"] <= QUANTIZE_TARGET),
  }
  return {
      "benchmark": _RESULT_NAME,
      "command": shlex.join(["python"] + sys.argv),
      "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
      "model": _MODEL.value,
      "num_calibration_images": int(len(images)),
      "ratio": _RATIO.value,
      "quantize_ratio": _QUANTIZE_RATIO.value,
      "repeats": _REPEATS.value,
      "targets": {"ours_over_plain": OURS_TARGET, "ours_over_plain_aim": OURS_AIM,
                  "quantize_over_plain": QUANTIZE_TARGET},
      "checks": checks,
      "timing": timing,
      "memory": memory,
      "profile": profile,
      "tensorflow_version": tf.__version__,
      "tfq_mixed_version": tfq_mixed.__version__,
      "python_version": platform.python_version(),
      "git_revision": common.git_revision(),
      "tfq_mixed_source_sha256": _source_digest(),
      "machine": {"nproc": len(os.sched_getaffinity(0)), "cpu_count": os.cpu_count(),
                  "cpu": common.cpu_model(), "platform": platform.platform(),
                  "load_average_start": [round(v, 2) for v in load_start],
                  "load_average_end": [round(v, 2) for v in os.getloadavg()]},
  }


def main(argv):
  if len(argv) > 1:
    raise app.UsageError("Too many command-line arguments.")
  if _CHILD.value:
    _run_child(_CHILD.value)
    return
  common.shared_dir(_SHARED.value)  # Exit with a clear message before any work.
  if _PROFILE.value:
    check_breakdown()
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
