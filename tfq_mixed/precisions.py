"""What a built .tflite really runs in which precision: per op, per node, per layer.

Read from the flatbuffer's tensor types, never from what was asked for, so the int8 MAC share, the
float layers and the per-layer MAC shares a `Result` reports are those of the model it holds. An op
runs in:

* `int8`: an activation it reads or writes is quantized (int8/uint8/int16 with a scale);
* `dynamic_int8`: only its constant weights are (the converter's dynamic-range "hybrid" kernels:
  int8 weights, float activations quantized on the fly);
* `float`: it reads or writes floating-point tensors and no quantized one.

Ops on integer tensors alone (SHAPE arithmetic: STRIDED_SLICE, PACK of int32) have no precision,
and QUANTIZE and DEQUANTIZE ops only convert between precisions: neither is given one.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Mapping, Optional, Sequence

import numpy as np

from tfq_mixed import _tflite_private
from tfq_mixed.qtyping import Node, Precision

QDQ_OPS = ("QUANTIZE", "DEQUANTIZE")
MIXED = "mixed"
"""The label of a layer whose nodes run in more than one precision."""
NO_OP = "-"
"""The label of a layer no TFLite op maps to (InputLayer, Dropout)."""


def _twin_outputs(ops: list[dict], twins: dict[int, int]) -> set[int]:
  """Output tensors of the twins `_tflite_private.layerwise_twins` adds (none in a plain model).

  A twin's reference is a float twin's output or, for ops exact in int8 (MAX_POOL_2D), the
  DEQUANTIZE of an int8 twin's output.
  """
  producer = {t: op for op in ops for t in op["outputs"]}
  outputs = set()
  for reference in twins.values():
    outputs.add(reference)
    source = producer.get(reference)
    if source is not None and source["op_name"] == "DEQUANTIZE":
      outputs.add(source["inputs"][0])
  return outputs


def align_ops(nodes: Sequence[Node], interpreter,
              twins: Optional[dict[int, int]] = None) -> dict[int, dict]:
  """Calibrated node index -> the same op in a quantized model (in order, Q/DQ ops skipped).

  The twins of `_tflite_private.layerwise_twins` ({int8 output: twin output}) are skipped too.
  Where quantization changed the graph beyond adding Q/DQ ops, ops are matched by name only.
  """
  all_ops = _tflite_private.ops(interpreter)
  twin_outputs = _twin_outputs(all_ops, twins or {})
  quantized_ops = [op for op in all_ops
                   if op["op_name"] not in QDQ_OPS and op["outputs"][0] not in twin_outputs]
  float_nodes = [n for n in nodes if n.op_type not in QDQ_OPS]
  if len(float_nodes) == len(quantized_ops) and all(
      op["op_name"] in (n.op_type, _REWRITTEN.get(n.op_type))
      for n, op in zip(float_nodes, quantized_ops)):
    return {n.index: op for n, op in zip(float_nodes, quantized_ops)}
  name = lambda tensor: _tflite_private.tensor_name(interpreter, tensor)
  by_name = {}
  for op in quantized_ops:
    by_name.setdefault(name(op["outputs"][0]), op)
  # In a twin model the float twin keeps the op's name and the int8 op gets a new one.
  producer = {op["outputs"][0]: op for op in quantized_ops}
  for output, reference in (twins or {}).items():
    if output in producer:
      by_name.setdefault(name(reference), producer[output])
  # An op the quantizer fused with a neighbour (a PAD into a DEPTHWISE_CONV_2D) is named after
  # both, their names joined by ';': a node is that op if all its name's parts are in the op's.
  by_part: dict[str, list] = {}
  for op_name, op in by_name.items():
    for part in op_name.split(";"):
      by_part.setdefault(part, []).append((set(op_name.split(";")), op))
  aligned = {}
  for n in float_nodes:
    if n.name in by_name:
      aligned[n.index] = by_name[n.name]
      continue
    parts = set(n.name.split(";"))
    found = [op for names, op in by_part.get(n.name.split(";")[0], []) if parts <= names]
    if found:
      aligned[n.index] = found[0]
  # The rest (an output op the quantizer renamed) by their place in the op sequence.
  taken = {op["index"] for op in aligned.values()}
  matcher = difflib.SequenceMatcher(
      None, [_REWRITTEN.get(n.op_type, n.op_type) for n in float_nodes],
      [op["op_name"] for op in quantized_ops], autojunk=False)
  for block in matcher.get_matching_blocks():
    for k in range(block.size):
      node, op = float_nodes[block.a + k], quantized_ops[block.b + k]
      if node.index not in aligned and op["index"] not in taken:
        aligned[node.index] = op
        taken.add(op["index"])
  return aligned


_REWRITTEN = {"STRIDED_SLICE": "SLICE"}
"""Ops TensorFlow's quantizer may replace by an equivalent one (a STRIDED_SLICE with unit strides
becomes a SLICE)."""


def _is_quantized(details: dict) -> bool:
  return (np.dtype(details["dtype"]) in (np.int8, np.uint8, np.int16) and
          details["quantization_parameters"]["scales"].size > 0)


def op_precision(interpreter, op: dict, constants: set[int]) -> Optional[Precision]:
  """The precision `op` of `interpreter`'s model runs in (see the module docstring), or None
  for an op on integer tensors alone."""
  weights_quantized = floating = False
  for tensor in list(op["inputs"]) + list(op["outputs"]):
    if tensor < 0:
      continue
    details = _tflite_private.tensor_details(interpreter, tensor)
    if _is_quantized(details):
      if tensor not in constants:
        return Precision.INT8
      weights_quantized = True
    elif np.issubdtype(details["dtype"], np.inexact):
      floating = True
  if weights_quantized:
    return Precision.DYNAMIC_INT8
  return Precision.FLOAT if floating else None


def node_precisions(tflite: bytes, nodes: Sequence[Node],
                    twins: Optional[dict[int, int]] = None) -> dict[int, Precision]:
  """Node index -> the precision its op runs in within `tflite` (a model quantized from the
  calibrated model the nodes come from).

  Q/DQ nodes and ops on integer tensors alone are left out; a compute node with no op left in
  `tflite` counts as float (its MACs are not claimed for int8).
  """
  interpreter = _tflite_private.make_interpreter(tflite, builtin_only=True)
  ops = _tflite_private.ops(interpreter)
  produced = {t for op in ops for t in op["outputs"]}
  inputs = {d["index"] for d in interpreter.get_input_details()}
  constants = {t for op in ops for t in op["inputs"]
               if t >= 0 and t not in produced and t not in inputs}
  aligned = align_ops(nodes, interpreter, twins)
  out = {}
  for node in nodes:
    if node.index in aligned:
      precision = op_precision(interpreter, aligned[node.index], constants)
    else:
      precision = Precision.FLOAT if node.is_compute else None
    if precision is not None:
      out[node.index] = precision
  return out


@dataclasses.dataclass(frozen=True)
class LayerPrecision:
  """The precision one Keras layer really runs in.

  Attributes:
    precision: 'int8', 'dynamic_int8' or 'float' when all its nodes run in that precision,
      'mixed' when they do not, '-' when no op maps to the layer.
    macs: MACs per sample of the compute nodes the layer is part of, per precision (a BatchNorm
      fused into a Conv shares the Conv's); only precisions with MACs are listed.
  """

  precision: str
  macs: Mapping[str, int]

  def share(self, precision: "Precision | str") -> float:
    """Share of the layer's MACs in `precision` (NaN for a layer without MACs)."""
    total = sum(self.macs.values())
    return self.macs.get(Precision(precision).value, 0) / total if total else float("nan")

  def to_dict(self) -> dict:
    return {"precision": self.precision, "macs": dict(sorted(self.macs.items()))}


def layer_precisions(layer_names: Sequence[str], nodes: Sequence[Node],
                     precisions: Mapping[int, Precision]) -> dict[str, LayerPrecision]:
  """Layer name -> `LayerPrecision`, from its nodes' precisions, in `layer_names` order.

  A layer with MACs is labelled by where its MACs run (MultiHeadAttention with one of six
  matmuls float is 'mixed', not 'float'); one without, by the precision of its nodes.
  """
  of_layer: dict[str, list[Node]] = {}
  for node in nodes:
    if node.index in precisions:
      for name in node.layers:
        of_layer.setdefault(name, []).append(node)
  out = {}
  for name in layer_names:
    members = of_layer.get(name, [])
    macs: dict[str, int] = {}
    for node in members:
      if node.macs:
        key = precisions[node.index].value
        macs[key] = macs.get(key, 0) + node.macs
    kinds = set(macs) if macs else {precisions[n.index].value for n in members}
    label = NO_OP if not kinds else (kinds.pop() if len(kinds) == 1 else MIXED)
    out[name] = LayerPrecision(precision=label, macs=macs)
  return out


@dataclasses.dataclass(frozen=True)
class MacCount:
  """MACs per sample of a built model, per precision (QuantuneV2 Eq. 17 counts them)."""

  by_precision: Mapping[str, int]

  @property
  def total(self) -> int:
    return sum(self.by_precision.values())

  @property
  def int8_mac_ratio(self) -> float:
    """Share of the MACs in static int8 (1.0 for a model without MACs)."""
    return self.by_precision.get(Precision.INT8.value, 0) / self.total if self.total else 1.0


def mac_count(nodes: Sequence[Node], precisions: Mapping[int, Precision]) -> MacCount:
  counts = {p.value: 0 for p in Precision}
  for node in nodes:
    if node.macs and node.index in precisions:
      counts[precisions[node.index].value] += node.macs
  return MacCount(by_precision=counts)


def int8_unsupported(nodes: Sequence[Node], int8_model: bytes,
                     twins: Optional[dict[int, int]] = None) -> tuple[Node, ...]:
  """The nodes a full-int8 model still runs in float: TFLite has no int8 kernel for them.

  Read from the int8 flatbuffer itself, so the report and the int8 MAC ratio say what the model
  really runs. `int8_model` may be the twin model of `_tflite_private.layerwise_twins` with its
  `twins`.
  """
  built = node_precisions(int8_model, nodes, twins)
  return tuple(n for n in nodes if built.get(n.index) == Precision.FLOAT)
