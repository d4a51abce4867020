#!/usr/bin/env bash
# The routing module reloaded on both nodes, five times each, under a steady
# flow across nodes (2000 echo requests 4 ms apart): not one packet lost, in
# both routing modes, and every reload is a new generation. The routing stage
# carried every packet itself: neither node's kernel forwarded one (in direct
# mode the node routes alone would deliver them), and its counter accounts
# for all the pods sent.
set -euo pipefail
source "${MEMBRANE_SOURCE_DIR:?}/lab/lab_test_lib.sh"
labtest_init

count=2000
generation() {  # LAB NODE MODULE
    lab_cmd ctl "$1" "$2" -- -o json module list |
        python3 -c "import json,sys; print(next(m['generation'] for m in json.load(sys.stdin) if m['name'] == '$3'))"
}

for routing in vxlan direct; do
    if [[ $routing == vxlan ]]; then module=routing-vxlan; else module=direct-routing; fi
    lab=$(labtest_name "h${routing:0:1}")
    labtest_topology "$lab" "$routing" a1:node1 b1:node2 >"$LABTEST_TMP/$lab.toml"
    labtest_up "$LABTEST_TMP/$lab.toml"
    labtest_expect_ping "$lab" a1 b1
    gen1=$(generation "$lab" node1 "$module")
    gen2=$(generation "$lab" node2 "$module")

    target=$(labtest_addr "$lab" b1)
    labtest_mark "$lab" a1 b1
    lab_cmd exec "$lab" a1 -- timeout 60 ping -c "$count" -i 0.004 -W 2 -q "$target" >"$LABTEST_TMP/ping.out" 2>&1 &
    pinger=$!
    sleep 0.5
    for _ in 1 2 3 4 5; do
        lab_cmd ctl "$lab" node1 -- module reload "$module" >/dev/null || labtest_fail "reload of $module on node1 failed"
        lab_cmd ctl "$lab" node2 -- module reload "$module" >/dev/null || labtest_fail "reload of $module on node2 failed"
        sleep 0.3
    done
    wait "$pinger" || true
    cat "$LABTEST_TMP/ping.out"
    grep -q "^$count packets transmitted, $count received" "$LABTEST_TMP/ping.out" ||
        labtest_fail "$routing: packets lost while $module was reloaded"
    [[ $(generation "$lab" node1 "$module") == $((gen1 + 5)) && $(generation "$lab" node2 "$module") == $((gen2 + 5)) ]] ||
        labtest_fail "$routing: $module is not five generations further"
    labtest_expect_bpf_routed "$lab" a1 b1
    lab_cmd down "$lab"
    echo "PASS: $routing: $module reloaded 5 times on each node under $count echo requests, none lost, all routed by the stage"
done
