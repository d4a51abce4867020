#!/usr/bin/env bash
# Configures and builds Membrane into ./build (and, with --asan, the
# sanitizer build of the unit tests into ./build-asan). ccache is used when
# present. Usage: scripts/build.sh [--asan]
set -euo pipefail
cd "$(dirname "$0")/.."

jobs=${MEMBRANE_BUILD_JOBS:-$(nproc)}
export CCACHE_DIR=${CCACHE_DIR:-/var/cache/membrane-ccache}

if [[ "${1:-}" == "--asan" ]]; then
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DMEMBRANE_SANITIZE=ON -DMEMBRANE_UNIT_TESTS_ONLY=ON >/dev/null
  cmake --build build-asan -j "$jobs"
else
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build -j "$jobs"
fi
