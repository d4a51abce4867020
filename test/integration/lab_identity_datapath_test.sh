#!/usr/bin/env bash
# The sender's cluster-wide identity, as the RECEIVING node's datapath sees
# it, in both routing modes. Two nodes share etcd; the counter fixture module
# (built against the installed SDK, loaded by the topology's `modules`) sits
# in the observe stage of every node and counts echo requests by the entry
# direction and source identity the pipeline context carried. a1 and c1 (on
# node1, different labels) ping b1 (on node2) 3 and 5 times: node2 must count
# 3 from a1's identity and 5 from c1's, entering from the overlay (vxlan: the
# VNI) or the device (direct: node2's ipcache), and node1 the same numbers
# from its endpoints. A node that used its own numbering, the WORLD identity
# or the pod CIDR would show other identities.
set -euo pipefail
source "${MEMBRANE_SOURCE_DIR:?}/lab/lab_test_lib.sh"
labtest_init
counter_so="${MEMBRANE_TEST_PREFIX:?}/test-modules/counter.so"
[[ -f "$counter_so" ]] || labtest_fail "no counter fixture at $counter_so (integration.setup_install_sdk builds it)"

# sources LAB NODE DIRECTION : "identity:count ..." of the echo requests NODE's datapath saw entering from DIRECTION.
sources() {
    lab_cmd ctl "$1" "$2" -- -o json module call counter Count | python3 -c '
import json, sys
seen = json.load(sys.stdin)["echo_sources"]
print(" ".join(sorted("%d:%d" % (s["src_identity"], s["echo_requests"]) for s in seen if s["direction"] == sys.argv[1])))
' "$3"
}

for routing in vxlan direct; do
    lab=$(labtest_name "i${routing:0:1}")
    LABTEST_TOPOLOGY_EXTRA="modules = [\"$counter_so\"]" labtest_topology "$lab" "$routing" a1:node1 c1:node1 b1:node2 \
        >"$LABTEST_TMP/$lab.toml"
    labtest_up "$LABTEST_TMP/$lab.toml"
    a1=$(labtest_identity "$lab" a1)
    c1=$(labtest_identity "$lab" c1)
    ((a1 >= 65536 && c1 >= 65536 && a1 != c1)) || labtest_fail "identities a1=$a1 c1=$c1: not cluster-wide (1 << 16 | n) and distinct"
    # The remote /32s arrive through etcd shortly after the pods: until node2
    # has them, a1's packets would be counted under the pod CIDR's identity.
    for pod in a1 c1; do
        want="${!pod} $(labtest_node_ip "$lab" node1)"
        deadline=$((SECONDS + 20))
        until [[ "$(labtest_ipcache "$lab" node2 "$(labtest_addr "$lab" "$pod")")" == "$want" ]]; do
            ((SECONDS < deadline)) || labtest_fail "$routing: node2's ipcache never got $pod as '$want'"
            sleep 0.1
        done
    done
    labtest_expect_ping "$lab" a1 b1
    labtest_expect_ping "$lab" c1 b1
    base_remote=$(sources "$lab" node2 "$([[ $routing == vxlan ]] && echo from-overlay || echo from-netdev)")
    target=$(labtest_addr "$lab" b1)
    for pod in a1 c1; do
        count=$([[ $pod == a1 ]] && echo 3 || echo 5)
        out=$(lab_cmd exec "$lab" "$pod" -- ping -c "$count" -i 0.2 -W 2 -q "$target" 2>&1) || true
        grep -q "$count packets transmitted, $count received" <<<"$out" || labtest_fail "$routing: $pod -> b1: $out"
    done

    # count_of "id:n ..." ID : n for ID (0 when absent)
    count_of() { local entry; for entry in $1; do [[ ${entry%%:*} == "$2" ]] && { echo "${entry#*:}"; return; }; done; echo 0; }
    entry=$([[ $routing == vxlan ]] && echo from-overlay || echo from-netdev)
    remote=$(sources "$lab" node2 "$entry")
    local_side=$(sources "$lab" node1 from-endpoint)
    for pod in a1 c1; do
        id=${!pod}
        want=$([[ $pod == a1 ]] && echo 3 || echo 5)
        got=$(($(count_of "$remote" "$id") - $(count_of "$base_remote" "$id")))
        ((got == want)) || labtest_fail "$routing: node2 saw $got echo requests from identity $id ($pod) entering $entry, not $want (node2 saw: $remote; before: $base_remote)"
    done
    for entry_id in $remote; do
        id=${entry_id%%:*}
        [[ $id == "$a1" || $id == "$c1" ]] || labtest_fail "$routing: node2 attributed echo requests to identity $id, neither a1 ($a1) nor c1 ($c1): $remote"
    done
    ((  $(count_of "$local_side" "$a1") >= 3 && $(count_of "$local_side" "$c1") >= 5 )) ||
        labtest_fail "$routing: node1's endpoints entry: $local_side (a1=$a1 c1=$c1)"
    echo "ok: $routing: node2's datapath saw a1's identity $a1 and c1's $c1 entering $entry ($remote)"
    lab_cmd down "$lab" >/dev/null || labtest_fail "down $lab failed"
done
