"""Quantizes a Keras model to a mixed-precision TFLite model (QuantuneV2 and a precision ladder).

Calibrates once on unlabelled samples, measures every layer's sensitivity, and gives each node the
cheapest precision (static int8, dynamic_int8 or float) for the output noise it removes, within one
budget: by default --max_latency=1.1, at most 1.1x the full-int8 model's XNNPACK latency on this
machine (users pay in latency; on the zoo models that budget recovers most of int8's accuracy
loss). Or --ratio (MACs in int8), --max_size (bytes), --min_output_sqnr_db. Writes model.tflite,
config.json (reproduces the model with tfq_mixed.apply_config), report.csv and report.md into
--out.

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
    "ratio", None,
    "Budget: share of the MACs in static int8, in [0, 1]: 1.0 is TFLite's plain full-int8 model, "
    "0.0 the float model. The achieved share is reported (never below the request).",
    lower_bound=0.0, upper_bound=1.0)
_MAX_LATENCY = flags.DEFINE_float(
    "max_latency", None,
    "Budget: XNNPACK latency as a multiple of the full-int8 model's, measured on this machine with "
    "LiteRT's per-op profiler at --threads. The default budget is --max_latency=1.1 when no other "
    "is given.", lower_bound=0.0)
_MAX_SIZE = flags.DEFINE_float(
    "max_size", None, "Budget: the .tflite's size as a multiple of the full-int8 file's.",
    lower_bound=0.0)
_MIN_SQNR = flags.DEFINE_float(
    "min_output_sqnr_db", None,
    "Budget: the fastest model whose output SQNR against the float model on the calibration "
    "samples reaches this many dB.")
_THREADS = flags.DEFINE_integer("threads", 1, "XNNPACK threads latency is measured at.",
                                lower_bound=1)
DEFAULT_MAX_LATENCY = 1.1
OUTPUTS = ("model.tflite", "config.json", "report.csv", "report.md")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Too many command-line arguments: {' '.join(argv[1:])}.")
  cli.quiet_logs()
  import tfq_mixed  # pylint: disable=g-import-not-at-top
  from tfq_mixed.evaluation import markdown  # pylint: disable=g-import-not-at-top
  try:
    _common.check_out(_common.OUT.value, OUTPUTS, _common.OVERWRITE.value)
    model = _common.load_model(_common.MODEL.value)
    samples = _common.load_samples(_common.CALIBRATION.value, model, _common.MAX_SAMPLES.value)
    budgets = {"ratio": _RATIO.value, "max_latency": _MAX_LATENCY.value,
               "max_size": _MAX_SIZE.value, "min_output_sqnr_db": _MIN_SQNR.value}
    budgets = {k: v for k, v in budgets.items() if v is not None} or {
        "max_latency": DEFAULT_MAX_LATENCY}
    result = tfq_mixed.convert(model, samples.images, **budgets,
                               fallback=_common.FALLBACK.value, threads=_THREADS.value,
                               per_channel=not _common.PER_TENSOR.value,
                               ranker=_common.RANKER.value, max_samples=_common.MAX_SAMPLES.value,
                               verbose=True)
    paths = result.save(_common.OUT.value, overwrite=_common.OVERWRITE.value)
    summary = [f"model: {_common.MODEL.value} ({model.name})",
               f"calibration: {len(samples)} samples from {_common.CALIBRATION.value}",
               _common.budget_line(result),
               f"float layers ({len(result.float_layers)}): {', '.join(result.float_layers) or '-'}",
               f"{'per-tensor' if _common.PER_TENSOR.value else 'per-channel'} weights, fallback "
               f"{_common.FALLBACK.value}; {len(result.tflite) / 1e6:.3f} MB"]
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
