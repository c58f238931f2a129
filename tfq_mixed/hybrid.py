"""Dynamic-range (hybrid) ops in a built model: int8 weights, float activations quantized at run time.

`dynamic_quantize_ops(model, op_indices)` rewrites the float32 constant weights of chosen float ops
(CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, BATCH_MATMUL, TRANSPOSE_CONV) into int8, exactly as
TensorFlow 2.21's `TFLiteConverter` with `optimizations=[Optimize.DEFAULT]` and no representative
dataset stores them (its dynamic-range quantizer; `tests/hybrid_test.py` checks the two agree bit
for bit):

  op                 weight input   scales                         op option / version (max rule)
  CONV_2D            1 (OHWI)       per channel, axis 0             v5 (v2 per tensor)
  DEPTHWISE_CONV_2D  1 (1HWO)       per channel, axis 3             v6 (v4 per tensor)
  FULLY_CONNECTED    1 (OI)         per channel, axis 0             asymmetric_quantize_inputs, v12
  BATCH_MATMUL       1 (rhs const)  per tensor                      asymmetric_quantize_inputs, v4
  TRANSPOSE_CONV     1 (OHWI)       per channel, axis 0             v2 (v3 with bias, v4 with act.)

  * only weights with >= 1024 elements are quantized (smaller ones stay float32, so does the op);
  * zero points 0, int8 values in [-127, 127];
  * scale = (max - min) / 254 in double after symmetrising [-|w|max, |w|max] and widening ranges
    narrower than 1e-6 to +-0.5e-6, stored as float32;
  * value = clamp(round_half_away(double(w) / scale_double), -127, 127);
  * biases stay float32; no DEQUANTIZE op is inserted (the hybrid kernels take int8 weights);
  * operator-code versions become max(old, needed), and `min_runtime_version` is raised, as the
    converter's op-version pass does.

The input is the output of `mlir_quantize(..., denylisted_nodes=...)`, whose denylisted ops are float32
with float32 constant weights. Tensor names are kept; float weights shared with ops that stay float
are kept for them (the hybrid ops get an int8 copy); buffers the float weights leave unused are
dropped.
"""

from __future__ import annotations

import collections
import copy
from typing import Iterable, Optional

import numpy as np

from tfq_mixed import _tflite_private
from tfq_mixed import errors

schema = _tflite_private.schema
BO = schema.BuiltinOperator
TT = schema.TensorType

MIN_ELEMENTS = 1024  # TF's default `minimum_elements_for_weights` for dynamic-range quantization

# builtin op -> (weight input index, per-channel axis or None for per tensor, activation input index)
HYBRID_OPS = {
    BO.CONV_2D: (1, 0, 0),
    BO.DEPTHWISE_CONV_2D: (1, 3, 0),
    BO.FULLY_CONNECTED: (1, 0, 0),
    BO.BATCH_MATMUL: (1, None, 0),
    BO.TRANSPOSE_CONV: (1, 0, 2),
}
OP_NAMES = {v: k for k, v in vars(BO).items() if not k.startswith("_")}

# Minimum runtime versions of the op versions this pass can produce (TF's runtime_version.cc).
_RUNTIME = {
    (BO.CONV_2D, 2): "1.14.0", (BO.CONV_2D, 5): "2.4.0",
    (BO.DEPTHWISE_CONV_2D, 4): "2.2.0", (BO.DEPTHWISE_CONV_2D, 6): "2.3.0",
    (BO.FULLY_CONNECTED, 9): "2.3.0", (BO.FULLY_CONNECTED, 12): "2.17.0",
    (BO.FULLY_CONNECTED, 6): "2.1.0",
    (BO.BATCH_MATMUL, 4): "2.5.0",
    (BO.TRANSPOSE_CONV, 2): "2.2.0", (BO.TRANSPOSE_CONV, 3): "2.3.0",
    (BO.TRANSPOSE_CONV, 4): "2.13.0",
}

_NP_TYPES = {TT.FLOAT32: np.float32, TT.INT8: np.int8, TT.INT32: np.int32}


class DynamicQuantizeError(errors.ConversionError):
  """An op cannot be made dynamic-range: no hybrid kernel, or not float with constant weights."""


def builtin_code(model, op) -> int:
  code = model.operatorCodes[op.opcodeIndex]
  return max(code.builtinCode, code.deprecatedBuiltinCode)


def quantize_weight(w: np.ndarray, axis: Optional[int]) -> tuple[np.ndarray, np.ndarray]:
  """(int8 values, float32 scales) of a float weight, as the MLIR dynamic-range quantizer makes them."""
  w = np.asarray(w, np.float32)
  if axis is None:
    amax = np.array([np.abs(w).max() if w.size else 0.0], np.float64)
  else:
    reduce_axes = tuple(i for i in range(w.ndim) if i != axis)
    amax = np.abs(w).max(axis=reduce_axes).astype(np.float64)
  lo, hi = -amax, amax
  small = (hi - lo) < 1e-6           # ExpandVerySmallRange: widen to 1e-6 around the middle (0)
  lo = np.where(small, -0.5e-6, lo)
  hi = np.where(small, 0.5e-6, hi)
  scale = (hi - lo) / 254.0          # narrow range [-127, 127], zero point 0
  if axis is None:
    s = scale[0]
  else:
    s = scale.reshape([-1 if i == axis else 1 for i in range(w.ndim)])
  x = w.astype(np.float64) / s
  q = np.sign(x) * np.floor(np.abs(x) + 0.5)   # std::round: halves away from zero
  q = np.clip(q, -127, 127).astype(np.int8)
  return q, scale.astype(np.float32)


def _hybrid_version(model, op, code: int, per_channel: bool) -> int:
  if code == BO.CONV_2D:
    return 5 if per_channel else 2
  if code == BO.DEPTHWISE_CONV_2D:
    return 6 if per_channel else 4
  if code == BO.FULLY_CONNECTED:
    if per_channel:
      return 12
    if len(op.inputs) == 2:
      return 6
    if op.builtinOptions is not None and op.builtinOptions.keepNumDims:
      return 5
    return 9
  if code == BO.BATCH_MATMUL:
    return 4
  if code == BO.TRANSPOSE_CONV:
    if op.builtinOptions is not None and getattr(op.builtinOptions, "fusedActivationFunction", 0):
      return 4
    if len(op.inputs) == 4 and op.inputs[3] >= 0:
      return 3
    return 2
  raise AssertionError(code)


def _version_tuple(v: str) -> tuple:
  return tuple(int(p) for p in v.split(".") if p.isdigit())


def _raise_min_runtime(model, needed: Iterable[str]) -> None:
  needed = [v for v in needed if v]
  if not needed or not model.metadata:
    return
  for md in model.metadata:
    if md.name is not None and bytes(md.name) in (b"min_runtime_version", "min_runtime_version"):
      buf = model.buffers[md.buffer]
      old = bytes(buf.data).rstrip(b"\0").decode() if buf.data is not None else "0"
      best = max([old] + needed, key=_version_tuple)
      if best != old:
        raw = best.encode()
        size = max(16, len(raw))
        buf.data = np.frombuffer(raw + b"\0" * (size - len(raw)), np.uint8).copy()
      return


def _ensure_options(op, code):
  """Op options objects as the converter writes them (FULLY_CONNECTED/BATCH_MATMUL asymmetric)."""
  if code == BO.FULLY_CONNECTED:
    if op.builtinOptions is None:
      op.builtinOptionsType = schema.BuiltinOptions.FullyConnectedOptions
      op.builtinOptions = schema.FullyConnectedOptionsT()
    op.builtinOptions.asymmetricQuantizeInputs = True
  elif code == BO.BATCH_MATMUL:
    if op.builtinOptions is None:
      op.builtinOptionsType = schema.BuiltinOptions.BatchMatMulOptions
      op.builtinOptions = schema.BatchMatMulOptionsT()
    op.builtinOptions.asymmetricQuantizeInputs = True


def dynamic_quantize_ops(model_bytes: bytes, op_indices: Iterable[int], *, subgraph_index: int = 0,
                         per_channel: bool = True, min_elements: int = MIN_ELEMENTS,
                         strict: bool = True, report: Optional[dict] = None) -> bytes:
  """Returns `model_bytes` with the chosen float ops turned into dynamic-range (hybrid int8) ops.

  Args:
    model_bytes: a TFLite flatbuffer.
    op_indices: operator indices in subgraph `subgraph_index` (execution order of the flatbuffer,
      which is what `Interpreter._get_ops_details()` reports as "index").
    per_channel: per-channel weight scales (the converter's default) or one per tensor
      (`converter._experimental_disable_per_channel = True`; BATCH_MATMUL is per tensor always).
    min_elements: weights with fewer elements stay float (the converter's threshold, 1024).
    strict: raise on ops that cannot be made hybrid (wrong type, int8 activations, non-constant
      weights); else skip them. Ops skipped for the size threshold are never an error.
    report: if a dict, filled with {"converted": [...], "skipped": {index: reason}}.

  Returns:
    The new flatbuffer (bytes).
  """
  model = _tflite_private.model_object(model_bytes)
  sg = model.subgraphs[subgraph_index]
  converted, skipped = [], {}

  def fail(index, reason):
    if strict:
      raise DynamicQuantizeError(f"op {index}: {reason}")
    skipped[index] = reason

  # 1. Which ops, which weight tensor, which axis.
  plans = []  # (op index, op, code, weight tensor index, axis)
  for index in sorted(set(int(i) for i in op_indices)):
    if not 0 <= index < len(sg.operators):
      raise DynamicQuantizeError(f"op index {index} out of range (0..{len(sg.operators) - 1})")
    op = sg.operators[index]
    code = builtin_code(model, op)
    if code not in HYBRID_OPS:
      fail(index, f"{OP_NAMES.get(code, code)} has no dynamic-range kernel")
      continue
    w_pos, axis, act_pos = HYBRID_OPS[code]
    if not per_channel:
      axis = None
    act = sg.tensors[op.inputs[act_pos]]
    out = sg.tensors[op.outputs[0]]
    if act.type != TT.FLOAT32 or out.type != TT.FLOAT32:
      fail(index, "activation input/output are not float32 (already quantized?)")
      continue
    t_index = op.inputs[w_pos]
    tensor = sg.tensors[t_index]
    data = model.buffers[tensor.buffer].data if tensor.buffer > 0 else None
    if tensor.type == TT.INT8 and tensor.quantization is not None:
      skipped[index] = "already hybrid"
      continue
    if tensor.type != TT.FLOAT32 or data is None or len(data) == 0:
      fail(index, "weights are not a float32 constant")
      continue
    n = int(np.prod(tensor.shape)) if tensor.shape is not None else 0
    if n < min_elements:
      skipped[index] = f"weights have {n} < {min_elements} elements (the converter keeps them float)"
      continue
    plans.append((index, op, code, t_index, axis))

  # 2. Every use of every tensor (to see whether float copies must stay).
  uses: dict[int, list[tuple[int, int]]] = {}
  for k, op in enumerate(sg.operators):
    for pos, t in enumerate(op.inputs):
      if t >= 0:
        uses.setdefault(int(t), []).append((k, pos))
  chosen_uses = {}
  for index, op, code, t_index, axis in plans:
    chosen_uses.setdefault((t_index, axis), set()).add((index, HYBRID_OPS[code][0]))
  tensors_of_buffer: dict[int, set[int]] = {}
  for i, t in enumerate(sg.tensors):
    tensors_of_buffer.setdefault(t.buffer, set()).add(i)
  for other in model.subgraphs:
    if other is not sg:
      for t in other.tensors:
        tensors_of_buffer.setdefault(t.buffer, set()).add(-1)  # used elsewhere: never rewrite in place

  # 3. Quantize each (tensor, axis) once; int8 buffers shared where float buffers were shared.
  new_buffer_of: dict[tuple[int, Optional[int]], int] = {}
  old_buffers: set[int] = set()
  replacement: dict[tuple[int, Optional[int]], int] = {}
  for (t_index, axis), op_uses in chosen_uses.items():
    tensor = sg.tensors[t_index]
    w = model.buffers[tensor.buffer].data.view(np.float32).reshape(tensor.shape)
    q, scales = quantize_weight(w, axis)
    qparams = schema.QuantizationParametersT()
    qparams.scale = [float(s) for s in scales]
    qparams.zeroPoint = [0] * len(scales)
    qparams.quantizedDimension = 0 if axis is None else axis
    key = (tensor.buffer, axis)
    old_buffers.add(tensor.buffer)
    if key not in new_buffer_of:
      buf = schema.BufferT()
      buf.data = np.frombuffer(q.tobytes(), np.uint8).copy()
      model.buffers.append(buf)
      new_buffer_of[key] = len(model.buffers) - 1
    all_uses = set(uses.get(t_index, []))
    graph_io = t_index in set(sg.inputs) | set(sg.outputs)
    if all_uses <= op_uses and not graph_io:
      target = t_index                       # convert the tensor itself (keeps index and name)
    else:
      target = len(sg.tensors)               # float users remain: add an int8 twin
      sg.tensors.append(copy.deepcopy(tensor))
    t = sg.tensors[target]
    t.type = TT.INT8
    t.buffer = new_buffer_of[key]
    t.quantization = qparams
    replacement[(t_index, axis)] = target

  # 4. Rewire the ops, set options and versions.
  needed_versions: dict[int, int] = {}
  for index, op, code, t_index, axis in plans:
    w_pos = HYBRID_OPS[code][0]
    op.inputs[w_pos] = replacement[(t_index, axis)]
    _ensure_options(op, code)
    v = _hybrid_version(model, op, code, axis is not None)
    needed_versions[op.opcodeIndex] = max(needed_versions.get(op.opcodeIndex, 1), v)
    converted.append(index)
  runtimes = []
  for opcode_index, v in needed_versions.items():
    c = model.operatorCodes[opcode_index]
    c.version = max(c.version or 1, v)
    runtimes.append(_RUNTIME.get((max(c.builtinCode, c.deprecatedBuiltinCode), c.version), ""))
  _raise_min_runtime(model, runtimes)

  # 5. Empty float buffers no tensor refers to any more.
  _drop_orphan_buffers(model, old_buffers)
  if report is not None:
    report["converted"] = converted
    report["skipped"] = skipped
  return _tflite_private.model_bytes(model)


def _drop_orphan_buffers(model, candidates: set[int]) -> None:
  """Drops the buffers among `candidates` no tensor refers to any more, renumbering the rest."""
  referenced = {t.buffer for s in model.subgraphs for t in s.tensors}
  referenced |= {md.buffer for md in (model.metadata or [])}
  orphans = {b for b in candidates if b not in referenced and b > 0}
  if not orphans:
    return
  keep = [b for b in range(len(model.buffers)) if b not in orphans]
  remap = {old: new for new, old in enumerate(keep)}
  model.buffers = [model.buffers[b] for b in keep]
  for s in model.subgraphs:
    for t in s.tensors:
      t.buffer = remap[t.buffer]
  for md in model.metadata or []:
    md.buffer = remap[md.buffer]


def restore_float_weights(model_bytes: bytes, float_model_bytes: bytes,
                          op_types: Iterable[str], *, subgraph_index: int = 0) -> bytes:
  """Returns `model_bytes` with its hybrid ops of `op_types` made float again.

  TensorFlow 2.21's quantizer, told to leave an op type float (`denylisted_ops`, which
  `writer.build` needs for TRANSPOSE_CONV), still stores that op's weights in int8: a hybrid op,
  neither the float op asked for nor one XNNPACK runs. Each such weight (an int8 constant read by
  an op with float32 activations) gets back the float32 data of the tensor of the same name in
  `float_model_bytes` (the calibrated model), bit for bit; int8 buffers left unused are dropped.
  """
  wanted = set(op_types)
  model = _tflite_private.model_object(model_bytes)
  sg = model.subgraphs[subgraph_index]
  reference = _tflite_private.model_object(float_model_bytes)
  float_tensors = {t.name: t for t in reference.subgraphs[subgraph_index].tensors}
  uses = collections.Counter(int(t) for op in sg.operators for t in op.inputs)
  readers: dict[int, list] = {}  # int8 weight tensor -> [(op, weight input position, op code)]
  for op in sg.operators:
    code = builtin_code(model, op)
    if code not in HYBRID_OPS or OP_NAMES.get(code) not in wanted:
      continue
    w_pos, _, act_pos = HYBRID_OPS[code]
    weight = sg.tensors[op.inputs[w_pos]]
    if sg.tensors[op.inputs[act_pos]].type == TT.FLOAT32 and weight.type == TT.INT8:
      readers.setdefault(int(op.inputs[w_pos]), []).append((op, w_pos, code))
  old_buffers = set()
  for t_index, ops in readers.items():
    weight = sg.tensors[t_index]
    source = float_tensors.get(weight.name)
    if (source is None or source.type != TT.FLOAT32 or source.buffer <= 0 or
        list(source.shape) != list(weight.shape)):
      raise errors.ConversionError(
          f"The quantizer left {OP_NAMES[ops[0][2]]} weights {weight.name!r} in int8 and the float "
          "model has no float32 tensor of that name and shape to restore them from.")
    buf = schema.BufferT()
    buf.data = np.array(reference.buffers[source.buffer].data, np.uint8)
    model.buffers.append(buf)
    target = t_index
    if uses[t_index] > len(ops):  # other ops still read the int8 weights: these get a float twin
      sg.tensors.append(copy.deepcopy(weight))
      target = len(sg.tensors) - 1
      for op, w_pos, _ in ops:
        op.inputs[w_pos] = target
    restored = sg.tensors[target]
    old_buffers.add(restored.buffer)
    restored.type, restored.buffer, restored.quantization = TT.FLOAT32, len(model.buffers) - 1, None
  if not old_buffers:
    return model_bytes
  _drop_orphan_buffers(model, old_buffers)
  return _tflite_private.model_bytes(model)


def hybrid_candidates(model_bytes: bytes, subgraph_index: int = 0,
                      min_elements: int = MIN_ELEMENTS) -> list[int]:
  """Indices of float ops that `dynamic_quantize_ops` would turn hybrid."""
  model = _tflite_private.model_object(model_bytes)
  sg = model.subgraphs[subgraph_index]
  out = []
  for k, op in enumerate(sg.operators):
    code = builtin_code(model, op)
    if code not in HYBRID_OPS:
      continue
    w_pos, _, act_pos = HYBRID_OPS[code]
    w = sg.tensors[op.inputs[w_pos]]
    if (sg.tensors[op.inputs[act_pos]].type == TT.FLOAT32 and w.type == TT.FLOAT32 and
        w.buffer > 0 and model.buffers[w.buffer].data is not None and
        len(model.buffers[w.buffer].data) and int(np.prod(w.shape)) >= min_elements):
      out.append(k)
  return out


def eligible_nodes(calibrated_model: bytes, nodes) -> tuple:
  """The nodes of a calibrated (float) model that can be made dynamic-range: an op with a hybrid
  kernel and a float32 constant weight of at least `MIN_ELEMENTS` elements."""
  candidates = set(hybrid_candidates(calibrated_model))
  return tuple(n for n in nodes if n.index in candidates)
