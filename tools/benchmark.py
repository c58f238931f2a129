"""`python tools/benchmark.py`: the `tfq-benchmark` command run from a checkout.

The code lives in `tfq_mixed/cli/benchmark.py` (installed with the package); `--helpfull` explains every
flag.
"""

from tfq_mixed.cli import benchmark

if __name__ == "__main__":
  benchmark.run()
