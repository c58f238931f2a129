"""Dynamic-range (hybrid) ops (tfq_mixed/hybrid.py): the converter's own dynamic-range model, bit for
bit, and which of them XNNPACK really runs."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfq_mixed
from tfq_mixed import _tflite_private, calibrator, dataset, hybrid, precisions
from tests.conftest import tflite_outputs


@pytest.fixture(scope="module")
def every_op():
  """(model, samples, analysis): CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV, FULLY_CONNECTED and a
  weight below the 1024-element threshold, with random weights."""
  keras.utils.set_random_seed(0)
  inputs = keras.Input((8, 8, 16))
  x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv")(inputs)
  x = keras.layers.DepthwiseConv2D(3, depth_multiplier=4, padding="same", name="dw")(x)  # 1152
  x = keras.layers.Conv2DTranspose(16, 3, strides=2, padding="same", name="up")(x)
  x = keras.layers.Conv2D(4, 1, name="small")(x)  # 16 x 4 = 64 weights: stays float
  x = keras.layers.Flatten(name="flat")(x)
  outputs = keras.layers.Dense(10, name="head")(x)
  model = keras.Model(inputs, outputs, name="every_op")
  samples = np.random.default_rng(0).normal(size=(8, 8, 8, 16)).astype(np.float32)
  return model, samples, tfq_mixed.analyze(model, samples)


def _converter_dynamic_model(model):
  """TFLiteConverter's own dynamic-range model of the same frozen function."""
  specs = dataset.model_input_specs(model)
  converter = _tflite_private.converter_from_function(calibrator.scoped_function(model, specs))
  converter.optimizations = [tf.lite.Optimize.DEFAULT]
  return converter.convert()


def _weights(tflite):
  """Per op, in order: (op name, its int8 weight values, their scales), for hybrid ops."""
  interpreter = _tflite_private.make_interpreter(tflite, builtin_only=True)
  out = []
  for op in _tflite_private.ops(interpreter):
    for t in op["inputs"]:
      details = _tflite_private.tensor_details(interpreter, t) if t >= 0 else None
      if details is not None and details["dtype"] == np.int8:
        out.append((op["op_name"], interpreter.get_tensor(t).copy(),
                    details["quantization_parameters"]["scales"].copy()))
  return out


def _all_dynamic(analysis):
  """Every node with a hybrid kernel and >= 1024 weights dynamic_int8, the rest float."""
  capable = hybrid.eligible_nodes(analysis.calibration.calibrated_model, analysis.nodes)
  return capable, analysis.build([n.name for n in analysis.nodes], [n.name for n in capable])


def test_dynamic_nodes_store_the_converters_weights_bit_for_bit(every_op):
  model, _, analysis = every_op
  capable, ours = _all_dynamic(analysis)
  assert {n.op_type for n in capable} == {"CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV",
                                          "FULLY_CONNECTED"}
  # TensorFlow's quantizer keeps TRANSPOSE_CONV int8 when denylisted by node: the ladder leaves it
  # alone; only every node float (this model) denylists the op type as a whole.
  assert [n.op_type for n in analysis.stubborn_nodes] == ["TRANSPOSE_CONV"]
  assert "TRANSPOSE_CONV" not in {n.op_type for n in analysis.dynamic_capable_nodes}
  assert "small" not in {name for n in capable for name in n.layers}  # 64 < 1024 weights
  theirs = _converter_dynamic_model(model)
  mine, reference = _weights(ours), _weights(theirs)
  assert [w[0] for w in mine] == [w[0] for w in reference] and len(mine) == len(capable)
  for (op, values, scales), (_, want_values, want_scales) in zip(mine, reference):
    np.testing.assert_array_equal(values, want_values, err_msg=op)
    np.testing.assert_array_equal(scales, want_scales, err_msg=op)
  # The nodes read back as dynamic_int8: int8 weights, float activations.
  built = precisions.node_precisions(ours, analysis.nodes)
  assert {n.index for n in analysis.nodes if built.get(n.index) == tfq_mixed.Precision.DYNAMIC_INT8
          } == {n.index for n in capable}


def _run(tflite, x):
  interpreter = _tflite_private.make_interpreter(tflite)
  (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
  interpreter.resize_tensor_input(inp["index"], x.shape)
  interpreter.allocate_tensors()
  interpreter.set_tensor(inp["index"], x)
  interpreter.invoke()
  return interpreter.get_tensor(out["index"])


def test_dynamic_outputs_match_the_converters_model(every_op):
  model, samples, analysis = every_op
  _, ours = _all_dynamic(analysis)
  np.testing.assert_array_equal(_run(ours, samples[:2]),
                                _run(_converter_dynamic_model(model), samples[:2]))


def test_xnnpack_takes_hybrid_conv_and_dense_but_not_depthwise(every_op):
  """Counted from the nodes each XNNPACK partition replaced (the interpreter's DELEGATE nodes)."""
  _, _, analysis = every_op
  _, model = _all_dynamic(analysis)
  interpreter = _tflite_private.make_interpreter(_tflite_private.static_shapes(model))
  taken = _tflite_private.xnnpack_delegated_nodes(model)
  names = {op["index"]: op["op_name"] for op in _tflite_private.ops(interpreter)}
  # TRANSPOSE_CONV is left out: its output shape is computed at run time here (SHAPE, PACK), which
  # XNNPACK does not take in any precision.
  compute = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
  assert sorted(names[i] for i in names if i in taken and names[i] in compute) == [
      "CONV_2D", "CONV_2D", "FULLY_CONNECTED"]  # hybrid conv and dense; the small conv, float
  assert [names[i] for i in names if i not in taken and names[i] in compute] == [
      "DEPTHWISE_CONV_2D"]
  # In full int8, XNNPACK takes every one of them, the depthwise included.
  int8 = analysis.int8_model
  taken = _tflite_private.xnnpack_delegated_nodes(int8)
  int8_ops = _tflite_private.ops(_tflite_private.make_interpreter(int8, builtin_only=True))
  assert [op["op_name"] for op in int8_ops if op["op_name"] in compute and
          op["index"] not in taken] == []


def test_an_int8_op_is_refused_and_a_small_weight_left_float(every_op):
  _, _, analysis = every_op
  conv = next(n for n in analysis.nodes if "conv" in n.layers)
  int8_op = precisions.align_ops(analysis.nodes, _tflite_private.make_interpreter(
      analysis.int8_model, builtin_only=True))[conv.index]["index"]
  with pytest.raises(tfq_mixed.ConversionError, match=rf"op {int8_op}: activation input/output "
                     r"are not float32 \(already quantized\?\)"):
    hybrid.dynamic_quantize_ops(analysis.int8_model, [int8_op])
  small = next(n for n in analysis.nodes if "small" in n.layers)
  float_model = analysis.float_model
  interpreter = _tflite_private.make_interpreter(float_model, builtin_only=True)
  op = precisions.align_ops(analysis.nodes, interpreter)[small.index]
  report = {}
  assert hybrid.dynamic_quantize_ops(float_model, [op["index"]], report=report) == float_model or (
      report["converted"] == [])
  assert "1024" in report["skipped"][op["index"]]


def _float_converter_model(model):
  """TFLiteConverter's plain float model of the same frozen function (no quantization)."""
  specs = dataset.model_input_specs(model)
  return _tflite_private.converter_from_function(
      calibrator.scoped_function(model, specs)).convert()


def test_a_float_transpose_conv_is_float_weights_and_all(every_op):
  """TF 2.21's quantizer leaves a denylisted TRANSPOSE_CONV with int8 weights (a hybrid op): the
  float model, ratio 0, must be float everywhere and compute what the plain float model does."""
  model, samples, analysis = every_op
  for tflite in (analysis.float_model, analysis.quantize(0.0).tflite):
    interpreter = _tflite_private.make_interpreter(tflite, builtin_only=True)
    for op in _tflite_private.ops(interpreter):
      dtypes = {_tflite_private.tensor_details(interpreter, t)["dtype"]
                for t in list(op["inputs"]) + list(op["outputs"]) if t >= 0}
      assert dtypes <= {np.float32, np.int32}, (op["op_name"], dtypes)
  reference = tflite_outputs(_float_converter_model(model), samples)
  ours = tflite_outputs(analysis.float_model, samples)
  np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-5 * np.abs(reference).max())
