"""Float .tflite input on Google's MediaPipe models: fidelity, latency and size, side by side.

The 14 float or fp16 models of PyPI `mediapipe==0.10.14`, read out of its wheel (`pip download
--no-deps`; MediaPipe's runtime is not installed), are converted from the .tflite itself:
calibrated on the 100 canonical calibration photos of ../shared's ImageNet sample (resized
bilinear and scaled to each model's input range), evaluated on the first evaluation photos. No
labels: every figure is agreement with the float model, in what each model's users look at:

* output SQNR: all outputs against the float model's (dB);
* landmark models: mean displacement of the landmarks' (x, y), in input pixels;
* detectors: whether the top-scoring anchor is the float model's, the mean |score change|
  (sigmoid) at the float model's top 10 anchors, the IoU of the top anchor's box with float's;
* segmentation: IoU of the mask (probability > 0.5) with float's.

Models: float (the .tflite with fp16 weights folded: the same outputs, bit for bit), full int8
(TensorFlow's calibrator + quantizer), ours at `ratio=0.9` (the issue's check) and ours at the
default budget of the precision ladder (`max_latency=1.1`). XNNPACK latency (one thread, batch 1,
median of round-robin runs) as a multiple of full int8's in the same run; sizes in bytes.

  python benchmarks/mediapipe.py            # all 14; --models=hand_recrop,iris_landmark for some
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import common  # pylint: disable=g-import-not-at-top,wrong-import-position

_MODELS = flags.DEFINE_list("models", None, "MediaPipe models to run (default: all 14).")
_EVAL = flags.DEFINE_integer("eval_images", 100, "Evaluation photos (the first of the split).")
_RUNS = flags.DEFINE_integer("runs", 30, "Timed invokes per model.")
_SHARED = flags.DEFINE_string("shared", None, "../shared (default: beside the repository).")
_OUT = flags.DEFINE_string("out", os.path.join(common.REPO_ROOT, "benchmarks", "results"),
                           "Folder of mediapipe.md and mediapipe.json.")
_WHEEL = flags.DEFINE_string("wheel", None, "A mediapipe 0.10.14 wheel (default: pip download).")

RATIO = 0.9
DEFAULT_BUDGET = {"max_latency": 1.1}
"""The CLI's and main job's default budget (the precision ladder's)."""


def run_outputs(tflite: bytes, inputs: np.ndarray) -> dict[str, np.ndarray]:
  """Every output of `tflite` on each sample (batch 1, XNNPACK, one thread), stacked."""
  from tfq_mixed import _tflite_private  # pylint: disable=g-import-not-at-top
  runner = _tflite_private.make_interpreter(tflite, num_threads=1).get_signature_runner()
  (name,) = runner.get_input_details()
  outputs: dict[str, list] = {}
  for i in range(inputs.shape[0]):
    for key, value in runner(**{name: inputs[i:i + 1]}).items():
      outputs.setdefault(key, []).append(np.array(value, np.float32))
  return {k: np.concatenate(v) for k, v in outputs.items()}


def sqnr_db(reference: dict, other: dict) -> float:
  ref = np.concatenate([reference[k].reshape(len(reference[k]), -1) for k in sorted(reference)], 1)
  out = np.concatenate([other[k].reshape(len(other[k]), -1) for k in sorted(reference)], 1)
  noise = float(np.sum((ref.astype(np.float64) - out) ** 2))
  return float("inf") if noise == 0 else 10 * np.log10(float(np.sum(ref.astype(np.float64) ** 2)) /
                                                       noise)


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-np.clip(x, -80, 80)))


def _box_iou(a: np.ndarray, b: np.ndarray) -> float:
  """IoU of two (dx, dy, w, h) boxes around the same anchor."""
  def corners(box):
    cx, cy, w, h = box[:4]
    return cx - abs(w) / 2, cy - abs(h) / 2, cx + abs(w) / 2, cy + abs(h) / 2
  ax0, ay0, ax1, ay1 = corners(a)
  bx0, by0, bx1, by1 = corners(b)
  inter = max(0.0, min(ax1, bx1) - max(ax0, bx0)) * max(0.0, min(ay1, by1) - max(ay0, by0))
  union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter
  return float(inter / union) if union > 0 else 1.0


def task_metrics(info, reference: dict, other: dict) -> dict:
  """What users of the model look at, `other` against the float model's `reference`."""
  if info.kind == "landmarks":
    moved = []
    for name in info.outputs:
      ref = reference[name].reshape(len(reference[name]), -1, info.stride)[..., :2]
      out = other[name].reshape(len(other[name]), -1, info.stride)[..., :2]
      moved.append(np.linalg.norm(ref - out, axis=-1).ravel())
    return {"landmark_px": float(np.mean(np.concatenate(moved)))}
  if info.kind == "detector":
    boxes, scores = info.outputs
    ref_scores = reference[scores].reshape(len(reference[scores]), -1)
    out_scores = other[scores].reshape(len(other[scores]), -1)
    top = np.argmax(ref_scores, axis=1)
    top10 = np.argsort(-ref_scores, axis=1)[:, :10]
    rows = np.arange(len(top))[:, None]
    ious = [_box_iou(reference[boxes][i, t], other[boxes][i, t]) for i, t in enumerate(top)]
    return {"top_anchor_agreement": float(np.mean(np.argmax(out_scores, axis=1) == top)),
            "score_change": float(np.mean(np.abs(_sigmoid(ref_scores[rows, top10]) -
                                                 _sigmoid(out_scores[rows, top10])))),
            "top_box_iou": float(np.mean(ious))}
  if info.kind == "segmentation":
    (name,) = info.outputs
    ref, out = reference[name] > 0.5, other[name] > 0.5
    axes = tuple(range(1, ref.ndim))
    union = np.sum(ref | out, axis=axes)
    inter = np.sum(ref & out, axis=axes)
    return {"mask_iou": float(np.mean(np.where(union > 0, inter / np.maximum(union, 1), 1.0)))}
  return {}


def run_model(name: str, raw: bytes, calibration_files, evaluation_files) -> dict:
  import tfq_mixed  # pylint: disable=g-import-not-at-top
  from tfq_mixed import sources  # pylint: disable=g-import-not-at-top
  from tfq_mixed.deploy import latency  # pylint: disable=g-import-not-at-top
  from tfq_mixed.demo import mediapipe  # pylint: disable=g-import-not-at-top
  info = mediapipe.MODELS[name]
  record = {"model": name, "kind": info.kind, "original_bytes": len(raw)}
  start = time.perf_counter()
  try:
    source = sources.TfliteSource(raw, name)
  except tfq_mixed.TfqMixedError as e:
    record["error"] = f"{type(e).__name__}: {e}"
    common.log(f"{name}: {record['error']}")
    return record
  spec = source.input_specs()[0]
  size = (spec.shape[1], spec.shape[2])
  calibration = mediapipe.photos(calibration_files, *size, info.value_range)
  evaluation = mediapipe.photos(evaluation_files, *size, info.value_range)
  analysis = tfq_mixed.analyze(source, calibration)
  record["analysis_seconds"] = round(time.perf_counter() - start, 2)
  models = {"float": source.model, "full int8": analysis.int8_model}
  results = {}
  for label, budget in ((f"ours ratio={RATIO}", {"ratio": RATIO}),
                        ("ours max_latency=1.1 (default)", DEFAULT_BUDGET)):
    begin = time.perf_counter()
    result = analysis.quantize(**budget)
    results[label] = {"seconds": round(time.perf_counter() - begin, 2),
                      "budget": result.config.budget, "int8_mac_ratio": result.int8_mac_ratio,
                      "float_nodes": len(result.config.float_nodes),
                      "dynamic_nodes": len(result.config.dynamic_nodes)}
    models[label] = result.tflite
  reference = run_outputs(models["float"], evaluation)
  timings = {l.name: l for l in latency.compare(models, threads=1, runs=_RUNS.value,
                                                 inputs=[evaluation[:1]])}
  rows = []
  for label, model in models.items():
    outputs = reference if label == "float" else run_outputs(model, evaluation)
    row = {"model": label, "bytes": len(model),
           "latency_vs_int8": timings[label].median_ms / timings["full int8"].median_ms,
           "latency_ms": timings[label].median_ms,
           "output_sqnr_db": None if label == "float" else sqnr_db(reference, outputs)}
    row.update(task_metrics(info, reference, outputs) if label != "float" else {})
    row.update(results.get(label, {}))
    rows.append(row)
  record.update({"calibration_images": len(calibration), "evaluation_images": len(evaluation),
                 "input": list(spec.shape), "value_range": list(info.value_range),
                 "layers": len(source.layers), "rows": rows})
  int8 = next(r for r in rows if r["model"] == "full int8")["output_sqnr_db"]
  ours = next(r for r in rows if r["model"] == f"ours ratio={RATIO}")
  record["gain_db_at_ratio"] = ours["output_sqnr_db"] - int8
  common.log(f"{name}: int8 {int8:.2f} dB, ours@{RATIO} {ours['output_sqnr_db']:.2f} dB "
             f"({record['gain_db_at_ratio']:+.2f}), analysis {record['analysis_seconds']} s")
  return record


def _fmt(value, digits=2):
  if value is None:
    return ""
  if isinstance(value, float):
    return f"{value:.{digits}f}"
  return str(value)


def render_markdown(report: dict) -> str:
  lines = ["# MediaPipe's float .tflite models: float, full int8 and ours", "",
           f"`{report['command']}` at git {report['git_revision']}, {report['date']}; "
           f"{report['machine']}. mediapipe=={report['mediapipe']} wheel, read as a zip. "
           f"Calibration: the {report['calibration_images']} canonical calibration photos of the "
           f"ImageNet sample; evaluation: the first {report['evaluation_images']} evaluation "
           "photos (none of them is a face, hand or person crop, so these are out-of-domain "
           "inputs: the figures measure agreement with the float model, not task accuracy). "
           "Latency: XNNPACK, 1 thread, batch 1, median, as a multiple of full int8 in the same "
           "run.", "", "## Summary", "",
           "| model | kind | converts | int8 SQNR dB | ours@0.9 SQNR dB | gain dB | int8 MAC ratio "
           "| ours default SQNR dB | default latency x int8 | analysis s |",
           "|---|---|---|---|---|---|---|---|---|---|"]
  for r in report["models"]:
    if "error" in r:
      lines.append(f"| {r['model']} | {r['kind']} | no: {r['error'][:160]} | | | | | | | |")
      continue
    rows = {row["model"]: row for row in r["rows"]}
    ours = rows[f"ours ratio={RATIO}"]
    default = rows["ours max_latency=1.1 (default)"]
    lines.append(
        f"| {r['model']} | {r['kind']} | yes | {_fmt(rows['full int8']['output_sqnr_db'])} | "
        f"{_fmt(ours['output_sqnr_db'])} | {r['gain_db_at_ratio']:+.2f} | "
        f"{_fmt(ours['int8_mac_ratio'], 3)} | {_fmt(default['output_sqnr_db'])} | "
        f"{_fmt(default['latency_vs_int8'], 3)} | {r['analysis_seconds']} |")
  lines += ["", "## Per model", ""]
  for r in report["models"]:
    if "error" in r:
      continue
    keys = [k for k in ("landmark_px", "top_anchor_agreement", "score_change", "top_box_iou",
                        "mask_iou") if any(k in row for row in r["rows"])]
    lines += [f"### {r['model']} ({r['kind']}, input {r['input']} in {r['value_range']}, "
              f"{r['layers']} ops, {r['original_bytes']} bytes as shipped)", "",
              "| model | bytes | latency x int8 | ms | output SQNR dB | " +
              " | ".join(keys) + " | int8 MAC ratio | float / dynamic nodes |",
              "|---" * (7 + len(keys)) + "|"]
    for row in r["rows"]:
      lines.append(
          f"| {row['model']} | {row['bytes']} | {row['latency_vs_int8']:.3f} | "
          f"{row['latency_ms']:.2f} | {_fmt(row['output_sqnr_db'])} | " +
          " | ".join(_fmt(row.get(k), 3) for k in keys) +
          f" | {_fmt(row.get('int8_mac_ratio'), 3)} | "
          f"{row.get('float_nodes', '')} / {row.get('dynamic_nodes', '')} |")
    lines.append("")
  return "\n".join(lines) + "\n"


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Too many command-line arguments: {' '.join(argv[1:])}.")
  common.setup_tensorflow()
  from tfq_mixed.demo import mediapipe  # pylint: disable=g-import-not-at-top
  shared = common.shared_dir(_SHARED.value)
  wheel = _WHEEL.value or mediapipe.fetch_wheel()
  raw = mediapipe.read_models(wheel, _MODELS.value)
  calibration_files = common.imagenet_files(shared, "calibration")
  evaluation_files = common.imagenet_files(shared, "evaluation")[:_EVAL.value]
  report = dict(common.run_record("mediapipe.py"), mediapipe=mediapipe.VERSION,
                calibration_images=len(calibration_files),
                evaluation_images=len(evaluation_files), models=[])
  for name, model in raw.items():
    report["models"].append(run_model(name, model, calibration_files, evaluation_files))
    common.write_json_and_markdown(_OUT.value, "mediapipe", report, render_markdown(report))
  print(render_markdown(report))
  print(f"wrote {_OUT.value}/mediapipe.md and mediapipe.json\n{report['command']}")
  return 0


if __name__ == "__main__":
  app.run(main)
