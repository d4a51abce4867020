#!/usr/bin/env bash
# One MTU, and path MTU discovery through the overlay (routing-vxlan): the
# overlay device and the pods both get [agent] mtu - 50; a packet of exactly
# the pod MTU with DF set crosses nodes; one byte more cannot leave the pod;
# a pod whose MTU was raised past the overlay's gets ICMP frag-needed naming
# the overlay's MTU (counted MBR_STAT_OVERSIZE_TO_STACK), never an outer
# fragment; without DF it is dropped (MBR_STAT_DROP_OVERSIZE).
set -euo pipefail
source "${MEMBRANE_SOURCE_DIR:?}/lab/lab_test_lib.sh"
labtest_init
command -v bpftool >/dev/null || labtest_skip "bpftool is not installed (scripts/install-deps.sh)"

AGENT_MTU=1500
OVERLAY_MTU=$((AGENT_MTU - 50))
ICMP_HEADERS=28 # IPv4 20 + ICMP 8

lab=$(labtest_name mtu)
labtest_topology "$lab" vxlan a1:node1 b1:node2 >"$LABTEST_TMP/$lab.toml"
labtest_up "$LABTEST_TMP/$lab.toml"
peer=$(labtest_addr "$lab" b1)
link_mtu() { ip -n "$1" -o link show "$2" | sed -n 's/.* mtu \([0-9]*\) .*/\1/p'; }

device_mtu=$(link_mtu "ml-$lab-node1" mbr_vxlan)
pod_mtu=$(lab_cmd exec "$lab" a1 -- ip -o link show eth0 | sed -n 's/.* mtu \([0-9]*\) .*/\1/p')
[[ "$device_mtu" == "$OVERLAY_MTU" && "$pod_mtu" == "$OVERLAY_MTU" ]] ||
    labtest_fail "overlay device MTU $device_mtu and pod MTU $pod_mtu, both should be $OVERLAY_MTU"
status_mtu=$(lab_cmd ctl "$lab" node1 -- -o json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["pod_mtu"])')
[[ "$status_mtu" == "$OVERLAY_MTU" ]] || labtest_fail "membranectl status says pod MTU $status_mtu"

# Exactly the pod MTU, DF set: crosses; one byte more: refused by the pod's own stack.
lab_cmd exec "$lab" a1 -- ping -M do -c 2 -W 1 -i 0.2 -s $((OVERLAY_MTU - ICMP_HEADERS)) "$peer" >"$LABTEST_TMP/ping.out" 2>&1 ||
    { cat "$LABTEST_TMP/ping.out" >&2; labtest_fail "a packet of exactly $OVERLAY_MTU bytes did not cross"; }
if lab_cmd exec "$lab" a1 -- ping -M do -c 1 -W 1 -s $((OVERLAY_MTU - ICMP_HEADERS + 1)) "$peer" >/dev/null 2>&1; then
    labtest_fail "a packet of $((OVERLAY_MTU + 1)) bytes with DF set crossed a $OVERLAY_MTU-byte overlay"
fi
echo "pod MTU $OVERLAY_MTU: exactly it crosses, one byte more does not"

# A pod whose veth carries the underlay's MTU (as a chained pod's did before
# membrane-cni lowered it): the node answers frag-needed.
host_if=$(lab_cmd ctl "$lab" node1 -- -o json endpoint list | python3 -c '
import json, sys
data = json.load(sys.stdin)
data = data.get("endpoints", data) if isinstance(data, dict) else data
print(data[0]["host_ifname"])')
ip -n "ml-$lab-node1" link set "$host_if" mtu $AGENT_MTU
lab_cmd exec "$lab" a1 -- ip link set eth0 mtu $AGENT_MTU
# Without DF: dropped and counted, never fragmented into the node route.
dropped_before=$(labtest_stat "$lab" node1 $MBR_STAT_DROP_OVERSIZE)
echoes_before=$(labtest_echoes_received "$lab" b1)
lab_cmd exec "$lab" a1 -- ping -M dont -c 2 -W 1 -i 0.2 -s $((AGENT_MTU - ICMP_HEADERS)) "$peer" >/dev/null 2>&1 || true
dropped=$(($(labtest_stat "$lab" node1 $MBR_STAT_DROP_OVERSIZE) - dropped_before))
echoes=$(($(labtest_echoes_received "$lab" b1) - echoes_before))
((dropped == 2 && echoes == 0)) ||
    labtest_fail "without DF: $dropped of 2 oversized packets dropped, $echoes reached b1"
echo "raised pod MTU, no DF: 2 of 2 dropped and counted"
oversize_before=$(labtest_stat "$lab" node1 $MBR_STAT_OVERSIZE_TO_STACK)
lab_cmd exec "$lab" a1 -- ping -M do -c 3 -W 1 -i 0.2 -s $((AGENT_MTU - ICMP_HEADERS)) "$peer" >"$LABTEST_TMP/ping.out" 2>&1 || true
cat "$LABTEST_TMP/ping.out"
grep_quiet -E "mtu ?= ?$OVERLAY_MTU" "$LABTEST_TMP/ping.out" ||
    labtest_fail "no ICMP frag-needed with MTU $OVERLAY_MTU for a $AGENT_MTU-byte packet with DF set"
oversize=$(($(labtest_stat "$lab" node1 $MBR_STAT_OVERSIZE_TO_STACK) - oversize_before))
((oversize >= 1)) || labtest_fail "MBR_STAT_OVERSIZE_TO_STACK did not count the oversized packet"
# The pod learnt the path MTU: the same size is now refused at the source, and the exact size still crosses.
lab_cmd exec "$lab" a1 -- ping -M do -c 2 -W 1 -i 0.2 -s $((OVERLAY_MTU - ICMP_HEADERS)) "$peer" >/dev/null 2>&1 ||
    labtest_fail "after frag-needed, a $OVERLAY_MTU-byte packet did not cross"
echo "raised pod MTU: frag-needed (mtu $OVERLAY_MTU) for $AGENT_MTU bytes, $oversize handed to the stack"
lab_cmd down "$lab"
echo "PASS: one MTU for overlay and pods; path MTU discovery through the overlay"
