"""Noise propagation: each node's own noise carried to the model output (tfq_mixed.propagation)."""

import math

import numpy as np
import pytest

from tfq_mixed import propagation
from tfq_mixed.qtyping import LayerStats, Node


def _node(index, op_type, macs=0):
  return Node(index=index, name=f"op{index}", op_type=op_type, layers=(f"l{index}",), macs=macs)


def _measured(index, accumulated, own, signal=1.0, **extra):
  """The metrics of node `index`'s output: accumulated MSE and own noise, as the passes give them."""
  return LayerStats(index=index, name=f"l{index}", layer_type="Conv2D", node=index, macs=0,
                    mse=accumulated, activation_sqnr_db=10 * math.log10(signal / accumulated),
                    op_sqnr_db=10 * math.log10(signal / own), **extra)


def test_chain_gains_and_shares_by_hand():
  # input -> conv 0 -> relu 1 -> conv 2 -> output, signal power 1 everywhere.
  # relu: E 0.02 = g * 0.01 + 0.005 -> g = 1.5; conv 2: E 0.05 = g * 0.02 + 0.02 -> g = 1.5.
  nodes = [_node(0, "CONV_2D", 100), _node(1, "RELU"), _node(2, "CONV_2D", 100)]
  producers = {0: (), 1: (0,), 2: (1,)}
  layers = [_measured(0, 0.01, 0.004), _measured(1, 0.02, 0.005), _measured(2, 0.05, 0.02)]
  own, to_output = propagation.output_gains(layers, nodes, producers)
  # Conv 0 reads the model input: the input's rounding goes with it, all of E is its own.
  assert own == pytest.approx({0: 0.01, 1: 0.005, 2: 0.02})
  assert to_output == pytest.approx({2: 1.0, 1: 1.5, 0: 2.25})
  # The contributions add up to the output's relative noise power.
  assert sum(own[n] * to_output[n] for n in own) == pytest.approx(0.05)
  shares = propagation.output_noise_shares(layers, nodes, producers)
  # Conv 0 float takes its follower (the ReLU) along: (0.01 * 2.25 + 0.005 * 1.5) / 0.05.
  assert shares == pytest.approx({0: 0.6, 2: 0.4})


def test_rounding_that_stays_is_not_counted():
  # Conv 2's output goes to an int8 op (no follower): its output rounding (1/12 step^2, here with
  # an RMS error of 1 step, 1/12 of its own noise) is applied again there.
  nodes = [_node(0, "CONV_2D", 100), _node(1, "CONV_2D", 100), _node(2, "SOFTMAX")]
  producers = {0: (), 1: (0,), 2: (1,)}
  layers = [_measured(0, 0.01, 0.01), _measured(1, 0.03, 0.02, op_error_lsb=1.0)]
  shares = propagation.output_noise_shares(layers, nodes, producers)
  # The SOFTMAX is not measured: it passes the noise on with gain 1 and the output power is its
  # producer's. Conv 1: g = (0.03 - 0.02) / 0.01 = 1.
  assert shares[1] == pytest.approx(0.02 * (1 - 1 / 12) / 0.03)
  assert shares[0] == pytest.approx(0.01 / 0.03)


def test_branches_sum_over_paths():
  # A residual block: conv 0 feeds conv 1 and the ADD 2; the ADD's inherited noise is split with
  # one gain for both inputs: g = (0.1 - 0.01) / (0.02 + 0.04) = 1.5.
  nodes = [_node(0, "CONV_2D", 10), _node(1, "CONV_2D", 10), _node(2, "ADD")]
  producers = {0: (), 1: (0,), 2: (0, 1)}
  layers = [_measured(0, 0.02, 0.02), _measured(1, 0.04, 0.01), _measured(2, 0.1, 0.01)]
  own, to_output = propagation.output_gains(layers, nodes, producers)
  g_add, g_conv1 = 1.5, (0.04 - 0.01) / 0.02
  assert to_output[1] == pytest.approx(g_add)
  assert to_output[0] == pytest.approx(g_add + g_conv1 * g_add)
  assert sum(own[n] * to_output[n] for n in own) == pytest.approx(0.1)


def test_shares_of_a_real_analysis_add_up(digits_analysis):
  layers, nodes = digits_analysis.layers, digits_analysis.nodes
  producers = digits_analysis.op_inputs
  own, to_output = propagation.output_gains(layers, nodes, producers)
  # The gains read off the two passes carry every node's own noise to the logits, where together
  # they make the output's measured relative noise power: this fails if an edge is lost.
  logits = next(l for l in layers if l.name == "logits")
  assert sum(own[n] * to_output[n] for n in own) == pytest.approx(
      10 ** (-logits.activation_sqnr_db / 10), rel=1e-6)
  compute = {n.index for n in nodes if n.is_compute}
  shared = {l.node: l.output_noise_share for l in layers if not np.isnan(l.output_noise_share)}
  assert set(shared) == compute  # one per compute node, on the layer with its op metrics
  assert all(0.0 <= s <= 1.0 for s in shared.values())
  assert sum(shared.values()) <= 1.0 + 1e-9
