package dev.tfqmixed.demo.core

/**
 * How the demo turns a photo into the model's input tensor.
 *
 * The defaults are the preprocessing of the model `python -m tfq_mixed` writes (EfficientNet-Lite0,
 * `tfq_mixed.demo.default_model.PREPROCESSING`): center crop of 87.5 % of the shorter side, bicubic
 * resize, then `(pixel - 127) / 128` per RGB channel.
 */
class Preprocessor(
    val crop: Double = 0.875,
    val mean: FloatArray = floatArrayOf(127f, 127f, 127f),
    val std: FloatArray = floatArrayOf(128f, 128f, 128f),
    val filter: Filter = Filter.BICUBIC) {

  init {
    require(crop > 0.0 && crop <= 1.0) { "crop must be in (0, 1], got $crop" }
    require(mean.size == 3 && std.size == 3) { "mean and std need 3 values (R, G, B)" }
  }

  /** Float HWC input (a float32 input tensor of shape [1, height, width, 3]). */
  fun toFloat(image: ArgbImage, width: Int, height: Int): FloatArray =
      ImageOps.toFloatRgb(ImageOps.centerCropResize(image, width, height, crop, filter), mean, std)

  /** int8 / uint8 HWC input, quantized with the input tensor's [scale] and [zeroPoint]. */
  fun toQuantized(image: ArgbImage, width: Int, height: Int, scale: Float, zeroPoint: Int,
                  unsigned: Boolean): ByteArray =
      ImageOps.quantize(toFloat(image, width, height), scale, zeroPoint, unsigned)
}
