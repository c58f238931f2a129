"""Per-layer quantization sensitivity of a Keras model: the report only, no model written.

Calibrates once, compares one float and one int8 pass layer by layer, and writes into --out:
report.csv (every layer, most sensitive first, with its metrics and its precision at --ratio),
report.md (the same as a markdown table with a summary) and sensitivity.png (SQNR per layer in
execution order, the layers kept float at --ratio highlighted).

Example:
  tfq-analyze --model=model.keras --calibration=samples.npy --out=report/
"""

import os
import sys

from absl import app
from absl import flags

from tfq_mixed import cli
from tfq_mixed.cli import _common

flags.adopt_module_key_flags(_common)
_RATIO = flags.DEFINE_float(
    "ratio", 0.9,
    "Int8 MAC ratio whose choice the report's precision column shows (float or int8 per layer).",
    lower_bound=0.0, upper_bound=1.0)
_TOP = flags.DEFINE_integer("top", 30, "Print this many layers of the table (all go to the files).",
                            lower_bound=1)
OUTPUTS = ("report.csv", "report.md", "sensitivity.png")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Too many command-line arguments: {' '.join(argv[1:])}.")
  cli.quiet_logs()
  import tfq_mixed  # pylint: disable=g-import-not-at-top
  from tfq_mixed import files, report  # pylint: disable=g-import-not-at-top
  from tfq_mixed.evaluation import markdown, plots  # pylint: disable=g-import-not-at-top
  out = _common.OUT.value
  try:
    _common.check_out(out, OUTPUTS, _common.OVERWRITE.value)
    model = _common.load_model(_common.MODEL.value)
    samples = _common.load_samples(_common.CALIBRATION.value, model, _common.MAX_SAMPLES.value)
    analysis = tfq_mixed.analyze(model, samples.images, per_channel=not _common.PER_TENSOR.value,
                                 max_samples=_common.MAX_SAMPLES.value, verbose=True)
    # The choice at --ratio only fills the precision column; no model is written.
    result = analysis.quantize(_RATIO.value, _common.RANKER.value,
                               fallback=_common.FALLBACK.value)
    rows = result.report_rows()
    summary = [f"model: {_common.MODEL.value} ({model.name}), {len(analysis.layers)} layers",
               f"calibration: {len(samples)} samples from {_common.CALIBRATION.value}",
               f"{'per-tensor' if _common.PER_TENSOR.value else 'per-channel'} weights, ranker "
               f"{_common.RANKER.value}",
               f"at int8 MAC ratio {_RATIO.value:g} (achieved {result.int8_mac_ratio:.4f}) these "
               f"layers stay float: {', '.join(result.float_layers) or '-'}"]
    figure = os.path.join(out, "sensitivity.png")
    os.makedirs(out, exist_ok=True)
    plots.plot_sensitivity(analysis.layers, result.float_layers, figure,
                           title=f"{model.name}: per-layer sensitivity")
    paths = files.save_files(out, {
        "report.csv": report.to_csv(rows).encode(),
        "report.md": markdown.markdown_report(result, title=f"Sensitivity of {model.name}",
                                           summary=summary, figures=["sensitivity.png"]).encode(),
    }, overwrite=True)
  except (tfq_mixed.TfqMixedError, OSError, ValueError, ImportError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  print(report.render(rows, _TOP.value))
  print("\n".join(summary[3:]))
  print("wrote", ", ".join([paths["report.csv"], paths["report.md"], figure]))
  return 0


def run():
  flags.mark_flags_as_required(["model", "calibration", "out"])
  cli.run(__name__, main)


if __name__ == "__main__":
  run()
