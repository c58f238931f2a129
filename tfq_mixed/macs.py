"""Multiply-accumulates per TFLite op, the unit of the int8 ratio (QuantuneV2 Eq. 17)."""

from __future__ import annotations

import numpy as np

COMPUTE_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "BATCH_MATMUL",
               "TRANSPOSE_CONV", "CONV_3D")


def op_macs(op_type: str, input_shapes: list[tuple[int, ...]],
            output_shape: tuple[int, ...]) -> int:
  """MACs of one op for the shapes given (batch included; call with batch 1 for per-sample MACs).

  Args:
    op_type: TFLite builtin name.
    input_shapes: shapes of the op's inputs in TFLite order (data, filter, ...).
    output_shape: shape of the op's first output.

  Returns:
    The MAC count, 0 for ops that are not matrix/convolution compute ops.
  """
  out = int(np.prod(output_shape)) if output_shape else 0
  if op_type == "CONV_2D":  # filter [Cout, kh, kw, Cin / groups]
    _, kh, kw, cin = input_shapes[1]
    return out * kh * kw * cin
  if op_type == "CONV_3D":  # filter [kd, kh, kw, Cin, Cout]
    kd, kh, kw, cin, _ = input_shapes[1]
    return out * kd * kh * kw * cin
  if op_type == "DEPTHWISE_CONV_2D":  # filter [1, kh, kw, Cout]
    _, kh, kw, _ = input_shapes[1]
    return out * kh * kw
  if op_type == "FULLY_CONNECTED":  # filter [units, in]
    return out * input_shapes[1][-1]
  if op_type == "BATCH_MATMUL":  # lhs [..., M, K]
    return out * input_shapes[0][-1]
  if op_type == "TRANSPOSE_CONV":  # inputs: output_shape, filter [Cout, kh, kw, Cin], data
    cout, kh, kw, _ = input_shapes[1]
    data = input_shapes[2]
    return int(np.prod(data)) * kh * kw * cout
  return 0
