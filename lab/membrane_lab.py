#!/usr/bin/env python3
"""membrane-lab: a whole Membrane cluster on one machine.

A topology file (TOML) names the lab, its routing mode, its nodes and its pods.
`up` makes, for each node, a network namespace running its own membraned (own
config, own private dbus-daemon, own pin folder on a bpffs under /run), joins
the nodes by an underlay (a bridge inside a "switch" namespace, one veth per
node), and wires each pod namespace with the real membrane-cni, called exactly
as a container runtime calls it. Everything lives in namespaces the lab made;
nothing is routed out of the machine and the host's links and routes are never
touched. `down` removes all of it, also after a crash or a half-finished `up`.

Naming (all derived from the lab name, which is [a-z][a-z0-9]*, no '-', so that
one lab's prefix is never another's):
  namespaces      ml-<lab>-<node>, ml-<lab>-<pod>, ml-<lab>-sw (the switch)
  lab folder      /run/membrane-lab/<lab>/  (record, configs, logs, buses, bpffs)
  underlay        192.168.<n>.<i>/24 on eth0 of node i (1-based, file order)
  pod CIDR        10.<n>.<i>.0/24 for node i (gateway 10.<n>.<i>.1)
where n is the lab's number: `index` in the topology, else derived from the name.

Only the Python 3.11 standard library is used.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import zlib
from dataclasses import dataclass, field
from pathlib import Path

LAB_ROOT = Path("/run/membrane-lab")
NETNS_DIR = Path("/run/netns")
PREFIX = "ml-"
SWITCH = "sw"
UNDERLAY_IF = "eth0"           # the node's underlay device, inside its namespace
POD_IF = "eth0"                # CNI_IFNAME
MAX_NAME = 12                  # keeps namespace and interface names short
ROUTING_MODULES = {"vxlan": "routing-vxlan", "direct": "direct-routing"}
VXLAN_OVERHEAD = 50
LAB_NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,%d}$" % (MAX_NAME - 1))
MEMBER_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,%d}[a-z0-9])?$" % (MAX_NAME - 2))
DNS_LABEL_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
LABEL_KEY_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._/-]{0,251}[A-Za-z0-9])?$")


class LabError(Exception):
    """A failure with a message meant for the user (no traceback)."""


def log(message: str) -> None:
    print(f"membrane-lab: {message}", file=sys.stderr, flush=True)


# --- the topology ----------------------------------------------------------------


@dataclass
class PodSpec:
    name: str
    node: str
    labels: dict[str, str] = field(default_factory=dict)
    namespace: str = "default"


@dataclass
class Topology:
    name: str
    routing: str
    index: int
    nodes: list[str]
    pods: list[PodSpec]


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
    if name == SWITCH:
        raise LabError(f"{where}: '{key}' = {name!r} is reserved for the lab's switch namespace")
    return name


def validate_k8s_namespace(where: str, name) -> str:
    _check_type(where, "namespace", name, str, "a string")
    if not DNS_LABEL_RE.match(name):
        raise LabError(f"{where}: 'namespace' = {name!r} must be a DNS label (lower-case letters, digits, '-', "
                       "at most 63)")
    return name


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
    _check_keys(source, doc, {"name", "routing", "index", "nodes", "pods"}, {"name", "routing", "nodes"})
    name = _check_type(source, "name", doc["name"], str, "a string")
    if not LAB_NAME_RE.match(name):
        raise LabError(f"{source}: 'name' = {name!r} must be 1 to {MAX_NAME} lower-case letters or digits, "
                       "starting with a letter (no '-': it separates the lab from its members in names)")
    routing = _check_type(source, "routing", doc["routing"], str, "a string")
    if routing not in ROUTING_MODULES:
        raise LabError(f"{source}: 'routing' = {routing!r} must be one of: {', '.join(ROUTING_MODULES)}")
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
        _check_keys(where, pod, {"name", "node", "labels", "namespace"}, {"name", "node"})
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
        pods.append(PodSpec(pod_name, node_name, labels, k8s_ns))
    return Topology(name, routing, index, nodes, pods)


def load_topology(path: str) -> Topology:
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise LabError(f"{path}: cannot read the topology: {error.strerror}") from None
    return parse_topology(text, path)


# --- derived names and addresses ---------------------------------------------------


def netns_name(lab: str, member: str) -> str:
    return f"{PREFIX}{lab}-{member}"


def lab_prefix(lab: str) -> str:
    return f"{PREFIX}{lab}-"


def lab_dir(lab: str) -> Path:
    return LAB_ROOT / lab


def node_ip(index: int, node_number: int) -> str:
    return f"192.168.{index}.{node_number}"


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


# --- running things ------------------------------------------------------------------


def run(cmd: list[str], *, check: bool = True, input: str | None = None, env: dict | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(cmd, input=input, capture_output=True, text=True, env=env, timeout=timeout)
    except FileNotFoundError:
        raise LabError(f"'{cmd[0]}' is not installed") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"'{' '.join(cmd)}' did not finish within {timeout:.0f}s") from None
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()
        raise LabError(f"'{' '.join(cmd)}' failed (exit {result.returncode}): {detail}")
    return result


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run(["ip", *args], check=check)


def ns_run(ns: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run(["ip", "netns", "exec", ns, *args], check=check)


def sysctl(ns: str, key: str, value: str) -> None:
    ns_run(ns, "sysctl", "-qw", f"{key}={value}")


def proc_start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat, which tells a recycled pid apart; None when gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] == "Z":
        return None
    return fields[19]


def is_alive(process: dict | None) -> bool:
    return bool(process) and proc_start_time(process["pid"]) == process["start"]


def start_detached(cmd: list[str], log_path: Path, env: dict | None = None) -> dict:
    """Starts CMD in its own session (it outlives this tool); returns {pid, start}."""
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                                   env=env, start_new_session=True, close_fds=True)
    start = None
    for _ in range(50):
        start = proc_start_time(process.pid)
        if start:
            break
        time.sleep(0.01)
    return {"pid": process.pid, "start": start or "", "cmd": cmd[0]}


def stop_processes(processes: list[dict], sig: int = signal.SIGTERM, timeout: float = 10) -> None:
    """Sends SIG to each live process, waits (bounded), then SIGKILLs what is left."""
    alive = [p for p in processes if is_alive(p)]
    for process in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process["pid"], sig)
    deadline = time.monotonic() + timeout
    while any(is_alive(p) for p in alive) and time.monotonic() < deadline:
        time.sleep(0.05)
    for process in alive:
        if is_alive(process):
            log(f"pid {process['pid']} ({process.get('cmd', '?')}) ignored signal {sig}: SIGKILL")
            with contextlib.suppress(ProcessLookupError):
                os.kill(process["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 5
    while any(is_alive(p) for p in alive) and time.monotonic() < deadline:
        time.sleep(0.05)


def wait_until(predicate, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


# --- binaries -------------------------------------------------------------------------


@dataclass
class Binaries:
    membraned: str
    membranectl: str
    cni: str | None
    module_files: dict[str, str]   # module name -> .so, when taken from a build
    source: str                    # "build <dir>" or "install"

    def to_json(self) -> dict:
        return self.__dict__.copy()


def find_binaries(build_dir: str | None, require_cni: bool = True) -> Binaries:
    """The build's binaries (--build-dir, default ./build when it has them), else the install's (PATH)."""
    explicit = build_dir is not None
    build = Path(build_dir or "build").resolve()
    in_build = {
        "membraned": build / "kernel" / "membraned",
        "membranectl": build / "cli" / "membranectl",
        "cni": build / "cni" / "membrane-cni",
    }
    if in_build["membraned"].is_file():
        modules = {}
        for name in ROUTING_MODULES.values():
            so = build / "modules" / name / f"{name}.so"
            if so.is_file():
                modules[name] = str(so)
        missing = [str(p) for key, p in in_build.items() if not p.is_file() and (key != "cni" or require_cni)]
        if missing:
            raise LabError(f"the build in {build} lacks {', '.join(missing)} (build it, e.g. scripts/build.sh)")
        cni = str(in_build["cni"]) if in_build["cni"].is_file() else None
        return Binaries(str(in_build["membraned"]), str(in_build["membranectl"]), cni, modules, f"build {build}")
    if explicit:
        raise LabError(f"--build-dir {build}: no membraned at {in_build['membraned']}")
    found = {name: shutil.which(name) for name in ("membraned", "membranectl", "membrane-cni")}
    if found["membraned"] and not found["membrane-cni"]:
        # The plugin is installed where runtimes look for plugins, not on PATH.
        prefix = Path(found["membraned"]).resolve().parent.parent
        for candidate in (prefix / "libexec" / "cni" / "membrane-cni", Path("/opt/cni/bin/membrane-cni")):
            if candidate.is_file():
                found["membrane-cni"] = str(candidate)
                break
    missing = [n for n, p in found.items() if not p and (n != "membrane-cni" or require_cni)]
    if missing:
        raise LabError(f"no build in {build} and not installed (PATH): {', '.join(missing)}; "
                       "pass --build-dir or install Membrane")
    return Binaries(found["membraned"], found["membranectl"], found["membrane-cni"], {}, "install")


# --- the record of a lab ------------------------------------------------------------------


class Lab:
    """The record of what `up` made (lab.json in the lab folder), kept exact so `down` is.

    Every change is written atomically, and each thing is recorded before it is
    made, so a half-made thing is still found and removed."""

    def __init__(self, name: str, data: dict):
        self.name = name
        self.data = data

    @property
    def dir(self) -> Path:
        return lab_dir(self.name)

    @property
    def record_path(self) -> Path:
        return self.dir / "lab.json"

    @staticmethod
    def load(name: str) -> "Lab":
        if not LAB_NAME_RE.match(name):
            raise LabError(f"{name!r} is not a lab name")
        path = lab_dir(name) / "lab.json"
        try:
            return Lab(name, json.loads(path.read_text()))
        except FileNotFoundError:
            raise LabError(f"no lab named {name!r} (no {path}); see `membrane-lab list`") from None
        except (OSError, json.JSONDecodeError) as error:
            raise LabError(f"{path}: unreadable record ({error}); `membrane-lab down {name}` still works") from None

    def save(self) -> None:
        tmp = self.record_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.data, indent=2) + "\n")
        os.replace(tmp, self.record_path)

    def note(self, kind: str, value: str) -> None:
        made = self.data.setdefault("made", {}).setdefault(kind, [])
        if value not in made:
            made.append(value)
            self.save()

    @contextlib.contextmanager
    def locked(self):
        """Serialises commands that change the lab (pod add/del, node start/stop) across processes."""
        with open(self.dir / ".lock", "w") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                fresh = json.loads(self.record_path.read_text())
                self.data = fresh
                yield self
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)

    @property
    def baseline(self) -> bool:
        return bool(self.data.get("baseline"))

    @property
    def baseline_l2(self) -> bool:
        """The L2 variant of the VXLAN baseline (`up --baseline-l2`): one bridge segment across nodes."""
        return self.baseline and self.data.get("baseline_wiring") == "l2"

    def node(self, name: str) -> dict:
        try:
            return self.data["nodes"][name]
        except KeyError:
            raise LabError(f"lab {self.name} has no node {name!r} (nodes: {', '.join(self.data['nodes'])})") from None

    def pod(self, name: str) -> dict:
        try:
            return self.data["pods"][name]
        except KeyError:
            pods = ", ".join(self.data["pods"]) or "none"
            raise LabError(f"lab {self.name} has no pod {name!r} (pods: {pods})") from None

    def binaries(self) -> dict:
        return self.data["binaries"]


def add_netns(lab: Lab, ns: str) -> None:
    lab.note("netns", ns)
    ip("netns", "add", ns)
    ip("-n", ns, "link", "set", "lo", "up")


def mount_bpffs(lab: Lab, path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    lab.note("mounts", str(path))
    run(["mount", "-t", "bpf", "bpf", str(path)])


# --- nodes: underlay, bus, daemon ------------------------------------------------------------


def no_bridge_netfilter(ns: str) -> None:
    """Bridged IPv4/IPv6/ARP frames skip iptables in NS (br_netfilter's sysctls are per namespace and
    default to on once the module is loaded); nothing to do without br_netfilter."""
    for family in ("iptables", "ip6tables", "arptables"):
        with contextlib.suppress(LabError):
            sysctl(ns, f"net.bridge.bridge-nf-call-{family}", "0")


def wire_underlay(lab: Lab) -> None:
    """A bridge in the switch namespace and one veth per node: the nodes are L2 neighbours."""
    switch = netns_name(lab.name, SWITCH)
    add_netns(lab, switch)
    no_bridge_netfilter(switch)  # the switch stands for a wire: it should cost no node's CPU
    ip("-n", switch, "link", "add", "br0", "type", "bridge")
    ip("-n", switch, "link", "set", "br0", "up")
    for name, node in lab.data["nodes"].items():
        ns = node["namespace"]
        add_netns(lab, ns)
        port = switch_port(name)
        # Made directly inside the two namespaces: no name ever exists on the host.
        ip("link", "add", UNDERLAY_IF, "netns", ns, "type", "veth", "peer", "name", port, "netns", switch)
        ip("-n", switch, "link", "set", port, "master", "br0", "up")
        ip("-n", ns, "addr", "add", f"{node['ip']}/24", "dev", UNDERLAY_IF)
        ip("-n", ns, "link", "set", UNDERLAY_IF, "up")
        sysctl(ns, "net.ipv4.ip_forward", "1")


DBUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <!-- membrane-lab: the private bus of node {node} in lab {lab} -->
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


def toml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def agent_config(lab: Lab, name: str) -> str:
    node = lab.data["nodes"][name]
    module = ROUTING_MODULES[lab.data["routing"]]
    lines = [
        f"# Written by membrane-lab for node {name} of lab {lab.name}",
        "[agent]",
        f"node_name = {toml_string(name)}",
        f"state_dir = {toml_string(node['state_dir'])}",
        f"runtime_dir = {toml_string(node['runtime_dir'])}",
        f"bpffs_root = {toml_string(lab.data['bpffs'])}",
    ]
    if lab.data.get("module_dir"):
        lines.append(f"module_dir = {toml_string(lab.data['module_dir'])}")
    lines += [
        f"devices = [{toml_string(UNDERLAY_IF)}]",
        f"log_level = {toml_string(lab.data.get('log_level', 'info'))}",
        "",
        "[dbus]",
        f"bus = {toml_string(node['bus'])}",
        "",
        "[modules]",
        f"enabled = [{toml_string(module)}]",
    ]
    for other_name, other in lab.data["nodes"].items():
        lines += ["", "[[nodes]]", f"name = {toml_string(other_name)}", f"ip = {toml_string(other['ip'])}",
                  f"pod_cidr = {toml_string(other['pod_cidr'])}"]
    return "\n".join(lines) + "\n"


def start_bus(lab: Lab, name: str) -> None:
    node = lab.data["nodes"][name]
    folder = Path(node["dir"])
    conf = folder / "dbus.conf"
    conf.write_text(DBUS_CONFIG.format(node=name, lab=lab.name, socket=node["bus_socket"]))
    node["dbus"] = start_detached(["dbus-daemon", f"--config-file={conf}", "--nofork", "--nopidfile"],
                                  folder / "dbus.log")
    lab.save()
    answered = wait_until(lambda: run(["busctl", f"--address={node['bus']}", "list"], check=False,
                                      timeout=5).returncode == 0, 10)
    if not answered:
        raise LabError(f"node {name}: the private dbus-daemon did not answer (log {folder / 'dbus.log'})")


def start_daemon(lab: Lab, name: str) -> None:
    node = lab.data["nodes"][name]
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=node["bus"], MEMBRANE_DBUS_ADDRESS=node["bus"])
    log_path = Path(node["dir"]) / "membraned.log"
    with open(log_path, "a") as log_file:
        log_file.write(f"--- membrane-lab: start {time.strftime('%Y-%m-%d %H:%M:%S')} ---\n")
    # `ip netns exec` execs membraned, so the pid recorded is the daemon's.
    node["daemon"] = start_detached(["ip", "netns", "exec", node["namespace"], lab.binaries()["membraned"],
                                     "--config", node["config"]], log_path, env)
    node["daemon"]["cmd"] = "membraned"
    lab.save()


def daemon_answers(lab: Lab, name: str) -> bool:
    node = lab.data["nodes"][name]
    result = run([lab.binaries()["membranectl"], "--bus", node["bus"], "status"], check=False, timeout=10)
    return result.returncode == 0


def wait_ready(lab: Lab, names: list[str], timeout: float) -> None:
    """Each daemon alive and answering `membranectl status` (one daemon per bus, so alive matters)."""
    deadline = time.monotonic() + timeout
    pending = list(names)
    while pending:
        for name in list(pending):
            node = lab.data["nodes"][name]
            if not is_alive(node.get("daemon")):
                raise LabError(f"node {name}: membraned exited before it answered; last lines of "
                               f"{node['dir']}/membraned.log:\n{tail(Path(node['dir']) / 'membraned.log')}")
            if daemon_answers(lab, name):
                pending.remove(name)
        if pending and time.monotonic() > deadline:
            raise LabError(f"membraned did not answer `membranectl status` within {timeout:.0f}s on: "
                           f"{', '.join(pending)}")
        if pending:
            time.sleep(0.2)


def tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --- pods -----------------------------------------------------------------------------------------


def cni_call(lab: Lab, pod: dict, command: str) -> dict:
    """Calls membrane-cni as a container runtime does, inside the node's namespace."""
    node = lab.node(pod["node"])
    cni = lab.binaries()["cni"]
    if not cni:
        raise LabError("membrane-cni is not built (no cni/membrane-cni in the build, none on PATH)")
    env = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": pod["container_id"],
        "CNI_NETNS": f"/var/run/netns/{pod['namespace']}",
        "CNI_IFNAME": POD_IF,
        "CNI_PATH": str(Path(cni).parent),
        "CNI_ARGS": f"IgnoreUnknown=1;K8S_POD_NAMESPACE={pod['k8s_namespace']};K8S_POD_NAME={pod['name']}",
    }
    config = {
        "cniVersion": "1.0.0",
        "name": f"membrane-lab-{lab.name}",
        "type": "membrane",
        "dbus_address": node["bus"],
        "labels": pod["labels"],
    }
    try:
        result = subprocess.run(["ip", "netns", "exec", node["namespace"], cni], input=json.dumps(config),
                                capture_output=True, text=True, env=env, timeout=60)
    except subprocess.TimeoutExpired:
        raise LabError(f"pod {pod['name']}: membrane-cni {command} did not finish within 60s") from None
    try:
        reply = json.loads(result.stdout) if result.stdout.strip() else {}
    except json.JSONDecodeError:
        reply = {"msg": result.stdout.strip()}
    if result.returncode != 0:
        message = reply.get("msg", "") if isinstance(reply, dict) else ""
        details = reply.get("details", "") if isinstance(reply, dict) else ""
        raise LabError(f"pod {pod['name']}: membrane-cni {command} failed (exit {result.returncode}, code "
                       f"{reply.get('code', '?') if isinstance(reply, dict) else '?'}): {message} {details} "
                       f"{result.stderr.strip()}".rstrip())
    return reply if isinstance(reply, dict) else {}


def address_from_result(result: dict) -> str:
    for entry in result.get("ips", []):
        address = entry.get("address", "")
        if address:
            return address.split("/")[0]
    raise LabError(f"membrane-cni ADD returned no address: {json.dumps(result)}")


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


def vtep_mac(index: int, number: int) -> str:
    return f"02:4c:{index:02x}:{number:02x}:00:01"


def vtep_ip(pod_cidr: str) -> str:
    return str(ipaddress.ip_network(pod_cidr).network_address)  # flannel's .0 convention


def add_pod(lab: Lab, spec: PodSpec) -> dict:
    if spec.name in lab.data["pods"] or spec.name in lab.data["nodes"] or spec.name == SWITCH:
        raise LabError(f"lab {lab.name} already has a node or pod named {spec.name!r}")
    lab.node(spec.node)
    pod = {
        "name": spec.name,
        "node": spec.node,
        "namespace": netns_name(lab.name, spec.name),
        # What a runtime passes: a 64-hex sandbox id, new for each sandbox.
        "container_id": secrets.token_hex(32),
        "k8s_namespace": spec.namespace,
        "labels": spec.labels,
        "address": "",
    }
    lab.data["pods"][spec.name] = pod
    lab.save()
    try:
        add_netns(lab, pod["namespace"])
        if lab.baseline:
            wire_baseline_pod(lab, pod)
        else:
            try:
                result = cni_call(lab, pod, "ADD")
            except LabError:
                with contextlib.suppress(LabError):
                    cni_call(lab, pod, "DEL")  # as a runtime does after a failed ADD
                raise
            pod["address"] = address_from_result(result)
            pod["cni_result"] = result
    except BaseException:
        forget_pod(lab, spec.name)  # so that the same name can be tried again
        raise
    lab.save()
    return pod


def forget_pod(lab: Lab, name: str) -> None:
    pod = lab.data["pods"].pop(name)
    ip("netns", "del", pod["namespace"], check=False)
    made = lab.data.get("made", {}).get("netns", [])
    if pod["namespace"] in made:
        made.remove(pod["namespace"])
    lab.save()


def delete_pod(lab: Lab, name: str) -> None:
    pod = lab.pod(name)
    if not lab.baseline:
        cni_call(lab, pod, "DEL")
    forget_pod(lab, name)


# --- commands ----------------------------------------------------------------------------------------


def need_root() -> None:
    if os.geteuid() != 0:
        raise LabError("run as root (network namespaces, bpffs mounts, BPF)")


def cmd_up(args) -> int:
    need_root()
    topo = load_topology(args.file)
    folder = lab_dir(topo.name)
    if folder.exists() or any(n.startswith(lab_prefix(topo.name)) for n in list_netns()):
        raise LabError(f"lab {topo.name!r} exists (or left remains): `membrane-lab down {topo.name}` first")
    if args.baseline_l2:
        if topo.routing != "vxlan":
            raise LabError(f"--baseline-l2 wires a VXLAN overlay; {args.file} has routing {topo.routing!r}")
        args.baseline = True
    if args.baseline:  # plain kernel wiring: no Membrane binary is run
        binaries = Binaries("", "", None, {}, "none (baseline)")
    else:
        binaries = find_binaries(args.build_dir, require_cni=bool(topo.pods))
    module = ROUTING_MODULES[topo.routing]
    if not args.baseline and binaries.source != "install" and module not in binaries.module_files:
        raise LabError(f"the build has no {module}.so (modules/{module}): build it first")

    data = {
        "name": topo.name,
        "routing": topo.routing,
        "index": topo.index,
        "baseline": bool(args.baseline),
        "baseline_wiring": "l2" if args.baseline_l2 else "routed",
        "topology": str(Path(args.file).resolve()),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "binaries": binaries.to_json(),
        "log_level": args.log_level,
        "bpffs": str(folder / "bpffs"),
        "module_dir": "",
        "nodes": {},
        "pods": {},
        "made": {"netns": [], "mounts": []},
    }
    for number, name in enumerate(topo.nodes, 1):
        node_folder = folder / name
        socket = node_folder / "bus"
        data["nodes"][name] = {
            "name": name,
            "number": number,
            "namespace": netns_name(topo.name, name),
            "ip": node_ip(topo.index, number),
            "pod_cidr": node_pod_cidr(topo.index, number),
            "dir": str(node_folder),
            "config": str(node_folder / "membrane.toml"),
            "state_dir": str(node_folder / "state"),
            "runtime_dir": str(node_folder / "run"),
            "bus_socket": str(socket),
            "bus": bus_address(str(socket)),
        }
        if len(str(socket)) >= 100:
            raise LabError(f"bus socket path too long for AF_UNIX: {socket}")
    LAB_ROOT.mkdir(mode=0o755, exist_ok=True)
    folder.mkdir(mode=0o755)
    os.chmod(LAB_ROOT, 0o755)
    os.chmod(folder, 0o755)  # root-owned, not group/world writable: a valid module_dir parent
    lab = Lab(topo.name, data)
    lab.save()
    shutil.copyfile(args.file, folder / "topology.toml")
    try:
        bring_up(lab, topo, args)
    except BaseException as error:
        if isinstance(error, LabError):
            log(str(error))
        if args.keep_on_failure:
            log(f"`up` failed; kept what it made (--keep-on-failure): `membrane-lab down {topo.name}` removes it")
        else:
            log("`up` failed: removing what it made")
            tear_down(topo.name, quiet=True)
        if isinstance(error, LabError):
            return 1
        raise
    kind = ("baseline (plain kernel, no BPF" + (", one L2 segment)" if lab.baseline_l2 else ")")
            if lab.baseline else f"Membrane {topo.routing}")
    print(f"lab {topo.name} up: {len(topo.nodes)} nodes, {len(topo.pods)} pods, {kind}")
    print(f"  membrane-lab status {topo.name}    membrane-lab down {topo.name}")
    return 0


def bring_up(lab: Lab, topo: Topology, args) -> None:
    folder = lab.dir
    for node in lab.data["nodes"].values():
        for key in ("dir", "state_dir", "runtime_dir"):
            Path(node[key]).mkdir(mode=0o755, parents=True, exist_ok=True)
            os.chmod(node[key], 0o755)
    wire_underlay(lab)
    if lab.baseline:
        wire_baseline_nodes(lab)
    else:
        mount_bpffs(lab, folder / "bpffs")
        files = lab.binaries()["module_files"]
        if files:
            # Copies, so that a rebuild during the lab's life cannot change a running node's modules.
            modules = folder / "modules"
            modules.mkdir(mode=0o755)
            os.chmod(modules, 0o755)
            for name, so in files.items():
                target = modules / f"{name}.so"
                shutil.copyfile(so, target)
                os.chmod(target, 0o644)
            lab.data["module_dir"] = str(modules)
        for name, node in lab.data["nodes"].items():
            Path(node["config"]).write_text(agent_config(lab, name))
            start_bus(lab, name)
        for name in lab.data["nodes"]:
            start_daemon(lab, name)
        wait_ready(lab, list(lab.data["nodes"]), args.timeout)
    for spec in topo.pods:
        add_pod(lab, spec)


def list_netns() -> list[str]:
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


def lab_mounts(folder: Path) -> list[str]:
    """Mount points at or under FOLDER, deepest first."""
    points = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            point = line.split()[4].replace("\\040", " ")
            if point == str(folder) or point.startswith(str(folder) + "/"):
                points.append(point)
    return sorted(set(points), key=lambda p: (-p.count("/"), p))


def processes_of_lab(lab_name: str) -> list[dict]:
    """Processes whose command line names the lab folder (dbus-daemon, membraned), or that run in
    one of the lab's namespaces; found without the record, so `down` works after a crash."""
    folder = str(lab_dir(lab_name)) + "/"
    prefix = lab_prefix(lab_name)
    found: dict[int, dict] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if folder in cmdline:
            start = proc_start_time(int(entry))
            if start:
                found[int(entry)] = {"pid": int(entry), "start": start, "cmd": cmdline.split(" ")[0]}
    for ns in list_netns():
        if not ns.startswith(prefix):
            continue
        result = run(["ip", "netns", "pids", ns], check=False)
        for pid in result.stdout.split():
            start = proc_start_time(int(pid))
            if start and int(pid) != os.getpid():
                found[int(pid)] = {"pid": int(pid), "start": start, "cmd": f"(in {ns})"}
    return list(found.values())


def tear_down(name: str, quiet: bool = False) -> dict:
    folder = lab_dir(name)
    prefix = lab_prefix(name)
    removed = {"processes": 0, "netns": [], "mounts": [], "folder": False}
    recorded: list[dict] = []
    with contextlib.suppress(OSError, json.JSONDecodeError, KeyError):
        data = json.loads((folder / "lab.json").read_text())
        for node in data.get("nodes", {}).values():
            recorded += [node[key] for key in ("daemon", "dbus") if node.get(key)]
    # Daemons first (TERM: they leave pins, which go with the bpffs), then whatever is left in our namespaces.
    processes = {p["pid"]: p for p in recorded + processes_of_lab(name) if is_alive(p)}
    stop_processes(list(processes.values()))
    leftovers = processes_of_lab(name)
    stop_processes(leftovers, signal.SIGKILL, timeout=5)
    removed["processes"] = len(processes) + len(leftovers)
    for ns in list_netns():
        if ns.startswith(prefix):
            result = ip("netns", "del", ns, check=False)
            if result.returncode != 0:
                # A namespace file still mounted or busy: detach it and remove the file.
                run(["umount", "-l", str(NETNS_DIR / ns)], check=False)
                with contextlib.suppress(OSError):
                    (NETNS_DIR / ns).unlink()
            removed["netns"].append(ns)
    if folder.exists():
        for point in lab_mounts(folder):
            if run(["umount", point], check=False).returncode != 0:
                run(["umount", "-l", point], check=False)
            removed["mounts"].append(point)
        shutil.rmtree(folder, ignore_errors=True)
        removed["folder"] = not folder.exists()
        if folder.exists():
            log(f"could not remove {folder} entirely")
    if not quiet:
        if removed["netns"] or removed["folder"] or removed["processes"]:
            print(f"lab {name} down: {removed['processes']} processes, {len(removed['netns'])} namespaces, "
                  f"{len(removed['mounts'])} mounts and {folder} removed")
        else:
            print(f"lab {name}: nothing to remove")
    return removed


def cmd_down(args) -> int:
    need_root()
    if not LAB_NAME_RE.match(args.name):
        raise LabError(f"{args.name!r} is not a lab name (lower-case letters and digits)")
    tear_down(args.name)
    return 0


def endpoints_of(lab: Lab, node_name: str) -> list[dict] | None:
    node = lab.node(node_name)
    if lab.baseline or not is_alive(node.get("daemon")):
        return None
    result = run([lab.binaries()["membranectl"], "--bus", node["bus"], "-o", "json", "endpoint", "list"],
                 check=False, timeout=10)
    if result.returncode != 0:
        return None
    try:
        parsed = json.loads(result.stdout)
    except json.JSONDecodeError:
        return None
    if isinstance(parsed, dict):
        parsed = parsed.get("endpoints", [])
    return parsed if isinstance(parsed, list) else None


def lab_status(lab: Lab) -> dict:
    nodes = []
    endpoints: dict[str, list[dict] | None] = {}
    for name, node in lab.data["nodes"].items():
        alive = is_alive(node.get("daemon"))
        endpoints[name] = endpoints_of(lab, name)
        nodes.append({
            "name": name,
            "namespace": node["namespace"],
            "ip": node["ip"],
            "pod_cidr": node["pod_cidr"],
            "daemon": None if lab.baseline else {
                "pid": node.get("daemon", {}).get("pid"),
                "alive": alive,
                "answers": alive and daemon_answers(lab, name),
            },
            "bus": None if lab.baseline else node["bus"],
        })
    pods = []
    for name, pod in lab.data["pods"].items():
        endpoint = next((e for e in endpoints.get(pod["node"]) or []
                         if isinstance(e, dict) and e.get("container_id") == pod["container_id"]), None)
        pods.append({
            "name": name,
            "node": pod["node"],
            "namespace": pod["namespace"],
            "container_id": pod["container_id"],
            "address": pod["address"],
            "labels": pod["labels"],
            "endpoint_id": endpoint.get("id") if endpoint else None,
            "identity": endpoint.get("identity") if endpoint else None,
            "host_ifname": endpoint.get("host_ifname") if endpoint else pod.get("host_if"),
        })
    return {
        "name": lab.name,
        "routing": lab.data["routing"],
        "mode": "baseline" if lab.baseline else "membrane",
        "binaries": lab.binaries()["source"],
        "folder": str(lab.dir),
        "nodes": nodes,
        "pods": pods,
    }


def print_table(headers: list[str], rows: list[list]) -> None:
    cells = [[("-" if c is None else str(c)) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip())
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


def cmd_status(args) -> int:
    need_root()
    lab = Lab.load(args.name)
    status = lab_status(lab)
    if args.output == "json":
        print(json.dumps(status, indent=2))
        return 0
    mode = ("baseline, plain kernel" + (", one L2 segment" if lab.baseline_l2 else "")
            if lab.baseline else "membrane")
    print(f"lab {status['name']}: routing {status['routing']} ({mode}); binaries from {status['binaries']}")
    print()
    print_table(["NODE", "IP", "POD CIDR", "DAEMON"],
                [[n["name"], n["ip"], n["pod_cidr"],
                  "-" if n["daemon"] is None else
                  (f"pid {n['daemon']['pid']} " + ("ready" if n["daemon"]["answers"] else
                                                   "alive" if n["daemon"]["alive"] else "DOWN"))]
                 for n in status["nodes"]])
    print()
    print_table(["POD", "NODE", "ADDRESS", "IDENTITY", "LABELS"],
                [[p["name"], p["node"], p["address"], p["identity"],
                  ",".join(f"{k}={v}" for k, v in p["labels"].items())] for p in status["pods"]])
    return 0


def command_after_dashes(args, what: str) -> list[str]:
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise LabError(f"give the {what} after '--'")
    return command


def cmd_exec(args) -> int:
    need_root()
    lab = Lab.load(args.name)
    pod = lab.pod(args.pod)
    command = command_after_dashes(args, "command")
    os.execvp("ip", ["ip", "netns", "exec", pod["namespace"], *command])
    return 127  # not reached


def cmd_ctl(args) -> int:
    lab = Lab.load(args.name)
    node = lab.node(args.node)
    if lab.baseline:
        raise LabError(f"lab {lab.name} is a baseline lab: no membraned to talk to")
    command = command_after_dashes(args, "membranectl arguments")
    ctl = lab.binaries()["membranectl"]
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=node["bus"], MEMBRANE_DBUS_ADDRESS=node["bus"])
    os.execvpe(ctl, [ctl, "--bus", node["bus"], *command], env)
    return 127


def parse_label(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key, value


def cmd_pod_add(args) -> int:
    need_root()
    lab = Lab.load(args.name)
    with lab.locked():
        where = f"pod {args.pod}"
        validate_member_name(where, "name", args.pod)
        labels = validate_labels(where, dict(args.label or []))
        validate_k8s_namespace(where, args.namespace)
        pod = add_pod(lab, PodSpec(args.pod, args.node, labels, args.namespace))
    print(f"pod {pod['name']} on {pod['node']}: {pod['address']}")
    return 0


def cmd_pod_del(args) -> int:
    need_root()
    lab = Lab.load(args.name)
    with lab.locked():
        delete_pod(lab, args.pod)
    print(f"pod {args.pod} deleted")
    return 0


def cmd_node_stop(args) -> int:
    need_root()
    lab = Lab.load(args.name)
    with lab.locked():
        node = lab.node(args.node)
        if lab.baseline:
            raise LabError("a baseline lab runs no membraned")
        sig = signal.Signals["SIG" + args.signal.upper().removeprefix("SIG")]
        if not is_alive(node.get("daemon")):
            print(f"node {args.node}: membraned is not running")
            return 0
        stop_processes([node["daemon"]], sig, timeout=args.timeout)
    print(f"node {args.node}: membraned (pid {node['daemon']['pid']}) stopped with {sig.name}")
    return 0


def cmd_node_start(args) -> int:
    need_root()
    lab = Lab.load(args.name)
    with lab.locked():
        node = lab.node(args.node)
        if lab.baseline:
            raise LabError("a baseline lab runs no membraned")
        if is_alive(node.get("daemon")):
            raise LabError(f"node {args.node}: membraned is running (pid {node['daemon']['pid']})")
        start_daemon(lab, args.node)
        wait_ready(lab, [args.node], args.timeout)
    print(f"node {args.node}: membraned ready (pid {node['daemon']['pid']})")
    return 0


def cmd_list(args) -> int:
    names = set()
    if LAB_ROOT.is_dir():
        names.update(p.name for p in LAB_ROOT.iterdir() if p.is_dir())
    for ns in list_netns():
        match = re.match(r"^ml-([a-z][a-z0-9]*)-", ns)
        if match:
            names.add(match.group(1))
    for name in sorted(names):
        try:
            lab = Lab.load(name)
            kind = "baseline" if lab.baseline else "membrane"
            print(f"{name}  {lab.data['routing']} ({kind}), {len(lab.data['nodes'])} nodes, "
                  f"{len(lab.data['pods'])} pods")
        except LabError:
            print(f"{name}  (remains without a record: `membrane-lab down {name}` removes them)")
    return 0


def cmd_check(args) -> int:
    topo = load_topology(args.file)
    print(f"{args.file}: lab {topo.name}, routing {topo.routing}, index {topo.index}")
    for number, name in enumerate(topo.nodes, 1):
        pods = [p.name for p in topo.pods if p.node == name]
        print(f"  node {name}: {node_ip(topo.index, number)}, pods {node_pod_cidr(topo.index, number)}: "
              f"{', '.join(pods) or '-'}")
    return 0


# --- command line ----------------------------------------------------------------------------------


TOPOLOGY_HELP = """topology file (TOML):
  name = "demo"              # the lab: lower-case letters and digits, at most 12
  routing = "vxlan"          # "vxlan" (module routing-vxlan) or "direct" (module direct-routing)
  # index = 42               # optional, 1..254: 192.168.<index>.0/24, 10.<index>.<node>.0/24

  [[nodes]]
  name = "node1"             # lower-case letters, digits, '-'; at most 12

  [[pods]]
  name = "web1"
  node = "node1"
  labels = { app = "web" }   # optional; the pod's identity follows its labels
  # namespace = "default"    # optional: K8S_POD_NAMESPACE passed to the CNI
"""


def build_parser() -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="membrane-lab", formatter_class=raw,
        description="A whole Membrane cluster on one machine: nodes are network namespaces, each running "
                    "its own membraned;\npods are namespaces wired by the real membrane-cni. Needs root.",
        epilog="examples:\n"
               "  membrane-lab up lab/examples/two-nodes-vxlan.toml\n"
               "  membrane-lab status vxdemo\n"
               "  membrane-lab exec vxdemo web1 -- ping -c 3 10.71.2.2\n"
               "  membrane-lab ctl vxdemo node1 -- endpoint list\n"
               "  membrane-lab down vxdemo\n\n"
               "`membrane-lab COMMAND --help` tells more about each command.")
    parser.add_argument("--build-dir", metavar="DIR",
                        help="take membraned, membranectl, membrane-cni and the routing modules from this build "
                             "(default: ./build when it has them, else the installed ones on PATH)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    up = sub.add_parser("up", help="build a lab from a topology file", formatter_class=raw,
                        description="Builds the lab: switch and node namespaces, underlay, per node a private "
                                    "dbus-daemon and membraned\n(waits until each answers), then each pod through "
                                    "membrane-cni ADD. On failure removes what it made.",
                        epilog=TOPOLOGY_HELP)
    up.add_argument("file", metavar="FILE", help="topology file (TOML)")
    up.add_argument("--baseline", action="store_true",
                    help="wire the same topology with the plain kernel, no Membrane (vxlan: a pod bridge and a "
                         "VXLAN device per node; direct: routed veths): the benchmarks' reference")
    up.add_argument("--baseline-l2", action="store_true",
                    help="(vxlan only; implies --baseline) the leanest hand-wired overlay instead: per node a "
                         "bridge with the VXLAN device as a port, static FDB entries, no learning, no routing "
                         "hop; the pods of all nodes on one L2 segment (a /16, no gateway)")
    up.add_argument("--timeout", type=float, default=60, metavar="SECONDS",
                    help="how long to wait for each membraned to answer (default 60)")
    up.add_argument("--log-level", default="info", choices=["trace", "debug", "info", "warn", "error"],
                    help="membraned's log_level (default info); logs are in /run/membrane-lab/<lab>/<node>/")
    up.add_argument("--keep-on-failure", action="store_true", help="keep what a failed `up` made, to look at it")
    up.set_defaults(func=cmd_up)

    down = sub.add_parser("down", help="remove everything a lab made",
                          description="Stops the lab's processes and removes its namespaces (with their links), "
                                      "mounts, pins and folder. Works after a crash or a half-finished `up`: it "
                                      "finds what carries the lab's prefix (ml-<lab>-, /run/membrane-lab/<lab>/) "
                                      "and touches nothing else.")
    down.add_argument("name", metavar="NAME", help="lab name")
    down.set_defaults(func=cmd_down)

    status = sub.add_parser("status", help="nodes, daemons, pods with addresses and identities",
                            description="Nodes (underlay IP, pod CIDR, daemon alive and answering) and pods "
                                        "(node, address, identity from `membranectl endpoint list` of their "
                                        "node).")
    status.add_argument("name", metavar="NAME", help="lab name")
    status.add_argument("-o", "--output", choices=["table", "json"], default="table",
                        help="table (for people, default) or json (for scripts)")
    status.set_defaults(func=cmd_status)

    exe = sub.add_parser("exec", help="run a command inside a pod's network namespace",
                         description="Runs CMD in the pod's network namespace; its exit status is the command's.")
    exe.add_argument("name", metavar="NAME", help="lab name")
    exe.add_argument("pod", metavar="POD", help="pod name")
    exe.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD...", help="the command")
    exe.set_defaults(func=cmd_exec)

    ctl = sub.add_parser("ctl", help="run membranectl against a node's membraned",
                         description="Runs membranectl with --bus set to the node's private bus.")
    ctl.add_argument("name", metavar="NAME", help="lab name")
    ctl.add_argument("node", metavar="NODE", help="node name")
    ctl.add_argument("command", nargs=argparse.REMAINDER, metavar="-- ARGS...",
                     help="membranectl arguments, e.g. -- -o json endpoint list")
    ctl.set_defaults(func=cmd_ctl)

    pod = sub.add_parser("pod", help="add or delete a pod (through membrane-cni, as a runtime would)",
                         description="Adds or deletes one pod of a running lab.")
    pod_sub = pod.add_subparsers(dest="pod_command", metavar="ACTION", required=True)
    pod_add = pod_sub.add_parser("add", help="new pod namespace, then membrane-cni ADD in the node's namespace",
                                 description="Creates the pod's namespace and calls membrane-cni ADD (CNI 1.0.0) "
                                             "inside the node's namespace, as a container runtime would.")
    pod_add.add_argument("name", metavar="NAME", help="lab name")
    pod_add.add_argument("pod", metavar="POD", help="new pod name")
    pod_add.add_argument("node", metavar="NODE", help="node to run it on")
    pod_add.add_argument("--label", action="append", type=parse_label, metavar="KEY=VALUE",
                         help="a label (repeatable)")
    pod_add.add_argument("--namespace", default="default", help="K8S_POD_NAMESPACE (default: default)")
    pod_add.set_defaults(func=cmd_pod_add)
    pod_del = pod_sub.add_parser("del", help="membrane-cni DEL, then remove the pod namespace",
                                 description="Calls membrane-cni DEL for the pod and removes its namespace.")
    pod_del.add_argument("name", metavar="NAME", help="lab name")
    pod_del.add_argument("pod", metavar="POD", help="pod name")
    pod_del.set_defaults(func=cmd_pod_del)

    node = sub.add_parser("node", help="stop or start a node's membraned (restart tests)",
                          description="Stops or starts one node's membraned; its namespace, pods, bus and pins stay.")
    node_sub = node.add_subparsers(dest="node_command", metavar="ACTION", required=True)
    node_stop = node_sub.add_parser("stop", help="signal membraned and wait until it is gone",
                                    description="Sends SIGNAL (default TERM; KILL simulates a crash) and waits.")
    node_stop.add_argument("name", metavar="NAME", help="lab name")
    node_stop.add_argument("node", metavar="NODE", help="node name")
    node_stop.add_argument("--signal", default="TERM", choices=["TERM", "KILL", "INT"],
                           help="signal to send (default TERM)")
    node_stop.add_argument("--timeout", type=float, default=10, metavar="SECONDS",
                           help="then SIGKILL (default 10)")
    node_stop.set_defaults(func=cmd_node_stop)
    node_start = node_sub.add_parser("start", help="start membraned again and wait until it answers",
                                     description="Starts the node's membraned with its config and waits until "
                                                 "`membranectl status` answers.")
    node_start.add_argument("name", metavar="NAME", help="lab name")
    node_start.add_argument("node", metavar="NODE", help="node name")
    node_start.add_argument("--timeout", type=float, default=60, metavar="SECONDS",
                            help="how long to wait (default 60)")
    node_start.set_defaults(func=cmd_node_start)

    lst = sub.add_parser("list", help="the labs on this machine (and remains of crashed ones)",
                         description="Lists labs found under /run/membrane-lab or by their namespaces.")
    lst.set_defaults(func=cmd_list)

    check = sub.add_parser("check", help="validate a topology file and show what `up` would derive",
                           formatter_class=raw, description="Validates FILE without making anything.",
                           epilog=TOPOLOGY_HELP)
    check.add_argument("file", metavar="FILE", help="topology file (TOML)")
    check.set_defaults(func=cmd_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except LabError as error:
        log(str(error))
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
