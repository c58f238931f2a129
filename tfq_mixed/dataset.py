"""Turns what users pass as a representative dataset into validated, re-iterable NumPy samples.

We need several passes over the same samples (calibration, float pass, int8 pass), so the samples are
read once, checked against the model's inputs, capped at `max_samples`, and kept in memory.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np

from tfq_mixed import errors

DEFAULT_MAX_SAMPLES = 500
"""Default cap on calibration samples: TFLite's guidance is 100-500; more rarely changes scales."""


@dataclasses.dataclass(frozen=True)
class InputSpec:
  name: str
  shape: tuple[int | None, ...]  # with the batch axis first
  dtype: np.dtype


@dataclasses.dataclass(frozen=True)
class Samples:
  """Calibration samples, one stacked array per model input (batch axis first).

  Attributes:
    arrays: per model input, an array of shape (num_samples, ...).
  """

  arrays: tuple[np.ndarray, ...]

  @property
  def num_samples(self) -> int:
    return int(self.arrays[0].shape[0])

  def batches(self, batch_size: int):
    """Yields lists of per-input arrays with up to `batch_size` samples each."""
    for start in range(0, self.num_samples, batch_size):
      yield [a[start:start + batch_size] for a in self.arrays]

  def tflite_generator(self, input_names: Sequence[str]):
    """A `representative_dataset` callable for TFLiteConverter: one sample at a time, keyed by name."""
    def gen():
      for i in range(self.num_samples):
        yield {name: a[i:i + 1] for name, a in zip(input_names, self.arrays)}
    return gen


def model_input_specs(model) -> list[InputSpec]:
  specs = []
  for i, tensor in enumerate(model.inputs):
    specs.append(InputSpec(name=f"input_{i}", shape=tuple(tensor.shape),
                           dtype=np.dtype(getattr(tensor.dtype, "name", tensor.dtype))))
  return specs


def _iterate(dataset: Any):
  """Yields raw elements of a callable / tf.data.Dataset / NumPy-array dataset."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if isinstance(dataset, (np.ndarray, tf.Tensor)):
    array = np.asarray(dataset)
    if array.ndim == 0:
      raise errors.DatasetError(
          "`representative_dataset` is a scalar. Expected a NumPy array of samples with the batch "
          "axis first, e.g. shape (100, 224, 224, 3).")
    for i in range(array.shape[0]):
      yield array[i:i + 1]
    return
  if isinstance(dataset, tf.data.Dataset):
    yield from dataset.as_numpy_iterator()
    return
  if callable(dataset):
    iterable = dataset()
    try:
      iterator = iter(iterable)
    except TypeError:
      raise errors.DatasetError(
          f"`representative_dataset()` returned {type(iterable).__name__}, which is not iterable. "
          "Expected a callable returning an iterable of input lists, e.g. "
          "`def rep(): for x in samples: yield [x[None]]`.") from None
    yield from iterator
    return
  raise errors.InvalidTypeError(
      f"`representative_dataset` must be a callable returning an iterable of input lists (the "
      f"TFLiteConverter convention), a tf.data.Dataset, or a NumPy array of samples. Received: "
      f"{type(dataset).__name__}.")


def _split_element(element: Any, specs: list[InputSpec], index: int) -> list[np.ndarray]:
  """Splits one dataset element into one array per model input."""
  if isinstance(element, dict):
    if len(specs) == 1 and len(element) == 1:
      return [np.asarray(next(iter(element.values())))]
    missing = [s.name for s in specs if s.name not in element]
    if missing:
      raise errors.DatasetError(
          f"`representative_dataset` element {index} is a dict with keys {sorted(element)}; "
          f"expected keys {[s.name for s in specs]} (one per model input, in model.inputs order).")
    return [np.asarray(element[s.name]) for s in specs]
  if isinstance(element, (list, tuple)):
    parts = list(element)
    if len(specs) == 1 and len(parts) == 2 and isinstance(element, tuple):
      parts = parts[:1]  # (x, y) pairs from a labelled tf.data pipeline: labels are not needed.
    if len(parts) != len(specs):
      raise errors.DatasetError(
          f"`representative_dataset` element {index} holds {len(parts)} arrays; the model has "
          f"{len(specs)} input(s). Yield one array per model input, in model.inputs order.")
    return [np.asarray(p) for p in parts]
  return [np.asarray(element)]


def _check_array(array: np.ndarray, spec: InputSpec, index: int) -> np.ndarray:
  where = f"`representative_dataset` element {index}, input {spec.name!r}"
  expected = "(" + ", ".join("None" if d is None else str(d) for d in spec.shape) + ")"
  if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
    raise errors.DatasetError(
        f"{where} has dtype {array.dtype}; expected numbers convertible to {spec.dtype}.")
  if array.ndim == len(spec.shape) - 1 and _shape_matches((None,) + array.shape, spec.shape):
    raise errors.DatasetError(
        f"{where} has shape {array.shape}; the model expects {expected}. Add a batch axis: "
        "x[None, ...].")
  if array.ndim != len(spec.shape) or not _shape_matches(array.shape, spec.shape):
    raise errors.DatasetError(
        f"{where} has shape {array.shape}; the model expects {expected}. Resize or reshape the "
        "samples to the model's input shape.")
  if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
    raise errors.DatasetError(
        f"{where} contains NaN or Inf. Calibration needs finite values: clean or drop those "
        "samples.")
  if np.issubdtype(spec.dtype, np.integer) and np.issubdtype(array.dtype, np.floating):
    raise errors.DatasetError(
        f"{where} has dtype {array.dtype}; the model input is {spec.dtype}. Cast the samples.")
  return array.astype(spec.dtype, copy=False)


def _shape_matches(shape, expected) -> bool:
  return len(shape) == len(expected) and all(e is None or s == e for s, e in zip(shape, expected))


def load_samples(dataset: Any, specs: list[InputSpec],
                 max_samples: int = DEFAULT_MAX_SAMPLES) -> Samples:
  """Reads, validates and caps the representative dataset.

  Args:
    dataset: a callable returning an iterable of input lists (TFLiteConverter convention), a
      `tf.data.Dataset` of batched elements, or a NumPy array of samples (batch axis first).
    specs: the model's inputs.
    max_samples: stop reading after this many samples.

  Returns:
    `Samples` holding at most `max_samples` samples.

  Raises:
    DatasetError: empty dataset, wrong shape/rank/dtype, NaN or Inf.
  """
  if isinstance(max_samples, bool) or not isinstance(max_samples, int) or max_samples < 1:
    raise errors.InvalidArgumentError(
        f"`max_samples` must be a positive int. Received: max_samples={max_samples!r}.")
  per_input: list[list[np.ndarray]] = [[] for _ in specs]
  count = 0
  for index, element in enumerate(_iterate(dataset)):
    arrays = [_check_array(a, s, index) for a, s in zip(_split_element(element, specs, index), specs)]
    batch = arrays[0].shape[0]
    if any(a.shape[0] != batch for a in arrays):
      raise errors.DatasetError(
          f"`representative_dataset` element {index} has different batch sizes per input: "
          f"{[a.shape[0] for a in arrays]}.")
    take = min(batch, max_samples - count)
    for store, a in zip(per_input, arrays):
      store.append(a[:take])
    count += take
    if count >= max_samples:
      break
  if count == 0:
    raise errors.DatasetError(
        "`representative_dataset` yielded no samples. Pass at least one sample (100-500 "
        "unlabelled samples of real inputs is typical). If it is a generator function, make sure "
        "it yields rather than returns, and that its source is not exhausted.")
  return Samples(arrays=tuple(np.concatenate(store, axis=0) for store in per_input))
