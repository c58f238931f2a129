"""The visual report: a ratio sweep, per-layer sensitivity and sweep figures, a markdown summary.

`sweep` quantizes one `Analysis` at many ratios (no recalibration, no new analysis pass) and measures
each model against the float one — top-1 accuracy when labels are known, agreement with the float
model's top-1 and the SQNR of the outputs always. The figures use matplotlib's Agg backend (no
display needed); matplotlib is an optional dependency (`pip install 'tfq_mixed[plots]'`).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
from typing import Optional, Sequence

import numpy as np

from tfq_mixed import _tflite_private
from tfq_mixed import errors
from tfq_mixed.progress import Progress

DEFAULT_RATIOS = (0.0, 0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0)


def predict(tflite: bytes, inputs: np.ndarray, batch_size: int = 50) -> np.ndarray:
  """The first output of a single-input TFLite model on `inputs` (batch axis first), float32.

  A model with a fixed batch axis is fed exactly that many samples at a time (the last batch
  padded with copies of its last sample, whose outputs are dropped).
  """
  interpreter = _tflite_private.make_interpreter(tflite, num_threads=os.cpu_count() or 1)
  runner = interpreter.get_signature_runner()
  input_name = sorted(runner.get_input_details())[0]
  # tfq_mixed names the outputs output_<i> in Keras order; other converters name them otherwise.
  output_name = sorted(runner.get_output_details())[0]
  fixed = int(runner.get_input_details()[input_name]["shape_signature"][0])
  batch_size = fixed if fixed > 0 else batch_size
  outputs = []
  for start in range(0, inputs.shape[0], batch_size):
    batch = np.asarray(inputs[start:start + batch_size], np.float32)
    count = batch.shape[0]
    if fixed > 0 and count < fixed:
      batch = np.concatenate([batch, np.repeat(batch[-1:], fixed - count, axis=0)])
    outputs.append(np.array(runner(**{input_name: batch})[output_name], np.float32)[:count])
  return np.concatenate(outputs)


def keras_batch_size(model, default: int = 64) -> int:
  """The batch size to run `model.predict` with: the one its inputs fix, else `default`."""
  batch = model.inputs[0].shape[0]
  return batch if isinstance(batch, int) else default


def output_sqnr_db(reference: np.ndarray, quantized: np.ndarray) -> float:
  """SQNR of the outputs, 10 log10(sum ref^2 / sum (ref - quantized)^2), in dB (inf if equal)."""
  noise = float(np.sum((reference.astype(np.float64) - quantized) ** 2))
  signal = float(np.sum(reference.astype(np.float64) ** 2))
  return math.inf if noise == 0 else 10 * math.log10(max(signal, 1e-30) / noise)


@dataclasses.dataclass(frozen=True)
class SweepPoint:
  """One mixed model of a sweep.

  Attributes:
    ratio: the requested int8 MAC ratio; int8_mac_ratio: the achieved one.
    float_layers: Keras layers kept float.
    agreement: share of samples whose top-1 class equals the float model's.
    output_sqnr_db: SQNR of the outputs against the float model's, in dB.
    accuracy: top-1 against the labels (NaN without labels).
    size_bytes: size of the .tflite.
  """

  ratio: float
  int8_mac_ratio: float
  float_layers: int
  agreement: float
  output_sqnr_db: float
  accuracy: float
  size_bytes: int

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)


def top1(outputs: np.ndarray, labels: Optional[np.ndarray]) -> float:
  """Top-1 accuracy over the samples with a known label (>= 0); NaN if none."""
  if labels is None:
    return math.nan
  known = labels >= 0
  if not known.any():
    return math.nan
  return float(np.mean(np.argmax(outputs[known], axis=-1) == labels[known]))


def sweep(analysis, inputs: np.ndarray, float_outputs: np.ndarray, *,
          ratios: Sequence[float] = DEFAULT_RATIOS, labels: Optional[np.ndarray] = None,
          ranker: str = "quantune", verbose: bool = False) -> list[SweepPoint]:
  """Quantizes `analysis` at each ratio and scores each model on `inputs` against the float model.

  Args:
    analysis: a `tfq_mixed.Analysis` (one calibration, one analysis pass, reused for every ratio).
    inputs: samples to score on (batch axis first), model-ready.
    float_outputs: the float model's outputs on `inputs` (the reference).
    ratios: int8 MAC ratios to try, each in [0, 1].
    labels: class index per sample (-1: unknown), for top-1 accuracy.
    ranker: sensitivity order used to pick float layers.
    verbose: show a progress bar.

  Returns:
    One `SweepPoint` per ratio, in the given order.
  """
  if not ratios:
    raise errors.InvalidArgumentError("`ratios` is empty. Pass at least one ratio in [0, 1].")
  reference_top1 = np.argmax(float_outputs, axis=-1)
  points = []
  with Progress(len(ratios), "ratio sweep", enabled=verbose) as bar:
    for ratio in ratios:
      result = analysis.quantize(ratio, ranker)
      outputs = predict(result.tflite, inputs)
      points.append(SweepPoint(
          ratio=float(ratio), int8_mac_ratio=float(result.int8_mac_ratio),
          float_layers=len(result.float_layers),
          agreement=float(np.mean(np.argmax(outputs, axis=-1) == reference_top1)),
          output_sqnr_db=output_sqnr_db(float_outputs, outputs),
          accuracy=top1(outputs, labels), size_bytes=len(result.tflite)))
      bar.update()
  return points


def sweep_csv(points: Sequence[SweepPoint]) -> str:
  buffer = io.StringIO()
  fields = [f.name for f in dataclasses.fields(SweepPoint)]
  writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
  writer.writeheader()
  for p in points:
    writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in p.to_dict().items()})
  return buffer.getvalue()


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
  with open(path, "wb") as f:
    f.write(buffer.getvalue())
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


def markdown_table(rows: Sequence[dict], columns: Sequence[str]) -> str:
  """A GitHub-flavoured markdown table of `rows` (dicts) restricted to `columns`."""
  lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
  for row in rows:
    lines.append("| " + " | ".join(str(row.get(c, "")).replace("|", "\\|") for c in columns) + " |")
  return "\n".join(lines)


REPORT_COLUMNS = ("rank", "layer", "type", "macs", "weight_sqnr_db", "weight_sqnr_delta",
                  "activation_sqnr_db", "activation_sqnr_delta", "mse", "precision")


def markdown_report(result, *, title: str, summary: Sequence[str] = (),
                    figures: Sequence[str] = ()) -> str:
  """The report of a `Result` as markdown: summary lines, figures, the per-layer table."""
  parts = [f"# {title}", ""]
  parts += [f"- {line}" for line in summary]
  parts += ["", *[f"![{os.path.splitext(f)[0]}]({f})" for f in figures], "",
            "## Layers, most sensitive first", "",
            markdown_table(result.report_rows(), REPORT_COLUMNS), ""]
  return "\n".join(parts)
