# shellcheck shell=bash
# Helpers for the lab tests (test/integration/lab_*_test.sh) and the pod
# benchmark: labs that are always taken down, and bounded connectivity checks.
#
#   source "$MEMBRANE_SOURCE_DIR/lab/lab_test_lib.sh"
#   labtest_init                         # root, tools, build; cleanup trap
#   lab=$(labtest_name c)                # unique lab name, taken down at exit
#   labtest_topology "$lab" vxlan a1:node1 b1:node2 >"$LABTEST_TMP/t.toml"
#   labtest_up "$LABTEST_TMP/t.toml"
#   labtest_expect_ping "$lab" a1 b1
#
# Environment: MEMBRANE_BUILD_DIR (the build), MEMBRANE_SOURCE_DIR (the sources).
# Every address is inside namespaces the lab made; every wait is bounded.

# shellcheck source=../test/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../test/lib/common.sh"

labtest_log() { echo "[labtest] $*" >&2; }

labtest_skip() {
    echo "SKIP: $*" >&2
    exit 77
}

# Prints MSG and the tail of each daemon log of each lab, then exits 1 (the trap takes the labs down).
labtest_fail() {
    echo "FAIL: $*" >&2
    local log
    for log in /run/membrane-lab/*/*/membraned.log; do
        local lab=${log#/run/membrane-lab/}
        lab=${lab%%/*}
        [[ " ${LABTEST_LABS[*]} " == *" $lab "* ]] || continue
        echo "----- last 40 lines of $log -----" >&2
        tail -n 40 "$log" >&2
    done
    exit 1
}

# labtest_init [--baseline-only] : skips (77) unless root, the tools and the build are there.
labtest_init() {
    [[ $EUID -eq 0 ]] || labtest_skip "lab tests need root (network namespaces, BPF)"
    local tool
    # etcd, etcdctl and openssl: a lab keeps its cluster store in its own etcd (TLS).
    for tool in python3 ip socat iperf3 ping timeout dbus-daemon busctl etcd etcdctl openssl; do
        command -v "$tool" >/dev/null || labtest_skip "'$tool' is not installed (scripts/install-deps.sh)"
    done
    LABTEST_BUILD=${MEMBRANE_BUILD_DIR:?set MEMBRANE_BUILD_DIR to the build folder}
    LABTEST_SOURCE=${MEMBRANE_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
    if [[ "${1:-}" != --baseline-only ]]; then
        local file
        for file in kernel/membraned cli/membranectl cni/membrane-cni \
            modules/routing-vxlan/routing-vxlan.so modules/direct-routing/direct-routing.so; do
            [[ -e "$LABTEST_BUILD/$file" ]] || labtest_skip "the build lacks $file"
        done
    fi
    LABTEST_TMP=$(mktemp -d /tmp/membrane-labtest.XXXXXX)
    LABTEST_LABS=()
    LABTEST_OWNER=$BASHPID
    trap labtest_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

labtest_cleanup() {
    local rc=$?
    [[ "${LABTEST_OWNER:-}" == "$BASHPID" ]] || return "$rc"
    set +e
    _labtest_register_labs
    local lab
    for lab in "${LABTEST_LABS[@]}"; do lab_cmd down "$lab" >/dev/null; done
    rm -rf -- "$LABTEST_TMP"
    return "$rc"
}

# lab_cmd ARGS... : membrane-lab with this build.
lab_cmd() {
    # What changes pods forgets the addresses labtest_addr remembered.
    case "${1:-}" in up | down | pod) [[ -z "${LABTEST_TMP:-}" ]] || rm -f "$LABTEST_TMP"/addr.* ;; esac
    python3 "$LABTEST_SOURCE/lab/membrane_lab.py" --build-dir "$LABTEST_BUILD" "$@"
}

# labtest_name PREFIX : a lab name unique to this run (letters and digits, <= 12), registered for
# `down` at exit. Call it directly or in $(...): the name is also recorded in a file.
labtest_name() {
    local name
    name="$1$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
    name=${name:0:12}
    echo "$name" >>"$LABTEST_TMP/labs"
    echo "$name"
}

# labtest_topology NAME ROUTING POD:NODE... : a topology on stdout (nodes in order of first use).
# LABTEST_TOPOLOGY_EXTRA, when set, is added as top-level lines (e.g. modules = [...]).
labtest_topology() {
    local name=$1 routing=$2
    shift 2
    printf 'name = "%s"\nrouting = "%s"\n' "$name" "$routing"
    [[ -z "${LABTEST_TOPOLOGY_EXTRA:-}" ]] || printf '%s\n' "$LABTEST_TOPOLOGY_EXTRA"
    local -a nodes=()
    local spec node
    for spec in "$@"; do
        node=${spec#*:}
        [[ " ${nodes[*]} " == *" $node "* ]] || nodes+=("$node")
    done
    for node in "${nodes[@]}"; do printf '\n[[nodes]]\nname = "%s"\n' "$node"; done
    for spec in "$@"; do
        printf '\n[[pods]]\nname = "%s"\nnode = "%s"\nlabels = { app = "%s" }\n' "${spec%%:*}" "${spec#*:}" "${spec%%:*}"
    done
}

# labtest_up FILE [ARGS...] : `membrane-lab up`, failing the test with the tool's message.
labtest_up() {
    _labtest_register_labs
    lab_cmd up "$@" || labtest_fail "membrane-lab up $* failed"
}

_labtest_register_labs() {
    local lab
    [[ -f "$LABTEST_TMP/labs" ]] || return 0
    while read -r lab; do
        [[ " ${LABTEST_LABS[*]} " == *" $lab "* ]] || LABTEST_LABS+=("$lab")
    done <"$LABTEST_TMP/labs"
}

# labtest_json LAB PYTHON-EXPRESSION : evaluates the expression on `status -o json` (as `s`).
labtest_json() {
    lab_cmd status "$1" -o json | python3 -c "import json,sys; s=json.load(sys.stdin); print($2)"
}

# labtest_addr LAB POD : the pod's address. Remembered until lab_cmd adds or
# removes pods: asking `status` (every node's membranectl) each time made up
# a good part of the lab tests' run time.
labtest_addr() {
    local addr remembered="$LABTEST_TMP/addr.$1.$2"
    if [[ -s "$remembered" ]]; then
        cat "$remembered"
        return 0
    fi
    addr=$(labtest_json "$1" "next(p['address'] for p in s['pods'] if p['name'] == '$2')") ||
        labtest_fail "no address for pod $2 in lab $1"
    echo "$addr" >"$remembered"
    echo "$addr"
}

# labtest_expect_ping LAB FROM TO : 3 echo requests from pod FROM to pod TO, all answered.
labtest_expect_ping() {
    local lab=$1 from=$2 to=$3 addr
    addr=$(labtest_addr "$lab" "$to")
    lab_cmd exec "$lab" "$from" -- ping -c 3 -W 1 -i 0.2 -q "$addr" >"$LABTEST_TMP/ping.out" 2>&1 ||
        { cat "$LABTEST_TMP/ping.out" >&2; labtest_fail "ICMP $from -> $to ($addr) in lab $lab"; }
    labtest_log "ICMP $from -> $to ($addr): ok"
}

# labtest_wait_listen LAB POD PORT [tcp|udp] : waits until a socket listens on PORT in POD;
# fails after 60 s (a server that never came up, not a slow machine).
labtest_wait_listen() {
    local lab=$1 pod=$2 port=$3 kind=${4:-tcp} deadline=$((SECONDS + 60)) flags=-Hltn
    [[ $kind == udp ]] && flags=-Hlun
    while ((SECONDS < deadline)); do
        lab_cmd exec "$lab" "$pod" -- ss "$flags" "sport = :$port" 2>/dev/null | grep_quiet ":$port" && return 0
        sleep 0.1
    done
    labtest_fail "nothing listens on $kind port $port in pod $pod of lab $lab"
}

# labtest_serve LAB POD : TCP (7001) and UDP (7002) echo servers in the pod, each answering
# "pong <pod> <line>"; they end with the lab, or by themselves after 10 min (long
# enough for a loaded machine, where each lab command can take seconds).
labtest_serve() {
    local lab=$1 pod=$2
    lab_cmd exec "$lab" "$pod" -- timeout 600 socat TCP4-LISTEN:7001,reuseaddr,fork \
        SYSTEM:"read line; echo pong $pod \$line" </dev/null >/dev/null 2>&1 &
    lab_cmd exec "$lab" "$pod" -- timeout 600 socat -T 2 UDP4-RECVFROM:7002,fork \
        SYSTEM:"read line; echo pong $pod \$line" </dev/null >/dev/null 2>&1 &
    labtest_wait_listen "$lab" "$pod" 7001 tcp
    labtest_wait_listen "$lab" "$pod" 7002 udp
}

# labtest_expect_tcp LAB FROM TO : a TCP exchange from FROM to TO's echo server (labtest_serve).
labtest_expect_tcp() {
    local lab=$1 from=$2 to=$3 addr reply
    addr=$(labtest_addr "$lab" "$to")
    reply=$(echo "tcp-from-$from" | lab_cmd exec "$lab" "$from" -- timeout 8 socat -t 5 -T 5 - TCP4:"$addr":7001,connect-timeout=2 2>&1) || true
    [[ "$reply" == "pong $to tcp-from-$from" ]] ||
        labtest_fail "TCP $from -> $to ($addr:7001) in lab $lab: got '$reply'"
    labtest_log "TCP $from -> $to ($addr): ok"
}

# labtest_udp_exchange LAB POD ADDR PORT TEXT : sends TEXT in one datagram from POD to
# ADDR:PORT and prints the first datagram back, or nothing after 2 s. It returns as soon as
# the answer is in (socat would wait out its -t after every exchange).
labtest_udp_exchange() {
    lab_cmd exec "$1" "$2" -- timeout 5 python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.sendto(sys.argv[3].encode() + b"\n", (sys.argv[1], int(sys.argv[2])))
try:
    print(s.recv(2048).decode().strip())
except OSError:
    pass' "$3" "$4" "$5"
}

# labtest_check JSON PYTHON-CONDITION MESSAGE : the condition on the JSON (as `r`), or fail with both.
labtest_check() {
    python3 -c 'import json,sys; r=json.loads(sys.argv[1]); sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2" ||
        labtest_fail "$3: $1"
}

# labtest_expect_udp LAB FROM TO : a UDP request/reply from FROM to TO's echo server (3 tries).
labtest_expect_udp() {
    local lab=$1 from=$2 to=$3 addr reply try
    addr=$(labtest_addr "$lab" "$to")
    for try in 1 2 3; do
        reply=$(labtest_udp_exchange "$lab" "$from" "$addr" 7002 "udp-from-$from" 2>&1) || true
        [[ "$reply" == "pong $to udp-from-$from" ]] && { labtest_log "UDP $from -> $to ($addr): ok"; return 0; }
    done
    labtest_fail "UDP $from -> $to ($addr:7002) in lab $lab: got '$reply'"
}

# labtest_endpoints LAB NODE : the node's endpoints as canonical JSON (sorted, stable fields only).
labtest_endpoints() {
    lab_cmd ctl "$1" "$2" -- -o json endpoint list | python3 -c '
import json, sys
data = json.load(sys.stdin)
if isinstance(data, dict):
    data = data.get("endpoints", [])
keep = ("id", "container_id", "ifname", "netns", "host_ifname", "address", "mac", "labels", "identity")
print(json.dumps(sorted(({k: e.get(k) for k in keep} for e in data), key=lambda e: str(e["id"])), sort_keys=True))'
}

# labtest_forwarded LAB NODE : datagrams the node's kernel IP stack has forwarded
# (Ip ForwDatagrams). Membrane's datapath redirects pod traffic in BPF, so it stays 0.
labtest_forwarded() { kernel_forwarded "ml-$1-$2"; }

# labtest_routed LAB NODE : the node's routing stage counter: MBR_STAT_FIB_FORWARDED (direct)
# or MBR_STAT_TO_OVERLAY (vxlan), packets the stage sent towards another node itself.
labtest_routed() {
    local routing index
    routing=$(labtest_json "$1" "s['routing']")
    if [[ $routing == direct ]]; then index=$MBR_STAT_FIB_FORWARDED; else index=$MBR_STAT_TO_OVERLAY; fi
    labtest_stat "$1" "$2" "$index"
}

# labtest_pod_sent LAB POD : packets the pod's eth0 has sent (a GSO super-packet counts once,
# as the routing stage sees it).
labtest_pod_sent() { ip netns exec "ml-$1-$2" cat /sys/class/net/eth0/statistics/tx_packets; }

# labtest_mark LAB POD... : remembers every node's forwarded and routed counts and the pods'
# sent packets, for labtest_expect_bpf_routed.
labtest_mark() {
    local lab=$1 node pod
    shift
    declare -gA LABTEST_MARK=()
    for node in $(labtest_json "$lab" "' '.join(n['name'] for n in s['nodes'])"); do
        LABTEST_MARK[forwarded.$node]=$(labtest_forwarded "$lab" "$node")
        LABTEST_MARK[routed.$node]=$(labtest_routed "$lab" "$node")
        LABTEST_MARK[overlay_device.$node]=$(labtest_overlay_device_packets "$lab" "$node")
    done
    for pod in "$@"; do LABTEST_MARK[sent.$pod]=$(labtest_pod_sent "$lab" "$pod"); done
}

# labtest_expect_bpf_routed LAB POD... : since labtest_mark LAB POD..., where the given pods sent
# only traffic to other nodes' pods: no node's kernel forwarded a datagram, and each node's
# routing stage counted at least what its given pods sent (less 10 a pod for ARP to the
# gateway and IPv6 chatter, which are not routed). A stage that falls through fails both:
# the node's routes would still carry the packets, through the kernel.
labtest_expect_bpf_routed() {
    local lab=$1 node pod forwarded routed sent
    shift
    local -A sent_on=()
    for pod in "$@"; do
        node=$(labtest_json "$lab" "next(p['node'] for p in s['pods'] if p['name'] == '$pod')")
        sent=$(($(labtest_pod_sent "$lab" "$pod") - ${LABTEST_MARK[sent.$pod]} - 10))
        sent_on[$node]=$((${sent_on[$node]:-0} + (sent > 0 ? sent : 0)))
    done
    for node in $(labtest_json "$lab" "' '.join(n['name'] for n in s['nodes'])"); do
        forwarded=$(($(labtest_forwarded "$lab" "$node") - ${LABTEST_MARK[forwarded.$node]}))
        routed=$(($(labtest_routed "$lab" "$node") - ${LABTEST_MARK[routed.$node]}))
        labtest_log "$node: routing stage $routed packets, kernel forwarded $forwarded, pods sent ${sent_on[$node]:-0}+"
        ((forwarded == 0)) || labtest_fail "$node's kernel forwarded $forwarded datagrams of pod traffic (the stage routed $routed)"
        ((routed >= ${sent_on[$node]:-0})) ||
            labtest_fail "$node's routing stage counted $routed packets, its pods sent ${sent_on[$node]} to other nodes"
    done
}

# labtest_overlay_device_packets LAB NODE : packets the node's VXLAN device (routing-vxlan's
# mbr_vxlan) sent and received, summed; 0 without one (direct routing).
labtest_overlay_device_packets() {
    ip -n "ml-$1-$2" -s -j link show mbr_vxlan 2>/dev/null |
        python3 -c 'import json,sys; d=json.load(sys.stdin); s=d[0]["stats64"]; print(s["tx"]["packets"] + s["rx"]["packets"])' 2>/dev/null ||
        echo 0
}

# labtest_expect_native_overlay LAB : since labtest_mark LAB, no node's VXLAN device carried
# more than 10 packets (the node's own traffic to remote pods, which takes the device): the
# routing stage encapsulated the pods' packets and the receiving core decapsulated them in BPF
# (membrane/overlay.h). A stage that hands its packets to the device fails this.
labtest_expect_native_overlay() {
    local lab=$1 node carried
    for node in $(labtest_json "$lab" "' '.join(n['name'] for n in s['nodes'])"); do
        ip -n "ml-$lab-$node" link show mbr_vxlan >/dev/null 2>&1 || labtest_fail "$node has no VXLAN device mbr_vxlan"
        carried=$(($(labtest_overlay_device_packets "$lab" "$node") - ${LABTEST_MARK[overlay_device.$node]}))
        labtest_log "$node: the VXLAN device sent and received $carried packets"
        ((carried <= 10)) ||
            labtest_fail "$node's VXLAN device carried $carried packets of pod traffic: the overlay was not encapsulated and decapsulated in BPF"
    done
}

# labtest_stream LAB FROM TO SECONDS : a bulk TCP stream (iperf3) from pod FROM to pod TO;
# fails unless it completes. Prints the sender's throughput.
labtest_stream() {
    local lab=$1 from=$2 to=$3 seconds=$4 addr
    addr=$(labtest_addr "$lab" "$to")
    lab_cmd exec "$lab" "$to" -- timeout $((seconds + 300)) iperf3 -s -1 -p 5202 >/dev/null 2>&1 &
    labtest_wait_listen "$lab" "$to" 5202
    lab_cmd exec "$lab" "$from" -- timeout $((seconds + 15)) iperf3 -c "$addr" -p 5202 -t "$seconds" \
        >"$LABTEST_TMP/stream.out" 2>&1 || { cat "$LABTEST_TMP/stream.out" >&2; labtest_fail "iperf3 $from -> $to in lab $lab failed"; }
    labtest_log "TCP stream $from -> $to ($addr): $(grep sender "$LABTEST_TMP/stream.out" | awk '{print $7, $8}')"
}

# labtest_hops LAB FROM TO : the hops tracepath sees from pod FROM to pod TO, one address per
# hop ("-" for a hop that never answered), the last being TO's; fails unless TO was reached.
labtest_hops() {
    local lab=$1 from=$2 to=$3 addr
    addr=$(labtest_addr "$lab" "$to")
    lab_cmd exec "$lab" "$from" -- timeout 30 tracepath -n -m 6 "$addr" >"$LABTEST_TMP/tracepath.out" 2>&1 || true
    python3 - "$LABTEST_TMP/tracepath.out" <<'PY' || { cat "$LABTEST_TMP/tracepath.out" >&2; labtest_fail "tracepath $from -> $to ($addr) in lab $lab did not reach it"; }
import re, sys
hops = {}
reached = False
for line in open(sys.argv[1]):
    m = re.match(r"\s*(\d+):\s+(\S+)", line)
    if not m:
        continue
    hop, what = int(m.group(1)), m.group(2)
    answered = what != "no"
    if answered or hop not in hops:
        hops[hop] = what if answered else "-"
    reached = reached or "reached" in line
if not reached:
    sys.exit(1)
print(" ".join(hops[h] for h in sorted(hops)))
PY
}

# labtest_node_ip LAB NODE : the node's own address on the underlay.
labtest_node_ip() {
    labtest_json "$1" "next(n['ip'] for n in s['nodes'] if n['name'] == '$2')" ||
        labtest_fail "no address for node $2 in lab $1"
}

# labtest_pins LAB NODE : the folder of the node's pins (lab/membrane_lab/names.py: LAB_ROOT; the
# lab's bpffs is <lab folder>/bpffs). Without asking `status`, which needs every node's agent.
labtest_pins() { echo "/run/membrane-lab/$1/bpffs/membrane/$2"; }

# labtest_stat LAB NODE INDEX : the node's datapath counter INDEX (membrane_stat).
labtest_stat() { membrane_stat "$(labtest_pins "$1" "$2")" "$3"; }

# labtest_echoes_received LAB POD : echo requests the pod's kernel took in (Icmp InEchos).
labtest_echoes_received() {
    lab_cmd exec "$1" "$2" -- cat /proc/net/snmp | awk '
        $1 == "Icmp:" && !header { for (i = 2; i <= NF; i++) col[$i] = i; header = 1; next }
        $1 == "Icmp:" && header { print $col["InEchos"]; exit }'
}

# labtest_ipcache LAB NODE IPV4 : "identity tunnel_endpoint" of NODE's /32 ipcache entry for
# IPV4, or nothing (ipcache_entry, read from the pin).
labtest_ipcache() { ipcache_entry "$(labtest_pins "$1" "$2")" "$3"; }

# labtest_identity LAB POD : the pod's identity number as its node's membraned reports it.
labtest_identity() {
    labtest_json "$1" "next(p['identity'] for p in s['pods'] if p['name'] == '$2')"
}

# labtest_apply_policy LAB FILE : `membranectl apply -f FILE` on node1, then waits (10 s at
# most) until every node's policy-l3l4 has recomputed with it: its Status names the
# policy (FILE's metadata.name).
labtest_apply_policy() {
    local lab=$1 file=$2 name node deadline
    lab_cmd ctl "$lab" node1 -- apply -f "$file" >/dev/null || labtest_fail "membranectl apply -f $file failed"
    name=$(awk '$1 == "name:" { gsub(/"/, "", $2); print $2; exit }' "$file")
    for node in $(labtest_json "$lab" "' '.join(n['name'] for n in s['nodes'])"); do
        deadline=$((SECONDS + 10))
        until lab_cmd ctl "$lab" "$node" -- -o json module call policy-l3l4 Status | grep -Eq "[/ ]$name\""; do
            ((SECONDS < deadline)) || labtest_fail "$node's policy-l3l4 never took policy $name"
            sleep 0.1
        done
    done
}
