"""Image folders and .npy files as model-ready samples, with optional labels.

Images are read as RGB (or grey for one-channel models), center-cropped to a fraction of the shorter
side, resized with bicubic resampling (PIL `Image.BICUBIC`) and mapped `x * scale + offset` from
0..255 — the preprocessing of `../shared/zoo/MODELS.md` and of most ImageNet models.
"""

from __future__ import annotations

import dataclasses
import io
import os
from typing import Optional, Sequence

import numpy as np

from tfq_mixed import errors
from tfq_mixed.progress import Progress

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".ppm", ".tif", ".tiff")
UNKNOWN_LABEL = -1


@dataclasses.dataclass(frozen=True)
class Preprocessing:
  """How an image becomes a model input.

  Attributes:
    image_size: output (height, width), or one int for a square.
    crop: fraction of the shorter side kept by the center crop (1.0: no crop).
    scale, offset: the input is `pixel * scale + offset`, pixels in 0..255.
    channels: 3 for RGB, 1 for grey.
  """

  image_size: "int | tuple[int, int]" = 224
  crop: float = 0.875
  scale: float = 1 / 255
  offset: float = 0.0
  channels: int = 3

  def __post_init__(self):
    size = self.image_size
    if isinstance(size, int):
      object.__setattr__(self, "image_size", (size, size))
    size = tuple(self.image_size)
    if len(size) != 2 or any(not isinstance(s, (int, np.integer)) or s < 1 for s in size):
      raise errors.InvalidArgumentError(
          f"`image_size` must be a positive int or (height, width). Received: image_size={size!r}.")
    object.__setattr__(self, "image_size", (int(size[0]), int(size[1])))
    if not 0.0 < self.crop <= 1.0:
      raise errors.InvalidArgumentError(
          f"`crop` must be in (0, 1], the fraction of the shorter side kept. Received: "
          f"crop={self.crop!r}. Pass 1.0 for no crop, 0.875 for the usual ImageNet crop.")
    if self.channels not in (1, 3):
      raise errors.InvalidArgumentError(
          f"Images can feed models with 1 or 3 input channels. Received: channels={self.channels}.")

  def apply(self, image) -> np.ndarray:
    """A PIL image as a float32 (height, width, channels) array."""
    from PIL import Image  # pylint: disable=g-import-not-at-top
    image = image.convert("L" if self.channels == 1 else "RGB")
    height, width = self.image_size
    # The largest centered box of the output's aspect ratio, shrunk to `crop` of it, on whole
    # pixels: round the size, floor the offsets (this reproduces ../shared/zoo/MODELS.md's figures).
    box = min(image.width, image.height * width / height) * self.crop
    box_w, box_h = max(1, round(box)), max(1, round(box * height / width))
    left, top = (image.width - box_w) // 2, (image.height - box_h) // 2
    image = image.crop((left, top, left + box_w, top + box_h)).resize((width, height), Image.BICUBIC)
    array = np.asarray(image, dtype=np.float32)
    if array.ndim == 2:
      array = array[..., None]
    return array * np.float32(self.scale) + np.float32(self.offset)


@dataclasses.dataclass(frozen=True)
class ImageSet:
  """Model-ready samples and what is known about them.

  Attributes:
    images: float32 (N, height, width, channels), or whatever a .npy file held.
    names: one name per sample (file path relative to the folder, or `sample_<i>`).
    labels: int64 class indices (UNKNOWN_LABEL where unknown), or None when no sample has one.
    class_names: the class of each label index, when labels came from folders or a class list.
  """

  images: np.ndarray
  names: tuple[str, ...]
  labels: Optional[np.ndarray] = None
  class_names: tuple[str, ...] = ()

  def __len__(self) -> int:
    return int(self.images.shape[0])

  @classmethod
  def from_encoded(cls, items: Sequence[tuple[str, bytes]], preprocessing: Preprocessing, *,
                   labels: Optional[Sequence[int]] = None, class_names: Sequence[str] = (),
                   verbose: bool = False) -> "ImageSet":
    """Decodes and preprocesses (name, encoded bytes) pairs."""
    from PIL import Image  # pylint: disable=g-import-not-at-top
    arrays = []
    with Progress(len(items), "reading images", enabled=verbose) as bar:
      for name, data in items:
        try:
          with Image.open(io.BytesIO(data)) as image:
            arrays.append(preprocessing.apply(image))
        except (OSError, ValueError) as e:
          raise errors.DatasetError(f"Cannot read image {name!r}: {e}. Remove it or convert it "
                                    "to JPEG or PNG.") from e
        bar.update()
    return cls(images=np.stack(arrays), names=tuple(n for n, _ in items),
               labels=None if labels is None else np.asarray(labels, np.int64),
               class_names=tuple(class_names))


def _image_files(directory: str) -> list[str]:
  return sorted(n for n in os.listdir(directory)
                if n.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(directory, n)))


def read_folder(directory: str, preprocessing: Preprocessing, *, max_images: Optional[int] = None,
                verbose: bool = False) -> ImageSet:
  """Images of a folder, sorted by name; with labels when the folder holds one subfolder per class.

  Class-per-folder (`DIR/<class>/*.jpg`): class index = position of the subfolder in sorted order,
  as Keras' `image_dataset_from_directory`. Otherwise the folder's own images, unlabelled.
  `max_images` takes evenly spaced images so every class stays represented.
  """
  if not os.path.isdir(directory):
    raise errors.DatasetError(f"No folder at {directory!r}. Pass a folder of images (JPEG, PNG, ...) "
                              "or a .npy file of samples.")
  classes = sorted(n for n in os.listdir(directory) if os.path.isdir(os.path.join(directory, n))
                   and _image_files(os.path.join(directory, n)))
  if classes and not _image_files(directory):
    paths = [(os.path.join(c, n), i) for i, c in enumerate(classes)
             for n in _image_files(os.path.join(directory, c))]
  else:
    classes = []
    paths = [(n, UNKNOWN_LABEL) for n in _image_files(directory)]
  if not paths:
    raise errors.DatasetError(
        f"{directory!r} holds no images (looked for {', '.join(IMAGE_EXTENSIONS)}, in the folder or "
        "in one subfolder per class).")
  if max_images is not None and len(paths) > max_images:
    paths = [paths[i] for i in np.linspace(0, len(paths) - 1, max_images).round().astype(int)]
  items = []
  for name, _ in paths:
    with open(os.path.join(directory, name), "rb") as f:
      items.append((name, f.read()))
  return ImageSet.from_encoded(items, preprocessing, labels=[l for _, l in paths] if classes else None,
                               class_names=classes, verbose=verbose)


def read_npy(path: str, max_images: Optional[int] = None) -> ImageSet:
  """Samples stored as one array, batch axis first, already preprocessed for the model."""
  try:
    array = np.load(path, allow_pickle=False)
  except (OSError, ValueError) as e:
    raise errors.DatasetError(f"Cannot read {path!r} as a NumPy array: {e}. Save the samples with "
                              "np.save(path, array) (batch axis first, numbers only).") from e
  if array.ndim < 2:
    raise errors.DatasetError(f"{path!r} holds an array of shape {array.shape}; expected samples "
                              "with the batch axis first, e.g. (100, 224, 224, 3).")
  if max_images is not None:
    array = array[:max_images]
  return ImageSet(images=array, names=tuple(f"sample_{i}" for i in range(array.shape[0])))


def read(path: str, preprocessing: Preprocessing, *, max_images: Optional[int] = None,
         verbose: bool = False) -> ImageSet:
  """`read_npy` for a .npy file, else `read_folder`."""
  if path.endswith(".npy"):
    return read_npy(path, max_images)
  return read_folder(path, preprocessing, max_images=max_images, verbose=verbose)


def read_labels(path: str, image_set: ImageSet) -> ImageSet:
  """`image_set` with labels from a file: a .npy of class indices in sample order, or a class list.

  A class list is a text file with one class name per line (e.g. WordNet ids); an image's label is
  the line of its folder name or of its file-name prefix before the first '_' or '.'
  (`n01440764_tench.JPEG` -> `n01440764`).
  """
  if path.endswith(".npy"):
    labels = np.load(path, allow_pickle=False).astype(np.int64).reshape(-1)
    if labels.shape[0] < len(image_set):
      raise errors.DatasetError(f"{path!r} holds {labels.shape[0]} labels for {len(image_set)} "
                                "samples. Give one label per sample, in sample order.")
    return dataclasses.replace(image_set, labels=labels[:len(image_set)])
  with open(path, encoding="utf-8") as f:
    classes = [line.strip() for line in f if line.strip()]
  index = {name: i for i, name in enumerate(classes)}
  labels = []
  for name in image_set.names:
    parts = name.replace("\\", "/").split("/")
    key = parts[0] if len(parts) > 1 else parts[-1].split("_")[0].split(".")[0]
    labels.append(index.get(key, UNKNOWN_LABEL))
  if all(l == UNKNOWN_LABEL for l in labels):
    raise errors.DatasetError(
        f"No image name matches a class of {path!r} (first image {image_set.names[0]!r}, first "
        f"class {classes[0]!r}). Name images <class>_*.jpg or put them in <class>/ folders.")
  return dataclasses.replace(image_set, labels=np.asarray(labels, np.int64),
                             class_names=tuple(classes))


def sklearn_sample_photos(preprocessing: Preprocessing, copies: int = 10) -> ImageSet:
  """scikit-learn's two sample photos (china, flower), as `copies` crops and flips each; unlabelled."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from sklearn.datasets import load_sample_images  # pylint: disable=g-import-not-at-top
  arrays, names = [], []
  for photo_index, photo in enumerate(load_sample_images().images):
    image = Image.fromarray(photo)
    for i in range(copies):
      zoom = 1.0 - 0.5 * i / copies  # from the whole photo to its central half
      w, h = image.width * zoom, image.height * zoom
      left, top = (image.width - w) / 2 * (1 + (i % 3 - 1) * 0.5), (image.height - h) / 2
      view = image.crop((int(left), int(top), int(left + w), int(top + h)))
      if i % 2:
        view = view.transpose(Image.FLIP_LEFT_RIGHT)
      arrays.append(preprocessing.apply(view))
      names.append(f"sklearn_sample_{photo_index}_{i}")
  return ImageSet(images=np.stack(arrays), names=tuple(names))
