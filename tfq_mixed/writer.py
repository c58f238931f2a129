"""Step 5: the mixed .tflite of a selection, and the config and `Result` that describe it.

The calibrated model is quantized once more with TensorFlow's own quantizer, the selection's float
nodes denylisted (`_tflite_private.quantize`); the figures of the config are then read from the
built model (`precisions`), never copied from the request.
"""

from __future__ import annotations

import warnings
from typing import Any, Optional, Sequence

import tensorflow as tf

from tfq_mixed import _tflite_private
from tfq_mixed import calibrator
from tfq_mixed import config as config_lib
from tfq_mixed import errors
from tfq_mixed import hybrid
from tfq_mixed import precisions
from tfq_mixed.qtyping import LayerStats, Node, Precision, Selection
from tfq_mixed.result import Result


def write(calibration: calibrator.Calibration, selection: Selection, *, model_name: str,
          layers: Sequence[LayerStats], ranking: Sequence[str], options: dict[str, Any],
          num_samples: int, int8_model: bytes = b"",
          int8_unsupported: Optional[Sequence[Node]] = None, requested_ratio: float = 0.0,
          recorded_warnings: Sequence[str] = (), budget: Optional[dict] = None,
          tflite: Optional[bytes] = None) -> Result:
  """Builds the .tflite of `selection` and describes what it runs.

  Args:
    calibration: the calibrated model the selection was made on.
    selection: the nodes kept float (`Selection.float_nodes` are denylisted).
    model_name, layers, ranking, options, num_samples: what the config and report record.
    int8_model: the plain full-int8 model of `calibration`, reused when nothing is float.
    int8_unsupported: the nodes TFLite has no int8 kernel for (float in every model); None: those
      the built model runs in float without the selection asking for it.
    requested_ratio: the int8 MAC share asked for; a model that cannot reach it is built at the
      highest share it can have, with a `BudgetWarning` recorded in the config.
    recorded_warnings: warnings to keep (those of a config being applied again).
    budget: what the config records of the budget (`config.SelectiveQuantizationConfig.budget`).
    tflite: the model of `selection` when it is built already.

  Returns:
    The `Result`.
  """
  if tflite is None:
    tflite = (build(calibration, selection.float_nodes, selection.dynamic_nodes)
              if selection.float_nodes or not int8_model else int8_model)
  built = precisions.node_precisions(tflite, calibration.nodes)
  if int8_unsupported is None:
    denylisted = set(selection.float_nodes)
    int8_unsupported = tuple(n for n in calibration.nodes if n.name not in denylisted and
                             built.get(n.index) == Precision.FLOAT)
  notes = list(recorded_warnings)
  achieved = precisions.mac_count(calibration.nodes, built).int8_mac_ratio
  if achieved < requested_ratio - 1e-9:
    notes.append(_unmet_ratio_warning(requested_ratio, achieved, int8_unsupported))
    warnings.warn(notes[-1], errors.BudgetWarning, stacklevel=3)
  config = config_lib.make_config(
      model_name=model_name, layers=layers, options=options, selection=selection,
      nodes=calibration.nodes, built=built, num_samples=num_samples,
      tensorflow_version=tf.__version__,
      int8_unsupported_layers=layers_of(int8_unsupported), warnings=notes, budget=budget)
  return Result(tflite=tflite, config=config, layers=tuple(layers), ranking=tuple(ranking),
                nodes=calibration.nodes, int8_unsupported_nodes=tuple(int8_unsupported),
                node_precisions={n.name: built[n.index] for n in calibration.nodes
                                 if n.index in built})


def build(calibration: calibrator.Calibration, float_nodes: Sequence[str],
          dynamic_nodes: Sequence[str] = ()) -> bytes:
  """The .tflite with `float_nodes` kept out of static int8, `dynamic_nodes` of them dynamic-range.

  TensorFlow's quantizer (`mlir_quantize`) with the float nodes denylisted, then the dynamic nodes'
  float weights made int8 (`hybrid.dynamic_quantize_ops`, as the converter's dynamic-range mode
  stores them). TensorFlow 2.21's quantizer ignores some ops in `denylisted_nodes` (TRANSPOSE_CONV):
  where every node of such a type is to be float, the type is denylisted as a whole (and the int8
  weights the quantizer still gives it are restored to float, `hybrid.restore_float_weights`);
  where only some are, they stay int8 (`stubborn_nodes`), and the built model, read back, says so.
  """
  tflite = _tflite_private.quantize(calibration.calibrated_model,
                                    per_channel=calibration.per_channel,
                                    denylisted_nodes=float_nodes)
  stubborn = stubborn_nodes(tflite, calibration.nodes, float_nodes)
  wanted = set(float_nodes)
  whole_types = sorted({n.op_type for n in stubborn} - {
      n.op_type for n in calibration.nodes if n.name not in wanted})
  if whole_types:
    tflite = _tflite_private.quantize(calibration.calibrated_model,
                                      per_channel=calibration.per_channel,
                                      denylisted_nodes=float_nodes, denylisted_ops=whole_types)
    # ... which stores their weights in int8 all the same: made float again.
    tflite = hybrid.restore_float_weights(tflite, calibration.calibrated_model, whole_types)
  if not dynamic_nodes:
    return tflite
  interpreter = _tflite_private.make_interpreter(tflite, builtin_only=True)
  ops = precisions.align_ops(calibration.nodes, interpreter)
  wanted = set(dynamic_nodes)
  indices = [ops[n.index]["index"] for n in calibration.nodes if n.name in wanted and n.index in ops]
  if len(indices) != len(wanted):
    raise errors.ConversionError(
        f"{len(wanted) - len(indices)} of the dynamic-range nodes are not in the quantized model.")
  return hybrid.dynamic_quantize_ops(tflite, indices)


def stubborn_nodes(tflite: bytes, nodes: Sequence[Node], float_nodes: Sequence[str]) -> tuple:
  """The nodes `float_nodes` asked to keep float that `tflite` still runs in int8."""
  wanted = set(float_nodes)
  built = precisions.node_precisions(tflite, nodes)
  return tuple(n for n in nodes if n.name in wanted and built.get(n.index) == Precision.INT8)


def layers_of(nodes: Sequence[Node]) -> tuple[str, ...]:
  """The Keras layers of `nodes`, in order, each once."""
  return tuple(dict.fromkeys(name for node in nodes for name in node.layers))


def _unmet_ratio_warning(ratio: float, achieved: float, unsupported: Sequence[Node]) -> str:
  ops = sorted({n.op_type for n in unsupported if n.is_compute})
  why = (f"{', '.join(ops)} {'has' if len(ops) == 1 else 'have'} no int8 kernel in TFLite and "
         "must run in float" if ops else "the ops TFLite leaves in float need them")
  return (f"Requested ratio={ratio:g} of the MACs in int8, but at most {achieved:.4f} can be: "
          f"{why}. The model was built at {achieved:.4f}.")
