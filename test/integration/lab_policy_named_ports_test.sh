#!/usr/bin/env bash
# Named ports with real traffic (VXLAN lab): be1 declares its container ports
# through membrane-cni (membrane-lab's pod `ports`, passed as
# args.cni.membrane.ports) and a NetworkPolicy admits its port "echo" by name.
# A client on the other node reaches TCP 7001 (be1's "echo"), not UDP 7002,
# not ICMP; be2, which declares no "echo", is selected too and admits nothing.
# Then the client's egress is limited to the backends' "echo": the port is
# be1's, declared on node2 and known on node1 only from be1's record in the
# cluster store; the client reaches it, and no longer `open` (node2).
set -euo pipefail
source "${MEMBRANE_SOURCE_DIR:?}/lab/lab_test_lib.sh"
labtest_init

lab=$(labtest_name pn)
cat >"$LABTEST_TMP/$lab.toml" <<EOF
name = "$lab"
routing = "vxlan"
modules = ["policy-l3l4"]

[[nodes]]
name = "node1"

[[nodes]]
name = "node2"

[[pods]]
name = "client"
node = "node1"
labels = { app = "client" }

[[pods]]
name = "be1"
node = "node2"
labels = { role = "backend" }
ports = [{ name = "echo", port = 7001, protocol = "TCP" }, { name = "metrics", port = 9090 }]

[[pods]]
name = "be2"
node = "node2"
labels = { role = "backend" }

[[pods]]
name = "open"
node = "node2"
labels = { app = "open" }
EOF
labtest_up "$LABTEST_TMP/$lab.toml"
for pod in be1 be2 open; do labtest_serve "$lab" "$pod"; done
labtest_expect_udp "$lab" client be1

cat >"$LABTEST_TMP/echo.yaml" <<EOF
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: backend-echo
spec:
  podSelector:
    matchLabels:
      role: backend
  ingress:
  - ports:
    - port: echo
EOF
labtest_apply_policy "$lab" "$LABTEST_TMP/echo.yaml"
target=$(labtest_addr "$lab" be1)
labtest_expect_tcp "$lab" client be1
reply=$(labtest_udp_exchange "$lab" client "$target" 7002 udp 2>&1) || true
[[ -z "$reply" ]] || labtest_fail "UDP 7002 of be1 answered ('$reply'); only its \"echo\" (TCP 7001) is admitted"
if lab_cmd exec "$lab" client -- timeout 5 socat -T 2 /dev/null TCP4:"$(labtest_addr "$lab" be2)":7001,connect-timeout=1 >/dev/null 2>&1; then
    labtest_fail "be2 declares no \"echo\", yet its TCP 7001 took a connection"
fi
lab_cmd ctl "$lab" node2 -- policy get backend-echo >"$LABTEST_TMP/policy.txt" || labtest_fail "policy get failed"
cat "$LABTEST_TMP/policy.txt"
echo "ok: a NetworkPolicy's named port means each pod's own declared port (be1: TCP 7001; be2: none)"

cat >"$LABTEST_TMP/client-egress.yaml" <<EOF
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: client-to-echo
spec:
  podSelector:
    matchLabels:
      app: client
  policyTypes: [Egress]
  egress:
  - to:
    - podSelector:
        matchLabels:
          role: backend
    ports:
    - port: echo
EOF
labtest_apply_policy "$lab" "$LABTEST_TMP/client-egress.yaml"
open=$(labtest_addr "$lab" open)
labtest_expect_tcp "$lab" client be1
if lab_cmd exec "$lab" client -- timeout 5 socat -T 2 /dev/null TCP4:"$open":7001,connect-timeout=1 >/dev/null 2>&1; then
    labtest_fail "the client's egress is limited to the backends, yet open's TCP 7001 took a connection"
fi
echo "ok: an egress named port means the destination pod's port, declared on another node"
