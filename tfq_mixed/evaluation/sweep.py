"""A ratio sweep: one `Analysis` quantized at many ratios, each model scored against the float one.

No recalibration and no new analysis pass: each further model is one quantization. Scored by top-1
accuracy when labels are known, and always by agreement with the float model's top-1 and the SQNR
of the outputs.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from typing import Optional, Sequence

import numpy as np

from tfq_mixed import errors
from tfq_mixed.evaluation import scores
from tfq_mixed.progress import Progress

DEFAULT_RATIOS = (0.0, 0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0)


@dataclasses.dataclass(frozen=True)
class SweepPoint:
  """One mixed model of a sweep.

  Attributes:
    ratio: the requested int8 MAC ratio (NaN under another budget); int8_mac_ratio: the achieved
      one.
    float_layers: Keras layers kept float.
    agreement: share of samples whose top-1 class equals the float model's.
    output_sqnr_db: SQNR of the outputs against the float model's, in dB.
    accuracy: top-1 against the labels (NaN without labels).
    size_bytes: size of the .tflite.
    budget: the budget, e.g. 'max_latency=1.05'; achieved: its predicted figure (NaN for ratios).
    dynamic_nodes: nodes in dynamic_int8.
  """

  ratio: float
  int8_mac_ratio: float
  float_layers: int
  agreement: float
  output_sqnr_db: float
  accuracy: float
  size_bytes: int
  budget: str = ""
  achieved: float = math.nan
  dynamic_nodes: int = 0

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)


def sweep(analysis, inputs: np.ndarray, float_outputs: np.ndarray, *,
          ratios: Sequence[float] = DEFAULT_RATIOS, labels: Optional[np.ndarray] = None,
          ranker: str = "quantune", fallback: str = "auto",
          budgets: Optional[Sequence[dict]] = None,
          verbose: bool = False) -> list[SweepPoint]:
  """Quantizes `analysis` at each ratio (or each of `budgets`, e.g. `{"max_latency": 1.05}`) and
  scores each model on `inputs` against the float model.

  Args:
    analysis: a `tfq_mixed.Analysis` (one calibration, one analysis pass, reused for every ratio).
    inputs: samples to score on (batch axis first), model-ready.
    float_outputs: the float model's outputs on `inputs` (the reference).
    ratios: int8 MAC ratios to try, each in [0, 1].
    labels: class index per sample (-1: unknown), for top-1 accuracy.
    ranker: sensitivity order used to pick float layers (with fallback='float').
    fallback: what nodes out of static int8 run in (`Analysis.quantize`).
    verbose: show a progress bar.

  Returns:
    One `SweepPoint` per ratio, in the given order.
  """
  if budgets is None:
    if not ratios:
      raise errors.InvalidArgumentError("`ratios` is empty. Pass at least one ratio in [0, 1].")
    budgets = [{"ratio": r} for r in ratios]
  reference_top1 = np.argmax(float_outputs, axis=-1)
  points = []
  with Progress(len(budgets), "budget sweep", enabled=verbose) as bar:
    for budget in budgets:
      result = analysis.quantize(ranker=ranker, fallback=fallback, **budget)
      outputs = scores.predict(result.tflite, inputs)
      (kind, value), = budget.items()
      points.append(SweepPoint(
          ratio=float(value) if kind == "ratio" else math.nan,
          int8_mac_ratio=float(result.int8_mac_ratio),
          float_layers=len(result.float_layers),
          agreement=float(np.mean(np.argmax(outputs, axis=-1) == reference_top1)),
          output_sqnr_db=scores.output_sqnr_db(float_outputs, outputs),
          accuracy=scores.top1(outputs, labels), size_bytes=len(result.tflite),
          budget=f"{kind}={value:g}", achieved=float(result.config.budget.get("achieved",
                                                                                   math.nan)),
          dynamic_nodes=len(result.config.dynamic_nodes)))
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
