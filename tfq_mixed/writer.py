"""Step 5: the versioned selective-quantization config, the mixed .tflite, and atomic saving."""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from typing import Any, Optional, Sequence

from tfq_mixed import errors
from tfq_mixed import report
from tfq_mixed.qtyping import LayerStats, Node, Selection

SCHEMA_VERSION = 1
VERSION = "0.1.0"

MODEL_FILE = "model.tflite"
CONFIG_FILE = "config.json"
REPORT_FILE = "report.csv"


@dataclasses.dataclass(frozen=True)
class SelectiveQuantizationConfig:
  """Which Keras layers (and TFLite nodes) stay float, with the options and metrics behind it.

  Attributes:
    model_name: the Keras model's name.
    layers: every flattened layer as [name, type], to check a config against a model.
    options: ratio, per_channel, ranker, random_state, max_samples.
    float_layers: Keras layer names kept float, most sensitive first.
    float_nodes: TFLite node names kept float (`denylisted_nodes`), in selection order.
    int8_mac_ratio, float_macs, total_macs, bops, bops_reduction: Eq. 17 figures achieved.
    num_samples: calibration samples used.
    metrics: per-layer metrics records.
    tensorflow_version, tfq_mixed_version, schema_version: provenance.
  """

  model_name: str
  layers: tuple[tuple[str, str], ...]
  options: dict[str, Any]
  float_layers: tuple[str, ...]
  float_nodes: tuple[str, ...]
  int8_mac_ratio: float
  float_macs: int
  total_macs: int
  bops: int
  bops_reduction: float
  num_samples: int
  metrics: tuple[dict[str, Any], ...] = ()
  tensorflow_version: str = ""
  tfq_mixed_version: str = VERSION
  schema_version: int = SCHEMA_VERSION

  _REQUIRED = {"model_name": str, "layers": list, "options": dict, "float_layers": list,
               "float_nodes": list, "int8_mac_ratio": (int, float), "float_macs": int,
               "total_macs": int, "bops": int, "bops_reduction": (int, float),
               "num_samples": int, "schema_version": int}

  def to_dict(self) -> dict[str, Any]:
    out = dataclasses.asdict(self)
    out["layers"] = [list(pair) for pair in self.layers]
    out["metrics"] = [dict(m) for m in self.metrics]
    return out

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), sort_keys=True, indent=2) + "\n"

  @classmethod
  def from_dict(cls, data: Any) -> "SelectiveQuantizationConfig":
    if not isinstance(data, dict):
      raise errors.ConfigError(
          f"A tfq_mixed config must be a JSON object. Received: {type(data).__name__}.")
    version = data.get("schema_version")
    if isinstance(version, int) and version > SCHEMA_VERSION:
      raise errors.ConfigError(
          f"The config has schema_version={version}; this tfq_mixed ({VERSION}) reads up to "
          f"{SCHEMA_VERSION}. Upgrade tfq_mixed, or re-create the config with this version.")
    for field, kind in cls._REQUIRED.items():
      if field not in data:
        raise errors.ConfigError(f"The config lacks the field {field!r}. It is corrupted or not a "
                                 "tfq_mixed config; re-create it with tfq_mixed.convert().")
      if not isinstance(data[field], kind) or isinstance(data[field], bool):
        raise errors.ConfigError(
            f"The config field {field!r} has type {type(data[field]).__name__}; expected "
            f"{getattr(kind, '__name__', kind)}. The config is corrupted; re-create it.")
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs = {k: v for k, v in data.items() if k in known}
    try:
      kwargs["layers"] = tuple((str(n), str(t)) for n, t in data["layers"])
    except (TypeError, ValueError):
      raise errors.ConfigError("The config field 'layers' must be a list of [name, type] pairs. "
                               "The config is corrupted; re-create it.") from None
    kwargs["float_layers"] = tuple(data["float_layers"])
    kwargs["float_nodes"] = tuple(data["float_nodes"])
    kwargs["metrics"] = tuple(data.get("metrics", ()))
    return cls(**kwargs)

  @classmethod
  def from_json(cls, text: str) -> "SelectiveQuantizationConfig":
    try:
      data = json.loads(text)
    except (json.JSONDecodeError, TypeError) as e:
      raise errors.ConfigError(f"The config is not valid JSON ({e}). It is corrupted; re-create it "
                               "with tfq_mixed.convert().") from None
    return cls.from_dict(data)


def make_config(*, model_name: str, layers: Sequence[LayerStats], options: dict[str, Any],
                selection: Selection, num_samples: int,
                tensorflow_version: str) -> SelectiveQuantizationConfig:
  return SelectiveQuantizationConfig(
      model_name=model_name,
      layers=tuple((l.name, l.layer_type) for l in layers),
      options=dict(options),
      float_layers=selection.float_layers,
      float_nodes=selection.float_nodes,
      int8_mac_ratio=round(selection.int8_mac_ratio, 9),
      float_macs=selection.float_macs,
      total_macs=selection.total_macs,
      bops=selection.bops,
      bops_reduction=round(selection.bops_reduction, 9),
      num_samples=num_samples,
      metrics=tuple(l.to_dict() for l in layers),
      tensorflow_version=tensorflow_version)


def write_atomic(path: str, data: bytes) -> None:
  """Writes `data` to a temp file beside `path`, then renames it: `path` is whole or absent."""
  directory = os.path.dirname(os.path.abspath(path))
  fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
  try:
    with os.fdopen(fd, "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def save_files(directory: str, files: dict[str, bytes], overwrite: bool = False) -> dict[str, str]:
  """Saves several files atomically into `directory`; nothing is clobbered unless `overwrite`.

  Raises:
    OutputError: a file exists (and not `overwrite`), or the folder is not writable or full.
  """
  directory = os.fspath(directory)
  paths = {name: os.path.join(directory, name) for name in files}
  if not overwrite:
    existing = [p for p in paths.values() if os.path.exists(p)]
    if existing:
      raise errors.OutputError(
          f"{existing[0]} already exists. Pass overwrite=True to replace it, or choose another "
          "output folder.")
  try:
    os.makedirs(directory, exist_ok=True)
    written = []
    try:
      for name, data in files.items():
        write_atomic(paths[name], data)
        written.append(paths[name])
    except BaseException:
      if not overwrite:  # Leave no half-saved result: remove what this call created.
        for path in written:
          os.remove(path)
      raise
  except OSError as e:
    raise errors.OutputError(
        f"Could not write the results to {directory!r}: {e.strerror or e}. Check that the folder "
        "is writable and the disk has space.") from e
  return paths


@dataclasses.dataclass(frozen=True)
class Result:
  """A mixed-precision model and how it was chosen.

  Attributes:
    tflite: the mixed int8/float TFLite flatbuffer.
    config: the `SelectiveQuantizationConfig` that reproduces it.
    layers: per-layer metrics (empty when rebuilt from a config without metrics).
    ranking: layer names, most sensitive first.
    nodes: the TFLite nodes of the model.
  """

  tflite: bytes
  config: SelectiveQuantizationConfig
  layers: tuple[LayerStats, ...] = ()
  ranking: tuple[str, ...] = ()
  nodes: tuple[Node, ...] = ()

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
    return tuple(n for n in self.nodes if not n.layers)

  def report_rows(self) -> list[dict]:
    ranking = self.ranking or tuple(l.name for l in self.layers)
    return report.rows(self.layers, ranking, self.config.float_layers)

  def report(self, limit: Optional[int] = 30) -> str:
    """A readable summary: the achieved ratio and the per-layer table, most sensitive first."""
    head = (f"int8 MAC ratio {self.int8_mac_ratio:.4f} (BOPs reduction "
            f"{100 * self.bops_reduction:.2f}%), {len(self.config.float_nodes)} float node(s), "
            f"{len(self.tflite) / 1e6:.2f} MB")
    if self.unmapped_nodes:
      head += "\nunmapped TFLite ops: " + ", ".join(
          f"{n.op_type}:{n.name}" for n in self.unmapped_nodes)
    return head + "\n" + report.render(self.report_rows(), limit)

  def save(self, directory: str, overwrite: bool = False) -> dict[str, str]:
    """Writes model.tflite, config.json and report.csv into `directory`, each atomically."""
    return save_files(directory, {
        MODEL_FILE: self.tflite,
        CONFIG_FILE: self.config.to_json().encode(),
        REPORT_FILE: report.to_csv(self.report_rows()).encode(),
    }, overwrite=overwrite)
