#!/usr/bin/env bash
# membrane-cni chained after Debian's containernetworking-plugins: bridge with
# host-local IPAM makes the pod's interface and address, then membrane-cni
# gets prevResult, registers the endpoint with that address (no allocation
# of its own), attaches the entry program to the bridge's host veth and
# passes prevResult through. Pod traffic then crosses Membrane's entry
# program: MBR_STAT_ENTRY_FROM_ENDPOINT grows in the pinned mbr_stats_v1.
# Services too: with service-lb on a cgroup of the test's own ([agent]
# cgroup_root), a second chained pod serves a ClusterIP that is routed
# nowhere; the first pod, run in that cgroup, reaches it (only the
# translation at connect() can), and getpeername() shows the service; the
# same connect from outside the cgroup fails.
# The runtime's part (run each plugin in order, feed prevResult, DEL in
# reverse order) is done here in bash, with the environment a runtime sets.
set -euo pipefail
source "$MEMBRANE_SOURCE_DIR/test/lib/harness.sh"
harness_init

CNI_BIN="$MEMBRANE_BUILD_DIR/cni/membrane-cni"
SERVICE_LB_SO="$MEMBRANE_BUILD_DIR/modules/service-lb/service-lb.so"
CLIENT="$MEMBRANE_SOURCE_DIR/test/integration/service_client.py"
PLUGINS=/usr/lib/cni
[[ -x "$CNI_BIN" && -f "$SERVICE_LB_SO" ]] || harness_fail "the build lacks membrane-cni or service-lb.so"
[[ -x "$PLUGINS/bridge" && -x "$PLUGINS/host-local" ]] || harness_skip "containernetworking-plugins (bridge, host-local) not in $PLUGINS"
command -v bpftool >/dev/null || harness_skip "bpftool is not installed"

NODE_NAME=node-chain
BRIDGE="br-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"

node=$(harness_netns node)
pod=$(harness_netns pod)
backend=$(harness_netns backend)
harness_dbus
mkdir -m 0755 "$HARNESS_TMP/modules" "$HARNESS_TMP/ipam"
install -m 0644 "$SERVICE_LB_SO" "$HARNESS_TMP/modules/service-lb.so"
# The socket programs act on this cgroup alone (the default root would be the whole host's).
cgroup=$(harness_cgroup lb)
config="$HARNESS_TMP/membrane.toml"
# Below the bridge's 1500, so membrane-cni must lower the chained pod's MTU.
HARNESS_AGENT_MTU=1400 HARNESS_AGENT_CGROUP_ROOT=$cgroup \
  harness_write_config "$config" "$NODE_NAME" "$HARNESS_TMP/modules" '[]' '["service-lb"]' "$(cat <<EOF
[[nodes]]
name = "$NODE_NAME"
ip = "192.168.78.1"
pod_cidr = "10.10.9.0/24"
EOF
)"
PIN_DIR="$(harness_bpffs bpffs)/membrane/$NODE_NAME"
harness_daemon "$node" "$config"

# The conflist a runtime would read; each plugin gets its entry plus name and cniVersion.
BRIDGE_CONF=$(cat <<EOF
{"cniVersion": "1.0.0", "name": "chained", "type": "bridge", "bridge": "$BRIDGE", "isGateway": true,
 "ipam": {"type": "host-local", "subnet": "10.22.0.0/24", "dataDir": "$HARNESS_TMP/ipam",
          "routes": [{"dst": "0.0.0.0/0"}]}}
EOF
)
MEMBRANE_CONF=$(cat <<EOF
{"cniVersion": "1.0.0", "name": "chained", "type": "membrane", "dbus_address": "$MEMBRANE_DBUS_ADDRESS"}
EOF
)
ID="$HARNESS_RUN_ID-chained"
NETNS="/run/netns/$pod"

run_plugin() {  # run_plugin BINARY COMMAND STDIN [POD-NAME NETNS-NAME]: pod p0 in $pod by default
  local id=$ID name=p0 netns=$NETNS
  [[ $# -lt 4 ]] || { id="$ID-$4" name=$4 netns="/run/netns/$5"; }
  ip netns exec "$node" env -i PATH="$PATH" CNI_COMMAND="$2" CNI_CONTAINERID="$id" CNI_NETNS="$netns" \
    CNI_IFNAME=eth0 CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=chain;K8S_POD_NAME=$name" \
    CNI_PATH="$PLUGINS:$MEMBRANE_BUILD_DIR/cni" "$1" <<<"$3"
}
with_prev() { python3 -c 'import json,sys; c=json.loads(sys.argv[1]); c["prevResult"]=json.loads(sys.argv[2]); print(json.dumps(c))' "$1" "$2"; }

entry_from_endpoint() { membrane_stat "$PIN_DIR" "$MBR_STAT_ENTRY_FROM_ENDPOINT"; }

# --- ADD: bridge (+ host-local), then membrane with prevResult -------------------------------
bridge_result=$(run_plugin "$PLUGINS/bridge" ADD "$BRIDGE_CONF") || harness_fail "bridge ADD failed: $bridge_result"
result=$(run_plugin "$CNI_BIN" ADD "$(with_prev "$MEMBRANE_CONF" "$bridge_result")") ||
  harness_fail "membrane ADD (chained) failed: $result"
python3 - "$bridge_result" "$result" <<'PY' || harness_fail "membrane did not pass prevResult through: $result"
import json, sys
prev, out = json.loads(sys.argv[1]), json.loads(sys.argv[2])
assert out == prev, (prev, out)
PY
pod_ip=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["ips"][0]["address"].split("/")[0])' "$bridge_result")
[[ "$pod_ip" == 10.22.0.* ]] || harness_fail "the pod's address $pod_ip does not come from host-local"
host_if=$(ip -n "$node" -o link show master "$BRIDGE" | awk -F': ' '{print $2}' | cut -d@ -f1 | head -n1)
[[ -n "$host_if" ]] || harness_fail "no host veth on $BRIDGE"

endpoint=$(harness_busctl --json=short call org.membrane.Agent1 /org/membrane/Agent1 org.membrane.Agent1 FindEndpoint ss "$ID" eth0) ||
  harness_fail "the agent has no endpoint for $ID"
python3 - "$endpoint" "$pod_ip" "$host_if" <<'PY' || harness_fail "the endpoint does not match the chain: $endpoint"
import json, sys
ep = {k: v["data"] for k, v in json.loads(sys.argv[1])["data"][0].items()}
assert ep["address"] == sys.argv[2], ep
assert ep["host_ifname"] == sys.argv[3], ep
assert ep["labels"].get("k8s:io.kubernetes.pod.name") == "p0", ep
PY
pod_mtu=$(ip -n "$pod" -o link show eth0 | sed -n 's/.* mtu \([0-9]*\) .*/\1/p')
[[ "$pod_mtu" == 1400 ]] || harness_fail "the chained pod's eth0 has MTU $pod_mtu, not the agent's pod MTU 1400"
echo "ok: chained ADD: $pod_ip from host-local, endpoint on $host_if, MTU lowered to 1400, prevResult passed through"
tc -n "$node" filter show dev "$host_if" ingress | grep_quiet bpf ||
  harness_fail "no BPF program on tc ingress of $host_if: $(tc -n "$node" filter show dev "$host_if" ingress)"

# CHECK through the chain (membrane's part).
out=$(run_plugin "$CNI_BIN" CHECK "$(with_prev "$MEMBRANE_CONF" "$result")") || harness_fail "chained CHECK failed: $out"

# --- traffic crosses the entry program ---------------------------------------------------------
before=$(entry_from_endpoint)
ip netns exec "$pod" ping -c 5 -i 0.2 -W 2 10.22.0.1 >"$HARNESS_TMP/ping.txt" 2>&1 ||
  harness_fail "pod -> bridge gateway 10.22.0.1 failed: $(cat "$HARNESS_TMP/ping.txt")"
after=$(entry_from_endpoint)
echo "MBR_STAT_ENTRY_FROM_ENDPOINT: $before -> $after"
((after >= before + 5)) || harness_fail "pod traffic did not cross mbr_from_endpoint ($before -> $after for 5 pings)"

# --- a ClusterIP served by a chained pod, reached from a chained pod in the agent's cgroup ---------
be_result=$(run_plugin "$PLUGINS/bridge" ADD "$BRIDGE_CONF" be "$backend") || harness_fail "bridge ADD of be failed: $be_result"
be_result=$(run_plugin "$CNI_BIN" ADD "$(with_prev "$MEMBRANE_CONF" "$be_result")" be "$backend") ||
  harness_fail "membrane ADD (chained) of be failed: $be_result"
be_ip=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["ips"][0]["address"].split("/")[0])' "$be_result")
ip netns exec "$backend" timeout 120 python3 "$CLIENT" echo be 7001 120 </dev/null >/dev/null 2>&1 &
harness_register_pid $!
vip=10.96.0.10
cat >"$HARNESS_TMP/web.yaml" <<EOF
apiVersion: v1
kind: Service
metadata: {name: web, namespace: chain}
spec:
  clusterIP: $vip
  ports:
  - {name: echo, port: 80, targetPort: 7001, protocol: TCP}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  namespace: chain
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports:
- {name: echo, port: 7001, protocol: TCP}
endpoints:
- {addresses: ["$be_ip"], conditions: {ready: true}, nodeName: $NODE_NAME}
EOF
harness_ctl apply -f "$HARNESS_TMP/web.yaml" >/dev/null || harness_fail "apply of service web failed"
in_maps() { harness_ctl lb list | grep -q "$be_ip:7001"; }
harness_retry 10 in_maps ||
  harness_fail "service-lb's maps never held web's backend $be_ip:7001: $(harness_ctl lb list 2>&1)"
harness_retry 10 ip netns exec "$backend" sh -c 'ss -Hltn "sport = :7001" | grep -q 7001' ||
  harness_fail "the backend's echo server never listened"
# Nothing routes the ClusterIP: only a translation at connect() reaches the backend.
if ip -n "$node" route get "$vip" >/dev/null 2>&1; then harness_fail "the node routes $vip: $(ip -n "$node" route get "$vip")"; fi
result=$(harness_in_cgroup "$cgroup" ip netns exec "$pod" python3 "$CLIENT" tcp "$vip" 80 5)
echo "in the agent's cgroup, p0 -> $vip:80: $result"
python3 -c 'import json,sys; r=json.loads(sys.argv[1]); sys.exit(r != {"replies": {"be": 5}, "peers": [sys.argv[2] + ":80"], "errors": {}})' \
  "$result" "$vip" || harness_fail "a chained pod in the agent's cgroup did not reach the ClusterIP's backend: $result"
result=$(ip netns exec "$pod" python3 "$CLIENT" refused "$vip" 80)
echo "outside it, p0 -> $vip:80: $result"
python3 -c 'import json,sys; sys.exit(json.loads(sys.argv[1])["errno"] == "")' "$result" ||
  harness_fail "a process outside the agent's cgroup reached the ClusterIP: $result"
out=$(run_plugin "$CNI_BIN" DEL "$(with_prev "$MEMBRANE_CONF" "$be_result")" be "$backend") || harness_fail "membrane DEL of be failed: $out"
out=$(run_plugin "$PLUGINS/bridge" DEL "$(with_prev "$BRIDGE_CONF" "$be_result")" be "$backend") || harness_fail "bridge DEL of be failed: $out"

# --- DEL in reverse order, twice -----------------------------------------------------------------
for round in 1 2; do
  out=$(run_plugin "$CNI_BIN" DEL "$(with_prev "$MEMBRANE_CONF" "$result")") || harness_fail "membrane DEL ($round) failed: $out"
  out=$(run_plugin "$PLUGINS/bridge" DEL "$(with_prev "$BRIDGE_CONF" "$result")") || harness_fail "bridge DEL ($round) failed: $out"
done
if harness_busctl call org.membrane.Agent1 /org/membrane/Agent1 org.membrane.Agent1 FindEndpoint ss "$ID" eth0 >/dev/null 2>&1; then
  harness_fail "the endpoint outlived DEL"
fi
! grep -rqs "$ID" "$HARNESS_TMP/ipam" || harness_fail "host-local still holds the address after DEL"
echo "PASS: chained after bridge + host-local: address from host-local, traffic through mbr_from_endpoint, a ClusterIP through service-lb in the agent's cgroup (not outside it), DEL clean"
