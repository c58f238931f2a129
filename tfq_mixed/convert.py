"""The front door: `convert`, `analyze` and `apply_config`, each reading top to bottom."""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Optional

import tensorflow as tf

from tfq_mixed import _tflite_private
from tfq_mixed import analyzer
from tfq_mixed import calibrator
from tfq_mixed import dataset as dataset_lib
from tfq_mixed import errors
from tfq_mixed import model_graph
from tfq_mixed import rankers
from tfq_mixed import selector
from tfq_mixed import writer
from tfq_mixed.qtyping import LayerStats, Ranker, check_ratio


@dataclasses.dataclass(frozen=True)
class AnalysisOptions:
  per_channel: bool = True
  max_samples: int = dataset_lib.DEFAULT_MAX_SAMPLES

  def __post_init__(self):
    if not isinstance(self.per_channel, bool):
      raise errors.InvalidTypeError(
          f"`per_channel` must be a bool. Received: per_channel={self.per_channel!r}.")


class Analysis:
  """Per-layer sensitivity of one model on one calibration; quantize at any ratio without recalibrating.

  Attributes:
    layers: per-layer metrics (`LayerStats`), in execution order.
    nodes: the TFLite nodes, with the layers each contains and their MACs.
    int8_model: the plain fully-int8 model of this calibration.
  """

  def __init__(self, model_name: str, calibration: calibrator.Calibration,
               layers: tuple[LayerStats, ...], int8_model: bytes, options: AnalysisOptions,
               num_samples: int):
    self.model_name = model_name
    self.calibration = calibration
    self.layers = layers
    self.int8_model = int8_model
    self.options = options
    self.num_samples = num_samples

  @property
  def nodes(self):
    return self.calibration.nodes

  def sensitivity(self, ranker: "Ranker | str" = Ranker.QUANTUNE,
                  random_state: int = 0) -> list[str]:
    """Layer names, most sensitive first (QuantuneV2 Algorithm 2 for `ranker='quantune'`)."""
    return list(rankers.rank(self.layers, Ranker.parse(ranker), random_state))

  def quantize(self, ratio: float, ranker: "Ranker | str" = Ranker.QUANTUNE, *,
               random_state: int = 0) -> writer.Result:
    """The mixed model keeping the most sensitive nodes float, for `ratio` of MACs in int8.

    Reuses this analysis' calibration: no new inference pass, one quantization.
    """
    ratio = check_ratio(ratio)
    ranker = Ranker.parse(ranker)
    # 3. Order layers, most sensitive first.
    ranking = rankers.rank(self.layers, ranker, random_state)
    # 4. Keep the most sensitive fused nodes float within the float MAC budget 1 - ratio.
    selection = selector.select_float_layers(ranking, self.layers, self.nodes, ratio)
    # 5. Emit the config and the .tflite.
    options = {"ratio": ratio, "ranker": ranker.value, "random_state": random_state,
               "per_channel": self.options.per_channel, "max_samples": self.options.max_samples}
    config = writer.make_config(model_name=self.model_name, layers=self.layers, options=options,
                                selection=selection, num_samples=self.num_samples,
                                tensorflow_version=tf.__version__)
    tflite = (self.int8_model if not selection.float_nodes else _tflite_private.quantize(
        self.calibration.calibrated_model, per_channel=self.options.per_channel,
        denylisted_nodes=selection.float_nodes))
    return writer.Result(tflite=tflite, config=config, layers=self.layers, ranking=ranking,
                         nodes=self.nodes)


def _prepare(keras_model, representative_dataset, per_channel, max_samples):
  options = AnalysisOptions(per_channel=per_channel, max_samples=max_samples)
  model_graph.check_model(keras_model)  # Fail here, not deep inside TensorFlow.
  samples = dataset_lib.load_samples(representative_dataset,
                                     dataset_lib.model_input_specs(keras_model), max_samples)
  return options, samples


def analyze(keras_model, representative_dataset, *, per_channel: bool = True,
            max_samples: int = dataset_lib.DEFAULT_MAX_SAMPLES,
            batch_size: int = analyzer.DEFAULT_BATCH_SIZE, verbose: bool = False) -> Analysis:
  """Calibrates once and measures every layer's quantization sensitivity (two inference passes).

  Args:
    keras_model: a functional or Sequential Keras model (nested models are flattened).
    representative_dataset: a callable returning an iterable of input lists (the TFLiteConverter
      convention), a `tf.data.Dataset` of batched inputs, or a NumPy array of samples. No labels.
    per_channel: per-output-channel weight scales (default) or per-tensor.
    max_samples: read at most this many samples (default 500).
    batch_size: samples per step of the two passes.
    verbose: show progress bars.

  Returns:
    An `Analysis`; call `.quantize(ratio)` on it as often as needed.
  """
  options, samples = _prepare(keras_model, representative_dataset, per_channel, max_samples)
  # 1. Calibrate once.
  calibration = calibrator.calibrate(keras_model, samples, per_channel=options.per_channel,
                                     verbose=verbose)
  # 2. Compare float and int8 outputs per Keras layer.
  int8_model = _tflite_private.quantize(calibration.calibrated_model,
                                        per_channel=options.per_channel)
  layers = analyzer.analyze_layers(keras_model, calibration, samples, int8_model,
                                   batch_size=batch_size, verbose=verbose)
  return Analysis(keras_model.name, calibration, layers, int8_model, options, samples.num_samples)


def convert(keras_model, representative_dataset, ratio: float = 0.9, *, per_channel: bool = True,
            ranker: "Ranker | str" = Ranker.QUANTUNE, random_state: int = 0,
            max_samples: int = dataset_lib.DEFAULT_MAX_SAMPLES,
            verbose: bool = False) -> writer.Result:
  """Mixed int8/float TFLite model from a Keras model and unlabelled samples (QuantuneV2).

  Calibrates once, measures every layer's sensitivity from one float and one int8 pass, ranks the
  layers (Algorithm 2) and keeps the most sensitive fused nodes float so that `ratio` of the MACs
  run in int8 (Eq. 17).

  Args:
    keras_model: a functional or Sequential Keras model.
    representative_dataset: see `analyze`.
    ratio: share of MACs to run in int8; 1.0 is the plain full-int8 model, 0.0 keeps every compute
      op float.
    per_channel: per-output-channel weight scales (default) or per-tensor.
    ranker: sensitivity order, one of `tfq_mixed.Ranker` (default 'quantune').
    random_state: seed of the 'random' ranker.
    max_samples: read at most this many samples.
    verbose: show progress bars.

  Returns:
    A `Result`: `.tflite`, `.int8_mac_ratio`, `.float_layers`, `.config`, `.save(directory)`.

  Example:
    >>> result = tfq_mixed.convert(model, images[:200], ratio=0.9)
    >>> result.save("out/")
  """
  ratio = check_ratio(ratio)
  ranker = Ranker.parse(ranker)
  analysis = analyze(keras_model, representative_dataset, per_channel=per_channel,
                     max_samples=max_samples, verbose=verbose)
  return analysis.quantize(ratio, ranker, random_state=random_state)


def load_config(config: Any) -> writer.SelectiveQuantizationConfig:
  """A config from a `SelectiveQuantizationConfig`, a JSON string, or a path to a config.json."""
  if isinstance(config, writer.SelectiveQuantizationConfig):
    return config
  if isinstance(config, (str, os.PathLike)):
    text = os.fspath(config)
    if not text.lstrip().startswith("{"):
      if not os.path.isfile(text):
        raise errors.ConfigError(f"No config file at {text!r}. Pass a path to a config.json "
                                 "written by Result.save(), its text, or the config object.")
      with open(text, encoding="utf-8") as f:
        text = f.read()
    return writer.SelectiveQuantizationConfig.from_json(text)
  raise errors.InvalidTypeError(
      f"`config` must be a SelectiveQuantizationConfig, JSON text or a path. Received: "
      f"{type(config).__name__}.")


def apply_config(keras_model, representative_dataset, config: Any, *,
                 verbose: bool = False) -> writer.Result:
  """Rebuilds the mixed `.tflite` a saved config describes (same model, data: same bytes).

  Calibrates once and quantizes with the config's float layers; no analysis pass.

  Raises:
    ConfigError: the config is corrupted, too new, or names layers this model lacks.
  """
  del verbose
  config = load_config(config)
  options, samples = _prepare(keras_model, representative_dataset,
                              bool(config.options.get("per_channel", True)),
                              int(config.options.get("max_samples",
                                                     dataset_lib.DEFAULT_MAX_SAMPLES)))
  layers = model_graph.flatten_layers(keras_model)
  for position, (ref, (name, layer_type)) in enumerate(zip(layers, config.layers)):
    if (ref.name, ref.layer_type) != (name, layer_type):
      raise errors.ConfigError(
          f"The config does not match this model: layer {position} is {ref.name!r} "
          f"({ref.layer_type}) in the model but {name!r} ({layer_type}) in the config, which was "
          f"made for model {config.model_name!r}. Use the config with the model it was made for.")
  if len(layers) != len(config.layers):
    raise errors.ConfigError(
        f"The config does not match this model: it lists {len(config.layers)} layers, the model "
        f"has {len(layers)}. Use the config with the model it was made for.")
  calibration = calibrator.calibrate(keras_model, samples, per_channel=options.per_channel)
  known = {n.name for n in calibration.nodes}
  unknown = [n for n in config.float_nodes if n not in known]
  if unknown:
    raise errors.ConfigError(
        f"The config keeps TFLite node {unknown[0]!r} float, but this model's conversion has no such "
        f"node (TensorFlow {tf.__version__}; the config was made with "
        f"{config.tensorflow_version or 'an unknown version'}). Re-create the config.")
  tflite = _tflite_private.quantize(calibration.calibrated_model, per_channel=options.per_channel,
                                    denylisted_nodes=config.float_nodes)
  metrics = tuple(LayerStats(**{k: (float("nan") if v is None else v) for k, v in m.items()})
                  for m in config.metrics) if config.metrics else ()
  return writer.Result(tflite=tflite, config=config, layers=metrics, nodes=calibration.nodes)
