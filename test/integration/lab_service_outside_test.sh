#!/usr/bin/env bash
# Services reached from outside the cluster: service-lb's packet stage
# (MBR_STAGE_SERVICE), in a two-node lab in both routing modes (VXLAN here,
# direct routing with SERVICE_TEST_ROUTING=direct:
# integration.lab_service_outside_direct). The client is the lab's outside
# host (membrane-lab exec LAB ext), on the switch, in no node's cgroup, so
# no socket program sees it: only the packet stage can translate.
#   - NodePort, externalTrafficPolicy Cluster: connections to node1's
#     address reach be1 (node1, which sees the client's own address) and be2
#     (node2, SNATed to node1's address); the replies come back from the
#     NodePort; node1's kernel forwards none of it (nstat IpForwDatagrams):
#     the packet stage, the routing and delivery stages carry it all (node2,
#     in direct mode, forwards its pod's reply to node1's address itself);
#   - Maglev: connections from one client port reach the same backend through
#     node1's NodePort and through node2's (each node's own table, built
#     from the backends' addresses alone), and 20 ports see both backends;
#     again after maglev_table_size changed on both (SIGHUP: every table anew);
#   - nodeport_addresses with 127.0.0.0/8: node1's own sockets reach the
#     NodePort on 127.0.0.1; a pod's 127.0.0.1 stays its own loopback;
#   - a pod of node2 connecting to node1's NodePort: translated by node1 too;
#   - UDP to a NodePort, the reply from the NodePort's address and port;
#   - externalTrafficPolicy Local: node2 serves with its own backend and the
#     backend sees the client's address; node1, with none, drops (counted);
#     its healthCheckNodePort answers 200 (1 local endpoint) on node2 and
#     503 on node1, with kube-proxy's body;
#   - an external IP, routed by the outside host to node1;
#   - a NodePort without endpoints refuses a client from outside at once
#     (RST, ICMP port unreachable), as kube-proxy's REJECT;
#   - loadBalancerSourceRanges: a load balancer IP (routed to node1) serves a
#     client in its range and drops (counted) one outside it after the range
#     changes; the service's NodePort stays open;
#   - a service's backend removed: new connections go to the other one.
set -euo pipefail
source "${MEMBRANE_SOURCE_DIR:?}/lab/lab_test_lib.sh"
labtest_init
client="$LABTEST_SOURCE/test/integration/service_client.py"

lab=$(labtest_name so)
{
    printf 'name = "%s"\nrouting = "%s"\nmodules = ["service-lb"]\n' "$lab" "${SERVICE_TEST_ROUTING:-vxlan}"
    printf '\n[[nodes]]\nname = "node1"\n\n[[nodes]]\nname = "node2"\n'
    printf '\n[[pods]]\nname = "%s"\nnode = "%s"\nlabels = { app = "%s" }\n' be1 node1 web be2 node2 web cl node2 client
} >"$LABTEST_TMP/$lab.toml"
labtest_up "$LABTEST_TMP/$lab.toml"
labtest_serve "$lab" be1
labtest_serve "$lab" be2
# A TCP server that also says who it sees as the client.
for pod in be1 be2; do
    lab_cmd exec "$lab" "$pod" -- timeout 600 socat TCP4-LISTEN:7003,reuseaddr,fork \
        SYSTEM:"read line; echo pong $pod \$line \$SOCAT_PEERADDR" </dev/null >/dev/null 2>&1 &
    labtest_wait_listen "$lab" "$pod" 7003 tcp
done
be1=$(labtest_addr "$lab" be1)
be2=$(labtest_addr "$lab" be2)
status_json=$(lab_cmd status "$lab" -o json)
node_ip() { python3 -c 'import json,sys; print(next(n["ip"] for n in json.loads(sys.argv[1])["nodes"] if n["name"] == sys.argv[2]))' "$status_json" "$1"; }
node1=$(node_ip node1)
node2=$(node_ip node2)
outside=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["outside"]["ip"])' "$status_json")

ctl() { local node=$1; shift; lab_cmd ctl "$lab" "$node" -- "$@"; }
from_outside() { lab_cmd exec "$lab" ext -- python3 "$client" "$@"; }
# ask ADDRESS PORT : one TCP exchange from the outside host; prints the reply ("pong POD LINE PEER").
ask() { echo hello | lab_cmd exec "$lab" ext -- timeout 8 socat -t 3 -T 3 - "TCP4:$1:$2,connect-timeout=2" 2>&1 || true; }
apply() { printf '%s\n' "$1" >"$LABTEST_TMP/apply.yaml"; ctl node1 apply -f "$LABTEST_TMP/apply.yaml" >/dev/null; }
# slice NAME ADDRESS:NODE... : the EndpointSlice of service NAME with these ready endpoints.
slice() {
    local name=$1 spec
    shift
    printf 'apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: %s-1\n' "$name"
    printf '  labels:\n    kubernetes.io/service-name: %s\naddressType: IPv4\nports:\n' "$name"
    printf '  - {name: http, port: 7003, protocol: TCP}\n  - {name: dns, port: 7002, protocol: UDP}\nendpoints:\n'
    for spec in "$@"; do
        printf '  - addresses: ["%s"]\n    conditions: {ready: true}\n    nodeName: %s\n' "${spec%%:*}" "${spec#*:}"
    done
}
# [TYPE=LoadBalancer] service NAME CLUSTERIP TCP-NODEPORT UDP-NODEPORT [EXTRA-SPEC-LINES]
service() {
    printf 'apiVersion: v1\nkind: Service\nmetadata:\n  name: %s\nspec:\n  type: %s\n  clusterIP: %s\n' "$1" "${TYPE:-NodePort}" "$2"
    printf '  ports:\n  - {name: http, port: 80, targetPort: http, nodePort: %s, protocol: TCP}\n' "$3"
    printf '  - {name: dns, port: 53, targetPort: dns, nodePort: %s, protocol: UDP}\n%s' "$4" "${5:-}"
}
# wait_outside NODE FRONTEND COUNT : until NODE's maps give the outside frontend COUNT backends.
wait_outside() {
    local deadline=$((SECONDS + 20))
    until ctl "$1" -o json lb list | python3 -c '
import json, sys
frontend, count = sys.argv[1], int(sys.argv[2])
for f in json.load(sys.stdin)["frontends"]:
    if "%s:%d" % (f["address"], f["port"]) == frontend and f["scope"] == "outside" and len(f["backends"]) == count:
        sys.exit(0)
sys.exit(1)' "$2" "$3"; do
        ((SECONDS < deadline)) || labtest_fail "$1 never had $3 outside backends for $2"
        sleep 0.2
    done
}
packets() { ctl "$1" -o json module call service-lb Status | python3 -c 'import json,sys; print(json.load(sys.stdin)["packets"][sys.argv[1]])' "$2"; }
forwarded() { ip netns exec "ml-$lab-$1" nstat -az IpForwDatagrams | awk '/IpForwDatagrams/ {print $2}'; }

apply "$(service web 10.96.0.20 30080 30053 '  externalIPs: ["192.168.250.10"]
')
---
$(slice web "$be1:node1" "$be2:node2")"
wait_outside node1 "$node1:30080" 2
wait_outside node2 "$node2:30080" 2

labtest_log "NodePort (externalTrafficPolicy Cluster) from outside: both backends, BPF carries every packet"
translated_before=$(packets node1 translated)
forwarded_before=$(forwarded node1)
result=$(from_outside tcp "$node1" 30080 40)
echo "$result"
labtest_check "$result" 'r["errors"] == {} and set(r["replies"]) == {"be1", "be2"}' "TCP to node1's NodePort from outside"
translated=$(($(packets node1 translated) - translated_before))
((translated >= 40)) || labtest_fail "node1's packet stage translated $translated packets for 40 connections"
((forwarded_before == $(forwarded node1))) ||
    labtest_fail "node1's kernel forwarded $(($(forwarded node1) - forwarded_before)) datagrams: not the BPF path"
echo "node1: $translated packets translated, $(packets node1 snat) SNATed, $(packets node1 replied) replies sent back; IpForwDatagrams unchanged"
labtest_log "the local backend sees the client's address, the remote one node1's (SNAT)"
seen1="" seen2=""
for _ in $(seq 30); do
    reply=$(ask "$node1" 30080)
    case $reply in
        "pong be1 "*) seen1=${reply##* } ;;
        "pong be2 "*) seen2=${reply##* } ;;
        *) labtest_fail "from outside to $node1:30080: '$reply'" ;;
    esac
    [[ -n $seen1 && -n $seen2 ]] && break
done
[[ $seen1 == "$outside" ]] || labtest_fail "be1 saw $seen1 as the client, not the outside host $outside"
[[ $seen2 == "$node1" ]] || labtest_fail "be2 saw $seen2 as the client, not node1 ($node1): no SNAT"

# same_backend_through_both FIRST : 20 client ports from FIRST, each to one backend through node1's
# NodePort and through node2's (each node's own Maglev table), both backends seen over the 20.
same_backend_through_both() {
    local via1 via2
    via1=$(from_outside tcp-ports "$node1" 30080 "$1" 20)
    via2=$(from_outside tcp-ports "$node2" 30080 "$1" 20)
    echo "via node1: $via1"
    echo "via node2: $via2"
    python3 -c '
import json, sys
via1, via2 = (json.loads(arg)["by_port"] for arg in sys.argv[1:3])
errors = [json.loads(arg)["errors"] for arg in sys.argv[1:3]]
problems = ["errors via node1 %s, via node2 %s" % tuple(errors)] if any(errors) else []
problems += ["port %s: %s via node1, %s via node2" % (p, via1.get(p), via2.get(p))
             for p in sorted(set(via1) | set(via2)) if via1.get(p) != via2.get(p)]
if set(via1.values()) != {"be1", "be2"}:
    problems.append("20 client ports all went to %s" % sorted(set(via1.values())))
sys.exit("; ".join(problems) or None)' "$via1" "$via2" || labtest_fail "Maglev: the nodes chose differently"
}
# maglev_tables NODE SIZE : until NODE's Status has web's 2 tables (TCP and UDP port) of SIZE slots.
maglev_tables() {
    local deadline=$((SECONDS + 20))
    until ctl "$1" -o json module call service-lb Status 2>/dev/null | python3 -c '
import json, sys
r = json.load(sys.stdin)
sys.exit(0 if r["maglev_table_size"] == int(sys.argv[1]) and r["maglev_tables"] == 2 else 1)' "$2"; do
        ((SECONDS < deadline)) || labtest_fail "$1 never had 2 Maglev tables of $2 slots"
        sleep 0.2
    done
}
labtest_log "Maglev: one client port, the same backend through node1 and through node2"
maglev_tables node1 16381
maglev_tables node2 16381
same_backend_through_both $((20000 + RANDOM % 10000))
labtest_log "maglev_table_size = 1021 on both nodes (SIGHUP): the module reloads and makes every table anew"
for node in node1 node2; do
    config="/run/membrane-lab/$lab/$node/membrane.toml"
    [[ -f $config ]] || labtest_fail "no $config"
    printf '\n[module.service-lb]\nmaglev_table_size = 1021\nnodeport_addresses = ["192.168.0.0/16", "127.0.0.0/8"]\n' >>"$config"
    kill -HUP "$(python3 -c 'import json,sys; print(next(n["daemon"]["pid"] for n in json.loads(sys.argv[1])["nodes"] if n["name"] == sys.argv[2]))' "$status_json" "$node")"
done
maglev_tables node1 1021
maglev_tables node2 1021
same_backend_through_both $((30000 + RANDOM % 10000))
labtest_log "nodeport_addresses with 127.0.0.0/8: node1's own sockets reach its NodePort on 127.0.0.1, a pod's loopback stays the pod's"
node_cgroup="$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)/membrane-lab/$lab/node1"
[[ -d $node_cgroup ]] || labtest_fail "no cgroup $node_cgroup"
# Into node1's cgroup first: `ip netns exec` mounts a /sys of its own, without the cgroup2 mount.
result=$(sh -c 'echo $$ >"$1/cgroup.procs" && exec ip netns exec "$2" python3 "$3" tcp 127.0.0.1 30080 10' \
    sh "$node_cgroup" "ml-$lab-node1" "$client")
echo "$result"
labtest_check "$result" 'r["errors"] == {} and set(r["replies"]) <= {"be1", "be2"} and sum(r["replies"].values()) == 10' \
    "node1's own socket to its NodePort on 127.0.0.1"
result=$(lab_cmd exec "$lab" be1 -- python3 "$client" refused 127.0.0.1 30080)
echo "$result"
labtest_check "$result" 'r["errno"] == "ECONNREFUSED"' "be1 (on node1) to its own 127.0.0.1:30080, where nothing listens"

labtest_log "a pod of node2 to node1's NodePort: node1 translates it (it comes in from the other node)"
result=$(lab_cmd exec "$lab" cl -- python3 "$client" tcp "$node1" 30080 20)
echo "$result"
labtest_check "$result" 'r["errors"] == {} and set(r["replies"]) == {"be1", "be2"}' "TCP from node2's pod cl to node1's NodePort"

labtest_log "UDP to the NodePort from outside: sockets reach both backends (one SNATed), replies come from the NodePort"
seen=""
for _ in $(seq 20); do
    result=$(from_outside udp "$node2" 30053 3)
    labtest_check "$result" "r['errors'] == {} and r['sources'] == ['$node2:30053'] and sum(r['replies'].values()) == 3" \
        "UDP to node2's NodePort"
    seen+=" $(python3 -c 'import json,sys; print(*json.loads(sys.argv[1])["replies"])' "$result")"
    [[ $seen == *be1* && $seen == *be2* ]] && break
done
[[ $seen == *be1* && $seen == *be2* ]] || labtest_fail "20 UDP sockets from outside all went to one backend:$seen"

labtest_log "an external IP, routed to node1 by the outside host"
lab_cmd exec "$lab" ext -- ip route add 192.168.250.10/32 via "$node1"
result=$(from_outside tcp 192.168.250.10 80 20)
echo "$result"
labtest_check "$result" 'r["errors"] == {} and set(r["replies"]) == {"be1", "be2"}' "TCP to the external IP"

labtest_log "externalTrafficPolicy Local: node2 serves its own backend with the client's address; node1 drops; healthCheckNodePort says so"
apply "$(TYPE=LoadBalancer service local 10.96.0.21 30081 30054 '  externalTrafficPolicy: Local
  healthCheckNodePort: 30099
')
---
$(slice local "$be2:node2")"
wait_outside node2 "$node2:30081" 1
wait_outside node1 "$node1:30081" 0
reply=$(ask "$node2" 30081)
[[ $reply == "pong be2 hello $outside" ]] || labtest_fail "eTP Local via node2: '$reply'"
dropped_before=$(packets node1 dropped_no_backend)
result=$(lab_cmd exec "$lab" ext -- python3 "$client" refused "$node1" 30081)
echo "$result"
# Dropped: the connect times out (5 s), neither answered nor refused.
labtest_check "$result" 'r["errno"] in ("TimeoutError", "ETIMEDOUT", "timeout")' "eTP Local via node1, which has no backend"
(($(packets node1 dropped_no_backend) > dropped_before)) || labtest_fail "node1 counted no drop for eTP Local"
# healthz NODE: "STATUS BODY" of a load balancer's probe of NODE's healthCheckNodePort.
healthz() { lab_cmd exec "$lab" ext -- curl -sS --noproxy '*' --max-time 5 -w ' %{http_code}' "http://$1:30099/healthz" || true; }
health=$(healthz "$node2")
echo "node2: $health"
labtest_check "{\"r\": ${health% *}, \"status\": ${health##* }}" \
    'r["status"] == 200 and r["r"] == {"service": {"namespace": "default", "name": "local"}, "localEndpoints": 1, "serviceProxyHealthy": True}' \
    "node2's healthCheckNodePort"
health=$(healthz "$node1")
echo "node1: $health"
labtest_check "{\"r\": ${health% *}, \"status\": ${health##* }}" 'r["status"] == 503 and r["r"]["localEndpoints"] == 0' \
    "node1's healthCheckNodePort (no local endpoint)"

labtest_log "loadBalancerSourceRanges: the load balancer IP serves clients in the ranges, drops the others (counted)"
guarded() {
    TYPE=LoadBalancer service guarded 10.96.0.22 30082 30055 "  loadBalancerSourceRanges: [\"$1\"]
status:
  loadBalancer:
    ingress: [{ip: 192.168.250.20}]
"
    printf -- '---\n'
    slice guarded "$be1:node1" "$be2:node2"
}
apply "$(guarded "$outside/32")"
wait_outside node1 192.168.250.20:80 2
lab_cmd exec "$lab" ext -- ip route add 192.168.250.20/32 via "$node1"
result=$(from_outside tcp 192.168.250.20 80 10)
echo "$result"
labtest_check "$result" 'r["errors"] == {} and set(r["replies"]) == {"be1", "be2"}' "the load balancer IP from a client in its source range"
dropped_before=$(packets node1 dropped_source_range)
apply "$(guarded 10.99.0.0/16)"
deadline=$((SECONDS + 20))
until ctl node1 -o json lb list | python3 -c '
import json, sys
sys.exit(0 if any(f["address"] == "192.168.250.20" and f["port"] == 80 and f["scope"] == "outside" and
                  f["source_ranges"] == ["10.99.0.0/16"] for f in json.load(sys.stdin)["frontends"]) else 1)'; do
    ((SECONDS < deadline)) || labtest_fail "node1 never took the new source range"
    sleep 0.2
done
result=$(lab_cmd exec "$lab" ext -- python3 "$client" refused 192.168.250.20 80)
echo "$result"
labtest_check "$result" 'r["errno"] in ("TimeoutError", "ETIMEDOUT", "timeout")' "the load balancer IP from a client outside its source range"
(($(packets node1 dropped_source_range) > dropped_before)) || labtest_fail "node1 counted no source range drop"
# The NodePort of the same service is not guarded (kube-proxy's firewall chain guards the load balancer's address only).
result=$(from_outside tcp "$node1" 30082 10)
labtest_check "$result" 'r["errors"] == {} and set(r["replies"]) == {"be1", "be2"}' "the NodePort of a service with source ranges"

labtest_log "no endpoints: refused from outside too (a SYN gets a RST, a datagram an ICMP port unreachable)"
apply "$(service empty 10.96.0.23 30083 30056)"
wait_outside node1 "$node1:30083" 0
result=$(lab_cmd exec "$lab" ext -- python3 "$client" refused "$node1" 30083)
echo "$result"
labtest_check "$result" 'r["errno"] == "ECONNREFUSED" and r["seconds"] < 0.5' "TCP from outside to a NodePort without endpoints"
result=$(lab_cmd exec "$lab" ext -- python3 "$client" udp-refused "$node1" 30056)
echo "$result"
labtest_check "$result" 'r["errno"] == "ECONNREFUSED" and r["seconds"] < 0.5' "UDP from outside to a NodePort without endpoints"

labtest_log "a backend removed: new connections from outside go to the other"
apply "$(slice web "$be2:node2")"
wait_outside node1 "$node1:30080" 1
result=$(from_outside tcp "$node1" 30080 20)
labtest_check "$result" 'r["errors"] == {} and r["replies"] == {"be2": 20}' "after be1's removal"

echo "ok: NodePort TCP/UDP from outside (DNAT, SNAT for another node's backend, replies back, no kernel forwarding), Maglev (one backend per client port through either node), localhost NodePorts, external IP, eTP Local and its healthCheckNodePort, loadBalancerSourceRanges, no endpoints refused, backend removal"
