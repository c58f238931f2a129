"""Step 0 for a float `.tflite`: read it, check it, and make it something TensorFlow's calibrator
and quantizer take.

Two rewrites, both exact (the prepared model computes the same outputs, bit for bit on LiteRT's
XNNPACK path):

* **fp16 weights folded.** Models exported for size (all of MediaPipe's but two) store weights as
  float16 constants behind DEQUANTIZE, some sparse behind DENSIFY too. TensorFlow 2.21's
  `mlir_quantize` fails on them with an empty RuntimeError ("scale out of expressed type range";
  "'tfl.sub' op failed to verify that binary op operands have same element type") whatever is
  denylisted. Each such chain becomes one float32 constant (`fold_fp16`).
* **MediaPipe's `Convolution2DTransposeBias` made builtin.** LiteRT runs that custom op only inside
  its default XNNPACK delegate and TensorFlow's calibrator not at all; it is exactly TRANSPOSE_CONV
  with a bias (`replace_transpose_conv_bias`).

Any other custom op needs its kernel: `check_custom_ops` names it (UnsupportedModelError) unless
the caller brings registerers for it.
"""

from __future__ import annotations

import os
import re
from typing import Any, Sequence

import numpy as np

from tfq_mixed import _tflite_private
from tfq_mixed import errors

_schema = _tflite_private.schema
_BO = _schema.BuiltinOperator
_TT = _schema.TensorType

_NUMPY_TYPES = {_TT.FLOAT32: np.float32, _TT.FLOAT16: np.float16, _TT.INT32: np.int32,
                _TT.INT8: np.int8, _TT.UINT8: np.uint8, _TT.INT64: np.int64, _TT.INT16: np.int16}
_QUANTIZED_TYPES = (_TT.INT8, _TT.UINT8, _TT.INT16)

TRANSPOSE_CONV_BIAS = "Convolution2DTransposeBias"
"""MediaPipe's transposed convolution with bias (selfie segmentation), rewritten as builtin."""


def read(model: Any) -> bytes:
  """The bytes of a `.tflite` given as bytes or as a path.

  Raises:
    InvalidArgumentError: no such file, or not a TFLite flatbuffer.
  """
  if isinstance(model, (str, os.PathLike)):
    path = os.fspath(model)
    try:
      with open(path, "rb") as f:
        data = f.read()
    except OSError as e:
      raise errors.InvalidArgumentError(
          f"Could not read the model {path!r}: {e.strerror or e}. Pass a float .tflite file, a "
          "SavedModel folder or a keras.Model.") from None
    where = f"file {path!r}"
  else:
    data = bytes(model)
    where = "the bytes given"
  if len(data) < 8 or data[4:8] != b"TFL3":
    raise errors.InvalidArgumentError(
        f"{where[0].upper()}{where[1:]} ({len(data)} bytes) is not a TFLite model: a .tflite "
        "flatbuffer has the identifier 'TFL3' at bytes 4-8. Pass a float .tflite (e.g. from "
        "TFLiteConverter, litert-torch or onnx2tf), a SavedModel folder or a keras.Model.")
  return data


def _opcode(model, op) -> int:
  code = model.operatorCodes[op.opcodeIndex]
  return max(code.builtinCode, code.deprecatedBuiltinCode)


def _custom_code(model, op) -> str | None:
  if _opcode(model, op) != _BO.CUSTOM:
    return None
  code = model.operatorCodes[op.opcodeIndex].customCode
  return code.decode() if isinstance(code, bytes) else code


def _constant(model, tensor) -> np.ndarray | None:
  """A constant tensor's raw bytes (None for a tensor computed at run time)."""
  if tensor.buffer >= len(model.buffers):
    return None
  data = model.buffers[tensor.buffer].data
  return None if data is None or len(data) == 0 else np.asarray(data, dtype=np.uint8)


def _name(tensor) -> str:
  return tensor.name.decode() if isinstance(tensor.name, bytes) else str(tensor.name or "")


def custom_ops(model_bytes: bytes) -> list[str]:
  """The custom op codes the model's ops use, sorted."""
  model = _tflite_private.model_object(model_bytes)
  return sorted({_custom_code(model, op) for subgraph in model.subgraphs
                 for op in subgraph.operators} - {None})


def check_float(model_bytes: bytes, what: str = "The model") -> None:
  """Raises UnsupportedModelError unless the model is one float graph with float32 inputs.

  What TensorFlow's calibrator takes: a float model (fp16 weights behind DEQUANTIZE are fine,
  `prepare` folds them). An int8 model cannot be quantized again; control flow (more than one
  subgraph) cannot be mapped op by op.
  """
  model = _tflite_private.model_object(model_bytes)
  if len(model.subgraphs) != 1:
    raise errors.UnsupportedModelError(
        f"{what} has {len(model.subgraphs)} subgraphs (control flow such as WHILE or IF, or "
        "several signatures); tfq_mixed maps one graph op by op. Export one signature without "
        "control flow, or pass the Keras model.")
  subgraph = model.subgraphs[0]
  for index in subgraph.inputs:
    tensor = subgraph.tensors[index]
    if tensor.type != _TT.FLOAT32:
      raise errors.UnsupportedModelError(
          f"{what}'s input {_name(tensor)!r} is {_type_name(tensor.type)}; tfq_mixed quantizes "
          "float models with float32 inputs. Pass the float model this one was made from.")
  quantized = sorted({_name(subgraph.tensors[i]) for op in subgraph.operators
                      for i in list(op.outputs) if i >= 0 and
                      subgraph.tensors[i].type in _QUANTIZED_TYPES})
  if quantized:
    raise errors.UnsupportedModelError(
        f"{what} is already quantized: {len(quantized)} op output(s) are integer, e.g. "
        f"{quantized[0]!r}. Quantizing again would stack a second rounding on the first. Pass "
        "the float model it was made from.")


def _type_name(code: int) -> str:
  return next((k for k, v in vars(_TT).items() if v == code and not k.startswith("_")),
              str(code))


def check_custom_ops(model_bytes: bytes, registered: bool, what: str = "The model") -> None:
  """Raises UnsupportedModelError naming the custom ops of `model_bytes` unless `registered`
  (the caller passed registerers for their kernels)."""
  names = custom_ops(model_bytes)
  if names and not registered:
    raise errors.UnsupportedModelError(
        f"{what} has custom ops with no kernel in TensorFlow Lite: {', '.join(names)}. "
        "TensorFlow's calibrator and LiteRT need their kernels to run it. Pass "
        "`custom_op_registerers` (the functions or symbol names that register them, as for "
        "ai_edge_litert's Interpreter), or export the model without them (e.g. as the part "
        "before them).")


def prepare(model_bytes: bytes) -> bytes:
  """The rewrites a float model needs before calibration (the module docstring); exact."""
  return fuse_activations(replace_transpose_conv_bias(fold_fp16(model_bytes)))


_FUSABLE_ACTIVATIONS = {
    _BO.RELU: _schema.ActivationFunctionType.RELU,
    _BO.RELU6: _schema.ActivationFunctionType.RELU6,
    _BO.RELU_N1_TO_1: _schema.ActivationFunctionType.RELU_N1_TO_1,
}


def fuse_activations(model_bytes: bytes) -> bytes:
  """Every RELU, RELU6 or RELU_N1_TO_1 that alone reads an op with a fused-activation option
  (CONV_2D, ADD, ...) folded into that op, as TensorFlow Lite's converter does; the same bytes
  when there is none.

  TensorFlow's quantizer fuses them itself, so the quantized model would have ops the calibrated
  one has not, under other names; fused first, every node of the analysis is an op of every
  model built from it. Exact: the op computes activation(op(x)) either way.
  """
  model = _tflite_private.model_object(model_bytes)
  changed = False
  for subgraph in model.subgraphs:
    readers: dict[int, list[int]] = {}
    for i, op in enumerate(subgraph.operators):
      for t in op.inputs:
        if t >= 0:
          readers.setdefault(int(t), []).append(i)
    producer = {int(o): i for i, op in enumerate(subgraph.operators) for o in op.outputs}
    outputs = {int(t) for t in subgraph.outputs}
    dead = set()
    for i, op in enumerate(subgraph.operators):
      activation = _FUSABLE_ACTIVATIONS.get(_opcode(model, op))
      source = int(op.inputs[0]) if activation is not None else -1
      if source not in producer or source in outputs or readers.get(source) != [i]:
        continue
      fused = subgraph.operators[producer[source]]
      options = fused.builtinOptions
      if (producer[source] in dead or len(fused.outputs) != 1 or options is None or
          getattr(options, "fusedActivationFunction", None) !=
          _schema.ActivationFunctionType.NONE):
        continue
      options.fusedActivationFunction = activation
      fused.outputs = np.asarray([int(op.outputs[0])], np.int32)
      dead.add(i)
      changed = True
    if dead:
      _remove_ops(model, subgraph, dead)
  return _rewritten(model, model_bytes, changed)


def fold_fp16(model_bytes: bytes) -> bytes:
  """Every DEQUANTIZE of a constant float16 tensor (directly, or through a DENSIFY of a sparse
  one) replaced by a float32 constant; the same bytes when there is none.

  The DEQUANTIZE's output tensor (same name and shape, float32) becomes the constant, so its
  readers need no rewiring. The DEQUANTIZE (and a DENSIFY nothing else reads), the orphaned fp16
  tensors and the operator codes no op uses any more are dropped; tensor indices are compacted
  (subgraph and signature inputs and outputs remapped).
  """
  model = _tflite_private.model_object(model_bytes)
  changed = False
  for subgraph in model.subgraphs:
    producer = {int(o): i for i, op in enumerate(subgraph.operators) for o in op.outputs}
    dead: set[int] = set()
    densify: set[int] = set()
    for i, op in enumerate(subgraph.operators):
      if _opcode(model, op) != _BO.DEQUANTIZE:
        continue
      source = subgraph.tensors[int(op.inputs[0])]
      chain = []
      if source.type == _TT.FLOAT16 and _constant(model, source) is not None:
        values = _fp16_values(model, source)
      elif (int(op.inputs[0]) in producer and
            _opcode(model, subgraph.operators[producer[int(op.inputs[0])]]) == _BO.DENSIFY):
        sparse = subgraph.tensors[int(subgraph.operators[producer[int(op.inputs[0])]].inputs[0])]
        if sparse.type != _TT.FLOAT16 or _constant(model, sparse) is None:
          continue
        values = _fp16_values(model, sparse)
        chain = [producer[int(op.inputs[0])]]
      else:
        continue
      output = subgraph.tensors[int(op.outputs[0])]
      output.buffer = _new_buffer(model, values.astype(np.float32).reshape(
          [int(d) for d in output.shape]))
      output.type = _TT.FLOAT32
      output.sparsity = None
      dead.add(i)
      densify.update(chain)
      changed = True
    # A DENSIFY goes only when no remaining op (or graph output) still reads it.
    read_by_rest = {int(x) for x in subgraph.outputs}
    for i, op in enumerate(subgraph.operators):
      if i not in dead and i not in densify:
        read_by_rest.update(int(x) for x in op.inputs if x >= 0)
    dead |= {i for i in densify
             if not any(int(o) in read_by_rest for o in subgraph.operators[i].outputs)}
    if dead:
      _remove_ops(model, subgraph, dead)
  return _rewritten(model, model_bytes, changed)


def _rewritten(model, model_bytes: bytes, changed: bool) -> bytes:
  """The bytes of a pass's result: `model_bytes` itself if the pass changed nothing, else `model`
  without the operator codes no op uses any more."""
  if not changed:
    return model_bytes
  _drop_unused_opcodes(model)
  return _tflite_private.model_bytes(model)


def _fp16_values(model, tensor) -> np.ndarray:
  values = _constant(model, tensor).view(np.float16)
  if tensor.sparsity is not None:
    return densify(tensor.sparsity, [int(d) for d in tensor.shape], values)
  return values.reshape([int(d) for d in tensor.shape])


def densify(sparsity, shape: Sequence[int], values: np.ndarray) -> np.ndarray:
  """A sparse constant's dense values: TFLite's `FormatConverter::SparseToDense`
  (`tensorflow/lite/kernels/internal/utils/sparsity_format_converter.cc`) in NumPy.

  `sparsity` is the tensor's `SparsityParametersT`: a traversal order over the dims (and block
  dims), each DENSE (all indices) or SPARSE_CSR (segments and indices).
  """
  rank = len(shape)
  order = [int(t) for t in sparsity.traversalOrder]
  block_map = [int(b) for b in (sparsity.blockMap if sparsity.blockMap is not None else [])]
  levels = sparsity.dimMetadata
  block_size = [int(levels[rank + i].denseSize) for i in range(len(block_map))]
  # Walk the levels breadth-first: per level, every stored position's index along that level and
  # the position it continues from, so all values are placed at once.
  positions = np.zeros(1, np.int64)  # position within the previous level's storage
  coordinates = np.zeros((1, len(order)), np.int64)
  for level, metadata in enumerate(levels):
    if metadata.format == _schema.DimensionType.DENSE:
      size = int(metadata.denseSize)
      index = np.tile(np.arange(size), len(positions))
      parent = np.repeat(np.arange(len(positions)), size)
      positions = positions[parent] * size + index
    else:
      segments = np.asarray(metadata.arraySegments.values, np.int64)
      indices = np.asarray(metadata.arrayIndices.values, np.int64)
      starts, ends = segments[positions], segments[positions + 1]
      parent = np.repeat(np.arange(len(positions)), ends - starts)
      positions = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends)] or
                                 [np.zeros(0, np.int64)])
      index = indices[positions]
    coordinates = coordinates[parent]
    coordinates[:, level] = index
  dense_index = np.zeros((len(positions), rank), np.int64)
  for level in range(rank):
    dense_index[:, order[level]] = coordinates[:, level]
  for level in range(rank, len(order)):
    block = order[level] - rank
    dim = block_map[block]
    dense_index[:, dim] = dense_index[:, dim] * block_size[block] + coordinates[:, level]
  dense = np.zeros(int(np.prod(shape)), values.dtype)
  dense[np.ravel_multi_index(dense_index.T, shape)] = values[:len(positions)]
  return dense.reshape(shape)


def _new_buffer(model, array: np.ndarray) -> int:
  buffer = _schema.BufferT()
  buffer.data = np.frombuffer(np.ascontiguousarray(array).tobytes(), np.uint8)
  model.buffers.append(buffer)
  return len(model.buffers) - 1


def _drop_unused_opcodes(model) -> None:
  """Operator codes no op uses, removed: TensorFlow's calibrator builds its resolver from the
  codes and fails on one whose kernel it lacks ("Didn't find op for builtin opcode 'DEQUANTIZE'
  version '2'")."""
  used = sorted({op.opcodeIndex for subgraph in model.subgraphs for op in subgraph.operators})
  remap = {old: new for new, old in enumerate(used)}
  model.operatorCodes = [model.operatorCodes[i] for i in used]
  for subgraph in model.subgraphs:
    for op in subgraph.operators:
      op.opcodeIndex = remap[op.opcodeIndex]


def _remove_ops(model, subgraph, dead: set[int]) -> None:
  """Drops the ops `dead` (by position), then every tensor nothing refers to; the buffers of
  dropped constants are emptied (buffer indices stay, so metadata buffers stay valid)."""
  subgraph.operators = [op for i, op in enumerate(subgraph.operators) if i not in dead]
  position = model.subgraphs.index(subgraph)
  signature_maps = [m for s in (model.signatureDefs or []) if s.subgraphIndex == position
                    for m in list(s.inputs or []) + list(s.outputs or [])]
  used = {int(i) for i in subgraph.inputs} | {int(i) for i in subgraph.outputs}
  used |= {int(m.tensorIndex) for m in signature_maps}
  for op in subgraph.operators:
    for tensors in (op.inputs, op.outputs, op.intermediates):
      used.update(int(i) for i in (tensors if tensors is not None else []) if i >= 0)
  keep = sorted(used)
  remap = {old: new for new, old in enumerate(keep)}
  dropped = {t.buffer for i, t in enumerate(subgraph.tensors) if i not in remap and t.buffer > 0}
  subgraph.tensors = [subgraph.tensors[i] for i in keep]

  def renumber(tensors):
    return None if tensors is None else np.asarray(
        [remap[int(i)] if i >= 0 else -1 for i in tensors], np.int32)

  for op in subgraph.operators:
    op.inputs, op.outputs = renumber(op.inputs), renumber(op.outputs)
    if op.intermediates is not None and len(op.intermediates):
      op.intermediates = renumber(op.intermediates)
  subgraph.inputs, subgraph.outputs = renumber(subgraph.inputs), renumber(subgraph.outputs)
  for entry in signature_maps:
    entry.tensorIndex = remap[int(entry.tensorIndex)]
  still_used = {t.buffer for s in model.subgraphs for t in s.tensors}
  for index in dropped - still_used:
    model.buffers[index].data = None
    model.buffers[index].offset = 0
    model.buffers[index].size = 0


def replace_transpose_conv_bias(model_bytes: bytes) -> bytes:
  """MediaPipe's custom `Convolution2DTransposeBias` as builtin TRANSPOSE_CONV (version 3, with
  its bias); the same bytes when the model has none.

  The custom op reads (input, weights OHWI, bias) with options {padding, stride_w, stride_h} as
  int32 (`TfLiteTransposeConvParams`); TRANSPOSE_CONV reads (output_shape, weights OHWI, input,
  bias). The output size is the custom kernel's: stride * (in - 1) + k - pad, with
  pad = max(0, k - (in - 1) % stride - 1) for SAME padding.
  """
  model = _tflite_private.model_object(model_bytes)
  changed = False
  for subgraph in model.subgraphs:
    for op in subgraph.operators:
      if _custom_code(model, op) != TRANSPOSE_CONV_BIAS:
        continue
      options = np.asarray(op.customOptions, np.uint8)[:12].view(np.int32)
      padding, stride_w, stride_h = (int(v) for v in options)
      x, weights, bias = (int(i) for i in op.inputs)
      output = subgraph.tensors[int(op.outputs[0])]
      out_shape = np.asarray([int(d) for d in output.shape], np.int32)
      if out_shape.size != 4 or np.any(out_shape <= 0):
        x_shape = [int(d) for d in subgraph.tensors[x].shape]
        w_shape = [int(d) for d in subgraph.tensors[weights].shape]
        pad_h = pad_w = 0
        if padding == 1:  # kTfLitePaddingSame
          pad_h = max(0, w_shape[1] - (x_shape[1] - 1) % stride_h - 1)
          pad_w = max(0, w_shape[2] - (x_shape[2] - 1) % stride_w - 1)
        out_shape = np.asarray([x_shape[0], stride_h * (x_shape[1] - 1) + w_shape[1] - pad_h,
                                stride_w * (x_shape[2] - 1) + w_shape[2] - pad_w, w_shape[0]],
                               np.int32)
      shape_tensor = _schema.TensorT()
      shape_tensor.name = (output.name or b"") + b"/output_shape"
      shape_tensor.shape = np.asarray([4], np.int32)
      shape_tensor.type = _TT.INT32
      shape_tensor.buffer = _new_buffer(model, out_shape)
      subgraph.tensors.append(shape_tensor)
      op.opcodeIndex = _builtin_opcode(model, _BO.TRANSPOSE_CONV, version=3)
      op.inputs = np.asarray([len(subgraph.tensors) - 1, weights, x, bias], np.int32)
      params = _schema.TransposeConvOptionsT()
      params.padding = _schema.Padding.SAME if padding == 1 else _schema.Padding.VALID
      params.strideW, params.strideH = stride_w, stride_h
      params.fusedActivationFunction = _schema.ActivationFunctionType.NONE
      op.builtinOptionsType = _schema.BuiltinOptions.TransposeConvOptions
      op.builtinOptions = params
      op.customOptions = None
      op.customOptionsFormat = 0
      changed = True
  return _rewritten(model, model_bytes, changed)


def _builtin_opcode(model, builtin: int, version: int) -> int:
  for i, code in enumerate(model.operatorCodes):
    if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin:
      code.version = max(code.version, version)
      return i
  code = _schema.OperatorCodeT()
  code.builtinCode = builtin
  code.deprecatedBuiltinCode = min(builtin, _BO.PLACEHOLDER_FOR_GREATER_OP_CODES)
  code.version = version
  model.operatorCodes.append(code)
  return len(model.operatorCodes) - 1


_MAIN_TF_OPS = {
    "CONV_2D": ("convolution", "conv2d"),
    "DEPTHWISE_CONV_2D": ("depthwise",),
    "FULLY_CONNECTED": ("matmul", "tensordot", "einsum"),
    "BATCH_MATMUL": ("matmul", "einsum"),
    "TRANSPOSE_CONV": ("conv2d_transpose", "conv2dbackpropinput", "transpose"),
}
"""The TensorFlow ops a TFLite op of each type is converted from (lower case, no suffix)."""


def _main_part(tensor_name: str, op_type: str) -> str:
  """The ';'-separated part of a fused op's tensor name that names the op the others were fused
  into: the one whose TensorFlow op is the op's own kind (a CONV_2D's `convolution`, not the
  `Relu` or BatchNorm `mul` fused into it), else the first."""
  parts = [p for p in tensor_name.split(";") if p]
  for part in parts:
    op = re.sub(r"[_\d]+$", "", part.rsplit("/", 1)[-1].lower())
    if "/" in part and op.startswith(_MAIN_TF_OPS.get(op_type, ("\0",))):
      return part
  return parts[0] if parts else ""


def layer_names(tensor_names: Sequence[str], op_types: Sequence[str]) -> list[str]:
  """A name per op from its output tensor's name: with Keras layer names where there are some.

  A fused op's tensor is named after every op it fused, joined by ';', each a TensorFlow path
  (`model/relu1/Relu;model/bn1/batchnorm/mul;model/conv1/convolution`). The part naming the op's
  own kind (`_main_part`) without its TensorFlow op is the Keras layer's path (`model/conv1`). A
  name without a path (`conv2d_21`, a tensor named at export) is kept whole, and a name
  TensorFlow gave a model output (`StatefulPartitionedCall:0`) becomes the op type and position.
  Repeats get '@1', '@2' as repeated Keras layer calls do.
  """
  names, seen = [], {}
  for position, (tensor, op_type) in enumerate(zip(tensor_names, op_types)):
    main = _main_part(tensor, op_type)
    if not main or re.fullmatch(r"(StatefulPartitionedCall|PartitionedCall)(_\d+)?:\d+", main):
      name = f"{op_type.lower()}_{position}"
    else:
      name = main.rsplit("/", 1)[0] if "/" in main else main
    count = seen.get(name, 0)
    seen[name] = count + 1
    names.append(name if count == 0 else f"{name}@{count}")
  return names


def with_one_signature(model_bytes: bytes) -> bytes:
  """`model_bytes` with exactly one signature over its graph: its own when it has one naming every
  input and output, else one naming them after their tensors (`input_<i>`/`output_<i>` where
  those names are not unique). The quantized models keep it; LiteRT's signature runner needs it.
  """
  model = _tflite_private.model_object(model_bytes)
  subgraph = model.subgraphs[0]
  signatures = model.signatureDefs or []
  if len(signatures) == 1 and signatures[0].subgraphIndex == 0:
    mapped = {int(m.tensorIndex) for m in list(signatures[0].inputs or []) +
              list(signatures[0].outputs or [])}
    if mapped == {int(i) for i in subgraph.inputs} | {int(i) for i in subgraph.outputs}:
      return model_bytes

  def names(indices, prefix):
    found = [_name(subgraph.tensors[i]) for i in indices]
    if len(set(found)) == len(found) and all(found):
      return found
    return [f"{prefix}_{i}" for i in range(len(found))]

  return _tflite_private.with_signature(model_bytes, names(subgraph.inputs, "input"),
                                        names(subgraph.outputs, "output"))
