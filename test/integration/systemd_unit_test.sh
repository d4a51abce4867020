#!/usr/bin/env bash
# The generated systemd unit passes `systemd-analyze verify` with no
# complaint about itself, and the check is able to fail: a copy with a
# misspelled directive and a copy whose ExecStart is missing are refused.
#
# systemd-analyze (252) checks that ExecStart's binary exists, so the unit is
# verified from a temp copy whose ExecStart is the built daemon.
set -euo pipefail

: "${MEMBRANE_BUILD_DIR:?MEMBRANE_BUILD_DIR must name the build folder}"
unit="$MEMBRANE_BUILD_DIR/systemd/membraned.service"
daemon="$MEMBRANE_BUILD_DIR/kernel/membraned"

if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "SKIP: systemd-analyze is not installed"
    exit 77
fi
[[ -f $unit ]] || { echo "FAIL: no generated unit at $unit"; exit 1; }
[[ -x $daemon ]] || { echo "FAIL: no built daemon at $daemon"; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/membrane-unit-test.XXXXXX")
trap 'rm -rf "$work"' EXIT

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# verify <dir>: 0 when systemd-analyze accepts <dir>/membraned.service and
# says nothing about it (unknown keys and bad values are only warnings).
verify() {
    local file="$1/membraned.service" output rc=0
    output=$(systemd-analyze verify "$file" 2>&1) || rc=$?
    if ((rc != 0)) || grep -F -- "$file" <<<"$output" >/dev/null; then
        printf '%s\n' "$output" | sed 's/^/    /'
        return 1
    fi
}

# copy_unit <name>: a copy of the unit in its own folder, ExecStart -> the built daemon.
copy_unit() {
    mkdir -p "$work/$1"
    sed "s#^ExecStart=[^ ]*/membraned #ExecStart=$daemon #" "$unit" >"$work/$1/membraned.service"
    grep -q "^ExecStart=$daemon " "$work/$1/membraned.service" || fail "$1: ExecStart was not substituted"
}

echo "== the generated unit says what the agent needs"
grep -Eq '^ExecStart=/[^ ]*/membraned --config /[^ ]*/membrane/membrane\.toml$' "$unit" ||
    fail "ExecStart is not '<sbindir>/membraned --config <sysconfdir>/membrane/membrane.toml'"
for line in 'Type=notify' 'ExecReload=/bin/kill -HUP $MAINPID' 'Restart=on-failure' 'WatchdogSec=30s' \
    'KillMode=mixed' 'StateDirectory=membrane' 'RuntimeDirectory=membrane' 'RuntimeDirectoryPreserve=yes' \
    'ProtectSystem=strict' 'ReadWritePaths=/sys/fs/bpf' 'ProtectHome=yes' 'NoNewPrivileges=yes' \
    'PrivateTmp=yes' 'RestrictNamespaces=net' 'MemoryDenyWriteExecute=yes' 'SystemCallArchitectures=native' \
    'RestrictAddressFamilies=AF_UNIX AF_NETLINK AF_INET AF_INET6' \
    'CapabilityBoundingSet=CAP_BPF CAP_PERFMON CAP_NET_ADMIN CAP_NET_RAW CAP_SYS_ADMIN CAP_SYS_RESOURCE'; do
    grep -Fxq -- "$line" "$unit" || fail "missing line: $line"
done

echo "== systemd-analyze verify accepts it"
copy_unit good
verify "$work/good" || fail "systemd-analyze verify refused the unit"

echo "== and refuses a misspelled directive"
copy_unit misspelled
sed -i 's/^ProtectSystem=/ProtectSytem=/' "$work/misspelled/membraned.service"
if verify "$work/misspelled" >/dev/null; then fail "a misspelled directive passed"; fi

echo "== and refuses an ExecStart that does not exist"
copy_unit missing
sed -i "s|^ExecStart=$daemon|ExecStart=$work/missing/no-such-membraned|" "$work/missing/membraned.service"
if verify "$work/missing" >/dev/null; then fail "a missing ExecStart binary passed"; fi

if ((failures > 0)); then
    echo "FAILED: $failures check(s)"
    exit 1
fi
echo "PASS"
