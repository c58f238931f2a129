"""The only importer of private TensorFlow Lite and LiteRT APIs (this package).

TensorFlow's own QuantizationDebugger (`tensorflow/lite/tools/optimize/debugging/python/debugger.py`)
calibrates once with the converter's `_experimental_calibrate_only` and then quantizes the calibrated
model as often as needed with `convert.mlir_quantize(..., denylisted_nodes=...)`. We do the same. If a
TensorFlow upgrade moves these, `tests/tflite_private_test.py` fails first.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import re
import warnings
from typing import Sequence

import numpy as np
import tensorflow as tf
from ai_edge_litert import interpreter as litert
from tensorflow.lite.python import convert as _convert
from tensorflow.lite.python import lite as _lite
from tensorflow.lite.python import schema_py_generated as _schema
from tensorflow.lite.tools import flatbuffer_utils as _flatbuffer_utils
from tensorflow.python.framework import convert_to_constants as _convert_to_constants

from tfq_mixed import _native_output
from tfq_mixed import errors


def freeze(concrete_function):
  """The concrete function with its variables folded into constants (as `from_keras_model` does)."""
  return _convert_to_constants.convert_variables_to_constants_v2(concrete_function)


def with_signature(model: bytes, input_names: Sequence[str], output_names: Sequence[str],
                   key: str = "serving_default") -> bytes:
  """`model` with one signature naming subgraph 0's inputs and outputs, in their order.

  A model converted from a concrete function has no signature; TFLiteConverter's SavedModel and
  Keras paths write one, and `Interpreter.get_signature_runner()` needs it.
  """
  obj = _flatbuffer_utils.convert_bytearray_to_object(bytearray(model))
  subgraph = obj.subgraphs[0]
  if len(subgraph.inputs) != len(input_names) or len(subgraph.outputs) != len(output_names):
    raise errors.ConversionError(
        f"The converted model has {len(subgraph.inputs)} inputs and {len(subgraph.outputs)} "
        f"outputs; expected {len(input_names)} and {len(output_names)}.")

  def tensor_map(name, index):
    entry = _schema.TensorMapT()
    entry.name = name
    entry.tensorIndex = int(index)
    return entry

  signature = _schema.SignatureDefT()
  signature.signatureKey = key
  signature.subgraphIndex = 0
  tensor_names = [subgraph.tensors[i].name.decode() for i in subgraph.inputs]
  if set(tensor_names) == set(input_names) and tensor_names != list(input_names):
    # The calibration samples were fed in `input_names` order: a reordering would have mixed them.
    raise errors.ConversionError(
        f"The converter reordered the model's inputs to {tensor_names}; expected {input_names}.")
  signature.inputs = [tensor_map(n, i) for n, i in zip(input_names, subgraph.inputs)]
  signature.outputs = [tensor_map(n, i) for n, i in zip(output_names, subgraph.outputs)]
  obj.signatureDefs = [signature]
  return bytes(_flatbuffer_utils.convert_object_to_bytearray(obj))


class _DropMessage(logging.Filter):

  def __init__(self, text: str):
    super().__init__()
    self.text = text

  def filter(self, record: logging.LogRecord) -> bool:
    return self.text not in record.getMessage()


def converter_from_function(function) -> tf.lite.TFLiteConverter:
  """`TFLiteConverter.from_concrete_functions([function])`, without its deprecation warning.

  TensorFlow's own Keras path converts a frozen function the same way; the warning asks for a
  `trackable_obj`, which would switch to another conversion path (other op names, other bytes).
  """
  quiet = _DropMessage("Please consider providing the trackable_obj argument")
  logger = logging.getLogger("absl")
  logger.addFilter(quiet)
  try:
    return tf.lite.TFLiteConverter.from_concrete_functions([function])
  finally:
    logger.removeFilter(quiet)


def calibrate_only(converter: tf.lite.TFLiteConverter) -> bytes:
  """Runs the converter's calibration and returns the calibrated (still float) model."""
  converter.optimizations = [tf.lite.Optimize.DEFAULT]
  converter.experimental_mlir_quantizer = True
  converter._experimental_calibrate_only = True  # pylint: disable=protected-access
  with warnings.catch_warnings():
    # TF's calibrator still builds the deprecated tf.lite.Interpreter internally.
    warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
    warnings.filterwarnings("ignore", message=".*Statistics for quantized inputs.*")
    return converter.convert()


_custom_op_registerers: tuple = ()


def add_custom_op_registerers(registerers: Sequence) -> None:
  """Kernels for custom ops, loaded from now on by every calibrator and LiteRT interpreter of this
  process: symbol names or functions taking a `tflite::MutableOpResolver*` (as int), the
  convention of TensorFlow's calibrator and ai_edge_litert's `InterpreterWithCustomOps`."""
  global _custom_op_registerers
  for registerer in registerers:
    if not (isinstance(registerer, str) or callable(registerer)):
      raise errors.InvalidTypeError(
          "Each custom op registerer must be a symbol name (str) or a function taking a "
          f"MutableOpResolver pointer. Received: {registerer!r}.")
    if registerer not in _custom_op_registerers:
      _custom_op_registerers += (registerer,)


def custom_op_registerers() -> tuple:
  """The registerers `add_custom_op_registerers` was given."""
  return _custom_op_registerers


_UNRESOLVED = re.compile(r"unresolved custom ops?: \[?([^\]\n]*)\]?")


def calibrate_model(model: bytes, representative_dataset) -> bytes:
  """A float .tflite with TensorFlow's calibration statistics: what `TFLiteConverter` runs before
  `mlir_quantize` (`tensorflow/lite/python/optimize/calibrator.py`, with the intermediate tensors
  fused LSTMs need), on a .tflite instead of a TensorFlow graph.

  Raises:
    UnsupportedModelError: the model has custom ops without a registered kernel (named).
    ConversionError: the calibrator failed otherwise (its native log attached).
  """
  from tensorflow.lite.python.optimize import calibrator as _calibrator  # pylint: disable=g-import-not-at-top
  by_name = [r for r in _custom_op_registerers if isinstance(r, str)]
  by_function = [r for r in _custom_op_registerers if not isinstance(r, str)]
  native_log: list = []
  try:
    with _native_output.captured(native_log), warnings.catch_warnings():
      warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
      prepared = _calibrator.add_intermediate_tensors(model)
      return bytes(_calibrator.Calibrator(prepared, by_name, by_function).calibrate(
          representative_dataset))
  except errors.TfqMixedError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    text = f"{e} {''.join(native_log)}"
    missing = _UNRESOLVED.search(text)
    if missing:
      raise errors.UnsupportedModelError(
          f"TensorFlow's calibrator has no kernel for the custom op(s) {missing.group(1).strip()} "
          "of this model. Pass `custom_op_registerers` that register them, or export the model "
          "without them.") from None
    raise errors.ConversionError(
        f"TensorFlow's calibrator failed on the float model: {type(e).__name__}: {str(e)[:2000]}"
        f"\n{''.join(native_log)[-4000:]}") from e


def restore_custom_op_versions(quantized: bytes, reference: bytes) -> bytes:
  """`quantized` with its custom operator codes at `reference`'s versions.

  TensorFlow's quantizer writes every custom op code as version 1; a runtime registering its
  kernels at another version (MediaPipe: 2) then reports "unresolved custom op".
  """
  versions = _custom_op_versions(reference)
  if not any(versions.get(code, version) != version
             for code, version in _custom_op_versions(quantized).items()):
    return quantized
  obj = model_object(quantized)
  for code in obj.operatorCodes:
    if code.customCode in versions:
      code.version = versions[code.customCode]
  return model_bytes(obj)


def _custom_op_versions(model: bytes) -> dict[bytes, int]:
  """{custom code: version} of `model`'s operator codes, read in place (no unpacking)."""
  root = _schema.Model.GetRootAs(model, 0)
  codes = (root.OperatorCodes(i) for i in range(root.OperatorCodesLength()))
  return {code.CustomCode(): code.Version() for code in codes if code.CustomCode()}


def set_per_channel(converter: tf.lite.TFLiteConverter, per_channel: bool) -> None:
  """Per-channel (TFLite's default) or per-tensor weight scales in a converter's quantization."""
  converter._experimental_disable_per_channel = not per_channel  # pylint: disable=protected-access


def quantize(calibrated_model: bytes, *, per_channel: bool,
             denylisted_nodes: Sequence[str] = (), numeric_verify: bool = False,
             denylisted_ops: Sequence[str] = ()) -> bytes:
  """Quantizes a calibrated model to int8, keeping `denylisted_nodes` (and every op of the types
  `denylisted_ops`, TFLite builtin names) in float.

  Float input and output, as `TFLiteConverter.convert()` produces for post-training integer
  quantization; read-only buffers are deduplicated as the converter does.

  `numeric_verify=True` makes TensorFlow's QuantizationDebugger model instead: every int8 op gets a
  float twin fed by its dequantized int8 inputs and a `NumericVerify` op whose output is the
  difference (layer-wise, not whole-model); the int8 ops themselves are unchanged.
  """
  native_log: list = []
  try:
    with _native_output.captured(native_log), warnings.catch_warnings():
      # Our float input and output need no input statistics; the converter warns regardless.
      warnings.filterwarnings("ignore", message=".*Statistics for quantized inputs.*")
      model = _convert.mlir_quantize(
          calibrated_model,
          disable_per_channel=not per_channel,
          fully_quantize=False,
          input_data_type=tf.float32,
          output_data_type=tf.float32,
          denylisted_nodes=list(denylisted_nodes) or None,
          denylisted_ops=list(denylisted_ops) or None,
          enable_numeric_verify=bool(numeric_verify))
  except Exception as e:  # pylint: disable=broad-except
    raise errors.ConversionError(
        f"TensorFlow Lite failed to quantize the calibrated model: {e}\n"
        f"{''.join(native_log)[-4000:]}") from e
  model = bytes(_lite._deduplicate_readonly_buffers(model))  # pylint: disable=protected-access
  return restore_custom_op_versions(model, calibrated_model)


NUMERIC_VERIFY_OP = "NumericVerify"


def layerwise_twins(calibrated_model: bytes, *, per_channel: bool) -> tuple[bytes, dict[int, int]]:
  """The int8 model with a float twin beside every int8 op, and {int8 output: twin output}.

  The twins are those of `quantize(numeric_verify=True)` (TensorFlow's QuantizationDebugger model:
  each twin runs the op in float on the dequantized int8 inputs), with its `NumericVerify` ops
  taken out: that kernel only outputs dequantize(int8 output) - twin output, element by element,
  and takes about seven times as long as the rest of the model. Tensor indices are unchanged; the
  caller computes the difference. A twin's output is its reference: a float twin's output or, for
  ops exact in int8 (MAX_POOL_2D), the DEQUANTIZE of an int8 twin's output.
  """
  model = quantize(calibrated_model, per_channel=per_channel, numeric_verify=True)
  obj = _flatbuffer_utils.convert_bytearray_to_object(bytearray(model))
  verify_codes = {i for i, code in enumerate(obj.operatorCodes)
                  if code.customCode is not None and code.customCode.decode() == NUMERIC_VERIFY_OP}
  twins = {int(op.inputs[0]): int(op.inputs[1]) for op in obj.subgraphs[0].operators
           if op.opcodeIndex in verify_codes}
  for subgraph in obj.subgraphs:
    subgraph.operators = [op for op in subgraph.operators if op.opcodeIndex not in verify_codes]
  return bytes(_flatbuffer_utils.convert_object_to_bytearray(obj)), twins


# The flatbuffer schema and its object API (TensorFlow's own tools for editing .tflite files).
schema = _schema


def model_object(model: bytes):
  """The .tflite as TFLite's mutable schema objects (`schema.ModelT`)."""
  return _flatbuffer_utils.convert_bytearray_to_object(bytearray(model))


def model_bytes(obj) -> bytes:
  """Schema objects back to a .tflite flatbuffer."""
  return bytes(_flatbuffer_utils.convert_object_to_bytearray(obj))


def static_shapes(model: bytes) -> bytes:
  """`model` with its shape signatures dropped: dynamic dimensions take their stored size
  (batch 1), as LiteRT's CompiledModel needs to allocate buffers."""
  obj = model_object(model)
  for subgraph in obj.subgraphs:
    for tensor in subgraph.tensors:
      tensor.shapeSignature = None
  return model_bytes(obj)


def profile_node_milliseconds(model: bytes, *, threads: int = 1, runs: int = 50,
                              warmup: int = 5, inputs=None) -> dict[int, float]:
  """Mean milliseconds per node of `model` on LiteRT's CPU path (XNNPACK), from LiteRT's profiler.

  Raises:
    ProfileError: the profiler could not run or its events could not be put on nodes.
  """
  return profile_interleaved([model], threads=threads, runs=runs, warmup=warmup, inputs=inputs,
                             rounds=1)[0]


def profile_interleaved(models: Sequence[bytes], *, threads: int = 1, runs: int = 50,
                        warmup: int = 5, inputs=None, rounds: int = 5) -> list[dict[int, float]]:
  """`profile_node_milliseconds` of several models, profiled in turn in `rounds` rounds (the same
  `inputs` for each), so that their times are comparable on a shared machine.

  Raises:
    ProfileError: the profiler could not run or its events could not be put on nodes.
  """
  from tfq_mixed._tflite_private import profiler  # pylint: disable=g-import-not-at-top
  for model in models:
    interpreter = make_interpreter(model)
    dynamic = [d["name"] for d in interpreter.get_input_details()
               if -1 in list(d["shape_signature"])[1:]]
    if dynamic:
      raise errors.ProfileError(
          f"LiteRT's per-op profiler needs static shapes; the model's input(s) {dynamic} have "
          "dynamic dimensions besides the batch. Re-export the model with a fixed input size for "
          "a latency budget, or use a MAC (`ratio`) or size (`max_size`) budget.")
  native_log: list = []
  try:
    with _native_output.captured(native_log):  # LiteRT's INFO lines (accelerator registered, ...)
      return profiler.interleaved_node_milliseconds(
          [static_shapes(m) for m in models], threads=threads, runs=runs, warmup=warmup,
          inputs=inputs, rounds=rounds)
  except profiler.ProfileError as e:
    raise errors.ProfileError(
        f"LiteRT's per-op profiler failed: {e} Latency budgets need it; use a MAC (`ratio`) or "
        f"size (`max_size`) budget instead.\n{''.join(native_log)[-2000:]}") from e


def xnnpack_delegated_nodes(model: bytes, *, threads: int = 1) -> dict[int, int]:
  """{node index: its XNNPACK partition} under LiteRT's default delegate (nodes left to the
  builtin kernels are absent)."""
  from tfq_mixed._tflite_private import profiler  # pylint: disable=g-import-not-at-top
  interpreter = litert.Interpreter(model_content=static_shapes(model), num_threads=threads)
  interpreter.allocate_tensors()
  return profiler.delegated_nodes(interpreter)


def make_interpreter(model: bytes, *, preserve_all_tensors: bool = False,
                     num_threads: int | None = None,
                     builtin_only: bool | None = None) -> litert.Interpreter:
  """A LiteRT interpreter; with `builtin_only` (default: `preserve_all_tensors`), no delegate.

  The builtin kernels alone keep every op and intermediate tensor visible (XNNPACK would replace
  them by one delegate node).
  """
  kwargs = {}
  if preserve_all_tensors if builtin_only is None else builtin_only:
    kwargs["experimental_op_resolver_type"] = (
        litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
  interpreter_class = litert.Interpreter
  if _custom_op_registerers:
    interpreter_class = litert.InterpreterWithCustomOps
    kwargs["custom_op_registerers"] = list(_custom_op_registerers)
  with warnings.catch_warnings():
    # The warning says preserving all tensors costs memory; we keep one batch at a time.
    warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors.*")
    return interpreter_class(model_content=model, num_threads=num_threads,
                             experimental_preserve_all_tensors=preserve_all_tensors, **kwargs)


def ops(interpreter: litert.Interpreter) -> list[dict]:
  """Op details in execution order, delegate ops left out.

  Each dict: index, op_name, inputs, outputs (tensor indices, -1 for absent optional inputs).
  """
  return [op for op in interpreter._get_ops_details()  # pylint: disable=protected-access
          if op["op_name"] != "DELEGATE"]


def builtin_options(model: bytes) -> list:
  """Per op of the main subgraph, in op order, its builtin options (schema objects, or None)."""
  root = _schema.Model.GetRootAs(model, 0)
  subgraph = root.Subgraphs(0)
  out = []
  for i in range(subgraph.OperatorsLength()):
    op = subgraph.Operators(i)
    out.append(_schema.BuiltinOptionsCreator(op.BuiltinOptionsType(), op.BuiltinOptions()))
  return out


def tensor_name(interpreter: litert.Interpreter, index: int) -> str:
  return interpreter._get_tensor_details(index, 0)["name"]  # pylint: disable=protected-access


def tensor_details(interpreter: litert.Interpreter, index: int) -> dict:
  return interpreter._get_tensor_details(index, 0)  # pylint: disable=protected-access


def signature_io(interpreter: litert.Interpreter) -> tuple[dict[str, int], dict[str, int]]:
  """(input name -> tensor index, output name -> tensor index) of the serving signature."""
  signatures = interpreter._get_full_signature_list()  # pylint: disable=protected-access
  signature = signatures[sorted(signatures)[0]]
  return dict(signature["inputs"]), dict(signature["outputs"])


def dequantized_tensor(interpreter: litert.Interpreter, index: int) -> np.ndarray:
  """The tensor's value as float32 (dequantized with its per-tensor or per-channel parameters)."""
  details = tensor_details(interpreter, index)
  value = interpreter.get_tensor(index)
  params = details["quantization_parameters"]
  scales = params["scales"]
  if value.dtype in (np.float32, np.float16) or scales.size == 0:
    return value.astype(np.float32)
  zero_points = params["zero_points"].astype(np.float32)
  if scales.size == 1:
    return (value.astype(np.float32) - zero_points[0]) * scales[0]
  shape = [1] * value.ndim
  shape[params["quantized_dimension"]] = -1
  return (value.astype(np.float32) - zero_points.reshape(shape)) * scales.reshape(shape)


def analyze_model(model: bytes, *, gpu_compatibility: bool = True) -> str:
  """The text of `tf.lite.experimental.Analyzer.analyze(model_content=...)`.

  The analyzer only prints (from Python, and from C++ in some versions); both are captured here.
  Its output format is not a stable API: `tests/tflite_private_test.py` checks the parts
  `gpu_compatibility.parse_analyzer_output` reads.
  """
  python_out = io.StringIO()
  native_log: list = []
  with _native_output.captured(native_log), contextlib.redirect_stdout(python_out):
    tf.lite.experimental.Analyzer.analyze(model_content=model,
                                          gpu_compatibility=gpu_compatibility)
  return python_out.getvalue() + "".join(native_log)


@functools.lru_cache(maxsize=None)
def analyzer_checks_gpu() -> bool:
  """Whether this TensorFlow's analyzer really checks GPU delegate compatibility.

  Probes it with a model the GPU delegate cannot run (RFFT2D and COMPLEX_ABS, which TFLite's
  `gpu_compatibility.cc` rejects as "Not supported op"). TensorFlow 2.21's pip wheel (and LiteRT
  2.3's) ships the analyzer without that checker: it calls every model compatible.
  """
  fn = tf.function(lambda x: tf.abs(tf.signal.rfft2d(x)))
  converter = converter_from_function(fn.get_concrete_function(tf.TensorSpec([1, 8, 8],
                                                                          tf.float32)))
  text = analyze_model(converter.convert())
  return "GPU COMPATIBILITY WARNING" in text
