"""Budgets and fallbacks on real conversions: what users pay (MACs, latency, bytes, fidelity), the
product's central claim, and bad budgets.

The output SQNRs are recomputed here from the models' outputs (`evaluation.scores`), independently
of what the library measured.
"""

import json

import numpy as np
import pytest

import tfq_mixed
from tfq_mixed import metrics
from tfq_mixed.evaluation import scores

from tests.conftest import shared_path


def _sqnr(analysis, tflite, x):
  reference = scores.predict(analysis.float_model, x)
  return metrics.sqnr_db(reference, scores.predict(tflite, x))


def _claim(analysis, x, budgets):
  """Output SQNR against float at each budget (increasing), and full int8's."""
  int8 = _sqnr(analysis, analysis.int8_model, x)
  values = [_sqnr(analysis, analysis.quantize(**budget).tflite, x) for budget in budgets]
  return int8, values


def test_central_claim_on_the_digits_model(digits_analysis, digits):
  """At least full int8's output SQNR, and never falling as the float budget grows (on the
  calibration samples the choice is checked on)."""
  _, images, _ = digits
  x = images[:32]
  int8, values = _claim(digits_analysis, x,
                        [{"ratio": r} for r in (1.0, 0.98, 0.95, 0.9, 0.8, 0.65, 0.5, 0.2, 0.1)])
  assert values[0] == pytest.approx(int8)  # ratio 1.0 is the full-int8 model
  assert all(v >= int8 - 1e-6 for v in values)
  assert all(b >= a - 1e-6 for a, b in zip(values, values[1:])), values
  assert values[-1] > int8 + 3  # a float budget pays off


@pytest.mark.zoo
def test_central_claim_on_resnet20_with_latency_budgets():
  import keras  # pylint: disable=g-import-not-at-top
  from benchmarks import common  # pylint: disable=g-import-not-at-top
  model = keras.saving.load_model(shared_path("zoo", "resnet20_cifar10.keras"))
  shared = shared_path()
  x, _ = common.load_split(shared, "resnet20_cifar10", "calibration", 64)
  analysis = tfq_mixed.analyze(model, x)
  int8, values = _claim(analysis, x[:32], [{"ratio": r} for r in (1.0, 0.95, 0.9, 0.8, 0.5)])
  assert all(v >= int8 - 1e-6 for v in values)
  assert all(b >= a - 1e-6 for a, b in zip(values, values[1:])), values
  _, latency_values = _claim(analysis, x[:32], [{"max_latency": m} for m in (1.0, 1.1, 1.3, 2.0)])
  assert all(v >= int8 - 1e-6 for v in latency_values)
  assert all(b >= a - 1e-6 for a, b in zip(latency_values, latency_values[1:])), latency_values


def test_a_size_budget_is_met_in_bytes_and_uses_dynamic_int8(digits_analysis):
  result = digits_analysis.quantize(max_size=1.15)
  budget = result.config.budget
  assert budget["kind"] == "max_size" and budget["achieved"] <= 1.15
  # In bytes as built, against the full-int8 file: within the budget, and the prediction (each
  # node's constant bytes and quantization parameters) within 6 % of the file, above it.
  built = len(result.tflite) / len(digits_analysis.int8_model)
  assert built <= 1.15 and budget["achieved"] - 0.06 <= built <= budget["achieved"] + 1e-3
  dynamic = [n for n, p in result.node_precisions.items() if p == tfq_mixed.Precision.DYNAMIC_INT8]
  assert dynamic and set(dynamic) == set(result.config.dynamic_nodes)
  assert {result.layer_precisions[name].precision for name in ("conv2",)} <= {
      "dynamic_int8", "int8"}


def test_node_bytes_are_the_files_constants_and_quantization_parameters(digits_analysis):
  """Counted from the flatbuffer (its object API, not the interpreter the size model reads): each
  op's constant buffers, and the float32 scales and int64 zero points of those and its outputs."""
  from tfq_mixed import _tflite_private, precisions  # pylint: disable=g-import-not-at-top
  model = _tflite_private.model_object(digits_analysis.int8_model)
  graph = model.subgraphs[0]
  produced = {t for op in graph.operators for t in op.outputs}
  aligned = precisions.align_ops(digits_analysis.nodes, _tflite_private.make_interpreter(
      digits_analysis.int8_model))
  counted = 0
  for node in digits_analysis.nodes:
    op = graph.operators[aligned[node.index]["index"]]
    constants = [t for t in op.inputs if t >= 0 and t not in produced and t not in graph.inputs]
    expected = sum(len(model.buffers[graph.tensors[t].buffer].data) for t in constants)
    for t in constants + list(op.outputs):
      q = graph.tensors[t].quantization
      expected += 0 if q is None else 4 * len(q.scale if q.scale is not None else ()) + 8 * len(
          q.zeroPoint if q.zeroPoint is not None else ())
    assert digits_analysis.sizes.bytes[node.index][tfq_mixed.Precision.INT8] == expected
    counted += expected > 0
  assert counted == len(digits_analysis.nodes)


def test_fallbacks_and_the_gpu_delegate(digits_analysis):
  float_only = digits_analysis.quantize(max_size=2.0, fallback="float")
  assert tfq_mixed.Precision.DYNAMIC_INT8 not in float_only.node_precisions.values()
  dynamic_only = digits_analysis.quantize(max_size=2.0, fallback="dynamic_int8")
  capable = {n.name for n in digits_analysis.dynamic_capable_nodes}
  assert all(p != tfq_mixed.Precision.FLOAT or name not in capable or not any(
      n.name == name and n.is_compute for n in digits_analysis.nodes)
             for name, p in dynamic_only.node_precisions.items())
  gpu = digits_analysis.quantize(max_size=2.0, gpu_compatible=True)
  assert tfq_mixed.Precision.DYNAMIC_INT8 not in gpu.node_precisions.values()
  assert gpu.config.options["gpu_compatible"] is True
  assert "gpu_compatible: no node dynamic_int8" in gpu.report()
  assert not any(op.reason.startswith("Hybrid") for op in gpu.gpu_incompatible_ops)
  # Without the option, every dynamic_int8 node is reported as one the GPU delegate rejects.
  sized = digits_analysis.quantize(max_size=1.15)
  dynamic = {n for n, p in sized.node_precisions.items() if p == tfq_mixed.Precision.DYNAMIC_INT8}
  hybrid = {op.node.name for op in sized.gpu_incompatible_ops if op.reason.startswith("Hybrid")}
  assert dynamic and hybrid == dynamic
  assert "gpu_compatible:" not in sized.report()


def test_a_dynamic_config_round_trips_byte_for_byte(digits, digits_analysis, tmp_path):
  model, images, _ = digits
  result = digits_analysis.quantize(max_size=1.15)
  assert result.config.dynamic_nodes
  result.save(tmp_path)
  saved = json.loads((tmp_path / "config.json").read_text())
  assert saved["schema_version"] == 3 and saved["dynamic_nodes"] == list(result.config.dynamic_nodes)
  again = tfq_mixed.apply_config(model, images[:64], tmp_path / "config.json")
  assert again.tflite == result.tflite and again.config == result.config


def test_min_output_sqnr_gives_the_cheapest_model_reaching_it(digits_analysis, digits):
  _, images, _ = digits
  target = _sqnr(digits_analysis, digits_analysis.int8_model, images[:32]) + 4
  result = digits_analysis.quantize(min_output_sqnr_db=target)
  assert result.config.budget["output_sqnr_db"] >= target
  assert _sqnr(digits_analysis, result.tflite, images[:32]) == pytest.approx(
      result.config.budget["output_sqnr_db"], abs=1e-3)
  with pytest.raises(tfq_mixed.InvalidArgumentError, match="No model of this analysis reaches "
                     r"min_output_sqnr_db=500"):
    digits_analysis.quantize(min_output_sqnr_db=500)


def test_evaluate_with_max_drop_says_how_many_evaluations(digits_analysis, digits):
  _, images, labels = digits
  calls = []

  def accuracy(tflite: bytes) -> float:
    calls.append(len(tflite))
    return scores.top1(scores.predict(tflite, images[1297:1497]), labels[1297:1497])

  float_score = accuracy(digits_analysis.float_model)
  calls.clear()
  result = digits_analysis.quantize(evaluate=accuracy, max_drop=0.01)
  assert accuracy(result.tflite) >= float_score - 0.01
  assert result.config.budget["evaluations"] == len(calls) - 1 <= 2 + 5
  with pytest.raises(tfq_mixed.InvalidArgumentError, match="`max_drop` and `evaluate` go together"):
    digits_analysis.quantize(max_drop=0.01)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"ratio": 0.9, "max_latency": 1.1}, tfq_mixed.InvalidArgumentError,
     r"Exactly one budget applies; received 2: ratio=0.9, max_latency=1.1"),
    ({"max_size": 0.5}, tfq_mixed.InvalidArgumentError,
     r"`max_size`=0.5 is below [0-9.]+, the lowest size .* Pass max_size>="),
    ({"max_latency": -1}, tfq_mixed.InvalidArgumentError, r"`max_latency` must be a positive"),
    ({"max_latency": "fast"}, tfq_mixed.InvalidTypeError, r"`max_latency` must be a number"),
    ({"fallback": "fp16"}, tfq_mixed.InvalidArgumentError,
     r"Unknown fallback 'fp16'. Expected one of: 'auto', 'dynamic_int8', 'float'"),
    ({"ratio": 0.9, "ranker": "weight_sqnr"}, tfq_mixed.InvalidArgumentError,
     r"Pass fallback='float' and a ratio"),
])
def test_bad_budgets_are_named(digits_analysis, kwargs, error, message):
  with pytest.raises(error, match=message):
    digits_analysis.quantize(**kwargs)


def test_a_failed_profile_is_a_clear_error_never_a_mac_fallback(digits, monkeypatch):
  """LiteRT's C library without its profiler: latency budgets fail and say what to use instead."""
  from tfq_mixed._tflite_private import profiler  # pylint: disable=g-import-not-at-top
  model, images, _ = digits
  analysis = tfq_mixed.analyze(model, images[:16])

  def missing():
    raise profiler.ProfileError("no LiteRtCompiledModelGetProfiler in libLiteRt.so")

  monkeypatch.setattr(profiler, "_lib", missing)
  with pytest.raises(tfq_mixed.ProfileError, match=r"per-op profiler failed: no "
                     r"LiteRtCompiledModelGetProfiler.*use a MAC \(`ratio`\) or size"):
    analysis.quantize(max_latency=1.1)
  assert analysis.quantize(ratio=0.9).int8_mac_ratio >= 0.9  # other budgets still work


def test_the_candidates_beside_the_walk_where_they_fit_and_measure_best(digits_analysis):
  from tfq_mixed import costs  # pylint: disable=g-import-not-at-top
  walk = digits_analysis.walk(costs.CostKind.SIZE)
  beside = {label: (point, measured) for label, point, measured in walk.beside()}
  assert set(beside) == {"top", "dynamic"}
  # The top (float where it may be) is the largest: a budget it fits, every candidate fits.
  fits = beside["top"][0].cost / digits_analysis.sizes.int8_bytes
  result = digits_analysis.quantize(max_size=fits + 0.01)
  best = max(walk.measured + [measured for _, measured in beside.values()])
  assert result.config.budget["output_sqnr_db"] == pytest.approx(best, abs=1e-4)
  winner = max(beside, key=lambda label: beside[label][1])
  assert (result.config.budget["point"] == winner) == (beside[winner][1] > max(walk.measured))


def test_the_dynamic_range_candidate_is_tflites_dynamic_range_model(digits, digits_analysis):
  """`Walk.dynamic` builds what the converter's `Optimize.DEFAULT` makes without data: the same
  outputs, and the same hybrid ops (float activations, int8 weights), read from both models."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tfq_mixed import _tflite_private, costs, ladder  # pylint: disable=g-import-not-at-top
  model, images, _ = digits
  converter = tf.lite.TFLiteConverter.from_keras_model(model)
  converter.optimizations = [tf.lite.Optimize.DEFAULT]
  theirs = converter.convert()
  point, _ = digits_analysis.walk(costs.CostKind.SIZE).dynamic
  ours = digits_analysis.build(*ladder.nodes_by_precision(point, digits_analysis.nodes))
  x = images[:64]
  assert metrics.sqnr_db(scores.predict(theirs, x), scores.predict(ours, x)) > 60.0

  def weighted_ops(tflite):  # [(op, activation dtype, weight dtype)] of the weighted ops
    interpreter = _tflite_private.make_interpreter(tflite)
    dtype = lambda t: _tflite_private.tensor_details(interpreter, t)["dtype"].__name__
    return sorted((op["op_name"], dtype(op["inputs"][0]), dtype(op["inputs"][1]))
                  for op in _tflite_private.ops(interpreter)
                  if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"))

  assert weighted_ops(ours) == weighted_ops(theirs)
  assert ("CONV_2D", "float32", "int8") in weighted_ops(ours)


def test_ops_without_macs_can_leave_int8_on_their_own(digits_analysis):
  """The ladder may make an op without MACs (the residual ADD) float while both its inputs stay
  int8 (in PReLU-heavy models their int8 rounding is much of the noise); it costs no MACs."""
  from tfq_mixed import costs  # pylint: disable=g-import-not-at-top
  add = next(n for n in digits_analysis.nodes if n.op_type == "ADD")
  walk = digits_analysis.walk(costs.CostKind.MACS)
  assert add.index in walk.allowed
  point = walk._point({add.index: tfq_mixed.Precision.FLOAT})  # pylint: disable=protected-access
  assert point.cost == 0
  from tfq_mixed import precisions  # pylint: disable=g-import-not-at-top
  read = precisions.node_precisions(digits_analysis.build([add.name]), digits_analysis.nodes)
  assert read[add.index] == tfq_mixed.Precision.FLOAT
  assert all(read[i] == tfq_mixed.Precision.INT8
             for i in digits_analysis.op_inputs[add.index] if i in read)

