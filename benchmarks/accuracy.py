r"""Accuracy of mixed int8/float models per ranker and float budget, on real pretrained zoo models.

For each model and weight mode (per-channel / per-tensor) of `CONFIGS`: one `tfq_mixed.analyze` on the
canonical calibration split (`common`), then for every ranker and every float budget (share of MACs
kept float, `1 - ratio`) one `analysis.quantize`, evaluated on the canonical evaluation split.

Rankers, all walked by the same selector over the same MAC budget:
* tfq_mixed's own (`tfq_mixed.Ranker`): quantune (our default), quantune_paper (Algorithm 2 as
  published), weight_sqnr, in_order, random (seeds 0, 1, 2: mean and spread), and the paper's Table 8
  single-metric ablations activation_sqnr, weight_sqnr_delta, mse;
* tflite_debugger: nodes by RMSE / scale from `tf.lite.experimental.QuantizationDebugger`;
* top1_oracle: the paper's "Top-1 accuracy based order", measured with labels on the calibration split
  (never on evaluation images). Both in `reference_rankers.py`.

Reported per model/mode/budget: top-1, top-1 agreement with the float model, share of the float-to-int8
gap recovered `(acc_mixed - acc_int8) / (acc_float - acc_int8)`, model size, QUANTIZE/DEQUANTIZE op
count, single-thread XNNPACK latency relative to full int8 timed in the same round-robin run, and each
ranker's sensitivity-list time (the paper's Table 3). Results go to `--out` as `accuracy.md`,
`accuracy.json` and PNG plots (`accuracy_quick.*` with `--quick`), rewritten after every model/mode so
an interrupted run leaves the finished ones. Evaluations are cached by the model's bytes in
`--cache_dir` (git-ignored): a rerun only evaluates what changed.

Usage:
  python benchmarks/accuracy.py              # all models, full evaluation splits (about an hour)
  python benchmarks/accuracy.py --quick      # tiny_darknet per-tensor, 300 images (a few minutes)
"""

from __future__ import annotations

import datetime
import math
import os
import platform
import shlex
import sys
import time

from absl import app
from absl import flags
import numpy as np

# Run as a script from a checkout: benchmark this checkout's tfq_mixed, not an installed copy.
sys.path[:0] = [os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                os.path.dirname(os.path.abspath(__file__))]
import accuracy_report  # pylint: disable=g-import-not-at-top,wrong-import-position
import common  # pylint: disable=g-import-not-at-top,wrong-import-position

CONFIGS = common.ACCURACY_CONFIGS
QUICK_CONFIGS = (("tiny_darknet", "per_tensor"),)
QUICK_EVAL_IMAGES = 300
BUDGETS = common.ACCURACY_BUDGETS
DEFAULT_RANKER = "quantune"
BUILTIN_RANKERS = common.LABEL_FREE_RANKERS
REFERENCE_RANKERS = ("tflite_debugger", "top1_oracle")
RANKERS = BUILTIN_RANKERS[:5] + ("tflite_debugger",) + BUILTIN_RANKERS[5:] + ("top1_oracle",)
RANDOM_SEEDS = (0, 1, 2)
LATENCY_RANKERS = ("quantune", "quantune_paper")
MODES = ("per_channel", "per_tensor")

_QUICK = flags.DEFINE_bool("quick", False, f"Smoke run: {QUICK_CONFIGS[0][0]} "
                           f"{QUICK_CONFIGS[0][1]}, the first {QUICK_EVAL_IMAGES} evaluation "
                           "images; writes accuracy_quick.*.")
_MODELS = flags.DEFINE_list("models", None, f"Zoo models (default: those of CONFIGS). One of "
                            f"{', '.join(common.MODELS)}.")
_MODES = flags.DEFINE_list("modes", None, "Weight modes: per_channel, per_tensor (default: the "
                           "modes CONFIGS lists for each model; given, every model runs each).")
_RANKERS = flags.DEFINE_list("rankers", list(RANKERS), "Rankers to compare.")
_BUDGETS = flags.DEFINE_list("budgets", [f"{b:g}" for b in BUDGETS],
                             "Float budgets: share of MACs kept float (1 - ratio).")
_SHARED = flags.DEFINE_string("shared", common.DEFAULT_SHARED,
                              "Folder with zoo/ and data/ (default: ../shared beside the repo).")
_OUT = flags.DEFINE_string("out", os.path.join(common.REPO_ROOT, "benchmarks", "results"),
                           "Where the .md, .json and .png results are written.")
_CACHE_DIR = flags.DEFINE_string(
    "cache_dir", os.path.join(common.REPO_ROOT, "benchmarks", ".cache", "accuracy"),
    "Evaluation cache (keyed by model bytes and image set); empty to disable.")
_EVAL_IMAGES = flags.DEFINE_integer("eval_images", None, "Use only the first N evaluation images "
                                    "(default: the whole split; --quick: 300).", lower_bound=1)
_LATENCY_RUNS = flags.DEFINE_integer("latency_runs", None, "Timed invokes per model (default 30; "
                                     "--quick 10).", lower_bound=1)


def _configs() -> list[tuple[str, str]]:
  if _QUICK.value and not _MODELS.value and not _MODES.value:
    return list(QUICK_CONFIGS)
  models = _MODELS.value or list(dict.fromkeys(m for m, _ in CONFIGS))
  for m in models:
    if m not in common.MODELS:
      raise app.UsageError(f"Unknown model {m!r} in --models. Expected some of: "
                           f"{', '.join(common.MODELS)}.")
  for mode in _MODES.value or ():
    if mode not in MODES:
      raise app.UsageError(f"Unknown mode {mode!r} in --modes. Expected some of: {', '.join(MODES)}.")
  if _MODES.value:
    return [(m, mode) for m in models for mode in _MODES.value]
  pairs = [(m, mode) for m, mode in CONFIGS if m in models]
  return pairs + [(m, "per_channel") for m in models if m not in {p[0] for p in pairs}]


def _budgets() -> list[float]:
  try:
    budgets = sorted({float(b) for b in _BUDGETS.value})
  except ValueError:
    raise app.UsageError(f"--budgets must be numbers in [0, 1]. Received: {_BUDGETS.value}.") from None
  if not budgets or not all(0.0 <= b <= 1.0 for b in budgets):
    raise app.UsageError(f"--budgets must be numbers in [0, 1]. Received: {_BUDGETS.value}.")
  return budgets


def _rankers() -> list[str]:
  unknown = [r for r in _RANKERS.value if r not in RANKERS]
  if unknown:
    raise app.UsageError(f"Unknown ranker {unknown[0]!r} in --rankers. Expected some of: "
                         f"{', '.join(RANKERS)}.")
  return [r for r in RANKERS if r in _RANKERS.value]


def _qdq_ops(tflite: bytes) -> int:
  from tfq_mixed import _tflite_private  # pylint: disable=g-import-not-at-top
  interpreter = _tflite_private.make_interpreter(tflite)
  return sum(op["op_name"] in ("QUANTIZE", "DEQUANTIZE") for op in _tflite_private.ops(interpreter))


def _gap(accuracy: float, float_accuracy: float, int8_accuracy: float):
  gap = float_accuracy - int8_accuracy
  return None if gap <= 0 else (accuracy - int8_accuracy) / gap


def run_config(shared: str, model_name: str, mode: str, rankers: list[str], budgets: list[float],
               eval_images, latency_runs: int, cache_dir) -> dict:
  """All rankers x budgets on one model and weight mode; returns the JSON-ready record."""
  import tfq_mixed  # pylint: disable=g-import-not-at-top
  from tfq_mixed.deploy import latency  # pylint: disable=g-import-not-at-top
  from tfq_mixed.rankers import quantune  # pylint: disable=g-import-not-at-top
  import reference_rankers  # pylint: disable=g-import-not-at-top

  per_channel = mode == "per_channel"
  model = common.load_model(shared, model_name)
  calibration_x, calibration_y = common.load_split(shared, model_name, "calibration")
  eval_x, eval_y = common.load_split(shared, model_name, "evaluation", eval_images)
  common.log(f"{model_name} {mode}: {len(calibration_x)} calibration, {len(eval_x)} evaluation images")
  start = time.perf_counter()
  analysis = tfq_mixed.analyze(model, calibration_x, per_channel=per_channel)
  analysis_seconds = time.perf_counter() - start
  passes_seconds = analysis_seconds - analysis.calibration.seconds
  common.log(f"analysis {analysis_seconds:.1f} s (calibration {analysis.calibration.seconds:.1f} s)")
  float_tflite = latency.float_tflite(model)
  evaluate = reference_rankers.Evaluator(eval_x, eval_y, f"{model_name}/evaluation/{len(eval_x)}",
                                         cache_dir)
  float_eval, int8_eval = evaluate(float_tflite), evaluate(analysis.int8_model)
  float_accuracy, int8_accuracy = float_eval.top1(eval_y), int8_eval.top1(eval_y)
  common.log(f"float {float_accuracy:.4f}, int8 {int8_accuracy:.4f}")

  # Sensitivity lists (the paper's Table 3): label-free rankers reuse the analysis passes.
  orders, times = {}, {}
  for name in rankers:
    if name in BUILTIN_RANKERS:
      seeds = RANDOM_SEEDS if name == "random" else (0,)
      start = time.perf_counter()
      orders[name] = {seed: name for seed in seeds}
      for seed in seeds:
        analysis.sensitivity(name, random_state=seed)
      rank_seconds = (time.perf_counter() - start) / len(seeds)
      times[name] = {"list_seconds": passes_seconds + rank_seconds, "rank_seconds": rank_seconds,
                     "includes": "the two analysis passes (calibration excluded) + ranking"}
  references = {}
  if "tflite_debugger" in rankers:
    common.log("TFLite QuantizationDebugger ...")
    ref = reference_rankers.tflite_debugger_ranking(model, calibration_x, analysis)
    references["tflite_debugger"] = ref
    orders["tflite_debugger"] = {0: ref.ranking}
    times["tflite_debugger"] = {"list_seconds": ref.seconds, "rank_seconds": None,
                                "includes": "export + the debugger's own calibration + "
                                            "NumericVerify model + per-sample run", **ref.detail}
  if "top1_oracle" in rankers:
    common.log("top-1 oracle on the calibration split ...")
    calibration_evaluate = reference_rankers.Evaluator(
        calibration_x, calibration_y, f"{model_name}/calibration/{len(calibration_x)}", cache_dir)
    ref = reference_rankers.top1_oracle_ranking(analysis, calibration_evaluate, progress=common.log)
    references["top1_oracle"] = ref
    orders["top1_oracle"] = {0: ref.ranking}
    times["top1_oracle"] = {"list_seconds": ref.seconds, "rank_seconds": None,
                            "includes": "one quantize + one labelled evaluation per compute node"}
  common.log("sensitivity lists: " + ", ".join(f"{k} {v['list_seconds']:.2f} s" for k, v in times.items()))

  rows, latency_models = [], {"int8": analysis.int8_model, "float": float_tflite}
  # Per image: the share of the target budgets (0.02-0.20) at which each ranker's model is right,
  # for the paired standard error of the differences between rankers' mean top-1.
  mean_budgets = [b for b in budgets if any(abs(b - t) < 1e-9 for t in accuracy_report.TARGET_BUDGETS)]
  correct = {}
  for name in rankers:
    for budget in budgets:
      runs = []
      for seed, order in orders[name].items():
        # The rankers' comparison: float nodes chosen by each order (fallback 'float').
        result = analysis.quantize(1.0 - budget, order if isinstance(order, list) else order,
                                   random_state=seed, fallback="float")
        evaluation = evaluate(result.tflite)
        accuracy = evaluation.top1(eval_y)
        if budget in mean_budgets:
          correct[name] = correct.get(name, 0.0) + (evaluation.predictions == eval_y) / (
              len(mean_budgets) * len(orders[name]))
        runs.append({"seed": seed, "accuracy": accuracy,
                     "agreement": evaluation.agreement(float_eval),
                     "float_mac_share": 1.0 - result.int8_mac_ratio,
                     "float_nodes": len(result.config.float_nodes),
                     "size_bytes": len(result.tflite), "qdq_ops": _qdq_ops(result.tflite)})
        if name in LATENCY_RANKERS and budget > 0:
          latency_models[f"{name}@{budget:g}"] = result.tflite
      accuracies = [r["accuracy"] for r in runs]
      row = {"ranker": name, "budget": budget,
             **{k: float(np.mean([r[k] for r in runs])) for k in
                ("accuracy", "agreement", "float_mac_share", "float_nodes", "size_bytes",
                 "qdq_ops")}}
      row["gap_recovered"] = _gap(row["accuracy"], float_accuracy, int8_accuracy)
      if len(runs) > 1:
        row.update(accuracy_min=min(accuracies), accuracy_max=max(accuracies),
                   accuracy_std=float(np.std(accuracies)), runs=runs)
      rows.append(row)
    common.log(f"{name}: " + " ".join(f"{r['budget']:g}:{r['accuracy']:.4f}" for r in rows
                                 if r["ranker"] == name))
  common.log(f"evaluations: {evaluate.evaluated} run, {evaluate.cached} from the cache")
  paired = {}
  if DEFAULT_RANKER in correct:
    for name, other in correct.items():
      difference = correct[DEFAULT_RANKER] - other
      paired[name] = {"difference": float(difference.mean()),
                      "standard_error": float(difference.std(ddof=1) / math.sqrt(len(difference)))}

  common.log(f"latency: {len(latency_models)} models, XNNPACK 1 thread, {latency_runs} runs ...")
  latencies = latency.compare(latency_models, threads=1, runs=latency_runs, warmup=3,
                              inputs=[eval_x[:1]])
  base = latencies[0].median_ms
  latency_table = {l.name: {"median_ms": l.median_ms, "ratio_to_int8": l.median_ms / base}
                   for l in latencies}
  for row in rows:
    timed = latency_table.get(f"{row['ranker']}@{row['budget']:g}")
    if row["budget"] == 0:
      timed = latency_table["int8"]
    row["latency_ratio_to_int8"] = timed["ratio_to_int8"] if timed else None

  # Per-node view (the paper's Fig. 6): our metrics along the network beside the references'.
  scores = quantune.node_scores(analysis.layers)
  paper_order = analysis.sensitivity("quantune_paper")
  paper_rank = {}
  for position, layer_name in enumerate(paper_order):
    node = next((l.node for l in analysis.layers if l.name == layer_name), None)
    if node is not None and node not in paper_rank:
      paper_rank[node] = position
  by_node = {}
  for layer in analysis.layers:
    if layer.node is not None:
      by_node.setdefault(layer.node, []).append(layer)
  nodes = []
  for node in analysis.nodes:
    if not node.is_compute:
      continue
    layers = by_node.get(node.index, [])

    def first(field, layers=layers):
      values = [getattr(l, field) for l in layers if not math.isnan(getattr(l, field))]
      return values[-1] if values else None
    oracle = references.get("top1_oracle")
    debugger = references.get("tflite_debugger")
    nodes.append({
        "index": node.index, "op_type": node.op_type, "macs": node.macs,
        "layers": list(node.layers),
        "activation_sqnr_db": first("activation_sqnr_db"),
        "fused_weight_sqnr_db": first("fused_weight_sqnr_db"),
        "channel_weight_sqnr_db": first("channel_weight_sqnr_db"),
        "op_sqnr_db": first("op_sqnr_db"),
        "output_noise_share": first("output_noise_share"),
        "quantune_score": scores[node.index][1] if node.index in scores else None,
        "quantune_paper_rank": paper_rank.get(node.index),
        "oracle_top1_change": oracle.node_scores.get(node.index) if oracle else None,
        "oracle_cross_entropy_drop": (oracle.detail["cross_entropy_drop"].get(node.index)
                                      if oracle else None),
        "debugger_rmse_per_scale": debugger.node_scores.get(node.index) if debugger else None,
    })
  return {
      "model": model_name, "mode": mode, "calibration_images": int(len(calibration_x)),
      "evaluation_images": int(len(eval_x)), "float_accuracy": float_accuracy,
      "int8_accuracy": int8_accuracy, "float_size_bytes": len(float_tflite),
      "int8_size_bytes": len(analysis.int8_model), "int8_qdq_ops": _qdq_ops(analysis.int8_model),
      "analysis_seconds": analysis_seconds,
      "calibration_seconds": analysis.calibration.seconds, "times": times, "rows": rows,
      "latency": latency_table, "nodes": nodes, "paired_vs_default": paired,
      "total_macs": int(sum(n.macs for n in analysis.nodes)),
  }


def main(argv):
  if len(argv) > 1:
    raise app.UsageError("Too many command-line arguments.")
  configs, budgets, rankers = _configs(), _budgets(), _rankers()
  shared = common.shared_dir(_SHARED.value)
  eval_images = _EVAL_IMAGES.value or (QUICK_EVAL_IMAGES if _QUICK.value else None)
  latency_runs = _LATENCY_RUNS.value or (10 if _QUICK.value else 30)
  base = "accuracy_quick" if _QUICK.value else "accuracy"
  out = os.path.abspath(_OUT.value)
  os.makedirs(out, exist_ok=True)
  tf = common.setup_tensorflow()
  import tfq_mixed  # pylint: disable=g-import-not-at-top
  report = {
      "command": shlex.join(["python", os.path.relpath(sys.argv[0], common.REPO_ROOT)]
                            + sys.argv[1:]),
      "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
      "machine": {"nproc": os.cpu_count(), "cpu": platform.processor() or platform.machine(),
                  "load_average_start": [round(x, 2) for x in os.getloadavg()]},
      "tensorflow_version": tf.__version__, "python_version": platform.python_version(),
      "tfq_mixed_version": tfq_mixed.__version__, "git_revision": common.git_revision(),
      "budgets": budgets, "rankers": rankers, "default_ranker": DEFAULT_RANKER,
      "random_seeds": list(RANDOM_SEEDS), "latency_runs": latency_runs,
      "quick": bool(_QUICK.value), "configs": [], "complete": False,
  }
  cache_dir = _CACHE_DIR.value or None
  for model_name, mode in configs:
    record = run_config(shared, model_name, mode, rankers, budgets, eval_images, latency_runs,
                        cache_dir)
    report["configs"].append(record)
    report["complete"] = len(report["configs"]) == len(configs)
    report["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    paths = accuracy_report.write(report, out, base)
    common.log(f"wrote {', '.join(os.path.relpath(p, common.REPO_ROOT) for p in paths)}")
  print(accuracy_report.render_markdown(report))
  print(f"Made by: {report['command']}", flush=True)


if __name__ == "__main__":
  app.run(main)
