"""The exact latency/noise frontier of a chain (tfq_mixed/exact.py): against every assignment
enumerated, inside the walk (a knapsack exchange the greedy walk misses), and on a real model
(the candidates built as assigned, read back from the files)."""

import itertools

import numpy as np
import pytest

from tfq_mixed import costs, exact, ladder
from tfq_mixed.propagation import NodeNoise
from tfq_mixed.qtyping import Node, Precision

INT8, DYNAMIC, FLOAT = Precision.INT8, Precision.DYNAMIC_INT8, Precision.FLOAT


def _random_chain(seed: int, length: int = 7):
  """A chain of convolutions and ops without MACs with random costs, borders and noise; one node
  forced float, one kept int8 (a stubborn one)."""
  rng = np.random.default_rng(seed)
  nodes, ms, noise, options = [], {}, {}, {}
  for i in range(length):
    compute = i % 2 == 0
    nodes.append(Node(i, f"n{i}", "CONV_2D" if compute else "LEAKY_RELU", (f"n{i}",),
                      int(rng.integers(1, 100)) if compute else 0))
    ms[i] = {INT8: float(rng.uniform(0.1, 1.0)), FLOAT: float(rng.uniform(0.1, 3.0))}
    if compute:
      ms[i][DYNAMIC] = float(rng.uniform(0.1, 1.5))
    noise[i] = NodeNoise(own=float(rng.uniform(0, 2)), rounding=float(rng.uniform(0, 0.5)),
                         gain=float(rng.uniform(0.1, 2)))
    options[i] = (INT8, DYNAMIC, FLOAT) if compute else (INT8, FLOAT)
  options[2], options[3] = (FLOAT,), (INT8,)
  graph = costs.Graph(nodes=tuple(nodes), producers={i: (i - 1,) for i in range(1, length)},
                      reads_input=frozenset({0}), writes_output=frozenset({length - 1}),
                      elements={i: int(rng.integers(10, 1000)) for i in range(length)},
                      input_elements={0: 500})
  model = costs.CostModel(milliseconds=ms, quantize_ms=(0.01, 1e-4), dequantize_ms=(0.02, 2e-4),
                          threads=1, seconds=0.0)
  noise_model = ladder.NoiseModel(noise=noise, weight_ratio={i: 0.3 for i in range(0, length, 2)})
  return graph, model, noise_model, options


def _figures(graph, model, noise_model, assignment):
  precision = {n: p for n, p in assignment.items() if p != INT8}
  return (model.latency_ms(graph, precision, set(precision)),
          noise_model.left(graph, precision, set(precision)))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_the_frontier_is_the_pareto_front_of_every_assignment(seed):
  graph, model, noise_model, options = _random_chain(seed)
  order = [n.index for n in graph.nodes]
  every = [dict(zip(order, chosen)) for chosen in itertools.product(*(options[n] for n in order))]
  front, best = [], float("inf")
  for cost, left in sorted(_figures(graph, model, noise_model, a) for a in every):
    if left < best:
      front.append((cost, left))
      best = left
  found = exact.frontier(graph, noise_model, model, options)
  unit = model.latency_ms(graph, {}, set()) / exact.COST_UNITS
  # Each point is what the whole-model cost and noise models give its assignment.
  for cost, left, assignment in found:
    assert all(assignment[n] in options[n] for n in order)
    assert _figures(graph, model, noise_model, assignment) == pytest.approx((cost, left))
  # Every point of the enumerated front is matched, up to the program's cost rounding.
  for cost, left in front:
    assert any(c <= cost + len(order) * unit and z <= left * (1 + 1e-9) + 1e-12
               for c, z, _ in found), (cost, left)
  # And no point of the program is beaten by an enumerated one at its cost or less.
  for cost, left, _ in found:
    assert min(z for c, z in front if c <= cost + 1e-12) >= left * (1 - 1e-9) - 1e-12


def test_a_graph_with_a_branch_is_not_a_chain():
  graph, model, noise_model, options = _random_chain(0, length=4)
  branched = costs.Graph(nodes=graph.nodes, producers={1: (0,), 2: (1,), 3: (0, 2)},
                         reads_input=graph.reads_input, writes_output=graph.writes_output,
                         elements=graph.elements, input_elements=graph.input_elements)
  assert exact.chain_order(graph) == [0, 1, 2, 3]
  assert exact.chain_order(branched) is None
  with pytest.raises(ValueError, match="chain graph"):
    exact.frontier(branched, noise_model, model, options)


def _knapsack_walk(with_exact: bool):
  """a(0) -> b(1) -> c(2), borders free. Float costs a 6, b 5, c 5 over int8; a removes 6 of the
  noise, b and c 4 each. The greedy walk takes a first (1 per unit of cost against 0.8), and then
  nothing within 10; b and c together fit 10 and remove 8."""
  nodes = tuple(Node(i, name, "CONV_2D", (name,), 10) for i, name in enumerate("abc"))
  graph = costs.Graph(nodes=nodes, producers={1: (0,), 2: (1,)}, reads_input=frozenset({0}),
                      writes_output=frozenset({2}), elements={0: 1, 1: 1, 2: 1},
                      input_elements={0: 1})
  model = costs.CostModel(milliseconds={0: {INT8: 0.0, FLOAT: 6.0}, 1: {INT8: 0.0, FLOAT: 5.0},
                                        2: {INT8: 0.0, FLOAT: 5.0}},
                          quantize_ms=(0.0, 0.0), dequantize_ms=(0.0, 0.0), threads=1, seconds=0.0)
  noise = ladder.NoiseModel(noise={0: NodeNoise(6.0, 0.0, 1.0), 1: NodeNoise(4.0, 0.0, 1.0),
                                   2: NodeNoise(4.0, 0.0, 1.0)}, weight_ratio={})
  only_float = ladder.moves(ladder.Fallback.FLOAT, False, False)
  options = {n: (INT8, FLOAT) for n in range(3)}
  points = [a for _, _, a in exact.frontier(graph, noise, model, options)] if with_exact else ()
  return ladder.Walk(graph, noise, lambda p, f: model.latency_ms(graph, p, f),
                     {n: only_float for n in range(3)}, {},
                     measure=lambda point: -point.noise_left, cost_step=2.0, exact=points)


def test_the_exact_candidate_makes_the_exchange_the_greedy_walk_misses():
  assert _knapsack_walk(False).choose(10.0)[1].precisions == {0: FLOAT}
  walk = _knapsack_walk(True)
  label, point, measured = walk.choose(10.0)
  assert label == "exact@5" and point.precisions == {1: FLOAT, 2: FLOAT}
  assert point.cost == 10.0 and measured == -6.0
  # Candidates come by levels of 5 cost steps (10 here): none below the first.
  assert walk.exact_floor() == 10.0 and walk.exact_candidates(9.99) == []
  budgets = [0.0, 5.0, 6.0, 9.99, 10.0, 11.0, 16.0]
  values = [walk.choose(b)[2] for b in budgets]
  assert values == sorted(values)  # a larger budget never gets a worse model
  for budget in budgets:  # nor does a budget depend on the budgets asked before
    assert _knapsack_walk(True).choose(budget)[0] == walk.choose(budget)[0]


def test_exact_candidates_are_built_as_assigned_on_a_real_chain():
  """A small Keras chain (conv, LeakyReLU, pooling, conv, global pooling, dense): its latency walk has the exact
  frontier beside it, and each candidate a budget weighs is built with the float domain it
  assigns, ops without MACs on their own included, read back from the .tflite."""
  import keras  # pylint: disable=g-import-not-at-top
  import tfq_mixed  # pylint: disable=g-import-not-at-top
  from tfq_mixed import precisions  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(0)
  inputs = keras.Input((16, 16, 3))
  x = keras.layers.Conv2D(16, 3, padding="same", name="c1")(inputs)
  x = keras.layers.LeakyReLU(0.1, name="l1")(x)
  x = keras.layers.MaxPooling2D(name="p1")(x)
  x = keras.layers.Conv2D(32, 3, padding="same", name="c2")(x)
  x = keras.layers.LeakyReLU(0.1, name="l2")(x)
  x = keras.layers.GlobalAveragePooling2D(name="g")(x)
  outputs = keras.layers.Dense(10, name="d")(x)
  model = keras.Model(inputs, outputs)
  samples = np.random.default_rng(0).normal(size=(16, 16, 16, 3)).astype(np.float32)
  analysis = tfq_mixed.analyze(model, samples, verbose=False)
  walk = analysis.walk(costs.CostKind.LATENCY)
  assert walk.exact and exact.chain_order(analysis.graph) is not None
  reference = analysis.costs(1).latency_ms(analysis.graph, {}, set())
  candidates = walk.exact_candidates(1.5 * reference)
  assert candidates
  for label, point, measured in candidates:
    built = analysis._point_model(point)  # pylint: disable=protected-access
    read = precisions.node_precisions(built, analysis.nodes)
    for node in analysis.nodes:
      here = read.get(node.index)
      if node.index in point.floating:
        assert here == point.precisions.get(node.index, FLOAT), (label, node, here)
      elif here is not None:
        assert here == INT8, (label, node, here)
    assert measured == pytest.approx(analysis.output_sqnr_db(built))
  chosen = analysis.quantize(max_latency=1.5).config.budget
  assert chosen["output_sqnr_db"] >= max(m for _, _, m in candidates) - 1e-9
