#!/usr/bin/env bash
# Policy holds while its control plane comes and goes (VXLAN lab; the
# stages do not depend on the routing mode). be1 (role=backend, node2)
# accepts fe1 (class=frontend, node1) only (configs/policies/l3-rule.yaml).
# Under an allowed flow (fe1 -> be1) and a denied one (other -> be1), 1500
# echo requests each, 4 ms apart, and be1's kernel counting what it takes in
# (Icmp InEchos), so that not one denied packet can slip through unseen:
#   - node2's membraned is killed (SIGKILL) and started again: the allowed
#     flow goes on (at least 99% answered), no denied request gets in;
#   - policy-l3l4 is reloaded 10 times on node2: every allowed request is
#     answered, none of the denied ones.
# Then the module is unloaded (--force): its fail-closed stages drop fe1's
# traffic too (counted as drop_stage_missing), never open it; loaded again,
# the pinned maps and the policy are back at once.
set -euo pipefail
source "${MEMBRANE_SOURCE_DIR:?}/lab/lab_test_lib.sh"
labtest_init
count=1500
DROP_STAGE_MISSING=11  # contract.h: MBR_STAT_DROP_STAGE_MISSING

lab=$(labtest_name pr)
{
    printf 'name = "%s"\nrouting = "vxlan"\nmodules = ["policy-l3l4"]\n' "$lab"
    printf '\n[[nodes]]\nname = "node1"\n\n[[nodes]]\nname = "node2"\n'
    printf '\n[[pods]]\nname = "%s"\nnode = "%s"\nlabels = { %s }\n' \
        fe1 node1 'class = "frontend"' other node1 'app = "other"' be1 node2 'role = "backend"'
} >"$LABTEST_TMP/$lab.toml"
labtest_up "$LABTEST_TMP/$lab.toml"
lab_cmd ctl "$lab" node1 -- apply -f "$LABTEST_SOURCE/configs/policies/l3-rule.yaml" >/dev/null ||
    labtest_fail "apply l3-rule failed"
target=$(labtest_addr "$lab" be1)
deadline=$((SECONDS + 20))
until ! lab_cmd exec "$lab" other -- ping -c 1 -W 1 -q "$target" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || labtest_fail "l3-rule never took effect on node2"
done
labtest_expect_ping "$lab" fe1 be1

generation() {
    lab_cmd ctl "$lab" node2 -- -o json module list |
        python3 -c "import json,sys; print(next(m['generation'] for m in json.load(sys.stdin) if m['name'] == 'policy-l3l4'))"
}

# under_floods NAME ACTION... : an allowed flood (fe1 -> be1) and a denied one (other -> be1),
# $count echo requests each, 4 ms apart, while ACTION runs; leaves "<answered allowed>
# <answered denied> <echo requests be1's kernel took in>" in $LABTEST_TMP/NAME.
under_floods() {
    local name=$1 before allowed denied
    shift
    before=$(labtest_echoes_received "$lab" be1)
    lab_cmd exec "$lab" fe1 -- timeout 60 ping -c "$count" -i 0.004 -W 2 -q "$target" >"$LABTEST_TMP/$name.allowed" 2>&1 &
    allowed=$!
    lab_cmd exec "$lab" other -- timeout 60 ping -c "$count" -i 0.004 -W 1 -q "$target" >"$LABTEST_TMP/$name.denied" 2>&1 &
    denied=$!
    sleep 0.5
    "$@"
    wait "$allowed" || true
    wait "$denied" || true
    cat "$LABTEST_TMP/$name.allowed" "$LABTEST_TMP/$name.denied"
    echo "$(received "$name.allowed") $(received "$name.denied") $(($(labtest_echoes_received "$lab" be1) - before))" \
        >"$LABTEST_TMP/$name"
}
received() { sed -n 's/^[0-9]* packets transmitted, \([0-9]*\) received.*/\1/p' "$LABTEST_TMP/$1"; }
restart_node2() {
    lab_cmd node stop "$lab" node2 --signal KILL >/dev/null || labtest_fail "SIGKILL of node2's membraned failed"
    sleep 0.5
    lab_cmd node start "$lab" node2 >/dev/null || labtest_fail "node2's membraned did not start again"
}
reload_ten_times() {
    for _ in $(seq 10); do
        lab_cmd ctl "$lab" node2 -- module reload policy-l3l4 >/dev/null || labtest_fail "reload of policy-l3l4 failed"
    done
}

# SIGKILL and restart: the datapath keeps enforcing while the agent is away;
# the allowed flow goes on (a packet lost while the restarted agent takes
# its devices back is said, not failed), not one denied request gets in.
under_floods restart restart_node2
read -r answered denied took <"$LABTEST_TMP/restart"
((denied == 0)) || labtest_fail "$denied denied echo requests were answered across the agent's restart"
((took >= answered && took <= count)) ||
    labtest_fail "be1's kernel took in $took echo requests: not between the $answered allowed ones answered and the $count sent"
((answered * 100 >= count * 99)) || labtest_fail "the allowed flow lost $((count - answered)) of $count across the agent's restart"
[[ "$(lab_cmd exec "$lab" other -- ping -c 1 -W 1 -q "$target" 2>&1)" == *", 0 received"* ]] ||
    labtest_fail "other -> be1 passed after the restart"
echo "ok: SIGKILL + restart of node2's agent under traffic: $answered of $count allowed answered; 0 of $count denied"

# Ten reloads: not one allowed request lost, not one denied one in.
gen=$(generation)
under_floods reloads reload_ten_times
read -r answered denied took <"$LABTEST_TMP/reloads"
((answered == count)) || labtest_fail "$((count - answered)) allowed echo requests were lost while policy-l3l4 reloaded"
((denied == 0)) || labtest_fail "$denied denied echo requests were answered while policy-l3l4 reloaded"
((took == count)) || labtest_fail "be1's kernel took in $took echo requests, not the $count allowed ones"
(($(generation) == gen + 10)) || labtest_fail "policy-l3l4 is not ten generations further"
echo "ok: 10 reloads of policy-l3l4 under traffic: $count allowed, 0 lost; $count denied, 0 passed"

# Unloaded: fail-closed, not open.
missing=$(labtest_stat "$lab" node2 "$DROP_STAGE_MISSING")
lab_cmd ctl "$lab" node2 -- module unload --force policy-l3l4 >/dev/null || labtest_fail "unload --force failed"
if lab_cmd exec "$lab" fe1 -- ping -c 2 -W 1 -i 0.2 -q "$target" >/dev/null 2>&1; then
    labtest_fail "fe1 -> be1 passed with policy-l3l4 unloaded: its stages are not fail-closed"
fi
if lab_cmd exec "$lab" other -- ping -c 2 -W 1 -i 0.2 -q "$target" >/dev/null 2>&1; then
    labtest_fail "other -> be1 passed with policy-l3l4 unloaded"
fi
(($(labtest_stat "$lab" node2 "$DROP_STAGE_MISSING") >= missing + 4)) ||
    labtest_fail "node2 did not count the drops of the empty fail-closed stage"
lab_cmd ctl "$lab" node2 -- module load policy-l3l4 >/dev/null || labtest_fail "load of policy-l3l4 failed"
labtest_expect_ping "$lab" fe1 be1
if lab_cmd exec "$lab" other -- ping -c 2 -W 1 -i 0.2 -q "$target" >/dev/null 2>&1; then
    labtest_fail "other -> be1 passed after policy-l3l4 was loaded again"
fi
echo "ok: policy-l3l4 unloaded: fail-closed (fe1 and other dropped, counted); loaded again: enforced at once"
