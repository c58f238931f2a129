"""Float segments: ops without MACs that only read float outputs are kept float with them."""

from tfq_mixed import segments
from tfq_mixed.qtyping import Node


def _graph():
  # conv0 -> leaky1 -> pool2 -> conv3 -> add5 <- conv4 (conv4 reads pool2 too) ; add5 -> mean6
  nodes = [Node(0, "conv0", "CONV_2D", ("c0",), 100), Node(1, "leaky1", "LEAKY_RELU", ("l1",), 0),
           Node(2, "pool2", "MAX_POOL_2D", ("p2",), 0), Node(3, "conv3", "CONV_2D", ("c3",), 50),
           Node(4, "conv4", "CONV_2D", ("c4",), 50), Node(5, "add5", "ADD", ("a5",), 0),
           Node(6, "mean6", "MEAN", ("m6",), 0), Node(7, "gather7", "GATHER", ("g7",), 0)]
  producers = {0: (), 1: (0,), 2: (1,), 3: (2,), 4: (2,), 5: (3, 4), 6: (5,), 7: (0,)}
  return nodes, producers


def test_chain_after_a_float_conv_is_followed():
  nodes, producers = _graph()
  followers = segments.float_followers(nodes, producers, ["conv0"])
  # GATHER is not an element-wise/pooling op: it stays as quantized.
  assert [n.name for n in followers] == ["leaky1", "pool2"]


def test_a_join_is_float_only_when_every_branch_is():
  nodes, producers = _graph()
  assert segments.float_followers(nodes, producers, ["conv3"]) == ()
  both = segments.float_followers(nodes, producers, ["conv3", "conv4"])
  assert [n.name for n in both] == ["add5", "mean6"]


def test_nothing_float_nothing_followed():
  nodes, producers = _graph()
  assert segments.float_followers(nodes, producers, []) == ()
