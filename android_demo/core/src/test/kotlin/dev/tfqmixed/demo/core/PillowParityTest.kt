package dev.tfqmixed.demo.core

import org.junit.Assert.assertEquals
import org.junit.Assert.assertNotNull
import org.junit.Assert.assertTrue
import org.junit.Test

/**
 * The crop + bicubic resize against what the Python side (`tfq_mixed.demo.images.Preprocessing`, i.e.
 * Pillow) produced for the same random image (fixture written by `make_parity_fixture.py`).
 * Pillow rounds 22-bit fixed-point weights, this code uses doubles: at most one level apart.
 */
class PillowParityTest {

  private fun hexPixels(line: String): IntArray =
      line.trim().split(" ").map { (0xff shl 24) or Integer.parseInt(it, 16) }.toIntArray()

  @Test fun cropAndBicubicResizeMatchPillowWithinOneLevel() {
    val stream = javaClass.classLoader.getResourceAsStream("pillow_parity.txt")
    assertNotNull("pillow_parity.txt not on the test classpath", stream)
    val lines = stream!!.bufferedReader().readLines()
    val head = lines[0].trim().split(" ")
    val w = head[0].toInt(); val h = head[1].toInt(); val outW = head[2].toInt(); val outH = head[3].toInt()
    val crop = head[4].toDouble()
    val expected = hexPixels(lines[2])
    assertEquals(outW * outH, expected.size)

    val out = ImageOps.centerCropResize(ArgbImage(w, h, hexPixels(lines[1])), outW, outH, crop, Filter.BICUBIC)
    var maxDiff = 0
    var exact = 0
    for (i in expected.indices) {
      val a = out.pixels[i]; val b = expected[i]
      val d = Math.max(Math.abs(ArgbImage.red(a) - ArgbImage.red(b)),
          Math.max(Math.abs(ArgbImage.green(a) - ArgbImage.green(b)), Math.abs(ArgbImage.blue(a) - ArgbImage.blue(b))))
      if (d == 0) exact++
      if (d > maxDiff) maxDiff = d
    }
    assertTrue("max difference $maxDiff levels from Pillow", maxDiff <= 1)
    assertTrue("only $exact of ${expected.size} pixels equal Pillow's", exact >= expected.size * 9 / 10)
  }
}
