#!/usr/bin/env bash
# Every node a pod's packet is routed through is a hop, in both routing modes:
# it decrements the TTL once, and a packet whose TTL runs out there is
# answered with ICMP time exceeded (counted MBR_STAT_TTL_EXCEEDED), never
# dropped without a word. tracepath from a pod shows, across nodes, its own
# node, the peer's node and the peer; on one node, the node and the peer.
# ping with TTL 1 and 2 gets "time exceeded" from each node, checksums intact;
# a reply arrives with one TTL less per node. In VXLAN mode, again with one
# node on the VXLAN device's path (its overlay port cleared).
set -euo pipefail
source "${MEMBRANE_SOURCE_DIR:?}/lab/lab_test_lib.sh"
labtest_init
command -v tracepath >/dev/null || labtest_skip "'tracepath' is not installed (scripts/install-deps.sh: iputils-tracepath)"

ttl_exceeded() {  # LAB NODE
    membrane_stat "/run/membrane-lab/$1/bpffs/membrane/$2" "$MBR_STAT_TTL_EXCEEDED"
}

# LAB FROM TO TTL: FROM's ping to TO is answered with TTL (64 less one per node on the way back).
expect_reply_ttl() {
    local reply
    reply=$(lab_cmd exec "$1" "$2" -- ping -c 1 -W 2 "$(labtest_addr "$1" "$3")" 2>&1 || true)
    [[ "$reply" == *" ttl=$4 "* ]] || labtest_fail "$routing: ping $2 -> $3: expected the reply with ttl=$4: $reply"
}

# LAB NODE IP: NODE deletes its neighbour entry for IP; 50 ms later (the routing
# stage's cached way to it has expired) the entry must still be absent, so the
# next packet there leaves unresolved.
forget_neighbour() {
    local neighbour
    ip netns exec "ml-$1-$2" ip neigh del "$3" dev eth0 2>/dev/null || true
    sleep 0.05
    neighbour=$(ip netns exec "ml-$1-$2" ip neigh show "$3" dev eth0)
    [[ -z "$neighbour" ]] || labtest_fail "$2 resolved $3 again before the test's packet: $neighbour"
}

# LAB: tracepath both ways across nodes and on node1 shows each node once, and
# the replies have lost one TTL per node (the routing stage or the device's way
# out, and the delivery into the pod).
expect_one_hop_per_node() {
    local path from to hops expected seen
    for path in "a1 b1 $node1 $node2" "b1 a1 $node2 $node1" "a1 a2 $node1"; do
        read -r from to hops <<<"$path"
        expected="$hops $(labtest_addr "$1" "$to")"
        seen=$(labtest_hops "$1" "$from" "$to")
        [[ "$seen" == "$expected" ]] || labtest_fail "$routing$2: tracepath $from -> $to saw hops '$seen', expected '$expected'"
        labtest_log "$routing$2: tracepath $from -> $to: $seen"
    done
    expect_reply_ttl "$1" a1 b1 62
    expect_reply_ttl "$1" b1 a1 62
    expect_reply_ttl "$1" a1 a2 63
}

for routing in vxlan direct; do
    lab=$(labtest_name "t${routing:0:1}")
    labtest_topology "$lab" "$routing" a1:node1 a2:node1 b1:node2 >"$LABTEST_TMP/$lab.toml"
    labtest_up "$LABTEST_TMP/$lab.toml" >/dev/null
    node1=$(labtest_json "$lab" "s['nodes'][0]['ip']")
    node2=$(labtest_json "$lab" "s['nodes'][1]['ip']")
    expired1=$(ttl_exceeded "$lab" node1)
    expired2=$(ttl_exceeded "$lab" node2)

    expect_one_hop_per_node "$lab" ""
    # ICMP echo is not checksum-offloaded, so a1's kernel verifies the answers' ICMP checksums too.
    target=$(labtest_addr "$lab" b1)
    for hop in "1 $node1" "2 $node2"; do
        read -r ttl answerer <<<"$hop"
        reply=$(lab_cmd exec "$lab" a1 -- ping -c 1 -W 2 -t "$ttl" "$target" 2>&1 || true)
        [[ "$reply" == *"From $answerer icmp_seq=1 Time to live exceeded"* ]] ||
            labtest_fail "$routing: ping -t $ttl a1 -> b1: no time exceeded from $answerer: $reply"
    done
    bad_checksums=$(lab_cmd exec "$lab" a1 -- nstat -asz IcmpInCsumErrors | awk '$1 == "IcmpInCsumErrors" {print $2}')
    [[ "$bad_checksums" == 0 ]] || labtest_fail "$routing: a1 received $bad_checksums ICMP messages with bad checksums"
    # node1 was hop 1 of a1 -> b1 (twice) and a1 -> a2 and hop 2 of b1 -> a1; node2 hop 2 (twice) and hop 1.
    for check in "node1 $expired1 4" "node2 $expired2 3"; do
        read -r node before answered <<<"$check"
        now=$(ttl_exceeded "$lab" "$node")
        ((now >= before + answered)) || labtest_fail "$routing: $node counted MBR_STAT_TTL_EXCEEDED $before -> $now"
    done
    if [[ $routing == vxlan ]]; then
        # Right after node1 forgets node2's MAC (and the cached way's 20 ms have
        # passed), a packet leaves through bpf_redirect_neigh, the pod's headers
        # stored behind its own Ethernet header: TTL 2 must run out at node2, and
        # a full ping must pass b1's checksum test. Three fresh misses of each.
        for attempt in 1 2 3; do
            forget_neighbour "$lab" node1 "$node2"
            reply=$(lab_cmd exec "$lab" a1 -- ping -c 1 -W 2 -t 2 "$target" 2>&1 || true)
            [[ "$reply" == *"From $node2 icmp_seq=1 Time to live exceeded"* ]] ||
                labtest_fail "$routing: ping -t 2 a1 -> b1 with node2's MAC unresolved: no time exceeded from $node2: $reply"
            forget_neighbour "$lab" node1 "$node2"
            expect_reply_ttl "$lab" a1 b1 62
        done
        # node1 without the overlay port sends and receives through its VXLAN device
        # (the fallback's TTL decrement, the device's receive path), node2 stays native.
        bpftool map update pinned "$(labtest_pins "$lab" node1)/mbr_overlay_v1" key 0 0 0 0 value 0 0 0 0
        labtest_mark "$lab" a1 b1
        expect_one_hop_per_node "$lab" " (node1 on the VXLAN device's path)"
        carried=$(($(labtest_overlay_device_packets "$lab" node1) - ${LABTEST_MARK[overlay_device.node1]}))
        ((carried >= 10)) || labtest_fail "node1's VXLAN device carried $carried packets with its overlay port cleared"
    fi
    lab_cmd down "$lab"
    echo "PASS: $routing: each node is one hop and answers an expired TTL"
done
