package dev.tfqmixed.demo.core

/** Turning a classifier's output tensor into class probabilities. */
object Scores {

  /** int8 (or uint8 when [unsigned]) outputs to real values: `(q - zeroPoint) * scale`. */
  fun dequantize(values: ByteArray, scale: Float, zeroPoint: Int, unsigned: Boolean): FloatArray =
      FloatArray(values.size) { i ->
        val q = if (unsigned) values[i].toInt() and 0xff else values[i].toInt()
        (q - zeroPoint) * scale
      }

  /** Numerically stable softmax (the maximum is subtracted first); NaN inputs give NaN outputs. */
  fun softmax(logits: FloatArray): FloatArray {
    if (logits.isEmpty()) return FloatArray(0)
    var max = Double.NEGATIVE_INFINITY
    for (v in logits) {
      if (v.isNaN()) return FloatArray(logits.size) { Float.NaN }
      if (v > max) max = v.toDouble()
    }
    val e = DoubleArray(logits.size) { i -> Math.exp(logits[i] - max) }
    var sum = 0.0
    for (v in e) sum += v
    return FloatArray(logits.size) { i -> (e[i] / sum).toFloat() }
  }

  /**
   * [values] if they already look like probabilities (all in [0, 1], summing to 1 within
   * [tolerance]), else their softmax. The model of `python -m tfq_mixed` ends with a Dense layer
   * named "logits" (no softmax), so the app applies softmax to it.
   */
  fun probabilities(values: FloatArray, tolerance: Double = 1e-3): FloatArray {
    var sum = 0.0
    for (v in values) {
      if (v.isNaN() || v < 0f || v > 1f) return softmax(values)
      sum += v
    }
    return if (Math.abs(sum - 1.0) <= tolerance) values.copyOf() else softmax(values)
  }
}
