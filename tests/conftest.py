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
