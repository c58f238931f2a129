"""Canary for tfq_mixed/_keras_private.py: the Keras internals it uses still exist and behave.

A Keras upgrade that moves them fails here first; the functions then raise instead of guessing
(BatchNormalization and Dropout must never run in training mode).
"""

import keras
import numpy as np
import pytest

from tfq_mixed import _keras_private


def _model():
  inputs = keras.Input((4,))
  x = keras.layers.Dense(3, name="dense")(inputs)
  x = keras.layers.BatchNormalization(name="bn")(x)
  x = keras.layers.Dropout(0.5, name="drop")(x)
  x = keras.layers.ReLU(name="relu")(x)
  return keras.Model(inputs, keras.ops.add(x, 1.0))


def test_functional_graph_of_functional_and_sequential_models():
  functional = _model()
  assert _keras_private.functional_graph(functional) is functional
  sequential = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
  graph = _keras_private.functional_graph(sequential)
  assert graph is not None and len(graph.operations) >= 1
  assert _keras_private.functional_graph(keras.Sequential([keras.layers.Dense(2)])) is None


def test_run_through_graph_calls_every_operation_in_order():
  model = _model()
  called = []

  def operation_fn(op):
    def call(*args, **kwargs):
      called.append(type(op).__name__)
      return op(*args, **kwargs)
    return call

  x = np.ones((2, 4), np.float32)
  (out,) = [_keras_private.run_through_graph(model, [x], operation_fn)]
  assert called[:4] == ["Dense", "BatchNormalization", "Dropout", "ReLU"] and len(called) == 5
  np.testing.assert_allclose(np.asarray(out), np.asarray(model(x, training=False)), atol=1e-6)


def test_training_argument_is_known_for_every_layer():
  model = _model()
  layers = {l.name: l for l in model.layers}
  assert _keras_private.call_has_training_arg(layers["bn"])
  assert _keras_private.call_has_training_arg(layers["drop"])
  assert not _keras_private.call_has_training_arg(layers["relu"])
  add = [op for op in model.operations if not isinstance(op, keras.layers.Layer)]
  assert add and not _keras_private.call_has_training_arg(add[0])  # ops.add: no such argument


def test_a_layer_without_the_attribute_fails_loudly():
  layer = keras.layers.BatchNormalization()
  object.__delattr__(layer, "_call_has_training_arg")
  with pytest.raises(RuntimeError, match=r"Layer._call_has_training_arg .* Install a Keras version"):
    _keras_private.call_has_training_arg(layer)
