#!/usr/bin/env bash
# Runs every libFuzzer target of test/fuzz for a number of executions (one
# job each, one after the other: the cores are shared) and prints, per
# target, the executions, the speed, the coverage and the crashes. New inputs
# go to a scratch folder; the checked-in corpus (test/fuzz/corpus/<target>/)
# is only read. A crash leaves its input in the scratch folder (printed):
# fix the bug, then keep the input in the corpus as a regression.
# Needs the fuzz build: scripts/build.sh --fuzz.
# Usage: bench/fuzz.sh [RUNS] [TARGET...]   (RUNS default 1000000; exit 1 on a crash)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source_dir=$(dirname "$here")
build_dir=${MEMBRANE_FUZZ_BUILD_DIR:-$source_dir/build-fuzz}
runs=${1:-1000000}
shift || true
targets=("$@")
if ((${#targets[@]} == 0)); then
  for dir in "$source_dir"/test/fuzz/corpus/*/; do targets+=("$(basename "$dir")"); done
fi

scratch=$(mktemp -d /tmp/membrane-fuzz.XXXX)
echo "fuzz: $runs executions per target; scratch $scratch"
printf '%-24s %12s %10s %8s %8s %8s  %s\n' target executions exec/s seconds cov crashes artifact
failed=0
for target in "${targets[@]}"; do
  binary="$build_dir/test/fuzz/${target}_fuzz"
  [[ -x "$binary" ]] || { echo "fuzz: no $binary (scripts/build.sh --fuzz)" >&2; exit 2; }
  mkdir -p "$scratch/$target/corpus"
  log="$scratch/$target/log"
  start=$SECONDS
  rc=0
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    "$binary" -runs="$runs" -max_len=8192 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$scratch/$target/" "$scratch/$target/corpus" "$source_dir/test/fuzz/corpus/$target" \
    >"$log" 2>&1 || rc=$?
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
  artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
  crashes=0
  if ((rc != 0)); then
    crashes=1  # libFuzzer stops at the first one
    failed=1
    grep -m1 -E 'ERROR: |FUZZ_CHECK|runtime error|terminate called' "$log" >&2 || tail -5 "$log" >&2
  fi
  printf '%-24s %12s %10s %8s %8s %8s  %s\n' "$target" "${executions:-?}" "${speed:-?}" "$((SECONDS - start))" \
    "${cov:-?}" "$crashes" "${artifact:--}"
done
exit "$failed"
