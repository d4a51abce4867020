"""Constants, the name rules, and every name and address derived from a lab's name and number."""

from __future__ import annotations

import hashlib
import ipaddress
import re
from pathlib import Path

LAB_ROOT = Path("/run/membrane-lab")
NETNS_DIR = Path("/run/netns")
PREFIX = "ml-"
SWITCH = "sw"
STORE = "kv"                   # the namespace of the lab's etcd
OUTSIDE = "ext"                # a host on the lab's switch outside every node: a client from outside the cluster
STORES = ("etcd", "static")     # topology `store`: the cluster store nodes use
UNDERLAY_IF = "eth0"           # the node's underlay device, inside its namespace
POD_IF = "eth0"                # CNI_IFNAME
MAX_NAME = 12                  # keeps namespace and interface names short
ROUTING_MODULES = {"vxlan": "routing-vxlan", "direct": "direct-routing"}
VXLAN_OVERHEAD = 50
LAB_NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,%d}$" % (MAX_NAME - 1))
MEMBER_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,%d}[a-z0-9])?$" % (MAX_NAME - 2))
DNS_LABEL_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
MODULE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")  # as membraned's [modules] enabled (membrane/names.hpp)
LABEL_KEY_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._/-]{0,251}[A-Za-z0-9])?$")


def netns_name(lab: str, member: str) -> str:
    return f"{PREFIX}{lab}-{member}"


def lab_prefix(lab: str) -> str:
    return f"{PREFIX}{lab}-"


def lab_dir(lab: str) -> Path:
    return LAB_ROOT / lab


def node_ip(index: int, node_number: int) -> str:
    return f"192.168.{index}.{node_number}"


def etcd_ip(index: int) -> str:
    return f"192.168.{index}.254"  # above every node (at most 250)


def outside_ip(index: int) -> str:
    return f"192.168.{index}.253"


def node_pod_cidr(index: int, node_number: int) -> str:
    return f"10.{index}.{node_number}.0/24"


def gateway_of(pod_cidr: str) -> str:
    return str(ipaddress.ip_network(pod_cidr).network_address + 1)


def switch_port(node: str) -> str:
    return f"n-{node}"  # inside the switch namespace; <= 15 characters


def baseline_host_if(lab: str, pod: str) -> str:
    return "bl" + hashlib.sha256(f"{lab}/{pod}".encode()).hexdigest()[:11]


def bus_address(socket_path: str) -> str:
    return f"unix:path={socket_path}"


def vtep_mac(index: int, number: int) -> str:
    return f"02:4c:{index:02x}:{number:02x}:00:01"


def vtep_ip(pod_cidr: str) -> str:
    return str(ipaddress.ip_network(pod_cidr).network_address)  # flannel's .0 convention
