"""Step 2b: how much of the model output's quantization noise each node's own noise becomes.

The two passes measure, at every node output, the noise accumulated so far (`mse`, Eq. 7: float
Keras vs full int8) and the noise the node adds by itself (`op_sqnr_db`: int8 op vs its float twin on
the same inputs). A node adds its own noise to what it inherits from its inputs, scaled by a gain:

    E_n = g_n * sum(E_p for p in inputs(n)) + N_n        (noise powers, independent sources)

so each node's gain is `g_n = (E_n - N_n) / sum(E_p)`, read off the two passes, with no extra run.
A node's own noise reaches the model output multiplied by the gains of every node downstream,
summed over paths (`G_n = sum(g_c * G_c for c in consumers(n))`, `G = 1 / output power` at the
output). Early nodes in a deep chain get amplified; nodes before a pooling or a saturating
activation get damped. The contributions `N_n * G_n` of all nodes add up to the output's relative
noise power exactly, so each node's share of it is well defined.

Keeping a compute node float removes its own noise and that of the followers that go float with it
(`segments.float_followers`), less the output rounding the next int8 op applies again. Its
`output_noise_share` is that removed noise as a share of the output's noise: label-free, from the
same two passes, O(nodes + edges) (plus each node's float segment).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Mapping, Sequence

from tfq_mixed import segments
from tfq_mixed.qtyping import LayerStats, Node

ROUNDING_LSB2 = 1.0 / 12.0
"""Mean squared error of rounding to an int8 grid, in output steps squared (uniform error)."""


@dataclasses.dataclass(frozen=True)
class _Measure:
  """One node's noise at its output, from the layer its output stands for."""

  accumulated: float  # E: mean squared error vs float Keras (Eq. 7)
  own: float  # N: the part the node adds by itself; NaN when not measured
  signal: float  # mean power of the float output
  rounding: float  # mean squared rounding error of its int8 grid; 0 when unknown
  layer: int  # index of the layer carrying the metrics


def _measures(layers: Sequence[LayerStats]) -> dict[int, _Measure]:
  """Node -> its measured noise, from the node's last layer with an activation measurement."""
  by_node: dict[int, LayerStats] = {}
  for layer in sorted(layers, key=lambda l: l.index):
    if layer.node is not None and not math.isnan(layer.mse):
      by_node[layer.node] = layer
  out = {}
  for node, layer in by_node.items():
    signal = layer.mse * 10.0 ** (layer.activation_sqnr_db / 10.0)
    own = (math.nan if math.isnan(layer.op_sqnr_db) or not math.isfinite(signal)
           else signal * 10.0 ** (-layer.op_sqnr_db / 10.0))
    lsb = layer.op_error_lsb
    rounding = (own * ROUNDING_LSB2 / lsb ** 2
                if not math.isnan(own) and not math.isnan(lsb) and lsb > 1e-3 else 0.0)
    if math.isfinite(signal):
      out[node] = _Measure(layer.mse, own, signal, rounding, layer.index)
  return out


def _consumers(nodes: Sequence[Node], producers: Mapping[int, Sequence[int]]) -> dict[int, list[int]]:
  consumers: dict[int, list[int]] = {}
  for node in sorted(nodes, key=lambda n: n.index):
    for p in producers.get(node.index, ()):
      consumers.setdefault(p, []).append(node.index)
  return consumers


def _followers(node: Node, by_index: Mapping[int, Node], consumers: Mapping[int, list[int]],
               producers: Mapping[int, Sequence[int]]) -> tuple[Node, ...]:
  """`segments.float_followers` of `node` alone, looked for downstream of it only (O(segment))."""
  reachable, stack = {node.index}, [node.index]
  while stack:
    for c in consumers.get(stack.pop(), ()):
      candidate = by_index[c]
      if (c not in reachable and not candidate.is_compute and
          candidate.op_type in segments.FOLLOWER_OPS):
        reachable.add(c)
        stack.append(c)
  return segments.float_followers([by_index[i] for i in sorted(reachable)], producers, [node.name])


def output_gains(layers: Sequence[LayerStats], nodes: Sequence[Node],
                 producers: Mapping[int, Sequence[int]]) -> tuple[dict[int, float],
                                                                 dict[int, float]]:
  """Per node: the own noise it adds (N, absolute) and its gain to the output (G, 1 / power).

  Unmeasured nodes (float outputs, shape ops the passes cannot compare) pass their inputs' noise
  through with gain 1 and add none. A node that reads only model inputs also owns the input's
  rounding (it goes when the node is float). A node's own noise is capped at its accumulated
  noise (gains stay >= 0).

  Returns:
    ({node: N_n}, {node: G_n}); `sum(N_n * G_n)` is the relative noise power at the outputs.
  """
  return _gains(_measures(layers), nodes, producers, _consumers(nodes, producers))


def _gains(measures: Mapping[int, _Measure], nodes: Sequence[Node],
           producers: Mapping[int, Sequence[int]],
           consumers: Mapping[int, list[int]]) -> tuple[dict[int, float], dict[int, float]]:
  ordered = sorted(nodes, key=lambda n: n.index)
  accumulated: dict[int, float] = {}
  own: dict[int, float] = {}
  gain: dict[int, float] = {}
  for node in ordered:
    inherited = sum(accumulated.get(p, 0.0) for p in producers.get(node.index, ()))
    measure = measures.get(node.index)
    if measure is None:
      accumulated[node.index], own[node.index], gain[node.index] = inherited, 0.0, 1.0
      continue
    added = 0.0 if math.isnan(measure.own) else min(measure.own, measure.accumulated)
    if not producers.get(node.index):
      added = measure.accumulated  # its inputs are model inputs: their rounding is its own
    accumulated[node.index], own[node.index] = measure.accumulated, added
    gain[node.index] = (measure.accumulated - added) / inherited if inherited > 0 else 0.0
  to_output: dict[int, float] = {}
  for node in reversed(ordered):
    if node.index in consumers:
      to_output[node.index] = sum(gain[c] * to_output[c] for c in consumers[node.index])
    else:  # a model output: noise relative to its power (that of the last measured producer)
      source = node.index
      while source not in measures and producers.get(source):
        source = producers[source][0]
      signal = measures[source].signal if source in measures else 0.0
      to_output[node.index] = 1.0 / signal if signal > 0 else 0.0
  return own, to_output


def output_noise_shares(layers: Sequence[LayerStats], nodes: Sequence[Node],
                        producers: Mapping[int, Sequence[int]]) -> dict[int, float]:
  """Compute node -> share of the output's quantization noise that keeping it float removes.

  Its own noise and its float followers', each times its gain to the output, less the rounding
  that stays: the node's own output rounding when an int8 op reads it, a follower's always (the
  tensor is quantized again where the float segment ends). As a share of the outputs' total
  relative noise power (`output_gains`); nodes without a measurement are left out.
  """
  return _shares(_measures(layers), nodes, producers)


def _shares(measures: Mapping[int, _Measure], nodes: Sequence[Node],
            producers: Mapping[int, Sequence[int]]) -> dict[int, float]:
  consumers = _consumers(nodes, producers)
  own, to_output = _gains(measures, nodes, producers, consumers)
  total = sum(own[n] * to_output.get(n, 0.0) for n in own)
  if not total > 0:
    return {}
  by_index = {n.index: n for n in nodes}
  shares = {}
  for node in nodes:
    measure = measures.get(node.index)
    if not node.is_compute or measure is None or math.isnan(measure.own):
      continue
    followers = _followers(node, by_index, consumers, producers)
    removed = own[node.index] - (0.0 if followers else measure.rounding)
    removed = max(removed, 0.0) * to_output[node.index]
    for follower in followers:
      after = measures.get(follower.index)
      if after is not None and not math.isnan(after.own):
        removed += max(own[follower.index] - after.rounding, 0.0) * to_output[follower.index]
    shares[node.index] = removed / total
  return shares


def with_output_noise_shares(layers: Sequence[LayerStats], nodes: Sequence[Node],
                             producers: Mapping[int, Sequence[int]]) -> tuple[LayerStats, ...]:
  """`layers` with `output_noise_share` set on the layer carrying each compute node's metrics."""
  measures = _measures(layers)
  shares = _shares(measures, nodes, producers)
  carrier = {measures[n].layer: share for n, share in shares.items()}
  return tuple(dataclasses.replace(l, output_noise_share=carrier[l.index]) if l.index in carrier
               else l for l in layers)


@dataclasses.dataclass(frozen=True)
class NodeNoise:
  """One node's own quantization noise and how it reaches the model output.

  Attributes:
    own: N, the noise power the node adds by itself in the full-int8 model (absolute).
    rounding: the part of `own` that is the rounding of its int8 output (gone only where no int8
      op reads the output again).
    gain: G, the factor carrying its noise to the model outputs, relative to their power.
  """

  own: float
  rounding: float
  gain: float


def node_noise(layers: Sequence[LayerStats], nodes: Sequence[Node],
               producers: Mapping[int, Sequence[int]]) -> dict[int, NodeNoise]:
  """Node -> its `NodeNoise`, from the two passes (see the module docstring); the relative
  noise power at the outputs of the full-int8 model is `sum(own * gain)`."""
  measures = _measures(layers)
  own, to_output = _gains(measures, nodes, producers, _consumers(nodes, producers))
  return {n: NodeNoise(own=own[n],
                       rounding=min(measures[n].rounding, own[n]) if n in measures else 0.0,
                       gain=to_output.get(n, 0.0)) for n in own}
