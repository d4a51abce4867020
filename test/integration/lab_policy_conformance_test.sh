#!/usr/bin/env bash
# NetworkPolicy conformance (test/integration/netpol_conformance.py), in both
# routing modes: namespaces x, y, z with pods a, b, c each (spread over two
# nodes, so every case has same-node and cross-node pairs), every pod pair
# probed on TCP and UDP 80 and 81 against the matrix each case expects:
# ingress, egress, both, pod and namespace selectors (alone, ANDed, ORed),
# matchExpressions, ports, endPort, named ports (ingress, and egress toward
# pods of the other node), ipBlock with except,
# deny-all, allow-all, several policies, and updates (a policy changed, pod
# labels changed, namespace labels changed). Some cases are also asked of
# `membranectl policy trace`, pair by pair, which must agree with the probes.
# The VXLAN lab probes every case; the direct-routing lab makes every change
# but probes the cases where a source's identity crosses nodes in every way
# (pod and namespace selectors, named ports toward the other node, ipBlock,
# label changes, egress), since routing is all that differs.
set -euo pipefail
source "${MEMBRANE_SOURCE_DIR:?}/lab/lab_test_lib.sh"
labtest_init

for routing in vxlan direct; do
    lab=$(labtest_name "np${routing:0:1}")
    {
        printf 'name = "%s"\nrouting = "%s"\nmodules = ["policy-l3l4"]\n' "$lab" "$routing"
        printf '\n[[nodes]]\nname = "node1"\n\n[[nodes]]\nname = "node2"\n'
        i=0
        for ns in x y z; do
            for pod in a b c; do
                printf '\n[[pods]]\nname = "%s"\nnode = "node%d"\nnamespace = "%s"\nlabels = { pod = "%s" }\n' \
                    "$ns$pod" $((i % 2 + 1)) "$ns" "$pod"
                # x/a declares a named port for the named-port case.
                [[ $ns$pod != xa ]] || printf 'ports = [{ name = "serve-81-udp", port = 81, protocol = "UDP" }]\n'
                i=$((i + 1))
            done
        done
    } >"$LABTEST_TMP/$lab.toml"
    labtest_up "$LABTEST_TMP/$lab.toml" --log-level warn >/dev/null
    probe=()
    [[ $routing == vxlan ]] || probe=(--probe 1,2,5,11,13,18,19,21,24)
    python3 "$LABTEST_SOURCE/test/integration/netpol_conformance.py" --trace "$LABTEST_BUILD/cli/membranectl" "${probe[@]}" \
        python3 "$LABTEST_SOURCE/lab/membrane_lab.py" --build-dir "$LABTEST_BUILD" -- "$lab" ||
        labtest_fail "$routing: the conformance matrix"
    lab_cmd down "$lab" >/dev/null
    echo "PASS: $routing: the conformance cases' matrices${probe[*]:+ (cases ${probe[1]})}"
done
