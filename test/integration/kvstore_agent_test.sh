#!/usr/bin/env bash
# membraned with [kvstore]: it starts while etcd is down (the store connects
# in the background), connects once etcd is up, shows it in `membranectl
# status`, notices etcd going away and says so, and stops cleanly. etcd
# (Debian's etcd-server) runs inside the test's own namespace on 127.0.0.1.
set -euo pipefail
source "$MEMBRANE_SOURCE_DIR/test/lib/harness.sh"
harness_init

node=$(harness_netns node)
harness_dbus
mkdir -p "$HARNESS_TMP/modules"
config="$HARNESS_TMP/membrane.toml"
harness_write_config "$config" node-kv "$HARNESS_TMP/modules" '[]' '[]' $'[cluster]\nname = "test"\nid = 7\n\n[kvstore]\nendpoints = ["http://127.0.0.1:2379"]\nlease_ttl = 5\ndial_timeout = 1\nrequest_timeout = 2'

field() {  # field KEY : a value of `membranectl -o json status`
    harness_ctl -o json status | python3 -c "import json,sys; print(json.load(sys.stdin).get('$1', ''))"
}
wait_state() {  # wait_state STATE SECONDS
    local deadline=$((SECONDS + $2))
    until [[ "$(field kvstore_state)" == "$1" ]]; do
        ((SECONDS < deadline)) || harness_fail "kvstore_state is '$(field kvstore_state)', not '$1', after $2 s (error: $(field kvstore_error))"
        sleep 0.2
    done
}

# Up without etcd: the agent answers, the store is still connecting.
harness_daemon "$node" "$config"
[[ "$(field kvstore_state)" == connecting ]] || harness_fail "without etcd the store is '$(field kvstore_state)', not connecting"
wait_state connecting 1
[[ -n "$(field kvstore_error)" ]] || { sleep 1.5; [[ -n "$(field kvstore_error)" ]]; } ||
    harness_fail "no connection error reported while etcd is down"

harness_etcd "$node"
wait_state connected 15
status=$(harness_ctl status)
grep -q "KV store: *connected to http://127.0.0.1:2379, revision [0-9]" <<<"$status" ||
    harness_fail "membranectl status does not show the connection: $status"
grep -q "cluster 'test' (id 7): kvstore etcd at http://127.0.0.1:2379" "$HARNESS_DAEMON_LOG" ||
    harness_fail "the agent did not log its cluster and kvstore"

# etcd goes away: noticed within the health check's period and its timeout.
harness_stop_etcd
wait_state disconnected 10
grep -q "KV store: *disconnected" <<<"$(harness_ctl status)" || harness_fail "status does not say disconnected"
grep -q "kvstore disconnected" "$HARNESS_DAEMON_LOG" || harness_fail "the loss is not logged"

# (Reconnecting and resuming watches: integration.etcd.*, without a daemon.)
harness_stop_daemon || harness_fail "membraned did not stop cleanly on SIGTERM with a store"
harness_stop_etcd
harness_log "kvstore agent: start without etcd, connect and loss all seen"
