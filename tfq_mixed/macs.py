"""Multiply-accumulates per TFLite op, the unit of the int8 ratio (QuantuneV2 Eq. 17).

Counted from what each op really computes: the shapes of its tensors as the interpreter allocates
them for one sample (a dilated convolution's CONV_2D runs on the SPACE_TO_BATCH_ND output, d^2
times the batch; reshapes ahead of a FULLY_CONNECTED or BATCH_MATMUL take their runtime size),
and the op options that change which axis is summed over (BATCH_MATMUL's adj_x).
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

COMPUTE_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "BATCH_MATMUL",
               "TRANSPOSE_CONV", "CONV_3D", "CONV_3D_TRANSPOSE")


def op_macs(op_type: str, input_shapes: list[tuple[int, ...]],
            output_shape: tuple[int, ...], options: Optional[Any] = None) -> int:
  """MACs of one op for the shapes given (batch included).

  Args:
    op_type: TFLite builtin name.
    input_shapes: shapes of the op's inputs in TFLite order (data, filter, ...), as allocated.
    output_shape: shape of the op's first output, as allocated.
    options: the op's builtin options (schema object); BATCH_MATMUL reads `adjX`.

  Returns:
    The MAC count, 0 for ops that are not matrix/convolution compute ops.
  """
  out = int(np.prod(output_shape)) if output_shape else 0
  if op_type == "CONV_2D":  # filter [Cout, kh, kw, Cin / groups]: each output sums kh*kw*Cin/groups
    _, kh, kw, cin = input_shapes[1]
    return out * kh * kw * cin
  if op_type == "CONV_3D":  # filter [kd, kh, kw, Cin, Cout]
    kd, kh, kw, cin, _ = input_shapes[1]
    return out * kd * kh * kw * cin
  if op_type == "CONV_3D_TRANSPOSE":  # inputs: output_shape, filter [kd, kh, kw, Cout, Cin], data
    kd, kh, kw, cout, _ = input_shapes[1]
    return int(np.prod(input_shapes[2])) * kd * kh * kw * cout
  if op_type == "DEPTHWISE_CONV_2D":  # filter [1, kh, kw, Cin * multiplier]: kh*kw per output
    _, kh, kw, _ = input_shapes[1]
    return out * kh * kw
  if op_type == "FULLY_CONNECTED":  # filter [units, in]: each output sums `in` products
    return out * input_shapes[1][-1]
  if op_type == "BATCH_MATMUL":  # lhs [..., M, K], or [..., K, M] with adj_x
    adj_x = bool(getattr(options, "adjX", False))
    lhs = input_shapes[0]
    return out * (lhs[-2] if adj_x else lhs[-1])
  if op_type == "TRANSPOSE_CONV":  # inputs: output_shape, filter [Cout, kh, kw, Cin], data
    cout, kh, kw, _ = input_shapes[1]
    data = input_shapes[2]
    return int(np.prod(data)) * kh * kw * cout
  return 0
