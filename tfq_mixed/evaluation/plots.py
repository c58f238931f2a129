"""Figures: per-layer sensitivity and a ratio sweep, as PNG files (matplotlib's Agg backend).

matplotlib is an optional dependency (`pip install 'tfq_mixed[plots]'`), imported when a figure is
drawn.
"""

from __future__ import annotations

import io
import math
from typing import Sequence

import numpy as np

from tfq_mixed import errors
from tfq_mixed import files
from tfq_mixed.evaluation.sweep import SweepPoint


def _pyplot():
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError("PNG plots need matplotlib: pip install 'tfq_mixed[plots]'.") from e
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def _save(fig, path: str) -> str:
  buffer = io.BytesIO()
  fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
  _pyplot().close(fig)
  files.write_atomic(path, buffer.getvalue())
  return path


def plot_sensitivity(layers: Sequence, float_layers: Sequence[str], path: str,
                     title: str = "") -> str:
  """Bar chart of activation SQNR per layer, in execution order; layers kept float in orange.

  Weight SQNR is drawn as dots. A layer fused into a TFLite op (the Conv of Conv+BN+ReLU) has no
  activation of its own: it shows its weight SQNR only.
  """
  plt = _pyplot()
  rows = [l for l in layers if not math.isnan(l.activation_sqnr_db) or not
          math.isnan(l.weight_sqnr_db)]
  if not rows:
    raise errors.InvalidArgumentError("No layer has an SQNR to plot (the analysis measured none).")
  float_set = set(float_layers)
  x = np.arange(len(rows))
  activation = np.nan_to_num([l.activation_sqnr_db for l in rows], nan=0.0)
  is_float = np.array([l.name in float_set for l in rows])
  fig, ax = plt.subplots(figsize=(max(8, 0.14 * len(rows) + 3), 4.5))
  ax.bar(x[~is_float], activation[~is_float], color="tab:blue", width=0.8,
         label="activation SQNR, int8 layer")
  ax.bar(x[is_float], activation[is_float], color="tab:orange", width=0.8,
         label="activation SQNR, kept float")
  ax.plot(x, [l.weight_sqnr_db for l in rows], "k.", markersize=5, label="weight SQNR")
  ax.set_xticks(x)
  ax.set_xticklabels([l.name for l in rows], rotation=90, fontsize=6)
  ax.set_ylabel("SQNR, float vs int8 (dB; higher is safer)")
  ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
  ax.set_title(title or "Per-layer quantization sensitivity (execution order)")
  ax.grid(axis="y", alpha=0.3)
  return _save(fig, path)


def plot_sweep(points: Sequence[SweepPoint], path: str, *, metric: str = "auto",
               float_accuracy: float = math.nan, title: str = "") -> str:
  """Top-1 accuracy or agreement with the float model vs achieved int8 MAC ratio.

  Args:
    points: the sweep.
    path: the PNG to write.
    metric: 'accuracy', 'agreement', or 'auto' (accuracy when the sweep had labels).
    float_accuracy: drawn as a dashed line on accuracy plots.
    title: figure title.

  The output SQNR against the float model is drawn on a second axis.
  """
  if metric not in ("auto", "accuracy", "agreement"):
    raise errors.InvalidArgumentError(
        f"Unknown metric {metric!r}. Expected one of: 'auto', 'accuracy', 'agreement'.")
  plt = _pyplot()
  points = sorted(points, key=lambda p: p.int8_mac_ratio)
  x = [p.int8_mac_ratio for p in points]
  if metric == "auto":
    metric = "agreement" if all(math.isnan(p.accuracy) for p in points) else "accuracy"
  fig, ax = plt.subplots(figsize=(7, 4.2))
  if metric == "accuracy":
    values = [p.accuracy for p in points]
    ax.plot(x, values, "o-", color="tab:blue", label="mixed top-1")
    if not math.isnan(float_accuracy):
      ax.axhline(float_accuracy, color="tab:gray", linestyle="--", label="float top-1")
      values.append(float_accuracy)
    ax.set_ylabel("top-1 accuracy")
  else:
    values = [p.agreement for p in points]
    ax.plot(x, values, "o-", color="tab:blue", label="top-1 agreement with float")
    ax.set_ylabel("top-1 agreement with the float model")
  finite = [v for v in values if not math.isnan(v)] or [1.0]
  ax.set_ylim(max(0.0, min(finite) - 0.05), min(1.0, max(finite)) + 0.01)
  ax.set_xlabel("int8 MAC ratio (share of MACs in int8)")
  second = ax.twinx()
  sqnr = [min(p.output_sqnr_db, 99.0) for p in points]
  second.plot(x, sqnr, "s:", color="tab:red", label="output SQNR vs float (dB)")
  second.set_ylabel("output SQNR vs float (dB)", color="tab:red")
  lines = ax.get_legend_handles_labels()
  lines2 = second.get_legend_handles_labels()
  ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="lower left", fontsize=8)
  ax.set_title(title or "Ratio sweep")
  ax.grid(alpha=0.3)
  return _save(fig, path)


def plot_pareto(baselines: dict, points: Sequence[dict], path: str, *, title: str = "") -> str:
  """What each choice costs: top-1 (or agreement with float) and output SQNR against latency.

  Args:
    baselines: name -> {'latency_vs_int8', 'top1', 'agreement', 'output_sqnr_db', ...} (float,
      dynamic-range, full int8, ours).
    points: ours at other budgets: dicts with 'budget', 'latency_vs_int8', 'accuracy',
      'agreement', 'output_sqnr_db'.
    path: the PNG to write.
  """
  plt = _pyplot()
  labelled = not any(math.isnan(b["top1"]) for b in baselines.values())
  fig, (top, bottom) = plt.subplots(2, 1, figsize=(7.5, 7), sharex=True)
  key = "top1" if labelled else "agreement"
  point_key = "accuracy" if labelled else "agreement"
  ordered = sorted(points, key=lambda p: p["latency_vs_int8"])
  for axis, baseline_key, ours_key, label in (
      (top, key, point_key, "top-1" if labelled else "top-1 agreement with float"),
      (bottom, "output_sqnr_db", "output_sqnr_db", "output SQNR vs float (dB)")):
    axis.plot([p["latency_vs_int8"] for p in ordered],
              [min(p[ours_key], 99.0) for p in ordered], "o-", color="tab:red",
              label="ours, other budgets")
    for p in ordered:
      axis.annotate(p["budget"], (p["latency_vs_int8"], min(p[ours_key], 99.0)), fontsize=6,
                    xytext=(3, -8), textcoords="offset points")
    for name, b in baselines.items():
      marker = "*" if name.startswith("ours") else "s"
      axis.scatter(b["latency_vs_int8"], min(b[baseline_key], 99.0), marker=marker, s=70,
                   label=name, zorder=3)
    axis.set_ylabel(label)
    axis.grid(alpha=0.3)
  bottom.set_xlabel("XNNPACK latency, x full int8 (measured in one run)")
  top.legend(fontsize=7, loc="lower right")
  top.set_title(title or "Accuracy and fidelity against latency")
  return _save(fig, path)
