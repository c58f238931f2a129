"""The only user of Keras internals.

Running a functional model one layer call at a time (for the per-layer name scopes of the export
and the per-layer outputs of the float pass) needs three things Keras keeps private: the Functional
graph behind a Sequential model, the graph walker that calls an operation function per node, and
whether a layer's `call` takes `training` (BatchNormalization and Dropout must run in inference
mode). If a Keras upgrade moves them, `tests/keras_private_test.py` fails first, and these
functions raise instead of guessing. pyproject.toml pins the Keras minor versions tested.
"""

from __future__ import annotations

from typing import Callable, Optional

import keras
from keras.src.models.functional import Functional


def _changed(what: str) -> RuntimeError:
  return RuntimeError(
      f"Keras {keras.__version__} has no {what}, which tfq_mixed uses to run a model layer by "
      "layer. Install a Keras version tfq_mixed supports (see the keras pin in its "
      "pyproject.toml).")


def functional_graph(model) -> Optional[Functional]:
  """The Functional graph behind a Functional or built Sequential model; None for other models
  (subclassed, or a Sequential model not built yet)."""
  if isinstance(model, keras.Sequential):
    if not hasattr(model, "_functional"):
      raise _changed("Sequential._functional")
    if model._functional is None and model.built:  # pylint: disable=protected-access
      model.build(model.input_shape)  # rebuilds the graph
    return model._functional  # pylint: disable=protected-access
  if isinstance(model, Functional):
    return model
  return None


def run_through_graph(functional: Functional, inputs: list, operation_fn: Callable):
  """Runs `functional` on `inputs`, calling `operation_fn(op)(*args, **kwargs)` for each node."""
  if not hasattr(functional, "_run_through_graph"):
    raise _changed("Functional._run_through_graph")
  return functional._run_through_graph(inputs, operation_fn)  # pylint: disable=protected-access


def call_has_training_arg(op) -> bool:
  """Whether the layer's `call` takes `training` (False for plain operations such as ops.add).

  Raises:
    RuntimeError: a layer without the attribute: without it, BatchNormalization and Dropout
      would silently run in training mode.
  """
  if not isinstance(op, keras.layers.Layer):
    return False
  try:
    return bool(op._call_has_training_arg)  # pylint: disable=protected-access
  except AttributeError:
    raise _changed(f"Layer._call_has_training_arg (layer {op.name!r})") from None
