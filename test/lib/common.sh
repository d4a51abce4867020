# shellcheck shell=bash disable=SC2034
# Small helpers shared by every test library (harness.sh, lab/lab_test_lib.sh).

# python3 straight from its own folder: through a version manager's shim
# (pyenv's is a bash script) every call costs 0.3 s more, and the tests make
# hundreds of calls (membrane-lab, JSON and counter reading).
if membrane_python=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null) && [[ -x "$membrane_python" ]]; then
    PATH="$(dirname "$membrane_python"):$PATH"
fi
unset membrane_python

# grep_quiet ARGS... : `grep -q` for the right side of a pipe. grep -q exits at
# the first match; the writer then dies of SIGPIPE and, under pipefail, the
# whole pipe "fails" although it matched. This reads all of its input.
grep_quiet() { grep "$@" >/dev/null; }

# --- the datapath's counters and the kernel's ---------------------------------------------------
# Membrane's own: enum membrane_stat (sdk/bpf/membrane/contract.h). The one copy of the numbers
# for the shell tests (used by the scripts that source this file: SC2034 is off file-wide).
MBR_STAT_ENTRY_FROM_NETDEV=0
MBR_STAT_PIPELINE_DONE=1
MBR_STAT_ENTRY_FROM_ENDPOINT=2
MBR_STAT_ENTRY_FROM_OVERLAY=3
MBR_STAT_DELIVERED_LOCAL=5
MBR_STAT_TO_OVERLAY=6
MBR_STAT_FIB_FORWARDED=7
MBR_STAT_DROP_SPOOFED=9
MBR_STAT_DROP_STAGE_MISSING=11
MBR_STAT_TTL_EXCEEDED=12
MBR_STAT_OVERSIZE_TO_STACK=13
MBR_STAT_DROP_OVERSIZE=14
MBR_STAT_DROP_POLICY=15

# pinned_sum PIN [INDEX] : a pinned per-CPU u64 array's entry INDEX (default 0) summed over the
# CPUs, read straight from the pin, so it also works while the agent is down. bpftool prints
# the value as a number with BTF, as little-endian hex bytes without.
pinned_sum() {
    local pin=$1 index=${2:-0} key
    key=$(python3 -c 'import sys; print(" ".join(str(b) for b in int(sys.argv[1]).to_bytes(4, "little")))' "$index")
    # shellcheck disable=SC2086  # the key is four separate bytes
    bpftool -j map lookup pinned "$pin" key $key | python3 -c '
import json, sys
def number(v):
    return v if isinstance(v, int) else int.from_bytes(bytes(int(b, 16) for b in v), "little")
print(sum(number(v["value"]) for v in json.load(sys.stdin)["values"]))'
}

# membrane_stat PIN_FOLDER INDEX : the counter MBR_STAT_<...> number INDEX of the node whose
# pins are in PIN_FOLDER (<bpffs>/membrane/<node>).
membrane_stat() { pinned_sum "$1/mbr_stats_v1" "$2"; }

# kernel_forwarded NETNS : datagrams the namespace's IP stack has forwarded (Ip ForwDatagrams).
# Membrane redirects pod traffic in BPF: a node's count grows only when the stack carried a
# packet the datapath should have (a stage that fell through).
kernel_forwarded() {
    ip netns exec "$1" cat /proc/net/snmp | awk '
        $1 == "Ip:" && !header { for (i = 2; i <= NF; i++) col[$i] = i; header = 1; next }
        $1 == "Ip:" && header { print $col["ForwDatagrams"]; exit }'
}

# ipcache_entry PIN_FOLDER IPV4 : "identity tunnel_endpoint" of the node's /32 ipcache entry for
# IPV4 (pins in PIN_FOLDER, <bpffs>/membrane/<node>), or nothing without one. Read from the pin.
ipcache_entry() {
    bpftool -j map dump pinned "$1/mbr_ipcache_v1" | python3 -c '
import ipaddress, json, sys
want = ipaddress.IPv4Address(sys.argv[1])
def raw(field):
    return bytes(int(b, 16) for b in field)
for e in json.load(sys.stdin):
    key, value = e["key"], e["value"]
    if isinstance(key, list):
        k, v = raw(key), raw(value)
        plen, ip = int.from_bytes(k[:4], "little"), ipaddress.IPv4Address(k[4:8])
        identity, tunnel = int.from_bytes(v[:4], "little"), ipaddress.IPv4Address(v[4:8])
    else:
        plen, ip = key["prefixlen"], ipaddress.IPv4Address(key["ip4"].to_bytes(4, "little"))
        identity, tunnel = value["identity"], ipaddress.IPv4Address(value["tunnel_endpoint"].to_bytes(4, "little"))
    if plen == 32 and ip == want:
        print(identity, tunnel)' "$2"
}
