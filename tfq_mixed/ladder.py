"""Step 4, the precision ladder: the cheapest precision per node for the noise it removes.

Every compute node runs in static `int8`, `dynamic_int8` (int8 weights, float activations quantized
at run time: `hybrid`) or `float`. The noise model says how much of the full-int8 model's output
noise an assignment leaves (`NoiseModel`, from the two analysis passes, label-free); the cost model
what it costs in MACs, latency or bytes (`costs`). Starting from full int8, the greedy walk
(`trajectory`) takes, step by step, the move (one node one rung up) that removes the most output
noise per unit of cost, moves that cost nothing first; an island of float neighbours pays its
int8/float borders once, because costs and noise are those of the whole assignment. The walk does
not depend on the budget; a budget picks among its points (`select`).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping, Sequence

from tfq_mixed import costs as costs_lib
from tfq_mixed import segments
from tfq_mixed.propagation import NodeNoise
from tfq_mixed.qtyping import Fallback, Node, Precision

INT8, DYNAMIC, FLOAT = Precision.INT8, Precision.DYNAMIC_INT8, Precision.FLOAT
NOISE_STEP = 0.05
"""A point of the walk each time its moves removed 5 % of the output noise left."""
COST_STEP = 0.01
"""... or added 1 % of the full-int8 model's cost (of all MACs for a `ratio` budget)."""


def moves(fallback: Fallback, dynamic_capable: bool, no_dynamic: bool) -> dict:
  """Precision -> the precisions a node may move up to."""
  dynamic = dynamic_capable and not no_dynamic
  if fallback == Fallback.FLOAT or not dynamic:
    return {INT8: (FLOAT,)}
  if fallback == Fallback.DYNAMIC_INT8:
    return {INT8: (DYNAMIC,)}
  return {INT8: (DYNAMIC, FLOAT), DYNAMIC: (FLOAT,)}


@dataclasses.dataclass(frozen=True)
class NoiseModel:
  """How much of the output's quantization noise an assignment leaves (relative power).

  A node in the int8 domain keeps its own noise N. A float node keeps none of it, but its output
  is rounded again where an int8 op reads it (its rounding R stays). A dynamic_int8 node keeps its
  weight noise, (N - R) scaled by how much finer per-channel dynamic-range weights are than the
  static ones (`weight_ratio`), and R likewise. Ops without MACs in the float domain keep only R
  where an int8 op reads them. Each node's kept noise reaches the output times its gain G.
  """

  noise: Mapping[int, NodeNoise]
  weight_ratio: Mapping[int, float]

  def left(self, graph: costs_lib.Graph, precision: Mapping[int, Precision],
           floating: set[int]) -> float:
    total = 0.0
    for index, n in self.noise.items():
      if index not in floating:
        total += n.own * n.gain
        continue
      requantized = any(c not in floating for c in graph.consumers.get(index, ()))
      kept = n.rounding if requantized else 0.0
      if precision.get(index) == DYNAMIC:
        kept += max(n.own - n.rounding, 0.0) * self.weight_ratio.get(index, 1.0)
      total += kept * n.gain
    return total

  def full_int8(self) -> float:
    return sum(n.own * n.gain for n in self.noise.values())


@dataclasses.dataclass(frozen=True)
class Point:
  """One assignment on the walk: the precision of every compute node not in static int8."""

  precision: tuple[tuple[int, Precision], ...]  # sorted (node, precision), int8 ones left out
  floating: frozenset  # every node whose tensors are float (followers included)
  cost: float
  noise_left: float

  @property
  def precisions(self) -> dict[int, Precision]:
    return dict(self.precision)


class Walk:
  """The greedy walk of one cost kind over one analysis (see the module docstring).

  Args:
    graph: the calibrated model's dataflow.
    noise: the noise model.
    cost: `cost(precision, floating) -> float`, the cost of an assignment.
    allowed: compute node -> {precision: precisions it may move up to}.
    start: the precisions the walk starts from (int8-unsupported and GPU-rejected nodes float).
  """

  def __init__(self, graph: costs_lib.Graph, noise: NoiseModel,
               cost: Callable[[Mapping[int, Precision], set[int]], float],
               allowed: Mapping[int, Mapping[Precision, tuple[Precision, ...]]],
               start: Mapping[int, Precision]):
    self.graph = graph
    self.noise = noise
    self.cost = cost
    self.allowed = allowed
    self._by_index = {n.index: n for n in graph.nodes}
    self._names = {n.index: n.name for n in graph.nodes}
    self.points = [self._point(dict(start))]

  def floating(self, precision: Mapping[int, Precision]) -> set[int]:
    """The float domain: non-int8 compute nodes and the ops without MACs reading only them."""
    chosen = {n for n, p in precision.items() if p != INT8}
    followers = segments.float_followers(self.graph.nodes, self.graph.producers,
                                         [self._names[n] for n in chosen])
    return chosen | {f.index for f in followers}

  def _point(self, precision: dict[int, Precision]) -> Point:
    floating = self.floating(precision)
    return Point(precision=tuple(sorted((n, p) for n, p in precision.items() if p != INT8)),
                 floating=frozenset(floating), cost=self.cost(precision, floating),
                 noise_left=self.noise.left(self.graph, precision, floating))

  def run(self, cost_step: float) -> list[Point]:
    """Walks until no move removes noise; returns the points.

    Each point is a model built and measured when a budget picks among the points, so tiny steps
    are merged: a point is kept where the moves since the last one removed `NOISE_STEP` of its
    noise, or added `cost_step` to its cost, and at the end.
    """
    full = max(self.noise.full_int8(), 1e-30)
    floor = 1e-9 * full
    current = self.points[-1]
    while True:
      state = current.precisions
      best = None
      for node, ladder in self.allowed.items():
        for target in ladder.get(state.get(node, INT8), ()):
          candidate = dict(state)
          candidate[node] = target
          point = self._point(candidate)
          removed = current.noise_left - point.noise_left
          if removed <= floor:
            continue
          extra = point.cost - current.cost
          # Free moves first, the largest first; then the most noise removed per unit of cost.
          key = (0, -removed) if extra <= 0 else (1, -removed / extra)
          if best is None or key < best[0]:
            best = (key, point)
      if best is None:
        break
      current = best[1]
      last = self.points[-1]
      if (last.noise_left - current.noise_left >= NOISE_STEP * last.noise_left or
          current.cost - last.cost >= cost_step):
        self.points.append(current)
    if current is not self.points[-1]:
      self.points.append(current)
    return self.points


def candidates(points: Sequence[Point]) -> list[int]:
  """The points a budget picks among: the full-int8 start, and every point no other point beats
  on both cost and estimated noise (the others are never worth building)."""
  return [i for i, p in enumerate(points)
          if i == 0 or not any(q.cost <= p.cost and q.noise_left < p.noise_left and
                               (q.cost < p.cost or j > i) for j, q in enumerate(points))]


def within(points: Sequence[Point], budget: float) -> list[int]:
  """Indices of the candidate points whose cost fits `budget` (relative slack 1e-12)."""
  return [i for i in candidates(points) if points[i].cost <= budget * (1 + 1e-12) + 1e-12]


def select(points: Sequence[Point], budget: float, measured: Callable[[int], float]) -> int:
  """The candidate within `budget` whose measured output SQNR is highest (the cheapest on ties).

  Picking the best measured candidate among those that fit, rather than the last, makes the
  output SQNR of the result never fall as the budget grows (the candidates do not depend on the
  budget, and a larger one only adds some) and never below full int8's (the start is one).
  """
  fitting = within(points, budget)
  if not fitting:
    return -1
  return max(fitting, key=lambda i: (measured(i), -points[i].cost, -i))


def nodes_by_precision(point: Point, nodes: Sequence[Node]) -> tuple[list[str], list[str]]:
  """(float-domain node names, dynamic_int8 node names) of `point`, in graph order: what the
  writer denylists and what it then makes dynamic-range."""
  dynamic = {n for n, p in point.precision if p == DYNAMIC}
  ordered = sorted(nodes, key=lambda n: n.index)
  return ([n.name for n in ordered if n.index in point.floating],
          [n.name for n in ordered if n.index in dynamic])
