#!/usr/bin/env bash
# A node's membraned killed with SIGKILL and restarted while a TCP stream runs
# between pods on two nodes (both routing modes): the stream goes on without
# error and never stalls for a whole second; after the restart the node's
# endpoints (ids, addresses, MACs, interfaces) and identities are the same;
# a new pod can be added on the restarted node and reached both ways. The
# stream is carried by the routing stage throughout, daemon or not: neither
# node's kernel forwards a datagram of it (in direct mode the node routes
# alone would deliver it), and the stage's counter accounts for it.
set -euo pipefail
source "${MEMBRANE_SOURCE_DIR:?}/lab/lab_test_lib.sh"
labtest_init

stream_seconds=15

for routing in vxlan direct; do
    # vxlan: kill the sender's node; direct: the receiver's.
    if [[ $routing == vxlan ]]; then victim=node1; else victim=node2; fi
    lab=$(labtest_name "r${routing:0:1}")
    labtest_topology "$lab" "$routing" a1:node1 a2:node1 b1:node2 b2:node2 >"$LABTEST_TMP/$lab.toml"
    labtest_up "$LABTEST_TMP/$lab.toml"

    endpoints_before=$(labtest_endpoints "$lab" "$victim")
    identities_before=$(lab_cmd ctl "$lab" "$victim" -- -o json identity list)
    [[ $(python3 -c 'import json,sys; print(len(json.loads(sys.argv[1])))' "$endpoints_before") == 2 ]] ||
        labtest_fail "$victim should have 2 endpoints: $endpoints_before"

    server=$(labtest_addr "$lab" b1)
    lab_cmd exec "$lab" b1 -- timeout $((stream_seconds + 300)) iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
    labtest_wait_listen "$lab" b1 5201
    labtest_mark "$lab" a1 b1
    lab_cmd exec "$lab" a1 -- timeout $((stream_seconds + 20)) \
        iperf3 -c "$server" -p 5201 -t "$stream_seconds" -i 1 -J >"$LABTEST_TMP/iperf.json" 2>&1 &
    client=$!

    sleep 3
    lab_cmd node stop "$lab" "$victim" --signal KILL
    sleep 2  # the agent is gone: the attached programs and pinned maps carry the stream
    lab_cmd node start "$lab" "$victim"

    wait "$client" || { cat "$LABTEST_TMP/iperf.json" >&2; labtest_fail "$routing: iperf3 stream failed across the restart"; }
    python3 - "$LABTEST_TMP/iperf.json" <<'PY' || labtest_fail "$routing: the stream stalled or failed"
import json, sys
report = json.load(open(sys.argv[1]))
if report.get("error"):
    sys.exit(f"iperf3 error: {report['error']}")
intervals = [i["sum"] for i in report["intervals"]]
stalled = [f"{s['start']:.0f}-{s['end']:.0f}s" for s in intervals if s["bytes"] == 0]
received = report["end"]["sum_received"]["bytes"]
print(f"stream: {len(intervals)} intervals, {received / 1e6:.0f} MB received, "
      f"{report['end']['sum_received']['bits_per_second'] / 1e9:.2f} Gbit/s")
if stalled:
    sys.exit(f"no byte moved in {', '.join(stalled)}")
if len(intervals) < 14:
    sys.exit(f"only {len(intervals)} intervals")
PY
    labtest_expect_bpf_routed "$lab" a1 b1

    endpoints_after=$(labtest_endpoints "$lab" "$victim")
    identities_after=$(lab_cmd ctl "$lab" "$victim" -- -o json identity list)
    [[ "$endpoints_after" == "$endpoints_before" ]] ||
        labtest_fail "$routing: endpoints changed across the restart:
before: $endpoints_before
after:  $endpoints_after"
    [[ "$identities_after" == "$identities_before" ]] ||
        labtest_fail "$routing: identities changed across the restart:
before: $identities_before
after:  $identities_after"
    echo "endpoints and identities of $victim unchanged across the restart"

    # A new pod on the restarted node: a fresh address, reachable both ways.
    lab_cmd pod add "$lab" c1 "$victim" --label app=c1
    addresses=$(labtest_json "$lab" "' '.join(sorted(p['address'] for p in s['pods']))")
    [[ $(tr ' ' '\n' <<<"$addresses" | sort -u | wc -l) == 5 ]] ||
        labtest_fail "$routing: addresses are not distinct after the restart: $addresses"
    if [[ $victim == node1 ]]; then peer=b2; else peer=a2; fi
    labtest_serve "$lab" c1
    labtest_serve "$lab" "$peer"
    labtest_expect_ping "$lab" "$peer" c1
    labtest_expect_ping "$lab" c1 "$peer"
    labtest_expect_tcp "$lab" "$peer" c1
    labtest_expect_tcp "$lab" c1 "$peer"
    lab_cmd down "$lab"
    echo "PASS: $routing: SIGKILL and restart of $victim's membraned under a TCP stream"
done
