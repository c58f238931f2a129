"""`python tools/quantize.py`: the `tfq-quantize` command run from a checkout.

The code lives in `tfq_mixed/cli/quantize.py` (installed with the package); `--helpfull` explains every
flag.
"""

from tfq_mixed.cli import quantize

if __name__ == "__main__":
  quantize.run()
