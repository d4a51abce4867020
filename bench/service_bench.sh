#!/usr/bin/env bash
# Connect latency vs number of services (the kube-proxy slide): how long a TCP
# connect() to a service address takes with N services of 10 backends each,
# every variant beside the direct connect (no translation, the floor) in the
# same run:
#   direct    connect to a backend address itself, no rules (the floor);
#   iptables  kube-proxy's iptables mode: its nat (KUBE-SERVICES from OUTPUT
#             and PREROUTING, KUBE-SVC-* picking an endpoint with -m statistic,
#             KUBE-SEP-* DNAT, masquerade) and filter chains, loaded with one
#             iptables-restore (whatever backend `iptables` has here: printed);
#   nftables  kube-proxy's nftables mode: table ip kube-proxy, the service-ips
#             verdict map, numgen random mod 10 vmap to endpoint chains (one
#             `nft -f` transaction);
#   membrane  Membrane's socket-level LB (service-lb's cgroup/connect4): a
#             membraned of this build per N (bench/service_bench_membrane.sh);
#             left out with --no-membrane or MEMBRANE_SOCKET_LB=0;
#   membrane-tc  Membrane's packet-level LB with socket LB off (service-lb's
#             stage in the pipeline, [module.service-lb] socket_lb = false):
#             the client is a pod (membrane-cni) of a membraned of this build
#             in the variant's namespace, whose packets to the ClusterIP are
#             DNATed on the pod's veth and whose backends' replies are
#             translated back on the veth to the backends (run_membrane_tc_lb);
#             beside it "pod direct", the same pod connecting to the backends
#             themselves through the same datapath (its floor: the pod's two
#             hops more than a host-network client's one). Left out with
#             --no-membrane or MEMBRANE_TC_LB=0.
# The rules are bench/service_rules.py's (it says which kube-proxy source each
# shape follows). The client is a host-network process of the node, as kube-
# proxy sees one: the rules and the client live in a client namespace of the
# variant's own, made fresh for every N (all variants' up and loaded at once,
# then measured in turn, as bench/pod_network_bench.sh does with its labs),
# joined by a veth to one backend namespace holding the 10 backend addresses
# (10.213.129.1-10 on lo) and an accept-loop server on 8080. Every address is
# inside those namespaces; nothing touches the root namespace's routes or rules.
# Each point (N, variant, round): COUNT connects (bench/connect_latency.c: connect + close, a RST,
# after untimed warm-up ones), each to a service drawn at random among the N
# (or in turn, --pick rr), so the lookup at N services is exercised across
# services; a connect that nothing translated fails (1 s) and fails the bench.
# With 2 CPUs or more the client runs on CPU 0 and the server on the last one.
# The time to load the rules (iptables-restore / nft -f) is measured too.
# Prints a table (N, variant, load time, p50/p99/mean µs, ratio to direct at
# the same N), writes a CSV and a PNG of p50 vs N (log x; gnuplot, when there).
# Bounded: every connect 1 s, every point 120 s, every load 900 s; the full
# run takes about 15 minutes on a 2-core VM (most of it nft -f and the membrane
# variant's applies at 10,000 services), --quick about 30 s.
#
# Usage (as root): bench/service_bench.sh [--quick] [--counts 1,100,1000,2768,10000]
#     [--connects 5000] [--rounds 3] [--pick random|rr] [--variants direct,iptables,nftables]
#     [--no-membrane] [--png /tmp/membrane-service-bench.png] [--csv /tmp/membrane-service-bench.csv]
#   --quick       counts 1,100,1000 and 1000 connects a point
#   --rounds R    every point R times (default 3), variants in a rotating
#                 order; the medians, and the spread of the per-round ratios
#   --no-membrane leaves both membrane variants out (also MEMBRANE_SOCKET_LB=0,
#                 MEMBRANE_TC_LB=0 for one of them);
#                 another hook may come from MEMBRANE_SOCKET_LB_HOOK=FILE (sourced)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

counts=1,100,1000,2768,10000 connects=5000 rounds=3 pick=random variants=direct,iptables,nftables
png=/tmp/membrane-service-bench.png csv=/tmp/membrane-service-bench.csv
membrane=${MEMBRANE_SOCKET_LB:-1} membrane_tc=${MEMBRANE_TC_LB:-1}
while (($#)); do
    case $1 in
        --quick) counts=1,100,1000 connects=1000; shift ;;
        --counts) counts=$2; shift 2 ;;
        --connects) connects=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --pick) pick=$2; shift 2 ;;
        --variants) variants=$2; shift 2 ;;
        --membrane) membrane=1; shift ;;
        --no-membrane) membrane=0 membrane_tc=0; shift ;;
        --png) png=$2; shift 2 ;;
        --csv) csv=$2; shift 2 ;;
        -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
        *) echo "service_bench: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
[[ $counts =~ ^[0-9]+(,[0-9]+)*$ ]] || { echo "service_bench: --counts is N,N,..., not '$counts'" >&2; exit 2; }
if ! [[ $connects =~ ^[0-9]+$ ]] || ((connects < 10 || connects > 100000)); then
    echo "service_bench: --connects is within 10..100000, not '$connects'" >&2; exit 2
fi
if ! [[ $rounds =~ ^[0-9]+$ ]] || ((rounds < 1 || rounds > 20)); then
    echo "service_bench: --rounds is within 1..20, not '$rounds'" >&2; exit 2
fi
[[ $pick == random || $pick == rr ]] || { echo "service_bench: --pick is random or rr, not '$pick'" >&2; exit 2; }
IFS=, read -ra counts <<<"$counts"
IFS=, read -ra variants <<<"$variants"
for n in "${counts[@]}"; do
    ((n >= 1 && n <= 65000)) || { echo "service_bench: a count is within 1..65000, not '$n'" >&2; exit 2; }
done
for v in "${variants[@]}"; do
    [[ $v == direct || $v == iptables || $v == nftables ]] ||
        { echo "service_bench: --variants are direct, iptables, nftables, not '$v' (membrane: --membrane)" >&2; exit 2; }
done
[[ " ${variants[*]} " == *" direct "* ]] || variants=(direct "${variants[@]}")  # every ratio needs it
[[ $membrane != 1 ]] || variants+=(membrane)
[[ $membrane_tc != 1 ]] || variants+=(membrane-tc)

skip() { echo "SKIP: $*" >&2; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
[[ $EUID -eq 0 ]] || skip "service_bench needs root (network namespaces, netfilter)"
for tool in ip cc python3 timeout; do command -v "$tool" >/dev/null || skip "'$tool' is not installed"; done
[[ " ${variants[*]} " != *" iptables "* ]] || command -v iptables-restore >/dev/null ||
    skip "iptables-restore is not installed (Debian's iptables)"
[[ " ${variants[*]} " != *" nftables "* ]] || command -v nft >/dev/null || skip "nft is not installed (Debian's nftables)"

# --- the run's names and their cleanup ------------------------------------------------------------
# Every name carries this shell's PID: runs can go side by side. The trap undoes all, also on
# Ctrl-C: the server, every namespace (with its veth and rules), the cgroups, the files.
tag="sb$$"
backend_ns="$tag-be"
tmp=$(mktemp -d /tmp/membrane-svcbench.XXXXXX)
server_pid="" point=0
cgroup_root=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
cleanup() {
    local rc=$?
    set +e
    local dir
    for dir in "$tmp"/m-*; do [[ ! -d $dir ]] || stop_membrane_socket_lb "${dir#"$tmp/m-"}"; done
    [[ -z "$server_pid" ]] || { kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; }
    local ns
    for ns in $(ip netns list | awk -v p="$tag-" 'index($1, p) == 1 { print $1 }'); do
        timeout 600 ip netns exec "$ns" nft flush ruleset 2>/dev/null
        ip netns del "$ns"
    done
    [[ -z "$cgroup_root" ]] || rmdir "$cgroup_root/membrane-$tag"-* 2>/dev/null
    # Never into a mount a failed stop left (a cgroup2 mount would lose its empty cgroups).
    rm -rf --one-file-system -- "$tmp"
    return "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cc -O2 -Wall -Wextra -Werror -o "$tmp/connect_latency" "$here/connect_latency.c"
client_bin="$tmp/connect_latency"

# --- Membrane socket-level LB: THE HOOK (to be wired to Membrane's cgroup/connect4 LB) ------------
# run_membrane_socket_lb N NETNS SERVICES BACKENDS CGROUP
#   N         how many services to program;
#   NETNS     the variant's fresh client namespace for this N (what `ip netns exec` takes): its
#             veth leads to the backends, its routes cover 10.96.0.0/16 and the backends;
#             nothing else is in it;
#   SERVICES  a file of the N ClusterIPs, one a line, each a TCP service on port 80 (the same
#             services the kube-proxy variants get);
#   BACKENDS  a file of the 10 endpoint addresses, one a line, target port 8080: every service
#             has all 10 as endpoints;
#   CGROUP    an empty cgroup v2 directory made for this N: the client runs in it, inside
#             NETNS, so a connect4 program attached to it (or to an ancestor) sees its connects.
# It must make a connect() to SERVICE:80 from that client land on one of BACKENDS:8080 (the
# bench checks: a connect that is not translated times out and fails the point), and print
# one line on stdout: how long loading the N services took, in ms ("-" if it cannot tell).
# A non-zero status fails the bench. stop_membrane_socket_lb NETNS CGROUP undoes it (after
# this N's rounds, or from the trap); the harness then deletes NETNS and removes CGROUP. It is
# called once per N, before the rounds: every round measures the same loaded services.
# Wire it here, or in a file named by MEMBRANE_SOCKET_LB_HOOK that defines both functions.
# bench/service_bench_membrane.sh wires them to a membraned with service-lb of this build.
source "$here/service_bench_membrane.sh"
if [[ -n "${MEMBRANE_SOCKET_LB_HOOK:-}" ]]; then
    # shellcheck source=/dev/null
    source "$MEMBRANE_SOCKET_LB_HOOK"
fi
if [[ ($membrane == 1 || $membrane_tc == 1) && -z "$cgroup_root" ]]; then skip "the membrane variants need a cgroup v2 mount"; fi

# --- the topology ---------------------------------------------------------------------------------
python3 "$here/service_rules.py" backends >"$tmp/backends"
ip netns add "$backend_ns"
ip -n "$backend_ns" link set lo up
while read -r backend; do ip -n "$backend_ns" addr add "$backend/32" dev lo; done <"$tmp/backends"
# The client and the server each on a CPU of its own: with the server free to land on the
# client's CPU, it preempts the client at the handshake's last ACK, and the p50 of the same
# point jumped between 13 and 40 µs from run to run on a 2-core VM; pinned apart, it holds.
pin_client=() pin_server=()
if (($(nproc) >= 2)) && command -v taskset >/dev/null; then
    pin_client=(taskset -c 0) pin_server=(taskset -c "$(($(nproc) - 1))")
fi
ip netns exec "$backend_ns" "${pin_server[@]}" timeout 7200 "$client_bin" serve 8080 7200 </dev/null >/dev/null 2>&1 &
server_pid=$!

# client_up K : a fresh client namespace for variant number K (name in ns[K]), joined to the
# backend namespace by a veth: client 10.213.K.2/30, backend side 10.213.K.1/30. Made anew for
# every N: nothing (rules, conntrack entries) carries over from one N to the next.
declare -A ns
client_up() {
    local k=$1
    point=$((point + 1))
    ns[$k]="$tag-c$point"
    ip netns add "${ns[$k]}"
    ip -n "${ns[$k]}" link set lo up
    ip -n "${ns[$k]}" link add "${tag}c$point" type veth peer name "${tag}b$point" netns "$backend_ns"
    ip -n "${ns[$k]}" addr add "10.213.$k.2/30" dev "${tag}c$point"
    ip -n "$backend_ns" addr add "10.213.$k.1/30" dev "${tag}b$point"
    ip -n "${ns[$k]}" link set "${tag}c$point" up
    ip -n "$backend_ns" link set "${tag}b$point" up
    ip -n "${ns[$k]}" route add 10.213.129.0/24 via "10.213.$k.1"   # the backends
    ip -n "${ns[$k]}" route add 10.96.0.0/16 via "10.213.$k.1"      # ClusterIPs: untranslated ones die there
}
# client_down K : the rules flushed first (while this script waits: a namespace deleted with
# 400,000 rules in it would be torn down by the kernel in the background of the next N).
client_down() {
    timeout 900 ip netns exec "${ns[$1]}" nft flush ruleset 2>/dev/null || true
    ip netns del "${ns[$1]}"  # and its veth, both ends
}

# timed_ms NETNS CMD... : runs CMD in NETNS, prints its wall time in ms. timeout stays in our
# process group (--foreground), so a Ctrl-C reaches the inner bash, which ends CMD at once (a
# 10,000-service nft -f takes minutes); so does the timeout's SIGTERM.
timed_ms() {
    local netns=$1
    shift
    # shellcheck disable=SC2016  # expanded by the inner bash
    timeout --foreground 900 ip netns exec "$netns" bash -c '
        start=${EPOCHREALTIME/[.,]/}
        "$@" >&2 &
        child=$!
        trap "kill \$child 2>/dev/null; exit 143" INT TERM
        wait "$child" || exit $?
        end=${EPOCHREALTIME/[.,]/}
        echo $(((end - start) / 1000))' timed "$@"
}

# load K VARIANT N : the variant's N services into its namespace; the time in load_ms[VARIANT].
declare -A load_ms cgroup pod
load() {
    local k=$1 variant=$2 n=$3
    load_ms[$variant]=-
    case $variant in
        direct) ;;
        iptables)
            python3 "$here/service_rules.py" iptables "$n" "10.213.$k.2" >"$tmp/rules"
            load_ms[$variant]=$(timed_ms "${ns[$k]}" iptables-restore "$tmp/rules") || fail "iptables-restore of $n services failed"
            ;;
        nftables)
            python3 "$here/service_rules.py" nft "$n" "10.213.$k.2" >"$tmp/rules"
            load_ms[$variant]=$(timed_ms "${ns[$k]}" nft -f "$tmp/rules") || fail "nft -f of $n services failed"
            ;;
        membrane)
            cgroup[$k]="$cgroup_root/membrane-$tag-$point"
            mkdir "${cgroup[$k]}"
            load_ms[$variant]=$(run_membrane_socket_lb "$n" "${ns[$k]}" "$tmp/services.$n" "$tmp/backends" "${cgroup[$k]}") ||
                fail "run_membrane_socket_lb $n failed"
            ;;
        membrane-tc)
            cgroup[$k]="$cgroup_root/membrane-$tag-$point"
            mkdir "${cgroup[$k]}"
            pod[$k]="$tag-p$point"
            load_ms[$variant]=$(run_membrane_tc_lb "$n" "${ns[$k]}" "$tmp/services.$n" "$tmp/backends" "${cgroup[$k]}" \
                "$k" "${tag}c$point" "${pod[$k]}") || fail "run_membrane_tc_lb $n failed"
            ;;
    esac
    rm -f "$tmp/rules"
    echo "[bench] $n services, $variant: loaded in ${load_ms[$variant]} ms" >&2
}

# measure K VARIANT N : one measurement; appends "N VARIANT ROUND key=value..." to the results.
# VARIANT pod-direct: the membrane-tc variant's pod to the backends themselves.
measure() {
    local k=$1 variant=$2 n=$3 out wrap=() netns=${ns[$1]}
    local addresses="$tmp/services.$n" port=80
    [[ $variant != direct && $variant != pod-direct ]] || { addresses="$tmp/backends" port=8080; }
    [[ $variant != membrane-tc && $variant != pod-direct ]] || netns=${pod[$k]}
    if [[ $variant == membrane ]]; then
        # Into the cgroup before `ip netns exec`, which mounts a sysfs of its own over /sys.
        # shellcheck disable=SC2016  # expanded by the inner sh: it moves itself into the cgroup
        wrap=(sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' in-cgroup "${cgroup[$k]}")
    fi
    out=$("${wrap[@]}" ip netns exec "$netns" "${pin_client[@]}" timeout --foreground 150 "$client_bin" spread \
        "$addresses" "$port" "$connects" "$pick" 120) || fail "$variant at $n services: connects failed ($out)"
    echo "$n $variant $round load_ms=${load_ms[$variant]:--} $out" >>"$tmp/results"
    echo "[bench] round $round, $n services, $variant: $out" >&2
}

echo "service_bench: $(uname -sr), $(nproc) CPUs; $(iptables -V 2>/dev/null || echo 'no iptables');" \
    "$(nft -v 2>/dev/null || echo 'no nft'); client ${pin_client[*]:-not pinned}, server ${pin_server[*]:-not pinned}" >&2
: >"$tmp/results"
# At each N, every variant's namespace is up and loaded at once; then the rounds, the variants
# measured in turn, the first one rotating from round to round.
for n in "${counts[@]}"; do
    python3 "$here/service_rules.py" services "$n" >"$tmp/services.$n"
    for k in "${!variants[@]}"; do
        client_up $((k + 1))
        load $((k + 1)) "${variants[$k]}" "$n"
    done
    for ((round = 1; round <= rounds; round++)); do
        for ((i = 0; i < ${#variants[@]}; i++)); do
            k=$(((i + round - 1) % ${#variants[@]}))
            measure $((k + 1)) "${variants[$k]}" "$n"
            [[ ${variants[$k]} != membrane-tc ]] || measure $((k + 1)) pod-direct "$n"
        done
    done
    for k in "${!variants[@]}"; do
        [[ ${variants[$k]} != membrane* ]] || stop_membrane_socket_lb "${ns[$((k + 1))]}" "${cgroup[$((k + 1))]}"
        [[ ${variants[$k]} != membrane-tc ]] || ip netns del "${pod[$((k + 1))]}"
        client_down $((k + 1))
        [[ ${variants[$k]} != membrane* ]] || rmdir "${cgroup[$((k + 1))]}"
    done
done

python3 - "$tmp/results" "$csv" "$tmp" "$connects" "$pick" "$rounds" "$(iptables -V 2>/dev/null || echo -)" <<'PY'
import statistics, sys
from collections import defaultdict
results, csv_path, folder, connects, pick, rounds, iptables_version = sys.argv[1:]
rows = defaultdict(dict)  # (n, variant) -> {round: {key: value}}
for line in open(results):
    n, variant, round_, *pairs = line.split()
    rows[(int(n), variant)][int(round_)] = dict(p.split("=", 1) for p in pairs)
order = ["direct", "iptables", "nftables", "membrane", "membrane-tc", "pod-direct"]
names = {"direct": "direct (floor)", "iptables": "kube-proxy iptables", "nftables": "kube-proxy nftables",
         "membrane": "Membrane socket LB", "membrane-tc": "Membrane tc LB", "pod-direct": "pod direct (tc floor)"}
def med(n, variant, key):
    values = [float(r[key]) for r in rows[(n, variant)].values() if r[key] != "-"]
    return statistics.median(values) if values else None
print(f"\nTCP connect latency vs services (10 backends each): {connects} connects a point, "
      f"services drawn {'at random' if pick == 'random' else 'in turn'}; {rounds} round(s), medians; "
      f"ratio = variant / direct at the same N; iptables is {iptables_version}")
print("Membrane tc LB is socket LB off, from a pod; 'pod direct' is that pod to the backends themselves, "
      "through the same datapath (tc x pod: the tc LB's p50 over it)")
print(f"{'N':>6} {'variant':21} {'load ms':>8} {'p50 us':>8} {'p99 us':>8} {'mean us':>8} {'p50 x':>6} {'p99 x':>6}")
with open(csv_path, "w") as csv:
    csv.write("n,variant,round,connects,p50_us,p99_us,mean_us,load_ms\n")
    for (n, variant), by_round in sorted(rows.items(), key=lambda kv: (kv[0][0], order.index(kv[0][1]))):
        for round_, r in sorted(by_round.items()):
            csv.write(f"{n},{variant},{round_},{r['count']},{r['p50_us']},{r['p99_us']},{r['mean_us']},"
                      f"{'' if r['load_ms'] == '-' else r['load_ms']}\n")
plot = defaultdict(list)
for n in sorted({n for n, _ in rows}):
    floor50, floor99 = med(n, "direct", "p50_us"), med(n, "direct", "p99_us")
    for variant in order:
        if (n, variant) not in rows:
            continue
        p50, p99, mean, load = (med(n, variant, k) for k in ("p50_us", "p99_us", "mean_us", "load_ms"))
        line = (f"{n:>6} {names[variant]:21} {'-' if load is None else f'{load:.0f}':>8} {p50:>8.1f} {p99:>8.1f} "
                f"{mean:>8.1f} {p50 / floor50:>6.2f} {p99 / floor99:>6.2f}")
        if len(rows[(n, variant)]) > 1 and variant != "direct":
            per_round = [float(r["p50_us"]) / float(rows[(n, "direct")][k]["p50_us"])
                         for k, r in rows[(n, variant)].items() if k in rows[(n, "direct")]]
            line += f"  p50 x [{min(per_round):.2f}-{max(per_round):.2f}]"
        if variant == "membrane-tc" and (n, "pod-direct") in rows:
            line += f"  tc x pod {p50 / med(n, 'pod-direct', 'p50_us'):.2f}"
        print(line)
        plot[variant].append((n, p50, p99))
for variant, points in plot.items():
    with open(f"{folder}/plot.{variant}", "w") as out:
        out.writelines(f"{n} {p50} {p99}\n" for n, p50, p99 in points)
with open(f"{folder}/plot.variants", "w") as out:
    out.write(" ".join(v for v in order if v in plot) + "\n")
print(f"\nCSV: {csv_path}")
PY

if command -v gnuplot >/dev/null; then
    read -ra plotted <"$tmp/plot.variants"
    declare -A titles=([direct]="direct to backend (no translation)" [iptables]="kube-proxy iptables"
        [nftables]="kube-proxy nftables" [membrane]="Membrane socket LB (cgroup/connect4)"
        [membrane-tc]="Membrane tc LB (socket LB off, from a pod)" [pod-direct]="pod direct to backend (tc floor)")
    plots=()
    for v in "${plotted[@]}"; do plots+=("'$tmp/plot.$v' using 1:2 with linespoints lw 2 pt 7 title '${titles[$v]}'"); done
    {
        echo "set terminal pngcairo size 1000,620 font 'sans,11'"
        echo "set output '$png'"
        echo "set title 'TCP connect latency vs number of services (10 backends each, p50 of $connects connects)'"
        echo "set logscale x"
        echo "set xlabel 'services'"
        echo "set ylabel 'connect + close, p50 (µs)'"
        echo "set yrange [0:*]"
        echo "set grid"
        echo "set key top left"
        echo "plot $(IFS=,; echo "${plots[*]}")"
    } >"$tmp/plot.gp"
    gnuplot "$tmp/plot.gp" && echo "PNG: $png"
else
    echo "PNG: not drawn, gnuplot is not installed (scripts/install-deps.sh installs gnuplot-nox)"
fi
