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
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from membrane_lab.binaries import Binaries, find_binaries
from membrane_lab.daemons import agent_config, daemon_answers, start_bus, start_daemon, wait_ready
from membrane_lab.errors import LabError, log
from membrane_lab.names import (LAB_NAME_RE, LAB_ROOT, NETNS_DIR, POD_IF, ROUTING_MODULES, SWITCH, bus_address,
                                lab_dir, lab_prefix, netns_name, node_ip, node_pod_cidr)
from membrane_lab.processes import ip, is_alive, proc_start_time, run, stop_processes
from membrane_lab.record import Lab
from membrane_lab.topology import (PodSpec, Topology, load_topology, validate_k8s_namespace, validate_labels,
                                   validate_member_name)
from membrane_lab.wiring import (add_netns, list_netns, mount_bpffs, wire_baseline_nodes, wire_baseline_pod,
                                 wire_underlay)


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
    kind = "baseline (plain kernel, no BPF)" if lab.baseline else f"Membrane {topo.routing}"
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
    mode = "baseline, plain kernel" if lab.baseline else "membrane"
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
