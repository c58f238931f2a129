"""Progress of the long steps (calibration, the analysis passes, sweeps, timing): Keras' bar.

On a terminal, `keras.utils.Progbar` redrawn in place; in a log (stdout not a terminal) each step
gets one line when it ends, `calibration: 100/100 - 6s - 62ms/step`, not a frame per update.
"""

from __future__ import annotations

import sys

import keras


class Progress:
  """A progress bar over `total` steps of the stage `desc`; silent when not `enabled`."""

  def __init__(self, total: int, desc: str, enabled: bool = True):
    self.total = max(int(total), 1)
    self.done = 0
    self._bar = None
    if enabled:
      interactive = sys.stdout.isatty()
      # The bar redraws its line on a terminal: the stage name goes on the line above it.
      sys.stdout.write(f"{desc}\n" if interactive else f"{desc}: ")
      sys.stdout.flush()
      self._bar = keras.utils.Progbar(self.total, verbose=1 if interactive else 2)

  def update(self, n: int = 1) -> None:
    self.done = min(self.total, self.done + n)
    if self._bar is not None:
      self._bar.update(self.done)

  def close(self) -> None:
    """Ends the stage's line, also when it stopped early (an error)."""
    if self._bar is not None and self.done < self.total:
      self._bar.update(self.done, finalize=True)
    self._bar = None

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()
