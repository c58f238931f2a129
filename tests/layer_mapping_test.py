"""TFLite op names back to Keras layers (tfq_mixed/layer_mapping.py), on names the converter writes."""

from tfq_mixed import layer_mapping


def test_fused_op_names_give_every_layer_scope_they_hold():
  fused = "tfqm0002/re_lu/Relu;tfqm0000/conv2d/convolution;tfqm0001/bn/FusedBatchNormV3"
  assert layer_mapping.layer_indices_from_name(fused) == [0, 1, 2]
  # TensorFlow uniquifies a reused scope with a suffix: tfqm0003_1 is still layer 3.
  assert layer_mapping.layer_indices_from_name("tfqm0003_1/dense/MatMul") == [3]
  # Nested models put their own scopes first; only ours count.
  assert layer_mapping.layer_indices_from_name("model/tfqm0012/conv/BiasAdd") == [12]
  assert layer_mapping.layer_indices_from_name("StatefulPartitionedCall:0") == []
  # "tfqm" inside a layer's own name is not a scope of ours.
  assert layer_mapping.layer_indices_from_name("mytfqm0004/x") == []


def test_map_ops_uses_scopes_then_the_signature_for_outputs():
  names = ["tfqm0000/conv/Conv2D", "StatefulPartitionedCall:0", "foreign/op", "tfqm0009/x"]
  mapped = layer_mapping.map_ops(names, [10, 11, 12, 13], {11: 2}, num_layers=5)
  # tfqm0009 is past the model's 5 layers: foreign, left unmapped rather than guessed.
  assert mapped == [[0], [2], [], []]
