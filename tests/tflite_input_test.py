"""A float .tflite (path or bytes) as input (tfq_mixed/sources.py, float_tflite.py).

The models are real TFLiteConverter conversions of the digits CNN; Google's MediaPipe models are in
end_to_end/mediapipe_test.py, the SavedModel path in tools_test.py.
"""

import numpy as np
import pytest
import tensorflow as tf

import tfq_mixed
from tfq_mixed import _tflite_private
from tfq_mixed import float_tflite
from tests.conftest import sqnr_db, tflite_outputs


def _float_tflite(model, fp16: bool = False) -> bytes:
  converter = tf.lite.TFLiteConverter.from_keras_model(model)
  if fp16:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
  return converter.convert()


def _op_types(tflite: bytes) -> list[str]:
  return [op["op_name"] for op in _tflite_private.ops(_tflite_private.make_interpreter(tflite))]


@pytest.fixture(scope="module")
def digits_tflite(digits, tmp_path_factory):
  model, images, _ = digits
  path = tmp_path_factory.mktemp("tflite") / "digits.tflite"
  path.write_bytes(_float_tflite(model))
  return str(path), images


def test_a_float_tflite_converts_op_by_op(digits_tflite):
  path, images = digits_tflite
  result = tfq_mixed.convert(path, images[:64], ratio=0.9)
  float_model = open(path, "rb").read()
  # Its layers are the float model's ops, named after the Keras layers they came from.
  assert [kind for _, kind in result.config.layers] == _op_types(float_model)
  names = [name for name, _ in result.config.layers]
  for keras_layer in ("conv1", "dw", "pw", "conv2", "fc1"):
    assert sum(keras_layer in name.split("/")[-1] for name in names) == 1, (keras_layer, names)
  assert result.config.model_name == "digits"
  # The budget holds on the built model, and the mixed model is closer to float than int8 on
  # images it was not calibrated on.
  assert result.int8_mac_ratio >= 0.9
  held_out = images[64:192]
  reference = tflite_outputs(float_model, held_out)
  int8 = tfq_mixed.convert(path, images[:64], ratio=1.0).tflite
  assert sqnr_db(reference, tflite_outputs(result.tflite, held_out)) >= sqnr_db(
      reference, tflite_outputs(int8, held_out))


def test_apply_config_rebuilds_a_tflite_input_byte_for_byte(digits_tflite, tmp_path):
  path, images = digits_tflite
  result = tfq_mixed.convert(path, images[:48], ratio=0.8)
  again = tfq_mixed.convert(open(path, "rb").read(), images[:48], ratio=0.8)
  assert again.config.to_json() == result.config.to_json().replace(
      '"model_name": "digits"', '"model_name": "model"')
  result.save(str(tmp_path / "out"))
  rebuilt = tfq_mixed.apply_config(path, images[:48], str(tmp_path / "out" / "config.json"))
  assert rebuilt.tflite == result.tflite
  # Another model's config is refused.
  float_model = open(path, "rb").read()
  with pytest.raises(tfq_mixed.ConfigError, match="does not match this model"):
    tfq_mixed.apply_config(_drop_last_op(float_model), images[:48], result.config)


def _drop_last_op(model: bytes) -> bytes:
  """The model without its last op (its input becomes the output): another model."""
  obj = _tflite_private.model_object(model)
  subgraph = obj.subgraphs[0]
  last = subgraph.operators.pop()
  subgraph.outputs = np.asarray([last.inputs[0]], np.int32)
  obj.signatureDefs = []
  return _tflite_private.model_bytes(obj)


def test_fp16_weights_are_folded_exactly(digits):
  model, images, _ = digits
  fp16 = _float_tflite(model, fp16=True)
  assert "DEQUANTIZE" in _op_types(fp16)
  # TensorFlow's own calibrator and quantizer fail on the model as it is ...
  calibrated = _tflite_private.calibrate_model(fp16, lambda: ([images[i:i + 1]] for i in range(8)))
  with pytest.raises(tfq_mixed.ConversionError):
    _tflite_private.quantize(calibrated, per_channel=True)
  # ... and take it folded: no fp16 tensor or DEQUANTIZE left, the same outputs bit for bit.
  folded = float_tflite.fold_fp16(fp16)
  assert "DEQUANTIZE" not in _op_types(folded)
  tensors = _tflite_private.model_object(folded).subgraphs[0].tensors
  assert not [t for t in tensors if t.type == _tflite_private.schema.TensorType.FLOAT16]
  np.testing.assert_array_equal(tflite_outputs(folded, images[:16]), tflite_outputs(fp16, images[:16]))
  result = tfq_mixed.convert(fp16, images[:48], ratio=0.9)
  assert result.int8_mac_ratio >= 0.9
  assert "DEQUANTIZE" not in [kind for _, kind in result.config.layers]


def test_densify_reads_csr_and_block_sparse_weights():
  schema = _tflite_private.schema
  rng = np.random.default_rng(0)
  dense = rng.normal(size=(4, 6)).astype(np.float16)
  dense[rng.random(dense.shape) < 0.6] = 0

  def dim(dense_size=None, segments=None, indices=None):
    metadata = schema.DimensionMetadataT()
    if segments is None:
      metadata.format, metadata.denseSize = schema.DimensionType.DENSE, dense_size
      return metadata
    metadata.format = schema.DimensionType.SPARSE_CSR
    metadata.arraySegments, metadata.arrayIndices = schema.Int32VectorT(), schema.Int32VectorT()
    metadata.arraySegments.values, metadata.arrayIndices.values = segments, indices
    return metadata

  # Rows dense, columns CSR: segments and indices written out by hand.
  sparsity = schema.SparsityParametersT()
  sparsity.traversalOrder = [0, 1]
  rows, cols = np.nonzero(dense)
  segments = [0] + [int(np.sum(rows <= r)) for r in range(4)]
  sparsity.dimMetadata = [dim(4), dim(segments=segments, indices=cols.tolist())]
  np.testing.assert_array_equal(
      float_tflite.densify(sparsity, [4, 6], dense[rows, cols]), dense)
  # 2x2 blocks: block rows dense, block columns CSR, each kept block stored whole.
  blocks = dense.reshape(2, 2, 3, 2).transpose(0, 2, 1, 3)  # [block row, block col, 2, 2]
  kept = [(r, c) for r in range(2) for c in range(3) if blocks[r, c].any()]
  sparsity.traversalOrder = [0, 1, 2, 3]
  sparsity.blockMap = [0, 1]
  sparsity.dimMetadata = [dim(2), dim(segments=[0] + [sum(r <= i for r, _ in kept)
                                                      for i in range(2)],
                                     indices=[c for _, c in kept]), dim(2), dim(2)]
  values = np.concatenate([blocks[r, c].ravel() for r, c in kept])
  np.testing.assert_array_equal(float_tflite.densify(sparsity, [4, 6], values),
                                np.where(np.repeat(np.repeat(
                                    np.array([[blocks[r, c].any() for c in range(3)]
                                              for r in range(2)]), 2, 0), 2, 1), dense, 0))


def test_bad_tflite_inputs_say_what_is_wrong(digits, digits_tflite, tmp_path):
  model, images, _ = digits
  path, _ = digits_tflite
  with pytest.raises(tfq_mixed.InvalidArgumentError, match="not a TFLite model.*TFL3"):
    tfq_mixed.convert(b"not a model at all", images[:8])
  with pytest.raises(tfq_mixed.InvalidArgumentError, match="No model at"):
    tfq_mixed.convert(str(tmp_path / "missing.tflite"), images[:8])
  (tmp_path / "folder").mkdir()
  with pytest.raises(tfq_mixed.InvalidArgumentError, match="without saved_model.pb"):
    tfq_mixed.convert(str(tmp_path / "folder"), images[:8])
  with pytest.raises(tfq_mixed.DatasetError):
    tfq_mixed.convert(path, np.zeros((8, 9, 9, 1), np.float32))
  int8 = tfq_mixed.convert(path, images[:16], ratio=1.0).tflite
  with pytest.raises(tfq_mixed.UnsupportedModelError, match="already quantized"):
    tfq_mixed.convert(int8, images[:8])


def _with_custom_op(model: bytes, name: str) -> bytes:
  """The model with its MEAN op turned into a custom op `name` (no kernel anywhere)."""
  obj = _tflite_private.model_object(model)
  code = _tflite_private.schema.OperatorCodeT()
  code.builtinCode = code.deprecatedBuiltinCode = _tflite_private.schema.BuiltinOperator.CUSTOM
  code.customCode, code.version = name.encode(), 1
  obj.operatorCodes.append(code)
  for op in obj.subgraphs[0].operators:
    if obj.operatorCodes[op.opcodeIndex].builtinCode == _tflite_private.schema.BuiltinOperator.MEAN:
      op.opcodeIndex = len(obj.operatorCodes) - 1
      op.builtinOptionsType, op.builtinOptions = 0, None
  return _tflite_private.model_bytes(obj)


def test_custom_ops_are_named_unless_registered(digits_tflite, monkeypatch):
  path, images = digits_tflite
  custom = _with_custom_op(open(path, "rb").read(), "MyPooling")
  with pytest.raises(tfq_mixed.UnsupportedModelError,
                     match="custom ops with no kernel.*MyPooling.*custom_op_registerers"):
    tfq_mixed.convert(custom, images[:8])
  # Registerers go to TensorFlow's calibrator (called with its op resolver); one that does not
  # register the op still gets the op named.
  monkeypatch.setattr(_tflite_private, "_custom_op_registerers", ())
  calls = []
  with pytest.raises(tfq_mixed.UnsupportedModelError, match="no kernel for.*MyPooling"):
    tfq_mixed.convert(custom, images[:8], custom_op_registerers=[calls.append])
  assert calls and all(isinstance(c, int) and c for c in calls)
  with pytest.raises(tfq_mixed.InvalidTypeError, match="custom_op_registerers"):
    tfq_mixed.convert(custom, images[:8], custom_op_registerers="MyRegisterer")


def test_layer_names_keep_keras_names_and_stay_unique():
  names = float_tflite.layer_names(
      ["m/relu1/Relu;m/bn1/batchnorm/mul;m/conv1/convolution", "m/add/Add",
       "conv2d_21", "m/add/Add", "StatefulPartitionedCall_1:0", "a/Relu6;a/dense/MatMul"],
      ["CONV_2D", "ADD", "CONV_2D", "ADD", "SOFTMAX", "FULLY_CONNECTED"])
  assert names == ["m/conv1", "m/add", "conv2d_21", "m/add@1", "softmax_4", "a/dense"]
