# shellcheck shell=bash
# Small helpers shared by every test library (harness.sh, lab/lab_test_lib.sh).

# grep_quiet ARGS... : `grep -q` for the right side of a pipe. grep -q exits at
# the first match; the writer then dies of SIGPIPE and, under pipefail, the
# whole pipe "fails" although it matched. This reads all of its input.
grep_quiet() { grep "$@" >/dev/null; }

# --- the datapath's counters and the kernel's ---------------------------------------------------
# Membrane's own: enum membrane_stat (sdk/bpf/membrane/contract.h).
MBR_STAT_ENTRY_FROM_OVERLAY=3
MBR_STAT_DELIVERED_LOCAL=5
MBR_STAT_TO_OVERLAY=6
MBR_STAT_FIB_FORWARDED=7
MBR_STAT_DROP_SPOOFED=9
MBR_STAT_TTL_EXCEEDED=12

# membrane_stat PIN_FOLDER INDEX : the per-CPU counter MBR_STAT_<INDEX> summed over the CPUs,
# read from the node's pinned stats map (PIN_FOLDER is <bpffs>/membrane/<node>).
membrane_stat() {
    bpftool -j map lookup pinned "$1/mbr_stats_v1" key "$2" 0 0 0 | python3 -c '
import json, sys
def number(v):
    return v if isinstance(v, int) else int.from_bytes(bytes(int(b, 16) for b in v), "little")
print(sum(number(v["value"]) for v in json.load(sys.stdin)["values"]))'
}

# kernel_forwarded NETNS : datagrams the namespace's IP stack has forwarded (Ip ForwDatagrams).
# Membrane redirects pod traffic in BPF: a node's count grows only when the stack carried a
# packet the datapath should have (a stage that fell through).
kernel_forwarded() {
    ip netns exec "$1" cat /proc/net/snmp | awk '
        $1 == "Ip:" && !header { for (i = 2; i <= NF; i++) col[$i] = i; header = 1; next }
        $1 == "Ip:" && header { print $col["ForwDatagrams"]; exit }'
}
