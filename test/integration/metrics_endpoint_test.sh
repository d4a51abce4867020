#!/usr/bin/env bash
# The Prometheus endpoint ([metrics]) as a scraper meets it, over real HTTP
# (curl) inside the node's namespace, where the agent listens on 127.0.0.1:
#
#   a bad address is refused by --check-config naming key, value and why;
#   a port already taken is logged as an error naming the address, and the
#   agent serves on without metrics (and stops cleanly);
#   then, with etcd as [kvstore] and the counter fixture module: a pod made
#   by membrane-cni shows as a ready endpoint, every datapath reason of
#   stat_names.hpp is there and entry_from_netdev moves with pings, a module
#   reload is counted, the store shows connected; the body passes
#   `promtool check metrics` (Debian's prometheus package; skipped with a
#   message without it); and SIGTERM while scrapes are in flight, one client
#   stalled mid-request, stops the agent with status 0 within seconds.
set -euo pipefail
source "$MEMBRANE_SOURCE_DIR/test/lib/harness.sh"
harness_init

command -v curl >/dev/null || harness_skip "curl is not installed (scripts/install-deps.sh installs it)"
membraned="$MEMBRANE_BUILD_DIR/kernel/membraned"
CNI_BIN="$MEMBRANE_BUILD_DIR/cni/membrane-cni"
[[ -x "$CNI_BIN" ]] || harness_fail "no membrane-cni at $CNI_BIN (is the build complete?)"

NODE_NAME="node-metrics"
NODE_IP=192.168.79.1
PEER_IP=192.168.79.2
node=$(harness_netns node)
peer=$(harness_netns peer)
harness_veth "$node" eth0 "$peer" eth0 "$NODE_IP/24" "$PEER_IP/24"
harness_dbus

# The node's namespace is the test's own: nothing else listens there.
port=$((20000 + RANDOM % 20000))
address="127.0.0.1:$port"
nodes_toml=$(printf '[[nodes]]\nname = "%s"\nip = "%s"\npod_cidr = "10.10.9.0/24"' "$NODE_NAME" "$NODE_IP")
config="$HARNESS_TMP/membrane.toml"
write_config() {  # write_config ENABLED_MODULES EXTRA_TOML
    harness_write_config "$config" "$NODE_NAME" "$MEMBRANE_TEST_PREFIX/test-modules" '["eth0"]' "$1" "$nodes_toml"$'\n\n'"$2"
}

# --- a bad address is refused before anything starts -------------------------------------------
for bad in 127.0.0.1:99999 localhost; do
    write_config '[]' $'[metrics]\naddress = "'"$bad"'"'
    line=$(grep -n '^address = ' "$config" | cut -d: -f1)
    if out=$("$membraned" --check-config "$config" 2>&1); then harness_fail "--check-config accepted address '$bad'"; fi
    grep -q "^$config:$line:11: 'address' in \[metrics\] must be \"IPv4:port\" such as \"127.0.0.1:9962\", not '$bad': " <<<"$out" ||
        harness_fail "--check-config's refusal of '$bad' does not name the key, value and position: $out"
    harness_log "refused: $out"
done

# --- a taken port: logged by address, the agent serves on ---------------------------------------
ip netns exec "$node" python3 -c '
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
time.sleep(600)' "$port" &
squatter=$!
harness_register_pid "$squatter"
harness_retry 10 bash -c "ip netns exec '$node' ss -Hltn 'sport = :$port' | grep -q LISTEN" ||
    harness_fail "the squatter did not listen on $address"
write_config '[]' $'[metrics]\naddress = "'"$address"'"'
harness_daemon "$node" "$config"
grep -q "cannot serve metrics on $address: .*Address already in use.*; the agent runs on without a metrics endpoint" \
    "$HARNESS_DAEMON_LOG" || harness_fail "the taken port $address was not logged as an error naming it"
harness_ctl status | grep_quiet "$NODE_NAME" || harness_fail "the agent does not serve with its metrics port taken"
harness_stop_daemon || harness_fail "the agent without its metrics endpoint did not stop cleanly"
kill "$squatter"
wait "$squatter" 2>/dev/null || true

# --- scraped ---------------------------------------------------------------------------------
kvstore_toml=""
if command -v etcd >/dev/null; then
    harness_etcd "$node"
    kvstore_toml=$'[cluster]\nname = "metrics"\nid = 3\n\n[kvstore]\nendpoints = ["http://127.0.0.1:2379"]\nlease_ttl = 5\ndial_timeout = 1\nrequest_timeout = 2\n\n'
else
    echo "SKIP (part): etcd is not installed; the membrane_kvstore_* metrics are not scraped" >&2
fi
write_config '["counter"]' "$kvstore_toml"$'[metrics]\naddress = "'"$address"'"'
harness_daemon "$node" "$config"
grep -q "metrics at http://$address/metrics" "$HARNESS_DAEMON_LOG" || harness_fail "the agent did not log its metrics address"

body="$HARNESS_TMP/metrics.txt"
scrape() { ip netns exec "$node" curl -sS --fail --max-time 5 "http://$address/metrics"; }
# value SAMPLE : the value of the sample written exactly SAMPLE (name and labels), or nothing.
value() { scrape | awk -v s="$1" '$1 == s { print $2 }'; }
# wait_value SAMPLE EXPR : until SAMPLE's value v satisfies the python expression EXPR (5 s).
wait_value() {
    local deadline=$((SECONDS + 5)) v
    while true; do
        v=$(value "$1")
        [[ -n "$v" ]] && python3 -c "import sys; v = float(sys.argv[1]); sys.exit(0 if ($2) else 1)" "$v" && return 0
        ((SECONDS < deadline)) || harness_fail "$1 is '${v:-absent}', expected $2"
        sleep 0.2
    done
}

headers=$(ip netns exec "$node" curl -sS --fail --max-time 5 -o "$body" -D - "http://$address/metrics") ||
    harness_fail "GET http://$address/metrics failed"
# prometheus-cpp 1.0 says "text/plain; charset=utf-8", which Prometheus reads as its text format.
grep -qi "^content-type: text/plain" <<<"$headers" || harness_fail "not Prometheus' text format: $headers"

# With a store, identities are the cluster's: the pod waits for the connection.
if [[ -n "$kvstore_toml" ]]; then
    wait_value 'membrane_kvstore_state{state="connected"}' 'v == 1'
    wait_value 'membrane_kvstore_state{state="connecting"}' 'v == 0'
fi

# A pod, made as a runtime makes it.
pod=$(harness_netns pod)
net_conf=$(printf '{"cniVersion": "1.0.0", "name": "metrics-test", "type": "membrane", "dbus_address": "%s", "labels": {"app": "metrics"}}' \
    "$MEMBRANE_DBUS_ADDRESS")
result=$(ip netns exec "$node" env -i PATH="$PATH" CNI_COMMAND=ADD CNI_CONTAINERID="$HARNESS_RUN_ID-pod" \
    CNI_NETNS="/run/netns/$pod" CNI_IFNAME=eth0 CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=pod" \
    CNI_PATH="$MEMBRANE_BUILD_DIR/cni" "$CNI_BIN" <<<"$net_conf") || harness_fail "CNI ADD failed: $result"
wait_value 'membrane_endpoints{state="ready"}' 'v == 1'
wait_value 'membrane_endpoints{state="disconnected"}' 'v == 0'
wait_value 'membrane_identities{kind="allocated"}' 'v >= 1'
wait_value 'membrane_identities{kind="reserved"}' 'v >= 1'
wait_value 'membrane_nodes' 'v == 1'

# Every reason `membranectl stats` names, by the same names; one moves with pings.
reasons=$(python3 -c "import re,sys
print(' '.join(re.findall(r'\{MBR_STAT_\w+, \"(\w+)\"', open(sys.argv[1]).read())))" \
    "$MEMBRANE_SOURCE_DIR/sdk/include/membrane/stat_names.hpp")
(($(wc -w <<<"$reasons") >= 16)) || harness_fail "could not read the names of stat_names.hpp: $reasons"
scrape >"$body"
for reason in $reasons; do
    grep -Eq "^membrane_datapath_packets_total\{reason=\"$reason\"\} [0-9]" "$body" ||
        harness_fail "membrane_datapath_packets_total{reason=\"$reason\"} is missing"
done
# Policy verdicts by direction (they move in integration.lab_policy_trace, with policy-l3l4).
for direction in ingress egress; do
    for verdict in allowed denied; do
        grep -Eq "^membrane_policy_verdicts_total\{direction=\"$direction\",verdict=\"$verdict\"\} [0-9]" "$body" ||
            harness_fail "membrane_policy_verdicts_total{direction=\"$direction\",verdict=\"$verdict\"} is missing"
    done
done
before=$(value 'membrane_datapath_packets_total{reason="entry_from_netdev"}')
ip netns exec "$peer" ping -q -c 10 -i 0.05 -W 1 "$NODE_IP" >/dev/null || harness_fail "ping to the node failed"
wait_value 'membrane_datapath_packets_total{reason="entry_from_netdev"}' "v >= $before + 10"
harness_log "entry_from_netdev: $before -> $(value 'membrane_datapath_packets_total{reason="entry_from_netdev"}') after 10 pings"

# Modules: the state, one-hot; a reload counted.
wait_value 'membrane_module_state{module="counter",state="running"}' 'v == 1'
wait_value 'membrane_module_state{module="counter",state="failed"}' 'v == 0'
wait_value 'membrane_module_reloads_total{module="counter"}' 'v == 0'
harness_ctl module reload counter >/dev/null || harness_fail "module reload counter failed"
wait_value 'membrane_module_reloads_total{module="counter"}' 'v == 1'
wait_value 'membrane_module_quarantines_total{module="counter"}' 'v == 0'

if [[ -n "$kvstore_toml" ]]; then
    wait_value 'membrane_kvstore_connects_total' 'v >= 1'
    wait_value 'membrane_kvstore_watch_resyncs_total' 'v == 0'
    wait_value 'membrane_kvstore_contact_age_seconds' 'v < 6'
    wait_value 'membrane_kvstore_revision' 'v > 0'
else
    [[ -z "$(scrape | grep '^membrane_kvstore_' || true)" ]] || harness_fail "membrane_kvstore_* without a [kvstore]"
fi

# The whole body, by Prometheus' own checker.
scrape >"$body"
if command -v promtool >/dev/null; then
    # The checker must be able to fail: a counter without _total is a lint problem.
    if printf '# HELP x_bad a counter\n# TYPE x_bad counter\nx_bad 1\n' | promtool check metrics >/dev/null 2>&1; then
        harness_fail "promtool check metrics accepted a counter without _total: it checks nothing"
    fi
    problems=$(promtool check metrics <"$body" 2>&1) || harness_fail "promtool check metrics refused the body: $problems"
    harness_log "promtool check metrics: ok ($(grep -c '^membrane_' "$body") membrane_ samples)"
else
    echo "SKIP (part): promtool is not installed (Debian's prometheus package); the body was not linted" >&2
fi

# --- SIGTERM while scrapes are in flight ----------------------------------------------------------
# One client stalled halfway through its request (it holds an HTTP thread)...
ip netns exec "$node" python3 -c '
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /metrics HTTP/1.1\r\n")
time.sleep(600)' "$port" &
stalled=$!
harness_register_pid "$stalled"
# ...and scrapers that do not stop.
: >"$HARNESS_TMP/scrapes"
for _ in 1 2 3; do
    ip netns exec "$node" bash -c "while true; do curl -s --max-time 2 -o /dev/null -w '%{http_code}\n' 'http://$address/metrics' >>'$HARNESS_TMP/scrapes'; done" &
    harness_register_pid $!
done
harness_retry 10 bash -c "(( \$(grep -c '^200' '$HARNESS_TMP/scrapes') >= 30 ))" || harness_fail "the scrapers got no answers"
started=$SECONDS
status=0
harness_stop_daemon "$HARNESS_DAEMON_PID" TERM || status=$?
((status == 0)) || harness_fail "membraned exited with status $status on SIGTERM under scrapes"
harness_log "stopped in $((SECONDS - started)) s under $(grep -c '^200' "$HARNESS_TMP/scrapes") answered scrapes"
grep -q "stopping on SIGTERM" "$HARNESS_DAEMON_LOG" || harness_fail "the agent did not stop on SIGTERM"
if ip netns exec "$node" curl -s --max-time 2 -o /dev/null "http://$address/metrics"; then
    harness_fail "$address still answers after the agent stopped"
fi

harness_log "PASS"
