"""A dependency-free progress bar for the long steps (calibration, the two analysis passes, sweeps)."""

from __future__ import annotations

import sys
import time


class Progress:
  """Prints `desc [#####.....] 12/40 3.1s` to stderr, redrawn in place; silent when disabled."""

  def __init__(self, total: int, desc: str, enabled: bool = True, width: int = 30):
    self.total = max(int(total), 1)
    self.desc = desc
    self.enabled = enabled
    self.width = width
    self.done = 0
    self.start = time.perf_counter()
    self._draw()

  def update(self, n: int = 1) -> None:
    self.done = min(self.total, self.done + n)
    self._draw()

  def close(self) -> None:
    if self.enabled:
      self._draw()
      sys.stderr.write("\n")
      sys.stderr.flush()

  def _draw(self) -> None:
    if not self.enabled:
      return
    filled = int(self.width * self.done / self.total)
    bar = "#" * filled + "." * (self.width - filled)
    elapsed = time.perf_counter() - self.start
    sys.stderr.write(f"\r{self.desc:<24} [{bar}] {self.done}/{self.total} {elapsed:6.1f}s")
    sys.stderr.flush()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()
