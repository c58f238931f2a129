"""LiteRT's own per-op profiler, reached from Python through its C API (ctypes).

ai_edge_litert's Python `Interpreter` exposes no profiler, but the wheel's `libLiteRt.so` exports
the LiteRT C API with the CompiledModel profiler (`LiteRtCompiledModelGetProfiler`,
`LiteRtStartProfiler`, `LiteRtGetProfilerEvents`). Profiling is switched on by the opaque option
"runtime_options_string" (TOML `enable_profiling = true`), the thread count by the "xnnpack" opaque
option (`num_threads = N`). The CPU path is the same as the Interpreter's default: XNNPACK, with the
builtin kernels for what XNNPACK leaves.

Builtin-kernel nodes report their own node index. An XNNPACK partition reports its own operators,
in order and without node indices: they are matched to the partition's TFLite nodes in execution
order (partition membership from the Interpreter's DELEGATE nodes), the on-the-fly quantization of
a hybrid op ("Convert (NC, F32, QD8)") and inserted "Static Reshape"s going with the op after them.

Private in every sense: not a documented Python API. `tests/tflite_private_test.py` profiles a real
model and checks the per-node times against the whole-model latency, so an upgrade that changes
any of this fails there first; here, every failure raises `ProfileError`.
"""

from __future__ import annotations

import ctypes
import os
from typing import Optional, Sequence

import numpy as np
from ai_edge_litert import interpreter as litert

VP = ctypes.c_void_p
_LIB = None
_EVENT_RUN, _EVENT_OP, _EVENT_DELEGATE_OP = 1, 2, 8  # LiteRT profile event types


class ProfileError(RuntimeError):
  """LiteRT's profiler could not be set up or run, or its events could not be mapped to ops."""


def _lib():
  global _LIB  # pylint: disable=global-statement
  if _LIB is not None:
    return _LIB
  path = os.path.join(os.path.dirname(litert.__file__), "libLiteRt.so")
  try:
    lib = ctypes.CDLL(path, mode=ctypes.RTLD_LOCAL)
    signatures = {
        "LiteRtCreateEnvironment": [ctypes.c_int, VP, ctypes.POINTER(VP)],
        "LiteRtCreateModelFromBuffer": [VP, VP, ctypes.c_size_t, ctypes.POINTER(VP)],
        "LiteRtCreateOptions": [ctypes.POINTER(VP)],
        "LiteRtSetOptionsHardwareAccelerators": [VP, ctypes.c_int],
        "LiteRtCreateOpaqueOptions": [ctypes.c_char_p, VP, VP, ctypes.POINTER(VP)],
        "LiteRtAddOpaqueOptions": [VP, VP],
        "LiteRtCreateCompiledModel": [VP, VP, VP, ctypes.POINTER(VP)],
        "LiteRtCompiledModelGetProfiler": [VP, ctypes.POINTER(VP)],
        "LiteRtGetModelSubgraph": [VP, ctypes.c_size_t, ctypes.POINTER(VP)],
        "LiteRtGetNumSubgraphInputs": [VP, ctypes.POINTER(ctypes.c_size_t)],
        "LiteRtGetNumSubgraphOutputs": [VP, ctypes.POINTER(ctypes.c_size_t)],
        "LiteRtGetSubgraphInput": [VP, ctypes.c_size_t, ctypes.POINTER(VP)],
        "LiteRtGetSubgraphOutput": [VP, ctypes.c_size_t, ctypes.POINTER(VP)],
        "LiteRtGetRankedTensorType": [VP, VP],
        "LiteRtGetCompiledModelInputBufferRequirements":
            [VP, ctypes.c_size_t, ctypes.c_size_t, ctypes.POINTER(VP)],
        "LiteRtGetCompiledModelOutputBufferRequirements":
            [VP, ctypes.c_size_t, ctypes.c_size_t, ctypes.POINTER(VP)],
        "LiteRtCreateManagedTensorBufferFromRequirements": [VP, VP, VP, ctypes.POINTER(VP)],
        "LiteRtLockTensorBuffer": [VP, ctypes.POINTER(VP), ctypes.c_int],
        "LiteRtUnlockTensorBuffer": [VP],
        "LiteRtGetTensorBufferSize": [VP, ctypes.POINTER(ctypes.c_size_t)],
        "LiteRtRunCompiledModel": [VP, ctypes.c_size_t, ctypes.c_size_t, ctypes.POINTER(VP),
                                   ctypes.c_size_t, ctypes.POINTER(VP)],
        "LiteRtStartProfiler": [VP],
        "LiteRtStopProfiler": [VP],
        "LiteRtResetProfiler": [VP],
        "LiteRtGetNumProfilerEvents": [VP, ctypes.POINTER(ctypes.c_int)],
        "LiteRtGetProfilerEvents": [VP, ctypes.c_int, VP],
    }
    for name, argtypes in signatures.items():
      function = getattr(lib, name)
      function.restype = ctypes.c_int
      function.argtypes = argtypes
  except (OSError, AttributeError) as e:
    raise ProfileError(f"LiteRT's C API with its profiler is not in {path}: {e}") from e
  _LIB = lib
  return lib


def _ok(status: int, what: str) -> None:
  if status != 0:
    raise ProfileError(f"LiteRT's {what} failed (LiteRtStatus {status}).")


_LIBC = ctypes.CDLL(None)
_LIBC.strdup.restype = VP
_LIBC.strdup.argtypes = [ctypes.c_char_p]
_FREE = ctypes.cast(_LIBC.free, VP)


def _opaque(identifier: str, toml: str):
  out = VP()
  _ok(_lib().LiteRtCreateOpaqueOptions(identifier.encode(), _LIBC.strdup(toml.encode()), _FREE,
                                      ctypes.byref(out)), f"opaque options {identifier!r}")
  return out


class _MemoryUsage(ctypes.Structure):
  _fields_ = [("total", ctypes.c_size_t), ("in_use", ctypes.c_size_t),
              ("private", ctypes.c_size_t)]


class _Event(ctypes.Structure):
  _fields_ = [("tag", ctypes.c_char_p), ("event_type", ctypes.c_int),
              ("start_timestamp_us", ctypes.c_uint64), ("elapsed_time_us", ctypes.c_uint64),
              ("begin_mem", _MemoryUsage), ("end_mem", _MemoryUsage),
              ("event_metadata1", ctypes.c_uint64), ("event_metadata2", ctypes.c_uint64),
              ("event_source", ctypes.c_int)]


class _ProfiledModel:
  """A LiteRT CompiledModel on the CPU (XNNPACK) with the profiler on; inputs left as allocated
  unless set."""

  def __init__(self, model: bytes, threads: int):
    lib = _lib()
    self._buffer = ctypes.create_string_buffer(bytes(model), len(model))  # outlives the model
    self.env, self.model, self.options, self.compiled, self.profiler = VP(), VP(), VP(), VP(), VP()
    _ok(lib.LiteRtCreateEnvironment(0, None, ctypes.byref(self.env)), "environment")
    _ok(lib.LiteRtCreateModelFromBuffer(self.env, ctypes.cast(self._buffer, VP), len(model),
                                        ctypes.byref(self.model)), "model from buffer")
    _ok(lib.LiteRtCreateOptions(ctypes.byref(self.options)), "options")
    _ok(lib.LiteRtSetOptionsHardwareAccelerators(self.options, 1), "CPU accelerator")
    _ok(lib.LiteRtAddOpaqueOptions(self.options, _opaque("xnnpack", f"num_threads = {threads}\n")),
        "XNNPACK threads")
    _ok(lib.LiteRtAddOpaqueOptions(self.options, _opaque("runtime_options_string",
                                                         "enable_profiling = true\n")),
        "profiling option")
    _ok(lib.LiteRtCreateCompiledModel(self.env, self.model, self.options,
                                      ctypes.byref(self.compiled)), "compiled model")
    _ok(lib.LiteRtCompiledModelGetProfiler(self.compiled, ctypes.byref(self.profiler)), "profiler")
    subgraph = VP()
    _ok(lib.LiteRtGetModelSubgraph(self.model, 0, ctypes.byref(subgraph)), "subgraph")
    self.inputs = self._buffers(subgraph, inputs=True)
    self.outputs = self._buffers(subgraph, inputs=False)

  def _buffers(self, subgraph, inputs: bool):
    lib = _lib()
    count = ctypes.c_size_t()
    (lib.LiteRtGetNumSubgraphInputs if inputs else lib.LiteRtGetNumSubgraphOutputs)(
        subgraph, ctypes.byref(count))
    buffers = []
    for i in range(count.value):
      tensor = VP()
      (lib.LiteRtGetSubgraphInput if inputs else lib.LiteRtGetSubgraphOutput)(
          subgraph, i, ctypes.byref(tensor))
      tensor_type = ctypes.create_string_buffer(4096)  # LiteRtRankedTensorType, filled by LiteRT
      _ok(lib.LiteRtGetRankedTensorType(tensor, tensor_type), "tensor type")
      requirements = VP()
      get = (lib.LiteRtGetCompiledModelInputBufferRequirements if inputs else
             lib.LiteRtGetCompiledModelOutputBufferRequirements)
      _ok(get(self.compiled, 0, i, ctypes.byref(requirements)), "buffer requirements")
      buffer = VP()
      _ok(lib.LiteRtCreateManagedTensorBufferFromRequirements(
          self.env, tensor_type, requirements, ctypes.byref(buffer)), "tensor buffer")
      buffers.append(buffer)
    return (VP * len(buffers))(*buffers)

  def set_input(self, index: int, array: np.ndarray) -> None:
    lib = _lib()
    size = ctypes.c_size_t()
    lib.LiteRtGetTensorBufferSize(self.inputs[index], ctypes.byref(size))
    data = np.ascontiguousarray(array).tobytes()
    pointer = VP()
    _ok(lib.LiteRtLockTensorBuffer(self.inputs[index], ctypes.byref(pointer), 1), "lock")
    ctypes.memmove(pointer, data, min(len(data), size.value))
    lib.LiteRtUnlockTensorBuffer(self.inputs[index])

  def run(self) -> None:
    _ok(_lib().LiteRtRunCompiledModel(self.compiled, 0, len(self.inputs), self.inputs,
                                      len(self.outputs), self.outputs), "run")

  def events(self) -> list[tuple]:
    """(tag, type, elapsed us, node index or position) of every event since the last start."""
    lib = _lib()
    count = ctypes.c_int()
    lib.LiteRtGetNumProfilerEvents(self.profiler, ctypes.byref(count))
    raw = (_Event * max(count.value, 1))()
    _ok(lib.LiteRtGetProfilerEvents(self.profiler, count.value, ctypes.cast(raw, VP)), "events")
    return [((e.tag or b"").decode(errors="replace"), e.event_type, e.elapsed_time_us,
             int(e.event_metadata1)) for e in raw[:count.value]]


def delegated_nodes(interpreter) -> dict[int, int]:
  """{node index: the DELEGATE node that took it} of an allocated Interpreter.

  After `allocate_tensors()`, the op details list the original nodes and one DELEGATE node per
  partition; a DELEGATE node's inputs and outputs bound its partition, so its nodes are those
  reached walking back from its outputs to its inputs.
  """
  ops = interpreter._get_ops_details()  # pylint: disable=protected-access
  original = {int(op["index"]): op for op in ops if op["op_name"] != "DELEGATE"}
  producer = {int(t): index for index, op in original.items() for t in op["outputs"]}
  taken: dict[int, int] = {}
  for delegate in (op for op in ops if op["op_name"] == "DELEGATE"):
    boundary = {int(t) for t in delegate["inputs"]}
    stack, seen = [int(t) for t in delegate["outputs"]], set()
    while stack:
      tensor = stack.pop()
      if tensor in seen or tensor in boundary or tensor < 0:
        continue
      seen.add(tensor)
      node = producer.get(tensor)
      if node is None or node in taken:
        continue
      taken[node] = int(delegate["index"])
      stack.extend(int(t) for t in original[node]["inputs"])
  return taken


def node_milliseconds(model: bytes, *, threads: int = 1, runs: int = 50, warmup: int = 5,
                      inputs: Optional[Sequence[np.ndarray]] = None) -> dict[int, float]:
  """Mean milliseconds per TFLite node of the main subgraph, from LiteRT's profiler.

  Args:
    model: a .tflite with static shapes (batch 1).
    threads: XNNPACK threads.
    runs, warmup: profiled and untimed runs.
    inputs: one array per model input (its first sample is used); zeros when None.

  Raises:
    ProfileError: the profiler could not run, or an XNNPACK partition reported operators that do
      not match its nodes (the times could then not be put on nodes).
  """
  return interleaved_node_milliseconds([model], threads=threads, runs=runs, warmup=warmup,
                                       inputs=inputs, rounds=1)[0]


def interleaved_node_milliseconds(models: Sequence[bytes], *, threads: int = 1, runs: int = 50,
                                  warmup: int = 5, inputs: Optional[Sequence[np.ndarray]] = None,
                                  rounds: int = 5) -> list[dict[int, float]]:
  """`node_milliseconds` of several models fed the same `inputs`, profiled in turn in `rounds`
  rounds of `runs / rounds` runs each, so that a slower or faster spell of a shared machine falls
  on every model alike: the models' times are compared with each other."""
  sessions = [_Session(model, threads, inputs) for model in models]
  for session in sessions:
    for _ in range(warmup):
      session.profiled.run()
  chunks = [runs // rounds + (1 if r < runs % rounds else 0) for r in range(rounds)]
  for chunk in chunks:
    for session in sessions:
      session.profile(chunk)
  return [session.milliseconds() for session in sessions]


class _Session:
  """One model under LiteRT's profiler: its XNNPACK partitions and its profiled runs."""

  def __init__(self, model: bytes, threads: int, inputs: Optional[Sequence[np.ndarray]]):
    interpreter = litert.Interpreter(model_content=model, num_threads=threads)
    interpreter.allocate_tensors()
    taken = delegated_nodes(interpreter)
    self.op_names = {int(op["index"]): op["op_name"]
                     for op in interpreter._get_ops_details()  # pylint: disable=protected-access
                     if op["op_name"] != "DELEGATE"}
    partitions: dict[int, list[int]] = {}
    for node, delegate in taken.items():
      partitions.setdefault(delegate, []).append(node)
    self.partition_nodes = [sorted(partitions[d]) for d in sorted(partitions)]
    self.profiled = _ProfiledModel(model, threads)
    if inputs is not None:
      for i, array in enumerate(inputs):
        self.profiled.set_input(i, np.asarray(array)[:1])
    self.invocations: list[list[tuple]] = []

  def profile(self, runs: int) -> None:
    """Runs the model `runs` times under the profiler and keeps their events."""
    lib, profiled = _lib(), self.profiled
    lib.LiteRtResetProfiler(profiled.profiler)
    _ok(lib.LiteRtStartProfiler(profiled.profiler), "profiler start")
    for _ in range(runs):
      profiled.run()
    _ok(lib.LiteRtStopProfiler(profiled.profiler), "profiler stop")
    current = None
    for tag, kind, elapsed, meta in profiled.events():
      if kind == _EVENT_RUN and tag == "Invoke":
        current = []
        self.invocations.append(current)
      elif current is not None and kind in (_EVENT_OP, _EVENT_DELEGATE_OP):
        current.append((tag, kind, elapsed, meta))

  def milliseconds(self) -> dict[int, float]:
    """Mean ms per node over the profiled runs."""
    if not self.invocations:
      raise ProfileError("LiteRT's profiler recorded no run of the model.")
    totals: dict[int, float] = {}
    for events in self.invocations:
      groups, group = [], None
      for tag, kind, elapsed, meta in events:
        if kind == _EVENT_OP:
          totals[meta] = totals.get(meta, 0.0) + elapsed
          group = None
        else:  # an XNNPACK operator; its position restarts at 0 in each partition
          if group is None or meta == 0:
            group = []
            groups.append(group)
          group.append((tag, elapsed))
      if len(groups) != len(self.partition_nodes):
        raise ProfileError(f"LiteRT's profiler reported {len(groups)} XNNPACK partitions; the "
                           f"model has {len(self.partition_nodes)}.")
      for nodes, group in zip(self.partition_nodes, groups):
        _assign(nodes, group, self.op_names, totals)
    return {node: total / len(self.invocations) / 1000.0
            for node, total in sorted(totals.items())}


# XNNPACK operator names (their prefix) each TFLite op runs as.
_XNNPACK_NAMES = {
    "CONV_2D": ("Convolution", "Fully Connected"), "DEPTHWISE_CONV_2D": ("Convolution",),
    "TRANSPOSE_CONV": ("Deconvolution",), "FULLY_CONNECTED": ("Fully Connected",),
    "BATCH_MATMUL": ("Batch Matrix Multiply", "Fully Connected"), "ADD": ("Add",),
    "SUB": ("Subtract",), "MUL": ("Multiply",), "DIV": ("Divide",),
    "MEAN": ("Mean", "Global Average Pooling"), "SUM": ("Sum",),
    "AVERAGE_POOL_2D": ("Average Pooling",), "MAX_POOL_2D": ("Max Pooling",),
    "QUANTIZE": ("Convert",), "DEQUANTIZE": ("Convert",),
    "CONCATENATION": ("Concatenate", "Copy"), "RESHAPE": ("Static Reshape", "Copy"),
    "SQUEEZE": ("Static Reshape", "Copy"), "EXPAND_DIMS": ("Static Reshape", "Copy"),
    "PAD": ("Constant Pad",), "PADV2": ("Constant Pad",), "LEAKY_RELU": ("Leaky ReLU",),
    "RELU": ("Clamp",), "RELU6": ("Clamp",), "RELU_N1_TO_1": ("Clamp",),
    "RELU_0_TO_1": ("Clamp",), "HARD_SWISH": ("HardSwish",), "LOGISTIC": ("Sigmoid",),
    "TANH": ("Tanh",), "SOFTMAX": ("Softmax",), "RESIZE_BILINEAR": ("Resize Bilinear",),
    "RESIZE_NEAREST_NEIGHBOR": ("Resize",), "TRANSPOSE": ("Transpose",),
    "SLICE": ("Slice",), "STRIDED_SLICE": ("Slice",), "SPLIT": ("Copy", "Split"),
    "DEPTH_TO_SPACE": ("Depth To Space",), "SPACE_TO_DEPTH": ("Space To Depth",),
    "MAXIMUM": ("Maximum",), "MINIMUM": ("Minimum",),
    "SQUARED_DIFFERENCE": ("Squared Difference",), "SQRT": ("Square Root",),
    "RSQRT": ("Reciprocal Square Root",), "ABS": ("Abs",), "NEG": ("Negate",), "ELU": ("ELU",),
    "PRELU": ("PReLU",), "GELU": ("GELU",), "EXP": ("Exp",), "LOG": ("Log",),
    "FLOOR": ("Floor",), "CEIL": ("Ceiling",), "ROUND": ("Bankers Rounding",),
    "SQUARE": ("Square",),
}
# Operators XNNPACK adds around a node's own: the on-the-fly quantization of a hybrid op's input,
# reshapes it inserts; and after it, the clamp of a fused activation or the copies of a concat.
_BEFORE = ("Convert (NC, F32, QD8)", "Convert (NC, F32, QP8)", "Static Reshape")
_AFTER = ("Clamp", "Copy")


def _norm(name: str) -> str:
  """An operator name reduced to its lowercase letters ("LeakyReLU (NC)" -> "leakyrelunc")."""
  return "".join(c for c in name.lower() if c.isalpha())


def _is(operator: str, names) -> bool:
  return any(_norm(operator).startswith(_norm(name)) for name in names)


def _assign(nodes: list[int], group: list[tuple[str, float]], op_names: dict[int, str],
            totals: dict[int, float]) -> None:
  """Puts the XNNPACK operators of one partition on its nodes, in order, by name.

  A node may have no operator of its own (a PAD or a RESHAPE XNNPACK folds into its neighbour) or
  several (an ADD with a fused ReLU is Add then Clamp). A node whose operator has a name not in
  `_XNNPACK_NAMES` takes the next operator unless that one is the next node's.

  Raises:
    ProfileError: operators that fit no node.
  """
  i = 0
  for position, node in enumerate(nodes):
    names = _XNNPACK_NAMES.get(op_names.get(node, ""))
    following = [_XNNPACK_NAMES.get(op_names.get(n, ""), ()) for n in nodes[position + 1:position + 2]]
    belongs_next = lambda k: any(_is(group[k][0], f) for f in following)
    start, spent = i, 0.0
    while i < len(group) and _is(group[i][0], _BEFORE) and not (names and _is(group[i][0], names)):
      spent += group[i][1]
      i += 1
    if i < len(group) and ((names and _is(group[i][0], names)) or not belongs_next(i)):
      spent += group[i][1]
      i += 1
      while i < len(group) and _is(group[i][0], _AFTER) and not belongs_next(i):
        spent += group[i][1]
        i += 1
    else:
      i, spent = start, 0.0  # nothing of its own: folded into a neighbour
    totals[node] = totals.get(node, 0.0) + spent
  if i != len(group):
    raise ProfileError(
        f"An XNNPACK partition of {len(nodes)} nodes reported operators that fit none of them: "
        f"{', '.join(name for name, _ in group[i:i + 5])}.")
