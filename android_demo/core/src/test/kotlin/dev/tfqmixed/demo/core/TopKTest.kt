package dev.tfqmixed.demo.core

import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import java.util.Random

class TopKTest {

  private fun indices(p: List<Prediction>): List<Int> = p.map { it.index }

  @Test fun bestFirstWithStableTies() {
    val top = TopK.topK(floatArrayOf(0.1f, 0.5f, 0.3f, 0.5f), 3)
    assertEquals(listOf(Prediction(1, 0.5f), Prediction(3, 0.5f), Prediction(2, 0.3f)), top)
  }

  @Test fun nanRanksLastInIndexOrder() {
    val nan = Float.NaN
    assertEquals(listOf(1, 4, 2, 0, 3),
        indices(TopK.topK(floatArrayOf(nan, 1f, Float.NEGATIVE_INFINITY, nan, 0f), 5)))
    assertEquals(listOf(1, 4), indices(TopK.topK(floatArrayOf(nan, 1f, Float.NEGATIVE_INFINITY, nan, 0f), 2)))
  }

  @Test fun kLargerThanNReturnsAll() {
    assertEquals(listOf(0, 2, 1), indices(TopK.topK(floatArrayOf(3f, 1f, 2f), 10)))
    assertEquals(emptyList<Prediction>(), TopK.topK(FloatArray(0), 5))
  }

  @Test fun kZeroIsEmpty() {
    assertEquals(emptyList<Prediction>(), TopK.topK(floatArrayOf(1f, 2f), 0))
  }

  @Test(expected = IllegalArgumentException::class) fun negativeKIsRejected() {
    TopK.topK(floatArrayOf(1f), -1)
  }

  @Test fun negativeZeroTiesWithZero() {
    assertEquals(listOf(0, 1), indices(TopK.topK(floatArrayOf(-0f, 0f), 2)))
    assertEquals(listOf(0, 1), indices(TopK.topK(floatArrayOf(0f, -0f), 2)))
  }

  @Test fun agreesWithAFullSortOnRandomScores() {
    val random = Random(42)
    for (trial in 0 until 200) {
      val n = random.nextInt(50)
      // Few distinct values, so ties are common; some NaN.
      val scores = FloatArray(n) { if (random.nextInt(10) == 0) Float.NaN else random.nextInt(8).toFloat() }
      val k = random.nextInt(60)
      val expected = (0 until n).sortedWith(Comparator { a, b ->
        val x = scores[a]; val y = scores[b]
        when {
          x.isNaN() && y.isNaN() -> a - b
          x.isNaN() -> 1
          y.isNaN() -> -1
          x != y -> if (x > y) -1 else 1
          else -> a - b
        }
      }).take(k)
      assertEquals("trial $trial", expected, indices(TopK.topK(scores, k)))
    }
  }

  @Test fun formatShowsLabelsAndScores() {
    val text = TopK.format(listOf(Prediction(1, 0.8312f), Prediction(7, 0.1f)), listOf("tench", "goldfish"))
    assertEquals(String.format("%-28s %s\n%-28s %s", "goldfish", "0.8312", "class 7", "0.1000"), text)
    assertTrue(TopK.format(emptyList(), emptyList()).isEmpty())
  }
}
