"""QuantuneV2's sensitivity list (Algorithm 2, Sec. 6.5)."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from tfq_mixed.qtyping import LayerStats, Ranker
from tfq_mixed.rankers import ordering
from tfq_mixed.rankers import register

MSE_OUTLIER_FACTOR = 5.0
"""Algorithm 2, line 2: layers whose MSE exceeds 5x the mean MSE go to the top of the list."""

WEIGHT_GAIN = 2.0
"""Sec. 6.5: the weight SQNR-delta rank is "given more weight" than the activation one. The paper
gives no value; 2:1 is ours."""


def sensitivity_list(layers: Sequence[LayerStats], weight_gain: float = WEIGHT_GAIN) -> list[str]:
  """Algorithm 2 (RankLayersBySensitivity).

  1. L_mse: layers with MSE > 5x the mean MSE, largest MSE first.
  2. The rest by `weight_gain * rank(weight SQNR delta) + rank(activation SQNR delta)`, both ranks
     ascending (a lower delta means the layer added more quantization noise, Eq. 16).
  3. L_mse is prepended to that list.
  """
  mse_values = [l.mse for l in layers if not math.isnan(l.mse)]
  mean_mse = float(np.mean(mse_values)) if mse_values else 0.0
  outliers = [l for l in ordering.order_by(layers, lambda l: l.mse, descending=True)
              if not math.isnan(l.mse) and l.mse > MSE_OUTLIER_FACTOR * mean_mse]
  weight_rank = ordering.ranks(layers, lambda l: l.weight_sqnr_delta)
  activation_rank = ordering.ranks(layers, lambda l: l.activation_sqnr_delta)
  rest = sorted(layers, key=lambda l: (weight_gain * weight_rank[l.name] + activation_rank[l.name],
                                       l.index))
  top = [l.name for l in outliers]
  return top + [l.name for l in rest if l.name not in set(top)]


@register(Ranker.QUANTUNE_PAPER)
def quantune_paper(layers: Sequence[LayerStats], random_state: int = 0) -> list[str]:
  """Algorithm 2 as published: MSE outliers, then weighted weight/activation SQNR-delta ranks."""
  del random_state
  return sensitivity_list(layers)


def _noise_power(sqnr_db: float) -> float:
  """Noise power relative to signal power, from an SQNR in dB (Eq. 6 inverted); NaN stays NaN."""
  return math.nan if math.isnan(sqnr_db) else 10.0 ** (-sqnr_db / 10.0)


def _last(values) -> float:
  finite = [v for v in values if not math.isnan(v)]
  return finite[-1] if finite else math.nan


ROUNDING_LSB2 = 1.0 / 12.0
"""Mean squared error of rounding to the int8 grid, in output steps squared (uniform error)."""


def node_scores(layers: Sequence[LayerStats]) -> dict[int, float]:
  """Per TFLite node: the quantization error keeping it float removes, per float MAC (`quantune`).

  The error a node adds by itself is measured in the int8 pass (layer-wise NumericVerify: the int8
  op against its float twin on the same dequantized inputs), as RMS in steps of its int8 output
  (`op_error_lsb`, the TFLite debugger's RMSE / scale). Unlike the activation SQNR (Eq. 6 on the
  layer output) and its delta (Eq. 16), it leaves out the noise the node inherits, which keeping it
  float does not remove. Of that error, the rounding of the output to its int8 grid
  (1/12 step^2) comes back where the next int8 op reads the tensor; what keeping the node float
  removes is the excess, `max(op_error_lsb^2 - 1/12, 0)` (weights, accumulation, clipping).

  The score is that excess divided by the node's MACs: the float budget is counted in MACs
  (Eq. 17), so the best use of it removes the most error per float MAC (a fractional knapsack,
  filled greedily in this order by the selector).

  Nodes without `op_error_lsb` (float outputs, configs of older versions) fall back to their own
  relative noise `10^(-op_sqnr_db / 10)`, else their weight noise per output channel
  (`channel_weight_sqnr_db`, else the whole-tensor SQNR), per MAC, ranked after the others.

  Returns:
    Node index -> score (higher: keep float first). Nodes without MACs are left out.
  """
  by_node: dict[int, list[LayerStats]] = {}
  for layer in sorted(layers, key=lambda l: l.index):
    if layer.node is not None:
      by_node.setdefault(layer.node, []).append(layer)
  primary: dict[int, float] = {}
  fallback: dict[int, float] = {}
  for node, members in by_node.items():
    macs = sum(l.macs for l in members)
    if macs <= 0:
      continue
    error_lsb = _last(getattr(l, "op_error_lsb", math.nan) for l in members)
    if not math.isnan(error_lsb):
      primary[node] = max(error_lsb ** 2 - ROUNDING_LSB2, 0.0) / macs
      continue
    noise = math.nan
    for field in ("op_sqnr_db", "channel_weight_sqnr_db", "fused_weight_sqnr_db", "weight_sqnr_db"):
      noise = _noise_power(_last(getattr(l, field, math.nan) for l in members))
      if not math.isnan(noise):
        break
    fallback[node] = (0.0 if math.isnan(noise) else noise) / macs
  return {**fallback, **primary}


def _measured_in_steps(layers: Sequence[LayerStats]) -> set[int]:
  return {l.node for l in layers
          if l.node is not None and not math.isnan(getattr(l, "op_error_lsb", math.nan))}


@register(Ranker.QUANTUNE)
def quantune(layers: Sequence[LayerStats], random_state: int = 0) -> list[str]:
  """Our default: nodes by noise removed per float MAC (`node_scores`), label-free, O(n).

  The same two passes as Algorithm 2, but (1) the error each node adds by itself (layer-wise
  NumericVerify in the int8 pass) instead of SQNRs that mix in inherited noise, (2) less the output
  rounding that stays anyway, (3) per float MAC, since the budget is in MACs.
  Layers of one node stay together (the node's layers in execution order); layers without a
  compute node follow, in execution order. See benchmarks/results/accuracy.md for the comparison.
  """
  del random_state
  scores = node_scores(layers)
  measured = _measured_in_steps(layers)  # two scales cannot be compared: these first
  ordered = sorted(layers, key=lambda l: l.index)
  nodes = sorted(scores, key=lambda n: (n not in measured, -scores[n], n))
  ranking = [l.name for n in nodes for l in ordered if l.node == n]
  ranked = set(ranking)
  return ranking + [l.name for l in ordered if l.name not in ranked]
