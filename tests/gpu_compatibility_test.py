"""GPU delegate report and the `gpu_compatible` option, on real conversions and the real analyzer."""

import json

import keras
import numpy as np
import pytest

import tfq_mixed
from tfq_mixed import _tflite_private, report
from tfq_mixed.deploy import gpu_compatibility


@pytest.fixture(scope="module")
def gated(digits):
  """A small CNN whose `keras.ops.where` gate is a SELECT_V2: int8 branches, which the GPU
  delegate's rules reject, in the full-int8 model; float ones, which they accept, in float."""
  _, images, _ = digits
  keras.utils.set_random_seed(0)
  inputs = keras.Input((8, 8, 1))
  x = keras.layers.Conv2D(8, 3, padding="same", name="c1")(inputs)
  x = keras.layers.Lambda(lambda t: keras.ops.where(t > 0, t, t * 0.2), name="gate")(x)
  x = keras.layers.Conv2D(16, 3, padding="same", name="c2")(x)
  x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
  outputs = keras.layers.Dense(10, name="fc")(x)
  model = keras.Model(inputs, outputs, name="gated")
  return model, images[:16], tfq_mixed.analyze(model, images[:16])


def _analyzer(tflite):
  return gpu_compatibility.parse_analyzer_output(_tflite_private.analyze_model(tflite))


def test_parser_reads_every_op_and_tensor_of_real_analyzer_output(digits_analysis):
  result = digits_analysis.quantize(0.9)
  parsed = _analyzer(result.tflite)
  interpreter = _tflite_private.make_interpreter(result.tflite)
  ops = _tflite_private.ops(interpreter)
  assert [(op.index, op.op_name) for op in parsed.ops] == [(o["index"], o["op_name"]) for o in ops]
  for op, details in zip(parsed.ops, ops):
    assert list(op.outputs) == list(details["outputs"])
    assert list(op.inputs) == list(details["inputs"])
    name = _tflite_private.tensor_name(interpreter, details["outputs"][0])
    assert parsed.tensors[(0, details["outputs"][0])].name == name
  quantize = next(op for op in parsed.ops if op.op_name == "QUANTIZE")
  assert parsed.tensors[(0, quantize.outputs[0])].dtype == "INT8"
  conv = next(op for op in parsed.ops if op.op_name == "CONV_2D")
  assert parsed.tensors[(0, conv.inputs[1])].is_const
  assert not parsed.tensors[(0, conv.inputs[0])].is_const
  assert parsed.says_compatible and parsed.warnings == {}


def test_parser_reads_warnings_as_the_checker_prints_them():
  # The format of tensorflow/lite/python/analyzer_wrapper/model_analyzer.cc (the per-op line
  # follows its op; a reason may span lines); TF 2.21's wheel has no checker to print it.
  text = ("Subgraph#0 main(T#0) -> [T#2]\n"
          "  Op#0 RFFT2D(T#0, T#1[8, 8]) -> [T#2]\n"
          "GPU COMPATIBILITY WARNING: Not supported op RFFT2D\n"
          "  Op#1 GATHER(T#2, T#1) -> [T#3]\n"
          "GPU COMPATIBILITY WARNING: Does not accept INT32 input.\n\n"
          "GPU COMPATIBILITY WARNING: Subgraph#0 has GPU delegate compatibility issues at nodes 0, 1\n"
          "\nTensors of Subgraph#0\n"
          "  T#0(x) shape:[1, 8, 8], type:FLOAT32\n"
          "  T#1(len) shape:[2], type:INT32 RO 8 bytes, buffer: 2, data:[8, 8]\n"
          "  T#2(y) shape_signature:[-1, 8, 5], type:COMPLEX64\n"
          "  T#3(z) shape:n/a, type:FLOAT32\n")
  parsed = gpu_compatibility.parse_analyzer_output(text)
  assert parsed.warnings == {(0, 0): "Not supported op RFFT2D", (0, 1): "Does not accept INT32 input."}
  assert parsed.tensors[(0, 2)].dims == (1, 8, 5) and parsed.tensors[(0, 3)].dims == ()
  assert parsed.tensors[(0, 1)].is_const and not parsed.tensors[(0, 0)].is_const
  assert not parsed.says_compatible
  found = gpu_compatibility.from_parsed(parsed)
  assert [(op.op_index, op.source) for op in found.ops] == [(0, gpu_compatibility.ANALYZER),
                                                           (1, gpu_compatibility.ANALYZER)]


def test_reported_ops_are_exactly_what_the_analyzer_and_rules_say(gated):
  _, _, analysis = gated
  result = analysis.quantize(1.0)
  parsed = _analyzer(result.tflite)
  expected = [(op.index, op.op_name, parsed.warnings.get((0, op.index)) or
               gpu_compatibility.rule_reason(op, parsed.tensors)) for op in parsed.ops]
  expected = [e for e in expected if e[2] is not None]
  assert [(op.op_index, op.op_name, op.reason) for op in result.gpu_incompatible_ops] == expected
  assert [op.op_name for op in result.gpu_incompatible_ops] == ["SELECT_V2"]
  (select,) = result.gpu_incompatible_ops
  assert select.layers == ("gate",) and select.node.op_type == "SELECT_V2"
  assert "INT8" in select.reason and result.gpu_incompatible_layers == ("gate",)
  # The same model in float passes the rules: the int8 choice made it incompatible.
  assert gpu_compatibility.check(analysis.calibration.calibrated_model, analysis.nodes).compatible
  assert "GPU delegate: 1 op(s) rejected" in result.report()
  rows = {row["layer"]: row["gpu_delegate"] for row in result.report_rows()}
  assert rows["gate"] == report.GPU_REJECTED and rows["c1"] == ""


def test_digits_model_has_no_rejected_op_at_any_ratio(digits_analysis):
  """Int8 and float ops pass; only dynamic_int8 (hybrid) ops are rejected, and gpu_compatible=True
  never makes one."""
  for ratio in (1.0, 0.9, 0.0):
    for result in (digits_analysis.quantize(ratio, fallback="float"),
                   digits_analysis.quantize(ratio, gpu_compatible=True)):
      assert result.gpu_incompatible_ops == ()
      assert result.gpu_compatibility.analyzer_says_compatible


def test_rules_reject_what_the_gpu_delegate_cannot_run():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  converter = tf.lite.TFLiteConverter.from_concrete_functions(
      [tf.function(lambda x: tf.abs(tf.signal.rfft2d(x))).get_concrete_function(
          tf.TensorSpec([1, 8, 8]))])
  found = gpu_compatibility.check(converter.convert())
  assert [(op.op_name, op.reason) for op in found.ops] == [
      ("RFFT2D", "Not supported op RFFT2D"), ("COMPLEX_ABS", "Not supported op COMPLEX_ABS")]


# Where the plain model keeps the gate int8: full int8, and whole nodes by rank. (The ladder at
# 0.9 or 0.5 makes the gate float anyway, with its readers: a free island in MACs.)
@pytest.mark.parametrize("ratio, fallback", [(1.0, "auto"), (0.9, "float"), (0.5, "float")])
def test_gpu_compatible_option_removes_the_rejected_op_within_the_budget(gated, ratio, fallback):
  _, _, analysis = gated
  plain = analysis.quantize(ratio, fallback=fallback)
  steered = analysis.quantize(ratio, fallback=fallback, gpu_compatible=True)
  assert len(plain.gpu_incompatible_ops) == 1
  assert steered.gpu_incompatible_ops == ()
  # The MAC budget holds: the SELECT_V2 costs no MACs, so the int8 share is unchanged.
  assert steered.int8_mac_ratio == plain.int8_mac_ratio >= ratio
  assert steered.config.float_macs <= (1 - ratio) * steered.config.total_macs + 1e-9
  (select,) = analysis.gpu_float_fixable_nodes
  assert select.op_type == "SELECT_V2" and select.layers == ("gate",)
  assert select.name in steered.config.float_nodes and select.name not in plain.config.float_nodes
  # The gate's SELECT_V2 now selects in float.
  assert steered.node_precisions[select.name] == tfq_mixed.Precision.FLOAT
  assert plain.node_precisions[select.name] == tfq_mixed.Precision.INT8
  assert steered.config.options["gpu_compatible"] is True
  assert plain.config.options["gpu_compatible"] is False


def test_ratio_zero_is_the_float_model_the_gpu_delegate_accepts(gated):
  _, _, analysis = gated
  result = analysis.quantize(0.0)
  assert result.gpu_incompatible_ops == ()
  assert set(result.node_precisions.values()) == {tfq_mixed.Precision.FLOAT}


def test_gpu_compatible_option_is_a_no_op_where_nothing_is_fixable(digits_analysis):
  assert digits_analysis.gpu_float_fixable_nodes == ()
  assert (digits_analysis.quantize(0.9, gpu_compatible=True, fallback="float").tflite ==
          digits_analysis.quantize(0.9, fallback="float").tflite)


def test_steered_config_round_trips_and_apply_config_reproduces_bytes(gated, tmp_path):
  model, images, analysis = gated
  first = analysis.quantize(0.9, gpu_compatible=True)
  assert first.tflite == analysis.quantize(0.9, gpu_compatible=True).tflite  # deterministic
  first.save(tmp_path)
  parsed = tfq_mixed.SelectiveQuantizationConfig.from_json(first.config.to_json())
  assert parsed == first.config
  rebuilt = tfq_mixed.apply_config(model, images, str(tmp_path / "config.json"))
  assert rebuilt.tflite == first.tflite and rebuilt.gpu_incompatible_ops == ()


def test_compute_node_is_kept_float_only_within_the_budget(digits_analysis):
  from tfq_mixed import selector  # pylint: disable=g-import-not-at-top
  nodes = digits_analysis.nodes
  largest = max(nodes, key=lambda n: n.macs)
  total = sum(n.macs for n in nodes)
  ranking = digits_analysis.sensitivity()
  small_budget = selector.select_float_layers(ranking, digits_analysis.layers, nodes, 0.9,
                                              keep_float=[largest.index])
  assert largest.macs > 0.1 * total and largest.name not in small_budget.float_nodes
  assert small_budget.float_macs <= 0.1 * total
  big_budget = selector.select_float_layers(ranking, digits_analysis.layers, nodes, 0.0,
                                            keep_float=[largest.index])
  assert big_budget.float_nodes[0] == largest.name


def test_gpu_compatible_must_be_a_bool(digits_analysis):
  with pytest.raises(tfq_mixed.InvalidTypeError, match="gpu_compatible"):
    digits_analysis.quantize(0.9, gpu_compatible="yes")
  config = json.loads(digits_analysis.quantize(0.9).config.to_json())
  config["options"]["gpu_compatible"] = "yes"
  with pytest.raises(tfq_mixed.ConfigError, match="options.gpu_compatible"):
    tfq_mixed.SelectiveQuantizationConfig.from_dict(config)
  # NumPy bools are accepted like Python ones.
  assert digits_analysis.quantize(0.9, gpu_compatible=np.bool_(False)).config.options[
      "gpu_compatible"] is False
