#!/usr/bin/env bash
# Foundation benchmarks, each beside its baseline in the same run:
#  1. module reload time (median and p95 over 50 reloads of the counter fixture)
#     and packets lost while reloading under a steady 1,000 pkt/s flow, against
#     the same flow with the module running and not reloaded (baseline). The
#     module holds a fail-closed stage (fail_closed = true), so a moment with
#     its slot empty would drop (MBR_STAT_DROP_STAGE_MISSING, printed) rather
#     than let the packet skip the stage; its count of echo requests is
#     printed beside the number sent;
#  2. start-to-READY time and RSS of membraned with no module (baseline) and
#     with the counter fixture module.
# Needs a build (scripts/build.sh) and the test install (ctest -R setup_install_sdk).
# Usage: bench/foundation_bench.sh   (as root; prints a table and ratios)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export MEMBRANE_SOURCE_DIR=${MEMBRANE_SOURCE_DIR:-$(dirname "$here")}
export MEMBRANE_BUILD_DIR=${MEMBRANE_BUILD_DIR:-$MEMBRANE_SOURCE_DIR/build}
export MEMBRANE_TEST_PREFIX=${MEMBRANE_TEST_PREFIX:-$MEMBRANE_BUILD_DIR/test-install}
[[ -e "$MEMBRANE_TEST_PREFIX/test-modules/counter.so" ]] || {
  echo "bench: build first: scripts/build.sh && ctest --test-dir build -R setup_install_sdk" >&2; exit 2; }
source "$MEMBRANE_SOURCE_DIR/test/lib/harness.sh"
harness_init

RELOADS=${BENCH_RELOADS:-50}
STARTS=${BENCH_STARTS:-10}

sender=$(harness_netns sender)
node=$(harness_netns node)
harness_veth "$sender" eth-s "$node" eth-n
ip -n "$sender" addr add 10.200.9.1/24 dev eth-s
ip -n "$node" addr add 10.200.9.2/24 dev eth-n
harness_dbus

lost_during() {  # lost_during SECONDS: 1,000 pkt/s for that long; prints lost count
  local count=$(( $1 * 1000 ))
  ip netns exec "$sender" ping -q -i 0.001 -c "$count" -W 2 10.200.9.2 2>&1 |
    python3 -c 'import re,sys; m=re.search(r"(\d+) packets transmitted, (\d+) received", sys.stdin.read()); print(int(m.group(1))-int(m.group(2)))'
}

# --- 1. reloads under load ---------------------------------------------------
config="$HARNESS_TMP/reload.toml"
harness_write_config "$config" bench-node "$MEMBRANE_TEST_PREFIX/test-modules" '["eth-n"]' '["counter"]' \
  $'[module.counter]\nfail_closed = true'
harness_daemon "$node" "$config"
pin_dir="$(harness_bpffs bpffs)/membrane/bench-node"
ip netns exec "$sender" ping -q -c 3 -i 0.2 -W 1 10.200.9.2 >/dev/null
echo_before=$(pinned_sum "$pin_dir/counter_echo_v1")
missing_before=$(harness_stat "$pin_dir" DROP_STAGE_MISSING)

ip netns exec "$sender" ping -q -i 0.001 -c 600000 -W 2 10.200.9.2 >"$HARNESS_TMP/ping.txt" 2>&1 &
ping_pid=$!
harness_register_pid "$ping_pid"
times="$HARNESS_TMP/reload-times.txt"
: >"$times"
for ((i = 0; i < RELOADS; i++)); do
  t0=$(date +%s%N)
  harness_ctl module reload counter >/dev/null
  t1=$(date +%s%N)
  echo $(( (t1 - t0) / 1000 )) >>"$times"
  sleep 0.05
done
kill -INT "$ping_pid"; wait "$ping_pid" || true
reload_lost=$(python3 -c 'import re,sys; m=re.search(r"(\d+) packets transmitted, (\d+) received", open(sys.argv[1]).read()); print(int(m.group(1))-int(m.group(2)), m.group(1))' "$HARNESS_TMP/ping.txt")
stage_counted=$(($(pinned_sum "$pin_dir/counter_echo_v1") - echo_before))
stage_missing=$(($(harness_stat "$pin_dir" DROP_STAGE_MISSING) - missing_before))
baseline_lost=$(lost_during 5)
harness_ctl module unload --force counter >/dev/null
harness_stop_daemon "$HARNESS_LAST_DAEMON_PID"

# --- 2. start-to-READY and RSS -------------------------------------------------
startup() {  # startup ENABLED_TOML -> "ms rss_kib" per line
  local cfg="$HARNESS_TMP/start.toml"
  harness_write_config "$cfg" bench-node "$MEMBRANE_TEST_PREFIX/test-modules" '["eth-n"]' "$1"
  python3 "$here/ready_probe.py" --netns "$node" --runs "$STARTS" -- "$MEMBRANE_BUILD_DIR/kernel/membraned" --config "$cfg"
}
startup '[]' >"$HARNESS_TMP/start-none.txt"
startup '["counter"]' >"$HARNESS_TMP/start-counter.txt"

python3 - "$times" "$reload_lost" "$baseline_lost" "$HARNESS_TMP/start-none.txt" "$HARNESS_TMP/start-counter.txt" \
  "$stage_counted" "$stage_missing" <<'PY'
import statistics, sys
times = sorted(int(x) / 1000.0 for x in open(sys.argv[1]))
lost, sent = (int(v) for v in sys.argv[2].split())
baseline_lost = int(sys.argv[3])
def rows(path):
    data = [tuple(float(v) for v in line.split()) for line in open(path) if line.strip()]
    return statistics.median(d[0] for d in data), statistics.median(d[1] for d in data)
none_ms, none_rss = rows(sys.argv[4])
ctr_ms, ctr_rss = rows(sys.argv[5])
p95 = times[int(round(0.95 * (len(times) - 1)))]
print(f"module reload (membranectl round trip), {len(times)} reloads: median {statistics.median(times):.1f} ms, p95 {p95:.1f} ms")
print(f"packets lost during reloads: {lost} of {sent} (baseline, module running, no reloads: {baseline_lost} of 5000)")
print(f"  the fail-closed stage counted {sys.argv[6]} of {sent} echo requests; dropped for an empty slot: {sys.argv[7]}")
print(f"start-to-READY: no modules {none_ms:.1f} ms, with counter {ctr_ms:.1f} ms (ratio {ctr_ms / none_ms:.2f}x)")
print(f"RSS at READY:  no modules {none_rss / 1024:.1f} MiB, with counter {ctr_rss / 1024:.1f} MiB (ratio {ctr_rss / none_rss:.2f}x)")
PY
