"""Step 3: sensitivity orders over the per-layer metrics table (most sensitive layer first).

A ranker is a small function `(layers, random_state) -> list of layer names` registered under a
`Ranker` name. Every ranker returns a permutation of all layers, deterministic for a `random_state`.
"""

from __future__ import annotations

from typing import Callable, Protocol, Sequence

from tfq_mixed.qtyping import LayerStats, Ranker


class RankerFn(Protocol):

  def __call__(self, layers: Sequence[LayerStats], random_state: int) -> list[str]:
    ...


_REGISTRY: dict[Ranker, RankerFn] = {}


def register(name: Ranker) -> Callable[[RankerFn], RankerFn]:
  def decorator(fn: RankerFn) -> RankerFn:
    _REGISTRY[name] = fn
    return fn
  return decorator


def get_ranker(name: "Ranker | str") -> RankerFn:
  return _REGISTRY[Ranker.parse(name)]


def rank(layers: Sequence[LayerStats], ranker: "Ranker | str" = Ranker.QUANTUNE,
         random_state: int = 0) -> tuple[str, ...]:
  """Layer names, most sensitive first, by the named ranker."""
  order = tuple(get_ranker(ranker)(layers, random_state))
  if sorted(order) != sorted(l.name for l in layers):
    raise RuntimeError(f"Ranker {ranker!r} did not return a permutation of the layers.")
  return order


from tfq_mixed.rankers import baselines  # pylint: disable=g-import-not-at-top,wrong-import-position
from tfq_mixed.rankers import quantune  # pylint: disable=g-import-not-at-top,wrong-import-position

__all__ = ["RankerFn", "get_ranker", "rank", "register", "baselines", "quantune"]
