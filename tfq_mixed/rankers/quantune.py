"""QuantuneV2's sensitivity list (Algorithm 2, Sec. 6.5)."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from tfq_mixed import propagation
from tfq_mixed.qtyping import LayerStats, Ranker
from tfq_mixed.rankers import ordering
from tfq_mixed.rankers.registry import register

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


ROUNDING_LSB2 = propagation.ROUNDING_LSB2


def node_scores(layers: Sequence[LayerStats]) -> dict[int, tuple[int, float]]:
  """Per TFLite node: (tier, the output noise keeping it float removes per float MAC) (`quantune`).

  Tier 0, `output_noise_share` (`propagation`): the noise the node adds by itself (layer-wise
  NumericVerify in the int8 pass), carried to the model output by the gains the two passes
  measured between nodes, less the rounding the next int8 op applies again; as a share of the
  output's noise. Unlike the activation SQNR (Eq. 6 on the layer output) and its delta (Eq. 16), it
  leaves out the noise the node inherits, which keeping it float does not remove, and it weighs
  the node's noise by how much of it reaches the output (amplified through a deep chain, damped
  before pooling).

  The score is that share divided by the node's MACs: the float budget is counted in MACs
  (Eq. 17), so the best use of it removes the most output noise per float MAC (a fractional
  knapsack, filled greedily in this order by the selector).

  Configs of older versions lack the share: tier 1 uses the node's own error in output steps beyond
  the rounding, `max(op_error_lsb^2 - 1/12, 0)`; tier 2 its relative noise `10^(-op_sqnr_db / 10)`,
  else its weight noise per output channel (`channel_weight_sqnr_db`, else the whole-tensor SQNR);
  each per MAC. Scores of different tiers cannot be compared: lower tiers rank first.

  Returns:
    Node index -> (tier, score); higher scores keep float first. Nodes without MACs are left out.
  """
  by_node: dict[int, list[LayerStats]] = {}
  for layer in sorted(layers, key=lambda l: l.index):
    if layer.node is not None:
      by_node.setdefault(layer.node, []).append(layer)
  scores: dict[int, tuple[int, float]] = {}
  for node, members in by_node.items():
    macs = sum(l.macs for l in members)
    if macs <= 0:
      continue
    share = _last(getattr(l, "output_noise_share", math.nan) for l in members)
    error_lsb = _last(getattr(l, "op_error_lsb", math.nan) for l in members)
    if not math.isnan(share):
      scores[node] = (0, share / macs)
    elif not math.isnan(error_lsb):
      scores[node] = (1, max(error_lsb ** 2 - ROUNDING_LSB2, 0.0) / macs)
    else:
      noise = math.nan
      for field in ("op_sqnr_db", "channel_weight_sqnr_db", "fused_weight_sqnr_db",
                    "weight_sqnr_db"):
        noise = _noise_power(_last(getattr(l, field, math.nan) for l in members))
        if not math.isnan(noise):
          break
      scores[node] = (2, (0.0 if math.isnan(noise) else noise) / macs)
  return scores


@register(Ranker.QUANTUNE)
def quantune(layers: Sequence[LayerStats], random_state: int = 0) -> list[str]:
  """Our default: nodes by output noise removed per float MAC (`node_scores`), label-free, O(n).

  The same two passes as Algorithm 2, but (1) the noise each node adds by itself (layer-wise
  NumericVerify in the int8 pass) instead of SQNRs that mix in inherited noise, (2) weighed by how
  much of it reaches the model output (`propagation`), less the rounding that stays, (3) per float
  MAC, since the budget is in MACs.
  Layers of one node stay together (the node's layers in execution order); layers without a
  compute node follow, in execution order. See benchmarks/results/accuracy.md for the comparison.
  """
  del random_state
  scores = node_scores(layers)
  ordered = sorted(layers, key=lambda l: l.index)
  nodes = sorted(scores, key=lambda n: (scores[n][0], -scores[n][1], n))
  ranking = [l.name for n in nodes for l in ordered if l.node == n]
  ranked = set(ranking)
  return ranking + [l.name for l in ordered if l.name not in ranked]
