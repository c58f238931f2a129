"""Result.to_onnx: tf2onnx's QDQ ONNX of the mixed model, run in ONNX Runtime against LiteRT.

Tolerance, on 200 held-out digits images (not the 64 calibration ones), logits compared:

* ONNX Runtime with its default graph optimizations (what users get): max |ORT - LiteRT| <= 3 % of
  the LiteRT logits' range, mean <= 1 %, top-1 agreement >= 98 %. ORT replaces each QDQ group by
  its own int8 kernels (QLinearConv, ...) and folds Relu/Clip into the QuantizeLinear after them;
  they requantize with other rounding than LiteRT's, so an intermediate int8 tensor can differ by a
  few quantization steps (up to 3 steps, on ~10-20 % of elements, measured on digits at ratio 0.9),
  which the float layers after it carry to the logits (measured: max 1.0 % of the range, top-1
  100 %). At ratio 1.0 the two agree exactly; at 0.0 (no int8 op) to float rounding.
* ONNX Runtime with graph optimizations off runs the QDQ graph literally (dequantize, float op,
  quantize): every int8 tensor then matches LiteRT's, and the logits agree within 0.1 % of the
  range.
"""

import json

import numpy as np
import pytest

import tfq_mixed
from tfq_mixed import _tflite_private
from tfq_mixed.deploy import onnx_export

onnx = pytest.importorskip("onnx",
                           reason="ONNX export needs the onnx extra: pip install -e '.[onnx]'")
pytest.importorskip("tf2onnx", reason="ONNX export needs tf2onnx: pip install -e '.[onnx]'")
ort = pytest.importorskip("onnxruntime",
                          reason="the ORT comparison needs onnxruntime: pip install -e '.[onnx]'")

RATIOS = (1.0, 0.9, 0.0)
MAX_ERROR_OF_RANGE = 0.03
MEAN_ERROR_OF_RANGE = 0.01
MIN_TOP1_AGREEMENT = 0.98
UNOPTIMIZED_MAX_ERROR_OF_RANGE = 0.001


def _litert(tflite: bytes, x: np.ndarray) -> np.ndarray:
  interpreter = _tflite_private.make_interpreter(tflite)
  detail = interpreter.get_input_details()[0]
  interpreter.resize_tensor_input(detail["index"], list(x.shape))
  interpreter.allocate_tensors()
  interpreter.set_tensor(detail["index"], x)
  interpreter.invoke()
  return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def _ort(path: str, x: np.ndarray, optimize: bool = True) -> np.ndarray:
  options = ort.SessionOptions()
  if not optimize:
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
  session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
  return session.run(None, {session.get_inputs()[0].name: x})[0]


def _feeds_quantize(tflite: bytes) -> set:
  """Names of the TFLite tensors a QUANTIZE op reads (float -> int8 borders)."""
  interpreter = _tflite_private.make_interpreter(tflite)
  return {_tflite_private.tensor_name(interpreter, op["inputs"][0])
          for op in _tflite_private.ops(interpreter) if op["op_name"] == "QUANTIZE"}


@pytest.fixture(scope="module")
def exported(digits_analysis, tmp_path_factory):
  """ratio -> (result, path of its .onnx)."""
  root = tmp_path_factory.mktemp("onnx")
  out = {}
  for ratio in RATIOS:
    result = digits_analysis.quantize(ratio, fallback="float")  # float and static int8 only
    out[ratio] = result, result.to_onnx(str(root / f"digits_{ratio}.onnx"))
  return out


@pytest.fixture(scope="module")
def held_out(digits):
  _, x, _ = digits
  return np.ascontiguousarray(x[1297:1497], np.float32)


@pytest.mark.parametrize("ratio", RATIOS)
def test_onnx_runtime_matches_litert(exported, held_out, ratio):
  result, path = exported[ratio]
  reference = _litert(result.tflite, held_out)
  scale = float(np.ptp(reference))
  for optimize in (True, False):
    error = np.abs(_ort(path, held_out, optimize) - reference)
    agreement = np.mean(np.argmax(_ort(path, held_out, optimize), -1) == np.argmax(reference, -1))
    print(f"ratio {ratio} ORT optimize={optimize}: max |diff| {error.max():.4g} "
          f"({100 * error.max() / scale:.3f} % of range {scale:.3g}), mean {error.mean():.3g}, "
          f"top-1 agreement {100 * agreement:.1f} %")
    if optimize:
      assert error.max() <= MAX_ERROR_OF_RANGE * scale
      assert error.mean() <= MEAN_ERROR_OF_RANGE * scale
      assert agreement >= MIN_TOP1_AGREEMENT
    else:
      assert error.max() <= UNOPTIMIZED_MAX_ERROR_OF_RANGE * scale
  if ratio == 1.0:
    np.testing.assert_allclose(_ort(path, held_out), reference, rtol=0, atol=1e-6 * scale)


@pytest.mark.parametrize("ratio", RATIOS)
def test_float_layers_stay_float_in_qdq(exported, ratio):
  result, path = exported[ratio]
  model = onnx.load(path)
  float_nodes = set(result.config.float_nodes) | {
      n.name for n in result.int8_unsupported_nodes}
  quantized_outputs = _feeds_quantize(result.tflite)
  matched = onnx_export.match_nodes(model, result.nodes)
  compute = [n for n in result.nodes if n.is_compute]
  assert set(matched) == {n.name for n in compute}
  for node in compute:
    op = matched[node.name]
    if node.name in float_nodes:
      # Float weights (no DequantizeLinear): neither ORT nor TensorRT can run it in int8. Its
      # output is quantized only where an int8 op reads it (TFLite's own QUANTIZE at the border).
      assert not op.weight_quantized, (node.layers, op)
      assert op.output_quantized == (node.name in quantized_outputs), (node.layers, op)
    else:
      assert op.int8, (node.layers, op)
  ops = [n.op_type for n in model.graph.node]
  if ratio == 0.0:
    assert "QuantizeLinear" not in ops and "DequantizeLinear" not in ops
  expected_int8 = sum(n.name not in float_nodes for n in compute)
  assert sum(op.int8 for op in onnx_export.compute_ops(model)) == expected_int8
  assert onnx_export.config_of(model) == json.loads(result.config.to_json())


def test_to_onnx_is_atomic_and_reports_missing_tf2onnx(digits_analysis, tmp_path, monkeypatch):
  import sys  # pylint: disable=g-import-not-at-top
  result = digits_analysis.quantize(0.9)
  path = tmp_path / "sub" / "m.onnx"
  assert result.to_onnx(str(path)) == str(path)
  assert [p.name for p in path.parent.iterdir()] == ["m.onnx"]  # no temp file left
  # No clobbering: an existing file stays unless overwrite=True, checked before converting.
  path.write_bytes(b"keep me")
  with pytest.raises(tfq_mixed.OutputError, match=r"m.onnx already exists. Pass overwrite=True"):
    result.to_onnx(str(path))
  assert path.read_bytes() == b"keep me"
  assert result.to_onnx(str(path), overwrite=True) == str(path)
  assert path.read_bytes() != b"keep me" and path.stat().st_size > 1000
  monkeypatch.setitem(sys.modules, "tf2onnx", None)
  with pytest.raises(tfq_mixed.ConversionError, match=r'pip install "tfq_mixed\[onnx\]"'):
    result.to_onnx(str(tmp_path / "other.onnx"))
  assert not (tmp_path / "other.onnx").exists()
