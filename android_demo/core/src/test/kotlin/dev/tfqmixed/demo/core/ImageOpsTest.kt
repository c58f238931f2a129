package dev.tfqmixed.demo.core

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Test

/** Expected values are hand-computed (see comments) and agree with Pillow's Image.resize. */
class ImageOpsTest {

  private fun grey(vararg v: Int): IntArray = IntArray(v.size) { ArgbImage.argb(v[it], v[it], v[it]) }
  private fun reds(image: ArgbImage): IntArray = IntArray(image.pixels.size) { ArgbImage.red(image.pixels[it]) }

  @Test fun argbPacksAndUnpacks() {
    val p = ArgbImage.argb(1, 2, 3)
    assertEquals(0xff010203.toInt(), p)
    assertEquals(1, ArgbImage.red(p)); assertEquals(2, ArgbImage.green(p)); assertEquals(3, ArgbImage.blue(p))
  }

  @Test fun centerCropBoxMatchesPythonPreprocessing() {
    // 640x427 (scikit-learn's china.jpg) to 224x224 at 0.875: 427 * 0.875 = 373.625 -> 374;
    // left (640 - 374) / 2 = 133, top (427 - 374) / 2 = 26 (floored).
    assertEquals(CropBox(133, 26, 374, 374), ImageOps.centerCropBox(640, 427, 224, 224, 0.875))
    assertEquals(CropBox(1, 1, 2, 2), ImageOps.centerCropBox(4, 4, 2, 2, 0.5))
    // Output 50 wide, 25 high: the box keeps that 2:1 shape: 100 x 50, centered vertically.
    assertEquals(CropBox(0, 25, 100, 50), ImageOps.centerCropBox(100, 100, 50, 25, 1.0))
    // 5 * 0.5 = 2.5 rounds half to even (Python's round) -> 2.
    assertEquals(CropBox(1, 1, 2, 2), ImageOps.centerCropBox(5, 5, 1, 1, 0.5))
  }

  @Test(expected = IllegalArgumentException::class) fun cropFractionAboveOneIsRejected() {
    ImageOps.centerCropBox(10, 10, 5, 5, 1.5)
  }

  @Test fun cropCopiesTheBox() {
    // 3x2 image, values 0..5 row-major; box (1, 0, 2, 2) keeps columns 1..2.
    val image = ArgbImage(3, 2, grey(0, 1, 2, 3, 4, 5))
    assertArrayEquals(intArrayOf(1, 2, 4, 5), reds(ImageOps.crop(image, CropBox(1, 0, 2, 2))))
  }

  @Test fun resizeToSameSizeIsIdentity() {
    val image = ArgbImage(3, 2, intArrayOf(
        ArgbImage.argb(10, 20, 30), ArgbImage.argb(200, 100, 0), ArgbImage.argb(7, 8, 9),
        ArgbImage.argb(0, 0, 0), ArgbImage.argb(255, 255, 255), ArgbImage.argb(1, 250, 3)))
    assertArrayEquals(image.pixels, ImageOps.resize(image, 3, 2, Filter.BICUBIC).pixels)
  }

  @Test fun bilinearDownscaleWidensTheKernel() {
    // 4 -> 2: scale 2, support 2. Output 0: center 1, inputs 0..2, weights 0.75, 0.75, 0.25
    // (/1.75): (0*3 + 70*3 + 140) / 7 = 50. Output 1: inputs 1..3, weights 1, 3, 3 (/7):
    // (70 + 140*3 + 210*3) / 7 = 160.
    val out = ImageOps.resize(ArgbImage(4, 1, grey(0, 70, 140, 210)), 2, 1, Filter.BILINEAR)
    assertArrayEquals(intArrayOf(50, 160), reds(out))
  }

  @Test fun bicubicDownscaleRoundsAndClamps() {
    // 4 -> 2, Keys a = -0.5 at x = 0.25, 0.75, 1.25: 0.8671875, 0.2265625, -0.0703125;
    // weights per output sum to 1.890625.
    // [0,0,0,255]: out0 = 255 * -0.0703125 / 1.890625 = -9.5 -> 0; out1 = 255 * 0.8671875 / 1.890625 = 116.96 -> 117.
    assertArrayEquals(intArrayOf(0, 117),
        reds(ImageOps.resize(ArgbImage(4, 1, grey(0, 0, 0, 255)), 2, 1, Filter.BICUBIC)))
    // [255,255,255,0]: out0 = 255 * 1.9609375 / 1.890625 = 264.5 -> 255; out1 = 255 * 1.0234375 / 1.890625 = 138.04 -> 138.
    assertArrayEquals(intArrayOf(255, 138),
        reds(ImageOps.resize(ArgbImage(4, 1, grey(255, 255, 255, 0)), 2, 1, Filter.BICUBIC)))
  }

  @Test fun bilinearUpscale() {
    // 2 -> 4: centers 0.25, 0.75, 1.25, 1.75 in input pixels: 0, 0.25*100, 0.75*100, 100.
    assertArrayEquals(intArrayOf(0, 25, 75, 100),
        reds(ImageOps.resize(ArgbImage(2, 1, grey(0, 100)), 4, 1, Filter.BILINEAR)))
  }

  @Test fun verticalPassKeepsChannelsApart() {
    // 1 wide, 2 high -> 1x1 bilinear: the mean of the two rows, per channel, alpha opaque.
    val image = ArgbImage(1, 2, intArrayOf(ArgbImage.argb(10, 100, 0, 7), ArgbImage.argb(30, 50, 255)))
    val out = ImageOps.resize(image, 1, 1, Filter.BILINEAR)
    assertEquals(ArgbImage.argb(20, 75, 128), out.pixels[0])  // 127.5 rounds half up to 128
  }

  @Test fun centerCropResizeCropsBeforeResizing() {
    // 4x4, crop 0.5 -> the central 2x2 (values 5, 6, 9, 10), then 2x2 -> 1x1 bilinear: 7.5 -> 8.
    val image = ArgbImage(4, 4, grey(*IntArray(16) { it }))
    assertArrayEquals(intArrayOf(5, 6, 9, 10), reds(ImageOps.centerCropResize(image, 2, 2, 0.5)))
    assertArrayEquals(intArrayOf(8), reds(ImageOps.centerCropResize(image, 1, 1, 0.5, Filter.BILINEAR)))
  }

  @Test fun toFloatRgbNormalizesPerChannel() {
    val image = ArgbImage(2, 1, intArrayOf(ArgbImage.argb(255, 127, 0), ArgbImage.argb(124, 116, 104)))
    // (255 - 127) / 128 = 1, (127 - 127) / 128 = 0, (0 - 127) / 128 = -0.9921875.
    val efficientNet = ImageOps.toFloatRgb(image, floatArrayOf(127f, 127f, 127f), floatArrayOf(128f, 128f, 128f))
    assertArrayEquals(floatArrayOf(1f, 0f, -0.9921875f, -0.0234375f, -0.0859375f, -0.1796875f), efficientNet, 0f)
    // Torchvision-style ImageNet mean/std on pixel (124, 116, 104).
    val imagenet = ImageOps.toFloatRgb(image, floatArrayOf(123.675f, 116.28f, 103.53f),
        floatArrayOf(58.395f, 57.12f, 57.375f))
    assertEquals(0.0055655f, imagenet[3], 1e-6f)
    assertEquals(-0.0049020f, imagenet[4], 1e-6f)
    assertEquals(0.0081917f, imagenet[5], 1e-6f)
  }

  @Test fun quantizeInt8RoundsHalfAwayFromZeroAndSaturates() {
    // scale 0.5, zero point 0: x / 0.5 = 1.5 -> 2, -1.5 -> -2, 0.5 -> 1, -0.5 -> -1, 300 -> 127, -300 -> -128.
    val q = ImageOps.quantize(floatArrayOf(0.75f, -0.75f, 0.25f, -0.25f, 150f, -150f, 0f), 0.5f, 0, false)
    assertArrayEquals(byteArrayOf(2, -2, 1, -1, 127, -128, 0), q)
    // zero point shifts: 1.0 / 0.25 + (-3) = 1.
    assertArrayEquals(byteArrayOf(1), ImageOps.quantize(floatArrayOf(1f), 0.25f, -3, false))
  }

  @Test fun quantizeUint8UsesTheZeroPoint() {
    // EfficientNet-style uint8 input: scale 1/128, zero point 128: -1 -> 0, 0 -> 128,
    // 127/128 -> 255, 1 -> 256 -> 255 (saturated).
    val q = ImageOps.quantize(floatArrayOf(-1f, 0f, 0.9921875f, 1f), 0.0078125f, 128, true)
    assertArrayEquals(intArrayOf(0, 128, 255, 255), IntArray(q.size) { q[it].toInt() and 0xff })
  }

  @Test(expected = IllegalArgumentException::class) fun quantizeRejectsZeroPointOutOfRange() {
    ImageOps.quantize(floatArrayOf(0f), 1f, 200, false)
  }

  @Test fun preprocessorChainsCropResizeAndNormalization() {
    // 2x2 grey 0, 100, 100, 255 -> 1x1 bilinear: 113.75 -> 114; (114 - 127) / 128 = -0.1015625.
    val image = ArgbImage(2, 2, grey(0, 100, 100, 255))
    val p = Preprocessor(crop = 1.0, filter = Filter.BILINEAR)
    assertArrayEquals(floatArrayOf(-0.1015625f, -0.1015625f, -0.1015625f), p.toFloat(image, 1, 1), 0f)
    // Quantized with scale 1/128, zero point 0: -13 per channel.
    assertArrayEquals(byteArrayOf(-13, -13, -13), p.toQuantized(image, 1, 1, 0.0078125f, 0, false))
  }
}
