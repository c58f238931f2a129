"""Reference orders for the accuracy benchmark: TFLite's QuantizationDebugger and the top-1 oracle.

Neither is a tfq_mixed ranker: the debugger needs its own calibration and a per-sample run of a
NumericVerify model, the oracle needs labels and one quantization + evaluation per compute node. Both
return layer names, most sensitive first, which `Analysis.quantize(ratio, ranker=<names>)` walks with
the same selector as the built-in rankers.

* `tflite_debugger_ranking`: `tf.lite.experimental.QuantizationDebugger` on a converter built from the
  same layer-scoped SavedModel export tfq_mixed calibrates (every layer call in a `tfqmNNNN` name
  scope), so its tensors map to our nodes by the same tokens; nodes are ranked by the TensorFlow
  tutorial's metric, RMSE / scale (the root of the NumericVerify mean squared error in units of the
  output's quantization step), largest first.
* `top1_oracle_ranking`: the paper's "Top-1 accuracy based order": for each compute node, the top-1
  accuracy on the labelled calibration split when only that node is float, minus full int8's; largest
  gain first, ties broken by the drop of the cross-entropy on the true labels. Never evaluation images.

`Evaluator` runs a TFLite model on a fixed image set (batched LiteRT interpreter) and caches the top-1
predictions and the true-label log-probabilities by the flatbuffer's SHA-256, so that an identical
model (budget 0 of every ranker, repeats across rankers, an interrupted run) is evaluated once.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import math
import os
import tempfile
import time
from typing import Callable, Optional, Sequence

import numpy as np

from tfq_mixed.evaluation import scores


def _log_probabilities(outputs: np.ndarray) -> np.ndarray:
  """Log-probabilities of model outputs: taken as they are when they already sum to 1, else softmax."""
  outputs = outputs.astype(np.float64)
  sums = outputs.sum(axis=-1)
  if outputs.min() >= 0 and np.allclose(sums, 1.0, atol=1e-3):
    return np.log(np.clip(outputs, 1e-12, None))
  shifted = outputs - outputs.max(axis=-1, keepdims=True)
  return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


@dataclasses.dataclass(frozen=True)
class Evaluation:
  """Predictions of one model on one image set.

  Attributes:
    predictions: top-1 class per image.
    label_log_probability: log-probability of the true label per image.
    seconds: time of the evaluation (0 when read from the cache).
  """

  predictions: np.ndarray
  label_log_probability: np.ndarray
  seconds: float = 0.0

  def top1(self, labels: np.ndarray) -> float:
    return float(np.mean(self.predictions == labels))

  def agreement(self, reference: "Evaluation") -> float:
    return float(np.mean(self.predictions == reference.predictions))

  @property
  def cross_entropy(self) -> float:
    return float(-np.mean(self.label_log_probability))


class Evaluator:
  """Evaluates TFLite models on one image set, with an on-disk cache keyed by the model's bytes.

  Args:
    images, labels: the image set, model-ready, and its labels.
    tag: names the image set in the cache key (model, split, count).
    cache_dir: where `.npz` results are kept (None: no cache).
    batch_size: images per interpreter invoke.
  """

  def __init__(self, images: np.ndarray, labels: np.ndarray, tag: str,
               cache_dir: Optional[str], batch_size: int = 50):
    self.images = images
    self.labels = labels
    self.tag = tag
    self.cache_dir = cache_dir
    self.batch_size = batch_size
    self.evaluated = 0
    self.cached = 0
    if cache_dir:
      os.makedirs(cache_dir, exist_ok=True)

  def _path(self, tflite: bytes) -> Optional[str]:
    if not self.cache_dir:
      return None
    digest = hashlib.sha256(self.tag.encode() + b"\0" + tflite).hexdigest()[:32]
    return os.path.join(self.cache_dir, f"{digest}.npz")

  def __call__(self, tflite: bytes) -> Evaluation:
    path = self._path(tflite)
    if path and os.path.exists(path):
      try:
        with np.load(path) as data:
          self.cached += 1
          return Evaluation(data["predictions"], data["label_log_probability"])
      except (OSError, ValueError, KeyError):
        pass  # a truncated file from an interrupted run: evaluate again
    start = time.perf_counter()
    outputs = scores.predict(tflite, self.images, batch_size=self.batch_size)
    log_probabilities = _log_probabilities(outputs)
    evaluation = Evaluation(
        predictions=np.argmax(outputs, axis=-1).astype(np.int32),
        label_log_probability=log_probabilities[np.arange(len(self.labels)), self.labels]
        .astype(np.float32),
        seconds=time.perf_counter() - start)
    self.evaluated += 1
    if path:
      with tempfile.NamedTemporaryFile(dir=self.cache_dir, suffix=".npz", delete=False) as f:
        np.savez(f, predictions=evaluation.predictions,
                 label_log_probability=evaluation.label_log_probability)
      os.replace(f.name, path)
    return evaluation


def _nodes_to_ranking(analysis, node_order: Sequence[int]) -> list[str]:
  """Layer names of the nodes in `node_order` (each node's layers in execution order)."""
  by_index = {n.index: n for n in analysis.nodes}
  ranking: list[str] = []
  for index in node_order:
    for name in by_index[index].layers:
      if name not in ranking:
        ranking.append(name)
  return ranking


@dataclasses.dataclass(frozen=True)
class ReferenceRanking:
  """A reference order and what it cost.

  Attributes:
    ranking: layer names, most sensitive first.
    seconds: wall time to produce it.
    node_scores: per compute node index, the score it was ranked by.
    detail: free-form facts (e.g. how many debugger tensors mapped to nodes).
  """

  ranking: list[str]
  seconds: float
  node_scores: dict[int, float]
  detail: dict


def top1_oracle_ranking(analysis, evaluator: Evaluator,
                        progress: Optional[Callable[[str], None]] = None) -> ReferenceRanking:
  """The paper's "Top-1 accuracy based order", on the labelled calibration images of `evaluator`.

  For each compute node: quantize with only that node float, evaluate, and score it by its top-1
  gain over full int8 (ties: cross-entropy drop). One quantization and one evaluation per node; the
  cache is bypassed for the timing (the first call of a run is always timed cold).
  """
  from tfq_mixed import _tflite_private  # pylint: disable=g-import-not-at-top
  start = time.perf_counter()
  labels = evaluator.labels
  cache_dir, evaluator.cache_dir = evaluator.cache_dir, None  # time it as a user would run it
  try:
    int8 = evaluator(analysis.int8_model)
    scores, tiebreak = {}, {}
    compute = [n for n in analysis.nodes if n.is_compute]
    for i, node in enumerate(compute):
      tflite = _tflite_private.quantize(analysis.calibration.calibrated_model,
                                        per_channel=analysis.options.per_channel,
                                        denylisted_nodes=[node.name])
      evaluation = evaluator(tflite)
      scores[node.index] = evaluation.top1(labels) - int8.top1(labels)
      tiebreak[node.index] = int8.cross_entropy - evaluation.cross_entropy
      if progress and (i + 1) % 10 == 0:
        progress(f"oracle {i + 1}/{len(compute)} nodes")
  finally:
    evaluator.cache_dir = cache_dir
  order = sorted(scores, key=lambda i: (-scores[i], -tiebreak[i], i))
  return ReferenceRanking(ranking=_nodes_to_ranking(analysis, order),
                          seconds=time.perf_counter() - start, node_scores=scores,
                          detail={"cross_entropy_drop": tiebreak,
                                  "images": int(len(labels))})


def tflite_debugger_ranking(keras_model, images: np.ndarray, analysis) -> ReferenceRanking:
  """TFLite's QuantizationDebugger layer statistics, ranked by RMSE / scale (TF tutorial metric).

  Builds the debugger's converter from the layer-scoped SavedModel export tfq_mixed calibrates, so
  each NumericVerify tensor name carries the `tfqmNNNN` tokens of the layers it holds. Timed from the
  export to the statistics (the debugger calibrates on `images` itself).
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tfq_mixed import _tflite_private  # pylint: disable=g-import-not-at-top
  from tfq_mixed import calibrator  # pylint: disable=g-import-not-at-top
  from tfq_mixed import dataset as dataset_lib  # pylint: disable=g-import-not-at-top
  from tfq_mixed import layer_mapping  # pylint: disable=g-import-not-at-top

  start = time.perf_counter()

  def dataset():
    for x in images:
      yield [x[None].astype(np.float32)]

  with tempfile.TemporaryDirectory(prefix="tfq_mixed_debugger_") as directory:
    export_dir = os.path.join(directory, "saved_model")
    calibrator._export(keras_model, dataset_lib.model_input_specs(keras_model), export_dir)  # pylint: disable=protected-access
    converter = tf.lite.TFLiteConverter.from_saved_model(export_dir)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = dataset
    _tflite_private.set_per_channel(converter, analysis.options.per_channel)
    debugger = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=dataset)
    debugger.run()
  buffer = io.StringIO()
  debugger.layer_statistics_dump(buffer)
  seconds = time.perf_counter() - start
  buffer.seek(0)
  rows = list(csv.DictReader(buffer))
  by_name = {n.name: n for n in analysis.nodes}
  by_index = {n.index: n for n in analysis.nodes}
  node_of_layer_index = {}
  for node in analysis.nodes:
    for name in node.layers:
      node_of_layer_index.setdefault(name, node.index)
  layer_names = [l.name for l in analysis.calibration.layers]
  scores: dict[int, float] = {}
  unmapped = 0
  for row in rows:
    scale = float(row["scale"])
    rmse_per_scale = math.sqrt(float(row["mean_squared_error"])) / scale if scale > 0 else math.nan
    node = by_name.get(row["tensor_name"])
    if node is None:
      indices = layer_mapping.layer_indices_from_name(row["tensor_name"])
      candidates = [node_of_layer_index.get(layer_names[i]) for i in indices
                    if i < len(layer_names)]
      candidates = [c for c in candidates if c is not None]
      node = by_index[candidates[-1]] if candidates else None
    if node is None or math.isnan(rmse_per_scale):
      unmapped += 1
      continue
    if node.is_compute:
      scores[node.index] = max(scores.get(node.index, -math.inf), rmse_per_scale)
  order = sorted(scores, key=lambda i: (-scores[i], i))
  return ReferenceRanking(ranking=_nodes_to_ranking(analysis, order), seconds=seconds,
                          node_scores=scores,
                          detail={"tensors": len(rows), "unmapped_tensors": unmapped,
                                  "compute_nodes_scored": len(scores),
                                  "compute_nodes": sum(n.is_compute for n in analysis.nodes)})
