package dev.tfqmixed.demo.core

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertTrue
import org.junit.Test

class ScoresTest {

  @Test fun dequantizeSignedAndUnsigned() {
    // (q - zp) * scale: (-128 + 1) * 0.5, (0 + 1) * 0.5, (127 + 1) * 0.5.
    assertArrayEquals(floatArrayOf(-63.5f, 0.5f, 64f),
        Scores.dequantize(byteArrayOf(-128, 0, 127), 0.5f, -1, false), 0f)
    // Byte 0xFF is 255 as uint8: (255 - 128) * 0.25 = 31.75; 0 -> -32.
    assertArrayEquals(floatArrayOf(31.75f, -32f),
        Scores.dequantize(byteArrayOf(-1, 0), 0.25f, 128, true), 0f)
  }

  @Test fun softmaxOfKnownLogits() {
    // exp(0) : exp(ln 3) = 1 : 3.
    assertArrayEquals(floatArrayOf(0.25f, 0.75f), Scores.softmax(floatArrayOf(0f, Math.log(3.0).toFloat())), 1e-6f)
    // Large logits do not overflow.
    assertArrayEquals(floatArrayOf(0.5f, 0.5f), Scores.softmax(floatArrayOf(1000f, 1000f)), 0f)
    assertTrue(Scores.softmax(floatArrayOf(1f, Float.NaN)).all { it.isNaN() })
    assertArrayEquals(FloatArray(0), Scores.softmax(FloatArray(0)), 0f)
  }

  @Test fun probabilitiesKeepsADistributionAndSoftmaxesLogits() {
    assertArrayEquals(floatArrayOf(0.2f, 0.8f), Scores.probabilities(floatArrayOf(0.2f, 0.8f)), 0f)
    // e^2 / (e^2 + 1) = 0.8807971.
    assertArrayEquals(floatArrayOf(0.8807971f, 0.1192029f), Scores.probabilities(floatArrayOf(2f, 0f)), 1e-6f)
    // In [0, 1] but not summing to 1: softmax of (0.5, 0.1).
    val p = Scores.probabilities(floatArrayOf(0.5f, 0.1f))
    assertArrayEquals(floatArrayOf(0.5986877f, 0.4013123f), p, 1e-6f)
  }
}
