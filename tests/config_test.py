"""The config schema (tfq_mixed/config.py): versions, migration of older configs, field checks."""

import json
import os

import pytest

import tfq_mixed
from tfq_mixed import config as config_lib

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def _v1():
  """A config tfq_mixed 0.1.0 wrote at schema version 1 (digits model, ratio 0.8, before this
  version's changes): committed as it was written."""
  with open(os.path.join(DATA, "config_v1_digits.json"), encoding="utf-8") as f:
    return f.read()


def test_every_version_is_described():
  assert sorted(config_lib.SCHEMA_HISTORY) == list(range(1, config_lib.SCHEMA_VERSION + 1))


def test_a_version_1_config_is_migrated_when_read():
  data = json.loads(_v1())
  assert data["schema_version"] == 1 and "layer_precisions" not in data
  config = tfq_mixed.load_config(_v1())
  assert config.schema_version == config_lib.SCHEMA_VERSION
  assert config.layer_precisions == {} and config.warnings == ()
  assert config.float_nodes == tuple(data["float_nodes"])
  # Written again, it is a current config that reads back the same.
  assert tfq_mixed.load_config(config.to_json()) == config


def test_a_migrated_config_rebuilds_and_describes_its_model(digits):
  """apply_config on a version 1 config: same float nodes, the figures of the built model."""
  model, images, _ = digits
  data = json.loads(_v1())
  result = tfq_mixed.apply_config(model, images[:64], _v1())
  assert result.config.float_nodes == tuple(data["float_nodes"])
  assert result.int8_mac_ratio == pytest.approx(data["int8_mac_ratio"])
  rebuilt = tfq_mixed.convert(model, images[:64], ratio=data["options"]["ratio"],
                             fallback="float")  # version 1 configs chose by ranking
  assert rebuilt.config.float_nodes == result.config.float_nodes
  assert rebuilt.tflite == result.tflite


@pytest.mark.parametrize("field", ["layer_precisions", "warnings", "int8_unsupported_layers"])
def test_version_2_requires_what_version_1_did_not(digits_analysis, field):
  data = json.loads(digits_analysis.quantize(0.8).config.to_json())
  del data[field]
  with pytest.raises(tfq_mixed.ConfigError, match=rf"lacks the field '{field}'"):
    tfq_mixed.load_config(json.dumps(data))
