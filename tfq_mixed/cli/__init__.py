"""Command-line tools of tfq_mixed (absl flags): quantize, analyze, sweep, benchmark, export_onnx.

Installed as console commands (`tfq-quantize --helpfull`); from a checkout, the thin scripts in
`tools/` run the same code (`python tools/quantize.py --helpfull`). The code lives inside the
package: a top-level `tools` package would collide with other wheels' (tf2onnx installs one).
"""

import sys


def run(module_name: str, main) -> None:
  """`app.run(main)` for a tool started from a checkout or through its console script.

  absl takes the usage text from the `__main__` module and lists in `--help` the flags of the file
  named in sys.argv[0]. A console script's `__main__` is a generated stub, so the tool's docstring
  and key flags are handed over to it here.
  """
  from absl import app  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  module = sys.modules[module_name]
  if module_name != "__main__":
    main_module = sys.modules["__main__"]
    main_module.__doc__ = module.__doc__
    for flag in flags.FLAGS.get_key_flags_for_module(module_name):
      flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
  app.run(main)


def quiet_logs() -> None:
  """Keeps TensorFlow's INFO chatter (SavedModel export notes) out of the console.

  absl's app.run logs INFO by default; --verbosity=0 (or -v 0) brings it back.
  """
  import logging  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
  if not flags.FLAGS["verbosity"].present:
    absl_logging.set_verbosity(absl_logging.WARNING)
    logging.getLogger("tensorflow").setLevel(logging.WARNING)
