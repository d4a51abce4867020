#!/usr/bin/env bash
# NodePort benchmark: a client outside the cluster (the lab's outside host,
# `membrane-lab exec LAB ext`, on the lab's switch) to a NodePort on node1,
# to a backend pod on node1 (local) or on node2 (remote, over the VXLAN
# overlay), two labs of the same shape up at once and measured in turn:
#   - membrane   Membrane (routing-vxlan, service-lb): the packet stage
#                DNATs on node1's device, SNATs to node1's address for the
#                remote backend only, and translates the replies back in BPF
#                (node1's kernel forwards none of it);
#   - iptables   the plain-kernel flannel-like lab (`membrane-lab up
#                --baseline`: pod bridge, routes into a VXLAN device, no
#                Membrane program) with kube-proxy's iptables rules for the
#                same two services in node1, loaded with iptables-restore:
#                KUBE-SERVICES -> KUBE-NODEPORTS -> KUBE-EXT-* (which marks
#                every connection for MASQUERADE, as kube-proxy does with
#                externalTrafficPolicy Cluster, local backend included) ->
#                KUBE-SVC-* -> KUBE-SEP-* DNAT, KUBE-POSTROUTING MASQUERADE.
# Tests: TCP request/response (bench/pod_rr.c, 1-byte ping-pong on one
# connection, like netperf TCP_RR: transactions/s and the mean round trip)
# and TCP throughput (iperf3, one stream, client to backend), each for the
# local and the remote backend. The labs take turns on every test; who goes
# first rotates from round to round. Prints medians, the ratios Membrane /
# iptables and the range of the per-round ratios. Before measuring, each
# NodePort is checked to answer in each lab; after, the path is shown to be
# the one claimed: Membrane's packet stage counters and the iptables rules'
# packet counters rose.
# Bounded: every command under a timeout, about 3 minutes with the defaults;
# both labs are taken down on exit (trap).
#
# Usage (as root): bench/nodeport_bench.sh [--seconds N] [--rounds N]
# Env: MEMBRANE_BUILD_DIR (default ./build), MEMBRANE_SOURCE_DIR.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export MEMBRANE_SOURCE_DIR=${MEMBRANE_SOURCE_DIR:-$(dirname "$here")}
export MEMBRANE_BUILD_DIR=${MEMBRANE_BUILD_DIR:-$MEMBRANE_SOURCE_DIR/build}

seconds=5 rounds=3
while (($#)); do
    case $1 in
        --seconds) seconds=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        -h | --help) sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "nodeport_bench: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
if ! [[ $seconds =~ ^[0-9]+$ ]] || ((seconds < 1 || seconds > 60)); then
    echo "nodeport_bench: --seconds is within 1..60, not '$seconds'" >&2; exit 2
fi
if ! [[ $rounds =~ ^[0-9]+$ ]] || ((rounds < 1 || rounds > 10)); then
    echo "nodeport_bench: --rounds is within 1..10, not '$rounds'" >&2; exit 2
fi

source "$MEMBRANE_SOURCE_DIR/lab/lab_test_lib.sh"
labtest_init
for tool in cc iperf3 iptables-restore; do command -v "$tool" >/dev/null || labtest_skip "'$tool' is not installed"; done
cc -O2 -Wall -Wextra -Werror -o "$LABTEST_TMP/pod_rr" "$here/pod_rr.c"
rr="$LABTEST_TMP/pod_rr"
results="$LABTEST_TMP/results.txt"
: >"$results"

# NodePorts: local backend s (node1): 30100 -> 7100 (pod_rr), 30110 -> 5201 (iperf3);
# remote backend x (node2): 30101 -> 7100, 30111 -> 5201.
declare -A rr_port=([local]=30100 [remote]=30101) tcp_port=([local]=30110 [remote]=30111)
declare -A labs
for kind in membrane iptables; do
    lab=$(labtest_name "np${kind:0:1}")
    labs[$kind]=$lab
    {
        printf 'name = "%s"\nrouting = "vxlan"\n' "$lab"
        [[ $kind != membrane ]] || printf 'modules = ["service-lb"]\n'
        printf '\n[[nodes]]\nname = "node1"\n\n[[nodes]]\nname = "node2"\n'
        printf '\n[[pods]]\nname = "%s"\nnode = "%s"\nlabels = { app = "%s" }\n' s node1 s x node2 x
    } >"$LABTEST_TMP/$lab.toml"
    if [[ $kind == membrane ]]; then
        labtest_up "$LABTEST_TMP/$lab.toml" --log-level warn >/dev/null
    else
        labtest_up "$LABTEST_TMP/$lab.toml" --baseline >/dev/null
    fi
    for pod in s x; do
        lab_cmd exec "$lab" "$pod" -- timeout 1800 "$rr" server 7100 1800 </dev/null >/dev/null 2>&1 &
        lab_cmd exec "$lab" "$pod" -- timeout 1800 iperf3 -s -p 5201 </dev/null >/dev/null 2>&1 &
        labtest_wait_listen "$lab" "$pod" 7100 tcp
        labtest_wait_listen "$lab" "$pod" 5201 tcp
    done
done
node1_ip() { labtest_json "$1" "next(n['ip'] for n in s['nodes'] if n['name'] == 'node1')"; }

# The Membrane lab's services: one per backend, NodePorts for both servers.
membrane=${labs[membrane]}
for backend in s x; do
    where=$([[ $backend == s ]] && echo local || echo remote)
    node=$([[ $backend == s ]] && echo node1 || echo node2)
    cat >"$LABTEST_TMP/service-$where.yaml" <<EOF
apiVersion: v1
kind: Service
metadata: {name: $where}
spec:
  type: NodePort
  clusterIP: 10.96.0.$([[ $backend == s ]] && echo 20 || echo 21)
  ports:
  - {name: rr, port: 7100, targetPort: 7100, nodePort: ${rr_port[$where]}, protocol: TCP}
  - {name: iperf, port: 5201, targetPort: 5201, nodePort: ${tcp_port[$where]}, protocol: TCP}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: $where-1
  labels: {kubernetes.io/service-name: $where}
addressType: IPv4
ports:
- {name: rr, port: 7100, protocol: TCP}
- {name: iperf, port: 5201, protocol: TCP}
endpoints:
- {addresses: ["$(labtest_addr "$membrane" "$backend")"], conditions: {ready: true}, nodeName: $node}
EOF
    lab_cmd ctl "$membrane" node1 -- apply -f "$LABTEST_TMP/service-$where.yaml" >/dev/null
done

# The iptables lab: kube-proxy's nat and filter rules for the same two services in node1's namespace.
baseline=${labs[iptables]}
python3 "$here/service_rules.py" nodeport-iptables "$(labtest_addr "$baseline" s)" "$(labtest_addr "$baseline" x)" \
    >"$LABTEST_TMP/rules"
timeout 60 ip netns exec "ml-$baseline-node1" iptables-restore --noflush "$LABTEST_TMP/rules" ||
    labtest_fail "iptables-restore of kube-proxy's NodePort rules into $baseline's node1 failed"

measure_rr() {  # KIND WHERE SECONDS -> transactions/s
    lab_cmd exec "${labs[$1]}" ext -- timeout $(($3 + 10)) "$rr" client "$(node1_ip "${labs[$1]}")" "${rr_port[$2]}" "$3"
}
measure_tcp() {  # KIND WHERE SECONDS -> Gbit/s (receiver)
    lab_cmd exec "${labs[$1]}" ext -- timeout $(($3 + 15)) iperf3 -c "$(node1_ip "${labs[$1]}")" -p "${tcp_port[$2]}" \
        -t "$3" -J | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9, 3))'
}
# Every NodePort answers in both labs before anything is measured (the Membrane lab's services
# may take a moment to reach its maps).
for kind in membrane iptables; do
    for where in local remote; do
        deadline=$((SECONDS + 30))
        until value=$(measure_rr "$kind" "$where" 1 2>/dev/null) && [[ ${value%%.*} -gt 0 ]]; do
            ((SECONDS < deadline)) || labtest_fail "$kind: the $where NodePort ${rr_port[$where]} never answered"
            sleep 0.5
        done
    done
done
stage_counters() { lab_cmd ctl "$membrane" node1 -- -o json module call service-lb Status | python3 -c 'import json,sys; p=json.load(sys.stdin)["packets"]; print(p["translated"], p["snat"], p["replied"])'; }
read -r translated_before _ _ <<<"$(stage_counters)"

for ((round = 1; round <= rounds; round++)); do
    order=(membrane iptables)
    ((round % 2)) || order=(iptables membrane)
    for test in rr/local rr/remote tcp/local tcp/remote; do
        for kind in "${order[@]}"; do
            value=$(measure_"${test%/*}" "$kind" "${test#*/}" "$seconds") || labtest_fail "$kind $test measurement failed"
            echo "$round $kind $test $value" >>"$results"
            echo "[bench] round $round: $kind $test: $value" >&2
        done
    done
done

read -r translated snat replied <<<"$(stage_counters)"
((translated > translated_before)) || labtest_fail "Membrane's packet stage translated nothing: not the path measured"
nodeports=$(ip netns exec "ml-$baseline-node1" iptables -t nat -L KUBE-NODEPORTS -v -x -n | awk 'NR > 2 { n += $1 } END { print n + 0 }')
((nodeports > 0)) || labtest_fail "kube-proxy's KUBE-NODEPORTS rules matched nothing: not the path measured"
echo "[bench] paths: Membrane node1's packet stage $translated packets translated ($snat SNATed, $replied replies back);" \
    "iptables node1's KUBE-NODEPORTS matched $nodeports new connections" >&2

python3 - "$results" "$seconds" "$rounds" <<'PY'
import statistics, sys
from collections import defaultdict
samples = defaultdict(dict)  # (kind, test) -> {round: value}
for line in open(sys.argv[1]):
    round_, kind, test, value = line.split()
    samples[(kind, test)][int(round_)] = float(value)
print(f"\nNodePort from outside the cluster to node1: Membrane's packet stage vs kube-proxy's iptables rules "
      f"on plain kernel routing (flannel-like VXLAN lab); {sys.argv[3]} round(s) of {sys.argv[2]} s, medians; "
      f"ratio = Membrane / iptables, [lowest-highest] of the per-round ratios")
print(f"{'backend':8} {'test':10} {'unit':8} {'membrane':>9} {'iptables':>9} {'ratio':>6} {'spread':>11}")
for test, what, unit in (("rr/local", "TCP_RR", "trans/s"), ("rr/remote", "TCP_RR", "trans/s"),
                         ("tcp/local", "stream", "Gbit/s"), ("tcp/remote", "stream", "Gbit/s")):
    ours, theirs = samples[("membrane", test)], samples[("iptables", test)]
    m, b = statistics.median(ours.values()), statistics.median(theirs.values())
    per_round = [ours[r] / theirs[r] for r in ours if r in theirs and theirs[r] > 0]
    fmt = "{:>9.0f}" if unit == "trans/s" else "{:>9.2f}"
    print(f"{test.split('/')[1]:8} {what:10} {unit:8} {fmt.format(m)} {fmt.format(b)} {m / b:>6.2f} "
          f"[{min(per_round):.2f}-{max(per_round):.2f}]")
    if unit == "trans/s":
        print(f"{'':8} {'RTT mean':10} {'us':8} {1e6 / m:>9.1f} {1e6 / b:>9.1f} {b / m:>6.2f}")
PY
