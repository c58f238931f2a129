package dev.tfqmixed.demo.core

/** One class of a top-k list: its index in the output vector and its score. */
data class Prediction(val index: Int, val score: Float)

/** The k best classes of a score vector. */
object TopK {

  /**
   * The [k] highest scores, best first. Ties keep index order (lower index first; -0.0 equals
   * 0.0), NaN scores rank below every number (also below -Infinity), and k larger than the number
   * of scores returns them all. k = 0 returns an empty list; negative k is an error.
   */
  fun topK(scores: FloatArray, k: Int): List<Prediction> {
    require(k >= 0) { "k must be >= 0, got $k" }
    val n = Math.min(k, scores.size)
    if (n == 0) return emptyList()
    // Partial selection: keep the best n in a sorted list (n is small; scores may be ~1000).
    val best = ArrayList<Int>(n + 1)
    for (i in scores.indices) {
      if (best.size == n && !better(scores, i, best[n - 1])) continue
      var pos = best.size
      while (pos > 0 && better(scores, i, best[pos - 1])) pos--
      best.add(pos, i)
      if (best.size > n) best.removeAt(n)
    }
    return best.map { Prediction(it, scores[it]) }
  }

  /** Whether index [a] ranks strictly before index [b]. */
  private fun better(scores: FloatArray, a: Int, b: Int): Boolean {
    val x = scores[a]
    val y = scores[b]
    val xNaN = x.isNaN()
    val yNaN = y.isNaN()
    return when {
      xNaN && yNaN -> a < b
      xNaN -> false
      yNaN -> true
      x > y -> true
      x < y -> false
      else -> a < b
    }
  }

  /** "label  0.8312" lines; a missing label shows as "class <index>". */
  fun format(predictions: List<Prediction>, labels: List<String>): String {
    val sb = StringBuilder()
    for (p in predictions) {
      val label = if (p.index < labels.size && labels[p.index].isNotBlank()) labels[p.index] else "class ${p.index}"
      if (sb.isNotEmpty()) sb.append('\n')
      sb.append(String.format(java.util.Locale.US, "%-28s %.4f", label, p.score))
    }
    return sb.toString()
  }
}
