"""Step 1: calibrate once with TensorFlow Lite: a Keras model exported with layer-tagged op names,
or a float .tflite as it is."""

from __future__ import annotations

import dataclasses
import time
from typing import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from tfq_mixed import _tflite_private
from tfq_mixed import dataset as dataset_lib
from tfq_mixed import errors
from tfq_mixed import layer_mapping
from tfq_mixed import macs as macs_lib
from tfq_mixed import model_graph
from tfq_mixed.progress import Progress
from tfq_mixed.qtyping import LayerRef, Node


@dataclasses.dataclass(frozen=True)
class Calibration:
  """A calibrated float TFLite model and how its ops map to Keras layers.

  Attributes:
    calibrated_model: TFLite flatbuffer with calibration statistics, not yet quantized.
    per_channel: whether weights are quantized per output channel.
    layers: the flattened Keras layer calls, in execution order.
    nodes: every TFLite op of the calibrated model, with the layers it contains and its MACs.
    input_names: signature input names, aligned with `model.inputs`.
    seconds: wall time of export + calibration.
  """

  calibrated_model: bytes
  per_channel: bool
  layers: tuple[LayerRef, ...]
  nodes: tuple[Node, ...]
  input_names: tuple[str, ...]
  seconds: float

  @property
  def total_macs(self) -> int:
    return sum(n.macs for n in self.nodes)

  @property
  def unmapped_nodes(self) -> tuple[Node, ...]:
    return tuple(n for n in self.nodes if not n.layers)


def _export(model, specs: list[dataset_lib.InputSpec], directory: str) -> None:
  """Writes a SavedModel whose ops are named after the flattened layer calls (benchmarks only)."""
  signature = [tf.TensorSpec(s.shape, tf.as_dtype(s.dtype), name=s.name) for s in specs]

  def serve(*inputs):
    outputs = model_graph.run_layers(model, list(inputs), scoped=True)
    return {f"output_{i}": o for i, o in enumerate(outputs)}

  archive = keras.export.ExportArchive()
  archive.track(model)
  archive.add_endpoint("serve", serve, input_signature=signature)
  archive.write_out(directory, verbose=False)


def scoped_function(model, specs: list[dataset_lib.InputSpec]):
  """The model as one frozen concrete function, every layer call in its own `tfqmNNNN` scope.

  Its ops, and so the TFLite ops converted from them, are named after the flattened layer calls
  (`layer_mapping`). Freezing in memory, as `TFLiteConverter.from_keras_model` does, took half the
  time of writing and re-reading a SavedModel (benchmarks/results/convert_overhead.md). The batch
  axis stays as the model has it: free (None), or fixed (`keras.Input(..., batch_size=1)`).
  """
  signature = [tf.TensorSpec(s.shape, tf.as_dtype(s.dtype), name=s.name) for s in specs]

  @tf.function(input_signature=signature, autograph=False)
  def serve(*inputs):
    return tuple(model_graph.run_layers(model, list(inputs), scoped=True))

  return _tflite_private.freeze(serve.get_concrete_function())


def _output_layers(model) -> list[int]:
  """Flattened index of the layer call producing each model output."""
  producer: dict[int, int] = {}

  def record(index, _prefix, _layer, outputs):
    for out in (outputs if isinstance(outputs, (list, tuple)) else [outputs]):
      producer[id(out)] = index

  symbolic = [keras.KerasTensor(t.shape, dtype=t.dtype) for t in model.inputs]
  outputs = model_graph.run_layers(model, symbolic, on_layer=record)
  return [producer.get(id(o), -1) for o in outputs]


def _fully_scoped(tensor_name: str, num_layers: int) -> bool:
  """Whether every op fused into `tensor_name` (';'-separated) carries one of our layer scopes."""
  for part in filter(None, tensor_name.split(";")):
    indices = layer_mapping.layer_indices_from_name(part)
    if not indices or any(i >= num_layers for i in indices):
      return False
  return True


def read_nodes(calibrated_model: bytes, layers: tuple[LayerRef, ...], input_names: Sequence[str],
               example: list[np.ndarray], map_layers: Callable) -> tuple[Node, ...]:
  """The calibrated model's ops as `Node`s (layers mapped, MACs per sample).

  MACs are counted on the tensors as the interpreter sizes them when it runs `example` (one array
  per input, the batch axis first), so every dimension has its real size: dynamic ones (`None` in
  the Keras input) the calibration size, shapes computed at run time (a reshape ahead of a
  FULLY_CONNECTED) theirs, batch axes created inside the model (SPACE_TO_BATCH_ND of a dilated
  convolution) their real multiple. Divided by the example's batch: MACs per sample.

  Args:
    calibrated_model, layers: the calibrated model and the layers its ops come from.
    input_names: its signature's inputs, in the order of `example`.
    example: one step's inputs.
    map_layers: `map_layers(ops, names, outputs)` -> per op, the indices of its layers (`ops`:
      the interpreter's op details; `names`: each op's output tensor name; `outputs`: the
      signature's output name -> tensor).

  Raises:
    ConversionError: the model cannot run on `example`.
  """
  # Builtin kernels only: no delegate rewrites the op list.
  interpreter = _tflite_private.make_interpreter(calibrated_model, builtin_only=True)
  inputs, outputs = _tflite_private.signature_io(interpreter)
  batch_size = int(example[0].shape[0])
  try:
    for name, array in zip(input_names, example):
      interpreter.resize_tensor_input(inputs[name], array.shape, strict=False)
    interpreter.allocate_tensors()
    for name, array in zip(input_names, example):
      interpreter.set_tensor(inputs[name], array)
    interpreter.invoke()  # sizes the tensors whose shapes are computed at run time
  except (RuntimeError, ValueError) as e:
    raise errors.ConversionError(
        f"LiteRT could not run the calibrated model on inputs of shapes "
        f"{[a.shape for a in example]}, needed to count its MACs: {e}") from e
  options = _tflite_private.builtin_options(calibrated_model)
  ops = _tflite_private.ops(interpreter)
  names = [_tflite_private.tensor_name(interpreter, op["outputs"][0]) for op in ops]
  mapped = map_layers(ops, names, outputs)

  def shape(tensor: int) -> tuple[int, ...]:
    return tuple(_tflite_private.tensor_details(interpreter, tensor)["shape"]) if tensor >= 0 else ()

  nodes = []
  for op, name, indices in zip(ops, names, mapped):
    macs = macs_lib.op_macs(op["op_name"], [shape(t) for t in op["inputs"]],
                            shape(op["outputs"][0]), options[op["index"]])
    nodes.append(Node(index=int(op["index"]), name=name, op_type=op["op_name"],
                      layers=tuple(layers[i].name for i in indices),
                      macs=int(macs) // batch_size))
  return tuple(nodes)


def _keras_layer_map(output_layers: list[int], num_layers: int) -> Callable:
  """`read_nodes`' `map_layers` for a model exported by `scoped_function`: the layer scopes in
  each op's name (`layer_mapping`), model outputs through the signature's output order."""

  def map_layers(ops, names, outputs):
    output_tensor_to_layer = {outputs[f"output_{i}"]: layer
                              for i, layer in enumerate(output_layers)
                              if f"output_{i}" in outputs and layer >= 0}
    mapped = layer_mapping.map_ops(names, [op["outputs"][0] for op in ops],
                                   output_tensor_to_layer, num_layers)
    for i, (op, name) in enumerate(zip(ops, names)):
      if op["outputs"][0] not in output_tensor_to_layer and not _fully_scoped(name, num_layers):
        # Part of this (fused) op comes from no layer scope we set, so its output is not any one
        # layer's output: leave it unmapped (reported) rather than attribute it to the rest.
        mapped[i] = []
    return mapped
  return map_layers


def _select_tf_op_layers(function, layers: tuple[LayerRef, ...]) -> list[str]:
  """'layer (Type): FlexOp, ...' for every layer whose ops need the Flex delegate (float convert)."""
  try:
    converter = _tflite_private.converter_from_function(function)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS,
                                           tf.lite.OpsSet.SELECT_TF_OPS]
    interpreter = _tflite_private.make_interpreter(converter.convert())  # not allocated: no kernels
  except Exception:  # pylint: disable=broad-except
    return []
  by_layer: dict[str, list[str]] = {}
  for op in _tflite_private.ops(interpreter):
    if not op["op_name"].startswith("Flex"):
      continue
    name = _tflite_private.tensor_name(interpreter, op["outputs"][0])
    indices = [i for i in layer_mapping.layer_indices_from_name(name) if i < len(layers)]
    key = (f"layer {layers[indices[-1]].name!r} ({layers[indices[-1]].layer_type})" if indices
           else f"TFLite op {name!r}")
    by_layer.setdefault(key, [])
    if op["op_name"] not in by_layer[key]:
      by_layer[key].append(op["op_name"])
  return [f"{key}: {', '.join(ops)}" for key, ops in by_layer.items()]


def calibrate(model, samples: dataset_lib.Samples, *, per_channel: bool = True,
              verbose: bool = False) -> Calibration:
  """Calibrates `model` once on `samples` (TFLiteConverter, calibrate-only).

  Args:
    model: a functional or Sequential Keras model (nested models are flattened).
    samples: validated calibration samples.
    per_channel: per-output-channel weight scales (TFLite's default) or one scale per tensor.
    verbose: show a progress bar over the calibration samples.

  Returns:
    The `Calibration`, quantizable any number of times without recalibrating.

  Raises:
    UnsupportedModelError: the model needs Select TF (Flex) ops, which TFLite's calibrator cannot
      run; the message names the layers.
    ConversionError: TensorFlow Lite could not convert or calibrate the model.
  """
  start = time.perf_counter()
  specs = dataset_lib.model_input_specs(model)
  layers = tuple(model_graph.flatten_layers(model))

  representative_dataset = _with_progress(samples, verbose)
  function = None
  try:
    function = scoped_function(model, specs)
    converter = _tflite_private.converter_from_function(function)
    converter.representative_dataset = representative_dataset
    calibrated = _tflite_private.calibrate_only(converter)
  except errors.TfqMixedError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    flex = _select_tf_op_layers(function, layers) if function is not None else None
    if flex:
      raise errors.UnsupportedModelError(
          f"Model {model.name!r} needs TensorFlow ops that TFLite runs only through the Select TF "
          f"ops (Flex) delegate: {'; '.join(flex)}. TensorFlow Lite's calibrator cannot run "
          "them, so the model cannot be calibrated for int8 (a plain TFLiteConverter int8 "
          "conversion fails the same way). Replace those ops with TFLite builtin ones (e.g. "
          "keras.activations.gelu(x, approximate=True) instead of tf.math.erf), or move them "
          "out of the model (pre- or post-processing).") from None
    raise errors.ConversionError(
        f"TensorFlow Lite could not convert model {model.name!r}: {type(e).__name__}: "
        f"{str(e)[:2000]}") from e
  calibrated = _tflite_private.with_signature(
      calibrated, [s.name for s in specs], [f"output_{i}" for i in range(len(function.outputs))])
  nodes = read_nodes(calibrated, layers, [s.name for s in specs], samples.example(),
                     _keras_layer_map(_output_layers(model), len(layers)))
  return Calibration(calibrated_model=bytes(calibrated), per_channel=bool(per_channel),
                     layers=layers, nodes=nodes, input_names=tuple(s.name for s in specs),
                     seconds=time.perf_counter() - start)


def _with_progress(samples: dataset_lib.Samples, verbose: bool):
  """`samples` as a `representative_dataset` callable, with a progress bar."""
  generator = samples.tflite_generator()

  def representative_dataset():
    with Progress(samples.num_samples, "calibration", enabled=verbose) as bar:
      for sample in generator():
        yield sample
        bar.update()
  return representative_dataset


def calibrate_tflite(model: bytes, layers: tuple[LayerRef, ...], input_names: Sequence[str],
                     samples: dataset_lib.Samples, *, per_channel: bool = True,
                     verbose: bool = False) -> Calibration:
  """Calibrates a float .tflite once on `samples` with TensorFlow's calibrator.

  Args:
    model: the float model, prepared for TensorFlow's calibrator (`float_tflite.prepare`), with
      one signature.
    layers: one per op of `model`, in op order (the op at position i is layer i).
    input_names: its signature's inputs, in the order of its subgraph inputs.
    samples, per_channel, verbose: as for `calibrate`.

  Raises:
    UnsupportedModelError: a custom op without a registered kernel (named).
    ConversionError: the calibrator or LiteRT failed on the model.
  """
  start = time.perf_counter()
  calibrated = _tflite_private.calibrate_model(model, _with_progress(samples, verbose))
  nodes = read_nodes(calibrated, layers, input_names, samples.example(),
                     lambda ops, names, outputs: [[int(op["index"])] for op in ops])
  return Calibration(calibrated_model=calibrated, per_channel=bool(per_channel), layers=layers,
                     nodes=nodes, input_names=tuple(input_names),
                     seconds=time.perf_counter() - start)
