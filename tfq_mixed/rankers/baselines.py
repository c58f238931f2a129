"""Baseline orders: the paper's comparisons (Table 2) and single-metric ablations (Table 8)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from tfq_mixed.qtyping import LayerStats, Ranker
from tfq_mixed.rankers import ordering
from tfq_mixed.rankers.registry import register


@register(Ranker.IN_ORDER)
def in_order(layers: Sequence[LayerStats], random_state: int = 0) -> list[str]:
  """Execution order: the first layers are kept float first (the paper's "InOrder")."""
  del random_state
  return [l.name for l in sorted(layers, key=lambda l: l.index)]


@register(Ranker.RANDOM)
def random(layers: Sequence[LayerStats], random_state: int = 0) -> list[str]:
  """A seeded random permutation."""
  ordered = sorted(layers, key=lambda l: l.index)
  permutation = np.random.default_rng(random_state).permutation(len(ordered))
  return [ordered[i].name for i in permutation]


@register(Ranker.WEIGHT_SQNR)
def weight_sqnr(layers: Sequence[LayerStats], random_state: int = 0) -> list[str]:
  """Lowest weight SQNR first (Pandey et al. 2023, the paper's "Weight SQNR Order")."""
  del random_state
  return [l.name for l in ordering.order_by(layers, lambda l: l.weight_sqnr_db)]


@register(Ranker.WEIGHT_SQNR_DELTA)
def weight_sqnr_delta(layers: Sequence[LayerStats], random_state: int = 0) -> list[str]:
  """Ablation: lowest weight SQNR delta (Eq. 16) first."""
  del random_state
  return [l.name for l in ordering.order_by(layers, lambda l: l.weight_sqnr_delta)]


@register(Ranker.ACTIVATION_SQNR)
def activation_sqnr(layers: Sequence[LayerStats], random_state: int = 0) -> list[str]:
  """Ablation: lowest activation SQNR first."""
  del random_state
  return [l.name for l in ordering.order_by(layers, lambda l: l.activation_sqnr_db)]


@register(Ranker.MSE)
def mse(layers: Sequence[LayerStats], random_state: int = 0) -> list[str]:
  """Ablation: largest activation MSE first."""
  del random_state
  return [l.name for l in ordering.order_by(layers, lambda l: l.mse, descending=True)]
