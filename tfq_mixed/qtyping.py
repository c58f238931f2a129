"""Enums and frozen dataclasses shared by the pipeline steps."""

from __future__ import annotations

import dataclasses
import enum
import math
import numbers
from typing import Any, Optional

import numpy as np

from tfq_mixed import errors

# Bits of weights x activations per MAC, for BOPs (QuantuneV2, Eq. 17).
INT8_BITS_PER_MAC = 8 * 8
FLOAT_BITS_PER_MAC = 32 * 32


class Ranker(str, enum.Enum):
  """Sensitivity orders a float MAC budget can be filled with (most sensitive first)."""

  QUANTUNE = "quantune"
  QUANTUNE_PAPER = "quantune_paper"
  WEIGHT_SQNR = "weight_sqnr"
  IN_ORDER = "in_order"
  RANDOM = "random"
  ACTIVATION_SQNR = "activation_sqnr"
  WEIGHT_SQNR_DELTA = "weight_sqnr_delta"
  MSE = "mse"

  @classmethod
  def parse(cls, value: "Ranker | str") -> "Ranker":
    if isinstance(value, Ranker):
      return value
    if not isinstance(value, str):
      raise errors.InvalidTypeError(
          f"`ranker` must be a string. Received: ranker={value!r} of type {type(value).__name__}. "
          f"Expected one of: {', '.join(repr(r.value) for r in cls)}.")
    return _member(cls, value, "ranker")


def _member(cls, value, what: str):
  """`cls(value)`, or an InvalidArgumentError naming `what` and the values it accepts."""
  try:
    return cls(value)
  except ValueError:
    raise errors.InvalidArgumentError(
        f"Unknown {what} {value!r}. Expected one of: "
        f"{', '.join(repr(m.value) for m in cls)}.") from None


class SourceKind(str, enum.Enum):
  """What the float model was given as (`sources.load`)."""

  KERAS = "keras"  # a keras.Model: layers are the flattened layer calls
  TFLITE = "tflite"  # a float .tflite: layers are its ops
  SAVED_MODEL = "saved_model"  # a SavedModel, converted to a float .tflite first


class Precision(str, enum.Enum):
  """What a TFLite op computes in (read from the built model, see `precisions`)."""

  INT8 = "int8"  # static: int8 weights and int8 activations, scales from the calibration
  DYNAMIC_INT8 = "dynamic_int8"  # int8 weights, float activations quantized at run time
  FLOAT = "float"  # float32


class Fallback(str, enum.Enum):
  """What a node kept out of static int8 runs in instead (`Analysis.quantize(fallback=...)`)."""

  AUTO = "auto"  # the cheaper of dynamic_int8 and float for the output noise it removes
  DYNAMIC_INT8 = "dynamic_int8"  # dynamic_int8 where the op has a hybrid kernel, else float
  FLOAT = "float"  # float32 only: the selection before the ladder, byte for byte

  @classmethod
  def parse(cls, value: "Fallback | str") -> "Fallback":
    return _member(cls, value, "fallback")


class BudgetKind(str, enum.Enum):
  """What one `quantize` call is bounded by (exactly one applies)."""

  RATIO = "ratio"  # share of MACs in static int8, at least
  MAX_LATENCY = "max_latency"  # predicted XNNPACK latency / full int8's, at most
  MAX_SIZE = "max_size"  # predicted .tflite bytes / full int8's, at most
  MIN_OUTPUT_SQNR_DB = "min_output_sqnr_db"  # the cheapest model reaching this output SQNR
  MAX_DROP = "max_drop"  # the cheapest model whose `evaluate` score is within this of float's


@dataclasses.dataclass(frozen=True)
class Budget:
  """The one budget of a `quantize` call, checked (`check_budget`)."""

  kind: BudgetKind
  value: float


def _positive_number(value: Any, name: str, hint: str) -> float:
  if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or getattr(
      value, "ndim", 0) != 0:
    raise errors.InvalidTypeError(
        f"`{name}` must be a number. Received: {name}={value!r} of type {type(value).__name__}. "
        f"{hint}")
  value = float(value)
  if not math.isfinite(value) or value <= 0:
    raise errors.InvalidArgumentError(f"`{name}` must be a positive number. Received: "
                                      f"{name}={value!r}. {hint}")
  return value


def check_budget(ratio: Any = None, max_latency: Any = None, max_size: Any = None,
                 min_output_sqnr_db: Any = None, max_drop: Any = None,
                 default_ratio: float = 0.9) -> Budget:
  """The one budget given (`ratio` at `default_ratio` when none is), checked.

  Raises:
    InvalidArgumentError: two budgets at once, or a value out of range.
    InvalidTypeError: a budget that is not a number.
  """
  given = {k: v for k, v in (("ratio", ratio), ("max_latency", max_latency),
                             ("max_size", max_size), ("min_output_sqnr_db", min_output_sqnr_db),
                             ("max_drop", max_drop)) if v is not None}
  if len(given) > 1:
    raise errors.InvalidArgumentError(
        f"Exactly one budget applies; received {len(given)}: "
        f"{', '.join(f'{k}={v!r}' for k, v in given.items())}. Pass one of `ratio` (MACs in "
        "int8), `max_latency`, `max_size`, `min_output_sqnr_db` or `max_drop` (with `evaluate`).")
  if not given:
    return Budget(BudgetKind.RATIO, check_ratio(default_ratio))
  (name, value), = given.items()
  if name == "ratio":
    return Budget(BudgetKind.RATIO, check_ratio(value))
  if name == "min_output_sqnr_db":
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
      raise errors.InvalidTypeError(
          f"`min_output_sqnr_db` must be a number of dB. Received: {value!r}.")
    if not math.isfinite(float(value)):
      raise errors.InvalidArgumentError(
          f"`min_output_sqnr_db` must be finite. Received: min_output_sqnr_db={value!r}.")
    return Budget(BudgetKind.MIN_OUTPUT_SQNR_DB, float(value))
  if name == "max_drop":
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not (
        math.isfinite(float(value)) and float(value) >= 0):
      raise errors.InvalidArgumentError(
          f"`max_drop` must be a number >= 0 (in the units of your `evaluate` score). Received: "
          f"max_drop={value!r}.")
    return Budget(BudgetKind.MAX_DROP, float(value))
  hint = ("A multiple of the full-int8 model's " +
          ("latency, e.g. 1.05." if name == "max_latency" else "file size, e.g. 1.1."))
  return Budget(BudgetKind(name), _positive_number(value, name, hint))


def check_ratio(ratio: Any) -> float:
  """Validates the int8 MAC ratio (QuantuneV2 Eq. 17 as a share of MACs) and returns it as float.

  Python and NumPy real scalars are accepted; bools, strings, arrays, NaN and values outside
  [0, 1] are not.
  """
  if (isinstance(ratio, (bool, np.bool_)) or not isinstance(ratio, numbers.Real) or
      getattr(ratio, "ndim", 0) != 0):
    raise errors.InvalidTypeError(
        f"`ratio` must be a float in [0.0, 1.0]. Received: ratio={ratio!r} of type "
        f"{type(ratio).__name__}. Pass a fraction, e.g. 0.9 for 90% of MACs in int8.")
  value = float(ratio)
  if math.isnan(value) or not 0.0 <= value <= 1.0:
    hint = (f" A percentage? Pass {value / 100:g} for {value:g}%." if 1.0 < value <= 100.0 and value.is_integer() else
            " Pass a fraction, e.g. 0.9 for 90% of MACs in int8.")
    raise errors.InvalidArgumentError(
        f"`ratio` must be a float in [0.0, 1.0]. Received: ratio={ratio!r}.{hint}")
  return value


def check_positive_int(value: Any, name: str) -> int:
  """Validates a count argument (`batch_size`, `max_samples`): a Python or NumPy int >= 1."""
  if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
    raise errors.InvalidTypeError(
        f"`{name}` must be a positive int. Received: {name}={value!r} of type "
        f"{type(value).__name__}.")
  if value < 1:
    raise errors.InvalidArgumentError(f"`{name}` must be a positive int. Received: {name}={value!r}.")
  return int(value)


def check_bool(value: Any, name: str) -> bool:
  """Validates a flag argument (`gpu_compatible`): a Python or NumPy bool."""
  if not isinstance(value, (bool, np.bool_)):
    raise errors.InvalidTypeError(
        f"`{name}` must be a bool. Received: {name}={value!r} of type {type(value).__name__}.")
  return bool(value)


def check_random_state(random_state: Any) -> int:
  """Validates the seed of the 'random' ranker: a non-negative Python or NumPy int."""
  if isinstance(random_state, (bool, np.bool_)) or not isinstance(random_state, numbers.Integral):
    raise errors.InvalidTypeError(
        f"`random_state` must be a non-negative int seed. Received: random_state={random_state!r} "
        f"of type {type(random_state).__name__}. Pass e.g. random_state=0.")
  if random_state < 0:
    raise errors.InvalidArgumentError(
        f"`random_state` must be a non-negative int seed. Received: random_state={random_state!r}. "
        "Pass e.g. random_state=0.")
  return int(random_state)


@dataclasses.dataclass(frozen=True)
class LayerRef:
  """One call of a Keras layer in the flattened model, in topological order.

  Attributes:
    index: position in the flattened execution order.
    name: layer name, prefixed by its enclosing models' names for nested models
      (`block/conv`); a shared layer's later calls get `@1`, `@2`, ...
    layer_type: Keras class name, e.g. `Conv2D`.
  """

  index: int
  name: str
  layer_type: str


@dataclasses.dataclass(frozen=True)
class Node:
  """One op of the TFLite graph (fused: Conv+BN+ReLU is one node).

  Attributes:
    index: op index in the calibrated (float) TFLite model.
    name: the op's output tensor name there; what `denylisted_nodes` matches.
    op_type: TFLite builtin name, e.g. `CONV_2D`.
    layers: names of the Keras layers the op contains, in execution order.
    macs: multiply-accumulates per sample (0 for non-compute ops).
  """

  index: int
  name: str
  op_type: str
  layers: tuple[str, ...]
  macs: int

  @property
  def is_compute(self) -> bool:
    return self.macs > 0


@dataclasses.dataclass(frozen=True)
class LayerStats:
  """Local metrics of one Keras layer (QuantuneV2 Sec. 6.1, Eq. 6-9 and 16).

  Metrics that do not apply are NaN: weight metrics for layers without a kernel, activation metrics
  for layers whose output is internal to a fused TFLite node (e.g. the Conv of Conv+BN+ReLU).

  Attributes:
    index, name, layer_type: as in `LayerRef`.
    node: index of the TFLite node holding this layer, or None if no op maps to it.
    macs: MACs per sample of the layer's compute op (0 for others).
    weight_sqnr_db: SQNR of the Keras kernel quantized as TFLite does (symmetric int8).
    fused_weight_sqnr_db: SQNR of the TFLite node's folded (BN-fused) weights vs its int8 weights.
    channel_weight_sqnr_db: the same weights' noise per output channel, relative to that channel's
      power and averaged over channels, in dB: -10 log10(mean_c |dW_c|^2 / |W_c|^2). Per-tensor
      scales starve small channels (depthwise convs), which the whole-tensor SQNR hides.
    dynamic_weight_sqnr_db: SQNR of the same folded weights quantized as the dynamic-range kernels
      store them (int8, per output channel, whatever the static mode): how much weight noise a
      dynamic_int8 node keeps.
    op_sqnr_db: SQNR of the node's int8 output vs the same op run in float on the same
      (dequantized int8) inputs: the noise this node adds by itself, not what it inherits
      (TFLite's layer-wise NumericVerify, as the QuantizationDebugger measures it). On the layer
      whose output the node produces.
    op_error_lsb: the same error, RMS, in steps of the node's int8 output (per-tensor scale): the
      TFLite QuantizationDebugger's "RMSE / scale". Rounding alone gives 1/sqrt(12) = 0.29.
    output_noise_share: share of the model output's quantization noise that keeping this layer's
      compute node float removes: its own noise carried to the output by the gains measured
      between the two passes (`propagation`). On the layer with the node's op metrics.
    weight_sqnr_delta: Eq. 16 over the weight SQNR series.
    activation_sqnr_db: SQNR of the float layer output vs the dequantized int8 TFLite tensor.
    activation_sqnr_delta: Eq. 16 over the activation SQNR series.
    mse: mean squared error of the activation (Eq. 7).
    cosine_similarity: Eq. 8, over the whole calibration set.
    kl_divergence: Eq. 9, between int8-level histograms of the float and int8 activations.
  """

  index: int
  name: str
  layer_type: str
  node: Optional[int]
  macs: int
  weight_sqnr_db: float = math.nan
  fused_weight_sqnr_db: float = math.nan
  channel_weight_sqnr_db: float = math.nan
  dynamic_weight_sqnr_db: float = math.nan
  op_sqnr_db: float = math.nan
  op_error_lsb: float = math.nan
  output_noise_share: float = math.nan
  weight_sqnr_delta: float = math.nan
  activation_sqnr_db: float = math.nan
  activation_sqnr_delta: float = math.nan
  mse: float = math.nan
  cosine_similarity: float = math.nan
  kl_divergence: float = math.nan

  METRIC_FIELDS = ("weight_sqnr_db", "fused_weight_sqnr_db", "weight_sqnr_delta",
                   "activation_sqnr_db", "activation_sqnr_delta", "mse",
                   "cosine_similarity", "kl_divergence", "channel_weight_sqnr_db", "op_sqnr_db",
                   "op_error_lsb", "output_noise_share", "dynamic_weight_sqnr_db")

  def to_dict(self) -> dict[str, Any]:
    out = dataclasses.asdict(self)
    for key in self.METRIC_FIELDS:
      value = out[key]
      out[key] = None if math.isnan(value) else round(float(value), 6)
    return out


@dataclasses.dataclass(frozen=True)
class Selection:
  """The fused nodes kept in float for one MAC budget (QuantuneV2 Eq. 17).

  Attributes:
    float_layers: Keras layer names kept float, most sensitive first (every layer of each float node).
    float_nodes: TFLite node names kept float (the `denylisted_nodes`), in selection order.
    float_macs, total_macs: MACs per sample kept float / of all compute ops; `float_macs` includes
      the nodes TFLite cannot run in int8.
    int8_unsupported_nodes: TFLite node names the int8 model leaves float whatever we choose (no
      int8 kernel); not denylisted, but their MACs count as float.
    dynamic_nodes: the float nodes then made dynamic-range (`hybrid`): int8 weights, float
      activations quantized at run time; a subset of `float_nodes`.
  """

  float_layers: tuple[str, ...]
  float_nodes: tuple[str, ...]
  float_macs: int
  total_macs: int
  int8_unsupported_nodes: tuple[str, ...] = ()
  dynamic_nodes: tuple[str, ...] = ()

  @property
  def int8_mac_ratio(self) -> float:
    if self.total_macs == 0:
      return 1.0
    return 1.0 - self.float_macs / self.total_macs

  @property
  def bops(self) -> int:
    """BOPs(theta) of QuantuneV2 Eq. 17 (weight bits x activation bits x MACs)."""
    int8_macs = self.total_macs - self.float_macs
    return int8_macs * INT8_BITS_PER_MAC + self.float_macs * FLOAT_BITS_PER_MAC

  @property
  def bops_reduction(self) -> float:
    """BOPs reduction rate of QuantuneV2 Eq. 17, as a fraction of the float32 model's BOPs."""
    if self.total_macs == 0:
      return 0.0
    return 1.0 - self.bops / (self.total_macs * FLOAT_BITS_PER_MAC)
