"""Shared fixtures: one small real model trained on scikit-learn's digits, and the ../shared zoo."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position
import pytest  # pylint: disable=g-import-not-at-top,wrong-import-position

try:
  from absl import flags  # pylint: disable=g-import-not-at-top
  flags.FLAGS.mark_as_parsed()
except ImportError:
  pass

SHARED = os.path.abspath(os.environ.get(
    "TFQ_MIXED_SHARED", os.path.join(os.path.dirname(__file__), "..", "..", "shared")))


@pytest.fixture(scope="session")
def digits():
  """(model, images, labels): the digits CNN, trained once per session."""
  from tfq_mixed.demo import examples  # pylint: disable=g-import-not-at-top
  return examples.digits_model()


@pytest.fixture(scope="session")
def digits_analysis(digits):
  """One analysis of the digits model on 64 calibration images, shared by the tests."""
  import tfq_mixed  # pylint: disable=g-import-not-at-top
  model, images, _ = digits
  return tfq_mixed.analyze(model, images[:64])


def shared_path(*parts) -> str:
  """Path under ../shared; skips the test with a reason when it is absent."""
  path = os.path.join(SHARED, *parts)
  if not os.path.exists(path):
    pytest.skip(f"{path} is absent: ../shared (models and data for integration tests) is not "
                "beside this checkout")
  return path


@pytest.fixture
def rng():
  return np.random.default_rng(0)


def tflite_outputs(tflite: bytes, inputs: np.ndarray) -> np.ndarray:
  """All outputs of `tflite` (by tensor name) on each sample, concatenated: LiteRT alone, batch 1,
  no signature needed (MediaPipe's models have none)."""
  from tfq_mixed import _tflite_private  # pylint: disable=g-import-not-at-top
  interpreter = _tflite_private.make_interpreter(tflite, num_threads=1)
  (given,) = interpreter.get_input_details()
  interpreter.resize_tensor_input(given["index"], (1,) + inputs.shape[1:])
  interpreter.allocate_tensors()
  outputs = sorted(interpreter.get_output_details(), key=lambda d: d["name"])
  rows = []
  for i in range(inputs.shape[0]):
    interpreter.set_tensor(given["index"], inputs[i:i + 1])
    interpreter.invoke()
    rows.append(np.concatenate([np.ravel(interpreter.get_tensor(d["index"])) for d in outputs]))
  return np.stack(rows)


def sqnr_db(reference, other) -> float:
  """10 log10(sum ref^2 / sum (ref - other)^2) in dB, inf where equal."""
  noise = np.sum((reference.astype(np.float64) - other) ** 2)
  return float("inf") if noise == 0 else 10 * np.log10(np.sum(reference.astype(np.float64) ** 2)
                                                       / noise)
