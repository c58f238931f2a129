#!/usr/bin/env bash
# Compiles the demo's plain-Kotlin logic (core/src/main/kotlin) and its JUnit 4 tests
# (core/src/test/kotlin) with kotlinc, runs them with JUnitCore, and exits non-zero on any failure.
# No Gradle, no Android SDK, no network: Debian's packages `kotlin`, `junit4` (which brings
# `libhamcrest-java`) and a JDK (`default-jdk`/openjdk-17) are enough.
#   apt-get install -y --no-install-recommends kotlin junit4
# Override the jar locations with JUNIT_JAR, HAMCREST_JAR, KOTLIN_STDLIB; kotlinc with KOTLINC.
# Exit status: 0 all tests passed, 1 a test failed or compilation failed, 2 a tool is missing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KOTLINC="${KOTLINC:-kotlinc}"
JUNIT_JAR="${JUNIT_JAR:-/usr/share/java/junit4.jar}"
HAMCREST_JAR="${HAMCREST_JAR:-/usr/share/java/hamcrest-core.jar}"
KOTLIN_STDLIB="${KOTLIN_STDLIB:-/usr/share/java/kotlin-stdlib.jar}"

missing=()
command -v java >/dev/null 2>&1 || missing+=("java (apt-get install default-jdk)")
command -v "$KOTLINC" >/dev/null 2>&1 || missing+=("kotlinc (apt-get install kotlin)")
for jar in "$JUNIT_JAR" "$HAMCREST_JAR" "$KOTLIN_STDLIB"; do
  [[ -f "$jar" ]] || missing+=("$jar (apt-get install kotlin junit4)")
done
if ((${#missing[@]})); then
  printf 'run_jvm_tests.sh: missing %s\n' "${missing[@]}" >&2
  exit 2
fi

main_src="$here/core/src/main/kotlin"
test_src="$here/core/src/test/kotlin"

# The logic must stay plain JVM: no Android import may creep in.
if grep -rnE '^import (android|androidx)\.' "$main_src" "$test_src"; then
  echo "run_jvm_tests.sh: core/ must not import Android classes (above)" >&2
  exit 1
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/tfq_android_jvm.XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "== kotlinc: $("$KOTLINC" -version 2>&1 | grep -i kotlinc || true)"
echo "== java:    $(java -version 2>&1 | head -1)"
echo "== junit:   $(readlink -f "$JUNIT_JAR")"
# One kotlinc run for the logic and its tests (kotlinc starts a JVM: a few seconds).
# Debian's kotlinc launcher passes -Xverify:none, which JDK 13+ warns about: filter that line.
if ! "$KOTLINC" -nowarn -cp "$JUNIT_JAR:$HAMCREST_JAR" -d "$work/classes" \
    "$main_src" "$test_src" 2> >(grep -v -- '-Xverify:none' >&2); then
  echo "run_jvm_tests.sh: compilation failed" >&2
  exit 1
fi

# Test classes: every *Test.kt, named from its path under core/src/test/kotlin.
mapfile -t classes < <(cd "$test_src" && find . -name '*Test.kt' | sort | sed -e 's#^\./##' -e 's#\.kt$##' -e 's#/#.#g')
if ((${#classes[@]} == 0)); then
  echo "run_jvm_tests.sh: no *Test.kt under $test_src" >&2
  exit 1
fi
echo "== running ${#classes[@]} test classes: ${classes[*]}"
java -cp "$work/classes:$here/core/src/test/resources:$JUNIT_JAR:$HAMCREST_JAR:$KOTLIN_STDLIB" org.junit.runner.JUnitCore "${classes[@]}"
