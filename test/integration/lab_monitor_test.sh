#!/usr/bin/env bash
# The flow monitor with real traffic (VXLAN lab, policy-l3l4): be (role=
# backend, node2) admits fe (class=frontend, node1) only
# (configs/policies/l3-rule.yaml).
#   - `membranectl monitor` on node2, started before the probe, shows other's
#     denied ping within 1 s: DROPPED, drop_policy, both pods by name, and
#     the policy whose default deny it is; fe's ping shows ALLOWED with the
#     rule that allows it (rule id and policy);
#   - filters (--from-pod, --verdict, --type, --port) keep only what they say;
#     -o json is one object per line; a bad option is a usage error (2);
#   - node2's agent stopped (SIGSTOP, nobody reads the ring buffer), 30,000
#     denied datagrams: every one that reaches node2 is dropped and counted,
#     the events that do not fit are counted as lost (the monitor says so).
set -euo pipefail
source "${MEMBRANE_SOURCE_DIR:?}/lab/lab_test_lib.sh"
labtest_init

lab=$(labtest_name mo)
{
    printf 'name = "%s"\nrouting = "vxlan"\nmodules = ["policy-l3l4"]\n' "$lab"
    printf '\n[[nodes]]\nname = "node1"\n\n[[nodes]]\nname = "node2"\n'
    printf '\n[[pods]]\nname = "%s"\nnode = "%s"\nlabels = { %s }\n' \
        fe node1 'class = "frontend"' other node1 'app = "other"' be node2 'role = "backend"'
} >"$LABTEST_TMP/$lab.toml"
labtest_up "$LABTEST_TMP/$lab.toml"
labtest_apply_policy "$lab" "$LABTEST_SOURCE/configs/policies/l3-rule.yaml"
target=$(labtest_addr "$lab" be)
monitor() { lab_cmd ctl "$lab" node2 -- "$@"; }

# A denied ping, seen live within 1 s: each line is stamped as it arrives.
monitor -o json monitor --from-pod default/other --verdict dropped --count 1 --timeout 20 2>"$LABTEST_TMP/live.err" |
    python3 -c '
import sys, time
for line in sys.stdin:
    print(time.time_ns(), line, end="", flush=True)
' >"$LABTEST_TMP/live.json" &
watcher=$!
# Pinging until the monitor has one: however long it takes to get its cursor.
for _ in $(seq 40); do
    kill -0 "$watcher" 2>/dev/null || break
    ip netns exec "ml-$lab-other" ping -c 1 -W 1 -q "$target" >/dev/null 2>&1 &
    sleep 0.5
done
wait "$watcher" || labtest_fail "monitor failed: $(cat "$LABTEST_TMP/live.err")"
wait
python3 - "$LABTEST_TMP/live.json" <<'EOF' || labtest_fail "the live denied ping"
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 1, f"one event expected, got {lines}"
arrived, text = lines[0].split(" ", 1)
flow = json.loads(text)
assert flow["verdict"] == "dropped" and flow["drop_reason"] == "drop_policy", flow
assert flow["source"]["pod_name"] == "other" and flow["source"]["namespace"] == "default", flow
assert flow["source"]["node_name"] == "node1", flow
assert flow["destination"]["pod_name"] == "be" and "role=backend" in flow["destination"]["labels"], flow
assert flow["stage"] == "ingress-policy" and "ICMP" in flow["l4"], flow
delay = int(arrived) - flow["time_ns"]
print(f"shown {delay / 1e6:.0f} ms after it happened")
assert delay < 1_000_000_000, "not shown within 1 s"
EOF

# The same and an allowed one, as people read them (from the history).
lab_cmd exec "$lab" fe -- ping -c 1 -W 1 -q "$target" >/dev/null || labtest_fail "fe's ping was not answered"
denied=$(monitor monitor --since 1m --verdict dropped --count 1 --timeout 5)
echo "$denied"
for part in "default/other@node1 (app=other)" "-> default/be (role=backend) $target ICMP" "DROPPED  drop_policy" \
    "(no rule allows; default deny of CiliumNetworkPolicy default/l3-rule)" "[ingress-policy]"; do
    [[ "$denied" == *"$part"* ]] || labtest_fail "the denied ping's line lacks '$part'"
done
allowed=$(monitor monitor --since 1m --verdict allowed --count 1 --timeout 5)
echo "$allowed"
[[ "$allowed" == *"default/fe@node1 (class=frontend)"*"ALLOWED"*"(rule 1: CiliumNetworkPolicy default/l3-rule ingress[0])"* ]] ||
    labtest_fail "the allowed ping's line lacks its pods, verdict or rule"

# Filters keep only what they say.
count_of() { monitor -o json monitor --since 1m --timeout 1 "$@" | wc -l; }
(($(count_of --from-pod fe --verdict dropped) == 0)) || labtest_fail "--from-pod fe --verdict dropped shows something"
(($(count_of --type verdict) >= 1)) || labtest_fail "--type verdict shows nothing"
(($(count_of --type verdict --verdict dropped) == 0)) || labtest_fail "a verdict event that is a drop"
(($(count_of --port 80) == 0)) || labtest_fail "--port 80 shows ICMP events"
(($(count_of --namespace default) >= 2)) || labtest_fail "--namespace default shows too little"
monitor -o json monitor --since 1m --timeout 1 | python3 -c '
import json, sys
lines = sys.stdin.read().splitlines()
assert lines and all(isinstance(json.loads(line), dict) for line in lines), lines
' || labtest_fail "-o json is not one object per line"
set +e
monitor monitor --verdict maybe >/dev/null 2>"$LABTEST_TMP/usage.err"
code=$?
set -e
((code == 2)) && grep -q -- "--verdict must be allowed or dropped" "$LABTEST_TMP/usage.err" ||
    labtest_fail "a bad --verdict: exit $code, $(cat "$LABTEST_TMP/usage.err")"

# Nobody reads the ring buffer: the events that do not fit are counted, not waited for.
counter() { monitor -o json stats | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
drops_before=$(counter drop_policy)
overlay_before=$(counter entry_from_overlay)
agent=$(lab_cmd status "$lab" -o json | python3 -c '
import json, sys
print(next(n["daemon"]["pid"] for n in json.load(sys.stdin)["nodes"] if n["name"] == "node2"))')
kill -STOP "$agent"
flooded=yes
# Straight into the pod's namespace: membrane-lab itself would not ask the stopped agent, but be quick.
ip netns exec "ml-$lab-other" timeout 60 python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(30000):
    s.sendto(b"x", (sys.argv[1], 9))
' "$target" || flooded=no
sleep 0.5
kill -CONT "$agent"  # before any failure: the lab is taken down with a running agent
[[ $flooded == yes ]] || labtest_fail "the flood did not run"
drops=$(($(counter drop_policy) - drops_before))
arrived=$(($(counter entry_from_overlay) - overlay_before))
# What reached node2 was judged and dropped, every datagram of it, with nobody reading events.
((arrived >= 20000 && drops >= arrived - 20)) ||
    labtest_fail "$arrived datagrams came through the overlay, the policy stage dropped $drops"
monitor monitor --timeout 0.5 >/dev/null 2>"$LABTEST_TMP/lost.err" || true
grep -q "the datapath has lost [0-9]* events" "$LABTEST_TMP/lost.err" ||
    labtest_fail "no event counted as lost after a flood nobody read: $(cat "$LABTEST_TMP/lost.err")"
cat "$LABTEST_TMP/lost.err"
echo "ok: the monitor shows denied and allowed flows with their pods and policy, filters, JSON; a full buffer is counted"
