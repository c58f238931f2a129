"""Step 4: keep the most sensitive fused nodes in float within the float MAC budget (Eq. 17)."""

from __future__ import annotations

from typing import Sequence

from tfq_mixed.qtyping import LayerStats, Node, Selection


def select_float_layers(ranking: Sequence[str], layers: Sequence[LayerStats],
                        nodes: Sequence[Node], ratio: float) -> Selection:
  """Walks the ranking and keeps whole fused nodes float while their MACs fit `1 - ratio`.

  A layer maps to its TFLite node (Conv, BN and ReLU fused into one CONV_2D share it); the node is
  kept float if its MACs still fit the budget, else skipped for the next one, so the float share
  never exceeds `1 - ratio` and ends less than one node's MACs below it. Non-compute nodes (ADD,
  MEAN, ...) cost no MACs and are never chosen. Compute nodes no layer maps to come last.

  Args:
    ranking: layer names, most sensitive first.
    layers: the metrics table (gives each layer's node).
    nodes: all TFLite nodes.
    ratio: requested share of MACs in int8, in [0, 1].

  Returns:
    The `Selection`.
  """
  by_index = {n.index: n for n in nodes}
  node_of = {l.name: l.node for l in layers}
  total = sum(n.macs for n in nodes)
  budget = (1.0 - ratio) * total * (1.0 + 1e-12)
  candidates = [node_of.get(name) for name in ranking]
  candidates += [n.index for n in nodes if n.is_compute and not n.layers]
  chosen: list[int] = []
  float_macs = 0
  for index in candidates:
    if index is None or index in chosen or not by_index[index].is_compute:
      continue
    if float_macs + by_index[index].macs <= budget:
      chosen.append(index)
      float_macs += by_index[index].macs
  chosen_set = set(chosen)
  return Selection(
      float_layers=tuple(name for name in ranking if node_of.get(name) in chosen_set),
      float_nodes=tuple(by_index[i].name for i in chosen),
      float_macs=float_macs, total_macs=total)
