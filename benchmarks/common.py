"""What the benchmarks share: the zoo models and canonical splits of ../shared, and their helpers.

Helpers (one copy each): `setup_tensorflow`, `log`, `git_revision`, `cpu_model`, `quiet_stdout`,
`write_result` (atomic, through the library's `tfq_mixed.files`), `run_record` and
`write_json_and_markdown` (a record's head and its two files), `plain_int8_convert` (TFLite's
own full-int8 conversion), and the child-process peak-memory harness (`run_child`,
`report_child`, `status_mib`, `maxrss_mib`).

The splits and preprocessing follow `../shared/README.md` and `../shared/zoo/MODELS.md`, so every
benchmark reports numbers on the same images:

* ImageNet sample (`data/imagenet-sample`, 1000 JPEGs, one per class): sort the image file
  names (SOURCE-README.md is not an image); index % 10 == 0 -> calibration (100 images), every
  other -> evaluation (900 images). The label of a file is the position of its wnid prefix in the
  sorted list of the 1000 wnids (standard ILSVRC-2012 order); `tiny_darknet` predicts in darknet
  order (`data/darknet-imagenet-class-order.txt`), and `load_imagenet(..., "tiny_darknet")` returns
  labels in that order.
  Images: RGB, center-crop 87.5 % of the shorter side, resize to 224 bicubic (PIL), then
  `(x - 127) / 128` (efficientnet_lite0) or `x / 255` (tiny_darknet).
* CIFAR-10 test (`data/cifar10-test/<class>/*.jpg`): within each class folder (sorted folder
  order = CIFAR-10 order), sorted file names, the first 50 -> calibration (500), the rest ->
  evaluation (9,500).
  Images: `x / 255`, then `(x - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]`.

`../shared` is not part of the product: `shared_dir()` exits with a clear message when it is absent.
Nothing here imports TensorFlow or Keras at module level: the data helpers stay cheap to import.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
from typing import Optional, Sequence

import numpy as np
from PIL import Image

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SHARED = os.path.normpath(os.path.join(REPO_ROOT, "..", "shared"))
"""`../shared` relative to the repository root."""

IMAGENET_MODELS = ("efficientnet_lite0", "tiny_darknet")
CIFAR_MODELS = ("resnet20_cifar10", "resnet56_cifar10")
MODELS = IMAGENET_MODELS + CIFAR_MODELS

ACCURACY_CONFIGS = (("efficientnet_lite0", "per_tensor"), ("tiny_darknet", "per_channel"),
                    ("tiny_darknet", "per_tensor"), ("efficientnet_lite0", "per_channel"),
                    ("resnet56_cifar10", "per_channel"))
"""The accuracy benchmark's (model, weight mode) pairs: where int8 loses most, and one where it
loses nothing."""
ACCURACY_BUDGETS = (0.0, 0.02, 0.05, 0.10, 0.20, 0.50)
"""Float MAC budgets (1 - ratio) of the accuracy benchmark."""
LABEL_FREE_RANKERS = ("quantune", "quantune_paper", "weight_sqnr", "in_order", "random",
                      "activation_sqnr", "weight_sqnr_delta", "mse")
"""The built-in rankers (`tfq_mixed.Ranker`): no labels needed."""

IMAGE_SIZE = 224
CENTER_CROP_FRACTION = 0.875
CIFAR_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
CIFAR_STD = np.array([0.229, 0.224, 0.225], np.float32)
CIFAR_CALIBRATION_PER_CLASS = 50
SPLITS = ("calibration", "evaluation")

_IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png")


def shared_dir(path: Optional[str] = None) -> str:
  """The shared folder (default `../shared` beside the repo); exits with a message if absent."""
  path = os.path.abspath(path or DEFAULT_SHARED)
  missing = [p for p in ("zoo", os.path.join("data", "imagenet-sample"))
             if not os.path.isdir(os.path.join(path, p))]
  if missing:
    sys.exit(f"error: the shared models and data are not at {path} (missing "
             f"{', '.join(missing)}). They live in ../shared beside the repository root, which a "
             "user's checkout does not have; pass --shared=/path/to/shared.")
  return path


def model_path(shared: str, name: str) -> str:
  if name not in MODELS:
    raise ValueError(f"Unknown zoo model {name!r}. Expected one of: {', '.join(MODELS)}.")
  return os.path.join(shared, "zoo", f"{name}.keras")


def load_model(shared: str, name: str):
  """The zoo model `name` (Keras 3, no custom objects)."""
  import keras  # pylint: disable=g-import-not-at-top
  return keras.saving.load_model(model_path(shared, name))


def _check_split(split: str) -> None:
  if split not in SPLITS:
    raise ValueError(f"`split` must be one of {SPLITS}. Received: split={split!r}.")


# ImageNet sample.

def imagenet_files(shared: str, split: str) -> list[str]:
  """Absolute paths of the canonical ImageNet split, in sorted file-name order."""
  _check_split(split)
  directory = os.path.join(shared, "data", "imagenet-sample")
  names = sorted(n for n in os.listdir(directory) if n.lower().endswith(_IMAGE_EXTENSIONS))
  if len(names) != 1000:
    raise RuntimeError(f"Expected 1000 images in {directory}, found {len(names)}.")
  keep = (lambda i: i % 10 == 0) if split == "calibration" else (lambda i: i % 10 != 0)
  return [os.path.join(directory, n) for i, n in enumerate(names) if keep(i)]


def wnid_of(path: str) -> str:
  return os.path.basename(path).split("_", 1)[0]


def imagenet_class_order(shared: str, model_name: str) -> list[str]:
  """The wnids in the model's output order (sorted wnids, or darknet's order for tiny_darknet)."""
  if model_name == "tiny_darknet":
    with open(os.path.join(shared, "data", "darknet-imagenet-class-order.txt"),
              encoding="utf-8") as f:
      order = [line.strip() for line in f if line.strip()][:1000]
  else:
    directory = os.path.join(shared, "data", "imagenet-sample")
    order = sorted({wnid_of(n) for n in os.listdir(directory)
                    if n.lower().endswith(_IMAGE_EXTENSIONS)})
  if len(order) != 1000 or len(set(order)) != 1000:
    raise RuntimeError(f"Expected 1000 distinct wnids for {model_name}, got {len(set(order))}.")
  return order


def preprocess_imagenet(path: str, model_name: str) -> np.ndarray:
  """RGB, center-crop 87.5 % of the shorter side, bicubic resize to 224, model scaling; float32."""
  with Image.open(path) as image:
    image = image.convert("RGB")
    width, height = image.size
    crop = int(round(CENTER_CROP_FRACTION * min(width, height)))
    left, top = (width - crop) // 2, (height - crop) // 2
    image = image.crop((left, top, left + crop, top + crop))
    image = image.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BICUBIC)
    x = np.asarray(image, dtype=np.float32)
  if model_name == "efficientnet_lite0":
    return (x - 127.0) / 128.0
  if model_name == "tiny_darknet":
    return x / 255.0
  raise ValueError(f"No ImageNet preprocessing for {model_name!r}. Expected one of: "
                   f"{', '.join(IMAGENET_MODELS)}.")


def load_imagenet(shared: str, model_name: str, split: str = "calibration",
                  limit: Optional[int] = None) -> tuple[np.ndarray, np.ndarray]:
  """(images float32 (n, 224, 224, 3), labels int64 in the model's output order)."""
  files = imagenet_files(shared, split)[:limit]
  order = {wnid: i for i, wnid in enumerate(imagenet_class_order(shared, model_name))}
  images = np.stack([preprocess_imagenet(f, model_name) for f in files])
  labels = np.array([order[wnid_of(f)] for f in files], np.int64)
  return images, labels


# CIFAR-10 test.

def cifar_classes(shared: str) -> list[str]:
  directory = os.path.join(shared, "data", "cifar10-test")
  return sorted(d for d in os.listdir(directory) if os.path.isdir(os.path.join(directory, d)))


def cifar_files(shared: str, split: str) -> list[tuple[str, int]]:
  """(path, label) of the canonical CIFAR-10 split, class by class."""
  _check_split(split)
  directory = os.path.join(shared, "data", "cifar10-test")
  out = []
  for label, name in enumerate(cifar_classes(shared)):
    files = sorted(n for n in os.listdir(os.path.join(directory, name))
                   if n.lower().endswith(_IMAGE_EXTENSIONS))
    files = (files[:CIFAR_CALIBRATION_PER_CLASS] if split == "calibration"
             else files[CIFAR_CALIBRATION_PER_CLASS:])
    out.extend((os.path.join(directory, name, f), label) for f in files)
  return out


def preprocess_cifar(path: str) -> np.ndarray:
  with Image.open(path) as image:
    x = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
  return (x - CIFAR_MEAN) / CIFAR_STD


def load_cifar(shared: str, split: str = "calibration", limit: Optional[int] = None,
               random_state: Optional[int] = None) -> tuple[np.ndarray, np.ndarray]:
  """(images float32 (n, 32, 32, 3), labels int64, CIFAR-10 order).

  Args:
    shared: the shared folder.
    split: 'calibration' or 'evaluation'.
    limit: keep at most this many images: the first ones, or a random subset when `random_state`
      is given (e.g. the 2,000 random evaluation images of MODELS.md).
    random_state: seed of the subset; None keeps split order.
  """
  files = cifar_files(shared, split)
  if limit is not None and random_state is not None and limit < len(files):
    picks = np.sort(np.random.default_rng(random_state).choice(len(files), limit, replace=False))
    files = [files[i] for i in picks]
  else:
    files = files[:limit]
  images = np.stack([preprocess_cifar(p) for p, _ in files])
  labels = np.array([label for _, label in files], np.int64)
  return images, labels


def load_split(shared: str, model_name: str, split: str = "calibration",
               limit: Optional[int] = None) -> tuple[np.ndarray, np.ndarray]:
  """The canonical split for any zoo model, preprocessed for it."""
  if model_name in IMAGENET_MODELS:
    return load_imagenet(shared, model_name, split, limit)
  if model_name in CIFAR_MODELS:
    return load_cifar(shared, split, limit)
  raise ValueError(f"Unknown zoo model {model_name!r}. Expected one of: {', '.join(MODELS)}.")


def top1(scores: np.ndarray, labels: Sequence[int]) -> float:
  return float(np.mean(np.argmax(scores, axis=-1) == np.asarray(labels)))


def setup_tensorflow():
  """Imports TensorFlow with its logging quieted for benchmark output; returns the module."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  import warnings  # pylint: disable=g-import-not-at-top
  warnings.filterwarnings("ignore")
  from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
  absl_logging.set_verbosity(absl_logging.WARNING)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.get_logger().setLevel("ERROR")
  return tf


def log(message: str) -> None:
  """Prints a timestamped progress line."""
  print(f"[{datetime.datetime.now():%H:%M:%S}] {message}", flush=True)


def git_revision() -> str:
  """HEAD's short hash, marked when tfq_mixed/ or benchmarks/ (results aside) has uncommitted changes."""
  try:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT,
                          capture_output=True, text=True, check=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "tfq_mixed", "benchmarks",
                            ":(exclude)benchmarks/results"],
                           cwd=REPO_ROOT, capture_output=True, text=True,
                           check=True).stdout.strip()
    return head + ("+uncommitted changes" if dirty else "")
  except (OSError, subprocess.CalledProcessError):
    return "unknown"


def cpu_model() -> str:
  """The CPU's model name (/proc/cpuinfo), for the record of a timing."""
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or "unknown"


@contextlib.contextmanager
def quiet_stdout():
  """Silences fd 1 (Keras' export prints every captured variable), keeps stderr for errors."""
  sys.stdout.flush()
  saved = os.dup(1)
  try:
    with open(os.devnull, "w", encoding="utf-8") as devnull:
      os.dup2(devnull.fileno(), 1)
      yield
  finally:
    sys.stdout.flush()
    os.dup2(saved, 1)
    os.close(saved)


def write_result(path: str, data: "str | bytes") -> str:
  """Writes a results file atomically (the library's `files.write_atomic`), making its folder."""
  from tfq_mixed import files  # pylint: disable=g-import-not-at-top
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  files.write_atomic(path, data.encode() if isinstance(data, str) else data)
  return path


def save_figure(fig, path: str) -> str:
  """Writes a matplotlib figure as PNG atomically (`write_result`) and closes it."""
  import io  # pylint: disable=g-import-not-at-top
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  buffer = io.BytesIO()
  fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
  plt.close(fig)
  return write_result(path, buffer.getvalue())


def run_record(script: str) -> dict:
  """The head of a results record: the command that made it (this run's arguments), git revision,
  UTC date and machine."""
  return {"command": f"python benchmarks/{script}" + "".join(f" {a}" for a in sys.argv[1:]),
          "git_revision": git_revision(),
          "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
          "machine": f"{cpu_model()}, {os.cpu_count()} CPUs"}


def write_json_and_markdown(out: str, name: str, record: dict, markdown: str) -> None:
  """`<out>/<name>.json` (sorted keys, numpy scalars as floats) and `<out>/<name>.md`, each
  atomically."""
  write_result(os.path.join(out, f"{name}.json"),
               json.dumps(record, indent=1, sort_keys=True, default=float) + "\n")
  write_result(os.path.join(out, f"{name}.md"), markdown)


def plain_int8_convert(model, images) -> bytes:
  """TFLite's own full-int8 post-training quantization (float input and output)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  def representative_dataset():
    for x in images:
      yield [x[None]]

  converter = tf.lite.TFLiteConverter.from_keras_model(model)
  converter.optimizations = [tf.lite.Optimize.DEFAULT]
  converter.representative_dataset = representative_dataset
  with quiet_stdout():
    return converter.convert()


def dynamic_range_convert(model, per_channel: bool = True) -> bytes:
  """TFLite's dynamic-range model: the converter's `Optimize.DEFAULT` without data (int8 weights,
  per channel unless `per_channel=False`; float activations quantized at run time)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tfq_mixed import _tflite_private  # pylint: disable=g-import-not-at-top
  converter = tf.lite.TFLiteConverter.from_keras_model(model)
  converter.optimizations = [tf.lite.Optimize.DEFAULT]
  if not per_channel:
    _tflite_private.set_per_channel(converter, False)
  with quiet_stdout():
    return converter.convert()


BOOTSTRAP_RESAMPLES = 2000


def paired_interval(statistic, correct: dict, resamples: int = BOOTSTRAP_RESAMPLES) -> list:
  """95 % interval of `statistic({label: top-1})` over the evaluation images resampled with
  replacement, every model on the same resample (a paired bootstrap, seed 0): how far the images
  alone move a figure. `correct`: label -> per-image booleans. Resamples where `statistic` returns
  None are left out."""
  count = len(next(iter(correct.values())))
  rng = np.random.default_rng(0)
  values = []
  for _ in range(resamples):
    index = rng.integers(0, count, count)
    value = statistic({label: float(np.mean(c[index])) for label, c in correct.items()})
    if value is not None:
      values.append(value)
  return [round(float(v), 4) for v in np.percentile(values, [2.5, 97.5])]


# Peak memory, measured in a fresh child process per side.

def status_mib(field: str) -> "float | None":
  """A size field of /proc/self/status (VmRSS, VmHWM) in MiB; None where there is none."""
  try:
    with open("/proc/self/status", encoding="ascii") as f:
      for line in f:
        if line.startswith(field + ":"):
          return int(line.split()[1]) / 1024.0
  except OSError:
    pass
  return None


def maxrss_mib() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def report_child(marker: str, result: dict) -> None:
  """In the child: prints the result on one line after `marker`, for `run_child`."""
  sys.stdout.write(marker + json.dumps(result) + "\n")
  sys.stdout.flush()


def run_child(args: list[str], marker: str, label: str) -> dict:
  """Runs a child process (`args`) and returns what it reported with `report_child`; exits with
  its stderr if it reported nothing."""
  proc = subprocess.run(args, capture_output=True, text=True, check=False)
  for line in proc.stdout.splitlines():
    if line.startswith(marker):
      return json.loads(line[len(marker):])
  sys.exit(f"error: the {label} subprocess failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
