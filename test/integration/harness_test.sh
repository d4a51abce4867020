#!/usr/bin/env bash
# Self-test of test/lib/harness.sh, the parts that need no daemon: namespaces
# and a veth pair (ping across), the private D-Bus (also from inside a netns),
# a bpffs outside /sys that `ip netns exec` sees, a cgroup v2 folder of the
# run (also seen there) and a command in it, the config writer, and a
# cleanup that leaves nothing behind after a clean exit, a failure or SIGTERM.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
harness="$here/../lib/harness.sh"
# shellcheck source=../lib/harness.sh
source "$harness"
harness_init

step() { echo "== $*"; }

step "netns + veth: ping across"
a=$(harness_netns a)
b=$(harness_netns b)
[[ "$a" == "$HARNESS_RUN_ID-a" ]] || harness_fail "netns name '$a' lacks the run id"
harness_veth "$a" veth0 "$b" veth0 10.213.0.1/30 10.213.0.2/30
ip netns exec "$a" ping -c 3 -i 0.2 -W 2 10.213.0.2 >/dev/null || harness_fail "no ping from $a to $b"
ip -n "$a" link show veth0 >/dev/null || harness_fail "veth end missing in $a"
ip -n "$b" link show veth0 >/dev/null || harness_fail "veth end missing in $b"

step "private D-Bus: answers on the host and inside a netns"
harness_dbus
[[ "$MEMBRANE_DBUS_ADDRESS" == "unix:path=$HARNESS_TMP/"* ]] || harness_fail "bus address $MEMBRANE_DBUS_ADDRESS"
harness_busctl list | grep_quiet org.freedesktop.DBus || harness_fail "busctl list on the private bus"
ip netns exec "$a" busctl --address="$MEMBRANE_DBUS_ADDRESS" list >/dev/null ||
    harness_fail "the private bus is not reachable from inside $a"

step "bpffs under /run: visible inside ip netns exec, pins included"
pins=$(harness_bpffs pins)
[[ "$pins" == /run/membrane-test-"$HARNESS_RUN_ID"/pins ]] || harness_fail "bpffs at unexpected $pins"
[[ "$(stat -f -c %T "$pins")" == bpf_fs ]] || harness_fail "$pins is not a bpffs"
[[ "$(ip netns exec "$a" stat -f -c %T "$pins")" == bpf_fs ]] || harness_fail "$pins is not a bpffs inside $a"
if command -v bpftool >/dev/null; then
    bpftool map create "$pins/harness_probe" type array key 4 value 8 entries 1 name harness_probe ||
        harness_fail "cannot pin a map in $pins"
    ip netns exec "$a" test -e "$pins/harness_probe" || harness_fail "the pin is not visible inside $a"
fi
[[ "$(harness_bpffs pins)" == "$pins" ]] || harness_fail "a second harness_bpffs pins did not reuse the mount"
(($(grep -c " $pins " /proc/mounts) == 1)) || harness_fail "$pins mounted more than once"

step "cgroup: a folder of the run, seen inside ip netns exec, a command in it"
cg=$(harness_cgroup probe)
[[ "$cg" == "/run/membrane-test-$HARNESS_RUN_ID/cgroup/membrane-test-$HARNESS_RUN_ID-probe" ]] || harness_fail "cgroup at unexpected $cg"
[[ "$(ip netns exec "$a" stat -f -c %T "$cg")" == cgroup2fs ]] || harness_fail "$cg is not a cgroup2 folder inside $a"
in_cgroup=$(harness_in_cgroup "$cg" ip netns exec "$a" cat /proc/self/cgroup)
grep -qx "0::/membrane-test-$HARNESS_RUN_ID-probe" <<<"$in_cgroup" || harness_fail "harness_in_cgroup ran in $in_cgroup"

step "config writer"
cfg="$HARNESS_TMP/node.toml"
HARNESS_AGENT_CGROUP_ROOT=$cg harness_write_config "$cfg" node-a "$HARNESS_TMP/modules" '["veth0"]' '["counter"]' $'[module.counter]\nfail_start = false'
grep -q "^cgroup_root = \"$cg\"$" "$cfg" || harness_fail "config lacks HARNESS_AGENT_CGROUP_ROOT"
grep -q "^bus = \"$MEMBRANE_DBUS_ADDRESS\"$" "$cfg" || harness_fail "config lacks the private bus"
grep -q "^bpffs_root = \"/run/membrane-test-$HARNESS_RUN_ID/bpffs\"$" "$cfg" || harness_fail "config lacks the run's bpffs"
membraned="${MEMBRANE_BUILD_DIR:-}/kernel/membraned"
if [[ -x "$membraned" ]]; then
    "$membraned" --check-config "$cfg" || harness_fail "membraned refuses the harness's config"
else
    echo "   (no membraned built: config not validated by the agent)"
fi

step "harness_daemon with stand-ins for membraned and membranectl"
# The real binaries may not exist yet; stand-ins exercise the start, the
# readiness wait, the netns, the log and the cleanup of the process.
stub_dir="$HARNESS_TMP/stubs"
mkdir -p "$stub_dir"
cat >"$stub_dir/membraned" <<'EOF'
#!/usr/bin/env bash
echo "stub membraned $*"
readlink /proc/self/ns/net >"$STUB_STATE.netns"
[[ "${STUB_MODE:-}" == die ]] && { echo "stub membraned: goodbye"; exit 3; }
sleep 1
touch "$STUB_STATE.ready"
exec sleep 600
EOF
cat >"$stub_dir/membranectl" <<'EOF'
#!/usr/bin/env bash
[[ "$1" == status && -e "$STUB_STATE.ready" && "$DBUS_SYSTEM_BUS_ADDRESS" == "$MEMBRANE_DBUS_ADDRESS" ]]
EOF
chmod +x "$stub_dir/membraned" "$stub_dir/membranectl"
export HARNESS_MEMBRANED="$stub_dir/membraned" HARNESS_MEMBRANECTL="$stub_dir/membranectl"
export STUB_STATE="$HARNESS_TMP/stub"
harness_daemon "$a" "$cfg"
[[ -e "$STUB_STATE.ready" ]] || harness_fail "harness_daemon returned before the daemon was ready"
[[ "$(cat "$STUB_STATE.netns")" == "$(ip netns exec "$a" readlink /proc/self/ns/net)" ]] ||
    harness_fail "the daemon did not run inside $a"
grep -q -- "--config $cfg" "$HARNESS_DAEMON_LOG" || harness_fail "daemon log lacks its output"
harness_stop_daemon "$HARNESS_DAEMON_PID" || true
! kill -0 "$HARNESS_DAEMON_PID" 2>/dev/null || harness_fail "harness_stop_daemon left the daemon running"
rm -f "$STUB_STATE.ready"
harness_daemon "$a" "$cfg"
stub_pid=$HARNESS_DAEMON_PID  # left running: harness_cleanup must stop it
status=0
(STUB_MODE=die STUB_STATE="$HARNESS_TMP/stub-die" harness_daemon "$a" "$cfg") 2>"$HARNESS_TMP/die.err" || status=$?
((status == 1)) || harness_fail "harness_daemon of a dying daemon returned $status, not 1"
grep -q "stub membraned: goodbye" "$HARNESS_TMP/die.err" || harness_fail "harness_daemon did not print the dead daemon's log"
unset HARNESS_MEMBRANED HARNESS_MEMBRANECTL
kill -0 "$stub_pid" || harness_fail "stand-in daemon $stub_pid died early"

step "harness_retry is bounded"
start=$SECONDS
harness_retry 1 false && harness_fail "harness_retry false succeeded"
((SECONDS - start <= 3)) || harness_fail "harness_retry 1 took $((SECONDS - start))s"

# A child test run that makes one of everything, records what it made, then
# ends as told: "ok" (exit 0), "fail" (harness_fail), "term" (SIGTERM to
# itself while a process runs in its netns). Afterwards nothing may remain.
child_run() {
    local how=$1 record=$2
    bash -c '
        set -euo pipefail
        source "$1"
        harness_init
        ns=$(harness_netns child)
        other=$(harness_netns other)
        harness_veth "$ns" v0 "$other" v1 10.213.1.1/30 10.213.1.2/30
        harness_dbus
        pins=$(harness_bpffs child-pins)
        cgroup=$(harness_cgroup child)
        harness_in_cgroup "$cgroup" sleep 600 &   # not registered: killed with its cgroup
        in_cgroup=$!
        ip netns exec "$ns" sleep 600 &
        registered=$!
        harness_register_pid $registered
        ip netns exec "$other" sleep 600 &   # not registered: killed with its netns
        unregistered=$!
        { echo "$HARNESS_RUN_ID"; echo "$ns"; echo "$other"; echo "$pins"; echo "$HARNESS_TMP";
          echo "$HARNESS_DBUS_PID"; echo "$HARNESS_RUN_DIR"; echo "$registered"; echo "$unregistered";
          echo "$in_cgroup"; } >"$2"
        case "$3" in
        ok) harness_cleanup; harness_cleanup; exit 0 ;;  # twice: idempotent
        fail) harness_fail "deliberate failure" ;;
        term) kill -TERM $$; sleep 5; exit 0 ;;
        esac
    ' child "$harness" "$record" "$how"
}

for how in ok fail term; do
    step "cleanup after a child run that ends with '$how'"
    record="$HARNESS_TMP/child-$how"
    status=0
    child_run "$how" "$record" 2>"$HARNESS_TMP/child-$how.err" || status=$?
    case "$how" in
    ok) ((status == 0)) || harness_fail "child 'ok' exited $status" ;;
    fail) ((status == 1)) || harness_fail "child 'fail' exited $status, not 1" ;;
    term) ((status == 143)) || harness_fail "child 'term' exited $status, not 143" ;;
    esac
    mapfile -t made <"$record"
    run_id=${made[0]} ns=${made[1]} other=${made[2]} child_pins=${made[3]} tmp=${made[4]} dbus_pid=${made[5]} run_dir=${made[6]}
    sleepers=("${made[7]}" "${made[8]}" "${made[9]}")
    # Checked from a subshell, as a fresh observer.
    (
        ip netns list | grep_quiet -- "$run_id" && harness_fail "netns of $run_id left: $(ip netns list | grep -- "$run_id")"
        grep -q -- "$run_id" /proc/mounts && harness_fail "mount of $run_id left: $(grep -- "$run_id" /proc/mounts)"
        [[ ! -e "$tmp" ]] || harness_fail "temp dir $tmp left"
        [[ ! -e "$run_dir" ]] || harness_fail "run dir $run_dir left"
        [[ ! -e "$child_pins" ]] || harness_fail "bpffs dir $child_pins left"
        for mount in /sys/fs/cgroup /sys/fs/cgroup/unified; do
            [[ ! -e "$mount/membrane-test-$run_id-child" ]] || harness_fail "cgroup $mount/membrane-test-$run_id-child left"
        done
        ! kill -0 "$dbus_pid" 2>/dev/null || harness_fail "dbus-daemon $dbus_pid left"
        for pid in "${sleepers[@]}"; do
            if [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep_quiet "sleep 600"; then
                harness_fail "process $pid of the child run left"
            fi
        done
        exit 0
    ) || exit 1
    [[ "$ns" == "$run_id-child" && "$other" == "$run_id-other" ]] || harness_fail "child names $ns $other"
done

# Our own namespaces are still here: a child's cleanup touched only its own.
ip netns list | grep_quiet -- "^$a" || harness_fail "a child's cleanup removed $a"
mountpoint -q "$pins" || harness_fail "a child's cleanup unmounted $pins"

echo "PASS"
