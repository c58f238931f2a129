"""Freed native memory handed back to the system between the ladder's candidate models.

TensorFlow's quantizer and LiteRT's interpreters allocate and free hundreds of MB for each
candidate model the precision ladder builds and runs; glibc's allocator keeps most of what they
free, so the process' resident memory grows with the walk. `release` asks glibc to return it
(`malloc_trim(0)`); on other C libraries it does nothing.
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
