"""The selector fills the float MAC budget with whole fused nodes and never exceeds it (Eq. 17)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tfq_mixed import selector
from tfq_mixed.qtyping import LayerStats, Node


def _model(macs):
  """One node per entry; two layers (conv + relu) per compute node, one for zero-MAC nodes."""
  nodes, layers = [], []
  for i, m in enumerate(macs):
    names = (f"conv{i}", f"relu{i}") if m else (f"add{i}",)
    nodes.append(Node(index=i, name=f"node{i}", op_type="CONV_2D" if m else "ADD", layers=names,
                      macs=m))
    for name in names:
      layers.append(LayerStats(index=len(layers), name=name, layer_type="X", node=i,
                               macs=m if name.startswith("conv") else 0))
  return layers, nodes


def test_whole_nodes_in_ranking_order():
  layers, nodes = _model([50, 30, 0, 20])
  ranking = ["relu1", "conv3", "add2", "conv0", "relu0", "conv1", "relu3"]
  selection = selector.select_float_layers(ranking, layers, nodes, ratio=0.5)
  # budget 50: node1 (30) then node3 (20) fit; node0 (50) no longer does.
  assert selection.float_nodes == ("node1", "node3")
  assert selection.float_layers == ("relu1", "conv3", "conv1", "relu3")
  assert selection.float_macs == 50 and selection.int8_mac_ratio == pytest.approx(0.5)


def test_ratio_extremes():
  layers, nodes = _model([50, 30, 0, 20])
  ranking = [l.name for l in layers]
  assert selector.select_float_layers(ranking, layers, nodes, 1.0).float_nodes == ()
  everything = selector.select_float_layers(ranking, layers, nodes, 0.0)
  assert set(everything.float_nodes) == {"node0", "node1", "node3"}  # the ADD costs no MACs
  assert everything.int8_mac_ratio == 0.0
  assert everything.bops_reduction == pytest.approx(0.0)


def test_bops_eq17():
  layers, nodes = _model([60, 40])
  selection = selector.select_float_layers(["conv1"], layers, nodes, 0.6)
  assert selection.bops == 60 * 64 + 40 * 1024
  assert selection.bops_reduction == pytest.approx(1 - (60 * 64 + 40 * 1024) / (100 * 1024))


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(0, 1000), min_size=1, max_size=12), st.randoms(use_true_random=False),
       st.lists(st.floats(0.0, 1.0), min_size=2, max_size=6))
def test_budget_never_exceeded_within_one_node_and_monotone(macs, random, ratios):
  layers, nodes = _model(macs)
  ranking = [l.name for l in layers]
  random.shuffle(ranking)
  total = sum(macs)
  largest = max(macs)
  previous = None
  for ratio in sorted(ratios):
    selection = selector.select_float_layers(ranking, layers, nodes, ratio)
    budget = (1 - ratio) * total
    assert selection.float_macs <= budget + 1e-6 * max(total, 1)
    assert selection.float_macs > budget - largest - 1e-6 * max(total, 1)
    if previous is not None:  # a larger int8 ratio never keeps more MACs float
      assert selection.float_macs <= previous
    previous = selection.float_macs
    assert selection == selector.select_float_layers(ranking, layers, nodes, ratio)
