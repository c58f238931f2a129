"""Renders `accuracy.py`'s results: target checks, markdown tables (like QuantuneV2 Table 2/3), PNGs.

Everything here reads the JSON-ready report dict only, so the markdown and plots can be rebuilt from
a committed `accuracy.json` (`python benchmarks/accuracy_report.py benchmarks/results/accuracy.json`)
without rerunning anything.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import tempfile
from typing import Optional

import numpy as np

TARGET_CONFIGS = (("efficientnet_lite0", "per_tensor"), ("tiny_darknet", "per_channel"),
                  ("tiny_darknet", "per_tensor"))
"""Where the issue's accuracy targets apply."""
TARGET_BUDGETS = (0.02, 0.05, 0.10, 0.20)
COMPILE_TIME_RANKERS = ("weight_sqnr", "in_order", "random", "tflite_debugger")
GAP_TARGETS = ((0.05, 0.90), (0.10, 0.98))
ORACLE_MARGIN = 0.003
ORACLE_TIME_SHARE = 0.01
NO_HARM_MARGIN = 0.003


def _write_atomic(path: str, data: bytes) -> None:
  directory = os.path.dirname(path)
  fd, tmp = tempfile.mkstemp(prefix=".tmp_" + os.path.basename(path), dir=directory)
  try:
    with os.fdopen(fd, "wb") as f:
      f.write(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(OSError):
      os.unlink(tmp)
    raise


def _rows(config: dict, ranker: str) -> dict[float, dict]:
  return {r["budget"]: r for r in config["rows"] if r["ranker"] == ranker}


def _mean_accuracy(config: dict, ranker: str) -> Optional[float]:
  rows = _rows(config, ranker)
  values = [rows[b]["accuracy"] for b in TARGET_BUDGETS if b in rows]
  return float(np.mean(values)) if len(values) == len(TARGET_BUDGETS) else None


def _key(config: dict) -> str:
  return f"{config['model']} {config['mode'].replace('_', '-')}"


def checks(report: dict) -> list[dict]:
  """The issue's targets, each with the measured value and PASS/FAIL (or n/a when not run)."""
  default = report["default_ranker"]
  out = []
  for config in report["configs"]:
    rows = _rows(config, default)
    if not rows:
      continue
    name = _key(config)
    targeted = (config["model"], config["mode"]) in TARGET_CONFIGS
    if targeted:
      ours = _mean_accuracy(config, default)
      for other in COMPILE_TIME_RANKERS:
        theirs = _mean_accuracy(config, other)
        if ours is None or theirs is None:
          continue
        paired = config.get("paired_vs_default", {}).get(other)
        spread = ("" if not paired else
                  f" (difference {100 * paired['difference']:+.2f} ± "
                  f"{100 * paired['standard_error']:.2f} paired SE)")
        out.append({"config": name, "check": f"mean top-1 over budgets 0.02-0.20: {default} > {other}",
                    "value": f"{100 * ours:.2f} vs {100 * theirs:.2f}{spread}",
                    "verdict": "PASS" if ours > theirs else "FAIL"})
      for budget, target in GAP_TARGETS:
        row = rows.get(budget)
        if row is None:
          continue
        gap = row["gap_recovered"]
        out.append({"config": name, "check": f"gap recovered at float budget {budget:g} >= {target:.0%}",
                    "value": "n/a (no gap)" if gap is None else f"{gap:.1%}",
                    "verdict": "n/a" if gap is None else ("PASS" if gap >= target else "FAIL")})
      oracle = _mean_accuracy(config, "top1_oracle")
      if ours is not None and oracle is not None:
        out.append({"config": name, "check": "mean top-1 (0.02-0.20) within 0.3 points of top1_oracle",
                    "value": f"{100 * (ours - oracle):+.2f} points",
                    "verdict": "PASS" if ours >= oracle - ORACLE_MARGIN else "FAIL"})
      times = config["times"]
      if default in times and "top1_oracle" in times:
        share = times[default]["list_seconds"] / times["top1_oracle"]["list_seconds"]
        out.append({"config": name, "check": "sensitivity-list time <= 1% of top1_oracle's",
                    "value": f"{share:.1%} ({times[default]['list_seconds']:.1f} s incl. the two "
                             f"passes; ranking alone {1e3 * times[default]['rank_seconds']:.1f} ms)",
                    "verdict": "PASS" if share <= ORACLE_TIME_SHARE else "FAIL"})
    worst = min((r["accuracy"] - config["int8_accuracy"], b) for b, r in rows.items())
    out.append({"config": name, "check": "no budget more than 0.3 points below full int8",
                "value": f"worst {100 * worst[0]:+.2f} points (budget {worst[1]:g})",
                "verdict": "PASS" if worst[0] >= -NO_HARM_MARGIN else "FAIL"})
  return out


def _pct(value, digits=1) -> str:
  return "n/a" if value is None else f"{100 * value:.{digits}f}"


def _cell(row: dict) -> str:
  if "accuracy_std" in row:
    return f"{100 * row['accuracy']:.2f} ± {100 * row['accuracy_std']:.2f}"
  return f"{100 * row['accuracy']:.2f}"


def render_markdown(report: dict, figures=()) -> str:
  budgets = report["budgets"]
  default = report["default_ranker"]
  lines = [
      "# Accuracy: mixed precision per ranker and float budget, real pretrained models",
      "",
      f"Generated by `{report['command']}` on {report['date']} — do not edit by hand."
      + ("" if report.get("complete") else " **Partial: the run had not finished all models.**"),
      "",
      f"- machine: {report['machine']['nproc']} CPUs ({report['machine']['cpu']}), load average "
      f"{report['machine']['load_average_start']} at start, "
      f"{report['machine'].get('load_average_end')} at the last write (shared machine)",
      f"- TensorFlow {report['tensorflow_version']}, Python {report['python_version']}, tfq_mixed "
      f"{report['tfq_mixed_version']} (git {report['git_revision']})",
      "- data: canonical splits of `../shared` (ImageNet sample: 100 calibration / 900 evaluation "
      "images; CIFAR-10: 500 / 9,500); calibration and every label-free ranker use the calibration "
      "images only; `top1_oracle` uses their labels; accuracy is measured on evaluation images only",
      "- float budget = share of MACs kept float (`1 - ratio`); every ranker fills it with the same "
      "selector; `random` = mean ± std over seeds "
      f"{report['random_seeds']}; latency: XNNPACK, 1 thread, median of {report['latency_runs']} "
      "round-robin runs, relative to the full-int8 model timed in the same loop",
      f"- default ranker `{default}`: noise each node adds by itself (layer-wise NumericVerify in "
      "the int8 pass), carried to the model output by the gains measured between the two passes, "
      "per float MAC; the same two passes as the paper (label-free, O(n)); "
      "`quantune_paper`: Algorithm 2 as published",
      "- paired SE: standard error of the mean over evaluation images of the per-image difference "
      "between two rankers (the share of the budgets 0.02-0.20 at which each gets the image right); "
      "a difference within about two SE is within what these images can tell apart",
      "",
  ]
  check_rows = checks(report)
  if check_rows:
    lines += ["## Targets (issue 3)", "", "| model / mode | check | measured | verdict |",
              "|---|---|---|---|"]
    lines += [f"| {c['config']} | {c['check']} | {c['value']} | {c['verdict']} |" for c in check_rows]
    lines.append("")
  lines += [f"![accuracy vs float budget]({f})" for f in figures if "budget" in f]
  lines.append("")
  for config in report["configs"]:
    rankers = list(dict.fromkeys(r["ranker"] for r in config["rows"]))
    lines += [
        f"## {_key(config)}",
        "",
        f"Float top-1 **{_pct(config['float_accuracy'], 2)} %**, full int8 "
        f"**{_pct(config['int8_accuracy'], 2)} %** ({config['evaluation_images']} evaluation "
        f"images); float model {config['float_size_bytes'] / 1e6:.2f} MB, int8 "
        f"{config['int8_size_bytes'] / 1e6:.2f} MB with {config['int8_qdq_ops']} Q/DQ ops; analysis "
        f"{config['analysis_seconds']:.1f} s (of which calibration {config['calibration_seconds']:.1f} s).",
        "",
        "Top-1 (%) by float budget (like the paper's Table 2):",
        "",
        "| ranker | " + " | ".join(f"{b:g}" for b in budgets) +
        " | mean 0.02-0.20 | gap rec. @0.05 | gap rec. @0.10 | worst vs int8 |",
        "|---|" + "---|" * (len(budgets) + 4),
    ]
    for ranker in rankers:
      rows = _rows(config, ranker)
      mean = _mean_accuracy(config, ranker)
      worst = min(r["accuracy"] - config["int8_accuracy"] for r in rows.values())
      label = f"**{ranker}**" if ranker == default else ranker
      lines.append(
          f"| {label} | " + " | ".join(_cell(rows[b]) if b in rows else "" for b in budgets) +
          f" | {_pct(mean, 2)} | {_pct(rows.get(0.05, {}).get('gap_recovered'))} | "
          f"{_pct(rows.get(0.1, {}).get('gap_recovered'))} | {100 * worst:+.2f} |")
    lines += ["", f"`{default}` and `quantune_paper` in detail (agreement = top-1 equal to the float "
              "model's; latency relative to full int8):", "",
              "| ranker | float budget | float MACs | top-1 % | agreement % | gap rec. % | size MB | "
              "Q/DQ ops | float nodes | latency / int8 |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for ranker in (default, "quantune_paper"):
      for budget, row in sorted(_rows(config, ranker).items()):
        lat = row.get("latency_ratio_to_int8")
        lines.append(
            f"| {ranker} | {budget:g} | {100 * row['float_mac_share']:.1f} % | "
            f"{_pct(row['accuracy'], 2)} | {_pct(row['agreement'], 1)} | "
            f"{_pct(row['gap_recovered'])} | {row['size_bytes'] / 1e6:.2f} | {row['qdq_ops']:.0f} | "
            f"{row['float_nodes']:.0f} | {'n/a' if lat is None else f'{lat:.2f}'} |")
    float_latency = config["latency"].get("float")
    if float_latency:
      lines.append(f"\nFloat model latency / int8: {float_latency['ratio_to_int8']:.2f} "
                   f"(int8 median {config['latency']['int8']['median_ms']:.1f} ms).")
    lines += ["", "Sensitivity-list time (like the paper's Table 3):", "",
              "| ranker | list time s | ranking alone ms | what it includes |", "|---|---|---|---|"]
    for ranker, t in config["times"].items():
      rank_ms = "" if t.get("rank_seconds") is None else f"{1e3 * t['rank_seconds']:.2f}"
      lines.append(f"| {ranker} | {t['list_seconds']:.2f} | {rank_ms} | {t['includes']} |")
    detail = config["times"].get("tflite_debugger")
    if detail:
      lines.append(f"\nQuantizationDebugger: {detail.get('tensors')} NumericVerify tensors, "
                   f"{detail.get('compute_nodes_scored')} of {detail.get('compute_nodes')} compute "
                   f"nodes scored, {detail.get('unmapped_tensors')} tensors not mapped to a node.")
    sensitivity = [f for f in figures if f"{config['model']}_{config['mode']}" in f]
    lines += [""] + [f"![per-node sensitivity]({f})" for f in sensitivity] + [""]
  return "\n".join(lines)


def _pyplot():
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


_STYLE = {"quantune": ("tab:red", "o-", 2.4), "quantune_paper": ("tab:blue", "s-", 1.6),
          "top1_oracle": ("black", "^--", 1.4), "tflite_debugger": ("tab:green", "d-", 1.2),
          "weight_sqnr": ("tab:purple", "v-", 1.0), "in_order": ("tab:brown", "x-", 1.0),
          "random": ("tab:gray", ".-", 1.0), "activation_sqnr": ("tab:olive", "+:", 0.9),
          "weight_sqnr_delta": ("tab:cyan", "1:", 0.9), "mse": ("tab:pink", "2:", 0.9)}


def plot_budgets(report: dict, path: str) -> str:
  """Top-1 vs float budget: one panel per model/mode, one line per ranker."""
  plt = _pyplot()
  configs = report["configs"]
  columns = min(3, len(configs))
  rows_n = math.ceil(len(configs) / columns)
  fig, axes = plt.subplots(rows_n, columns, figsize=(5.2 * columns, 4.0 * rows_n), squeeze=False)
  budgets = report["budgets"]
  x = np.arange(len(budgets))
  for ax, config in zip(axes.flat, configs):
    for ranker in dict.fromkeys(r["ranker"] for r in config["rows"]):
      rows = _rows(config, ranker)
      color, marker, width = _STYLE.get(ranker, ("tab:gray", ".-", 1.0))
      y = [100 * rows[b]["accuracy"] if b in rows else np.nan for b in budgets]
      ax.plot(x, y, marker, color=color, linewidth=width, markersize=4, label=ranker)
      if ranker == "random":
        lo = [100 * rows[b].get("accuracy_min", rows[b]["accuracy"]) for b in budgets]
        hi = [100 * rows[b].get("accuracy_max", rows[b]["accuracy"]) for b in budgets]
        ax.fill_between(x, lo, hi, color=color, alpha=0.15)
    ax.axhline(100 * config["float_accuracy"], color="k", linestyle=":", linewidth=1, label="float")
    ax.axhline(100 * config["int8_accuracy"], color="k", linestyle="-.", linewidth=0.8,
               label="full int8")
    ax.set_xticks(x)
    ax.set_xticklabels([f"{b:g}" for b in budgets])
    ax.set_xlabel("float budget (share of MACs kept float)")
    ax.set_ylabel("top-1 % (evaluation split)")
    ax.set_title(f"{_key(config)} ({config['evaluation_images']} images)", fontsize=10)
    ax.grid(alpha=0.3)
  for ax in list(axes.flat)[len(configs):]:
    ax.axis("off")
  handles, labels = axes.flat[0].get_legend_handles_labels()
  fig.legend(handles, labels, loc="lower center", ncol=min(6, len(labels)), fontsize=8,
             bbox_to_anchor=(0.5, -0.02 - 0.03 * math.ceil(len(labels) / 6)))
  fig.tight_layout()
  return _save(fig, path)


def _save(fig, path: str) -> str:
  import io  # pylint: disable=g-import-not-at-top
  buffer = io.BytesIO()
  fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
  _pyplot().close(fig)
  _write_atomic(path, buffer.getvalue())
  return path


def _spearman(a, b) -> float:
  pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
  if len(pairs) < 3:
    return math.nan
  ra = np.argsort(np.argsort([p[0] for p in pairs]))
  rb = np.argsort(np.argsort([p[1] for p in pairs]))
  return float(np.corrcoef(ra, rb)[0, 1])


def plot_nodes(config: dict, path: str) -> str:
  """Per compute node along the network (the paper's Fig. 6), and our scores vs the oracle's."""
  plt = _pyplot()
  nodes = config["nodes"]
  x = np.arange(len(nodes))
  fig, axes = plt.subplots(4, 1, figsize=(max(9, 0.16 * len(nodes) + 4), 11), sharex=True)
  ax = axes[0]
  for key, style, label in (("activation_sqnr_db", "o-", "activation SQNR (node output)"),
                            ("op_sqnr_db", "D-", "op SQNR: noise the node adds by itself"),
                            ("fused_weight_sqnr_db", "s:", "weight SQNR, whole tensor"),
                            ("channel_weight_sqnr_db", "^--", "weight SQNR, mean per channel")):
    ax.plot(x, [np.nan if n.get(key) is None else n[key] for n in nodes], style, markersize=3,
            label=label)
  ax.set_ylabel("dB")
  ax.legend(fontsize=7)
  ax.set_title(f"{_key(config)}: per-node metrics along the network (compute nodes, execution order)",
               fontsize=10)
  ax = axes[1]
  ax.bar(x, [0 if n["oracle_top1_change"] is None else 100 * n["oracle_top1_change"] for n in nodes],
         color="black", label="oracle: top-1 change, only this node float (calibration split, points)")
  second = ax.twinx()
  second.plot(x, [np.nan if n["oracle_cross_entropy_drop"] is None else n["oracle_cross_entropy_drop"]
                  for n in nodes], "r.-", markersize=3, label="oracle: cross-entropy drop")
  ax.set_ylabel("top-1 change (points)")
  second.set_ylabel("cross-entropy drop", color="r")
  ax.legend(fontsize=7, loc="upper left")
  second.legend(fontsize=7, loc="upper right")
  ax = axes[2]
  ax.semilogy(x, [np.nan if not n["quantune_score"] else n["quantune_score"] for n in nodes], "o-",
              color="tab:red", markersize=3, label="quantune: output noise removed per float MAC")
  ax.set_ylabel("quantune score")
  second = ax.twinx()
  second.plot(x, [np.nan if n["debugger_rmse_per_scale"] is None else n["debugger_rmse_per_scale"]
                  for n in nodes], "d:", color="tab:green", markersize=3,
              label="TFLite debugger RMSE / scale")
  second.set_ylabel("RMSE / scale", color="tab:green")
  ax.legend(fontsize=7, loc="upper left")
  second.legend(fontsize=7, loc="upper right")
  ax = axes[3]
  ax.bar(x, [100 * n["macs"] / config["total_macs"] for n in nodes], color="tab:gray")
  ax.set_ylabel("% of MACs")
  ax.set_xticks(x)
  ax.set_xticklabels([f"{n['index']} {n['op_type'].replace('_2D', '').replace('DEPTHWISE', 'DW')}"
                      for n in nodes], rotation=90, fontsize=6)
  fig.tight_layout()
  _save(fig, path)
  # Scatter: what each order ranks high vs what the oracle measured.
  scatter = path.replace(".png", "_vs_oracle.png")
  fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
  oracle = [n["oracle_cross_entropy_drop"] for n in nodes]
  n_nodes = len(nodes)
  series = (("output_noise_share", "quantune: share of output noise removed (log)", True),
            ("quantune_paper_rank", "quantune_paper position (0 = first)", False),
            ("debugger_rmse_per_scale", "debugger RMSE / scale", False))
  for ax, (key, label, log) in zip(axes, series):
    values = [n.get(key) for n in nodes]
    rho = _spearman(values, oracle)
    if key == "quantune_paper_rank":
      rho = -rho if not math.isnan(rho) else rho
    ax.scatter([np.nan if v is None else v for v in values],
               [np.nan if v is None else v for v in oracle],
               s=[12 + 400 * n["macs"] / config["total_macs"] for n in nodes], alpha=0.6)
    if log:
      ax.set_xscale("log")
    ax.set_xlabel(label)
    ax.set_ylabel("oracle cross-entropy drop (node float)")
    ax.set_title(f"Spearman vs oracle: {rho:+.2f} ({n_nodes} nodes; size = MACs)", fontsize=9)
    ax.grid(alpha=0.3)
  fig.suptitle(f"{_key(config)}: label-free orders vs the labelled per-node oracle", fontsize=10)
  fig.tight_layout()
  _save(fig, scatter)
  return path


def write(report: dict, out: str, base: str) -> list[str]:
  """Writes `<base>.json`, the PNGs and `<base>.md` (atomically); returns their paths."""
  paths = [os.path.join(out, base + ".json")]
  _write_atomic(paths[0], (json.dumps(report, indent=1, sort_keys=True) + "\n").encode())
  figures = []
  try:
    budget_png = plot_budgets(report, os.path.join(out, base + "_budgets.png"))
    figures.append(os.path.basename(budget_png))
    for config in report["configs"]:
      png = plot_nodes(config, os.path.join(out, f"{base}_nodes_{config['model']}_{config['mode']}.png"))
      figures += [os.path.basename(png), os.path.basename(png.replace(".png", "_vs_oracle.png"))]
  except ImportError:
    print("matplotlib is not installed: no PNG plots.", file=sys.stderr)
  paths += [os.path.join(out, f) for f in figures]
  md = os.path.join(out, base + ".md")
  _write_atomic(md, render_markdown(report, figures).encode())
  return paths + [md]


if __name__ == "__main__":
  if len(sys.argv) != 2:
    sys.exit("usage: python benchmarks/accuracy_report.py benchmarks/results/accuracy.json")
  with open(sys.argv[1], encoding="utf-8") as f:
    loaded = json.load(f)
  out_dir = os.path.dirname(os.path.abspath(sys.argv[1]))
  for written in write(loaded, out_dir, os.path.splitext(os.path.basename(sys.argv[1]))[0]):
    print(written)
