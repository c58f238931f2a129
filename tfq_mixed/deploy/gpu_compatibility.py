"""Which ops of a produced model the TFLite GPU delegate would reject, from TensorFlow's analyzer.

`tf.lite.experimental.Analyzer.analyze(model_content=..., gpu_compatibility=True)` prints the graph
(`Op#3 CONV_2D(T#0, T#1, T#2) -> [T#14]`, one `T#..` line per tensor) and, where its checker finds
one, `GPU COMPATIBILITY WARNING: <reason>` after the op. We parse that text into typed records.

TensorFlow 2.21's pip wheel ships the analyzer without its GPU checker (it calls every model
compatible, even one made of RFFT2D; `_tflite_private.analyzer_checks_gpu` probes this). So the
ops and tensors the analyzer prints are also checked against `RULES`: the offline rules of
TFLite's `tensorflow/lite/tools/versioning/gpu_compatibility.cc` (`CheckGpuDelegateCompatibility`,
which the GPU delegate itself calls), restricted to what the printed op signature shows: op type,
input/output dtypes, constness and shapes. Rules that need op options (fused activation, strides,
FULLY_CONNECTED keep_num_dims, STRIDED_SLICE masks) are not ported. Each record says which source
found it. Neither is a run of the delegate: a model reported compatible can still fail on a device.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Optional, Sequence

from tfq_mixed import _tflite_private
from tfq_mixed import hybrid
from tfq_mixed.qtyping import Node

ANALYZER = "analyzer"
RULES = "tfq_mixed_rules"

_OP_RE = re.compile(r"^\s*Op#(\d+) (\S+)\((.*)\) -> \[(.*)\]\s*$")
_TENSOR_RE = re.compile(
    r"^\s*T#(\d+)\((.*)\) (?:shape_signature|shape):(?:\[([-\d, ]*)\]|n/a), type:(\w+)(.*)$")
_SUBGRAPH_RE = re.compile(r"^Subgraph#(\d+)\b")
_WARNING = "GPU COMPATIBILITY WARNING: "
_COMPATIBLE_RE = re.compile(r"Your model looks compatib\w* with GPU delegate")

# Builtin ops `CheckGpuDelegateCompatibility` knows (TF 2.21 source); any other is "Not supported op".
_SUPPORTED_OPS = frozenset("""
ABS ADD ADD_N ATAN2 AVERAGE_POOL_2D BATCH_MATMUL CAST CEIL CONCATENATION CONV_2D COS CUMSUM DENSIFY
DEPTHWISE_CONV_2D DEPTH_TO_SPACE DEQUANTIZE DIV DYNAMIC_UPDATE_SLICE ELU EMBEDDING_LOOKUP EQUAL EXP
FLOOR FLOOR_DIV FLOOR_MOD FULLY_CONNECTED GATHER GELU GREATER GREATER_EQUAL HARD_SWISH LEAKY_RELU LESS
LESS_EQUAL LOG LOGICAL_AND LOGISTIC LSTM MAXIMUM MAX_POOL_2D MEAN MINIMUM MIRROR_PAD MUL NEG NOT_EQUAL
ONE_HOT PACK PAD PADV2 POW PRELU QUANTIZE REDUCE_MAX REDUCE_MIN REDUCE_PROD RELU RELU6 RELU_N1_TO_1
RESHAPE RESIZE_BILINEAR RESIZE_NEAREST_NEIGHBOR RSQRT SELECT SELECT_V2 SIGN SIN SLICE SOFTMAX
SPACE_TO_DEPTH SPLIT SPLIT_V SQRT SQUARE SQUARED_DIFFERENCE STABLEHLO_CLAMP STRIDED_SLICE SUB SUM
TANH TILE TRANSPOSE TRANSPOSE_CONV
Convolution2DTransposeBias MaxPoolingWithArgmax2D MaxUnpooling2D Resampler
""".split())
_ONE_RUNTIME_INPUT = frozenset("""
AVERAGE_POOL_2D MAX_POOL_2D QUANTIZE RESHAPE TILE TRANSPOSE RESIZE_BILINEAR RESIZE_NEAREST_NEIGHBOR
SPACE_TO_DEPTH DEPTH_TO_SPACE HARD_SWISH
""".split())
_UNARY = frozenset("ABS CEIL COS ELU EXP FLOOR GELU LOG LOGISTIC NEG RSQRT SIGN SIN SQRT SQUARE "
                   "TANH".split())
_BINARY = frozenset("ATAN2 DIV EQUAL FLOOR_DIV FLOOR_MOD GREATER GREATER_EQUAL LOGICAL_AND LESS "
                    "LESS_EQUAL MAXIMUM MINIMUM NOT_EQUAL POW SQUARED_DIFFERENCE SUB".split())
_REDUCE = frozenset("MEAN REDUCE_MAX REDUCE_MIN REDUCE_PROD SUM".split())
_FLOATS = ("FLOAT32", "FLOAT16")
# Ops with a dynamic-range (hybrid) kernel in LiteRT's CPU runtime.
_HYBRID_CAPABLE = frozenset(hybrid.OP_NAMES[code] for code in hybrid.HYBRID_OPS)


@dataclasses.dataclass(frozen=True)
class Tensor:
  """One `T#` line of the analyzer: dims with dynamic (-1) sizes as 1, as the flatbuffer's shape."""

  index: int
  name: str
  dims: tuple[int, ...]
  dtype: str
  is_const: bool


@dataclasses.dataclass(frozen=True)
class Op:
  """One `Op#` line of the analyzer (subgraph, op index there, builtin or custom name, tensors)."""

  subgraph: int
  index: int
  op_name: str
  inputs: tuple[int, ...]
  outputs: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class AnalyzerOutput:
  """The parsed analyzer text.

  Attributes:
    ops, tensors: per subgraph, in order (tensors keyed by (subgraph, index)).
    warnings: (subgraph, op index) -> reason, from the analyzer's own GPU checker.
    says_compatible: the analyzer printed its "looks compatible" verdict.
  """

  ops: tuple[Op, ...]
  tensors: dict
  warnings: dict
  says_compatible: bool


@dataclasses.dataclass(frozen=True)
class GpuIncompatibleOp:
  """An op of the produced model the GPU delegate would reject.

  Attributes:
    op_index: the op's index in the produced .tflite (the analyzer's `Op#`), subgraph 0 unless
      `subgraph` says otherwise.
    op_name: TFLite builtin (or custom) op name, e.g. `SELECT_V2`.
    tensor_name: the op's first output tensor name in the produced model.
    reason: why it is rejected (the analyzer's or the rule's text).
    source: `ANALYZER` (the analyzer's checker said so) or `RULES` (our port of its rules).
    node: the calibrated `Node` this op is (None for the QUANTIZE/DEQUANTIZE ops quantization adds).
    layers: the Keras layers of that node.
  """

  op_index: int
  op_name: str
  tensor_name: str
  reason: str
  source: str
  node: Optional[Node] = None
  layers: tuple[str, ...] = ()
  subgraph: int = 0

  def to_dict(self) -> dict:
    return {"op_index": self.op_index, "op_name": self.op_name, "tensor_name": self.tensor_name,
            "reason": self.reason, "source": self.source, "subgraph": self.subgraph,
            "node": None if self.node is None else self.node.index, "layers": list(self.layers)}


@dataclasses.dataclass(frozen=True)
class GpuCompatibility:
  """The GPU delegate verdict on one model.

  Attributes:
    ops: the rejected ops, in graph order.
    analyzer_checks_gpu: whether the installed analyzer has a working GPU checker (False on
      TensorFlow 2.21: only our rules then find anything).
    analyzer_says_compatible: the analyzer's own verdict line.
  """

  ops: tuple[GpuIncompatibleOp, ...]
  analyzer_checks_gpu: bool
  analyzer_says_compatible: bool

  @property
  def compatible(self) -> bool:
    return not self.ops

  @property
  def layers(self) -> tuple[str, ...]:
    """Keras layers with a rejected op, in graph order."""
    return tuple(dict.fromkeys(name for op in self.ops for name in op.layers))

  def summary(self) -> str:
    """One line (plus one per rejected op) for reports."""
    source = ("the analyzer's checker and tfq_mixed's port of its rules" if self.analyzer_checks_gpu
              else "tfq_mixed's port of its rules (this TensorFlow's analyzer has no GPU checker)")
    if not self.ops:
      return f"GPU delegate: no op rejected ({source}; not run on a GPU)"
    lines = [f"GPU delegate: {len(self.ops)} op(s) rejected ({source}; not run on a GPU):"]
    lines += [f"  Op#{op.op_index} {op.op_name} [{', '.join(op.layers) or 'no layer'}]: {op.reason}"
              for op in self.ops]
    return "\n".join(lines)


def parse_analyzer_output(text: str) -> AnalyzerOutput:
  """Parses `Analyzer.analyze(..., gpu_compatibility=True)` text into ops, tensors and warnings.

  A warning line follows its op; the per-subgraph summary warning ("Subgraph#0 has GPU delegate
  compatibility issues at nodes ...") repeats them and is skipped.
  """
  ops: list[Op] = []
  tensors: dict = {}
  warnings: dict = {}
  subgraph = 0
  last_op: Optional[Op] = None
  for line in text.splitlines():
    stripped = line.strip()
    match = _SUBGRAPH_RE.match(stripped)
    if match:
      subgraph, last_op = int(match.group(1)), None
      continue
    match = _OP_RE.match(line)
    if match:
      last_op = Op(subgraph=subgraph, index=int(match.group(1)), op_name=match.group(2),
                   inputs=_tensor_list(match.group(3)), outputs=_tensor_list(match.group(4)))
      ops.append(last_op)
      continue
    if stripped.startswith(_WARNING + "Subgraph#"):
      last_op = None
      continue
    if stripped.startswith(_WARNING) and last_op is not None:
      key = (last_op.subgraph, last_op.index)
      warnings[key] = (warnings.get(key, "") + " " + stripped[len(_WARNING):]).strip()
      continue
    match = _TENSOR_RE.match(line)
    if match:
      last_op = None
      index = int(match.group(1))
      dims = tuple(1 if int(d) < 0 else int(d)
                   for d in (match.group(3) or "").replace(" ", "").split(",") if d)
      tensors[(subgraph, index)] = Tensor(index=index, name=match.group(2), dims=dims,
                                          dtype=match.group(4), is_const=" RO " in match.group(5) + " ")
  return AnalyzerOutput(ops=tuple(ops), tensors=tensors, warnings=warnings,
                        says_compatible=bool(_COMPATIBLE_RE.search(text)))


def _tensor_list(text: str) -> tuple[int, ...]:
  return tuple(int(m) for m in re.findall(r"T#(-?\d+)", text))


def rule_reason(op: Op, tensors: dict) -> Optional[str]:
  """Why `CheckGpuDelegateCompatibility` rejects `op` (the ported subset), or None if it passes."""
  absent = Tensor(-1, "", (), "NOTYPE", False)
  ins = [tensors.get((op.subgraph, i), absent) for i in op.inputs]
  outs = [tensors.get((op.subgraph, i), absent) for i in op.outputs]
  present = [t for t in ins if t.index >= 0]
  runtime = sum(1 for t in present if not t.is_const)
  const = len(present) - runtime
  name = op.op_name
  if name not in _SUPPORTED_OPS:
    return f"Not supported op {name}"
  if name in _ONE_RUNTIME_INPUT and (runtime != 1 or len(outs) != 1):
    return f"Expected 1 runtime input tensor(s), but node has {runtime} runtime input(s)."
  if name in _UNARY and (runtime, const, len(outs)) != (1, 0, 1):
    return "Expected 1 runtime and 0 const input tensor(s)."
  if name in _BINARY and (runtime, const) not in ((2, 0), (1, 1)):
    return "Op can only handle 1 or 2 operand(s)."
  if name in _REDUCE:
    if runtime != 1 or (name == "MEAN" and const != 1):
      return f"Expected 1 runtime input tensor(s), but node has {runtime} runtime input(s)."
    if len(ins) > 1 and not ins[1].is_const:
      return f"{name} is only supported with constant axes."
    if len(ins) > 1 and ins[1].dtype != "INT32":
      return f"{name} supports int32 tensor for axes. But node has {ins[1].dtype}"
  if (name in _HYBRID_CAPABLE and any(t.dtype == "FLOAT32" and not t.is_const for t in present)
      and any(t.dtype == "INT8" and t.is_const for t in present)):
    return ("Hybrid (dynamic-range) op: int8 weights with float activations; the GPU delegate "
            "runs float or fully quantized ops only. Quantize with gpu_compatible=True.")
  if name in ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV") and runtime > 2:
    return f"Expected 1 or 2 input tensor(s), but node has {runtime} runtime inputs."
  if name == "DEPTHWISE_CONV_2D" and len(ins) >= 2 and outs:
    inp, out = ins[0].dims, outs[0].dims
    if len(inp) == 4 and len(out) == 4 and inp[3] and out[3] % inp[3] == 0:
      if out[3] // inp[3] != 1 and inp[3] != 1:
        return "depth_multiplier != 1 && input.c != 1"
  if name == "FULLY_CONNECTED":
    if runtime > 2:
      return "FullyConnected doesn't support more than 2 runtime inputs."
    if ins and ins[0].is_const:
      return "FullyConnected doesn't support constant input."
  if name in ("ADD", "MUL") and len(ins) == 2:
    a, b = ins[0].dims, ins[1].dims
    if len(a) > 1 and len(b) > 1 and len(a) != len(b) and not _broadcastable(a, b):
      return f"Doesn't support broadcasting - input0: {list(a)}, input1: {list(b)}"
    if name == "MUL" and len(a) == len(b) and any(x < y for x, y in zip(a, b)) and any(
        y < x for x, y in zip(a, b)):
      return "MUL requires one tensor that not less than second in all dimensions."
  if name in ("SLICE", "STRIDED_SLICE") and ins and len(ins[0].dims) not in (3, 4):
    return f"{name} supports for 3 or 4 dimensional tensors only."
  if name in ("PAD", "PADV2", "MIRROR_PAD") and len(ins) > 1:
    if runtime != 1:
      return f"Expected 1 runtime input tensor(s), but node has {runtime} runtime input(s)."
    pads = ins[1].dims
    if len(pads) != 2 or pads[0] not in (3, 4) or pads[1] != 2:
      return f"Invalid paddings tensor shape: expected 4x2 or 3x2, got {list(pads)}"
  if name == "DEQUANTIZE" and ins and ins[0].dtype == "INT16":
    return "Unsupported dequantization type."
  if name in ("SELECT", "SELECT_V2") and len(ins) == 3:
    if ins[0].dtype not in ("BOOL",) + _FLOATS or ins[1].dtype not in _FLOATS or (
        ins[2].dtype not in _FLOATS):
      return ("Cond must be float or bool type, if, else tensors must be float and either be same "
              f"the shape as output or constant, scalar. Node has {ins[1].dtype}, {ins[2].dtype}.")
  if name == "CUMSUM" and len(ins) == 2 and outs and (
      ins[0].dtype not in _FLOATS or outs[0].dtype != ins[0].dtype or ins[1].dtype != "INT32" or
      not ins[1].is_const):
    return "Input/output must be float type and indices must be constant int32 type"
  if name == "GATHER" and len(ins) == 2:
    if ins[0].dtype == "INT32":
      return "Does not accept INT32 input."
    if ins[1].dtype != "INT32":
      return "Only accept INT32 indices"
  if name == "CAST" and ins and outs:
    pair = (ins[0].dtype, outs[0].dtype)
    if not ((pair[0] == "BOOL" and pair[1] in _FLOATS) or (pair[0] in _FLOATS and pair[1] == "BOOL")
            or (pair[0] in ("FLOAT32", "INT32") and pair[1] in ("FLOAT32", "INT32"))):
      return f"Not supported Cast case. Input type: {pair[0]} and output type: {pair[1]}"
  return None


def _broadcastable(a: Sequence[int], b: Sequence[int]) -> bool:
  for x, y in zip(reversed(a), reversed(b)):
    if x != y and x != 1 and y != 1:
      return False
  return True


def check(tflite: bytes, nodes: Sequence[Node] = ()) -> GpuCompatibility:
  """Runs the analyzer on `tflite` and returns the ops the GPU delegate would reject.

  Args:
    tflite: a TFLite flatbuffer.
    nodes: the calibrated model's nodes; an op whose output tensor has a node's name is that node.
  """
  parsed = parse_analyzer_output(_tflite_private.analyze_model(tflite, gpu_compatibility=True))
  return from_parsed(parsed, nodes)


def from_parsed(parsed: AnalyzerOutput, nodes: Sequence[Node] = ()) -> GpuCompatibility:
  by_name = {n.name: n for n in nodes}
  found = []
  for op in parsed.ops:
    reason, source = parsed.warnings.get((op.subgraph, op.index)), ANALYZER
    if reason is None:
      reason, source = rule_reason(op, parsed.tensors), RULES
    if reason is None:
      continue
    tensor = parsed.tensors.get((op.subgraph, op.outputs[0])) if op.outputs else None
    tensor_name = tensor.name if tensor else ""
    node = by_name.get(tensor_name) if op.subgraph == 0 else None
    found.append(GpuIncompatibleOp(op_index=op.index, op_name=op.op_name, tensor_name=tensor_name,
                                   reason=reason, source=source, node=node,
                                   layers=node.layers if node else (), subgraph=op.subgraph))
  return GpuCompatibility(ops=tuple(found),
                          analyzer_checks_gpu=_tflite_private.analyzer_checks_gpu(),
                          analyzer_says_compatible=parsed.says_compatible)


def float_fixable_nodes(int8_model: bytes, float_model: bytes,
                        nodes: Sequence[Node]) -> tuple[Node, ...]:
  """Nodes rejected in the full-int8 model but accepted in the float one: float makes them pass.

  E.g. SELECT_V2 (`keras.ops.where`) with int8 branches; the calibrated float model is the one
  whose op names the nodes carry.
  """
  int8_bad = {op.node.index for op in check(int8_model, nodes).ops if op.node is not None}
  float_bad = {op.node.index for op in check(float_model, nodes).ops if op.node is not None}
  return tuple(n for n in nodes if n.index in int8_bad and n.index not in float_bad)
