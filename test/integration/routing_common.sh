# shellcheck shell=bash
# Shared by routing_vxlan_test.sh and direct_routing_test.sh (sourced after
# test/lib/harness.sh): a two-node cluster made of network namespaces, each
# node running its own membraned (own private D-Bus) with one routing module,
# and pods on both nodes.
#
#   node-a (192.168.50.1/24, pods 10.10.1.0/24) --eth0 == eth0-- node-b (192.168.50.2/24, pods 10.10.2.0/24)
#
# Pods are wired by the real membrane-cni, called as a container runtime calls
# it (inside the node's namespace, CNI_* environment, config on stdin). Every
# address lives inside namespaces this run created.

declare -gA ROUTING_NODE_IPS=([a]=192.168.50.1 [b]=192.168.50.2)
declare -gA ROUTING_POD_CIDRS=([a]=10.10.1.0/24 [b]=10.10.2.0/24)
declare -gA ROUTING_NS=() ROUTING_BUS=() ROUTING_PIN=() ROUTING_DAEMON=() ROUTING_CONFIG=()
declare -gA POD_IP=() POD_NS=() POD_NODE=()

# routing_need TOOL... : skips the test when a tool is missing.
routing_need() {
    local tool
    for tool in "$@"; do command -v "$tool" >/dev/null || harness_skip "'$tool' is not installed"; done
}

# routing_bus NODE : a private dbus-daemon for one node (each node is its own
# agent, and one bus holds one org.membrane.Agent1), into ROUTING_BUS[NODE].
routing_bus() {
    harness_private_bus "bus-$1"
    ROUTING_BUS[$1]=$HARNESS_BUS_ADDRESS
}

# on_node NODE CMD... : CMD with node NODE's bus as the harness's bus.
on_node() {
    local node=$1
    shift
    MEMBRANE_DBUS_ADDRESS="${ROUTING_BUS[$node]}" "$@"
}

# routing_cluster_up MODULE MODULE_TOML_A MODULE_TOML_B : both nodes, their
# underlay, buses and daemons with MODULE enabled and [module.MODULE] set to
# the given TOML lines (may be empty).
routing_cluster_up() {
    local module=$1
    local -A module_toml=([a]=$2 [b]=$3)
    local so="$MEMBRANE_BUILD_DIR/modules/$module/$module.so"
    [[ -f "$so" ]] || harness_fail "no $so (build the target $module)"
    # A module folder must be root's and not writable by others.
    local module_dir="$HARNESS_TMP/modules"
    install -d -m 0755 "$module_dir"
    install -m 0755 "$so" "$module_dir/$module.so"

    local node
    for node in a b; do ROUTING_NS[$node]=$(harness_netns "node-$node"); done
    harness_veth "${ROUTING_NS[a]}" eth0 "${ROUTING_NS[b]}" eth0 "${ROUTING_NODE_IPS[a]}/24" "${ROUTING_NODE_IPS[b]}/24"

    local nodes_toml=""
    for node in a b; do
        nodes_toml+=$'\n'"[[nodes]]"$'\n'"name = \"node-$node\""$'\n'"ip = \"${ROUTING_NODE_IPS[$node]}\""
        nodes_toml+=$'\n'"pod_cidr = \"${ROUTING_POD_CIDRS[$node]}\""$'\n'
    done
    for node in a b; do
        routing_bus "$node"
        ROUTING_CONFIG[$node]="$HARNESS_TMP/node-$node.toml"
        on_node "$node" harness_write_config "${ROUTING_CONFIG[$node]}" "node-$node" "$module_dir" '["eth0"]' \
            "[\"$module\"]" "[module.$module]"$'\n'"${module_toml[$node]}"$'\n'"$nodes_toml"
        ROUTING_PIN[$node]="$(harness_bpffs bpffs)/membrane/node-$node"
        export MEMBRANE_DBUS_ADDRESS="${ROUTING_BUS[$node]}"
        harness_daemon "${ROUTING_NS[$node]}" "${ROUTING_CONFIG[$node]}"
        ROUTING_DAEMON[$node]=$HARNESS_DAEMON_PID
        routing_module_running "$node" "$module" || harness_fail "module $module is not running on node-$node"
    done
    unset MEMBRANE_DBUS_ADDRESS
}

# routing_module_running NODE MODULE : 0 when MODULE's state is "running".
routing_module_running() {
    on_node "$1" harness_ctl -o json module list | python3 -c '
import json, sys
state = {m["name"]: m["state"] for m in json.load(sys.stdin)}.get(sys.argv[1])
sys.exit(0 if state == "running" else 1)' "$2"
}

# pod_add NODE NAME : a pod namespace on NODE wired by membrane-cni ADD;
# fills POD_IP[NAME], POD_NS[NAME], POD_NODE[NAME].
pod_add() {
    local node=$1 name=$2
    local cni="$MEMBRANE_BUILD_DIR/cni/membrane-cni"
    [[ -x "$cni" ]] || harness_fail "no membrane-cni at $cni (build the target membrane-cni)"
    local ns
    ns=$(harness_netns "pod-$name")
    local config
    config=$(printf '{"cniVersion": "1.0.0", "name": "routing-test", "type": "membrane", "dbus_address": "%s"}' \
        "${ROUTING_BUS[$node]}")
    local out="$HARNESS_TMP/cni-$name.json"
    if ! env -i PATH="$PATH" CNI_COMMAND=ADD CNI_CONTAINERID="$HARNESS_RUN_ID-$name" CNI_NETNS="/var/run/netns/$ns" \
        CNI_IFNAME=eth0 CNI_PATH="$(dirname "$cni")" CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=test;K8S_POD_NAME=$name" \
        ip netns exec "${ROUTING_NS[$node]}" "$cni" <<<"$config" >"$out" 2>"$out.err"; then
        harness_fail "membrane-cni ADD of pod $name on node-$node failed: $(cat "$out" "$out.err")"
    fi
    POD_IP[$name]=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["ips"][0]["address"].split("/")[0])' "$out") ||
        harness_fail "membrane-cni ADD of pod $name returned no address: $(cat "$out")"
    POD_NS[$name]=$ns
    POD_NODE[$name]=$node
    harness_log "pod $name on node-$node: ${POD_IP[$name]}"
}

# in_pod NAME CMD... : CMD inside pod NAME's namespace.
in_pod() {
    local name=$1
    shift
    ip netns exec "${POD_NS[$name]}" "$@"
}

# pod_servers NAME : a TCP and a UDP echo server in pod NAME (ports 7001, 7002).
pod_servers() {
    local name=$1
    in_pod "$name" socat TCP4-LISTEN:7001,reuseaddr,fork EXEC:cat </dev/null >/dev/null 2>&1 &
    harness_register_pid $!
    in_pod "$name" socat -T 5 UDP4-RECVFROM:7002,fork EXEC:cat </dev/null >/dev/null 2>&1 &
    harness_register_pid $!
}

# assert_pod_to_pod FROM TO : ICMP, TCP and UDP from pod FROM to pod TO.
assert_pod_to_pod() {
    local from=$1 to=$2 reply word="hello-$1-to-$2"
    local where="$from (node-${POD_NODE[$from]}, ${POD_IP[$from]}) -> $to (node-${POD_NODE[$to]}, ${POD_IP[$to]})"
    in_pod "$from" ping -q -c 3 -i 0.2 -W 2 "${POD_IP[$to]}" >"$HARNESS_TMP/ping-$from-$to.txt" 2>&1 ||
        harness_fail "ICMP $where: $(cat "$HARNESS_TMP/ping-$from-$to.txt")"
    # The server may still be starting: retry the TCP exchange briefly.
    local deadline=$((SECONDS + 10))
    while true; do
        reply=$(echo "$word" | in_pod "$from" socat -T 3 - "TCP4:${POD_IP[$to]}:7001,connect-timeout=2" 2>/dev/null) || true
        [[ "$reply" == "$word" ]] && break
        ((SECONDS < deadline)) || harness_fail "TCP $where: echo answered '$reply'"
        sleep 0.3
    done
    reply=$(echo "$word" | in_pod "$from" socat -T 3 - "UDP4:${POD_IP[$to]}:7002" 2>/dev/null) || true
    [[ "$reply" == "$word" ]] || harness_fail "UDP $where: echo answered '$reply'"
    harness_log "ICMP, TCP and UDP $where: ok"
}

# stat_sum NODE INDEX : node NODE's counter MBR_STAT_<INDEX> (test/lib/common.sh).
stat_sum() { membrane_stat "${ROUTING_PIN[$1]}" "$2"; }

# node_forwarded NODE : datagrams node NODE's IP stack forwarded (test/lib/common.sh).
node_forwarded() { kernel_forwarded "${ROUTING_NS[$1]}"; }

# reload_under_ping FROM TO MODULE RELOADS COUNTER : a steady ping from pod
# FROM to pod TO while MODULE is reloaded RELOADS times on each node in turn;
# fails on any lost packet, if the ping ended before the last reload, or if
# the module's stage did not carry every packet itself: a node's IP stack
# forwarded one, or the stage's counter MBR_STAT_<COUNTER> did not grow by
# the requests on FROM's node and by the replies on TO's.
reload_under_ping() {
    local from=$1 to=$2 module=$3 reloads=$4 counter=$5
    local count=${ROUTING_RELOAD_PINGS:-6000}
    in_pod "$from" ping -q -c 3 -i 0.2 -W 2 "${POD_IP[$to]}" >/dev/null || harness_fail "no connectivity before the reloads"
    local -A forwarded_before=() routed_before=()
    local node
    for node in a b; do
        forwarded_before[$node]=$(node_forwarded "$node")
        routed_before[$node]=$(stat_sum "$node" "$counter")
    done
    in_pod "$from" ping -q -i 0.005 -c "$count" -W 2 "${POD_IP[$to]}" >"$HARNESS_TMP/reload-ping.txt" 2>&1 &
    local ping_pid=$!
    harness_register_pid "$ping_pid"
    sleep 0.5
    local i generation
    for ((i = 1; i <= reloads; i++)); do
        for node in a b; do
            on_node "$node" harness_ctl module reload "$module" >/dev/null || harness_fail "reload $i of $module on node-$node failed"
        done
        sleep 0.1
    done
    kill -0 "$ping_pid" 2>/dev/null ||
        harness_fail "the ping ended before the last reload: raise ROUTING_RELOAD_PINGS (was $count)"
    for node in a b; do
        generation=$(on_node "$node" harness_ctl -o json module list | python3 -c '
import json, sys
print([m for m in json.load(sys.stdin) if m["name"] == sys.argv[1]][0]["generation"])' "$module")
        [[ "$generation" -ge $((reloads + 1)) ]] || harness_fail "$module on node-$node is at generation $generation after $reloads reloads"
    done
    wait "$ping_pid" || true
    local transmitted received
    read -r transmitted received < <(python3 - "$HARNESS_TMP/reload-ping.txt" <<'PY'
import re, sys
m = re.search(r"(\d+) packets transmitted, (\d+) received", open(sys.argv[1]).read())
print(*(m.groups() if m else ("0", "0")))
PY
    )
    harness_log "reloads: $reloads per node, ping: $transmitted sent, $received received"
    [[ "$transmitted" == "$count" ]] || harness_fail "ping sent $transmitted of $count: $(cat "$HARNESS_TMP/reload-ping.txt")"
    [[ "$received" == "$transmitted" ]] ||
        harness_fail "lost $((transmitted - received)) of $transmitted packets while $module was reloaded $reloads times per node"
    local routed forwarded
    for node in a b; do
        forwarded=$(node_forwarded "$node")
        [[ "$forwarded" == "${forwarded_before[$node]}" ]] ||
            harness_fail "node-$node's IP stack forwarded $((forwarded - forwarded_before[$node])) datagrams during the reloads: the stage let them through"
        routed=$(($(stat_sum "$node" "$counter") - routed_before[$node]))
        ((routed >= count)) || harness_fail "node-$node's stage counted $routed packets (MBR_STAT index $counter) for $count echo requests and replies"
    done
    harness_log "reloads: every request and reply carried by $module's stage, none by a node's IP stack"
}
