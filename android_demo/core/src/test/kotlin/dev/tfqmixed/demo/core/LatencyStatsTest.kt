package dev.tfqmixed.demo.core

import org.junit.Assert.assertEquals
import org.junit.Test

class LatencyStatsTest {

  private val ms = 1_000_000L

  @Test fun percentileInterpolatesLinearly() {
    val x = DoubleArray(10) { (it + 1).toDouble() }  // 1..10
    assertEquals(5.5, LatencyStats.percentile(x, 50.0), 1e-12)   // h = 4.5
    assertEquals(9.1, LatencyStats.percentile(x, 90.0), 1e-12)   // h = 8.1: 9 + 0.1 * (10 - 9)
    assertEquals(1.0, LatencyStats.percentile(x, 0.0), 0.0)
    assertEquals(10.0, LatencyStats.percentile(x, 100.0), 0.0)
    assertEquals(2.8, LatencyStats.percentile(doubleArrayOf(1.0, 2.0, 3.0), 90.0), 1e-12)  // h = 1.8
    assertEquals(4.0, LatencyStats.percentile(doubleArrayOf(4.0), 90.0), 0.0)
  }

  @Test fun warmUpRunsAreDropped() {
    // Two slow warm-up runs, then 1..10 ms out of order.
    val samples = longArrayOf(100 * ms, 50 * ms, 7 * ms, 3 * ms, 10 * ms, 1 * ms, 5 * ms, 9 * ms, 2 * ms, 8 * ms, 4 * ms, 6 * ms)
    val s = LatencyStats.fromNanos(samples, 2)
    assertEquals(10, s.count)
    assertEquals(2, s.warmup)
    assertEquals(5.5, s.medianMs, 1e-9)
    assertEquals(9.1, s.p90Ms, 1e-9)
    assertEquals(1.0, s.minMs, 0.0)
    assertEquals(10.0, s.maxMs, 0.0)
    assertEquals(5.5, s.meanMs, 1e-9)
    // Kept: 12 samples 1..10, 50, 100: median (6 + 7) / 2, p90 h = 9.9: 10 + 0.9 * (50 - 10).
    val all = LatencyStats.fromNanos(samples, 0)
    assertEquals(6.5, all.medianMs, 1e-9)
    assertEquals(46.0, all.p90Ms, 1e-9)
  }

  @Test fun sub_millisecondResolution() {
    val s = LatencyStats.fromNanos(longArrayOf(1_500_000L, 2_250_000L), 0)
    assertEquals(1.875, s.medianMs, 1e-12)
    assertEquals("median 1.88 ms, p90 2.18 ms (min 1.50, max 2.25, mean 1.88; 2 runs after 0 warm-up)", s.toString())
  }

  @Test(expected = IllegalArgumentException::class) fun needsARunAfterWarmUp() {
    LatencyStats.fromNanos(longArrayOf(1L, 2L), 2)
  }

  @Test(expected = IllegalArgumentException::class) fun rejectsNegativeDurations() {
    LatencyStats.fromNanos(longArrayOf(-1L), 0)
  }
}
