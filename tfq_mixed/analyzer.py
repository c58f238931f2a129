"""Step 2: the two inference passes and the local metrics per layer (QuantuneV2 Sec. 6).

The float pass runs the Keras model layer by layer (unfused: Conv, BN and activation separately), or
a float .tflite op by op in LiteRT with its intermediate tensors kept; the int8 pass runs the fully-int8 TFLite model in the LiteRT interpreter with every intermediate tensor
preserved, each int8 op beside a float twin fed by its dequantized inputs (the noise the op adds
by itself). Each layer whose output is also a TFLite op's output is compared. Metrics are
accumulated batch by batch in a worker thread, while the passes compute the next batch: at most two
batches of activations are held at a time.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import math
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from tfq_mixed import _tflite_private
from tfq_mixed import dataset as dataset_lib
from tfq_mixed import hybrid
from tfq_mixed import metrics
from tfq_mixed import model_graph
from tfq_mixed import precisions
from tfq_mixed.calibrator import Calibration
from tfq_mixed.progress import Progress
from tfq_mixed.qtyping import LayerStats

DEFAULT_BATCH_SIZE = 16


def _int8_grid(interpreter, tensor: int) -> Optional[tuple[float, int]]:
  """(scale, zero point) of a per-tensor int8 tensor, None for any other tensor."""
  details = _tflite_private.tensor_details(interpreter, tensor)
  scales = details["quantization_parameters"]["scales"]
  if details["dtype"] != np.int8 or scales.size != 1 or not scales[0] > 0:
    return None
  return float(scales[0]), int(details["quantization_parameters"]["zero_points"][0])


def keras_kernel(layer) -> Optional[np.ndarray]:
  kernel = getattr(layer, "kernel", None)
  if kernel is None or len(getattr(kernel, "shape", ())) < 2:
    return None
  return np.asarray(keras.ops.convert_to_numpy(kernel), dtype=np.float32)


def keras_weight_sqnr_db(layer, per_channel: bool) -> float:
  """SQNR of the layer's kernel quantized as TFLite would (symmetric int8), NaN without a kernel."""
  kernel = keras_kernel(layer)
  if kernel is None:
    return math.nan
  layer_type = type(layer).__name__
  if layer_type == "DepthwiseConv2D":  # (kh, kw, in, multiplier): TFLite's channels are in*multiplier
    kernel = kernel.reshape(kernel.shape[:-2] + (-1,))
  axis = metrics.channel_axis(layer_type, kernel.ndim)
  return metrics.sqnr_db(kernel, metrics.quantize_symmetric(kernel, per_channel=per_channel, axis=axis))


# Output-channel axis of each compute op's filter as TFLite stores it.
_FILTER_CHANNEL_AXIS = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 0,
                        "TRANSPOSE_CONV": 0, "CONV_3D": 4}


def _fused_weight_sqnr(calibrated_interpreter, int8_interpreter, node_op: dict,
                       int8_op: dict) -> tuple[float, float, float]:
  """SQNRs of a compute node's folded float filter (as TFLite stores it) quantized three ways.

  (whole tensor, per channel) against its int8 filter in the static model (the per-channel one is
  `metrics.channel_sqnr_db`), and whole tensor as the dynamic-range kernels would store it
  (`hybrid.quantize_weight`: per channel, whatever the static mode). NaN where they do not apply.
  """
  nan3 = (math.nan, math.nan, math.nan)
  if len(node_op["inputs"]) < 2 or len(int8_op["inputs"]) < 2:
    return nan3
  try:
    reference = calibrated_interpreter.get_tensor(node_op["inputs"][1])
    quantized = _tflite_private.dequantized_tensor(int8_interpreter, int8_op["inputs"][1])
  except ValueError:
    return nan3
  if reference.shape != quantized.shape or reference.dtype != np.float32:
    return nan3
  axis = _FILTER_CHANNEL_AXIS.get(node_op["op_name"])
  channel = (metrics.channel_sqnr_db(reference, quantized, axis)
             if axis is not None and axis < reference.ndim else math.nan)
  dynamic = math.nan
  code = getattr(hybrid.BO, node_op["op_name"], None)
  if code in hybrid.HYBRID_OPS:
    values, scales = hybrid.quantize_weight(reference, hybrid.HYBRID_OPS[code][1])
    shape = [1] * reference.ndim
    if scales.size > 1:
      shape[hybrid.HYBRID_OPS[code][1]] = -1
    dynamic = metrics.sqnr_db(reference, values.astype(np.float32) * scales.reshape(shape))
  return metrics.sqnr_db(reference, quantized), channel, dynamic


@dataclasses.dataclass
class _LiteRTPass:
  """A LiteRT interpreter run one batch at a time (resized when the batch size changes)."""

  interpreter: object
  inputs: list[int]  # the model's input tensors, in the calibration's input order
  _batch: Optional[int] = dataclasses.field(default=None, kw_only=True)

  def run(self, batch: list[np.ndarray]):
    """Runs one batch; returns a cached reader of tensor values (copies)."""
    if self._batch != batch[0].shape[0]:
      self._batch = batch[0].shape[0]
      for index, array in zip(self.inputs, batch):
        self.interpreter.resize_tensor_input(index, array.shape, strict=False)
      self.interpreter.allocate_tensors()
    for index, array in zip(self.inputs, batch):
      self.interpreter.set_tensor(index, array)
    self.interpreter.invoke()
    return functools.lru_cache(maxsize=None)(self.interpreter.get_tensor)


@dataclasses.dataclass
class _Int8Pass(_LiteRTPass):
  """The int8 model with a float twin beside each int8 op, run one batch at a time.

  Its int8 ops are those of the plain int8 model, and each has a float twin fed by its dequantized
  int8 inputs (TensorFlow's numeric-verify build), so one pass also gives the noise each op adds
  by itself (`op_sqnr_db`), as the QuantizationDebugger measures it. One interpreter thread: the
  float pass runs beside it, and the results do not depend on the machine's core count.

  Attributes:
    interpreter: the LiteRT interpreter, every intermediate tensor kept.
    inputs: the model's input tensors, in the calibration's input order.
    ops: calibrated node index -> the same op in this model.
    twin_of_node: node -> (its int8 output tensor, its twin's output tensor, the output's int8
      (scale, zero point)), for nodes with a per-tensor int8 output and a twin.
  """

  ops: dict[int, dict] = dataclasses.field(default_factory=dict)
  twin_of_node: dict[int, tuple[int, int, tuple[float, int]]] = dataclasses.field(
      default_factory=dict)

  @classmethod
  def build(cls, calibration: Calibration, twin_model: bytes,
            twins: dict[int, int]) -> "_Int8Pass":
    interpreter = _tflite_private.make_interpreter(twin_model, preserve_all_tensors=True,
                                                   num_threads=1)
    ops = precisions.align_ops(calibration.nodes, interpreter, twins)
    node_of_output = {op["outputs"][0]: node for node, op in ops.items()}
    twin_of_node = {}
    for output, reference in twins.items():
      grid = _int8_grid(interpreter, output)
      if output in node_of_output and grid:
        twin_of_node[node_of_output[output]] = (output, reference, grid)
    inputs, _ = _tflite_private.signature_io(interpreter)
    return cls(interpreter, [inputs[n] for n in calibration.input_names], ops=ops,
               twin_of_node=twin_of_node)


def _compared_layers(calibration: Calibration,
                     int8_ops: dict[int, dict]) -> tuple[dict[int, int], dict[int, dict]]:
  """(layer -> its node, layer -> the int8 op whose output is that layer's output).

  A node's output stands for its last layer's output (the ReLU of Conv+BN+ReLU); a layer in
  several nodes belongs to the first, and its output is the last one's.
  """
  index_of = {ref.name: ref.index for ref in calibration.layers}
  node_of_layer: dict[int, int] = {}
  compared: dict[int, dict] = {}
  for node in calibration.nodes:
    indices = [index_of[name] for name in node.layers]
    for i in indices:
      node_of_layer.setdefault(i, node.index)
    if indices and node.index in int8_ops:
      compared[max(indices)] = int8_ops[node.index]
  return node_of_layer, compared


def keras_float_pass(model, samples: dataset_lib.Samples, wanted: list[int]):
  """A function of one batch returning the Keras outputs of the `wanted` layers (NumPy).

  One traced function; the Python around the layer calls branches on Python values only, so no
  AutoGraph (a second, slow trace) is needed.
  """
  signature = [tf.TensorSpec((samples.fixed_batch,) + tuple(a.shape[1:]), tf.as_dtype(a.dtype))
               for a in samples.arrays]
  wanted_set = set(wanted)

  @tf.function(input_signature=signature, autograph=False)
  def outputs_of(*inputs):
    outputs = {}

    def record(index, _prefix, _layer, out):
      if index in wanted_set:
        outputs[index] = out[0] if isinstance(out, (list, tuple)) else out
    model_graph.run_layers(model, list(inputs), on_layer=record)
    return [outputs[i] for i in wanted]

  return lambda batch: [o.numpy() for o in outputs_of(*[tf.constant(a) for a in batch])]


def tflite_float_pass(calibration: Calibration, samples: dataset_lib.Samples, wanted: list[int]):
  """A function of one batch returning the float outputs of the `wanted` layers of a model
  calibrated from a float .tflite (layer i is op i).

  The calibrated model is that float model (its statistics are read by nothing at run time), run
  on LiteRT's builtin kernels with every intermediate tensor kept, one interpreter thread.
  """
  del samples  # every batch is fed as it comes
  interpreter = _tflite_private.make_interpreter(calibration.calibrated_model,
                                                 preserve_all_tensors=True, num_threads=1)
  inputs, _ = _tflite_private.signature_io(interpreter)
  runner = _LiteRTPass(interpreter, [inputs[n] for n in calibration.input_names])
  outputs = {op["index"]: op["outputs"][0] for op in _tflite_private.ops(interpreter)}
  tensors = [outputs[i] for i in wanted]

  def outputs_of(batch: list[np.ndarray]) -> list[np.ndarray]:
    read = runner.run(batch)
    return [read(t) for t in tensors]
  return outputs_of


def tflite_weight_sqnr_db(calibration: Calibration) -> list[float]:
  """Per layer of a model calibrated from a float .tflite (layer i is op i), the SQNR of its
  filter quantized as TFLite would (symmetric int8, per channel or per tensor); NaN for an op
  without a constant filter."""
  interpreter = _tflite_private.make_interpreter(calibration.calibrated_model)
  ops = {op["index"]: op for op in _tflite_private.ops(interpreter)}
  result = []
  for layer in calibration.layers:
    op = ops.get(layer.index)
    axis = _FILTER_CHANNEL_AXIS.get(op["op_name"]) if op else None
    kernel = None
    if axis is not None and len(op["inputs"]) > 1 and op["inputs"][1] >= 0:
      try:
        kernel = interpreter.get_tensor(op["inputs"][1])
      except ValueError:  # computed at run time, not a constant
        kernel = None
    if kernel is None or kernel.dtype != np.float32 or kernel.ndim < 2:
      result.append(math.nan)
      continue
    result.append(metrics.sqnr_db(kernel, metrics.quantize_symmetric(
        kernel, per_channel=calibration.per_channel, axis=axis)))
  return result


class _Accumulator:
  """Streaming metrics per compared layer (float Keras vs int8) and per node (int8 vs twin)."""

  def __init__(self, int8_pass: _Int8Pass, compared: dict[int, dict]):
    self.compared = compared
    self.twin_of_node = int8_pass.twin_of_node
    self.stats = {}
    for i in sorted(compared):
      scale, zero_point = _int8_grid(int8_pass.interpreter, compared[i]["outputs"][0]) or (None, 0)
      self.stats[i] = metrics.StreamingStats(scale=scale, zero_point=zero_point)
    self.op_powers = {node: [0.0, 0.0, 0] for node in self.twin_of_node}
    self.skipped: set[int] = set()  # layers whose compared op output is not theirs

  def pairs(self, interpreter, read, float_outputs: list[np.ndarray]) -> list:
    """(layer, float output, int8 output) of one batch; per-tensor int8 outputs go in raw (the
    stats dequantize them chunk by chunk instead of materialising a float copy)."""
    out = []
    for i, reference in zip(sorted(self.compared), float_outputs):
      if i in self.skipped:
        continue
      tensor = self.compared[i]["outputs"][0]
      quantized = (read(tensor) if self.stats[i].scale else
                   _tflite_private.dequantized_tensor(interpreter, tensor))
      if quantized.shape != reference.shape:
        self.skipped.add(i)  # The op's output is not this layer's output (e.g. a reshape follows).
        continue
      out.append((i, reference, quantized))
    return out

  def twin_arrays(self, read) -> list:
    return [(node, read(reference), read(output))
            for node, (output, reference, _) in self.twin_of_node.items()]

  def add(self, pairs, twin_arrays) -> None:
    """Adds one batch; runs in a worker while the passes compute the next batch."""
    for i, reference, quantized in pairs:
      if self.stats[i].scale:
        self.stats[i].update_int8(reference, quantized)
      else:
        self.stats[i].update(reference, quantized)
    for node, reference, quantized in twin_arrays:
      scale, zero_point = self.twin_of_node[node][2]
      powers = metrics.int8_error_powers(reference, quantized, scale, zero_point)
      self.op_powers[node] = [a + b for a, b in zip(self.op_powers[node], powers)]


def _run_passes(samples: dataset_lib.Samples, batch_size: int, int8_pass: _Int8Pass,
                float_pass, accumulator: _Accumulator, verbose: bool) -> None:
  """Both passes over every batch, the metrics accumulated as they go.

  Three threads share the cores: the float pass of a batch runs beside its int8 pass (one
  interpreter thread), and the metrics of the previous batch beside both. At most two batches of
  outputs are alive at a time.
  """
  pending = None
  num_batches = math.ceil(samples.num_samples / batch_size)
  with Progress(num_batches, "float + int8 passes", enabled=verbose) as bar, \
       concurrent.futures.ThreadPoolExecutor(max_workers=1) as float_worker, \
       concurrent.futures.ThreadPoolExecutor(max_workers=1) as worker:
    for batch in samples.batches(batch_size):
      float_future = float_worker.submit(float_pass, batch)
      read = int8_pass.run(batch)
      pairs = accumulator.pairs(int8_pass.interpreter, read, float_future.result())
      twin_arrays = accumulator.twin_arrays(read)
      if pending is not None:
        pending.result()
        bar.update()
      pending = worker.submit(accumulator.add, pairs, twin_arrays)
    if pending is not None:
      pending.result()
      bar.update()


def _weight_metrics(calibration: Calibration, weighted: set[int],
                    int8_pass: _Int8Pass) -> tuple[dict[int, int], dict[int, tuple]]:
  """Per layer: MACs, and the SQNRs of its node's folded weights (`_fused_weight_sqnr`).

  A node's MACs and weights belong to its first layer with a kernel (the Conv of Conv+BN+ReLU).
  """
  # Not allocated: only its constant filters are read, which needs no allocation and works for
  # inputs with dynamic dimensions (allocating those fails before a resize).
  calibrated = _tflite_private.make_interpreter(calibration.calibrated_model)
  calibrated_ops = {op["index"]: op for op in _tflite_private.ops(calibrated)}
  index_of = {ref.name: ref.index for ref in calibration.layers}
  macs_of_layer: dict[int, int] = {}
  weight_sqnr: dict[int, tuple] = {}
  for node in calibration.nodes:
    if not node.layers:
      continue
    indices = [index_of[name] for name in node.layers]
    with_kernel = [i for i in indices if i in weighted]
    owner = with_kernel[0] if with_kernel else indices[0]
    macs_of_layer[owner] = macs_of_layer.get(owner, 0) + node.macs
    if node.is_compute and node.index in int8_pass.ops:
      weight_sqnr[owner] = _fused_weight_sqnr(
          calibrated, int8_pass.interpreter, calibrated_ops[node.index], int8_pass.ops[node.index])
  return macs_of_layer, weight_sqnr


def analyze_layers(source, calibration: Calibration, samples: dataset_lib.Samples,
                   twin_model: bytes, twins: dict[int, int], *,
                   batch_size: int = DEFAULT_BATCH_SIZE,
                   verbose: bool = False) -> tuple[LayerStats, ...]:
  """Runs the float and int8 passes and returns the metrics of every flattened layer.

  Args:
    source: the model `calibration` was made from (`sources`): its float pass, its layers with
      weights and their weight SQNRs.
    calibration: its calibration (nodes mapped to layers).
    samples: the calibration samples.
    twin_model: the fully-int8 model of `calibration` with a float twin beside each int8 op, and
    twins: {int8 op output: its twin's output}, both from `_tflite_private.layerwise_twins`.
    batch_size: samples per pass step.
    verbose: show progress bars.

  Returns:
    One `LayerStats` per flattened layer, in execution order.
  """
  int8_pass = _Int8Pass.build(calibration, twin_model, twins)
  node_of_layer, compared = _compared_layers(calibration, int8_pass.ops)
  accumulator = _Accumulator(int8_pass, compared)
  _run_passes(samples, batch_size, int8_pass,
              source.float_pass(calibration, samples, sorted(compared)), accumulator, verbose)
  macs_of_layer, fused = _weight_metrics(calibration, source.weighted_layers(calibration),
                                         int8_pass)

  # The noise a node adds by itself is reported on the layer whose output the node produces.
  node_of_output = {op["outputs"][0]: node for node, op in int8_pass.ops.items()}
  powers = accumulator.op_powers
  op_node = {i: node_of_output.get(op["outputs"][0]) for i, op in compared.items()
             if i not in accumulator.skipped}
  op_sqnr = {i: metrics.sqnr_from_powers(*powers[n][:2]) for i, n in op_node.items()
             if n in powers}
  # RMS of the node's own error in steps of its int8 output (the TFLite debugger's RMSE / scale).
  op_error = {i: math.sqrt(powers[n][1] / powers[n][2]) / int8_pass.twin_of_node[n][2][0]
              for i, n in op_node.items() if n in powers and powers[n][2]}
  weight_sqnr = source.weight_sqnr_db(calibration)
  activation = {i: s for i, s in accumulator.stats.items()
                if i not in accumulator.skipped and s.count}
  weight_delta = _deltas({i: v for i, v in enumerate(weight_sqnr) if not math.isnan(v)})
  activation_delta = _deltas({i: s.sqnr_db for i, s in activation.items()})

  results = []
  for ref in calibration.layers:
    i = ref.index
    act = activation.get(i)
    results.append(LayerStats(
        index=i, name=ref.name, layer_type=ref.layer_type, node=node_of_layer.get(i),
        macs=macs_of_layer.get(i, 0),
        weight_sqnr_db=weight_sqnr[i],
        fused_weight_sqnr_db=fused.get(i, (math.nan,) * 3)[0],
        channel_weight_sqnr_db=fused.get(i, (math.nan,) * 3)[1],
        dynamic_weight_sqnr_db=fused.get(i, (math.nan,) * 3)[2],
        op_sqnr_db=op_sqnr.get(i, math.nan),
        op_error_lsb=op_error.get(i, math.nan),
        weight_sqnr_delta=weight_delta.get(i, math.nan),
        activation_sqnr_db=act.sqnr_db if act else math.nan,
        activation_sqnr_delta=activation_delta.get(i, math.nan),
        mse=act.mse if act else math.nan,
        cosine_similarity=act.cosine_similarity if act else math.nan,
        kl_divergence=act.kl_divergence if act else math.nan))
  return tuple(results)


def _deltas(series: dict[int, float]) -> dict[int, float]:
  """Eq. 16 over a {layer index: SQNR} series, in execution order."""
  positions = sorted(series)
  return dict(zip(positions, metrics.sqnr_delta([series[p] for p in positions], positions)))
