"""Rankers: total, deterministic orders; Algorithm 2 of QuantuneV2 on hand-made metric tables."""

import dataclasses
import math

import pytest

import tfq_mixed
from tfq_mixed import rankers
from tfq_mixed.qtyping import LayerStats, Ranker

NAN = math.nan


def _layer(i, name, **metrics):
  return LayerStats(index=i, name=name, layer_type="Conv2D", node=i, macs=10, **metrics)


def _table():
  return [
      _layer(0, "a", weight_sqnr_db=40.0, weight_sqnr_delta=0.0, activation_sqnr_delta=0.0, mse=1.0),
      _layer(1, "b", weight_sqnr_db=30.0, weight_sqnr_delta=-10.0, activation_sqnr_delta=-1.0,
             mse=1.0),
      _layer(2, "c", weight_sqnr_db=35.0, weight_sqnr_delta=5.0, activation_sqnr_delta=-5.0, mse=1.0),
      _layer(3, "d", weight_sqnr_db=38.0, weight_sqnr_delta=3.0, activation_sqnr_delta=2.0,
             mse=100.0),
      _layer(4, "e"),  # no metric at all (e.g. a Dropout)
  ]


@pytest.mark.parametrize("ranker", list(Ranker))
def test_every_ranker_is_a_deterministic_permutation(ranker):
  table = _table()
  first = rankers.rank(table, ranker, random_state=3)
  assert sorted(first) == sorted(l.name for l in table)
  assert first == rankers.rank(table, ranker, random_state=3)


def test_random_depends_on_seed_only():
  table = [_layer(i, f"l{i}") for i in range(30)]
  assert rankers.rank(table, "random", 0) != rankers.rank(table, "random", 1)


def test_quantune_algorithm2():
  # mean MSE of a-d = 25.75; 5x = 128.75: no outlier yet.
  order = rankers.rank(_table(), "quantune_paper")
  # weight-delta ranks: b0 a1 d2 c3 (e last: 5); activation: c0 b1 a2 d3 (e 5).
  # score = 2*w + a: b=1, a=4, c=6, d=7, e=15.
  assert order == ("b", "a", "c", "d", "e")


def test_quantune_mse_outliers_come_first():
  table = _table() + [_layer(5, f"z{i}", mse=0.5) for i in range(12)]
  # mean MSE = (103 + 6) / 16 = 6.8; only d (100) exceeds 5x the mean.
  assert rankers.rank(table, "quantune_paper")[0] == "d"


def test_weight_sqnr_orders_lowest_first_and_missing_last():
  assert rankers.rank(_table(), "weight_sqnr") == ("b", "c", "d", "a", "e")
  assert rankers.rank(_table(), "mse")[0] == "d"


def test_unknown_ranker_lists_valid_ones():
  with pytest.raises(tfq_mixed.InvalidArgumentError, match="Unknown ranker 'quantum'.*'quantune'"):
    rankers.rank(_table(), "quantum")
  with pytest.raises(ValueError, match="in_order"):
    Ranker.parse("nope")


def _node_layer(i, node, macs, **metrics):
  return LayerStats(index=i, name=f"n{node}_{i}", layer_type="Conv2D", node=node, macs=macs,
                    **metrics)


def test_quantune_ranks_noise_removed_per_float_mac():
  # op_sqnr_db: the noise each node adds by itself. Nodes 1 and 2 add the same (20 dB), node 2 with
  # 100x fewer MACs; node 3 adds 10x more noise (10 dB) than node 1 with 10x its MACs.
  table = [
      _node_layer(0, 0, 100, op_sqnr_db=40.0),
      _node_layer(1, 1, 1000, op_sqnr_db=20.0),
      _node_layer(2, 2, 10, op_sqnr_db=20.0),
      _node_layer(3, 3, 10000, op_sqnr_db=10.0),
  ]
  scores = rankers.quantune.node_scores(table)
  assert scores[1] == (2, pytest.approx(0.01 / 1000))
  assert scores[2] == (2, pytest.approx(0.01 / 10))
  assert scores[3] == (2, pytest.approx(scores[1][1]))
  order = rankers.rank(table, "quantune")
  assert order[0] == "n2_2" and order.index("n1_1") < order.index("n3_3") < order.index("n0_0")
  # The paper's order ignores MACs and this metric: it is not the same.
  assert rankers.rank(table, "quantune_paper") != order


def test_quantune_ranks_error_beyond_output_rounding_per_float_mac():
  # op_error_lsb: the RMS error each node adds by itself, in steps of its int8 output. Rounding
  # alone (1/sqrt(12) step) comes back at the next int8 op: nothing to gain from node 0.
  rounding = math.sqrt(1.0 / 12.0)
  table = [
      _node_layer(0, 0, 10, op_error_lsb=rounding, op_sqnr_db=10.0),
      _node_layer(1, 1, 1000, op_error_lsb=2.0),
      _node_layer(2, 2, 10, op_error_lsb=1.0),
      _node_layer(3, 3, 10, op_sqnr_db=0.0),  # float output: no step to measure in
  ]
  scores = rankers.quantune.node_scores(table)
  assert scores[0] == (1, 0.0)
  assert scores[1] == (1, pytest.approx((4.0 - 1.0 / 12.0) / 1000))
  assert scores[2] == (1, pytest.approx((1.0 - 1.0 / 12.0) / 10))
  # Node 2 removes less error than node 1 but 100x cheaper; unmeasured node 3 comes last.
  assert rankers.rank(table, "quantune") == ("n2_2", "n1_1", "n0_0", "n3_3")


def test_quantune_falls_back_to_per_channel_weight_noise():
  # Without op_sqnr_db (configs of older versions), the node's own weight noise per output channel
  # is used: node 2's small channels are starved by a per-tensor scale, which the whole-tensor SQNR
  # (alike for all three) hides.
  table = [
      _node_layer(0, 0, 10, fused_weight_sqnr_db=35.0, channel_weight_sqnr_db=35.0),
      _node_layer(1, 1, 10, fused_weight_sqnr_db=35.0, channel_weight_sqnr_db=35.0),
      _node_layer(2, 2, 10, fused_weight_sqnr_db=35.0, channel_weight_sqnr_db=10.0),
  ]
  assert rankers.rank(table, "quantune")[0] == "n2_2"
  older = [dataclasses.replace(l, channel_weight_sqnr_db=NAN) for l in table]
  scores = rankers.quantune.node_scores(older)
  assert scores[2] == scores[1] == (2, pytest.approx(10 ** -3.5 / 10))


def test_quantune_ranks_output_noise_removed_per_float_mac_before_older_metrics():
  # output_noise_share (set by `propagation`): node 1 removes 10x node 2's share of the output
  # noise with 100x its MACs; node 0 has the largest own error in steps but, from a config of an
  # older version, no share: scores of the older metric are not comparable, it comes after.
  table = [
      _node_layer(0, 0, 10, op_error_lsb=8.0),
      _node_layer(1, 1, 1000, op_error_lsb=0.5, output_noise_share=0.5),
      _node_layer(2, 2, 10, op_error_lsb=0.5, output_noise_share=0.05),
      _node_layer(3, 3, 10, op_error_lsb=0.5, output_noise_share=0.0),
  ]
  scores = rankers.quantune.node_scores(table)
  assert scores[1] == (0, pytest.approx(0.5 / 1000)) and scores[2] == (0, pytest.approx(0.005))
  assert rankers.rank(table, "quantune") == ("n2_2", "n1_1", "n3_3", "n0_0")


def test_quantune_keeps_a_nodes_layers_together():
  table = [
      _node_layer(0, 5, 100),                   # conv of the fused node 5
      _node_layer(1, 5, 0, op_sqnr_db=30.0),    # its BN/ReLU: the node's output
      _node_layer(2, 6, 10, op_sqnr_db=20.0),
      _node_layer(3, None, 0),                  # a Dropout: no node, last
  ]
  order = rankers.rank(table, "quantune")
  assert order == ("n6_2", "n5_0", "n5_1", "nNone_3")


def test_custom_ranking_is_checked():
  table = _table()
  assert rankers.check_ranking(table, ["c", "a"]) == ("c", "a")
  with pytest.raises(tfq_mixed.InvalidArgumentError, match="does not have.*'zz'"):
    rankers.check_ranking(table, ["a", "zz"])
  with pytest.raises(tfq_mixed.InvalidArgumentError, match="'a' more than once"):
    rankers.check_ranking(table, ["a", "b", "a"])
  with pytest.raises(tfq_mixed.InvalidTypeError, match="list or tuple of layer names"):
    rankers.check_ranking(table, [1, 2])
