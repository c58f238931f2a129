"""The selective-quantization config: its schema, versions and checks, and how it is read.

A config says which TFLite nodes stay float (`float_nodes`, what `apply_config` rebuilds from) and
describes the model they build: the int8 MAC share and BOPs (QuantuneV2 Eq. 17), the per-layer
precisions, the options and metrics behind the choice. JSON, keys sorted, so the same model, data
and options give the same bytes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any, Optional, Sequence

from tfq_mixed import errors
from tfq_mixed import precisions
from tfq_mixed.qtyping import (FLOAT_BITS_PER_MAC, INT8_BITS_PER_MAC, BudgetKind, Fallback,
                               LayerRef, LayerStats, Node, Precision, Ranker, Selection)

SCHEMA_VERSION = 3
"""The config format this version writes; `SCHEMA_HISTORY` says what each version changed."""

SCHEMA_HISTORY = {
    1: "model_name, layers, options (ratio, ranker, random_state, per_channel, max_samples), "
       "float_layers, float_nodes, the Eq. 17 figures, num_samples, metrics, provenance. Added "
       "later without a new version: metrics channel_weight_sqnr_db, op_sqnr_db, op_error_lsb and "
       "output_noise_share, options.gpu_compatible, int8_unsupported_layers.",
    2: "layer_precisions and warnings; the figures describe the built model; every field of "
       "version 1, its later additions included, is required.",
    3: "the precision ladder: dynamic_nodes (float nodes made dynamic-range), budget (its kind, "
       "value and achieved figure), options fallback, threads and the budget's own key; the "
       "dynamic_weight_sqnr_db metric. Version 2 configs were fallback 'float' with a ratio.",
}
"""What each schema version holds. Older configs are migrated when read (`migrate`)."""

VERSION = "0.1.0"


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
    layer_precisions: per layer, what it runs in ('int8', 'dynamic_int8', 'float', 'mixed', '-')
      and the MACs of its nodes per precision, read from the built model
      (`precisions.LayerPrecision`).
    warnings: what the build could not do as asked (e.g. a ratio no selection can reach).
    dynamic_nodes: the float nodes then made dynamic-range (int8 weights, float activations).
    budget: the budget's kind and value, the achieved figure (a multiple of the full-int8 model's
      latency or size, as the cost model predicts it), and the output SQNR measured against the
      float model on the first calibration samples.
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
  dynamic_nodes: tuple[str, ...] = ()
  budget: dict[str, Any] = dataclasses.field(default_factory=dict)

  _REQUIRED = {"model_name": str, "layers": list, "options": dict, "float_layers": list,
               "float_nodes": list, "int8_mac_ratio": (int, float), "float_macs": int,
               "total_macs": int, "bops": int, "bops_reduction": (int, float),
               "num_samples": int, "schema_version": int, "int8_unsupported_layers": list,
               "layer_precisions": dict, "warnings": list, "dynamic_nodes": list, "budget": dict}

  def to_dict(self) -> dict[str, Any]:
    out = dataclasses.asdict(self)
    out["layers"] = [list(pair) for pair in self.layers]
    out["metrics"] = [dict(m) for m in self.metrics]
    out["layer_precisions"] = {name: p.to_dict() for name, p in self.layer_precisions.items()}
    out["warnings"] = list(self.warnings)
    out["dynamic_nodes"] = list(self.dynamic_nodes)
    out["budget"] = dict(self.budget)
    return out

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), sort_keys=True, indent=2) + "\n"

  @classmethod
  def from_dict(cls, data: Any) -> "SelectiveQuantizationConfig":
    """Reads a config of any schema version up to `SCHEMA_VERSION`, migrated to it, checking
    every field; the error names the first field that is wrong.

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
    if isinstance(version, int) and not isinstance(version, bool) and 1 <= version:
      data = migrate(data)
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
    kwargs["int8_unsupported_layers"] = tuple(data["int8_unsupported_layers"])
    kwargs["metrics"] = tuple(metrics)
    kwargs["layer_precisions"] = _read_layer_precisions(data["layer_precisions"], names)
    if not all(isinstance(w, str) for w in data["warnings"]):
      raise _corrupted("warnings", data["warnings"], "a list of strings")
    kwargs["warnings"] = tuple(data["warnings"])
    floating = set(kwargs["float_nodes"])
    for i, name in enumerate(data["dynamic_nodes"]):
      if not isinstance(name, str) or name not in floating:
        raise _corrupted(f"dynamic_nodes[{i}]", name, "a node listed in 'float_nodes'")
    kwargs["dynamic_nodes"] = tuple(data["dynamic_nodes"])
    _check_budget_record(data["budget"])
    kwargs["budget"] = dict(data["budget"])
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


def migrate(data: dict) -> dict:
  """A config dict of schema `data['schema_version']` brought to `SCHEMA_VERSION` (a new dict).

  Version 2 configs chose float nodes by ranking within a ratio (fallback 'float'): no dynamic
  nodes, the ratio as their budget, no `dynamic_weight_sqnr_db` metric (null). Version 1 configs
  may also lack what was added under version 1 later: metrics not measured then are
  null, `gpu_compatible` was off, no layer was recorded as int8-unsupported. They have no
  `layer_precisions` (left empty: not known, so not checked by `apply_config`) and no warnings.
  """
  data = dict(data)
  if data["schema_version"] < 2:
    _add_defaults(data, _METRICS_ADDED_IN_1, {"gpu_compatible": False})
    data.setdefault("int8_unsupported_layers", [])
    data.setdefault("layer_precisions", {})
    data.setdefault("warnings", [])
    data["schema_version"] = 2
  if data["schema_version"] < 3:
    _add_defaults(data, _METRICS_ADDED_IN_3, {"fallback": "float", "threads": 1})
    if isinstance(data.get("options"), dict):
      if "ratio" in data["options"]:
        data.setdefault("budget", {"kind": "ratio", "value": data["options"]["ratio"]})
    data.setdefault("dynamic_nodes", [])
    data.setdefault("budget", {})
    data["schema_version"] = 3
  return data


def _add_defaults(data: dict, metrics_added: Sequence[str], option_defaults: dict) -> None:
  """Metrics a newer version added, null in each metrics record; options it added, at the value
  that version's behaviour had before. Malformed parts are left for the reader to name."""
  metrics = data.get("metrics", [])
  if isinstance(metrics, list):
    data["metrics"] = [dict({k: None for k in metrics_added}, **m) if isinstance(m, dict) else m
                       for m in metrics]
  if isinstance(data.get("options"), dict):
    data["options"] = dict(option_defaults, **data["options"])


def _read_layer_precisions(data: dict, names: set[str]) -> dict[str, precisions.LayerPrecision]:
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


def _number(value: Any) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


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
    "fallback": (lambda v: v in {f.value for f in Fallback}, "one of " + ", ".join(
        repr(f.value) for f in Fallback)),
    "threads": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
                "a positive int"),
    "max_latency": (lambda v: _number(v) and v > 0, "a positive number"),
    "max_size": (lambda v: _number(v) and v > 0, "a positive number"),
    "min_output_sqnr_db": (_number, "a number"),
    "max_drop": (lambda v: _number(v) and v >= 0, "a number >= 0"),
}


def _check_budget_record(budget: dict) -> None:
  if not budget:
    return
  if budget.get("kind") not in {k.value for k in BudgetKind}:
    raise _corrupted("budget.kind", budget.get("kind"),
                     "one of " + ", ".join(repr(k.value) for k in BudgetKind))
  for key in ("value", "achieved", "output_sqnr_db"):
    if key in budget and not _number(budget[key]):
      raise _corrupted(f"budget.{key}", budget[key], "a number")


def _check_options(options: dict) -> None:
  for key, (check, expected) in _OPTION_CHECKS.items():
    if key in options and not check(options[key]):
      raise _corrupted(f"options.{key}", options[key], expected)


_METRICS_ADDED_IN_1 = ("channel_weight_sqnr_db", "op_sqnr_db", "op_error_lsb",
                       "output_noise_share")
"""Per-layer metrics added under schema 1, which earlier version-1 configs lack (migrated to null:
not measured)."""
_METRICS_ADDED_IN_3 = ("dynamic_weight_sqnr_db",)


def _check_metrics_record(record: Any, position: int) -> None:
  where = f"metrics[{position}]"
  if not isinstance(record, dict):
    raise _corrupted(where, record, "a per-layer record (JSON object)")
  expected = {f.name for f in dataclasses.fields(LayerStats)}
  missing = sorted(expected - set(record))
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
                warnings: Sequence[str] = (),
                budget: Optional[dict] = None) -> SelectiveQuantizationConfig:
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
      warnings=tuple(warnings),
      dynamic_nodes=selection.dynamic_nodes,
      budget=dict(budget or {}))


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


def load_config(config: Any) -> SelectiveQuantizationConfig:
  """A config from a `SelectiveQuantizationConfig`, a JSON string, or a path to a config.json.

  Raises:
    ConfigError: no such file, not readable, not JSON, too new a schema, or a malformed field.
    InvalidTypeError: `config` is none of the above.
  """
  if isinstance(config, SelectiveQuantizationConfig):
    return config
  if isinstance(config, (str, os.PathLike)):
    text = os.fspath(config)
    if not isinstance(text, str) or not text.lstrip().startswith("{"):
      path = text
      if not os.path.isfile(path):
        raise errors.ConfigError(f"No config file at {path!r}. Pass a path to a config.json "
                                 "written by Result.save(), its text, or the config object.")
      try:
        with open(path, "rb") as f:
          text = f.read().decode("utf-8")
      except (OSError, UnicodeDecodeError) as e:
        raise errors.ConfigError(
            f"Could not read the config {path!r}: {getattr(e, 'strerror', None) or e}. Pass a "
            "readable config.json written by Result.save().") from None
    return SelectiveQuantizationConfig.from_json(text)
  raise errors.InvalidTypeError(
      f"`config` must be a SelectiveQuantizationConfig, JSON text or a path. Received: "
      f"{type(config).__name__}.")


def check_matches(layers: Sequence[LayerRef], config: SelectiveQuantizationConfig) -> None:
  """Raises ConfigError naming the first layer where `config` and the model's `layers` differ."""
  for position, (ref, (name, layer_type)) in enumerate(zip(layers, config.layers)):
    if (ref.name, ref.layer_type) != (name, layer_type):
      raise errors.ConfigError(
          f"The config does not match this model: layer {position} is {ref.name!r} "
          f"({ref.layer_type}) in the model but {name!r} ({layer_type}) in the config, which was "
          f"made for model {config.model_name!r}. Use the config with the model it was made for.")
  if len(layers) != len(config.layers):
    first = (f"the model's layer {len(config.layers)} ({layers[len(config.layers)].name!r}) is "
             "not in the config" if len(layers) > len(config.layers) else
             f"the config's layer {len(layers)} ({config.layers[len(layers)][0]!r}) is not in the "
             "model")
    raise errors.ConfigError(
        f"The config does not match this model: it lists {len(config.layers)} layers, the model "
        f"has {len(layers)}; {first}. The config was made for model {config.model_name!r}. Use "
        "the config with the model it was made for.")
