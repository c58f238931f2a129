"""Property tests (hypothesis): selector budgets, total and deterministic rankings, finite metrics,
and the argument, dataset and config checks, over inputs no hand-written case covers.

tests/selector_test.py, rankers_test.py and metrics_test.py hold the basic properties; these add
what the edge cases of real models bring: nodes TFLite cannot run in int8, layers spread over
several nodes, unmapped compute nodes, ties and NaN in metric tables, constant and zero-variance
activations, streaming in uneven batches.
"""

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tfq_mixed
from tfq_mixed import config as config_lib
from tfq_mixed import dataset, metrics, rankers, selector
from tfq_mixed.qtyping import LayerStats, Node, Precision, Ranker, Selection, check_ratio

_SETTINGS = settings(max_examples=60, deadline=None)


# Selector.

@st.composite
def graphs(draw):
  """(layers, nodes, int8_unsupported): random fused graphs, some layers over several nodes."""
  num_nodes = draw(st.integers(1, 10))
  num_layers = draw(st.integers(1, 12))
  names = [f"l{i}" for i in range(num_layers)]
  nodes = []
  for i in range(num_nodes):
    members = draw(st.lists(st.sampled_from(names), max_size=3, unique=True))
    macs = draw(st.integers(0, 1000))
    nodes.append(Node(index=i, name=f"n{i}", op_type="CONV_2D" if macs else "ADD",
                      layers=tuple(sorted(members, key=names.index)), macs=macs))
  first_node = {}
  for node in nodes:
    for name in node.layers:
      first_node.setdefault(name, node.index)
  layers = [LayerStats(index=i, name=name, layer_type="X", node=first_node.get(name), macs=0)
            for i, name in enumerate(names)]
  unsupported = draw(st.lists(st.integers(0, num_nodes - 1), max_size=3, unique=True))
  return layers, nodes, unsupported


@_SETTINGS
@given(graphs(), st.randoms(use_true_random=False), st.floats(0.0, 1.0))
def test_selector_never_exceeds_the_budget(graph, random, ratio):
  layers, nodes, unsupported = graph
  ranking = [l.name for l in layers]
  random.shuffle(ranking)
  selection = selector.select_float_layers(ranking, layers, nodes, ratio,
                                           int8_unsupported=unsupported)
  total = sum(n.macs for n in nodes)
  forced = sum(nodes[i].macs for i in unsupported)
  by_name = {n.name: n for n in nodes}
  chosen = sum(by_name[name].macs for name in selection.float_nodes)
  budget = (1 - ratio) * total
  # Only compute nodes are chosen, each once, none of the float-anyway ones.
  assert len(set(selection.float_nodes)) == len(selection.float_nodes)
  assert all(by_name[name].is_compute for name in selection.float_nodes)
  assert not set(selection.float_nodes) & {nodes[i].name for i in unsupported}
  assert selection.float_macs == forced + chosen
  if forced <= budget + 1e-9 * max(total, 1):
    assert selection.float_macs <= budget + 1e-9 * max(total, 1)
    assert selection.int8_mac_ratio >= ratio - 1e-9
  else:
    assert chosen == 0  # the float-only nodes alone spend more than the budget
  assert 0.0 <= selection.int8_mac_ratio <= 1.0 and 0.0 <= selection.bops_reduction <= 1.0
  # float_layers: exactly the layers of chosen nodes, in ranking order.
  chosen_layers = {name for n in selection.float_nodes for name in by_name[n].layers}
  chosen_layers |= {l.name for l in layers if l.node is not None and
                    nodes[l.node].name in selection.float_nodes}
  assert set(selection.float_layers) == chosen_layers
  assert list(selection.float_layers) == [name for name in ranking if name in chosen_layers]
  assert selection == selector.select_float_layers(ranking, layers, nodes, ratio,
                                                   int8_unsupported=unsupported)


@_SETTINGS
@given(graphs(), st.lists(st.floats(0.0, 1.0), min_size=2, max_size=5))
def test_selector_monotone_in_ratio(graph, ratios):
  layers, nodes, unsupported = graph
  ranking = [l.name for l in layers]
  previous = None
  for ratio in sorted(ratios):
    selection = selector.select_float_layers(ranking, layers, nodes, ratio,
                                             int8_unsupported=unsupported)
    if previous is not None:
      assert selection.float_macs <= previous
    previous = selection.float_macs


@_SETTINGS
@given(graphs())
def test_ratio_zero_keeps_every_compute_node_float(graph):
  layers, nodes, unsupported = graph
  selection = selector.select_float_layers([l.name for l in layers], layers, nodes, 0.0,
                                           int8_unsupported=unsupported)
  expected = {n.name for n in nodes if n.is_compute} - {nodes[i].name for i in unsupported}
  assert set(selection.float_nodes) == expected
  assert selection.int8_mac_ratio == 0.0 or sum(n.macs for n in nodes) == 0


# Rankers.

metric_values = st.one_of(st.just(math.nan), st.floats(-200, 200, allow_nan=False),
                          st.sampled_from([0.0, 1.0, 100.0, -100.0]))  # ties and caps


@st.composite
def metric_tables(draw):
  size = draw(st.integers(0, 15))
  table = []
  for i in range(size):
    values = {key: draw(metric_values) for key in LayerStats.METRIC_FIELDS}
    if not math.isnan(values["mse"]):
      values["mse"] = abs(values["mse"])
    table.append(LayerStats(index=i, name=f"layer{i}", layer_type="Conv2D",
                            node=draw(st.one_of(st.none(), st.integers(0, 20))),
                            macs=draw(st.integers(0, 100)), **values))
  return table


@_SETTINGS
@given(metric_tables(), st.integers(0, 2**32 - 1))
def test_every_ranking_is_total_and_deterministic(table, seed):
  names = sorted(l.name for l in table)
  for ranker in Ranker:
    order = rankers.rank(table, ranker, random_state=seed)
    assert sorted(order) == names, ranker
    assert order == rankers.rank(list(table), ranker, random_state=seed), ranker
    # The order depends on the metrics, not on the order the table is given in.
    assert order == rankers.rank(table[::-1], ranker, random_state=seed), ranker


# Metrics.

float32_values = st.floats(allow_nan=False, allow_infinity=False, width=32)
activations = hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=3, max_side=40),
                         elements=float32_values)


def _all_metrics(stats):
  return (stats.sqnr_db, stats.mse, stats.cosine_similarity)


@_SETTINGS
@given(activations, st.data())
def test_streaming_metrics_finite_for_any_finite_input(reference, data):
  quantized = data.draw(hnp.arrays(np.float32, reference.shape, elements=float32_values))
  scale = data.draw(st.one_of(st.none(), st.floats(1e-6, 1e3)))
  stats = metrics.StreamingStats(scale=scale, zero_point=data.draw(st.integers(-128, 127)))
  cut = data.draw(st.integers(0, reference.shape[0]))  # two uneven batches
  stats.update(reference[:cut], quantized[:cut])
  stats.update(reference[cut:], quantized[cut:])
  for value in _all_metrics(stats):
    assert math.isfinite(value)
  assert -metrics.SQNR_CAP_DB <= stats.sqnr_db <= metrics.SQNR_CAP_DB
  assert -1.0 <= stats.cosine_similarity <= 1.0 and stats.mse >= 0
  if scale is not None:
    assert math.isfinite(stats.kl_divergence) and stats.kl_divergence >= 0


@_SETTINGS
@given(st.floats(-1e6, 1e6, allow_nan=False), st.floats(-1e6, 1e6, allow_nan=False),
       st.integers(1, 300))
def test_constant_and_zero_variance_activations_stay_finite(value, other, size):
  reference = np.full(size, value, np.float32)
  for quantized in (reference, np.full(size, other, np.float32), np.zeros(size, np.float32)):
    stats = metrics.StreamingStats(scale=0.05)
    stats.update(reference, quantized)
    for result in _all_metrics(stats) + (stats.kl_divergence,):
      assert math.isfinite(result)
    for fn in (metrics.sqnr_db, metrics.mse, metrics.cosine_similarity, metrics.kl_divergence):
      assert math.isfinite(fn(reference, quantized))
  same = metrics.StreamingStats()
  same.update(reference, reference)
  assert same.sqnr_db == metrics.SQNR_CAP_DB and same.mse == 0.0


@_SETTINGS
@given(hnp.arrays(np.float64, st.integers(1, 30), elements=st.floats(-1e3, 1e3)))
def test_sqnr_delta_finite_for_finite_series(values):
  positions = sorted(np.random.default_rng(0).choice(100, size=len(values), replace=False))
  deltas = metrics.sqnr_delta(list(values), positions)
  assert len(deltas) == len(values) and deltas[0] == 0.0
  assert all(math.isfinite(d) for d in deltas)


# Arguments, samples, configs.

@_SETTINGS
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_check_ratio_accepts_exactly_the_unit_interval(ratio):
  if 0.0 <= ratio <= 1.0:
    assert check_ratio(ratio) == ratio
  else:
    with pytest.raises(tfq_mixed.InvalidArgumentError, match=r"`ratio` must be a float in "
                       r"\[0.0, 1.0\]. Received: ratio="):
      check_ratio(ratio)


@_SETTINGS
@given(st.integers(1, 40), st.integers(1, 60), st.integers(1, 7), st.data())
def test_samples_capped_and_non_finite_values_found(num, max_samples, batch, data):
  specs = [dataset.InputSpec(name="input_0", shape=(None, 3, 2), dtype=np.dtype(np.float32))]
  x = np.arange(num * 6, dtype=np.float32).reshape(num, 3, 2)
  for form in (x, lambda: (x[i:i + batch] for i in range(0, num, batch))):
    samples = dataset.load_samples(form, specs, max_samples)
    assert samples.num_samples == min(num, max_samples)
    np.testing.assert_array_equal(samples.arrays[0], x[:max_samples])
  bad = data.draw(st.integers(0, num - 1))
  x[bad, data.draw(st.integers(0, 2)), 1] = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]))
  if bad < max_samples:
    with pytest.raises(tfq_mixed.DatasetError, match=rf"contains NaN or Inf \(sample {bad} "):
      dataset.load_samples(x, specs, max_samples)
  else:  # beyond the cap: never read
    assert dataset.load_samples(x, specs, max_samples).num_samples == max_samples


@_SETTINGS
@given(metric_tables(), st.floats(0.0, 1.0), st.sampled_from(list(Ranker)))
def test_config_json_round_trip(table, ratio, ranker):
  nodes = tuple(Node(index=i, name=f"n{i}", op_type="CONV_2D", layers=(l.name,), macs=l.macs)
                for i, l in enumerate(table))
  layers = [dataclass_with_node(l, i) for i, l in enumerate(table)]
  selection = selector.select_float_layers([l.name for l in layers], layers, nodes, ratio)
  config = config_lib.make_config(
      model_name="m", layers=layers, options={"ratio": ratio, "ranker": ranker.value,
                                              "random_state": 0, "per_channel": True,
                                              "max_samples": 500},
      selection=selection, nodes=nodes,
      built={n.index: (Precision.FLOAT if n.name in selection.float_nodes else Precision.INT8)
             for n in nodes},
      num_samples=3, tensorflow_version="x")
  text = config.to_json()
  assert config_lib.SelectiveQuantizationConfig.from_json(text) == config
  assert json.loads(text)["schema_version"] == config_lib.SCHEMA_VERSION


def dataclass_with_node(layer: LayerStats, node: int) -> LayerStats:
  fields = {k: getattr(layer, k) for k in ("index", "name", "layer_type", "macs") +
            LayerStats.METRIC_FIELDS}
  return LayerStats(node=node, **fields)


def test_selection_defaults_keep_older_callers_working():
  selection = Selection(float_layers=(), float_nodes=(), float_macs=0, total_macs=10)
  assert selection.int8_unsupported_nodes == () and selection.int8_mac_ratio == 1.0


# The ratio contract on real conversions, against an independent MAC count.

_COMPUTE_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "BATCH_MATMUL")


def independent_macs(tflite: bytes, sample: np.ndarray) -> dict[str, int]:
  """MACs per sample of a built model by precision of the activations its compute ops read.

  Counted here from the tensor shapes the interpreter sizes when it runs `sample`, as output size
  x products per output, where products per output are the filter's size over its output
  channels (so neither filter layouts by position nor op options are read, unlike
  `macs.op_macs`): for BATCH_MATMUL, the left operand's matrix size over the output rows.
  """
  from tfq_mixed import _tflite_private  # pylint: disable=g-import-not-at-top
  interpreter = _tflite_private.make_interpreter(tflite, builtin_only=True)
  (detail,) = interpreter.get_input_details()
  interpreter.resize_tensor_input(detail["index"], sample.shape, strict=False)
  interpreter.allocate_tensors()
  interpreter.set_tensor(detail["index"], sample)
  interpreter.invoke()

  def tensor(index):
    details = _tflite_private.tensor_details(interpreter, index)
    return np.asarray(details["shape"]), np.dtype(details["dtype"])

  counts = {"int8": 0, "float": 0}
  for op in _tflite_private.ops(interpreter):
    if op["op_name"] not in _COMPUTE_OPS:
      continue
    out, _ = tensor(op["outputs"][0])
    if op["op_name"] == "BATCH_MATMUL":
      lhs, dtype = tensor(op["inputs"][0])
      macs = out.prod() * (lhs[-1] * lhs[-2] // out[-2])
    else:
      data = op["inputs"][2] if op["op_name"] == "TRANSPOSE_CONV" else op["inputs"][0]
      filter_shape, _ = tensor(op["inputs"][1])
      data_shape, dtype = tensor(data)
      if op["op_name"] == "TRANSPOSE_CONV":  # each input value feeds a kh x kw x Cout patch
        macs = data_shape.prod() * filter_shape.prod() // data_shape[-1]
      else:
        channels = filter_shape[-1] if op["op_name"] == "DEPTHWISE_CONV_2D" else filter_shape[0]
        macs = out.prod() * filter_shape.prod() // channels
    counts["int8" if dtype == np.int8 else "float"] += int(macs) // sample.shape[0]
  return counts


@st.composite
def conv_model_specs(draw):
  """(input size, layers): small real Keras models to build; convolutions with random strides,
  dilations, groups, depth multipliers, transposed convolutions, then a dense head."""
  size = draw(st.sampled_from([8, 12, 16]))
  layers = [(draw(st.sampled_from(["conv", "dilated", "grouped", "depthwise", "transpose"])),
             draw(st.sampled_from([1, 2])), draw(st.sampled_from([2, 3])))
            for _ in range(draw(st.integers(2, 4)))]
  return size, layers


def build_conv_model(spec):
  import keras  # pylint: disable=g-import-not-at-top
  size, layers = spec
  keras.utils.set_random_seed(size)
  inputs = keras.Input((size, size, 4))
  x = inputs
  for i, (kind, one_or_two, two_or_three) in enumerate(layers):
    if kind == "conv":
      x = keras.layers.Conv2D(4 * one_or_two, 3, padding="same", strides=one_or_two,
                              name=f"l{i}")(x)
    elif kind == "dilated":
      x = keras.layers.Conv2D(8, 3, padding="same", dilation_rate=two_or_three, name=f"l{i}")(x)
    elif kind == "grouped":
      x = keras.layers.Conv2D(8, 3, padding="same", groups=2 if x.shape[-1] % 2 == 0 else 1,
                              name=f"l{i}")(x)
    elif kind == "depthwise":
      x = keras.layers.DepthwiseConv2D(3, padding="same", depth_multiplier=one_or_two,
                                       dilation_rate=two_or_three - 1, name=f"l{i}")(x)
    else:
      x = keras.layers.Conv2DTranspose(4, 3, strides=2, padding="same", name=f"l{i}")(x)
    x = keras.layers.ReLU(name=f"relu{i}")(x)
  x = keras.layers.GlobalAveragePooling2D()(x)
  outputs = keras.layers.Dense(5, name="head")(x)
  return keras.Model(inputs, outputs)


@settings(max_examples=8, deadline=None)
@given(conv_model_specs(), st.sampled_from([0.0, 0.3, 0.6, 0.9, 0.97, 1.0]))
def test_int8_mac_ratio_is_the_independently_counted_share(spec, ratio):
  model = build_conv_model(spec)
  x = np.random.default_rng(0).normal(size=(6,) + tuple(model.inputs[0].shape[1:])).astype(
      np.float32)
  result = tfq_mixed.convert(model, x, ratio=ratio)
  counts = independent_macs(result.tflite, x[:1])
  total = counts["int8"] + counts["float"]
  assert result.config.total_macs == total
  assert result.config.float_macs == counts["float"]
  assert result.int8_mac_ratio == pytest.approx(counts["int8"] / total, abs=1e-9)
  assert result.int8_mac_ratio >= ratio - 1e-9  # never below the request
