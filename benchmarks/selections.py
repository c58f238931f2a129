"""The selections of the accuracy benchmark, fingerprinted, to show a change left them alone.

For every model and weight mode of `accuracy.CONFIGS`: one `tfq_mixed.analyze` on the canonical
calibration split, then `quantize` with every built-in label-free ranker at every budget of
`accuracy.BUDGETS`. Records each selection's float nodes and the SHA-256 of its .tflite, and checks
that `apply_config` rebuilds the same bytes from the saved config of one selection per config. No
evaluation: a few minutes for all five configs.

  python benchmarks/selections.py                         # writes results/selections.{json,md}
  python benchmarks/selections.py --compare=old.json      # and lists every selection that differs

Uses only the public API, so the same script fingerprints an older checkout too
(`PYTHONPATH=/path/to/old/checkout python benchmarks/selections.py --out=/tmp/old.json`).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # pylint: disable=g-import-not-at-top,wrong-import-position

CONFIGS = common.ACCURACY_CONFIGS
BUDGETS = common.ACCURACY_BUDGETS
RANKERS = common.LABEL_FREE_RANKERS
APPLY_CONFIG_CHECK = ("quantune", 0.10)

_SHARED = flags.DEFINE_string("shared", None, "The shared folder (default ../shared).")
_OUT = flags.DEFINE_string("out", os.path.join(common.REPO_ROOT, "benchmarks", "results",
                                               "selections.json"),
                           "Where the JSON goes; the markdown summary goes beside it.")
_COMPARE = flags.DEFINE_string("compare", None, "An earlier selections.json to compare with.")


def fingerprint(shared: str, model_name: str, mode: str) -> dict:
  import tfq_mixed  # pylint: disable=g-import-not-at-top
  model = common.load_model(shared, model_name)
  calibration_x, _ = common.load_split(shared, model_name, "calibration")
  analysis = tfq_mixed.analyze(model, calibration_x, per_channel=mode == "per_channel")
  selections = {}
  for ranker in RANKERS:
    for budget in BUDGETS:
      result = analysis.quantize(1.0 - budget, ranker, fallback="float")
      selections[f"{ranker}@{budget:g}"] = {
          "float_nodes": list(result.config.float_nodes),
          "sha256": hashlib.sha256(result.tflite).hexdigest(),
          "size_bytes": len(result.tflite)}
      if (ranker, budget) == APPLY_CONFIG_CHECK:
        with tempfile.TemporaryDirectory() as directory:
          result.save(directory)
          rebuilt = tfq_mixed.apply_config(model, calibration_x,
                                           os.path.join(directory, "config.json"))
        same_bytes = rebuilt.tflite == result.tflite
  common.log(f"{model_name} {mode}: {len(selections)} selections; apply_config same bytes: "
               f"{same_bytes}")
  return {"model": model_name, "mode": mode, "selections": selections,
          "apply_config_same_bytes": same_bytes}


def compare(old: dict, new: dict) -> list[str]:
  """Every selection that differs between two runs (float nodes or bytes), as text lines."""
  lines = []
  old_configs = {(c["model"], c["mode"]): c for c in old["configs"]}
  for config in new["configs"]:
    key = (config["model"], config["mode"])
    before = old_configs.get(key)
    if before is None:
      lines.append(f"{key[0]} {key[1]}: not in the earlier run")
      continue
    for name, selection in config["selections"].items():
      earlier = before["selections"].get(name)
      if earlier is None:
        lines.append(f"{key[0]} {key[1]} {name}: not in the earlier run")
      elif earlier["float_nodes"] != selection["float_nodes"]:
        lines.append(f"{key[0]} {key[1]} {name}: float nodes differ")
      elif earlier["sha256"] != selection["sha256"]:
        lines.append(f"{key[0]} {key[1]} {name}: same float nodes, different bytes")
  return lines


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Too many command-line arguments: {' '.join(argv[1:])}.")
  common.setup_tensorflow()
  shared = common.shared_dir(_SHARED.value)
  command = "python benchmarks/selections.py" + "".join(f" {a}" for a in sys.argv[1:])
  record = {"command": command, "git_revision": common.git_revision(),
            "configs": [fingerprint(shared, m, mode) for m, mode in CONFIGS]}
  lines = ["# Selections of the accuracy benchmark", "", f"`{command}` at git "
           f"{record['git_revision']}: {len(RANKERS)} rankers x {len(BUDGETS)} budgets per config.",
           ""]
  for config in record["configs"]:
    lines.append(f"- {config['model']} {config['mode']}: {len(config['selections'])} selections, "
                 f"apply_config rebuilds the same bytes: {config['apply_config_same_bytes']}")
  if _COMPARE.value:
    with open(_COMPARE.value, encoding="utf-8") as f:
      earlier = json.load(f)
    differences = compare(earlier, record)
    record["compared_with"] = {"revision": earlier.get("git_revision"),
                               "differences": differences}
    lines += ["", f"Compared with {_COMPARE.value} (git {earlier.get('git_revision')}): "
              f"{len(differences)} selection(s) differ."] + [f"- {d}" for d in differences]
  common.write_result(_OUT.value, json.dumps(record, indent=2, sort_keys=True) + "\n")
  common.write_result(os.path.splitext(_OUT.value)[0] + ".md", "\n".join(lines) + "\n")
  print("\n".join(lines))
  print(f"wrote {_OUT.value}\n{command}")
  return 0


if __name__ == "__main__":
  app.run(main)
