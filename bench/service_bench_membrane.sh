# Sourced by bench/service_bench.sh: its membrane variants, Membrane's socket-level LB and (below,
# run_membrane_tc_lb) its packet-level LB with socket LB off. For each N a
# membraned of its own (node "bench", its own bpffs, state folder and private D-Bus) runs inside
# the variant's client namespace with only service-lb enabled and [agent] cgroup_root = the
# variant's cgroup, so its connect4 program sees the client's connects and nothing else; the N
# services (ClusterIP, TCP 80 -> 8080, the 10 backends ready) are applied with membranectl, 50
# Services and their 50 EndpointSlices per apply (the apply limit is 100 objects), and the load
# time is until service-lb's maps hold all N frontends. uninstall_on_stop: on SIGTERM the agent
# removes its pins, and with them the socket programs.
# Needs a build: MEMBRANE_BUILD_DIR (default ./build) with membraned, membranectl and service-lb.so.
# bench/service_load_bench.sh uses its two halves apart: start_membrane_agent and
# load_membrane_services.

membrane_build=${MEMBRANE_BUILD_DIR:-$(dirname "$here")/build}
# run_membrane_socket_lb runs in a command substitution (a subshell): what stop needs is kept
# in files of the run's folder, $tmp/m-<netns>/{daemon,bus}.pid.

# membrane_ctl DIR ARGS... : membranectl against that run's private bus.
membrane_ctl() {
    local dir=$1
    shift
    DBUS_SYSTEM_BUS_ADDRESS="unix:path=$dir/bus" "$membrane_build/cli/membranectl" --bus "unix:path=$dir/bus" "$@"
}

# lb_map_sizes N BACKENDS : service-lb's services and backends map sizes for N services of the
# backends listed in the file BACKENDS (one entry per frontend and per backend slot), as an operator would size them: the
# smallest power of two that holds them, at least 1024 (a hash map's bucket array is its size
# rounded up to a power of two, and at 16 bytes a bucket the default 1,048,576 spreads over 16 MB,
# which a lookup meets cold).
lb_map_sizes() {
    local n=$1 backends services_size=1024 backends_size=1024
    backends=$(wc -l <"$2")
    while ((services_size < n * (backends + 1) + 1)); do services_size=$((services_size * 2)); done
    while ((backends_size < n * backends)); do backends_size=$((backends_size * 2)); done
    printf 'services_map_size = %d\nbackends_map_size = %d\n' "$services_size" "$backends_size"
}

run_membrane_socket_lb() {
    local n=$1 netns=$2 services=$3 backends=$4 cgroup=$5
    start_membrane_agent "$netns" "$cgroup" "" "
[module.service-lb]
$(lb_map_sizes "$n" "$backends")" && load_membrane_services "$n" "$services" "$backends" "$tmp/m-$netns"
}

# run_membrane_tc_lb N NETNS SERVICES BACKENDS CGROUP K DEVICE POD_NS : the same services with
# [module.service-lb] socket_lb = false, so that only the packet stage translates, and a pod to
# connect from: POD_NS (made here) wired by membrane-cni into the agent's NETNS, pod CIDR
# 10.214.K.0/24, node address 10.213.K.2. The translated packet leaves through NETNS's stack
# (forwarding on) and DEVICE, the veth to the backends, which carries mbr_from_netdev
# ([agent] devices) so that the backends' replies meet the stage and are translated back.
run_membrane_tc_lb() {
    local n=$1 netns=$2 services=$3 backends=$4 cgroup=$5 k=$6 device=$7 pod_ns=$8
    local dir="$tmp/m-$netns" id
    ip netns exec "$netns" sysctl -qw net.ipv4.ip_forward=1
    ip -n "$backend_ns" route replace "10.214.$k.0/24" via "10.213.$k.2"
    start_membrane_agent "$netns" "$cgroup" "devices = [\"$device\"]" "
[module.service-lb]
socket_lb = false
$(lb_map_sizes "$n" "$backends")

[[nodes]]
name = \"bench\"
ip = \"10.213.$k.2\"
pod_cidr = \"10.214.$k.0/24\"" || return 1
    ip netns add "$pod_ns"
    id=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
    env CNI_COMMAND=ADD CNI_CONTAINERID="$id" CNI_NETNS="/var/run/netns/$pod_ns" CNI_IFNAME=eth0 \
        CNI_PATH="$membrane_build/cni" CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=client" \
        ip netns exec "$netns" timeout 60 "$membrane_build/cni/membrane-cni" >"$dir/cni.json" 2>&1 <<<"{\"cniVersion\": \"1.0.0\",
        \"name\": \"bench\", \"type\": \"membrane\", \"dbus_address\": \"unix:path=$dir/bus\", \"labels\": {\"app\": \"client\"}}" ||
        { echo "service_bench: membrane-cni ADD failed: $(cat "$dir/cni.json")" >&2; return 1; }
    load_membrane_services "$n" "$services" "$backends" "$dir"
}

# start_membrane_agent NETNS CGROUP [AGENT-LINES] [MORE-CONFIG] : a private dbus-daemon and a
# membraned with service-lb in NETNS, its socket programs on CGROUP, in the folder $tmp/m-NETNS,
# AGENT-LINES added to its [agent] table and MORE-CONFIG to its file; returns once service-lb answers.
start_membrane_agent() {
    local netns=$1 cgroup=$2 agent_lines=${3:-} more_config=${4:-}
    local dir="$tmp/m-$netns"
    for file in kernel/membraned cli/membranectl cni/membrane-cni modules/service-lb/service-lb.so; do
        [[ -e "$membrane_build/$file" ]] || { echo "service_bench: the build lacks $membrane_build/$file" >&2; return 1; }
    done
    mkdir -p "$dir"/{state,run,bpffs,cgroup,modules}
    chmod 0755 "$dir" "$dir/modules"
    cp "$membrane_build/modules/service-lb/service-lb.so" "$dir/modules/" && chmod 0644 "$dir/modules/service-lb.so"
    mount -t bpf bpf "$dir/bpffs"
    # `ip netns exec` gives the daemon a /sys of its own: it reaches the cgroup through this mount.
    # (A bind mount: mounting cgroup2 anew would reset the host's cgroup2 mount options.)
    mount --bind "$cgroup_root" "$dir/cgroup"
    cat >"$dir/bus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>unix:path=$dir/bus</listen><auth>EXTERNAL</auth>
<policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy>
</busconfig>
CONF
    dbus-daemon --config-file="$dir/bus.conf" --nofork --nopidfile </dev/null >"$dir/bus.log" 2>&1 &
    echo $! >"$dir/bus.pid"
    cat >"$dir/membrane.toml" <<CONF
[agent]
node_name = "bench"
state_dir = "$dir/state"
runtime_dir = "$dir/run"
bpffs_root = "$dir/bpffs"
module_dir = "$dir/modules"
cgroup_root = "$dir/cgroup${cgroup#"$cgroup_root"}"
log_level = "warn"
uninstall_on_stop = true
$agent_lines

[dbus]
bus = "unix:path=$dir/bus"

[modules]
enabled = ["service-lb"]
$more_config
CONF
    local deadline=$((SECONDS + 10))
    until busctl --address="unix:path=$dir/bus" list >/dev/null 2>&1; do
        ((SECONDS < deadline)) || { echo "service_bench: the private dbus-daemon did not answer" >&2; return 1; }
        sleep 0.1
    done
    DBUS_SYSTEM_BUS_ADDRESS="unix:path=$dir/bus" ip netns exec "$netns" "$membrane_build/kernel/membraned" \
        --config "$dir/membrane.toml" </dev/null >"$dir/membraned.log" 2>&1 &
    echo $! >"$dir/daemon.pid"
    deadline=$((SECONDS + 30))
    until membrane_ctl "$dir" module call service-lb Status >/dev/null 2>&1; do
        ((SECONDS < deadline)) || { echo "service_bench: membraned/service-lb did not start:" >&2; tail "$dir/membraned.log" >&2; return 1; }
        sleep 0.2
    done
}

# load_membrane_services N SERVICES BACKENDS DIR : the N services applied to the agent of DIR, 50
# Services and their slices an apply; prints the ms until service-lb's maps hold all N frontends,
# and keeps the agent's VmRSS then (kB) in DIR/rss_kb.
load_membrane_services() {
    local n=$1 services=$2 backends=$3 dir=$4 deadline
    python3 "$here/service_manifests.py" batches "$services" "$backends" "$dir"
    local start=${EPOCHREALTIME/[.,]/} file
    for file in "$dir"/apply-*.yaml; do
        membrane_ctl "$dir" apply -f "$file" >/dev/null || { echo "service_bench: apply $file failed" >&2; return 1; }
    done
    deadline=$((SECONDS + 600))
    until [[ "$(membrane_ctl "$dir" -o json module call service-lb Status |
        python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["frontends"], s["map_entries"])')" == "$n $((n * 11))" ]]; do
        ((SECONDS < deadline)) || { echo "service_bench: service-lb never held $n services" >&2; return 1; }
        sleep 0.05
    done
    local end=${EPOCHREALTIME/[.,]/}
    awk '/VmRSS/ { print $2 }' /proc/"$(cat "$dir/daemon.pid")"/status >"$dir/rss_kb" 2>/dev/null || echo '?' >"$dir/rss_kb"
    echo "[bench] membrane at $n services: agent RSS $(cat "$dir/rss_kb") kB" >&2
    echo $(((end - start) / 1000))
}

stop_membrane_socket_lb() {
    local dir="$tmp/m-$1" pid
    pid=$(cat "$dir/daemon.pid" 2>/dev/null)
    if [[ -n "$pid" ]]; then
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        rm -f "$dir/daemon.pid"
    fi
    pid=$(cat "$dir/bus.pid" 2>/dev/null)
    [[ -z "$pid" ]] || { kill "$pid" 2>/dev/null; rm -f "$dir/bus.pid"; }
    # The bpffs goes with whatever pins are left (the socket programs' links with them).
    local mount
    for mount in "$dir/bpffs" "$dir/cgroup"; do
        mountpoint -q "$mount" 2>/dev/null && { umount "$mount" 2>/dev/null || umount -l "$mount"; }
    done
    return 0
}
