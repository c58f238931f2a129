package dev.tfqmixed.demo

import android.app.Activity
import android.graphics.Bitmap
import android.graphics.BitmapFactory
import android.os.Bundle
import android.widget.Button
import android.widget.EditText
import android.widget.ImageView
import android.widget.Switch
import android.widget.TextView
import dev.tfqmixed.demo.core.ArgbImage
import dev.tfqmixed.demo.core.LatencyStats
import dev.tfqmixed.demo.core.Preprocessor
import dev.tfqmixed.demo.core.Scores
import dev.tfqmixed.demo.core.TopK
import org.tensorflow.lite.DataType
import org.tensorflow.lite.Interpreter
import org.tensorflow.lite.gpu.CompatibilityList
import org.tensorflow.lite.gpu.GpuDelegate
import org.tensorflow.lite.support.common.FileUtil
import java.io.IOException
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.util.Locale
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors

/**
 * Loads assets/model.tflite (the mixed int8/float model written by `python -m tfq_mixed`), runs it
 * on assets/image.jpg on the CPU (XNNPACK) or the GPU delegate, and shows the median and p90
 * latency and the top-5 labels (assets/labels.txt). All arithmetic lives in the plain-Kotlin
 * module :core (unit-tested on the JVM); this class only does Android and LiteRT calls.
 */
class MainActivity : Activity() {

  private val worker: ExecutorService = Executors.newSingleThreadExecutor()
  private val preprocessor = Preprocessor()  // EfficientNet-Lite0 of `python -m tfq_mixed`
  private var image: ArgbImage? = null
  private var labels: List<String> = emptyList()

  private lateinit var useGpu: Switch
  private lateinit var threads: EditText
  private lateinit var runs: EditText
  private lateinit var runButton: Button
  private lateinit var output: TextView

  override fun onCreate(savedInstanceState: Bundle?) {
    super.onCreate(savedInstanceState)
    setContentView(R.layout.activity_main)
    useGpu = findViewById(R.id.use_gpu)
    threads = findViewById(R.id.threads)
    runs = findViewById(R.id.runs)
    runButton = findViewById(R.id.run)
    output = findViewById(R.id.output)

    try {
      val bitmap = assets.open(IMAGE_ASSET).use {
        BitmapFactory.decodeStream(it, null, BitmapFactory.Options().apply {
          inPreferredConfig = Bitmap.Config.ARGB_8888
        })
      } ?: throw IOException("$IMAGE_ASSET is not a decodable image")
      findViewById<ImageView>(R.id.image).setImageBitmap(bitmap)
      val pixels = IntArray(bitmap.width * bitmap.height)
      bitmap.getPixels(pixels, 0, bitmap.width, 0, 0, bitmap.width, bitmap.height)
      image = ArgbImage(bitmap.width, bitmap.height, pixels)
      labels = FileUtil.loadLabels(this, LABELS_ASSET)
    } catch (e: IOException) {
      output.text = getString(R.string.idle) + "\n\n" + missingAssets(e)
    }
    runButton.setOnClickListener { startBenchmark() }
  }

  override fun onDestroy() {
    worker.shutdownNow()
    super.onDestroy()
  }

  private fun startBenchmark() {
    val picture = image ?: return
    val gpu = useGpu.isChecked
    val numThreads = threads.text.toString().toIntOrNull()?.coerceIn(1, 16) ?: 4
    val timedRuns = runs.text.toString().toIntOrNull()?.coerceIn(1, 10_000) ?: 50
    runButton.isEnabled = false
    output.text = "running..."
    worker.execute {
      val text = try {
        benchmark(picture, gpu, numThreads, timedRuns)
      } catch (e: IOException) {
        missingAssets(e)
      } catch (e: Exception) {
        "error: ${e.javaClass.simpleName}: ${e.message}"
      }
      runOnUiThread {
        output.text = text
        runButton.isEnabled = true
      }
    }
  }

  /** Builds an interpreter, feeds the preprocessed image, times [timedRuns] inferences. */
  private fun benchmark(picture: ArgbImage, gpu: Boolean, numThreads: Int, timedRuns: Int): String {
    val model = FileUtil.loadMappedFile(this, MODEL_ASSET)
    val options = Interpreter.Options().setNumThreads(numThreads).setUseXNNPACK(true)
    val delegate: GpuDelegate? = if (gpu) {
      createGpuDelegate()
          ?: return "The GPU delegate is not supported on this device. Switch GPU off to run on the CPU."
    } else {
      null
    }
    if (delegate != null) options.addDelegate(delegate)
    try {
      val initStart = System.nanoTime()
      val interpreter = Interpreter(model, options)
      try {
        val initMs = (System.nanoTime() - initStart) / 1e6
        val inTensor = interpreter.getInputTensor(0)
        val shape = inTensor.shape()  // [1, height, width, 3]
        require(shape.size == 4 && shape[0] == 1 && shape[3] == 3) {
          "expected an input of shape [1, height, width, 3], got ${shape.contentToString()}"
        }
        val height = shape[1]
        val width = shape[2]
        val input = ByteBuffer.allocateDirect(inTensor.numBytes()).order(ByteOrder.nativeOrder())
        when (inTensor.dataType()) {
          DataType.FLOAT32 -> input.asFloatBuffer().put(preprocessor.toFloat(picture, width, height))
          DataType.INT8, DataType.UINT8 -> {
            val q = inTensor.quantizationParams()
            input.put(preprocessor.toQuantized(picture, width, height, q.scale, q.zeroPoint,
                unsigned = inTensor.dataType() == DataType.UINT8))
          }
          else -> return "unsupported input type ${inTensor.dataType()}"
        }
        val outTensor = interpreter.getOutputTensor(0)
        val outBuffer = ByteBuffer.allocateDirect(outTensor.numBytes()).order(ByteOrder.nativeOrder())

        val samples = LongArray(WARMUP_RUNS + timedRuns)
        for (i in samples.indices) {
          input.rewind()
          outBuffer.rewind()
          val start = System.nanoTime()
          interpreter.run(input, outBuffer)
          samples[i] = System.nanoTime() - start
        }
        val stats = LatencyStats.fromNanos(samples, WARMUP_RUNS)

        outBuffer.rewind()
        val raw: FloatArray = when (outTensor.dataType()) {
          DataType.FLOAT32 -> FloatArray(outTensor.numElements()).also { outBuffer.asFloatBuffer().get(it) }
          DataType.INT8, DataType.UINT8 -> {
            val bytes = ByteArray(outTensor.numElements()).also { outBuffer.get(it) }
            val q = outTensor.quantizationParams()
            Scores.dequantize(bytes, q.scale, q.zeroPoint, unsigned = outTensor.dataType() == DataType.UINT8)
          }
          else -> return "unsupported output type ${outTensor.dataType()}"
        }
        val top5 = TopK.topK(Scores.probabilities(raw), 5)

        val backend = if (gpu) "GPU delegate (CPU fallback: $numThreads threads)" else "CPU, XNNPACK, $numThreads threads"
        return String.format(Locale.US,
            "%s\ninput %s %s, output %s %s\ninit %.1f ms\nlatency median %.2f ms, p90 %.2f ms\n" +
                "(min %.2f, max %.2f, mean %.2f; %d runs after %d warm-up)\n\ntop-5:\n%s",
            backend, shape.contentToString(), inTensor.dataType(), outTensor.shape().contentToString(),
            outTensor.dataType(), initMs, stats.medianMs, stats.p90Ms, stats.minMs, stats.maxMs,
            stats.meanMs, stats.count, stats.warmup, TopK.format(top5, labels))
      } finally {
        interpreter.close()
      }
    } finally {
      delegate?.close()
    }
  }

  /** The GPU delegate with the best options for this device, or null where it is unsupported. */
  private fun createGpuDelegate(): GpuDelegate? {
    val compatibility = CompatibilityList()
    try {
      return if (compatibility.isDelegateSupportedOnThisDevice) {
        GpuDelegate(compatibility.bestOptionsForThisDevice)
      } else {
        null
      }
    } finally {
      compatibility.close()
    }
  }

  private fun missingAssets(e: IOException): String =
      "Could not read the assets (${e.message}). Run `python android_demo/prepare_assets.py` to put " +
          "$MODEL_ASSET, $LABELS_ASSET and $IMAGE_ASSET into app/src/main/assets, then rebuild."

  companion object {
    const val MODEL_ASSET = "model.tflite"
    const val LABELS_ASSET = "labels.txt"
    const val IMAGE_ASSET = "image.jpg"
    const val WARMUP_RUNS = 5
  }
}
