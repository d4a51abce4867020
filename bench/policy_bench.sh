#!/usr/bin/env bash
# Network policy (policy-l3l4) benchmarks, each beside its baseline in one run:
#  1. per-packet cost of the ingress policy stage, the loaded program run by
#     BPF_PROG_TEST_RUN (bpftool prog run, 2,000,000 repeats) on a TCP SYN
#     from fe1's identity to be1 with the pipeline context the entry program
#     would leave: be1 not enforced (no policy), l3-rule alone (1 datapath
#     rule), l3-rule plus a 10,000-port range policy (10,001 rules); ratio
#     10,001 rules / 1 rule;
#  2. pod-to-pod TCP request/response rate (bench/pod_rr.c) fe1 -> be1 across
#     nodes, with no policy and with l3-rule allowing it; ratio;
#  3. policy-l3l4's compile() at 1,000 policies x 500 endpoints beside 1
#     policy (policy-l3l4-compile-bench);
#  4. time from `membranectl apply` on node1 to the rule in each node's
#     pinned policy map (1 policy, and 1,000 in ten applies of 100), and the agents'
#     resident memory with no policy and with 1,000.
# Usage: bench/policy_bench.sh [SECONDS] [ROUNDS]   (as root; a build in ./build)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export MEMBRANE_SOURCE_DIR=${MEMBRANE_SOURCE_DIR:-$(dirname "$here")}
export MEMBRANE_BUILD_DIR=${MEMBRANE_BUILD_DIR:-$MEMBRANE_SOURCE_DIR/build}
source "$MEMBRANE_SOURCE_DIR/lab/lab_test_lib.sh"
labtest_init
seconds=${1:-5}
rounds=${2:-3}
repeat=2000000
command -v bpftool >/dev/null || labtest_skip "bpftool is not installed"
command -v cc >/dev/null || labtest_skip "no C compiler (cc) for bench/pod_rr.c"
cc -O2 -Wall -Wextra -Werror -o "$LABTEST_TMP/pod_rr" "$here/pod_rr.c"
rr="$LABTEST_TMP/pod_rr"

lab=$(labtest_name pb)
{
    printf 'name = "%s"\nrouting = "vxlan"\nmodules = ["policy-l3l4"]\n' "$lab"
    printf '\n[[nodes]]\nname = "node1"\n\n[[nodes]]\nname = "node2"\n'
    printf '\n[[pods]]\nname = "%s"\nnode = "%s"\nlabels = { %s }\n' fe1 node1 'class = "frontend"' be1 node2 'role = "backend"' \
        be2 node1 'role = "backend"'  # be2: so that l3-rule is enforced on both nodes (part 4)
} >"$LABTEST_TMP/$lab.toml"
labtest_up "$LABTEST_TMP/$lab.toml" --log-level warn >/dev/null
lab_cmd exec "$lab" be1 -- timeout 1800 "$rr" server 7100 1800 </dev/null >/dev/null 2>&1 &
labtest_expect_ping "$lab" fe1 be1 2>/dev/null
fe1_identity=$(labtest_identity "$lab" fe1)
be1=$(labtest_addr "$lab" be1)
fe1=$(labtest_addr "$lab" fe1)

# wait_rules N : until node2's policy-l3l4 holds N datapath rules.
wait_rules() {
    local deadline=$((SECONDS + 30))
    until [[ "$(lab_cmd ctl "$lab" node2 -- -o json module call policy-l3l4 Status |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["datapath_rules"])')" == "$1" ]]; do
        ((SECONDS < deadline)) || labtest_fail "node2 never held $1 policy rules"
        sleep 0.2
    done
}

# The packet (Ethernet + IPv4 + TCP SYN to port 80) and the context (struct __sk_buff with cb[]).
python3 - "$LABTEST_TMP" "$fe1" "$be1" "$fe1_identity" <<'PY'
import socket, struct, sys
folder, src, dst, identity = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
tcp = struct.pack("!HHIIBBHHH", 40000, 80, 1, 0, 5 << 4, 0x02, 65535, 0, 0)
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0x4000, 64, 6, 0, socket.inet_aton(src), socket.inet_aton(dst))
eth = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + struct.pack("!H", 0x0800)
open(f"{folder}/packet.bin", "wb").write(eth + ip + tcp)
# struct __sk_buff: cb[5] at offset 48. Context as mbr_from_overlay leaves it:
# source identity, destination identity (any pod's), direction FROM_OVERLAY (5) with CT state NEW (1 << 8), magic.
ctx = bytearray(192)
struct.pack_into("<5I", ctx, 48, identity, 0, 5 | (1 << 8), 0, 0x4d425231)
open(f"{folder}/ctx.bin", "wb").write(bytes(ctx))
struct.pack_into("<I", ctx, 48, 65535)  # an identity nobody allowed
open(f"{folder}/ctx-denied.bin", "wb").write(bytes(ctx))
PY

stage_id() {  # node2's ingress policy program: what its pinned pipeline holds in slot 5
    bpftool -j map dump pinned "$(labtest_pins "$lab" node2)/mbr_pipe_v1" | python3 -c '
import json, sys
for entry in json.load(sys.stdin):
    key = entry.get("key")
    key = int(key[0], 16) if isinstance(key, list) else int(key)
    if key == 5:  # MBR_STAGE_INGRESS_POLICY
        print(entry["value"] if not isinstance(entry["value"], list) else int("".join(reversed([b[2:] for b in entry["value"]])), 16))'
}
stage_ns() {  # the average ns per run of node2's policy_ingress
    local id
    id=$(stage_id)
    [[ -n "$id" ]] || labtest_fail "no policy_ingress program is loaded"
    bpftool prog run id "$id" data_in "$LABTEST_TMP/packet.bin" ctx_in "$LABTEST_TMP/ctx.bin" repeat "$repeat" |
        awk '/duration/ { gsub(/ns/, "", $NF); print $NF }'
}
stage_return() {  # CTX_FILE : what the stage returns for the packet (2: TC_ACT_SHOT)
    bpftool prog run id "$(stage_id)" data_in "$LABTEST_TMP/packet.bin" ctx_in "$LABTEST_TMP/$1" |
        awk '/Return value/ { gsub(/,/, "", $3); print $3 }'
}
# ports_policy NAME PORT [END_PORT] : a CNP admitting frontends to backends on TCP PORT[..END_PORT].
ports_policy() {
    printf -- '---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: %s\nspec:\n' "$1"
    printf '  endpointSelector:\n    matchLabels:\n      role: backend\n  ingress:\n  - fromEndpoints:\n'
    printf '    - matchLabels:\n        class: frontend\n    toPorts:\n    - ports:\n      - port: "%s"\n' "$2"
    [[ -z "${3:-}" ]] || printf '        endPort: %s\n' "$3"
    printf '        protocol: TCP\n'
}
measure_rr() { lab_cmd exec "$lab" fe1 -- timeout $((seconds + 10)) "$rr" client "$be1" 7100 "$seconds"; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

declare -A ns rr_rate
for ((round = 1; round <= rounds; round++)); do
    lab_cmd ctl "$lab" node1 -- delete cnp l3-rule >/dev/null 2>&1 || true
    lab_cmd ctl "$lab" node1 -- delete cnp ports-10000 >/dev/null 2>&1 || true
    wait_rules 0
    ns[none]+="$(stage_ns) "
    rr_rate[none]+="$(measure_rr) "
    lab_cmd ctl "$lab" node1 -- apply -f "$MEMBRANE_SOURCE_DIR/configs/policies/l3-rule.yaml" >/dev/null
    wait_rules 1
    # The runs take the path they claim: the stage judges (an unknown identity is dropped, fe1 is not).
    [[ "$(stage_return ctx-denied.bin)" == 2 && "$(stage_return ctx.bin)" != 2 ]] ||
        labtest_fail "the test runs do not meet the policy: denied $(stage_return ctx-denied.bin), allowed $(stage_return ctx.bin)"
    ns[one]+="$(stage_ns) "
    rr_rate[allowed]+="$(measure_rr) "
    ports_policy ports-10000 20000 29999 >"$LABTEST_TMP/ports-10000.yaml"
    lab_cmd ctl "$lab" node1 -- apply -f "$LABTEST_TMP/ports-10000.yaml" >/dev/null
    wait_rules 10001
    ns[many]+="$(stage_ns) "
done

declare -A ns_med rr_med
for key in none one many; do ns_med[$key]=$(tr ' ' '\n' <<<"${ns[$key]}" | grep . | median); done
for key in none allowed; do rr_med[$key]=$(tr ' ' '\n' <<<"${rr_rate[$key]}" | grep . | median); done

echo
echo "policy-l3l4, median of $rounds rounds (VXLAN lab, fe1 on node1 -> be1 on node2)"
printf '%-52s %14s\n' "ingress stage per packet (BPF_PROG_TEST_RUN)" "ns"
printf '%-52s %14s\n' "  be1 not enforced (no policy)" "${ns_med[none]}"
printf '%-52s %14s\n' "  l3-rule: 1 datapath rule" "${ns_med[one]}"
printf '%-52s %14s\n' "  l3-rule + 10,000-port range: 10,001 rules" "${ns_med[many]}"
python3 -c "import sys; print('  ratio 10,001 rules / 1 rule: %.2f' % (float(sys.argv[1]) / float(sys.argv[2])))" "${ns_med[many]}" "${ns_med[one]}"
printf '%-52s %14s\n' "TCP request/response fe1 -> be1 (${seconds} s)" "per second"
printf '%-52s %14s\n' "  no policy" "${rr_med[none]}"
printf '%-52s %14s\n' "  l3-rule allowing it" "${rr_med[allowed]}"
python3 -c "import sys; print('  ratio with policy / without: %.3f' % (float(sys.argv[1]) / float(sys.argv[2])))" "${rr_med[allowed]}" "${rr_med[none]}"

# 4. From `membranectl apply` on node1 to the rule in each node's pinned policy map (read with
# bpftool from the pin: the datapath's own state, not the agent's word), then the same for
# 1,000 policies at once, and each agent's resident memory before and after.
rules_in_map() {  # NODE : entries of the node's pinned policy_l3l4_rules_v1
    bpftool -j map dump pinned "$(find "$(labtest_pins "$lab" "$1")" -name policy_l3l4_rules_v1 | head -1)" |
        python3 -c 'import json, sys; print(len(json.load(sys.stdin)))'
}
agent_rss_mib() {  # NODE : the node's membraned VmRSS in MiB
    local pid
    pid=$(labtest_json "$lab" "next(n['daemon']['pid'] for n in s['nodes'] if n['name'] == '$1')")
    awk '/^VmRSS:/ { printf "%.1f\n", $2 / 1024 }' "/proc/$pid/status"
}
now() { date +%s.%N; }
declare -A apply_ms
lab_cmd ctl "$lab" node1 -- delete cnp ports-10000 >/dev/null
for ((round = 1; round <= rounds; round++)); do
    lab_cmd ctl "$lab" node1 -- delete cnp l3-rule >/dev/null
    wait_rules 0
    start=$(now)
    lab_cmd ctl "$lab" node1 -- apply -f "$MEMBRANE_SOURCE_DIR/configs/policies/l3-rule.yaml" >/dev/null
    pending="node1 node2"
    deadline=$((SECONDS + 30))
    while [[ -n "${pending// /}" ]]; do
        ((SECONDS < deadline)) || labtest_fail "the rule never reached the maps of: $pending"
        for node in $pending; do
            if [[ "$(rules_in_map "$node")" -ge 1 ]]; then
                apply_ms[$node]+="$(python3 -c "import sys; print(round((float(sys.argv[1]) - float(sys.argv[2])) * 1000))" "$(now)" "$start") "
                pending=${pending/$node/}
            fi
        done
    done
done
lab_cmd ctl "$lab" node1 -- delete cnp l3-rule >/dev/null
wait_rules 0
rss_before="node1 $(agent_rss_mib node1) MiB, node2 $(agent_rss_mib node2) MiB"
# One apply takes at most 100 objects: ten files of 100, applied one after another.
for ((i = 0; i < 1000; i++)); do ports_policy "p$i" $((20000 + i)) >>"$LABTEST_TMP/policies-$((i / 100)).yaml"; done
start=$(now)
for ((i = 0; i < 10; i++)); do lab_cmd ctl "$lab" node1 -- apply -f "$LABTEST_TMP/policies-$i.yaml" >/dev/null; done
deadline=$((SECONDS + 120))
until [[ "$(rules_in_map node1)" -ge 1000 && "$(rules_in_map node2)" -ge 1000 ]]; do
    ((SECONDS < deadline)) || labtest_fail "the nodes' maps never held the 1,000 policies' rules"
    sleep 0.05
done
many_ms=$(python3 -c "import sys; print(round((float(sys.argv[1]) - float(sys.argv[2])) * 1000))" "$(now)" "$start")
rss_after="node1 $(agent_rss_mib node1) MiB, node2 $(agent_rss_mib node2) MiB"

echo
printf '%-52s %14s\n' "membranectl apply on node1 -> rule in the pinned map" "ms (median)"
for node in node1 node2; do
    printf '%-52s %14s\n' "  1 policy (l3-rule), $node" "$(tr ' ' '\n' <<<"${apply_ms[$node]}" | grep . | median)"
done
printf '%-52s %14s\n' "  1,000 policies (10 applies of 100), all in both maps" "$many_ms"
echo "agent resident memory (VmRSS): with no policy: $rss_before; with 1,000: $rss_after"
echo
"$MEMBRANE_BUILD_DIR/modules/policy-l3l4/policy-l3l4-compile-bench" 1000 500 5
