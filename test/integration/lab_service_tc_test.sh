#!/usr/bin/env bash
# Kubernetes services for pods with socket LB off ([module.service-lb]
# socket_lb = false): service-lb's packet stage translates the pods' own
# packets (from their veths), in a two-node lab in both routing modes (VXLAN
# here, direct routing with SERVICE_TEST_ROUTING=direct:
# integration.lab_service_tc_direct). web (ClusterIP 10.96.0.10, TCP 80 ->
# 7001, UDP 53 -> 7002) has backends be1 (node1) and be2 (node2); the client
# fe is on node1. The ClusterIP is routed nowhere.
#   - the setting switched by editing membrane.toml and a SIGHUP (the module
#     reloads): node1's socket programs are detached, since every connection
#     below counts in the packet stage's `translated`, which a connection
#     translated at connect() never reaches;
#   - TCP: both backends (the remote one's replies come back over the overlay
#     or the underlay and are translated back on node1), getpeername() is the
#     service, as the socket only ever saw it; UDP: replies from the service
#     address, sockets spread over both backends;
#   - a pod's connection straight to a backend from the source port its
#     connection to the service just used gets its own replies (the ended
#     one's NAT entries are forgotten at the SYN);
#   - hairpin: be1 reaches itself through its service (SNAT to 169.254.42.1,
#     so its replies come back through the stage);
#   - no endpoints: a TCP SYN is answered with a RST, UDP with an ICMP port
#     unreachable (ECONNREFUSED at once, as the socket path refuses);
#   - socket_lb = true again: connects are translated at connect() once more
#     (the stage's counter stays still); slots without their backend's
#     address (as a module before they carried it wrote them) still are;
#   - map sizes from config (services_map_size, nat_map_size,
#     affinity_map_size; SIGHUP): the pins are resized (bpftool shows the new
#     max_entries), the NAT entries the pods' flows made are kept, and the
#     ClusterIP keeps working; a service that then needs more entries than
#     the 1024 of the services map is refused whole, and `Services` and
#     `Status` say so, while the others stay served;
#   - a sync the kernel refuses with nothing wrong in the objects (the
#     services map filled by another writer) is tried again on the module's
#     own timer: once the map has room, the service is served with no object
#     changed.
set -euo pipefail
source "${MEMBRANE_SOURCE_DIR:?}/lab/lab_test_lib.sh"
labtest_init
command -v bpftool >/dev/null || labtest_skip "bpftool is not installed (scripts/install-deps.sh)"
client="$LABTEST_SOURCE/test/integration/service_client.py"

lab=$(labtest_name st)
{
    printf 'name = "%s"\nrouting = "%s"\nmodules = ["service-lb"]\n' "$lab" "${SERVICE_TEST_ROUTING:-vxlan}"
    printf '\n[[nodes]]\nname = "node1"\n\n[[nodes]]\nname = "node2"\n'
    printf '\n[[pods]]\nname = "%s"\nnode = "%s"\nlabels = { app = "%s" }\n' fe node1 fe be1 node1 web be2 node2 web
} >"$LABTEST_TMP/$lab.toml"
labtest_up "$LABTEST_TMP/$lab.toml"
labtest_serve "$lab" be1
labtest_serve "$lab" be2
be1=$(labtest_addr "$lab" be1)
be2=$(labtest_addr "$lab" be2)
vip=10.96.0.10

ctl() { lab_cmd ctl "$lab" node1 -- "$@"; }
in_pod() { local pod=$1; shift; lab_cmd exec "$lab" "$pod" -- python3 "$client" "$@"; }
packets() { ctl -o json module call service-lb Status | python3 -c 'import json,sys; print(json.load(sys.stdin)["packets"][sys.argv[1]])' "$1"; }
generation() {
    ctl -o json module list | python3 -c 'import json,sys; print(next(m["generation"] for m in json.load(sys.stdin) if m["name"] == "service-lb" and m["state"] == "running"))' 2>/dev/null || echo 0
}
# service_lb_config true|false [KEY = VALUE]... : node1's [module.service-lb] (socket_lb and the other keys), by
# its config file and a SIGHUP; returns once the module reloaded with it.
service_lb_config() {
    local config="/run/membrane-lab/$lab/node1/membrane.toml" socket=$1 pid was deadline
    shift
    sed -i '/^\[module.service-lb\]$/,$d' "$config"
    printf '[module.service-lb]\nsocket_lb = %s\n' "$socket" >>"$config"
    (($# == 0)) || printf '%s\n' "$@" >>"$config"
    pid=$(labtest_json "$lab" "next(n['daemon']['pid'] for n in s['nodes'] if n['name'] == 'node1')")
    was=$(generation)
    kill -HUP "$pid"
    deadline=$((SECONDS + 20))
    until (($(generation) > was)) && [[ $(ctl -o json module call service-lb Status |
        python3 -c 'import json,sys; print(str(json.load(sys.stdin)["socket_lb"]).lower())') == "$socket" ]]; do
        ((SECONDS < deadline)) || labtest_fail "service-lb was not reloaded with socket_lb = $socket $*"
        sleep 0.2
    done
}
socket_lb() { service_lb_config "$1"; }
pins=$(labtest_pins "$lab" node1)
max_entries() { bpftool -j map show pinned "$pins/$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["max_entries"])'; }
entries() { bpftool -j map dump pinned "$pins/$1" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
# wait_module METHOD PYTHON-CONDITION-ON-r DESCRIPTION : until service-lb's METHOD (Status, Services) answers
# JSON that meets the condition (20 s), else fails with the last answer.
wait_module() {
    local deadline=$((SECONDS + 20))
    until ctl -o json module call service-lb "$1" |
        python3 -c 'import json,sys; r=json.load(sys.stdin); sys.exit(0 if eval(sys.argv[1]) else 1)' "$2"; do
        ((SECONDS < deadline)) || labtest_fail "$3: $(ctl -o json module call service-lb "$1")"
        sleep 0.2
    done
}
slice() {
    local name=$1 spec
    shift
    printf 'apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: %s-1\n' "$name"
    printf '  labels:\n    kubernetes.io/service-name: %s\naddressType: IPv4\nports:\n' "$name"
    printf '  - {name: tcp-echo, port: 7001, protocol: TCP}\n  - {name: udp-echo, port: 7002, protocol: UDP}\nendpoints:\n'
    for spec in "$@"; do
        printf '  - addresses: ["%s"]\n    conditions: {ready: true}\n    nodeName: %s\n' "${spec%%:*}" "${spec#*:}"
    done
    [[ $# -gt 0 ]] || printf '  []\n'
}
service() {
    printf 'apiVersion: v1\nkind: Service\nmetadata:\n  name: %s\nspec:\n  clusterIP: %s\n' "$1" "$2"
    printf '  ports:\n  - {name: tcp-echo, port: 80, targetPort: tcp-echo, protocol: TCP}\n'
    printf '  - {name: udp-echo, port: 53, targetPort: udp-echo, protocol: UDP}\n'
}
apply() { printf '%s\n' "$1" >"$LABTEST_TMP/apply.yaml"; ctl apply -f "$LABTEST_TMP/apply.yaml" >/dev/null; }
wait_backends() {
    local deadline=$((SECONDS + 20))
    until ctl -o json lb list | python3 -c '
import json, sys
frontend, count = sys.argv[1], int(sys.argv[2])
for f in json.load(sys.stdin)["frontends"]:
    if "%s:%d" % (f["address"], f["port"]) == frontend and f["scope"] == "node" and len(f["backends"]) == count:
        sys.exit(0)
sys.exit(1)' "$1" "$2"; do
        ((SECONDS < deadline)) || labtest_fail "node1 never had $2 backends for $1"
        sleep 0.2
    done
}

labtest_log "socket_lb = false on node1 (config and SIGHUP)"
socket_lb false
apply "$(service web $vip)
---
$(slice web "$be1:node1" "$be2:node2")
---
$(service self 10.96.0.13)
---
$(slice self "$be1:node1")
---
$(service empty 10.96.0.11)"
wait_backends "$vip:80" 2
wait_backends 10.96.0.13:80 1
wait_backends 10.96.0.11:80 0

labtest_log "ClusterIP TCP from a pod: both backends, every connection through the packet stage"
before=$(packets translated)
result=$(in_pod fe tcp "$vip" 80 40)
echo "$result"
labtest_check "$result" 'r["errors"] == {} and set(r["replies"]) == {"be1", "be2"}' "TCP to the ClusterIP"
labtest_check "$result" "r['peers'] == ['$vip:80']" "getpeername() must show the service"
translated=$(($(packets translated) - before))
# A connection is at least 3 packets of the client's (SYN, the line, FIN); none if connect() translated it.
((translated >= 120)) || labtest_fail "the packet stage translated $translated packets for 40 connections"
echo "node1's packet stage: $translated packets translated, $(packets replied) replies translated back"

labtest_log "ClusterIP UDP from a pod: replies from the service address, sockets over both backends"
seen=""
for _ in $(seq 20); do
    result=$(in_pod fe udp "$vip" 53 3)
    labtest_check "$result" "r['errors'] == {} and r['sources'] == ['$vip:53'] and sum(r['replies'].values()) == 3" \
        "UDP to the ClusterIP"
    seen+=" $(python3 -c 'import json,sys; print(*json.loads(sys.argv[1])["replies"])' "$result")"
    [[ $seen == *be1* && $seen == *be2* ]] && break
done
[[ $seen == *be1* && $seen == *be2* ]] || labtest_fail "20 UDP sockets all went to one backend:$seen"

labtest_log "the same source port to the ClusterIP, then to its backend directly: each connection gets its own replies"
# The first connection's NAT entries outlive it (10 s after its FIN); the second one's SYN-ACK has
# the tuple of the first one's replies, and must not be made the service's.
result=$(lab_cmd exec "$lab" fe -- timeout 20 python3 -c '
import json, socket, sys
vip, backends = sys.argv[1], {"be1": sys.argv[2], "be2": sys.argv[3]}
def exchange(address, port, source_port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.settimeout(3)
    s.bind(("", source_port))
    try:
        s.connect((address, port))
        s.sendall(b"x\n")
        return s.getsockname()[1], s.recv(100).decode().split()
    except OSError as error:
        return source_port, ["error", type(error).__name__]
    finally:
        s.close()
port, first = exchange(vip, 80, 0)
_, second = exchange(backends.get(first[1], "0.0.0.0"), 7001, port)
print(json.dumps({"port": port, "service": first, "direct": second}))' "$vip" "$be1" "$be2")
echo "$result"
labtest_check "$result" 'r["service"][0] == "pong" and r["direct"][:2] == ["pong", r["service"][1]]' \
    "a direct connection from the port a service connection used"

labtest_log "hairpin: be1 reaches itself through its service (SNAT to 169.254.42.1)"
snat=$(packets snat)
result=$(in_pod be1 tcp 10.96.0.13 80 5)
echo "$result"
labtest_check "$result" 'r["errors"] == {} and r["replies"] == {"be1": 5} and r["peers"] == ["10.96.0.13:80"]' "hairpin"
(($(packets snat) >= snat + 15)) || labtest_fail "the hairpin connections were not SNATed ($snat -> $(packets snat))"

labtest_log "no endpoints: a SYN gets a RST, a datagram an ICMP port unreachable"
result=$(in_pod fe refused 10.96.0.11 80)
echo "$result"
labtest_check "$result" 'r["errno"] == "ECONNREFUSED" and r["seconds"] < 0.5' "TCP to a service without endpoints"
result=$(in_pod fe udp-refused 10.96.0.11 53)
echo "$result"
labtest_check "$result" 'r["errno"] == "ECONNREFUSED" and r["seconds"] < 0.5' "UDP to a service without endpoints"

labtest_log "socket_lb = true again: translated at connect(), the packet stage sees none of it"
socket_lb true
before=$(packets translated)
result=$(in_pod fe tcp "$vip" 80 20)
labtest_check "$result" "r['errors'] == {} and set(r['replies']) == {'be1', 'be2'} and r['peers'] == ['$vip:80']" \
    "TCP to the ClusterIP with socket LB"
(($(packets translated) == before)) || labtest_fail "with socket LB the packet stage translated $(($(packets translated) - before)) packets"

labtest_log "slots an older module wrote (a backend id alone, no address) are still translated, through the backends map"
# Slots 1 and 2 of the ClusterIP's TCP frontend for this node's sockets (scope 0): key (10.96.0.10, 80, TCP,
# scope, slot); the value's last 8 bytes (the backend's address and port) zeroed, its id kept.
for slot in 1 2; do
    key="0x0a 0x60 0x00 0x0a 0x00 0x50 0x06 0x00 $(printf '0x%02x 0x00 0x00 0x00' "$slot")"
    # shellcheck disable=SC2086 # one word a byte
    value=$(bpftool -j map lookup pinned "$pins/service_lb_services_v1" key $key | python3 -c '
import json, sys
value = [int(b, 16) for b in json.load(sys.stdin)["value"]]
assert value[8:12] != [0] * 4, "the slot has no backend address: %s" % value
print(" ".join("0x%02x" % b for b in value[:8] + [0] * 8))')
    # shellcheck disable=SC2086
    bpftool map update pinned "$pins/service_lb_services_v1" key $key value $value
done
result=$(in_pod fe tcp "$vip" 80 30)
labtest_check "$result" "r['errors'] == {} and set(r['replies']) == {'be1', 'be2'} and r['peers'] == ['$vip:80']" \
    "TCP to the ClusterIP through slots without their backend's address"

labtest_log "map sizes from config (SIGHUP): the pins are resized with their entries, the ClusterIP keeps working"
nat_entries=$(entries service_lb_nat_v1)
((nat_entries > 0)) || labtest_fail "the pods' flows left no NAT entries to carry over"
service_lb_config true "services_map_size = 1024" "nat_map_size = 8192" "affinity_map_size = 131072"
for map_size in service_lb_services_v1:1024 service_lb_nat_v1:8192 service_lb_affinity_v1:131072; do
    [[ $(max_entries "${map_size%%:*}") == "${map_size#*:}" ]] ||
        labtest_fail "${map_size%%:*} has max_entries $(max_entries "${map_size%%:*}"), not ${map_size#*:}"
done
(($(entries service_lb_nat_v1) == nat_entries)) ||
    labtest_fail "the resized NAT map holds $(entries service_lb_nat_v1) entries, the old one held $nat_entries"
# The reloaded module read back the slots written without their backend, and writes them whole at its first sync.
slots_whole() {
    bpftool -j map dump pinned "$pins/service_lb_services_v1" | python3 -c '
import json, sys
slots = [e for e in json.load(sys.stdin) if e["key"][:8] == ["0x0a", "0x60", "0x00", "0x0a", "0x00", "0x50", "0x06", "0x00"]
         and e["key"][8] != "0x00"]
bare = [e for e in slots if all(int(b, 16) == 0 for b in e["value"][8:12])]
sys.exit(1 if len(slots) != 2 or bare else 0)'
}
deadline=$((SECONDS + 20))
until slots_whole; do
    ((SECONDS < deadline)) || labtest_fail "the reload left slots of the ClusterIP without their backend address"
    sleep 0.2
done
result=$(in_pod fe tcp "$vip" 80 30)
labtest_check "$result" "r['errors'] == {} and set(r['replies']) == {'be1', 'be2'}" "TCP to the ClusterIP after the resize"

labtest_log "a service that needs more than the 1024 entries of the services map is refused whole, and says so"
specs=()
for i in $(seq 0 599); do specs+=("10.250.$((i / 200)).$((i % 200 + 1)):node2"); done
apply "$(service big 10.96.0.20)
---
$(slice big "${specs[@]}")"
wait_module Services 'any(s["service"] == "default/big" and s["problem"].startswith("not in the datapath as applied: ")
    and "the service map has 1024: nothing was changed" in s["problem"] for s in r["services"])' \
    "service big was not reported as refused"
status=$(ctl -o json module call service-lb Status)
labtest_check "$status" '"the service map has 1024: nothing was changed" in r["datapath_error"] and "default/web" not in r["problems"]' \
    "Status after the refused sync"
ctl -o json lb list | python3 -c 'import json,sys; sys.exit(any(f["address"] == "10.96.0.20" for f in json.load(sys.stdin)["frontends"]))' ||
    labtest_fail "a frontend of the refused service is in the maps"
result=$(in_pod fe tcp "$vip" 80 30)
labtest_check "$result" "r['errors'] == {} and set(r['replies']) == {'be1', 'be2'}" "TCP to the ClusterIP beside the refused service"

labtest_log "a sync the kernel refuses (a pin filled by someone else) is tried again with nothing changed, and then serves"
ctl delete svc big >/dev/null
ctl delete endpointslice big-1 >/dev/null
wait_module Status 'r["datapath_error"] == ""' "Status once the big service is gone"
# Keys of service_lb_key (address, port, protocol, scope, slot) under 198.18.0.0/15, no service's, up to the
# map's 1024 entries: the agent's own count still has room, the kernel's map has none.
junk="$LABTEST_TMP/junk"
python3 - "$(entries service_lb_services_v1)" "$pins/service_lb_services_v1" "$junk" <<'PY'
import struct, sys
used, pin, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
hexes = lambda data: " ".join("%02x" % b for b in data)
with open(out + ".add", "w") as add, open(out + ".del", "w") as delete:
    for i in range(1024 - used):
        key = struct.pack("!4sH", bytes([198, 18, i // 256, i % 256]), 80) + struct.pack("<BBI", 6, 0, 0)
        add.write("map update pinned %s key hex %s value hex %s\n" % (pin, hexes(key), hexes(bytes(16))))
        delete.write("map delete pinned %s key hex %s\n" % (pin, hexes(key)))
PY
bpftool batch file "$junk.add" >/dev/null
(($(entries service_lb_services_v1) == 1024)) || labtest_fail "the services map holds $(entries service_lb_services_v1) entries, not 1024"
apply "$(service late 10.96.0.21)
---
$(slice late "$be1:node1")"
wait_module Status '"No space left" in r["datapath_error"] or "Argument list too long" in r["datapath_error"]' \
    "Status while the kernel's map is full"
bpftool batch file "$junk.del" >/dev/null
# No object changes from here: only the module's retry can write the service.
wait_module Status 'r["datapath_error"] == "" and "default/late" not in r["problems"]' "Status after the retry"
result=$(in_pod fe tcp 10.96.0.21 80 5)
labtest_check "$result" "r['errors'] == {} and set(r['replies']) == {'be1'}" "TCP to the service the retry wrote"

echo "ok: socket_lb switched by a reload both ways; ClusterIP TCP/UDP per packet (local and remote backends), hairpin, RST/ICMP for no endpoints; map sizes resized by a reload, a service too big refused; a refused sync retried"
