"""Per node: its membrane.toml, its private dbus-daemon, its membraned, and waiting until it answers."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from .errors import LabError
from .names import ROUTING_MODULES, UNDERLAY_IF
from .processes import is_alive, run, start_detached, tail, wait_until
from .record import Lab


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
    if node.get("cgroup_root"):  # the node's own cgroup: its socket programs see only its pods
        lines.append(f"cgroup_root = {toml_string(node['cgroup_root'])}")
    lines += [
        f"devices = [{toml_string(UNDERLAY_IF)}]",
        f"log_level = {toml_string(lab.data.get('log_level', 'info'))}",
        "",
        "[dbus]",
        f"bus = {toml_string(node['bus'])}",
        "",
        "[modules]",
        f"enabled = [{', '.join(toml_string(m) for m in [module] + lab.data.get('extra_modules', []))}]",
    ]
    store = lab.data.get("etcd")
    if store:
        # The node names only itself: it learns the others, and their pods, from the store.
        listed = {name: node}
        lines += ["", "[cluster]", f"name = {toml_string(lab.name)}", "id = 1", "",
                  "[kvstore]", f"endpoints = [{toml_string(store['url'])}]", f"ca = {toml_string(store['ca'])}",
                  f"cert = {toml_string(node['etcd_cert'])}", f"key = {toml_string(node['etcd_key'])}",
                  f"lease_ttl = {store['lease_ttl']}"]
    else:
        listed = lab.data["nodes"]
    for other_name, other in listed.items():
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


def bus_environment(node: dict) -> dict:
    """This process's environment, pointed at the node's private bus (for membraned and membranectl)."""
    return dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=node["bus"], MEMBRANE_DBUS_ADDRESS=node["bus"])


def start_daemon(lab: Lab, name: str) -> None:
    node = lab.data["nodes"][name]
    env = bus_environment(node)
    log_path = Path(node["dir"]) / "membraned.log"
    with open(log_path, "a") as log_file:
        log_file.write(f"--- membrane-lab: start {time.strftime('%Y-%m-%d %H:%M:%S')} ---\n")
    # `ip netns exec` execs membraned, so the pid recorded is the daemon's.
    node["daemon"] = start_detached(["ip", "netns", "exec", node["namespace"], lab.binaries()["membraned"],
                                     "--config", node["config"]], log_path, env)
    node["daemon"]["cmd"] = "membraned"
    lab.save()


def daemon_status(lab: Lab, name: str) -> dict | None:
    """`membranectl -o json status` of the node, or None when it does not answer."""
    node = lab.data["nodes"][name]
    result = run([lab.binaries()["membranectl"], "--bus", node["bus"], "-o", "json", "status"], check=False,
                 timeout=10)
    if result.returncode != 0:
        return None
    try:
        status = json.loads(result.stdout)
    except json.JSONDecodeError:
        return None
    return status if isinstance(status, dict) else None


def daemon_answers(lab: Lab, name: str) -> bool:
    return daemon_status(lab, name) is not None


def daemon_ready(lab: Lab, name: str) -> bool:
    """Answers, and with a store is connected to it (a pod's first identity needs the store)."""
    status = daemon_status(lab, name)
    if status is None:
        return False
    return not lab.data.get("etcd") or status.get("kvstore_state") == "connected"


def wait_ready(lab: Lab, names: list[str], timeout: float) -> None:
    """Each daemon alive, answering `membranectl status` (one daemon per bus, so alive matters) and
    connected to the lab's store when it has one."""
    deadline = time.monotonic() + timeout
    pending = list(names)
    while pending:
        for name in list(pending):
            node = lab.data["nodes"][name]
            if not is_alive(node.get("daemon")):
                raise LabError(f"node {name}: membraned exited before it answered; last lines of "
                               f"{node['dir']}/membraned.log:\n{tail(Path(node['dir']) / 'membraned.log')}")
            if daemon_ready(lab, name):
                pending.remove(name)
        if pending and time.monotonic() > deadline:
            what = "answer `membranectl status`" + (" connected to etcd" if lab.data.get("etcd") else "")
            raise LabError(f"membraned did not {what} within {timeout:.0f}s on: {', '.join(pending)}")
        if pending:
            time.sleep(0.2)
