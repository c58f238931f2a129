"""The package's layout: the pipeline at the top, no import cycle, private APIs behind two doors,
and `import tfq_mixed` loading the library alone."""

import ast
import os
import re
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(REPO, "tfq_mixed")
PIPELINE = ("sources.py", "calibrator.py", "analyzer.py", "propagation.py", "rankers",
            "selector.py", "ladder.py", "writer.py")
"""The steps, in order: load -> calibrate -> analyze -> propagate -> rank -> select (or climb the
precision ladder) -> write."""
NOT_LIBRARY = ("cli", "demo", "deploy", "evaluation")
"""Subpackages outside the conversion pipeline: `import tfq_mixed` loads none of them."""


def _modules() -> dict[str, str]:
  """Dotted module name -> path, for every module of the package."""
  found = {}
  for directory, _, files in os.walk(PACKAGE):
    for name in files:
      if name.endswith(".py"):
        path = os.path.join(directory, name)
        dotted = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".")
        found[dotted.removesuffix(".__init__")] = path
  return found


def _imports(path: str, modules: dict[str, str]) -> set[str]:
  """The package modules `path` imports, at module level or inside functions (not in
  `if TYPE_CHECKING:` blocks, which never run)."""
  tree = ast.parse(open(path, encoding="utf-8").read())
  skipped = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and
             "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
  targets = set()
  for node in ast.walk(tree):
    if id(node) in skipped:
      continue
    if isinstance(node, ast.Import):
      targets |= {a.name for a in node.names if a.name.split(".")[0] == "tfq_mixed"}
    elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "tfq_mixed":
      for alias in node.names:
        submodule = f"{node.module}.{alias.name}"
        targets.add(submodule if submodule in modules else node.module)
  return {t for t in targets if t in modules}


def test_the_pipeline_is_at_the_top_and_the_rest_in_subpackages():
  listing = set(os.listdir(PACKAGE))
  assert set(PIPELINE) <= listing
  assert set(NOT_LIBRARY) <= listing
  for moved in ("default_model.py", "images.py", "examples.py", "plots.py", "latency.py",
                "onnx_export.py", "gpu_compatibility.py"):
    assert moved not in listing, f"{moved} belongs in a subpackage, not with the pipeline"


def test_no_import_cycle():
  modules = _modules()
  graph = {m: _imports(p, modules) - {m} for m, p in modules.items()}
  # Tarjan's strongly connected components: any with two or more modules is a cycle.
  index, low, stack, on_stack, cycles = {}, {}, [], set(), []

  def visit(module):
    index[module] = low[module] = len(index)
    stack.append(module)
    on_stack.add(module)
    for target in graph[module]:
      if target not in index:
        visit(target)
        low[module] = min(low[module], low[target])
      elif target in on_stack:
        low[module] = min(low[module], index[target])
    if low[module] == index[module]:
      component = []
      while True:
        member = stack.pop()
        on_stack.discard(member)
        component.append(member)
        if member == module:
          break
      if len(component) > 1:
        cycles.append(sorted(component))

  for module in sorted(graph):
    if module not in index:
      visit(module)
  assert not cycles, f"import cycles: {cycles}"


_PRIVATE = re.compile(
    r"keras\.src\b|_run_through_graph|_call_has_training_arg|\._functional\b|"
    r"\._get_ops_details|\._get_tensor_details|\._get_full_signature_list|\._interpreter\b|"
    r"\b_experimental_\w+|mlir_quantize|_deduplicate_readonly_buffers|"
    r"tensorflow\.python\b|tensorflow\.lite\.python\b|tensorflow\.lite\.tools\b")
_PRIVATE_DOORS = {"tfq_mixed/_tflite_private/__init__.py", "tfq_mixed/_tflite_private/profiler.py",
                  "tfq_mixed/_keras_private.py",
                  # The canaries test the private calls themselves; this file names them.
                  "tests/tflite_private_test.py", "tests/keras_private_test.py",
                  "tests/package_test.py"}


def _code_lines(path: str):
  """(line number, code) of a Python file with its strings and comments blanked out: names in
  docstrings are not calls."""
  import io  # pylint: disable=g-import-not-at-top
  import tokenize  # pylint: disable=g-import-not-at-top
  source = open(path, encoding="utf-8").read()
  lines = source.splitlines()
  blank = {}
  for token in tokenize.generate_tokens(io.StringIO(source).readline):
    if token.type in (tokenize.STRING, tokenize.COMMENT):
      for row in range(token.start[0], token.end[0] + 1):
        start = token.start[1] if row == token.start[0] else 0
        end = token.end[1] if row == token.end[0] else len(lines[row - 1])
        blank.setdefault(row, []).append((start, end))
  for number, line in enumerate(lines, start=1):
    chars = list(line)
    for start, end in blank.get(number, ()):
      chars[start:end] = " " * (end - start)
    yield number, "".join(chars)


def test_private_tensorflow_litert_and_keras_calls_only_behind_the_two_doors():
  offenders = []
  for top in ("tfq_mixed", "tests", "tools", "benchmarks", "android_demo"):
    for directory, _, files in os.walk(os.path.join(REPO, top)):
      for name in files:
        path = os.path.join(directory, name)
        relative = os.path.relpath(path, REPO).replace(os.sep, "/")
        if not name.endswith(".py") or relative in _PRIVATE_DOORS:
          continue
        for number, code in _code_lines(path):
          if _PRIVATE.search(code):
            offenders.append(f"{relative}:{number}: {code.strip()}")
  assert not offenders, "private calls outside _tflite_private/_keras_private:\n" + "\n".join(
      offenders)


def test_import_loads_the_library_alone():
  """Beyond what TensorFlow and Keras load themselves (Keras imports matplotlib, PIL and
  scikit-learn when they are installed), `import tfq_mixed` adds no plotting, image, ONNX or demo
  module."""
  code = ("import sys, keras, tensorflow\n"
          "before = set(sys.modules)\n"
          "import tfq_mixed\n"
          "print('\\n'.join(sorted(set(sys.modules) - before)))\n")
  done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                        timeout=300, cwd=REPO)
  assert done.returncode == 0, done.stderr[-2000:]
  added = done.stdout.split()
  assert "tfq_mixed.convert" in added
  foreign = [m for m in added if m.split(".")[0] in ("matplotlib", "PIL", "onnx", "tf2onnx",
                                                     "onnxruntime", "sklearn", "scipy")]
  assert not foreign, foreign
  outside = [m for m in added if m.split(".")[:2] in [["tfq_mixed", p] for p in NOT_LIBRARY]]
  assert not outside, f"import tfq_mixed loaded {outside}"


@pytest.mark.parametrize("subpackage", NOT_LIBRARY)
def test_subpackages_are_not_imported_by_the_pipeline(subpackage):
  modules = _modules()
  library = {m: p for m, p in modules.items() if m != "tfq_mixed.__main__" and  # runs the demo
             not any(m.startswith(f"tfq_mixed.{s}") for s in NOT_LIBRARY)}
  for module, path in library.items():
    tree = ast.parse(open(path, encoding="utf-8").read())
    top_level = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    names = [ast.unparse(n) for n in top_level]
    assert not any(f"tfq_mixed.{subpackage}" in n or f"import {subpackage}" in n and
                   "tfq_mixed" in n for n in names), (module, names)


def test_readme_is_short_and_ci_runs_its_test_command():
  readme = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
  assert len(readme.splitlines()) <= 300
  commands = re.findall(r"```bash\n(.*?)\n```", readme, re.DOTALL)
  assert commands == ['python -m pip install -e ".[demo]" && python -m tfq_mixed',
                      'python -m pip install -e ".[test]" && python -m pytest -q']
  ci = open(os.path.join(REPO, ".ci", "run"), encoding="utf-8").read()
  assert commands[1] in ci.splitlines()
  for link in re.findall(r"\]\(((?:docs|android_demo)/[^)]+)\)", readme):
    assert os.path.isfile(os.path.join(REPO, link)), link
