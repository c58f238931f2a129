"""Quantizes a model at many int8 MAC ratios from one calibration, and plots what each costs.

One calibration and one analysis pass serve every ratio (each further model is one quantization, a
fraction of a second). Each model is scored on --eval (default: the calibration samples): top-1
accuracy when labels are known (--labels, or an --eval folder with one subfolder per class), and
always the top-1 agreement with the float model and the SQNR of its outputs. Writes sweep.csv,
sweep.png and sweep.md into --out.

Example:
  tfq-sweep --model=model.keras --calibration=calib/ --eval=val/ --out=sweep/
"""

import os
import sys

from absl import app
from absl import flags

from tfq_mixed import cli
from tfq_mixed.cli import _common

flags.adopt_module_key_flags(_common)
_RATIOS = flags.DEFINE_list(
    "ratios", ["0", "0.5", "0.7", "0.8", "0.85", "0.9", "0.95", "1"],
    "Comma-separated int8 MAC ratios to quantize at, each in [0, 1].")
_EVAL = flags.DEFINE_string(
    "eval", None,
    "Samples to score each model on: an image folder (one subfolder per class gives labels) or a "
    ".npy file. Default: the calibration samples.")
_LABELS = flags.DEFINE_string(
    "labels", None,
    "Labels of the --eval samples: a .npy of class indices in sample order, or a text file of class "
    "names, one per line, matched against each image's folder or file-name prefix "
    "(n01440764_tench.JPEG -> n01440764). Without labels the plot shows agreement with float.")
_MAX_EVAL = flags.DEFINE_integer("max_eval", 1000, "Score on at most this many --eval samples.",
                                 lower_bound=1)
OUTPUTS = ("sweep.csv", "sweep.md", "sweep.png")


def _ratios():
  try:
    ratios = [float(r) for r in _RATIOS.value]
  except ValueError:
    raise app.UsageError(f"--ratios must be numbers in [0, 1]. Received: {_RATIOS.value}.") from None
  if not ratios or any(not 0.0 <= r <= 1.0 for r in ratios):
    raise app.UsageError(f"--ratios must be numbers in [0, 1]. Received: {_RATIOS.value}.")
  return ratios


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Too many command-line arguments: {' '.join(argv[1:])}.")
  cli.quiet_logs()
  ratios = _ratios()
  import tfq_mixed  # pylint: disable=g-import-not-at-top
  from tfq_mixed import files  # pylint: disable=g-import-not-at-top
  from tfq_mixed.demo import images  # pylint: disable=g-import-not-at-top
  from tfq_mixed.evaluation import markdown, plots, scores, sweep  # pylint: disable=g-import-not-at-top
  out = _common.OUT.value
  try:
    _common.check_out(out, OUTPUTS, _common.OVERWRITE.value)
    model = _common.load_model(_common.MODEL.value)
    calibration = _common.load_samples(_common.CALIBRATION.value, model, _common.MAX_SAMPLES.value)
    evaluation = (_common.load_samples(_EVAL.value, model, _MAX_EVAL.value) if _EVAL.value
                  else calibration)
    if _LABELS.value:
      evaluation = images.read_labels(_LABELS.value, evaluation)
    analysis = tfq_mixed.analyze(model, calibration.images,
                                 per_channel=not _common.PER_TENSOR.value,
                                 max_samples=_common.MAX_SAMPLES.value, verbose=True)
    float_outputs = _common.float_outputs(model, evaluation.images)
    points = sweep.sweep(analysis, evaluation.images, float_outputs, ratios=ratios,
                         labels=evaluation.labels, ranker=_common.RANKER.value,
                         fallback=_common.FALLBACK.value, verbose=True)
    float_accuracy = scores.top1(float_outputs, evaluation.labels)
    labelled = evaluation.labels is not None
    what = "top-1 accuracy" if labelled else "top-1 agreement with float"
    os.makedirs(out, exist_ok=True)
    figure = plots.plot_sweep(points, os.path.join(out, "sweep.png"), float_accuracy=float_accuracy,
                              title=f"{model.name}: {what} vs int8 MAC ratio")
    rows = [{k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in p.to_dict().items()}
            for p in points]
    summary = [f"model: {_common.MODEL.value} ({model.name})",
               f"calibration: {len(calibration)} samples; scored on {len(evaluation)} samples "
               f"({'labelled' if labelled else 'no labels: agreement with float'})",
               f"float top-1: {float_accuracy:.4f}" if labelled else "float top-1: n/a"]
    markdown = "\n".join([f"# Ratio sweep of {model.name}", ""] + [f"- {s}" for s in summary] +
                         ["", "![sweep](sweep.png)", "",
                          markdown.markdown_table(rows, list(rows[0])), ""])
    paths = files.save_files(out, {"sweep.csv": sweep.sweep_csv(points).encode(),
                                    "sweep.md": markdown.encode()}, overwrite=True)
  except (tfq_mixed.TfqMixedError, OSError, ValueError, ImportError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  print("\n".join(summary))
  print(f"{'ratio':>6} {'achieved':>9} {'float layers':>12} {'accuracy':>9} {'agreement':>9} "
        f"{'out SQNR dB':>11} {'MB':>7}")
  for p in points:
    print(f"{p.ratio:>6.3f} {p.int8_mac_ratio:>9.4f} {p.float_layers:>12} {p.accuracy:>9.4f} "
          f"{p.agreement:>9.4f} {p.output_sqnr_db:>11.2f} {p.size_bytes / 1e6:>7.3f}")
  print("wrote", ", ".join([paths["sweep.csv"], paths["sweep.md"], figure]))
  return 0


def run():
  flags.mark_flags_as_required(["model", "calibration", "out"])
  cli.run(__name__, main)


if __name__ == "__main__":
  run()
