# shellcheck shell=bash
# The integration-test harness: sourced by every test/integration/*_test.sh.
#
#   #!/usr/bin/env bash
#   set -euo pipefail
#   source "$MEMBRANE_SOURCE_DIR/test/lib/harness.sh"
#   harness_init                                   # run id, temp dir, cleanup trap
#   a=$(harness_netns a); b=$(harness_netns b)     # "<run-id>-a", "<run-id>-b"
#   harness_veth "$a" eth0 "$b" eth0 10.200.0.1/24 10.200.0.2/24
#   harness_dbus                                   # private bus -> $MEMBRANE_DBUS_ADDRESS
#   harness_write_config "$HARNESS_TMP/a.toml" node-a "$MEMBRANE_TEST_PREFIX/test-modules" \
#       '["eth0"]' '["counter"]' $'[module.counter]\nfail_start = false'
#   harness_daemon "$a" "$HARNESS_TMP/a.toml"      # waits until `membranectl status` answers
#   harness_ctl module list || harness_fail "module list failed"
#   cg=$(harness_cgroup lb)                        # a cgroup v2 folder of this run, e.g. for
#   HARNESS_AGENT_CGROUP_ROOT=$cg harness_write_config ...   # the agent's socket programs
#   harness_in_cgroup "$cg" ip netns exec "$a" CMD...        # CMD in it
#
# Everything made through the harness (namespaces and their links, processes,
# bpffs mounts, cgroups, the private bus, the temp dir) is removed by harness_cleanup on
# exit, failure or signal, and nothing else is touched. Names carry a run id
# unique to the test run, so tests run in parallel. Test traffic only ever goes
# to addresses inside namespaces the test created.
#
# Every function that makes something records it in a file under $HARNESS_TMP,
# so it works inside $(...) too (e.g. ns=$(harness_netns a)).
#
# Environment read: MEMBRANE_BUILD_DIR (membraned, membranectl), and optionally
#   HARNESS_MEMBRANED, HARNESS_MEMBRANECTL  binaries (default: the build's)
#   HARNESS_DAEMON_TIMEOUT                  seconds to wait for a daemon (30)
#   HARNESS_KILL_TIMEOUT                    seconds between TERM and KILL (10)
#   HARNESS_LOG_LEVEL                       log_level in written configs (debug)
#   HARNESS_AGENT_CGROUP_ROOT               [agent] cgroup_root in written configs (unset: none)
#   HARNESS_KEEP=1                          keep the temp dir (logs, configs)

# --- messages -------------------------------------------------------------------

harness_log() { echo "[harness ${HARNESS_RUN_ID:-?}] $*" >&2; }
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# Prints MSG and the tail of every daemon log, then exits 1 (cleanup follows).
harness_fail() {
    echo "FAIL: $*" >&2
    _harness_dump_logs
    exit 1
}

# Exits 77: CTest reports the test as skipped.
harness_skip() {
    echo "SKIP: $*" >&2
    exit 77
}

# harness_retry SECONDS CMD... : runs CMD every 0.2 s until it succeeds (0) or
# SECONDS pass (1). CMD's output is discarded.
harness_retry() {
    local seconds=$1
    shift
    local deadline=$((SECONDS + seconds))
    while true; do
        "$@" >/dev/null 2>&1 && return 0
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

# --- set-up and clean-up ----------------------------------------------------------

harness_init() {
    [[ $EUID -eq 0 ]] || harness_skip "integration tests need root (network namespaces, BPF)"
    local tool
    for tool in ip mount umount mountpoint; do
        command -v "$tool" >/dev/null || harness_skip "'$tool' is not installed"
    done
    HARNESS_RUN_ID="mt$$-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
    HARNESS_OWNER_PID=$BASHPID
    HARNESS_TMP=$(mktemp -d "/tmp/membrane-test-$HARNESS_RUN_ID.XXXX")
    chmod 0755 "$HARNESS_TMP"  # root-owned, not group/world writable: a valid module_dir parent
    HARNESS_RUN_DIR="/run/membrane-test-$HARNESS_RUN_ID"
    : >"$HARNESS_TMP/.pids"
    : >"$HARNESS_TMP/.netns"
    : >"$HARNESS_TMP/.mounts"
    : >"$HARNESS_TMP/.logs"
    : >"$HARNESS_TMP/.cgroups"
    export HARNESS_RUN_ID HARNESS_TMP HARNESS_RUN_DIR HARNESS_OWNER_PID
    trap harness_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    harness_log "temp dir $HARNESS_TMP"
}

# Removes what this run made, in order: processes, namespaces (their links and
# tc attachments go with them), cgroups (what still runs in them is killed),
# bpffs and cgroup2 mounts (the pins go with the bpffs), the run dir, the temp
# dir. Idempotent; keeps the exit status of the test.
harness_cleanup() {
    local rc=$?
    # Only the shell that ran harness_init cleans up (not a subshell).
    [[ -n "${HARNESS_TMP:-}" && -d "$HARNESS_TMP" && "${HARNESS_OWNER_PID:-}" == "$BASHPID" ]] || return "$rc"
    set +e
    trap - INT TERM

    local line pid start ns mnt
    local -a alive=()
    while read -r pid start; do
        [[ -n "$pid" ]] || continue
        if _harness_is_ours "$pid" "$start"; then
            kill -TERM "$pid" 2>/dev/null && alive+=("$pid $start")
        fi
    done <"$HARNESS_TMP/.pids"
    local deadline=$((SECONDS + ${HARNESS_KILL_TIMEOUT:-10}))
    for line in "${alive[@]}"; do
        read -r pid start <<<"$line"
        while _harness_is_ours "$pid" "$start" && ((SECONDS < deadline)); do sleep 0.1; done
        if _harness_is_ours "$pid" "$start"; then
            harness_log "pid $pid ignored SIGTERM for ${HARNESS_KILL_TIMEOUT:-10}s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null
        fi
        wait "$pid" 2>/dev/null
    done

    # Anything still running inside our namespaces was started by this test.
    while read -r ns; do
        [[ -n "$ns" ]] || continue
        if [[ -e "/run/netns/$ns" ]]; then
            for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
            ip netns del "$ns" 2>/dev/null || harness_log "could not delete netns $ns"
        fi
    done <"$HARNESS_TMP/.netns"

    # cgroup.kill takes what forks meanwhile too; rmdir is EBUSY until the killed are gone.
    local cgroup
    while read -r cgroup; do
        [[ -n "$cgroup" && -d "$cgroup" ]] || continue
        echo 1 >"$cgroup/cgroup.kill" 2>/dev/null
        deadline=$((SECONDS + 5))
        until rmdir "$cgroup" 2>/dev/null; do
            if ((SECONDS >= deadline)); then
                harness_log "could not remove cgroup $cgroup: $(tr '\n' ' ' <"$cgroup/cgroup.procs" 2>/dev/null)"
                break
            fi
            sleep 0.05
        done
    done <"$HARNESS_TMP/.cgroups"

    # Deepest first, so nested mounts come off before their parents.
    while read -r mnt; do
        [[ -n "$mnt" ]] || continue
        if mountpoint -q "$mnt"; then
            umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || harness_log "could not unmount $mnt"
        fi
        rmdir "$mnt" 2>/dev/null
    done < <(sort -r "$HARNESS_TMP/.mounts")
    [[ -d "$HARNESS_RUN_DIR" ]] && rm -rf --one-file-system -- "$HARNESS_RUN_DIR"

    if [[ "${HARNESS_KEEP:-0}" == 1 || ($rc -ne 0 && "${HARNESS_KEEP:-0}" == failed) ]]; then
        harness_log "kept $HARNESS_TMP"
    else
        rm -rf --one-file-system -- "$HARNESS_TMP"
    fi
    return "$rc"
}

# harness_register_pid PID : kill PID at cleanup (TERM, then KILL).
harness_register_pid() {
    local start
    start=$(_harness_start_time "$1") || return 0  # already gone
    echo "$1 $start" >>"$HARNESS_TMP/.pids"
}

# --- network ------------------------------------------------------------------------

# harness_netns NAME : creates netns "<run-id>-NAME" with lo up; echoes the name.
harness_netns() {
    local ns="$HARNESS_RUN_ID-$1"
    echo "$ns" >>"$HARNESS_TMP/.netns"  # first, so a half-made one is still removed
    ip netns add "$ns" || harness_fail "cannot create netns $ns"
    ip -n "$ns" link set lo up || harness_fail "cannot bring up lo in $ns"
    echo "$ns"
}

# harness_veth NS1 IF1 NS2 IF2 [ADDR1/PLEN ADDR2/PLEN] : a veth pair made
# directly inside the two namespaces (no name ever exists on the host), both
# ends up, optionally addressed. The links go with the namespaces.
harness_veth() {
    local ns1=$1 if1=$2 ns2=$3 if2=$4 addr1=${5:-} addr2=${6:-}
    ip link add "$if1" netns "$ns1" type veth peer name "$if2" netns "$ns2" ||
        harness_fail "cannot create veth $ns1/$if1 <-> $ns2/$if2"
    [[ -z "$addr1" ]] || ip -n "$ns1" addr add "$addr1" dev "$if1" || harness_fail "cannot address $ns1/$if1"
    [[ -z "$addr2" ]] || ip -n "$ns2" addr add "$addr2" dev "$if2" || harness_fail "cannot address $ns2/$if2"
    ip -n "$ns1" link set "$if1" up || harness_fail "cannot bring up $ns1/$if1"
    ip -n "$ns2" link set "$if2" up || harness_fail "cannot bring up $ns2/$if2"
}

# --- bpffs ----------------------------------------------------------------------------

# harness_bpffs DIR : mounts a bpffs at /run/membrane-test-<run-id>/DIR (or
# reuses it if this run mounted it already); echoes the path. It lives outside
# /sys, so it stays visible inside `ip netns exec` and outlives a killed daemon.
harness_bpffs() {
    local dir="$HARNESS_RUN_DIR/$1"
    if ! mountpoint -q "$dir" 2>/dev/null; then
        mkdir -p "$dir" || harness_fail "cannot create $dir"
        echo "$dir" >>"$HARNESS_TMP/.mounts"
        mount -t bpf bpf "$dir" || harness_fail "cannot mount a bpffs on $dir"
    fi
    echo "$dir"
}

# --- cgroups ---------------------------------------------------------------------------

# harness_cgroup NAME : a cgroup v2 folder of this run, <cgroup2 mount>/membrane-test-<run-id>-NAME
# (at the top: no folder shared with other runs), e.g. an agent's [agent] cgroup_root
# (HARNESS_AGENT_CGROUP_ROOT), so that its socket programs see only what the test runs there
# (harness_in_cgroup). Echoes its path through a bind mount of the cgroup2 mount at
# $HARNESS_RUN_DIR/cgroup, which `ip netns exec` (a fresh /sys) and the agent in it see too.
# At cleanup what still runs in it is killed and it is removed. Skips the test without cgroup v2.
harness_cgroup() {
    local mount="" candidate
    for candidate in /sys/fs/cgroup /sys/fs/cgroup/unified; do
        [[ "$(stat -f -c %T "$candidate" 2>/dev/null)" == cgroup2fs ]] && { mount=$candidate; break; }
    done
    [[ -n "$mount" ]] || harness_skip "no cgroup v2 mount at /sys/fs/cgroup or /sys/fs/cgroup/unified"
    local name="membrane-test-$HARNESS_RUN_ID-$1" seen="$HARNESS_RUN_DIR/cgroup"
    echo "$mount/$name" >>"$HARNESS_TMP/.cgroups"  # first, so a half-made one is still removed
    mkdir "$mount/$name" || harness_fail "cannot create cgroup $mount/$name"
    if ! mountpoint -q "$seen" 2>/dev/null; then
        mkdir -p "$seen" || harness_fail "cannot create $seen"
        echo "$seen" >>"$HARNESS_TMP/.mounts"
        # A bind mount: mounting cgroup2 anew would reset the host's mount options.
        mount --bind "$mount" "$seen" || harness_fail "cannot bind-mount $mount at $seen"
    fi
    echo "$seen/$name"
}

# harness_in_cgroup CGROUP CMD... : runs CMD (exec, same pid) inside CGROUP (a harness_cgroup).
harness_in_cgroup() {
    local cgroup=$1
    shift
    sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$cgroup" "$@"
}

# --- D-Bus ----------------------------------------------------------------------------

# harness_dbus : starts a private dbus-daemon (session-like policy: anyone may
# own and call anything) on a unix socket in the temp dir and exports
# MEMBRANE_DBUS_ADDRESS. Unix path sockets reach across network namespaces, so
# daemons inside `ip netns exec` use it too. Call it directly, not in $(...).
harness_dbus() {
    harness_private_bus bus
    export MEMBRANE_DBUS_ADDRESS=$HARNESS_BUS_ADDRESS
    export HARNESS_DBUS_PID=$HARNESS_BUS_PID
}

# harness_private_bus NAME : starts one more private dbus-daemon (session-like
# policy) on $HARNESS_TMP/NAME, e.g. one per node when a test runs several
# agents; sets HARNESS_BUS_ADDRESS and HARNESS_BUS_PID. Call it directly.
harness_private_bus() {
    command -v dbus-daemon >/dev/null || harness_skip "dbus-daemon is not installed"
    local name=$1
    local socket="$HARNESS_TMP/$name" conf="$HARNESS_TMP/$name.conf"
    ((${#socket} < 100)) || harness_fail "socket path too long for AF_UNIX: $socket"
    cat >"$conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=$socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
EOF
    dbus-daemon --config-file="$conf" --nofork --nopidfile </dev/null >"$HARNESS_TMP/$name.log" 2>&1 &
    HARNESS_BUS_PID=$!
    harness_register_pid "$HARNESS_BUS_PID"
    HARNESS_BUS_ADDRESS="unix:path=$socket"
    harness_retry 10 busctl --address="$HARNESS_BUS_ADDRESS" list ||
        { cat "$HARNESS_TMP/$name.log" >&2; harness_fail "the private dbus-daemon $name did not answer"; }
}

# harness_busctl ARGS... : busctl on the private bus.
harness_busctl() { busctl --address="${MEMBRANE_DBUS_ADDRESS:?harness_dbus first}" "$@"; }

# --- etcd ----------------------------------------------------------------------------------

# harness_etcd NS : starts etcd (Debian's etcd-server) inside netns NS on
# 127.0.0.1:2379 (peer 2380), its data in $HARNESS_TMP/etcd (kept across a
# harness_stop_etcd, so a restart is the same etcd), logging to
# $HARNESS_TMP/etcd.log. Sets HARNESS_ETCD_PID. Skips the test without etcd.
harness_etcd() {
    command -v etcd >/dev/null || harness_skip "etcd is not installed (apt-get install etcd-server)"
    ip netns exec "$1" etcd --name kv --data-dir "$HARNESS_TMP/etcd" \
        --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
        --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
        --initial-cluster kv=http://127.0.0.1:2380 --logger zap --log-outputs "$HARNESS_TMP/etcd.log" \
        --log-level error </dev/null >/dev/null 2>&1 &
    HARNESS_ETCD_PID=$!
    harness_register_pid "$HARNESS_ETCD_PID"
}

# harness_stop_etcd : kills the etcd of harness_etcd (as a crash would) and waits for it.
harness_stop_etcd() {
    kill -KILL "${HARNESS_ETCD_PID:?harness_etcd first}" 2>/dev/null || true
    wait "$HARNESS_ETCD_PID" 2>/dev/null || true
}

# --- the daemon and the CLI ---------------------------------------------------------------

# harness_write_config FILE NODE MODULE_DIR DEVICES_TOML_ARRAY ENABLED_TOML_ARRAY [EXTRA_TOML] ([agent] mtu: $HARNESS_AGENT_MTU, default 1500;
# [agent] cgroup_root: $HARNESS_AGENT_CGROUP_ROOT, e.g. a harness_cgroup)
# Writes a membrane.toml whose dirs all live in the temp dir and the run's bpffs
# (mounted on first use), on the private bus. EXTRA_TOML is appended verbatim
# (e.g. $'[module.counter]\nfail_start = true'); it must not repeat [agent],
# [dbus] or [modules].
harness_write_config() {
    local file=$1 node=$2 module_dir=$3 devices=$4 enabled=$5 extra=${6:-}
    [[ -n "${MEMBRANE_DBUS_ADDRESS:-}" ]] || harness_fail "harness_write_config: call harness_dbus first"
    local bpffs
    bpffs=$(harness_bpffs bpffs)
    local state="$HARNESS_TMP/node-$node/state" runtime="$HARNESS_TMP/node-$node/run" cgroup_root=""
    [[ -z "${HARNESS_AGENT_CGROUP_ROOT:-}" ]] || cgroup_root=$'\ncgroup_root = "'"$HARNESS_AGENT_CGROUP_ROOT"'"'
    mkdir -p "$state" "$runtime" && chmod 0755 "$HARNESS_TMP/node-$node"
    cat >"$file" <<EOF
# Written by test/lib/harness.sh for run $HARNESS_RUN_ID
[agent]
node_name = "$node"
state_dir = "$state"
runtime_dir = "$runtime"
bpffs_root = "$bpffs"
module_dir = "$module_dir"
devices = $devices
log_level = "${HARNESS_LOG_LEVEL:-debug}"
mtu = ${HARNESS_AGENT_MTU:-1500}$cgroup_root

[dbus]
bus = "$MEMBRANE_DBUS_ADDRESS"

[modules]
enabled = $enabled
EOF
    if [[ -n "$extra" ]]; then printf '\n%s\n' "$extra" >>"$file"; fi
}

# harness_daemon NS CONFIG : starts membraned --config CONFIG inside netns NS,
# logging to $HARNESS_TMP/membraned-<ns>-<n>.log, and waits (bounded by
# HARNESS_DAEMON_TIMEOUT) until `membranectl status` answers on the private
# bus. Sets HARNESS_DAEMON_PID (alias HARNESS_LAST_DAEMON_PID) and
# HARNESS_DAEMON_LOG. On failure prints the
# log and fails the test. Call it directly, not in $(...).
harness_daemon() {
    local ns=$1 config=$2
    local bin="${HARNESS_MEMBRANED:-${MEMBRANE_BUILD_DIR:?}/kernel/membraned}"
    [[ -x "$bin" ]] || harness_fail "no membraned at $bin (is the build complete?)"
    [[ -n "${MEMBRANE_DBUS_ADDRESS:-}" ]] || harness_fail "harness_daemon: call harness_dbus first"
    local n=1
    while [[ -e "$HARNESS_TMP/membraned-$ns-$n.log" ]]; do n=$((n + 1)); done
    local log="$HARNESS_TMP/membraned-$ns-$n.log"
    echo "$log" >>"$HARNESS_TMP/.logs"
    # `ip netns exec` execs the daemon, so $! is the daemon's pid. The system
    # bus variable points at the private bus too: nothing reaches the host's.
    DBUS_SYSTEM_BUS_ADDRESS="$MEMBRANE_DBUS_ADDRESS" \
        ip netns exec "$ns" "$bin" --config "$config" </dev/null >"$log" 2>&1 &
    local pid=$!
    harness_register_pid "$pid"
    export HARNESS_DAEMON_PID=$pid HARNESS_DAEMON_LOG=$log
    export HARNESS_LAST_DAEMON_PID=$pid  # alias of HARNESS_DAEMON_PID
    # One daemon per bus: another daemon answering on the same bus would look
    # like this one, so the process must also still be alive.
    local deadline=$((SECONDS + ${HARNESS_DAEMON_TIMEOUT:-30})) status
    while true; do
        if ! kill -0 "$pid" 2>/dev/null || _harness_is_zombie "$pid"; then
            status=0
            wait "$pid" || status=$?
            harness_fail "membraned in $ns exited with status $status before answering (config $config)"
        fi
        if harness_ctl status >/dev/null 2>&1 && kill -0 "$pid" 2>/dev/null && ! _harness_is_zombie "$pid"; then
            break
        fi
        ((SECONDS < deadline)) ||
            harness_fail "membraned in $ns did not answer 'membranectl status' within ${HARNESS_DAEMON_TIMEOUT:-30}s"
        sleep 0.2
    done
    harness_log "membraned pid $pid ready in $ns (log $log)"
}

# harness_stop_daemon [PID] [SIGNAL] : sends SIGNAL (TERM) to the daemon
# (default: the last one started) and waits (bounded) for it to exit; returns
# its exit status. Use it for restart tests.
harness_stop_daemon() {
    local pid=${1:-${HARNESS_DAEMON_PID:?}} signal=${2:-TERM} status=0
    kill -"$signal" "$pid" 2>/dev/null || return 0
    local deadline=$((SECONDS + ${HARNESS_KILL_TIMEOUT:-10}))
    while kill -0 "$pid" 2>/dev/null && ! _harness_is_zombie "$pid"; do
        ((SECONDS < deadline)) || harness_fail "membraned pid $pid did not exit within ${HARNESS_KILL_TIMEOUT:-10}s of SIG$signal"
        sleep 0.1
    done
    wait "$pid" 2>/dev/null || status=$?
    return "$status"
}

# harness_ctl ARGS... : membranectl on the private bus.
harness_ctl() {
    local bin="${HARNESS_MEMBRANECTL:-${MEMBRANE_BUILD_DIR:?}/cli/membranectl}"
    [[ -n "${MEMBRANE_DBUS_ADDRESS:-}" ]] || harness_fail "harness_ctl: call harness_dbus first"
    # MEMBRANE_DBUS_ADDRESS is exported; the system bus variable covers a CLI
    # that defaults to the system bus (sd-bus honours it).
    DBUS_SYSTEM_BUS_ADDRESS="$MEMBRANE_DBUS_ADDRESS" "$bin" "$@"
}

# --- the datapath's counters ---------------------------------------------------------------

# harness_stat PIN_DIR REASON : the counter MBR_STAT_<REASON> of the node whose
# pins are in PIN_DIR (numbers and reader: common.sh).
harness_stat() {
    local number="MBR_STAT_$2"
    [[ -n "${!number:-}" ]] || harness_fail "harness_stat: unknown reason $2 (add it to test/lib/common.sh from contract.h)"
    membrane_stat "$1" "${!number}"
}

# --- internals ----------------------------------------------------------------------------

# Field 22 of /proc/PID/stat: the start time, which tells a recycled pid apart.
_harness_start_time() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }  # the command name may contain spaces
    local -a fields
    read -r -a fields <<<"$stat"
    echo "${fields[19]}"
}

_harness_is_ours() {
    local now
    now=$(_harness_start_time "$1") || return 1
    [[ "$now" == "$2" ]] && ! _harness_is_zombie "$1"
}

_harness_is_zombie() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ "${stat:0:1}" == Z ]]
}

_harness_dump_logs() {
    [[ -n "${HARNESS_TMP:-}" && -f "$HARNESS_TMP/.logs" ]] || return 0
    local log
    while read -r log; do
        [[ -f "$log" ]] || continue
        echo "----- last 60 lines of $log -----" >&2
        tail -n 60 "$log" >&2
    done <"$HARNESS_TMP/.logs"
}
