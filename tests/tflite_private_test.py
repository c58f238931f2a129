"""Canary for the private TensorFlow Lite APIs we use: fails first when a TF upgrade moves them."""

import inspect

import numpy as np
import tensorflow as tf
from tensorflow.lite.python import convert as tf_convert
from tensorflow.lite.python import lite as tf_lite

from tfq_mixed import _tflite_private


def test_private_entry_points_exist():
  parameters = inspect.signature(tf_convert.mlir_quantize).parameters
  for name in ("disable_per_channel", "fully_quantize", "denylisted_nodes", "input_data_type",
               "output_data_type"):
    assert name in parameters
  converter = tf.lite.TFLiteConverter.from_concrete_functions(
      [tf.function(lambda x: x * 2.0).get_concrete_function(tf.TensorSpec([1, 2]))])
  assert hasattr(converter, "_experimental_calibrate_only")
  assert callable(tf_lite._deduplicate_readonly_buffers)  # pylint: disable=protected-access


def test_calibrate_once_then_quantize_with_and_without_denylist(digits):
  model, images, _ = digits
  converter = tf.lite.TFLiteConverter.from_keras_model(model)
  converter.representative_dataset = lambda: ([x[None]] for x in images[:8])
  calibrated = _tflite_private.calibrate_only(converter)
  float_ops = _tflite_private.ops(_tflite_private.make_interpreter(calibrated))
  assert "QUANTIZE" not in [op["op_name"] for op in float_ops]  # still a float model
  conv = next(op for op in float_ops if op["op_name"] == "CONV_2D")
  conv_name = _tflite_private.tensor_name(_tflite_private.make_interpreter(calibrated),
                                          conv["outputs"][0])

  def filter_dtypes(model_bytes):
    interpreter = _tflite_private.make_interpreter(model_bytes)
    return {_tflite_private.tensor_name(interpreter, op["outputs"][0]):
            _tflite_private.tensor_details(interpreter, op["inputs"][1])["dtype"]
            for op in _tflite_private.ops(interpreter) if op["op_name"] == "CONV_2D"}

  full = filter_dtypes(_tflite_private.quantize(calibrated, per_channel=True))
  assert set(full.values()) == {np.int8}
  mixed = filter_dtypes(_tflite_private.quantize(calibrated, per_channel=True,
                                                 denylisted_nodes=[conv_name]))
  assert mixed[conv_name] == np.float32
  assert sum(d == np.int8 for d in mixed.values()) == len(full) - 1


def test_analyzer_output_format_and_missing_gpu_checker(digits_analysis):
  """The analyzer text `gpu_compatibility` parses: one `Op#` line per op, one `T#` line per tensor,
  the verdict line. TF 2.21's wheel has no GPU checker (it passes RFFT2D); when an upgrade brings
  it back this fails: re-check the parser against its warnings and update docs/deployment.md ("GPU delegate")."""
  from tfq_mixed.deploy import gpu_compatibility  # pylint: disable=g-import-not-at-top
  model = digits_analysis.quantize(0.9).tflite
  text = _tflite_private.analyze_model(model)
  interpreter = _tflite_private.make_interpreter(model)
  ops = _tflite_private.ops(interpreter)
  parsed = gpu_compatibility.parse_analyzer_output(text)
  assert [op.op_name for op in parsed.ops] == [op["op_name"] for op in ops]
  assert sorted(i for _, i in parsed.tensors) == list(range(interpreter._interpreter.NumTensors(0)))  # pylint: disable=protected-access
  assert "Your model looks compatible with GPU delegate" in text and parsed.says_compatible
  assert _tflite_private.analyzer_checks_gpu() is False


def test_layerwise_twins_are_the_numeric_verify_model_without_its_verify_ops(digits):
  """The twin model gives what TF's NumericVerify ops output (dequantized int8 - twin), and its
  int8 ops compute exactly what the plain int8 model computes."""
  model, images, _ = digits
  converter = tf.lite.TFLiteConverter.from_keras_model(model)
  converter.representative_dataset = lambda: ([x[None]] for x in images[:8])
  calibrated = _tflite_private.calibrate_only(converter)
  twin_model, twins = _tflite_private.layerwise_twins(calibrated, per_channel=True)
  verify_model = _tflite_private.quantize(calibrated, per_channel=True, numeric_verify=True)
  plain_model = _tflite_private.quantize(calibrated, per_channel=True)

  def run(model_bytes):
    interpreter = _tflite_private.make_interpreter(model_bytes, preserve_all_tensors=True)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], images[8:9])
    interpreter.invoke()
    return interpreter

  twin, verify, plain = run(twin_model), run(verify_model), run(plain_model)
  verify_ops = [op for op in _tflite_private.ops(verify)
                if op["op_name"] == _tflite_private.NUMERIC_VERIFY_OP]
  assert verify_ops and not [op for op in _tflite_private.ops(twin)
                             if op["op_name"] == _tflite_private.NUMERIC_VERIFY_OP]
  assert twins == {op["inputs"][0]: op["inputs"][1] for op in verify_ops}
  for op in verify_ops:
    output, reference = op["inputs"]
    difference = (_tflite_private.dequantized_tensor(twin, output) - twin.get_tensor(reference))
    np.testing.assert_allclose(difference, verify.get_tensor(op["outputs"][0]), atol=1e-5)
  # Leaving the Q/DQ ops and the twins aside, both models run the same ops on the same values.
  from tfq_mixed import precisions  # pylint: disable=g-import-not-at-top
  twin_outputs = precisions._twin_outputs(_tflite_private.ops(twin), twins)  # pylint: disable=protected-access
  qdq = ("QUANTIZE", "DEQUANTIZE")
  twin_ops = [op for op in _tflite_private.ops(twin)
              if op["op_name"] not in qdq and op["outputs"][0] not in twin_outputs]
  plain_ops = [op for op in _tflite_private.ops(plain) if op["op_name"] not in qdq]
  assert [op["op_name"] for op in twin_ops] == [op["op_name"] for op in plain_ops]
  assert {op["outputs"][0] for op in twin_ops} >= set(twins)
  for a, b in zip(twin_ops, plain_ops):
    np.testing.assert_array_equal(twin.get_tensor(a["outputs"][0]), plain.get_tensor(b["outputs"][0]))


def test_litert_profiler_times_every_node_of_a_real_model(digits_analysis):
  """LiteRT's C API profiler (ctypes) still loads, runs and reports per-op events that map onto
  the nodes; the XNNPACK partitions are read from the interpreter's DELEGATE nodes."""
  for model in (digits_analysis.int8_model, digits_analysis.float_model):
    interpreter = _tflite_private.make_interpreter(_tflite_private.static_shapes(model),
                                                   builtin_only=True)
    nodes = {op["index"] for op in _tflite_private.ops(interpreter)}
    timings = _tflite_private.profile_node_milliseconds(model, runs=5, warmup=1)
    assert set(timings) == nodes
    assert all(t >= 0 for t in timings.values()) and sum(timings.values()) > 0
    taken = _tflite_private.xnnpack_delegated_nodes(model)
    assert set(taken) <= nodes and len(set(taken.values())) >= 1


def test_models_profiled_in_turns_keep_their_own_nodes(digits_analysis):
  """`profile_interleaved` (the cost model's profile) returns each model's own per-node times, in
  the order given."""
  models = [digits_analysis.int8_model, digits_analysis.float_model]
  timings = _tflite_private.profile_interleaved(models, runs=10, warmup=1, rounds=4)
  for model, times in zip(models, timings):
    interpreter = _tflite_private.make_interpreter(_tflite_private.static_shapes(model),
                                                   builtin_only=True)
    assert set(times) == {op["index"] for op in _tflite_private.ops(interpreter)}
    assert sum(times.values()) > 0
  assert len(timings[0]) != len(timings[1])  # the int8 model has its QUANTIZE/DEQUANTIZE ops


def test_custom_op_versions_are_restored_only_where_they_differ(digits):
  model, images, _ = digits
  converter = tf.lite.TFLiteConverter.from_keras_model(model)
  converter.representative_dataset = lambda: ([x[None]] for x in images[:8])
  calibrated = _tflite_private.calibrate_only(converter)

  def with_custom_code(tflite, version):  # an unused custom operator code, as MediaPipe's
    obj = _tflite_private.model_object(tflite)
    code = _tflite_private.schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = _tflite_private.schema.BuiltinOperator.CUSTOM
    code.customCode, code.version = b"Convolution2DTransposeBias", version
    obj.operatorCodes.append(code)
    return _tflite_private.model_bytes(obj)

  def custom_versions(tflite):
    return [(c.customCode, c.version) for c in _tflite_private.model_object(tflite).operatorCodes
            if c.customCode]

  reference = with_custom_code(calibrated, 2)
  quantized = with_custom_code(_tflite_private.quantize(calibrated, per_channel=True), 1)
  restored = _tflite_private.restore_custom_op_versions(quantized, reference)
  assert custom_versions(quantized) == [(b"Convolution2DTransposeBias", 1)]
  assert custom_versions(restored) == [(b"Convolution2DTransposeBias", 2)]
  # Nothing to restore: the very same bytes back.
  assert _tflite_private.restore_custom_op_versions(restored, reference) is restored
  assert _tflite_private.restore_custom_op_versions(quantized, calibrated) is quantized
