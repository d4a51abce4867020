#!/usr/bin/env bash
# The cluster store's costs, measured on a two-node membrane-lab with its
# etcd (TLS), by bench/cluster_store_probe.py:
#   - a pod's CNI ADD on node1 until its /32 is in node2's ipcache, and a DEL
#     until it is gone (p50, p99 over N pods; the CNI call's own time beside);
#   - etcd writes per pod ADD and DEL (the store's revision: one a write);
#   - a CNI ADD whose labels are new to the cluster (an identity allocated in
#     etcd) against one whose labels every node knows;
#   - node2's membraned RSS before and with 1,000 remote endpoints.
# Nothing here is compared with a baseline: without a store there is nothing
# to propagate. Bounded (about 2 minutes with the default 200 pods); the lab
# is always taken down.
#
# Usage (as root): bench/cluster_store_bench.sh [--pods N]
# Env: MEMBRANE_BUILD_DIR (default ./build), MEMBRANE_SOURCE_DIR.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export MEMBRANE_SOURCE_DIR=${MEMBRANE_SOURCE_DIR:-$(dirname "$here")}
export MEMBRANE_BUILD_DIR=${MEMBRANE_BUILD_DIR:-$MEMBRANE_SOURCE_DIR/build}
pods=200
while (($#)); do
    case $1 in
        --pods) pods=$2; shift 2 ;;
        -h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "cluster_store_bench: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
[[ "$pods" =~ ^[0-9]+$ ]] && ((pods >= 1 && pods <= 2000)) || { echo "cluster_store_bench: --pods is 1..2000" >&2; exit 2; }
command -v curl >/dev/null || { echo "cluster_store_bench: needs curl (etcd's JSON gateway)" >&2; exit 2; }
source "$MEMBRANE_SOURCE_DIR/lab/lab_test_lib.sh"
labtest_init
lab=$(labtest_name kvb)
printf 'name = "%s"\nrouting = "vxlan"\n\n[[nodes]]\nname = "node1"\n\n[[nodes]]\nname = "node2"\n' "$lab" >"$LABTEST_TMP/$lab.toml"
labtest_up "$LABTEST_TMP/$lab.toml" >/dev/null
python3 "$MEMBRANE_SOURCE_DIR/bench/cluster_store_probe.py" "$lab" node1 node2 "$pods" >"$LABTEST_TMP/probe.json"
python3 - "$LABTEST_TMP/probe.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
def row(name, s, note=""):
    print(f"  {name:<44} p50 {s['p50_ms']:>8.2f} ms   p99 {s['p99_ms']:>8.2f} ms  {note}")
print(f"cluster store, two nodes, {r['pods']} pods (lab etcd, TLS):")
row("CNI ADD on node1 -> /32 in node2's ipcache", r["add_to_remote_ipcache"], "(from the start of the ADD)")
row("  the CNI ADD itself", r["cni_add"])
row("CNI DEL on node1 -> gone from node2's ipcache", r["del_to_remote_ipcache_gone"])
row("  the CNI DEL itself", r["cni_del"])
row("CNI ADD, labels new to the cluster", r["cni_add_new_labels"], "(an identity allocated in etcd)")
row("CNI ADD, labels the cluster knows", r["cni_add_known_labels"])
print(f"  etcd writes per pod: ADD {r['etcd_writes_per_add']}, DEL {r['etcd_writes_per_del']}")
print(f"  node2 membraned RSS: {r['rss_kib_before'] / 1024:.1f} MiB, with 1,000 remote endpoints "
      f"{r['rss_kib_with_1000_remote'] / 1024:.1f} MiB")
PY
