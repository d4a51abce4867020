#!/usr/bin/env bash
# routing-vxlan end to end: two nodes (namespaces joined by an underlay veth),
# each running membraned with routing-vxlan, and one pod per node
# wired by membrane-cni. Asserts:
#   - the module made its VXLAN device in collect-metadata mode, port 8472,
#     MTU underlay - 50, with the core's mbr_from_overlay on its tc ingress;
#   - pod-to-pod across nodes, both directions: ICMP, TCP and UDP;
#   - that traffic was encapsulated: MBR_STAT_TO_OVERLAY grows on the sender,
#     MBR_STAT_ENTRY_FROM_OVERLAY on the receiver, in BPF on both sides (the
#     VXLAN devices, which carry only what the BPF paths leave to the kernel,
#     count none of it);
#   - the module reloaded 10 times on each node under a steady ping loses
#     no packet, and the device survives the reloads (same ifindex);
#   - the overlay's port in mbr_overlay_v1 survives the reloads and is
#     closed (0) when the module is unloaded.
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
# tx + rx packets of a node's VXLAN device.
device_packets() {
    ip -n "${ROUTING_NS[$1]}" -s -j link show "$DEVICE" |
        python3 -c 'import json,sys; s=json.load(sys.stdin)[0]["stats64"]; print(s["tx"]["packets"] + s["rx"]["packets"])'
}
device_a=$(device_packets a)
device_b=$(device_packets b)

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
# Encapsulated and decapsulated in BPF (membrane/overlay.h): neither device carried the pods' packets.
for node in a b; do
    before_var="device_$node"
    carried=$(($(device_packets "$node") - ${!before_var}))
    ((carried <= 2)) || harness_fail "node-$node: $DEVICE carried $carried packets of pod traffic, which BPF encapsulates and decapsulates"
done
# The kernel's path stays ready for what BPF leaves to it: a UDP 8472 socket
# exists, and the only route to the other node's pod CIDR is the module's
# node route into the overlay device (for the node's own traffic).
ip netns exec "${ROUTING_NS[b]}" ss -uln | grep_quiet ':8472 ' || harness_fail "node-b has no UDP socket on 8472"
routes_to_b=$(ip -n "${ROUTING_NS[a]}" route show | grep '^10\.10\.2\.' || true)
[[ "$routes_to_b" == *"encap ip id 4 "*"dst ${ROUTING_NODE_IPS[b]} "*"dev $DEVICE proto 211 scope link"* && "$(wc -l <<<"$routes_to_b")" == 1 ]] ||
    harness_fail "node-a's route to node-b's pods should be the overlay node route alone, is: $routes_to_b"
harness_log "encapsulated in BPF: $DEVICE carried none of the pods' packets on either node"

# --- zero loss across reloads -----------------------------------------------------------------
reload_under_ping a1 b1 "$MODULE" 10 "$MBR_STAT_TO_OVERLAY"
ifindex_after=$(ip -n "${ROUTING_NS[a]}" -j link show "$DEVICE" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["ifindex"])')
[[ "$ifindex_before" == "$ifindex_after" ]] || harness_fail "$DEVICE was recreated by a reload ($ifindex_before -> $ifindex_after)"
assert_pod_to_pod b1 a1

# --- the overlay's port follows the module ----------------------------------------------------
# The UDP port the core decapsulates (mbr_overlay_v1): kept by reloads (the new
# generation starts before the old one stops), closed by an unload, so no node
# decapsulates for a module that is gone.
overlay_port() {
    bpftool -j map lookup pinned "${ROUTING_PIN[$1]}/mbr_overlay_v1" key 0 0 0 0 |
        python3 -c 'import json,sys; v=[int(b, 16) for b in json.load(sys.stdin)["value"]]; print(v[0] << 8 | v[1])'
}
for node in a b; do
    port=$(overlay_port "$node")
    [[ "$port" == 8472 ]] || harness_fail "node-$node: the overlay port is $port after the reloads, not 8472"
done
on_node b harness_ctl module unload "$MODULE" >/dev/null || harness_fail "cannot unload $MODULE on node-b"
port=$(overlay_port b)
[[ "$port" == 0 ]] || harness_fail "node-b: the overlay port is still $port after $MODULE was unloaded"
[[ "$(overlay_port a)" == 8472 ]] || harness_fail "node-a: the overlay port changed with node-b's unload"
harness_log "overlay port: 8472 on both nodes after the reloads, 0 on node-b once $MODULE was unloaded there"

status=$(on_node a harness_ctl -o json module call "$MODULE" Status)
python3 -c 'import json,sys; s=json.loads(sys.argv[1]); assert s["device"]=="mbr_vxlan" and s["port"]==8472 and s["mtu"]==1450, s' "$status" ||
    harness_fail "Status answered $status"

echo "PASS: VXLAN pod-to-pod across nodes (ICMP, TCP, UDP, both directions), encapsulated in BPF, 10 reloads per node without loss, the overlay port closed by an unload"
