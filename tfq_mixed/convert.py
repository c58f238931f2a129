"""The front door: `analyze`, `convert` and `apply_config`, each reading top to bottom."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Sequence

import tensorflow as tf

from tfq_mixed import _tflite_private
from tfq_mixed import analyzer
from tfq_mixed import calibrator
from tfq_mixed import config as config_lib
from tfq_mixed import dataset as dataset_lib
from tfq_mixed import errors
from tfq_mixed import model_graph
from tfq_mixed import precisions
from tfq_mixed import propagation
from tfq_mixed import qtyping
from tfq_mixed import rankers
from tfq_mixed import segments
from tfq_mixed import selector
from tfq_mixed import writer
from tfq_mixed.qtyping import (LayerStats, Node, Ranker, check_bool, check_positive_int,
                               check_random_state, check_ratio)
from tfq_mixed.result import Result

ANALYSIS_MEMORY_BUDGET_BYTES = 256 * 2**20
"""Layer outputs one step of the analysis passes may hold (float32, all flattened layers).

`analyze` lowers `batch_size` until a batch's outputs fit: EfficientNet-Lite0 (76 MiB per 224 px
sample) runs 3 samples a step, small models keep the full batch. Holding 16 EfficientNet samples
took 1.2 GiB more peak memory than plain TFLite conversion (benchmarks/results/memory.md).
"""


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
               layers: tuple[LayerStats, ...], options: AnalysisOptions, num_samples: int,
               int8_unsupported_nodes: tuple[Node, ...],
               op_inputs: dict[int, tuple[int, ...]]):
    self.model_name = model_name
    self.calibration = calibration
    self.layers = layers
    self.options = options
    self.num_samples = num_samples
    self.int8_unsupported_nodes = int8_unsupported_nodes
    self.op_inputs = op_inputs  # `segments.op_inputs` of the calibrated model

  @functools.cached_property
  def int8_model(self) -> bytes:
    """The plain fully-int8 model of this calibration (quantized when first needed)."""
    return _tflite_private.quantize(self.calibration.calibrated_model,
                                    per_channel=self.options.per_channel)

  @property
  def nodes(self):
    return self.calibration.nodes

  @functools.cached_property
  def gpu_float_fixable_nodes(self) -> tuple[Node, ...]:
    """Nodes the GPU delegate rejects in the full-int8 model but accepts in float (see
    `deploy.gpu_compatibility`); `quantize(..., gpu_compatible=True)` keeps them float first."""
    from tfq_mixed.deploy import gpu_compatibility  # pylint: disable=g-import-not-at-top
    return gpu_compatibility.float_fixable_nodes(self.int8_model,
                                                 self.calibration.calibrated_model, self.nodes)

  @property
  def int8_unsupported_layers(self) -> tuple[str, ...]:
    """Layers with an op TFLite cannot run in int8 (kept float in every result)."""
    return writer.layers_of(self.int8_unsupported_nodes)

  def sensitivity(self, ranker: "Ranker | str" = Ranker.QUANTUNE,
                  random_state: int = 0) -> list[str]:
    """Layer names, most sensitive first (QuantuneV2 Algorithm 2 for `ranker='quantune'`)."""
    ranker = Ranker.parse(ranker)
    return list(rankers.rank(self.layers, ranker, check_random_state(random_state)))

  def quantize(self, ratio: float, ranker: "Ranker | str | Sequence[str]" = Ranker.QUANTUNE, *,
               random_state: int = 0, gpu_compatible: bool = False) -> Result:
    """The mixed model keeping the most sensitive nodes float, for `ratio` of MACs in int8.

    Reuses this analysis' calibration: no new inference pass, one quantization.

    Args:
      ratio: share of MACs to run in int8, in [0, 1]; 0.0 is the float model (every op float).
      ranker: a `Ranker` name, or a custom order: a list or tuple of this analysis' layer names,
        most sensitive first (a subset is fine; each name at most once). A custom order fills the
        float MAC budget through the same selector as the built-in rankers (the config records
        `ranker='custom'`).
      random_state: seed of the 'random' ranker.
      gpu_compatible: first keep float the nodes the TFLite GPU delegate rejects in int8 but
        accepts in float (`deploy.gpu_compatibility.float_fixable_nodes`, e.g. SELECT_V2 with
        int8 branches), then fill the rest of the budget from the ranking. Ops without MACs are
        free; a compute node is kept float only if it fits: the MAC budget is always respected
        (the achieved int8 share is still at least `ratio`), so a rejected compute op may stay
        int8. Ops the delegate rejects in either precision are not changed. Recorded in the config.

    Returns:
      The `Result`; its figures are read from the model it holds. Where ops without an int8 kernel
      need more float MACs than `1 - ratio`, the model is built at the highest int8 share it can
      have and a `BudgetWarning` says so (also in `result.warnings`).

    Raises:
      InvalidArgumentError, InvalidTypeError: bad `ratio`, unknown ranker, or a custom order with
        unknown or repeated layer names.
    """
    ratio = check_ratio(ratio)
    random_state = check_random_state(random_state)
    gpu_compatible = check_bool(gpu_compatible, "gpu_compatible")
    # 3. Order layers, most sensitive first.
    if isinstance(ranker, (list, tuple)):
      ranking = rankers.check_ranking(self.layers, ranker)
      ranker_name = rankers.CUSTOM_RANKING
    else:
      ranker = Ranker.parse(ranker)
      ranking = rankers.rank(self.layers, ranker, random_state)
      ranker_name = ranker.value
    # 4. Keep the most sensitive fused nodes float within the float MAC budget 1 - ratio.
    selection = selector.select_float_layers(
        ranking, self.layers, self.nodes, ratio,
        int8_unsupported=[n.index for n in self.int8_unsupported_nodes],
        keep_float=[n.index for n in self.gpu_float_fixable_nodes] if gpu_compatible else ())
    # Ops without MACs that only read float outputs stay float too: no requantization in between.
    selection = segments.with_float_followers(selection, self.nodes, self.op_inputs)
    if ratio == 0.0:
      # No MACs in int8 is the float model: the ops without MACs (SOFTMAX, LayerNorm's MEAN, an
      # ADD of two inputs) go float too.
      selection = selector.all_float(selection, self.nodes)
    # 5. Emit the .tflite, and the config of what it really runs.
    options = {"ratio": ratio, "ranker": ranker_name, "random_state": random_state,
               "per_channel": self.options.per_channel, "max_samples": self.options.max_samples,
               "gpu_compatible": gpu_compatible}
    return writer.write(self.calibration, selection, model_name=self.model_name,
                        layers=self.layers, ranking=ranking, options=options,
                        num_samples=self.num_samples, int8_model=self.int8_model,
                        int8_unsupported=self.int8_unsupported_nodes, requested_ratio=ratio)


def _pass_batch_size(keras_model, samples: dataset_lib.Samples, batch_size: int) -> int:
  """`batch_size`, lowered so one step's layer outputs fit `ANALYSIS_MEMORY_BUDGET_BYTES` (a
  model with a fixed batch axis takes exactly its batch)."""
  if samples.fixed_batch:
    return samples.fixed_batch
  per_sample = model_graph.output_bytes_per_sample(keras_model,
                                                   [a.shape[1:] for a in samples.arrays])
  return max(1, min(batch_size, ANALYSIS_MEMORY_BUDGET_BYTES // max(per_sample, 1)))


def _prepare(keras_model, representative_dataset, per_channel, max_samples):
  options = AnalysisOptions(per_channel=per_channel,
                            max_samples=dataset_lib._check_max_samples(max_samples))  # pylint: disable=protected-access
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
    max_samples: read at most this many samples (default 500); the rest is never read.
    batch_size: at most this many samples per step of the two passes; lowered for large models
      so that one step's layer outputs stay within `ANALYSIS_MEMORY_BUDGET_BYTES` (256 MiB).
    verbose: show progress bars.

  Returns:
    An `Analysis`; call `.quantize(ratio)` on it as often as needed.

  Raises:
    InvalidArgumentError, InvalidTypeError: a bad argument (checked before any work).
    DatasetError: the samples are empty, malformed or do not fit the model's inputs.
    UnsupportedModelError: not a functional/Sequential model, or one needing Select TF ops.
    ConversionError: TensorFlow Lite failed to convert or quantize the model.
  """
  batch_size = check_positive_int(batch_size, "batch_size")
  options, samples = _prepare(keras_model, representative_dataset, per_channel, max_samples)
  # 1. Calibrate once.
  calibration = calibrator.calibrate(keras_model, samples, per_channel=options.per_channel,
                                     verbose=verbose)
  # 2. Compare float and int8 outputs per Keras layer: the int8 model, with a float twin beside
  #    each int8 op for the noise it adds by itself.
  twin_model, twins = _tflite_private.layerwise_twins(calibration.calibrated_model,
                                                      per_channel=options.per_channel)
  layers = analyzer.analyze_layers(keras_model, calibration, samples, twin_model, twins,
                                   batch_size=_pass_batch_size(keras_model, samples, batch_size),
                                   verbose=verbose)
  # 2b. Carry each node's own noise to the model output with the gains the two passes measured.
  op_inputs = segments.op_inputs(calibration.calibrated_model)
  layers = propagation.with_output_noise_shares(layers, calibration.nodes, op_inputs)
  return Analysis(keras_model.name, calibration, layers, options, samples.num_samples,
                  precisions.int8_unsupported(calibration.nodes, twin_model, twins), op_inputs)


def convert(keras_model, representative_dataset, ratio: float = 0.9, *, per_channel: bool = True,
            ranker: "Ranker | str" = Ranker.QUANTUNE, random_state: int = 0,
            max_samples: int = dataset_lib.DEFAULT_MAX_SAMPLES,
            verbose: bool = False, gpu_compatible: bool = False) -> Result:
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
    gpu_compatible: keep float, within the MAC budget, the nodes the TFLite GPU delegate rejects
      in int8 only (see `Analysis.quantize`).

  Returns:
    A `Result`: `.tflite`, `.int8_mac_ratio`, `.float_layers`, `.config`, `.save(directory)`.

  Raises:
    InvalidArgumentError, InvalidTypeError: `ratio` outside [0, 1], NaN or not a number; unknown
      `ranker` (the message lists the valid ones); other bad arguments. Checked before any work.
    DatasetError, UnsupportedModelError, ConversionError: as for `analyze`.

  Example:
    >>> result = tfq_mixed.convert(model, images[:200], ratio=0.9)
    >>> result.save("out/")
  """
  # Every option is checked before any calibration work.
  ratio = check_ratio(ratio)
  ranker = Ranker.parse(ranker)
  random_state = check_random_state(random_state)
  gpu_compatible = check_bool(gpu_compatible, "gpu_compatible")
  analysis = analyze(keras_model, representative_dataset, per_channel=per_channel,
                     max_samples=max_samples, verbose=verbose)
  return analysis.quantize(ratio, ranker, random_state=random_state,
                           gpu_compatible=gpu_compatible)


def apply_config(keras_model, representative_dataset, config: Any, *,
                 verbose: bool = False) -> Result:
  """Rebuilds the mixed `.tflite` a saved config describes (same model, data: same bytes).

  Calibrates once and quantizes with the config's float nodes; no analysis pass. The config is
  checked against the model before any sample is read, and its figures against the model it
  builds.

  Raises:
    ConfigError: the config is corrupted, too new, made for another model (the message names the
      first mismatching layer or field), or its figures are not those of the model its
      `float_nodes` build (the message names the field).
  """
  config = config_lib.load_config(config)
  model_graph.check_model(keras_model)
  config_lib.check_matches(keras_model, config)
  options, samples = _prepare(keras_model, representative_dataset,
                              config.options.get("per_channel", True),
                              config.options.get("max_samples", dataset_lib.DEFAULT_MAX_SAMPLES))
  calibration = calibrator.calibrate(keras_model, samples, per_channel=options.per_channel,
                                     verbose=verbose)
  known = {n.name for n in calibration.nodes}
  unknown = [n for n in config.float_nodes if n not in known]
  if unknown:
    raise errors.ConfigError(
        f"The config keeps TFLite node {unknown[0]!r} float, but this model's conversion has no such "
        f"node (TensorFlow {tf.__version__}; the config was made with "
        f"{config.tensorflow_version or 'an unknown version'}). Re-create the config.")
  metrics = tuple(LayerStats(**{k: (float("nan") if v is None else v) for k, v in m.items()})
                  for m in config.metrics)
  # The config's float nodes, built again and described from the built model.
  denylisted = set(config.float_nodes)
  of_nodes = [name for n in calibration.nodes if n.name in denylisted for name in n.layers]
  selection = qtyping.Selection(
      float_layers=tuple(dict.fromkeys([n for n in config.float_layers if n in of_nodes] +
                                       of_nodes)),
      float_nodes=config.float_nodes, float_macs=0, total_macs=0)
  layers = metrics or tuple(LayerStats(index=i, name=name, layer_type=kind, node=None, macs=0)
                            for i, (name, kind) in enumerate(config.layers))
  result = writer.write(calibration, selection, model_name=config.model_name, layers=layers,
                        ranking=(), options=config.options, num_samples=config.num_samples,
                        recorded_warnings=config.warnings)
  config_lib.check_built(config, result.config)
  return dataclasses.replace(result, config=config, layers=metrics)
