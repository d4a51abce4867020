#!/usr/bin/env bash
# Policy holds while its control plane comes and goes (VXLAN lab; the
# stages do not depend on the routing mode). be1 (role=backend, node2)
# accepts fe1 (class=frontend, node1) only (configs/policies/l3-rule.yaml).
# Under an allowed flow (fe1 -> be1) and a denied one (other -> be1), 1500
# echo requests each, 4 ms apart:
#   - node2's membraned is killed (SIGKILL) and started again, then
#     policy-l3l4 is reloaded 10 times on node2;
#   - every allowed request is answered, none of the denied ones, and be1's
#     kernel took in exactly the allowed ones (Icmp InEchos), so not one
#     denied packet slipped through while the agent or the module was away.
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

echoes_before=$(labtest_echoes_received "$lab" be1)
lab_cmd exec "$lab" fe1 -- timeout 60 ping -c "$count" -i 0.004 -W 2 -q "$target" >"$LABTEST_TMP/allowed.out" 2>&1 &
allowed=$!
lab_cmd exec "$lab" other -- timeout 60 ping -c "$count" -i 0.004 -W 1 -q "$target" >"$LABTEST_TMP/denied.out" 2>&1 &
denied=$!
sleep 0.5
lab_cmd node stop "$lab" node2 --signal KILL >/dev/null || labtest_fail "SIGKILL of node2's membraned failed"
sleep 0.5
lab_cmd node start "$lab" node2 >/dev/null || labtest_fail "node2's membraned did not start again"
gen=$(generation)
for _ in $(seq 10); do
    lab_cmd ctl "$lab" node2 -- module reload policy-l3l4 >/dev/null || labtest_fail "reload of policy-l3l4 failed"
done
wait "$allowed" || true
wait "$denied" || true
cat "$LABTEST_TMP/allowed.out" "$LABTEST_TMP/denied.out"
grep -q "^$count packets transmitted, $count received" "$LABTEST_TMP/allowed.out" ||
    labtest_fail "allowed echo requests were lost across the restart and the reloads"
grep -q "^$count packets transmitted, 0 received" "$LABTEST_TMP/denied.out" ||
    labtest_fail "denied echo requests were answered across the restart and the reloads"
took=$(($(labtest_echoes_received "$lab" be1) - echoes_before))
((took == count)) || labtest_fail "be1's kernel took in $took echo requests, not the $count allowed ones"
(($(generation) == gen + 10)) || labtest_fail "policy-l3l4 is not ten generations further"
echo "ok: SIGKILL + restart of node2's agent and 10 reloads of policy-l3l4 under traffic: $count allowed, 0 lost; $count denied, 0 passed"

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
