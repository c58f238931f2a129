"""`python tools/export_onnx.py`: the `tfq-export-onnx` command run from a checkout.

The code lives in `tfq_mixed/cli/export_onnx.py` (installed with the package); `--helpfull` explains every
flag.
"""

from tfq_mixed.cli import export_onnx

if __name__ == "__main__":
  export_onnx.run()
