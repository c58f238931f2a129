"""Flags and loaders shared by the quantize, analyze and sweep commands.

The flags are defined once here (absl flags are global) and adopted as key flags by each tool, so
each tool's `--help` lists them.
"""

from __future__ import annotations

import os
import sys

from absl import flags

MODEL = flags.DEFINE_string(
    "model", None,
    "Float model to quantize: a Keras .keras file (or legacy .h5), a float .tflite (fp16 weights "
    "are fine), or a TensorFlow SavedModel folder (converted to a float .tflite by "
    "TFLiteConverter). A .tflite's layers are its ops.")
CALIBRATION = flags.DEFINE_string(
    "calibration", None,
    "Calibration samples, no labels needed: a folder of images (JPEG, PNG, ...; or one subfolder "
    "of images per class) preprocessed by --image_size, --crop, "
    "--scale and --offset; or a .npy file of model-ready samples with the batch axis first "
    "(preprocessing flags are then ignored). 100-500 representative samples are typical.")
MAX_SAMPLES = flags.DEFINE_integer(
    "max_samples", 500,
    "Use at most this many calibration samples: from a folder, evenly spaced over its sorted "
    "images (every class keeps its share); from a .npy file, the first ones.",
    lower_bound=1)
IMAGE_SIZE = flags.DEFINE_integer(
    "image_size", None,
    "Resize images to this many pixels square. Default: the model's input height and width.",
    lower_bound=1)
CROP = flags.DEFINE_float(
    "crop", 1.0,
    "Center-crop this fraction of the shorter image side before resizing (1.0: the largest "
    "centered region of the input's aspect ratio; 0.875: the usual ImageNet evaluation crop).",
    lower_bound=0.01, upper_bound=1.0)
SCALE = flags.DEFINE_float(
    "scale", 1 / 255,
    "Model input = pixel * scale + offset, pixels in 0..255. Default 1/255 maps to [0, 1]; use "
    "--scale=0.0078125 --offset=-0.9921875 for (x - 127) / 128 (EfficientNet-Lite).")
OFFSET = flags.DEFINE_float("offset", 0.0, "Added after --scale: input = pixel * scale + offset.")
PER_TENSOR = flags.DEFINE_bool(
    "per_tensor", False,
    "Quantize weights with one scale per tensor instead of one per output channel (per-channel is "
    "the default and usually more accurate; per-tensor suits accelerators that require it).")
RANKER = flags.DEFINE_enum(
    "ranker", "quantune",
    ["quantune", "quantune_paper", "weight_sqnr", "in_order", "random", "activation_sqnr",
     "weight_sqnr_delta", "mse"],
    "Sensitivity order that picks the layers kept float: quantune (the default: the share of the "
    "output's quantization noise keeping a node float removes, per float MAC, from QuantuneV2's "
    "two passes), quantune_paper (Algorithm 2 as published), weight_sqnr (Pandey et "
    "al. 2023), in_order, random, or a single metric: activation_sqnr, weight_sqnr_delta, mse.")
FALLBACK = flags.DEFINE_enum(
    "fallback", "auto", ["auto", "dynamic_int8", "float"],
    "What a node kept out of static int8 runs in: auto (the cheaper of dynamic_int8 and float for "
    "the output noise it removes), dynamic_int8 (int8 weights, float activations quantized at run "
    "time) or float. --ranker applies to --fallback=float with a --ratio budget.")
OUT = flags.DEFINE_string("out", None, "Output folder; created if missing.")
OVERWRITE = flags.DEFINE_bool(
    "overwrite", False, "Replace files already in --out (otherwise the tool stops before writing).")


def budget_line(result) -> str:
  """One line on the budget a result was built under and what it achieved."""
  budget = result.config.budget
  text = f"budget {budget.get('kind')}={budget.get('value'):g}: achieved "
  if budget.get("kind") == "ratio":
    text += f"{result.int8_mac_ratio:.4f} of the MACs in static int8"
  elif "achieved" in budget:
    text += (f"{budget['achieved']:.4f} x the full-int8 model's (predicted); int8 MAC ratio "
             f"{result.int8_mac_ratio:.4f}")
  if "output_sqnr_db" in budget:
    text += f"; output SQNR {budget['output_sqnr_db']:.2f} dB against float"
  return text


def load_model(path: str):
  """The `sources` Source of --model: a .keras/.h5 file, a float .tflite or a SavedModel folder
  (converted to a float .tflite; its layers are its ops)."""
  from tfq_mixed import sources  # pylint: disable=g-import-not-at-top
  return sources.load(path)


def float_outputs(model, inputs):
  """The float model's first output on `inputs`: Keras' `predict`, or the float .tflite's."""
  from tfq_mixed.evaluation import scores  # pylint: disable=g-import-not-at-top
  if model.kind == "keras":
    import numpy as np  # pylint: disable=g-import-not-at-top
    return np.asarray(model.model.predict(inputs, batch_size=scores.keras_batch_size(model.model),
                                          verbose=0))
  return scores.predict(model.model, inputs)


def preprocessing_for(model):
  """The image preprocessing of the flags, sized to the model's input unless --image_size is set."""
  from tfq_mixed.demo import images  # pylint: disable=g-import-not-at-top
  shape = tuple(model.input_specs()[0].shape)
  if len(shape) != 4 or shape[-1] not in (1, 3):
    return None  # not an image model: only .npy samples fit
  size = (IMAGE_SIZE.value, IMAGE_SIZE.value) if IMAGE_SIZE.value else (shape[1], shape[2])
  if None in size:
    raise ValueError(f"The model's input {shape} has no fixed height and width. Pass --image_size.")
  return images.Preprocessing(image_size=size, crop=CROP.value, scale=SCALE.value,
                              offset=OFFSET.value, channels=shape[-1])


def load_samples(path: str, model, max_samples: int, verbose: bool = True):
  """An `images.ImageSet` from an image folder or a .npy file, for `model`."""
  from tfq_mixed.demo import images  # pylint: disable=g-import-not-at-top
  if path.endswith(".npy"):
    return images.read_npy(path, max_samples)
  preprocessing = preprocessing_for(model)
  if preprocessing is None:
    raise ValueError(f"The model's input {tuple(model.input_specs()[0].shape)} is not an image "
                     "(height, width, 1 or 3 channels). Pass the samples as a .npy file.")
  return images.read_folder(path, preprocessing, max_images=max_samples, verbose=verbose)


def write_text(directory: str, name: str, text: str, overwrite: bool) -> str:
  """Writes a text file into `directory` (atomically), refusing to clobber unless `overwrite`."""
  from tfq_mixed import files  # pylint: disable=g-import-not-at-top
  return files.save_files(directory, {name: text.encode()}, overwrite=overwrite)[name]


def check_out(directory: str, names, overwrite: bool) -> None:
  """Fails before any work if an output would clobber a file (and not --overwrite)."""
  if overwrite:
    return
  for name in names:
    if os.path.exists(os.path.join(directory, name)):
      raise FileExistsError(f"{os.path.join(directory, name)} already exists. Pass --overwrite to "
                            "replace it, or choose another --out folder.")
