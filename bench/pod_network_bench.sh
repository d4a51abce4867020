#!/usr/bin/env bash
# Pod networking benchmark, every figure beside its plain-kernel baseline in
# the same run (four labs up at once, measured in turn):
#   - TCP request/response rate (bench/pod_rr.c: 1-byte ping-pong on one
#     connection, like netperf TCP_RR) and TCP throughput (iperf3, 1 stream),
#     pod to pod across nodes and on the same node;
#   - Membrane VXLAN (routing-vxlan) vs a plain-kernel VXLAN lab (pod bridge +
#     VXLAN device per node, no BPF), Membrane direct routing (direct-routing)
#     vs plain routed veths: `membrane-lab up --baseline` wires the same topology;
#   - CNI ADD and DEL latency (median, p99) over 200 cycles, as a runtime calls it.
# Prints a table and the ratios Membrane / baseline (higher is better for
# rates, lower for latency). Bounded: about 5 minutes; every lab is taken down.
# --routing vxlan|direct measures one mode only (two labs, about half the time).
#
# Usage (as root): bench/pod_network_bench.sh [--seconds N] [--rounds N] [--cni-cycles N] [--routing MODE]
# Env: MEMBRANE_BUILD_DIR (default ./build), MEMBRANE_SOURCE_DIR.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export MEMBRANE_SOURCE_DIR=${MEMBRANE_SOURCE_DIR:-$(dirname "$here")}
export MEMBRANE_BUILD_DIR=${MEMBRANE_BUILD_DIR:-$MEMBRANE_SOURCE_DIR/build}

seconds=4 rounds=3 cni_cycles=200 modes=(vxlan direct)
while (($#)); do
    case $1 in
        --seconds) seconds=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --cni-cycles) cni_cycles=$2; shift 2 ;;
        --routing)
            [[ $2 == vxlan || $2 == direct ]] || { echo "pod_network_bench: --routing is vxlan or direct, not '$2'" >&2; exit 2; }
            modes=("$2"); shift 2 ;;
        -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "pod_network_bench: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done

source "$MEMBRANE_SOURCE_DIR/lab/lab_test_lib.sh"
labtest_init
command -v cc >/dev/null || labtest_skip "no C compiler (cc) for bench/pod_rr.c"
cc -O2 -Wall -Wextra -Werror -o "$LABTEST_TMP/pod_rr" "$here/pod_rr.c"
rr="$LABTEST_TMP/pod_rr"
results="$LABTEST_TMP/results.txt"
: >"$results"

# Four labs of the same shape: client c on node1, server s on node1 (same node) and x on node2.
declare -A labs
for routing in "${modes[@]}"; do
    for kind in membrane baseline; do
        lab=$(labtest_name "b${routing:0:1}${kind:0:1}")
        labs[$routing/$kind]=$lab
        labtest_topology "$lab" "$routing" c:node1 s:node1 x:node2 >"$LABTEST_TMP/$lab.toml"
        if [[ $kind == baseline ]]; then
            labtest_up "$LABTEST_TMP/$lab.toml" --baseline >/dev/null
        else
            labtest_up "$LABTEST_TMP/$lab.toml" --log-level warn >/dev/null
        fi
        for pod in s x; do
            lab_cmd exec "$lab" "$pod" -- timeout 900 "$rr" server 7100 900 </dev/null >/dev/null 2>&1 &
            lab_cmd exec "$lab" "$pod" -- timeout 900 iperf3 -s -p 5201 </dev/null >/dev/null 2>&1 &
        done
        labtest_expect_ping "$lab" c x 2>/dev/null
        labtest_expect_ping "$lab" c s 2>/dev/null
    done
done

measure_rr() {  # LAB POD -> transactions/s
    local addr
    addr=$(labtest_addr "$1" "$2")
    lab_cmd exec "$1" c -- timeout $((seconds + 10)) "$rr" client "$addr" 7100 "$seconds"
}
measure_tcp() {  # LAB POD -> Gbit/s (receiver)
    local addr
    addr=$(labtest_addr "$1" "$2")
    lab_cmd exec "$1" c -- timeout $((seconds + 15)) iperf3 -c "$addr" -p 5201 -t "$seconds" -J |
        python3 -c 'import json,sys; print(round(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9, 3))'
}

# Membrane and baseline alternate, and swap who goes first each round.
for ((round = 1; round <= rounds; round++)); do
    for routing in "${modes[@]}"; do
        for test in rr/x tcp/x rr/s tcp/s; do
            if ((round % 2)); then order="membrane baseline"; else order="baseline membrane"; fi
            for kind in $order; do
                value=$(measure_"${test%/*}" "${labs[$routing/$kind]}" "${test#*/}") ||
                    labtest_fail "$routing $kind ${test} measurement failed"
                echo "$routing $kind $test $value" >>"$results"
                echo "[bench] round $round: $routing $kind $test: $value" >&2
            done
        done
    done
done

cni=$(python3 "$here/pod_cni_latency.py" "${labs[${modes[0]}/membrane]}" node1 "$cni_cycles") ||
    labtest_fail "CNI latency measurement failed"

python3 - "$results" "$cni" "$seconds" "$rounds" "${modes[@]}" <<'PY'
import json, statistics, sys
from collections import defaultdict
samples = defaultdict(list)
for line in open(sys.argv[1]):
    routing, kind, test, value = line.split()
    samples[(routing, kind, test)].append(float(value))
cni = json.loads(sys.argv[2])
names = {"rr/x": ("across nodes", "TCP_RR", "trans/s"), "tcp/x": ("across nodes", "TCP stream", "Gbit/s"),
         "rr/s": ("same node", "TCP_RR", "trans/s"), "tcp/s": ("same node", "TCP stream", "Gbit/s")}
baseline_name = {"vxlan": "kernel VXLAN + bridge", "direct": "kernel routed veths"}
print(f"\nPod networking: Membrane vs plain kernel, same lab topology, same run "
      f"({sys.argv[4]} round(s) of {sys.argv[3]} s, medians)\n")
print(f"{'mode':7} {'path':13} {'test':11} {'membrane':>10} {'baseline':>10} {'ratio':>6}  unit (baseline)")
for routing in sys.argv[5:]:
    for test in ("rr/x", "tcp/x", "rr/s", "tcp/s"):
        path, what, unit = names[test]
        m = statistics.median(samples[(routing, "membrane", test)])
        b = statistics.median(samples[(routing, "baseline", test)])
        fmt = "{:>10.0f}" if unit == "trans/s" else "{:>10.2f}"
        print(f"{routing:7} {path:13} {what:11} {fmt.format(m)} {fmt.format(b)} {m / b:>6.2f}  {unit} ({baseline_name[routing]})")
print(f"\nCNI latency over {cni['cycles']} ADD/DEL cycles (membrane-cni exec'd as a runtime does):")
print(f"  ADD median {cni['add_median_ms']:.1f} ms, p99 {cni['add_p99_ms']:.1f} ms")
print(f"  DEL median {cni['del_median_ms']:.1f} ms, p99 {cni['del_p99_ms']:.1f} ms")
PY
