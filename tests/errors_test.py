"""Every user mistake we can check ends in a tfq_mixed exception that says what, why and how to fix.

The checks on arguments run before any calibration work: a dataset callable that records its calls
proves it. Models are tiny real Keras models; nothing of TensorFlow is mocked.
"""

import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfq_mixed
from tfq_mixed import config as config_lib
from tfq_mixed import errors
from tfq_mixed.qtyping import Ranker

RANKERS = [r.value for r in Ranker]


@pytest.fixture(scope="module", autouse=True)
def _fresh_keras_names():
  """Resets Keras' auto-naming after this module, so tests that check names ('conv2d') don't
  depend on how many unnamed layers ran before them."""
  yield
  keras.backend.clear_session()


@pytest.fixture(scope="module")
def tiny():
  """(model, samples): Conv2D -> ReLU -> Flatten -> Dense on 6x6x2 inputs, random weights."""
  keras.utils.set_random_seed(0)
  inputs = keras.Input((6, 6, 2), name="image")
  x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
  x = keras.layers.Flatten(name="flat")(x)
  outputs = keras.layers.Dense(3, name="head")(x)
  model = keras.Model(inputs, outputs, name="tiny")
  samples = np.random.default_rng(0).normal(size=(8, 6, 6, 2)).astype(np.float32)
  return model, samples


@pytest.fixture(scope="module")
def tiny_result(tiny):
  model, samples = tiny
  return tfq_mixed.convert(model, samples, ratio=0.5)


class RecordingDataset:
  """A representative dataset that counts how often it was opened."""

  def __init__(self, samples):
    self.samples = samples
    self.calls = 0

  def __call__(self):
    self.calls += 1
    return ([s[None]] for s in self.samples)


def test_every_error_type_is_a_tfq_mixed_error_and_a_builtin():
  assert issubclass(errors.InvalidArgumentError, ValueError)
  assert issubclass(errors.InvalidTypeError, TypeError)
  assert issubclass(errors.DatasetError, ValueError)
  assert issubclass(errors.ConfigError, ValueError)
  assert issubclass(errors.UnsupportedModelError, ValueError)
  assert issubclass(errors.ConversionError, RuntimeError)
  assert issubclass(errors.OutputError, OSError)
  for name in tfq_mixed.__all__:
    obj = getattr(tfq_mixed, name)
    if isinstance(obj, type) and issubclass(obj, Exception) and not issubclass(obj, Warning):
      assert issubclass(obj, tfq_mixed.TfqMixedError), name
  assert issubclass(tfq_mixed.BudgetWarning, UserWarning)


# Options, checked before any work.

@pytest.mark.parametrize("ratio, error, message", [
    (1.5, tfq_mixed.InvalidArgumentError, r"Received: ratio=1.5. Pass a fraction, e.g. 0.9"),
    (-0.1, tfq_mixed.InvalidArgumentError, r"Received: ratio=-0.1. Pass a fraction"),
    (90, tfq_mixed.InvalidArgumentError, r"Received: ratio=90. A percentage\? Pass 0.9 for 90%"),
    (math.nan, tfq_mixed.InvalidArgumentError, r"Received: ratio=nan"),
    (math.inf, tfq_mixed.InvalidArgumentError, r"Received: ratio=inf"),
    ("0.9", tfq_mixed.InvalidTypeError, r"Received: ratio='0.9' of type str"),
    (True, tfq_mixed.InvalidTypeError, r"Received: ratio=True of type bool"),
    (np.array([0.5]), tfq_mixed.InvalidTypeError, r"of type ndarray"),
])
def test_bad_ratio_is_rejected_before_reading_any_sample(tiny, ratio, error, message):
  model, samples = tiny
  dataset = RecordingDataset(samples)
  with pytest.raises(error, match=r"`ratio` must be a float in \[0.0, 1.0\]\. .*" + message):
    tfq_mixed.convert(model, dataset, ratio=ratio)
  assert dataset.calls == 0


def test_numpy_scalars_are_valid_ratios():
  from tfq_mixed.qtyping import check_ratio  # pylint: disable=g-import-not-at-top
  assert check_ratio(np.float32(0.25)) == pytest.approx(0.25)
  assert check_ratio(np.int64(1)) == 1.0
  assert check_ratio(0) == 0.0


def test_unknown_ranker_lists_the_valid_ones_before_any_work(tiny):
  model, samples = tiny
  dataset = RecordingDataset(samples)
  with pytest.raises(tfq_mixed.InvalidArgumentError, match="Unknown ranker 'quantum'") as info:
    tfq_mixed.convert(model, dataset, ranker="quantum")
  for name in RANKERS:
    assert repr(name) in str(info.value)
  with pytest.raises(tfq_mixed.InvalidTypeError, match="`ranker` must be a string. Received: "
                     "ranker=3 of type int. Expected one of: 'quantune'"):
    tfq_mixed.convert(model, dataset, ranker=3)
  assert dataset.calls == 0


@pytest.mark.parametrize("kwargs, error, message", [
    ({"random_state": "seed"}, tfq_mixed.InvalidTypeError,
     r"`random_state` must be a non-negative int seed. Received: random_state='seed'"),
    ({"random_state": -1}, tfq_mixed.InvalidArgumentError, r"Received: random_state=-1"),
    ({"max_samples": 0}, tfq_mixed.InvalidArgumentError,
     r"`max_samples` must be a positive int. Received: max_samples=0. The default is 500"),
    ({"max_samples": 10.5}, tfq_mixed.InvalidTypeError, r"Received: max_samples=10.5 of type float"),
    ({"per_channel": 1}, tfq_mixed.InvalidTypeError, r"`per_channel` must be a bool"),
])
def test_other_options_are_checked_before_any_work(tiny, kwargs, error, message):
  model, samples = tiny
  dataset = RecordingDataset(samples)
  with pytest.raises(error, match=message):
    tfq_mixed.convert(model, dataset, ratio=0.5, **kwargs)
  assert dataset.calls == 0


@pytest.mark.parametrize("batch_size, error", [(0, tfq_mixed.InvalidArgumentError),
                                               (2.0, tfq_mixed.InvalidTypeError)])
def test_bad_batch_size(tiny, batch_size, error):
  model, samples = tiny
  dataset = RecordingDataset(samples)
  with pytest.raises(error, match=f"`batch_size` must be a positive int. Received: "
                     f"batch_size={batch_size!r}"):
    tfq_mixed.analyze(model, dataset, batch_size=batch_size)
  assert dataset.calls == 0


def test_analysis_quantize_checks_its_options(tiny):
  model, samples = tiny
  analysis = tfq_mixed.analyze(model, samples)
  with pytest.raises(tfq_mixed.InvalidArgumentError, match=r"Received: ratio=2"):
    analysis.quantize(2)
  with pytest.raises(tfq_mixed.InvalidArgumentError, match="Unknown ranker 'best'.*'random'"):
    analysis.quantize(0.5, "best")
  with pytest.raises(tfq_mixed.InvalidTypeError, match="random_state"):
    analysis.sensitivity("random", random_state=0.5)


# Models.

def test_not_a_keras_model(tiny):
  _, samples = tiny
  with pytest.raises(tfq_mixed.InvalidTypeError,
                     match="`model` must be a keras.Model, a float .tflite .*Received: function"):
    tfq_mixed.convert(lambda x: x, samples)


def test_subclassed_model_error_says_how_to_wrap_it(tiny):
  _, samples = tiny

  class Block(keras.Model):

    def __init__(self):
      super().__init__(name="block")
      self.dense = keras.layers.Dense(3)

    def call(self, x):
      return self.dense(keras.ops.reshape(x, (-1, 72)))

  model = Block()
  model(samples[:1])
  dataset = RecordingDataset(samples)
  with pytest.raises(tfq_mixed.UnsupportedModelError,
                     match=r"subclassed model without a functional graph.*Expected a functional or "
                     r"Sequential model.*keras.Model\(inputs, subclassed_model\(inputs\)\)"):
    tfq_mixed.convert(model, dataset)
  assert dataset.calls == 0


def test_unbuilt_sequential_says_to_add_an_input(tiny):
  _, samples = tiny
  with pytest.raises(tfq_mixed.UnsupportedModelError,
                     match=r"is not built.*keras.Input\(\(224, 224, 3\)\).*model.build"):
    tfq_mixed.convert(keras.Sequential([keras.layers.Dense(3)]), samples)


def test_select_tf_ops_are_named_instead_of_a_tensorflow_trace():
  """tf.math.erf needs the Flex delegate, which no TFLite calibrator (plain TF's either) has."""
  inputs = keras.Input((8,))
  x = keras.layers.Dense(8, name="dense")(inputs)
  x = keras.layers.Lambda(tf.math.erf, name="erf")(x)
  model = keras.Model(inputs, keras.layers.Dense(2, name="head")(x), name="flex")
  samples = np.random.default_rng(0).normal(size=(4, 8)).astype(np.float32)
  with pytest.raises(tfq_mixed.UnsupportedModelError,
                     match=r"Select TF ops \(Flex\) delegate: layer 'erf' \(Lambda\): FlexErf.*"
                     r"Replace those ops with TFLite builtin ones") as info:
    tfq_mixed.convert(model, samples)
  assert info.value.__cause__ is None and info.value.__suppress_context__


# Datasets.

@pytest.mark.parametrize("make, message", [
    (lambda x: x[:0], r"holds no samples for input 'input_0' \(shape \(0, 6, 6, 2\)\)"),
    (lambda x: (lambda: iter([])), r"yielded no samples. Pass at least one sample"),
    (lambda x: [], r"yielded no samples"),
    (lambda x: tf.data.Dataset.from_tensor_slices(x[:0]).batch(2), r"yielded no samples"),
])
def test_empty_dataset(tiny, make, message):
  model, samples = tiny
  with pytest.raises(tfq_mixed.DatasetError, match=message):
    tfq_mixed.convert(model, make(samples))


@pytest.mark.parametrize("make, message", [
    (lambda x: x[0], r"has shape \(6, 6, 2\); the model expects \(None, 6, 6, 2\). Add a batch "
                     r"axis: x\[None, ...\]"),
    (lambda x: x[:, :5], r"has shape \(8, 5, 6, 2\); the model expects \(None, 6, 6, 2\). Resize"),
    (lambda x: x.reshape(8, 36, 2), r"has shape \(8, 36, 2\); the model expects \(None, 6, 6, 2\)"),
    (lambda x: (lambda: ([s] for s in x)), r"element 0, input 'input_0' has shape \(6, 6, 2\).*"
                                           r"Add a batch axis"),
    (lambda x: x.astype(str), r"has dtype <U.*expected real numbers convertible to the model's "
                              r"input dtype float32"),
    (lambda x: x.astype(np.complex64), r"has dtype complex64"),
    (lambda x: np.array([object()] * 8), r"has dtype object"),
])
def test_wrong_shape_rank_or_dtype(tiny, make, message):
  model, samples = tiny
  with pytest.raises(tfq_mixed.DatasetError, match=message):
    tfq_mixed.convert(model, make(samples))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_names_the_sample(tiny, bad):
  model, samples = tiny
  x = samples.copy()
  x[5, 1, 2, 0] = bad
  with pytest.raises(tfq_mixed.DatasetError, match=r"contains NaN or Inf \(sample 5 of this "
                     r"array\). Calibration needs finite values"):
    tfq_mixed.convert(model, x)
  with pytest.raises(tfq_mixed.DatasetError, match=r"element 5, input 'input_0' contains NaN"):
    tfq_mixed.convert(model, lambda: ([s[None]] for s in x))


def test_wrong_dataset_type(tiny):
  model, _ = tiny
  for dataset in (3, "images/", {"image": 1}):
    with pytest.raises(tfq_mixed.InvalidTypeError,
                       match=r"`representative_dataset` must be a callable .* a tf.data.Dataset, or "
                       r"a NumPy array of samples.*Received: " + type(dataset).__name__):
      tfq_mixed.convert(model, dataset)
  with pytest.raises(tfq_mixed.DatasetError, match=r"returned int, which is not iterable"):
    tfq_mixed.convert(model, lambda: 3)


def test_samples_of_different_shapes_for_a_dynamic_input():
  inputs = keras.Input((None, None, 1))
  model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3)(inputs)))
  rng = np.random.default_rng(0)
  dataset = [rng.normal(size=(1, 8, 8, 1)).astype(np.float32),
             rng.normal(size=(1, 9, 8, 1)).astype(np.float32)]
  with pytest.raises(tfq_mixed.DatasetError, match=r"element 1, input 'input_0' has sample shape "
                     r"\(9, 8, 1\), but element 0 has \(8, 8, 1\). All samples must share one shape"):
    tfq_mixed.convert(model, dataset)


def test_multi_input_dataset_mismatches():
  a, b = keras.Input((4,), name="a"), keras.Input((3,), name="b")
  model = keras.Model([a, b], keras.layers.Dense(2)(keras.layers.Concatenate()([a, b])))
  xa = np.ones((5, 4), np.float32)
  xb = np.ones((5, 3), np.float32)
  with pytest.raises(tfq_mixed.DatasetError, match=r"element 0 holds 1 arrays; the model has 2 "
                     r"input\(s\). Yield one array per model input"):
    tfq_mixed.convert(model, lambda: ([x[None]] for x in xa))
  with pytest.raises(tfq_mixed.DatasetError, match=r"different batch sizes per input: \[2, 1\]"):
    tfq_mixed.convert(model, lambda: iter([[xa[:2], xb[:1]]]))
  with pytest.raises(tfq_mixed.DatasetError, match=r"hold different numbers of samples: \[5, 4\]"):
    tfq_mixed.convert(model, [xa, xb[:4]])
  with pytest.raises(tfq_mixed.DatasetError, match=r"dict with keys \['x'\]; expected keys "
                     r"\['input_0', 'input_1'\]"):
    tfq_mixed.convert(model, lambda: iter([{"x": xa[:1]}]))
  # One array for a two-input model: what is expected, not a NumPy error.
  with pytest.raises(tfq_mixed.DatasetError, match=r"The model has 2 inputs \('input_0' \('a'\) "
                     r"of shape \(None, 4\), 'input_1' \('b'\) of shape \(None, 3\)\); "
                     r"`representative_dataset` is one array of shape \(5, 4\). Pass a list of "
                     r"2 arrays, one per input"):
    tfq_mixed.convert(model, xa)
  with pytest.raises(tfq_mixed.DatasetError, match=r"element 0 is one ndarray; the model has 2 "
                     r"inputs .* Yield one array per model input"):
    tfq_mixed.convert(model, iter(xa[:, None]))


def test_float_samples_for_an_integer_input():
  tokens = keras.Input((5,), dtype="int32")
  x = keras.layers.Flatten()(keras.layers.Embedding(10, 4)(tokens))
  model = keras.Model(tokens, keras.layers.Dense(2)(x))
  with pytest.raises(tfq_mixed.DatasetError, match=r"has dtype float32; the model input is int32. "
                     r"Cast the samples"):
    tfq_mixed.convert(model, np.zeros((4, 5), np.float32))


# Configs.

def _config_dict(result):
  return json.loads(result.config.to_json())


def test_config_from_another_model_names_the_first_mismatching_layer(tiny, tiny_result):
  model, samples = tiny
  inputs = keras.Input((6, 6, 2))
  x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
  x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
  other = keras.Model(inputs, keras.layers.Dense(3, name="head")(x))
  dataset = RecordingDataset(samples)
  with pytest.raises(tfq_mixed.ConfigError,
                     match=r"layer 1 is 'pool' \(GlobalAveragePooling2D\) in the model but 'flat' "
                     r"\(Flatten\) in the config, which was made for model 'tiny'"):
    tfq_mixed.apply_config(other, dataset, tiny_result.config)
  shorter = keras.Model(inputs, keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs))
  with pytest.raises(tfq_mixed.ConfigError,
                     match=r"lists 3 layers, the model has 1; the config's layer 1 \('flat'\) is "
                     r"not in the model"):
    tfq_mixed.apply_config(shorter, dataset, tiny_result.config)
  assert dataset.calls == 0  # checked before reading any sample


def test_newer_schema_version(tiny_result):
  data = _config_dict(tiny_result)
  data["schema_version"] = 99
  with pytest.raises(tfq_mixed.ConfigError, match=r"schema_version=99; this tfq_mixed \(.*\) reads "
                     r"up to 3. Upgrade tfq_mixed"):
    tfq_mixed.SelectiveQuantizationConfig.from_json(json.dumps(data))


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.pop("float_nodes"), r"lacks the field 'float_nodes'"),
    (lambda d: d.update(total_macs="many"), r"field 'total_macs' has type str; expected int"),
    (lambda d: d.update(schema_version=0), r"field 'schema_version' is 0; expected an int in \[1, 3\]"),
    (lambda d: d["layers"].__setitem__(1, ["flat"]), r"field 'layers\[1\]' is \['flat'\]; expected "
                                                     r"a \[name, type\] pair"),
    (lambda d: d["float_layers"].append("ghost"), r"'float_layers\[\d\]' is 'ghost'; expected a "
                                                   r"layer listed in 'layers'"),
    (lambda d: d["options"].update(ratio=7), r"'options.ratio' is 7; expected a number in \[0, 1\]"),
    (lambda d: d["options"].update(ranker="quantum"), r"'options.ranker' is 'quantum'; expected one "
                                                      r"of 'quantune'"),
    (lambda d: d["options"].update(per_channel="yes"), r"'options.per_channel' is 'yes'"),
    (lambda d: d["options"].update(max_samples=-3), r"'options.max_samples' is -3"),
    (lambda d: d.update(int8_mac_ratio=1.5), r"'int8_mac_ratio' is 1.5"),
    (lambda d: d.update(float_macs=d["total_macs"] + 1), r"'float_macs' is \d+; expected at most"),
    (lambda d: d["metrics"][2].update(mse="low"), r"'metrics\[2\].mse' is 'low'; expected a number "
                                                  r"or null"),
    (lambda d: d["metrics"][0].pop("macs"), r"'metrics\[0\].macs' is None; expected a value"),
    (lambda d: d["metrics"][0].update(colour=1), r"'metrics\[0\].colour' is 1; expected no such field"),
])
def test_corrupted_config_names_the_first_bad_field(tiny_result, edit, message):
  data = _config_dict(tiny_result)
  edit(data)
  with pytest.raises(tfq_mixed.ConfigError, match=message + r".*re-create it"):
    tfq_mixed.SelectiveQuantizationConfig.from_json(json.dumps(data))


def test_config_that_is_not_json_or_not_a_file(tiny, tiny_result, tmp_path):
  model, samples = tiny
  text = tiny_result.config.to_json()
  with pytest.raises(tfq_mixed.ConfigError, match=r"not valid JSON .* It is corrupted"):
    tfq_mixed.SelectiveQuantizationConfig.from_json(text[:len(text) // 2])
  with pytest.raises(tfq_mixed.ConfigError, match=r"must be a JSON object. Received: list"):
    tfq_mixed.SelectiveQuantizationConfig.from_json("[1, 2]")
  with pytest.raises(tfq_mixed.ConfigError, match=r"No config file at '.*missing.json'"):
    tfq_mixed.apply_config(model, samples, str(tmp_path / "missing.json"))
  (tmp_path / "binary.json").write_bytes(b"\xff\xfe\x00garbage")
  with pytest.raises(tfq_mixed.ConfigError, match=r"Could not read the config"):
    tfq_mixed.apply_config(model, samples, tmp_path / "binary.json")
  with pytest.raises(tfq_mixed.InvalidTypeError, match=r"`config` must be a "
                     r"SelectiveQuantizationConfig, JSON text or a path. Received: int"):
    tfq_mixed.apply_config(model, samples, 42)


def test_saved_config_round_trips_through_apply_config(tiny, tiny_result, tmp_path):
  model, samples = tiny
  tiny_result.save(tmp_path)
  rebuilt = tfq_mixed.apply_config(model, samples, tmp_path / "config.json")
  assert rebuilt.tflite == tiny_result.tflite
  assert rebuilt.config == tiny_result.config


@pytest.mark.parametrize("edit, field", [
    (lambda c: c.update(float_nodes=[]), "int8_mac_ratio"),  # the case: all int8 built
    (lambda c: c.update(float_layers=[]), "float_layers"),
    (lambda c: c.update(int8_mac_ratio=0.99), "int8_mac_ratio"),
    (lambda c: c.update(bops=c["bops"] + 1), "bops"),
    (lambda c: c["layer_precisions"]["conv"].update(precision="float"), "layer_precisions"),
])
def test_apply_config_reports_what_it_builds_or_names_the_field(tiny, tiny_result, tmp_path,
                                                                 edit, field):
  """A config's figures are checked against the model its float_nodes build, never echoed."""
  model, samples = tiny
  assert tiny_result.config.float_nodes  # ratio 0.5 keeps the conv float
  data = json.loads(tiny_result.config.to_json())
  edit(data)
  (tmp_path / "config.json").write_text(json.dumps(data))
  with pytest.raises(tfq_mixed.ConfigError, match=rf"The config field '{field}' is .* but the "
                     "model its float_nodes build has"):
    tfq_mixed.apply_config(model, samples, tmp_path / "config.json")


def test_apply_config_of_an_edited_denylist_reports_the_built_model(tiny, tiny_result):
  """Editing float_nodes and every figure with it gives a config that applies, and the Result
  reports the all-int8 model it built (read from the .tflite, not the file)."""
  model, samples = tiny
  all_int8 = tfq_mixed.convert(model, samples, ratio=1.0)
  data = json.loads(tiny_result.config.to_json())
  for key in config_lib.BUILT_FIELDS + ("float_nodes",):
    data[key] = json.loads(all_int8.config.to_json())[key]
  rebuilt = tfq_mixed.apply_config(model, samples, json.dumps(data))
  assert rebuilt.tflite == all_int8.tflite
  assert rebuilt.int8_mac_ratio == 1.0 and rebuilt.float_layers == ()
  assert set(rebuilt.node_precisions.values()) <= {tfq_mixed.Precision.INT8}


def test_save_argument_types(tiny_result, tmp_path):
  with pytest.raises(tfq_mixed.InvalidTypeError, match=r"`directory` must be a path .* Received: "
                     r"123 of type int"):
    tiny_result.save(123)
  with pytest.raises(tfq_mixed.InvalidTypeError, match=r"`overwrite` must be a bool. Received: "
                     r"overwrite='yes'"):
    tiny_result.save(tmp_path, overwrite="yes")
