#!/usr/bin/env bash
# The cluster store in a membrane-lab (three nodes, VXLAN, the lab's etcd with
# TLS, lease TTL 5 s). Each node's membrane.toml lists only itself: the rest
# comes from etcd.
#   - Pods added in a different order on each node: the same labels get the
#     same identity on every node, other labels another, all 1 << 16 | n.
#   - Every node's ipcache holds every other node's pods as /32s with their
#     identity and their node's address; a new pod appears there, and a
#     deleted one goes, on every other node (the time is printed).
#   - Each node lists the other two (node list), learned from etcd; a
#     Namespace applied on node1 is listed by node2 and node3.
#   - etcd stopped for 30 s under a ping stream across nodes: no echo is lost;
#     a pod with known labels is added meanwhile, one with new labels is
#     refused with CNI code 11 and a message naming the kvstore and leaves no
#     endpoint; etcd back, the pod added meanwhile reaches the other nodes and
#     the new labels can be added.
#   - node2's agent SIGKILLed and started again at once: node1 keeps node2's
#     pods in its ipcache throughout, and traffic goes on.
#   - node3's agent SIGKILLed and not started: after the lease TTL, node1 and
#     node2 drop node3 from their node lists, its route, its pods from their
#     ipcache, and its identity references from etcd.
set -euo pipefail
source "${MEMBRANE_SOURCE_DIR:?}/lab/lab_test_lib.sh"
labtest_init
command -v etcd >/dev/null || labtest_skip "etcd is not installed (apt-get install etcd-server)"
command -v etcdctl >/dev/null || labtest_skip "etcdctl is not installed (apt-get install etcd-client)"

lease_ttl=5
lab=$(labtest_name cs)
printf 'name = "%s"\nrouting = "vxlan"\nlease_ttl = %s\n' "$lab" "$lease_ttl" >"$LABTEST_TMP/$lab.toml"
for node in node1 node2 node3; do printf '\n[[nodes]]\nname = "%s"\n' "$node" >>"$LABTEST_TMP/$lab.toml"; done
labtest_up "$LABTEST_TMP/$lab.toml"

# Per pod, from its node when it was added: address, node, and the "identity node_ip" the other
# nodes' ipcache entry must hold (asked once: `status` cannot while a node's agent is down).
declare -A ADDR NODE EXPECT
add_pod() {  # add_pod POD NODE APP
    lab_cmd pod add "$lab" "$1" "$2" --label app="$3" >/dev/null || labtest_fail "pod add $1 on $2 (app=$3)"
    ADDR[$1]=$(labtest_addr "$lab" "$1")
    NODE[$1]=$2
    EXPECT[$1]="$(labtest_identity "$lab" "$1") $(labtest_node_ip "$lab" "$2")"
}
node_names() {  # node_names NODE : the names NODE's membraned lists, sorted
    lab_cmd ctl "$lab" "$1" -- -o json node list |
        python3 -c 'import json,sys; print(" ".join(sorted(n["name"] for n in json.load(sys.stdin))))'
}
# has_remote NODE POD : NODE's ipcache has POD as a /32 with its identity behind its node.
has_remote() { [[ "$(labtest_ipcache "$lab" "$1" "${ADDR[$2]}")" == "${EXPECT[$2]}" ]]; }
# no_remote NODE ADDRESS : NODE's ipcache has no /32 for ADDRESS.
no_remote() { [[ -z "$(labtest_ipcache "$lab" "$1" "$2")" ]]; }
# wait_ms SECONDS COMMAND... : polls COMMAND until it succeeds; prints the milliseconds it took,
# or fails after SECONDS.
wait_ms() {
    local limit=$1 start now
    shift
    start=$(date +%s%N)
    until "$@"; do
        now=$(date +%s%N)
        (((now - start) / 1000000000 < limit)) || return 1
        sleep 0.05
    done
    echo $((($(date +%s%N) - start) / 1000000))
}

# --- identities: the same on every node, whatever the order ------------------------------
add_pod db2 node2 db
add_pod cache3 node3 cache
add_pod web1 node1 web
add_pod cache2 node2 cache
add_pod web3 node3 web
add_pod db1 node1 db
lab_cmd status "$lab" -o json | python3 -c '
import json, sys
pods = {p["name"]: p["identity"] for p in json.load(sys.stdin)["pods"]}
web, db, cache = pods["web1"], pods["db1"], pods["cache2"]
assert None not in pods.values(), pods
assert pods["web3"] == web and pods["db2"] == db and pods["cache3"] == cache, f"same labels, other numbers: {pods}"
assert len({web, db, cache}) == 3, f"different labels, one number: {pods}"
assert all(n >> 16 == 1 and 256 <= n & 0xFFFF for n in pods.values()), f"not 1 << 16 | n: {pods}"
print(f"ok: app=web {web}, app=db {db}, app=cache {cache} on every node, pods added in different orders")' ||
    labtest_fail "identities differ across nodes"

# --- nodes and endpoints, learned from etcd ---------------------------------------------
for node in node1 node2 node3; do
    [[ "$(node_names "$node")" == "node1 node2 node3" ]] || labtest_fail "$node lists nodes: $(node_names "$node")"
done
echo "ok: each node lists node1 node2 node3, its config only itself"

# Objects applied on one node are every node's (objects/ in etcd).
printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n  labels: {team: payments}\n' >"$LABTEST_TMP/shop.yaml"
lab_cmd ctl "$lab" node1 -- apply -f "$LABTEST_TMP/shop.yaml" >/dev/null || labtest_fail "apply on node1 failed"
shop_on() { lab_cmd ctl "$lab" "$1" -- -o json get ns shop 2>/dev/null | grep_quiet '"team":"payments"'; }
for node in node2 node3; do
    wait_ms 10 shop_on "$node" >/dev/null || labtest_fail "Namespace shop, applied on node1, never reached $node"
done
echo "ok: Namespace shop applied on node1 is listed by node2 and node3"
for pod in web1 db1 db2 cache2 cache3 web3; do
    for node in node1 node2 node3; do
        [[ $node == "${NODE[$pod]}" ]] && continue
        wait_ms 10 has_remote "$node" "$pod" >/dev/null ||
            labtest_fail "$node's ipcache has '$(labtest_ipcache "$lab" "$node" "${ADDR[$pod]}")' for $pod, not '${EXPECT[$pod]}'"
    done
done
echo "ok: every node's ipcache holds the other nodes' pods as /32s with identity and node address"
labtest_expect_ping "$lab" web1 cache3

# Timed from the end of the CNI ADD (late1 has web1's labels and node).
out=$(lab_cmd pod add "$lab" late1 node1 --label app=web) || labtest_fail "pod add late1: $out"
ADDR[late1]=${out##*: } NODE[late1]=node1 EXPECT[late1]=${EXPECT[web1]}
for node in node2 node3; do
    ms=$(wait_ms 10 has_remote "$node" late1) || labtest_fail "late1 (node1) never reached $node's ipcache"
    echo "late1 added on node1: in $node's ipcache within ${ms} ms of the end of its CNI ADD (a probe takes ~0.3 s itself)"
done
lab_cmd pod del "$lab" late1 >/dev/null
for node in node2 node3; do
    ms=$(wait_ms 10 no_remote "$node" "${ADDR[late1]}") ||
        labtest_fail "late1 (${ADDR[late1]}) stayed in $node's ipcache after its DEL"
    echo "late1 deleted on node1: gone from $node's ipcache within ${ms} ms"
done

# --- etcd away for 30 s under traffic ----------------------------------------------------
lab_cmd exec "$lab" web1 -- ping -c 340 -i 0.1 -W 1 -q "${ADDR[web3]}" >"$LABTEST_TMP/ping-etcd.out" 2>&1 &
pinger=$!
sleep 1
lab_cmd etcd stop "$lab" >/dev/null
stopped=$SECONDS
add_pod web4 node2 web
[[ "${EXPECT[web4]% *}" == "${EXPECT[web1]% *}" ]] ||
    labtest_fail "web4 (app=web, added while etcd was away) got identity ${EXPECT[web4]% *}, web1 has ${EXPECT[web1]% *}"
echo "ok: with etcd away, web4 (known labels) was added with app=web's identity"
if out=$(lab_cmd pod add "$lab" new2 node2 --label app=brand-new 2>&1); then
    labtest_fail "a pod with new labels was added while etcd was away: $out"
fi
grep_quiet "code 11" <<<"$out" || labtest_fail "the refusal is not CNI code 11 (try again later): $out"
grep_quiet -i "kvstore\|etcd" <<<"$out" || labtest_fail "the refusal does not name the store: $out"
[[ "$(labtest_endpoints "$lab" node2)" != *brand-new* ]] || labtest_fail "the refused pod left an endpoint on node2"
echo "ok: with etcd away, new labels are refused: ${out##*: membrane-cni ADD failed}"
away=$((30 - (SECONDS - stopped)))
((away <= 0)) || sleep "$away"
lab_cmd etcd start "$lab" >/dev/null
wait "$pinger" || true
grep_quiet " 0% packet loss" "$LABTEST_TMP/ping-etcd.out" ||
    { cat "$LABTEST_TMP/ping-etcd.out" >&2; labtest_fail "echoes were lost while etcd was away"; }
echo "ok: $(grep -o '[0-9]* packets transmitted, [0-9]* received' "$LABTEST_TMP/ping-etcd.out") while etcd was away for 30 s"
wait_ms 15 has_remote node1 web4 >/dev/null || labtest_fail "web4, added while etcd was away, never reached node1"
add_pod new2 node2 brand-new
wait_ms 10 has_remote node3 new2 >/dev/null || labtest_fail "new2 never reached node3's ipcache"
echo "ok: etcd back: web4 reached node1, and new labels were added (new2)"

# --- an agent restarted within the TTL changes nothing ----------------------------------
watch_node2_pods() {  # until the file STOP exists: fail if node1 ever lacks a pod of node2
    until [[ -e "$LABTEST_TMP/stop-watch" ]]; do
        for pod in db2 cache2 web4; do
            has_remote node1 "$pod" || { echo "node1 lost $pod at $(date +%T.%N)" >"$LABTEST_TMP/lost"; return; }
        done
    done
}
watch_node2_pods &
watcher=$!
lab_cmd node stop "$lab" node2 --signal KILL >/dev/null
lab_cmd node start "$lab" node2 >/dev/null
sleep $((lease_ttl * 2))
touch "$LABTEST_TMP/stop-watch"
wait "$watcher"
[[ ! -e "$LABTEST_TMP/lost" ]] || labtest_fail "node2 restarted within the TTL, yet $(cat "$LABTEST_TMP/lost")"
labtest_expect_ping "$lab" web1 db2
echo "ok: node2's agent killed and restarted: node1 kept its pods for $((lease_ttl * 2)) s after, traffic goes on"

# --- a node that stays dead is dropped after its lease -----------------------------------
node3_cidr=$(labtest_json "$lab" "next(n['pod_cidr'] for n in s['nodes'] if n['name'] == 'node3')")
[[ -n "$(ip -n "ml-$lab-node1" route show "$node3_cidr")" ]] || labtest_fail "node1 has no route to $node3_cidr"
cache3_addr=${ADDR[cache3]}
lab_cmd node stop "$lab" node3 --signal KILL >/dev/null
killed=$SECONDS
node3_gone() {
    local node
    for node in node1 node2; do
        [[ "$(node_names "$node")" == "node1 node2" ]] || return 1
        no_remote "$node" "$cache3_addr" || return 1
        [[ -z "$(ip -n "ml-$lab-$node" route show "$node3_cidr")" ]] || return 1
    done
    local refs
    refs=$(lab_cmd etcd ctl "$lab" -- get --prefix --keys-only "membrane/v1/$lab/identities/refs/") || return 1
    [[ -n "$refs" ]] || return 1  # node1's and node2's references are there: an empty answer is a failure
    ! grep_quiet "/node3$" <<<"$refs"
}
wait_ms $((lease_ttl + 20)) node3_gone >/dev/null ||
    labtest_fail "node3 dead for $((SECONDS - killed)) s: node1 lists '$(node_names node1)', has '$(labtest_ipcache "$lab" node1 "$cache3_addr")' for cache3, route '$(ip -n "ml-$lab-node1" route show "$node3_cidr")'"
echo "ok: node3 killed: after $((SECONDS - killed)) s (lease TTL ${lease_ttl} s) node1 and node2 dropped it, its route, its pods and its identity references"
labtest_expect_ping "$lab" web1 db2
