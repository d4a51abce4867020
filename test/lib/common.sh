# shellcheck shell=bash disable=SC2034
# Small helpers shared by every test library (harness.sh, lab/lab_test_lib.sh).

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
