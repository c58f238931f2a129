r"""The best accuracy any precision assignment reaches within a latency: the exact frontier, measured.

Target (b) of the precision-ladder issue asks for a point within 0.2 top-1 points of
min(float, dynamic-range) at no more than 0.9x dynamic-range's latency. Where our ladder has none
(`results/pareto.md`), this script shows whether any assignment has one, as `budget_ceiling.py`
did for the float budgets.

For a model whose graph is a chain (every op reads the one before it: Tiny Darknet), the cost and
noise models the ladder selects by are sums of terms that each depend on one op's precision and its
reader's domain, and the library's dynamic program (`tfq_mixed.exact.frontier`) gives their exact
Pareto frontier of (predicted latency, predicted output noise) over every assignment the ladder
allows: here each compute op static int8, dynamic_int8 or float, and every op without MACs
(LeakyReLU, pooling) in either domain on its own. The latency walk holds it (`Walk.exact`) and
weighs its best point at every 5 % of full int8's latency (`Walk.exact_candidates`); this script
takes that frontier and builds all of its points up to `--max_predicted`
as real `.tflite` files, evaluates them with labels on the canonical evaluation split and times
each round-robin beside full int8 and TFLite's dynamic-range model, three interpreters of each
(XNNPACK, 1 thread; `INSTANCES`), so the target's condition, at most 0.9x dynamic-range's latency,
is read side by side. The best top-1 within the target's latency is a ceiling for every method
that selects by these cost and noise models, ours included; it uses the labels to choose, so it is
a reference, not a method. The walk prices each point with the whole-model `CostModel.latency_ms`
and `NoiseModel.left`; tests/exact_test.py checks the program's figures against those and its
frontier against every assignment enumerated on small chains.

Usage:
  python benchmarks/latency_ceiling.py [--models=tiny_darknet] [--modes=per_tensor]
      [--max_predicted=1.0]
"""

from __future__ import annotations

import math
import os
import sys

import numpy as np
from absl import app
from absl import flags

# Run as a script from a checkout: benchmark this checkout's tfq_mixed, not an installed copy.
sys.path[:0] = [os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                os.path.dirname(os.path.abspath(__file__))]
import common  # pylint: disable=g-import-not-at-top,wrong-import-position

SPEED_TARGET, NEAR_TARGET = 0.9, 0.002
"""Target (b): within 0.2 points of min(float, dynamic-range), at <= 0.9x its latency."""
OURS_BUDGETS = (0.8, 0.85, 0.9)
"""`analysis.quantize(max_latency=...)` points timed and evaluated beside the frontier."""
INSTANCES = 3
"""Interpreters per model in each round-robin, their medians' median taken: one instance of a
model measured up to 15 % slower than another of the same bytes in a round-robin of 130 (a side
measurement), three of each agreed within a few %."""

_SHARED = flags.DEFINE_string("shared", None, "The shared folder (default ../shared).")
_MODELS = flags.DEFINE_list("models", ["tiny_darknet"], "Zoo models (chain graphs).")
_MODES = flags.DEFINE_list("modes", ["per_tensor"], "Weight modes.")
_MAX_PREDICTED = flags.DEFINE_float(
    "max_predicted", 1.0, "Frontier points built and measured: predicted latency up to this "
    "multiple of full int8's.")
_RUNS = flags.DEFINE_integer("runs", 30, "Timed round-robin runs.")
_OUT = flags.DEFINE_string("out", os.path.join(common.REPO_ROOT, "benchmarks", "results"),
                           "Results folder.")


def run_config(shared: str, name: str, mode: str) -> dict:
  import tfq_mixed  # pylint: disable=g-import-not-at-top
  from tfq_mixed import costs as costs_lib  # pylint: disable=g-import-not-at-top
  from tfq_mixed import exact  # pylint: disable=g-import-not-at-top
  from tfq_mixed import metrics  # pylint: disable=g-import-not-at-top
  from tfq_mixed.deploy import latency  # pylint: disable=g-import-not-at-top
  from tfq_mixed.evaluation import scores  # pylint: disable=g-import-not-at-top
  from tfq_mixed.qtyping import Precision  # pylint: disable=g-import-not-at-top
  model = common.load_model(shared, name)
  calibration, _ = common.load_split(shared, name, "calibration")
  eval_x, eval_y = common.load_split(shared, name, "evaluation")
  common.log(f"{name} {mode}: {len(calibration)} calibration, {len(eval_x)} evaluation images")
  analysis = tfq_mixed.analyze(model, calibration, per_channel=mode == "per_channel")
  if exact.chain_order(analysis.graph) is None:
    sys.exit(f"error: {name}'s graph is not a chain (an op reads another than the one before "
             "it): the exact frontier needs one. Pass a chain model, e.g. --models=tiny_darknet.")
  reference_ms = analysis.costs(1).latency_ms(analysis.graph, {}, set())
  full_noise = analysis.noise_model.full_int8()
  # The frontier the latency walk weighs its exact candidates from (`Walk.exact`).
  points = analysis.walk(costs_lib.CostKind.LATENCY).exact
  common.log(f"exact frontier: {len(points)} points, predicted {points[0].cost / reference_ms:.3f}"
             f" to {points[-1].cost / reference_ms:.3f} x int8")
  names = {n.index: n.name for n in analysis.nodes}
  compute = {n.index for n in analysis.nodes if n.is_compute}
  with common.quiet_stdout():
    models = {"float": analysis.float_model, "dynamic-range": common.dynamic_range_convert(model),
              "full int8": analysis.int8_model}
  rows = {label: {} for label in models}
  shown = [p for p in points if p.cost <= _MAX_PREDICTED.value * reference_ms]
  for k, point in enumerate(shown):
    label = f"frontier {k}"
    assignment = {n.index: point.precisions.get(n.index, Precision.INT8) for n in analysis.nodes}
    path = list(assignment.values())
    models[label] = analysis.build(
        [names[n] for n, p in assignment.items() if p != Precision.INT8],
        [names[n] for n, p in assignment.items() if p == Precision.DYNAMIC_INT8])
    letters = "".join({Precision.INT8: "i", Precision.DYNAMIC_INT8: "d",
                       Precision.FLOAT: "f"}[p] for p in path)
    rows[label] = {
        "assignment": letters, "predicted_latency": round(point.cost / reference_ms, 4),
        "noise_left": round(point.noise_left / full_noise, 4),
        "compute_nodes": {p.value: sum(1 for n, q in assignment.items()
                                       if q == p and n in compute) for p in Precision},
        "float_ops_without_macs": sum(1 for n, q in assignment.items()
                                      if q != Precision.INT8 and n not in compute)}
    if k % 10 == 0:
      common.log(f"built {k + 1} of {len(shown)}")
  for budget in OURS_BUDGETS:  # ours, side by side in the same timing
    try:
      models[f"ours max_latency={budget:g}"] = analysis.quantize(max_latency=budget).tflite
    except tfq_mixed.InvalidArgumentError as e:  # below the cheapest model this analysis makes
      common.log(f"ours max_latency={budget:g}: {e}")
      continue
    rows[f"ours max_latency={budget:g}"] = {}
  int8_calibration_db = analysis.output_sqnr_db(models["full int8"])
  reference = scores.predict(models["float"], eval_x)
  correct = {}
  known = eval_y >= 0
  for label, tflite in models.items():
    outputs = reference if label == "float" else scores.predict(tflite, eval_x)
    correct[label] = np.argmax(outputs, axis=-1)[known] == eval_y[known]
    rows[label].update(top1=scores.top1(outputs, eval_y), size_bytes=len(tflite),
                       output_sqnr_db=(None if label == "float" else
                                       round(metrics.sqnr_db(reference, outputs), 2)),
                       calibration_sqnr_db=(None if label in ("float", "dynamic-range") else
                                            round(analysis.output_sqnr_db(tflite), 2)))
    if "noise_left" in rows[label]:
      rows[label]["predicted_calibration_sqnr_db"] = round(
          int8_calibration_db - 10 * math.log10(max(rows[label]["noise_left"], 1e-12)), 2)
  common.log(f"evaluated {len(models)} models; timing each beside full int8 and dynamic-range")
  references = {k: models[k] for k in ("full int8", "dynamic-range")}
  dynamic_ratios = []
  for label, tflite in models.items():
    if label in references:
      continue
    group = {(name, i): m for i in range(INSTANCES)
             for name, m in dict(references, **{label: tflite}).items()}
    timings = latency.compare({f"{name} #{i}": m for (name, i), m in group.items()}, threads=1,
                              runs=_RUNS.value, warmup=3, inputs=[calibration[:1]])
    medians = dict(zip(group, (t.median_ms for t in timings)))
    int8_ms, dynamic_ms, ms = (float(np.median([medians[name, i] for i in range(INSTANCES)]))
                               for name in ("full int8", "dynamic-range", label))
    rows[label].update(latency_1t=round(ms / int8_ms, 4), vs_dynamic=round(ms / dynamic_ms, 4))
    dynamic_ratios.append(dynamic_ms / int8_ms)
  rows["full int8"].update(latency_1t=1.0)
  rows["dynamic-range"].update(
      latency_1t=round(float(np.median(dynamic_ratios)), 4),
      latency_1t_range=[round(float(min(dynamic_ratios)), 4), round(float(max(dynamic_ratios)), 4)])
  int8_bytes = len(models["full int8"])
  for row in rows.values():
    row["size_ratio"] = round(row["size_bytes"] / int8_bytes, 4)
  dynamic = rows["dynamic-range"]
  target_top1 = min(rows["float"]["top1"], dynamic["top1"]) - NEAR_TARGET
  limit = SPEED_TARGET * dynamic["latency_1t"]  # the median group's, for the plot
  frontier_rows = {k: v for k, v in rows.items() if k.startswith("frontier")}
  within = {k: v for k, v in frontier_rows.items() if v["vs_dynamic"] <= SPEED_TARGET}
  best = max(within, key=lambda k: (within[k]["top1"], -within[k]["latency_1t"]), default=None)
  reaching = {k: v for k, v in frontier_rows.items() if v["top1"] >= target_top1 - 1e-9}
  first = min(reaching, key=lambda k: reaching[k]["latency_1t"], default=None)
  predicted = [v["latency_1t"] / v["predicted_latency"] for v in frontier_rows.values()]
  summary = {
      "latency_limit": round(limit, 4), "target_top1": round(target_top1, 4),
      "points_within_limit": len(within), "best_within_limit": best,
      "best_top1_within_limit": within[best]["top1"] if best else None,
      "best_minus_reference_interval": None if best is None else common.paired_interval(
          lambda top1: top1[best] - min(top1["float"], top1["dynamic-range"]),
          {k: correct[k] for k in (best, "float", "dynamic-range")}),
      "best_sqnr_within_limit_db": max((v["output_sqnr_db"] for v in within.values()),
                                       default=None),
      "fastest_reaching_target": first,
      "fastest_reaching_target_latency": reaching[first]["latency_1t"] if first else None,
      "reachable": bool(within) and within[best]["top1"] >= target_top1 - 1e-9,
      "measured_over_predicted_latency": [round(float(np.min(predicted)), 3),
                                          round(float(np.median(predicted)), 3),
                                          round(float(np.max(predicted)), 3)]}
  common.log(f"{name} {mode}: {summary}")
  return {"model": name, "mode": mode, "evaluation_images": int(len(eval_x)),
          "frontier_points": len(points), "built": len(shown),
          "int8_calibration_sqnr_db": round(int8_calibration_db, 2), "rows": rows,
          "summary": summary}


def plot(record: dict, path: str) -> str:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(8, 5))
  rows = record["rows"]
  points = [(r["latency_1t"], 100 * r["top1"]) for k, r in rows.items() if k.startswith("frontier")]
  ax.scatter(*zip(*points), color="tab:red", s=14, label="exact frontier of the cost and noise "
             "models, each built and measured")
  ax.scatter([], [], color="black", facecolors="none", label="ours, max_latency=...")
  shown = [k for k in rows if k.startswith("ours") or k in ("dynamic-range", "full int8")]
  for label in shown:
    color, marker = ("black", "o") if label.startswith("ours") else ("tab:blue", "^")
    ax.scatter(rows[label]["latency_1t"], 100 * rows[label]["top1"], color=color, marker=marker,
               s=30 if label.startswith("ours") else 40, facecolors="none" if color == "black"
               else color)
    ax.annotate(label, (rows[label]["latency_1t"], 100 * rows[label]["top1"]), fontsize=7,
                xytext=(4, 2), textcoords="offset points")
  s = record["summary"]
  ax.axvline(s["latency_limit"], color="gray", linestyle="--", linewidth=1,
             label="0.9 x dynamic-range's latency (median)")
  ax.axhline(100 * s["target_top1"], color="gray", linestyle=":", linewidth=1,
             label="min(float, dynamic-range) - 0.2 points")
  ax.axhline(100 * rows["float"]["top1"], color="tab:blue", linewidth=0.8, alpha=0.5,
             label=f"float ({rows['float']['latency_1t']:.2f}x, off the chart)")
  ax.set_xlabel("XNNPACK latency, 1 thread, x full int8 (measured)")
  ax.set_ylabel("top-1 % (evaluation split)")
  ax.set_title(f"{record['model']} ({record['mode'].replace('_', '-')} weights): target (b)")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8, loc="lower right")
  return common.save_figure(fig, path)


def render_markdown(report: dict) -> str:
  lines = ["# Target (b) ceiling: the exact latency/noise frontier, built and measured", "",
           f"`{report['command']}` at git {report['git_revision']}, {report['date']}; "
           f"{report['machine']}. Every assignment on the exact frontier of the ladder's cost and "
           "noise models (a dynamic program over the chain: each compute op static int8, "
           "dynamic_int8 or float, each op without MACs in either domain), built, evaluated "
           "with labels on the canonical evaluation split and timed round-robin beside full "
           "int8 and dynamic-range, one model at a time (XNNPACK, 1 thread; latency as a "
           "multiple of full int8's, and of dynamic-range's, in the same round-robin). "
           "The best top-1 within 0.9x dynamic-range's latency is a ceiling for every method "
           "that selects by these models; it uses labels to choose: a reference, not a method. "
           "Assignment letters, in op order: i static int8, d dynamic_int8, f float.", ""]
  for record in report["configs"]:
    s = record["summary"]
    rows = record["rows"]
    lines += [f"## {record['model']}, {record['mode'].replace('_', '-')} weights", "",
              f"- {record['frontier_points']} frontier points, {record['built']} built (predicted "
              f"latency up to {report['max_predicted']:g}x int8); {record['evaluation_images']} "
              "evaluation images.",
              f"- Target: top-1 >= {100 * s['target_top1']:.2f} % at <= 0.9x dynamic-range's "
              f"latency, timed side by side (dynamic-range measured "
              f"{rows['dynamic-range']['latency_1t']:.3f}x int8, median over the round-robins, "
              f"{rows['dynamic-range']['latency_1t_range'][0]:.3f}-"
              f"{rows['dynamic-range']['latency_1t_range'][1]:.3f}x).",
              f"- Frontier points measured within that latency: {s['points_within_limit']}; the "
              f"best top-1 among them: "
              + (f"{100 * s['best_top1_within_limit']:.2f} % ({s['best_within_limit']}, "
                 f"{rows[s['best_within_limit']]['latency_1t']:.3f}x int8, "
                 f"{rows[s['best_within_limit']]['vs_dynamic']:.3f}x dynamic-range; minus the "
                 "reference: "
                 f"{100 * s['best_minus_reference_interval'][0]:+.2f} to "
                 f"{100 * s['best_minus_reference_interval'][1]:+.2f} points, 95 % paired "
                 "bootstrap)" if s["best_within_limit"] else "none")
              + f"; the best output SQNR among them: {s['best_sqnr_within_limit_db']} dB against "
              f"dynamic-range's {rows['dynamic-range']['output_sqnr_db']} dB.",
              f"- The fastest frontier point reaching the target's top-1: "
              + (f"{s['fastest_reaching_target']}, {s['fastest_reaching_target_latency']:.3f}x "
                 "int8." if s["fastest_reaching_target"] else "none."),
              "- Ours, timed the same way: " + "; ".join(
                  f"{k}: {rows[k]['latency_1t']:.3f}x ({rows[k]['vs_dynamic']:.3f}x "
                  f"dynamic-range), {100 * rows[k]['top1']:.2f} %, "
                  f"{rows[k]['output_sqnr_db']} dB" for k in rows if k.startswith("ours")) + ".",
              f"- Reachable on this frontier: **{'yes' if s['reachable'] else 'no'}**. Measured / "
              f"predicted latency (min, median, max): {s['measured_over_predicted_latency']}.",
              "", f"![ceiling](latency_ceiling_{record['model']}_{record['mode']}.png)", "",
              "| model | assignment | compute ops i/d/f | float ops without MACs | latency "
              "predicted | latency measured | x dynamic-range | size | noise left (x int8) | "
              "calibration SQNR dB predicted / measured | evaluation SQNR dB | top-1 % |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for label, row in rows.items():
      nodes = row.get("compute_nodes")
      lines.append(
          f"| {label} | {row.get('assignment', '')} | "
          f"{'' if not nodes else '/'.join(str(nodes[p]) for p in ('int8', 'dynamic_int8', 'float'))}"
          f" | {row.get('float_ops_without_macs', '')} | {row.get('predicted_latency', '')} | "
          f"{row['latency_1t']:.3f} | {row.get('vs_dynamic', '')} | {row['size_ratio']:.3f} | "
          f"{row.get('noise_left', '')} | "
          f"{row.get('predicted_calibration_sqnr_db', '')} / "
          f"{'' if row['calibration_sqnr_db'] is None else row['calibration_sqnr_db']} | "
          f"{'' if row['output_sqnr_db'] is None else row['output_sqnr_db']} | "
          f"{100 * row['top1']:.2f} |")
    lines.append("")
  return "\n".join(lines) + "\n"


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Too many command-line arguments: {' '.join(argv[1:])}.")
  common.setup_tensorflow()
  shared = common.shared_dir(_SHARED.value)
  report = dict(common.run_record("latency_ceiling.py"), max_predicted=_MAX_PREDICTED.value,
                configs=[])
  for name in _MODELS.value:
    for mode in _MODES.value:
      record = run_config(shared, name, mode)
      report["configs"].append(record)
      plot(record, os.path.join(_OUT.value, f"latency_ceiling_{name}_{mode}.png"))
      common.write_json_and_markdown(_OUT.value, "latency_ceiling", report,
                                     render_markdown(report))
  print(render_markdown(report))
  print(f"wrote {_OUT.value}/latency_ceiling.md, latency_ceiling.json and plots\n"
        f"{report['command']}")
  return 0


if __name__ == "__main__":
  app.run(main)
