#!/usr/bin/env bash
# The README's main job: installs what is missing, builds, then runs
# membrane-lab: a two-node cluster on this machine (each node a network
# namespace with its own membraned, each pod wired by the real membrane-cni),
# once with the VXLAN overlay and once with direct routing. The nodes share
# the lab's etcd (TLS), where they agree on identities and learn each other
# and each other's pods. For each it shows `membrane-lab status`, pings and a
# short TCP exchange between pods across nodes, a network policy dropping
# what it denies, a service (configs/services/web.yaml: ClusterIP
# 10.96.0.10 -> HTTP servers in web1 on node1 and web2 on node2) curled from
# db1 on node1 until both backends have answered, the identities and etcd's
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

membrane_lab=(python3 lab/membrane_lab.py --build-dir build)
lab() { "${membrane_lab[@]}" "$@"; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# addresses LAB POD... : the pods' addresses, in that order, on one line (one status call).
addresses() {
  lab status "$1" -o json | python3 -c "import json,sys; a = {p['name']: p['address'] for p in json.load(sys.stdin)['pods']}; print(*(a[n] for n in sys.argv[1:]))" "${@:2}"
}
# web_endpoints WEB1 WEB2 : the EndpointSlice of configs/services/web.yaml, as Kubernetes'
# control plane would write it from the pods' addresses.
web_endpoints() {
  cat <<EOF
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  labels:
    kubernetes.io/service-name: web
addressType: IPv4
ports:
- {name: http, port: 8080, protocol: TCP}
endpoints:
- {addresses: ["$1"], conditions: {ready: true}, nodeName: node1}
- {addresses: ["$2"], conditions: {ready: true}, nodeName: node2}
EOF
}

labs=()
www=$(mktemp -d)  # the web servers' pages
trap 'for l in "${labs[@]}"; do lab down "$l" >/dev/null 2>&1 || true; done; rm -rf "$www"' EXIT

for topology in lab/examples/two-nodes-vxlan.toml lab/examples/two-nodes-direct.toml; do
  name=$(sed -n '1,/^\[/s/^name = "\(.*\)"/\1/p' "$topology")
  labs+=("$name")
  say "membrane-lab up $topology"
  lab down "$name" >/dev/null  # remains of an interrupted earlier run, if any
  lab up "$topology"
  lab status "$name"

  pods=$(addresses "$name" web1 web2 db1)
  read -r web1 web2 db1 <<<"$pods"
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

  say "service web (configs/services/web.yaml): 10.96.0.10:80 -> web1 (node1) and web2 (node2), port 8080"
  servers=()
  for pod in web1 web2; do
    mkdir -p "$www/$pod" && echo "hello from $pod" >"$www/$pod/index.html"
    # Not through the function lab: so $! is the server's own process, which the kill below stops.
    "${membrane_lab[@]}" exec "$name" "$pod" -- timeout 60 \
      python3 -u -m http.server 8080 --bind 0.0.0.0 --directory "$www/$pod" </dev/null >"$www/$pod.log" 2>&1 &
    servers+=($!)
  done
  # The Service as a user writes it; the EndpointSlice as Kubernetes would write it from the pods.
  { cat configs/services/web.yaml; echo ---; web_endpoints "$web1" "$web2"; } | lab ctl "$name" node1 -- apply -f -
  deadline=$((SECONDS + 10))  # until node1's agent has written both backends into its BPF maps
  until maps=$(lab ctl "$name" node1 -- lb list) && [[ $maps == *"$web1:8080"* && $maps == *"$web2:8080"* ]]; do
    ((SECONDS < deadline)) || { echo "demo: node1's BPF maps never held web's two backends: $maps" >&2; exit 1; }
    sleep 0.1
  done
  lab ctl "$name" node1 -- service list
  echo "$maps"
  for pod in web1 web2; do  # http.server says "Serving HTTP on ..." once it listens
    for _ in $(seq 50); do grep -qs "^Serving HTTP" "$www/$pod.log" && break; sleep 0.1; done
  done
  say "db1 (node1): curl http://10.96.0.10/ 6 times, each connect() sent to web1 or web2 by node1's socket programs"
  for round in 1 2 3; do  # 6 answers from one backend (1 in 32) get another round
    lab exec "$name" db1 -- sh -c \
      'for i in 1 2 3 4 5 6; do curl -fsS --noproxy "*" --max-time 3 http://10.96.0.10/ || exit; done' | tee "$www/answers"
    grep -q web1 "$www/answers" && grep -q web2 "$www/answers" && break
    ((round < 3)) || { echo "demo: 18 requests, not both backends" >&2; exit 1; }
  done
  lab ctl "$name" node1 -- delete service web
  lab ctl "$name" node1 -- delete endpointslice web-1
  kill "${servers[@]}" 2>/dev/null || true
  wait "${servers[@]}" 2>/dev/null || true

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
