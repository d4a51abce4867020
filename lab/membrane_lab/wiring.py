"""The kernel plumbing: namespaces, the bpffs, the underlay, and the baseline's links, addresses and routes.

Every link is made directly inside the lab's namespaces; the host gets no link, address or route."""

from __future__ import annotations

import contextlib
import ipaddress
import os
from pathlib import Path

from .errors import LabError
from .names import (NETNS_DIR, OUTSIDE, POD_IF, SWITCH, UNDERLAY_IF, VXLAN_OVERHEAD, baseline_host_if, gateway_of,
                    netns_name, switch_port, vtep_ip, vtep_mac)
from .processes import ip, run, sysctl
from .record import Lab


def list_netns() -> list[str]:
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


def add_netns(lab: Lab, ns: str) -> None:
    lab.note("netns", ns)
    ip("netns", "add", ns)
    ip("-n", ns, "link", "set", "lo", "up")


def mount_bpffs(lab: Lab, path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    lab.note("mounts", str(path))
    run(["mount", "-t", "bpf", "bpf", str(path)])


def mount_cgroup2(lab: Lab, path: Path, cgroup2: Path) -> Path:
    """The cgroup v2 hierarchy (mounted at CGROUP2) again at PATH, visible inside `ip netns exec`
    (lab/membrane_lab/cgroups.py). A bind mount: mounting cgroup2 anew would reset the host's mount
    options (nsdelegate, memory_recursiveprot)."""
    path.mkdir(parents=True, exist_ok=True)
    lab.note("mounts", str(path))
    run(["mount", "--bind", str(cgroup2), str(path)])
    return path


def no_bridge_netfilter(ns: str) -> None:
    """Bridged IPv4/IPv6/ARP frames skip iptables in NS (br_netfilter's sysctls are per namespace and
    default to on once the module is loaded); nothing to do without br_netfilter."""
    for family in ("iptables", "ip6tables", "arptables"):
        with contextlib.suppress(LabError):
            sysctl(ns, f"net.bridge.bridge-nf-call-{family}", "0")


def wire_underlay(lab: Lab) -> str:
    """A bridge in the switch namespace and one veth per node: the nodes are L2 neighbours. Returns the
    switch namespace."""
    switch = netns_name(lab.name, SWITCH)
    add_netns(lab, switch)
    no_bridge_netfilter(switch)  # the switch stands for a wire: it should cost no node's CPU
    ip("-n", switch, "link", "add", "br0", "type", "bridge")
    ip("-n", switch, "link", "set", "br0", "up")
    for name, node in lab.data["nodes"].items():
        add_netns(lab, node["namespace"])
        plug_into_switch(switch, node["namespace"], switch_port(name), node["ip"])
        sysctl(node["namespace"], "net.ipv4.ip_forward", "1")
    outside = lab.data.get("outside")
    if outside:  # a client on the switch that belongs to no node (NodePorts, external IPs from outside)
        add_netns(lab, outside["namespace"])
        plug_into_switch(switch, outside["namespace"], switch_port(OUTSIDE), outside["ip"])
        ip("-n", outside["namespace"], "link", "set", "lo", "up")
    return switch


def plug_into_switch(switch: str, ns: str, port: str, address: str) -> None:
    """NS's UNDERLAY_IF with ADDRESS/24, its peer PORT a port of the switch's bridge. Made directly inside
    the two namespaces: no name ever exists on the host."""
    ip("link", "add", UNDERLAY_IF, "netns", ns, "type", "veth", "peer", "name", port, "netns", switch)
    ip("-n", switch, "link", "set", port, "master", "br0", "up")
    ip("-n", ns, "addr", "add", f"{address}/24", "dev", UNDERLAY_IF)
    ip("-n", ns, "link", "set", UNDERLAY_IF, "up")


def wire_baseline_nodes(lab: Lab) -> None:
    """vxlan: a pod bridge and a VXLAN device per node, routes + static FDB/neighbours (flannel-like);
    direct: routes to each remote pod CIDR via its node IP (routed veths, calico-like)."""
    if lab.baseline_l2:
        wire_baseline_l2_nodes(lab)
        return
    index = lab.data["index"]
    for name, node in lab.data["nodes"].items():
        ns = node["namespace"]
        if lab.data["routing"] == "vxlan":
            mtu = str(1500 - VXLAN_OVERHEAD)
            ip("-n", ns, "link", "add", "cbr0", "type", "bridge")
            ip("-n", ns, "addr", "add", f"{gateway_of(node['pod_cidr'])}/24", "dev", "cbr0")
            ip("-n", ns, "link", "set", "cbr0", "mtu", mtu, "up")
            ip("-n", ns, "link", "add", "vxlan0", "address", vtep_mac(index, node["number"]), "mtu", mtu,
               "type", "vxlan", "id", "1", "local", node["ip"], "dev", UNDERLAY_IF, "dstport", "4789",
               "nolearning")
            ip("-n", ns, "addr", "add", f"{vtep_ip(node['pod_cidr'])}/32", "dev", "vxlan0")
            ip("-n", ns, "link", "set", "vxlan0", "up")
            for other_name, other in lab.data["nodes"].items():
                if other_name == name:
                    continue
                mac = vtep_mac(index, other["number"])
                ip("-n", ns, "route", "add", other["pod_cidr"], "via", vtep_ip(other["pod_cidr"]),
                   "dev", "vxlan0", "onlink")
                ip("-n", ns, "neigh", "add", vtep_ip(other["pod_cidr"]), "lladdr", mac, "dev", "vxlan0",
                   "nud", "permanent")
                run(["bridge", "-n", ns, "fdb", "append", mac, "dev", "vxlan0", "dst", other["ip"]])
        else:
            for other_name, other in lab.data["nodes"].items():
                if other_name != name:
                    ip("-n", ns, "route", "add", other["pod_cidr"], "via", other["ip"], "dev", UNDERLAY_IF)


def next_baseline_address(lab: Lab, node_name: str) -> str:
    node = lab.node(node_name)
    network = ipaddress.ip_network(node["pod_cidr"])
    used = {p["address"] for p in lab.data["pods"].values() if p["node"] == node_name}
    for host in list(network.hosts())[9:]:  # .10 and up; .1 is the gateway
        if str(host) not in used:
            return str(host)
    raise LabError(f"node {node_name}: pod CIDR {node['pod_cidr']} is full")


def wire_baseline_pod(lab: Lab, pod: dict) -> None:
    """Plain kernel wiring, no BPF: the reference the benchmarks compare Membrane with."""
    node = lab.node(pod["node"])
    ns, node_ns = pod["namespace"], node["namespace"]
    host_if = baseline_host_if(lab.name, pod["name"])
    address = next_baseline_address(lab, pod["node"])
    gateway = gateway_of(node["pod_cidr"])
    if lab.baseline_l2:
        wire_baseline_l2_pod(lab, pod, host_if, address)
        return
    ip("link", "add", POD_IF, "netns", ns, "type", "veth", "peer", "name", host_if, "netns", node_ns)
    if lab.data["routing"] == "vxlan":
        mtu = str(1500 - VXLAN_OVERHEAD)
        ip("-n", node_ns, "link", "set", host_if, "mtu", mtu, "master", "cbr0", "up")
        ip("-n", ns, "link", "set", POD_IF, "mtu", mtu, "up")
        ip("-n", ns, "addr", "add", f"{address}/24", "dev", POD_IF)
        ip("-n", ns, "route", "add", "default", "via", gateway)
    else:
        ip("-n", node_ns, "link", "set", host_if, "up")
        ip("-n", node_ns, "addr", "add", f"{gateway}/32", "dev", host_if, "noprefixroute")
        ip("-n", node_ns, "route", "add", f"{address}/32", "dev", host_if, "scope", "link")
        ip("-n", ns, "link", "set", POD_IF, "up")
        ip("-n", ns, "addr", "add", f"{address}/32", "dev", POD_IF)
        ip("-n", ns, "route", "add", gateway, "dev", POD_IF, "scope", "link")
        ip("-n", ns, "route", "add", "default", "via", gateway)
    pod["address"] = address
    pod["host_if"] = host_if


def wire_baseline_l2_nodes(lab: Lab) -> None:
    """The leanest VXLAN a user wires by hand: per node a bridge with the VXLAN device as a port, no
    address, no routing hop; the pods of every node share one L2 segment. No learning anywhere: the
    bridge ports and the VXLAN device get static FDB entries (wire_baseline_l2_pod), and broadcast
    (ARP) is flooded to every other node by the all-zeros entry. Bridge netfilter is off on the nodes
    (a hand-wired node without kube-proxy needs none)."""
    mtu = str(1500 - VXLAN_OVERHEAD)
    index = lab.data["index"]
    for name, node in lab.data["nodes"].items():
        ns = node["namespace"]
        no_bridge_netfilter(ns)
        ip("-n", ns, "link", "add", "cbr0", "mtu", mtu, "type", "bridge")
        ip("-n", ns, "link", "add", "vxlan0", "address", vtep_mac(index, node["number"]), "mtu", mtu,
           "type", "vxlan", "id", "1", "local", node["ip"], "dev", UNDERLAY_IF, "dstport", "4789",
           "nolearning")
        ip("-n", ns, "link", "set", "vxlan0", "master", "cbr0", "up")
        run(["bridge", "-n", ns, "link", "set", "dev", "vxlan0", "learning", "off"])
        ip("-n", ns, "link", "set", "cbr0", "up")
        for other_name, other in lab.data["nodes"].items():
            if other_name != name:
                run(["bridge", "-n", ns, "fdb", "append", "00:00:00:00:00:00", "dev", "vxlan0",
                     "dst", other["ip"], "self", "permanent"])


def l2_pod_mac(address: str) -> str:
    return "02:42:" + ":".join(f"{int(octet):02x}" for octet in address.split("."))


def wire_baseline_l2_pod(lab: Lab, pod: dict, host_if: str, address: str) -> None:
    """A pod of the L2 baseline: its host veth a port of the node's bridge, its address in one /16
    with the pods of every node (on-link, no gateway), its MAC known to every bridge and VXLAN FDB."""
    node = lab.node(pod["node"])
    ns, node_ns = pod["namespace"], node["namespace"]
    mtu = str(1500 - VXLAN_OVERHEAD)
    mac = l2_pod_mac(address)
    segment = ipaddress.ip_network(f"{address}/16", strict=False).prefixlen
    ip("link", "add", POD_IF, "netns", ns, "address", mac, "type", "veth", "peer", "name", host_if,
       "netns", node_ns)
    ip("-n", node_ns, "link", "set", host_if, "mtu", mtu, "master", "cbr0", "up")
    run(["bridge", "-n", node_ns, "link", "set", "dev", host_if, "learning", "off"])
    run(["bridge", "-n", node_ns, "fdb", "add", mac, "dev", host_if, "master", "static"])
    ip("-n", ns, "link", "set", POD_IF, "mtu", mtu, "up")
    ip("-n", ns, "addr", "add", f"{address}/{segment}", "dev", POD_IF)
    for other_name, other in lab.data["nodes"].items():
        if other_name != pod["node"]:
            other_ns = other["namespace"]
            run(["bridge", "-n", other_ns, "fdb", "add", mac, "dev", "vxlan0", "master", "static"])
            run(["bridge", "-n", other_ns, "fdb", "append", mac, "dev", "vxlan0", "dst", node["ip"],
                 "self", "permanent"])
    pod["address"] = address
    pod["host_if"] = host_if
