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


def node_scores(layers: Sequence[LayerStats]) -> dict[int, float]:
  """Per TFLite node: the quantization noise it adds, relative, per MAC kept float (`quantune`).

  From the two analysis passes, per node (its layers' metrics):

  * activation growth: how much the node multiplies the noise it receives,
    `n_out / n_in - 1`, with `n = 10^(-SQNR/10)` (Eq. 6 in linear power) at its output and at the
    previous measured output in execution order. Eq. 16 takes the same two SQNRs in dB and divides
    by the layer distance; a ratio of powers is what adds up along the network, and the distance
    only shrinks the delta of nodes after unmeasured layers.
  * weight share: the node's own weight noise relative to its output noise, `w / n_out`, with `w`
    from the per-channel weight SQNR (`channel_weight_sqnr_db`; whole-tensor SQNR when absent).
    Per-tensor scales starve the small channels of depthwise convolutions, which the whole-tensor
    SQNR, dominated by the large channels, hides.

  The node's score is the larger of the two, divided by its MACs: the float budget is counted in
  MACs (Eq. 17), so the best use of it removes the most noise per float MAC (a fractional knapsack,
  filled greedily in this order by the selector).

  Returns:
    Node index -> score (higher: keep float first). Nodes without MACs are left out.
  """
  by_node: dict[int, list[LayerStats]] = {}
  for layer in sorted(layers, key=lambda l: l.index):
    if layer.node is not None:
      by_node.setdefault(layer.node, []).append(layer)
  scores: dict[int, float] = {}
  previous_noise = math.nan
  for node, members in sorted(by_node.items(), key=lambda kv: min(l.index for l in kv[1])):
    macs = sum(l.macs for l in members)
    output_noise = _noise_power(_last(l.activation_sqnr_db for l in members))
    weight_db = _last(l.channel_weight_sqnr_db for l in members)
    if math.isnan(weight_db):
      weight_db = _last(l.fused_weight_sqnr_db for l in members)
    if math.isnan(weight_db):
      weight_db = _last(l.weight_sqnr_db for l in members)
    weight_noise = _noise_power(weight_db)
    reference = output_noise if not math.isnan(output_noise) else previous_noise
    growth = (output_noise / previous_noise - 1.0
              if not math.isnan(output_noise) and previous_noise > 0 else math.nan)
    share = weight_noise / reference if not math.isnan(weight_noise) and reference > 0 else math.nan
    benefit = max((v for v in (growth, share, 0.0) if not math.isnan(v)))
    if macs > 0:
      scores[node] = benefit / macs
    if not math.isnan(output_noise):
      previous_noise = output_noise
  return scores


@register(Ranker.QUANTUNE)
def quantune(layers: Sequence[LayerStats], random_state: int = 0) -> list[str]:
  """Our default: nodes by noise removed per float MAC (`node_scores`), label-free, O(n).

  The same two passes as Algorithm 2, but (1) noise measured in linear power and relative to what
  the node receives, (2) per-channel weight noise, (3) benefit per MAC, since the budget is in MACs.
  Layers of one node stay together (the node's layers in execution order); layers without a
  compute node follow, in execution order. See benchmarks/results/accuracy.md for the comparison.
  """
  del random_state
  scores = node_scores(layers)
  ordered = sorted(layers, key=lambda l: l.index)
  nodes = sorted(scores, key=lambda n: (-scores[n], n))
  ranking = [l.name for n in nodes for l in ordered if l.node == n]
  ranked = set(ranking)
  return ranking + [l.name for l in ordered if l.name not in ranked]
