"""Mixed int8/float TFLite -> QDQ ONNX, for ONNX Runtime and TensorRT users.

tf2onnx (`tf2onnx.convert.from_tflite`) rewrites each int8 TFLite op as its float ONNX op between
`DequantizeLinear` (on its int8 activations, weights and biases) and `QuantizeLinear` (on its
output): the QDQ form that ONNX Runtime and TensorRT fuse back into int8 kernels. The ops our
selection kept float have float weights in the `.tflite`, so they come out as plain float ops with
float initializers and no `DequantizeLinear` on their weights: no runtime can run them in int8. The
TFLite QUANTIZE/DEQUANTIZE ops at the float/int8 borders become a `QuantizeLinear` /
`DequantizeLinear` each. The same mix therefore reaches every runtime.

tf2onnx and onnx are optional (`pip install "tfq_mixed[onnx]"`) and imported on first use.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import logging
import os
import tempfile
import warnings
from typing import Any, Optional, Sequence

from tfq_mixed import errors
from tfq_mixed import files
from tfq_mixed.qtyping import Node

# ONNX ops with a weight (second input) that carry a TFLite compute node's MACs.
COMPUTE_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")
# Ops tf2onnx puts between a compute op and the QuantizeLinear of its output: fused activations
# (Relu, Relu6 -> Clip, ...) and the bias Add of a FULLY_CONNECTED.
_EPILOGUE_OPS = ("Relu", "Clip", "Tanh", "Sigmoid", "LeakyRelu", "HardSigmoid", "Reshape",
                 "Squeeze", "Identity")
_BIAS_OPS = ("Add",)  # an epilogue only with a constant operand (not a residual Add)
_TFLITE_COMPUTE_OPS = {"CONV_2D": ("Conv",), "DEPTHWISE_CONV_2D": ("Conv",),
                       "TRANSPOSE_CONV": ("ConvTranspose",),
                       "FULLY_CONNECTED": ("MatMul", "Gemm"), "BATCH_MATMUL": ("MatMul",)}
METADATA_KEY = "tfq_mixed_config"
"""`metadata_props` key of the ONNX model holding the `SelectiveQuantizationConfig` JSON."""


def _import_tf2onnx():
  try:
    import onnx  # pylint: disable=g-import-not-at-top
    import tf2onnx  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise errors.ConversionError(
        f"ONNX export needs tf2onnx and onnx, which are not installed ({e}). Install them with: "
        'pip install "tfq_mixed[onnx]"') from e
  return onnx, tf2onnx


def convert(tflite: bytes, *, opset: Optional[int] = None, config_json: Optional[str] = None):
  """The ONNX `ModelProto` of a TFLite flatbuffer, via `tf2onnx.convert.from_tflite`.

  Args:
    tflite: a (mixed) TFLite flatbuffer.
    opset: ONNX opset; tf2onnx's default when None (QDQ needs >= 13 for per-channel weights).
    config_json: stored in the model's `metadata_props` under `METADATA_KEY` when given.

  Returns:
    An `onnx.ModelProto`.

  Raises:
    ConversionError: tf2onnx is missing or cannot convert the model.
  """
  onnx, tf2onnx = _import_tf2onnx()
  with tempfile.TemporaryDirectory(prefix="tfq_mixed_onnx_") as directory:
    path = os.path.join(directory, "model.tflite")
    with open(path, "wb") as f:
      f.write(tflite)
    # tf2onnx logs every rewrite at INFO and opens the file with the deprecated tf.lite.Interpreter.
    tf2onnx_logger = logging.getLogger("tf2onnx")
    level = tf2onnx_logger.level
    tf2onnx_logger.setLevel(logging.ERROR)
    try:
      with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        model_proto, _ = tf2onnx.convert.from_tflite(path, opset=opset)
    except Exception as e:  # pylint: disable=broad-except
      raise errors.ConversionError(
          f"tf2onnx could not convert the TFLite model to ONNX: {e}") from e
    finally:
      tf2onnx_logger.setLevel(level)
  if config_json is not None:
    onnx.helper.set_model_props(model_proto, {METADATA_KEY: config_json})
  return model_proto


def to_bytes(model_proto) -> bytes:
  return model_proto.SerializeToString()


@dataclasses.dataclass(frozen=True)
class ComputeOp:
  """One weighted ONNX op and whether the QDQ graph runs it in int8.

  Attributes:
    name: the ONNX node name (tf2onnx names it after the TFLite op's output tensor).
    op_type: e.g. `Conv`, `MatMul`.
    weight_quantized: its weight comes from a `DequantizeLinear` of an int8 initializer.
    input_quantized: its activation input comes from a `DequantizeLinear`.
    output_quantized: its output (after fused activation / bias ops) feeds a `QuantizeLinear`.
  """

  name: str
  op_type: str
  weight_quantized: bool
  input_quantized: bool
  output_quantized: bool

  @property
  def int8(self) -> bool:
    """All three QDQ conditions under which ONNX Runtime and TensorRT run the op in int8."""
    return self.weight_quantized and self.input_quantized and self.output_quantized


def compute_ops(model_proto) -> list[ComputeOp]:
  """The weighted ops of a QDQ ONNX graph, in graph order, with their QDQ status."""
  graph = model_proto.graph
  producer = {out: node for node in graph.node for out in node.output}
  consumers: dict[str, list[Any]] = {}
  for node in graph.node:
    for name in node.input:
      consumers.setdefault(name, []).append(node)

  constants = {t.name for t in graph.initializer}

  def from_dequantize(tensor: str) -> bool:
    node = producer.get(tensor)
    return node is not None and node.op_type == "DequantizeLinear"

  def is_constant(tensor: str) -> bool:
    node = producer.get(tensor)
    return tensor in constants or (node is not None and (
        node.op_type == "Constant" or (node.op_type == "DequantizeLinear"
                                       and node.input[0] in constants)))

  def is_epilogue(node, tensor: str) -> bool:
    if node.op_type in _EPILOGUE_OPS:
      return True
    return node.op_type in _BIAS_OPS and all(is_constant(t) for t in node.input if t != tensor)

  def feeds_quantize(tensor: str, depth: int = 0) -> bool:
    for node in consumers.get(tensor, ()):
      if node.op_type == "QuantizeLinear":
        return True
      if depth < 4 and is_epilogue(node, tensor) and feeds_quantize(node.output[0], depth + 1):
        return True
    return False

  return [ComputeOp(name=node.name, op_type=node.op_type,
                    weight_quantized=len(node.input) > 1 and from_dequantize(node.input[1]),
                    input_quantized=from_dequantize(node.input[0]),
                    output_quantized=feeds_quantize(node.output[0]))
          for node in graph.node if node.op_type in COMPUTE_OPS]


def _strip(name: str) -> str:
  for suffix in ("_prequant", "_quantize", "_dequant"):
    if name.endswith(suffix):
      return name[:-len(suffix)]
  return name


def match_nodes(model_proto, nodes: Sequence[Node]) -> dict[str, ComputeOp]:
  """Our compute `Node`s (by name) -> their ONNX op.

  By name first (tf2onnx names an op after its TFLite output tensor, which is our `Node.name`),
  then, for the rest, in graph order among ops of a matching type (e.g. a quantized model output
  renamed by TFLite).

  Raises:
    ConversionError: the ONNX graph has not one weighted op per compute node.
  """
  ops = compute_ops(model_proto)
  wanted = [n for n in nodes if n.op_type in _TFLITE_COMPUTE_OPS]
  by_name = {_strip(op.name): op for op in ops}
  matched = {n.name: by_name[n.name] for n in wanted if n.name in by_name}
  used = {id(op) for op in matched.values()}
  rest = [op for op in ops if id(op) not in used]
  for node in wanted:
    if node.name in matched:
      continue
    candidates = [op for op in rest if op.op_type in _TFLITE_COMPUTE_OPS[node.op_type]]
    if not candidates:
      raise errors.ConversionError(
          f"No ONNX op matches the TFLite {node.op_type} {node.name!r}; the ONNX graph has "
          f"{[op.op_type for op in ops]}.")
    matched[node.name] = candidates[0]
    rest.remove(candidates[0])
  return matched


def export(result, path: str, *, opset: Optional[int] = None, overwrite: bool = False) -> str:
  """Writes `result.tflite` as a QDQ ONNX model to `path` (atomically); returns the path.

  The ONNX model's `metadata_props` hold the config JSON (`METADATA_KEY`). An existing `path` is
  kept unless `overwrite`.
  """
  files.refuse_clobber([path], overwrite)
  model_proto = convert(result.tflite, opset=opset, config_json=result.config.to_json())
  directory = os.path.dirname(os.path.abspath(path))
  try:
    os.makedirs(directory, exist_ok=True)
    files.write_atomic(path, to_bytes(model_proto))
  except OSError as e:
    raise errors.OutputError(f"Could not write the ONNX model to {path!r}: {e}") from e
  return path


def config_of(model_proto) -> Optional[dict]:
  """The config dict stored by `export`, or None."""
  for prop in model_proto.metadata_props:
    if prop.key == METADATA_KEY:
      return json.loads(prop.value)
  return None
