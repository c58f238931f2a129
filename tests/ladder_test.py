"""The precision ladder (tfq_mixed/ladder.py) and the cost model's borders (tfq_mixed/costs.py),
on small graphs worked out by hand."""

import pytest

from tfq_mixed import costs, ladder
from tfq_mixed.propagation import NodeNoise
from tfq_mixed.qtyping import Node, Precision

INT8, DYNAMIC, FLOAT = Precision.INT8, Precision.DYNAMIC_INT8, Precision.FLOAT


def _chain():
  """input -> conv(0) -> relu(1) -> conv(2) -> output; 100 elements per tensor."""
  nodes = (Node(0, "c0", "CONV_2D", ("c0",), 1000), Node(1, "r1", "RELU", ("r1",), 0),
           Node(2, "c2", "CONV_2D", ("c2",), 3000))
  graph = costs.Graph(nodes=nodes, producers={1: (0,), 2: (1,)}, reads_input=frozenset({0}),
                      writes_output=frozenset({2}), elements={0: 100, 1: 100, 2: 100},
                      input_elements={0: 100})
  return nodes, graph


def _cost_model():
  ms = {0: {INT8: 1.0, FLOAT: 4.0, DYNAMIC: 1.5}, 1: {INT8: 0.1, FLOAT: 0.2},
        2: {INT8: 2.0, FLOAT: 8.0, DYNAMIC: 2.5}}
  sizes = {0: {INT8: 10, FLOAT: 40, DYNAMIC: 12}, 1: {INT8: 0, FLOAT: 0},
           2: {INT8: 30, FLOAT: 120, DYNAMIC: 33}}
  return costs.CostModel(milliseconds=ms, quantize_ms=(0.01, 0.001), dequantize_ms=(0.02, 0.002),
                         threads=1, seconds=0.0), costs.Sizes(bytes=sizes, int8_bytes=1000)


def test_latency_of_an_assignment_with_its_borders_by_hand():
  _, graph = _chain()
  model, sizes = _cost_model()
  # Full int8: the input QUANTIZE (100 elements) and the output DEQUANTIZE.
  assert model.latency_ms(graph, {}, set()) == pytest.approx(
      1.0 + 0.1 + 2.0 + (0.01 + 0.1) + (0.02 + 0.2))
  # c2 float: relu's int8 output is dequantized once for it; the output needs no DEQUANTIZE.
  assert model.latency_ms(graph, {2: FLOAT}, {2}) == pytest.approx(
      1.0 + 0.1 + 8.0 + (0.01 + 0.1) + (0.02 + 0.2))
  # c0 dynamic with its relu: the input needs no QUANTIZE; relu's float output is quantized once.
  assert model.latency_ms(graph, {0: DYNAMIC}, {0, 1}) == pytest.approx(
      1.5 + 0.2 + 2.0 + (0.01 + 0.1) + (0.02 + 0.2))
  assert sizes.size_bytes({0: DYNAMIC, 2: FLOAT}, {0, 1, 2}) == 1000 + 2 + 90


def test_noise_left_by_hand():
  nodes, graph = _chain()
  noise = ladder.NoiseModel(
      noise={0: NodeNoise(own=4.0, rounding=1.0, gain=0.5),
             1: NodeNoise(own=0.5, rounding=0.5, gain=1.0),
             2: NodeNoise(own=2.0, rounding=1.0, gain=1.0)},
      weight_ratio={0: 0.25})
  assert noise.full_int8() == pytest.approx(2.0 + 0.5 + 2.0)
  # c0 float with its relu; relu's output is rounded again for c2 (int8): relu keeps its R.
  assert noise.left(graph, {0: FLOAT}, {0, 1}) == pytest.approx(0.5 + 2.0)
  # c0 dynamic: keeps a quarter of its weight noise (4 - 1) * 0.25; relu as above.
  assert noise.left(graph, {0: DYNAMIC}, {0, 1}) == pytest.approx(0.75 * 0.5 + 0.5 + 2.0)
  # Everything float: no noise left (the output is float, nothing is rounded again).
  assert noise.left(graph, {0: FLOAT, 2: FLOAT}, {0, 1, 2}) == 0.0


def _walk(measure, cost_step=0.0):
  _, graph = _chain()
  noise = ladder.NoiseModel(
      noise={0: NodeNoise(4.0, 1.0, 0.5), 1: NodeNoise(0.5, 0.5, 1.0),
             2: NodeNoise(2.0, 1.0, 1.0)}, weight_ratio={})
  # c0 is cheaper in float than in int8 (a 3-channel first conv can be): a free move.
  model, _ = _cost_model()
  model.milliseconds[0][FLOAT] = 0.5
  auto = ladder.moves(ladder.Fallback.AUTO, True, False)
  return ladder.Walk(graph, noise, lambda p, f: model.latency_ms(graph, p, f), {0: auto, 2: auto},
                     {}, measure=measure, cost_step=cost_step)


def test_walk_takes_free_moves_first_then_noise_per_cost():
  walk = _walk(lambda point: -point.noise_left)  # measurements that agree with the noise model
  walk.extend()
  points = walk.points
  assert points[0].precision == ()
  assert points[1].precisions == {0: FLOAT}  # free and removes noise
  assert points[1].cost < points[0].cost
  # Every later point removes noise; the last is the float model; nothing was ruled out.
  assert all(b.noise_left < a.noise_left for a, b in zip(points, points[1:]))
  assert points[-1].noise_left == 0.0 and points[-1].precisions == {0: FLOAT, 2: FLOAT}
  assert walk.forbidden == set() and walk.tried == len(points)


def test_a_move_that_measures_worse_is_ruled_out():
  """The model says c0 float helps; the measurement says it hurts: the walk goes around it."""
  def measure(point):
    return -point.noise_left - (10.0 if (0, FLOAT) in point.precision else 0.0)
  walk = _walk(measure)
  walk.extend()
  assert (0, FLOAT) in walk.forbidden
  assert all((0, FLOAT) not in p.precision for p in walk.points)
  assert walk.measured == sorted(walk.measured)  # never falls along the walk
  assert walk.tried > len(walk.points)


def test_an_island_removes_the_rounding_no_single_move_shows():
  """a's noise is the rounding of its output, which b (int8) reads: a alone removes nothing, a
  with its reader b removes it all. The walk takes that island first, b at its cheaper rung."""
  nodes = (Node(0, "a", "CONV_2D", ("a",), 100), Node(1, "b", "CONV_2D", ("b",), 100),
           Node(2, "c", "CONV_2D", ("c",), 100))
  graph = costs.Graph(nodes=nodes, producers={1: (0,)}, reads_input=frozenset({0, 2}),
                      writes_output=frozenset({1, 2}), elements={0: 10, 1: 10, 2: 10},
                      input_elements={0: 10, 2: 10})
  noise = ladder.NoiseModel(noise={0: NodeNoise(own=1.0, rounding=1.0, gain=1.0),
                                   1: NodeNoise(own=0.1, rounding=0.0, gain=1.0),
                                   2: NodeNoise(own=0.5, rounding=0.0, gain=1.0)},
                            weight_ratio={})
  price = {0: {FLOAT: 0.5}, 1: {DYNAMIC: 0.3, FLOAT: 0.5}, 2: {FLOAT: 1.0}}
  cost = lambda precision, floating: sum(price[n][p] for n, p in precision.items() if p != INT8)
  only_float = ladder.moves(ladder.Fallback.AUTO, False, False)
  walk = ladder.Walk(graph, noise, cost, {0: only_float, 1: ladder.moves(
      ladder.Fallback.AUTO, True, False), 2: only_float}, {}, measure=lambda p: -p.noise_left,
                     cost_step=0.0)
  # Alone: a removes nothing (its output is rounded again for b), b 0.1 for 0.3, c 0.5 for 1.0.
  # a with b dynamic removes 1.0 for 0.8 (b float: 1.1 for 1.0): the most per unit of cost.
  assert noise.left(graph, {0: FLOAT}, {0}) == pytest.approx(noise.full_int8())
  walk.extend()
  assert walk.points[1].precisions == {0: FLOAT, 1: DYNAMIC}
  assert walk.points[1].cost == pytest.approx(0.8)
  assert walk.points[1].noise_left == pytest.approx(0.1 + 0.5)


def test_select_takes_the_last_kept_point_that_fits():
  walk = _walk(lambda point: -point.noise_left)
  start = walk.points[0].cost
  picks = [walk.select(budget) for budget in (start * 0.9, start, start * 2, start * 10)]
  assert picks[0] == 1  # the free move fits a budget below full int8's cost
  values = [walk.measured[i] for i in picks]
  assert values == sorted(values)  # a larger budget never gets a worse model
  assert walk.points[picks[-1]].noise_left == 0.0
  assert walk.select(0.001) == -1  # nothing fits


def test_fallbacks_and_the_gpu_delegate_shape_the_moves():
  assert ladder.moves(ladder.Fallback.AUTO, True, False) == {INT8: (DYNAMIC, FLOAT),
                                                             DYNAMIC: (FLOAT,)}
  assert ladder.moves(ladder.Fallback.AUTO, False, False) == {INT8: (FLOAT,)}
  assert ladder.moves(ladder.Fallback.DYNAMIC_INT8, True, False) == {INT8: (DYNAMIC,)}
  assert ladder.moves(ladder.Fallback.FLOAT, True, False) == {INT8: (FLOAT,)}
  # The GPU delegate rejects hybrid ops: never dynamic_int8 with gpu_compatible.
  assert ladder.moves(ladder.Fallback.AUTO, True, True) == {INT8: (FLOAT,)}


def test_the_top_is_every_movable_node_at_its_highest_rung():
  """The walk cannot pass a point that measures worse; its top is measured beside it."""
  def measure(point):  # c0 float alone hurts; both float is exact
    return 99.0 if point.noise_left == 0.0 else (
        -point.noise_left - (10.0 if (0, FLOAT) in point.precision else 0.0))
  walk = _walk(measure)
  top, value = walk.top
  assert top.precisions == {0: FLOAT, 2: FLOAT} and top.noise_left == 0.0 and value == 99.0
  walk.extend()
  assert all((0, FLOAT) not in p.precision for p in walk.points)  # the walk never gets there
  dynamic_only = ladder.Walk(walk.graph, walk.noise, walk.cost,
                             {0: ladder.moves(ladder.Fallback.DYNAMIC_INT8, True, False),
                              2: ladder.moves(ladder.Fallback.AUTO, False, False)},
                             {}, measure=lambda p: 0.0, cost_step=0.0)
  assert dynamic_only.top[0].precisions == {0: DYNAMIC, 2: FLOAT}


def test_the_dynamic_range_model_is_a_candidate_beside_the_walk():
  """Every node that may be dynamic_int8 at it, the others float: the converter's dynamic-range
  model; none where no node may be dynamic_int8; listed beside the top unless it is the top."""
  _, graph = _chain()
  noise = ladder.NoiseModel(noise={0: NodeNoise(4.0, 1.0, 0.5), 1: NodeNoise(0.5, 0.5, 1.0),
                                   2: NodeNoise(2.0, 1.0, 1.0)}, weight_ratio={})
  model, _ = _cost_model()
  cost = lambda p, f: model.latency_ms(graph, p, f)

  def walk(c0_dynamic_capable, fallback=ladder.Fallback.AUTO, gpu=False):
    allowed = {0: ladder.moves(fallback, c0_dynamic_capable, gpu),
               2: ladder.moves(fallback, True, gpu)}
    return ladder.Walk(graph, noise, cost, allowed, {}, measure=lambda p: -p.cost, cost_step=0.0)

  mixed = walk(c0_dynamic_capable=False)
  point, value = mixed.dynamic
  assert point.precisions == {0: FLOAT, 2: DYNAMIC}
  assert point.floating == {0, 1, 2}  # relu reads only float: float too
  # Its cost by hand: c0 float, relu float, c2 dynamic; all float between them, so no border.
  assert point.cost == pytest.approx(4.0 + 0.2 + 2.5)
  assert value == -point.cost
  assert [label for label, _, _ in mixed.beside()] == ["top", "dynamic"]
  every = walk(c0_dynamic_capable=True)
  assert every.dynamic[0].precisions == {0: DYNAMIC, 2: DYNAMIC}
  for no_dynamic in (walk(True, ladder.Fallback.FLOAT), walk(True, gpu=True)):
    assert no_dynamic.dynamic is None
    assert [label for label, _, _ in no_dynamic.beside()] == ["top"]
  only_dynamic = walk(True, ladder.Fallback.DYNAMIC_INT8)  # its top is the dynamic-range model
  assert only_dynamic.dynamic[0].precision == only_dynamic.top[0].precision
  assert [label for label, _, _ in only_dynamic.beside()] == ["top"]


def _gap_walk(measure=None):
  """a(0) -> b(1) -> c(2); b removes the most noise per cost but costs ten steps: the walk jumps
  from the start over a wide gap to b, then takes a."""
  nodes = (Node(0, "a", "CONV_2D", ("a",), 10), Node(1, "b", "CONV_2D", ("b",), 100),
           Node(2, "c", "CONV_2D", ("c",), 1))
  graph = costs.Graph(nodes=nodes, producers={1: (0,), 2: (1,)}, reads_input=frozenset({0}),
                      writes_output=frozenset({2}), elements={0: 1, 1: 1, 2: 1},
                      input_elements={0: 1})
  noise = ladder.NoiseModel(noise={0: NodeNoise(1.0, 0.0, 1.0), 1: NodeNoise(20.0, 0.0, 1.0),
                                   2: NodeNoise(0.1, 0.0, 1.0)}, weight_ratio={})
  weights = {0: 1.0, 1: 10.0}
  cost = lambda precision, floating: sum(weights[n] for n, p in precision.items() if p != INT8)
  only_float = ladder.moves(ladder.Fallback.FLOAT, False, False)
  return ladder.Walk(graph, noise, cost, {0: only_float, 1: only_float}, {},
                     measure=measure or (lambda point: -point.noise_left), cost_step=1.0)


def test_a_budget_inside_a_wide_gap_gets_the_side_chain():
  """Without the side chain, any budget below b's cost (10) would get full int8 (the start)."""
  walk = _gap_walk()
  assert walk.choose(5.0)[0] == "0+1"  # a alone: the side chain of the gap after the start
  assert walk.choose(5.0)[1].precisions == {0: FLOAT}
  walk.extend()
  assert [p.precisions for p in walk.points] == [{}, {1: FLOAT}, {0: FLOAT, 1: FLOAT}]
  assert walk.side(1) == []  # 10 -> 11 is one step: no side chain
  assert walk.choose(0.5)[0] == 0
  assert walk.choose(10.0)[0] == 1 and walk.choose(11.0)[0] == 2


def test_choose_never_gets_worse_with_the_budget_nor_depends_on_earlier_budgets():
  budgets = [0.0, 0.5, 1.0, 3.0, 9.99, 10.0, 10.5, 11.0, 50.0]
  walk = _gap_walk()
  values = [walk.choose(b)[2] for b in budgets]
  assert values == sorted(values)
  # A fresh walk asked one budget picks what the walk asked every budget picked.
  for budget in budgets:
    assert _gap_walk().choose(budget)[0] == walk.choose(budget)[0]


def _exchange_walk():
  """a(0) -> b(1): a removes the most noise per cost and comes first; b, ten times dearer, next.
  The point past the gap holds both (cost 11); a budget of 10 fits b alone, which removes five
  times a's noise: the exchange a walk that only adds moves never makes."""
  nodes = (Node(0, "a", "CONV_2D", ("a",), 1), Node(1, "b", "CONV_2D", ("b",), 10))
  graph = costs.Graph(nodes=nodes, producers={1: (0,)}, reads_input=frozenset({0}),
                      writes_output=frozenset({1}), elements={0: 1, 1: 1}, input_elements={0: 1})
  noise = ladder.NoiseModel(noise={0: NodeNoise(1.0, 0.0, 1.0), 1: NodeNoise(5.0, 0.0, 1.0)},
                            weight_ratio={})
  weights = {0: 1.0, 1: 10.0}
  cost = lambda precision, floating: sum(weights[n] for n, p in precision.items() if p != INT8)
  only_float = ladder.moves(ladder.Fallback.FLOAT, False, False)
  return ladder.Walk(graph, noise, cost, {0: only_float, 1: only_float}, {},
                     measure=lambda point: -point.noise_left, cost_step=1.0)


def test_a_budget_inside_a_wide_gap_gets_the_dear_move_without_the_cheap_one():
  walk = _exchange_walk()
  walk.extend()
  assert [p.precisions for p in walk.points] == [{}, {0: FLOAT}, {0: FLOAT, 1: FLOAT}]
  assert walk.side(1) == []  # from {a}, b is the only move and lands on the next point
  label, point, _ = walk.choose(10.0)
  assert label == "1-1" and point.precisions == {1: FLOAT} and point.cost == 10.0
  # Every level of the gap below 10 trims back to {a} (the kept point) or the start: nothing new.
  assert [p.precisions for p, _ in walk.trims(1)] == [{1: FLOAT}]
  assert walk.choose(9.5)[0] == 1 and walk.choose(11.0)[0] == 2
  budgets = [0.0, 1.0, 5.0, 9.99, 10.0, 10.5, 11.0]
  values = [walk.choose(b)[2] for b in budgets]
  assert values == sorted(values)  # a larger budget never gets a worse model
  for budget in budgets:  # nor does a budget depend on the budgets asked before
    assert _exchange_walk().choose(budget)[0] == walk.choose(budget)[0]


def test_a_side_point_that_measures_worse_is_not_a_candidate():
  def measure(point):  # a alone hurts, whatever the noise model says
    return -point.noise_left - (50.0 if point.precisions == {0: FLOAT} else 0.0)
  walk = _gap_walk(measure)
  assert walk.choose(5.0)[0] == 0 and walk.side(0) == []
