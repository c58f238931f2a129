"""Runs a TFLite model on samples and scores its outputs against the float model's and labels."""

from __future__ import annotations

import math
import os
from typing import Optional

import numpy as np

from tfq_mixed import _tflite_private


def predict(tflite: bytes, inputs: np.ndarray, batch_size: int = 50) -> np.ndarray:
  """The first output of a single-input TFLite model on `inputs` (batch axis first), float32.

  A model with a fixed batch axis is fed exactly that many samples at a time (the last batch
  padded with copies of its last sample, whose outputs are dropped).
  """
  interpreter = _tflite_private.make_interpreter(tflite, num_threads=os.cpu_count() or 1)
  runner = interpreter.get_signature_runner()
  input_name = sorted(runner.get_input_details())[0]
  # tfq_mixed names the outputs output_<i> in Keras order; other converters name them otherwise.
  output_name = sorted(runner.get_output_details())[0]
  fixed = int(runner.get_input_details()[input_name]["shape_signature"][0])
  batch_size = fixed if fixed > 0 else batch_size
  outputs = []
  for start in range(0, inputs.shape[0], batch_size):
    batch = np.asarray(inputs[start:start + batch_size], np.float32)
    count = batch.shape[0]
    if fixed > 0 and count < fixed:
      batch = np.concatenate([batch, np.repeat(batch[-1:], fixed - count, axis=0)])
    outputs.append(np.array(runner(**{input_name: batch})[output_name], np.float32)[:count])
  return np.concatenate(outputs)


def keras_batch_size(model, default: int = 64) -> int:
  """The batch size to run `model.predict` with: the one its inputs fix, else `default`."""
  batch = model.inputs[0].shape[0]
  return batch if isinstance(batch, int) else default


def output_sqnr_db(reference: np.ndarray, quantized: np.ndarray) -> float:
  """SQNR of the outputs, 10 log10(sum ref^2 / sum (ref - quantized)^2), in dB (inf if equal)."""
  noise = float(np.sum((reference.astype(np.float64) - quantized) ** 2))
  signal = float(np.sum(reference.astype(np.float64) ** 2))
  return math.inf if noise == 0 else 10 * math.log10(max(signal, 1e-30) / noise)


def top1(outputs: np.ndarray, labels: Optional[np.ndarray]) -> float:
  """Top-1 accuracy over the samples with a known label (>= 0); NaN if none."""
  if labels is None:
    return math.nan
  known = labels >= 0
  if not known.any():
    return math.nan
  return float(np.mean(np.argmax(outputs[known], axis=-1) == labels[known]))
