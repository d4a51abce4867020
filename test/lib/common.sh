# shellcheck shell=bash
# Small helpers shared by every test library (harness.sh, lab/lab_test_lib.sh).

# grep_quiet ARGS... : `grep -q` for the right side of a pipe. grep -q exits at
# the first match; the writer then dies of SIGPIPE and, under pipefail, the
# whole pipe "fails" although it matched. This reads all of its input.
grep_quiet() { grep "$@" >/dev/null; }

# pinned_stat PIN_DIR INDEX : the datapath counter INDEX (enum membrane_stat,
# sdk/bpf/membrane/contract.h) of the node whose pins are in PIN_DIR, summed
# over CPUs from its pinned per-CPU stats map.
pinned_stat() {
    bpftool -j map lookup pinned "$1/mbr_stats_v1" key "$2" 0 0 0 | python3 -c '
import json, sys
def number(v):
    return v if isinstance(v, int) else int.from_bytes(bytes(int(b, 16) for b in v), "little")
print(sum(number(v["value"]) for v in json.load(sys.stdin)["values"]))'
}
