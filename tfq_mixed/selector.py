"""Step 4: keep the most sensitive fused nodes in float within the float MAC budget (Eq. 17)."""

from __future__ import annotations

import dataclasses
from typing import Iterable, Sequence

from tfq_mixed.qtyping import LayerStats, Node, Selection


def select_float_layers(ranking: Sequence[str], layers: Sequence[LayerStats],
                        nodes: Sequence[Node], ratio: float, *,
                        int8_unsupported: Iterable[int] = (),
                        keep_float: Iterable[int] = ()) -> Selection:
  """Walks the ranking and keeps whole fused nodes float while their MACs fit `1 - ratio`.

  A layer maps to its TFLite node (Conv, BN and ReLU fused into one CONV_2D share it); the node is
  kept float if its MACs still fit the budget, else skipped for the next one, so the float share
  never exceeds `1 - ratio` and ends less than one node's MACs below it. A layer converted to
  several compute nodes offers each of them, in graph order. Non-compute nodes (ADD, MEAN, ...)
  cost no MACs and are never chosen. Compute nodes no layer maps to come last.

  Nodes TFLite cannot run in int8 (`int8_unsupported`, e.g. CONV_3D) are float whatever we choose:
  their MACs are spent first, so the reported int8 share is the one the model really has; if they
  alone exceed the budget, nothing else is kept float.

  Args:
    ranking: layer names, most sensitive first.
    layers: the metrics table (gives each layer's node).
    nodes: all TFLite nodes.
    ratio: requested share of MACs in int8, in [0, 1].
    int8_unsupported: indices of nodes the full-int8 model leaves float.
    keep_float: indices of nodes to keep float before the ranking is walked (the GPU delegate
      rejects them in int8 only). Non-compute ones cost no MACs and are always kept; compute ones
      only while they fit the budget, so the float share still never exceeds `1 - ratio`.

  Returns:
    The `Selection`.
  """
  by_index = {n.index: n for n in nodes}
  node_of = {l.name: l.node for l in layers}
  nodes_of: dict[str, list[int]] = {}
  for node in nodes:
    for name in node.layers:
      nodes_of.setdefault(name, []).append(node.index)
  total = sum(n.macs for n in nodes)
  budget = (1.0 - ratio) * total * (1.0 + 1e-12)
  unsupported = tuple(i for i in dict.fromkeys(int8_unsupported) if i in by_index)
  float_macs = sum(by_index[i].macs for i in unsupported)
  chosen: list[int] = []
  for index in dict.fromkeys(keep_float):
    node = by_index.get(index)
    if node is None or index in unsupported:
      continue
    if float_macs + node.macs <= budget:
      chosen.append(index)
      float_macs += node.macs
  candidates: list = []
  for name in ranking:
    candidates.append(node_of.get(name))
    candidates += nodes_of.get(name, [])
  candidates += [n.index for n in nodes if n.is_compute and not n.layers]
  for index in candidates:
    if (index is None or index in chosen or index in unsupported or
        not by_index[index].is_compute):
      continue
    if float_macs + by_index[index].macs <= budget:
      chosen.append(index)
      float_macs += by_index[index].macs
  chosen_set = set(chosen)
  float_layers = tuple(name for name in ranking
                       if node_of.get(name) in chosen_set or
                       any(i in chosen_set for i in nodes_of.get(name, ())))
  float_layers += tuple(name for i in chosen for name in by_index[i].layers
                        if name not in float_layers and name not in ranking)
  return Selection(
      float_layers=float_layers,
      float_nodes=tuple(by_index[i].name for i in chosen),
      float_macs=float_macs, total_macs=total,
      int8_unsupported_nodes=tuple(by_index[i].name for i in unsupported))


def all_float(selection: Selection, nodes: Sequence[Node]) -> Selection:
  """`selection` with every other node float too (ratio 0: the float model), in graph order."""
  chosen = set(selection.float_nodes)
  rest = [n for n in sorted(nodes, key=lambda n: n.index) if n.name not in chosen]
  layers = [name for n in rest for name in n.layers if name not in selection.float_layers]
  return dataclasses.replace(
      selection, float_nodes=selection.float_nodes + tuple(n.name for n in rest),
      float_layers=selection.float_layers + tuple(dict.fromkeys(layers)),
      float_macs=selection.float_macs + sum(n.macs for n in rest if n.name not in
                                            set(selection.int8_unsupported_nodes)))
