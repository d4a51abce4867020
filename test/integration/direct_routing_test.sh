#!/usr/bin/env bash
# direct-routing end to end: two nodes (namespaces joined by an underlay veth:
# L2 neighbours, as the module requires), each running membraned with
# direct-routing, and one pod per node wired by membrane-cni. Asserts:
#   - each node has the kernel route "<other pod CIDR> via <other node IP>"
#     with the module's protocol (211), and a foreign route is left alone;
#   - pod-to-pod across nodes, both directions: ICMP, TCP and UDP, forwarded
#     by the BPF stage (MBR_STAT_FIB_FORWARDED grows, the nodes' IP stacks
#     forward nothing), not encapsulated (no VXLAN device, pods keep the full
#     MTU);
#   - a node removed from the config (SIGHUP) loses its route, and gets it
#     back when it returns;
#   - the module reloaded 10 times on each node under a steady ping loses no
#     packet, and the stage carried every one (no IP stack forwarding).
set -euo pipefail
source "$MEMBRANE_SOURCE_DIR/test/lib/harness.sh"
source "$MEMBRANE_SOURCE_DIR/test/integration/routing_common.sh"
harness_init
routing_need bpftool busctl dbus-daemon socat python3

MODULE=direct-routing
PROTO=211

routing_cluster_up "$MODULE" "" ""

# node_route NODE PREFIX : the route line for PREFIX on NODE (empty if none).
node_route() { ip -n "${ROUTING_NS[$1]}" route show "$2" 2>/dev/null; }

# --- routes ------------------------------------------------------------------------------
for node in a b; do
    other=$([[ $node == a ]] && echo b || echo a)
    route=$(node_route "$node" "${ROUTING_POD_CIDRS[$other]}")
    [[ "$route" == *"via ${ROUTING_NODE_IPS[$other]}"* && "$route" == *"proto $PROTO"* ]] ||
        harness_fail "node-$node: route to ${ROUTING_POD_CIDRS[$other]} is '$route', expected via ${ROUTING_NODE_IPS[$other]} proto $PROTO"
    [[ -z "$(node_route "$node" "${ROUTING_POD_CIDRS[$node]}" | grep "proto $PROTO" || true)" ]] ||
        harness_fail "node-$node routes its own pod CIDR"
    [[ "$(ip netns exec "${ROUTING_NS[$node]}" cat /proc/sys/net/ipv4/ip_forward)" == 1 ]] ||
        harness_fail "node-$node: IPv4 forwarding is off"
    if ip -n "${ROUTING_NS[$node]}" link show mbr_vxlan >/dev/null 2>&1; then harness_fail "node-$node has a VXLAN device"; fi
done

# A foreign route survives a restart of the agent (reconciliation removes only ours).
ip -n "${ROUTING_NS[a]}" route add 10.10.99.0/24 via 192.168.50.2 proto static
harness_stop_daemon "${ROUTING_DAEMON[a]}" || true
export MEMBRANE_DBUS_ADDRESS="${ROUTING_BUS[a]}"
harness_daemon "${ROUTING_NS[a]}" "${ROUTING_CONFIG[a]}"
ROUTING_DAEMON[a]=$HARNESS_DAEMON_PID
unset MEMBRANE_DBUS_ADDRESS
[[ "$(node_route a 10.10.99.0/24)" == *"proto static"* ]] || harness_fail "the module removed a route that is not its own"
[[ "$(node_route a "${ROUTING_POD_CIDRS[b]}")" == *"proto $PROTO"* ]] || harness_fail "node-a lost its route across a restart"

# --- pods and connectivity ------------------------------------------------------------------
pod_add a a1
pod_add b b1
[[ "${POD_IP[a1]}" == 10.10.1.* && "${POD_IP[b1]}" == 10.10.2.* ]] ||
    harness_fail "pod addresses ${POD_IP[a1]}, ${POD_IP[b1]} are not from the nodes' pod CIDRs"
pod_mtu=$(in_pod a1 cat /sys/class/net/eth0/mtu)
[[ "$pod_mtu" == 1500 ]] || harness_fail "pod a1 has MTU $pod_mtu, expected the full 1500 (no encapsulation)"
pod_servers a1
pod_servers b1

forwarded_a=$(stat_sum a $MBR_STAT_FIB_FORWARDED)
forwarded_b=$(stat_sum b $MBR_STAT_FIB_FORWARDED)
stack_forwarded_a=$(node_forwarded a)
stack_forwarded_b=$(node_forwarded b)
assert_pod_to_pod a1 b1
assert_pod_to_pod b1 a1
for node in a b; do
    now=$(stat_sum "$node" $MBR_STAT_FIB_FORWARDED)
    before_var="forwarded_$node"
    ((now >= ${!before_var} + 5)) || harness_fail "node-$node: MBR_STAT_FIB_FORWARDED went ${!before_var} -> $now"
    [[ "$(stat_sum "$node" $MBR_STAT_TO_OVERLAY)" == 0 ]] || harness_fail "node-$node encapsulated traffic"
    # The routes would carry the traffic without the stage too: only the stack's count tells them apart.
    before_var="stack_forwarded_$node"
    [[ "$(node_forwarded "$node")" == "${!before_var}" ]] ||
        harness_fail "node-$node's IP stack forwarded pod traffic (${!before_var} -> $(node_forwarded "$node") datagrams)"
done

# --- node events: removed and back (SIGHUP re-reads [[nodes]]) -------------------------------
full_config=$(cat "${ROUTING_CONFIG[a]}")
python3 - "${ROUTING_CONFIG[a]}" <<'PY'
import re, sys
path = sys.argv[1]
text = open(path).read()
# Drops node-b's [[nodes]] table (name, ip, pod_cidr lines).
text = re.sub(r'\[\[nodes\]\]\nname = "node-b"\nip = "[^"]*"\npod_cidr = "[^"]*"\n', "", text)
open(path, "w").write(text)
PY
grep -q node-b "${ROUTING_CONFIG[a]}" && harness_fail "could not drop node-b from node-a's config"
kill -HUP "${ROUTING_DAEMON[a]}"
harness_retry 10 bash -c "! ip -n '${ROUTING_NS[a]}' route show '${ROUTING_POD_CIDRS[b]}' | grep -q ." ||
    harness_fail "node-a kept its route to node-b's pods after node-b left: $(node_route a "${ROUTING_POD_CIDRS[b]}")"
printf '%s\n' "$full_config" >"${ROUTING_CONFIG[a]}"
kill -HUP "${ROUTING_DAEMON[a]}"
harness_retry 10 bash -c "ip -n '${ROUTING_NS[a]}' route show '${ROUTING_POD_CIDRS[b]}' | grep -q 'proto $PROTO'" ||
    harness_fail "node-a did not route node-b's pods again after node-b came back"
routes=$(on_node a harness_ctl -o json module call "$MODULE" Routes)
python3 -c 'import json,sys; r=json.loads(sys.argv[1]); assert [(x["node"], x["pod_cidr"], x["via"]) for x in r] == [("node-b", "10.10.2.0/24", "192.168.50.2")], r' "$routes" ||
    harness_fail "Routes answered $routes"
assert_pod_to_pod a1 b1

# --- zero loss across reloads -----------------------------------------------------------------
reload_under_ping a1 b1 "$MODULE" 10 "$MBR_STAT_FIB_FORWARDED"
assert_pod_to_pod b1 a1

echo "PASS: direct routing pod-to-pod across nodes (ICMP, TCP, UDP, both directions), node routes follow node events, 10 reloads per node without loss"
