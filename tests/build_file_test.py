"""BUILD cannot rot silently: its targets cover the package, the tools and every test module.

BUILD is evaluated as Python with stand-ins for Bazel's rules (the Starlark it uses is a subset of
Python), so no Bazel is needed here. The reference is the files git tracks (a contributor's
untracked work in progress does not count); outside a git checkout (e.g. in Bazel's sandbox), the
files on disk.
"""

import glob
import os
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEST_MAIN = "tests/bazel_pytest_main.py"


def _targets() -> dict[str, dict]:
  targets = {}

  def rule(kind):
    def record(name, **kwargs):
      if name in targets:
        raise AssertionError(f"BUILD defines the target {name!r} twice")
      targets[name] = dict(kwargs, kind=kind)
    return record

  with open(os.path.join(REPO, "BUILD"), encoding="utf-8") as f:
    source = f.read()
  exec(compile(source, "BUILD", "exec"),  # pylint: disable=exec-used
       {"__builtins__": {"len": len}, "py_library": rule("py_library"), "py_test": rule("py_test"),
        "package": lambda **_: None, "glob": _glob})
  return targets


def _glob(include, exclude=()):
  """Bazel's glob() over the tracked files (the `exclude` patterns are fnmatch-style)."""
  import fnmatch  # pylint: disable=g-import-not-at-top
  files = set().union(*(_tracked(p) for p in include))
  return sorted(f for f in files if not any(fnmatch.fnmatch(f, e) for e in exclude))


def _tracked(pattern: str) -> set[str]:
  try:
    out = subprocess.run(["git", "ls-files", "--", pattern], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout
    files = set(out.split())
    if files:
      return {f for f in files if os.path.exists(os.path.join(REPO, f))}
  except (OSError, subprocess.CalledProcessError):
    pass
  return {os.path.relpath(p, REPO)
          for p in glob.glob(os.path.join(REPO, pattern), recursive=True)}


@pytest.fixture(scope="module")
def targets():
  return _targets()


def test_library_lists_every_package_module(targets):
  srcs = set(targets["tfq_mixed"]["srcs"])
  missing = sorted(_tracked("tfq_mixed/**.py") - srcs)
  assert not missing, f"Add to the srcs of py_library(name = 'tfq_mixed') in BUILD: {missing}"
  tools = set(targets["tools"]["srcs"])
  missing = sorted(_tracked("tools/*.py") - tools)
  assert not missing, f"Add to the srcs of py_library(name = 'tools') in BUILD: {missing}"


def test_every_test_module_has_a_py_test(targets):
  tests = {name: t for name, t in targets.items() if t["kind"] == "py_test"}
  covered = {src for t in tests.values() for src in t["srcs"] if src != TEST_MAIN}
  missing = sorted(_tracked("tests/**_test.py") - covered)
  assert not missing, f"Add to TESTS in BUILD (one py_test each): {missing}"
  for name, t in tests.items():
    src = name + ".py"
    assert src in t["srcs"] and t["main"] == TEST_MAIN, name
    assert t["args"] == [f"$(rootpath {src})"], name
    assert {":tfq_mixed", ":test_support"} <= set(t["deps"]), name


def _in_checkout() -> bool:
  try:
    return subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=REPO, capture_output=True,
                          text=True, check=True).stdout.strip() == os.path.realpath(REPO)
  except (OSError, subprocess.CalledProcessError):
    return False


def test_listed_files_exist(targets):
  if not _in_checkout():
    pytest.skip("not in the git checkout (e.g. Bazel's sandbox, which holds only this target's "
                "files); Bazel checks that every listed source exists")
  for name, t in targets.items():
    for src in list(t.get("srcs", ())) + list(t.get("data", ())):
      assert os.path.isfile(os.path.join(REPO, src)), f"{name}: {src} does not exist"
