#!/usr/bin/env bash
# membraned when its bus goes away: the private dbus-daemon is killed under a
# running agent. Back at the same address within the reconnect window, the
# agent owns its name again and answers; gone for good, the agent exits
# non-zero with a log line saying why (so systemd restarts it, instead of a
# deaf agent pinging the watchdog).
set -euo pipefail
source "$MEMBRANE_SOURCE_DIR/test/lib/harness.sh"
harness_init

node=$(harness_netns node)
harness_dbus
mkdir -p "$HARNESS_TMP/modules"
config="$HARNESS_TMP/membrane.toml"
harness_write_config "$config" node-bus "$HARNESS_TMP/modules" '[]' '[]'
harness_daemon "$node" "$config"
daemon_pid=$HARNESS_DAEMON_PID

kill_bus() {
  kill -TERM "$HARNESS_DBUS_PID"
  wait "$HARNESS_DBUS_PID" 2>/dev/null || true
}

# 1. The bus restarts at the same address: the agent reconnects.
kill_bus
sleep 1
harness_private_bus bus  # same socket: $HARNESS_TMP/bus
HARNESS_DBUS_PID=$HARNESS_BUS_PID
[[ "$HARNESS_BUS_ADDRESS" == "$MEMBRANE_DBUS_ADDRESS" ]] || harness_fail "the new bus is at another address"
harness_retry 15 harness_ctl status || harness_fail "the agent did not answer on the restarted bus within 15 s"
kill -0 "$daemon_pid" || harness_fail "the agent exited although the bus came back"
grep -q "reconnected to" "$HARNESS_DAEMON_LOG" || harness_fail "no 'reconnected' line in the agent's log"

# 2. The bus is gone for good: the agent exits non-zero, saying why.
kill_bus
deadline=$((SECONDS + 25))
while kill -0 "$daemon_pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
kill -0 "$daemon_pid" 2>/dev/null && harness_fail "the agent still runs 25 s after its bus went away for good"
status=0
wait "$daemon_pid" || status=$?
((status != 0)) || harness_fail "the agent exited with status 0 after losing its bus"
grep -q "exiting: the D-Bus connection to .* was lost and not re-established within" "$HARNESS_DAEMON_LOG" ||
  harness_fail "the agent's log does not say why it exited"
harness_log "PASS (exit status $status)"
