"""What each node costs in each precision, in what users pay: latency, bytes and MACs.

Latency comes from LiteRT's own per-op profiler (XNNPACK on this machine, `threads` threads, batch 1)
run, in turns of 10 runs each, on four models of the calibration: full int8, full float, every
eligible node dynamic-range, and a "checkerboard" (every other compute node float) whose QUANTIZE
and DEQUANTIZE ops give the cost of an int8/float border per element. Bytes are the node's
constant tensors in each precision, read from the same models without running them (`Sizes`: the
same on every machine). A model's predicted latency is the sum of its nodes' times in their
precisions plus one QUANTIZE or DEQUANTIZE per tensor crossing between the int8 and the float
domain (`predict`); budgets are checked in those terms, and the model built is then what it is.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import time
from typing import Mapping, Optional, Sequence

import numpy as np

from tfq_mixed import _tflite_private
from tfq_mixed import precisions
from tfq_mixed.qtyping import Node, Precision

INT8, DYNAMIC, FLOAT = Precision.INT8, Precision.DYNAMIC_INT8, Precision.FLOAT


class CostKind(str, enum.Enum):
  """What a budget is counted in."""

  MACS = "macs"  # MACs outside static int8 (the `ratio` budget, QuantuneV2 Eq. 17)
  LATENCY = "latency"  # milliseconds on LiteRT's CPU path (`max_latency`)
  SIZE = "size"  # bytes of the .tflite (`max_size`)


@dataclasses.dataclass(frozen=True)
class Graph:
  """The calibrated model's dataflow, as the cost and noise models need it.

  Attributes:
    nodes: every node, in execution order.
    producers: node -> the nodes producing its inputs (`segments.op_inputs`).
    reads_input: nodes reading a model input; writes_output: nodes producing a model output.
    elements: node -> elements of its (first) output tensor for one sample.
    input_elements: node -> elements of the model inputs it reads.
  """

  nodes: tuple[Node, ...]
  producers: Mapping[int, tuple[int, ...]]
  reads_input: frozenset
  writes_output: frozenset
  elements: Mapping[int, int]
  input_elements: Mapping[int, int]

  @functools.cached_property
  def consumers(self) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for node in self.nodes:
      for p in self.producers.get(node.index, ()):
        out.setdefault(p, []).append(node.index)
    return out


def read_graph(calibrated_model: bytes, nodes: Sequence[Node],
               producers: Mapping[int, tuple[int, ...]], input_names: Sequence[str],
               example: Sequence[np.ndarray]) -> Graph:
  """The `Graph` of a calibrated model, its tensors sized by running `example` (one sample per
  signature input `input_names`)."""
  interpreter = _tflite_private.make_interpreter(calibrated_model, builtin_only=True)
  inputs, outputs = _tflite_private.signature_io(interpreter)
  for name, array in zip(input_names, example):
    interpreter.resize_tensor_input(inputs[name], array[:1].shape, strict=False)
  interpreter.allocate_tensors()
  for name, array in zip(input_names, example):
    interpreter.set_tensor(inputs[name], array[:1])
  interpreter.invoke()
  ops = {op["index"]: op for op in _tflite_private.ops(interpreter)}
  size = lambda t: int(np.prod(_tflite_private.tensor_details(interpreter, t)["shape"]))
  model_inputs, model_outputs = set(inputs.values()), set(outputs.values())
  reads_input, writes_output, elements, input_elements = set(), set(), {}, {}
  for node in nodes:
    op = ops[node.index]
    elements[node.index] = size(op["outputs"][0])
    read = [t for t in op["inputs"] if t in model_inputs]
    if read:
      reads_input.add(node.index)
      input_elements[node.index] = sum(size(t) for t in read)
    if model_outputs & set(op["outputs"]):
      writes_output.add(node.index)
  return Graph(tuple(nodes), dict(producers), frozenset(reads_input), frozenset(writes_output),
               elements, input_elements)


@dataclasses.dataclass(frozen=True)
class Sizes:
  """Bytes per node and precision (its constant tensors and quantization parameters), read from
  built models: no profiling.

  Attributes:
    bytes: node -> {precision: bytes of its constant tensors and quantization parameters}.
    int8_bytes: size of the full-int8 .tflite.
  """

  bytes: Mapping[int, Mapping[Precision, int]]
  int8_bytes: int

  def size_bytes(self, precision: Mapping[int, Precision], floating: set[int]) -> int:
    """Predicted size: the full-int8 file plus each node's change of bytes (`_node_bytes`)."""
    total = self.int8_bytes
    for node, sizes in self.bytes.items():
      if node in floating:
        total += sizes.get(precision.get(node, FLOAT), sizes.get(FLOAT, 0)) - sizes.get(INT8, 0)
    return total


@dataclasses.dataclass(frozen=True)
class CostModel:
  """Per node and precision: latency (ms), bytes, MACs; and the border costs.

  Attributes:
    milliseconds: node -> {precision: mean ms per run} (int8 and float for every node; dynamic
      for the nodes that can be).
    quantize_ms, dequantize_ms: (fixed, per element) ms of a QUANTIZE / DEQUANTIZE op.
    threads: XNNPACK threads profiled; seconds: wall time of the profiling.
  """

  milliseconds: Mapping[int, Mapping[Precision, float]]
  quantize_ms: tuple[float, float]
  dequantize_ms: tuple[float, float]
  threads: int
  seconds: float

  def border_ms(self, elements: int, to_int8: bool) -> float:
    fixed, per_element = self.quantize_ms if to_int8 else self.dequantize_ms
    return fixed + per_element * elements

  def latency_ms(self, graph: Graph, precision: Mapping[int, Precision],
                 floating: set[int]) -> float:
    """Predicted ms of a model: each node in its precision, plus one QUANTIZE or DEQUANTIZE per
    tensor crossing between the int8 and float domains (model inputs and outputs are float)."""
    return sum(self.node_ms(graph, node.index, precision.get(node.index, FLOAT),
                            node.index in floating,
                            [r in floating for r in graph.consumers.get(node.index, ())])
               for node in graph.nodes)

  def node_ms(self, graph: Graph, index: int, precision: Precision, floating: bool,
              readers_floating: Sequence[bool]) -> float:
    """Node `index`'s share of `latency_ms`: its time at `precision` (int8 outside the float
    domain), the conversion of its output where a reader (or the model's output) is in the other
    domain, and of the model input it reads in int8. A tensor is converted once, however many
    readers of the other domain it has."""
    total = 0.0
    times = self.milliseconds.get(index)
    if times is not None:
      total += times.get(precision, times[FLOAT]) if floating else times[INT8]
    if not floating and (index in graph.writes_output or any(readers_floating)):
      total += self.border_ms(graph.elements[index], to_int8=False)
    if floating and not all(readers_floating):
      total += self.border_ms(graph.elements[index], to_int8=True)
    if not floating and index in graph.reads_input:
      total += self.border_ms(graph.input_elements[index], to_int8=True)
    return total


def _node_bytes(interpreter, op: dict, constants: set[int]) -> int:
  """Bytes of `op` in its file: its constant tensors' data, and the quantization parameters
  (float32 scales, int64 zero points) of those and of its outputs, which a float node drops."""
  total = 0
  for t in [t for t in op["inputs"] if t >= 0 and t in constants] + list(op["outputs"]):
    details = _tflite_private.tensor_details(interpreter, t)
    if t in constants:
      total += int(np.prod(details["shape"])) * np.dtype(details["dtype"]).itemsize
    quantization = details.get("quantization_parameters") or {}
    total += 4 * len(quantization.get("scales", ())) + 8 * len(quantization.get("zero_points", ()))
  return total


def _aligned_ops(model: bytes, nodes: Sequence[Node], allocate: bool = False):
  """(interpreter, ops, {node: its op}, constant tensors) of a built model; allocated at its
  static shapes when `allocate` (constants need no allocation)."""
  interpreter = _tflite_private.make_interpreter(
      _tflite_private.static_shapes(model) if allocate else model, builtin_only=True)
  if allocate:
    interpreter.allocate_tensors()
  ops = _tflite_private.ops(interpreter)
  produced = {t for op in ops for t in op["outputs"]}
  model_inputs = {d["index"] for d in interpreter.get_input_details()}
  constants = {t for op in ops for t in op["inputs"]
               if t >= 0 and t not in produced and t not in model_inputs}
  return interpreter, ops, precisions.align_ops(nodes, interpreter), constants


def uniform_models(build, int8_model: bytes, nodes: Sequence[Node],
                   dynamic_nodes: Sequence[Node]) -> dict[Precision, bytes]:
  """The calibration's full int8, full float and every-eligible-node-dynamic models."""
  every = [n.name for n in nodes]
  return {INT8: int8_model, FLOAT: build(every, ()),
          DYNAMIC: build(every, [n.name for n in dynamic_nodes])}


def measure_sizes(models: Mapping[Precision, bytes], nodes: Sequence[Node],
                  dynamic_nodes: Sequence[Node]) -> Sizes:
  """Each node's bytes in each precision, from the uniform models (`uniform_models`)."""
  dynamic = {n.index for n in dynamic_nodes}
  sizes: dict[int, dict[Precision, int]] = {}
  for precision, model in models.items():
    interpreter, _, aligned, constants = _aligned_ops(model, nodes)
    for node in nodes:
      if node.index in aligned and (precision != DYNAMIC or node.index in dynamic):
        sizes.setdefault(node.index, {})[precision] = _node_bytes(
            interpreter, aligned[node.index], constants)
  return Sizes(bytes=sizes, int8_bytes=len(models[INT8]))


def _profile(model: bytes, timings: Mapping[int, float], nodes: Sequence[Node]) -> tuple[
    dict[int, float], list[tuple[str, int, float]]]:
  """({calibrated node: ms}, [(Q/DQ op, elements, ms)]) of one model from its op `timings`."""
  interpreter, ops, aligned, _ = _aligned_ops(model, nodes, allocate=True)
  milliseconds = {n: timings.get(op["index"], 0.0) for n, op in aligned.items()}
  borders = [(op["op_name"],
              int(np.prod(_tflite_private.tensor_details(interpreter, op["outputs"][0])["shape"])),
              timings.get(op["index"], 0.0))
             for op in ops if op["op_name"] in precisions.QDQ_OPS]
  return milliseconds, borders


def _fit(points: list[tuple[int, float]]) -> tuple[float, float]:
  """(fixed, per element) ms by least squares through (elements, ms), both kept >= 0."""
  if not points:
    return 0.0, 0.0
  x = np.array([p[0] for p in points], np.float64)
  y = np.array([p[1] for p in points], np.float64)
  if len(points) == 1 or np.ptp(x) == 0:
    return 0.0, float(np.mean(y / np.maximum(x, 1)))
  slope, intercept = np.polyfit(x, y, 1)
  if intercept < 0 or slope < 0:
    return 0.0, float(np.sum(x * y) / np.sum(x * x))
  return float(intercept), float(slope)


def measure(build, models: Mapping[Precision, bytes], nodes: Sequence[Node],
            dynamic_nodes: Sequence[Node], example, *, threads: int = 1) -> CostModel:
  """Profiles the uniform models of a calibration, and a "checkerboard" one (every other compute
  node float) for the cost of int8/float borders; returns its `CostModel`.

  Args:
    build: `build(float_nodes, dynamic_nodes) -> .tflite` (the writer's, on this calibration).
    models: `uniform_models` of the calibration.
    nodes: the calibrated nodes; dynamic_nodes: those that can be made dynamic-range.
    example: one sample per model input, fed to the profiled runs.
    threads: XNNPACK threads.

  Raises:
    ProfileError: LiteRT's profiler failed.
  """
  start = time.perf_counter()
  dynamic = {n.index for n in dynamic_nodes}
  profiled = dict(models)
  checkerboard = [n.name for n in nodes if n.is_compute][::2]
  if checkerboard:
    profiled["checkerboard"] = build(checkerboard, ())
  # In turns, so that a slower spell of a shared machine does not fall on one precision only.
  timings = dict(zip(profiled, _tflite_private.profile_interleaved(
      list(profiled.values()), threads=threads, inputs=example)))
  milliseconds: dict[int, dict[Precision, float]] = {}
  borders: list[tuple[str, int, float]] = []
  for precision, model in profiled.items():
    times, qdq = _profile(model, timings[precision], nodes)
    borders += qdq
    if precision == "checkerboard":
      continue
    for node in nodes:
      if node.index in times and (precision != DYNAMIC or node.index in dynamic):
        milliseconds.setdefault(node.index, {})[precision] = times[node.index]
  return CostModel(
      milliseconds=milliseconds,
      quantize_ms=_fit([(e, ms) for name, e, ms in borders if name == "QUANTIZE"]),
      dequantize_ms=_fit([(e, ms) for name, e, ms in borders if name == "DEQUANTIZE"]),
      threads=threads, seconds=time.perf_counter() - start)


def macs_outside_int8(nodes: Sequence[Node], precision: Mapping[int, Precision],
                      forced: Optional[set[int]] = None) -> int:
  """MACs not in static int8 (the `ratio` budget's cost)."""
  forced = forced or set()
  return sum(n.macs for n in nodes
             if n.macs and (precision.get(n.index, INT8) != INT8 or n.index in forced))
