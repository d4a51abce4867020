#!/usr/bin/env bash
# The foundation's contract under real traffic: a third-party module built out
# of tree against the installed SDK owns pipeline slot 2 (egress-policy),
# declared fail-closed, and counts packets in persistent pinned maps. Every
# packet must pass that stage: while its slot is empty the datapath drops
# (MBR_STAT_DROP_STAGE_MISSING). 12,000 ICMP requests at a steady rate cross
# the entry program while the module is reloaded 20 times: none may be lost,
# none may be dropped for a missing stage, and the stage must have counted
# exactly the requests sent. Unloading it is refused without --force (it would
# drop); with --force packets are dropped and counted, and the persistent
# maps stay pinned.
set -euo pipefail
source "$MEMBRANE_SOURCE_DIR/test/lib/harness.sh"
harness_init

PACKETS=${MEMBRANE_RELOAD_TEST_PACKETS:-12000}
RELOADS=20

sender=$(harness_netns sender)
node=$(harness_netns node)
harness_veth "$sender" eth-s "$node" eth-n
ip -n "$sender" addr add 10.200.7.1/24 dev eth-s
ip -n "$node" addr add 10.200.7.2/24 dev eth-n

harness_dbus
HARNESS_PIN_DIR="$(harness_bpffs bpffs)/membrane/node-reload"
config="$HARNESS_TMP/membrane.toml"
harness_write_config "$config" node-reload "$MEMBRANE_TEST_PREFIX/test-modules" '["eth-n"]' '["counter"]' \
  $'[module.counter]\nfail_closed = true'
harness_daemon "$node" "$config"

echo_requests() {
  harness_ctl -o json module call counter Count | python3 -c 'import json,sys; print(json.load(sys.stdin)["echo_requests"])'
}
stage_missing() { harness_stat "$HARNESS_PIN_DIR" DROP_STAGE_MISSING; }

# Warm up the neighbour entries so the run measures steady traffic.
ip netns exec "$sender" ping -q -c 3 -i 0.2 -W 1 10.200.7.2 >/dev/null || harness_fail "no connectivity before the test"
start_count=$(echo_requests)
start_missing=$(stage_missing)

ip netns exec "$sender" ping -q -i 0.001 -c "$PACKETS" -W 2 10.200.7.2 >"$HARNESS_TMP/ping.txt" 2>&1 &
ping_pid=$!
harness_register_pid "$ping_pid"

# Spread the reloads over the run (it lasts about PACKETS ms or more).
interval=$(python3 -c "print(max(0.05, $PACKETS / 1000.0 / ($RELOADS + 4)))")
sleep "$interval"
for ((i = 1; i <= RELOADS; i++)); do
  harness_ctl module reload counter >/dev/null || harness_fail "reload $i failed"
  sleep "$interval"
done
generation=$(harness_ctl -o json module list | python3 -c 'import json,sys; print([m for m in json.load(sys.stdin) if m["name"]=="counter"][0]["generation"])')

wait "$ping_pid" || true
cat "$HARNESS_TMP/ping.txt"
read -r transmitted received < <(python3 - "$HARNESS_TMP/ping.txt" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
m = re.search(r"(\d+) packets transmitted, (\d+) received", text)
print(m.group(1), m.group(2)) if m else print("0 0")
PY
)
end_count=$(echo_requests)
counted=$((end_count - start_count))
missing=$(($(stage_missing) - start_missing))
echo "transmitted=$transmitted received=$received reloads=$RELOADS generation=$generation" \
  "counted=$counted dropped_stage_missing=$missing"
[[ "$transmitted" == "$PACKETS" ]] || harness_fail "ping sent $transmitted packets, expected $PACKETS"
[[ "$missing" == 0 ]] || harness_fail "$missing packets met an empty fail-closed slot during $RELOADS reloads"
[[ "$received" == "$transmitted" ]] || harness_fail "lost $((transmitted - received)) of $transmitted packets during $RELOADS reloads"
[[ "$generation" -ge $((RELOADS + 1)) ]] || harness_fail "module generation is $generation after $RELOADS reloads"
# Every request crossed the stage (replies leave by egress and are not seen):
# the count proves the traffic went through it and the map kept its state.
[[ "$counted" == "$PACKETS" ]] || harness_fail "the stage counted $counted echo requests of $PACKETS sent"

# Unload: refused without --force, naming the stage and what would happen.
if out=$(harness_ctl module unload counter 2>&1); then harness_fail "unload of a fail-closed stage's holder was not refused"; fi
grep -q "NeedsForce" <<<"$out" || harness_fail "refusal is not NeedsForce: $out"
grep -q "stage 2 (egress-policy) is fail-closed: packets through it will be dropped until a module fills it" <<<"$out" ||
  harness_fail "refusal does not say what would happen: $out"
[[ $(echo_requests) -ge "$end_count" ]] || harness_fail "the refused unload stopped the module"

# With --force: packets through the stage are dropped and counted; the
# persistent maps stay and count no more.
harness_ctl module unload --force counter || harness_fail "unload --force failed"
pin="$HARNESS_PIN_DIR/counter_echo_v1"
[[ -e "$pin" ]] || harness_fail "persistent map $pin was removed on unload"
before=$(pinned_sum "$pin")
before_missing=$(stage_missing)
if ip netns exec "$sender" ping -q -c 20 -i 0.01 -W 1 10.200.7.2 >"$HARNESS_TMP/after.txt"; then
  harness_fail "traffic passed the empty fail-closed stage: $(cat "$HARNESS_TMP/after.txt")"
fi
grep -q "20 packets transmitted, 0 received" "$HARNESS_TMP/after.txt" || harness_fail "some packets passed: $(cat "$HARNESS_TMP/after.txt")"
dropped=$(($(stage_missing) - before_missing))
((dropped >= 20)) || harness_fail "MBR_STAT_DROP_STAGE_MISSING grew by $dropped for 20 requests"
[[ $(pinned_sum "$pin") == "$before" ]] || harness_fail "the unloaded module still counts: its slot was not emptied"
[[ "$before" -ge "$end_count" ]] || harness_fail "pinned count $before is below the last reported $end_count"

# Loaded again, it fills the slot: traffic flows.
harness_ctl module load counter >/dev/null || harness_fail "load after unload failed"
ip netns exec "$sender" ping -q -c 5 -i 0.1 -W 1 10.200.7.2 >/dev/null || harness_fail "traffic did not come back with the module"
echo "PASS: $PACKETS packets, $RELOADS reloads, 0 lost, all counted by the fail-closed stage;" \
  "unload refused without --force, with --force $dropped dropped and counted"
