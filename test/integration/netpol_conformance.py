#!/usr/bin/env python3
"""NetworkPolicy conformance, after the model of Kubernetes' e2e suite
(test/e2e/network/netpol): namespaces x, y, z, pods a, b, c in each, every
pod serving TCP and UDP on ports 80 and 81. Each case applies policies (or
changes pod or namespace labels) and then probes every (from, to, port) of
the 9 x 9 x 4 matrix from inside the pods, until two rounds in a row see the
matrix the case expects (a probe that timed out by chance cannot hide a
leaked allow), or 15 s pass.

Every denial must be the policy stage's: in the last round of a case the
nodes' `drop_policy` counters grow by at least the number of denied probes
(each sends at least one packet), and not at all when everything is
allowed, so a probe blocked by anything else (a broken route, a stage
missing) cannot pass for a policy's verdict.

The expected matrices are written by hand from the Kubernetes spec, case by
case, as the upstream suite writes them: they are not computed by a model of
the policies, so they do not share the module's mistakes. A pod reaching
itself goes through its own loopback and is always allowed (as upstream).

Every case's matrix differs from the one before it, so no case can pass on
the state its predecessor left.

With --trace MEMBRANECTL, the cases in TRACED are also asked of
`membranectl policy trace` once their matrix is right: every pair of pods on
every port, on the source's node and, for a packet that leaves it, on the
destination's. Each trace must agree with its own control plane, and the
verdict it reaches must be what the probes saw.

With --probe CASES (numbers, e.g. 1,2,5), every case's change is still made
in order, but only those cases are probed (and traced): a second run in
another routing mode checks what differs there (how a source's identity
reaches the other node) without the whole matrix's time.

Usage: netpol_conformance.py [--trace MEMBRANECTL] [--probe CASES] LAB_COMMAND... -- LAB
  LAB_COMMAND: how to run membrane-lab (e.g. python3 lab/membrane_lab.py --build-dir build)
  The lab runs policy-l3l4 and has the pods above (lab_policy_conformance_test.sh makes it).
"""
import concurrent.futures
import json
import select
import subprocess
import sys
import tempfile
import time

NAMESPACES = ["x", "y", "z"]
PODS = [ns + p for ns in NAMESPACES for p in "abc"]  # "xa" is pod a of namespace x
PORTS = ["tcp/80", "tcp/81", "udp/80", "udp/81"]
SETTLE_SECONDS = 15
# Cases also traced with --trace (by the start of their title): ingress by namespace and
# pod, ports, egress, named ports across nodes, ipBlock with except, two policies adding up.
TRACED = ("deny-all ingress in x", "namespaceSelector AND podSelector", "ports: x/a admits TCP 80",
          "egress named port", "egress: x/a sends only", "ipBlock with except", "two policies select x/a")

# In each pod: one process serving TCP and UDP on 80 and 81; every answer is the pod's name,
# so a probe knows which pod answered. Prints "ready" once every socket is bound.
SERVER = r'''
import selectors, socket, sys
name = sys.argv[1].encode() + b"\n"
sel = selectors.DefaultSelector()
for port in (80, 81):
    t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind(("0.0.0.0", port)); t.listen(128); t.setblocking(False); sel.register(t, selectors.EVENT_READ, "tcp")
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", port)); u.setblocking(False)
    sel.register(u, selectors.EVENT_READ, "udp")
print("ready", flush=True)
while True:
    for key, _ in sel.select():
        s = key.fileobj
        try:
            if key.data == "tcp":
                c, _ = s.accept(); c.settimeout(1); c.sendall(name); c.close()
            else:
                _, peer = s.recvfrom(2048); s.sendto(name, peer)
        except OSError:
            pass
'''

# In one pod, for the whole run: at each line on stdin, probes every target on every port at once
# and prints {"<pod> <port>": true|false} as one line (a process kept, not one a round: 9 Python
# start-ups a round cost more than the probes). A probe passes only if the named pod itself
# answered. A denied probe costs its timeout (a policy drops silently), which sets the length of
# a round: 0.5 s for TCP, 2 x 0.3 s for UDP, hundreds of times a lab answer's time. One that
# times out by chance is probed again (the matrix must be seen twice in a row), so a short
# timeout costs a round, never a verdict.
PROBER = r'''
import json, socket, sys, threading
targets = json.loads(sys.argv[1])
def probe(result, pod, ip, port):
    proto, number = port.split("/")
    ok = False
    try:
        if proto == "tcp":
            with socket.create_connection((ip, int(number)), timeout=0.5) as s:
                ok = s.recv(64).decode().strip() == pod
        else:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(0.3)
                for _ in range(2):
                    s.sendto(b"probe\n", (ip, int(number)))
                    try:
                        ok = s.recv(64).decode().strip() == pod
                        break
                    except socket.timeout:
                        pass
    except OSError:
        pass
    result[pod + " " + port] = ok
for _ in sys.stdin:
    result = {}
    threads = [threading.Thread(target=probe, args=(result, pod, ip, port)) for pod, ip in targets.items()
               for port in ("tcp/80", "tcp/81", "udp/80", "udp/81")]
    for t in threads: t.start()
    for t in threads: t.join()
    print(json.dumps(result), flush=True)
'''


def fail(message):
    print("FAIL: " + message, file=sys.stderr)
    sys.exit(1)


class Lab:
    def __init__(self, command, name):
        self.command, self.name = command, name
        status = json.loads(self.run("status", name, "-o", "json"))
        self.pods = {p["name"]: p for p in status["pods"]}
        self.nodes = [n["name"] for n in status["nodes"]]
        self.buses = {n["name"]: n["bus"] for n in status["nodes"]}
        self.servers = []
        self.probers = {}

    def run(self, *args, stdin=None):
        done = subprocess.run(self.command + list(args), input=stdin, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            fail(f"membrane-lab {' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}")
        return done.stdout

    def ctl(self, node, *args):
        return self.run("ctl", self.name, node, "--", *args)

    def apply(self, yaml_text):
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            f.write(yaml_text)
            f.flush()
            self.ctl("node1", "apply", "-f", f.name)

    def delete(self, kind, name, namespace):
        self.ctl("node1", "delete", kind, name, "-n", namespace)

    def set_pod_label(self, pod, key, value):
        spec = self.pods[pod]
        endpoint = json.loads(self.ctl(spec["node"], "-o", "json", "endpoint", "get", str(spec["endpoint_id"])))
        labels = dict(endpoint["labels"])
        labels[key] = value
        self.ctl(spec["node"], "endpoint", "labels", str(spec["endpoint_id"]), *[f"{k}={v}" for k, v in labels.items()])

    def policy_drops(self):
        """The packets the nodes' policy stages dropped so far (membranectl stats)."""
        return sum(json.loads(self.ctl(node, "-o", "json", "stats"))["drop_policy"] for node in self.nodes)

    def in_pod(self, pod, *argv):
        """argv run in the pod's network namespace. Straight through `ip netns exec`, not
        `membrane-lab exec` (which loads the lab first): 9 probers start at once each round."""
        return ["ip", "netns", "exec", f"ml-{self.name}-{pod}", *argv]

    def serve(self):
        for pod in PODS:
            server = subprocess.Popen(self.in_pod(pod, "timeout", "900", sys.executable, "-c", SERVER, pod),
                                      stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
            self.servers.append(server)
            if server.stdout.readline().strip() != "ready":
                fail(f"the server in pod {pod} did not start")
        targets = json.dumps({pod: self.pods[pod]["address"] for pod in PODS})
        for pod in PODS:
            self.probers[pod] = subprocess.Popen(self.in_pod(pod, "timeout", "900", sys.executable, "-c", PROBER, targets),
                                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def stop(self):
        for process in self.servers + list(self.probers.values()):
            process.terminate()
        for process in self.servers + list(self.probers.values()):
            process.wait(timeout=10)

    def probe(self):
        """The whole matrix: {(from, to, port): reached}, every source probing at once."""
        for pod, prober in self.probers.items():
            prober.stdin.write("probe\n")
            prober.stdin.flush()
        matrix = {}
        for pod, prober in self.probers.items():
            # A round is 36 probes of at most 0.6 s, in parallel: 30 s means a stuck prober.
            if not select.select([prober.stdout], [], [], 30)[0]:
                fail(f"the prober in pod {pod} gave no answer in 30 s")
            line = prober.stdout.readline()
            if not line:
                fail(f"the prober in pod {pod} exited (status {prober.poll()})")
            for key, ok in json.loads(line).items():
                to, port = key.split()
                matrix[(pod, to, port)] = ok
        return matrix


def trace_reaches(lab, membranectl, source, target, port):
    """Whether `membranectl policy trace` says (source, target, port) gets through: on the
    source's node, then on the target's if the packet leaves for it. Fails on a trace that
    disagrees with its control plane, or that ends where no pod-to-pod packet may."""
    proto, number = port.split("/")
    src, dst = lab.pods[source], lab.pods[target]
    for node in [src["node"]] + ([dst["node"]] if dst["node"] != src["node"] else []):
        done = subprocess.run([membranectl, "--bus", lab.buses[node], "-o", "json", "policy", "trace",
                               "--from", f"{source[0]}/{source}", "--to", f"{target[0]}/{target}",
                               "--dport", f"{number}/{proto}"], capture_output=True, text=True, timeout=30)
        what = f"policy trace on {node}: {source} -> {target} {port}"
        if done.returncode not in (0, 3):
            fail(f"{what}: {done.stderr.strip()}")
        result = json.loads(done.stdout)
        if not result["agree"]:
            fail(f"{what}: the datapath disagrees with the control plane: {'; '.join(result['disagreements'])}")
        last = result["steps"][-1]
        if last["action"] == "dropped":
            return False
        if node == dst["node"]:
            if last["counted"] != "delivered_local":
                fail(f"{what}: ends with {last['stage_name']} {last['action']} {last['counted']}, not a delivery")
            return True
        if last["counted"] not in ("to_overlay", "fib_forwarded"):
            fail(f"{what}: ends with {last['stage_name']} {last['action']} {last['counted']} on the source's node")
    return True


def check_traces(lab, membranectl, seen):
    """Every pair of distinct pods on every port traced; each verdict must be what the probes saw."""
    keys = [k for k in seen if k[0] != k[1]]
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        traced = dict(zip(keys, pool.map(lambda k: trace_reaches(lab, membranectl, *k), keys)))
    wrong = sorted(k for k in keys if traced[k] != seen[k])
    if wrong:
        fail(f"{len(wrong)} traces differ from the probes, e.g. " +
             ", ".join(f"{f}->{t} {p}: traced {'allowed' if traced[(f, t, p)] else 'denied'}" for f, t, p in wrong[:12]))
    return len(keys)


def peers(pods, ports=PORTS):
    """What an isolated pod admits: (peer, port) pairs."""
    return {(pod, port) for pod in pods for port in ports}


def expect(ingress=None, egress=None):
    """The matrix when the pods in `ingress` admit only their (from, port) pairs and the pods
    in `egress` send only to their (to, port) pairs; every other pod is not isolated. A
    connection needs the sender's egress and the receiver's ingress to allow it; its
    replies need nothing more."""
    ingress, egress = ingress or {}, egress or {}
    return {(f, t, p): f == t or ((t not in ingress or (f, p) in ingress[t]) and
                                  (f not in egress or (t, p) in egress[f]))
            for f in PODS for t in PODS for p in PORTS}


def in_ns(*namespaces):
    return [p for p in PODS if p[0] in namespaces]


def grid(matrix):
    """Rows: from; columns: to; per cell the four ports (T80 T81 U80 U81) as 1/0."""
    lines = ["from\\to " + " ".join(f"{t:>4}" for t in PODS)]
    for f in PODS:
        cells = ["".join("1" if matrix[(f, t, p)] else "." for p in PORTS) for t in PODS]
        lines.append(f"{f:>7} " + " ".join(cells))
    return "\n".join(lines)


def netpol(name, namespace, pod_selector, spec):
    """A NetworkPolicy document; `spec` is the YAML below podSelector (indented 2)."""
    return (f"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: {name}\n"
            f"  namespace: {namespace}\nspec:\n  podSelector: {pod_selector}\n{spec}")


def namespace(name, ns_label):
    return f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n  labels:\n    ns: {ns_label}\n"


def cases(lab):
    """(title, change, expected matrix) in order; each change builds on the ones before."""
    subnet = ".".join(lab.pods["xa"]["address"].split(".")[:2]) + ".0.0/16"  # every pod of the lab
    yb = lab.pods["yb"]["address"] + "/32"
    pod_a = "{matchLabels: {pod: a}}"
    return [
        ("no policy: everything reaches everything",
         lambda: None, expect()),
        ("deny-all ingress in x (empty podSelector, policyTypes Ingress, no rules)",
         lambda: lab.apply(netpol("deny-all", "x", "{}", "  policyTypes: [Ingress]\n")),
         expect(ingress={t: set() for t in in_ns("x")})),
        ("allow x/a from its own namespace; deny-all deleted",
         lambda: (lab.apply(netpol("allow-xa", "x", pod_a, "  ingress:\n  - from:\n    - podSelector: {}\n")),
                  lab.delete("netpol", "deny-all", "x")),
         expect(ingress={"xa": peers(in_ns("x"))})),
        ("policy changed: x/a from namespace y (namespaceSelector)",
         lambda: lab.apply(netpol("allow-xa", "x", pod_a,
                                  "  ingress:\n  - from:\n    - namespaceSelector: {matchLabels: {ns: y}}\n")),
         expect(ingress={"xa": peers(in_ns("y"))})),
        ("namespaceSelector AND podSelector in one peer: only y/b",
         lambda: lab.apply(netpol("allow-xa", "x", pod_a,
                                  "  ingress:\n  - from:\n    - namespaceSelector: {matchLabels: {ns: y}}\n"
                                  "      podSelector: {matchLabels: {pod: b}}\n")),
         expect(ingress={"xa": peers(["yb"])})),
        ("two peers (OR): pods b of x, or namespace z",
         lambda: lab.apply(netpol("allow-xa", "x", pod_a,
                                  "  ingress:\n  - from:\n    - podSelector: {matchLabels: {pod: b}}\n"
                                  "    - namespaceSelector: {matchLabels: {ns: z}}\n")),
         expect(ingress={"xa": peers(["xb"] + in_ns("z"))})),
        ("matchExpressions: pods In [b, c] of namespaces NotIn [y]",
         lambda: lab.apply(netpol("allow-xa", "x", pod_a,
                                  "  ingress:\n  - from:\n    - namespaceSelector:\n        matchExpressions:\n"
                                  "        - {key: ns, operator: NotIn, values: [y]}\n      podSelector:\n"
                                  "        matchExpressions:\n        - {key: pod, operator: In, values: [b, c]}\n")),
         expect(ingress={"xa": peers(["xb", "xc", "zb", "zc"])})),
        ("ports: x/a admits TCP 80 from anyone, nothing else",
         lambda: lab.apply(netpol("allow-xa", "x", pod_a, "  ingress:\n  - ports:\n    - {protocol: TCP, port: 80}\n")),
         expect(ingress={"xa": peers(PODS, ["tcp/80"])})),
        ("endPort: TCP 80-81",
         lambda: lab.apply(netpol("allow-xa", "x", pod_a,
                                  "  ingress:\n  - ports:\n    - {protocol: TCP, port: 80, endPort: 81}\n")),
         expect(ingress={"xa": peers(PODS, ["tcp/80", "tcp/81"])})),
        ("named port: x/a's container port serve-81-udp (UDP 81)",
         lambda: lab.apply(netpol("allow-xa", "x", pod_a,
                                  "  ingress:\n  - ports:\n    - {protocol: UDP, port: serve-81-udp}\n")),
         expect(ingress={"xa": peers(PODS, ["udp/81"])})),
        ("egress named port: namespace y sends only to serve-81-udp, which x/a declares (on node1; "
         "y/a and y/c are on node2); x/a's ingress policy deleted",
         lambda: (lab.apply(netpol("egress-y", "y", "{}",
                                   "  policyTypes: [Egress]\n  egress:\n"
                                   "  - ports:\n    - {protocol: UDP, port: serve-81-udp}\n")),
                  lab.delete("netpol", "allow-xa", "x")),
         expect(egress={f: {("xa", "udp/81")} for f in in_ns("y")})),
        ("egress: x/a sends only to namespace y, TCP 80 (namespace y's egress policy deleted)",
         lambda: (lab.apply(netpol("egress-xa", "x", pod_a,
                                   "  policyTypes: [Egress]\n  egress:\n  - to:\n"
                                   "    - namespaceSelector: {matchLabels: {ns: y}}\n"
                                   "    ports:\n    - {protocol: TCP, port: 80}\n")),
                  lab.delete("netpol", "egress-y", "y")),
         expect(egress={"xa": peers(in_ns("y"), ["tcp/80"])})),
        ("ipBlock with except: x/a admits the whole pod range but y/b's address",
         lambda: (lab.apply(netpol("allow-xa", "x", pod_a,
                                   f"  ingress:\n  - from:\n    - ipBlock: {{cidr: {subnet}, except: [{yb}]}}\n")),
                  lab.delete("netpol", "egress-xa", "x")),
         expect(ingress={"xa": peers([p for p in PODS if p != "yb"])})),
        ("two policies select x/a: their allows add up (x/b on every port; namespace z on TCP 81)",
         lambda: (lab.apply(netpol("allow-xa", "x", pod_a,
                                   "  ingress:\n  - from:\n    - podSelector: {matchLabels: {pod: b}}\n")),
                  lab.apply(netpol("allow-xa-z", "x", pod_a,
                                   "  ingress:\n  - from:\n    - namespaceSelector: {matchLabels: {ns: z}}\n"
                                   "    ports:\n    - {protocol: TCP, port: 81}\n"))),
         expect(ingress={"xa": peers(["xb"]) | peers(in_ns("z"), ["tcp/81"])})),
        ("ingress and egress in one policy: x/a admits namespace y, sends to namespace z",
         lambda: (lab.apply(netpol("allow-xa", "x", pod_a,
                                   "  policyTypes: [Ingress, Egress]\n"
                                   "  ingress:\n  - from:\n    - namespaceSelector: {matchLabels: {ns: y}}\n"
                                   "  egress:\n  - to:\n    - namespaceSelector: {matchLabels: {ns: z}}\n")),
                  lab.delete("netpol", "allow-xa-z", "x")),
         expect(ingress={"xa": peers(in_ns("y"))}, egress={"xa": peers(in_ns("z"))})),
        ("x/a admits pods b of namespace y",
         lambda: lab.apply(netpol("allow-xa", "x", pod_a,
                                  "  ingress:\n  - from:\n    - namespaceSelector: {matchLabels: {ns: y}}\n"
                                  "      podSelector: {matchLabels: {pod: b}}\n")),
         expect(ingress={"xa": peers(["yb"])})),
        ("pod labels changed: y/b relabelled pod=q is no longer admitted",
         lambda: lab.set_pod_label("yb", "pod", "q"),
         expect(ingress={"xa": set()})),
        ("pod labels changed back: y/b is admitted again",
         lambda: lab.set_pod_label("yb", "pod", "b"),
         expect(ingress={"xa": peers(["yb"])})),
        ("namespace labels changed: namespace y relabelled ns=w, nobody of it is admitted",
         lambda: lab.apply(namespace("y", "w")),
         expect(ingress={"xa": set()})),
        ("namespace labels changed back",
         lambda: lab.apply(namespace("y", "y")),
         expect(ingress={"xa": peers(["yb"])})),
        ("deny-all egress in y, and x/a's policy deleted",
         lambda: (lab.apply(netpol("deny-egress", "y", "{}", "  policyTypes: [Egress]\n")),
                  lab.delete("netpol", "allow-xa", "x")),
         expect(egress={f: set() for f in in_ns("y")})),
        ("allow-all egress in y beside the deny-all: the allow wins (policies only add)",
         lambda: lab.apply(netpol("allow-egress", "y", "{}", "  policyTypes: [Egress]\n  egress:\n  - {}\n")),
         expect()),
        ("deny-all ingress everywhere but an allow-all ingress in z",
         lambda: (lab.delete("netpol", "deny-egress", "y"), lab.delete("netpol", "allow-egress", "y"),
                  [lab.apply(netpol("deny-all", ns, "{}", "  policyTypes: [Ingress]\n")) for ns in NAMESPACES],
                  lab.apply(netpol("allow-all", "z", "{}", "  ingress:\n  - {}\n"))),
         expect(ingress={t: (peers(PODS) if t[0] == "z" else set()) for t in PODS})),
        ("every policy deleted: everything reaches everything again",
         lambda: ([lab.delete("netpol", "deny-all", ns) for ns in NAMESPACES], lab.delete("netpol", "allow-all", "z")),
         expect()),
    ]


def main():
    argv = sys.argv[1:]
    membranectl = None
    if argv[:1] == ["--trace"]:
        membranectl, argv = argv[1], argv[2:]
    probed = None  # every case
    if argv[:1] == ["--probe"]:
        probed, argv = {int(number) for number in argv[1].split(",")}, argv[2:]
    if "--" not in argv:
        fail(__doc__)
    split = argv.index("--")
    lab = Lab(argv[:split], argv[split + 1])
    lab.apply("---\n".join(namespace(ns, ns) for ns in NAMESPACES))
    lab.serve()
    try:
        previous = None
        for number, (title, change, expected) in enumerate(cases(lab), 1):
            if probed is not None and number not in probed:
                change()
                print(f"-- {number:2}: {title} (changed, not probed)", flush=True)
                continue
            if expected == previous:
                fail(f"case {number} ({title}) expects what the case probed before it left: it could pass without "
                     "a change")
            change()
            started = time.monotonic()
            deadline = started + SETTLE_SECONDS
            matched = 0
            denied = sum(1 for reached in expected.values() if not reached)
            while True:
                drops_before = lab.policy_drops()
                seen = lab.probe()
                # Twice in a row: a probe that timed out by chance cannot hide a leaked allow.
                matched = matched + 1 if seen == expected else 0
                if matched == 2:
                    drops = lab.policy_drops() - drops_before
                    if (denied == 0 and drops != 0) or drops < denied:
                        fail(f"case {number}: {title}\nthe matrix is right, but the policy stages dropped {drops} "
                             f"packets for {denied} denied probes: " +
                             ("something else blocked them" if drops < denied else "with nothing denied"))
                    break
                if time.monotonic() > deadline:
                    wrong = sorted(k for k in expected if seen[k] != expected[k])
                    fail(f"case {number}: {title}\n{len(wrong)} of {len(expected)} probes differ, e.g. "
                         + ", ".join(f"{f}->{t} {p} {'passed' if seen[(f, t, p)] else 'blocked'}"
                                     for f, t, p in wrong[:12])
                         + f"\nexpected (T80 T81 U80 U81):\n{grid(expected)}\nseen:\n{grid(seen)}")
            traced = ""
            if membranectl and title.startswith(TRACED):
                traced_started = time.monotonic()
                count = check_traces(lab, membranectl, seen)
                traced = f"; {count} traces agree ({time.monotonic() - traced_started:.1f} s)"
            print(f"ok {number:2}: {title} ({time.monotonic() - started:.1f} s{traced})", flush=True)
            previous = expected
    finally:
        lab.stop()


if __name__ == "__main__":
    main()
