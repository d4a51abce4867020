#!/usr/bin/env bash
# Kubernetes services through service-lb's socket load balancing, in a
# two-node VXLAN lab (direct routing: integration.lab_service_direct): web
# (ClusterIP 10.96.0.10, TCP 80 -> the named port tcp-echo, UDP 53 ->
# udp-echo) with backends be1 (node1) and be2 (node2);
# the client fe on node1. The ClusterIP is routed nowhere, so only a
# translation at connect() reaches a backend.
#   - TCP: both backends answer, getpeername() shows the service; UDP: one
#     socket stays on one backend (sockets spread), the replies come from
#     the service address (recvmsg);
#   - a process outside node1's cgroup is not translated (the socket
#     programs are on the node's own cgroup);
#   - no endpoints: connect() fails at once with ECONNREFUSED;
#   - a backend removed from the EndpointSlice gets no new connection, and a
#     UDP socket connected to it is destroyed (its client connects anew);
#     sessionAffinity ClientIP keeps a client on one backend;
#   - a pod reaches itself through a service (hairpin);
#   - internalTrafficPolicy Local: node1's backend only; with none on node1
#     but one on node2, EHOSTUNREACH (kube-proxy drops; nothing leaves);
#   - service-lb reloaded 10 times under a loop of 1,000+ connects/s (a
#     connect, getpeername() the service, the backend's accept): none fails;
#     membraned SIGKILLed: an established connection goes on and new
#     connects still work while the agent is down;
#   - `service list`, `lb list`; a bad manifest is refused by field path.
set -euo pipefail
source "${MEMBRANE_SOURCE_DIR:?}/lab/lab_test_lib.sh"
labtest_init
client="$LABTEST_SOURCE/test/integration/service_client.py"

lab=$(labtest_name sv)
{
    printf 'name = "%s"\nrouting = "%s"\nmodules = ["service-lb"]\n' "$lab" "${SERVICE_TEST_ROUTING:-vxlan}"
    printf '\n[[nodes]]\nname = "node1"\n\n[[nodes]]\nname = "node2"\n'
    printf '\n[[pods]]\nname = "%s"\nnode = "%s"\nlabels = { app = "%s" }\n' \
        fe node1 fe be1 node1 web be2 node2 web
} >"$LABTEST_TMP/$lab.toml"
labtest_up "$LABTEST_TMP/$lab.toml"
labtest_serve "$lab" be1
labtest_serve "$lab" be2
for pod in be1 be2; do  # the connect loop's backends (below)
    lab_cmd exec "$lab" "$pod" -- timeout 600 python3 "$client" accept 7003 600 </dev/null >/dev/null 2>&1 &
done
be1=$(labtest_addr "$lab" be1)
be2=$(labtest_addr "$lab" be2)
vip=10.96.0.10

ctl() { lab_cmd ctl "$lab" node1 -- "$@"; }
in_pod() { local pod=$1; shift; lab_cmd exec "$lab" "$pod" -- python3 "$client" "$@"; }
# endpoints NAME ADDRESS:NODE... : an EndpointSlice for service NAME with these ready endpoints.
slice() {
    local name=$1 spec
    shift
    printf 'apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: %s-1\n' "$name"
    printf '  labels:\n    kubernetes.io/service-name: %s\naddressType: IPv4\nports:\n' "$name"
    printf '  - {name: tcp-echo, port: 7001, protocol: TCP}\n  - {name: udp-echo, port: 7002, protocol: UDP}\n'
    printf 'endpoints:\n'
    for spec in "$@"; do
        printf '  - addresses: ["%s"]\n    conditions: {ready: true}\n    nodeName: %s\n' "${spec%%:*}" "${spec#*:}"
    done
    [[ $# -gt 0 ]] || printf '  []\n'
}
# service NAME CLUSTERIP [EXTRA-SPEC-LINES] : a ClusterIP service with the two echo ports.
service() {
    printf 'apiVersion: v1\nkind: Service\nmetadata:\n  name: %s\nspec:\n  clusterIP: %s\n' "$1" "$2"
    printf '  ports:\n  - {name: tcp-echo, port: 80, targetPort: tcp-echo, protocol: TCP}\n'
    printf '  - {name: udp-echo, port: 53, targetPort: udp-echo, protocol: UDP}\n%s' "${3:-}"
}
apply() { printf '%s\n' "$1" >"$LABTEST_TMP/apply.yaml"; ctl apply -f "$LABTEST_TMP/apply.yaml" >/dev/null; }
# wait_backends NODE SERVICE FRONTEND COUNT : until the node's maps give the frontend COUNT backends.
wait_backends() {
    local deadline=$((SECONDS + 20))
    until lab_cmd ctl "$lab" "$1" -- -o json lb list | python3 -c '
import json, sys
frontend, count = sys.argv[1], int(sys.argv[2])
for f in json.load(sys.stdin)["frontends"]:
    if "%s:%d" % (f["address"], f["port"]) == frontend and len(f["backends"]) == count:
        sys.exit(0)
sys.exit(1)' "$3" "$4"; do
        ((SECONDS < deadline)) || labtest_fail "$1 never had $4 backends for $2 ($3)"
        sleep 0.2
    done
}

apply "$(service web $vip)
---
$(slice web "$be1:node1" "$be2:node2")"
wait_backends node1 web "$vip:80" 2
wait_backends node1 web "$vip:53" 2

labtest_log "ClusterIP TCP: both backends, getpeername() is the service"
result=$(in_pod fe tcp "$vip" 80 40)
echo "$result"
labtest_check "$result" 'r["errors"] == {} and set(r["replies"]) == {"be1", "be2"}' "TCP to the ClusterIP"
labtest_check "$result" "r['peers'] == ['$vip:80']" "getpeername() must show the service"
labtest_log "ClusterIP UDP: one socket stays on one backend, its replies come from the service address"
result=$(in_pod fe udp "$vip" 53 20)
echo "$result"
labtest_check "$result" 'r["errors"] == {} and len(r["replies"]) == 1' "UDP to the ClusterIP from one socket"
labtest_check "$result" "r['sources'] == ['$vip:53']" "recvmsg() must show the service as the source"
seen=""
for _ in $(seq 20); do
    seen+=" $(in_pod fe udp "$vip" 53 1 | python3 -c 'import json,sys; print(*json.load(sys.stdin)["replies"])')"
    [[ $seen == *be1* && $seen == *be2* ]] && break
done
[[ $seen == *be1* && $seen == *be2* ]] || labtest_fail "20 UDP sockets all went to one backend:$seen"

labtest_log "outside node1's cgroup nothing is translated"
result=$(ip netns exec "ml-$lab-fe" python3 "$client" refused "$vip" 80)
echo "$result"
labtest_check "$result" 'r["errno"] != ""' "a process outside the node's cgroup reached the ClusterIP"

labtest_log "service list and lb list"
ctl service list | tee "$LABTEST_TMP/services.txt"
grep -q "default/web  ClusterIP  $vip:80/TCP" "$LABTEST_TMP/services.txt" || labtest_fail "service list lacks web's frontend"
ctl service get web | grep -q "$be1:7001" || labtest_fail "service get web lacks be1"
ctl lb list | tee "$LABTEST_TMP/lb.txt"
grep -q "$vip:53/UDP" "$LABTEST_TMP/lb.txt" || labtest_fail "lb list lacks the UDP frontend"

labtest_log "no endpoints: ECONNREFUSED at once"
apply "$(service empty 10.96.0.11)"
wait_backends node1 empty 10.96.0.11:80 0
result=$(in_pod fe refused 10.96.0.11 80)
echo "$result"
labtest_check "$result" 'r["errno"] == "ECONNREFUSED" and r["seconds"] < 0.5' "connect() to a service without endpoints"
ctl service list | grep -q "10.96.0.11:80/TCP.*none (connections refused)" || labtest_fail "service list: empty's state"

labtest_log "a backend removed: no new connection goes to it; a UDP socket connected to it is destroyed"
in_pod fe udp-follow "$vip" 53 be1 4 >"$LABTEST_TMP/follow.txt" &
follow_pid=$!
for _ in $(seq 100); do grep -q "^on be1" "$LABTEST_TMP/follow.txt" && break; sleep 0.05; done
grep -q "^on be1" "$LABTEST_TMP/follow.txt" || labtest_fail "no connected UDP socket on be1: $(cat "$LABTEST_TMP/follow.txt")"
apply "$(slice web "$be2:node2")"
wait_backends node1 web "$vip:80" 1
wait "$follow_pid" || labtest_fail "the UDP follower failed: $(cat "$LABTEST_TMP/follow.txt")"
result=$(tail -n 1 "$LABTEST_TMP/follow.txt")
echo "$result"
# be1 still runs and would answer a socket left connected to it: only its destruction moves the client.
labtest_check "$result" 'r["errors"] and r["before"].get("be1") and r["after"].get("be2", 0) >= 5 and set(r["after"]) == {"be2"}' \
    "a connected UDP client across the removal of its backend"

result=$(in_pod fe tcp "$vip" 80 30)
labtest_check "$result" 'r["errors"] == {} and r["replies"] == {"be2": 30}' "after be1's removal"

labtest_log "sessionAffinity ClientIP keeps fe on one backend"
apply "$(service sticky 10.96.0.12 '  sessionAffinity: ClientIP
')
---
$(slice sticky "$be1:node1" "$be2:node2")"
wait_backends node1 sticky 10.96.0.12:80 2
result=$(in_pod fe tcp 10.96.0.12 80 30)
echo "$result"
labtest_check "$result" 'r["errors"] == {} and len(r["replies"]) == 1' "ClientIP affinity"

labtest_log "hairpin: be1 reaches itself through its service"
apply "$(service self 10.96.0.13)
---
$(slice self "$be1:node1")"
wait_backends node1 self 10.96.0.13:80 1
result=$(in_pod be1 tcp 10.96.0.13 80 5)
labtest_check "$result" 'r["errors"] == {} and r["replies"] == {"be1": 5}' "hairpin"

labtest_log "service-lb reloaded 10 times under 1,000+ connects/s: no connect fails"
# Its own service and servers: labtest_serve's echo servers fork a shell a connection.
apply "$(cat <<EOF
apiVersion: v1
kind: Service
metadata: {name: burst}
spec:
  clusterIP: 10.96.0.16
  ports:
  - {name: accept, port: 80, targetPort: 7003, protocol: TCP}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: burst-1
  labels: {kubernetes.io/service-name: burst}
addressType: IPv4
ports:
- {name: accept, port: 7003, protocol: TCP}
endpoints:
- {addresses: ["$be1"], conditions: {ready: true}, nodeName: node1}
- {addresses: ["$be2"], conditions: {ready: true}, nodeName: node2}
EOF
)"
wait_backends node1 burst 10.96.0.16:80 2
labtest_wait_listen "$lab" be1 7003
labtest_wait_listen "$lab" be2 7003
control="$LABTEST_TMP/loop.window"
in_pod fe connect-loop 10.96.0.16 80 "$control" 60 >"$LABTEST_TMP/loop.json" &
loop_pid=$!
for _ in $(seq 200); do grep -q "^looping" "$LABTEST_TMP/loop.json" && break; sleep 0.05; done
grep -q "^looping" "$LABTEST_TMP/loop.json" || labtest_fail "the connect loop never got through: $(cat "$LABTEST_TMP/loop.json")"
generation() {
    ctl -o json module list | python3 -c 'import json,sys; print(next(m["generation"] for m in json.load(sys.stdin) if m["name"] == "service-lb"))'
}
first=$(generation)
began=$EPOCHREALTIME
for _ in $(seq 10); do
    ctl module reload service-lb >/dev/null || labtest_fail "reload of service-lb failed"
done
ended=$EPOCHREALTIME
# The window in one rename: the loop never reads half of it.
echo "$began $ended" >"$control.new" && mv "$control.new" "$control"
wait "$loop_pid" || labtest_fail "the connect loop failed: $(cat "$LABTEST_TMP/loop.json")"
result=$(tail -n 1 "$LABTEST_TMP/loop.json")
echo "$result"
labtest_check "$result" 'r["failed"] == 0 and r["ok"] > 0' "connects during 10 reloads of service-lb"
labtest_check "$result" 'r["window_rate"] >= 1000' "connects per second during the 10 reloads (1,000 at least)"
(($(generation) == first + 10)) || labtest_fail "service-lb went from generation $first to $(generation) in 10 reloads"

labtest_log "internalTrafficPolicy Local: this node's backends only; none here but some elsewhere: EHOSTUNREACH"
apply "$(service near 10.96.0.14 '  internalTrafficPolicy: Local
')
---
$(slice near "$be1:node1" "$be2:node2")
---
$(service far 10.96.0.15 '  internalTrafficPolicy: Local
')
---
$(slice far "$be2:node2")"
wait_backends node1 near 10.96.0.14:80 1
wait_backends node1 far 10.96.0.15:80 0
result=$(in_pod fe tcp 10.96.0.14 80 10)
labtest_check "$result" 'r["errors"] == {} and r["replies"] == {"be1": 10}' "iTP Local from node1"
result=$(in_pod fe refused 10.96.0.15 80)
echo "$result"
labtest_check "$result" 'r["errno"] == "EHOSTUNREACH"' "iTP Local with the only backend on node2"

labtest_log "membraned SIGKILLed: established connections go on, new connects work"
# Connected before the kill; its line is sent and answered only after it.
lab_cmd exec "$lab" fe -- timeout 60 python3 -c '
import socket, sys, time
s = socket.create_connection((sys.argv[1], 80), timeout=10)
print("connected", flush=True)
time.sleep(4)
s.sendall(b"after-kill\n")
print(s.recv(100).decode().strip(), flush=True)' 10.96.0.13 >"$LABTEST_TMP/long.txt" 2>&1 &
long_pid=$!
for _ in $(seq 50); do grep -q connected "$LABTEST_TMP/long.txt" && break; sleep 0.1; done
lab_cmd node stop "$lab" node1 --signal KILL
result=$(in_pod fe tcp "$vip" 80 10)
echo "$result"
labtest_check "$result" 'r["errors"] == {} and r["replies"] == {"be2": 10}' "new connects while the agent is down"
wait "$long_pid" || labtest_fail "the established connection failed: $(cat "$LABTEST_TMP/long.txt")"
grep -q "pong be1 after-kill" "$LABTEST_TMP/long.txt" || labtest_fail "the established connection: $(cat "$LABTEST_TMP/long.txt")"
lab_cmd node start "$lab" node1
wait_backends node1 web "$vip:80" 1
result=$(in_pod fe tcp "$vip" 80 10)
labtest_check "$result" 'r["errors"] == {} and r["replies"] == {"be2": 10}' "after the restart"

labtest_log "bad manifests are refused by field path"
printf 'apiVersion: v1\nkind: Service\nmetadata: {name: bad}\nspec:\n  clusterIP: 10.96.0.20\n  ports:\n  - {port: 70000}\n' \
    >"$LABTEST_TMP/bad.yaml"
if ctl apply -f "$LABTEST_TMP/bad.yaml" 2>"$LABTEST_TMP/bad.err"; then labtest_fail "port 70000 was accepted"; fi
grep -q "spec.ports\[0\].port" "$LABTEST_TMP/bad.err" || labtest_fail "no field path: $(cat "$LABTEST_TMP/bad.err")"
printf 'apiVersion: v1\nkind: Service\nmetadata: {name: bad}\nspec:\n  clusterIP: 10.96.0.999\n  ports:\n  - {port: 80}\n' \
    >"$LABTEST_TMP/bad.yaml"
if ctl apply -f "$LABTEST_TMP/bad.yaml" 2>"$LABTEST_TMP/bad.err"; then labtest_fail "clusterIP 10.96.0.999 was accepted"; fi
grep -q "spec.clusterIP" "$LABTEST_TMP/bad.err" || labtest_fail "no field path: $(cat "$LABTEST_TMP/bad.err")"

echo "ok: ClusterIP TCP/UDP with reverse translation, node cgroups, ECONNREFUSED, backend removal (UDP sockets destroyed), affinity, hairpin, reloads, agent down"
