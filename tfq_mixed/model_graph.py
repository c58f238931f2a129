"""Runs a Keras functional model layer by layer, flattening nested models.

One executor serves both the export for TFLite (each layer call inside a `tfqm####` name scope, so
every TFLite op name says which Keras layer it came from) and the float pass (every layer's output).
"""

from __future__ import annotations

import contextlib
import re
from typing import Callable, Iterable, Optional

import keras

from tfq_mixed import _keras_private
from tfq_mixed import errors
from tfq_mixed.qtyping import LayerRef

SCOPE_PREFIX = "tfqm"


def scope_name(index: int) -> str:
  return f"{SCOPE_PREFIX}{index:04d}"


_TF_SCOPE_NAME = re.compile(r"[A-Za-z0-9.][A-Za-z0-9_.\-/>]*")
"""Names TensorFlow accepts for a name scope in a graph (`tf.name_scope`'s check)."""


def tf_safe_name(name: str) -> str:
  """`name` with every character a TensorFlow name scope rejects (';', ' ', ':', non-ASCII, ...)
  replaced by '_'."""
  safe = re.sub(r"[^A-Za-z0-9_.\-/>]", "_", name)
  return safe if _TF_SCOPE_NAME.fullmatch(safe) else "x" + safe


@contextlib.contextmanager
def tf_safe_names(layers: Iterable):
  """Gives the layers whose names TensorFlow's graph name scopes reject a safe name meanwhile.

  Keras accepts any layer name, but each layer call opens `tf.name_scope(layer.name)`, which in a
  traced function (conversion, `model.predict`) rejects ';', spaces, ':' and non-ASCII letters.
  The names are restored on exit; what the user sees (reports, configs) keeps the originals.
  """
  renamed = []
  try:
    for layer in layers:
      if not _TF_SCOPE_NAME.fullmatch(layer.name):
        renamed.append((layer, layer.name))
        layer.name = tf_safe_name(layer.name)
    yield
  finally:
    for layer, name in renamed:
      layer.name = name


def check_model(model) -> None:
  """Raises UnsupportedModelError unless `model` is a built functional/Sequential Keras model."""
  if not isinstance(model, keras.Model):
    raise errors.InvalidTypeError(
        f"`keras_model` must be a keras.Model. Received: {type(model).__name__}. Load it with "
        "keras.saving.load_model(path).")
  if isinstance(model, keras.Sequential) and _keras_private.functional_graph(model) is None:
    raise errors.UnsupportedModelError(
        f"Sequential model {model.name!r} is not built, so its input shape is unknown. Start it "
        "with an input, e.g. `keras.Sequential([keras.Input((224, 224, 3)), ...])`, or call "
        "`model.build((None, 224, 224, 3))` first.")
  if _keras_private.functional_graph(model) is None:
    raise errors.UnsupportedModelError(
        f"Model {model.name!r} ({type(model).__name__}) is a subclassed model without a functional "
        "graph, so its layers cannot be traced one by one. Expected a functional or Sequential "
        "model. Rebuild it with the functional API for per-layer precision, or wrap it: "
        "`inputs = keras.Input(shape); model = keras.Model(inputs, subclassed_model(inputs))` "
        "(it is then analysed and kept float or int8 as one layer).")
  try:
    model.inputs  # pylint: disable=pointless-statement
  except (AttributeError, ValueError):
    raise errors.UnsupportedModelError(
        f"Model {model.name!r} has no defined inputs. Build it first, e.g. call it on data or "
        "create it with keras.Input(...).") from None


def run_layers(model, inputs: list, on_layer: Optional[Callable] = None,
               scoped: bool = False) -> list:
  """Runs `model` on `inputs` one layer call at a time, recursing into nested models.

  Args:
    model: a functional or Sequential Keras model.
    inputs: one tensor per model input.
    on_layer: called as `on_layer(index, prefix, layer, outputs)` after each (flattened) layer call.
    scoped: wrap each layer call in `tf.name_scope(scope_name(index))`.

  Returns:
    The model outputs, as a list.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  counter = [0]

  def run(functional, xs, prefix):
    def operation_fn(op):
      def call(*args, **kwargs):
        nested = _keras_private.functional_graph(op) if isinstance(op, keras.Model) else None
        if nested is not None:
          flat_args = list(args[0]) if len(args) == 1 and isinstance(args[0], (list, tuple)) else list(args)
          outs = run(nested, flat_args, prefix + op.name + "/")
          return outs[0] if len(outs) == 1 else outs
        index = counter[0]
        counter[0] += 1
        if _keras_private.call_has_training_arg(op):
          kwargs["training"] = False
        with tf_safe_names([op]):
          if scoped:
            with tf.name_scope(scope_name(index)):
              outs = op(*args, **kwargs)
          else:
            outs = op(*args, **kwargs)
        if on_layer is not None:
          on_layer(index, prefix, op, outs)
        return outs
      return call
    outs = _keras_private.run_through_graph(functional, xs, operation_fn)
    return list(outs) if isinstance(outs, (list, tuple)) else [outs]

  return run(_keras_private.functional_graph(model), list(inputs), "")


def flatten_layers(model) -> list[LayerRef]:
  """The flattened layer calls of `model`, in execution order (symbolic run, no data)."""
  refs: list[LayerRef] = []
  seen: dict[str, int] = {}

  def record(index, prefix, layer, _):
    base = prefix + layer.name
    calls = seen.get(base, 0)
    seen[base] = calls + 1
    name = base if calls == 0 else f"{base}@{calls}"
    refs.append(LayerRef(index=index, name=name, layer_type=type(layer).__name__))

  symbolic = [keras.KerasTensor(t.shape, dtype=t.dtype) for t in model.inputs]
  run_layers(model, symbolic, on_layer=record)
  return refs


def layer_objects(model) -> list:
  """The layer objects of the flattened calls, aligned with `flatten_layers`."""
  layers: list = []
  symbolic = [keras.KerasTensor(t.shape, dtype=t.dtype) for t in model.inputs]
  run_layers(model, symbolic, on_layer=lambda i, p, layer, o: layers.append(layer))
  return layers


def output_bytes_per_sample(model, sample_shapes) -> int:
  """Bytes of all flattened layer outputs for one sample (symbolic run on the samples' shapes).

  Sizes the batches of the analysis passes, which hold every compared layer's output of a batch.
  """
  total = 0

  def record(_index, _prefix, _layer, outputs):
    nonlocal total
    for out in keras.tree.flatten(outputs):
      shape = getattr(out, "shape", None)
      if shape is not None:
        size = 1
        for dim in tuple(shape)[1:]:
          size *= dim if dim is not None else 1
        total += size * 4  # float32 (the float pass) dominates the int8 copies

  symbolic = [keras.KerasTensor((1,) + tuple(shape), dtype=t.dtype)
              for shape, t in zip(sample_shapes, model.inputs)]
  run_layers(model, symbolic, on_layer=record)
  return total
