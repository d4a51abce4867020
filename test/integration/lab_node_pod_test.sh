#!/usr/bin/env bash
# A node's own stack and the pods on other nodes reach each other, in both
# routing modes, the way kubelet health checks and host-network clients need:
# node1 -> pod on node2 (ICMP, TCP, UDP) and pod on node2 -> node1's address
# (ICMP, TCP). Neither node's kernel forwards a datagram: in VXLAN mode both
# directions cross the overlay (node routes "encap ip" into the device; the
# pod's packets for a node's address tunnelled like those for its pods), in
# direct mode the pod's replies leave by FIB lookup in BPF.
set -euo pipefail
source "${MEMBRANE_SOURCE_DIR:?}/lab/lab_test_lib.sh"
labtest_init
command -v bpftool >/dev/null || labtest_skip "bpftool is not installed (scripts/install-deps.sh)"

NODE_PORT=7003

in_node() { local lab=$1 node=$2; shift 2; ip netns exec "ml-$lab-$node" "$@"; }

for routing in vxlan direct; do
    lab=$(labtest_name "n${routing:0:1}")
    labtest_topology "$lab" "$routing" a1:node1 b1:node2 >"$LABTEST_TMP/$lab.toml"
    labtest_up "$LABTEST_TMP/$lab.toml"
    pod=$(labtest_addr "$lab" b1)
    node1=$(labtest_node_ip "$lab" node1)
    labtest_serve "$lab" b1
    # A host-network server on node1's own address.
    in_node "$lab" node1 timeout 600 socat TCP4-LISTEN:$NODE_PORT,bind="$node1",reuseaddr,fork \
        SYSTEM:"read line; echo pong node1 \$line" </dev/null >/dev/null 2>&1 &
    for _ in $(seq 50); do
        in_node "$lab" node1 ss -Hltn "sport = :$NODE_PORT" | grep_quiet LISTEN && break
        sleep 0.1
    done

    declare -A forwarded_before=()
    for node in node1 node2; do forwarded_before[$node]=$(labtest_forwarded "$lab" "$node"); done
    to_overlay_before=$(labtest_stat "$lab" node2 $MBR_STAT_TO_OVERLAY)
    from_overlay_before=$(labtest_stat "$lab" node1 $MBR_STAT_ENTRY_FROM_OVERLAY)
    fib_before=$(labtest_stat "$lab" node2 $MBR_STAT_FIB_FORWARDED)

    # node1's stack -> the pod on node2
    in_node "$lab" node1 ping -c 3 -W 1 -i 0.2 -q "$pod" >"$LABTEST_TMP/ping.out" 2>&1 ||
        { cat "$LABTEST_TMP/ping.out" >&2; labtest_fail "$routing: ICMP node1 -> b1 ($pod)"; }
    reply=$(echo node1 | in_node "$lab" node1 timeout 8 socat -t 5 -T 5 - TCP4:"$pod":7001,connect-timeout=2 2>&1) || true
    [[ "$reply" == "pong b1 node1" ]] || labtest_fail "$routing: TCP node1 -> b1 ($pod:7001): got '$reply'"
    reply=""
    for _ in 1 2 3; do
        reply=$(echo node1 | in_node "$lab" node1 timeout 5 socat -t 2 -T 2 - UDP4-SENDTO:"$pod":7002 2>&1) || true
        [[ "$reply" == "pong b1 node1" ]] && break
    done
    [[ "$reply" == "pong b1 node1" ]] || labtest_fail "$routing: UDP node1 -> b1 ($pod:7002): got '$reply'"
    # the pod on node2 -> node1's own address
    lab_cmd exec "$lab" b1 -- ping -c 3 -W 1 -i 0.2 -q "$node1" >"$LABTEST_TMP/ping.out" 2>&1 ||
        { cat "$LABTEST_TMP/ping.out" >&2; labtest_fail "$routing: ICMP b1 -> node1 ($node1)"; }
    reply=$(echo b1 | lab_cmd exec "$lab" b1 -- timeout 8 socat -t 5 -T 5 - TCP4:"$node1":$NODE_PORT,connect-timeout=2 2>&1) || true
    [[ "$reply" == "pong node1 b1" ]] || labtest_fail "$routing: TCP b1 -> node1 ($node1:$NODE_PORT): got '$reply'"
    echo "$routing: node1 -> b1 (ICMP, TCP, UDP) and b1 -> node1 (ICMP, TCP): ok"

    for node in node1 node2; do
        after=$(labtest_forwarded "$lab" "$node")
        [[ "$after" == "${forwarded_before[$node]}" ]] ||
            labtest_fail "$routing: $node's kernel forwarded $((after - forwarded_before[$node])) datagrams"
    done
    # What b1 sent (3 echo replies + 3 echo requests + TCP/UDP replies) left node2 through Membrane.
    if [[ "$routing" == vxlan ]]; then
        to_overlay=$(($(labtest_stat "$lab" node2 $MBR_STAT_TO_OVERLAY) - to_overlay_before))
        from_overlay=$(($(labtest_stat "$lab" node1 $MBR_STAT_ENTRY_FROM_OVERLAY) - from_overlay_before))
        echo "vxlan: node2 encapsulated $to_overlay packets, node1 took $from_overlay from the overlay"
        ((to_overlay >= 6)) || labtest_fail "vxlan: node2 encapsulated only $to_overlay packets for node1"
        ((from_overlay >= 6)) || labtest_fail "vxlan: node1 took only $from_overlay packets from the overlay"
    else
        fib=$(($(labtest_stat "$lab" node2 $MBR_STAT_FIB_FORWARDED) - fib_before))
        echo "direct: node2 forwarded $fib packets by FIB lookup"
        ((fib >= 6)) || labtest_fail "direct: node2 forwarded only $fib packets for node1 by FIB lookup"
    fi
    if [[ "$routing" == vxlan ]]; then
        # Without node2's routing stage, b1's packets fall through to node2's
        # stack, which forwards them by the node route into the tunnel with
        # VNI 4 ("remote node"). node1 believes a node identity only from the
        # node's own address: they are dropped there as spoofed, never
        # delivered to a1 with another node's identity.
        a1=$(labtest_addr "$lab" a1)
        lab_cmd ctl "$lab" node2 -- module unload routing-vxlan >/dev/null || labtest_fail "cannot unload routing-vxlan on node2"
        spoofed_before=$(labtest_stat "$lab" node1 $MBR_STAT_DROP_SPOOFED)
        echoes_before=$(labtest_echoes_received "$lab" a1)
        lab_cmd exec "$lab" b1 -- ping -c 3 -W 1 -i 0.2 -q "$a1" >/dev/null 2>&1 || true
        spoofed=$(($(labtest_stat "$lab" node1 $MBR_STAT_DROP_SPOOFED) - spoofed_before))
        echoes=$(($(labtest_echoes_received "$lab" a1) - echoes_before))
        echo "vxlan, node2's routing stage gone: node1 dropped $spoofed as spoofed, a1 got $echoes echo requests"
        ((echoes == 0 && spoofed >= 3)) ||
            labtest_fail "a pod's packets forwarded into the tunnel by node2's stack reached a1 ($echoes) or were not counted as spoofed ($spoofed)"
    fi
    unset forwarded_before
    lab_cmd down "$lab"
    echo "PASS: $routing: node <-> pod on another node, carried by Membrane's datapath"
done
