"""`python -m tfq_mixed`: the main job on the embedded default (a digits CNN trained on the spot)."""

import os
import sys

import numpy as np


def main() -> int:
  import tfq_mixed  # pylint: disable=g-import-not-at-top
  from tfq_mixed import _tflite_private, examples  # pylint: disable=g-import-not-at-top
  out_dir = sys.argv[1] if len(sys.argv) > 1 else "tfq_mixed_out"
  print("Training a small CNN on scikit-learn's digits (the embedded default)...")
  model, images, labels = examples.digits_model()
  calibration, test_x, test_y = images[:200], images[1297:], labels[1297:]
  result = tfq_mixed.convert(model, calibration, ratio=0.9, verbose=True)
  print(result.report())

  def accuracy(tflite: bytes) -> float:
    interpreter = _tflite_private.make_interpreter(tflite)
    runner = interpreter.get_signature_runner()
    logits = list(runner(input_0=test_x).values())[0]
    return float(np.mean(np.argmax(logits, axis=1) == test_y))

  float_acc = float(np.mean(np.argmax(model.predict(test_x, verbose=0), 1) == test_y))
  analysis_int8 = tfq_mixed.convert(model, calibration, ratio=1.0)
  print(f"top-1 on 500 held-out digits: float {float_acc:.3f}, "
        f"int8 {accuracy(analysis_int8.tflite):.3f}, mixed {accuracy(result.tflite):.3f} "
        f"(int8 MAC ratio {result.int8_mac_ratio:.3f})")
  paths = result.save(out_dir, overwrite=True)
  print("wrote", ", ".join(os.path.relpath(p) for p in paths.values()))
  return 0


if __name__ == "__main__":
  sys.exit(main())
