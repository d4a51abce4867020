#!/usr/bin/env python3
"""The rules kube-proxy would write for N ClusterIP services, for bench/service_bench.sh.

    service_rules.py iptables N NODE_IP [BACKENDS]   an iptables-restore file (nat and filter)
    service_rules.py nft N NODE_IP [BACKENDS]        an `nft -f` file (table ip kube-proxy)
    service_rules.py nodeport-iptables LOCAL REMOTE  bench/nodeport_bench.sh's NodePort services,
                                                     for iptables-restore --noflush
    service_rules.py services N                      the N ClusterIPs, one a line
    service_rules.py backends [BACKENDS]             the backend addresses, one a line

Service i is bench/svc-<i>, port "http" 80/TCP, ClusterIP 10.96.0.10 + i, with
BACKENDS (default 10) endpoints 10.213.129.1.. on port 8080: every service has
its own chains, the endpoints are the same addresses. The pod CIDR is
10.213.128.0/17; the benchmark's client (a host-network process on the node,
NODE_IP, outside that CIDR) is masqueraded, as kube-proxy does for such clients.

iptables mode, the shape of pkg/proxy/iptables/proxier.go (kubernetes 1.28 and
later): nat OUTPUT and PREROUTING jump to KUBE-SERVICES; one rule a service
there (-d CLUSTERIP/32 -p tcp --dport 80 -j KUBE-SVC-<hash>), KUBE-NODEPORTS
last; KUBE-SVC-* marks for masquerade, then picks an endpoint with
`-m statistic --mode random --probability 1/(n-i)` (%0.10f), the last one
without; KUBE-SEP-* marks hairpin traffic and DNATs. Chain hashes: base32 of
sha256(service port name + protocol [+ endpoint]), 16 characters.

nftables mode, the shape of pkg/proxy/nftables/proxier.go as its test
TestOverallNFTablesRules spells it out (kubernetes/kubernetes,
pkg/proxy/nftables/proxier_test.go: baseRules and the "# svc1" block): table ip
kube-proxy, chain services doing `ip daddr . meta l4proto . th dport vmap
@service-ips`, the map typed ipv4_addr . inet_proto . inet_service : verdict,
a chain service-<hash>-ns/name/tcp/port that marks for masquerade and picks an
endpoint with `numgen random mod n vmap { 0 : goto endpoint-..., ... }`, and
per endpoint a chain that marks hairpin traffic and does `meta l4proto tcp dnat
to IP:PORT`. Written as one transaction of `add` commands, as knftables does.
"""
import base64
import hashlib
import ipaddress
import sys

SERVICE_CIDR = "10.96.0.0/16"
FIRST_CLUSTER_IP = ipaddress.IPv4Address("10.96.0.10")
POD_CIDR = "10.213.128.0/17"
FIRST_BACKEND = ipaddress.IPv4Address("10.213.129.1")
SERVICE_PORT, TARGET_PORT = 80, 8080
MAX_SERVICES = 65000  # what the /16 holds after the first 10 addresses


def cluster_ip(i):
    return str(FIRST_CLUSTER_IP + i)


def backends(count):
    return [str(FIRST_BACKEND + j) for j in range(count)]


def port_name(i):
    """kube-proxy's ServicePortName.String(): namespace/name:port."""
    return f"bench/svc-{i:05d}:http"


def hash16(text):
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:16]


def iptables(n, node_ip, endpoints):
    del node_ip  # iptables mode finds node ports with -m addrtype --dst-type LOCAL
    chains, rules = [], []
    for i in range(n):
        name, ip = port_name(i), cluster_ip(i)
        svc = "KUBE-SVC-" + hash16(name + "tcp")
        chains.append(svc)
        rules.append(f'-A KUBE-SERVICES -d {ip}/32 -p tcp -m comment --comment "{name} cluster IP" '
                     f'-m tcp --dport {SERVICE_PORT} -j {svc}')
        rules.append(f'-A {svc} ! -s {POD_CIDR} -d {ip}/32 -p tcp -m comment --comment "{name} cluster IP" '
                     f'-m tcp --dport {SERVICE_PORT} -j KUBE-MARK-MASQ')
        seps = []
        for j, backend in enumerate(endpoints):
            endpoint = f"{backend}:{TARGET_PORT}"
            sep = "KUBE-SEP-" + hash16(name + "tcp" + endpoint)
            chains.append(sep)
            seps.append(sep)
            left = len(endpoints) - j
            statistic = f" -m statistic --mode random --probability {1.0 / left:0.10f}" if left > 1 else ""
            rules.append(f'-A {svc} -m comment --comment "{name} -> {endpoint}"{statistic} -j {sep}')
        for backend, sep in zip(endpoints, seps):
            rules.append(f'-A {sep} -s {backend}/32 -m comment --comment "{name}" -j KUBE-MARK-MASQ')
            rules.append(f'-A {sep} -p tcp -m comment --comment "{name}" -m tcp '
                         f'-j DNAT --to-destination {backend}:{TARGET_PORT}')
    return iptables_file(chains, rules)


def iptables_file(chains, rules, builtins=True):
    """kube-proxy's iptables-restore file around its service chains and rules:
    the filter table's jumps, KUBE-NODEPORTS last in KUBE-SERVICES, the mark
    and masquerade chains. builtins=False leaves the built-in chains'
    declarations out, for `iptables-restore --noflush` into a namespace whose
    own rules must stay."""
    rules = rules + ['-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the '
                     'last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS']
    out = ["*filter"] + ([":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"] if builtins else [])
    out += [f":{c} - [0:0]" for c in ("KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD", "KUBE-NODEPORTS",
                                        "KUBE-PROXY-FIREWALL", "KUBE-SERVICES", "KUBE-PROXY-CANARY")]
    out += [
        '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
        '-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS',
        '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES',
        '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
        '-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
        '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES',
        '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
        '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP',
        '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT',
        '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
        "COMMIT",
        "*nat",
    ]
    if builtins:
        out += [":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]"]
    out += [f":{c} - [0:0]" for c in ("KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ")]
    out += [f":{c} - [0:0]" for c in chains]
    out += [
        '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
        "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000",
        "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
        "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000",
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
    ]
    out += rules
    out.append("COMMIT")
    return "\n".join(out) + "\n"


def nodeport_iptables(local_backend, remote_backend):
    """bench/nodeport_bench.sh's two NodePort services (bench/local, bench/remote:
    ports 7100 and 5201 on NodePorts 30100/30110 and 30101/30111, one backend
    each) as kube-proxy's iptables mode writes them with externalTrafficPolicy
    Cluster: KUBE-NODEPORTS -> KUBE-EXT (masquerade every connection) -> KUBE-SVC -> KUBE-SEP."""
    chains, rules = [], []
    for name, ip, backend, ports in (("local", "10.96.0.20", local_backend, ((7100, 30100), (5201, 30110))),
                                     ("remote", "10.96.0.21", remote_backend, ((7100, 30101), (5201, 30111)))):
        for port, node_port in ports:
            spn = f"bench/{name}:{port}"
            svc, ext = "KUBE-SVC-" + hash16(spn + "tcp"), "KUBE-EXT-" + hash16(spn + "tcp")
            sep = "KUBE-SEP-" + hash16(spn + "tcp" + backend)
            chains += [svc, ext, sep]
            rules += [
                f'-A KUBE-SERVICES -d {ip}/32 -p tcp -m comment --comment "{spn} cluster IP" -m tcp --dport {port} -j {svc}',
                f'-A KUBE-NODEPORTS -p tcp -m comment --comment "{spn}" -m tcp --dport {node_port} -j {ext}',
                f'-A {ext} -m comment --comment "masquerade traffic for {spn} external destinations" -j KUBE-MARK-MASQ',
                f'-A {ext} -j {svc}',
                f'-A {svc} ! -s 10.0.0.0/8 -d {ip}/32 -p tcp -m comment --comment "{spn} cluster IP" -m tcp '
                f'--dport {port} -j KUBE-MARK-MASQ',
                f'-A {svc} -m comment --comment "{spn} -> {backend}:{port}" -j {sep}',
                f'-A {sep} -s {backend}/32 -m comment --comment "{spn}" -j KUBE-MARK-MASQ',
                f'-A {sep} -p tcp -m comment --comment "{spn}" -m tcp -j DNAT --to-destination {backend}:{port}',
            ]
    return iptables_file(chains, rules, builtins=False)


def nft(n, node_ip, endpoints):
    t = "ip kube-proxy"
    out = [
        f'add table {t} {{ comment "rules for kube-proxy" ; }}',
        f'add set {t} cluster-ips {{ type ipv4_addr ; comment "Active ClusterIPs" ; }}',
        f'add set {t} nodeport-ips {{ type ipv4_addr ; comment "IPs that accept NodePort traffic" ; }}',
        f'add map {t} firewall-ips {{ type ipv4_addr . inet_proto . inet_service : verdict ; comment "destinations that are subject to LoadBalancerSourceRanges" ; }}',
        f'add map {t} no-endpoint-nodeports {{ type inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }}',
        f'add map {t} no-endpoint-services {{ type ipv4_addr . inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to services with no endpoints" ; }}',
        f'add map {t} service-ips {{ type ipv4_addr . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }}',
        f'add map {t} service-nodeports {{ type inet_proto . inet_service : verdict ; comment "NodePort traffic" ; }}',
        f"add chain {t} cluster-ips-check",
        f"add chain {t} filter-prerouting-pre-dnat {{ type filter hook prerouting priority -110 ; }}",
        f"add chain {t} filter-output-pre-dnat {{ type filter hook output priority -110 ; }}",
        f"add chain {t} filter-forward {{ type filter hook forward priority 0 ; }}",
        f"add chain {t} filter-input {{ type filter hook input priority 0 ; }}",
        f"add chain {t} filter-output {{ type filter hook output priority 0 ; }}",
        f"add chain {t} firewall-check",
        f"add chain {t} mark-for-masquerade",
        f"add chain {t} masquerading",
        f"add chain {t} nat-output {{ type nat hook output priority -100 ; }}",
        f"add chain {t} nat-postrouting {{ type nat hook postrouting priority 100 ; }}",
        f"add chain {t} nat-prerouting {{ type nat hook prerouting priority -100 ; }}",
        f"add chain {t} nodeport-endpoints-check",
        f'add chain {t} reject-chain {{ comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }}',
        f"add chain {t} services",
        f"add chain {t} service-endpoints-check",
        f'add rule {t} cluster-ips-check ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"',
        f'add rule {t} cluster-ips-check ip daddr {{ {SERVICE_CIDR} }} drop comment "Drop traffic to unallocated ClusterIPs"',
        f"add rule {t} filter-prerouting-pre-dnat ct state new jump firewall-check",
        f"add rule {t} filter-forward ct state new jump service-endpoints-check",
        f"add rule {t} filter-forward ct state new jump cluster-ips-check",
        f"add rule {t} filter-input ct state new jump nodeport-endpoints-check",
        f"add rule {t} filter-input ct state new jump service-endpoints-check",
        f"add rule {t} filter-output ct state new jump service-endpoints-check",
        f"add rule {t} filter-output-pre-dnat ct state new jump firewall-check",
        f"add rule {t} filter-output ct state new jump cluster-ips-check",
        f"add rule {t} firewall-check ip daddr . meta l4proto . th dport vmap @firewall-ips",
        f"add rule {t} mark-for-masquerade mark set mark or 0x4000",
        f"add rule {t} masquerading mark and 0x4000 == 0 return",
        f"add rule {t} masquerading mark set mark xor 0x4000",
        f"add rule {t} masquerading masquerade fully-random",
        f"add rule {t} nat-output jump services",
        f"add rule {t} nat-postrouting jump masquerading",
        f"add rule {t} nat-prerouting jump services",
        f"add rule {t} nodeport-endpoints-check ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports",
        f"add rule {t} reject-chain reject",
        f"add rule {t} services ip daddr . meta l4proto . th dport vmap @service-ips",
        f"add rule {t} services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports",
        f"add element {t} nodeport-ips {{ {node_ip} }}",
        f"add rule {t} service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services",
    ]
    for i in range(n):
        name, ip = port_name(i), cluster_ip(i)
        namespace_name, port = name.rsplit(":", 1)
        base = f"{namespace_name}/tcp/{port}"  # ns/name/tcp/port
        svc = f"service-{hash16(name + 'tcp')[:8]}-{base}"
        eps = [(f"endpoint-{hash16(name + 'tcp' + b + ':' + str(TARGET_PORT))[:8]}-{base}__{b}/{TARGET_PORT}", b)
               for b in endpoints]
        # The chains before the rules that jump to them: nft resolves a goto when it reads it.
        out.append(f"add chain {t} {svc}")
        out += [f"add chain {t} {chain}" for chain, _ in eps]
        out.append(f"add rule {t} {svc} ip daddr {ip} ip saddr != {POD_CIDR} jump mark-for-masquerade")
        vmap = " , ".join(f"{j} : goto {chain}" for j, (chain, _) in enumerate(eps))
        out.append(f"add rule {t} {svc} numgen random mod {len(eps)} vmap {{ {vmap} }}")
        for chain, b in eps:
            out.append(f"add rule {t} {chain} ip saddr {b} jump mark-for-masquerade")
            out.append(f"add rule {t} {chain} meta l4proto tcp dnat to {b}:{TARGET_PORT}")
        out.append(f"add element {t} cluster-ips {{ {ip} }}")
        out.append(f"add element {t} service-ips {{ {ip} . tcp . {SERVICE_PORT} : goto {svc} }}")
    return "\n".join(out) + "\n"


def main(argv):
    def count(text, what, low, high):
        if not text.isdigit() or not low <= int(text) <= high:
            sys.exit(f"service_rules: {what} '{text}' is not within {low}..{high}")
        return int(text)

    if len(argv) in (4, 5) and argv[1] in ("iptables", "nft"):
        n = count(argv[2], "N", 1, MAX_SERVICES)
        ipaddress.IPv4Address(argv[3])
        endpoints = backends(count(argv[4], "BACKENDS", 1, 250) if len(argv) == 5 else 10)
        sys.stdout.write((iptables if argv[1] == "iptables" else nft)(n, argv[3], endpoints))
    elif len(argv) == 4 and argv[1] == "nodeport-iptables":
        ipaddress.IPv4Address(argv[2])
        ipaddress.IPv4Address(argv[3])
        sys.stdout.write(nodeport_iptables(argv[2], argv[3]))
    elif len(argv) == 3 and argv[1] == "services":
        sys.stdout.write("".join(cluster_ip(i) + "\n" for i in range(count(argv[2], "N", 1, MAX_SERVICES))))
    elif len(argv) in (2, 3) and argv[1] == "backends":
        sys.stdout.write("".join(b + "\n" for b in backends(count(argv[2], "BACKENDS", 1, 250) if len(argv) == 3 else 10)))
    else:
        sys.exit(__doc__.split("\n\n")[1])


if __name__ == "__main__":
    main(sys.argv)
