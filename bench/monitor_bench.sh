#!/usr/bin/env bash
# What the flow monitor's events cost the datapath, with events off as the
# baseline in the same run (issue: "the cost of events on the datapath").
#
# One VXLAN lab with policy-l3l4: client c (node1) and server s (node2),
# which admits c on TCP 7100 (so a connection gets a verdict event); flood
# sender f (node1) and target t (node2), which admits nothing on UDP 9.
# Three settings of the pinned sampling map (mbr_event_sampling_v1, written
# with bpftool on both nodes, as [monitor] *_sampling would at start):
#   off    drop 0, verdict 0, trace 0: no event is reported
#   on     drop 1, verdict 1, trace 0: the defaults
#   trace  drop 1, verdict 1, trace 1: every forwarded packet reported too
# Per setting:
#   - TCP_RR: bench/pod_rr.c c -> s, one connection, 1-byte ping-pong;
#   - a drop flood: trafgen (Debian's netsniff-ng) from f's eth0, 60-byte UDP
#     frames to t's port 9, each denied by t's ingress policy on node2:
#     packets dropped per second (node2's drop_policy counter), and the
#     events node2's agent read (D-Bus GetFlows' cursor) and lost (the ring
#     buffer full) per second: how many events per second the agent reads
#     and names on this machine before the datapath has to drop events.
# Settings take turns within a round, the first rotating; medians over the
# rounds, then the ratios on/off and trace/off (higher is better for rates).
# Nothing leaves the lab; every run is bounded by time and count; the lab
# is taken down at exit, also on failure.
#
# The agents run with the default [monitor] rate_limit (1,000 events per
# second per CPU) unless MONITOR_BENCH_RATE_LIMIT sets another (0: none),
# written into the pinned mbr_event_limit_v1 as the agent would.
#
# Usage (as root): bench/monitor_bench.sh [SECONDS] [ROUNDS]   (defaults 5 3; a build in ./build)
# Env: MEMBRANE_BUILD_DIR, MEMBRANE_SOURCE_DIR, MONITOR_BENCH_RATE_LIMIT.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export MEMBRANE_SOURCE_DIR=${MEMBRANE_SOURCE_DIR:-$(dirname "$here")}
export MEMBRANE_BUILD_DIR=${MEMBRANE_BUILD_DIR:-$MEMBRANE_SOURCE_DIR/build}
seconds=${1:-5}
rounds=${2:-3}
[[ "$seconds" =~ ^[0-9]+$ && "$seconds" -ge 1 && "$seconds" -le 120 ]] ||
    { echo "monitor_bench: SECONDS is 1..120, not '$seconds'" >&2; exit 2; }
[[ "$rounds" =~ ^[0-9]+$ && "$rounds" -ge 1 && "$rounds" -le 20 ]] ||
    { echo "monitor_bench: ROUNDS is 1..20, not '$rounds'" >&2; exit 2; }

source "$MEMBRANE_SOURCE_DIR/lab/lab_test_lib.sh"
labtest_init
for tool in bpftool trafgen busctl cc; do
    command -v "$tool" >/dev/null || labtest_skip "$tool is not installed (scripts/install-deps.sh)"
done
cc -O2 -Wall -Wextra -Werror -o "$LABTEST_TMP/pod_rr" "$here/pod_rr.c"
rr="$LABTEST_TMP/pod_rr"
results="$LABTEST_TMP/results.txt"
: >"$results"

lab=$(labtest_name mb)
LABTEST_TOPOLOGY_EXTRA='modules = ["policy-l3l4"]' \
    labtest_topology "$lab" vxlan c:node1 s:node2 f:node1 t:node2 >"$LABTEST_TMP/$lab.toml"
labtest_up "$LABTEST_TMP/$lab.toml" --log-level warn >/dev/null
cat >"$LABTEST_TMP/policies.yaml" <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: s-from-c
  namespace: default
spec:
  podSelector:
    matchLabels:
      app: s
  ingress:
  - from:
    - podSelector:
        matchLabels:
          app: c
    ports:
    - port: 7100
      protocol: TCP
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: t-isolated
  namespace: default
spec:
  podSelector:
    matchLabels:
      app: t
  policyTypes: [Ingress]
EOF
labtest_apply_policy "$lab" "$LABTEST_TMP/policies.yaml"
lab_cmd exec "$lab" s -- timeout 1800 "$rr" server 7100 1800 </dev/null >/dev/null 2>&1 &
labtest_wait_listen "$lab" s 7100
if lab_cmd exec "$lab" f -- ping -c 1 -W 1 "$(labtest_addr "$lab" t)" >/dev/null 2>&1; then
    labtest_fail "t answers a ping: its policy is not in force"
fi
lab_cmd exec "$lab" f -- ping -c 1 -W 1 "$(labtest_addr "$lab" c)" >/dev/null || labtest_fail "f has no neighbour for its gateway"

# trafgen's frame: from f's MAC and address to its gateway's MAC and t's address, UDP port 9.
ns_f="ml-$lab-f"
gateway=$(ip -n "$ns_f" -j route get "$(labtest_addr "$lab" t)" | python3 -c 'import json,sys; r=json.load(sys.stdin)[0]; print(r.get("gateway", r["dst"]))')
gateway_mac=$(ip -n "$ns_f" -j neigh show to "$gateway" dev eth0 | python3 -c 'import json,sys; print(next((n["lladdr"] for n in json.load(sys.stdin) if "lladdr" in n), ""))')
[[ -n "$gateway_mac" ]] || labtest_fail "f has no neighbour entry for its gateway $gateway"
cat >"$LABTEST_TMP/flood.trafgen" <<EOF
{
  eth(da=$gateway_mac, sa=$(ip netns exec "$ns_f" cat /sys/class/net/eth0/address)),
  ipv4(sa=$(labtest_addr "$lab" f), da=$(labtest_addr "$lab" t), ttl=64, df),
  udp(sp=dinc(10000, 60000), dp=9),
  fill(0x00, 18)
}
EOF

# set_sampling DROP VERDICT TRACE : the pinned sampling map of both nodes.
set_sampling() {
    local node type value values=("$@")
    for node in node1 node2; do
        for type in 0 1 2; do
            value=${values[$type]}
            bpftool map update pinned "$(labtest_pins "$lab" "$node")/mbr_event_sampling_v1" \
                key "$type" 0 0 0 value "$value" 0 0 0 || labtest_fail "cannot set $node's sampling"
        done
    done
}

if [[ -n "${MONITOR_BENCH_RATE_LIMIT:-}" ]]; then
    [[ "$MONITOR_BENCH_RATE_LIMIT" =~ ^[0-9]+$ && "$MONITOR_BENCH_RATE_LIMIT" -le 10000000 ]] ||
        labtest_fail "MONITOR_BENCH_RATE_LIMIT is 0..10000000, not '$MONITOR_BENCH_RATE_LIMIT'"
    limit=$(python3 -c 'import sys; v = int(sys.argv[1]).to_bytes(4, "little"); print(" ".join(str(b) for b in v + v))' \
        "$MONITOR_BENCH_RATE_LIMIT")
    for node in node1 node2; do
        # shellcheck disable=SC2086  # eight bytes: events_per_second and burst
        bpftool map update pinned "$(labtest_pins "$lab" "$node")/mbr_event_limit_v1" key 0 0 0 0 value $limit ||
            labtest_fail "cannot set $node's event rate limit"
    done
fi
rate_limit=${MONITOR_BENCH_RATE_LIMIT:-1000}

bus2=$(labtest_json "$lab" "next(n['bus'] for n in s['nodes'] if n['name'] == 'node2')")
# node2's agent: "<events read so far> <events lost so far>" (GetFlows' cursor and lost count).
agent_events() {
    busctl --address="$bus2" call org.membrane.Agent1 /org/membrane/Agent1 org.membrane.Agent1 GetFlows tu \
        18446744073709551615 1 | awk '{ print $2, $3 }'
}

rr_rate() {
    lab_cmd exec "$lab" c -- timeout $((seconds + 10)) "$rr" client "$(labtest_addr "$lab" s)" 7100 "$seconds"
}

flood() {  # prints "dropped_per_s read_per_s lost_per_s"
    local before after read0 lost0 read1 lost1 t0 t1 rc=0
    before=$(labtest_stat "$lab" node2 "$MBR_STAT_DROP_POLICY")
    read -r read0 lost0 < <(agent_events)
    t0=$(date +%s%N)
    timeout -s INT -k 5 "$seconds" ip netns exec "$ns_f" trafgen --dev eth0 --conf "$LABTEST_TMP/flood.trafgen" \
        --cpus 1 --num $((seconds * 20000000)) --no-sock-mem --notouch-irq --no-cpu-stats \
        >"$LABTEST_TMP/trafgen.out" 2>&1 || rc=$?
    t1=$(date +%s%N)
    [[ $rc == 0 || $rc == 124 ]] || { cat "$LABTEST_TMP/trafgen.out" >&2; labtest_fail "trafgen exited with $rc"; }
    sleep 1  # the agent reads what is left in the buffer
    after=$(labtest_stat "$lab" node2 "$MBR_STAT_DROP_POLICY")
    read -r read1 lost1 < <(agent_events)
    python3 -c 'import sys; d, r, l, ns = map(int, sys.argv[1:]); print(f"{d * 1e9 / ns:.0f} {r * 1e9 / ns:.0f} {l * 1e9 / ns:.0f}")' \
        $((after - before)) $((read1 - read0)) $((lost1 - lost0)) $((t1 - t0))
}

declare -A sampling=([off]="0 0 0" [on]="1 1 0" [trace]="1 1 1")
settings=(off on trace)
for ((round = 1; round <= rounds; round++)); do
    for ((i = 0; i < 3; i++)); do
        setting=${settings[$(((i + round - 1) % 3))]}
        # shellcheck disable=SC2086  # three numbers
        set_sampling ${sampling[$setting]}
        rate=$(rr_rate)
        read -r dropped read lost < <(flood)
        echo "$setting $round $rate $dropped $read $lost" >>"$results"
        echo "[bench] round $round, events $setting: TCP_RR $rate/s; flood dropped $dropped/s, agent read $read/s, lost $lost/s" >&2
    done
done
set_sampling 1 1 0

python3 - "$results" "$seconds" "$rounds" "$rate_limit" <<'EOF'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
med = {}
for setting in ("off", "on", "trace"):
    got = [list(map(float, r[2:])) for r in rows if r[0] == setting]
    med[setting] = [statistics.median(col) for col in zip(*got)]
print(f"\nFlow monitor cost, {sys.argv[2]} s per run, median of {sys.argv[3]} rounds (VXLAN lab, 2 nodes, policy-l3l4, "
      f"rate_limit {sys.argv[4]} events/s per CPU)")
print(f"{'events':<8}{'TCP_RR /s':>12}{'flood drops /s':>16}{'agent read /s':>15}{'lost /s':>12}")
for setting in ("off", "on", "trace"):
    rr, dropped, read, lost = med[setting]
    print(f"{setting:<8}{rr:>12.0f}{dropped:>16.0f}{read:>15.0f}{lost:>12.0f}")
for setting in ("on", "trace"):
    rr, dropped = med[setting][0] / med["off"][0], med[setting][1] / med["off"][1]
    print(f"ratio {setting}/off: TCP_RR {rr:.3f}, flood drops {dropped:.3f}")
EOF
