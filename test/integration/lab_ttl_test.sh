#!/usr/bin/env bash
# Every node a pod's packet is routed through is a hop, in both routing modes:
# it decrements the TTL once, and a packet whose TTL runs out there is
# answered with ICMP time exceeded (counted MBR_STAT_TTL_EXCEEDED), never
# dropped without a word. tracepath from a pod shows, across nodes, its own
# node, the peer's node and the peer; on one node, the node and the peer.
# ping with TTL 1 and 2 gets "time exceeded" from each node, checksums intact.
set -euo pipefail
source "${MEMBRANE_SOURCE_DIR:?}/lab/lab_test_lib.sh"
labtest_init
command -v tracepath >/dev/null || labtest_skip "'tracepath' is not installed (scripts/install-deps.sh: iputils-tracepath)"

ttl_exceeded() {  # LAB NODE
    membrane_stat "/run/membrane-lab/$1/bpffs/membrane/$2" "$MBR_STAT_TTL_EXCEEDED"
}

for routing in vxlan direct; do
    lab=$(labtest_name "t${routing:0:1}")
    labtest_topology "$lab" "$routing" a1:node1 a2:node1 b1:node2 >"$LABTEST_TMP/$lab.toml"
    labtest_up "$LABTEST_TMP/$lab.toml" >/dev/null
    node1=$(labtest_json "$lab" "s['nodes'][0]['ip']")
    node2=$(labtest_json "$lab" "s['nodes'][1]['ip']")
    expired1=$(ttl_exceeded "$lab" node1)
    expired2=$(ttl_exceeded "$lab" node2)

    for path in "a1 b1 $node1 $node2" "b1 a1 $node2 $node1" "a1 a2 $node1"; do
        read -r from to hops <<<"$path"
        expected="$hops $(labtest_addr "$lab" "$to")"
        seen=$(labtest_hops "$lab" "$from" "$to")
        [[ "$seen" == "$expected" ]] || labtest_fail "$routing: tracepath $from -> $to saw hops '$seen', expected '$expected'"
        labtest_log "$routing: tracepath $from -> $to: $seen"
    done
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
    lab_cmd down "$lab"
    echo "PASS: $routing: each node is one hop and answers an expired TTL"
done
