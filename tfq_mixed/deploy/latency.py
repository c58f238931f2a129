"""On-device speed of TFLite models: median XNNPACK latency, measured side by side.

LiteRT's default op resolver applies the XNNPACK delegate to float and int8 ops alike, so this is the
latency a phone CPU would see (relative figures carry over; absolute ones depend on the machine).
The models are timed round-robin, one invoke of each per round after a warm-up, so that a slowdown of
a shared machine hits every model alike and the ratios between them stay meaningful.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from typing import Optional, Sequence

import numpy as np

from tfq_mixed import _tflite_private
from tfq_mixed import errors
from tfq_mixed.progress import Progress


@dataclasses.dataclass(frozen=True)
class Latency:
  """Timing of one model.

  Attributes:
    name: label of the model (e.g. its file name).
    median_ms, min_ms, mean_ms: per invoke, batch 1, in milliseconds.
    runs: timed invokes (after `warmup` untimed ones).
    threads: interpreter threads.
    size_bytes: flatbuffer size.
  """

  name: str
  median_ms: float
  min_ms: float
  mean_ms: float
  runs: int
  warmup: int
  threads: int
  size_bytes: int

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)


def float_tflite(keras_model) -> bytes:
  """The plain float32 TFLite model of `keras_model`, the baseline for latency and agreement."""
  import tempfile  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tfq_mixed import model_graph  # pylint: disable=g-import-not-at-top
  try:
    with tempfile.TemporaryDirectory(prefix="tfq_mixed_float_") as directory, \
         model_graph.tf_safe_names(model_graph.layer_objects(keras_model)):
      # Export quietly: TFLiteConverter.from_keras_model prints the whole signature.
      keras_model.export(directory, format="tf_saved_model", verbose=False)
      return tf.lite.TFLiteConverter.from_saved_model(directory).convert()
  except Exception as e:  # pylint: disable=broad-except
    raise errors.ConversionError(f"TensorFlow Lite could not convert {keras_model.name!r} to a float "
                                 f"model: {e}") from e


def dynamic_range_tflite(keras_model) -> bytes:
  """TFLite's dynamic-range model of `keras_model` (`Optimize.DEFAULT` without data: int8
  per-channel weights, float activations), what Google recommends for CPU without calibration."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tfq_mixed import _native_output, model_graph  # pylint: disable=g-import-not-at-top
  log: list = []
  try:
    with model_graph.tf_safe_names(model_graph.layer_objects(keras_model)), \
         _native_output.captured(log):
      converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
      converter.optimizations = [tf.lite.Optimize.DEFAULT]
      return converter.convert()
  except Exception as e:  # pylint: disable=broad-except
    raise errors.ConversionError(f"TensorFlow Lite could not convert {keras_model.name!r} to a "
                                 f"dynamic-range model: {e}") from e


def _feed(interpreter, inputs: Optional[Sequence[np.ndarray]], rng: np.random.Generator) -> None:
  for i, detail in enumerate(interpreter.get_input_details()):
    shape = [1 if d < 0 else int(d) for d in detail["shape_signature"]] or [1]
    if list(detail["shape"]) != shape:
      interpreter.resize_tensor_input(detail["index"], shape)
  interpreter.allocate_tensors()
  for i, detail in enumerate(interpreter.get_input_details()):
    if inputs is not None:  # one sample (or the batch the model fixes)
      value = np.asarray(inputs[i])[:detail["shape"][0]].astype(detail["dtype"])
    elif np.issubdtype(detail["dtype"], np.floating):
      value = rng.standard_normal(detail["shape"]).astype(detail["dtype"])
    else:
      value = rng.integers(0, 2, detail["shape"]).astype(detail["dtype"])
    interpreter.set_tensor(detail["index"], value)


def compare(models: dict[str, bytes], *, threads: int = 1, runs: int = 50, warmup: int = 5,
            inputs: Optional[Sequence[np.ndarray]] = None, verbose: bool = False) -> list[Latency]:
  """Median XNNPACK latency of each model, timed round-robin.

  Args:
    models: name -> TFLite flatbuffer; all should take the same inputs.
    threads: interpreter threads (XNNPACK's thread pool).
    runs: timed invokes per model; the median is reported.
    warmup: untimed invokes per model first (XNNPACK packs weights on the first run).
    inputs: one array per model input (the first sample is used); random normal data if None.
    verbose: show a progress bar.

  Returns:
    One `Latency` per model, in the given order.
  """
  if not models:
    raise errors.InvalidArgumentError("`models` is empty. Pass at least one TFLite model to time.")
  for key, value in (("threads", threads), ("runs", runs)):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
      raise errors.InvalidArgumentError(f"`{key}` must be a positive int. Received: {key}={value!r}.")
  if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
    raise errors.InvalidArgumentError(f"`warmup` must be an int >= 0. Received: warmup={warmup!r}.")
  rng = np.random.default_rng(0)
  interpreters = {}
  for name, model in models.items():
    try:
      interpreter = _tflite_private.make_interpreter(model, num_threads=threads)
    except (ValueError, RuntimeError) as e:
      raise errors.InvalidArgumentError(f"{name!r} is not a TFLite model LiteRT can load: {e}") from e
    _feed(interpreter, inputs, rng)
    interpreters[name] = interpreter
  times: dict[str, list[float]] = {name: [] for name in models}
  with Progress(warmup + runs, "timing (XNNPACK)", enabled=verbose) as bar:
    for round_index in range(warmup + runs):
      for name, interpreter in interpreters.items():
        start = time.perf_counter()
        interpreter.invoke()
        if round_index >= warmup:
          times[name].append(1e3 * (time.perf_counter() - start))
      bar.update()
  return [Latency(name=name, median_ms=statistics.median(times[name]), min_ms=min(times[name]),
                  mean_ms=statistics.fmean(times[name]), runs=runs, warmup=warmup, threads=threads,
                  size_bytes=len(models[name])) for name in models]


def render(latencies: Sequence[Latency]) -> str:
  """A table of medians, sizes, and each model's speed relative to the first one."""
  base = latencies[0]
  width = max(12, *(len(l.name) for l in latencies))
  lines = [f"{'model':<{width}} {'median ms':>10} {'min ms':>8} {'size MB':>8} "
           f"{'latency / ' + base.name[:20]:>24}",
           "-" * (width + 54)]
  for l in latencies:
    lines.append(f"{l.name:<{width}} {l.median_ms:>10.3f} {l.min_ms:>8.3f} "
                 f"{l.size_bytes / 1e6:>8.3f} {l.median_ms / base.median_ms:>24.3f}")
  lines.append(f"XNNPACK, {base.threads} thread(s), median of {base.runs} runs after "
               f"{base.warmup} warm-up runs, batch 1")
  return "\n".join(lines)
