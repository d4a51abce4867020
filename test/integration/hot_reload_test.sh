#!/usr/bin/env bash
# The foundation's contract under real traffic: a third-party module built out
# of tree against the installed SDK owns pipeline slot 0 and counts packets in
# a persistent pinned map. 12,000 ICMP requests at a steady rate cross the
# entry program while the module is reloaded 20 times: none may be lost, and
# the counter must keep counting across generations. Unloaded, the slot falls
# through and traffic still flows; the persistent map stays pinned.
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
harness_write_config "$config" node-reload "$MEMBRANE_TEST_PREFIX/test-modules" '["eth-n"]' '["counter"]'
harness_daemon "$node" "$config"

counter_packets() {
  harness_ctl -o json module call counter Count | python3 -c 'import json,sys; print(json.load(sys.stdin)["packets"])'
}

# Warm up the neighbour entries so the run measures steady traffic.
ip netns exec "$sender" ping -q -c 3 -i 0.2 -W 1 10.200.7.2 >/dev/null || harness_fail "no connectivity before the test"
start_count=$(counter_packets)

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
echo "transmitted=$transmitted received=$received reloads=$RELOADS generation=$generation"
[[ "$transmitted" == "$PACKETS" ]] || harness_fail "ping sent $transmitted packets, expected $PACKETS"
[[ "$received" == "$transmitted" ]] || harness_fail "lost $((transmitted - received)) of $transmitted packets during $RELOADS reloads"
[[ "$generation" -ge $((RELOADS + 1)) ]] || harness_fail "module generation is $generation after $RELOADS reloads"

end_count=$(counter_packets)
counted=$((end_count - start_count))
echo "counter: $start_count -> $end_count ($counted counted for $PACKETS requests)"
# Every request crossed the slot (replies leave by egress and are not seen).
[[ "$counted" -ge "$PACKETS" ]] || harness_fail "the counter lost state across reloads: counted $counted < $PACKETS"

# Unload: the slot falls through, traffic flows, the persistent map stays.
harness_ctl module unload counter
pin="$HARNESS_PIN_DIR/counter_pkts_v1"
[[ -e "$pin" ]] || harness_fail "persistent map $pin was removed on unload"
# Sum of a per-CPU u64 map read straight from its pin (bpftool prints the
# value as a number with BTF, as little-endian hex bytes without).
pinned_sum() {
  bpftool -j map dump pinned "$1" | python3 -c '
import json, sys
def number(v):
    return v if isinstance(v, int) else int.from_bytes(bytes(int(b, 16) for b in v), "little")
print(sum(number(v["value"]) for e in json.load(sys.stdin) for v in e["values"]))'
}
before=$(pinned_sum "$pin")
ip netns exec "$sender" ping -q -c 50 -i 0.01 -W 1 10.200.7.2 >"$HARNESS_TMP/after.txt" || harness_fail "traffic stopped after unload: $(cat "$HARNESS_TMP/after.txt")"
after=$(pinned_sum "$pin")
[[ "$before" == "$after" ]] || harness_fail "the unloaded module still counts ($before -> $after): its slot was not emptied"
[[ "$before" -ge "$end_count" ]] || harness_fail "pinned count $before is below the last reported $end_count"
echo "PASS: $PACKETS packets, $RELOADS reloads, 0 lost; slot falls through after unload"
