#!/usr/bin/env bash
# membrane-lab leaves nothing on the host and `down` is exact:
#  - while a lab runs, the host has no address or route in the lab's ranges;
#  - `down` after `up` was SIGKILLed half-way removes every namespace, mount,
#    process and folder of that lab;
#  - `down` with the record lost (a crash) still removes everything;
#  - `down` of one lab leaves another lab whose name it prefixes untouched.
set -euo pipefail
source "${MEMBRANE_SOURCE_DIR:?}/lab/lab_test_lib.sh"
labtest_init

# nothing_left LAB : no namespace, folder, mount or process of LAB remains.
nothing_left() {
    local lab=$1
    ! ip netns list | grep_quiet "^ml-$lab-" || labtest_fail "namespaces of $lab left: $(ip netns list | grep "^ml-$lab-" | tr '\n' ' ')"
    [[ ! -e /run/membrane-lab/$lab ]] || labtest_fail "/run/membrane-lab/$lab left"
    ! grep -q " /run/membrane-lab/$lab/" /proc/self/mountinfo || labtest_fail "mounts of $lab left"
    local left
    left=$(grep -ls "/run/membrane-lab/$lab/" /proc/[0-9]*/cmdline || true)
    [[ -z "$left" ]] || labtest_fail "processes of $lab left: $(for f in $left; do printf '%s: %s; ' "${f//[^0-9]/}" "$(tr '\0' ' ' <"$f" 2>/dev/null)"; done)"
}

# 1. A running lab and a second one whose name extends the first's.
lab=$(labtest_name t)
other="${lab}x"
echo "$other" >>"$LABTEST_TMP/labs"
labtest_topology "$lab" vxlan a1:node1 b1:node2 >"$LABTEST_TMP/a.toml"
labtest_topology "$other" direct a1:node1 b1:node2 >"$LABTEST_TMP/b.toml"
labtest_up "$LABTEST_TMP/a.toml"
labtest_up "$LABTEST_TMP/b.toml"
labtest_expect_ping "$lab" a1 b1

index=$(labtest_json "$lab" "s['nodes'][0]['ip'].split('.')[2]")
if ip -4 addr show | grep -Eq "inet (10\.$index\.|192\.168\.$index\.)" ||
    ip -4 route show table all | grep -Eq "^(10\.$index\.|192\.168\.$index\.)"; then
    labtest_fail "the host has an address or route in the lab's ranges"
fi
echo "host: no address or route in 10.$index.0.0/16 or 192.168.$index.0/24"

# 2. Record lost, as after a crash: down finds everything by its prefix; the other lab stays.
rm "/run/membrane-lab/$lab/lab.json"
lab_cmd down "$lab"
nothing_left "$lab"
labtest_expect_ping "$other" a1 b1
echo "down without a record removed $lab entirely; $other untouched"
lab_cmd down "$other"
nothing_left "$other"

# 3. `up` SIGKILLed half-way (daemons starting, pods not all made), then down.
crashed=$(labtest_name k)
labtest_topology "$crashed" vxlan a1:node1 a2:node1 b1:node2 b2:node2 >"$LABTEST_TMP/c.toml"
_labtest_register_labs
lab_cmd up "$LABTEST_TMP/c.toml" >/dev/null 2>&1 &
up_pid=$!
for _ in $(seq 200); do  # until the first membraned of the lab runs (etcd starts before them)
    pgrep -f "membraned --config /run/membrane-lab/$crashed/" >/dev/null && break
    sleep 0.05
done
kill -KILL "$up_pid"
wait "$up_pid" 2>/dev/null || true
ip netns list | grep_quiet "^ml-$crashed-" || labtest_fail "the killed up made nothing: the test proves nothing"
lab_cmd down "$crashed"
nothing_left "$crashed"
echo "down after a SIGKILLed up removed everything"
echo "PASS: membrane-lab leaves nothing on the host and down is exact"
