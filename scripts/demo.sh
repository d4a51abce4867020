#!/usr/bin/env bash
# The README's main job: installs what is missing, builds, then runs
# membrane-lab: a two-node cluster on this machine (each node a network
# namespace with its own membraned, each pod wired by the real membrane-cni),
# once with the VXLAN overlay and once with direct routing. The nodes share
# the lab's etcd (TLS), where they agree on identities and learn each other
# and each other's pods. For each it shows `membrane-lab status`, pings and a
# short TCP exchange between pods across nodes, the identities and etcd's
# keys, then takes the lab down. Every address lives inside namespaces the
# lab made. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $EUID -ne 0 ]]; then
  echo "scripts/demo.sh: run as root (it loads BPF and creates network namespaces)" >&2
  exit 2
fi

scripts/install-deps.sh
scripts/build.sh

lab() { python3 lab/membrane_lab.py --build-dir build "$@"; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
addr() { lab status "$1" -o json | python3 -c "import json,sys; print(next(p['address'] for p in json.load(sys.stdin)['pods'] if p['name'] == '$2'))"; }

labs=()
trap 'for l in "${labs[@]}"; do lab down "$l" >/dev/null 2>&1 || true; done' EXIT

for topology in lab/examples/two-nodes-vxlan.toml lab/examples/two-nodes-direct.toml; do
  name=$(sed -n '1,/^\[/s/^name = "\(.*\)"/\1/p' "$topology")
  labs+=("$name")
  say "membrane-lab up $topology"
  lab down "$name" >/dev/null  # remains of an interrupted earlier run, if any
  lab up "$topology"
  lab status "$name"

  web2=$(addr "$name" web2) db1=$(addr "$name" db1)
  say "web1 (node1) -> web2 (node2) $web2: ping"
  lab exec "$name" web1 -- ping -c 3 -i 0.2 -W 1 "$web2"
  say "db2 (node2) -> db1 (node1) $db1: ping"
  lab exec "$name" db2 -- ping -c 3 -i 0.2 -W 1 "$db1"

  say "TCP across nodes: web1 (node1) asks web2 (node2)"
  lab exec "$name" web2 -- timeout 10 socat TCP4-LISTEN:8080,reuseaddr SYSTEM:'read l; echo "web2 got: $l"' &
  for _ in $(seq 30); do lab exec "$name" web2 -- ss -Hltn 'sport = :8080' | grep -q LISTEN && break; sleep 0.1; done
  echo "hello from web1" | lab exec "$name" web1 -- timeout 5 socat -t 3 - TCP4:"$web2":8080
  wait

  say "network policy: db accepts web only (configs/policies/db-from-web.yaml)"
  lab ctl "$name" node1 -- apply -f configs/policies/db-from-web.yaml
  for _ in $(seq 50); do lab exec "$name" db2 -- ping -c 1 -W 0.2 -q "$db1" >/dev/null 2>&1 || break; done
  say "web2 (node2) -> db1 (node1): allowed"
  lab exec "$name" web2 -- ping -c 3 -i 0.2 -W 1 "$db1"
  say "db2 (node2) -> db1 (node1): denied, dropped by node1's ingress policy stage"
  lab exec "$name" db2 -- ping -c 3 -i 0.2 -W 1 "$db1" || echo "(no answer: dropped, as the policy says)"
  lab ctl "$name" node1 -- stats | grep -E "REASON|drop_policy"
  lab ctl "$name" node1 -- delete cnp db-from-web

  say "node1's endpoints, as its membraned sees them"
  lab ctl "$name" node1 -- endpoint list
  say "node2's identities: the same numbers, agreed in the lab's etcd"
  lab ctl "$name" node2 -- identity list
  say "the cluster store: what etcd holds for the lab"
  lab etcd ctl "$name" -- get --prefix --keys-only "membrane/v1/$name/" | grep -v '^$'

  say "membrane-lab down $name"
  lab down "$name"
done
say "done: both labs are gone (ip netns list shows none of theirs)"
