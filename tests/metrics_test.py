"""tfq_mixed.metrics against hand-computed values (QuantuneV2 Eq. 6-9, 16)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tfq_mixed import metrics


def test_sqnr_hand_computed():
  ref = np.array([3.0, 4.0])  # signal power 25
  q = np.array([3.0, 3.0])  # noise power 1
  assert metrics.sqnr_db(ref, q) == pytest.approx(10 * math.log10(25.0))


def test_sqnr_identical_and_all_zero_are_defined():
  x = np.array([1.0, -2.0, 0.5])
  assert metrics.sqnr_db(x, x) == metrics.SQNR_CAP_DB
  zeros = np.zeros(4)
  assert metrics.sqnr_db(zeros, zeros) == metrics.SQNR_CAP_DB
  assert metrics.sqnr_db(zeros, np.ones(4)) == -metrics.SQNR_CAP_DB
  assert metrics.sqnr_db(np.ones(4), zeros) == pytest.approx(0.0)  # noise equals signal


def test_sqnr_is_not_symmetric():
  a, b = np.array([1.0, 1.0]), np.array([2.0, 2.0])
  assert metrics.sqnr_db(a, b) != metrics.sqnr_db(b, a)


def test_mse_cosine_hand_computed():
  ref, q = np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0])
  assert metrics.mse(ref, q) == pytest.approx(4.0 / 3.0)
  assert metrics.cosine_similarity(ref, q) == pytest.approx(20.0 / math.sqrt(14.0 * 30.0))  # 1+4+15
  assert metrics.cosine_similarity(ref, -ref) == pytest.approx(-1.0)
  assert metrics.cosine_similarity(np.zeros(3), np.zeros(3)) == 1.0
  assert metrics.cosine_similarity(np.zeros(3), q) == 0.0


def test_kl_hand_computed():
  p, q = np.array([1.0, 1.0]), np.array([3.0, 1.0])  # P=(.5,.5), Q=(.75,.25)
  expected = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
  assert metrics.kl_from_histograms(p, q) == pytest.approx(expected, rel=1e-6)
  x = np.linspace(-1, 1, 100)
  assert metrics.kl_divergence(x, x) == pytest.approx(0.0, abs=1e-9)
  assert metrics.kl_divergence(x, np.round(x)) > 0.1


def test_mismatched_shapes_raise():
  with pytest.raises(ValueError, match="same shape"):
    metrics.sqnr_db(np.zeros(3), np.zeros(4))
  with pytest.raises(ValueError, match="same shape"):
    metrics.mse(np.zeros((2, 2)), np.zeros(4))


def test_sqnr_delta_eq16():
  # Layers 0, 2, 3 have an SQNR; the step from 0 to 2 spans two layers (L_n - L_{n-1} = 2).
  assert metrics.sqnr_delta([30.0, 26.0, 27.0], [0, 2, 3]) == [0.0, -2.0, 1.0]
  assert metrics.sqnr_delta([10.0, 10.0]) == [0.0, 0.0]
  assert metrics.sqnr_delta([]) == []


def test_quantize_symmetric_per_channel_and_per_tensor():
  w = np.array([[1.0, 0.01], [-0.5, 0.02]], np.float32)  # output channels along the last axis
  per_channel = metrics.quantize_symmetric(w, per_channel=True, axis=-1)
  scales = np.array([1.0 / 127, 0.02 / 127])
  np.testing.assert_allclose(per_channel, np.round(w / scales) * scales, rtol=1e-6)
  per_tensor = metrics.quantize_symmetric(w, per_channel=False)
  np.testing.assert_allclose(per_tensor, np.round(w * 127) / 127, rtol=1e-6)
  # The small channel loses far more under one shared scale.
  assert metrics.sqnr_db(w[:, 1], per_tensor[:, 1]) < metrics.sqnr_db(w[:, 1], per_channel[:, 1]) - 20
  np.testing.assert_array_equal(metrics.quantize_symmetric(np.zeros((2, 2)), per_channel=True), 0)


def test_streaming_stats_equal_whole_array_metrics(rng):
  ref = rng.normal(size=(6, 5, 4))
  q = ref + rng.normal(scale=0.1, size=ref.shape)
  stats = metrics.StreamingStats()
  for i in range(0, 6, 2):  # three batches
    stats.update(ref[i:i + 2], q[i:i + 2])
  assert stats.sqnr_db == pytest.approx(metrics.sqnr_db(ref, q))
  assert stats.mse == pytest.approx(metrics.mse(ref, q))
  assert stats.cosine_similarity == pytest.approx(metrics.cosine_similarity(ref, q))
  assert math.isnan(stats.kl_divergence)  # no int8 grid given


def test_streaming_kl_on_int8_grid():
  stats = metrics.StreamingStats(scale=0.1, zero_point=0)
  ref = np.linspace(-1, 1, 201)
  stats.update(ref, np.round(ref / 0.1) * 0.1)
  assert stats.kl_divergence == pytest.approx(0.0, abs=1e-6)  # same int8 levels
  shifted = metrics.StreamingStats(scale=0.1, zero_point=0)
  shifted.update(ref, ref + 0.5)
  assert shifted.kl_divergence > 0.1


def test_streaming_int8_path_matches_the_dequantized_float_path(rng):
  """update_int8 (float32 sums over 64K-element chunks) agrees with update on the dequantized
  tensor (float64) over several chunks and batches, including zero points and clipped levels."""
  scale, zero_point = 0.021, -7
  ref = rng.normal(scale=1.2, size=(3, 150_000)).astype(np.float32)
  levels = np.clip(np.rint(ref / scale) + zero_point + rng.integers(-2, 3, size=ref.shape),
                   -128, 127).astype(np.int8)
  dequantized = (levels.astype(np.float32) - zero_point) * np.float32(scale)
  fast = metrics.StreamingStats(scale=scale, zero_point=zero_point)
  exact = metrics.StreamingStats(scale=scale, zero_point=zero_point)
  for i in range(3):
    fast.update_int8(ref[i], levels[i])
    exact.update(ref[i], dequantized[i])
  assert fast.count == exact.count == ref.size
  assert fast.sqnr_db == pytest.approx(exact.sqnr_db, abs=1e-4)
  assert fast.mse == pytest.approx(exact.mse, rel=1e-5)
  assert fast.cosine_similarity == pytest.approx(exact.cosine_similarity, rel=1e-6)
  np.testing.assert_array_equal(fast.quantized_hist, exact.quantized_hist)
  # float32 vs float64 division may round a value lying on a half-level boundary differently.
  assert np.abs(fast.reference_hist - exact.reference_hist).sum() <= 10
  assert fast.kl_divergence == pytest.approx(exact.kl_divergence, rel=1e-3, abs=1e-7)


def test_int8_error_powers_against_float64(rng):
  """Eq. 6's powers of an int8 tensor against its float reference, over several 64K chunks."""
  scale, zero_point = 0.05, 3
  reference = rng.normal(size=(2, 100_000)).astype(np.float32)
  levels = np.clip(np.rint(reference / scale) + zero_point, -128, 127).astype(np.int8)
  dequantized = (levels.astype(np.float64) - zero_point) * scale
  signal, noise, size = metrics.int8_error_powers(reference, levels, scale, zero_point)
  assert size == reference.size
  assert signal == pytest.approx(np.sum(reference.astype(np.float64)**2), rel=1e-6)
  assert noise == pytest.approx(np.sum((reference - dequantized)**2), rel=1e-5)
  # Rounding to the grid: noise ~ scale^2 / 12 per element (the tails clip beyond +/-6.25 sigma).
  assert noise / size == pytest.approx(scale**2 / 12, rel=0.02)
  assert metrics.int8_error_powers(reference[:0], levels[:0], scale, zero_point) == (0.0, 0.0, 0)
  with pytest.raises(ValueError, match="int8"):
    metrics.int8_error_powers(reference, levels.astype(np.int16), scale, zero_point)


finite = hnp.arrays(np.float64, st.integers(1, 50),
                    elements=st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False))


@settings(max_examples=60, deadline=None)
@given(finite, st.floats(-1e3, 1e3, allow_nan=False))
def test_metrics_finite_for_any_finite_input(x, shift):
  y = x + shift
  for fn in (metrics.sqnr_db, metrics.mse, metrics.cosine_similarity, metrics.kl_divergence):
    assert math.isfinite(fn(x, y)), fn.__name__
  assert metrics.sqnr_db(x, x) == metrics.SQNR_CAP_DB
  assert metrics.mse(x, y) == pytest.approx(metrics.mse(y, x))
  assert metrics.cosine_similarity(x, y) == pytest.approx(metrics.cosine_similarity(y, x))


def test_channel_sqnr_weighs_every_channel_alike():
  reference = np.array([[1.0, 1.0], [0.1, 0.1]])  # channels along axis 0
  quantized = np.array([[1.0, 1.0], [0.0, 0.1]])  # channel 1 loses half its power
  # Channel noise / power: 0 and 0.01 / 0.02 = 0.5; mean 0.25 -> 6.02 dB.
  assert metrics.channel_sqnr_db(reference, quantized, axis=0) == pytest.approx(6.0206, abs=1e-3)
  # The whole-tensor SQNR, dominated by channel 0, hides it: 10 log10(2.02 / 0.01) = 23 dB.
  assert metrics.sqnr_db(reference, quantized) == pytest.approx(23.05, abs=0.01)
  assert metrics.channel_sqnr_db(reference, reference, axis=0) == metrics.SQNR_CAP_DB
  zero = np.zeros((2, 3))
  assert metrics.channel_sqnr_db(zero, zero, axis=1) == metrics.SQNR_CAP_DB
