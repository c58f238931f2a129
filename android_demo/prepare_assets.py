"""Puts the demo's assets into android_demo/app/src/main/assets (none of them is committed).

  python -m tfq_mixed                           # writes tfq_mixed_out/model.tflite (the mixed model)
  python android_demo/prepare_assets.py         # copies it, writes labels.txt and image.jpg

Writes:
  model.tflite       the mixed int8/float model, from --model (default tfq_mixed_out/model.tflite,
                     where `python -m tfq_mixed` writes it); its I/O is checked when ai-edge-litert
                     or TensorFlow is installed.
  labels.txt         the 1000 ImageNet-1k class names in the standard (sorted WordNet id) order of
                     EfficientNet-Lite0's outputs, one per line. Taken from the PyPI wheel of
                     torchvision (BSD-3-Clause; `torchvision/models/_meta.py`, read as a literal,
                     no code run), fetched with `pip download --no-deps` and cached; or --labels FILE.
  image.jpg          scikit-learn's sample photo china.jpg (CC BY 2.0, danielbuechele on Flickr;
                     attribution in image_LICENSE.txt), or --image FILE.
"""

from __future__ import annotations

import ast
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

from absl import flags

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
ASSETS = os.path.join(HERE, "app", "src", "main", "assets")
TORCHVISION = "torchvision==0.20.1"
META = "torchvision/models/_meta.py"
NUM_CLASSES = 1000
CHINA_LICENSE = """image.jpg: scikit-learn's sample image china.jpg (sklearn/datasets/images/).
Released under a Creative Commons license, https://creativecommons.org/licenses/by/2.0/
Attribution: Some rights reserved by danielbuechele, https://www.flickr.com/photos/danielbuechele/
Source: https://www.flickr.com/photos/danielbuechele/6061409035/ (retrieved by Robert Layton, 2011)
"""


def _cache_dir() -> str:
  path = os.environ.get("TFQ_MIXED_CACHE") or os.path.join(
      os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "tfq_mixed")
  os.makedirs(path, exist_ok=True)
  return path


def labels_from_wheel(wheel: str) -> list[str]:
  """The ImageNet class names of a torchvision wheel, read as a Python literal (no code runs)."""
  with zipfile.ZipFile(wheel) as z:
    tree = ast.parse(z.read(META).decode("utf-8"))
  for node in tree.body:
    if (isinstance(node, ast.Assign) and len(node.targets) == 1
        and getattr(node.targets[0], "id", None) == "_IMAGENET_CATEGORIES"):
      names = ast.literal_eval(node.value)
      if (len(names) != NUM_CLASSES or not all(isinstance(n, str) and n.strip() for n in names)):
        raise ValueError(f"{wheel}: _IMAGENET_CATEGORIES holds {len(names)} entries, expected "
                         f"{NUM_CLASSES} non-empty names")
      return list(names)
  raise ValueError(f"{wheel}: no _IMAGENET_CATEGORIES in {META}")


def fetch_torchvision_wheel() -> str:
  """A cached torchvision wheel (any platform's wheel holds the same _meta.py)."""
  cache = os.path.join(_cache_dir(), "torchvision_wheel")
  found = glob.glob(os.path.join(cache, "torchvision-0.20.1-*.whl"))
  if found:
    return found[0]
  with tempfile.TemporaryDirectory() as tmp:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-q", "-d", tmp, TORCHVISION]
    print("fetching ImageNet class names:", " ".join(cmd[2:]))
    subprocess.run(cmd, check=True)
    wheel = glob.glob(os.path.join(tmp, "*.whl"))[0]
    os.makedirs(cache, exist_ok=True)
    return shutil.copy(wheel, cache)


def check_model(path: str) -> str:
  """A line describing the model's input and output; raises ValueError if it is no .tflite."""
  with open(path, "rb") as f:
    head = f.read(8)
  if head[4:8] != b"TFL3":
    raise ValueError(f"{path} is not a TFLite flatbuffer (no TFL3 identifier)")
  try:
    from ai_edge_litert.interpreter import Interpreter  # pylint: disable=g-import-not-at-top
  except ImportError:
    try:
      from tensorflow.lite import Interpreter  # pylint: disable=g-import-not-at-top
    except ImportError:
      return "(I/O not checked: neither ai-edge-litert nor tensorflow is installed)"
  try:
    interpreter = Interpreter(model_path=path)
  except (ValueError, RuntimeError) as e:
    raise ValueError(f"{path}: the interpreter cannot load it: {e}") from e
  inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
  shape = [int(s) for s in inp["shape"]]
  if len(shape) != 4 or shape[0] != 1 or shape[3] != 3:
    raise ValueError(f"{path}: the app needs an image input [1, height, width, 3], got {shape}")
  if inp["dtype"].__name__ not in ("float32", "int8", "uint8"):
    raise ValueError(f"{path}: input type {inp['dtype'].__name__} (the app feeds float32, int8 or uint8)")
  return (f"input {shape} {inp['dtype'].__name__} {inp['quantization']}, "
          f"output {[int(s) for s in out['shape']]} {out['dtype'].__name__}")


# absl flags in a registry of this script's own, so that importing it (the tests do) does not
# clash with the library's command-line flags of the same names.
FLAGS = flags.FlagValues()
flags.DEFINE_string("model", os.path.join(REPO, "tfq_mixed_out", "model.tflite"),
                    "The .tflite to bundle (default: tfq_mixed_out/model.tflite).", flag_values=FLAGS)
flags.DEFINE_string("labels", None, "A labels file to copy instead of torchvision's names.",
                    flag_values=FLAGS)
flags.DEFINE_string("image", None, "A JPEG to bundle instead of scikit-learn's china.jpg.",
                    flag_values=FLAGS)
flags.DEFINE_string("out", ASSETS, "Assets folder (default: the app's).", flag_values=FLAGS)


def _parse(argv) -> "flags.FlagValues | None":
  """The flags of `argv` (program name excluded); None after a usage error."""
  FLAGS.unparse_flags()
  try:
    FLAGS(["prepare_assets.py", *argv])
  except flags.Error as e:
    print(f"error: {e}. Pass --help for the flags.", file=sys.stderr)
    return None
  return FLAGS


def main(argv=None) -> int:
  argv = sys.argv[1:] if argv is None else list(argv)
  if {"--help", "-h", "--helpfull"} & set(argv):
    print(__doc__ + "\nflags:\n" + FLAGS.get_help())
    return 0
  args = _parse(argv)
  if args is None:
    return 2

  if not os.path.isfile(args.model):
    print(f"error: {args.model} does not exist. Run `python -m tfq_mixed` first (it writes "
          "tfq_mixed_out/model.tflite), or pass --model PATH.", file=sys.stderr)
    return 1
  try:
    info = check_model(args.model)
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  os.makedirs(args.out, exist_ok=True)
  shutil.copyfile(args.model, os.path.join(args.out, "model.tflite"))
  print(f"model.tflite  <- {args.model}: {info}")

  if args.labels:
    shutil.copyfile(args.labels, os.path.join(args.out, "labels.txt"))
    print(f"labels.txt    <- {args.labels}")
  else:
    names = labels_from_wheel(fetch_torchvision_wheel())
    with open(os.path.join(args.out, "labels.txt"), "w", encoding="utf-8") as f:
      f.write("\n".join(names) + "\n")
    print(f"labels.txt    <- {TORCHVISION} (BSD-3-Clause): {len(names)} ImageNet classes, "
          f"{names[0]!r} .. {names[-1]!r}")

  license_path = os.path.join(args.out, "image_LICENSE.txt")
  if args.image:
    shutil.copyfile(args.image, os.path.join(args.out, "image.jpg"))
    if os.path.exists(license_path):
      os.remove(license_path)
    print(f"image.jpg     <- {args.image}")
  else:
    try:
      import sklearn  # pylint: disable=g-import-not-at-top
    except ImportError:
      print("error: scikit-learn is not installed (pip install scikit-learn), or pass --image",
            file=sys.stderr)
      return 1
    china = os.path.join(os.path.dirname(sklearn.__file__), "datasets", "images", "china.jpg")
    shutil.copyfile(china, os.path.join(args.out, "image.jpg"))
    with open(license_path, "w", encoding="utf-8") as f:
      f.write(CHINA_LICENSE)
    print(f"image.jpg     <- {china} (CC BY 2.0; see image_LICENSE.txt)")
  print(f"assets ready in {os.path.relpath(args.out)}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
