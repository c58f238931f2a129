"""The `Result` of a conversion: the mixed .tflite, its config, and what it really runs.

Its figures are those of the model it holds (read back by `precisions`); the GPU delegate's verdict
and the ONNX export are deployment add-ons, loaded only when asked for (`tfq_mixed.deploy`).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING, Optional

from tfq_mixed import files
from tfq_mixed import precisions
from tfq_mixed import report
from tfq_mixed.config import SelectiveQuantizationConfig
from tfq_mixed.qtyping import LayerStats, Node, Precision

if TYPE_CHECKING:
  from tfq_mixed.deploy import gpu_compatibility

MODEL_FILE = "model.tflite"
CONFIG_FILE = "config.json"
REPORT_FILE = "report.csv"


@dataclasses.dataclass(frozen=True)
class Result:
  """A mixed-precision model and how it was chosen.

  Attributes:
    tflite: the mixed int8/float TFLite flatbuffer.
    config: the `SelectiveQuantizationConfig` that reproduces it.
    layers: per-layer metrics (empty when rebuilt from a config without metrics).
    ranking: layer names, most sensitive first.
    nodes: the TFLite nodes of the model.
    int8_unsupported_nodes: the nodes TFLite cannot run in int8 (no int8 kernel, e.g. CONV_3D or
      CUMSUM): float in every result, whatever the ratio; their MACs count as float.
    node_precisions: TFLite node name -> the precision its op runs in within `tflite` (read from
      the flatbuffer's tensor types; ops on integer tensors alone and Q/DQ ops are left out).
  """

  tflite: bytes
  config: SelectiveQuantizationConfig
  layers: tuple[LayerStats, ...] = ()
  ranking: tuple[str, ...] = ()
  nodes: tuple[Node, ...] = ()
  int8_unsupported_nodes: tuple[Node, ...] = ()
  node_precisions: dict[str, Precision] = dataclasses.field(default_factory=dict)

  @property
  def layer_precisions(self) -> dict[str, precisions.LayerPrecision]:
    """Layer name -> what it runs in ('int8', 'float', 'mixed', '-') and its MACs per precision."""
    return self.config.layer_precisions

  @property
  def warnings(self) -> tuple[str, ...]:
    """What could not be done as asked (e.g. an int8 share no selection reaches)."""
    return self.config.warnings

  @property
  def int8_mac_ratio(self) -> float:
    return self.config.int8_mac_ratio

  @property
  def bops_reduction(self) -> float:
    return self.config.bops_reduction

  @property
  def float_layers(self) -> tuple[str, ...]:
    return self.config.float_layers

  @property
  def unmapped_nodes(self) -> tuple[Node, ...]:
    """TFLite ops no Keras layer could be named for: never attributed to a layer, listed here."""
    return tuple(n for n in self.nodes if not n.layers)

  @property
  def int8_unsupported_layers(self) -> tuple[str, ...]:
    """Layers with an op TFLite cannot run in int8: float whatever the ratio."""
    return self.config.int8_unsupported_layers

  @functools.cached_property
  def gpu_compatibility(self) -> "gpu_compatibility.GpuCompatibility":
    """The TFLite GPU delegate's verdict on `tflite`, from TensorFlow's model analyzer (and our
    port of its rules where this TensorFlow's analyzer has no checker); computed on first use."""
    from tfq_mixed.deploy import gpu_compatibility  # pylint: disable=g-import-not-at-top,redefined-outer-name
    return gpu_compatibility.check(self.tflite, self.nodes)

  @property
  def gpu_incompatible_ops(self) -> tuple["gpu_compatibility.GpuIncompatibleOp", ...]:
    """Ops of `tflite` the GPU delegate would reject (op index, op name, node, layers, reason)."""
    return self.gpu_compatibility.ops

  @property
  def gpu_incompatible_layers(self) -> tuple[str, ...]:
    """Keras layers with an op the GPU delegate would reject."""
    return self.gpu_compatibility.layers

  def report_rows(self) -> list[dict]:
    """The report table; layers TFLite cannot run in int8 show precision 'float'."""
    ranking = self.ranking or tuple(l.name for l in self.layers)
    float_layers = tuple(self.config.float_layers) + tuple(
        name for name in self.config.int8_unsupported_layers
        if name not in self.config.float_layers)
    return report.rows(self.layers, ranking, float_layers,
                       gpu_rejected_layers=self.gpu_incompatible_layers,
                       layer_precisions=self.config.layer_precisions)

  def report(self, limit: Optional[int] = 30) -> str:
    """A readable summary: the achieved ratio and the per-layer table, most sensitive first."""
    head = (f"int8 MAC ratio {self.int8_mac_ratio:.4f} (BOPs reduction "
            f"{100 * self.bops_reduction:.2f}%), {len(self.config.float_nodes)} float node(s), "
            f"{len(self.tflite) / 1e6:.2f} MB")
    if self.int8_unsupported_nodes or self.config.int8_unsupported_layers:
      ops = ", ".join(f"{n.op_type}:{n.name}" for n in self.int8_unsupported_nodes)
      head += (f"\nfloat, no int8 kernel in TFLite: "
               f"{', '.join(self.config.int8_unsupported_layers) or '(no layer)'}"
               + (f" (ops {ops})" if ops else ""))
    for warning in self.config.warnings:
      head += f"\nwarning: {warning}"
    if self.unmapped_nodes:
      head += "\nunmapped TFLite ops (no layer named; never attributed): " + ", ".join(
          f"{n.op_type}:{n.name}" for n in self.unmapped_nodes)
    if self.config.options.get("gpu_compatible"):
      head += ("\ngpu_compatible: no node dynamic_int8 (the GPU delegate rejects hybrid ops); the "
               "nodes it rejects in int8 but not in float kept float first")
    head += "\n" + self.gpu_compatibility.summary()
    return head + "\n" + report.render(self.report_rows(), limit)

  def save(self, directory: str, overwrite: bool = False) -> dict[str, str]:
    """Writes model.tflite, config.json and report.csv into `directory`, each atomically."""
    return files.save_files(directory, {
        MODEL_FILE: self.tflite,
        CONFIG_FILE: self.config.to_json().encode(),
        REPORT_FILE: report.to_csv(self.report_rows()).encode(),
    }, overwrite=overwrite)

  def to_onnx(self, path: str, *, opset: Optional[int] = None, overwrite: bool = False) -> str:
    """Writes the mixed model as a QDQ ONNX file (via tf2onnx), atomically; returns `path`.

    Int8 ops become QuantizeLinear/DequantizeLinear groups, the layers kept float stay float ops,
    so ONNX Runtime and TensorRT run the same mix. An existing file is not replaced unless
    `overwrite` (checked before converting). Needs `pip install "tfq_mixed[onnx]"`.

    Raises:
      OutputError: `path` exists and not `overwrite`, or it cannot be written.
    """
    from tfq_mixed.deploy import onnx_export  # pylint: disable=g-import-not-at-top
    return onnx_export.export(self, path, opset=opset, overwrite=overwrite)
