package dev.tfqmixed.demo.core

/**
 * An image as Android's `Bitmap.getPixels` returns it: row-major ARGB_8888 ints (0xAARRGGBB).
 * Plain JVM: no Android types, so the preprocessing runs in JVM unit tests.
 */
class ArgbImage(val width: Int, val height: Int, val pixels: IntArray) {
  init {
    require(width > 0 && height > 0) { "image size must be positive, got ${width}x$height" }
    require(pixels.size == width * height) {
      "expected ${width * height} pixels for ${width}x$height, got ${pixels.size}"
    }
  }

  fun pixel(x: Int, y: Int): Int = pixels[y * width + x]

  companion object {
    fun argb(r: Int, g: Int, b: Int, a: Int = 255): Int =
        (a and 0xff shl 24) or (r and 0xff shl 16) or (g and 0xff shl 8) or (b and 0xff)
    fun red(p: Int): Int = p shr 16 and 0xff
    fun green(p: Int): Int = p shr 8 and 0xff
    fun blue(p: Int): Int = p and 0xff
  }
}

/** A pixel rectangle: columns [left, left + width), rows [top, top + height). */
data class CropBox(val left: Int, val top: Int, val width: Int, val height: Int)

/**
 * Resampling filters with Pillow's conventions (`Image.resize`): the kernel is widened by the
 * downscale factor (antialiasing), weights are normalized per output pixel, pixel centers at +0.5.
 */
enum class Filter(val support: Double) {
  /** Triangle kernel. */
  BILINEAR(1.0),
  /** Keys cubic kernel with a = -0.5, as Pillow's BICUBIC. */
  BICUBIC(2.0);

  fun weight(x: Double): Double {
    val t = if (x < 0) -x else x
    return when (this) {
      BILINEAR -> if (t < 1.0) 1.0 - t else 0.0
      BICUBIC -> {
        val a = -0.5
        when {
          t < 1.0 -> ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0
          t < 2.0 -> (((t - 5.0) * t + 8.0) * t - 4.0) * a
          else -> 0.0
        }
      }
    }
  }
}

/** Image operations of the demo's preprocessing, on [ArgbImage]. */
object ImageOps {

  /**
   * The largest centered box with the output's aspect ratio, shrunk to [crop] of it, on whole
   * pixels: sizes rounded as Python's round() (half to even), offsets floored. Same rule as
   * `tfq_mixed.demo.images.Preprocessing`.
   */
  fun centerCropBox(srcWidth: Int, srcHeight: Int, dstWidth: Int, dstHeight: Int, crop: Double): CropBox {
    require(srcWidth > 0 && srcHeight > 0 && dstWidth > 0 && dstHeight > 0) { "sizes must be positive" }
    require(crop > 0.0 && crop <= 1.0) { "crop must be in (0, 1], got $crop" }
    val box = Math.min(srcWidth.toDouble(), srcHeight.toDouble() * dstWidth / dstHeight) * crop
    val boxW = Math.max(1, roundHalfEven(box)).coerceAtMost(srcWidth)
    val boxH = Math.max(1, roundHalfEven(box * dstHeight / dstWidth)).coerceAtMost(srcHeight)
    return CropBox((srcWidth - boxW) / 2, (srcHeight - boxH) / 2, boxW, boxH)
  }

  fun crop(image: ArgbImage, box: CropBox): ArgbImage {
    require(box.left >= 0 && box.top >= 0 && box.width > 0 && box.height > 0 &&
        box.left + box.width <= image.width && box.top + box.height <= image.height) {
      "crop box $box outside the ${image.width}x${image.height} image"
    }
    val out = IntArray(box.width * box.height)
    for (y in 0 until box.height) {
      System.arraycopy(image.pixels, (box.top + y) * image.width + box.left, out, y * box.width, box.width)
    }
    return ArgbImage(box.width, box.height, out)
  }

  /**
   * Separable resize, horizontal pass then vertical, each rounded to 0..255 as Pillow does
   * (Pillow uses 22-bit fixed-point weights: results may differ from it by one level). Alpha is
   * set opaque.
   */
  fun resize(image: ArgbImage, width: Int, height: Int, filter: Filter = Filter.BICUBIC): ArgbImage {
    require(width > 0 && height > 0) { "output size must be positive, got ${width}x$height" }
    // Channels as planes: [r, g, b][y * w + x].
    var w = image.width
    val h = image.height
    var planes = Array(3) { IntArray(w * h) }
    for (i in image.pixels.indices) {
      val p = image.pixels[i]
      planes[0][i] = ArgbImage.red(p); planes[1][i] = ArgbImage.green(p); planes[2][i] = ArgbImage.blue(p)
    }
    if (width != w) {
      val k = kernels(w, width, filter)
      planes = Array(3) { c -> pass(planes[c], k, h, w, width, horizontal = true) }
      w = width
    }
    if (height != h) {
      val k = kernels(h, height, filter)
      planes = Array(3) { c -> pass(planes[c], k, w, h, height, horizontal = false) }
    }
    val out = IntArray(width * height) { i -> ArgbImage.argb(planes[0][i], planes[1][i], planes[2][i]) }
    return ArgbImage(width, height, out)
  }

  /** Crop then resize: what the app feeds the model, before [toFloatRgb] or [quantize]. */
  fun centerCropResize(image: ArgbImage, width: Int, height: Int, crop: Double,
                       filter: Filter = Filter.BICUBIC): ArgbImage {
    val cropped = crop(image, centerCropBox(image.width, image.height, width, height, crop))
    if (cropped.width == width && cropped.height == height) return cropped
    return resize(cropped, width, height, filter)
  }

  /** RGB as float HWC, each channel c mapped to `(value - mean[c]) / std[c]`. */
  fun toFloatRgb(image: ArgbImage, mean: FloatArray, std: FloatArray): FloatArray {
    require(mean.size == 3 && std.size == 3) { "mean and std need 3 values (R, G, B)" }
    for (s in std) require(s != 0f && !s.isNaN()) { "std must be non-zero, got ${std.contentToString()}" }
    val out = FloatArray(image.pixels.size * 3)
    for (i in image.pixels.indices) {
      val p = image.pixels[i]
      out[3 * i] = (ArgbImage.red(p) - mean[0]) / std[0]
      out[3 * i + 1] = (ArgbImage.green(p) - mean[1]) / std[1]
      out[3 * i + 2] = (ArgbImage.blue(p) - mean[2]) / std[2]
    }
    return out
  }

  /**
   * Real values to int8 (or uint8 when [unsigned]) with a tensor's scale and zero point:
   * `q = round(x / scale) + zeroPoint`, rounding half away from zero (as TFLite's Quantize),
   * saturated to -128..127 (0..255). uint8 values are returned as their low byte.
   */
  fun quantize(values: FloatArray, scale: Float, zeroPoint: Int, unsigned: Boolean): ByteArray {
    require(scale > 0f && !scale.isInfinite()) { "scale must be positive and finite, got $scale" }
    val lo = if (unsigned) 0 else -128
    val hi = if (unsigned) 255 else 127
    require(zeroPoint in lo..hi) { "zero point $zeroPoint outside $lo..$hi" }
    val out = ByteArray(values.size)
    for (i in values.indices) {
      val v = values[i]
      require(!v.isNaN()) { "cannot quantize NaN (index $i)" }
      val r = v.toDouble() / scale
      val q = (if (r >= 0) Math.floor(r + 0.5) else -Math.floor(-r + 0.5)) + zeroPoint
      out[i] = Math.max(lo.toDouble(), Math.min(hi.toDouble(), q)).toInt().toByte()
    }
    return out
  }

  /** Python's round(): half to even (used for the crop size, as the Python preprocessing). */
  internal fun roundHalfEven(x: Double): Int = Math.rint(x).toInt()

  /** Per output index: first input index and normalized weights. */
  private class Kernels(val start: IntArray, val weights: Array<DoubleArray>)

  private fun kernels(inSize: Int, outSize: Int, filter: Filter): Kernels {
    val scale = inSize.toDouble() / outSize
    val filterScale = Math.max(scale, 1.0)
    val support = filter.support * filterScale
    val start = IntArray(outSize)
    val weights = arrayOfNulls<DoubleArray>(outSize)
    for (o in 0 until outSize) {
      val center = (o + 0.5) * scale
      val lo = Math.max(0, (center - support + 0.5).toInt())   // C cast: truncation, as Pillow
      val hi = Math.min(inSize, (center + support + 0.5).toInt())
      val w = DoubleArray(hi - lo) { j -> filter.weight((j + lo - center + 0.5) / filterScale) }
      var total = 0.0
      for (v in w) total += v
      if (total != 0.0) for (j in w.indices) w[j] /= total
      start[o] = lo
      weights[o] = w
    }
    return Kernels(start, Array(outSize) { weights[it]!! })
  }

  private fun pass(src: IntArray, k: Kernels, lines: Int, inSize: Int, outSize: Int,
                   horizontal: Boolean): IntArray {
    // horizontal: src is lines x inSize (row-major), dst lines x outSize.
    // vertical: src is inSize rows x lines columns, dst outSize rows x lines columns.
    val dst = IntArray(lines * outSize)
    for (line in 0 until lines) {
      for (o in 0 until outSize) {
        val w = k.weights[o]
        val s = k.start[o]
        var acc = 0.0
        for (j in w.indices) {
          val idx = if (horizontal) line * inSize + s + j else (s + j) * lines + line
          acc += w[j] * src[idx]
        }
        val v = Math.floor(acc + 0.5).toInt()
        dst[if (horizontal) line * outSize + o else o * lines + line] = if (v < 0) 0 else if (v > 255) 255 else v
      }
    }
    return dst
  }
}
