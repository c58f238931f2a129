"""Turns what users pass as a representative dataset into validated, re-iterable NumPy samples.

We need several passes over the same samples (calibration, float pass, int8 pass), so the samples are
read once, checked against the model's inputs, capped at `max_samples`, and kept in memory. A one-shot
generator is therefore fine: it is consumed exactly once, and never more than `max_samples` samples
are read from it (an endless generator works). A NumPy array of the model's dtype is used in place,
without a copy.
"""

from __future__ import annotations

import collections.abc
import dataclasses
from typing import Any

import numpy as np

from tfq_mixed import errors

DEFAULT_MAX_SAMPLES = 500
"""Default cap on calibration samples: TFLite's guidance is 100-500; more rarely changes scales."""

_ACCEPTED = ("a callable returning an iterable of input lists (the TFLiteConverter convention), an "
             "iterable or generator of input lists, a tf.data.Dataset, or a NumPy array of samples "
             "with the batch axis first")


@dataclasses.dataclass(frozen=True)
class InputSpec:
  """One model input.

  Attributes:
    name: `input_<i>`, the name of the input in the exported signature.
    shape: with the batch axis first (`None`).
    dtype: the input's dtype.
    keras_name: the Keras input's own name (e.g. 'image'); dict elements may use either name.
  """

  name: str
  shape: tuple[int | None, ...]
  dtype: np.dtype
  keras_name: str = ""

  @property
  def batch(self) -> int | None:
    """The batch size the model fixes (`keras.Input(..., batch_size=1)`), else None."""
    return self.shape[0] if self.shape and isinstance(self.shape[0], int) else None


@dataclasses.dataclass(frozen=True)
class Samples:
  """Calibration samples, one stacked array per model input (batch axis first).

  Attributes:
    arrays: per model input, an array of shape (num_samples, ...).
    fixed_batch: the batch size a model with a fixed batch axis takes (then every step feeds
      exactly that many samples, and `num_samples` is a multiple of it); None for a free batch.
  """

  arrays: tuple[np.ndarray, ...]
  fixed_batch: int | None = None

  @property
  def num_samples(self) -> int:
    return int(self.arrays[0].shape[0])

  def batches(self, batch_size: int):
    """Yields lists of per-input arrays with up to `batch_size` samples each (exactly
    `fixed_batch` for a model with a fixed batch axis)."""
    batch_size = self.fixed_batch or batch_size
    for start in range(0, self.num_samples, batch_size):
      yield [a[start:start + batch_size] for a in self.arrays]

  def tflite_generator(self):
    """A `representative_dataset` callable for TFLiteConverter: one sample at a time (a fixed
    batch at a time for a model with a fixed batch axis), in input order."""
    step = self.fixed_batch or 1

    def gen():
      for i in range(0, self.num_samples, step):
        yield [a[i:i + step] for a in self.arrays]
    return gen

  def example(self) -> list[np.ndarray]:
    """The first step's inputs: one sample, or one fixed batch."""
    return [a[:self.fixed_batch or 1] for a in self.arrays]


def model_input_specs(model) -> list[InputSpec]:
  specs = []
  for i, tensor in enumerate(model.inputs):
    specs.append(InputSpec(name=f"input_{i}", shape=tuple(tensor.shape),
                           dtype=np.dtype(getattr(tensor.dtype, "name", tensor.dtype)),
                           keras_name=str(getattr(tensor, "name", "") or "")))
  return specs


def _iterate(dataset: Any):
  """Yields raw elements of a callable / iterable / tf.data.Dataset / NumPy-array dataset."""
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
  if isinstance(dataset, (str, bytes, dict)):
    raise errors.InvalidTypeError(
        f"`representative_dataset` must be {_ACCEPTED}. Received: {type(dataset).__name__}.")
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
  if isinstance(dataset, collections.abc.Iterable):
    # A generator or list of elements: read once here, so a one-shot generator is fine.
    yield from dataset
    return
  raise errors.InvalidTypeError(
      f"`representative_dataset` must be {_ACCEPTED}. Received: {type(dataset).__name__}.")


def _per_input_arrays(dataset: Any, specs: list[InputSpec]):
  """The per-input arrays of a Keras-style `[x_a, x_b]` dataset for a multi-input model, else None.

  `model.predict([x_a, x_b])` takes one array per input; accept the same here. A list of per-sample
  elements cannot be confused with it: for a multi-input model each element would itself be a list.
  """
  if len(specs) < 2 or not isinstance(dataset, (list, tuple)) or len(dataset) != len(specs):
    return None
  if not all(isinstance(a, np.ndarray) and a.ndim == len(s.shape) for a, s in zip(dataset, specs)):
    return None
  return list(dataset)


def _describe(specs: list[InputSpec]) -> str:
  def named(s: InputSpec) -> str:  # Keras' automatic names ('keras_tensor_12') say nothing
    return f" ({s.keras_name!r})" if s.keras_name and not s.keras_name.startswith(
        "keras_tensor") else ""
  return ", ".join(f"{s.name!r}{named(s)} of shape {_shape_text(s.shape)}" for s in specs)


def _shape_text(shape) -> str:
  return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def _split_element(element: Any, specs: list[InputSpec], index: int) -> list[np.ndarray]:
  """Splits one dataset element into one array per model input."""
  if isinstance(element, dict):
    if len(specs) == 1 and len(element) == 1:
      return [np.asarray(next(iter(element.values())))]
    for keys in ([s.name for s in specs], [s.keras_name for s in specs]):
      if all(k and k in element for k in keys):
        return [np.asarray(element[k]) for k in keys]
    expected = [s.name for s in specs]
    if all(s.keras_name for s in specs):
      expected_text = f"{expected} or the Keras input names {[s.keras_name for s in specs]}"
    else:
      expected_text = str(expected)
    raise errors.DatasetError(
        f"`representative_dataset` element {index} is a dict with keys {sorted(element)}; "
        f"expected keys {expected_text} (one per model input).")
  if isinstance(element, (list, tuple)):
    parts = list(element)
    if len(specs) == 1 and len(parts) == 2 and isinstance(element, tuple):
      parts = parts[:1]  # (x, y) pairs from a labelled tf.data pipeline: labels are not needed.
    if len(parts) != len(specs):
      raise errors.DatasetError(
          f"`representative_dataset` element {index} holds {len(parts)} arrays; the model has "
          f"{len(specs)} input(s). Yield one array per model input, in model.inputs order.")
    return [np.asarray(p) for p in parts]
  if len(specs) > 1:
    raise errors.DatasetError(
        f"`representative_dataset` element {index} is one {type(element).__name__}; the model "
        f"has {len(specs)} inputs ({_describe(specs)}). Yield one array per model input, in "
        "model.inputs order, e.g. `[x_a[None], x_b[None]]`.")
  return [np.asarray(element)]


def _check_array(array: np.ndarray, spec: InputSpec, index: int, whole: bool = False) -> np.ndarray:
  """Checks one element's array (or, with `whole`, a whole array of samples) against the input."""
  where = (f"`representative_dataset` (input {spec.name!r})" if whole else
           f"`representative_dataset` element {index}, input {spec.name!r}")
  expected = _shape_text((None,) + tuple(spec.shape[1:]))
  if (array.dtype == object or np.issubdtype(array.dtype, np.complexfloating) or
      not (np.issubdtype(array.dtype, np.number) or array.dtype == bool)):
    raise errors.DatasetError(
        f"{where} has dtype {array.dtype}; expected real numbers convertible to the model's input "
        f"dtype {spec.dtype}. Convert the samples, e.g. np.asarray(x, np.{spec.dtype}).")
  if array.ndim == len(spec.shape) - 1 and _shape_matches(array.shape, spec.shape[1:]):
    raise errors.DatasetError(
        f"{where} has shape {array.shape}; the model expects {expected}. Add a batch axis: "
        "x[None, ...].")
  # The batch axis holds the samples, however many: a model with a fixed batch of 1 is fed one
  # sample at a time.
  if array.ndim != len(spec.shape) or not _shape_matches(array.shape[1:], spec.shape[1:]):
    raise errors.DatasetError(
        f"{where} has shape {array.shape}; the model expects {expected}. Resize or reshape the "
        "samples to the model's input shape.")
  if np.issubdtype(array.dtype, np.floating):
    bad = _first_non_finite_sample(array)
    if bad is not None:
      raise errors.DatasetError(
          f"{where} contains NaN or Inf (sample {bad} of this array). Calibration needs finite "
          "values: clean or drop those samples, e.g. x[np.isfinite(x).all(axis=tuple(range(1, "
          "x.ndim)))].")
  if np.issubdtype(spec.dtype, np.integer) and np.issubdtype(array.dtype, np.floating):
    raise errors.DatasetError(
        f"{where} has dtype {array.dtype}; the model input is {spec.dtype}. Cast the samples.")
  return array.astype(spec.dtype, copy=False)


def _first_non_finite_sample(array: np.ndarray, chunk: int = 64):
  """Index along axis 0 of the first sample holding NaN or Inf, else None (chunked: small temps)."""
  for start in range(0, array.shape[0], chunk):
    finite = np.isfinite(array[start:start + chunk]).reshape(min(chunk, array.shape[0] - start), -1)
    rows = np.flatnonzero(~finite.all(axis=1))
    if rows.size:
      return start + int(rows[0])
  return None


def _shape_matches(shape, expected) -> bool:
  return len(shape) == len(expected) and all(e is None or s == e for s, e in zip(shape, expected))


def _check_max_samples(max_samples: Any) -> int:
  if isinstance(max_samples, (bool, np.bool_)) or not isinstance(max_samples, (int, np.integer)):
    raise errors.InvalidTypeError(
        f"`max_samples` must be a positive int. Received: max_samples={max_samples!r} of type "
        f"{type(max_samples).__name__}. The default is {DEFAULT_MAX_SAMPLES}.")
  if max_samples < 1:
    raise errors.InvalidArgumentError(
        f"`max_samples` must be a positive int. Received: max_samples={max_samples!r}. The "
        f"default is {DEFAULT_MAX_SAMPLES}.")
  return int(max_samples)


def _from_arrays(arrays: list[np.ndarray], specs: list[InputSpec], max_samples: int) -> Samples:
  """Samples from whole arrays (batch axis first), without copying when the dtype already fits."""
  checked = []
  for spec, array in zip(specs, arrays):
    array = array[:max_samples]
    if array.shape[0] == 0:
      raise errors.DatasetError(
          f"`representative_dataset` holds no samples for input {spec.name!r} (shape "
          f"{array.shape}). Pass at least one sample (100-500 unlabelled samples of real inputs "
          "is typical).")
    checked.append(_check_array(array, spec, 0, whole=True))
  if len({a.shape[0] for a in checked}) != 1:
    raise errors.DatasetError(
        f"The per-input arrays of `representative_dataset` hold different numbers of samples: "
        f"{[a.shape[0] for a in checked]}. Pass the same number of samples for every input.")
  return Samples(arrays=tuple(checked))


def load_samples(dataset: Any, specs: list[InputSpec],
                 max_samples: int = DEFAULT_MAX_SAMPLES) -> Samples:
  """Reads, validates and caps the representative dataset.

  Args:
    dataset: a callable returning an iterable of input lists (TFLiteConverter convention), an
      iterable or (one-shot) generator of input lists, a `tf.data.Dataset` of batched elements, a
      NumPy array of samples (batch axis first), or for a multi-input model a list of such arrays,
      one per input.
    specs: the model's inputs.
    max_samples: stop reading after this many samples (default 500); the rest of the dataset is
      never read.

  Returns:
    `Samples` holding at most `max_samples` samples.

  Raises:
    DatasetError: empty dataset, wrong shape/rank/dtype, NaN or Inf, samples of different shapes.
    InvalidTypeError: a dataset of a type we cannot read.
  """
  max_samples = _check_max_samples(max_samples)
  return _with_fixed_batch(_load(dataset, specs, max_samples), specs)


def _with_fixed_batch(samples: Samples, specs: list[InputSpec]) -> Samples:
  """`samples` for a model whose inputs fix the batch size: whole batches only."""
  batch = next((s.batch for s in specs if s.batch is not None), None)
  if batch is None:
    return samples
  if samples.num_samples < batch:
    raise errors.DatasetError(
        f"The model fixes its batch size to {batch} (its keras.Input has batch_size={batch}), so "
        f"it takes samples {batch} at a time; `representative_dataset` holds "
        f"{samples.num_samples}. Pass at least {batch} samples.")
  keep = samples.num_samples - samples.num_samples % batch  # whole batches only
  return Samples(arrays=tuple(a[:keep] for a in samples.arrays), fixed_batch=batch)


def _load(dataset: Any, specs: list[InputSpec], max_samples: int) -> Samples:
  if len(specs) > 1 and isinstance(dataset, np.ndarray):
    raise errors.DatasetError(
        f"The model has {len(specs)} inputs ({_describe(specs)}); `representative_dataset` is "
        f"one array of shape {dataset.shape}. Pass a list of {len(specs)} arrays, one per input "
        f"in model.inputs order ([x_0, x_1{', ...' if len(specs) > 2 else ''}]), or a callable "
        "yielding one list of arrays per sample.")
  if isinstance(dataset, np.ndarray) and dataset.ndim > 0:
    return _from_arrays([dataset], specs, max_samples)
  arrays = _per_input_arrays(dataset, specs)
  if arrays is not None:
    return _from_arrays(arrays, specs, max_samples)
  per_input: list[list[np.ndarray]] = [[] for _ in specs]
  count = 0
  for index, element in enumerate(_iterate(dataset)):
    arrays = [_check_array(a, s, index) for a, s in zip(_split_element(element, specs, index), specs)]
    batch = arrays[0].shape[0]
    if any(a.shape[0] != batch for a in arrays):
      raise errors.DatasetError(
          f"`representative_dataset` element {index} has different batch sizes per input: "
          f"{[a.shape[0] for a in arrays]}. Yield the same number of samples for every input.")
    for store, a, spec in zip(per_input, arrays, specs):
      if store and store[0].shape[1:] != a.shape[1:]:
        raise errors.DatasetError(
            f"`representative_dataset` element {index}, input {spec.name!r} has sample shape "
            f"{a.shape[1:]}, but element 0 has {store[0].shape[1:]}. All samples must share one "
            "shape: resize them to a common size.")
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
