#!/usr/bin/env bash
# In a two-node lab, in both routing modes (routing-vxlan, direct-routing):
# ICMP, TCP and UDP between pods on the same node and across nodes, both
# directions. Pods are wired by the real membrane-cni; every node runs its own
# membraned. The nodes' kernels forward nothing: the BPF datapath carries it
# all, a bulk TCP stream (GSO super-packets) included, and the routing stage's
# counter accounts for every packet the pods sent; with VXLAN, the stream
# never touches the VXLAN device (encapsulated and decapsulated in BPF). LAB_BASELINE=1 runs the
# same checks on the plain-kernel baseline, LAB_BASELINE=l2 on the L2 VXLAN
# baseline (`up --baseline-l2`, VXLAN only).
set -euo pipefail
source "${MEMBRANE_SOURCE_DIR:?}/lab/lab_test_lib.sh"
modes=(vxlan direct)
case "${LAB_BASELINE:-0}" in
    1) labtest_init --baseline-only; up_args=(--baseline) ;;
    l2) labtest_init --baseline-only; up_args=(--baseline-l2); modes=(vxlan) ;;
    *) labtest_init; up_args=() ;;
esac

for routing in "${modes[@]}"; do
    lab=$(labtest_name "c${routing:0:1}")
    # a1, a2 on node1; b1 on node2.
    labtest_topology "$lab" "$routing" a1:node1 a2:node1 b1:node2 >"$LABTEST_TMP/$lab.toml"
    labtest_up "$LABTEST_TMP/$lab.toml" "${up_args[@]}"
    lab_cmd status "$lab"

    for pod in a1 a2 b1; do labtest_serve "$lab" "$pod"; done
    # same node, across nodes, each both ways
    for pair in "a1 a2" "a2 a1" "a1 b1" "b1 a1" "a2 b1" "b1 a2"; do
        read -r from to <<<"$pair"
        labtest_expect_ping "$lab" "$from" "$to"
        labtest_expect_tcp "$lab" "$from" "$to"
        labtest_expect_udp "$lab" "$from" "$to"
    done
    if ((${#up_args[@]} == 0)); then
        # The packets were redirected by Membrane's BPF datapath, never forwarded by a node's IP stack.
        for node in node1 node2; do
            forwarded=$(labtest_forwarded "$lab" "$node")
            [[ "$forwarded" == 0 ]] || labtest_fail "$routing: $node's kernel forwarded $forwarded datagrams"
        done
        echo "$routing: no datagram went through either node's IP forwarding"
        # Bulk TCP: the pod's TSO hands the stage 64 KB GSO super-packets, not MTU-sized ones.
        labtest_mark "$lab" a1 b1
        labtest_stream "$lab" a1 b1 3
        labtest_expect_bpf_routed "$lab" a1 b1
        echo "$routing: a bulk TCP stream across nodes was carried by the routing stage, not the nodes' kernels"
        if [[ $routing == vxlan ]]; then
            labtest_expect_native_overlay "$lab"
            echo "$routing: the stream was encapsulated and decapsulated in BPF, not by the VXLAN device"
            # ECN crosses the overlay as with the kernel's tunnels: an ECN-capable packet's outer
            # header is ECN-capable (routers mark rather than drop), and a congestion mark a router
            # put on the outer header reaches the pod.
            probe="$MEMBRANE_SOURCE_DIR/test/integration/overlay_ecn_probe.py"
            sniff_ecn() { # NETNS MODE ICMP_ID: starts a sniffer, returns once it listens
                ip netns exec "$1" python3 "$probe" "$2" eth0 "$3" 10 >"$LABTEST_TMP/ecn.$3" 2>&1 &
                for _ in $(seq 100); do grep -q ready "$LABTEST_TMP/ecn.$3" && return 0; sleep 0.1; done
                labtest_fail "the ECN sniffer in $1 did not start: $(cat "$LABTEST_TMP/ecn.$3")"
            }
            sniff_ecn "ml-$lab-node1" sniff-outer 4242
            lab_cmd exec "$lab" a1 -- ping -c 2 -i 0.2 -W 1 -Q 2 -e 4242 "$(labtest_addr "$lab" b1)" >/dev/null ||
                labtest_fail "an ECN-capable ping a1 -> b1 failed"
            wait $!
            outer_ecn=$(sed -n 2p "$LABTEST_TMP/ecn.4242")
            [[ "$outer_ecn" == 2 ]] || labtest_fail "an ECT(0) packet's outer header left node1 with ECN '$outer_ecn', not 2"
            sniff_ecn "ml-$lab-b1" sniff-inner 4343
            ip netns exec "ml-$lab-node1" python3 "$probe" send-vxlan "$(labtest_node_ip "$lab" node2)" 8472 \
                "$(labtest_identity "$lab" a1)" "$(labtest_addr "$lab" a1)" "$(labtest_addr "$lab" b1)" 4343 3 2
            wait $!
            inner_ecn=$(sed -n 2p "$LABTEST_TMP/ecn.4343")
            [[ "$inner_ecn" == 3 ]] || labtest_fail "a packet marked CE on the underlay reached b1 with ECN '$inner_ecn', not 3 (CE)"
            echo "$routing: ECN crosses the overlay: ECT(0) carried out, CE carried in"
            # The way out to node2 (underlay device, MACs) is cached per CPU for 20 ms: a
            # neighbour change on the underlay reaches the pods' packets within that (and a
            # tick of the coarse clock), also while packets keep using the entry on every CPU
            # (a ping every 2 ms runs across the change): no reply may arrive later than 100 ms
            # after it.
            node2_ip=$(labtest_node_ip "$lab" node2)
            node2_mac=$(ip netns exec "ml-$lab-node2" cat /sys/class/net/eth0/address)
            lab_cmd exec "$lab" a1 -- ping -D -n -i 0.002 -c 1500 -W 1 "$(labtest_addr "$lab" b1)" >"$LABTEST_TMP/neigh.ping" 2>&1 &
            ping_pid=$!
            sleep 0.8
            ip netns exec "ml-$lab-node1" ip neigh replace "$node2_ip" lladdr 02:00:5e:00:53:01 dev eth0 nud permanent
            changed=$(date +%s.%N)
            sleep 1
            restored=$(date +%s.%N)
            ip netns exec "ml-$lab-node1" ip neigh replace "$node2_ip" lladdr "$node2_mac" dev eth0 nud reachable
            wait "$ping_pid" || true
            read -r before stale after < <(python3 - "$LABTEST_TMP/neigh.ping" "$changed" "$restored" <<'PY'
import re, sys
changed, restored = float(sys.argv[2]), float(sys.argv[3])
replies = [float(m[1]) for m in re.finditer(r"^\[(\d+\.\d+)\] \d+ bytes from", open(sys.argv[1]).read(), re.M)]
print(sum(t < changed for t in replies), sum(changed + 0.1 < t < restored for t in replies),
      sum(t > restored + 0.1 for t in replies))
PY
)
            labtest_log "ping every 2 ms across the neighbour change: $before replies before, $stale later than 100 ms after it, $after after the restore"
            ((before > 20)) || labtest_fail "a1 -> b1 had only $before replies before the neighbour change"
            ((stale == 0)) || labtest_fail "$stale replies a1 -> b1 arrived more than 100 ms after node1's neighbour entry for node2 went wrong: a cached way outlived the change"
            ((after > 5)) || labtest_fail "a1 -> b1 had only $after replies after the neighbour entry was restored"
            echo "$routing: the cached way to another node follows a change of the underlay's neighbour within 100 ms"
            # The two paths make the same packets: node2 without the overlay port (as an
            # older agent, or its fallback) sends and receives through its VXLAN device,
            # while node1 stays native, and every exchange still works both ways.
            bpftool map update pinned "$(labtest_pins "$lab" node2)/mbr_overlay_v1" key 0 0 0 0 value 0 0 0 0
            labtest_mark "$lab" a1 b1
            for pair in "a1 b1" "b1 a1"; do
                read -r from to <<<"$pair"
                labtest_expect_ping "$lab" "$from" "$to"
                labtest_expect_tcp "$lab" "$from" "$to"
                labtest_expect_udp "$lab" "$from" "$to"
            done
            labtest_stream "$lab" a1 b1 1
            labtest_stream "$lab" b1 a1 1
            node1_carried=$(($(labtest_overlay_device_packets "$lab" node1) - ${LABTEST_MARK[overlay_device.node1]}))
            node2_carried=$(($(labtest_overlay_device_packets "$lab" node2) - ${LABTEST_MARK[overlay_device.node2]}))
            labtest_log "VXLAN devices with node2 on the kernel's path: node1 $node1_carried packets, node2 $node2_carried"
            ((node1_carried <= 10)) || labtest_fail "node1's VXLAN device carried $node1_carried packets: node2's kernel-made packets were not decapsulated in BPF"
            ((node2_carried > 1000)) || labtest_fail "node2's VXLAN device carried only $node2_carried packets with the overlay port cleared"
            echo "$routing: a node on the kernel's VXLAN path and a node on the BPF one talk both ways"
        fi
    fi
    lab_cmd down "$lab"
    echo "PASS: $routing: ICMP, TCP and UDP between pods on one node and across nodes, both directions"
done
