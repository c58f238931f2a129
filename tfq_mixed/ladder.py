"""Step 4, the precision ladder: the cheapest precision per node for the noise it removes.

Every compute node runs in static `int8`, `dynamic_int8` (int8 weights, float activations quantized
at run time: `hybrid`) or `float`. The noise model says how much of the full-int8 model's output
noise an assignment leaves (`NoiseModel`, from the two analysis passes, label-free); the cost model
what it costs in MACs, latency or bytes (`costs`). Starting from full int8, the greedy walk
(`Walk`) takes, step by step, the move (one node one rung up, alone or with the int8 nodes that
read its output) that removes the most output noise per unit of cost, moves that cost nothing
first; an island of float neighbours pays its int8/float borders once and removes the rounding of
the outputs inside it, because costs and noise are those of the whole assignment. The walk does
not depend on the budget; each point is checked by measuring the model it makes. Where one dear
move makes a wide gap between two points, a side chain of cheaper moves fills it from below
(`Walk.side`) and trims of the dearer point fill it from above (`Walk.trims`: the dear move kept,
the cheap moves worth least dropped until it fits a level of the gap). On a chain graph, the
exact frontier of the same cost and noise models (`exact`) adds its best point within every 5 %
of the full-int8 model's latency (`Walk.exact_candidates`). A budget takes the best-measuring of
those points that fits it (`Walk.choose`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Callable, Mapping, Optional, Sequence

from tfq_mixed import costs as costs_lib
from tfq_mixed import segments
from tfq_mixed.propagation import NodeNoise
from tfq_mixed.qtyping import Fallback, Node, Precision

INT8, DYNAMIC, FLOAT = Precision.INT8, Precision.DYNAMIC_INT8, Precision.FLOAT
NOISE_STEP = 0.05
"""A point of the walk each time its moves removed 5 % of the output noise left."""
TIE_MARGIN = 1.0
"""A rung dearer in the second cost must remove twice the noise to be preferred (`Walk`)."""
COST_STEP = 0.01
"""... or added 1 % of the full-int8 model's cost (of all MACs for a `ratio` budget)."""
WIDE_GAP = 3.0
"""Two kept points more than 3 cost steps apart (a step of one dear move) have a side chain."""
SIDE_TRIES = 8
"""Models measured at most for one side chain."""
TRIM_TRIES = 4
"""Levels of one wide gap trimmed to at most (the highest ones not yet holding a candidate)."""
EXACT_LEVEL = 5
"""The exact frontier's candidates (`Walk.exact_candidates`): its best point within every multiple
of 5 cost steps (5 % of the full-int8 model's latency), each measured when a budget reaches it."""


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
    return sum(self.node_left(index, precision.get(index), index in floating,
                              any(c not in floating for c in graph.consumers.get(index, ())))
               for index in self.noise)

  def node_left(self, index: int, precision: Optional[Precision], floating: bool,
                requantized: bool) -> float:
    """Node `index`'s term of `left`: in the float domain (`floating`) or not, at `precision`
    (None or a precision), its output `requantized` where an int8 op reads it."""
    n = self.noise.get(index)
    if n is None:
      return 0.0
    if not floating:
      return n.own * n.gain
    kept = n.rounding if requantized else 0.0
    if precision == DYNAMIC:
      kept += max(n.own - n.rounding, 0.0) * self.weight_ratio.get(index, 1.0)
    return kept * n.gain

  def full_int8(self) -> float:
    return sum(n.own * n.gain for n in self.noise.values())


def reachable(ladder: Mapping[Precision, Sequence[Precision]]) -> tuple[Precision, ...]:
  """The rungs above int8 a node's ladder (`moves`) reaches, in the order first reached."""
  found, frontier = [], [INT8]
  while frontier:
    for target in ladder.get(frontier.pop(), ()):
      if target not in found:
        found.append(target)
        frontier.append(target)
  return tuple(found)


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
  """The greedy walk up the ladder of one cost kind over one analysis, checked as it goes.

  From the current point, moves are taken greedily by the noise model (free moves first, then the
  most noise removed per unit of cost) until they removed `NOISE_STEP` of the noise left or added
  `cost_step` to the cost; the model they make is then measured (`measure`: its output SQNR
  against float on the calibration samples). A point that measures at least as well as the last
  kept one is kept; otherwise the first of its moves is ruled out and the walk resumes from the
  last kept point. So the kept points' measured SQNR never falls along the walk. Where the next
  kept point is more than `WIDE_GAP` steps dearer, a side chain fills the gap from below (`side`)
  and trims of the dearer point from above (`trims`). A budget takes the best-measuring kept, side
  or trimmed point that fits it (`choose`): a larger budget never gets a worse model, and none is
  worse than full int8 (the start). Neither the walk nor its side chains and trims depend on the
  budget; they are only made as far as the largest budget asked so far needs.

  Args:
    graph: the calibrated model's dataflow.
    noise: the noise model.
    cost: `cost(precision, floating) -> float`, the cost of an assignment.
    allowed: compute node -> {precision: precisions it may move up to}.
    start: the precisions the walk starts from (int8-unsupported and GPU-rejected nodes float).
    measure: `measure(point) -> output SQNR in dB`, deterministic.
    cost_step: the cost that makes a point by itself.
    tie_break: a second cost (bytes, for a MAC budget where dynamic_int8 and float cost a node
      the same): a node goes to the dearer rung in it only if that removes `TIE_MARGIN` more
      noise than the cheaper rung, and a dynamic_int8 node does not move on to float (a move that
      is free in the first cost but not in the second).
    float_at_top: nodes that go float only with every other node of their op type (TensorFlow's
      quantizer ignores them in `denylisted_nodes`: TRANSPOSE_CONV): float in `top` alone.
    exact: the exact frontier's assignments (`exact.frontier`; a chain graph and a latency cost),
      each node's precision, ops without MACs in the float domain on their own: candidates of
      `choose` beside the walk's (`exact_candidates`).
  """

  def __init__(self, graph: costs_lib.Graph, noise: NoiseModel,
               cost: Callable[[Mapping[int, Precision], set[int]], float],
               allowed: Mapping[int, Mapping[Precision, tuple[Precision, ...]]],
               start: Mapping[int, Precision], measure: Callable[["Point"], float],
               cost_step: float,
               tie_break: Optional[Callable[[Mapping[int, Precision], set[int]], float]] = None,
               float_at_top: Sequence[int] = (),
               exact: Sequence[Mapping[int, Precision]] = ()):
    self.graph = graph
    self.noise = noise
    self.cost = cost
    self.allowed = allowed
    self.measure = measure
    self.cost_step = cost_step
    self.tie_break = tie_break
    self.start = dict(start)
    self.float_at_top = tuple(float_at_top)
    self._names = {n.index: n.name for n in graph.nodes}
    self._floor = 1e-9 * max(noise.full_int8(), 1e-30)
    self.forbidden: set[tuple[int, Precision]] = set()
    first = self._point(dict(start))
    self.points = [first]
    self.measured = [measure(first)]
    self.tried = 1  # models measured, rejected ones included
    self.done = False
    self._reach = -float("inf")  # the highest cost tried beyond the start
    self._sides: dict[int, list[tuple[Point, float]]] = {}
    self._trims: dict[int, list[tuple[Point, float]]] = {}
    self.exact = sorted((self._exact_point(a) for a in exact), key=lambda q: (q.cost, q.noise_left))
    self._exact_measured: dict[tuple, float] = {}

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

  def _best_move(self, current: Point, forbidden: set, below: float = float("inf")):
    """(move, point) of the best move from `current` by the noise model, or None; moves in
    `forbidden` and points costing `below` or more left out.

    A move is one node one rung up, alone or with its readers (`_with_readers`): alone it removes
    the node's own noise but not the rounding of its output where int8 ops read it."""
    state = current.precisions
    best = None
    for node, ladder in self.allowed.items():
      alone, together = [], []
      here = state.get(node, INT8)
      if self.tie_break is not None and here != INT8:
        continue
      for target in ladder.get(here, ()):
        if (node, target) in forbidden:
          continue
        candidate = dict(state)
        candidate[node] = target
        point = self._point(candidate)
        grouped = self._with_readers(node, candidate, point, forbidden)
        for options, found in ((alone, point), (together, grouped)):
          if found is not None and found.cost < below:
            removed = current.noise_left - found.noise_left
            if removed > self._floor:
              options.append((target, found, removed))
      for target, point, removed in self._tie_broken(alone) + self._tie_broken(together):
        extra = point.cost - current.cost
        # Free moves first, the largest first; then the most noise removed per unit of cost.
        key = (0, -removed) if extra <= 0 else (1, -removed / extra)
        if best is None or key < best[0]:
          best = (key, (node, target), point)
    return None if best is None else (best[1], best[2])

  def _with_readers(self, node: int, precision: dict[int, Precision], point: Point,
                    forbidden: set) -> Optional[Point]:
    """`point` (`node` moved up) with the int8 nodes that read `node`'s output moved up too, each
    to its cheaper rung: the island that also removes the rounding of that output where it is
    requantized (`NoiseModel`), which no single move shows. None where no int8 node reads it or
    one of them may not move."""
    readers = [c for c in self.graph.consumers.get(node, ()) if c not in point.floating]
    if not readers:
      return None
    group = dict(precision)
    for reader in sorted(readers):
      ups = [up for up in self.allowed.get(reader, {}).get(INT8, ())
             if (reader, up) not in forbidden]
      if not ups:
        return None
      group[reader] = ups[0] if len(ups) == 1 else min(
          ups, key=lambda up: self._rung_cost(group, reader, up))
    return self._point(group)

  def _rung_cost(self, precision: dict[int, Precision], node: int, up: Precision):
    """(cost, second cost) of `precision` with `node` at `up`: what picks a reader's rung."""
    trial = dict(precision)
    trial[node] = up
    floating = self.floating(trial)
    second = self.tie_break(trial, floating) if self.tie_break is not None else 0.0
    return self.cost(trial, floating), second

  def _tie_broken(self, options: list) -> list:
    """`options` (target, point, removed) of one node, the dearer rung in the second cost dropped
    unless it removes `TIE_MARGIN` more noise (MAC budgets: `tie_break`)."""
    if self.tie_break is None or len(options) != 2:
      return options
    (_, cheap, cheap_removed), (_, dear, dear_removed) = sorted(
        options, key=lambda o: self.tie_break(o[1].precisions, set(o[1].floating)))
    if dear.cost >= cheap.cost and dear_removed < (1 + TIE_MARGIN) * cheap_removed:
      return [o for o in options if o[1] is cheap]
    return options

  def _batch(self, last: Point, forbidden: set, below: float = float("inf")):
    """(first move, point) of the moves of one step from `last` (`_best_move` until they removed
    `NOISE_STEP` of its noise or added `cost_step`); (None, last) if no move is left."""
    current, first_move = last, None
    while True:
      found = self._best_move(current, forbidden, below)
      if found is None:
        break
      move, current = found
      first_move = first_move or move
      if (last.noise_left - current.noise_left >= NOISE_STEP * last.noise_left or
          current.cost - last.cost >= self.cost_step):
        break
    return first_move, current

  def _step(self) -> None:
    """Tries the next point; keeps it if it measures no worse, else rules out its first move."""
    first_move, current = self._batch(self.points[-1], self.forbidden)
    if first_move is None:
      self.done = True
      return
    self.tried += 1
    self._reach = max(self._reach, current.cost)
    value = self.measure(current)
    if value >= self.measured[-1]:
      self.points.append(current)
      self.measured.append(value)
    else:
      self.forbidden.add(first_move)

  def extend(self, limit: float = float("inf"), until: Optional[Callable[[], bool]] = None):
    """Walks on until it has tried a point costing more than `limit`, `until()` holds, or no
    move is left."""
    while not self.done and self._reach <= limit and not (until and until()):
      self._step()

  def _uniform(self, preferred: Precision) -> dict[int, Precision]:
    """The start with every movable node at `preferred` where it can reach it, else at the other
    rung above int8 it can reach (float or dynamic_int8)."""
    precision = dict(self.start)
    for node, ladder in self.allowed.items():
      above = reachable(ladder)
      if above:
        precision[node] = preferred if preferred in above else above[0]
    return precision

  @functools.cached_property
  def top(self) -> tuple[Point, float]:
    """(point, measured output SQNR) of every movable node at its highest rung (float where it
    may be): the candidate beside the walk that the walk may not reach through points measuring
    worse (ops whose int8 errors partly cancel), and the best model where it is also the cheapest
    (small models whose float ops are faster than their int8 ones)."""
    precision = self._uniform(FLOAT)
    if all(p == FLOAT for n, p in precision.items() if n in self.allowed):
      precision.update({node: FLOAT for node in self.float_at_top})
    point = self._point(precision)
    return point, self.measure(point)

  @functools.cached_property
  def dynamic(self) -> Optional[tuple[Point, float]]:
    """(point, measured output SQNR) of every movable node at dynamic_int8 where it may be, the
    others float where they may: TFLite's dynamic-range model (the converter's `Optimize.DEFAULT`
    without data), the alternative users pick most, as a candidate beside the walk. None where
    no node may be dynamic_int8 (`fallback='float'`, `gpu_compatible=True`)."""
    precision = self._uniform(DYNAMIC)
    if DYNAMIC not in precision.values():
      return None
    point = self._point(precision)
    return point, self.measure(point)

  def beside(self) -> list[tuple[str, Point, float]]:
    """[(label, point, measured)] of the uniform candidates beside the walk (`top`, `dynamic`)
    that latency, size and fidelity budgets also weigh; each made once, when first asked."""
    found = [("top",) + self.top]
    if self.dynamic is not None and self.dynamic[0].precision != self.top[0].precision:
      found.append(("dynamic",) + self.dynamic)
    return found

  def select(self, budget: float) -> int:
    """The last kept point whose cost fits `budget`, the walk extended past it; -1 if none."""
    self.extend(budget)
    fitting = [i for i, p in enumerate(self.points) if fits(p.cost, budget)]
    return fitting[-1] if fitting else -1

  def side(self, k: int) -> list[tuple[Point, float]]:
    """The side chain of the gap after kept point `k`, where the next kept point is more than
    `WIDE_GAP` cost steps dearer (one dear move): [(point, measured)] costing between the two.

    The walk steps over such a gap in one move, so a budget inside it would get point `k` and
    leave the rest unused. The side chain walks on from `k` as the walk does (same moves, same
    check), but only through points cheaper than `k + 1`, for at most `SIDE_TRIES` models. Like
    the walk, it does not depend on any budget (`choose`)."""
    if k in self._sides:
      return self._sides[k]
    low, high = self.points[k].cost, self.points[k + 1].cost
    chain, last, value, forbidden = [], self.points[k], self.measured[k], set()
    if high - low > WIDE_GAP * self.cost_step:
      for _ in range(SIDE_TRIES):
        first_move, current = self._batch(last, forbidden, below=high)
        if first_move is None:
          break
        self.tried += 1
        measured = self.measure(current)
        if measured < value:
          forbidden.add(first_move)
          continue
        last, value = current, measured
        if current.cost >= low:
          chain.append((current, measured))
    self._sides[k] = chain
    return chain

  def _down_moves(self, current: Point) -> list[tuple[Point, float, float]]:
    """[(point, noise added, cost saved)] of every move of one node one rung down from `current`
    (to a rung its ladder moves up from to where it is: int8, or dynamic_int8 from float) that
    saves cost."""
    state = current.precisions
    found = []
    for node, ladder in self.allowed.items():
      here = state.get(node, INT8)
      for target in [below for below, ups in ladder.items() if here in ups]:
        candidate = dict(state)
        candidate[node] = target
        point = self._point(candidate)
        saved = current.cost - point.cost
        if saved > 0:
          found.append((point, point.noise_left - current.noise_left, saved))
    return found

  def _trim(self, point: Point, level: float) -> Optional[Point]:
    """`point` with nodes moved down until its cost fits `level`, adding little noise by the noise
    model (a greedy cover): from each point of a path of moves that each save no more than is
    still needed (the least noise added per unit of cost saved first), the one move that makes it
    fit with the least noise added; the trim is the best of those and the path's own end where
    it fits. None if nothing fits."""
    best = None
    while True:
      if fits(point.cost, level):
        return point if best is None or point.noise_left < best.noise_left else best
      moves = self._down_moves(point)
      fitting = [m[0] for m in moves if fits(m[0].cost, level)]
      if fitting:
        found = min(fitting, key=lambda p: (p.noise_left, p.cost))
        if best is None or found.noise_left < best.noise_left:
          best = found
      within = [m for m in moves if m[2] <= point.cost - level and not fits(m[0].cost, level)]
      if not within:
        return best
      point = min(within, key=lambda m: (0, -m[2]) if m[1] <= 0 else (1, m[1] / m[2]))[0]

  def trims(self, k: int) -> list[tuple[Point, float]]:
    """The trims of the wide gap after kept point `k` (as for `side`): [(point, measured)]
    costing between the two.

    A point past the gap holds the dear move and, from earlier steps, cheap moves that removed
    little noise each. Dropping the least useful of those, rather than the dear move, makes a
    model that fits a budget inside the gap and may measure better than anything below it (a
    knapsack's exchange, which a walk that only adds moves never makes). The gap's levels are
    the multiples of `cost_step` inside it; from the highest down, at most `TRIM_TRIES` levels
    whose cost step holds no candidate yet are each filled: every candidate above the level (`k +
    1`, its side and trimmed points) is trimmed to it (`_trim`), and the trim that leaves the least
    noise by the noise model is measured. Like the side chain, the trims do not depend on any
    budget; each is a candidate of `choose`."""
    if k in self._trims:
      return self._trims[k]
    low, high = self.points[k].cost, self.points[k + 1].cost
    trimmed: list[tuple[Point, float]] = []
    if self.cost_step > 0 and high - low > WIDE_GAP * self.cost_step:
      above = [(self.points[k + 1], self.measured[k + 1])] + list(self.side(k))
      level = self.cost_step * math.ceil(high / self.cost_step - 1.0)
      tries = 0
      while level > low and tries < TRIM_TRIES:
        held = [p.cost for p, _ in above + trimmed] + [low]
        if not any(level - self.cost_step < c <= level for c in held):
          tries += 1
          made = [self._trim(p, level) for p, _ in above + trimmed if p.cost > level]
          made = [p for p in made if p is not None and p.cost > low and all(
              p.precision != q.precision for q, _ in above + trimmed)]
          if made:  # the one the noise model likes best, measured
            point = min(made, key=lambda p: (p.noise_left, p.cost))
            self.tried += 1
            trimmed.append((point, self.measure(point)))
        level -= self.cost_step
    self._trims[k] = trimmed
    return trimmed

  def _exact_point(self, assignment: Mapping[int, Precision]) -> Point:
    """A point of the exact frontier: its float domain as it is, no followers added."""
    precision = {n: p for n, p in assignment.items() if p != INT8}
    floating = set(precision)
    return Point(precision=tuple(sorted(precision.items())), floating=frozenset(floating),
                 cost=self.cost(precision, floating),
                 noise_left=self.noise.left(self.graph, precision, floating))

  def exact_floor(self) -> float:
    """The lowest budget with an exact candidate: the first level holding a frontier point
    (infinity without any)."""
    if not self.exact or self.cost_step <= 0:
      return math.inf
    level_cost = EXACT_LEVEL * self.cost_step
    return level_cost * max(1, math.ceil(self.exact[0].cost / level_cost - 1e-9))

  def exact_candidates(self, budget: float) -> list[tuple[str, Point, float]]:
    """[(label, point, measured)]: for every multiple of `EXACT_LEVEL` cost steps up to `budget`,
    the exact frontier's point leaving the least noise within it (labelled `"exact@L"`, L the
    level in cost steps), each measured once. Like the side chains and trims, they do not depend
    on the budget (a larger one has every candidate of a smaller one)."""
    if not self.exact or self.cost_step <= 0:
      return []
    found, seen = [], set()
    level_cost = EXACT_LEVEL * self.cost_step
    for level in range(1, int(budget / level_cost + 1e-9) + 1):
      within = [q for q in self.exact if fits(q.cost, level * level_cost)]
      if not within or within[-1].precision + (within[-1].floating,) in seen:
        continue
      point = within[-1]
      key = point.precision + (point.floating,)
      seen.add(key)
      if key not in self._exact_measured:
        self.tried += 1
        self._exact_measured[key] = self.measure(point)
      found.append((f"exact@{level * EXACT_LEVEL}", point, self._exact_measured[key]))
    return found

  def choose(self, budget: float) -> Optional[tuple["int | str", Point, float]]:
    """(label, point, measured) of the best-measuring candidate that fits `budget`: the kept
    points, the points of their side chains (labelled `"k+j"`, the j-th of point k's chain), their
    trims (`"k-j"`, the j-th trim of the gap after point k) and the exact frontier's
    (`exact_candidates`); the cheaper on a tie. None if none fits.

    The candidates do not depend on the budget, and every one that fits it is made, so a larger
    budget never gets a model that measures worse, and none measures worse than the start."""
    last = self.select(budget)
    while last >= 0 and not self.done and len(self.points) == last + 1:  # the end of the last
      self._step()  # gap that fits
    best = None
    for k, (point, measured) in enumerate(zip(self.points, self.measured)):
      if not fits(point.cost, budget):
        continue
      found = [(k, point, measured)]
      if k + 1 < len(self.points):
        found += [(f"{k}+{j + 1}", p, m) for j, (p, m) in enumerate(self.side(k))
                  if fits(p.cost, budget)]
        found += [(f"{k}-{j + 1}", p, m) for j, (p, m) in enumerate(self.trims(k))
                  if fits(p.cost, budget)]
      for candidate in found:
        if best is None or (candidate[2], -candidate[1].cost) > (best[2], -best[1].cost):
          best = candidate
    for candidate in self.exact_candidates(budget):
      if best is None or (candidate[2], -candidate[1].cost) > (best[2], -best[1].cost):
        best = candidate
    return best


def fits(cost: float, budget: float) -> bool:
  """`cost` within `budget`, up to rounding: every budget check of the ladder and its callers."""
  return cost <= budget * (1 + 1e-12) + 1e-12


def nodes_by_precision(point: Point, nodes: Sequence[Node]) -> tuple[list[str], list[str]]:
  """(float-domain node names, dynamic_int8 node names) of `point`, in graph order: what the
  writer denylists and what it then makes dynamic-range."""
  dynamic = {n for n, p in point.precision if p == DYNAMIC}
  ordered = sorted(nodes, key=lambda n: n.index)
  return ([n.name for n in ordered if n.index in point.floating],
          [n.name for n in ordered if n.index in dynamic])
