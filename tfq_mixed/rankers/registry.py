"""The ranker registry: each sensitivity order is a function registered under a `Ranker` name."""

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
