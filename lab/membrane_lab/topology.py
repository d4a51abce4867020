"""The topology file: TOML parsed and validated into a Topology, each refusal naming the file and the key."""

from __future__ import annotations

import re
import tomllib
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import LabError
from .names import (DNS_LABEL_RE, LAB_NAME_RE, LABEL_KEY_RE, MAX_NAME, MEMBER_NAME_RE, MODULE_NAME_RE,
                    OUTSIDE, ROUTING_MODULES, STORE, STORES, SWITCH)


@dataclass
class PodSpec:
    name: str
    node: str
    labels: dict[str, str] = field(default_factory=dict)
    namespace: str = "default"
    ports: list[dict] = field(default_factory=list)  # named container ports: {name, port, protocol}


@dataclass
class Topology:
    name: str
    routing: str
    index: int
    store: str               # "etcd" or "static"
    nodes: list[str]
    pods: list[PodSpec]
    lease_ttl: int = 30      # [kvstore] lease_ttl of every node (store "etcd")
    # Extra modules (a third party's, a test fixture): module name -> its .so,
    # loaded on every node after the routing module.
    modules: dict[str, str] = field(default_factory=dict)


def _check_keys(where: str, table: dict, allowed: set[str], required: set[str]) -> None:
    for key in table:
        if key not in allowed:
            raise LabError(f"{where}: unknown key '{key}' (allowed: {', '.join(sorted(allowed))})")
    for key in sorted(required):
        if key not in table:
            raise LabError(f"{where}: missing key '{key}'")


def _check_type(where: str, key: str, value, kind: type, what: str):
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise LabError(f"{where}: '{key}' must be {what}, not {value!r}")
    return value


def validate_member_name(where: str, key: str, name) -> str:
    _check_type(where, key, name, str, "a string")
    if not MEMBER_NAME_RE.match(name):
        raise LabError(f"{where}: '{key}' = {name!r} must be 1 to {MAX_NAME} lower-case letters, digits "
                       "or '-', starting and ending with a letter or digit")
    if name in (SWITCH, STORE, OUTSIDE):
        what = {SWITCH: "switch", STORE: "etcd", OUTSIDE: "outside host"}[name]
        raise LabError(f"{where}: '{key}' = {name!r} is reserved for the lab's {what} namespace")
    return name


def validate_k8s_namespace(where: str, name) -> str:
    _check_type(where, "namespace", name, str, "a string")
    if not DNS_LABEL_RE.match(name):
        raise LabError(f"{where}: 'namespace' = {name!r} must be a DNS label (lower-case letters, digits, '-', "
                       "at most 63)")
    return name


PORT_NAME_RE = re.compile(r"^(?=.*[a-z])[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$")


def validate_ports(where: str, ports) -> list[dict]:
    """`ports = [{ name = "http", port = 80, protocol = "TCP" }]`: the pod's named container ports."""
    _check_type(where, "ports", ports, list, "an array of { name, port, protocol } tables")
    out, names = [], set()
    for i, entry in enumerate(ports, 1):
        at = f"{where}: ports[{i}]"
        _check_type(where, f"ports[{i}]", entry, dict, "a table { name, port, protocol }")
        _check_keys(at, entry, {"name", "port", "protocol"}, {"name", "port"})
        name = entry["name"]
        if not isinstance(name, str) or not PORT_NAME_RE.match(name) or "--" in name:
            raise LabError(f"{at}: 'name' = {name!r} must be a port name (at most 15 of a-z, 0-9 and '-', with a letter)")
        if name in names:
            raise LabError(f"{at}: the port name {name!r} is already used by this pod")
        names.add(name)
        port = entry["port"]
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            raise LabError(f"{at}: 'port' = {port!r} must be an integer from 1 to 65535")
        protocol = entry.get("protocol", "TCP")
        if protocol not in ("TCP", "UDP", "SCTP"):
            raise LabError(f"{at}: 'protocol' = {protocol!r} must be \"TCP\", \"UDP\" or \"SCTP\"")
        out.append({"name": name, "port": port, "protocol": protocol})
    return out


def validate_labels(where: str, labels) -> dict[str, str]:
    _check_type(where, "labels", labels, dict, "a table of strings, e.g. { app = \"web\" }")
    for key, value in labels.items():
        if not LABEL_KEY_RE.match(key):
            raise LabError(f"{where}: labels: key {key!r} is not a label key (letters, digits, '.', '_', '/', '-')")
        if not isinstance(value, str) or len(value) > 63:
            raise LabError(f"{where}: labels.{key} must be a string of at most 63 characters, not {value!r}")
    return dict(labels)


def default_index(lab_name: str) -> int:
    # Labs are isolated by their namespaces, so two labs sharing a number is
    # harmless; a per-name number only makes addresses tell labs apart.
    return 1 + zlib.crc32(lab_name.encode()) % 254


def parse_topology(text: str, source: str) -> Topology:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise LabError(f"{source}: not valid TOML: {error}") from None
    _check_keys(source, doc, {"name", "routing", "index", "store", "lease_ttl", "modules", "nodes", "pods"},
                {"name", "routing", "nodes"})
    name = _check_type(source, "name", doc["name"], str, "a string")
    if not LAB_NAME_RE.match(name):
        raise LabError(f"{source}: 'name' = {name!r} must be 1 to {MAX_NAME} lower-case letters or digits, "
                       "starting with a letter (no '-': it separates the lab from its members in names)")
    routing = _check_type(source, "routing", doc["routing"], str, "a string")
    if routing not in ROUTING_MODULES:
        raise LabError(f"{source}: 'routing' = {routing!r} must be one of: {', '.join(ROUTING_MODULES)}")
    store = _check_type(source, "store", doc.get("store", "etcd"), str, "a string")
    if store not in STORES:
        raise LabError(f"{source}: 'store' = {store!r} must be one of: {', '.join(STORES)}")
    lease_ttl = _check_type(source, "lease_ttl", doc.get("lease_ttl", 30), int, "an integer (seconds)")
    if not 5 <= lease_ttl <= 3600:
        raise LabError(f"{source}: 'lease_ttl' = {lease_ttl} must be between 5 and 3600 seconds")
    if "lease_ttl" in doc and store != "etcd":
        raise LabError(f"{source}: 'lease_ttl' is the nodes' etcd lease; it needs store = \"etcd\"")
    index = doc.get("index", default_index(name))
    _check_type(source, "index", index, int, "an integer")
    if not 1 <= index <= 254:
        raise LabError(f"{source}: 'index' = {index} must be between 1 and 254")

    nodes_raw = _check_type(source, "nodes", doc["nodes"], list, "an array of tables ([[nodes]])")
    if not nodes_raw:
        raise LabError(f"{source}: 'nodes' must list at least one node")
    if len(nodes_raw) > 250:
        raise LabError(f"{source}: 'nodes' lists {len(nodes_raw)} nodes; at most 250")
    nodes: list[str] = []
    seen: dict[str, str] = {}
    for i, node in enumerate(nodes_raw, 1):
        where = f"{source}: nodes[{i}]"
        _check_type(source, f"nodes[{i}]", node, dict, "a table")
        _check_keys(where, node, {"name"}, {"name"})
        node_name = validate_member_name(where, "name", node["name"])
        if node_name in seen:
            raise LabError(f"{where}: 'name' = {node_name!r} is already used by {seen[node_name]}")
        seen[node_name] = f"nodes[{i}]"
        nodes.append(node_name)

    pods: list[PodSpec] = []
    pods_raw = _check_type(source, "pods", doc.get("pods", []), list, "an array of tables ([[pods]])")
    for i, pod in enumerate(pods_raw, 1):
        where = f"{source}: pods[{i}]"
        _check_type(source, f"pods[{i}]", pod, dict, "a table")
        _check_keys(where, pod, {"name", "node", "labels", "namespace", "ports"}, {"name", "node"})
        pod_name = validate_member_name(where, "name", pod["name"])
        if pod_name in seen:
            raise LabError(f"{where}: 'name' = {pod_name!r} is already used by {seen[pod_name]} "
                           "(node and pod names share the lab's namespace names)")
        seen[pod_name] = f"pods[{i}]"
        node_name = _check_type(where, "node", pod["node"], str, "a string")
        if node_name not in nodes:
            raise LabError(f"{where}: 'node' = {node_name!r} is not a node in [[nodes]] ({', '.join(nodes)})")
        labels = validate_labels(where, pod.get("labels", {}))
        k8s_ns = validate_k8s_namespace(where, pod.get("namespace", "default"))
        ports = validate_ports(where, pod.get("ports", []))
        pods.append(PodSpec(pod_name, node_name, labels, k8s_ns, ports))
    modules = parse_modules(source, doc.get("modules", []))
    return Topology(name, routing, index, store, nodes, pods, lease_ttl, modules)


def parse_modules(source: str, raw) -> dict[str, str]:
    """`modules = ["path/to/name.so", "policy-l3l4", ...]`: a library path, relative to the topology file's
    folder, or the name of one of Membrane's own modules (its path is "" here: taken from the build or the
    install when the lab starts)."""
    _check_type(source, "modules", raw, list, "an array of module names or library paths")
    base = Path(source).resolve().parent
    modules: dict[str, str] = {}
    for i, item in enumerate(raw, 1):
        where = f"{source}: modules[{i}]"
        path_text = _check_type(source, f"modules[{i}]", item, str, "a string (a module name or library path)")
        by_name = "/" not in path_text and not path_text.endswith(".so")
        given = base / path_text
        # Named as written: a symlink "mod.so" to "libmod.so.1" is module "mod".
        name = path_text if by_name else given.name[:-3] if given.name.endswith(".so") else ""
        if not MODULE_NAME_RE.match(name):
            raise LabError(f"{where}: {path_text!r} must name a module (1 to 48 lower-case letters, digits and '-', "
                           "starting with a letter or digit) or a module library <name>.so")
        if name in ROUTING_MODULES.values():
            raise LabError(f"{where}: {name!r} is a routing module; 'routing' chooses it")
        if name in modules:
            raise LabError(f"{where}: a module named {name!r} is already listed")
        if by_name:
            modules[name] = ""
            continue
        path = given.resolve()
        if not path.is_file():
            raise LabError(f"{where}: {path} does not exist (build the module first)")
        modules[name] = str(path)
    return modules


def load_topology(path: str) -> Topology:
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise LabError(f"{path}: cannot read the topology: {error.strerror}") from None
    return parse_topology(text, path)
