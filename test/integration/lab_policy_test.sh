#!/usr/bin/env bash
# Network policy (policy-l3l4) with real traffic, in both routing modes, from
# the policies in configs/policies/ applied with membranectl as users do.
# Pods: fe1 (class=frontend, node1), be1 (role=backend, node2), be2
# (role=backend, node1), other (app=other, node1), svc (app=myService,
# node1). Every denial is also counted by the datapath (drop_policy) on the
# node that enforces it, so a packet the kernel dropped for another reason
# cannot pass for a policy drop.
#   - l3-rule: backends accept fe1 (across nodes and on the same node), not other
#   - an established TCP connection stops within 1 s of the allow being revoked
#   - backend-no-egress (NetworkPolicy): be1 opens nothing, but answers fe1 (stateful)
#   - l4-rule: svc reaches TCP 80 and nothing else (not 7001, not ICMP)
#   - deny-frontend-7001 (cluster-wide ingressDeny) wins over l3-rule's allow
#   - deleting the policies opens everything again
set -euo pipefail
source "${MEMBRANE_SOURCE_DIR:?}/lab/lab_test_lib.sh"
labtest_init
policies="$LABTEST_SOURCE/configs/policies"
DROP_POLICY=15  # contract.h: MBR_STAT_DROP_POLICY

# expect_no_ping LAB FROM TO : 2 echo requests, none answered.
expect_no_ping() {
    local addr
    addr=$(labtest_addr "$1" "$3")
    if lab_cmd exec "$1" "$2" -- ping -c 2 -W 1 -i 0.2 -q "$addr" >/dev/null 2>&1; then
        labtest_fail "ICMP $2 -> $3 ($addr) was answered; policy should drop it"
    fi
    labtest_log "ICMP $2 -> $3 ($addr): dropped, as the policy says"
}

# expect_no_tcp LAB FROM TO PORT : a TCP connection to PORT of TO cannot be opened (its SYN is
# dropped: the connect times out after 1 s, before the first retransmission).
expect_no_tcp() {
    local addr out
    addr=$(labtest_addr "$1" "$3")
    if out=$(lab_cmd exec "$1" "$2" -- timeout 5 socat -T 2 /dev/null TCP4:"$addr":"$4",connect-timeout=1 2>&1); then
        labtest_fail "TCP $2 -> $3 ($addr:$4) connected; policy should drop it"
    fi
    grep -q "Connection timed out\|timed out" <<<"$out" || labtest_fail "TCP $2 -> $3:$4 failed, but not by a drop: $out"
    labtest_log "TCP $2 -> $3 ($addr:$4): dropped, as the policy says"
}

# expect_tcp_port LAB FROM TO PORT : a TCP connection to PORT of TO opens.
expect_tcp_port() {
    local addr
    addr=$(labtest_addr "$1" "$3")
    lab_cmd exec "$1" "$2" -- timeout 5 socat -T 2 /dev/null TCP4:"$addr":"$4",connect-timeout=2 >/dev/null 2>&1 ||
        labtest_fail "TCP $2 -> $3 ($addr:$4) did not connect"
    labtest_log "TCP $2 -> $3 ($addr:$4): ok"
}

# listen LAB POD PORT : a TCP server on PORT that takes connections (and discards what it gets).
listen() {
    lab_cmd exec "$1" "$2" -- timeout 600 socat TCP4-LISTEN:"$3",reuseaddr,fork OPEN:/dev/null \
        </dev/null >/dev/null 2>&1 &
    labtest_wait_listen "$1" "$2" "$3" tcp
}

# policy_drops LAB NODE : the node's drop_policy counter.
policy_drops() { labtest_stat "$1" "$2" "$DROP_POLICY"; }

# echo_stream LAB FROM TO SECONDS : one TCP connection to TO's echo server
# (port 7003), a line every 50 ms; prints the time (epoch s) of each answer.
echo_stream() {
    local addr
    addr=$(labtest_addr "$1" "$3")
    lab_cmd exec "$1" "$2" -- timeout $(($4 + 5)) python3 -c '
import socket, sys, time
s = socket.create_connection((sys.argv[1], 7003), timeout=2)
s.settimeout(0.05)
end = time.time() + float(sys.argv[2])
while time.time() < end:
    try:
        s.sendall(b"x\n")
        if s.recv(64):
            print("%.3f" % time.time(), flush=True)
    except (socket.timeout, BlockingIOError):
        pass
    except OSError:
        break
    time.sleep(0.05)
' "$addr" "$4"
}

for routing in vxlan direct; do
    lab=$(labtest_name "p${routing:0:1}")
    {
        printf 'name = "%s"\nrouting = "%s"\nmodules = ["policy-l3l4"]\n' "$lab" "$routing"
        printf '\n[[nodes]]\nname = "node1"\n\n[[nodes]]\nname = "node2"\n'
        printf '\n[[pods]]\nname = "%s"\nnode = "%s"\nlabels = { %s }\n' \
            fe1 node1 'class = "frontend"' be1 node2 'role = "backend"' be2 node1 'role = "backend"' \
            other node1 'app = "other"' svc node1 'app = "myService"'
    } >"$LABTEST_TMP/$lab.toml"
    labtest_up "$LABTEST_TMP/$lab.toml"
    for pod in be1 be2 other; do labtest_serve "$lab" "$pod"; done
    listen "$lab" other 80
    lab_cmd exec "$lab" be1 -- timeout 600 socat TCP4-LISTEN:7003,reuseaddr,fork EXEC:cat </dev/null >/dev/null 2>&1 &
    labtest_wait_listen "$lab" be1 7003 tcp
    # The remote pods' identities reach each node through etcd shortly after the pods.
    deadline=$((SECONDS + 20))
    until [[ -n "$(labtest_ipcache "$lab" node2 "$(labtest_addr "$lab" other)")" ]]; do
        ((SECONDS < deadline)) || labtest_fail "$routing: node2 never learnt pod other's address"
        sleep 0.1
    done

    # No policy: everything passes.
    labtest_expect_ping "$lab" other be1
    labtest_expect_ping "$lab" other be2

    # l3-rule: backends accept the frontend only, on this node and across.
    labtest_apply_policy "$lab" "$policies/l3-rule.yaml"
    drops1=$(policy_drops "$lab" node1)
    drops2=$(policy_drops "$lab" node2)
    labtest_expect_ping "$lab" fe1 be1
    labtest_expect_ping "$lab" fe1 be2
    labtest_expect_tcp "$lab" fe1 be1
    expect_no_ping "$lab" other be1
    expect_no_ping "$lab" other be2
    labtest_expect_ping "$lab" be1 other  # other selects nothing: the backend's own traffic passes
    ((  $(policy_drops "$lab" node2) >= drops2 + 2 )) || labtest_fail "$routing: node2 counted no policy drop for other -> be1"
    ((  $(policy_drops "$lab" node1) >= drops1 + 2 )) || labtest_fail "$routing: node1 counted no policy drop for other -> be2"

    # Revocation: an established connection stops within 1 s of its allow
    # leaving node2's datapath (how long the change takes to get there
    # through etcd is the apply's latency, not this property).
    echo_stream "$lab" fe1 be1 8 >"$LABTEST_TMP/stream" &
    stream=$!
    deadline=$((SECONDS + 6))
    until (($(wc -l <"$LABTEST_TMP/stream") >= 5)); do
        ((SECONDS < deadline)) || labtest_fail "$routing: the TCP stream fe1 -> be1 got no 5 answers in 6 s"
        sleep 0.1
    done
    sed 's/class: frontend/class: nobody/' "$policies/l3-rule.yaml" >"$LABTEST_TMP/revoked.yaml"
    applied=$(date +%s.%N)
    lab_cmd ctl "$lab" node1 -- apply -f "$LABTEST_TMP/revoked.yaml" >/dev/null
    be1_addr=$(labtest_addr "$lab" be1)
    deadline=$((SECONDS + 10))
    # be1 keeps its ingress enforced with no rule left: the allow is gone from node2's maps.
    until [[ "$(lab_cmd ctl "$lab" node2 -- -o json module call policy-l3l4 Status | python3 -c '
import json, sys
print(next(e["rules"] for e in json.load(sys.stdin)["endpoints"] if e["ipv4"] == sys.argv[1]))' "$be1_addr")" == 0 ]]; do
        ((SECONDS < deadline)) || labtest_fail "$routing: node2 never dropped the revoked allow from its maps"
        sleep 0.05
    done
    revoked=$(date +%s.%N)
    wait "$stream" || true
    before=$(awk -v t="$applied" '$1 < t' "$LABTEST_TMP/stream" | wc -l)
    late=$(awk -v t="$revoked" '$1 > t + 1.0' "$LABTEST_TMP/stream" | wc -l)
    ((before >= 5)) || labtest_fail "$routing: the TCP stream fe1 -> be1 got $before answers before the revocation"
    ((late == 0)) || labtest_fail "$routing: the TCP stream fe1 -> be1 got $late answers more than 1 s after its allow left node2's maps"
    labtest_log "$routing: established TCP fe1 -> be1: $before answers, none later than 1 s after the revocation reached node2 ($(python3 -c "print(round($revoked - $applied, 2))") s after the apply)"
    labtest_apply_policy "$lab" "$policies/l3-rule.yaml"

    # NetworkPolicy: backends open nothing, yet answer the frontend.
    labtest_apply_policy "$lab" "$policies/backend-no-egress.yaml"
    expect_no_ping "$lab" be1 other
    expect_no_ping "$lab" be2 other
    labtest_expect_tcp "$lab" fe1 be1
    labtest_expect_ping "$lab" fe1 be2

    # l4-rule: svc may open TCP 80, nothing else.
    labtest_apply_policy "$lab" "$policies/l4-rule.yaml"
    expect_tcp_port "$lab" svc other 80
    expect_no_tcp "$lab" svc other 7001
    expect_no_ping "$lab" svc other

    # Deny wins over l3-rule's allow: fe1 loses TCP 7001 of the backends, keeps the rest.
    labtest_apply_policy "$lab" "$policies/deny-frontend-7001.yaml"
    expect_no_tcp "$lab" fe1 be1 7001
    expect_no_tcp "$lab" fe1 be2 7001
    labtest_expect_ping "$lab" fe1 be1

    # Every policy deleted: nothing is enforced any more.
    for object in "cnp l3-rule" "cnp l4-rule" "netpol backend-no-egress" "ccnp deny-frontend-7001"; do
        # shellcheck disable=SC2086
        lab_cmd ctl "$lab" node1 -- delete $object >/dev/null || labtest_fail "delete $object failed"
    done
    deadline=$((SECONDS + 10))
    until lab_cmd exec "$lab" other -- ping -c 1 -W 1 -q "$(labtest_addr "$lab" be1)" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || labtest_fail "$routing: other -> be1 still dropped after every policy was deleted"
    done
    labtest_expect_tcp "$lab" svc other
    labtest_expect_ping "$lab" be1 other
    echo "ok: $routing: policies enforced as written, statefully, revoked within 1 s, and lifted"
    lab_cmd down "$lab" >/dev/null || labtest_fail "down $lab failed"
done
