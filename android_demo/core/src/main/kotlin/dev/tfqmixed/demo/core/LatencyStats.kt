package dev.tfqmixed.demo.core

/**
 * Latency summary of timed inferences, in milliseconds, after dropping warm-up runs.
 *
 * Percentiles use linear interpolation between order statistics (NumPy's default
 * `np.percentile(..., method="linear")`, R type 7): for n sorted samples x[0..n-1] and p in
 * [0, 100], position h = (n - 1) * p / 100, value x[floor(h)] + (h - floor(h)) * (x[floor(h)+1] -
 * x[floor(h)]). The median is the 50th percentile (the mean of the two middle samples when n is
 * even), as `statistics.median` in `tfq_mixed.latency`.
 */
class LatencyStats private constructor(
    val count: Int, val warmup: Int, val medianMs: Double, val p90Ms: Double,
    val minMs: Double, val maxMs: Double, val meanMs: Double) {

  override fun toString(): String = String.format(java.util.Locale.US,
      "median %.2f ms, p90 %.2f ms (min %.2f, max %.2f, mean %.2f; %d runs after %d warm-up)",
      medianMs, p90Ms, minMs, maxMs, meanMs, count, warmup)

  companion object {

    /** The [p]-th percentile of [sorted] (ascending, non-empty), linear interpolation. */
    fun percentile(sorted: DoubleArray, p: Double): Double {
      require(sorted.isNotEmpty()) { "no samples" }
      require(p >= 0.0 && p <= 100.0) { "percentile must be in [0, 100], got $p" }
      val h = (sorted.size - 1) * p / 100.0
      val lo = Math.floor(h).toInt()
      val hi = Math.min(lo + 1, sorted.size - 1)
      return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo])
    }

    /**
     * Stats of [samplesNanos] (per-inference durations from `System.nanoTime()` differences, in
     * run order) without the first [warmup] samples. Needs at least one sample after warm-up.
     */
    fun fromNanos(samplesNanos: LongArray, warmup: Int): LatencyStats {
      require(warmup >= 0) { "warmup must be >= 0, got $warmup" }
      require(samplesNanos.size > warmup) {
        "need at least one timed run after $warmup warm-up runs, got ${samplesNanos.size} samples"
      }
      val ms = DoubleArray(samplesNanos.size - warmup) { i ->
        val v = samplesNanos[warmup + i]
        require(v >= 0) { "negative duration $v ns at run ${warmup + i}" }
        v / 1e6
      }
      var sum = 0.0
      for (v in ms) sum += v
      ms.sort()
      return LatencyStats(ms.size, warmup, percentile(ms, 50.0), percentile(ms, 90.0),
          ms[0], ms[ms.size - 1], sum / ms.size)
    }
  }
}
