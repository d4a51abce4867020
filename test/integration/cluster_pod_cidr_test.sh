#!/usr/bin/env bash
# Pod CIDRs from [cluster] pod_cidr_pool: two agents whose membrane.toml has
# no [[nodes]] at all (only [agent] node_ip) share one etcd. Each takes a
# block of the pool by transaction (the lowest free ones, different), leases
# pod addresses from it (a CNI ADD), and lists the other with its block. A
# restart keeps the block, from state_dir and, with that file gone, from the
# store. A third agent with a live node's name is refused at start with a
# message naming the other's address, and takes nothing.
set -euo pipefail
source "$MEMBRANE_SOURCE_DIR/test/lib/harness.sh"
harness_init
CNI_BIN="$MEMBRANE_BUILD_DIR/cni/membrane-cni"
[[ -x "$CNI_BIN" ]] || harness_fail "no membrane-cni at $CNI_BIN (is the build complete?)"
ns=$(harness_netns pool)
harness_etcd "$ns"
mkdir -m 0755 "$HARNESS_TMP/modules"

declare -A BUS PID CONFIG
cluster_toml() {  # cluster_toml NODE_IP
    printf '[cluster]\nname = "pool"\npod_cidr_pool = "10.60.0.0/16"\npod_cidr_size = 24\n\n[kvstore]\nendpoints = ["http://127.0.0.1:2379"]\nlease_ttl = 5\ndial_timeout = 1\nrequest_timeout = 2\n'
}
make_node() {  # make_node KEY NODE_NAME NODE_IP
    harness_private_bus "bus-$1"
    BUS[$1]=$HARNESS_BUS_ADDRESS
    export MEMBRANE_DBUS_ADDRESS=${BUS[$1]}
    CONFIG[$1]="$HARNESS_TMP/$1.toml"
    harness_write_config "${CONFIG[$1]}" "$2" "$HARNESS_TMP/modules" '[]' '[]' "$(cluster_toml)"
    sed -i "s/^\[agent\]$/[agent]\nnode_ip = \"$3\"/" "${CONFIG[$1]}"
}
start_agent() {
    export MEMBRANE_DBUS_ADDRESS=${BUS[$1]}
    harness_daemon "$ns" "${CONFIG[$1]}"
    PID[$1]=$HARNESS_DAEMON_PID
}
on() { local key=$1; shift; MEMBRANE_DBUS_ADDRESS=${BUS[$key]} "$@"; }
nodes_of() {  # nodes_of KEY : "name ip cidr local" lines, sorted
    on "$1" harness_ctl -o json node list | python3 -c '
import json, sys
for n in sorted(json.load(sys.stdin), key=lambda n: n["name"]):
    print(n["name"], n["ip"], n["pod_cidr"], "local" if n["local"] else "remote")'
}
etcd_get() { ip netns exec "$ns" etcdctl --endpoints=http://127.0.0.1:2379 get --prefix "$@"; }

make_node a node-a 192.168.79.1
make_node b node-b 192.168.79.2
start_agent a
start_agent b
expected_a=$'node-a 192.168.79.1 10.60.0.0/24 local\nnode-b 192.168.79.2 10.60.1.0/24 remote'
deadline=$((SECONDS + 15))
until [[ "$(nodes_of a)" == "$expected_a" && "$(nodes_of b)" == $'node-a 192.168.79.1 10.60.0.0/24 remote\nnode-b 192.168.79.2 10.60.1.0/24 local' ]]; do
    ((SECONDS < deadline)) || harness_fail "nodes: node-a lists
$(nodes_of a)
node-b lists
$(nodes_of b)"
    sleep 0.2
done
[[ "$(etcd_get membrane/v1/pool/podcidrs/)" == $'membrane/v1/pool/podcidrs/10.60.0.0/24\nnode-a\nmembrane/v1/pool/podcidrs/10.60.1.0/24\nnode-b' ]] ||
    harness_fail "podcidrs in etcd: $(etcd_get membrane/v1/pool/podcidrs/)"
echo "ok: node-a took 10.60.0.0/24 and node-b 10.60.1.0/24 from the pool; each lists the other"

# A pod's address comes from the node's block.
pod_ns=$(harness_netns pod1)
result=$(ip netns exec "$ns" env -i PATH="$PATH" CNI_COMMAND=ADD CNI_CONTAINERID="$HARNESS_RUN_ID-pod1" \
    CNI_NETNS="/run/netns/$pod_ns" CNI_IFNAME=eth0 CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=pod1" \
    CNI_PATH="$(dirname "$CNI_BIN")" "$CNI_BIN" <<<"{\"cniVersion\": \"1.0.0\", \"name\": \"t\", \"type\": \"membrane\", \"dbus_address\": \"${BUS[b]}\", \"labels\": {\"app\": \"web\"}}") ||
    harness_fail "CNI ADD on node-b failed: $result"
grep_quiet '"address": *"10.60.1.2/' <<<"$result" || harness_fail "the pod's address is not from node-b's block: $result"
echo "ok: a pod on node-b got 10.60.1.2 from its block"

# Restarts keep the block: from state_dir, then (the file gone) from the store.
for round in cache store; do
    harness_stop_daemon "${PID[a]}" || harness_fail "node-a did not stop cleanly"
    [[ $round == store ]] && rm "$HARNESS_TMP/node-node-a/state/cluster-pod-cidr.json"
    start_agent a
    [[ "$(nodes_of a | head -1)" == "node-a 192.168.79.1 10.60.0.0/24 local" ]] ||
        harness_fail "after a restart ($round) node-a has: $(nodes_of a | head -1)"
done
grep -q "pod CIDR 10.60.0.0/24 (from \[cluster\] pod_cidr_pool, kept in" "$HARNESS_TMP"/membraned-*.log ||
    harness_fail "no restart took the block from state_dir"
echo "ok: node-a kept 10.60.0.0/24 across restarts (from state_dir, then from the store)"

# Another agent named node-a, elsewhere, while node-a lives: refused, nothing taken.
make_node c node-a 192.168.79.3
# Another host: its own state folder (the harness derives it from the node name).
mkdir -p "$HARNESS_TMP/impostor/state" "$HARNESS_TMP/impostor/run" && chmod 0755 "$HARNESS_TMP/impostor"
sed -i "s|$HARNESS_TMP/node-node-a/|$HARNESS_TMP/impostor/|g" "${CONFIG[c]}"
rc=0
MEMBRANE_DBUS_ADDRESS=${BUS[c]} timeout 60 ip netns exec "$ns" "$MEMBRANE_BUILD_DIR/kernel/membraned" \
    --config "${CONFIG[c]}" >"$HARNESS_TMP/impostor.log" 2>&1 || rc=$?
((rc != 0 && rc != 124)) || harness_fail "a second node-a was not refused (exit $rc): $(tail -5 "$HARNESS_TMP/impostor.log")"
grep -q "the node name 'node-a' is held by a live agent at 192.168.79.1" "$HARNESS_TMP/impostor.log" ||
    harness_fail "the refusal does not say why: $(tail -5 "$HARNESS_TMP/impostor.log")"
[[ "$(etcd_get membrane/v1/pool/podcidrs/ --keys-only | grep -c .)" == 2 ]] || harness_fail "the impostor took a block"
echo "ok: a second node-a (192.168.79.3) was refused: $(grep -o "the node name 'node-a' is held[^:]*" "$HARNESS_TMP/impostor.log" | head -1)"
for key in a b; do harness_stop_daemon "${PID[$key]}" || harness_fail "$key did not stop cleanly"; done
