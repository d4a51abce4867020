#!/usr/bin/env bash
# membrane-cni driven exactly as a container runtime drives it: a clean
# environment with the CNI_* variables, the network config on stdin, run in
# the node's network namespace (where membraned runs, on a private bus).
#
#   two pods: ADD (result JSON, interface, /32 address, IPv6 disabled,
#   routes, MTU, the node's route to the pod), one identity for both (they
#   differ only in pod name), ping pod -> pod and pod -> node address, CHECK
#   (and a CHECK that must fail), VERSION; a lost and a corrupt lease record
#   (restart, ADD gets a free address); every error case and its code;
#   DEL, DEL again, DEL of a vanished netns; then 200 ADD/DEL cycles leave no
#   endpoint, no lease, no mbr* link, no endpoints-map entry, no ipcache /32,
#   no mbr_from_endpoint tc filter and no device in the BPF ownership record
#   behind (each seen at 2 after two ADDs, so the checks can see), with the
#   ADD and DEL latency (median, p99).
set -euo pipefail
source "$MEMBRANE_SOURCE_DIR/test/lib/harness.sh"
harness_init

CYCLES=${MEMBRANE_CNI_TEST_CYCLES:-200}
CNI_BIN="$MEMBRANE_BUILD_DIR/cni/membrane-cni"
[[ -x "$CNI_BIN" ]] || harness_fail "no membrane-cni at $CNI_BIN (is the build complete?)"
command -v bpftool >/dev/null || harness_skip "bpftool is not installed"

NODE_NAME=node-cni
POD_CIDR=10.10.1.0/24
GATEWAY=10.10.1.1
NODE_IP=192.168.77.1

node=$(harness_netns node)
underlay=$(harness_netns underlay)
harness_veth "$node" eth0 "$underlay" eth0 "$NODE_IP/24" 192.168.77.2/24

harness_dbus
mkdir -m 0755 "$HARNESS_TMP/modules"
config="$HARNESS_TMP/membrane.toml"
harness_write_config "$config" "$NODE_NAME" "$HARNESS_TMP/modules" '["eth0"]' '[]' "$(cat <<EOF
[[nodes]]
name = "$NODE_NAME"
ip = "$NODE_IP"
pod_cidr = "$POD_CIDR"
EOF
)"
PIN_DIR="$(harness_bpffs bpffs)/membrane/$NODE_NAME"
harness_daemon "$node" "$config"

NET_CONF=$(cat <<EOF
{"cniVersion": "1.0.0", "name": "membrane-test", "type": "membrane",
 "dbus_address": "$MEMBRANE_DBUS_ADDRESS", "labels": {"app": "cni-test"}}
EOF
)

# cni COMMAND CONTAINER_ID NETNS_PATH IFNAME STDIN [CNI_ARGS]: runs the plugin as
# a runtime does (only the CNI_* variables and PATH, in the node's netns).
# Prints its stdout; returns its exit status.
cni() {
  local command=$1 id=$2 netns=$3 ifname=$4 stdin=$5 args=${6:-IgnoreUnknown=1}
  ip netns exec "$node" env -i PATH="$PATH" CNI_COMMAND="$command" CNI_CONTAINERID="$id" CNI_NETNS="$netns" \
    CNI_IFNAME="$ifname" CNI_ARGS="$args" CNI_PATH="$MEMBRANE_BUILD_DIR/cni:/usr/lib/cni" "$CNI_BIN" <<<"$stdin"
}

# expect_code CODE WHAT CMD...: CMD must fail with the CNI error CODE on stdout.
expect_code() {
  local want=$1 what=$2 out rc=0
  shift 2
  out=$("$@") || rc=$?
  ((rc != 0)) || harness_fail "$what: succeeded, expected error code $want; output: $out"
  local got
  got=$(python3 -c 'import json,sys; e=json.loads(sys.argv[1]); assert e["msg"] and "cniVersion" in e; print(e["code"])' "$out") ||
    harness_fail "$what: output is not the spec's error JSON: $out"
  [[ "$got" == "$want" ]] || harness_fail "$what: error code $got, expected $want: $out"
  echo "ok: $what -> code $got ($(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["msg"])' "$out"))"
}

host_veth() { echo "mbr$(printf '%s/%s' "$1" "$2" | sha256sum | cut -c1-11)"; }

list_endpoints() {
  harness_busctl --json=short call org.membrane.Agent1 /org/membrane/Agent1 org.membrane.Agent1 ListEndpoints
}
endpoint_count() { list_endpoints | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"][0]))'; }
endpoint_map_count() {
  bpftool -j map dump pinned "$PIN_DIR/mbr_endpoints_v1" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'
}
STATE_DIR="$HARNESS_TMP/node-$NODE_NAME/state"

# traces: what pods leave in the datapath and the agent's records, as
# "endpoints=N endpoints_map=N ipcache_pod_32=N tc_filters=N ownership=N leases=N":
# the agent's endpoints, mbr_endpoints_v1 entries, ipcache /32s inside the pod
# CIDR, tc attachments of mbr_from_endpoint in the node's netns, devices of the
# BPF ownership record carrying it, and IPAM leases.
traces() {
  local ipcache tc
  ipcache=$(bpftool -j map dump pinned "$PIN_DIR/mbr_ipcache_v1")
  tc=$(ip netns exec "$node" bpftool -j net show)
  python3 - "$ipcache" "$tc" "$STATE_DIR" "$POD_CIDR" "$(endpoint_count)" "$(endpoint_map_count)" <<'PY'
import ipaddress, json, sys
from pathlib import Path
ipcache, tc, state, cidr = json.loads(sys.argv[1]), json.loads(sys.argv[2]), Path(sys.argv[3]), ipaddress.ip_network(sys.argv[4])
def key_of(entry):  # raw bytes without BTF, formatted fields with it
    key = entry["key"]
    if isinstance(key, list):
        raw = bytes(int(b, 16) for b in key)
        return int.from_bytes(raw[:4], "little"), ipaddress.IPv4Address(raw[4:8])
    return key["prefixlen"], ipaddress.IPv4Address(key["ip4"].to_bytes(4, "little"))
pod_32 = sum(1 for e in ipcache for plen, ip in [key_of(e)] if plen == 32 and ip in cidr)
filters = sum(1 for dev in tc for f in dev.get("tc", []) if f.get("name", "").startswith("mbr_from_endp"))
ownership = json.loads((state / "bpf" / "bpf-ownership.json").read_text())
owned = sum(1 for d in ownership.get("devices", []) if isinstance(d, dict) and d.get("program") == "mbr_from_endpoint")
ipam = state / "ipam" / "host-scope.json"
leases = len(json.loads(ipam.read_text()).get("allocations", [])) if ipam.exists() else 0
print(f"endpoints={sys.argv[5]} endpoints_map={sys.argv[6]} ipcache_pod_32={pod_32} tc_filters={filters} ownership={owned} leases={leases}")
PY
}
# expect_traces N WHEN: every count of `traces` is N.
expect_traces() {
  local want=$1 when=$2 got
  got=$(traces) || harness_fail "$when: cannot read the traces"
  [[ "$got" == "endpoints=$want endpoints_map=$want ipcache_pod_32=$want tc_filters=$want ownership=$want leases=$want" ]] ||
    harness_fail "$when: expected $want of each: $got"
  echo "ok: $when: $got"
}

# --- ADD two pods -------------------------------------------------------------------
declare -A POD_NS POD_IP POD_RESULT
for pod in pod1 pod2; do
  ns=$(harness_netns "$pod")
  POD_NS[$pod]=$ns
  id="$HARNESS_RUN_ID-$pod"
  result=$(cni ADD "$id" "/run/netns/$ns" eth0 "$NET_CONF" "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=$pod") ||
    harness_fail "ADD $pod failed: $result"
  POD_RESULT[$pod]=$result
  want_host=$(host_veth "$id" eth0)
  POD_IP[$pod]=$(python3 - "$result" "$want_host" "/run/netns/$ns" "$GATEWAY" <<'PY'
import ipaddress, json, sys
r, host, sandbox, gw = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
assert r["cniVersion"] == "1.0.0", r
assert [i["name"] for i in r["interfaces"]] == [host, "eth0"], r["interfaces"]
assert "sandbox" not in r["interfaces"][0] and r["interfaces"][1]["sandbox"] == sandbox, r["interfaces"]
assert all(len(i["mac"]) == 17 for i in r["interfaces"]), r["interfaces"]
(ip,) = r["ips"]
assert ip["address"].endswith("/32") and ip["gateway"] == gw and ip["interface"] == 1 and "version" not in ip, ip
assert ipaddress.ip_address(ip["address"][:-3]) in ipaddress.ip_network("10.10.1.0/24"), ip
assert ip["address"][:-3] != gw
assert {"dst": "0.0.0.0/0", "gw": gw} in r["routes"], r["routes"]
assert r["dns"] == {}, r
print(ip["address"][:-3])
PY
) || harness_fail "ADD $pod: unexpected result: $result"
  ip=${POD_IP[$pod]}
  # The pod's side, as `ip -n` shows it.
  ip -n "$ns" -4 -o addr show dev eth0 | grep_quiet "inet $ip/32 " || harness_fail "$pod: eth0 lacks $ip/32: $(ip -n "$ns" addr)"
  ip -n "$ns" link show eth0 | grep_quiet "state UP\|,UP" || harness_fail "$pod: eth0 is not up"
  routes=$(ip -n "$ns" -4 route show)
  grep -q "^default via $GATEWAY dev eth0" <<<"$routes" || harness_fail "$pod: no default route via $GATEWAY: $routes"
  grep -q "^$GATEWAY dev eth0 .*scope link" <<<"$routes" || harness_fail "$pod: no link route to $GATEWAY: $routes"
  # IPv6 off on the pod's interface (the datapath carries IPv4 only): no address, not even link-local.
  if [[ -d /proc/sys/net/ipv6 ]]; then
    v6=$(ip netns exec "$ns" sysctl -n net.ipv6.conf.eth0.disable_ipv6)
    [[ "$v6" == 1 ]] || harness_fail "$pod: net.ipv6.conf.eth0.disable_ipv6 is '$v6', expected 1"
    [[ -z "$(ip -n "$ns" -6 -o addr show dev eth0)" ]] || harness_fail "$pod: eth0 has IPv6: $(ip -n "$ns" -6 addr show dev eth0)"
  fi
  pod_mtu=$(ip -n "$ns" -o link show eth0 | sed -n 's/.* mtu \([0-9]*\) .*/\1/p')
  host_mtu=$(ip -n "$node" -o link show "$want_host" | sed -n 's/.* mtu \([0-9]*\) .*/\1/p')
  [[ -n "$pod_mtu" && "$pod_mtu" == "$host_mtu" ]] || harness_fail "$pod: MTU $pod_mtu, host side $host_mtu"
  # The node's side.
  ip -n "$node" -4 route show | grep_quiet "^$ip dev $want_host .*scope link" ||
    harness_fail "$pod: the node has no route $ip dev $want_host: $(ip -n "$node" route)"
  echo "ok: ADD $pod -> $ip on eth0 (host $want_host, mtu $pod_mtu)"
done

expect_traces 2 "after two ADDs"
labels=$(list_endpoints)
grep -q 'k8s:io.kubernetes.pod.name' <<<"$labels" && grep -q '"app"' <<<"$labels" ||
  harness_fail "the endpoints lack the CNI_ARGS or config labels: $labels"
# pod1 and pod2 differ only in their pod name ([identity] exclude_labels):
# one identity, with both endpoints on it and no pod name in its labels.
harness_ctl -o json endpoint list >"$HARNESS_TMP/endpoints.json"
harness_ctl -o json identity list >"$HARNESS_TMP/identities.json"
python3 - "$HARNESS_TMP/endpoints.json" "$HARNESS_TMP/identities.json" <<'PY' || harness_fail "pod1 and pod2 do not share an identity"
import json, sys
endpoints, identities = (json.load(open(p)) for p in sys.argv[1:])
ids = {e["labels"]["k8s:io.kubernetes.pod.name"]: e["identity"] for e in endpoints}
assert ids["pod1"] == ids["pod2"], f"identities by pod: {ids}"
(shared,) = [i for i in identities if i["id"] == ids["pod1"]]
assert shared["endpoints"] == 2 and "k8s:io.kubernetes.pod.name" not in shared["labels"], shared
assert shared["labels"]["k8s:io.kubernetes.pod.namespace"] == "shop", shared
print(f"ok: pod1 and pod2 share identity {shared['id']} ({shared['labels']})")
PY

# --- traffic ------------------------------------------------------------------------------
ip netns exec "${POD_NS[pod1]}" ping -c 3 -i 0.2 -W 2 "${POD_IP[pod2]}" >"$HARNESS_TMP/ping-pod.txt" 2>&1 ||
  harness_fail "pod1 -> pod2 (${POD_IP[pod2]}) failed: $(cat "$HARNESS_TMP/ping-pod.txt")"
ip netns exec "${POD_NS[pod2]}" ping -c 3 -i 0.2 -W 2 "${POD_IP[pod1]}" >/dev/null 2>&1 ||
  harness_fail "pod2 -> pod1 (${POD_IP[pod1]}) failed"
ip netns exec "${POD_NS[pod1]}" ping -c 3 -i 0.2 -W 2 "$NODE_IP" >"$HARNESS_TMP/ping-node.txt" 2>&1 ||
  harness_fail "pod1 -> node address $NODE_IP (via the gateway) failed: $(cat "$HARNESS_TMP/ping-node.txt")"
echo "ok: ping pod1 <-> pod2, pod1 -> node $NODE_IP"

# --- a lost or corrupt lease record: rebuilt from the endpoints at start --------------------
# Without that, the next ADD gets the lowest address again, which pod1 holds,
# and fails on every retry (lost), or the agent does not start (corrupt).
lease_file="$HARNESS_TMP/node-$NODE_NAME/state/ipam/host-scope.json"
[[ -f "$lease_file" ]] || harness_fail "no lease record at $lease_file"
for damage in deleted corrupted; do
  harness_stop_daemon || true
  if [[ $damage == deleted ]]; then rm -f -- "$lease_file"; else printf '{"format": 1, "allocations": [' >"$lease_file"; fi
  harness_daemon "$node" "$config"
  ns=$(harness_netns "lease-$damage")
  id="$HARNESS_RUN_ID-lease-$damage"
  result=$(cni ADD "$id" "/run/netns/$ns" eth0 "$NET_CONF") || harness_fail "ADD after the lease record was $damage failed: $result"
  ip=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["ips"][0]["address"][:-3])' "$result")
  [[ "$ip" != "${POD_IP[pod1]}" && "$ip" != "${POD_IP[pod2]}" ]] ||
    harness_fail "ADD after the lease record was $damage got $ip, which a restored pod holds"
  out=$(cni DEL "$id" "/run/netns/$ns" eth0 "$NET_CONF") || harness_fail "DEL $id failed: $out"
  grep -q "lease of ${POD_IP[pod1]} to $HARNESS_RUN_ID-pod1/eth0 was missing" "$HARNESS_DAEMON_LOG" ||
    harness_fail "the agent did not log re-establishing pod1's lease"
  echo "ok: lease record $damage, restart: ADD -> $ip (restored pods keep ${POD_IP[pod1]}, ${POD_IP[pod2]})"
done

# --- CHECK and VERSION ---------------------------------------------------------------------
with_prev() { python3 -c 'import json,sys; c=json.loads(sys.argv[1]); c["prevResult"]=json.loads(sys.argv[2]); print(json.dumps(c))' "$1" "$2"; }
id1="$HARNESS_RUN_ID-pod1"
out=$(cni CHECK "$id1" "/run/netns/${POD_NS[pod1]}" eth0 "$(with_prev "$NET_CONF" "${POD_RESULT[pod1]}")") ||
  harness_fail "CHECK pod1 failed: $out"
[[ -z "$out" ]] || harness_fail "CHECK printed something on success: $out"
echo "ok: CHECK pod1"
wrong=$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); r["ips"][0]["address"]="10.10.1.250/32"; print(json.dumps(r))' "${POD_RESULT[pod1]}")
expect_code 103 "CHECK with a prevResult whose address differs" \
  cni CHECK "$id1" "/run/netns/${POD_NS[pod1]}" eth0 "$(with_prev "$NET_CONF" "$wrong")"
ip -n "${POD_NS[pod1]}" route del default
expect_code 103 "CHECK after the pod lost its default route" \
  cni CHECK "$id1" "/run/netns/${POD_NS[pod1]}" eth0 "$(with_prev "$NET_CONF" "${POD_RESULT[pod1]}")"
ip -n "${POD_NS[pod1]}" route add default via "$GATEWAY" dev eth0

version=$(ip netns exec "$node" env -i CNI_COMMAND=VERSION "$CNI_BIN" <<<'{"cniVersion":"1.0.0"}') || harness_fail "VERSION failed"
python3 -c 'import json,sys; v=json.loads(sys.argv[1]); assert v["cniVersion"]=="1.0.0" and {"0.3.1","0.4.0","1.0.0"} <= set(v["supportedVersions"]), v' "$version" ||
  harness_fail "VERSION answered $version"
echo "ok: VERSION $version" | tr -d '\n' && echo

# --- error cases ---------------------------------------------------------------------------
scratch=$(harness_netns scratch)
sp="/run/netns/$scratch"
missing_env() {
  ip netns exec "$node" env -i PATH="$PATH" CNI_COMMAND=ADD CNI_CONTAINERID=x1 CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni \
    "$CNI_BIN" <<<"$NET_CONF"
}
expect_code 4 "ADD without CNI_NETNS" missing_env
expect_code 4 "ADD with an invalid CNI_IFNAME" cni ADD err-1 "$sp" "bad/name" "$NET_CONF"
expect_code 4 "ADD with an unknown CNI_ARGS key" cni ADD err-1 "$sp" eth0 "$NET_CONF" "FOO=bar"
expect_code 4 "an unknown CNI_COMMAND" cni FROB err-1 "$sp" eth0 "$NET_CONF"
expect_code 6 "ADD with a config that is not JSON" cni ADD err-1 "$sp" eth0 '{"cniVersion": "1.0.0", "name":'
expect_code 7 "ADD with mtu \"big\"" cni ADD err-1 "$sp" eth0 "${NET_CONF%\}}, \"mtu\": \"big\"}"
expect_code 7 "ADD without a network name" cni ADD err-1 "$sp" eth0 '{"cniVersion":"1.0.0","type":"membrane"}'
expect_code 1 "ADD with cniVersion 0.2.0" cni ADD err-1 "$sp" eth0 "${NET_CONF/1.0.0/0.2.0}"
expect_code 1 "CHECK with cniVersion 0.3.1" cni CHECK err-1 "$sp" eth0 "${NET_CONF/1.0.0/0.3.1}"
expect_code 1 "GC (spec 1.1)" cni GC err-1 "$sp" eth0 "$NET_CONF"
expect_code 3 "ADD into a netns that does not exist" cni ADD err-1 "/run/netns/$HARNESS_RUN_ID-nope" eth0 "$NET_CONF"
expect_code 11 "ADD with the agent unreachable" \
  cni ADD err-1 "$sp" eth0 "${NET_CONF/$MEMBRANE_DBUS_ADDRESS/unix:path=$HARNESS_TMP/no-such-bus}"
[[ -z "$(ip -n "$scratch" link show | grep -v '^ \|lo:')" ]] || harness_fail "a failed ADD left a link in $scratch: $(ip -n "$scratch" link)"
[[ -z "$(ip -n "$node" -o link show | grep ' mbr' | grep -v "$(host_veth "$id1" eth0)\|$(host_veth "$HARNESS_RUN_ID-pod2" eth0)")" ]] ||
  harness_fail "a failed ADD left a host link: $(ip -n "$node" -o link show | grep ' mbr')"
[[ $(endpoint_count) == 2 ]] || harness_fail "failed ADDs changed the endpoints: $(list_endpoints)"

# --- DEL ---------------------------------------------------------------------------------------
for pod in pod1 pod2; do
  id="$HARNESS_RUN_ID-$pod"
  conf=$(with_prev "$NET_CONF" "${POD_RESULT[$pod]}")
  if [[ $pod == pod2 ]]; then
    ip netns del "${POD_NS[pod2]}"  # the runtime may have removed the netns already
  fi
  out=$(cni DEL "$id" "/run/netns/${POD_NS[$pod]}" eth0 "$conf") || harness_fail "DEL $pod failed: $out"
  [[ -z "$out" ]] || harness_fail "DEL printed something on success: $out"
  out=$(cni DEL "$id" "/run/netns/${POD_NS[$pod]}" eth0 "$conf") || harness_fail "DEL $pod again failed: $out"
  out=$(cni DEL "$id" "" eth0 "$NET_CONF") || harness_fail "DEL $pod without CNI_NETNS failed: $out"
  ! ip -n "$node" link show "$(host_veth "$id" eth0)" >/dev/null 2>&1 || harness_fail "DEL $pod left its host veth"
  ! ip -n "$node" -4 route show | grep_quiet "^${POD_IP[$pod]} " || harness_fail "DEL $pod left the node's route"
  echo "ok: DEL $pod (twice, and without CNI_NETNS)"
done
expect_traces 0 "after DEL"

# --- 200 ADD/DEL cycles ---------------------------------------------------------------------------
cycle_ns=$(harness_netns cycle)
ip netns exec "$node" env -i PATH="$PATH" CNI_BIN="$CNI_BIN" CONF="$NET_CONF" NS="/run/netns/$cycle_ns" \
  PREFIX="$HARNESS_RUN_ID-cyc" CYCLES="$CYCLES" CNI_PATH_DIRS="$MEMBRANE_BUILD_DIR/cni" \
  bash -c '
    set -u
    for ((i = 1; i <= CYCLES; i++)); do
      export CNI_CONTAINERID="$PREFIX-$i" CNI_NETNS="$NS" CNI_IFNAME=eth0 CNI_PATH="$CNI_PATH_DIRS" CNI_ARGS="IgnoreUnknown=1"
      t0=$EPOCHREALTIME
      out=$(CNI_COMMAND=ADD "$CNI_BIN" <<<"$CONF") || { echo "ADD $i failed: $out" >&2; exit 1; }
      t1=$EPOCHREALTIME
      out=$(CNI_COMMAND=DEL "$CNI_BIN" <<<"$CONF") || { echo "DEL $i failed: $out" >&2; exit 1; }
      t2=$EPOCHREALTIME
      echo "${t0/./} ${t1/./} ${t2/./}"
    done' >"$HARNESS_TMP/cycles.txt" || harness_fail "the ADD/DEL cycles stopped: $(tail -n 3 "$HARNESS_TMP/cycles.txt")"

python3 - "$HARNESS_TMP/cycles.txt" <<'PY'
import sys
rows = [list(map(int, l.split())) for l in open(sys.argv[1]) if l.strip()]
def stats(name, values):
    values = sorted(v / 1000.0 for v in values)  # microseconds -> ms
    median = values[len(values) // 2]
    p99 = values[min(len(values) - 1, int(round(0.99 * (len(values) - 1))))]
    print(f"CNI {name} latency over {len(values)} cycles: median {median:.2f} ms, p99 {p99:.2f} ms")
stats("ADD", [b - a for a, b, c in rows])
stats("DEL", [c - b for a, b, c in rows])
PY

[[ $(wc -l <"$HARNESS_TMP/cycles.txt") == "$CYCLES" ]] || harness_fail "only $(wc -l <"$HARNESS_TMP/cycles.txt") of $CYCLES cycles ran"
expect_traces 0 "after $CYCLES cycles"
leftover=$(ip -n "$node" -o link show | grep ' mbr' || true)
[[ -z "$leftover" ]] || harness_fail "host links left after $CYCLES cycles: $leftover"
[[ -z "$(ip -n "$cycle_ns" -o link show | grep -v ' lo:')" ]] || harness_fail "links left in the pod netns: $(ip -n "$cycle_ns" link)"
# No lease left: the agent's IPAM state names no container of this run.
if grep -rlq -- "$HARNESS_RUN_ID-" "$STATE_DIR" 2>/dev/null; then
  harness_fail "the IPAM state still holds a lease of this run: $(grep -rl -- "$HARNESS_RUN_ID-" "$STATE_DIR")"
fi
# And the next lease is the pool's first again (nothing is held).
lease=$(harness_busctl --json=short call org.membrane.Agent1 /org/membrane/Agent1 org.membrane.Agent1 AllocateAddress ss probe eth0)
harness_busctl call org.membrane.Agent1 /org/membrane/Agent1 org.membrane.Agent1 ReleaseAddress ss probe eth0 >/dev/null
echo "ok: $CYCLES ADD/DEL cycles left no endpoint, lease, host link, map entry, tc filter or ownership record (next lease: $lease)"

# --- the agent gone from a live bus: try again later -----------------------------------------
harness_stop_daemon || true
expect_code 11 "ADD with membraned stopped (bus up, name unowned)" cni ADD err-2 "$sp" eth0 "$NET_CONF"
echo "PASS: membrane-cni ADD/CHECK/DEL/VERSION, error codes, $CYCLES cycles"
