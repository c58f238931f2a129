"""android_demo/: its JVM logic tests, its asset script, and its version pins.

The Android app itself cannot be built here (no Android SDK, no Maven access); its plain-Kotlin
logic (android_demo/core) is compiled with Debian's kotlinc and run with Debian's JUnit 4 by
android_demo/run_jvm_tests.sh. That test skips, saying why, when those packages are absent
(`apt-get install -y --no-install-recommends kotlin junit4`).
"""

import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(REPO, "android_demo")
JARS = {"JUNIT_JAR": "/usr/share/java/junit4.jar", "HAMCREST_JAR": "/usr/share/java/hamcrest-core.jar",
        "KOTLIN_STDLIB": "/usr/share/java/kotlin-stdlib.jar"}

sys.path.insert(0, DEMO)
import prepare_assets  # pylint: disable=g-import-not-at-top,wrong-import-position
sys.path.remove(DEMO)


def _jvm_tools_or_skip():
  missing = [tool for tool in ("java", os.environ.get("KOTLINC", "kotlinc")) if not shutil.which(tool)]
  missing += [os.environ.get(k, v) for k, v in JARS.items() if not os.path.isfile(os.environ.get(k, v))]
  if missing:
    pytest.skip(f"android_demo JVM tests need a JDK and Debian's kotlin and junit4 packages; missing: "
                f"{', '.join(missing)} (apt-get install -y --no-install-recommends kotlin junit4)")


def test_jvm_logic_tests_pass():
  _jvm_tools_or_skip()
  proc = subprocess.run([os.path.join(DEMO, "run_jvm_tests.sh")], capture_output=True, text=True,
                        timeout=180)
  log = proc.stdout + proc.stderr
  assert proc.returncode == 0, log
  ok = re.search(r"^OK \((\d+) tests\)", proc.stdout, re.M)
  assert ok and int(ok.group(1)) >= 30, log  # the tests ran, not an empty suite


def _versions():
  with open(os.path.join(DEMO, "gradle", "libs.versions.toml"), "rb") as f:
    return tomllib.load(f)


def test_versions_are_pinned_and_agree_with_wrapper_and_readme():
  catalog = _versions()
  versions = catalog["versions"]
  for name, version in versions.items():
    assert re.fullmatch(r"\d+(\.\d+)*", version), f"{name} = {version!r} is not an exact version"
  for lib in catalog["libraries"].values():
    assert lib["version"]["ref"] in versions
  with open(os.path.join(DEMO, "gradle", "wrapper", "gradle-wrapper.properties")) as f:
    assert f"gradle-{versions['gradle']}-bin.zip" in f.read()
  with open(os.path.join(DEMO, "README.md")) as f:
    readme = f.read()
  for name in ("gradle", "agp", "kotlin", "litert", "junit", "compileSdk", "minSdk", "jdk"):
    assert f"{versions[name]}" in readme, f"README.md does not state {name} {versions[name]}"
  # Every catalog library is used by a build file, and no build file pins a version of its own.
  builds = ""
  for path in ("build.gradle.kts", "app/build.gradle.kts", "core/build.gradle.kts"):
    with open(os.path.join(DEMO, path)) as f:
      builds += f.read()
  for alias in catalog["libraries"]:
    assert f"libs.{alias.replace('-', '.')})" in builds, f"library {alias} unused"
  assert not re.search(r"""["'][\w.-]+:[\w.-]+:\d""", builds), "a version outside the catalog"


def test_core_has_no_android_imports():
  for root, _, files in os.walk(os.path.join(DEMO, "core")):
    for name in files:
      if name.endswith((".kt", ".java")):
        with open(os.path.join(root, name)) as f:
          assert not re.search(r"^import androidx?\.", f.read(), re.M), name


def _fake_torchvision_wheel(path, names):
  with zipfile.ZipFile(path, "w") as z:
    z.writestr(prepare_assets.META, "import os\n_IMAGENET_CATEGORIES = " + repr(names) + "\n")
  return str(path)


def test_labels_from_wheel(tmp_path):
  names = [f"class {i}" for i in range(1000)]
  assert prepare_assets.labels_from_wheel(_fake_torchvision_wheel(tmp_path / "a.whl", names)) == names
  with pytest.raises(ValueError, match="999 entries"):
    prepare_assets.labels_from_wheel(_fake_torchvision_wheel(tmp_path / "b.whl", names[:999]))


def test_prepare_assets_copies_files(tmp_path, monkeypatch):
  model = tmp_path / "model.tflite"
  model.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(64))  # the identifier, not a whole model
  monkeypatch.setattr(prepare_assets, "check_model", lambda path: "(not checked)")
  labels = tmp_path / "labels.txt"
  labels.write_text("a\nb\n")
  image = tmp_path / "photo.jpg"
  image.write_bytes(b"\xff\xd8\xff\xd9")
  out = tmp_path / "assets"
  args = ["--model", str(model), "--labels", str(labels), "--image", str(image), "--out", str(out)]
  assert prepare_assets.main(args) == 0
  assert (out / "model.tflite").read_bytes() == model.read_bytes()
  assert (out / "labels.txt").read_text() == "a\nb\n"
  assert (out / "image.jpg").read_bytes() == image.read_bytes()


def test_prepare_assets_refuses_a_missing_or_foreign_model(tmp_path, capsys):
  assert prepare_assets.main(["--model", str(tmp_path / "nope.tflite"), "--out", str(tmp_path)]) == 1
  assert "python -m tfq_mixed" in capsys.readouterr().err
  bad = tmp_path / "bad.tflite"
  bad.write_bytes(b"not a flatbuffer")
  assert prepare_assets.main(["--model", str(bad), "--out", str(tmp_path / "o")]) == 1
  assert "TFL3" in capsys.readouterr().err
  assert not (tmp_path / "o").exists()
