"""Local metrics of QuantuneV2 (Sec. 6.1, Eq. 6-9) and the SQNR delta (Eq. 16).

Argument order is always `(reference, quantized)`. Every function returns a finite float for finite
input: SQNR is clipped to +/- `SQNR_CAP_DB` (identical tensors give +cap, an all-zero reference with
noise gives -cap, two all-zero tensors give +cap).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional, Sequence

import numpy as np

SQNR_CAP_DB = 100.0
"""SQNR bound in dB: beyond float32 resolution, so it only replaces +/-inf."""

KL_BINS = 256
_KL_EPS = 1e-10


def _check_pair(reference, quantized) -> tuple[np.ndarray, np.ndarray]:
  reference = np.asarray(reference, dtype=np.float64)
  quantized = np.asarray(quantized, dtype=np.float64)
  if reference.shape != quantized.shape:
    raise ValueError(f"`reference` and `quantized` must have the same shape. Received: "
                     f"{reference.shape} and {quantized.shape}.")
  return reference, quantized


def sqnr_from_powers(signal_power: float, noise_power: float) -> float:
  """SQNR in dB from summed signal and noise powers (Eq. 6), clipped to +/- SQNR_CAP_DB."""
  if noise_power <= 0.0:
    return SQNR_CAP_DB
  if signal_power <= 0.0:
    return -SQNR_CAP_DB
  return float(np.clip(10.0 * math.log10(signal_power / noise_power), -SQNR_CAP_DB, SQNR_CAP_DB))


def sqnr_db(reference, quantized) -> float:
  """Signal-to-quantization-noise ratio in dB, QuantuneV2 Eq. 6: 10 log10(P_signal / P_noise)."""
  reference, quantized = _check_pair(reference, quantized)
  return sqnr_from_powers(float(np.sum(reference**2)), float(np.sum((reference - quantized)**2)))


def mse(reference, quantized) -> float:
  """Mean squared error, QuantuneV2 Eq. 7 (lower is better; 0 for empty input)."""
  reference, quantized = _check_pair(reference, quantized)
  if reference.size == 0:
    return 0.0
  return float(np.mean((reference - quantized)**2))


def cosine_from_sums(dot: float, reference_sq: float, quantized_sq: float) -> float:
  if reference_sq <= 0.0 and quantized_sq <= 0.0:
    return 1.0
  if reference_sq <= 0.0 or quantized_sq <= 0.0:
    return 0.0
  return float(np.clip(dot / math.sqrt(reference_sq * quantized_sq), -1.0, 1.0))


def cosine_similarity(reference, quantized) -> float:
  """Cosine similarity of the flattened tensors, QuantuneV2 Eq. 8 (1.0 for two zero tensors)."""
  reference, quantized = _check_pair(reference, quantized)
  return cosine_from_sums(float(np.sum(reference * quantized)), float(np.sum(reference**2)),
                          float(np.sum(quantized**2)))


def kl_from_histograms(reference_hist, quantized_hist) -> float:
  """KL(P || Q) of two histograms over the same bins (Eq. 9), with epsilon smoothing."""
  p = np.asarray(reference_hist, dtype=np.float64) + _KL_EPS
  q = np.asarray(quantized_hist, dtype=np.float64) + _KL_EPS
  p /= p.sum()
  q /= q.sum()
  return float(max(0.0, np.sum(p * np.log(p / q))))


def kl_divergence(reference, quantized, bins: int = KL_BINS) -> float:
  """KL divergence of the value distributions, QuantuneV2 Eq. 9 (histograms over a shared range)."""
  reference, quantized = _check_pair(reference, quantized)
  if reference.size == 0:
    return 0.0
  low = float(min(reference.min(), quantized.min()))
  high = float(max(reference.max(), quantized.max()))
  if high <= low:
    return 0.0
  p, _ = np.histogram(reference, bins=bins, range=(low, high))
  q, _ = np.histogram(quantized, bins=bins, range=(low, high))
  return kl_from_histograms(p, q)


def sqnr_delta(values: Sequence[float], positions: Optional[Sequence[int]] = None) -> list[float]:
  """SQNR delta, QuantuneV2 Eq. 16: (SQNR_n - SQNR_{n-1}) / (L_n - L_{n-1}).

  Args:
    values: SQNR of the layers that have one, in execution order.
    positions: the layers' indices L_n in the whole network (default 0, 1, 2, ...).

  Returns:
    One delta per value; the first layer has no predecessor and gets 0.0. A negative delta means
    quantization noise grew at that layer.
  """
  positions = list(range(len(values))) if positions is None else list(positions)
  if len(positions) != len(values):
    raise ValueError("`values` and `positions` must have the same length.")
  deltas = []
  for n, value in enumerate(values):
    if n == 0:
      deltas.append(0.0)
      continue
    step = positions[n] - positions[n - 1]
    deltas.append(float(value - values[n - 1]) / (step if step else 1))
  return deltas


def channel_axis(layer_type: str, kernel_ndim: int) -> int:
  """Output-channel axis of a Keras kernel, along which TFLite sets per-channel scales."""
  if layer_type in ("Conv2DTranspose", "Conv3DTranspose", "Conv1DTranspose"):
    return kernel_ndim - 2
  return kernel_ndim - 1


def quantize_symmetric(weights, *, per_channel: bool, axis: int = -1) -> np.ndarray:
  """Fake-quantizes weights as TFLite does: symmetric int8 in [-127, 127], zero point 0.

  Args:
    weights: float array.
    per_channel: one scale per slice along `axis` (TFLite's default) or one for the tensor.
    axis: the output-channel axis.

  Returns:
    The dequantized weights (float32), `round(w / s) * s` with `s = max|w| / 127`.
  """
  w = np.asarray(weights, dtype=np.float32)
  if per_channel and w.ndim > 0:
    axis = axis % w.ndim
    reduce_axes = tuple(i for i in range(w.ndim) if i != axis)
    max_abs = np.max(np.abs(w), axis=reduce_axes, keepdims=True)
  else:
    max_abs = np.max(np.abs(w)) if w.size else np.float32(0.0)
  scale = np.where(max_abs > 0, max_abs / 127.0, 1.0).astype(np.float32)
  return (np.clip(np.round(w / scale), -127, 127) * scale).astype(np.float32)


@dataclasses.dataclass
class StreamingStats:
  """Accumulates activation metrics over batches without keeping the activations.

  Histograms for KL use the int8 grid of the quantized tensor (`scale`, `zero_point`); without one
  (a float tensor), KL is not computed.
  """

  scale: Optional[float] = None
  zero_point: int = 0
  signal_power: float = 0.0
  noise_power: float = 0.0
  dot: float = 0.0
  quantized_power: float = 0.0
  count: int = 0
  reference_hist: Optional[np.ndarray] = None
  quantized_hist: Optional[np.ndarray] = None

  def update(self, reference: np.ndarray, quantized: np.ndarray) -> None:
    reference = np.asarray(reference, dtype=np.float64).ravel()
    quantized = np.asarray(quantized, dtype=np.float64).ravel()
    self.signal_power += float(reference @ reference)
    diff = reference - quantized
    self.noise_power += float(diff @ diff)
    self.dot += float(reference @ quantized)
    self.quantized_power += float(quantized @ quantized)
    self.count += reference.size
    if self.scale:
      if self.reference_hist is None:
        self.reference_hist = np.zeros(KL_BINS, np.int64)
        self.quantized_hist = np.zeros(KL_BINS, np.int64)
      for values, hist in ((reference, self.reference_hist), (quantized, self.quantized_hist)):
        levels = np.clip(np.round(values / self.scale) + self.zero_point, -128, 127).astype(np.int64)
        hist += np.bincount(levels + 128, minlength=KL_BINS)

  @property
  def sqnr_db(self) -> float:
    return sqnr_from_powers(self.signal_power, self.noise_power)

  @property
  def mse(self) -> float:
    return self.noise_power / self.count if self.count else 0.0

  @property
  def cosine_similarity(self) -> float:
    return cosine_from_sums(self.dot, self.signal_power, self.quantized_power)

  @property
  def kl_divergence(self) -> float:
    if self.reference_hist is None:
      return math.nan
    return kl_from_histograms(self.reference_hist, self.quantized_hist)
