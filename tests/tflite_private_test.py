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
