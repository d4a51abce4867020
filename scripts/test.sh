#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, and runs every
# test: the unit tests under ASan+UBSan (build-asan), a short run of every
# fuzz target (clang, build-fuzz), then the integration and end-to-end tests
# (build). Needs root (BPF, network namespaces). Exit status is the verdict.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $EUID -ne 0 ]]; then
  echo "scripts/test.sh: run as root (the tests load BPF and create network namespaces)" >&2
  exit 2
fi

# ctest_no_skips BUILD_DIR CTEST_ARGS... : ctest, then fail on any skip. Here
# (root, every dependency installed) nothing has a reason to skip, so a
# skipped test is a test that did not run. CTest lists skips (GTEST_SKIP, a
# script's exit code 77) as "(Skipped)".
ctest_no_skips() {
  local dir=$1
  shift
  ctest --test-dir "$dir" --output-on-failure "$@" | tee "$dir/ctest-last.log"
  if grep -q '(Skipped)' "$dir/ctest-last.log"; then
    echo "scripts/test.sh: tests skipped although running as root with every dependency:" >&2
    grep '(Skipped)' "$dir/ctest-last.log" >&2
    return 1
  fi
}

scripts/install-deps.sh
scripts/build.sh
scripts/build.sh --asan
scripts/build.sh --fuzz

# The unit tests run once, in the sanitizer build, first: they are quick,
# and a memory error there should be read before the long integration suite.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  LSAN_OPTIONS=suppressions=$PWD/test/sanitizers/lsan.supp:print_suppressions=0 \
  ctest_no_skips build-asan -L unit -j 2
# Fuzz smoke: each libFuzzer target for 10 s from its checked-in corpus
# (test/fuzz/CMakeLists.txt); a crash or sanitizer report fails it.
ctest --test-dir build-fuzz -L fuzz --output-on-failure -j 2
ctest_no_skips build -j 2
