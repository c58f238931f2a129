"""Step 3: sensitivity orders over the per-layer metrics table (most sensitive layer first).

A ranker is a small function `(layers, random_state) -> list of layer names` registered under a
`Ranker` name. Every ranker returns a permutation of all layers, deterministic for a `random_state`.
"""

from __future__ import annotations

from typing import Sequence

from tfq_mixed import errors
from tfq_mixed.qtyping import LayerStats, Ranker
from tfq_mixed.rankers import baselines  # registers in_order, random, weight_sqnr, ...
from tfq_mixed.rankers import quantune  # registers quantune, quantune_paper
from tfq_mixed.rankers.registry import RankerFn, get_ranker, register


CUSTOM_RANKING = "custom"
"""The `ranker` a config records when `Analysis.quantize` was given an order of layer names."""


def check_ranking(layers: Sequence[LayerStats], ranking: Sequence[str]) -> tuple[str, ...]:
  """Validates a custom order: distinct names of known layers (a subset is fine), most sensitive first.

  Raises:
    InvalidTypeError: `ranking` is not a list/tuple of strings.
    InvalidArgumentError: an unknown or repeated layer name.
  """
  if not isinstance(ranking, (list, tuple)) or not all(isinstance(n, str) for n in ranking):
    raise errors.InvalidTypeError(
        f"A custom `ranker` must be a list or tuple of layer names (str), most sensitive first. "
        f"Received: {type(ranking).__name__} {str(ranking)[:80]}.")
  known = {l.name for l in layers}
  unknown = [n for n in ranking if n not in known]
  if unknown:
    raise errors.InvalidArgumentError(
        f"The custom `ranker` names {len(unknown)} layer(s) this analysis does not have, e.g. "
        f"{unknown[0]!r}. Expected names from `analysis.layers` (e.g. "
        f"{', '.join(repr(l.name) for l in list(layers)[:3])}). Received: ranker={str(list(ranking))[:120]}.")
  repeated = sorted({n for n in ranking if ranking.count(n) > 1})
  if repeated:
    raise errors.InvalidArgumentError(
        f"The custom `ranker` lists layer {repeated[0]!r} more than once; each layer may appear at "
        "most once. Remove the duplicates.")
  return tuple(ranking)


def rank(layers: Sequence[LayerStats], ranker: "Ranker | str" = Ranker.QUANTUNE,
         random_state: int = 0) -> tuple[str, ...]:
  """Layer names, most sensitive first, by the named ranker."""
  order = tuple(get_ranker(ranker)(layers, random_state))
  if sorted(order) != sorted(l.name for l in layers):
    raise RuntimeError(f"Ranker {ranker!r} did not return a permutation of the layers.")
  return order


__all__ = ["CUSTOM_RANKING", "RankerFn", "check_ranking", "get_ranker", "rank", "register", "baselines", "quantune"]
