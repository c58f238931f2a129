"""End to end on a real trained model (digits CNN): real conversions, real LiteRT interpreters."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfq_mixed
from tfq_mixed import _tflite_private, macs, metrics

COMPUTE = set(macs.COMPUTE_OPS)


def _ops(tflite: bytes):
  interpreter = _tflite_private.make_interpreter(tflite)
  return interpreter, _tflite_private.ops(interpreter)


def _run(tflite: bytes, x: np.ndarray) -> np.ndarray:
  runner = _tflite_private.make_interpreter(tflite).get_signature_runner()
  return list(runner(**{runner.get_input_details().popitem()[0]: x}).values())[0]


def _int8_macs_share(tflite: bytes) -> float:
  """Share of MACs whose op has int8 weights, read from the flatbuffer itself."""
  interpreter, ops = _ops(tflite)
  interpreter.allocate_tensors()
  total = int8 = 0
  for op in ops:
    if op["op_name"] not in COMPUTE:
      continue
    shapes = [tuple(_tflite_private.tensor_details(interpreter, t)["shape"]) if t >= 0 else ()
              for t in op["inputs"]]
    out = tuple(_tflite_private.tensor_details(interpreter, op["outputs"][0])["shape"])
    m = macs.op_macs(op["op_name"], shapes, out)
    total += m
    if _tflite_private.tensor_details(interpreter, op["inputs"][1])["dtype"] == np.int8:
      int8 += m
  return int8 / total


def _plain_int8(model, images) -> bytes:
  converter = tf.lite.TFLiteConverter.from_keras_model(model)
  converter.optimizations = [tf.lite.Optimize.DEFAULT]
  converter.representative_dataset = lambda: ([x[None]] for x in images)
  return converter.convert()


def test_ratio_one_equals_plain_full_int8(digits, digits_analysis):
  model, images, _ = digits
  result = digits_analysis.quantize(1.0)
  assert result.float_layers == () and result.int8_mac_ratio == 1.0
  plain = _plain_int8(model, images[:64])
  assert [op["op_name"] for op in _ops(result.tflite)[1]] == [op["op_name"] for op in _ops(plain)[1]]
  test = images[1297:1397]
  np.testing.assert_array_equal(_run(result.tflite, test), _run(plain, test))


def test_ratio_zero_leaves_no_int8_compute_op(digits_analysis):
  result = digits_analysis.quantize(0.0)
  assert result.int8_mac_ratio == 0.0
  interpreter, ops = _ops(result.tflite)
  compute = [op for op in ops if op["op_name"] in COMPUTE]
  assert compute
  for op in compute:
    assert _tflite_private.tensor_details(interpreter, op["inputs"][1])["dtype"] == np.float32


@pytest.mark.parametrize("ranker", ["quantune", "weight_sqnr", "in_order", "random"])
def test_achieved_ratio_bounds_and_monotone(digits_analysis, ranker):
  nodes = digits_analysis.nodes
  total = sum(n.macs for n in nodes)
  largest = max(n.macs for n in nodes) / total
  previous = -1.0
  for ratio in (0.0, 0.25, 0.5, 0.75, 0.9, 0.97, 1.0):
    result = digits_analysis.quantize(ratio, ranker, fallback="float")
    assert ratio - 1e-9 <= result.int8_mac_ratio < ratio + largest + 1e-9
    assert result.int8_mac_ratio >= previous
    previous = result.int8_mac_ratio
    # The ratio we report is the one the .tflite really has.
    assert _int8_macs_share(result.tflite) == pytest.approx(result.int8_mac_ratio)


def test_float_layers_most_sensitive_first_and_whole_nodes(digits_analysis):
  result = digits_analysis.quantize(0.8, fallback="float")
  ranking = digits_analysis.sensitivity()
  # The chosen compute nodes' layers in ranking order, then those of ops that only read their
  # float outputs (tfq_mixed.segments).
  node_of = {l.name: l.node for l in digits_analysis.layers}
  compute = {n.index for n in digits_analysis.nodes if n.is_compute}
  chosen = [name for name in result.float_layers if node_of[name] in compute]
  positions = [ranking.index(name) for name in chosen]
  assert positions == sorted(positions)
  assert list(result.float_layers[:len(chosen)]) == chosen
  node_of = {l.name: l.node for l in digits_analysis.layers}
  float_nodes = {node_of[name] for name in result.float_layers}
  for layer in digits_analysis.layers:  # every layer of a float node is listed float
    assert (layer.name in result.float_layers) == (layer.node in float_nodes)


def test_metrics_table_is_complete(digits_analysis):
  by_name = {l.name: l for l in digits_analysis.layers}
  assert set(by_name) >= {"conv1", "bn1", "relu1", "dw", "pw", "add", "conv2", "fc1", "logits"}
  for name in ("conv1", "dw", "pw", "conv2", "fc1", "logits"):  # layers with kernels
    assert 20 < by_name[name].weight_sqnr_db < metrics.SQNR_CAP_DB
    assert np.isfinite(by_name[name].fused_weight_sqnr_db)
    assert by_name[name].macs > 0
  for name in ("relu1", "add", "gap", "logits"):  # outputs of TFLite ops
    layer = by_name[name]
    assert 5 < layer.activation_sqnr_db < metrics.SQNR_CAP_DB
    assert layer.mse > 0 and 0.9 < layer.cosine_similarity <= 1.0 and layer.kl_divergence >= 0
  assert np.isnan(by_name["conv1"].activation_sqnr_db)  # internal to the fused Conv+BN+ReLU
  total = sum(n.macs for n in digits_analysis.nodes)
  assert sum(l.macs for l in digits_analysis.layers) == total


@pytest.mark.parametrize("per_channel", [True, False])
def test_weight_quantization_matches_tflite(digits, per_channel):
  """Our symmetric int8 weight quantizer reproduces the int8 weights TFLite writes."""
  model, images, _ = digits
  analysis = tfq_mixed.analyze(model, images[:8], per_channel=per_channel)
  calibrated = _tflite_private.make_interpreter(analysis.calibration.calibrated_model)
  calibrated.allocate_tensors()
  int8 = _tflite_private.make_interpreter(analysis.int8_model)
  int8.allocate_tensors()
  float_ops = [op for op in _tflite_private.ops(calibrated) if op["op_name"] in COMPUTE]
  int8_ops = [op for op in _tflite_private.ops(int8) if op["op_name"] in COMPUTE]
  assert len(float_ops) == len(int8_ops) == 6
  for f_op, q_op in zip(float_ops, int8_ops):
    weights = calibrated.get_tensor(f_op["inputs"][1])
    ours = metrics.quantize_symmetric(weights, per_channel=per_channel,
                                      axis=3 if f_op["op_name"] == "DEPTHWISE_CONV_2D" else 0)
    theirs = _tflite_private.dequantized_tensor(int8, q_op["inputs"][1])
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-7)


def test_same_inputs_give_identical_config_and_apply_config_reproduces(digits, tmp_path):
  model, images, _ = digits
  first = tfq_mixed.convert(model, images[:32], ratio=0.7)
  second = tfq_mixed.convert(model, images[:32], ratio=0.7)
  assert first.config.to_json() == second.config.to_json()
  assert first.tflite == second.tflite
  first.save(tmp_path)
  rebuilt = tfq_mixed.apply_config(model, images[:32], str(tmp_path / "config.json"))
  assert rebuilt.tflite == first.tflite
  parsed = tfq_mixed.SelectiveQuantizationConfig.from_json(first.config.to_json())
  assert parsed == first.config


def test_dataset_forms_agree(digits):
  model, images, _ = digits
  x = images[:16]
  from_numpy = tfq_mixed.convert(model, x, ratio=0.6).config.to_json()
  from_callable = tfq_mixed.convert(model, lambda: ([s[None]] for s in x), ratio=0.6)
  from_dataset = tfq_mixed.convert(model, tf.data.Dataset.from_tensor_slices(x).batch(4), ratio=0.6)
  assert from_callable.config.to_json() == from_numpy
  assert from_dataset.config.to_json() == from_numpy


def test_save_writes_all_three_and_does_not_clobber(digits_analysis, tmp_path):
  result = digits_analysis.quantize(0.8)
  paths = result.save(tmp_path / "out")
  assert sorted(os.listdir(tmp_path / "out")) == ["config.json", "model.tflite", "report.csv"]
  assert (tmp_path / "out" / "model.tflite").read_bytes() == result.tflite
  config = json.loads((tmp_path / "out" / "config.json").read_text())
  assert config["float_layers"] == list(result.float_layers)
  assert config["schema_version"] == 3 and config["tensorflow_version"] == tf.__version__
  rows = (tmp_path / "out" / "report.csv").read_text().splitlines()
  assert len(rows) == 1 + len(digits_analysis.layers)
  floats = {r.split(",")[1] for r in rows[1:] if r.split(",")[5] == "float"}
  assert floats == set(result.float_layers)
  with pytest.raises(tfq_mixed.OutputError, match="already exists.*overwrite=True"):
    result.save(tmp_path / "out")
  assert os.path.exists(paths["model.tflite"])
  digits_analysis.quantize(0.5, fallback="float").save(tmp_path / "out", overwrite=True)
  assert (tmp_path / "out" / "model.tflite").read_bytes() != result.tflite


def test_nested_sequential_and_functional_models_are_flattened(digits):
  _, images, _ = digits
  keras.utils.set_random_seed(1)
  block = keras.Sequential([keras.Input((8, 8, 8)), keras.layers.Conv2D(8, 3, padding="same"),
                            keras.layers.BatchNormalization(), keras.layers.ReLU()], name="block")
  inputs = keras.Input((8, 8, 1))
  x = keras.layers.Conv2D(8, 3, padding="same", name="stem")(inputs)
  x = keras.layers.Add(name="skip")([x, block(x)])
  outputs = keras.layers.Dense(10, name="head")(keras.layers.Flatten(name="flat")(x))
  model = keras.Model(inputs, outputs)
  analysis = tfq_mixed.analyze(model, images[:8])
  names = [l.name for l in analysis.layers]
  assert names == ["stem", "block/conv2d", "block/batch_normalization", "block/re_lu", "skip",
                   "flat", "head"]
  compute = [n for n in analysis.nodes if n.is_compute]
  assert len(compute) == 3 and all(n.layers for n in compute)
  fused = next(n for n in compute if any(l.startswith("block/") for l in n.layers))
  # The block's Conv and ReLU fuse into one CONV_2D; its untrained (identity) BN is folded into
  # constants and leaves no name in the op, so it stays unmapped rather than guessed.
  assert fused.layers == ("block/conv2d", "block/re_lu")


def test_custom_ranking_goes_through_the_same_selector(digits_analysis):
  order = digits_analysis.sensitivity("weight_sqnr")
  for ratio in (0.9, 0.5):
    builtin = digits_analysis.quantize(ratio, "weight_sqnr", fallback="float")
    custom = digits_analysis.quantize(ratio, list(order), fallback="float")
    assert custom.config.float_nodes == builtin.config.float_nodes
    assert custom.tflite == builtin.tflite
    assert custom.config.options["ranker"] == "custom"
  # A subset: only the named layers' nodes can be chosen.
  fc1_only = digits_analysis.quantize(0.0, ["fc1"], fallback="float")
  node_of = {l.name: l.node for l in digits_analysis.layers}
  compute = [n for n in digits_analysis.nodes if n.index == node_of["fc1"]]
  assert fc1_only.config.float_nodes[0] == compute[0].name
  # The config round-trips (ranker 'custom' is a valid recorded option).
  assert tfq_mixed.load_config(custom.config.to_json()).float_nodes == custom.config.float_nodes
  with pytest.raises(tfq_mixed.InvalidArgumentError, match="does not have.*'nope'"):
    digits_analysis.quantize(0.5, ["fc1", "nope"], fallback="float")
  with pytest.raises(tfq_mixed.InvalidArgumentError, match="more than once"):
    digits_analysis.quantize(0.5, ["fc1", "fc1"], fallback="float")


def test_ops_reading_only_float_outputs_stay_float(digits_analysis):
  # Ratio 0: every compute op float, so every op between them too: no Q/DQ op, no int8 tensor.
  everything = digits_analysis.quantize(0.0)
  interpreter, ops = _ops(everything.tflite)
  assert not [op for op in ops if op["op_name"] in ("QUANTIZE", "DEQUANTIZE")]
  # The ADD joins the two branches of the residual block: float when both inputs are (the
  # ladder may also make it float by itself, for the noise its int8 output adds).
  by_type = {n.op_type: n for n in digits_analysis.nodes}
  add = by_type["ADD"]
  followed = 0
  for ratio in (0.9, 0.5, 0.2):
    for fallback in ("float", "auto"):
      result = digits_analysis.quantize(ratio, fallback=fallback)
      names = set(result.config.float_nodes)
      inputs_float = all(n.name in names for n in digits_analysis.nodes
                         if n.index in digits_analysis.op_inputs[add.index])
      assert add.name in names or not inputs_float
      followed += inputs_float
      if fallback == "float":  # the selection before the ladder: float only as a follower
        assert (add.name in names) == inputs_float
      assert ("add" in result.float_layers) == (add.name in names)
  assert followed


def test_a_version_1_config_without_later_metrics_is_migrated(digits_analysis):
  data = json.loads(digits_analysis.quantize(0.8).config.to_json())
  for record in data["metrics"]:
    del record["channel_weight_sqnr_db"]  # version 1 configs written before the metric existed
  with pytest.raises(tfq_mixed.ConfigError, match=r"metrics\[0\].channel_weight_sqnr_db"):
    tfq_mixed.load_config(json.dumps(data))  # version 2 requires it
  data["schema_version"] = 1
  for key in ("layer_precisions", "warnings", "int8_unsupported_layers"):
    del data[key]
  config = tfq_mixed.load_config(json.dumps(data))
  assert config.float_nodes and config.schema_version == 3
  assert all(m["channel_weight_sqnr_db"] is None for m in config.metrics)
  assert config.layer_precisions == {} and config.warnings == ()


def test_op_sqnr_measures_each_nodes_own_noise(digits_analysis):
  # One per node output, from the NumericVerify twins of the int8 pass; a node's own noise is at
  # most what has accumulated at its output, so the local SQNR is not below the activation SQNR.
  measured = [l for l in digits_analysis.layers if not np.isnan(l.activation_sqnr_db)]
  assert measured
  for layer in measured:
    assert np.isfinite(layer.op_sqnr_db)
    assert layer.op_sqnr_db >= layer.activation_sqnr_db - 0.5
    # In steps of the int8 output: about the rounding (RMS 1/sqrt(12) = 0.29 step), less where a
    # fused ReLU makes both sides exactly 0 or an ADD's grids line up, more with weight noise.
    assert 0.1 < layer.op_error_lsb < 64
  # Deep in the network the accumulated noise dominates: the local SQNR is clearly higher.
  assert np.mean([l.op_sqnr_db - l.activation_sqnr_db for l in measured]) > 3.0
  assert all(np.isnan(l.op_sqnr_db) for l in digits_analysis.layers
             if np.isnan(l.activation_sqnr_db))
