#!/usr/bin/env bash
# routing-vxlan end to end: two nodes (namespaces joined by an underlay veth),
# each running membraned with routing-vxlan, and one pod per node
# wired by membrane-cni. Asserts:
#   - the module made its VXLAN device in collect-metadata mode, port 8472,
#     MTU underlay - 50, with the core's mbr_from_overlay on its tc ingress;
#   - pod-to-pod across nodes, both directions: ICMP, TCP and UDP;
#   - that traffic was encapsulated: MBR_STAT_TO_OVERLAY grows on the sender,
#     MBR_STAT_ENTRY_FROM_OVERLAY on the receiver, and the underlay carried
#     UDP to port 8472 (the VXLAN devices' own counters grow);
#   - the module reloaded 10 times on each node under a steady ping loses
#     no packet, and the device survives the reloads (same ifindex).
set -euo pipefail
source "$MEMBRANE_SOURCE_DIR/test/lib/harness.sh"
source "$MEMBRANE_SOURCE_DIR/test/integration/routing_common.sh"
harness_init
routing_need bpftool busctl dbus-daemon socat python3

MODULE=routing-vxlan
DEVICE=mbr_vxlan
routing_cluster_up "$MODULE" '' ''

# --- the device -------------------------------------------------------------------------
for node in a b; do
    details=$(ip -n "${ROUTING_NS[$node]}" -d -j link show "$DEVICE") || harness_fail "node-$node has no $DEVICE"
    python3 - "$details" <<'PY' || harness_fail "node-$node: $DEVICE is not as expected: $details"
import json, sys
link = json.loads(sys.argv[1])[0]
data = link["linkinfo"]["info_data"]
assert link["linkinfo"]["info_kind"] == "vxlan", link["linkinfo"]
assert data.get("external") is True, "not collect-metadata"
assert data.get("port") == 8472, data.get("port")
assert data.get("learning") is False, "learning on"
assert link["mtu"] == 1450, link["mtu"]
assert "UP" in link["flags"], link["flags"]
PY
    tc -n "${ROUTING_NS[$node]}" filter show dev "$DEVICE" ingress | grep_quiet "mbr_from_overla" ||  # the kernel keeps 15 characters of a name
        harness_fail "node-$node: mbr_from_overlay is not on $DEVICE's tc ingress"
done
ifindex_before=$(ip -n "${ROUTING_NS[a]}" -j link show "$DEVICE" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["ifindex"])')

# --- pods and connectivity ------------------------------------------------------------------
pod_add a a1
pod_add b b1
[[ "${POD_IP[a1]}" == 10.10.1.* && "${POD_IP[b1]}" == 10.10.2.* ]] ||
    harness_fail "pod addresses ${POD_IP[a1]}, ${POD_IP[b1]} are not from the nodes' pod CIDRs"
pod_mtu=$(in_pod a1 cat /sys/class/net/eth0/mtu)
[[ "$pod_mtu" == 1450 ]] || harness_fail "pod a1 has MTU $pod_mtu, expected 1500 - 50 (VXLAN declared)"
pod_servers a1
pod_servers b1

to_overlay_a=$(stat_sum a $MBR_STAT_TO_OVERLAY)
to_overlay_b=$(stat_sum b $MBR_STAT_TO_OVERLAY)
from_overlay_a=$(stat_sum a $MBR_STAT_ENTRY_FROM_OVERLAY)
from_overlay_b=$(stat_sum b $MBR_STAT_ENTRY_FROM_OVERLAY)
vxlan_tx_a=$(ip -n "${ROUTING_NS[a]}" -s -j link show "$DEVICE" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["stats64"]["tx"]["packets"])')

assert_pod_to_pod a1 b1
assert_pod_to_pod b1 a1

# --- encapsulated? ------------------------------------------------------------------------
# Each direction sent at least 3 pings, a TCP exchange and a UDP datagram.
for node in a b; do
    now=$(stat_sum "$node" $MBR_STAT_TO_OVERLAY)
    before_var="to_overlay_$node"
    ((now >= ${!before_var} + 5)) || harness_fail "node-$node: MBR_STAT_TO_OVERLAY went ${!before_var} -> $now"
    now=$(stat_sum "$node" $MBR_STAT_ENTRY_FROM_OVERLAY)
    before_var="from_overlay_$node"
    ((now >= ${!before_var} + 5)) || harness_fail "node-$node: MBR_STAT_ENTRY_FROM_OVERLAY went ${!before_var} -> $now"
done
vxlan_tx_now=$(ip -n "${ROUTING_NS[a]}" -s -j link show "$DEVICE" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["stats64"]["tx"]["packets"])')
((vxlan_tx_now >= vxlan_tx_a + 5)) || harness_fail "node-a: $DEVICE sent $((vxlan_tx_now - vxlan_tx_a)) packets"
# The underlay saw VXLAN, not the pods' addresses: a UDP 8472 socket exists,
# and the only route to the other node's pod CIDR is the module's node route
# into the overlay device (for the node's own traffic; pods' packets are
# encapsulated in BPF, as the counters above show).
ip netns exec "${ROUTING_NS[b]}" ss -uln | grep_quiet ':8472 ' || harness_fail "node-b has no UDP socket on 8472"
routes_to_b=$(ip -n "${ROUTING_NS[a]}" route show | grep '^10\.10\.2\.' || true)
[[ "$routes_to_b" == *"encap ip id 4 "*"dst ${ROUTING_NODE_IPS[b]} "*"dev $DEVICE proto 211 scope link"* && "$(wc -l <<<"$routes_to_b")" == 1 ]] ||
    harness_fail "node-a's route to node-b's pods should be the overlay node route alone, is: $routes_to_b"
harness_log "encapsulated: node-a sent $((vxlan_tx_now - vxlan_tx_a)) packets through $DEVICE"

# --- zero loss across reloads -----------------------------------------------------------------
reload_under_ping a1 b1 "$MODULE" 10 "$MBR_STAT_TO_OVERLAY"
ifindex_after=$(ip -n "${ROUTING_NS[a]}" -j link show "$DEVICE" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["ifindex"])')
[[ "$ifindex_before" == "$ifindex_after" ]] || harness_fail "$DEVICE was recreated by a reload ($ifindex_before -> $ifindex_after)"
assert_pod_to_pod b1 a1

status=$(on_node a harness_ctl -o json module call "$MODULE" Status)
python3 -c 'import json,sys; s=json.loads(sys.argv[1]); assert s["device"]=="mbr_vxlan" and s["port"]==8472 and s["mtu"]==1450, s' "$status" ||
    harness_fail "Status answered $status"

echo "PASS: VXLAN pod-to-pod across nodes (ICMP, TCP, UDP, both directions), encapsulated, 10 reloads per node without loss"
