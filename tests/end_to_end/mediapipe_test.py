"""Google's MediaPipe models as float .tflite input, read out of the mediapipe wheel.

The wheel is fetched once with `pip download --no-deps` into ~/.cache/tfq_mixed (MediaPipe's runtime
is not installed); the tests skip, saying why, where pip cannot fetch it or ../shared is absent.
"""

import glob
import os

import numpy as np
import pytest

import tfq_mixed
from tfq_mixed import float_tflite
from tfq_mixed import sources
from tests.conftest import shared_path, sqnr_db, tflite_outputs


@pytest.fixture(scope="module")
def mediapipe_models():
  from tfq_mixed.demo import mediapipe  # pylint: disable=g-import-not-at-top
  try:
    wheel = mediapipe.fetch_wheel()
  except OSError as e:
    pytest.skip(f"the mediapipe=={mediapipe.VERSION} wheel could not be fetched: {e}")
  return mediapipe.read_models(wheel, ["selfie_segmentation", "hand_recrop",
                                       "face_landmark_with_attention"])


def _photos(name: str, model: bytes, split: slice) -> np.ndarray:
  from tfq_mixed.demo import mediapipe  # pylint: disable=g-import-not-at-top
  files = sorted(glob.glob(os.path.join(shared_path("data", "imagenet-sample"), "*.JPEG")))[split]
  shape = sources.load(model).input_specs()[0].shape
  return mediapipe.photos(files, shape[1], shape[2], mediapipe.MODELS[name].value_range)


@pytest.mark.zoo
@pytest.mark.parametrize("name", ["selfie_segmentation", "hand_recrop"])
def test_mediapipe_model_converts_and_beats_int8(mediapipe_models, name, tmp_path):
  raw = mediapipe_models[name]
  calibration = _photos(name, raw, slice(0, 1000, 20))  # 50 photos
  held_out = _photos(name, raw, slice(5, 1000, 20))
  source = sources.load(raw)
  # Prepared for TensorFlow's calibrator (fp16 folded, MediaPipe's custom transposed convolution
  # made builtin, ReLUs fused): exactly the shipped model's outputs on LiteRT's default path.
  np.testing.assert_array_equal(tflite_outputs(source.model, held_out[:4]), tflite_outputs(raw, held_out[:4]))
  assert not float_tflite.custom_ops(source.model)
  analysis = tfq_mixed.analyze(raw, calibration)
  result = analysis.quantize(0.9)
  assert result.int8_mac_ratio >= 0.9
  reference = tflite_outputs(raw, held_out)
  assert sqnr_db(reference, tflite_outputs(result.tflite, held_out)) >= sqnr_db(
      reference, tflite_outputs(analysis.int8_model, held_out)) - 0.05
  path = tmp_path / f"{name}.tflite"
  path.write_bytes(raw)
  assert tfq_mixed.apply_config(str(path), calibration, result.config).tflite == result.tflite


@pytest.mark.zoo
def test_mediapipe_model_with_custom_kernels_is_refused_by_name(mediapipe_models):
  with pytest.raises(tfq_mixed.UnsupportedModelError,
                     match="Landmarks2TransformMatrix, TransformLandmarks, TransformTensorBilinear"):
    sources.load(mediapipe_models["face_landmark_with_attention"])
