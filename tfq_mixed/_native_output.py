"""What TensorFlow's and LiteRT's C++ code prints to file descriptors 1 and 2, captured.

Python's `contextlib.redirect_stderr` does not see C++ output: the quantizer prints
"fully_quantize: 0, ..." and TensorFlow prints its start-up lines (oneDNN, CUDA) straight to the
process' descriptors. `captured` routes them into a buffer, so a failure can show them and a
success does not clutter the console.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile

STARTUP_NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called|oneDNN custom operations are on|"
    r"Could not find cuda drivers|cuda_(?:blas|dnn|fft)|computation placer already registered|"
    r"failed call to cuInit|"
    r"TF-TRT Warning|This TensorFlow binary is optimized to use available CPU instructions|"
    r"To enable the following instructions|rebuild TensorFlow with the appropriate compiler flags")
"""TensorFlow's import-time C++ lines that say nothing about the user's model."""


@contextlib.contextmanager
def captured(log: list):
  """Routes fds 1 and 2 into a temp file for the block; appends the text to `log` at the end."""
  try:
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
  except (OSError, ValueError):  # no real file descriptors (some notebooks): capture nothing
    yield
    return
  with tempfile.TemporaryFile() as capture:
    try:
      os.dup2(capture.fileno(), 1)
      os.dup2(capture.fileno(), 2)
      yield
    finally:
      os.dup2(saved[0], 1)
      os.dup2(saved[1], 2)
      os.close(saved[0])
      os.close(saved[1])
      capture.seek(0)
      log.append(capture.read().decode(errors="replace"))


def import_tensorflow_quietly() -> None:
  """Imports TensorFlow with its start-up lines (oneDNN, CUDA) held back; other lines still show.

  The device query TensorFlow makes at its first op (where a machine without a GPU logs a failed
  cuInit) is made here too, inside the capture.

  Does nothing special when TensorFlow is already imported or `TF_CPP_MIN_LOG_LEVEL=0` asks for
  everything.
  """
  if "tensorflow" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
    import tensorflow  # pylint: disable=g-import-not-at-top,unused-import
    return
  log: list = []
  try:
    with captured(log):
      import tensorflow  # pylint: disable=g-import-not-at-top,redefined-outer-name
      tensorflow.config.list_physical_devices()
  finally:
    kept = [line for line in "".join(log).splitlines() if not STARTUP_NOISE.search(line)]
    if kept:
      print("\n".join(kept), file=sys.stderr)
