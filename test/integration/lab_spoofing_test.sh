#!/usr/bin/env bash
# Anti-spoofing end to end, in a two-node VXLAN lab: pod a1 puts its
# neighbour a2's address on its own eth0 and pings b1 on the other node with
# that address as source (what issue 6 measured). The entry program on a1's
# host veth drops every request (MBR_STAT_DROP_SPOOFED grows on node1), b1's
# kernel receives none, and a2's identity never travels in a VNI. a1 and a2
# with their own addresses still reach b1. Also: the pods membrane-cni made
# have IPv6 off on eth0.
set -euo pipefail
source "${MEMBRANE_SOURCE_DIR:?}/lab/lab_test_lib.sh"
labtest_init
command -v bpftool >/dev/null || labtest_skip "bpftool is not installed"

PINGS=5

lab=$(labtest_name sp)
labtest_topology "$lab" vxlan a1:node1 a2:node1 b1:node2 >"$LABTEST_TMP/$lab.toml"
labtest_up "$LABTEST_TMP/$lab.toml"
a2_ip=$(labtest_addr "$lab" a2)
b1_ip=$(labtest_addr "$lab" b1)
labtest_expect_ping "$lab" a1 b1  # a1 knows its gateway; the path works

spoofed_before=$(labtest_stat "$lab" node1 "$MBR_STAT_DROP_SPOOFED")
echoes_before=$(labtest_echoes_received "$lab" b1)
lab_cmd exec "$lab" a1 -- ip addr add "$a2_ip/32" dev eth0
if lab_cmd exec "$lab" a1 -- ping -n -c "$PINGS" -i 0.2 -W 1 -I "$a2_ip" "$b1_ip" >"$LABTEST_TMP/spoof.out" 2>&1; then
    cat "$LABTEST_TMP/spoof.out" >&2
    labtest_fail "a1 pinged b1 ($b1_ip) with a2's address $a2_ip as source and got answers"
fi
sleep 0.5  # the last request's drop is counted
spoofed_after=$(labtest_stat "$lab" node1 "$MBR_STAT_DROP_SPOOFED")
echoes_after=$(labtest_echoes_received "$lab" b1)
echo "a1 as $a2_ip -> b1: MBR_STAT_DROP_SPOOFED on node1 $spoofed_before -> $spoofed_after, b1 InEchos $echoes_before -> $echoes_after"
((spoofed_after >= spoofed_before + PINGS)) || labtest_fail "node1 counted $((spoofed_after - spoofed_before)) spoofed drops for $PINGS requests"
((echoes_after == echoes_before)) || labtest_fail "b1 received $((echoes_after - echoes_before)) echo requests from a spoofed source"

# The owners are unaffected.
lab_cmd exec "$lab" a1 -- ip addr del "$a2_ip/32" dev eth0
labtest_expect_ping "$lab" a1 b1
labtest_expect_ping "$lab" a2 b1

# membrane-cni turned IPv6 off in every pod.
if [[ -d /proc/sys/net/ipv6 ]]; then
    for pod in a1 a2 b1; do
        v6=$(lab_cmd exec "$lab" "$pod" -- sysctl -n net.ipv6.conf.eth0.disable_ipv6)
        [[ "$v6" == 1 ]] || labtest_fail "$pod: net.ipv6.conf.eth0.disable_ipv6 is $v6"
    done
fi
lab_cmd down "$lab"
echo "PASS: a pod using another pod's address reaches nobody across nodes ($PINGS dropped, counted); the owners still do"
