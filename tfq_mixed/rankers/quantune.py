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


@register(Ranker.QUANTUNE)
def quantune(layers: Sequence[LayerStats], random_state: int = 0) -> list[str]:
  """The default ranker; currently the paper's Algorithm 2 (see `quantune_paper`)."""
  return quantune_paper(layers, random_state)
