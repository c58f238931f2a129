"""The front door: `analyze`, `convert` and `apply_config`, each reading top to bottom."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional, Sequence

import tensorflow as tf

from tfq_mixed import _tflite_private
from tfq_mixed import analyzer
from tfq_mixed import config as config_lib
from tfq_mixed import dataset as dataset_lib
from tfq_mixed import errors
from tfq_mixed import precisions
from tfq_mixed import propagation
from tfq_mixed import qtyping
from tfq_mixed import segments
from tfq_mixed import sources
from tfq_mixed import writer
from tfq_mixed.qtyping import (Fallback, LayerStats, Ranker, check_bool, check_budget,
                               check_positive_int, check_random_state)
from tfq_mixed.analysis import Analysis, AnalysisOptions
from tfq_mixed.result import Result

ANALYSIS_MEMORY_BUDGET_BYTES = 256 * 2**20
"""Layer outputs one step of the analysis passes may hold (float32, all flattened layers).

`analyze` lowers `batch_size` until a batch's outputs fit: EfficientNet-Lite0 (76 MiB per 224 px
sample) runs 3 samples a step, small models keep the full batch. Holding 16 EfficientNet samples
took 1.2 GiB more peak memory than plain TFLite conversion (benchmarks/results/memory.md).
"""


def _pass_batch_size(source, samples: dataset_lib.Samples, batch_size: int) -> int:
  """`batch_size`, lowered so one step's layer outputs fit `ANALYSIS_MEMORY_BUDGET_BYTES` (a
  model with a fixed batch axis takes exactly its batch)."""
  if samples.fixed_batch:
    return samples.fixed_batch
  per_sample = source.output_bytes_per_sample([a.shape[1:] for a in samples.arrays])
  return max(1, min(batch_size, ANALYSIS_MEMORY_BUDGET_BYTES // max(per_sample, 1)))


def _options(per_channel, max_samples) -> AnalysisOptions:
  return AnalysisOptions(per_channel=per_channel,
                         max_samples=dataset_lib._check_max_samples(max_samples))  # pylint: disable=protected-access


def analyze(model, representative_dataset, *, per_channel: bool = True,
            max_samples: int = dataset_lib.DEFAULT_MAX_SAMPLES,
            batch_size: int = analyzer.DEFAULT_BATCH_SIZE, verbose: bool = False,
            custom_op_registerers: Sequence = ()) -> Analysis:
  """Calibrates once and measures every layer's quantization sensitivity (two inference passes).

  Args:
    model: the float model: a functional or Sequential Keras model (nested models are
      flattened; its layers are the layer calls); a float .tflite, as a path or its bytes (its
      layers are its ops; fp16 weights are folded to float32 first); a SavedModel folder
      (converted to a float .tflite by TFLiteConverter); or a .keras/.h5 path.
    representative_dataset: a callable returning an iterable of input lists (the TFLiteConverter
      convention), a `tf.data.Dataset` of batched inputs, or a NumPy array of samples. No labels.
    per_channel: per-output-channel weight scales (default) or per-tensor.
    max_samples: read at most this many samples (default 500); the rest is never read.
    batch_size: at most this many samples per step of the two passes; lowered for large models
      so that one step's layer outputs stay within `ANALYSIS_MEMORY_BUDGET_BYTES` (256 MiB).
    verbose: show progress bars.
    custom_op_registerers: kernels for a .tflite's custom ops (symbol names or functions taking a
      `tflite::MutableOpResolver*`, as for ai_edge_litert's `InterpreterWithCustomOps`); loaded
      by every calibrator and interpreter of this process from then on.

  Returns:
    An `Analysis`; call `.quantize(ratio)` on it as often as needed.

  Raises:
    InvalidArgumentError, InvalidTypeError: a bad argument (checked before any work).
    DatasetError: the samples are empty, malformed or do not fit the model's inputs.
    UnsupportedModelError: not a functional/Sequential model, one needing Select TF ops, an
      already quantized .tflite, or one with custom ops no registerer provides (named).
    ConversionError: TensorFlow Lite failed to convert or quantize the model.
  """
  batch_size = check_positive_int(batch_size, "batch_size")
  options = _options(per_channel, max_samples)
  source = sources.load(model, custom_op_registerers)  # Fail here, not deep inside TensorFlow.
  samples = dataset_lib.load_samples(representative_dataset, source.input_specs(), max_samples)
  # 1. Calibrate once.
  calibration = source.calibrate(samples, per_channel=options.per_channel, verbose=verbose)
  # 2. Compare float and int8 outputs per Keras layer: the int8 model, with a float twin beside
  #    each int8 op for the noise it adds by itself.
  twin_model, twins = _tflite_private.layerwise_twins(calibration.calibrated_model,
                                                      per_channel=options.per_channel)
  layers = analyzer.analyze_layers(source, calibration, samples, twin_model, twins,
                                   batch_size=_pass_batch_size(source, samples, batch_size),
                                   verbose=verbose)
  # 2b. Carry each node's own noise to the model output with the gains the two passes measured.
  op_inputs = segments.op_inputs(calibration.calibrated_model)
  layers = propagation.with_output_noise_shares(layers, calibration.nodes, op_inputs)
  return Analysis(source.name, calibration, layers, options, samples.num_samples,
                  precisions.int8_unsupported(calibration.nodes, twin_model, twins), op_inputs,
                  samples)


def convert(model, representative_dataset, ratio: Optional[float] = None, *,
            max_latency: Optional[float] = None, max_size: Optional[float] = None,
            min_output_sqnr_db: Optional[float] = None,
            evaluate: Optional[Callable[[bytes], float]] = None, max_drop: Optional[float] = None,
            fallback: "Fallback | str" = Fallback.AUTO, threads: int = 1,
            per_channel: bool = True, ranker: "Ranker | str" = Ranker.QUANTUNE,
            random_state: int = 0, max_samples: int = dataset_lib.DEFAULT_MAX_SAMPLES,
            verbose: bool = False, gpu_compatible: bool = False,
            custom_op_registerers: Sequence = ()) -> Result:
  """Mixed-precision TFLite model from a float model and unlabelled samples (QuantuneV2).

  Calibrates once, measures every layer's sensitivity from one float and one int8 pass, then gives
  each node the cheapest precision (static int8, dynamic_int8 or float) for the output noise it
  removes, within one budget (see `Analysis.quantize`).

  Args:
    model: a Keras model, a float .tflite (path or bytes) or a SavedModel folder (see `analyze`).
    representative_dataset: see `analyze`.
    ratio: share of MACs in static int8 (default 0.9 when no other budget is given); 1.0 is the
      plain full-int8 model, 0.0 the float model.
    max_latency, max_size, min_output_sqnr_db, max_drop, evaluate: the other budgets (one at a
      time), see `Analysis.quantize`.
    fallback: 'auto' (default), 'dynamic_int8' or 'float'.
    threads: XNNPACK threads latency is measured at.
    per_channel: per-output-channel weight scales (default) or per-tensor, for static int8.
    ranker: with fallback='float' and a ratio, the sensitivity order (`tfq_mixed.Ranker`).
    random_state: seed of the 'random' ranker.
    max_samples: read at most this many samples.
    verbose: show progress bars.
    gpu_compatible: a model for the TFLite GPU delegate (see `Analysis.quantize`).
    custom_op_registerers: see `analyze`.

  Returns:
    A `Result`: `.tflite`, `.int8_mac_ratio`, `.layer_precisions`, `.config`, `.save(directory)`.

  Raises:
    InvalidArgumentError, InvalidTypeError: a bad budget (two at once, out of range), unknown
      `ranker` or `fallback` (the message lists the valid ones); other bad arguments. Checked before
      any work.
    DatasetError, UnsupportedModelError, ConversionError: as for `analyze`.
    ProfileError: LiteRT's profiler failed (latency budgets need it).

  Example:
    >>> result = tfq_mixed.convert(model, images[:200], max_latency=1.1)
    >>> result.save("out/")
  """
  # Every option is checked before any calibration work.
  check_budget(ratio, max_latency, max_size, min_output_sqnr_db, max_drop)
  Fallback.parse(fallback)
  if not isinstance(ranker, (list, tuple)):
    Ranker.parse(ranker)
  check_random_state(random_state)
  check_bool(gpu_compatible, "gpu_compatible")
  check_positive_int(threads, "threads")
  analysis = analyze(model, representative_dataset, per_channel=per_channel,
                     max_samples=max_samples, verbose=verbose,
                     custom_op_registerers=custom_op_registerers)
  return analysis.quantize(ratio, ranker, max_latency=max_latency, max_size=max_size,
                           min_output_sqnr_db=min_output_sqnr_db, evaluate=evaluate,
                           max_drop=max_drop, fallback=fallback, threads=threads,
                           random_state=random_state, gpu_compatible=gpu_compatible)


def apply_config(model, representative_dataset, config: Any, *, verbose: bool = False,
                 custom_op_registerers: Sequence = ()) -> Result:
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
  source = sources.load(model, custom_op_registerers)
  config_lib.check_matches(source.layers, config)
  options = _options(config.options.get("per_channel", True),
                     config.options.get("max_samples", dataset_lib.DEFAULT_MAX_SAMPLES))
  samples = dataset_lib.load_samples(representative_dataset, source.input_specs(),
                                     options.max_samples)
  calibration = source.calibrate(samples, per_channel=options.per_channel, verbose=verbose)
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
      float_nodes=config.float_nodes, float_macs=0, total_macs=0,
      dynamic_nodes=config.dynamic_nodes)
  layers = metrics or tuple(LayerStats(index=i, name=name, layer_type=kind, node=None, macs=0)
                            for i, (name, kind) in enumerate(config.layers))
  result = writer.write(calibration, selection, model_name=config.model_name, layers=layers,
                        ranking=(), options=config.options, num_samples=config.num_samples,
                        recorded_warnings=config.warnings, budget=config.budget)
  config_lib.check_built(config, result.config)
  return dataclasses.replace(result, config=config, layers=metrics)
