"""Step 4, exactly where the graph allows: the latency/noise frontier of a chain, by dynamic program.

Where every op reads only the op before it (Tiny Darknet, VGG- or MobileNet-v1-like models), the
cost model's latency (`costs.CostModel.node_ms`) and the noise model's output noise
(`ladder.NoiseModel.node_left`) are sums of terms that each depend on one op's precision and on
the domain (int8 or float) of the op reading it. A dynamic program over the ops, whose state is the
last op's precision, then finds the *exact* frontier: for every predicted latency, the assignment
leaving the least output noise, over every precision each op may take (its ladder), ops without
MACs in either domain on their own. The greedy walk (`ladder.Walk`) takes moves one at a time
and can miss an exchange several moves away; it weighs these points beside its own
(`Walk.exact_candidates`), each measured before it is chosen. `benchmarks/latency_ceiling.py`
builds and measures the whole frontier of Tiny Darknet.
"""

from __future__ import annotations

import math
from typing import Mapping, Optional, Sequence

from tfq_mixed import costs as costs_lib
from tfq_mixed.qtyping import Precision

INT8 = Precision.INT8
COST_UNITS = 4000
"""The program keys its states on each op's cost rounded to 1/COST_UNITS of the full-int8 model's
(the cost and noise themselves are carried exactly): a state beaten in noise by one no dearer in
that rounding is dropped."""


def chain_order(graph: costs_lib.Graph) -> Optional[list[int]]:
  """The node indices in execution order where each reads only the one before it; else None."""
  order = [n.index for n in graph.nodes]
  for previous, node in zip(order, order[1:]):
    if tuple(graph.producers.get(node, ())) != (previous,):
      return None
  if order and graph.producers.get(order[0]):
    return None
  return order


def frontier(graph: costs_lib.Graph, noise, costs: costs_lib.CostModel,
             options: Mapping[int, Sequence[Precision]]
             ) -> list[tuple[float, float, dict[int, Precision]]]:
  """The exact (latency ms, noise left) frontier of a chain graph, cheapest first.

  Args:
    graph: a chain (`chain_order` is not None).
    noise: the `ladder.NoiseModel`.
    costs: the `costs.CostModel` (its `node_ms` terms).
    options: node -> the precisions it may take (static int8 among them where it may stay).

  Returns:
    [(latency ms, noise left, node -> precision of every node)], each point leaving less noise
    than every cheaper one; what `costs.latency_ms` and `noise.left` give it (up to rounding).

  Raises:
    ValueError: the graph is not a chain.
  """
  order = chain_order(graph)
  if order is None:
    raise ValueError("The exact frontier needs a chain graph: each op reading only the one "
                     "before it.")
  unit = costs.latency_ms(graph, {}, set()) / COST_UNITS or 1.0

  def term(node: int, precision: Precision, reader_float: Optional[bool]) -> tuple[float, float]:
    """(ms, noise) of `node` at `precision`, its reader in the float domain or not (None: no
    reader, the model's output)."""
    floating = precision != INT8
    readers = [] if reader_float is None else [reader_float]
    requantized = reader_float is False
    return (costs.node_ms(graph, node, precision, floating, readers),
            noise.node_left(node, precision, floating, requantized))

  # last precision -> {rounded cost: (ms, noise, path)}, the last op's own terms not yet added.
  states: dict = {p: {0: (0.0, 0.0, (p,))} for p in options[order[0]]}
  for previous, node in zip(order, order[1:]):
    new: dict = {}
    for last, table in states.items():
      for ms, left, path in table.values():
        for precision in options[node]:
          extra_ms, extra_noise = term(previous, last, precision != INT8)
          total, kept = ms + extra_ms, left + extra_noise
          slot = new.setdefault(precision, {})
          key = round(total / unit)
          if key not in slot or slot[key][1] > kept:
            slot[key] = (total, kept, path + (precision,))
    states = {p: _undominated(slot) for p, slot in new.items()}
  ends = []
  for last, table in states.items():
    for ms, left, path in table.values():
      extra_ms, extra_noise = term(order[-1], last, None)
      ends.append((ms + extra_ms, left + extra_noise, dict(zip(order, path))))
  points, best = [], math.inf
  for ms, left, assignment in sorted(ends, key=lambda e: (e[0], e[1])):
    if left < best:
      points.append((ms, left, assignment))
      best = left
  return points


def _undominated(slot: dict) -> dict:
  """The entries no cheaper entry leaves as little noise as."""
  best, kept = math.inf, {}
  for key in sorted(slot):
    if slot[key][1] < best:
      kept[key], best = slot[key], slot[key][1]
  return kept
