"""Google's MediaPipe float .tflite models (PyPI `mediapipe==0.10.14`), read out of its wheel.

The wheel is fetched with `pip download --no-deps` into a cache folder and read as a zip: MediaPipe's
runtime is never installed (its dependencies may clash with TensorFlow 2.21). Its 14 models under
`mediapipe/modules/` are float or fp16; what each outputs and the input range MediaPipe feeds it
(from the models' metadata, or MediaPipe's graphs where they have none) are in `MODELS`.
"""

from __future__ import annotations

import dataclasses
import os
import zipfile
from typing import Optional, Sequence

import numpy as np

VERSION = "0.10.14"


@dataclasses.dataclass(frozen=True)
class ModelInfo:
  """What a MediaPipe model takes and gives.

  Attributes:
    kind: 'detector' (anchors' boxes and scores), 'landmarks' (points in input pixels),
      'segmentation' (a mask) or 'custom' (ops no TFLite kernel runs).
    value_range: the float input range MediaPipe feeds it.
    outputs: the output tensors the task metrics read: a detector's (boxes, scores); a landmark
      model's landmark outputs; a segmentation model's mask.
    stride: values per landmark (x, y first) of a landmark model.
  """

  kind: str
  value_range: tuple[float, float]
  outputs: tuple[str, ...]
  stride: int = 3


MODELS = {
    "face_detection_short_range": ModelInfo("detector", (-1.0, 1.0),
                                            ("regressors", "classificators")),
    "face_detection_full_range_sparse": ModelInfo("detector", (-1.0, 1.0),
                                                  ("Identity", "Identity_1")),
    "face_landmark": ModelInfo("landmarks", (0.0, 1.0), ("conv2d_21",)),
    "face_landmark_with_attention": ModelInfo("custom", (0.0, 1.0), ()),
    "hand_landmark_full": ModelInfo("landmarks", (0.0, 1.0), ("Identity",)),
    "hand_landmark_lite": ModelInfo("landmarks", (0.0, 1.0), ("Identity",)),
    "hand_recrop": ModelInfo("landmarks", (0.0, 1.0), ("output_crop",), stride=2),
    "iris_landmark": ModelInfo("landmarks", (0.0, 1.0),
                               ("output_eyes_contours_and_brows", "output_iris")),
    "palm_detection_full": ModelInfo("detector", (0.0, 1.0), ("Identity", "Identity_1")),
    "palm_detection_lite": ModelInfo("detector", (0.0, 1.0), ("Identity", "Identity_1")),
    "pose_detection": ModelInfo("detector", (-1.0, 1.0), ("Identity", "Identity_1")),
    "pose_landmark_full": ModelInfo("landmarks", (0.0, 1.0), ("Identity",), stride=5),
    "selfie_segmentation": ModelInfo("segmentation", (0.0, 1.0), ("activation_10",)),
    "selfie_segmentation_landscape": ModelInfo("segmentation", (0.0, 1.0), ("segment_back",)),
}


def fetch_wheel() -> str:
  """The path of the mediapipe wheel, downloaded once (`default_model.download_wheel`) into the
  cache folder (`default_model.cache_dir`: $TFQ_MIXED_CACHE, else ~/.cache/tfq_mixed).

  Raises:
    OSError: pip could not download it (offline, no wheel for this platform).
  """
  from tfq_mixed import files  # pylint: disable=g-import-not-at-top
  from tfq_mixed.demo import default_model  # pylint: disable=g-import-not-at-top
  name = f"mediapipe-{VERSION}.whl"
  path = os.path.join(default_model.cache_dir(), name)
  if not os.path.isfile(path):
    # Built per platform: no one hash pins it; `read_models` checks the models are in it.
    data = default_model.download_wheel(f"mediapipe=={VERSION}", sha256=None)
    files.save_files(default_model.cache_dir(), {name: data}, overwrite=True)
  return path


def read_models(wheel: str, names: Optional[Sequence[str]] = None) -> dict[str, bytes]:
  """{model name: .tflite bytes} of the wheel's `mediapipe/modules/**.tflite` (or just `names`)."""
  out = {}
  with zipfile.ZipFile(wheel) as archive:
    for info in archive.infolist():
      path = info.filename
      if path.startswith("mediapipe/modules/") and path.endswith(".tflite"):
        name = os.path.basename(path)[:-len(".tflite")]
        if names is None or name in names:
          out[name] = archive.read(info)
  missing = sorted(set(names or MODELS) - set(out))
  if missing:
    raise OSError(f"{wheel} has no mediapipe/modules/**/{missing[0]}.tflite: not the "
                  f"mediapipe=={VERSION} wheel. Delete it to download it again.")
  return dict(sorted(out.items()))


def photos(paths: Sequence[str], height: int, width: int,
           value_range: tuple[float, float]) -> np.ndarray:
  """Photos as a model's inputs: RGB, resized to (height, width) with bilinear resampling, as
  MediaPipe's ImageToTensor does, and scaled to `value_range`."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  low, high = value_range
  out = np.empty((len(paths), height, width, 3), np.float32)
  for i, path in enumerate(paths):
    with Image.open(path) as image:
      pixels = np.asarray(image.convert("RGB").resize((width, height), Image.BILINEAR), np.float32)
    out[i] = low + pixels / 255.0 * (high - low)
  return out
