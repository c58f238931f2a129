"""What the built model runs in (tfq_mixed/precisions.py): node and layer labels that are true.

The MAC counts of the transformer block are worked out by hand from its configuration.
"""

import keras
import numpy as np
import pytest

import tfq_mixed
from tfq_mixed import _tflite_private

TOKENS, WIDTH, HEADS, KEY_DIM, CLASSES = 16, 32, 2, 16, 10
PROJECTION_MACS = TOKENS * (HEADS * KEY_DIM) * WIDTH  # query, key, value and output: one each
ATTENTION_MACS = HEADS * TOKENS * TOKENS * KEY_DIM  # scores = q k^T; the same again for scores v


@pytest.fixture(scope="module")
def block():
  """(model, samples, analysis): MultiHeadAttention, residual ADD, LayerNorm, Dense, Softmax."""
  keras.utils.set_random_seed(0)
  inputs = keras.Input((TOKENS, WIDTH))
  x = keras.layers.MultiHeadAttention(HEADS, KEY_DIM, name="mha")(inputs, inputs)
  x = keras.layers.Add(name="residual")([x, inputs])
  x = keras.layers.LayerNormalization(name="norm")(x)
  x = keras.layers.Dense(CLASSES, name="head")(x)
  outputs = keras.layers.Softmax(name="softmax")(x)
  model = keras.Model(inputs, outputs, name="block")
  samples = np.random.default_rng(0).normal(size=(16, TOKENS, WIDTH)).astype(np.float32)
  return model, samples, tfq_mixed.analyze(model, samples)


def test_macs_of_the_block_by_hand(block):
  _, _, analysis = block
  by_layer = {}
  for node in analysis.nodes:
    for name in node.layers:
      by_layer[name] = by_layer.get(name, 0) + node.macs
  assert by_layer["mha"] == 4 * PROJECTION_MACS + 2 * ATTENTION_MACS
  assert by_layer["head"] == TOKENS * CLASSES * WIDTH


def test_a_layer_with_most_macs_in_int8_is_mixed_not_float(block):
  """One attention matmul float (10 % of the attention's MACs): 'mixed', with its MAC shares."""
  _, _, analysis = block
  total = 4 * PROJECTION_MACS + 2 * ATTENTION_MACS + TOKENS * CLASSES * WIDTH
  # The custom order offers the attention's nodes in graph order; the first that fits the float
  # budget of 0.1 * total MACs is the first attention matmul (the projections are too big).
  result = analysis.quantize(1 - ATTENTION_MACS / total, ranker=["mha"], fallback="float")
  mha = result.layer_precisions["mha"]
  assert mha.precision == "mixed"
  assert dict(mha.macs) == {"int8": 4 * PROJECTION_MACS + ATTENTION_MACS, "float": ATTENTION_MACS}
  assert mha.share("float") == pytest.approx(ATTENTION_MACS / (4 * PROJECTION_MACS +
                                                               2 * ATTENTION_MACS))
  assert "mha" not in result.float_layers and result.float_layers == ()
  row = next(r for r in result.report_rows() if r["layer"] == "mha")
  assert row["precision"] == "mixed" and float(row["float_mac_share"]) == pytest.approx(0.1)
  assert "mixed (int8 90%, float 10%)" in result.report(limit=None)
  assert result.layer_precisions["head"].precision == "int8"
  # The float matmul is a BATCH_MATMUL reading float inputs in the .tflite itself.
  (float_node,) = [n for n in analysis.nodes
                   if result.node_precisions.get(n.name) == tfq_mixed.Precision.FLOAT and
                   n.is_compute]
  assert float_node.op_type == "BATCH_MATMUL" and float_node.macs == ATTENTION_MACS


def _quantized_tensors(tflite):
  interpreter = _tflite_private.make_interpreter(tflite, builtin_only=True)
  found = []
  for op in _tflite_private.ops(interpreter):
    for t in list(op["inputs"]) + list(op["outputs"]):
      details = _tflite_private.tensor_details(interpreter, t) if t >= 0 else None
      if details and details["quantization_parameters"]["scales"].size:
        found.append((op["op_name"], details["name"]))
  return found


def test_ratio_zero_is_the_float_model(block):
  """SOFTMAX, LayerNorm's ops and the residual ADD go float too; outputs match Keras."""
  model, samples, analysis = block
  result = analysis.quantize(0.0)
  assert _quantized_tensors(result.tflite) == []
  assert set(result.node_precisions.values()) == {tfq_mixed.Precision.FLOAT}
  assert {p.precision for p in result.layer_precisions.values()} <= {"float", "-"}
  runner = _tflite_private.make_interpreter(result.tflite).get_signature_runner()
  (output,) = runner(input_0=samples[:4]).values()
  np.testing.assert_allclose(output, model.predict(samples[:4], verbose=0), atol=1e-5)
  assert result.int8_mac_ratio == 0.0


def test_full_int8_model_is_int8_everywhere(block):
  _, _, analysis = block
  result = analysis.quantize(1.0)
  assert result.tflite == analysis.int8_model
  labels = {name: p.precision for name, p in result.layer_precisions.items()}
  assert labels["mha"] == labels["head"] == labels["softmax"] == labels["residual"] == "int8"
  # LayerNormalization's NEG has no int8 kernel in TFLite: the layer is partly float even here.
  assert labels["norm"] == "mixed"
  assert result.int8_unsupported_layers == ("norm",)
