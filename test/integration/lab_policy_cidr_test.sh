#!/usr/bin/env bash
# CIDR rules with real traffic (VXLAN lab). The world is the lab's etcd
# namespace (192.168.<index>.254 on the underlay; the test gives it a route
# back to the pod CIDRs through node1, inside the lab's own namespaces):
# outside the cluster, so its packets carry the identity "world".
#   - Cilium toCIDR: svc (app=myService) may reach the world host's /32 and
#     nothing else: not a pod, even one whose address the same rule's
#     broader prefix would hold (CIDR rules do not select pods);
#   - toCIDRSet with except: the whole underlay /24 but the host is excepted:
#     the host is dropped;
#   - NetworkPolicy ipBlock selects pod addresses too: be1 accepts fe1's
#     address (by ipBlock) and nobody else.
# Each drop is also counted by the enforcing node as drop_policy.
set -euo pipefail
source "${MEMBRANE_SOURCE_DIR:?}/lab/lab_test_lib.sh"
labtest_init
DROP_POLICY=15  # contract.h: MBR_STAT_DROP_POLICY

lab=$(labtest_name pc)
{
    printf 'name = "%s"\nrouting = "vxlan"\nmodules = ["policy-l3l4"]\n' "$lab"
    printf '\n[[nodes]]\nname = "node1"\n\n[[nodes]]\nname = "node2"\n'
    printf '\n[[pods]]\nname = "%s"\nnode = "%s"\nlabels = { %s }\n' \
        svc node1 'app = "myService"' fe1 node1 'class = "frontend"' be1 node2 'role = "backend"' other node2 'app = "other"'
} >"$LABTEST_TMP/$lab.toml"
labtest_up "$LABTEST_TMP/$lab.toml"
node1_ip=$(labtest_node_ip "$lab" node1)
index=${node1_ip#192.168.}
index=${index%.1}
world=192.168.$index.254
ip netns exec "ml-$lab-kv" ip route add "10.$index.0.0/16" via "192.168.$index.1" ||
    labtest_fail "cannot route the world host's answers back through node1"

expect_ping() {  # FROM ADDRESS
    lab_cmd exec "$lab" "$1" -- ping -c 2 -W 1 -i 0.2 -q "$2" >/dev/null 2>&1 || labtest_fail "$1 -> $2: no answer"
    labtest_log "ICMP $1 -> $2: ok"
}
expect_no_ping() {  # FROM ADDRESS NODE: dropped and counted by NODE
    local before
    before=$(labtest_stat "$lab" "$3" "$DROP_POLICY")
    if lab_cmd exec "$lab" "$1" -- ping -c 2 -W 1 -i 0.2 -q "$2" >/dev/null 2>&1; then
        labtest_fail "$1 -> $2 was answered; policy should drop it"
    fi
    (($(labtest_stat "$lab" "$3" "$DROP_POLICY") >= before + 2)) || labtest_fail "$1 -> $2: not counted as a policy drop on $3"
    labtest_log "ICMP $1 -> $2: dropped by $3's policy, as written"
}
expect_ping svc "$world"
expect_ping svc "$(labtest_addr "$lab" be1)"

cat >"$LABTEST_TMP/to-world.yaml" <<YAML
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: to-world
spec:
  endpointSelector:
    matchLabels:
      app: myService
  egress:
  - toCIDR:
    - $world/32
  - toCIDRSet:
    - cidr: 10.$index.0.0/16
YAML
labtest_apply_policy "$lab" "$LABTEST_TMP/to-world.yaml"
expect_ping svc "$world"
# 10.<index>.0.0/16 holds every pod, but a CIDR rule selects the world only.
expect_no_ping svc "$(labtest_addr "$lab" be1)" node1
expect_no_ping svc "$(labtest_addr "$lab" fe1)" node1

cat >"$LABTEST_TMP/to-world.yaml" <<YAML
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: to-world
spec:
  endpointSelector:
    matchLabels:
      app: myService
  egress:
  - toCIDRSet:
    - cidr: 192.168.$index.0/24
      except:
      - $world/32
YAML
lab_cmd ctl "$lab" node1 -- apply -f "$LABTEST_TMP/to-world.yaml" >/dev/null || labtest_fail "apply of the except failed"
deadline=$((SECONDS + 10))
while lab_cmd exec "$lab" svc -- ping -c 1 -W 1 -q "$world" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || labtest_fail "the except never took effect"
done
expect_no_ping svc "$world" node1
lab_cmd ctl "$lab" node1 -- delete cnp to-world >/dev/null || labtest_fail "delete to-world failed"

cat >"$LABTEST_TMP/from-fe1.yaml" <<YAML
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: from-fe1-address
spec:
  podSelector:
    matchLabels:
      role: backend
  ingress:
  - from:
    - ipBlock:
        cidr: $(labtest_addr "$lab" fe1)/32
YAML
labtest_apply_policy "$lab" "$LABTEST_TMP/from-fe1.yaml"
expect_ping fe1 "$(labtest_addr "$lab" be1)"
expect_no_ping svc "$(labtest_addr "$lab" be1)" node2
expect_no_ping other "$(labtest_addr "$lab" be1)" node2
echo "ok: toCIDR and toCIDRSet select the world (not pods), except holds, ipBlock selects a pod's address"
