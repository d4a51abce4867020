#!/usr/bin/env bash
# The cluster store end to end (nodes, identities and endpoints): two agents
# (node-a, node-b), each on its own private bus, share one etcd (Debian's
# etcd-server, inside the test's namespace on 127.0.0.1). Each membrane.toml
# lists only its own node: each learns the other from etcd. Pods are added with membrane-cni exactly as a
# runtime does, in opposite orders on the two nodes:
#   - the same identity-relevant labels get the same number on both nodes
#     (pod names differ), other labels another number, all of them
#     [cluster] id << 16 | n;
#   - `membranectl identity list` on either node shows the other's numbers;
#   - with etcd down, a pod with known labels is still added (from what the
#     node holds), a pod with new labels is refused with a message naming the
#     kvstore, and nothing of it is left behind; once etcd is back, the pod
#     added meanwhile is published;
#   - each node's ipcache holds the other node's pods (/32, their identity,
#     their node's address as tunnel endpoint), published in etcd;
#   - after an agent restart with etcd still down, its pods keep their numbers
#     and the other node's pods stay in its ipcache.
set -euo pipefail
source "$MEMBRANE_SOURCE_DIR/test/lib/harness.sh"
harness_init
CNI_BIN="$MEMBRANE_BUILD_DIR/cni/membrane-cni"
[[ -x "$CNI_BIN" ]] || harness_fail "no membrane-cni at $CNI_BIN (is the build complete?)"

CLUSTER_ID=3
ns=$(harness_netns cluster)

harness_etcd "$ns"

# Per node: its bus, config and daemon. The agent's functions below take the
# node and point MEMBRANE_DBUS_ADDRESS at that node's bus.
declare -A BUS PID CONFIG
# Each membrane.toml lists only its own node: the other comes from etcd.
declare -A NODE_TOML=(
    [node-a]=$'[[nodes]]\nname = "node-a"\nip = "192.168.78.1"\npod_cidr = "10.30.1.0/24"'
    [node-b]=$'[[nodes]]\nname = "node-b"\nip = "192.168.78.2"\npod_cidr = "10.30.2.0/24"'
)
mkdir -m 0755 "$HARNESS_TMP/modules"
for node in node-a node-b; do
    harness_private_bus "bus-$node"
    BUS[$node]=$HARNESS_BUS_ADDRESS
    export MEMBRANE_DBUS_ADDRESS=${BUS[$node]}
    CONFIG[$node]="$HARNESS_TMP/$node.toml"
    harness_write_config "${CONFIG[$node]}" "$node" "$HARNESS_TMP/modules" '[]' '[]' \
        "$(printf '[cluster]\nname = "e2e"\nid = %s\n\n[kvstore]\nendpoints = ["http://127.0.0.1:2379"]\nlease_ttl = 5\ndial_timeout = 1\nrequest_timeout = 2\n\n%s' "$CLUSTER_ID" "${NODE_TOML[$node]}")"
done
start_agent() {  # start_agent NODE
    export MEMBRANE_DBUS_ADDRESS=${BUS[$1]}
    harness_daemon "$ns" "${CONFIG[$1]}"
    PID[$1]=$HARNESS_DAEMON_PID
}
on() {  # on NODE CMD... : runs CMD with NODE's bus
    local node=$1
    shift
    MEMBRANE_DBUS_ADDRESS=${BUS[$node]} "$@"
}
wait_connected() {  # wait_connected NODE
    local deadline=$((SECONDS + 20))
    until on "$1" harness_ctl -o json status | grep -q '"kvstore_state": *"connected"'; do
        ((SECONDS < deadline)) || harness_fail "$1 did not connect to etcd: $(on "$1" harness_ctl status)"
        sleep 0.2
    done
}
for node in node-a node-b; do start_agent "$node"; done
for node in node-a node-b; do wait_connected "$node"; done

# cni_add NODE POD APP : ADD of pod POD (namespace shop, label app=APP) on NODE;
# prints the result; fails like the plugin.
cni_add() {
    local node=$1 pod=$2 app=$3
    local pod_ns
    pod_ns=$(harness_netns "$pod")
    local conf="{\"cniVersion\": \"1.0.0\", \"name\": \"membrane-test\", \"type\": \"membrane\", \"dbus_address\": \"${BUS[$node]}\", \"labels\": {\"app\": \"$app\"}}"
    ip netns exec "$ns" env -i PATH="$PATH" CNI_COMMAND=ADD CNI_CONTAINERID="$HARNESS_RUN_ID-$pod" \
        CNI_NETNS="/run/netns/$pod_ns" CNI_IFNAME=eth0 CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=$pod" \
        CNI_PATH="$MEMBRANE_BUILD_DIR/cni" "$CNI_BIN" <<<"$conf"
}
# identity_of NODE POD : the identity of POD's endpoint on NODE.
identity_of() {
    on "$1" harness_ctl -o json endpoint list | python3 -c '
import json, sys
pod = sys.argv[1]
for e in json.load(sys.stdin):
    if e["labels"].get("k8s:io.kubernetes.pod.name") == pod:
        print(e["identity"])
        break
else:
    sys.exit(f"no endpoint for pod {pod}")' "$2"
}

# --- nodes: each learns the other from etcd -------------------------------------------
deadline=$((SECONDS + 10))
until on node-a harness_ctl -o json node list | grep -q '"node-b"' && on node-b harness_ctl -o json node list | grep -q '"node-a"'; do
    ((SECONDS < deadline)) || harness_fail "the nodes did not learn of each other: node-a: $(on node-a harness_ctl node list); node-b: $(on node-b harness_ctl node list)"
    sleep 0.2
done
on node-a harness_ctl -o json node list | python3 -c '
import json, sys
nodes = {n["name"]: n for n in json.load(sys.stdin)}
b = nodes["node-b"]
assert b["ip"] == "192.168.78.2" and b["pod_cidr"] == "10.30.2.0/24" and not b["local"], b
print("ok: node-a knows node-b (192.168.78.2, 10.30.2.0/24) from etcd; its membrane.toml lists only itself")' ||
    harness_fail "node-a's view of node-b is wrong: $(on node-a harness_ctl -o json node list)"

# --- the same labels, the same number, on both nodes ---------------------------------
for spec in "node-a web-1 web" "node-a db-1 db" "node-b db-2 db" "node-b web-2 web" "node-b cache-1 cache"; do
    read -r node pod app <<<"$spec"
    out=$(cni_add "$node" "$pod" "$app") || harness_fail "ADD $pod on $node failed: $out"
done
web_a=$(identity_of node-a web-1) web_b=$(identity_of node-b web-2)
db_a=$(identity_of node-a db-1) db_b=$(identity_of node-b db-2)
cache=$(identity_of node-b cache-1)
[[ "$web_a" == "$web_b" ]] || harness_fail "app=web has $web_a on node-a but $web_b on node-b"
[[ "$db_a" == "$db_b" ]] || harness_fail "app=db has $db_a on node-a but $db_b on node-b"
[[ "$web_a" != "$db_a" && "$cache" != "$web_a" && "$cache" != "$db_a" ]] ||
    harness_fail "different labels share a number: web $web_a, db $db_a, cache $cache"
for id in "$web_a" "$db_a" "$cache"; do
    ((id >> 16 == CLUSTER_ID && (id & 0xFFFF) >= 256)) || harness_fail "identity $id is not cluster $CLUSTER_ID's"
done
echo "ok: web $web_a, db $db_a on both nodes (added in opposite orders), cache $cache"

# node-a lists node-b's identity too.
on node-a harness_ctl -o json identity list | python3 -c '
import json, sys
ids = {i["id"]: i for i in json.load(sys.stdin)}
cache = int(sys.argv[1])
assert cache in ids and ids[cache]["labels"].get("app") == "cache", ids.get(cache)
assert ids[cache]["endpoints"] == 0, ids[cache]
print(f"ok: node-a lists identity {cache} (app=cache) of node-b, with 0 local endpoints")' "$cache" ||
    harness_fail "node-a does not list node-b's identity $cache"

# Each node's ipcache holds the other node's pods as /32s with their identity
# and that node's address as the tunnel endpoint (published in etcd).
BPFFS=$(harness_bpffs bpffs)
remote_entry() { ipcache_entry "$BPFFS/membrane/$1" "$2"; }  # remote_entry NODE POD_IP
pod_ip() {  # pod_ip NODE POD
    on "$1" harness_ctl -o json endpoint list | python3 -c '
import json, sys
print(next(e["address"] for e in json.load(sys.stdin) if e["labels"].get("k8s:io.kubernetes.pod.name") == sys.argv[1]))' "$2"
}
web2_ip=$(pod_ip node-b web-2) web1_ip=$(pod_ip node-a web-1)
deadline=$((SECONDS + 10))
until [[ "$(remote_entry node-a "$web2_ip")" == "$web_a 192.168.78.2" && "$(remote_entry node-b "$web1_ip")" == "$web_a 192.168.78.1" ]]; do
    ((SECONDS < deadline)) || harness_fail "the ipcaches lack the other node's pods: node-a has '$(remote_entry node-a "$web2_ip")' for $web2_ip, node-b has '$(remote_entry node-b "$web1_ip")' for $web1_ip"
    sleep 0.2
done
echo "ok: node-a's ipcache has web-2 ($web2_ip) as identity $web_a behind 192.168.78.2, and node-b has web-1"

# --- etcd away -----------------------------------------------------------------------------
harness_stop_etcd
out=$(cni_add node-a web-3 web) || harness_fail "ADD of a pod with known labels failed while etcd is down: $out"
[[ "$(identity_of node-a web-3)" == "$web_a" ]] || harness_fail "web-3 did not get $web_a"
rc=0
out=$(cni_add node-a new-1 brand-new) || rc=$?
((rc != 0)) || harness_fail "ADD of a pod with new labels succeeded while etcd is down: $out"
grep -q "no cluster-wide identity for .*app=brand-new.*kvstore" <<<"$out" ||
    harness_fail "the refusal does not name the labels and the kvstore: $out"
python3 -c 'import json,sys; sys.exit(json.loads(sys.argv[1]).get("code") != 11)' "$out" ||
    harness_fail "the refusal is not CNI code 11 (try again later): $out"
if on node-a harness_ctl -o json endpoint list | grep -q '"new-1"'; then
    harness_fail "the refused pod left an endpoint behind"
fi
echo "ok: etcd down: known labels added (identity $web_a), new labels refused: $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["msg"])' "$out")"


# etcd back (same data, node-a's lease kept): web-3, added while it was away,
# is published on reconnection, and node-b has it. Nothing else happens in
# the cluster meanwhile, so no watch event could have set it off.
harness_etcd "$ns"
web3_ip=$(pod_ip node-a web-3)
deadline=$((SECONDS + 20))
until [[ "$(remote_entry node-b "$web3_ip")" == "$web_a 192.168.78.1" ]]; do
    ((SECONDS < deadline)) || harness_fail "web-3 ($web3_ip), added while etcd was away, never reached node-b: '$(remote_entry node-b "$web3_ip")'"
    sleep 0.2
done
echo "ok: etcd back: web-3 ($web3_ip), added while it was away, published and in node-b's ipcache"
harness_stop_etcd

# A restart while etcd is down: the pods keep their numbers, and the other
# node's pods stay in the ipcache (the node's caches).
harness_stop_daemon "${PID[node-a]}" || harness_fail "node-a did not stop cleanly"
start_agent node-a
[[ "$(identity_of node-a web-1)" == "$web_a" && "$(identity_of node-a db-1)" == "$db_a" ]] ||
    harness_fail "after a restart without etcd, node-a's pods changed identity"
[[ "$(remote_entry node-a "$web2_ip")" == "$web_a 192.168.78.2" ]] ||
    harness_fail "after a restart without etcd, node-a lost node-b's web-2: '$(remote_entry node-a "$web2_ip")'"
echo "ok: node-a restarted without etcd; its pods kept $web_a and $db_a, and node-b's pods stayed in its ipcache"

for node in node-a node-b; do harness_stop_daemon "${PID[$node]}" || harness_fail "$node did not stop cleanly"; done
harness_stop_etcd
harness_log "cluster store: identities agreed and endpoints shared across nodes, both kept without etcd"
