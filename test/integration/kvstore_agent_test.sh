#!/usr/bin/env bash
# membraned with [kvstore]: it starts while etcd is down (the store connects
# in the background), connects once etcd is up, shows it in `membranectl
# status` and `membranectl kvstore status` (cluster, connection, revision,
# lag, lease, the watches' revisions), notices etcd going away and says so
# (state, lag growing, the error), and stops cleanly. etcd
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
# kvstore status: the lease is granted and the watches have listed soon after connecting.
deadline=$((SECONDS + 10))
until kv=$(harness_ctl -o json kvstore status) && python3 - "$kv" <<'PY'
import json, sys
kv = json.loads(sys.argv[1])
assert kv["state"] == "connected" and kv["cluster"] == "test" and kv["cluster_id"] == 7, kv
assert kv["endpoint"] == "http://127.0.0.1:2379" and kv["connects"] == 1 and kv["revision"] > 0, kv
assert 0 <= kv["lag_ms"] < 6000, f"connected, yet etcd last answered {kv['lag_ms']} ms ago: {kv}"
assert len(kv["lease"]) > 0 and kv["lease_ttl"] == 5, kv
watches = kv["watches"]
assert sorted(watches) == [f"membrane/v1/test/{p}/" for p in ("endpoints", "identities", "nodes", "objects")], watches
assert all(0 < r <= kv["revision"] for r in watches.values()), kv
PY
do
    ((SECONDS < deadline)) || harness_fail "kvstore status is not complete: $kv"
    sleep 0.3
done
table=$(harness_ctl kvstore status)
grep -q "^Store: *connected to http://127.0.0.1:2379 since .* (1 connection)$" <<<"$table" &&
    grep -q "^Lease: *[0-9a-f]* (TTL 5 s)$" <<<"$table" ||
    harness_fail "kvstore status (table) lacks the connection or the lease: $table"

# etcd goes away: noticed within the health check's period and its timeout.
harness_stop_etcd
wait_state disconnected 10
grep -q "KV store: *disconnected" <<<"$(harness_ctl status)" || harness_fail "status does not say disconnected"
grep -q "kvstore disconnected" "$HARNESS_DAEMON_LOG" || harness_fail "the loss is not logged"
sleep 6  # longer than the health probe's period: the lag must grow
kv=$(harness_ctl -o json kvstore status)
python3 - "$kv" <<'PY' || harness_fail "kvstore status while etcd is away: $kv"
import json, sys
kv = json.loads(sys.argv[1])
assert kv["state"] == "disconnected" and kv["error"], kv
assert kv["lag_ms"] > 6000, f"etcd is gone, yet it answered {kv['lag_ms']} ms ago"
PY
grep -q "^Store: *disconnected from http://127.0.0.1:2379" <<<"$(harness_ctl kvstore status)" ||
    harness_fail "kvstore status (table) does not say disconnected: $(harness_ctl kvstore status)"

# (Reconnecting and resuming watches: integration.etcd.*, without a daemon.)
harness_stop_daemon || harness_fail "membraned did not stop cleanly on SIGTERM with a store"
harness_stop_etcd
harness_log "kvstore agent: start without etcd, connect and loss all seen"
