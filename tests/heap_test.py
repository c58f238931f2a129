"""tfq_mixed/_heap.py: freed native memory handed back to the system."""

import sys

import pytest

from tfq_mixed import _heap


def _rss_mib() -> float:
  with open("/proc/self/status") as f:
    return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


@pytest.mark.skipif(not sys.platform.startswith("linux") or _heap._malloc_trim() is None,
                    reason="malloc_trim is glibc's (Linux)")
def test_release_returns_freed_fragmented_heap_memory():
  # 256 MiB in 4 KiB blocks (malloc'd, below glibc's mmap threshold), one in 64 kept: the freed
  # pages sit between live blocks, where glibc's allocator alone does not give them back.
  blocks = [bytearray(4096) for _ in range(65536)]
  for block in blocks:
    block[::512] = b"\x01" * 8  # touch every page
  kept = blocks[::64]
  del blocks
  before = _rss_mib()
  assert _heap.release()
  after = _rss_mib()
  assert before - after > 128, (before, after)
  assert len(kept) == 1024
