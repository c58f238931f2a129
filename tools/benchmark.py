"""XNNPACK latency of TFLite models, side by side, as ratios to the first one.

Each model runs on LiteRT with its default XNNPACK delegate, batch 1, --warmup untimed invokes then
--runs timed ones, round-robin over the models so that load on a shared machine hits all alike. The
median is reported, with each model's latency divided by the first model's.

Example:
  python tools/benchmark.py --model=float.tflite --model=mixed.tflite --threads=4
"""

import csv
import io
import json
import os
import sys

from absl import app
from absl import flags
from absl import logging

if __package__ in (None, ""):  # run as a script: python tools/benchmark.py
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import tools  # pylint: disable=g-import-not-at-top,wrong-import-position

_MODELS = flags.DEFINE_multi_string(
    "model", None,
    "A .tflite file to time; repeat the flag for several. The first is the baseline of the ratios.")
_THREADS = flags.DEFINE_integer("threads", 1, "Interpreter (XNNPACK) threads.", lower_bound=1)
_RUNS = flags.DEFINE_integer("runs", 50, "Timed invokes per model; the median is reported.",
                             lower_bound=1)
_WARMUP = flags.DEFINE_integer(
    "warmup", 5, "Untimed invokes per model before timing (XNNPACK packs weights on the first).",
    lower_bound=0)
_OUT = flags.DEFINE_string(
    "out", None, "Also write the figures to this file: .json (a list of records) or .csv.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Too many command-line arguments: {' '.join(argv[1:])}.")
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)
  if _OUT.value and not _OUT.value.endswith((".json", ".csv")):
    raise app.UsageError(f"--out must end in .json or .csv. Received: --out={_OUT.value}.")
  import tfq_mixed  # pylint: disable=g-import-not-at-top
  from tfq_mixed import latency, writer  # pylint: disable=g-import-not-at-top
  models = {}
  try:
    names = [os.path.basename(p) for p in _MODELS.value]
    for name, path in zip(names, _MODELS.value):
      with open(path, "rb") as f:
        models[path if names.count(name) > 1 else name] = f.read()
    results = latency.compare(models, threads=_THREADS.value, runs=_RUNS.value,
                              warmup=_WARMUP.value, verbose=True)
    if _OUT.value:
      base = results[0].median_ms
      records = [dict(r.to_dict(), latency_ratio=round(r.median_ms / base, 6)) for r in results]
      if _OUT.value.endswith(".json"):
        text = json.dumps(records, indent=2, sort_keys=True) + "\n"
      else:
        buffer = io.StringIO()
        table = csv.DictWriter(buffer, fieldnames=list(records[0]), lineterminator="\n")
        table.writeheader()
        table.writerows(records)
        text = buffer.getvalue()
      os.makedirs(os.path.dirname(os.path.abspath(_OUT.value)), exist_ok=True)
      writer.write_atomic(_OUT.value, text.encode())
  except (tfq_mixed.TfqMixedError, OSError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  print(latency.render(results))
  if _OUT.value:
    print("wrote", _OUT.value)
  return 0


def run():
  flags.mark_flag_as_required("model")
  tools.run(__name__, main)


if __name__ == "__main__":
  run()
