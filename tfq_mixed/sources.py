"""Step 0: the float model a user has, as the `Source` every later step reads.

A Keras model (its layers are the flattened layer calls), a float `.tflite` (path or bytes; its
layers are its ops, named from their output tensors) or a SavedModel folder (converted to a float
`.tflite` by TensorFlow Lite's own converter). Each gives the pipeline the same things: its inputs,
its layers, one calibration, the float pass of the analysis and its layers' weight SQNRs.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Sequence

import numpy as np

from tfq_mixed import _native_output
from tfq_mixed import _tflite_private
from tfq_mixed import analyzer
from tfq_mixed import calibrator
from tfq_mixed import dataset as dataset_lib
from tfq_mixed import errors
from tfq_mixed import float_tflite
from tfq_mixed import model_graph
from tfq_mixed.qtyping import LayerRef, SourceKind

_ACCEPTED = ("a keras.Model, a float .tflite (a path or its bytes), a SavedModel folder, or a "
             ".keras/.h5 file")


def load(model: Any, custom_op_registerers: Sequence = ()) -> "KerasSource | TfliteSource":
  """The `Source` of `model` (see the module docstring).

  Args:
    model: a keras.Model; a .tflite as bytes or a path; a SavedModel folder; a .keras/.h5 path.
    custom_op_registerers: kernels for a .tflite's custom ops (symbol names or functions taking a
      `tflite::MutableOpResolver*`), loaded by TensorFlow's calibrator and every LiteRT
      interpreter of this process from now on.

  Raises:
    InvalidTypeError: none of the accepted kinds.
    InvalidArgumentError: a path that does not exist or is no model.
    UnsupportedModelError: a model the pipeline cannot analyse (the message says why).
    ConversionError: TensorFlow Lite could not convert the SavedModel.
  """
  if isinstance(custom_op_registerers, (str, bytes)) or not isinstance(
      custom_op_registerers, (list, tuple)):
    raise errors.InvalidTypeError(
        "`custom_op_registerers` must be a list of symbol names or functions. Received: "
        f"{custom_op_registerers!r}.")
  _tflite_private.add_custom_op_registerers(custom_op_registerers)
  if isinstance(model, (KerasSource, TfliteSource)):
    return model
  if isinstance(model, (bytes, bytearray, memoryview)):
    return TfliteSource(float_tflite.read(bytes(model)), "model")
  if isinstance(model, (str, os.PathLike)):
    return _load_path(os.fspath(model))
  import keras  # pylint: disable=g-import-not-at-top
  if isinstance(model, keras.Model):
    return KerasSource(model)
  raise errors.InvalidTypeError(
      f"`model` must be {_ACCEPTED}. Received: {type(model).__name__}. Load a Keras model with "
      "keras.saving.load_model(path), or pass the path itself.")


def _load_path(path: str) -> "KerasSource | TfliteSource":
  name = os.path.splitext(os.path.basename(os.path.normpath(path)))[0] or "model"
  if os.path.isdir(path):
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
      raise errors.InvalidArgumentError(
          f"{path!r} is a folder without saved_model.pb, so it is not a SavedModel. Pass "
          f"{_ACCEPTED}.")
    return TfliteSource(saved_model_tflite(path), name, SourceKind.SAVED_MODEL)
  if not os.path.exists(path):
    raise errors.InvalidArgumentError(f"No model at {path!r}. Pass {_ACCEPTED}.")
  if path.endswith((".keras", ".h5")):
    import keras  # pylint: disable=g-import-not-at-top
    return KerasSource(keras.saving.load_model(path, compile=False))
  return TfliteSource(float_tflite.read(path), name)


def saved_model_tflite(path: str) -> bytes:
  """The float .tflite TensorFlow Lite's converter makes of a SavedModel (its default signature).

  Raises:
    UnsupportedModelError: it needs TensorFlow ops TFLite runs only through Flex.
    ConversionError: the converter failed otherwise.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  native_log: list = []
  try:
    with _native_output.captured(native_log):
      return bytes(tf.lite.TFLiteConverter.from_saved_model(path).convert())
  except Exception as e:  # pylint: disable=broad-except
    text = f"{e}\n{''.join(native_log)}"
    if "Select TF ops" in text or "flex" in text.lower():
      raise errors.UnsupportedModelError(
          f"The SavedModel {path!r} needs TensorFlow ops that TFLite runs only through the "
          "Select TF ops (Flex) delegate, which TensorFlow Lite's calibrator cannot run. Replace "
          f"them with TFLite builtin ops. The converter said: {str(e)[-1500:]}") from None
    raise errors.ConversionError(
        f"TensorFlow Lite could not convert the SavedModel {path!r} to a float .tflite: "
        f"{type(e).__name__}: {str(e)[-2000:]}") from e


class KerasSource:
  """A functional or Sequential Keras model; its layers are the flattened layer calls."""

  kind = SourceKind.KERAS

  def __init__(self, model):
    model_graph.check_model(model)  # Fail here, not deep inside TensorFlow.
    self.model = model
    self.name = model.name

  def input_specs(self) -> list[dataset_lib.InputSpec]:
    return dataset_lib.model_input_specs(self.model)

  @functools.cached_property
  def layers(self) -> tuple[LayerRef, ...]:
    return tuple(model_graph.flatten_layers(self.model))

  @functools.cached_property
  def _layer_objects(self) -> list:
    return model_graph.layer_objects(self.model)

  def calibrate(self, samples: dataset_lib.Samples, *, per_channel: bool,
                verbose: bool) -> calibrator.Calibration:
    return calibrator.calibrate(self.model, samples, per_channel=per_channel, verbose=verbose)

  def float_pass(self, calibration, samples: dataset_lib.Samples, wanted: list[int]):
    del calibration  # the Keras model itself, layer by layer
    return analyzer.keras_float_pass(self.model, samples, wanted)

  def weighted_layers(self, calibration) -> set[int]:
    """The layers with a kernel (a node's MACs and weights are its first such layer's)."""
    del calibration
    return {i for i, layer in enumerate(self._layer_objects)
            if analyzer.keras_kernel(layer) is not None}

  def weight_sqnr_db(self, calibration) -> list[float]:
    return [analyzer.keras_weight_sqnr_db(layer, calibration.per_channel)
            for layer in self._layer_objects]

  def output_bytes_per_sample(self, sample_shapes) -> int:
    return model_graph.output_bytes_per_sample(self.model, sample_shapes)


class TfliteSource:
  """A float .tflite, prepared for TensorFlow's calibrator (`float_tflite.prepare`); its layers
  are its ops (layer i is op i), named from their output tensors (`float_tflite.layer_names`).

  Attributes:
    name: the file's name without extension ('model' for bytes).
    original: the bytes given.
    model: the prepared float model, with one signature (the model's own, or one naming its
      input and output tensors).
  """

  def __init__(self, model: bytes, name: str, kind: SourceKind = SourceKind.TFLITE):
    what = f"The {'SavedModel' if kind == SourceKind.SAVED_MODEL else '.tflite'} {name!r}"
    self.kind = kind
    self.name = name
    self.original = model
    float_tflite.check_float(model, what)
    prepared = float_tflite.prepare(model)
    float_tflite.check_custom_ops(prepared, bool(_tflite_private.custom_op_registerers()), what)
    self.model = float_tflite.with_one_signature(prepared)
    try:
      interpreter = _tflite_private.make_interpreter(self.model)  # not allocated: no kernel runs
    except (ValueError, RuntimeError) as e:
      names = float_tflite.custom_ops(self.model)
      if names and "custom op" in str(e):
        raise errors.UnsupportedModelError(
            f"LiteRT has no kernel for the custom op(s) {', '.join(names)} of {what}: the "
            "`custom_op_registerers` given do not register them.") from None
      raise errors.ConversionError(f"LiteRT could not load {what}: {e}") from e
    self._ops = _tflite_private.ops(interpreter)
    self._tensor_names = [_tflite_private.tensor_name(interpreter, op["outputs"][0])
                          for op in self._ops]
    self._output_sizes = [int(np.prod(_tflite_private.tensor_details(interpreter, t)["shape"][1:]))
                          for op in self._ops for t in op["outputs"][:1]]
    inputs, _ = _tflite_private.signature_io(interpreter)
    by_tensor = {index: name for name, index in inputs.items()}
    # In the subgraph's input order: the order the calibrator feeds.
    self._specs = [dataset_lib.InputSpec(
        name=by_tensor[detail["index"]],
        shape=tuple(None if d < 0 else int(d) for d in detail["shape_signature"]),
        dtype=np.dtype(detail["dtype"]), keras_name=detail["name"])
                   for detail in interpreter.get_input_details()]

  def input_specs(self) -> list[dataset_lib.InputSpec]:
    return list(self._specs)

  @functools.cached_property
  def layers(self) -> tuple[LayerRef, ...]:
    types = [op["op_name"] for op in self._ops]
    return tuple(LayerRef(index=int(op["index"]), name=name, layer_type=op_type)
                 for op, name, op_type in zip(
                     self._ops, float_tflite.layer_names(self._tensor_names, types), types))

  def calibrate(self, samples: dataset_lib.Samples, *, per_channel: bool,
                verbose: bool) -> calibrator.Calibration:
    return calibrator.calibrate_tflite(self.model, self.layers, [s.name for s in self._specs],
                                       samples, per_channel=per_channel, verbose=verbose)

  def float_pass(self, calibration, samples: dataset_lib.Samples, wanted: list[int]):
    return analyzer.tflite_float_pass(calibration, samples, wanted)

  def weighted_layers(self, calibration) -> set[int]:
    return {i for i, value in enumerate(self.weight_sqnr_db(calibration)) if not np.isnan(value)}

  def weight_sqnr_db(self, calibration) -> list[float]:
    return analyzer.tflite_weight_sqnr_db(calibration)

  def output_bytes_per_sample(self, sample_shapes) -> int:
    del sample_shapes  # op outputs as the model stores them (one sample)
    return 4 * sum(self._output_sizes)
