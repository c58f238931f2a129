"""Sorting helpers shared by the rankers: NaN metrics (not applicable) always sort last."""

from __future__ import annotations

import math
from typing import Callable, Sequence

from tfq_mixed.qtyping import LayerStats


def order_by(layers: Sequence[LayerStats], key: Callable[[LayerStats], float],
             descending: bool = False) -> list[LayerStats]:
  """Layers with a finite `key` sorted by it (ties by execution order), then the rest in order."""
  finite = [l for l in layers if not math.isnan(key(l))]
  missing = [l for l in layers if math.isnan(key(l))]
  sign = -1.0 if descending else 1.0
  return sorted(finite, key=lambda l: (sign * key(l), l.index)) + sorted(missing, key=lambda l: l.index)


def ranks(layers: Sequence[LayerStats], key: Callable[[LayerStats], float]) -> dict[str, int]:
  """Ascending rank of each layer by `key`; layers without a value share the last rank."""
  ordered = order_by(layers, key)
  finite = sum(1 for l in layers if not math.isnan(key(l)))
  return {l.name: (position if position < finite else len(layers))
          for position, l in enumerate(ordered)}
