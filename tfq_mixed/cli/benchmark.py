"""XNNPACK latency of TFLite models, side by side, as ratios to the first one.

Each model runs on LiteRT with its default XNNPACK delegate, batch 1, --warmup untimed invokes then
--runs timed ones, round-robin over the models so that load on a shared machine hits all alike. The
median is reported, with each model's latency divided by the first model's. --threads takes a list:
each thread count is timed in its own round-robin pass and reported in its own table.

Example:
  tfq-benchmark --model=float.tflite --model=mixed.tflite --threads=1,2,N
"""

import csv
import io
import json
import os
import sys

from absl import app
from absl import flags
from absl import logging

from tfq_mixed import cli

_MODELS = flags.DEFINE_multi_string(
    "model", None,
    "A .tflite file to time; repeat the flag for several. The first is the baseline of the ratios.")
_THREADS = flags.DEFINE_list(
    "threads", ["1"],
    "Interpreter (XNNPACK) threads: one count or a comma-separated list, e.g. 1,2,N; N is this "
    "machine's CPU count (os.cpu_count()). Each count gets its own timing pass and table.")
_RUNS = flags.DEFINE_integer("runs", 50, "Timed invokes per model; the median is reported.",
                             lower_bound=1)
_WARMUP = flags.DEFINE_integer(
    "warmup", 5, "Untimed invokes per model before timing (XNNPACK packs weights on the first).",
    lower_bound=0)
_OUT = flags.DEFINE_string(
    "out", None, "Also write the figures to this file: .json (a list of records) or .csv.")


def parse_threads(values) -> list[int]:
  """--threads values ('1', '2', 'N') -> distinct positive ints, in the given order."""
  counts = []
  for value in values:
    text = value.strip()
    count = (os.cpu_count() or 1) if text.upper() == "N" else None
    if count is None:
      try:
        count = int(text)
      except ValueError:
        count = 0
    if count < 1:
      raise app.UsageError(f"--threads takes positive ints or N (the CPU count), comma-separated, "
                           f"e.g. --threads=1,2,N. Received: --threads={','.join(values)}.")
    if count not in counts:
      counts.append(count)
  return counts


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Too many command-line arguments: {' '.join(argv[1:])}.")
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)
  if _OUT.value and not _OUT.value.endswith((".json", ".csv")):
    raise app.UsageError(f"--out must end in .json or .csv. Received: --out={_OUT.value}.")
  thread_counts = parse_threads(_THREADS.value or ["1"])
  import tfq_mixed  # pylint: disable=g-import-not-at-top
  from tfq_mixed import files
  from tfq_mixed.deploy import latency  # pylint: disable=g-import-not-at-top
  models = {}
  try:
    names = [os.path.basename(p) for p in _MODELS.value]
    for name, path in zip(names, _MODELS.value):
      with open(path, "rb") as f:
        models[path if names.count(name) > 1 else name] = f.read()
    tables = [latency.compare(models, threads=threads, runs=_RUNS.value, warmup=_WARMUP.value,
                              verbose=True) for threads in thread_counts]
    if _OUT.value:
      # Ratios are to the first model at the same thread count.
      records = [dict(r.to_dict(), latency_ratio=round(r.median_ms / results[0].median_ms, 6))
                 for results in tables for r in results]
      if _OUT.value.endswith(".json"):
        text = json.dumps(records, indent=2, sort_keys=True) + "\n"
      else:
        buffer = io.StringIO()
        table = csv.DictWriter(buffer, fieldnames=list(records[0]), lineterminator="\n")
        table.writeheader()
        table.writerows(records)
        text = buffer.getvalue()
      os.makedirs(os.path.dirname(os.path.abspath(_OUT.value)), exist_ok=True)
      files.write_atomic(_OUT.value, text.encode())
  except (tfq_mixed.TfqMixedError, OSError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  print("\n\n".join(latency.render(results) for results in tables))
  if _OUT.value:
    print("wrote", _OUT.value)
  return 0


def run():
  flags.mark_flag_as_required("model")
  cli.run(__name__, main)


if __name__ == "__main__":
  run()
