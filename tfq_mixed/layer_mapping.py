"""Maps TFLite op names back to the Keras layers they were converted from.

The export wraps every flattened layer call in a `tfqm####` name scope (see `model_graph`), and the
TFLite converter names a fused op's output tensor after all the ops it fused, joined by ';'
(`tfqm0002/re_lu/Relu;tfqm0000/conv2d/convolution`). So the layers of a fused node are exactly the
scope numbers in its name. The one op name the converter drops is a model output's (it becomes
`StatefulPartitionedCall:0`); those ops are mapped through the serving signature's output order.
Ops with neither stay unmapped and are reported, never guessed.
"""

from __future__ import annotations

import re

from tfq_mixed import model_graph

_SCOPE_RE = re.compile(r"(?:^|/|;)" + model_graph.SCOPE_PREFIX + r"(\d+)(?:_\d+)?/")


def layer_indices_from_name(tensor_name: str) -> list[int]:
  """Flattened layer indices named in a TFLite tensor name, sorted and unique."""
  return sorted({int(m) for m in _SCOPE_RE.findall(tensor_name)})


def map_ops(op_names: list[str], op_output_tensors: list[int], output_tensor_to_layer: dict[int, int],
            num_layers: int) -> list[list[int]]:
  """Layer indices of each op.

  Args:
    op_names: each op's output tensor name.
    op_output_tensors: each op's first output tensor index.
    output_tensor_to_layer: model output tensor index -> flattened index of the layer producing it.
    num_layers: number of flattened layers (indices past it are ignored as foreign).

  Returns:
    Per op, the sorted layer indices it contains (empty if unmapped).
  """
  mapped = []
  for name, tensor in zip(op_names, op_output_tensors):
    indices = [i for i in layer_indices_from_name(name) if i < num_layers]
    if not indices and tensor in output_tensor_to_layer:
      indices = [output_tensor_to_layer[tensor]]
    mapped.append(indices)
  return mapped
