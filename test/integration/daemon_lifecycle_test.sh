#!/usr/bin/env bash
# membraned as an operator meets it: under a private dbus-daemon, driven by
# busctl and membranectl. Bad modules are refused or quarantined while the
# agent keeps serving; a bad config is refused with file:line:column; SIGTERM
# leaves the datapath in place, a restart re-adopts it (a SIGHUP while modules
# start is handled once started), SIGHUP reconfigures only the module whose
# table changed, a corrupt state record stops the start by name, --uninstall
# removes everything.
#
# The counter fixture runs with fail_closed = true: it holds stage 2
# (egress-policy), declared fail-closed, which every packet must pass. So a
# quarantine drops (and counts MBR_STAT_DROP_STAGE_MISSING) instead of letting
# traffic through, and traffic that flows proves the stage is in place.
set -euo pipefail
source "$MEMBRANE_SOURCE_DIR/test/lib/harness.sh"
harness_init

membraned="$MEMBRANE_BUILD_DIR/kernel/membraned"
modules="$MEMBRANE_TEST_PREFIX/test-modules"

peer=$(harness_netns peer)
node=$(harness_netns node)
harness_veth "$peer" eth-p "$node" eth-n
ip -n "$peer" addr add 10.200.8.1/24 dev eth-p
ip -n "$node" addr add 10.200.8.2/24 dev eth-n
# A permanent neighbour entry: the peer's requests leave even while the node
# drops everything (an unanswered ARP would keep them queued, uncounted).
ip -n "$peer" neigh replace 10.200.8.2 lladdr "$(ip netns exec "$node" cat /sys/class/net/eth-n/address)" \
  dev eth-p nud permanent

harness_dbus
HARNESS_PIN_DIR="$(harness_bpffs bpffs)/membrane/node-life"
config="$HARNESS_TMP/membrane.toml"
guard=$'[module.counter]\nfail_closed = true'
harness_write_config "$config" node-life "$modules" '["eth-n"]' '["counter"]' "$guard"

# --check-config: valid, then an unknown key and a wrong type, by position.
"$membraned" --check-config "$config" | grep_quiet ": ok" || harness_fail "--check-config refused a valid config"
bad="$HARNESS_TMP/bad.toml"
printf '[agent]\nnode_name = "x"\nnode_nmae = "typo"\n' >"$bad"
if out=$("$membraned" --check-config "$bad" 2>&1); then harness_fail "--check-config accepted an unknown key"; fi
grep -q "$bad:3:1" <<<"$out" || harness_fail "unknown key not reported at $bad:3:1: $out"
printf '[agent]\nnode_name = 42\n' >"$bad"
if out=$("$membraned" --check-config "$bad" 2>&1); then harness_fail "--check-config accepted a wrong type"; fi
grep -q "$bad:2:" <<<"$out" || harness_fail "wrong type not reported at line 2: $out"

# badabi's static constructor leaves this marker (and aborts) if it ever runs.
export MEMBRANE_FIXTURE_CTOR_MARKER="$HARNESS_TMP/badabi-constructor-ran"
harness_daemon "$node" "$config"
daemon_pid=$HARNESS_LAST_DAEMON_PID

# busctl sees the interface described by the XML in the repo.
busctl --address="$MEMBRANE_DBUS_ADDRESS" introspect org.membrane.Agent1 /org/membrane/Agent1 >"$HARNESS_TMP/introspect.txt"
for member in GetStatus ListModules LoadModule UnloadModule ReloadModule ModuleStateChanged; do
  grep -q "$member" "$HARNESS_TMP/introspect.txt" || harness_fail "introspection lacks $member"
done

harness_ctl status | grep_quiet node-life || harness_fail "membranectl status does not show the node"
state=$(harness_ctl -o json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
[[ "$state" == running ]] || harness_fail "agent state is $state"

module_field() {  # module_field NAME FIELD
  harness_ctl -o json module list | python3 -c "import json,sys
m=[m for m in json.load(sys.stdin) if m['name']=='$1']
print(m[0]['$2'] if m else 'absent')"
}

# A module built against another SDK major is refused, naming both versions,
# from its file, before dlopen: its static constructor never runs.
if out=$(harness_ctl module load badabi 2>&1); then harness_fail "badabi was loaded"; fi
grep -q "AbiMismatch" <<<"$out" || harness_fail "badabi refusal is not AbiMismatch: $out"
grep -q "SDK 99.0" <<<"$out" || harness_fail "badabi refusal does not name SDK 99.0: $out"
grep -q "provides SDK 1\." <<<"$out" || harness_fail "badabi refusal does not name the agent's SDK: $out"
[[ ! -e "$MEMBRANE_FIXTURE_CTOR_MARKER" ]] || harness_fail "badabi's static constructor ran before the refusal"
kill -0 "$daemon_pid" || harness_fail "the agent died loading badabi"

# A module that throws in start() (an int, not a std::exception) is reported
# failed; the agent keeps going.
if out=$(harness_ctl module load thrower 2>&1); then harness_fail "thrower was loaded"; fi
grep -q "StartFailed" <<<"$out" || harness_fail "thrower failure is not StartFailed: $out"
grep -q "not a std::exception" <<<"$out" || harness_fail "thrower failure does not say what was thrown: $out"
[[ $(module_field thrower state) == failed ]] || harness_fail "thrower is not listed as failed"
[[ $(module_field counter state) == running ]] || harness_fail "counter stopped when thrower failed"
kill -0 "$daemon_pid" || harness_fail "the agent died"

stage_missing() { harness_stat "$HARNESS_PIN_DIR" DROP_STAGE_MISSING; }
echo_requests() { pinned_sum "$HARNESS_PIN_DIR/counter_echo_v1"; }

# SIGHUP with a changed [module.counter]: only counter is touched; its new
# table makes its event handler throw, so it is quarantined.
gen_before=$(module_field counter generation)
harness_write_config "$config" node-life "$modules" '["eth-n"]' '["counter"]' "$guard"$'\nthrow_in_handler = true'
kill -HUP "$daemon_pid"
for _ in $(seq 50); do [[ $(module_field counter state) == failed ]] && break; sleep 0.1; done
[[ $(module_field counter state) == failed ]] || harness_fail "counter throwing in a handler was not quarantined"
module_field counter message | grep_quiet "threw" || harness_fail "quarantine message does not say why"
[[ $(module_field counter generation) -gt $gen_before ]] || harness_fail "SIGHUP did not reload counter with its new table"
harness_ctl status >/dev/null || harness_fail "agent stopped answering after a quarantine"
# Its fail-closed slot is empty: packets that must pass the stage are
# dropped and counted, not let through.
missing_before=$(stage_missing)
if ip netns exec "$peer" ping -q -c 3 -i 0.1 -W 1 10.200.8.2 >/dev/null; then
  harness_fail "traffic passed the quarantined module's fail-closed stage"
fi
(($(stage_missing) >= missing_before + 3)) ||
  harness_fail "MBR_STAT_DROP_STAGE_MISSING went $missing_before -> $(stage_missing) for 3 requests"

# Back to a good table; SIGTERM must leave filter and pins in place.
harness_write_config "$config" node-life "$modules" '["eth-n"]' '["counter"]' "$guard"
kill -HUP "$daemon_pid"
for _ in $(seq 50); do [[ $(module_field counter state) == running ]] && break; sleep 0.1; done
[[ $(module_field counter state) == running ]] || harness_fail "counter did not recover after SIGHUP with a good table"
ip netns exec "$peer" ping -q -c 3 -i 0.2 -W 1 10.200.8.2 >/dev/null || harness_fail "traffic blocked after recovery"

# A reload whose new generation fails after taking the slot leaves the
# running one in charge, slot taken back without emptying it (the stage is
# fail-closed: a moment empty would drop), so a flow across it loses nothing
# and the counter keeps counting.
gen_running=$(module_field counter generation)
missing_before=$(stage_missing)
ip netns exec "$peer" ping -q -i 0.002 -c 1000 -W 1 10.200.8.2 >"$HARNESS_TMP/failed-reload-ping.txt" 2>&1 &
ping_pid=$!
harness_register_pid "$ping_pid"
sleep 0.3
harness_write_config "$config" node-life "$modules" '["eth-n"]' '["counter"]' "$guard"$'\nfail_after_attach = true'
kill -HUP "$daemon_pid"
for _ in $(seq 50); do module_field counter message | grep_quiet "keeps running" && break; sleep 0.1; done
wait "$ping_pid" || true  # ping exits 0 on partial loss: read its summary
grep -q "1000 packets transmitted, 1000 received" "$HARNESS_TMP/failed-reload-ping.txt" ||
  harness_fail "packets lost across the failed reload: $(cat "$HARNESS_TMP/failed-reload-ping.txt")"
[[ $(stage_missing) == "$missing_before" ]] || harness_fail "the failed reload left the fail-closed slot empty for a while"
module_field counter message | grep_quiet "generation $gen_running keeps running" ||
  harness_fail "failed reload not reported: $(module_field counter message)"
[[ $(module_field counter state) == running ]] || harness_fail "counter stopped when its new generation failed"
[[ $(module_field counter generation) == "$gen_running" ]] || harness_fail "the failed generation replaced the running one"
count() { harness_ctl -o json module call counter Count | python3 -c 'import json,sys; print(json.load(sys.stdin)["packets"])'; }
before=$(count)
ip netns exec "$peer" ping -q -c 5 -i 0.05 -W 1 10.200.8.2 >/dev/null || harness_fail "traffic blocked after a failed reload"
after=$(count)
(( after >= before + 5 )) || harness_fail "slot not taken back after the failed reload: count $before -> $after"

# Reconfigured fail_closed = false, counter's new generation fills stage 0
# (observe) instead: stage 2 is no longer declared fail-closed by anyone, so
# its empty slot passes traffic rather than dropping it until --uninstall.
gen_running=$(module_field counter generation)
harness_write_config "$config" node-life "$modules" '["eth-n"]' '["counter"]' $'[module.counter]\nfail_closed = false'
kill -HUP "$daemon_pid"
for _ in $(seq 50); do [[ $(module_field counter generation) -gt $gen_running ]] && break; sleep 0.1; done
[[ $(module_field counter state) == running ]] || harness_fail "counter not running with fail_closed = false"
[[ $(module_field counter generation) -gt $gen_running ]] || harness_fail "SIGHUP did not reload counter fail-open"
missing_before=$(stage_missing)
ip netns exec "$peer" ping -q -c 3 -i 0.1 -W 1 10.200.8.2 >/dev/null ||
  harness_fail "stage 2 still drops after its module stopped declaring it fail-closed"
[[ $(stage_missing) == "$missing_before" ]] || harness_fail "packets met a fail-closed stage 2 that nobody declares"

harness_write_config "$config" node-life "$modules" '["eth-n"]' '["counter"]' "$guard"
kill -HUP "$daemon_pid"
for _ in $(seq 50); do [[ $(module_field counter generation) -gt $((gen_running + 1)) ]] && break; sleep 0.1; done

harness_stop_daemon "$daemon_pid"
entry_filter() { ip netns exec "$node" tc filter show dev eth-n ingress; }  # captured: grep -q + pipefail would race SIGPIPE
grep -q "mbr_from_netdev" <<<"$(entry_filter)" || harness_fail "SIGTERM detached the entry program"
[[ -e "$HARNESS_PIN_DIR/mbr_pipe_v1" ]] || harness_fail "SIGTERM removed the pipeline pin"
# While down, the fail-closed stage stays in its slot and runs: the requests
# pass and it counts exactly them.
before=$(echo_requests)
ip netns exec "$peer" ping -q -c 3 -i 0.1 -W 1 10.200.8.2 >/dev/null || harness_fail "traffic stopped while the agent is down"
[[ $(echo_requests) == $((before + 3)) ]] || harness_fail "the stage counted $before -> $(echo_requests) for 3 requests while down"

# Restart: the pins are re-adopted, the module comes back. Its start() takes
# 1.5 s, and a SIGHUP arrives meanwhile: the agent must not die of it (the
# default action) but handle it once started, re-reading its config.
marker="$HARNESS_TMP/counter-starting.pid"
harness_write_config "$config" node-life "$modules" '["eth-n"]' '["counter"]' \
  "$guard"$'\nstart_marker = "'"$marker"$'"\nstart_sleep_ms = 1500'
(
  for _ in $(seq 100); do
    if [[ -s "$marker" ]]; then kill -HUP "$(cat "$marker")"; exit 0; fi
    sleep 0.05
  done
  exit 1
) &
hup_sender=$!
harness_daemon "$node" "$config"
wait "$hup_sender" || harness_fail "counter's start() never began, no SIGHUP was sent"
kill -0 "$HARNESS_LAST_DAEMON_PID" || harness_fail "a SIGHUP while modules started killed the agent"
for _ in $(seq 50); do grep -q "SIGHUP: re-reading" "$HARNESS_DAEMON_LOG" && break; sleep 0.1; done
grep -q "SIGHUP: re-reading" "$HARNESS_DAEMON_LOG" || harness_fail "the SIGHUP sent during start-up was never handled"
[[ $(module_field counter state) == running ]] || harness_fail "counter not running after restart"
# The restarted generation holds the fail-closed stage again: traffic passes it.
before=$(echo_requests)
ip netns exec "$peer" ping -q -c 3 -i 0.1 -W 1 10.200.8.2 >/dev/null || harness_fail "no traffic after the restart"
[[ $(echo_requests) == $((before + 3)) ]] || harness_fail "after the restart the stage counted $before -> $(echo_requests) for 3 requests"
harness_stop_daemon "$HARNESS_LAST_DAEMON_PID"

# A corrupt state record stops the start, naming the file; the datapath stays.
identities="$HARNESS_TMP/node-node-life/state/identities.json"
had_identities=false
if [[ -e "$identities" ]]; then had_identities=true; cp "$identities" "$HARNESS_TMP/identities.json.good"; fi
printf '{"format": 1, "next": 2' >"$identities"
rc=0
out=$(timeout 30 ip netns exec "$node" "$membraned" --config "$config" 2>&1) || rc=$?
((rc == 1)) || harness_fail "membraned with a corrupt $identities exited $rc, expected 1: $out"
grep -q "cannot start: $identities: not valid JSON" <<<"$out" || harness_fail "the refusal does not name $identities: $out"
grep -q "mbr_from_netdev" <<<"$(entry_filter)" || harness_fail "the refused start detached the entry program"
echo "ok: a corrupt identities.json stops the start by name"
if $had_identities; then cp "$HARNESS_TMP/identities.json.good" "$identities"; else rm "$identities"; fi

# --uninstall leaves nothing behind.
ip netns exec "$node" "$membraned" --config "$config" --uninstall || harness_fail "--uninstall failed"
if grep -q "bpf" <<<"$(entry_filter)"; then harness_fail "--uninstall left the tc filter: $(entry_filter)"; fi
[[ ! -e "$HARNESS_PIN_DIR" ]] || harness_fail "--uninstall left $HARNESS_PIN_DIR"
echo "PASS: daemon lifecycle"
