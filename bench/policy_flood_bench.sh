#!/usr/bin/env bash
# Drop rate of a UDP flood to a denied port: Membrane's policy-l3l4 vs the same
# policy written as iptables rules (one chain per pod, as iptables-based CNIs
# do), at 10, 100 and 1,000 policies, both in one run.
#
# Two labs of the same shape, up at once (lab/README.md): a sender pod on
# node1 and a target pod on node2, VXLAN between the nodes.
#   - membrane: `membrane-lab up` with modules = ["policy-l3l4"]; N Kubernetes
#     NetworkPolicies, policy i selecting the target (app=target) and
#     allowing UDP port 20000+i from the sender (app=sender): N datapath rules,
#     none for the flood's port. The flood dies in node2's ingress policy
#     stage, counted by the datapath's MBR_STAT_DROP_POLICY (index 15).
#   - iptables: `membrane-lab up --baseline` (flannel-like plain kernel VXLAN)
#     with, in node2's namespace only, FORWARD -d target -j MBR-POD-target and
#     that pod's chain: conntrack ESTABLISHED,RELATED accept (policies are
#     stateful on both sides), N rules `-s sender/32 -p udp --dport 20000+i
#     -j ACCEPT`, then DROP (the pod is isolated). The DROP rule's packet
#     counter counts the flood. `iptables` is Debian's (nf_tables backend);
#     IPTABLES=iptables-legacy measures the legacy one.
# Before each measurement a UDP exchange on port 20000+N (the last rule)
# must pass on both sides: the N rules are in force and equal.
#
# The flood: trafgen (Debian's netsniff-ng; TX_RING, qdisc bypassed) on the
# sender pod's eth0, 60-byte frames (Ethernet + IPv4 + UDP, 18 bytes of
# payload) from the pod's own MAC and address, source port rotating, to the
# target's address, UDP port 9 (allowed by no policy), bounded by time
# (timeout SECONDS) and count. POLICY_FLOOD_CPUS trafgen processes (default 1).
# On one machine a veth hands each frame on in the sender's own softirq, so
# one trafgen CPU carries the frame all the way: pod -> node1 -> VXLAN ->
# node2 -> drop. trafgen's own share of that is small and the same on both
# sides; the sides differ in the path's datapath (BPF vs kernel routing and
# iptables).
#
# The generator's own ceiling comes first (row "trafgen"): the same trafgen
# into a veth pair made in the sender pod, whose peer throws each frame away
# on arrival (addressed to another MAC).
# Per N and side: packets sent per second (sender eth0's tx_packets), packets
# dropped per second at node2 (the counter above), the share of sent packets
# that counter saw, the busy CPU of the whole machine during the flood
# (/proc/stat: user + nice + system + irq + softirq + steal over all cores,
# in cores), busy CPU nanoseconds per dropped packet, and the busy cores of
# the quiet second before the flood (what else the machine was doing: a
# note follows the table when that was more than 0.1); then the ratios
# Membrane / iptables. Medians over ROUNDS; within a round the sides take
# turns, the first rotating from round to round.
#
# Nothing leaves the lab: the frames go to the target pod's address from
# inside the sender pod's namespace; the iptables rules live in the baseline's
# node2 namespace and go with it; trafgen leaves the host's socket memory
# sysctls and IRQ affinities alone (--no-sock-mem --notouch-irq). The labs
# are taken down at exit, also on failure (lab/lab_test_lib.sh).
#
# Usage (as root): bench/policy_flood_bench.sh [SECONDS] [ROUNDS]   (defaults 5 1; a build in ./build)
# Env: MEMBRANE_BUILD_DIR, MEMBRANE_SOURCE_DIR, POLICY_FLOOD_CPUS (1), IPTABLES (iptables).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export MEMBRANE_SOURCE_DIR=${MEMBRANE_SOURCE_DIR:-$(dirname "$here")}
export MEMBRANE_BUILD_DIR=${MEMBRANE_BUILD_DIR:-$MEMBRANE_SOURCE_DIR/build}
seconds=${1:-5}
rounds=${2:-1}
cpus=${POLICY_FLOOD_CPUS:-1}
iptables=${IPTABLES:-iptables}
levels=(10 100 1000)
flood_port=9
first_port=20000  # policy i allows UDP first_port + i
[[ "$seconds" =~ ^[0-9]+$ && "$seconds" -ge 1 && "$seconds" -le 600 ]] ||
    { echo "policy_flood_bench: SECONDS is 1..600, not '$seconds'" >&2; exit 2; }
[[ "$rounds" =~ ^[0-9]+$ && "$rounds" -ge 1 && "$rounds" -le 20 ]] ||
    { echo "policy_flood_bench: ROUNDS is 1..20, not '$rounds'" >&2; exit 2; }
[[ "$cpus" =~ ^[0-9]+$ && "$cpus" -ge 1 && "$cpus" -le "$(nproc)" ]] ||
    { echo "policy_flood_bench: POLICY_FLOOD_CPUS is 1..$(nproc), not '$cpus'" >&2; exit 2; }

source "$MEMBRANE_SOURCE_DIR/lab/lab_test_lib.sh"
labtest_init
command -v bpftool >/dev/null || labtest_skip "bpftool is not installed"
command -v trafgen >/dev/null || labtest_skip "trafgen is not installed (apt-get install netsniff-ng)"
{ command -v "$iptables" && command -v "$iptables-restore"; } >/dev/null ||
    labtest_skip "$iptables and $iptables-restore are not installed (apt-get install iptables)"
[[ -e "$MEMBRANE_BUILD_DIR/modules/policy-l3l4/policy-l3l4.so" ]] || labtest_skip "the build lacks modules/policy-l3l4/policy-l3l4.so"
started=$SECONDS
hz=$(getconf CLK_TCK)
results="$LABTEST_TMP/results.txt"
: >"$results"

# --- the two labs ---------------------------------------------------------------------------------
declare -A labs
labs[membrane]=$(labtest_name pfm)
labs[iptables]=$(labtest_name pfi)
LABTEST_TOPOLOGY_EXTRA='modules = ["policy-l3l4"]' \
    labtest_topology "${labs[membrane]}" vxlan sender:node1 target:node2 >"$LABTEST_TMP/membrane.toml"
labtest_topology "${labs[iptables]}" vxlan sender:node1 target:node2 >"$LABTEST_TMP/iptables.toml"
labtest_up "$LABTEST_TMP/membrane.toml" --log-level warn >/dev/null
labtest_up "$LABTEST_TMP/iptables.toml" --baseline >/dev/null

# Each target answers UDP on the port of each level's last policy (the check before a measurement).
for side in membrane iptables; do
    lab=${labs[$side]}
    for n in "${levels[@]}"; do
        lab_cmd exec "$lab" target -- timeout 1800 socat -T 2 UDP4-RECVFROM:$((first_port + n)),fork \
            SYSTEM:"read line; echo pong \$line" </dev/null >/dev/null 2>&1 &
    done
    for n in "${levels[@]}"; do labtest_wait_listen "$lab" target $((first_port + n)) udp; done
    labtest_expect_ping "$lab" sender target 2>/dev/null
done

# --- the flood ------------------------------------------------------------------------------------
# trafgen's packet, per lab: from the sender's MAC and address to its gateway's MAC (learnt by the
# ping above) and the target's address.
write_packet() {  # LAB FILE
    local lab=$1 ns="ml-$1-sender" src dst gateway mac gateway_mac
    src=$(labtest_addr "$lab" sender)
    dst=$(labtest_addr "$lab" target)
    mac=$(ip netns exec "$ns" cat /sys/class/net/eth0/address)
    gateway=$(ip -n "$ns" -j route get "$dst" | python3 -c 'import json,sys; r=json.load(sys.stdin)[0]; print(r.get("gateway", r["dst"]))')
    gateway_mac=$(ip -n "$ns" -j neigh show to "$gateway" dev eth0 | python3 -c 'import json,sys; print(next((n["lladdr"] for n in json.load(sys.stdin) if "lladdr" in n), ""))')
    [[ -n "$gateway_mac" ]] || labtest_fail "sender of lab $lab has no neighbour entry for its gateway $gateway"
    cat >"$2" <<EOF
{
  eth(da=$gateway_mac, sa=$mac),
  ipv4(sa=$src, da=$dst, ttl=64, df),
  udp(sp=dinc(10000, 60000), dp=$flood_port),
  fill(0x00, 18)
}
EOF
}
for side in membrane iptables; do write_packet "${labs[$side]}" "$LABTEST_TMP/$side.trafgen"; done

# Runs in the sender pod's namespace: one bounded trafgen run with the machine's busy CPU time
# (clock ticks) and eth0's sent packets taken just around it, no lab command in between.
cat >"$LABTEST_TMP/window.sh" <<'EOF'
set -euo pipefail
conf=$1 seconds=$2 cpus=${3:-1} out=${4:-} dev=${5:-eth0}
busy() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
sent() { cat "/sys/class/net/$dev/statistics/tx_packets"; }
if [[ $conf == - ]]; then  # no flood: busy ticks per second of SECONDS of quiet
    t0=$(date +%s%N) c0=$(busy)
    sleep "$seconds"
    t1=$(date +%s%N) c1=$(busy)
    echo $(((c1 - c0) * 1000000000 / (t1 - t0)))
    exit 0
fi
t0=$(date +%s%N) c0=$(busy) s0=$(sent)
rc=0
timeout -s INT -k 5 "$seconds" trafgen --dev "$dev" --conf "$conf" --cpus "$cpus" --num $((seconds * 20000000)) \
    --no-sock-mem --notouch-irq --no-cpu-stats >"$out" 2>&1 || rc=$?
t1=$(date +%s%N) c1=$(busy) s1=$(sent)
[[ $rc == 0 || $rc == 124 ]] || { echo "trafgen exited with $rc" >>"$out"; exit 1; }
echo $((s1 - s0)) $((c1 - c0)) $((t1 - t0))
EOF

# The generator alone: trafgen into a veth pair of the membrane lab's sender pod (gone with the
# pod); the peer throws each frame away as soon as it has it (addressed to another host's MAC),
# so the rate is about trafgen's own ceiling, one veth hop included.
generator_alone() {
    local ns="ml-${labs[membrane]}-sender" sent busy wall
    ip -n "$ns" link add gen0 type veth peer name gen1 || labtest_fail "no veth pair in $ns"
    { ip -n "$ns" link set gen1 up && ip -n "$ns" link set gen0 up; } || labtest_fail "veth pair in $ns not up"
    read -r sent busy wall < <(ip netns exec "$ns" bash "$LABTEST_TMP/window.sh" \
        "$LABTEST_TMP/membrane.trafgen" "$seconds" "$cpus" "$LABTEST_TMP/trafgen.out" gen0) ||
        { cat "$LABTEST_TMP/trafgen.out" >&2; labtest_fail "trafgen into a veth pair failed"; }
    ip -n "$ns" link del gen0
    echo "0 generator 1 $sent $sent $busy $wall 0" >>"$results"
}

# The machine's busy CPU (cores) over one quiet second: what the flood's CPU figure stands on.
background() { bash "$LABTEST_TMP/window.sh" - 1; }

dropped() {  # SIDE : the flood's counter at node2 (see the header)
    local lab=${labs[$1]}
    case $1 in
        membrane) labtest_stat "$lab" node2 "$MBR_STAT_DROP_POLICY" ;;
        iptables) ip netns exec "ml-$lab-node2" "$iptables" -w 5 -L MBR-POD-target -v -x -n | awk '$3 == "DROP" { print $1 }' ;;
    esac
}

measure() {  # SIDE N ROUND : one flood; a line of $results
    local side=$1 n=$2 round=$3 lab=${labs[$1]} before after sent busy wall quiet
    quiet=$(background)
    before=$(dropped "$side")
    read -r sent busy wall < <(ip netns exec "ml-$lab-sender" bash "$LABTEST_TMP/window.sh" \
        "$LABTEST_TMP/$side.trafgen" "$seconds" "$cpus" "$LABTEST_TMP/trafgen.out") ||
        { cat "$LABTEST_TMP/trafgen.out" >&2; labtest_fail "trafgen in lab $lab failed"; }
    [[ -n "${wall:-}" ]] || { cat "$LABTEST_TMP/trafgen.out" >&2; labtest_fail "trafgen in lab $lab failed"; }
    sleep 0.2
    after=$(dropped "$side")
    ((sent > 0)) || { cat "$LABTEST_TMP/trafgen.out" >&2; labtest_fail "trafgen sent nothing in lab $lab"; }
    ((after > before)) || labtest_fail "$side: node2 dropped none of the $sent packets sent ($n policies)"
    echo "$n $side $round $sent $((after - before)) $busy $wall $quiet" >>"$results"
    echo "[bench] $n policies, round $round, $side: sent $sent, dropped $((after - before)) in $((wall / 1000000)) ms," \
        "busy $busy ticks (quiet second before: $quiet ticks/s)" >&2
}

# --- the policies ---------------------------------------------------------------------------------
# Membrane: policies FROM..TO as NetworkPolicies, applied in batches of 100 (an apply is one
# cluster store transaction; etcd takes at most 128 operations in one).
apply_membrane() {  # FROM TO
    local lab=${labs[membrane]} i start end file="$LABTEST_TMP/policies.yaml"
    for ((start = $1; start <= $2; start += 100)); do
        end=$((start + 99 < $2 ? start + 99 : $2))
        : >"$file"
        for ((i = start; i <= end; i++)); do
            cat >>"$file" <<EOF
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: flood-allow-$i
spec:
  podSelector:
    matchLabels:
      app: target
  policyTypes:
  - Ingress
  ingress:
  - from:
    - podSelector:
        matchLabels:
          app: sender
    ports:
    - protocol: UDP
      port: $((first_port + i))
EOF
        done
        lab_cmd ctl "$lab" node1 -- apply -f "$file" >/dev/null || labtest_fail "membranectl apply of policies $start..$end failed"
    done
    # Until node2's policy-l3l4 holds them all: N policies, N datapath rules (60 s at most).
    local deadline=$((SECONDS + 60)) state=""
    until [[ "$state" == "$2 $2" ]]; do
        ((SECONDS < deadline)) || labtest_fail "node2's policy-l3l4 never held $2 policies and rules (it says: $state)"
        sleep 0.2
        state=$(lab_cmd ctl "$lab" node2 -- -o json module call policy-l3l4 Status |
            python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["policies"], s["datapath_rules"])') || state=""
    done
}

# iptables: node2's filter table replaced as a whole, in node2's namespace only.
apply_iptables() {  # N
    local lab=${labs[iptables]} ns="ml-${labs[iptables]}-node2" i sender target
    sender=$(labtest_addr "$lab" sender)
    target=$(labtest_addr "$lab" target)
    {
        printf '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:MBR-POD-target - [0:0]\n'
        printf -- '-A FORWARD -d %s/32 -j MBR-POD-target\n' "$target"
        printf -- '-A MBR-POD-target -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n'
        for ((i = 1; i <= $1; i++)); do
            printf -- '-A MBR-POD-target -s %s/32 -p udp -m udp --dport %d -j ACCEPT\n' "$sender" $((first_port + i))
        done
        printf -- '-A MBR-POD-target -j DROP\nCOMMIT\n'
    } >"$LABTEST_TMP/rules.txt"
    ip netns list | grep_quiet "^$ns\b" || labtest_fail "no namespace $ns"
    ip netns exec "$ns" "$iptables-restore" -w 5 <"$LABTEST_TMP/rules.txt" || labtest_fail "$iptables-restore in $ns failed"
    local held
    held=$(ip netns exec "$ns" "$iptables" -w 5 -S MBR-POD-target | grep -c -- '--dport') || true
    ((held == $1)) || labtest_fail "$ns holds $held policy rules, not $1"
}

# The last policy's port passes on both sides: the rules are in force, not just written.
expect_allowed() {  # SIDE N
    local lab=${labs[$1]} port=$((first_port + $2)) reply
    for _ in 1 2 3; do
        reply=$(labtest_udp_exchange "$lab" sender "$(labtest_addr "$lab" target)" "$port" "allowed-$2" 2>&1) || true
        [[ "$reply" == "pong allowed-$2" ]] && return 0
    done
    labtest_fail "$1: UDP sender -> target:$port, allowed by policy $2, got '$reply'"
}

# --- the run --------------------------------------------------------------------------------------
generator_alone
sides=(membrane iptables)
previous=0
for n in "${levels[@]}"; do
    apply_membrane $((previous + 1)) "$n"
    apply_iptables "$n"
    previous=$n
    for side in "${sides[@]}"; do expect_allowed "$side" "$n"; done
    for ((round = 1; round <= rounds; round++)); do
        order=("${sides[@]}")
        ((round % 2 == 1)) || order=("${sides[1]}" "${sides[0]}")
        for side in "${order[@]}"; do measure "$side" "$n" "$round"; done
    done
done

python3 - "$results" "$seconds" "$rounds" "$cpus" "$hz" "$("$iptables" -V)" "$(nproc)" <<'PY'
import statistics, sys
from collections import defaultdict
path, seconds, rounds, cpus, hz, iptables, cores = sys.argv[1:]
hz = int(hz)
runs = defaultdict(list)  # (n, side) -> [(sent/s, dropped/s, dropped share, cores busy, ns per drop)]
for line in open(path):
    n, side, _round, sent, dropped, busy, wall, quiet = line.split()
    wall_s, busy_s = int(wall) / 1e9, int(busy) / hz
    runs[(int(n), side)].append((int(sent) / wall_s, int(dropped) / wall_s, int(dropped) / int(sent),
                                 busy_s / wall_s, busy_s * 1e9 / int(dropped), int(quiet) / hz))
def med(n, side, i):
    return statistics.median(r[i] for r in runs[(n, side)])
print(f"\nUDP flood to a denied port, sender pod (node1) -> target pod (node2), VXLAN; trafgen on {cpus} CPU(s), "
      f"60-byte frames; {rounds} round(s) of {seconds} s, medians; CPU: all {cores} cores of the machine")
print(f"membrane = policy-l3l4 (N NetworkPolicies); iptables = plain-kernel lab, one chain per pod, "
      f"N rules ({iptables})")
print(f"{'policies':>8} {'datapath':9} {'sent/s':>11} {'dropped/s':>11} {'dropped':>8} {'CPU cores':>9} "
      f"{'CPU ns/drop':>12} {'quiet cores':>11}")
print(f"{'-':>8} {'trafgen':9} {med(0, 'generator', 0):>11.0f} {'-':>11} {'-':>8} {med(0, 'generator', 3):>9.2f} "
      f"{med(0, 'generator', 4):>12.0f} {'-':>11}   (ns per packet sent)")
for n in sorted({n for n, _ in runs if n}):
    for side in ("membrane", "iptables"):
        print(f"{n:>8} {side:9} {med(n, side, 0):>11.0f} {med(n, side, 1):>11.0f} {med(n, side, 2):>8.1%} "
              f"{med(n, side, 3):>9.2f} {med(n, side, 4):>12.0f} {med(n, side, 5):>11.2f}")
    print(f"{'':>8} ratio membrane / iptables: dropped/s {med(n, 'membrane', 1) / med(n, 'iptables', 1):.2f} "
          f"(higher is better), CPU ns per drop {med(n, 'membrane', 4) / med(n, 'iptables', 4):.2f} (lower is better)")
quiet = max(r[5] for key, rs in runs.items() if key[0] for r in rs)
if quiet > 0.1:
    print(f"note: up to {quiet:.2f} cores were busy in the quiet second before a flood: something else ran, "
          f"and the CPU figures carry it")
PY
echo "wall time $((SECONDS - started)) s"
