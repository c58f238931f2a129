"""The per-layer report (tfq_mixed/report.py): precision labels with MAC shares, CSV, text."""

import csv
import io
import math

from tfq_mixed import precisions, report
from tfq_mixed.qtyping import LayerStats


def _layers():
  return [LayerStats(index=0, name="attn", layer_type="MultiHeadAttention", node=0, macs=400,
                     activation_sqnr_db=30.0),
          LayerStats(index=1, name="norm", layer_type="LayerNormalization", node=3, macs=0),
          LayerStats(index=2, name="head", layer_type="Dense", node=4, macs=100,
                     weight_sqnr_db=40.0),
          LayerStats(index=3, name="drop", layer_type="Dropout", node=None, macs=0)]


def test_rows_follow_the_ranking_and_say_what_was_built():
  built = {"attn": precisions.LayerPrecision("mixed", {"int8": 300, "float": 100}),
           "norm": precisions.LayerPrecision("float", {}),
           "head": precisions.LayerPrecision("int8", {"int8": 100}),
           "drop": precisions.LayerPrecision("-", {})}
  rows = report.rows(_layers(), ["head", "attn", "norm", "drop"], float_layers=["norm"],
                     layer_precisions=built)
  assert [r["layer"] for r in rows] == ["head", "attn", "norm", "drop"]
  assert [r["rank"] for r in rows] == [1, 2, 3, 4]
  assert [r["precision"] for r in rows] == ["int8", "mixed", "float", "-"]
  attn = rows[1]
  assert float(attn["int8_mac_share"]) == 0.75 and float(attn["float_mac_share"]) == 0.25
  assert attn["dynamic_int8_mac_share"] == "0"
  assert rows[2]["int8_mac_share"] == ""  # no MACs: no share
  text = report.render(rows)
  assert "mixed (int8 75%, float 25%)" in text
  parsed = list(csv.DictReader(io.StringIO(report.to_csv(rows))))
  assert list(parsed[0]) == list(report.COLUMNS)
  assert parsed[1]["precision"] == "mixed" and parsed[1]["activation_sqnr_db"] == "30"


def test_rows_of_a_config_without_precisions_fall_back_to_its_float_layers():
  rows = report.rows(_layers(), ["attn", "norm", "head", "drop"], float_layers=["attn"])
  assert [r["precision"] for r in rows] == ["float", "int8", "int8", "-"]
  assert all(r["int8_mac_share"] == "" for r in rows)
  assert math.isnan(precisions.LayerPrecision("-", {}).share("int8"))


def test_render_limits_rows():
  rows = report.rows(_layers(), ["attn", "norm", "head", "drop"], float_layers=[])
  text = report.render(rows, limit=2)
  assert "... 2 more layers" in text and "head" not in text
