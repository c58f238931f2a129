"""Freed native memory handed back to the system after the latency profile.

LiteRT's profiled interpreters (four models of the calibration, XNNPACK's packed weights) free a
few hundred MB that glibc's allocator keeps, so the process' resident memory stays that much
higher for the rest of the walk. `release` asks glibc to return it (`malloc_trim(0)`); on other C
libraries it does nothing. Not after every candidate model: there it saved more memory (a probe on
EfficientNet-Lite0: peak 2168 -> 1896 MiB) but TensorFlow's quantizer then faults its pages in
again on the next build (convert 2.08x -> 2.24x plain TFLite's time).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.cache
def _malloc_trim():
  name = ctypes.util.find_library("c")
  try:
    return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
  except OSError:
    return None


def release() -> bool:
  """Returns freed heap memory to the system (glibc); True if it could ask."""
  trim = _malloc_trim()
  if trim is None:
    return False
  trim(0)
  return True
