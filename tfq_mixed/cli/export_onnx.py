"""Converts a mixed .tflite (e.g. the model.tflite of tfq-quantize) to a QDQ ONNX model.

tf2onnx turns each int8 op into QuantizeLinear/DequantizeLinear around a float ONNX op, and leaves
the ops tfq_mixed kept float as float ops with float weights, so ONNX Runtime and TensorRT run the
same int8/float mix as LiteRT. A config.json beside the .tflite is stored in the ONNX model's
metadata (key `tfq_mixed_config`). Needs `pip install "tfq_mixed[onnx]"`.

Example:
  tfq-export-onnx --tflite=out/model.tflite --onnx=out/model.onnx
"""

import os
import sys

from absl import app
from absl import flags
from absl import logging

from tfq_mixed import cli

_TFLITE = flags.DEFINE_string(
    "tflite", None,
    "The .tflite to convert, or a folder written by Result.save (its model.tflite).")
_ONNX = flags.DEFINE_string("onnx", None, "The .onnx file to write (atomically).")
_OPSET = flags.DEFINE_integer("opset", None, "ONNX opset (default: tf2onnx's).", lower_bound=13)
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace --onnx if it exists.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Too many command-line arguments: {' '.join(argv[1:])}.")
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)
  import tfq_mixed  # pylint: disable=g-import-not-at-top
  from tfq_mixed import files, result  # pylint: disable=g-import-not-at-top
  from tfq_mixed.deploy import onnx_export  # pylint: disable=g-import-not-at-top
  path = _TFLITE.value
  if os.path.isdir(path):
    path = os.path.join(path, result.MODEL_FILE)
  config_path = os.path.join(os.path.dirname(path), result.CONFIG_FILE)
  try:
    if os.path.exists(_ONNX.value) and not _OVERWRITE.value:
      raise FileExistsError(f"{_ONNX.value} already exists. Pass --overwrite to replace it.")
    with open(path, "rb") as f:
      tflite = f.read()
    config_json = None
    if os.path.isfile(config_path):
      with open(config_path, encoding="utf-8") as f:
        config_json = f.read()
    model = onnx_export.convert(tflite, opset=_OPSET.value, config_json=config_json)
    os.makedirs(os.path.dirname(os.path.abspath(_ONNX.value)), exist_ok=True)
    files.write_atomic(_ONNX.value, onnx_export.to_bytes(model))
  except (tfq_mixed.TfqMixedError, OSError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  ops = onnx_export.compute_ops(model)
  print(f"wrote {_ONNX.value}: {sum(op.int8 for op in ops)} of {len(ops)} weighted ops int8 (QDQ), "
        f"{sum(not op.weight_quantized for op in ops)} float")
  return 0


def run():
  flags.mark_flags_as_required(["tflite", "onnx"])
  cli.run(__name__, main)


if __name__ == "__main__":
  run()
