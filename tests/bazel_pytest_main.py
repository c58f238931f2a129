"""Entry point of the BUILD file's py_test targets: runs one pytest module under `bazel test`.

py_test runs a script, while our tests are pytest modules (fixtures in tests/conftest.py), so each
target runs this file with its test module as the argument.
"""

import sys

import pytest

if __name__ == "__main__":
  sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", *sys.argv[1:]]))
