#!/usr/bin/env bash
# Configures and builds Membrane into ./build (with --asan, the sanitizer
# build of the unit tests into ./build-asan; with --fuzz, the libFuzzer
# targets of test/fuzz, built by clang, into ./build-fuzz). ccache is used
# when present. Usage: scripts/build.sh [--asan|--fuzz]
set -euo pipefail
cd "$(dirname "$0")/.."

jobs=${MEMBRANE_BUILD_JOBS:-$(nproc)}
export CCACHE_DIR=${CCACHE_DIR:-/var/cache/membrane-ccache}

if [[ "${1:-}" == "--asan" ]]; then
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DMEMBRANE_SANITIZE=ON -DMEMBRANE_UNIT_TESTS_ONLY=ON >/dev/null
  cmake --build build-asan -j "$jobs"
elif [[ "${1:-}" == "--fuzz" ]]; then
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMEMBRANE_FUZZ=ON >/dev/null
  cmake --build build-fuzz -j "$jobs" --target membrane_fuzzers
else
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build -j "$jobs"
fi
