"""Every kind of model and dataset users hand us, on tiny real Keras models converted for real.

Models: Sequential, nested, multi-input/multi-output, wrapped subclassed, dynamic input sizes, ops
TFLite has no int8 kernel for, ops whose names cannot be mapped to a layer. Datasets: one-shot and
endless generators, tf.data, per-input arrays, constant inputs and zero-variance activations.
"""

import inspect
import itertools
import math

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfq_mixed
from tfq_mixed import _tflite_private, dataset, macs, rankers
from tfq_mixed.qtyping import LayerStats, Ranker

COMPUTE = set(macs.COMPUTE_OPS)


@pytest.fixture(scope="module", autouse=True)
def _fresh_keras_names():
  """Resets Keras' auto-naming after this module, so tests that check names ('conv2d') don't
  depend on how many unnamed layers ran before them."""
  yield
  keras.backend.clear_session()


def _rng():
  return np.random.default_rng(0)


def _ops(tflite: bytes):
  interpreter = _tflite_private.make_interpreter(tflite)
  return interpreter, _tflite_private.ops(interpreter)


def _weight_dtypes(tflite: bytes) -> dict[str, type]:
  """Op type -> dtype of its weights, for the compute ops of a .tflite."""
  interpreter, ops = _ops(tflite)
  return {op["op_name"]: _tflite_private.tensor_details(interpreter, op["inputs"][1])["dtype"]
          for op in ops if op["op_name"] in COMPUTE}


def _assert_metrics_finite_or_not_applicable(layers):
  """Every metric is finite, or NaN by design (no kernel / no TFLite tensor for the layer)."""
  for layer in layers:
    for key in LayerStats.METRIC_FIELDS:
      value = getattr(layer, key)
      assert math.isnan(value) or math.isfinite(value), (layer.name, key, value)


def _assert_rankings_total(layers):
  names = sorted(l.name for l in layers)
  for ranker in Ranker:
    order = rankers.rank(layers, ranker, random_state=1)
    assert sorted(order) == names, ranker
    assert order == rankers.rank(layers, ranker, random_state=1), ranker


# Sequential and nested.

def test_sequential_with_nested_sequential_is_flattened():
  keras.utils.set_random_seed(0)
  inner = keras.Sequential([keras.Input((8,)), keras.layers.Dense(8, activation="relu", name="d"),
                            keras.layers.Dense(8, name="e")], name="inner")
  model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, name="stem"), inner,
                            keras.layers.Dense(2, name="head")], name="outer")
  x = _rng().normal(size=(16, 6)).astype(np.float32)
  result = tfq_mixed.convert(model, x, ratio=0.5)
  assert [l.name for l in result.layers] == ["stem", "inner/d", "inner/e", "head"]
  compute = [n for n in result.nodes if n.is_compute]
  assert [n.layers for n in compute] == [("stem",), ("inner/d",), ("inner/e",), ("head",)]
  assert result.unmapped_nodes == ()
  assert 0.5 <= result.int8_mac_ratio < 1.0
  _assert_metrics_finite_or_not_applicable(result.layers)


# Multi-input, multi-output.

@pytest.fixture(scope="module")
def two_in_two_out():
  keras.utils.set_random_seed(0)
  a = keras.Input((8,), name="a")
  b = keras.Input((4,), name="b")
  x = keras.layers.Dense(16, activation="relu", name="da")(a)
  y = keras.layers.Dense(16, activation="relu", name="db")(b)
  z = keras.layers.Concatenate(name="cat")([x, y])
  out1 = keras.layers.Dense(3, name="head1")(z)
  out2 = keras.layers.Dense(2, name="head2")(z)
  model = keras.Model([a, b], [out1, out2], name="two_heads")
  rng = _rng()
  xa = rng.normal(size=(32, 8)).astype(np.float32)
  xb = rng.normal(size=(32, 4)).astype(np.float32)
  return model, xa, xb


def test_multi_output_metrics_per_output_and_outputs_mapped(two_in_two_out):
  model, xa, xb = two_in_two_out
  analysis = tfq_mixed.analyze(model, lambda: ([xa[i:i + 1], xb[i:i + 1]] for i in range(32)))
  by_name = {l.name: l for l in analysis.layers}
  assert set(by_name) == {"da", "db", "cat", "head1", "head2"}
  for head in ("head1", "head2"):  # each output has its own TFLite op and its own metrics
    node = next(n for n in analysis.nodes if head in n.layers)
    assert node.layers == (head,) and node.op_type == "FULLY_CONNECTED"
    assert by_name[head].node == node.index
    assert 20 < by_name[head].activation_sqnr_db < 100
    assert 0.99 < by_name[head].cosine_similarity <= 1.0
  assert by_name["head1"].node != by_name["head2"].node
  assert not [n for n in analysis.nodes if not n.layers]  # nothing unmapped

  # ratio 0: every compute op float (the concat stays int8); each signature output is its head.
  result = analysis.quantize(0.0)
  assert set(_weight_dtypes(result.tflite).values()) == {np.float32}
  runner = _tflite_private.make_interpreter(result.tflite).get_signature_runner()
  outputs = runner(input_0=xa[:4], input_1=xb[:4])
  expected = model([xa[:4], xb[:4]])
  np.testing.assert_allclose(outputs["output_0"], expected[0], atol=0.02)
  np.testing.assert_allclose(outputs["output_1"], expected[1], atol=0.02)


def test_multi_input_dataset_forms_agree(two_in_two_out):
  model, xa, xb = two_in_two_out
  xa, xb = xa[:8], xb[:8]
  reference = tfq_mixed.convert(model, [xa, xb], ratio=0.6).config.to_json()
  by_keras_name = tfq_mixed.convert(
      model, lambda: ({"a": xa[i:i + 1], "b": xb[i:i + 1]} for i in range(8)), ratio=0.6)
  from_tf_data = tfq_mixed.convert(
      model, tf.data.Dataset.from_tensor_slices((xa, xb)).batch(3), ratio=0.6)
  assert by_keras_name.config.to_json() == reference
  assert from_tf_data.config.to_json() == reference


# Subclassed models.

class _Block(keras.Model):
  """A subclassed model: no functional graph to trace layer by layer."""

  def __init__(self, **kwargs):
    super().__init__(**kwargs)
    self.first = keras.layers.Dense(8)
    self.second = keras.layers.Dense(3)

  def call(self, x):
    return self.second(keras.ops.relu(self.first(x)))


def test_wrapped_subclassed_model_is_one_layer_with_all_its_ops():
  keras.utils.set_random_seed(0)
  inputs = keras.Input((4,))
  model = keras.Model(inputs, _Block(name="block")(inputs))
  x = _rng().normal(size=(8, 4)).astype(np.float32)
  analysis = tfq_mixed.analyze(model, x)
  assert [(l.name, l.layer_type) for l in analysis.layers] == [("block", "_Block")]
  compute = [n for n in analysis.nodes if n.is_compute]
  assert len(compute) == 2 and all(n.layers == ("block",) for n in compute)
  # Both of the layer's compute nodes can be kept float, not only its first.
  assert analysis.quantize(0.0).int8_mac_ratio == 0.0
  assert set(_weight_dtypes(analysis.quantize(0.0).tflite).values()) == {np.float32}


# Ops TFLite cannot run in int8.

@pytest.fixture(scope="module")
def float_only_ops_result():
  keras.utils.set_random_seed(0)
  inputs = keras.Input((4, 4, 4, 2))
  x = keras.layers.Conv3D(4, 3, padding="same", name="conv3d")(inputs)  # CONV_3D: float kernel only
  x = keras.layers.Flatten(name="flat")(x)
  x = keras.layers.Dense(16, name="dense")(x)
  x = keras.layers.Lambda(lambda t: tf.math.cumsum(t, axis=-1), name="cumsum")(x)  # CUMSUM
  x = keras.layers.LayerNormalization(name="norm")(x)  # its NEG has no int8 kernel
  outputs = keras.layers.Dense(3, name="head")(x)
  model = keras.Model(inputs, outputs, name="float_ops")
  x = _rng().normal(size=(8, 4, 4, 4, 2)).astype(np.float32)
  return tfq_mixed.analyze(model, x)


def test_ops_without_int8_kernel_stay_float_and_are_reported(float_only_ops_result, tmp_path):
  analysis = float_only_ops_result
  assert set(analysis.int8_unsupported_layers) == {"conv3d", "cumsum", "norm"}
  assert {n.op_type for n in analysis.int8_unsupported_nodes} >= {"CONV_3D", "CUMSUM", "NEG"}
  result = analysis.quantize(1.0)  # conversion succeeds; those ops run in float
  assert result.int8_unsupported_layers == analysis.int8_unsupported_layers
  assert result.config.int8_unsupported_layers == analysis.int8_unsupported_layers
  weights = _weight_dtypes(result.tflite)
  assert weights["CONV_3D"] == np.float32 and weights["FULLY_CONNECTED"] == np.int8
  # The int8 MAC ratio is the one the model really has: CONV_3D's MACs run in float.
  conv3d = next(n for n in analysis.nodes if n.op_type == "CONV_3D")
  total = sum(n.macs for n in analysis.nodes)
  assert result.int8_mac_ratio == pytest.approx(1 - conv3d.macs / total)
  report = result.report(limit=None)
  assert "float, no int8 kernel in TFLite: conv3d, cumsum, norm" in report
  assert "CONV_3D:" in report and "CUMSUM:" in report
  precision = {row["layer"]: row["precision"] for row in result.report_rows()}
  assert precision["conv3d"] == precision["cumsum"] == "float"
  # LayerNormalization: its NEG has no int8 kernel, its MEAN, MUL and ADD run in int8.
  assert precision["norm"] == "mixed"
  assert precision["dense"] == precision["head"] == "int8"
  result.save(tmp_path)
  csv_rows = (tmp_path / "report.csv").read_text().splitlines()
  assert any(r.split(",")[1] == "conv3d" and r.split(",")[5] == "float" for r in csv_rows)
  reread = tfq_mixed.SelectiveQuantizationConfig.from_json((tmp_path / "config.json").read_text())
  assert reread.int8_unsupported_layers == ("conv3d", "cumsum", "norm")


def test_a_ratio_no_selection_reaches_warns_and_is_recorded(float_only_ops_result, tmp_path):
  analysis = float_only_ops_result
  total = sum(n.macs for n in analysis.nodes)
  forced = sum(n.macs for n in analysis.int8_unsupported_nodes)
  reachable = 1 - forced / total
  with pytest.warns(tfq_mixed.BudgetWarning,
                    match=rf"Requested ratio=0.9 .* at most {reachable:.4f} can be: CONV_3D has "
                          "no int8 kernel"):
    result = analysis.quantize(0.9)
  assert result.int8_mac_ratio == pytest.approx(reachable)
  (warning,) = result.warnings
  assert "CONV_3D" in warning and warning in result.report()
  result.save(tmp_path)
  reread = tfq_mixed.load_config(tmp_path / "config.json")
  assert reread.warnings == (warning,)
  # A reachable request builds without a warning.
  with warnings.catch_warnings():
    warnings.simplefilter("error", tfq_mixed.BudgetWarning)
    assert analysis.quantize(reachable - 0.01).warnings == ()


def test_budget_spent_by_float_only_ops_first(float_only_ops_result):
  analysis = float_only_ops_result
  total = sum(n.macs for n in analysis.nodes)
  forced = sum(n.macs for n in analysis.int8_unsupported_nodes)
  # Requested float share is below what CONV_3D alone needs: nothing else is kept float.
  result = analysis.quantize(1 - forced / total / 2, fallback="float")
  assert result.config.float_nodes == () and result.float_layers == ()
  assert result.int8_mac_ratio == pytest.approx(1 - forced / total)
  # ratio 0: everything else float too; no compute op left in int8.
  assert set(_weight_dtypes(analysis.quantize(0.0).tflite).values()) == {np.float32}


# Ops whose names cannot be mapped to layers.

def _escaped_scope(t):
  # An absolute name scope escapes the per-layer scope the export puts around every layer call.
  with tf.name_scope("foreign/"):
    return tf.nn.relu(t) * 2.0


def test_unmappable_ops_are_listed_never_attributed():
  keras.utils.set_random_seed(0)
  inputs = keras.Input((8,))
  x = keras.layers.Dense(8, name="d1")(inputs)
  x = keras.layers.Lambda(_escaped_scope, name="escape")(x)
  x = keras.layers.Dense(8, name="d2")(x)
  model = keras.Model(inputs, keras.layers.Dense(3, name="d3")(x))
  analysis = tfq_mixed.analyze(model, _rng().normal(size=(16, 8)).astype(np.float32))
  unmapped = [n for n in analysis.nodes if not n.layers]
  # TFLite fused d1's MatMul with the foreign Relu: its output is not d1's output.
  assert [(n.op_type, n.name) for n in unmapped] == [
      ("FULLY_CONNECTED", "tfqm0000/d1_1/MatMul;foreign/Relu")]
  by_name = {l.name: l for l in analysis.layers}
  assert by_name["d1"].node is None and math.isnan(by_name["d1"].activation_sqnr_db)
  assert by_name["d2"].node is not None and by_name["d2"].activation_sqnr_db > 20
  result = analysis.quantize(0.0)
  assert result.unmapped_nodes == tuple(unmapped)
  assert "unmapped TFLite ops (no layer named; never attributed): FULLY_CONNECTED:" in result.report()
  assert result.int8_mac_ratio == 0.0  # unmapped compute ops can still be kept float


# Input shapes and types.

def test_dynamic_spatial_dims_use_the_samples_size():
  keras.utils.set_random_seed(0)
  inputs = keras.Input((None, None, 2))
  x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
  model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D(name="pool")(x))
  result = tfq_mixed.convert(model, _rng().normal(size=(8, 6, 6, 2)).astype(np.float32), ratio=1.0)
  conv = next(n for n in result.nodes if n.op_type == "CONV_2D")
  assert conv.macs == 4 * 4 * 4 * 3 * 3 * 2  # output 4x4x4 at the 6x6 samples' size
  assert np.isfinite(next(l for l in result.layers if l.name == "pool").activation_sqnr_db)


def test_integer_input_model():
  keras.utils.set_random_seed(0)
  tokens = keras.Input((5,), dtype="int32")
  x = keras.layers.Flatten()(keras.layers.Embedding(10, 4, name="embed")(tokens))
  model = keras.Model(tokens, keras.layers.Dense(2, name="head")(x))
  ints = _rng().integers(0, 10, size=(8, 5))  # int64 is cast to the model's int32
  result = tfq_mixed.convert(model, ints, ratio=0.5)
  assert result.config.num_samples == 8


# Datasets: several passes, caps, forms.

def test_one_shot_generators_are_read_once(digits):
  model, images, _ = digits
  x = images[:12]
  reference = tfq_mixed.convert(model, x, ratio=0.6).config.to_json()
  generator = (s[None] for s in x)  # a generator object: iterable exactly once
  assert tfq_mixed.convert(model, generator, ratio=0.6).config.to_json() == reference
  assert next(generator, None) is None
  one_shot = iter([[s[None]] for s in x])
  calls = []

  def same_iterator_each_time():
    calls.append(1)
    return one_shot
  assert tfq_mixed.convert(model, same_iterator_each_time, ratio=0.6).config.to_json() == reference
  assert len(calls) == 1


def test_endless_and_oversized_datasets_are_capped(digits):
  model, images, _ = digits
  pulled = []

  def endless():
    for i in itertools.count():
      pulled.append(i)
      yield [images[i % len(images)][None]]
  result = tfq_mixed.convert(model, endless, ratio=0.8, max_samples=20)
  assert result.config.num_samples == 20 and len(pulled) == 20
  assert result.config.options["max_samples"] == 20
  repeated = tf.data.Dataset.from_tensor_slices(images[:10]).repeat().batch(7)  # endless
  assert tfq_mixed.analyze(model, repeated, max_samples=30).num_samples == 30
  assert tfq_mixed.analyze(model, images, max_samples=50).num_samples == 50


def test_default_cap_is_documented_500():
  for fn in (tfq_mixed.convert, tfq_mixed.analyze):
    assert inspect.signature(fn).parameters["max_samples"].default == 500
    assert "max_samples" in fn.__doc__
  assert dataset.DEFAULT_MAX_SAMPLES == 500


def test_numpy_samples_of_the_right_dtype_are_not_copied():
  inputs = keras.Input((6, 6, 2))
  model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs)))
  x = _rng().normal(size=(40, 6, 6, 2)).astype(np.float32)
  samples = dataset.load_samples(x, dataset.model_input_specs(model), max_samples=30)
  assert samples.num_samples == 30 and np.shares_memory(samples.arrays[0], x)


# Constant inputs, zero-variance activations.

def _zero_variance_model():
  keras.utils.set_random_seed(0)
  inputs = keras.Input((6, 6, 2))
  x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
  dead = keras.layers.Dense(4, kernel_initializer="zeros", bias_initializer="zeros",
                            name="dead")(keras.layers.Flatten(name="flat")(x))  # always 0
  x = keras.layers.Concatenate(name="cat")([dead, keras.layers.GlobalAveragePooling2D(name="gap")(x)])
  return keras.Model(inputs, keras.layers.Dense(3, name="head")(x))


@pytest.mark.parametrize("value", [0.0, 1.0, -3.5])
def test_constant_inputs_and_zero_variance_activations(value):
  model = _zero_variance_model()
  analysis = tfq_mixed.analyze(model, np.full((8, 6, 6, 2), value, np.float32))
  _assert_metrics_finite_or_not_applicable(analysis.layers)
  by_name = {l.name: l for l in analysis.layers}
  assert math.isfinite(by_name["head"].activation_sqnr_db)
  assert math.isnan(by_name["dead"].weight_sqnr_db) or math.isfinite(by_name["dead"].weight_sqnr_db)
  _assert_rankings_total(analysis.layers)
  for ratio in (0.0, 0.5, 1.0):
    result = analysis.quantize(ratio)
    assert ratio - 1e-9 <= result.int8_mac_ratio <= 1.0


def test_zero_variance_activations_on_varied_inputs():
  model = _zero_variance_model()
  analysis = tfq_mixed.analyze(model, _rng().normal(size=(8, 6, 6, 2)).astype(np.float32))
  dead = next(l for l in analysis.layers if l.name == "dead")
  assert dead.activation_sqnr_db == 100.0 or math.isnan(dead.activation_sqnr_db)
  _assert_metrics_finite_or_not_applicable(analysis.layers)
  _assert_rankings_total(analysis.layers)


def test_a_model_with_a_fixed_batch_of_one_takes_the_quick_start_array(tmp_path):
  """keras.Input(..., batch_size=1): the (N, H, W, C) array is fed one sample at a time."""
  keras.utils.set_random_seed(0)
  inputs = keras.Input((8, 8, 1), batch_size=1)
  x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c1")(inputs)
  x = keras.layers.Conv2D(8, 3, padding="same", name="c2")(x)
  x = keras.layers.Reshape((8 * 8 * 8,))(x)  # a batch-fixed graph: (1, 512)
  outputs = keras.layers.Dense(4, name="head")(x)
  model = keras.Model(inputs, outputs)
  x = _rng().normal(size=(12, 8, 8, 1)).astype(np.float32)
  analysis = tfq_mixed.analyze(model, x)
  assert analysis.num_samples == 12
  result = analysis.quantize(0.5)
  assert result.int8_mac_ratio >= 0.5 and result.config.float_nodes
  interpreter = _tflite_private.make_interpreter(result.tflite)
  assert list(interpreter.get_input_details()[0]["shape_signature"]) == [1, 8, 8, 1]
  runner = interpreter.get_signature_runner()
  (output,) = runner(input_0=x[:1]).values()
  assert output.shape == (1, 4)
  result.save(tmp_path)
  assert tfq_mixed.apply_config(model, x, tmp_path / "config.json").tflite == result.tflite


def test_layer_names_tensorflow_scopes_reject_work_and_are_kept():
  """Keras accepts ';', spaces, ':' and non-ASCII in layer names; TensorFlow's graph scopes do not."""
  keras.utils.set_random_seed(0)
  names = ["conv;1", "conv 2", "scope:3", "café"]
  inputs = keras.Input((8, 8, 1))
  x = inputs
  for name in names:
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name=name)(x)
  outputs = keras.layers.Dense(2, name="head")(keras.layers.Flatten(name="flat")(x))
  model = keras.Model(inputs, outputs)
  x = _rng().normal(size=(8, 8, 8, 1)).astype(np.float32)
  result = tfq_mixed.convert(model, x, ratio=0.8)
  assert [l.name for l in result.layers if l.macs] == names + ["head"]
  assert set(result.layer_precisions) >= set(names)
  assert set(result.float_layers) <= set(names + ["head", "flat"]) and result.float_layers
  assert [layer.name for layer in model.layers[1:5]] == names  # restored
  assert tfq_mixed.apply_config(model, x, result.config).tflite == result.tflite
