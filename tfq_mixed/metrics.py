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
_CHUNK = 1 << 16  # elements per step of StreamingStats.update: float64 buffers stay in cache


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


def channel_sqnr_db(reference, quantized, axis: int) -> float:
  """SQNR in dB of the mean per-channel relative noise: -10 log10(mean_c P_noise,c / P_signal,c).

  Each slice along `axis` (an output channel) is weighed alike, whatever its power; an all-zero
  channel quantized exactly adds no noise. Eq. 6 per channel, averaged in linear noise power;
  clipped to +/- SQNR_CAP_DB like `sqnr_db`.
  """
  reference, quantized = _check_pair(reference, quantized)
  if reference.ndim == 0 or reference.size == 0:
    return SQNR_CAP_DB
  reference = np.moveaxis(reference.astype(np.float64), axis, 0).reshape(reference.shape[axis], -1)
  quantized = np.moveaxis(quantized.astype(np.float64), axis, 0).reshape(reference.shape[0], -1)
  noise = np.sum((reference - quantized) ** 2, axis=1)
  signal = np.sum(reference ** 2, axis=1)
  relative = np.where(noise > 0, noise / np.maximum(signal, np.finfo(np.float64).tiny), 0.0)
  return sqnr_from_powers(1.0, float(np.mean(relative)))


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
  denominator = math.sqrt(reference_sq * quantized_sq)
  if denominator == 0.0 or math.isinf(denominator):  # the product under- or overflowed
    denominator = math.sqrt(reference_sq) * math.sqrt(quantized_sq)
  return float(np.clip(dot / denominator, -1.0, 1.0))


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
  try:
    p, _ = np.histogram(reference, bins=bins, range=(low, high))
    q, _ = np.histogram(quantized, bins=bins, range=(low, high))
  except ValueError:  # a span of a few subnormals has no `bins` distinct edges: bin on [0, 1]
    span = high - low
    p, _ = np.histogram((reference - low) / span, bins=bins, range=(0.0, 1.0))
    q, _ = np.histogram((quantized - low) / span, bins=bins, range=(0.0, 1.0))
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


def _dequantize(levels: np.ndarray, zero_point: np.float32, scale: np.float32,
                out: np.ndarray) -> None:
  """out = (levels - zero_point) * scale in float32, as TFLite's DEQUANTIZE computes."""
  np.subtract(levels, zero_point, out=out, dtype=np.float32)
  np.multiply(out, scale, out=out)


def int8_error_powers(reference: np.ndarray, levels: np.ndarray, scale: float,
                      zero_point: int) -> tuple[float, float, int]:
  """(sum reference^2, sum (reference - dequantized levels)^2, size): Eq. 6's powers, streamed.

  For an int8 tensor (`levels`, per-tensor `scale` and `zero_point`) against its float reference
  of the same size, in float32 chunks summed in float64, as `StreamingStats.update_int8`.
  """
  reference, levels = np.asarray(reference).reshape(-1), np.asarray(levels).reshape(-1)
  if reference.size != levels.size or levels.dtype != np.int8:
    raise ValueError(f"`levels` must be an int8 tensor of the reference's size. Received: "
                     f"{levels.size} {levels.dtype} values for {reference.size} reference values.")
  chunk = max(1, min(reference.size, _CHUNK))
  work = np.empty(chunk, np.float32)
  zero_point32, scale32 = np.float32(zero_point), np.float32(scale)
  signal_power = noise_power = 0.0
  for start in range(0, reference.size, chunk):
    stop = min(start + chunk, reference.size)
    r = np.asarray(reference[start:stop], np.float32)
    w = work[:stop - start]
    _dequantize(levels[start:stop], zero_point32, scale32, out=w)
    np.subtract(r, w, out=w)
    signal_power += float(np.dot(r, r))
    noise_power += float(np.dot(w, w))
  return signal_power, noise_power, reference.size


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
    """Adds one batch: power sums in float64 and, with an int8 grid, the two level histograms.

    Streams through the flattened tensors in cache-sized chunks (no full-size float64 copies);
    each element is computed exactly as before, only the float64 summation order differs.
    """
    self._accumulate(reference, quantized, int8_levels=False)

  def update_int8(self, reference: np.ndarray, quantized_int8: np.ndarray) -> None:
    """`update(reference, dequantized)` from the raw int8 tensor on this grid, without a float copy.

    Same result as `update(reference, (q.astype(float32) - zero_point) * scale)` computed in float32
    as TFLite dequantizes; the quantized histogram counts the int8 levels directly (re-quantizing
    the dequantized values gives back exactly those levels).
    """
    quantized_int8 = np.asarray(quantized_int8)
    if not self.scale or quantized_int8.dtype != np.int8:
      raise ValueError(f"`update_int8` needs an int8 tensor and a stats object with an int8 grid "
                       f"(`scale`). Received: dtype={quantized_int8.dtype}, scale={self.scale!r}.")
    self._accumulate(reference, quantized_int8, int8_levels=True)

  def _accumulate(self, reference, quantized, int8_levels: bool) -> None:
    reference = np.asarray(reference)
    quantized = np.asarray(quantized)
    if reference.size != quantized.size:
      raise ValueError(f"`reference` and `quantized` must have the same size. Received: "
                       f"{reference.shape} and {quantized.shape}.")
    reference = reference.reshape(-1)
    quantized = quantized.reshape(-1)
    size = reference.size
    if self.scale and self.reference_hist is None:
      self.reference_hist = np.zeros(KL_BINS, np.int64)
      self.quantized_hist = np.zeros(KL_BINS, np.int64)
    if size == 0:
      return
    if int8_levels:
      self._accumulate_int8(reference, quantized)
      return
    chunk = min(size, _CHUNK)
    ref_buffer = np.empty(chunk, np.float64)
    quant_buffer = np.empty(chunk, np.float64)
    work = np.empty(chunk, np.float64)
    signal_power = noise_power = dot = quantized_power = 0.0
    for start in range(0, size, chunk):
      stop = min(start + chunk, size)
      r = ref_buffer[:stop - start]
      q = quant_buffer[:stop - start]
      w = work[:stop - start]
      np.copyto(r, reference[start:stop], casting="unsafe")
      np.copyto(q, quantized[start:stop], casting="unsafe")
      # Products summed by NumPy (pairwise), not BLAS `@`: OpenBLAS wakes its thread pool for
      # every dot, which costs far more than the dot itself on a busy machine.
      signal_power += float(np.multiply(r, r, out=w).sum())
      dot += float(np.multiply(r, q, out=w).sum())
      quantized_power += float(np.multiply(q, q, out=w).sum())
      np.subtract(r, q, out=w)
      noise_power += float(np.multiply(w, w, out=w).sum())
      if self.scale:
        self._add_levels(r, w, self.reference_hist)
        self._add_levels(q, w, self.quantized_hist)
    self._add_sums(signal_power, noise_power, dot, quantized_power, size)

  def _accumulate_int8(self, reference: np.ndarray, levels: np.ndarray) -> None:
    """The int8 path, in float32 as TFLite computes: 4.1 instead of 8.8 ns per element.

    Each chunk's sums are float32 dot products (error ~1e-6 relative for 64K elements, far
    below what moves an SQNR in dB), accumulated in float64 across chunks.
    """
    size = reference.size
    chunk = min(size, _CHUNK)
    dequantized = np.empty(chunk, np.float32)
    work = np.empty(chunk, np.float32)
    zero_point32, scale32 = np.float32(self.zero_point), np.float32(self.scale)
    signal_power = noise_power = dot = quantized_power = 0.0
    for start in range(0, size, chunk):
      stop = min(start + chunk, size)
      r = np.asarray(reference[start:stop], np.float32)
      d = dequantized[:stop - start]
      w = work[:stop - start]
      _dequantize(levels[start:stop], zero_point32, scale32, out=d)
      signal_power += float(np.dot(r, r))
      dot += float(np.dot(r, d))
      quantized_power += float(np.dot(d, d))
      np.subtract(r, d, out=w)
      noise_power += float(np.dot(w, w))
      np.divide(r, scale32, out=w)
      np.rint(w, out=w)  # np.round's half-to-even rounding.
      w += np.float32(self.zero_point + 128)
      np.clip(w, 0, 255, out=w)
      self.reference_hist += np.bincount(w.astype(np.uint8), minlength=KL_BINS)
      # int8 v -> bin v + 128
      self.quantized_hist += np.bincount(levels[start:stop].view(np.uint8) ^ np.uint8(0x80),
                                         minlength=KL_BINS)
    self._add_sums(signal_power, noise_power, dot, quantized_power, size)

  def _add_sums(self, signal_power: float, noise_power: float, dot: float,
                quantized_power: float, count: int) -> None:
    self.signal_power += signal_power
    self.noise_power += noise_power
    self.dot += dot
    self.quantized_power += quantized_power
    self.count += count

  def _add_levels(self, values: np.ndarray, work: np.ndarray, hist: np.ndarray) -> None:
    """hist += bincount of clip(round(values / scale) + zero_point, -128, 127), shifted by 128."""
    np.divide(values, self.scale, out=work)
    np.rint(work, out=work)  # np.round's half-to-even rounding.
    work += self.zero_point + 128
    np.clip(work, 0, 255, out=work)
    hist += np.bincount(work.astype(np.intp), minlength=KL_BINS)

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
