"""MACs per TFLite op (tfq_mixed/macs.py), checked against counts worked out by hand.

Each model holds one compute layer; its MACs per sample are computed here from the layer's Keras
configuration (output size x products per output), never from `macs.op_macs`.
"""

import keras
import numpy as np
import pytest

import tfq_mixed


def _compute_macs(model, sample_shape) -> int:
  """MACs per sample of every compute node `tfq_mixed` finds in `model`."""
  x = np.random.default_rng(0).normal(size=(4,) + sample_shape).astype(np.float32)
  result = tfq_mixed.convert(model, x, ratio=1.0)
  assert result.config.total_macs == sum(n.macs for n in result.nodes)
  return sum(n.macs for n in result.nodes if n.is_compute)


def _one_layer(layer, shape):
  inputs = keras.Input(shape)
  return keras.Model(inputs, layer(inputs))


# (layer, input shape, MACs per sample by hand)
CASES = {
    # 16x16x4 -> 8x8x8 (stride 2, same); each output sums 3*3*4 products.
    "conv_stride": (lambda: keras.layers.Conv2D(8, 3, strides=2, padding="same"), (16, 16, 4),
                    8 * 8 * 8 * 3 * 3 * 4),
    # Dilation 4: the converter's SPACE_TO_BATCH_ND -> CONV_2D -> BATCH_TO_SPACE_ND; the conv still
    # produces 32x32x16 outputs of 3*3*16 products each (not 1/16 of them).
    "conv_dilated": (lambda: keras.layers.Conv2D(16, 3, dilation_rate=4, padding="same"),
                     (32, 32, 16), 32 * 32 * 16 * 3 * 3 * 16),
    # Valid dilated conv: 16 - 2*(3-1) = 12 outputs per side.
    "conv_dilated_valid": (lambda: keras.layers.Conv2D(8, 3, dilation_rate=2), (16, 16, 4),
                           12 * 12 * 8 * 3 * 3 * 4),
    # Groups 2: each output sums 3*3*(4/2) products.
    "conv_groups": (lambda: keras.layers.Conv2D(8, 3, groups=2), (8, 8, 4), 6 * 6 * 8 * 3 * 3 * 2),
    # Depth multiplier 2: 4*2 output channels, each output sums 3*3 products.
    "depthwise_multiplier": (lambda: keras.layers.DepthwiseConv2D(3, depth_multiplier=2),
                             (8, 8, 4), 6 * 6 * 8 * 3 * 3),
    "depthwise_dilated": (lambda: keras.layers.DepthwiseConv2D(3, dilation_rate=2, padding="same"),
                          (16, 16, 4), 16 * 16 * 4 * 3 * 3),
    # Conv1D: EXPAND_DIMS -> CONV_2D; length 32 - 2*2 = 28.
    "conv1d_dilated": (lambda: keras.layers.Conv1D(8, 3, dilation_rate=2), (32, 4),
                       28 * 8 * 3 * 4),
    # Transposed conv: every input value is multiplied into a 3x3x8 patch of the output.
    "conv_transpose": (lambda: keras.layers.Conv2DTranspose(8, 3, strides=2), (8, 8, 4),
                       8 * 8 * 4 * 3 * 3 * 8),
    # Dense on a sequence: 5 rows x 6 units x 4 inputs (FULLY_CONNECTED, keep_num_dims or reshapes).
    "dense_sequence": (lambda: keras.layers.Dense(6), (5, 4), 5 * 6 * 4),
    "dense": (lambda: keras.layers.Dense(6), (4,), 6 * 4),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_compute_layer_macs_by_hand(case):
  make_layer, shape, expected = CASES[case]
  keras.utils.set_random_seed(0)
  assert _compute_macs(_one_layer(make_layer(), shape), shape) == expected


@pytest.mark.parametrize("transpose", ["lhs", "rhs", "none"])
def test_batch_matmul_with_transposed_operands(transpose):
  """(3 x 4) @ (4 x 5) per sample, the operands given transposed: 3*5 outputs of 4 products."""
  a = keras.Input((4, 3) if transpose == "lhs" else (3, 4))
  b = keras.Input((5, 4) if transpose == "rhs" else (4, 5))
  lhs = keras.ops.transpose(a, (0, 2, 1)) if transpose == "lhs" else a
  rhs = keras.ops.transpose(b, (0, 2, 1)) if transpose == "rhs" else b
  model = keras.Model([a, b], keras.layers.Lambda(lambda t: keras.ops.matmul(*t))([lhs, rhs]))
  rng = np.random.default_rng(0)
  x = [rng.normal(size=(4,) + tuple(t.shape[1:])).astype(np.float32) for t in (a, b)]
  result = tfq_mixed.convert(model, x, ratio=1.0)
  (matmul,) = [n for n in result.nodes if n.is_compute]
  assert matmul.op_type == "BATCH_MATMUL" and matmul.macs == 3 * 5 * 4


def test_dilated_conv_share_of_the_mac_budget():
  """The issue's example: a dilated conv between two plain ones holds 16/(9+16+16)... of the MACs.

  Per sample: conv1 3->16 on 32x32 (3*3*3 products per output), the dilated 16->16 and conv3
  16->16 (3*3*16 each). At ratio 0.9 the reported int8 share must be the real one.
  """
  keras.utils.set_random_seed(0)
  inputs = keras.Input((32, 32, 3))
  x = keras.layers.Conv2D(16, 3, padding="same", name="c1")(inputs)
  x = keras.layers.Conv2D(16, 3, dilation_rate=4, padding="same", name="dilated")(x)
  outputs = keras.layers.Conv2D(16, 3, padding="same", name="c3")(x)
  model = keras.Model(inputs, outputs)
  x = np.random.default_rng(0).normal(size=(8, 32, 32, 3)).astype(np.float32)
  result = tfq_mixed.convert(model, x, ratio=0.9)
  per_output = {"c1": 3 * 3 * 3, "dilated": 3 * 3 * 16, "c3": 3 * 3 * 16}
  macs = {name: 32 * 32 * 16 * n for name, n in per_output.items()}
  assert result.config.total_macs == sum(macs.values())
  int8 = sum(m for name, m in macs.items() if result.layer_precisions[name].precision == "int8")
  assert result.int8_mac_ratio == pytest.approx(int8 / sum(macs.values()))
  assert result.int8_mac_ratio >= 0.9
