"""Integration tests on the real pretrained models of ../shared/zoo (skipped without ../shared)."""

import os

import keras
import numpy as np
import pytest
from PIL import Image

import tfq_mixed
from tfq_mixed import calibrator, dataset

from tests.conftest import shared_path

ZOO = {  # model -> (image folder, size, preprocessing of RGB 0..255) per zoo/MODELS.md
    "efficientnet_lite0": ("imagenet-sample", 224, lambda x: (x - 127.0) / 128.0),
    "tiny_darknet": ("imagenet-sample", 224, lambda x: x / 255.0),
    "resnet20_cifar10": ("cifar10-test", 32, None),
    "resnet56_cifar10": ("cifar10-test", 32, None),
}
_MEAN, _STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def _images(folder: str, size: int, count: int) -> np.ndarray:
  root = shared_path("data", folder)
  if folder == "cifar10-test":  # first files of each class: the calibration split
    files = [os.path.join(root, c, f) for c in sorted(os.listdir(root))
             for f in sorted(os.listdir(os.path.join(root, c)))[:2]][:count]
  else:
    names = sorted(f for f in os.listdir(root) if f.endswith(".JPEG"))
    files = [os.path.join(root, f) for f in names[::10][:count]]
  out = []
  for path in files:
    image = Image.open(path).convert("RGB")
    if size == 224:
      w, h = image.size
      crop = 0.875 * min(w, h)
      image = image.crop(((w - crop) / 2, (h - crop) / 2, (w + crop) / 2, (h + crop) / 2))
      image = image.resize((size, size), Image.BICUBIC)
    out.append(np.asarray(image, np.float32))
  return np.stack(out)


def _load(name):
  folder, size, preprocess = ZOO[name]
  model = keras.saving.load_model(shared_path("zoo", f"{name}.keras"))
  x = _images(folder, size, 8)
  x = preprocess(x) if preprocess else (x / 255.0 - _MEAN) / _STD
  return model, x.astype(np.float32)


@pytest.mark.zoo
@pytest.mark.parametrize("name", sorted(ZOO))
def test_at_least_95_percent_of_compute_ops_map_to_layers(name):
  model, x = _load(name)
  samples = dataset.load_samples(x[:2], dataset.model_input_specs(model))
  calibration = calibrator.calibrate(model, samples)
  compute = [n for n in calibration.nodes if n.is_compute]
  mapped = [n for n in compute if n.layers]
  assert len(compute) >= 10
  assert len(mapped) / len(compute) >= 0.95, [n.name for n in compute if not n.layers]
  layer_types = {l.name: l.layer_type for l in calibration.layers}
  for node in mapped:  # each compute op holds exactly one compute layer
    kinds = [layer_types[l] for l in node.layers if layer_types[l] in ("Conv2D", "DepthwiseConv2D",
                                                                        "Dense")]
    assert len(kinds) == 1, node


@pytest.mark.zoo
def test_resnet20_end_to_end():
  model, x = _load("resnet20_cifar10")
  analysis = tfq_mixed.analyze(model, x)
  weights = [l for l in analysis.layers if l.layer_type in ("Conv2D", "Dense")]
  assert len(weights) == len([n for n in analysis.nodes if n.is_compute]) >= 20
  assert all(np.isfinite(l.weight_sqnr_db) and np.isfinite(l.fused_weight_sqnr_db) for l in weights)
  assert sum(np.isfinite(l.activation_sqnr_db) for l in analysis.layers) >= 20
  result = analysis.quantize(0.9)
  assert 0.9 <= result.int8_mac_ratio < 0.95
  float_logits = model.predict(x, verbose=0)
  interpreter = tfq_mixed._tflite_private.make_interpreter(result.tflite)  # pylint: disable=protected-access
  runner = interpreter.get_signature_runner()
  mixed_logits = list(runner(input_0=x).values())[0]
  assert np.mean(np.argmax(mixed_logits, 1) == np.argmax(float_logits, 1)) >= 0.75
