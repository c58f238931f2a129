"""Rankers: total, deterministic orders; Algorithm 2 of QuantuneV2 on hand-made metric tables."""

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
