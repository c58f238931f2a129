"""Atomic file output: a file is whole or absent, and nothing is clobbered unless asked.

Every file the library writes (the model, its config and report, ONNX exports, plots) goes through
here: written in full to a temp file beside its target, flushed, then renamed into place.
"""

from __future__ import annotations

import os
import tempfile
from typing import Optional

from tfq_mixed import errors


def _write_temp(path: str, data: bytes) -> str:
  """Writes `data` to a new hidden temp file beside `path` (flushed to disk); returns its path."""
  directory = os.path.dirname(os.path.abspath(path))
  fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
  try:
    # mkstemp creates the file 0600; give it the mode a plain open() would (0666 less the umask).
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)
    with os.fdopen(fd, "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
  except BaseException:
    _remove_quietly(tmp)
    raise
  return tmp


def _remove_quietly(path: str) -> None:
  try:
    os.remove(path)
  except OSError:
    pass


def write_atomic(path: str, data: bytes) -> None:
  """Writes `data` to a temp file beside `path`, then renames it: `path` is whole or absent."""
  tmp = _write_temp(path, data)
  try:
    os.replace(tmp, path)
  except BaseException:
    _remove_quietly(tmp)
    raise


def refuse_clobber(paths, overwrite: bool, where: str = "output path") -> None:
  """Raises OutputError if one of `paths` exists and not `overwrite` (checked before any work).

  Raises:
    InvalidTypeError: `overwrite` is not a bool.
    OutputError: a file exists.
  """
  if not isinstance(overwrite, bool):
    raise errors.InvalidTypeError(
        f"`overwrite` must be a bool. Received: overwrite={overwrite!r}.")
  if not overwrite:
    existing = [os.fspath(p) for p in paths if os.path.lexists(p)]
    if existing:
      raise errors.OutputError(
          f"{existing[0]} already exists. Pass overwrite=True to replace it, or choose another "
          f"{where}.")


def save_files(directory: str, files: dict[str, bytes], overwrite: bool = False) -> dict[str, str]:
  """Saves several files into `directory` as one unit; nothing is clobbered unless `overwrite`.

  Every file is first written in full to a temp file beside its target; only then are the temp
  files renamed into place. A failure while writing (disk full, interrupted) leaves the folder as
  it was; a failure while renaming undoes the renames already done (restoring replaced files).

  Raises:
    InvalidTypeError: `directory` is not a path or `overwrite` not a bool.
    OutputError: a file exists (and not `overwrite`), or the folder is not writable or full.
  """
  if not isinstance(directory, (str, os.PathLike)):
    raise errors.InvalidTypeError(
        f"`directory` must be a path (str or os.PathLike). Received: {directory!r} of type "
        f"{type(directory).__name__}. Pass the output folder, e.g. result.save('out/').")
  directory = os.fspath(directory)
  paths = {name: os.path.join(directory, name) for name in files}
  refuse_clobber(paths.values(), overwrite, where="output folder")
  if os.path.exists(directory) and not os.path.isdir(directory):
    raise errors.OutputError(
        f"{directory!r} is a file, not a folder. Pass a folder path for the results.")
  temps: dict[str, str] = {}
  try:
    os.makedirs(directory, exist_ok=True)
    for name, data in files.items():  # 1. Everything in full beside the targets.
      temps[name] = _write_temp(paths[name], data)
    _rename_all(temps, paths)  # 2. Then into place.
  except OSError as e:
    raise errors.OutputError(
        f"Could not write the results to {directory!r}: {e.strerror or e}. Nothing was left "
        "half-written there. Check that the folder is writable and the disk has space.") from e
  finally:
    for tmp in temps.values():
      if os.path.exists(tmp):
        _remove_quietly(tmp)
  return paths


def _rename_all(temps: dict[str, str], paths: dict[str, str]) -> None:
  """Renames each temp file onto its target; on failure restores every target as it was."""
  done: list[tuple[str, Optional[str]]] = []  # (target, backup of what it replaced)
  try:
    for name, tmp in temps.items():
      target = paths[name]
      backup = None
      if os.path.lexists(target):
        backup = os.path.join(os.path.dirname(target),
                              "." + os.path.basename(target) + ".tfq_mixed_backup")
        os.replace(target, backup)
      done.append((target, backup))
      os.replace(tmp, target)
  except BaseException:
    for target, backup in reversed(done):
      if backup is None:
        _remove_quietly(target)
      else:
        try:
          os.replace(backup, target)
        except OSError:
          pass
    raise
  for _, backup in done:
    if backup is not None:
      _remove_quietly(backup)
