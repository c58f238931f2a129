r"""Accuracy, latency and size of what users could pick instead, side by side with ours.

For every zoo model and weight mode: TensorFlow Lite's float, dynamic-range (the converter's
`Optimize.DEFAULT` without data: per-channel weights; in per-tensor mode also its per-tensor
variant), fp16-weight and int16x8 models; full int8; the TFLite QuantizationDebugger's choice at
ratio 0.9; our `fallback='float'` models at ratios 0.95 / 0.9 / 0.8; and ours with the precision
ladder (`fallback='auto'`) under `max_latency` 0.8 to 1.2 (below 1: where float or dynamic-range
ops are cheaper than int8 ones), `max_size` 1.05 / 1.1 / 1.25 and `ratio` 0.9. Top-1 on the
canonical evaluation split, and beside it the label-free fidelity on the same images (top-1
agreement with the float model, output SQNR against it); XNNPACK latency at 1 and 2 threads as
ratios to full int8, all models timed round-robin in the same run (int16x8 runs on reference
kernels, about 100x slower: timed apart, a few runs). Writes `results/pareto.{json,md}` and one
Pareto plot per model and mode, and checks the targets where full int8 loses at least 1 point:

  (a) at max_latency=1.05, ours recovers at least 90 % of the int8-to-float gap;
  (b) ours has a point within 0.2 points of min(float, dynamic-range) at no more than 0.9x
      dynamic-range's latency;
  (c) at ratio=0.9 (fallback 'auto') the file is at most 1.1x the int8 file.

With (a) and (b), how far the evaluation images alone move the top-1 figure (a paired bootstrap:
every model on the same resampled images) and the label-free figures behind it.

  python benchmarks/pareto.py                       # all 8 configs, a little over half an hour
  python benchmarks/pareto.py --models=tiny_darknet --modes=per_channel
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # pylint: disable=g-import-not-at-top,wrong-import-position
import reference_rankers  # pylint: disable=g-import-not-at-top,wrong-import-position

MODES = ("per_channel", "per_tensor")
LATENCY_BUDGETS = (0.75, 0.8, 0.85, 0.9, 0.95, 1.0, 1.02, 1.05, 1.1, 1.2)
SIZE_BUDGETS = (1.05, 1.1, 1.25)
FLOAT_RATIOS = (0.95, 0.9, 0.8)
GAP_TARGET, NEAR_TARGET, SPEED_TARGET, SIZE_TARGET = 0.90, 0.002, 0.9, 1.1
MIN_LOSS = 0.01

_SHARED = flags.DEFINE_string("shared", None, "The shared folder (default ../shared).")
_MODELS = flags.DEFINE_list("models", list(common.MODELS), "Zoo models.")
_MODES = flags.DEFINE_list("modes", list(MODES), "Weight modes.")
_CIFAR_EVAL = flags.DEFINE_integer("cifar_eval_images", 2000,
                                   "CIFAR-10 evaluation images (the first of the split).")
_RUNS = flags.DEFINE_integer("runs", 40, "Timed round-robin runs per thread count.")
_THREADS = flags.DEFINE_list("threads", ["1", "2"], "Thread counts timed.")
_OUT = flags.DEFINE_string("out", os.path.join(common.REPO_ROOT, "benchmarks", "results"),
                           "Results folder.")


def converter_models(model, calibration: np.ndarray, per_channel: bool) -> dict[str, bytes]:
  """TensorFlow Lite's own alternatives: dynamic-range, fp16 weights, int16x8."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  def convert(configure) -> bytes:
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    configure(converter)
    with common.quiet_stdout():
      return converter.convert()

  def dataset():
    for x in calibration[:100]:
      yield [x[None]]

  def fp16(converter):
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]

  def int16x8(converter):
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = dataset
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]

  models = {"dynamic-range": common.dynamic_range_convert(model), "fp16 weights": convert(fp16),
            "int16x8": convert(int16x8)}
  if not per_channel:
    models["dynamic-range per-tensor"] = common.dynamic_range_convert(model, per_channel=False)
  return models


def run_config(shared: str, name: str, mode: str, threads: list[int]) -> dict:
  import tfq_mixed  # pylint: disable=g-import-not-at-top
  from tfq_mixed.deploy import latency  # pylint: disable=g-import-not-at-top
  from tfq_mixed import metrics  # pylint: disable=g-import-not-at-top
  from tfq_mixed.evaluation import scores  # pylint: disable=g-import-not-at-top
  per_channel = mode == "per_channel"
  model = common.load_model(shared, name)
  calibration, _ = common.load_split(shared, name, "calibration")
  limit = _CIFAR_EVAL.value if name in common.CIFAR_MODELS else None
  eval_x, eval_y = common.load_split(shared, name, "evaluation", limit)
  common.log(f"{name} {mode}: {len(calibration)} calibration, {len(eval_x)} evaluation images")
  start = time.perf_counter()
  analysis = tfq_mixed.analyze(model, calibration, per_channel=per_channel)
  analysis_seconds = time.perf_counter() - start
  with common.quiet_stdout():
    models = {"float": latency.float_tflite(model)}
  models.update(converter_models(model, calibration, per_channel))
  models["full int8"] = analysis.int8_model
  debugger = reference_rankers.tflite_debugger_ranking(model, calibration, analysis)
  models["TF debugger @0.9"] = analysis.quantize(0.9, debugger.ranking, fallback="float").tflite
  budgets = {}
  for ratio in FLOAT_RATIOS:
    models[f"float fallback @{ratio:g}"] = analysis.quantize(ratio, fallback="float").tflite
  ours = [("ratio", 0.9)] + [("max_latency", b) for b in LATENCY_BUDGETS] + [
      ("max_size", b) for b in SIZE_BUDGETS]
  for kind, value in ours:
    began = time.perf_counter()
    try:
      result = analysis.quantize(**{kind: value})
    except tfq_mixed.InvalidArgumentError as e:  # below the cheapest model this analysis makes
      common.log(f"ours {kind}={value:g}: {e}")
      continue
    label = f"ours {kind}={value:g}"
    models[label] = result.tflite
    budgets[label] = dict(result.config.budget, seconds=round(time.perf_counter() - began, 2),
                          int8_mac_ratio=result.int8_mac_ratio,
                          dynamic_nodes=len(result.config.dynamic_nodes),
                          float_nodes=len(result.config.float_nodes) - len(
                              result.config.dynamic_nodes))
    common.log(f"{label}: {budgets[label]}")
  rows, correct = {}, {}
  known = eval_y >= 0
  reference = scores.predict(models["float"], eval_x)
  for label, tflite in models.items():
    outputs = reference if label == "float" else scores.predict(tflite, eval_x)
    predicted = np.argmax(outputs, axis=-1)
    correct[label] = predicted[known] == eval_y[known]
    rows[label] = {"top1": scores.top1(outputs, eval_y), "size_bytes": len(tflite),
                   "agreement": float(np.mean(predicted == np.argmax(reference, axis=-1))),
                   "output_sqnr_db": (None if label == "float" else
                                      round(metrics.sqnr_db(reference, outputs), 2))}
  fast = {k: v for k, v in models.items() if k != "int16x8"}
  for count in threads:
    timings = latency.compare(fast, threads=count, runs=_RUNS.value, warmup=5,
                              inputs=[calibration[:1]])
    base = next(t.median_ms for t in timings if t.name == "full int8")
    for t in timings:
      rows[t.name][f"latency_{count}t"] = t.median_ms / base
    slow = latency.compare({"full int8": models["full int8"], "int16x8": models["int16x8"]},
                           threads=count, runs=3, warmup=1, inputs=[calibration[:1]])
    rows["int16x8"][f"latency_{count}t"] = slow[1].median_ms / slow[0].median_ms
  int8_size = rows["full int8"]["size_bytes"]
  for row in rows.values():
    row["size_ratio"] = row["size_bytes"] / int8_size
  record = {"model": name, "mode": mode, "calibration_images": int(len(calibration)),
            "evaluation_images": int(len(eval_x)), "analysis_seconds": round(analysis_seconds, 1),
            "cost_profile_seconds": round(analysis.costs(1).seconds, 1), "rows": rows,
            "budgets": budgets, "targets": targets(rows, correct)}
  common.log(f"{name} {mode}: targets {record['targets']}")
  return record


def _label_free(row: dict) -> dict:
  return {"output_sqnr_db": row["output_sqnr_db"], "agreement": round(row["agreement"], 4)}


def targets(rows: dict, correct: dict) -> dict:
  """The issue's three targets, where full int8 loses at least `MIN_LOSS` of top-1; with each
  top-1 figure's paired-bootstrap interval (`interval`) and the label-free figures beside it
  (output SQNR against float and top-1 agreement with float, on the evaluation images)."""
  float_top1, int8_top1 = rows["float"]["top1"], rows["full int8"]["top1"]
  if float_top1 - int8_top1 < MIN_LOSS:
    return {"applies": False, "why": f"full int8 loses {100 * (float_top1 - int8_top1):.2f} "
                                     "points (< 1)"}
  gap = float_top1 - int8_top1
  at_label = "ours max_latency=1.05"
  at = rows[at_label]
  recovered = (at["top1"] - int8_top1) / gap

  def recovered_share(top1):
    resampled_gap = top1["float"] - top1["full int8"]
    return (top1[at_label] - top1["full int8"]) / resampled_gap if resampled_gap > 0 else None

  dynamic = rows["dynamic-range"]
  reference = min(float_top1, dynamic["top1"])
  ours = {k: v for k, v in rows.items() if k.startswith("ours")}
  fast = {k: v for k, v in ours.items() if v["latency_1t"] <= SPEED_TARGET * dynamic["latency_1t"]}
  near = [k for k, v in fast.items() if v["top1"] >= reference - NEAR_TARGET]
  best_fast = max(fast, key=lambda k: fast[k]["top1"], default=None)
  best_fast_sqnr = max(fast, key=lambda k: fast[k]["output_sqnr_db"], default=None)
  size = rows["ours ratio=0.9"]["size_ratio"]
  fastest = min(ours, key=lambda k: ours[k]["latency_1t"])
  b_interval = None
  if best_fast is not None:
    b_interval = common.paired_interval(
        lambda top1: top1[best_fast] - min(top1["float"], top1["dynamic-range"]),
        {k: correct[k] for k in (best_fast, "float", "dynamic-range")})
  # 18 of a 20-image gap is 90 %, though (0.66444 - 0.64444) / 0.02222 computes to 0.8999...
  return {"applies": True,
          "a_gap_recovered_at_1.05": {
              "value": round(recovered, 4), "target": GAP_TARGET,
              "met": recovered >= GAP_TARGET - 1e-9,
              "interval": common.paired_interval(recovered_share,
                                   {k: correct[k] for k in (at_label, "float", "full int8")}),
              "label_free": {k: _label_free(rows[k])
                             for k in (at_label, "full int8", "dynamic-range")}},
          "b_near_min_float_dynamic_at_0.9x_dynamic_latency": {
              "points": near, "reference_top1": reference,
              "dynamic_latency_1t": round(dynamic["latency_1t"], 4),
              "best_top1_within_latency": fast[best_fast]["top1"] if best_fast else None,
              "best_within_latency": best_fast,
              "best_minus_reference_interval": b_interval, "met": bool(near),
              "fastest_ours": {"label": fastest, "top1": ours[fastest]["top1"],
                               "latency_1t": round(ours[fastest]["latency_1t"], 4)},
              "label_free": {k: _label_free(rows[k]) for k in dict.fromkeys(
                  [k for k in (best_fast_sqnr, "dynamic-range") if k])}},
          "c_size_at_ratio_0.9": {"value": round(size, 4), "target": SIZE_TARGET,
                                  "met": size <= SIZE_TARGET}}


def plot(record: dict, path: str) -> str:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(8, 5))
  styles = [("ours", "tab:red", "o"), ("float fallback", "tab:orange", "s"),
            ("TF debugger", "tab:purple", "D"), ("", "tab:blue", "^")]
  for label, row in record["rows"].items():
    if label == "int16x8":
      continue  # reference kernels: off the chart
    color, marker = next((c, m) for prefix, c, m in styles if label.startswith(prefix))
    ax.scatter(row["latency_1t"], 100 * row["top1"], color=color, marker=marker, s=40)
    ax.annotate(label, (row["latency_1t"], 100 * row["top1"]), fontsize=7,
                xytext=(4, 2), textcoords="offset points")
  ours = sorted((r["latency_1t"], 100 * r["top1"]) for l, r in record["rows"].items()
                if l.startswith("ours"))
  frontier, best = [], -1.0
  for x, y in ours:
    if y > best:
      frontier.append((x, y))
      best = y
  if frontier:
    ax.plot(*zip(*frontier), color="tab:red", linewidth=1, alpha=0.6, label="ours, Pareto front")
  ax.set_xlabel("XNNPACK latency, 1 thread, x full int8")
  ax.set_ylabel("top-1 % (evaluation split)")
  ax.set_title(f"{record['model']} ({record['mode'].replace('_', '-')} weights)")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8, loc="lower right")
  return common.save_figure(fig, path)


def _percent_interval(bounds) -> str:
  return f"{100 * bounds[0]:.0f} to {100 * bounds[1]:.0f} %"


def _label_free_text(figures: dict) -> str:
  return "; ".join(f"{label} {f['output_sqnr_db']} dB, {100 * f['agreement']:.2f} % agreement"
                   for label, f in figures.items())


def render_markdown(report: dict) -> str:
  lines = ["# What users could pick instead, side by side", "",
           f"`{report['command']}` at git {report['git_revision']}, {report['date']}; "
           f"{report['machine']}. Top-1 on the canonical evaluation split; latency is XNNPACK "
           "(LiteRT's default delegate), batch 1, median of round-robin runs, as a multiple of "
           "full int8 in the same run; size as a multiple of the full-int8 file. Ours: "
           "`analysis.quantize(...)` with `fallback='auto'` unless said. Label-free fidelity on "
           "the same evaluation images: how often top-1 agrees with the float model's, and the "
           "output SQNR against it (dB); the calibration column is what the ladder measured when "
           "it chose (its verification samples).", ""]
  for record in report["configs"]:
    lines += [f"## {record['model']}, {record['mode'].replace('_', '-')} weights", "",
              f"{record['evaluation_images']} evaluation images; analysis "
              f"{record['analysis_seconds']} s, latency profile "
              f"{record['cost_profile_seconds']} s.", "",
              "| model | top-1 % | agrees with float % | output SQNR dB | latency 1 thread | "
              "latency 2 threads | size | budget achieved (predicted) | output SQNR dB "
              "(calibration) | float / dynamic nodes |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for label, row in record["rows"].items():
      budget = record["budgets"].get(label, {})
      lines.append(
          f"| {label} | {100 * row['top1']:.2f} | {100 * row['agreement']:.2f} | "
          f"{'' if row['output_sqnr_db'] is None else row['output_sqnr_db']} | "
          f"{row['latency_1t']:.3f} | "
          f"{row.get('latency_2t', float('nan')):.3f} | {row['size_ratio']:.3f} | "
          f"{budget.get('achieved', '')} | {budget.get('output_sqnr_db', '')} | "
          f"{budget.get('float_nodes', '')} / {budget.get('dynamic_nodes', '')} |")
    lines += ["", f"![pareto](pareto_{record['model']}_{record['mode']}.png)", ""]
    t = record["targets"]
    if not t["applies"]:
      lines += [f"Targets do not apply: {t['why']}.", ""]
      continue
    a, b, c = (t["a_gap_recovered_at_1.05"], t["b_near_min_float_dynamic_at_0.9x_dynamic_latency"],
               t["c_size_at_ratio_0.9"])
    lines += [f"- (a) gap recovered at max_latency=1.05: {100 * a['value']:.1f} % (target 90 %): "
              f"{'PASS' if a['met'] else 'FAIL'}",
              f"  - images alone move it within {_percent_interval(a['interval'])} (95 %, paired "
              f"bootstrap); label-free: {_label_free_text(a['label_free'])}",
              f"- (b) within 0.2 points of {100 * b['reference_top1']:.2f} % at <= 0.9 x "
              f"{b['dynamic_latency_1t']:.3f}: {', '.join(b['points']) or 'none'} (best top-1 "
              f"within that latency: {100 * (b['best_top1_within_latency'] or 0):.2f} %; our "
              f"fastest, {b['fastest_ours']['label']}: {b['fastest_ours']['latency_1t']:.3f} x "
              f"int8, {100 * b['fastest_ours']['top1']:.2f} %): {'PASS' if b['met'] else 'FAIL'}"]
    if b["best_within_latency"]:
      low, high = b["best_minus_reference_interval"]
      lines.append(f"  - {b['best_within_latency']} minus {100 * b['reference_top1']:.2f} %: "
                   f"{100 * low:+.2f} to {100 * high:+.2f} points (95 %, paired bootstrap; the "
                   f"target is >= -0.20); label-free, the best of ours within that latency and "
                   f"dynamic-range: {_label_free_text(b['label_free'])}")
    lines += [f"- (c) size at ratio 0.9: {c['value']:.3f} x int8 (target 1.1): "
              f"{'PASS' if c['met'] else 'FAIL'}", ""]
  return "\n".join(lines) + "\n"


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Too many command-line arguments: {' '.join(argv[1:])}.")
  common.setup_tensorflow()
  shared = common.shared_dir(_SHARED.value)
  threads = [int(t) for t in _THREADS.value]
  report = dict(common.run_record("pareto.py"), configs=[])
  for name in _MODELS.value:
    for mode in _MODES.value:
      record = run_config(shared, name, mode, threads)
      report["configs"].append(record)
      plot(record, os.path.join(_OUT.value, f"pareto_{name}_{mode}.png"))
      # Written after every config: an interrupted run keeps what it measured.
      common.write_json_and_markdown(_OUT.value, "pareto", report, render_markdown(report))
  print(render_markdown(report))
  print(f"wrote {_OUT.value}/pareto.md, pareto.json and plots\n{report['command']}")
  return 0


if __name__ == "__main__":
  app.run(main)
