"""`Analysis`: one model's sensitivity on one calibration, quantized under any budget without
recalibrating (steps 3 to 5 of the pipeline)."""

from __future__ import annotations

import collections
import dataclasses
import functools
import hashlib
import math
from typing import Any, Callable, Optional, Sequence

import numpy as np

from tfq_mixed import _heap
from tfq_mixed import _tflite_private
from tfq_mixed import calibrator
from tfq_mixed import costs as costs_lib
from tfq_mixed import dataset as dataset_lib
from tfq_mixed import errors
from tfq_mixed import exact
from tfq_mixed import hybrid
from tfq_mixed import ladder
from tfq_mixed import metrics
from tfq_mixed import precisions
from tfq_mixed import propagation
from tfq_mixed import rankers
from tfq_mixed import segments
from tfq_mixed import selector
from tfq_mixed import writer
from tfq_mixed.qtyping import (Budget, BudgetKind, Fallback, LayerStats, Node, Precision,
                               Ranker, Selection, check_bool, check_budget, check_positive_int,
                               check_random_state)
from tfq_mixed.result import Result

VERIFICATION_SAMPLES = 32
"""Calibration samples every candidate of the ladder is run on, its output SQNR measured against
the float model's: the label-free check that picks among the candidates within a budget."""
BUILDS_KEPT = 4
"""Candidate models kept in memory, the last built (the one a budget takes is rebuilt if it is
older): an analysis measures dozens, each as large as the model's file."""


@dataclasses.dataclass(frozen=True)
class AnalysisOptions:
  per_channel: bool = True
  max_samples: int = dataset_lib.DEFAULT_MAX_SAMPLES

  def __post_init__(self):
    if not isinstance(self.per_channel, bool):
      raise errors.InvalidTypeError(
          f"`per_channel` must be a bool. Received: per_channel={self.per_channel!r}.")


def _run(tflite: bytes, names: Sequence[str], inputs: Sequence[np.ndarray],
         fixed_batch: Optional[int]) -> np.ndarray:
  """Every output of `tflite` on `inputs` (its signature's inputs `names`), flattened per sample
  and concatenated (XNNPACK, one thread: the same figures on every run)."""
  interpreter = _tflite_private.make_interpreter(tflite, num_threads=1)
  runner = interpreter.get_signature_runner()
  step = fixed_batch or inputs[0].shape[0]
  outputs = []
  for start in range(0, inputs[0].shape[0], step):
    result = runner(**{name: a[start:start + step] for name, a in zip(names, inputs)})
    outputs.append(np.concatenate([np.asarray(result[k], np.float32).reshape(
        len(inputs[0][start:start + step]), -1) for k in sorted(result)], axis=1))
  return np.concatenate(outputs)


class Analysis:
  """Per-layer sensitivity of one model on one calibration; quantize under any budget without
  recalibrating.

  Attributes:
    layers: per-layer metrics (`LayerStats`), in execution order.
    nodes: the TFLite nodes, with the layers each contains and their MACs.
    int8_model: the plain fully-int8 model of this calibration.
    float_model: the float model of this calibration (the reference of the output SQNRs).
  """

  def __init__(self, model_name: str, calibration: calibrator.Calibration,
               layers: tuple[LayerStats, ...], options: AnalysisOptions, num_samples: int,
               int8_unsupported_nodes: tuple[Node, ...],
               op_inputs: dict[int, tuple[int, ...]], samples: dataset_lib.Samples):
    self.model_name = model_name
    self.calibration = calibration
    self.layers = layers
    self.options = options
    self.num_samples = num_samples
    self.int8_unsupported_nodes = int8_unsupported_nodes
    self.op_inputs = op_inputs  # `segments.op_inputs` of the calibrated model
    keep = min(num_samples, VERIFICATION_SAMPLES)
    if samples.fixed_batch:
      keep = max(samples.fixed_batch, keep - keep % samples.fixed_batch)
    self._verification = [np.array(a[:keep]) for a in samples.arrays]
    self._fixed_batch = samples.fixed_batch
    self._builds: collections.OrderedDict[tuple, bytes] = collections.OrderedDict()
    self._sqnr: dict[bytes, float] = {}  # by the model's SHA-256: not the model itself
    self._walks: dict[tuple, ladder.Walk] = {}
    self._costs: dict[int, costs_lib.CostModel] = {}

  # The models and measurements the ladder works with, each made once.

  @functools.cached_property
  def int8_model(self) -> bytes:
    """The plain fully-int8 model of this calibration (quantized when first needed)."""
    return _tflite_private.quantize(self.calibration.calibrated_model,
                                    per_channel=self.options.per_channel)

  @functools.cached_property
  def float_model(self) -> bytes:
    return self.build([n.name for n in self.nodes])

  @property
  def nodes(self):
    return self.calibration.nodes

  def build(self, float_nodes: Sequence[str], dynamic_nodes: Sequence[str] = ()) -> bytes:
    """The .tflite with `float_nodes` out of static int8, `dynamic_nodes` of them dynamic_int8."""
    key = (tuple(float_nodes), tuple(dynamic_nodes))
    if key not in self._builds:
      self._builds[key] = (self.int8_model if not float_nodes else
                           writer.build(self.calibration, float_nodes, dynamic_nodes))
      while len(self._builds) > BUILDS_KEPT:
        self._builds.popitem(last=False)
    self._builds.move_to_end(key)
    return self._builds[key]

  def output_sqnr_db(self, tflite: bytes) -> float:
    """SQNR (dB) of `tflite`'s outputs against the float model's, on the first calibration
    samples (up to `VERIFICATION_SAMPLES`): label-free, deterministic."""
    digest = hashlib.sha256(tflite).digest()
    if digest not in self._sqnr:
      self._sqnr[digest] = metrics.sqnr_db(self._reference, _run(
          tflite, self.calibration.input_names, self._verification, self._fixed_batch))
    return self._sqnr[digest]

  @functools.cached_property
  def _reference(self) -> np.ndarray:
    return _run(self.float_model, self.calibration.input_names, self._verification,
                self._fixed_batch)

  @functools.cached_property
  def gpu_float_fixable_nodes(self) -> tuple[Node, ...]:
    """Nodes the GPU delegate rejects in the full-int8 model but accepts in float (see
    `deploy.gpu_compatibility`); `quantize(..., gpu_compatible=True)` keeps them float first."""
    from tfq_mixed.deploy import gpu_compatibility  # pylint: disable=g-import-not-at-top
    return gpu_compatibility.float_fixable_nodes(self.int8_model,
                                                 self.calibration.calibrated_model, self.nodes)

  @property
  def int8_unsupported_layers(self) -> tuple[str, ...]:
    """Layers with an op TFLite cannot run in int8 (kept float in every result)."""
    return writer.layers_of(self.int8_unsupported_nodes)

  @functools.cached_property
  def dynamic_capable_nodes(self) -> tuple[Node, ...]:
    """Nodes with a dynamic-range kernel and weights big enough for one (`hybrid`)."""
    stubborn = {n.index for n in self.stubborn_nodes}
    return tuple(n for n in hybrid.eligible_nodes(self.calibration.calibrated_model, self.nodes)
                 if n.index not in stubborn)

  @functools.cached_property
  def _int8_nodes(self) -> set[int]:
    """The nodes the full-int8 model runs in static int8: those the ladder may move up, ops
    without MACs (PReLU, ADD, LOGISTIC) included."""
    built = precisions.node_precisions(self.int8_model, self.nodes)
    return {index for index, precision in built.items() if precision == Precision.INT8}

  @functools.cached_property
  def stubborn_nodes(self) -> tuple[Node, ...]:
    """Nodes TensorFlow's quantizer keeps int8 when denylisted one by one (TRANSPOSE_CONV): the
    ladder leaves them in int8; only the float model (ratio 0) makes them float, by op type."""
    every = [n.name for n in self.nodes]
    return writer.stubborn_nodes(
        _tflite_private.quantize(self.calibration.calibrated_model,
                                 per_channel=self.options.per_channel, denylisted_nodes=every),
        self.nodes, every)

  @functools.cached_property
  def graph(self) -> costs_lib.Graph:
    return costs_lib.read_graph(self.calibration.calibrated_model, self.nodes, self.op_inputs,
                                self.calibration.input_names, [a[:1] for a in self._verification])

  @functools.cached_property
  def noise_model(self) -> ladder.NoiseModel:
    """The noise each node leaves in each precision, from the two passes (`ladder.NoiseModel`)."""
    noise = propagation.node_noise(self.layers, self.nodes, self.op_inputs)
    ratio = {}
    for layer in self.layers:
      if layer.node is not None and not math.isnan(layer.dynamic_weight_sqnr_db) and not math.isnan(
          layer.fused_weight_sqnr_db):
        ratio[layer.node] = min(
            1.0, 10.0 ** ((layer.fused_weight_sqnr_db - layer.dynamic_weight_sqnr_db) / 10.0))
    return ladder.NoiseModel(noise=noise, weight_ratio=ratio)

  def costs(self, threads: int = 1) -> costs_lib.CostModel:
    """What each node costs in each precision on this machine (LiteRT's per-op profiler at
    `threads` XNNPACK threads); measured once per thread count.

    Raises:
      ProfileError: LiteRT's profiler failed (a clear error: never a silent MAC fallback).
    """
    threads = check_positive_int(threads, "threads")
    if threads not in self._costs:
      self._costs[threads] = costs_lib.measure(
          self.build, self._uniform_models, self.nodes, self.dynamic_capable_nodes,
          [a[:1] for a in self._verification], threads=threads)
      _heap.release()  # what the profiled interpreters freed
    return self._costs[threads]

  @functools.cached_property
  def _uniform_models(self) -> dict:
    return costs_lib.uniform_models(self.build, self.int8_model, self.nodes,
                                    self.dynamic_capable_nodes)

  @functools.cached_property
  def sizes(self) -> costs_lib.Sizes:
    """Bytes of each node in each precision (read from built models: no profiling)."""
    return costs_lib.measure_sizes(self._uniform_models, self.nodes, self.dynamic_capable_nodes)

  def sensitivity(self, ranker: "Ranker | str" = Ranker.QUANTUNE,
                  random_state: int = 0) -> list[str]:
    """Layer names, most sensitive first (QuantuneV2 Algorithm 2 for `ranker='quantune'`)."""
    ranker = Ranker.parse(ranker)
    return list(rankers.rank(self.layers, ranker, check_random_state(random_state)))

  # The ladder.

  def walk(self, kind: costs_lib.CostKind, fallback: Fallback = Fallback.AUTO, *,
           gpu_compatible: bool = False, threads: int = 1) -> ladder.Walk:
    """The greedy walk up the precision ladder for one cost kind (`ladder`), made once."""
    if kind != costs_lib.CostKind.LATENCY:
      threads = 1  # MACs and bytes do not depend on it
    key = (kind, fallback, gpu_compatible, threads)
    if key in self._walks:
      return self._walks[key]
    forced = {n.index for n in self.int8_unsupported_nodes}
    start = {i: Precision.FLOAT for i in forced}
    if gpu_compatible:
      start.update({n.index: Precision.FLOAT for n in self.gpu_float_fixable_nodes})
    capable = {n.index for n in self.dynamic_capable_nodes}
    stubborn = {n.index for n in self.stubborn_nodes}
    int8 = self._int8_nodes
    allowed = {n.index: ladder.moves(fallback, n.index in capable, gpu_compatible)
               for n in self.nodes if n.index in int8 and n.index not in set(start) | stubborn}
    graph = self.graph
    sizes = self.sizes
    size = lambda precision, floating: float(sizes.size_bytes(precision, floating))
    tie_break = None
    if kind == costs_lib.CostKind.MACS:
      cost = lambda precision, floating: float(costs_lib.macs_outside_int8(self.nodes, precision))
      tie_break = size  # dynamic_int8 and float cost a node the same MACs
    elif kind == costs_lib.CostKind.LATENCY:
      model = self.costs(threads)
      cost = lambda precision, floating: model.latency_ms(graph, precision, floating)
    else:
      cost = size
    exact_points = ()
    if kind == costs_lib.CostKind.LATENCY and exact.chain_order(graph) is not None:
      # A chain: the exact latency/noise frontier, beside the walk's points.
      options = {}
      for node in self.nodes:
        if node.index in start:
          options[node.index] = (start[node.index],)
        elif node.index in allowed:
          options[node.index] = (Precision.INT8,) + ladder.reachable(allowed[node.index])
        elif not node.is_compute and node.op_type in segments.FOLLOWER_OPS:
          options[node.index] = (Precision.INT8, Precision.FLOAT)
        else:
          options[node.index] = (Precision.INT8,)
      exact_points = [assignment for _, _, assignment in exact.frontier(
          graph, self.noise_model, self.costs(threads), options)]
    walk = ladder.Walk(graph, self.noise_model, cost, allowed, start, tie_break=tie_break,
                       measure=lambda point: self.output_sqnr_db(self._point_model(point)),
                       cost_step=ladder.COST_STEP * self._reference_cost(kind, threads),
                       float_at_top=sorted(stubborn), exact=exact_points)
    self._walks[key] = walk
    return walk

  def _point_model(self, point: ladder.Point) -> bytes:
    float_nodes, dynamic_nodes = ladder.nodes_by_precision(point, self.nodes)
    return self.build(float_nodes, dynamic_nodes)

  def quantize(self, ratio: Optional[float] = None,
               ranker: "Ranker | str | Sequence[str]" = Ranker.QUANTUNE, *,
               max_latency: Optional[float] = None, max_size: Optional[float] = None,
               min_output_sqnr_db: Optional[float] = None,
               evaluate: Optional[Callable[[bytes], float]] = None,
               max_drop: Optional[float] = None, fallback: "Fallback | str" = Fallback.AUTO,
               threads: int = 1, random_state: int = 0,
               gpu_compatible: bool = False) -> Result:
    """The mixed model: the cheapest precision per node for the noise it removes, within a budget.

    Reuses this analysis' calibration: no new analysis pass. Exactly one budget applies:

    * `ratio`: share of MACs in static int8 (QuantuneV2 Eq. 17), at least; the default, 0.9.
    * `max_latency`: XNNPACK latency as a multiple of this calibration's full-int8 model, at most,
      as LiteRT's per-op profiler measures it on this machine (`costs`, at `threads` threads).
    * `max_size`: the .tflite's bytes as a multiple of the full-int8 file's, at most.
    * `min_output_sqnr_db`: the cheapest model (by latency) whose output SQNR against the float
      model on the calibration samples reaches this.
    * `max_drop` with `evaluate`: the cheapest model whose `evaluate(tflite_bytes)` score is at
      most `max_drop` below the float model's (for users with labels; the Result says how many
      evaluations it took).

    Each node falls back (`fallback`) to `dynamic_int8` or `float`, or to the cheaper of the two
    for the output noise it removes (`'auto'`). The candidates are the points of a greedy walk up
    that ladder (`ladder`) and, for latency, size and fidelity budgets, two beside it: every node
    at its highest rung, and TFLite's dynamic-range model (`Walk.beside`); on a chain graph, for
    `max_latency`, the exact frontier's best point at every 5 % of full int8's latency (`exact`);
    among those within the budget, the one whose output SQNR on the first calibration samples is
    highest is built, so the output SQNR never falls as a budget grows and is never below full
    int8's. `fallback='float'`
    with a `ratio` budget is the selection before the ladder, byte for byte: whole nodes by
    `ranker`, ops without MACs following them.

    Args:
      ratio, max_latency, max_size, min_output_sqnr_db, max_drop: the budget (one of them).
      ranker: for `fallback='float'` with `ratio`: a `Ranker` name or your own order (a list of
        layer names, most sensitive first). The ladder ranks by its own noise model.
      evaluate: `evaluate(tflite_bytes) -> score`, higher is better (with `max_drop`).
      fallback: 'auto', 'dynamic_int8' or 'float'.
      threads: XNNPACK threads the latency is measured at.
      random_state: seed of the 'random' ranker.
      gpu_compatible: the model must suit the TFLite GPU delegate: never `dynamic_int8` (the
        delegate rejects hybrid ops), and the nodes it rejects in int8 but not in float kept float
        first (`deploy.gpu_compatibility.float_fixable_nodes`).

    Returns:
      The `Result`; its figures are read from the model it holds, the budget's achieved figure in
      `result.config.budget`.

    Raises:
      InvalidArgumentError, InvalidTypeError: two budgets, a bad value, `max_latency` or
        `max_size` below the cheapest model this analysis can build (the message names it).
      ProfileError: LiteRT's profiler failed (latency budgets need it).
    """
    budget = check_budget(ratio, max_latency, max_size, min_output_sqnr_db, max_drop)
    fallback = Fallback.parse(fallback)
    random_state = check_random_state(random_state)
    gpu_compatible = check_bool(gpu_compatible, "gpu_compatible")
    threads = check_positive_int(threads, "threads")
    if (budget.kind == BudgetKind.MAX_DROP) != (evaluate is not None):
      raise errors.InvalidArgumentError(
          "`max_drop` and `evaluate` go together: pass `evaluate` (tflite bytes -> score) with "
          f"`max_drop`. Received: max_drop={max_drop!r}, evaluate={evaluate!r}.")
    if evaluate is not None and not callable(evaluate):
      raise errors.InvalidTypeError(f"`evaluate` must be callable. Received: {evaluate!r}.")
    custom = isinstance(ranker, (list, tuple))
    if not custom:
      ranker = Ranker.parse(ranker)
    legacy = fallback == Fallback.FLOAT and budget.kind == BudgetKind.RATIO
    if not legacy and (custom or ranker != Ranker.QUANTUNE):
      raise errors.InvalidArgumentError(
          "`ranker` chooses the float nodes of `fallback='float'` with a `ratio` budget; the "
          "precision ladder ranks nodes by its own noise model. Pass fallback='float' and a ratio "
          f"to use ranker={ranker if custom else ranker.value!r}.")
    options = {"fallback": fallback.value, "random_state": random_state,
               "per_channel": self.options.per_channel, "max_samples": self.options.max_samples,
               "gpu_compatible": gpu_compatible, "threads": threads, budget.kind.value: budget.value}
    if legacy or (budget.kind == BudgetKind.RATIO and budget.value == 0.0):
      return self._quantize_by_ranking(budget.value, ranker, random_state, gpu_compatible,
                                       options)
    return self._quantize_on_ladder(budget, fallback, gpu_compatible, threads, evaluate, options)

  def _quantize_by_ranking(self, ratio: float, ranker, random_state: int, gpu_compatible: bool,
                           options: dict) -> Result:
    # 3. Order layers, most sensitive first.
    if isinstance(ranker, (list, tuple)):
      ranking = rankers.check_ranking(self.layers, ranker)
      ranker_name = rankers.CUSTOM_RANKING
    else:
      ranking = rankers.rank(self.layers, ranker, random_state)
      ranker_name = ranker.value
    # 4. Keep the most sensitive fused nodes float within the float MAC budget 1 - ratio.
    selection = selector.select_float_layers(
        ranking, self.layers, self.nodes, ratio,
        int8_unsupported=[n.index for n in self.int8_unsupported_nodes],
        keep_float=[n.index for n in self.gpu_float_fixable_nodes] if gpu_compatible else ())
    # Ops without MACs that only read float outputs stay float too: no requantization in between.
    selection = segments.with_float_followers(selection, self.nodes, self.op_inputs)
    if ratio == 0.0:
      # No MACs in int8 is the float model: the ops without MACs (SOFTMAX, LayerNorm's MEAN, an
      # ADD of two inputs) go float too.
      selection = selector.all_float(selection, self.nodes)
    # 5. Emit the .tflite, and the config of what it really runs.
    options = dict(options, ranker=ranker_name)
    return writer.write(self.calibration, selection, model_name=self.model_name,
                        layers=self.layers, ranking=ranking, options=options,
                        num_samples=self.num_samples, int8_model=self.int8_model,
                        int8_unsupported=self.int8_unsupported_nodes, requested_ratio=ratio,
                        budget=self._budget_record(BudgetKind.RATIO, ratio, None, None))

  def _quantize_on_ladder(self, budget: Budget, fallback: Fallback, gpu_compatible: bool,
                          threads: int, evaluate, options: dict) -> Result:
    kind = {BudgetKind.RATIO: costs_lib.CostKind.MACS,
            BudgetKind.MAX_SIZE: costs_lib.CostKind.SIZE}.get(budget.kind,
                                                              costs_lib.CostKind.LATENCY)
    # 3-4. The walk up the ladder, checked as it goes, then the point the budget picks.
    walk = self.walk(kind, fallback, gpu_compatible=gpu_compatible, threads=threads)
    reference = self._reference_cost(kind, threads)
    evaluations = None
    if budget.kind == BudgetKind.RATIO:
      # Nodes without an int8 kernel alone may exceed it: the start is built anyway (and warned).
      # Ratio 1 is the plain full-int8 model, without the moves of ops that have no MACs.
      chosen = None if budget.value == 1.0 else walk.choose(
          (1.0 - budget.value) * self.calibration.total_macs)
      chosen = chosen or (0, walk.points[0], walk.measured[0])
    elif budget.kind in (BudgetKind.MAX_LATENCY, BudgetKind.MAX_SIZE):
      chosen = walk.choose(budget.value * reference)
      # Beside the walk (the top of the ladder, the dynamic-range model): where one fits and
      # measures better.
      beside = walk.beside()
      for label, point, measured in beside:
        if ladder.fits(point.cost, budget.value * reference) and (
            chosen is None or measured > chosen[2]):
          chosen = (label, point, measured)
      if chosen is None:
        floor = min([p.cost for p in walk.points] + [b[1].cost for b in beside] +
                    [walk.exact_floor()]) / reference
        what = "latency" if budget.kind == BudgetKind.MAX_LATENCY else "size"
        raise errors.InvalidArgumentError(
            f"`{budget.kind.value}`={budget.value:g} is below {floor:.4f}, the lowest {what} "
            f"(as a multiple of the full-int8 model's) this analysis can build. Pass "
            f"{budget.kind.value}>={math.ceil(floor * 1000) / 1000:g}.")
    elif budget.kind == BudgetKind.MIN_OUTPUT_SQNR_DB:
      walk.extend(until=lambda: walk.measured[-1] >= budget.value)
      index = next((i for i, v in enumerate(walk.measured) if v >= budget.value), None)
      beside = walk.beside()
      chosen = None if index is None else (index, walk.points[index], walk.measured[index])
      for label, point, measured in beside:  # reaches the target, and cheaper
        if measured >= budget.value and (chosen is None or point.cost < chosen[1].cost):
          chosen = (label, point, measured)
      if chosen is None:
        raise errors.InvalidArgumentError(
            f"No model of this analysis reaches min_output_sqnr_db={budget.value:g}: the best "
            f"measures {max(walk.measured + [b[2] for b in beside]):.2f} dB on the calibration "
            "samples. Lower the target.")
    else:
      walk.extend()
      index, evaluations = self._search_by_score(walk, evaluate, budget.value)
      chosen = (index, walk.points[index], walk.measured[index])
    chosen, point, measured = chosen
    float_nodes, dynamic_nodes = ladder.nodes_by_precision(point, self.nodes)
    selection = Selection(
        float_layers=_layers_in(self.nodes, point.floating),
        float_nodes=tuple(float_nodes), float_macs=costs_lib.macs_outside_int8(
            self.nodes, point.precisions), total_macs=self.calibration.total_macs,
        int8_unsupported_nodes=tuple(n.name for n in self.int8_unsupported_nodes),
        dynamic_nodes=tuple(dynamic_nodes))
    achieved = point.cost / reference if kind != costs_lib.CostKind.MACS else None
    record = self._budget_record(budget.kind, budget.value, achieved, measured,
                                 evaluations=evaluations, threads=threads,
                                 point=chosen, models_measured=walk.tried)
    ranking = rankers.rank(self.layers, Ranker.QUANTUNE, 0)
    return writer.write(self.calibration, selection, model_name=self.model_name,
                        layers=self.layers, ranking=ranking,
                        options=dict(options, ranker=Ranker.QUANTUNE.value),
                        num_samples=self.num_samples, int8_model=self.int8_model,
                        int8_unsupported=self.int8_unsupported_nodes,
                        requested_ratio=budget.value if budget.kind == BudgetKind.RATIO else 0.0,
                        budget=record, tflite=self._point_model(point))

  def _reference_cost(self, kind: costs_lib.CostKind, threads: int) -> float:
    """The full-int8 model's cost: what latency and size budgets are multiples of."""
    if kind == costs_lib.CostKind.MACS:
      return float(self.calibration.total_macs)
    if kind == costs_lib.CostKind.SIZE:
      return float(self.sizes.int8_bytes)
    forced = {n.index: Precision.FLOAT for n in self.int8_unsupported_nodes}
    return self.costs(threads).latency_ms(self.graph, forced, set(forced))

  def _search_by_score(self, walk: ladder.Walk, evaluate, max_drop: float) -> tuple[int, int]:
    """The first kept point of the walk whose `evaluate` score is within `max_drop` of the float
    model's, by bisection: 2 + about log2(kept points) evaluations, assuming the score grows
    along the walk as its measured output SQNR does."""
    target = float(evaluate(self.float_model)) - max_drop
    evaluations = 2
    low, high = 0, len(walk.points) - 1
    if float(evaluate(self._point_model(walk.points[high]))) < target:
      raise errors.InvalidArgumentError(
          f"No model of this analysis scores within max_drop={max_drop:g} of the float model's "
          f"{target + max_drop:g}. Raise `max_drop`.")
    while low < high:
      middle = (low + high) // 2
      evaluations += 1
      if float(evaluate(self._point_model(walk.points[middle]))) >= target:
        high = middle
      else:
        low = middle + 1
    return low, evaluations

  def _budget_record(self, kind: BudgetKind, value: float, achieved: Optional[float],
                     output_sqnr_db: Optional[float], **extra) -> dict[str, Any]:
    record = {"kind": kind.value, "value": value}
    if achieved is not None:
      record["achieved"] = round(achieved, 6)
    if output_sqnr_db is not None:
      record["output_sqnr_db"] = round(output_sqnr_db, 4)
      record["verification_samples"] = int(self._verification[0].shape[0])
    record.update({k: v for k, v in extra.items() if v is not None})
    return record


def _layers_in(nodes: Sequence[Node], indices) -> tuple[str, ...]:
  return tuple(dict.fromkeys(name for n in sorted(nodes, key=lambda n: n.index)
                             if n.index in indices for name in n.layers))
