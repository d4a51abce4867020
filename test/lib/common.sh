# shellcheck shell=bash
# Small helpers shared by every test library (harness.sh, lab/lab_test_lib.sh).

# grep_quiet ARGS... : `grep -q` for the right side of a pipe. grep -q exits at
# the first match; the writer then dies of SIGPIPE and, under pipefail, the
# whole pipe "fails" although it matched. This reads all of its input.
grep_quiet() { grep "$@" >/dev/null; }
