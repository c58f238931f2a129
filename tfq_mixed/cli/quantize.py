"""Quantizes a Keras model to a mixed int8/float TFLite model (QuantuneV2).

Calibrates once on unlabelled samples, measures every layer's sensitivity, and keeps the most
sensitive layers float so that --ratio of the MACs run in int8. Writes model.tflite, config.json
(reproduces the model with tfq_mixed.apply_config), report.csv and report.md into --out.

Example:
  tfq-quantize --model=model.keras --calibration=images/ --ratio=0.9 --out=out/
"""

import sys

from absl import app
from absl import flags

from tfq_mixed import cli
from tfq_mixed.cli import _common

flags.adopt_module_key_flags(_common)
_RATIO = flags.DEFINE_float(
    "ratio", 0.9,
    "Share of the MACs to run in int8, in [0, 1]: 1.0 is TFLite's plain full-int8 model, 0.0 keeps "
    "every compute layer float. The achieved share is reported (never below the request).",
    lower_bound=0.0, upper_bound=1.0)
OUTPUTS = ("model.tflite", "config.json", "report.csv", "report.md")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Too many command-line arguments: {' '.join(argv[1:])}.")
  _common.quiet_logs()
  import tfq_mixed  # pylint: disable=g-import-not-at-top
  from tfq_mixed.evaluation import markdown  # pylint: disable=g-import-not-at-top
  try:
    _common.check_out(_common.OUT.value, OUTPUTS, _common.OVERWRITE.value)
    model = _common.load_model(_common.MODEL.value)
    samples = _common.load_samples(_common.CALIBRATION.value, model, _common.MAX_SAMPLES.value)
    result = tfq_mixed.convert(model, samples.images, ratio=_RATIO.value,
                               per_channel=not _common.PER_TENSOR.value,
                               ranker=_common.RANKER.value, max_samples=_common.MAX_SAMPLES.value,
                               verbose=True)
    paths = result.save(_common.OUT.value, overwrite=_common.OVERWRITE.value)
    summary = [f"model: {_common.MODEL.value} ({model.name})",
               f"calibration: {len(samples)} samples from {_common.CALIBRATION.value}",
               f"requested int8 MAC ratio {_RATIO.value:g}, achieved {result.int8_mac_ratio:.4f}",
               f"float layers ({len(result.float_layers)}): {', '.join(result.float_layers) or '-'}",
               f"{'per-tensor' if _common.PER_TENSOR.value else 'per-channel'} weights, ranker "
               f"{_common.RANKER.value}; {len(result.tflite) / 1e6:.3f} MB"]
    paths["report.md"] = _common.write_text(
        _common.OUT.value, "report.md",
        markdown.markdown_report(result, title=f"tfq_mixed: {model.name}", summary=summary),
        _common.OVERWRITE.value)
  except (tfq_mixed.TfqMixedError, OSError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  print(result.report())
  print("\n".join(summary[2:4]))
  print("wrote", ", ".join(paths[name] for name in OUTPUTS))
  return 0


def run():
  flags.mark_flags_as_required(["model", "calibration", "out"])
  cli.run(__name__, main)


if __name__ == "__main__":
  run()
