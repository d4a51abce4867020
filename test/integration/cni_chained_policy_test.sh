#!/usr/bin/env bash
# Network policy in chained mode (the seed's slide 27): Debian's bridge and
# host-local make three pods' interfaces and addresses on one bridge, and
# membrane-cni, chained after them, registers each pod with its labels;
# Membrane does no addressing or routing here, only policy (policy-l3l4).
# With configs/policies/l3-rule.yaml, the backend on the same bridge accepts
# the frontend and drops the other pod, counted as drop_policy: L2 neighbours
# on one bridge meet the policy like any two pods.
set -euo pipefail
source "$MEMBRANE_SOURCE_DIR/test/lib/harness.sh"
harness_init

CNI_BIN="$MEMBRANE_BUILD_DIR/cni/membrane-cni"
POLICY_SO="$MEMBRANE_BUILD_DIR/modules/policy-l3l4/policy-l3l4.so"
PLUGINS=/usr/lib/cni
[[ -x "$CNI_BIN" && -f "$POLICY_SO" ]] || harness_fail "the build lacks membrane-cni or policy-l3l4.so"
[[ -x "$PLUGINS/bridge" && -x "$PLUGINS/host-local" ]] || harness_skip "containernetworking-plugins (bridge, host-local) not in $PLUGINS"

NODE_NAME=node-chpol
BRIDGE="br-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
node=$(harness_netns node)
harness_dbus
mkdir -m 0755 "$HARNESS_TMP/modules" "$HARNESS_TMP/ipam"
install -m 0644 "$POLICY_SO" "$HARNESS_TMP/modules/policy-l3l4.so"
config="$HARNESS_TMP/membrane.toml"
nodes_table=$(printf '[[nodes]]\nname = "%s"\nip = "192.168.79.1"\npod_cidr = "10.10.8.0/24"' "$NODE_NAME")
harness_write_config "$config" "$NODE_NAME" "$HARNESS_TMP/modules" '[]' '["policy-l3l4"]' "$nodes_table"
PIN_DIR="$(harness_bpffs bpffs)/membrane/$NODE_NAME"
harness_daemon "$node" "$config"

BRIDGE_CONF="{\"cniVersion\": \"1.0.0\", \"name\": \"chained\", \"type\": \"bridge\", \"bridge\": \"$BRIDGE\", \"isGateway\": true,
 \"ipam\": {\"type\": \"host-local\", \"subnet\": \"10.23.0.0/24\", \"dataDir\": \"$HARNESS_TMP/ipam\", \"routes\": [{\"dst\": \"0.0.0.0/0\"}]}}"
membrane_conf() {  # LABELS_JSON
  printf '{"cniVersion": "1.0.0", "name": "chained", "type": "membrane", "dbus_address": "%s", "labels": %s}' \
    "$MEMBRANE_DBUS_ADDRESS" "$1"
}
with_prev() { python3 -c 'import json,sys; c=json.loads(sys.argv[1]); c["prevResult"]=json.loads(sys.argv[2]); print(json.dumps(c))' "$1" "$2"; }
declare -A pods addrs results
run_plugin() {  # BINARY COMMAND POD STDIN
  ip netns exec "$node" env -i PATH="$PATH" CNI_COMMAND="$2" CNI_CONTAINERID="$HARNESS_RUN_ID-$3" \
    CNI_NETNS="/run/netns/${pods[$3]}" CNI_IFNAME=eth0 CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=$3" \
    CNI_PATH="$PLUGINS:$MEMBRANE_BUILD_DIR/cni" "$1" <<<"$4"
}
# DEL in reverse order, also when the test fails (the bridge and host-local leave state behind otherwise).
cleanup_pods() {
  local name
  for name in "${!results[@]}"; do
    run_plugin "$CNI_BIN" DEL "$name" "$(with_prev "$(membrane_conf '{}')" "${results[$name]}")" >/dev/null 2>&1 || true
    run_plugin "$PLUGINS/bridge" DEL "$name" "$(with_prev "$BRIDGE_CONF" "${results[$name]}")" >/dev/null 2>&1 || true
  done
}
trap 'cleanup_pods; harness_cleanup' EXIT

declare -A labels=([fe]='{"class": "frontend"}' [be]='{"role": "backend"}' [other]='{"app": "other"}')
for name in fe be other; do
  pods[$name]=$(harness_netns "pod-$name")
  bridge_result=$(run_plugin "$PLUGINS/bridge" ADD "$name" "$BRIDGE_CONF") || harness_fail "bridge ADD of $name failed: $bridge_result"
  results[$name]=$bridge_result
  out=$(run_plugin "$CNI_BIN" ADD "$name" "$(with_prev "$(membrane_conf "${labels[$name]}")" "$bridge_result")") ||
    harness_fail "membrane ADD (chained) of $name failed: $out"
  addrs[$name]=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["ips"][0]["address"].split("/")[0])' "$bridge_result")
done

ping_ok() { ip netns exec "${pods[$1]}" ping -c 2 -i 0.2 -W 1 -q "${addrs[$2]}" >/dev/null 2>&1; }
ping_ok other be || harness_fail "other -> be failed before any policy"
harness_ctl apply -f "$MEMBRANE_SOURCE_DIR/configs/policies/l3-rule.yaml" >/dev/null || harness_fail "apply l3-rule failed"
deadline=$((SECONDS + 10))
while ping_ok other be; do
  ((SECONDS < deadline)) || harness_fail "l3-rule never took effect on the bridge's pods"
done
drops=$(harness_stat "$PIN_DIR" DROP_POLICY)
ping_ok fe be || harness_fail "fe -> be (same bridge) dropped; l3-rule allows it"
if ping_ok other be; then harness_fail "other -> be (same bridge) passed; l3-rule denies it"; fi
(($(harness_stat "$PIN_DIR" DROP_POLICY) >= drops + 2)) || harness_fail "other -> be was not counted as drop_policy"
ping_ok be other || harness_fail "be -> other dropped; nothing selects other, be's egress is not enforced"
echo "PASS: chained after bridge + host-local: l3-rule enforced between pods of one bridge (fe allowed, other dropped and counted)"
