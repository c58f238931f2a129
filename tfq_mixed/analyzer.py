"""Step 2: the two inference passes and the local metrics per Keras layer (QuantuneV2 Sec. 6).

The float pass runs the Keras model layer by layer (unfused: Conv, BN and activation separately); the
int8 pass runs the fully-int8 TFLite model in the LiteRT interpreter with every intermediate tensor
preserved, each int8 op beside a float twin fed by its dequantized inputs (the noise the op adds
by itself). Each Keras layer whose output is also a TFLite op's output is compared. Metrics are
accumulated batch by batch in a worker thread, while the passes compute the next batch: at most two
batches of activations are held at a time.
"""

from __future__ import annotations

import concurrent.futures
import functools
import math
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from tfq_mixed import _tflite_private
from tfq_mixed import dataset as dataset_lib
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


def _kernel(layer) -> Optional[np.ndarray]:
  kernel = getattr(layer, "kernel", None)
  if kernel is None or len(getattr(kernel, "shape", ())) < 2:
    return None
  return np.asarray(keras.ops.convert_to_numpy(kernel), dtype=np.float32)


def keras_weight_sqnr_db(layer, per_channel: bool) -> float:
  """SQNR of the layer's kernel quantized as TFLite would (symmetric int8), NaN without a kernel."""
  kernel = _kernel(layer)
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
                       int8_op: dict) -> tuple[float, float]:
  """(whole-tensor, per-channel) SQNR of a compute node's folded float filter vs its int8 filter.

  As TFLite stores them; the per-channel one is `metrics.channel_sqnr_db` (NaN for ops without a
  known filter layout).
  """
  if len(node_op["inputs"]) < 2 or len(int8_op["inputs"]) < 2:
    return math.nan, math.nan
  try:
    reference = calibrated_interpreter.get_tensor(node_op["inputs"][1])
    quantized = _tflite_private.dequantized_tensor(int8_interpreter, int8_op["inputs"][1])
  except ValueError:
    return math.nan, math.nan
  if reference.shape != quantized.shape or reference.dtype != np.float32:
    return math.nan, math.nan
  axis = _FILTER_CHANNEL_AXIS.get(node_op["op_name"])
  channel = (metrics.channel_sqnr_db(reference, quantized, axis)
             if axis is not None and axis < reference.ndim else math.nan)
  return metrics.sqnr_db(reference, quantized), channel


def analyze_layers(model, calibration: Calibration, samples: dataset_lib.Samples,
                   twin_model: bytes, twins: dict[int, int], *,
                   batch_size: int = DEFAULT_BATCH_SIZE,
                   verbose: bool = False) -> tuple[LayerStats, ...]:
  """Runs the float and int8 passes and returns the metrics of every flattened layer.

  Args:
    model: the Keras model `calibration` was made from.
    calibration: its calibration (nodes mapped to layers).
    samples: the calibration samples.
    twin_model: the fully-int8 model of `calibration` with a float twin beside each int8 op, and
    twins: {int8 op output: its twin's output}, both from `_tflite_private.layerwise_twins`.
    batch_size: samples per pass step.
    verbose: show progress bars.

  Returns:
    One `LayerStats` per flattened layer, in execution order.
  """
  layers = calibration.layers
  layer_objects = model_graph.layer_objects(model)
  index_of = {ref.name: ref.index for ref in layers}

  calibrated_interpreter = _tflite_private.make_interpreter(calibration.calibrated_model)
  # Not allocated: only its constant filters are read, which needs no allocation and works for
  # inputs with dynamic dimensions (allocating those fails before a resize).
  calibrated_ops = {op["index"]: op for op in _tflite_private.ops(calibrated_interpreter)}
  # The int8 pass runs the int8 model with the float twins of TensorFlow's numeric-verify build:
  # its int8 ops are those of the plain int8 model, and each has a float twin fed by its
  # dequantized int8 inputs, so one pass also gives the noise each op adds by itself
  # (`op_sqnr_db`), as the QuantizationDebugger measures it.
  # One thread: the float pass runs beside it, and the results (float twins) do not depend on
  # the machine's core count.
  int8_interpreter = _tflite_private.make_interpreter(twin_model, preserve_all_tensors=True,
                                                     num_threads=1)
  int8_ops = precisions.align_ops(calibration.nodes, int8_interpreter, twins)
  node_of_int8_output = {op["outputs"][0]: node for node, op in int8_ops.items()}
  # node -> (int8 output tensor, twin output tensor, its int8 grid), for per-tensor int8 outputs.
  twin_of_node = {}
  for output, reference in twins.items():
    grid = _int8_grid(int8_interpreter, output)
    if output in node_of_int8_output and grid:
      twin_of_node[node_of_int8_output[output]] = (output, reference, grid)
  op_powers = {node: [0.0, 0.0, 0] for node in twin_of_node}

  # Which node's output stands for which layer's output: the node's last layer, last node wins.
  node_of_layer: dict[int, int] = {}
  compared: dict[int, dict] = {}  # layer index -> int8 op whose output is that layer's output
  for node in calibration.nodes:
    indices = [index_of[name] for name in node.layers]
    for i in indices:
      node_of_layer.setdefault(i, node.index)
    if indices and node.index in int8_ops:
      compared[max(indices)] = int8_ops[node.index]
  wanted = sorted(compared)

  # Float pass: one traced function returning every compared layer's output. The Python around
  # the layer calls branches on Python values only: no AutoGraph (a second, slow trace) needed.
  signature = [tf.TensorSpec((samples.fixed_batch,) + tuple(a.shape[1:]), tf.as_dtype(a.dtype))
               for a in samples.arrays]

  @tf.function(input_signature=signature, autograph=False)
  def float_pass(*inputs):
    outputs = {}

    def record(index, _prefix, _layer, out):
      if index in compared:
        outputs[index] = out[0] if isinstance(out, (list, tuple)) else out
    model_graph.run_layers(model, list(inputs), on_layer=record)
    return [outputs[i] for i in wanted]

  input_tensors, _ = _tflite_private.signature_io(int8_interpreter)
  input_indices = [input_tensors[name] for name in calibration.input_names]
  stats = {}
  for i in wanted:
    scale, zero_point = _int8_grid(int8_interpreter, compared[i]["outputs"][0]) or (None, 0)
    stats[i] = metrics.StreamingStats(scale=scale, zero_point=zero_point)

  def accumulate(pairs, twin_arrays):
    """Adds one batch to the metrics; runs in a worker while the passes compute the next batch."""
    for i, reference, quantized in pairs:
      if stats[i].scale:
        stats[i].update_int8(reference, quantized)
      else:
        stats[i].update(reference, quantized)
    for node, reference, quantized in twin_arrays:
      scale, zero_point = twin_of_node[node][2]
      powers = metrics.int8_error_powers(reference, quantized, scale, zero_point)
      op_powers[node] = [a + b for a, b in zip(op_powers[node], powers)]

  def run_float_pass(batch):
    return [o.numpy() for o in float_pass(*[tf.constant(a) for a in batch])]

  batch_shape = None
  skipped: set[int] = set()
  num_batches = math.ceil(samples.num_samples / batch_size)
  # Three threads share the cores: the float pass of a batch runs beside its int8 pass (one
  # interpreter thread), and the metrics of the previous batch beside both. At most two batches
  # of outputs are alive at a time.
  pending = None
  with Progress(num_batches, "float + int8 passes", enabled=verbose) as bar, \
       concurrent.futures.ThreadPoolExecutor(max_workers=1) as float_worker, \
       concurrent.futures.ThreadPoolExecutor(max_workers=1) as worker:
    for batch in samples.batches(batch_size):
      float_future = float_worker.submit(run_float_pass, batch)
      if batch_shape != batch[0].shape[0]:
        batch_shape = batch[0].shape[0]
        for index, array in zip(input_indices, batch):
          int8_interpreter.resize_tensor_input(index, array.shape, strict=False)
        int8_interpreter.allocate_tensors()
      for index, array in zip(input_indices, batch):
        int8_interpreter.set_tensor(index, array)
      int8_interpreter.invoke()
      float_outputs = float_future.result()
      read = functools.lru_cache(maxsize=None)(int8_interpreter.get_tensor)  # copies
      pairs = []
      for i, reference in zip(wanted, float_outputs):
        if i in skipped:
          continue
        tensor = compared[i]["outputs"][0]
        # Per-tensor int8 outputs go in raw: the stats dequantize them chunk by chunk (as
        # `dequantized_tensor` would, in float32) instead of materialising a float copy.
        quantized = (read(tensor) if stats[i].scale else
                     _tflite_private.dequantized_tensor(int8_interpreter, tensor))
        if quantized.shape != reference.shape:
          skipped.add(i)  # The op's output is not this layer's output (e.g. a reshape follows).
          continue
        pairs.append((i, reference, quantized))
      twin_arrays = [(node, read(reference), read(output))
                     for node, (output, reference, _) in twin_of_node.items()]
      if pending is not None:
        pending.result()
        bar.update()
      pending = worker.submit(accumulate, pairs, twin_arrays)
    if pending is not None:
      pending.result()
      bar.update()

  # Weight metrics, MACs, activation metrics per layer.
  nodes = {n.index: n for n in calibration.nodes}
  macs_of_layer: dict[int, int] = {}
  fused_sqnr: dict[int, float] = {}
  channel_sqnr: dict[int, float] = {}
  for node in calibration.nodes:
    if not node.layers:
      continue
    indices = [index_of[name] for name in node.layers]
    with_kernel = [i for i in indices if _kernel(layer_objects[i]) is not None]
    owner = with_kernel[0] if with_kernel else indices[0]
    macs_of_layer[owner] = macs_of_layer.get(owner, 0) + node.macs
    if node.is_compute and node.index in int8_ops:
      fused_sqnr[owner], channel_sqnr[owner] = _fused_weight_sqnr(
          calibrated_interpreter, int8_interpreter, calibrated_ops[node.index],
          int8_ops[node.index])

  # The noise a node adds by itself is reported on the layer whose output the node produces.
  op_node = {i: node_of_int8_output.get(op["outputs"][0]) for i, op in compared.items()
             if i not in skipped}
  op_sqnr = {i: metrics.sqnr_from_powers(*op_powers[n][:2]) for i, n in op_node.items()
             if n in op_powers}
  # RMS of the node's own error in steps of its int8 output (the TFLite debugger's RMSE / scale).
  op_error = {i: math.sqrt(op_powers[n][1] / op_powers[n][2]) / twin_of_node[n][2][0]
              for i, n in op_node.items() if n in op_powers and op_powers[n][2]}
  weight_sqnr = [keras_weight_sqnr_db(layer, calibration.per_channel) for layer in layer_objects]
  activation = {i: s for i, s in stats.items() if i not in skipped and s.count}
  weight_delta = _deltas({i: v for i, v in enumerate(weight_sqnr) if not math.isnan(v)})
  activation_delta = _deltas({i: s.sqnr_db for i, s in activation.items()})

  results = []
  for ref in layers:
    i = ref.index
    act = activation.get(i)
    results.append(LayerStats(
        index=i, name=ref.name, layer_type=ref.layer_type,
        node=nodes[node_of_layer[i]].index if i in node_of_layer else None,
        macs=macs_of_layer.get(i, 0),
        weight_sqnr_db=weight_sqnr[i],
        fused_weight_sqnr_db=fused_sqnr.get(i, math.nan),
        channel_weight_sqnr_db=channel_sqnr.get(i, math.nan),
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
