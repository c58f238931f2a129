"""Running a Keras model one layer call at a time (tfq_mixed/model_graph.py)."""

import keras
import numpy as np
import pytest

from tfq_mixed import model_graph


@pytest.fixture(scope="module")
def nested():
  """A functional model calling a nested Sequential model and a shared layer twice."""
  keras.utils.set_random_seed(0)
  inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, name="inner_dense"),
                            keras.layers.ReLU(name="inner_relu")], name="block")
  shared = keras.layers.Dense(4, name="shared")
  inputs = keras.Input((4,))
  x = shared(inner(inputs))
  x = shared(x)
  outputs = keras.layers.Dense(2, name="head")(x)
  return keras.Model(inputs, outputs, name="outer")


def test_flattened_names_nest_and_count_shared_calls(nested):
  refs = model_graph.flatten_layers(nested)
  assert [r.name for r in refs] == ["block/inner_dense", "block/inner_relu", "shared", "shared@1",
                                    "head"]
  assert [r.index for r in refs] == list(range(5))
  assert [r.layer_type for r in refs] == ["Dense", "ReLU", "Dense", "Dense", "Dense"]


def test_run_layers_gives_the_models_outputs_and_every_call(nested):
  x = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
  seen = []
  (out,) = model_graph.run_layers(nested, [x], on_layer=lambda i, p, layer, o: seen.append(
      (i, p, layer.name, np.asarray(o))))
  np.testing.assert_allclose(np.asarray(out), nested.predict(x, verbose=0), atol=1e-6)
  assert [(i, p, n) for i, p, n, _ in seen] == [(0, "block/", "inner_dense"),
                                                (1, "block/", "inner_relu"), (2, "", "shared"),
                                                (3, "", "shared"), (4, "", "head")]
  assert (seen[1][3] >= 0).all()  # the ReLU's own output


def test_output_bytes_per_sample_by_hand(nested):
  # float32 outputs per sample: 4 + 4 + 4 + 4 + 2 values.
  assert model_graph.output_bytes_per_sample(nested, [(4,)]) == 4 * (4 + 4 + 4 + 4 + 2)


def test_tf_safe_names_are_valid_scopes_and_restored():
  assert model_graph.tf_safe_name("conv;1 x:y") == "conv_1_x_y"
  assert model_graph.tf_safe_name("café") == "caf_"
  assert model_graph.tf_safe_name("_hidden") == "x_hidden"
  assert model_graph.tf_safe_name("ok.name-1") == "ok.name-1"
  layer = keras.layers.Dense(2, name="a b")
  with model_graph.tf_safe_names([layer]):
    assert layer.name == "a_b"
  assert layer.name == "a b"
  with pytest.raises(KeyError):
    with model_graph.tf_safe_names([layer]):
      raise KeyError("restored on errors too")
  assert layer.name == "a b"
