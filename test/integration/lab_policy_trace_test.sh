#!/usr/bin/env bash
# `membranectl policy trace` against real connections (VXLAN lab, two nodes,
# policy-l3l4 and the counter fixture): b1 (node1) admits a1 (node1) on TCP
# 7001 only; c1 (node2) admits a1 on TCP 7001 only.
#   1. Each trace agrees with what a real connection does: allowed where it
#      connects (with the allowing rule), denied where it does not (the
#      default deny); across nodes, each node's half on that node.
#   2. A trace changes nothing: the pod-traffic counters, the connection
#      tracking table and the flow monitor are as they were.
#   3. A broken stage (the counter fixture with drop_tcp_port = 7001, so
#      its observe stage drops what every policy allows): the trace says
#      DISAGREEMENT and exits 3; the real connection fails as the trace says.
#   4. A bad request is refused naming the problem.
set -euo pipefail
source "${MEMBRANE_SOURCE_DIR:?}/lab/lab_test_lib.sh"
labtest_init

counter_so="${MEMBRANE_TEST_PREFIX:?}/test-modules/counter.so"
[[ -f "$counter_so" ]] || labtest_fail "no counter fixture at $counter_so (integration.setup_install_sdk builds it)"

lab=$(labtest_name tr)
LABTEST_TOPOLOGY_EXTRA="modules = [\"policy-l3l4\", \"$counter_so\"]" \
    labtest_topology "$lab" vxlan a1:node1 b1:node1 c1:node2 >"$LABTEST_TMP/$lab.toml"
labtest_up "$LABTEST_TMP/$lab.toml"
for pod in b1 c1; do labtest_serve "$lab" "$pod"; done

cat >"$LABTEST_TMP/trace-policies.yaml" <<'EOF'
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: b1-from-a1
  namespace: default
spec:
  endpointSelector:
    matchLabels:
      app: b1
  ingress:
  - fromEndpoints:
    - matchLabels:
        app: a1
    toPorts:
    - ports:
      - port: "7001"
        protocol: TCP
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: c1-from-a1
  namespace: default
spec:
  podSelector:
    matchLabels:
      app: c1
  ingress:
  - from:
    - podSelector:
        matchLabels:
          app: a1
    ports:
    - port: 7001
      protocol: TCP
EOF
labtest_apply_policy "$lab" "$LABTEST_TMP/trace-policies.yaml"

# trace NODE FROM TO DPORT : the trace's JSON on NODE (exit status in $LABTEST_TMP/trace.rc).
trace() {
    local rc=0
    lab_cmd ctl "$lab" "$1" -- -o json policy trace --from "default/$2" --to "default/$3" --dport "$4" \
        >"$LABTEST_TMP/trace.json" 2>"$LABTEST_TMP/trace.err" || rc=$?
    echo "$rc" >"$LABTEST_TMP/trace.rc"
    [[ $rc == 0 || $rc == 3 ]] || labtest_fail "policy trace on $1 $2 -> $3 $4 failed ($rc): $(cat "$LABTEST_TMP/trace.err")"
    cat "$LABTEST_TMP/trace.json"
}

# outcome JSON : "agree|disagree <last stage> <action> <counted> <rule>" of one trace.
outcome() {
    python3 -c '
import json, sys
t = json.loads(sys.argv[1]); last = t["steps"][-1]
print("agree" if t["agree"] else "disagree", last["stage_name"], last["action"], last["counted"] or "-", last["rule_id"])
' "$1"
}

# expect_trace NODE FROM TO DPORT WANT : the trace's outcome starts with WANT.
expect_trace() {
    local got
    got=$(outcome "$(trace "$1" "$2" "$3" "$4")")
    [[ "$got" == "$5"* ]] || labtest_fail "trace on $1 $2 -> $3 $4: '$got', expected '$5'"
    labtest_log "trace on $1 $2 -> $3 $4: $got"
}

# tcp_fails FROM TO : a TCP connection from FROM to TO's port 7001 gets no answer.
tcp_fails() {
    local addr reply
    addr=$(labtest_addr "$lab" "$2")
    reply=$(echo probe | lab_cmd exec "$lab" "$1" -- timeout 5 socat -t 2 -T 2 - TCP4:"$addr":7001,connect-timeout=2 2>&1) || true
    [[ "$reply" != pong* ]] || labtest_fail "TCP $1 -> $2 got through, but the trace said it would not"
}

# --- 1. traces against real connections -----------------------------------
rule=$(lab_cmd ctl "$lab" node1 -- -o json module call policy-l3l4 Status | python3 -c '
import json, sys
print(next(r["rule_id"] for r in json.load(sys.stdin)["rules"] if r["policy"].endswith("default/b1-from-a1")))')
expect_trace node1 a1 b1 7001/tcp "agree delivery redirected delivered_local"
python3 -c '
import json, sys
t = json.loads(sys.argv[1])
ingress = next(s for s in t["steps"] if s["stage_name"] == "ingress-policy")
assert ingress["event_type"] == "verdict" and ingress["rule_id"] == int(sys.argv[2]), ingress
assert t["control_plane"]["ingress"]["rule_id"] == int(sys.argv[2]), t["control_plane"]
' "$(trace node1 a1 b1 7001/tcp)" "$rule" || labtest_fail "a1 -> b1 is not allowed by rule $rule in both planes"
# verdict INDEX : node1's policy verdict counter (contract.h: enum membrane_verdict_counter).
verdict() { pinned_sum "$(labtest_pins "$lab" node1)/mbr_policy_verdicts_v1" "$1"; }
allowed_before=$(verdict 0) denied_before=$(verdict 1)
labtest_expect_tcp "$lab" a1 b1
((allowed_before < $(verdict 0))) || labtest_fail "a1 -> b1 was not counted as an allowed ingress verdict"
expect_trace node1 c1 b1 7001/tcp "agree ingress-policy dropped drop_policy 0"
# The source by its labels: a1 is the pod with app=a1.
by_labels=$(lab_cmd ctl "$lab" node1 -- -o json policy trace --from-labels app=a1 --to default/b1 --dport 7001/tcp)
[[ $(outcome "$by_labels") == "agree delivery redirected delivered_local"* ]] &&
    python3 -c 'import json,sys; assert json.loads(sys.argv[1])["trace"]["source_pod"] == "a1"' "$by_labels" ||
    labtest_fail "--from-labels app=a1 is not a1: $by_labels"
expect_trace node1 a1 b1 7002/udp "agree ingress-policy dropped drop_policy 0"
[[ -z "$(labtest_udp_exchange "$lab" a1 "$(labtest_addr "$lab" b1)" 7002 probe)" ]] ||
    labtest_fail "UDP a1 -> b1 7002 got through, but the trace said it would not"
((denied_before < $(verdict 1))) || labtest_fail "UDP a1 -> b1 was not counted as a denied ingress verdict"

# Across nodes: the source's node routes into the overlay, the destination's judges.
expect_trace node1 a1 c1 7001/tcp "agree routing redirected to_overlay"
expect_trace node2 a1 c1 7001/tcp "agree delivery redirected delivered_local"
labtest_expect_tcp "$lab" a1 c1
expect_trace node1 b1 c1 7001/tcp "agree routing redirected to_overlay"
expect_trace node2 b1 c1 7001/tcp "agree ingress-policy dropped drop_policy 0"
tcp_fails b1 c1
echo "PASS: traces agree with real connections, on each node's half"

# --- 2. a trace changes nothing ---------------------------------------------
pins=$(labtest_pins "$lab" node1)
state() {
    # Every counter but the two the node's own traffic (etcd) moves.
    lab_cmd ctl "$lab" node1 -- -o json stats | python3 -c '
import json, sys
print(" ".join(f"{k}={v}" for k, v in json.load(sys.stdin).items() if k not in ("entry_from_netdev", "pipeline_done")))'
    printf 'flows=%s\n' "$(lab_cmd ctl "$lab" node1 -- -o json monitor --since 1h --timeout 0.5 | wc -l)"
}
# The connection tracking table's keys (entries may expire meanwhile; none may appear).
ct_keys() {
    bpftool -j map dump pinned "$pins/mbr_ct_v1" | python3 -c '
import json, sys
for entry in json.load(sys.stdin): print(json.dumps(entry["key"], sort_keys=True))' | sort
}
before=$(state)
ct_keys >"$LABTEST_TMP/ct.before"
for _ in 1 2 3 4 5; do
    trace node1 a1 b1 7001/tcp >/dev/null
    trace node1 c1 b1 7001/tcp >/dev/null
    trace node1 a1 c1 7001/tcp >/dev/null
done
after=$(state)
ct_keys >"$LABTEST_TMP/ct.after"
[[ "$before" == "$after" ]] || labtest_fail "15 traces changed node1's counters or flows: before '$before', after '$after'"
new_entries=$(comm -13 "$LABTEST_TMP/ct.before" "$LABTEST_TMP/ct.after" | wc -l)
[[ $new_entries == 0 ]] || labtest_fail "15 traces made $new_entries connection tracking entries"
echo "PASS: 15 traces changed no counter, no flow, and tracked no connection ($after)"

# --- 3. a broken stage: the trace says so -----------------------------------
config="/run/membrane-lab/$lab/node1/membrane.toml"
printf '\n[module.counter]\ndrop_tcp_port = 7001\n' >>"$config"
pid=$(labtest_json "$lab" "next(n['daemon']['pid'] for n in s['nodes'] if n['name'] == 'node1')")
generation() {
    lab_cmd ctl "$lab" node1 -- -o json module list |
        python3 -c 'import json,sys; print(next(m["generation"] for m in json.load(sys.stdin) if m["name"] == "counter" and m["state"] == "running"))' 2>/dev/null || echo 0
}
was=$(generation)
kill -HUP "$pid"
deadline=$((SECONDS + 20))
until (($(generation) > was)); do
    ((SECONDS < deadline)) || labtest_fail "the counter module was not reloaded with drop_tcp_port = 7001"
    sleep 0.2
done
expect_trace node1 a1 b1 7001/tcp "disagree observe dropped drop_invalid"
[[ $(cat "$LABTEST_TMP/trace.rc") == 3 ]] || labtest_fail "a disagreement exited $(cat "$LABTEST_TMP/trace.rc"), not 3"
text=$(lab_cmd ctl "$lab" node1 -- policy trace --from default/a1 --to default/b1 --dport 7001/tcp) && rc=0 || rc=$?
[[ $rc == 3 && "$text" == *"DISAGREEMENT"*"drops it at observe"*"drop_invalid"* ]] ||
    labtest_fail "the broken stage is not reported ($rc): $text"
tcp_fails a1 b1
echo "PASS: a stage that drops what the policies allow is reported (exit 3), and real traffic fails the same way"

# --- 4. bad requests ---------------------------------------------------------
rc=0
err=$(lab_cmd ctl "$lab" node1 -- policy trace --from default/nope --to default/b1 --dport 7001/tcp 2>&1) || rc=$?
[[ $rc == 1 && "$err" == *"no pod default/nope"* ]] || labtest_fail "an unknown pod: ($rc) $err"
rc=0
err=$(lab_cmd ctl "$lab" node1 -- policy trace --from default/a1 --to default/b1 --dport 70000/tcp 2>&1) || rc=$?
[[ $rc == 2 && "$err" == *"from 1 to 65535"* ]] || labtest_fail "a bad port: ($rc) $err"
rc=0
err=$(lab_cmd ctl "$lab" node1 -- policy trace --from default/a1 --dport 80/tcp 2>&1) || rc=$?
[[ $rc == 2 && "$err" == *"--to"* ]] || labtest_fail "no destination: ($rc) $err"
echo "PASS: an unknown pod, a bad port and a missing destination are refused by name"
