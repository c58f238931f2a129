"""Step 5: the versioned selective-quantization config, the mixed .tflite, and atomic saving."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import tempfile
from typing import Any, Optional, Sequence

from tfq_mixed import errors
from tfq_mixed import gpu_compatibility
from tfq_mixed import precisions
from tfq_mixed import report
from tfq_mixed.qtyping import (FLOAT_BITS_PER_MAC, INT8_BITS_PER_MAC, LayerStats, Node,
                               Precision, Ranker, Selection)

SCHEMA_VERSION = 2
"""2: `layer_precisions` and `warnings` added; every figure is read from the built model."""
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
    options: ratio, per_channel, ranker, random_state, max_samples, gpu_compatible.
    float_layers: Keras layer names kept float, most sensitive first: the layers of the kept-float
      nodes that run entirely in float in the built model (a layer with some of its MACs in int8
      is 'mixed' in `layer_precisions`, not listed here).
    float_nodes: TFLite node names kept float (`denylisted_nodes`), in selection order.
    int8_mac_ratio, float_macs, total_macs, bops, bops_reduction: Eq. 17 figures of the built
      model (read from its tensor types, `precisions`).
    num_samples: calibration samples used.
    metrics: per-layer metrics records.
    tensorflow_version, tfq_mixed_version, schema_version: provenance.
    int8_unsupported_layers: layers with ops TFLite cannot run in int8 (float whatever the ratio).
    layer_precisions: per layer, what it runs in ('int8', 'float', 'mixed', '-') and the MACs of
      its nodes per precision, read from the built model (`precisions.LayerPrecision`).
    warnings: what the build could not do as asked (e.g. a ratio no selection can reach).
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
  int8_unsupported_layers: tuple[str, ...] = ()
  layer_precisions: dict[str, precisions.LayerPrecision] = dataclasses.field(default_factory=dict)
  warnings: tuple[str, ...] = ()

  _REQUIRED = {"model_name": str, "layers": list, "options": dict, "float_layers": list,
               "float_nodes": list, "int8_mac_ratio": (int, float), "float_macs": int,
               "total_macs": int, "bops": int, "bops_reduction": (int, float),
               "num_samples": int, "schema_version": int}

  def to_dict(self) -> dict[str, Any]:
    out = dataclasses.asdict(self)
    out["layers"] = [list(pair) for pair in self.layers]
    out["metrics"] = [dict(m) for m in self.metrics]
    out["layer_precisions"] = {name: p.to_dict() for name, p in self.layer_precisions.items()}
    out["warnings"] = list(self.warnings)
    return out

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), sort_keys=True, indent=2) + "\n"

  @classmethod
  def from_dict(cls, data: Any) -> "SelectiveQuantizationConfig":
    """Reads a config, checking every field; the error names the first field that is wrong.

    Raises:
      ConfigError: not a tfq_mixed config, a newer schema, or a field missing or malformed.
    """
    if not isinstance(data, dict):
      raise errors.ConfigError(
          f"A tfq_mixed config must be a JSON object. Received: {type(data).__name__}.")
    version = data.get("schema_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
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
    if version < 1:
      raise _corrupted("schema_version", version, f"an int in [1, {SCHEMA_VERSION}]")
    layers = []
    for i, pair in enumerate(data["layers"]):
      if (not isinstance(pair, (list, tuple)) or len(pair) != 2 or
          not all(isinstance(p, str) for p in pair)):
        raise _corrupted(f"layers[{i}]", pair, "a [name, type] pair of strings")
      layers.append((pair[0], pair[1]))
    names = {name for name, _ in layers}
    for field in ("float_layers", "float_nodes", "int8_unsupported_layers"):
      for i, item in enumerate(data.get(field, ())):
        if not isinstance(item, str):
          raise _corrupted(f"{field}[{i}]", item, "a string")
        if field != "float_nodes" and item not in names:
          raise _corrupted(f"{field}[{i}]", item, "a layer listed in 'layers'")
    _check_options(data["options"])
    for field in ("int8_mac_ratio", "bops_reduction"):
      if not 0.0 <= data[field] <= 1.0:
        raise _corrupted(field, data[field], "a number in [0, 1]")
    for field in ("float_macs", "total_macs", "bops", "num_samples"):
      if data[field] < 0:
        raise _corrupted(field, data[field], "a non-negative int")
    if data["float_macs"] > data["total_macs"]:
      raise _corrupted("float_macs", data["float_macs"],
                       f"at most total_macs={data['total_macs']}")
    metrics = data.get("metrics", [])
    if not isinstance(metrics, list):
      raise _corrupted("metrics", metrics, "a list of per-layer records")
    for i, record in enumerate(metrics):
      _check_metrics_record(record, i)
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs = {k: v for k, v in data.items() if k in known}
    kwargs["layers"] = tuple(layers)
    kwargs["float_layers"] = tuple(data["float_layers"])
    kwargs["float_nodes"] = tuple(data["float_nodes"])
    kwargs["int8_unsupported_layers"] = tuple(data.get("int8_unsupported_layers", ()))
    kwargs["metrics"] = tuple(metrics)
    kwargs["layer_precisions"] = _read_layer_precisions(data.get("layer_precisions", {}), names)
    found = data.get("warnings", [])
    if not isinstance(found, list) or not all(isinstance(w, str) for w in found):
      raise _corrupted("warnings", found, "a list of strings")
    kwargs["warnings"] = tuple(found)
    return cls(**kwargs)

  @classmethod
  def from_json(cls, text: str) -> "SelectiveQuantizationConfig":
    try:
      data = json.loads(text)
    except (json.JSONDecodeError, TypeError) as e:
      raise errors.ConfigError(f"The config is not valid JSON ({e}). It is corrupted; re-create it "
                               "with tfq_mixed.convert().") from None
    return cls.from_dict(data)


_LAYER_LABELS = {p.value for p in Precision} | {precisions.MIXED, precisions.NO_OP}


def _read_layer_precisions(data: Any, names: set[str]) -> dict[str, precisions.LayerPrecision]:
  """The `layer_precisions` field (absent before schema 2: empty, not known)."""
  if not isinstance(data, dict):
    raise _corrupted("layer_precisions", data, "an object of layer name -> precision record")
  out = {}
  for name, record in data.items():
    where = f"layer_precisions[{name!r}]"
    if name not in names:
      raise _corrupted(where, name, "a layer listed in 'layers'")
    if (not isinstance(record, dict) or record.get("precision") not in _LAYER_LABELS or
        not isinstance(record.get("macs"), dict)):
      raise _corrupted(where, record, "{'precision': one of " + ", ".join(
          repr(v) for v in sorted(_LAYER_LABELS)) + ", 'macs': {precision: MACs}}")
    for key, value in record["macs"].items():
      if (key not in {p.value for p in Precision} or isinstance(value, bool) or
          not isinstance(value, int) or value < 0):
        raise _corrupted(f"{where}.macs.{key}", value, "a non-negative int per precision")
    out[name] = precisions.LayerPrecision(record["precision"], dict(record["macs"]))
  return out


def _corrupted(field: str, value: Any, expected: str) -> errors.ConfigError:
  shown = repr(value)
  shown = shown if len(shown) <= 80 else shown[:77] + "..."
  return errors.ConfigError(
      f"The config field {field!r} is {shown}; expected {expected}. The config is corrupted or "
      "was edited by hand; re-create it with tfq_mixed.convert().")


# Options a config records, with the check each value must pass.
_OPTION_CHECKS = {
    "ratio": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1,
              "a number in [0, 1]"),
    "ranker": (lambda v: isinstance(v, str) and v in {r.value for r in Ranker} | {"custom"},
               "one of " + ", ".join(repr(r.value) for r in Ranker) + ", 'custom'"),
    "per_channel": (lambda v: isinstance(v, bool), "true or false"),
    "max_samples": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
                    "a positive int"),
    "random_state": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
                     "a non-negative int"),
    "gpu_compatible": (lambda v: isinstance(v, bool), "true or false"),
}


def _check_options(options: dict) -> None:
  for key, (check, expected) in _OPTION_CHECKS.items():
    if key in options and not check(options[key]):
      raise _corrupted(f"options.{key}", options[key], expected)


_METRICS_ADDED_LATER = ("channel_weight_sqnr_db", "op_sqnr_db", "op_error_lsb",
                        "output_noise_share")
"""Per-layer metrics configs written before them lack; read as NaN (not measured)."""


def _check_metrics_record(record: Any, position: int) -> None:
  where = f"metrics[{position}]"
  if not isinstance(record, dict):
    raise _corrupted(where, record, "a per-layer record (JSON object)")
  expected = {f.name for f in dataclasses.fields(LayerStats)}
  missing = sorted(expected - set(record) - set(_METRICS_ADDED_LATER))
  if missing:
    raise _corrupted(f"{where}.{missing[0]}", None, "a value (the field is missing)")
  unknown = sorted(set(record) - expected)
  if unknown:
    raise _corrupted(f"{where}.{unknown[0]}", record[unknown[0]], "no such field")
  for key in LayerStats.METRIC_FIELDS:
    value = record.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
      raise _corrupted(f"{where}.{key}", value, "a number or null")
  for key in ("index", "macs"):
    if isinstance(record[key], bool) or not isinstance(record[key], int):
      raise _corrupted(f"{where}.{key}", record[key], "an int")
  if record["node"] is not None and (isinstance(record["node"], bool) or
                                     not isinstance(record["node"], int)):
    raise _corrupted(f"{where}.node", record["node"], "an int or null")
  for key in ("name", "layer_type"):
    if not isinstance(record[key], str):
      raise _corrupted(f"{where}.{key}", record[key], "a string")


def make_config(*, model_name: str, layers: Sequence[LayerStats], options: dict[str, Any],
                selection: Selection, nodes: Sequence[Node], built: dict[int, Precision],
                num_samples: int, tensorflow_version: str,
                int8_unsupported_layers: Sequence[str] = (),
                warnings: Sequence[str] = ()) -> SelectiveQuantizationConfig:
  """The config of a built model: the choice (`selection`) and the figures of what was built.

  `built` holds each node's precision in the built .tflite (`precisions.node_precisions`); the
  MAC figures, BOPs and per-layer precisions come from it, not from the selection.
  """
  counts = precisions.mac_count(nodes, built)
  int8_macs = counts.by_precision[Precision.INT8.value]
  float_macs = counts.total - int8_macs
  # Dynamic-range kernels quantize activations on the fly and multiply in int8 too.
  low_bit_macs = int8_macs + counts.by_precision[Precision.DYNAMIC_INT8.value]
  bops = low_bit_macs * INT8_BITS_PER_MAC + (counts.total - low_bit_macs) * FLOAT_BITS_PER_MAC
  by_layer = precisions.layer_precisions([l.name for l in layers], nodes, built)
  return SelectiveQuantizationConfig(
      model_name=model_name,
      layers=tuple((l.name, l.layer_type) for l in layers),
      options=dict(options),
      float_layers=tuple(name for name in selection.float_layers
                         if by_layer.get(name) and by_layer[name].precision == Precision.FLOAT.value),
      float_nodes=selection.float_nodes,
      int8_mac_ratio=round(counts.int8_mac_ratio, 9),
      float_macs=float_macs,
      total_macs=counts.total,
      bops=bops,
      bops_reduction=round(1.0 - bops / (counts.total * FLOAT_BITS_PER_MAC), 9)
      if counts.total else 0.0,
      num_samples=num_samples,
      metrics=tuple(l.to_dict() for l in layers),
      tensorflow_version=tensorflow_version,
      int8_unsupported_layers=tuple(int8_unsupported_layers),
      layer_precisions=by_layer,
      warnings=tuple(warnings))


BUILT_FIELDS = ("int8_mac_ratio", "float_macs", "total_macs", "bops", "bops_reduction",
                "float_layers", "int8_unsupported_layers", "layer_precisions")
"""Config fields that describe the built model, checked when a config is applied again."""


def check_built(recorded: SelectiveQuantizationConfig, built: SelectiveQuantizationConfig) -> None:
  """Raises ConfigError naming the first field where a config disagrees with what it builds.

  `built` is the config made from the model `recorded` built. A config of schema 1 has no
  `layer_precisions`; that field is then not compared.
  """
  mine, theirs = recorded.to_dict(), built.to_dict()
  fields = [f for f in BUILT_FIELDS if not (f == "layer_precisions" and not mine[f])]
  wrong = [f for f in fields if mine[f] != theirs[f]]
  if wrong:
    field = wrong[0]
    shown = lambda v: (repr(v) if len(repr(v)) <= 100 else repr(v)[:97] + "...")
    also = f" (also: {', '.join(wrong[1:])})" if wrong[1:] else ""
    raise errors.ConfigError(
        f"The config field {field!r} is {shown(mine[field])}, but the model its float_nodes "
        f"build has {shown(theirs[field])}{also}. The config was edited by hand or made by an "
        "older tfq_mixed that counted differently. Re-create it with tfq_mixed.convert(), or "
        "edit only float_nodes and let Result.config report what is built.")


def _write_temp(path: str, data: bytes) -> str:
  """Writes `data` to a new hidden temp file beside `path` (flushed to disk); returns its path."""
  directory = os.path.dirname(os.path.abspath(path))
  fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
  try:
    # mkstemp creates the file 0600; give it the mode a plain open() would (0666 less the umask).
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)
    with os.fdopen(fd, "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
  except BaseException:
    _remove_quietly(tmp)
    raise
  return tmp


def _remove_quietly(path: str) -> None:
  try:
    os.remove(path)
  except OSError:
    pass


def write_atomic(path: str, data: bytes) -> None:
  """Writes `data` to a temp file beside `path`, then renames it: `path` is whole or absent."""
  tmp = _write_temp(path, data)
  try:
    os.replace(tmp, path)
  except BaseException:
    _remove_quietly(tmp)
    raise


def refuse_clobber(paths, overwrite: bool, where: str = "output path") -> None:
  """Raises OutputError if one of `paths` exists and not `overwrite` (checked before any work).

  Raises:
    InvalidTypeError: `overwrite` is not a bool.
    OutputError: a file exists.
  """
  if not isinstance(overwrite, bool):
    raise errors.InvalidTypeError(
        f"`overwrite` must be a bool. Received: overwrite={overwrite!r}.")
  if not overwrite:
    existing = [os.fspath(p) for p in paths if os.path.lexists(p)]
    if existing:
      raise errors.OutputError(
          f"{existing[0]} already exists. Pass overwrite=True to replace it, or choose another "
          f"{where}.")


def save_files(directory: str, files: dict[str, bytes], overwrite: bool = False) -> dict[str, str]:
  """Saves several files into `directory` as one unit; nothing is clobbered unless `overwrite`.

  Every file is first written in full to a temp file beside its target; only then are the temp
  files renamed into place. A failure while writing (disk full, interrupted) leaves the folder as
  it was; a failure while renaming undoes the renames already done (restoring replaced files).

  Raises:
    InvalidTypeError: `directory` is not a path or `overwrite` not a bool.
    OutputError: a file exists (and not `overwrite`), or the folder is not writable or full.
  """
  if not isinstance(directory, (str, os.PathLike)):
    raise errors.InvalidTypeError(
        f"`directory` must be a path (str or os.PathLike). Received: {directory!r} of type "
        f"{type(directory).__name__}. Pass the output folder, e.g. result.save('out/').")
  directory = os.fspath(directory)
  paths = {name: os.path.join(directory, name) for name in files}
  refuse_clobber(paths.values(), overwrite, where="output folder")
  if os.path.exists(directory) and not os.path.isdir(directory):
    raise errors.OutputError(
        f"{directory!r} is a file, not a folder. Pass a folder path for the results.")
  temps: dict[str, str] = {}
  try:
    os.makedirs(directory, exist_ok=True)
    for name, data in files.items():  # 1. Everything in full beside the targets.
      temps[name] = _write_temp(paths[name], data)
    _rename_all(temps, paths)  # 2. Then into place.
  except OSError as e:
    raise errors.OutputError(
        f"Could not write the results to {directory!r}: {e.strerror or e}. Nothing was left "
        "half-written there. Check that the folder is writable and the disk has space.") from e
  finally:
    for tmp in temps.values():
      if os.path.exists(tmp):
        _remove_quietly(tmp)
  return paths


def _rename_all(temps: dict[str, str], paths: dict[str, str]) -> None:
  """Renames each temp file onto its target; on failure restores every target as it was."""
  done: list[tuple[str, Optional[str]]] = []  # (target, backup of what it replaced)
  try:
    for name, tmp in temps.items():
      target = paths[name]
      backup = None
      if os.path.lexists(target):
        backup = os.path.join(os.path.dirname(target),
                              "." + os.path.basename(target) + ".tfq_mixed_backup")
        os.replace(target, backup)
      done.append((target, backup))
      os.replace(tmp, target)
  except BaseException:
    for target, backup in reversed(done):
      if backup is None:
        _remove_quietly(target)
      else:
        try:
          os.replace(backup, target)
        except OSError:
          pass
    raise
  for _, backup in done:
    if backup is not None:
      _remove_quietly(backup)


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
  def gpu_compatibility(self) -> gpu_compatibility.GpuCompatibility:
    """The TFLite GPU delegate's verdict on `tflite`, from TensorFlow's model analyzer (and our
    port of its rules where this TensorFlow's analyzer has no checker); computed on first use."""
    return gpu_compatibility.check(self.tflite, self.nodes)

  @property
  def gpu_incompatible_ops(self) -> tuple[gpu_compatibility.GpuIncompatibleOp, ...]:
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
    head += "\n" + self.gpu_compatibility.summary()
    return head + "\n" + report.render(self.report_rows(), limit)

  def save(self, directory: str, overwrite: bool = False) -> dict[str, str]:
    """Writes model.tflite, config.json and report.csv into `directory`, each atomically."""
    return save_files(directory, {
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
    from tfq_mixed import onnx_export  # pylint: disable=g-import-not-at-top
    return onnx_export.export(self, path, opset=opset, overwrite=overwrite)
