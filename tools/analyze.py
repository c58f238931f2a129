"""`python tools/analyze.py`: the `tfq-analyze` command run from a checkout.

The code lives in `tfq_mixed/cli/analyze.py` (installed with the package); `--helpfull` explains every
flag.
"""

from tfq_mixed.cli import analyze

if __name__ == "__main__":
  analyze.run()
