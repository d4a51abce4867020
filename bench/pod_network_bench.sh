#!/usr/bin/env bash
# Pod networking benchmark, every figure beside its plain-kernel baselines in
# the same run (all labs up at once, measured in turn):
#   - TCP request/response rate (bench/pod_rr.c: 1-byte ping-pong on one
#     connection, like netperf TCP_RR) and TCP throughput (iperf3, 1 stream,
#     client to server and, with -R, server to client), pod to pod across
#     nodes and on the same node;
#   - Membrane VXLAN (routing-vxlan) vs two plain-kernel VXLAN labs: flannel-
#     like (pod bridge with the gateway, routed into a VXLAN device, `membrane-
#     lab up --baseline`) and the leanest hand-wired one (pod veths and the
#     VXLAN device on one bridge, static FDB, no learning, no routing hop, the
#     pods of both nodes on one L2 segment, `up --baseline-l2`); Membrane direct
#     routing (direct-routing) vs plain routed veths (`up --baseline`);
#   - CNI ADD and DEL latency (median, p99), as a runtime calls it.
# Prints a table and the ratios Membrane / baseline (higher is better for
# rates, lower for latency), with the spread of the per-round ratios (the
# labs take turns within a round, and the order rotates from round to round).
# Bounded: about 8 minutes with the defaults; every lab is taken down.
# --routing vxlan|direct measures one mode only.
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
        -h | --help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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

# Labs of the same shape: client c on node1, server s on node1 (same node) and x on node2.
declare -A labs kinds
kinds[vxlan]="membrane baseline l2"
kinds[direct]="membrane baseline"
for routing in "${modes[@]}"; do
    for kind in ${kinds[$routing]}; do
        lab=$(labtest_name "b${routing:0:1}${kind:0:1}")
        labs[$routing/$kind]=$lab
        labtest_topology "$lab" "$routing" c:node1 s:node1 x:node2 >"$LABTEST_TMP/$lab.toml"
        case $kind in
            baseline) labtest_up "$LABTEST_TMP/$lab.toml" --baseline >/dev/null ;;
            l2) labtest_up "$LABTEST_TMP/$lab.toml" --baseline-l2 >/dev/null ;;
            *) labtest_up "$LABTEST_TMP/$lab.toml" --log-level warn >/dev/null ;;
        esac
        for pod in s x; do
            lab_cmd exec "$lab" "$pod" -- timeout 1800 "$rr" server 7100 1800 </dev/null >/dev/null 2>&1 &
            lab_cmd exec "$lab" "$pod" -- timeout 1800 iperf3 -s -p 5201 </dev/null >/dev/null 2>&1 &
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
measure_tcp() {  # LAB POD [-R] -> Gbit/s (receiver); -R: the server sends
    local addr
    addr=$(labtest_addr "$1" "$2")
    lab_cmd exec "$1" c -- timeout $((seconds + 15)) iperf3 -c "$addr" -p 5201 -t "$seconds" -J ${3:+"$3"} |
        python3 -c 'import json,sys; print(round(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9, 3))'
}
measure_rtcp() { measure_tcp "$1" "$2" -R; }

# The labs take turns on each test; who goes first rotates from round to round.
for ((round = 1; round <= rounds; round++)); do
    for routing in "${modes[@]}"; do
        read -ra order <<<"${kinds[$routing]}"
        shift_by=$(((round - 1) % ${#order[@]}))
        order=("${order[@]:shift_by}" "${order[@]:0:shift_by}")
        for test in rr/x tcp/x rtcp/x rr/s tcp/s rtcp/s; do
            for kind in "${order[@]}"; do
                value=$(measure_"${test%/*}" "${labs[$routing/$kind]}" "${test#*/}") ||
                    labtest_fail "$routing $kind ${test} measurement failed"
                echo "$round $routing $kind $test $value" >>"$results"
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
samples = defaultdict(dict)  # (routing, kind, test) -> {round: value}
for line in open(sys.argv[1]):
    round_, routing, kind, test, value = line.split()
    samples[(routing, kind, test)][int(round_)] = float(value)
cni = json.loads(sys.argv[2])
names = {"rr/x": ("across nodes", "TCP_RR", "trans/s"), "tcp/x": ("across nodes", "stream c->x", "Gbit/s"),
         "rtcp/x": ("across nodes", "stream x->c", "Gbit/s"),
         "rr/s": ("same node", "TCP_RR", "trans/s"), "tcp/s": ("same node", "stream c->s", "Gbit/s"),
         "rtcp/s": ("same node", "stream s->c", "Gbit/s")}
baselines = {"vxlan": [("baseline", "flannel-like: bridge + route + VXLAN"), ("l2", "L2: bridge + VXLAN port")],
             "direct": [("baseline", "routed veths")]}
print(f"\nPod networking: Membrane vs plain kernel, same lab topology, same run "
      f"({sys.argv[4]} round(s) of {sys.argv[3]} s; medians; ratio = Membrane / baseline, "
      f"[lowest-highest] of the per-round ratios)")
for routing in sys.argv[5:]:
    print(f"\n{routing}: " + "; ".join(f"{kind} = {what}" for kind, what in baselines[routing]))
    header = f"{'path':13} {'test':12} {'unit':8} {'membrane':>9}"
    for kind, _ in baselines[routing]:
        header += f" {kind:>9} {'ratio':>5} {'spread':>11}"
    print(header)
    for test in ("rr/x", "tcp/x", "rtcp/x", "rr/s", "tcp/s", "rtcp/s"):
        path, what, unit = names[test]
        fmt = "{:>9.0f}" if unit == "trans/s" else "{:>9.2f}"
        ours = samples[(routing, "membrane", test)]
        line = f"{path:13} {what:12} {unit:8} {fmt.format(statistics.median(ours.values()))}"
        for kind, _ in baselines[routing]:
            theirs = samples[(routing, kind, test)]
            m, b = statistics.median(ours.values()), statistics.median(theirs.values())
            per_round = [ours[r] / theirs[r] for r in ours if r in theirs and theirs[r] > 0]
            spread = f"[{min(per_round):.2f}-{max(per_round):.2f}]" if per_round else "-"
            line += f" {fmt.format(b)} {m / b:>5.2f} {spread:>11}"
        print(line)
print(f"\nCNI latency over {cni['cycles']} ADD/DEL cycles (membrane-cni exec'd as a runtime does):")
print(f"  ADD median {cni['add_median_ms']:.1f} ms, p99 {cni['add_p99_ms']:.1f} ms")
print(f"  DEL median {cni['del_median_ms']:.1f} ms, p99 {cni['del_p99_ms']:.1f} ms")
PY
