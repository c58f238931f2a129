"""The per-layer report: CSV for tools, a fixed-width table for people."""

from __future__ import annotations

import csv
import io
import math
from typing import Mapping, Sequence

from tfq_mixed import precisions
from tfq_mixed.qtyping import LayerStats, Precision

FLOAT = "float"
INT8 = "int8"
NO_OP = precisions.NO_OP  # no TFLite op maps to the layer (e.g. Dropout, InputLayer)
SHARE_COLUMNS = tuple(f"{p.value}_mac_share" for p in Precision)
"""Share of the MACs of a layer's nodes that runs in each precision (empty without MACs)."""

COLUMNS = ("rank", "layer", "type", "node", "macs", "precision") + SHARE_COLUMNS + (
           "weight_sqnr_db",
           "fused_weight_sqnr_db", "weight_sqnr_delta", "activation_sqnr_db",
           "activation_sqnr_delta", "mse", "cosine_similarity", "kl_divergence",
           "channel_weight_sqnr_db", "dynamic_weight_sqnr_db", "op_sqnr_db", "op_error_lsb",
           "output_noise_share",
           "gpu_delegate")
GPU_REJECTED = "rejected"  # the layer has an op the TFLite GPU delegate would reject


def rows(layers: Sequence[LayerStats], ranking: Sequence[str], float_layers: Sequence[str],
         gpu_rejected_layers: Sequence[str] = (),
         layer_precisions: Mapping[str, precisions.LayerPrecision] | None = None) -> list[dict]:
  """One row per layer, most sensitive first.

  `precision` is what the built model runs the layer in (`layer_precisions`: 'int8', 'float',
  'mixed' with the MAC shares beside it); without them (configs of schema 1) 'float' for
  `float_layers` and 'int8' for the other layers with an op. `gpu_delegate` is 'rejected' for a
  layer with an op the TFLite GPU delegate would reject, else empty.
  """
  layer_precisions = layer_precisions or {}
  gpu_rejected = set(gpu_rejected_layers)
  by_name = {l.name: l for l in layers}
  float_set = set(float_layers)
  out = []
  for position, name in enumerate(ranking, start=1):
    layer = by_name[name]
    built = layer_precisions.get(name)
    if built is not None:
      precision = built.precision
    else:
      precision = FLOAT if name in float_set else (INT8 if layer.node is not None else NO_OP)
    row = {"rank": position, "layer": name, "type": layer.layer_type,
           "node": "" if layer.node is None else layer.node, "macs": layer.macs,
           "precision": precision}
    for p, column in zip(Precision, SHARE_COLUMNS):
      share = built.share(p) if built is not None else math.nan
      row[column] = "" if math.isnan(share) else f"{share:.4g}"
    for key in LayerStats.METRIC_FIELDS:
      value = getattr(layer, key)
      row[key] = "" if math.isnan(value) else f"{value:.6g}"
    row["gpu_delegate"] = GPU_REJECTED if name in gpu_rejected else ""
    out.append(row)
  return out


def to_csv(table: list[dict]) -> str:
  buffer = io.StringIO()
  writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
  writer.writeheader()
  writer.writerows(table)
  return buffer.getvalue()


def render(table: list[dict], limit: int | None = None) -> str:
  """A readable table: rank, layer, type, MACs, SQNRs and deltas, MSE, precision."""
  header = (f"{'#':>4} {'layer':<28} {'type':<22} {'MACs':>11} {'W SQNR':>7} {'W dlt':>7} "
            f"{'A SQNR':>7} {'A dlt':>7} {'MSE':>9} {'precision'}")
  lines = [header, "-" * len(header)]
  for row in table[:limit]:
    def num(key, fmt="7.2f"):
      return format(float(row[key]), fmt) if row[key] != "" else " " * int(fmt.split(".")[0])
    lines.append(
        f"{row['rank']:>4} {row['layer'][:28]:<28} {row['type'][:22]:<22} {row['macs']:>11,} "
        f"{num('weight_sqnr_db')} {num('weight_sqnr_delta')} {num('activation_sqnr_db')} "
        f"{num('activation_sqnr_delta')} {num('mse', '9.3g')} {_precision_text(row)}")
  if limit is not None and len(table) > limit:
    lines.append(f"... {len(table) - limit} more layers")
  return "\n".join(lines)


def _precision_text(row: dict) -> str:
  """'int8', 'float', or for a mixed layer its MAC shares: 'mixed (int8 90%, float 10%)'."""
  if row["precision"] != precisions.MIXED:
    return row["precision"]
  shares = [(p.value, float(row[c])) for p, c in zip(Precision, SHARE_COLUMNS) if row[c] != ""]
  return "mixed (" + ", ".join(f"{p} {100 * v:.0f}%" for p, v in shares if v > 0) + ")"
