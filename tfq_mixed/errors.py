"""Exception types raised by tfq_mixed.

Every error a user can trigger is a `TfqMixedError`, so callers can catch one type. The concrete classes
also derive from the matching builtin (`ValueError`, `TypeError`, `RuntimeError`, `OSError`) so code
written against the builtins keeps working.
"""


class TfqMixedError(Exception):
  """Base class of every error tfq_mixed raises on purpose."""


class InvalidArgumentError(TfqMixedError, ValueError):
  """An argument has the right type but a value we cannot use."""


class InvalidTypeError(TfqMixedError, TypeError):
  """An argument has a type we do not accept."""


class DatasetError(InvalidArgumentError):
  """The representative dataset is empty, malformed or does not fit the model."""


class UnsupportedModelError(InvalidArgumentError):
  """The Keras model cannot be analysed (e.g. subclassed without a functional graph)."""


class ConfigError(InvalidArgumentError):
  """A selective-quantization config is corrupted, too new, or belongs to another model."""


class ConversionError(TfqMixedError, RuntimeError):
  """TensorFlow Lite failed to convert or quantize the model."""


class ProfileError(TfqMixedError, RuntimeError):
  """LiteRT's per-op profiler, which latency budgets need, could not measure the model."""


class OutputError(TfqMixedError, OSError):
  """Results could not be written (folder not writable, file exists, disk full)."""


class BudgetWarning(UserWarning):
  """A requested budget cannot be met (e.g. more MACs must run in float than it allows); the model
  is built as close to it as it can be, and the config and report say so."""
