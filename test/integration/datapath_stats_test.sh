#!/usr/bin/env bash
# `membranectl stats`: the datapath's per-reason counters, by name, summed
# over CPUs. Pings from a peer namespace through the node's device move
# entry_from_netdev by at least the number sent; -o json parses and carries
# exactly the names of sdk/include/membrane/stat_names.hpp, in its order.
set -euo pipefail
source "$MEMBRANE_SOURCE_DIR/test/lib/harness.sh"
harness_init

peer=$(harness_netns peer)
node=$(harness_netns node)
harness_veth "$peer" eth-p "$node" eth-n
ip -n "$peer" addr add 10.200.9.1/24 dev eth-p
ip -n "$node" addr add 10.200.9.2/24 dev eth-n

harness_dbus
mkdir -p "$HARNESS_TMP/modules"
config="$HARNESS_TMP/membrane.toml"
harness_write_config "$config" node-stats "$HARNESS_TMP/modules" '["eth-n"]' '[]'
harness_daemon "$node" "$config"

counter() {  # counter NAME : its packets in `membranectl -o json stats`
  harness_ctl -o json stats | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"
}

# The names, in order, as the one table spells them.
expected=$(python3 -c "import re,sys
print(' '.join(re.findall(r'\{MBR_STAT_\w+, \"(\w+)\"', open(sys.argv[1]).read())))" \
  "$MEMBRANE_SOURCE_DIR/sdk/include/membrane/stat_names.hpp")
[[ $(wc -w <<<"$expected") -ge 13 ]] || harness_fail "could not read the names of stat_names.hpp: $expected"
seen=$(harness_ctl -o json stats | python3 -c "import json,sys; print(' '.join(json.load(sys.stdin)))") ||
  harness_fail "membranectl -o json stats does not parse"
[[ "$seen" == "$expected" ]] || harness_fail "stats names differ from stat_names.hpp: got '$seen', want '$expected'"

before=$(counter entry_from_netdev)
sent=20
ip netns exec "$peer" ping -q -c "$sent" -i 0.05 -W 1 10.200.9.2 >/dev/null || harness_fail "ping through the node failed"
after=$(counter entry_from_netdev)
((after - before >= sent)) ||
  harness_fail "entry_from_netdev moved by $((after - before)) after $sent pings (before $before, after $after)"
harness_log "entry_from_netdev: $before -> $after after $sent pings"

# For people: a table with the same names (the count may have moved on:
# the node's stack also sends, e.g. ARP).
table=$(harness_ctl stats)
grep -Eq "^entry_from_netdev +[0-9]+$" <<<"$table" || harness_fail "the stats table lacks entry_from_netdev: $table"

harness_log "PASS"
