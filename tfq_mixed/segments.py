"""Float segments: ops without MACs that only consume float nodes' outputs run float too.

A float compute node whose activation is not fused into it (Conv -> LEAKY_RELU -> MAX_POOL_2D in
Tiny Darknet; Conv -> ADD in residual blocks) would otherwise hand its float output to an int8
LEAKY_RELU, i.e. be re-quantized at once: keeping the Conv float then removes its weight noise but
not the rounding of its output. Keeping such followers float costs no MACs (the int8 MAC ratio of
QuantuneV2 Eq. 17 is unchanged) and removes one requantization per float node; the tensor is
quantized once, where the next int8 compute op reads it.

A follower is an op without MACs, of an element-wise/pooling/shape type, every input of which that
some op produces comes from a float node (constants and model inputs do not count), in execution
order, so chains (Conv -> LeakyReLU -> MaxPool) and joins of float branches (ADD) are followed.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from tfq_mixed import _tflite_private
from tfq_mixed.qtyping import Node, Selection

FOLLOWER_OPS = frozenset({
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "DEPTH_TO_SPACE", "ELU", "GELU", "HARD_SWISH",
    "LEAKY_RELU", "LOGISTIC", "MAXIMUM", "MAX_POOL_2D", "MEAN", "MINIMUM", "MUL", "PAD", "PADV2",
    "PRELU", "RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1", "RESHAPE", "RESIZE_BILINEAR",
    "RESIZE_NEAREST_NEIGHBOR", "SPACE_TO_DEPTH", "SQUEEZE", "SUB", "TANH",
})
"""Ops without MACs a float producer's output may flow through in float (TFLite builtin names)."""


def op_inputs(calibrated_model: bytes) -> dict[int, tuple[int, ...]]:
  """Op index -> indices of the ops producing its inputs (constants and model inputs left out)."""
  interpreter = _tflite_private.make_interpreter(calibrated_model)
  ops = _tflite_private.ops(interpreter)
  producer = {t: op["index"] for op in ops for t in op["outputs"]}
  return {op["index"]: tuple(dict.fromkeys(producer[t] for t in op["inputs"] if t in producer))
          for op in ops}


def float_followers(nodes: Sequence[Node], producers: dict[int, tuple[int, ...]],
                    float_nodes: Sequence[str]) -> tuple[Node, ...]:
  """The nodes without MACs that only read float nodes' outputs, in execution order.

  Args:
    nodes: all TFLite nodes, in execution order.
    producers: `op_inputs` of the calibrated model.
    float_nodes: names of the nodes kept float.

  Returns:
    The followers (never one of `float_nodes`, never a compute node).
  """
  names = set(float_nodes)
  floating = {n.index for n in nodes if n.name in names}
  followers = []
  for node in sorted(nodes, key=lambda n: n.index):
    if node.index in floating or node.is_compute or node.op_type not in FOLLOWER_OPS:
      continue
    sources = producers.get(node.index, ())
    if sources and all(s in floating for s in sources):
      floating.add(node.index)
      followers.append(node)
  return tuple(followers)


def with_float_followers(selection: Selection, nodes: Sequence[Node],
                         producers: dict[int, tuple[int, ...]]) -> Selection:
  """`selection` with the followers of its float nodes appended (their layers too, no MACs)."""
  followers = float_followers(nodes, producers, selection.float_nodes)
  if not followers:
    return selection
  layers = tuple(name for n in followers for name in n.layers if name not in selection.float_layers)
  return dataclasses.replace(
      selection, float_layers=selection.float_layers + tuple(dict.fromkeys(layers)),
      float_nodes=selection.float_nodes + tuple(n.name for n in followers))
