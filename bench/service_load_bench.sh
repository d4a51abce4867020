#!/usr/bin/env bash
# How Membrane's control plane copes with many services, beside iptables-restore of the same ones
# (the control-plane half of bench/service_bench.sh, which measures connects):
#   load     N ClusterIP services of 10 backends applied to a membraned of this build with
#            service-lb (bench/service_bench_membrane.sh: 50 Services and their 50
#            EndpointSlices a `membranectl apply`), timed until service-lb's maps hold all N;
#            the agent's VmRSS then;
#   change   with the N loaded, CHANGES times: one service's EndpointSlice applied with one
#            endpoint swapped for a new address (bench/service_manifests.py changes), timed from
#            just before `membranectl apply` until the pinned maps name the new backend
#            (bench/lb_probe.c polls them every 100 µs); p50/p99, and the same for the apply's
#            answer;
#   baseline iptables-restore of kube-proxy's rules for the same N services (bench/service_rules.py)
#            in a namespace of its own: the load time to compare with (--no-baseline: left out).
# Each N is run ROUNDS times, each round with a fresh agent, namespace, cgroup and state folder.
# Prints a table (N, round, load s, RSS MB, change p50/p99 ms, apply p50/p99 ms, `membranectl status`
# p50 ms (the floor of a change: the client's start and a D-Bus call), baseline s).
# Bounded: the load 600 s, each change 30 s, each apply 60 s. About 2 minutes for
# --counts 1000,10000 --rounds 1 on a 2-core VM (before the object store's journal: 7 minutes).
#
# Usage (as root): bench/service_load_bench.sh [--counts 1000,10000] [--rounds 2] [--changes 50]
#     [--no-baseline] [--perf FOLDER]
#   --perf FOLDER   records the agent (perf record at 99 Hz, DWARF call graphs; Debian's linux-perf)
#                   during the load and during the changes: FOLDER/load-N-R.data and
#                   FOLDER/change-N-R.data, kept (about 1 MB a second of load); read them with
#                   `perf report -i FILE --no-children`
# Needs a build: MEMBRANE_BUILD_DIR (default ./build) with membraned, membranectl and service-lb.so.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

counts=1000,10000 rounds=2 changes=50 baseline=1 perf_dir=""
while (($#)); do
    case $1 in
        --counts) counts=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --changes) changes=$2; shift 2 ;;
        --no-baseline) baseline=0; shift ;;
        --perf) perf_dir=$2; shift 2 ;;
        -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
        *) echo "service_load_bench: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
[[ $counts =~ ^[0-9]+(,[0-9]+)*$ ]] || { echo "service_load_bench: --counts is N,N,..., not '$counts'" >&2; exit 2; }
if ! [[ $rounds =~ ^[0-9]+$ ]] || ((rounds < 1 || rounds > 10)); then
    echo "service_load_bench: --rounds is within 1..10, not '$rounds'" >&2; exit 2
fi
if ! [[ $changes =~ ^[0-9]+$ ]] || ((changes < 1 || changes > 500)); then
    echo "service_load_bench: --changes is within 1..500, not '$changes'" >&2; exit 2
fi
IFS=, read -ra counts <<<"$counts"
for n in "${counts[@]}"; do
    ((n >= 1 && n <= 65000)) || { echo "service_load_bench: a count is within 1..65000, not '$n'" >&2; exit 2; }
done

skip() { echo "SKIP: $*" >&2; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
[[ $EUID -eq 0 ]] || skip "service_load_bench needs root (network namespaces, bpffs, cgroups)"
for tool in ip cc python3 timeout dbus-daemon busctl; do command -v "$tool" >/dev/null || skip "'$tool' is not installed"; done
((baseline == 0)) || command -v iptables-restore >/dev/null || skip "iptables-restore is not installed (or --no-baseline)"
[[ -z "$perf_dir" ]] || command -v perf >/dev/null || skip "perf is not installed (Debian's linux-perf)"
cgroup_root=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
[[ -n "$cgroup_root" ]] || skip "service-lb needs a cgroup v2 mount"

# --- the run's names and their cleanup: every name carries this shell's PID ------------------------
tag="slb$$"
tmp=$(mktemp -d /tmp/membrane-svcload.XXXXXX)
membrane_ns="" cgroup="" perf_pid="" probe_pid=""
source "$here/service_bench_membrane.sh"
stop_perf() {
    [[ -n "$perf_pid" ]] || return 0
    kill -INT "$perf_pid" 2>/dev/null
    wait "$perf_pid" 2>/dev/null || true
    perf_pid=""
}
cleanup() {
    local rc=$?
    set +e
    [[ -z "$probe_pid" ]] || { kill "$probe_pid" 2>/dev/null; wait "$probe_pid" 2>/dev/null; }
    stop_perf
    [[ -z "$membrane_ns" ]] || stop_membrane_socket_lb "$membrane_ns"
    local ns
    for ns in $(ip netns list | awk -v p="$tag-" 'index($1, p) == 1 { print $1 }'); do ip netns del "$ns"; done
    [[ -z "$cgroup" ]] || rmdir "$cgroup" 2>/dev/null
    # Never into a mount a failed stop left (a cgroup2 mount would lose its empty cgroups).
    rm -rf --one-file-system -- "$tmp"
    return "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cc -O2 -Wall -Wextra -Werror -I "$here/../modules/service-lb" -o "$tmp/lb_probe" "$here/lb_probe.c"
python3 "$here/service_rules.py" backends >"$tmp/backends"
[[ -z "$perf_dir" ]] || mkdir -p "$perf_dir"

# perf_on NAME : records the agent into $perf_dir/NAME.data until stop_perf.
perf_on() {
    [[ -n "$perf_dir" ]] || return 0
    # The agent's copy of the module goes with the run's folder: perf report finds it by build id.
    perf buildid-cache -a "$tmp/m-$membrane_ns/modules/service-lb.so" 2>/dev/null || true
    perf record -F 99 --call-graph dwarf,8192 -o "$perf_dir/$1.data" -p "$(cat "$tmp/m-$membrane_ns/daemon.pid")" >/dev/null 2>&1 &
    perf_pid=$!
    sleep 0.5  # perf attaches
}

# baseline N : iptables-restore of kube-proxy's rules for N services, in ms (a namespace of its own).
baseline_ms() {
    local n=$1 ns="$tag-ipt" start end
    python3 "$here/service_rules.py" iptables "$n" 10.213.1.2 >"$tmp/rules"
    ip netns add "$ns"
    start=${EPOCHREALTIME/[.,]/}
    timeout 900 ip netns exec "$ns" iptables-restore "$tmp/rules" || { ip netns del "$ns"; return 1; }
    end=${EPOCHREALTIME/[.,]/}
    ip netns del "$ns"
    rm -f "$tmp/rules"
    echo $(((end - start) / 1000))
}

# changes N ROUND : the change measurements against the loaded agent; "change" and "apply"
# lines (µs) into $tmp/changes.N.ROUND.
measure_changes() {
    local n=$1 round=$2 dir="$tmp/m-$membrane_ns" file ip backend start answered seen out="$tmp/changes.$1.$2"
    mkdir -p "$tmp/changes"
    rm -f "$tmp/changes"/*
    python3 "$here/service_manifests.py" changes "$tmp/services.$n" "$tmp/backends" "$tmp/changes" "$changes"
    : >"$out"
    while read -r file ip backend; do
        rm -f "$tmp/probe"  # the last change's: its "polling" must not count for this one
        "$tmp/lb_probe" wait "$dir/bpffs/membrane/bench" "$ip" 80 "$backend" 8080 30 >"$tmp/probe" &
        probe_pid=$!
        local waited=0
        until grep -q '^polling$' "$tmp/probe" 2>/dev/null; do
            kill -0 "$probe_pid" 2>/dev/null || fail "lb_probe ended before it polled (change $file)"
            ((++waited < 2000)) || fail "lb_probe did not start polling"
            sleep 0.001
        done
        start=${EPOCHREALTIME/[.,]/}
        DBUS_SYSTEM_BUS_ADDRESS="unix:path=$dir/bus" timeout 60 "$membrane_build/cli/membranectl" \
            --bus "unix:path=$dir/bus" apply -f "$file" >/dev/null || fail "apply of $file failed"
        answered=${EPOCHREALTIME/[.,]/}
        wait "$probe_pid" || fail "the datapath never got $backend for $ip (change $file)"
        probe_pid=""
        seen=$(sed -n 's/^seen_us=//p' "$tmp/probe")
        echo "change $((seen - start)) apply $((answered - start))" >>"$out"
    done <"$tmp/changes/changes"
    # The floor of both: a membranectl that asks the agent next to nothing (its start, the D-Bus call).
    for ((i = 0; i < 20; i++)); do
        start=${EPOCHREALTIME/[.,]/}
        DBUS_SYSTEM_BUS_ADDRESS="unix:path=$dir/bus" timeout 60 "$membrane_build/cli/membranectl" \
            --bus "unix:path=$dir/bus" status >/dev/null || fail "membranectl status failed"
        answered=${EPOCHREALTIME/[.,]/}
        echo "floor $((answered - start))" >>"$out"
    done
}

: >"$tmp/results"
for n in "${counts[@]}"; do
    python3 "$here/service_rules.py" services "$n" >"$tmp/services.$n"
    for ((round = 1; round <= rounds; round++)); do
        membrane_ns="$tag-$n-$round"
        ip netns add "$membrane_ns"
        ip -n "$membrane_ns" link set lo up
        cgroup="$cgroup_root/membrane-$membrane_ns"
        mkdir "$cgroup"
        start_membrane_agent "$membrane_ns" "$cgroup" || fail "membraned did not start"
        perf_on "load-$n-$round"
        load_ms=$(load_membrane_services "$n" "$tmp/services.$n" "$tmp/backends" "$tmp/m-$membrane_ns") ||
            fail "loading $n services failed"
        stop_perf
        rss_kb=$(cat "$tmp/m-$membrane_ns/rss_kb")
        echo "[bench] $n services, round $round: loaded in $load_ms ms, agent RSS $rss_kb kB" >&2
        perf_on "change-$n-$round"
        measure_changes "$n" "$round"
        stop_perf
        stop_membrane_socket_lb "$membrane_ns"
        rm -rf --one-file-system -- "$tmp/m-$membrane_ns"
        ip netns del "$membrane_ns"
        membrane_ns=""
        rmdir "$cgroup"
        cgroup=""
        base_ms=-
        if ((baseline)); then base_ms=$(baseline_ms "$n") || fail "iptables-restore of $n services failed"; fi
        echo "$n $round $load_ms $rss_kb $base_ms $tmp/changes.$n.$round" >>"$tmp/results"
        echo "[bench] $n services, round $round: changes done; iptables-restore $base_ms ms" >&2
    done
done

python3 - "$tmp/results" "$changes" <<'PY'
import sys
def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, max(0, -(-len(values) * p // 100) - 1))]  # nearest rank
print(f"\nService load and EndpointSlice change -> datapath ({sys.argv[2]} changes a round; nearest-rank percentiles)")
print("change: from `membranectl apply` of one EndpointSlice until the maps name its new backend; apply: until\n"
      "membranectl returns; ctl: `membranectl status`, the floor of both (the client's start, a D-Bus call)")
print(f"{'N':>6} {'round':>5} {'load s':>7} {'RSS MB':>7} {'change p50 ms':>13} {'p99 ms':>7} "
      f"{'apply p50 ms':>12} {'p99 ms':>7} {'ctl p50 ms':>10} {'iptables-restore s':>18}")
for line in open(sys.argv[1]):
    n, round_, load, rss, base, changes = line.split()
    change, apply, floor = [], [], []
    for row in open(changes):
        fields = row.split()
        if fields[0] == "floor":
            floor.append(int(fields[1]) / 1000)
            continue
        change.append(int(fields[1]) / 1000)
        apply.append(int(fields[3]) / 1000)
    base = "-" if base == "-" else f"{int(base) / 1000:.1f}"
    print(f"{n:>6} {round_:>5} {int(load) / 1000:>7.1f} {int(rss) / 1024:>7.1f} {pct(change, 50):>13.1f} "
          f"{pct(change, 99):>7.1f} {pct(apply, 50):>12.1f} {pct(apply, 99):>7.1f} {pct(floor, 50):>10.1f} {base:>18}")
PY
