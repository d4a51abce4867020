#!/usr/bin/env bash
# Configures and builds Membrane. ccache is used when present.
#   scripts/build.sh          ./build: the daemon, modules, CLI, CNI plugin,
#                             lab, benchmarks and the integration tests
#   scripts/build.sh --asan   ./build-asan: the unit tests (and membranectl,
#                             which they run) under ASan+UBSan; the unit
#                             tests are built here only, not twice
#   scripts/build.sh --fuzz   ./build-fuzz: the libFuzzer targets of test/fuzz (clang)
# Usage: scripts/build.sh [--asan|--fuzz]
set -euo pipefail
cd "$(dirname "$0")/.."

jobs=${MEMBRANE_BUILD_JOBS:-$(nproc)}
export CCACHE_DIR=${CCACHE_DIR:-/var/cache/membrane-ccache}

if [[ "${1:-}" == "--asan" ]]; then
  # -g1: line tables are all a sanitizer report needs, and compile faster.
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-g1 -DCMAKE_C_FLAGS_DEBUG=-g1 \
    -DMEMBRANE_SANITIZE=ON -DMEMBRANE_UNIT_TESTS_ONLY=ON >/dev/null
  cmake --build build-asan -j "$jobs"
elif [[ "${1:-}" == "--fuzz" ]]; then
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMEMBRANE_FUZZ=ON >/dev/null
  cmake --build build-fuzz -j "$jobs" --target membrane_fuzzers
else
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMEMBRANE_UNIT_TESTS=OFF >/dev/null
  cmake --build build -j "$jobs"
fi
