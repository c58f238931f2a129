"""`python tools/sweep.py`: the `tfq-sweep` command run from a checkout.

The code lives in `tfq_mixed/cli/sweep.py` (installed with the package); `--helpfull` explains every
flag.
"""

from tfq_mixed.cli import sweep

if __name__ == "__main__":
  sweep.run()
