"""The command line: argparse, one function a subcommand, and what they print."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import time
from pathlib import Path

from .binaries import Binaries, find_binaries, installed_module, membrane_module
from .cgroups import enter
from .daemons import bus_environment, start_daemon, wait_ready
from .errors import LabError, log
from .lifecycle import bring_up, tear_down
from .names import (LAB_NAME_RE, LAB_ROOT, OUTSIDE, ROUTING_MODULES, STORE, bus_address, etcd_ip, lab_dir,
                    lab_prefix, netns_name, node_ip, node_pod_cidr, outside_ip)
from .pods import add_pod, delete_pod
from .processes import is_alive, stop_processes
from .record import Lab
from .status import lab_status
from .store import etcd_record, etcdctl_command, plan_etcd, start_etcd
from .topology import PodSpec, load_topology, validate_k8s_namespace, validate_labels, validate_member_name
from .wiring import list_netns


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
    if topo.modules:
        if args.baseline:
            raise LabError(f"{args.file}: 'modules' are Membrane modules; a baseline runs no Membrane")
        if binaries.source == "install":
            # The lab's module folder replaces the daemon's: the routing module goes there too.
            binaries.module_files[module] = installed_module(binaries.membraned, module)
        for name, path in topo.modules.items():
            binaries.module_files[name] = path or membrane_module(binaries, name)

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
        "extra_modules": list(topo.modules),
        "nodes": {},
        "pods": {},
        "outside": {"namespace": netns_name(topo.name, OUTSIDE), "ip": outside_ip(topo.index)},
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
    if not args.baseline and topo.store == "etcd":
        plan_etcd(lab, netns_name(topo.name, STORE), topo.lease_ttl)
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
            if lab.baseline else f"Membrane {topo.routing}, " +
            (f"store etcd at {lab.data['etcd']['url']}" if lab.data.get("etcd") else "static store"))
    print(f"lab {topo.name} up: {len(topo.nodes)} nodes, {len(topo.pods)} pods, {kind}")
    print(f"  membrane-lab status {topo.name}    membrane-lab down {topo.name}")
    return 0


def cmd_down(args) -> int:
    need_root()
    if not LAB_NAME_RE.match(args.name):
        raise LabError(f"{args.name!r} is not a lab name (lower-case letters and digits)")
    tear_down(args.name)
    return 0


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
    etcd = status["etcd"]
    if etcd:
        state = "healthy" if etcd["healthy"] else "alive, NOT HEALTHY" if etcd["alive"] else "DOWN"
        print(f"store: etcd at {etcd['url']} (pid {etcd['pid']}, {state})")
    elif not lab.baseline:
        print("store: static (each node knows the others from its [[nodes]] list)")
    if lab.data.get("outside"):
        print(f"outside host: {lab.data['outside']['ip']} (membrane-lab exec {lab.name} {OUTSIDE} -- CMD)")
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
    command = command_after_dashes(args, "command")
    if args.pod == OUTSIDE and lab.data.get("outside"):  # no node's: nothing translates its sockets
        os.execvp("ip", ["ip", "netns", "exec", lab.data["outside"]["namespace"], *command])
    pod = lab.pod(args.pod)
    cgroup = lab.node(pod["node"]).get("cgroup")
    if cgroup:  # the pod's processes are its node's: that node's socket programs act on them
        enter(cgroup)
    os.execvp("ip", ["ip", "netns", "exec", pod["namespace"], *command])
    return 127  # not reached


def cmd_ctl(args) -> int:
    lab = Lab.load(args.name)
    node = lab.node(args.node)
    if lab.baseline:
        raise LabError(f"lab {lab.name} is a baseline lab: no membraned to talk to")
    command = command_after_dashes(args, "membranectl arguments")
    ctl = lab.binaries()["membranectl"]
    os.execvpe(ctl, [ctl, "--bus", node["bus"], *command], bus_environment(node))
    return 127


def parse_label(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key, value


@contextlib.contextmanager
def changing(args):
    """The lab named by ARGS, loaded and locked for a change (root only)."""
    need_root()
    lab = Lab.load(args.name)
    with lab.locked():
        yield lab


def membraned_node(lab: Lab, name: str) -> dict:
    """The node NAME, which runs a membraned (not in a baseline lab)."""
    node = lab.node(name)
    if lab.baseline:
        raise LabError("a baseline lab runs no membraned")
    return node


def cmd_pod_add(args) -> int:
    with changing(args) as lab:
        where = f"pod {args.pod}"
        validate_member_name(where, "name", args.pod)
        labels = validate_labels(where, dict(args.label or []))
        validate_k8s_namespace(where, args.namespace)
        pod = add_pod(lab, PodSpec(args.pod, args.node, labels, args.namespace))
    print(f"pod {pod['name']} on {pod['node']}: {pod['address']}")
    return 0


def cmd_pod_del(args) -> int:
    with changing(args) as lab:
        delete_pod(lab, args.pod)
    print(f"pod {args.pod} deleted")
    return 0


def stop_recorded(process: dict | None, what: str, args) -> None:
    """Signals a recorded process (args.signal, then SIGKILL after args.timeout) and says what it did."""
    sig = signal.Signals["SIG" + args.signal.upper().removeprefix("SIG")]
    if not is_alive(process):
        print(f"{what} is not running")
        return
    stop_processes([process], sig, timeout=args.timeout)
    print(f"{what} (pid {process['pid']}) stopped with {sig.name}")


def cmd_node_stop(args) -> int:
    with changing(args) as lab:
        stop_recorded(membraned_node(lab, args.node).get("daemon"), f"node {args.node}: membraned", args)
    return 0


def cmd_node_start(args) -> int:
    with changing(args) as lab:
        node = membraned_node(lab, args.node)
        if is_alive(node.get("daemon")):
            raise LabError(f"node {args.node}: membraned is running (pid {node['daemon']['pid']})")
        start_daemon(lab, args.node)
        wait_ready(lab, [args.node], args.timeout)
    print(f"node {args.node}: membraned ready (pid {node['daemon']['pid']})")
    return 0


def cmd_etcd_stop(args) -> int:
    with changing(args) as lab:
        stop_recorded(etcd_record(lab).get("process"), f"lab {lab.name}: etcd", args)
    return 0


def cmd_etcd_start(args) -> int:
    with changing(args) as lab:
        store = etcd_record(lab)
        start_etcd(lab, args.timeout)
    print(f"lab {args.name}: etcd healthy at {store['url']} (pid {store['process']['pid']})")
    return 0


def cmd_etcd_ctl(args) -> int:
    need_root()
    lab = Lab.load(args.name)
    command = etcdctl_command(lab, *command_after_dashes(args, "etcdctl arguments"))
    os.execvp(command[0], command)
    return 127


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
    store = f"etcd at https://{etcd_ip(topo.index)}:2379" if topo.store == "etcd" else "static"
    print(f"{args.file}: lab {topo.name}, routing {topo.routing}, index {topo.index}, store {store}")
    for number, name in enumerate(topo.nodes, 1):
        pods = [p.name for p in topo.pods if p.node == name]
        print(f"  node {name}: {node_ip(topo.index, number)}, pods {node_pod_cidr(topo.index, number)}: "
              f"{', '.join(pods) or '-'}")
    return 0


TOPOLOGY_HELP = """topology file (TOML):
  name = "demo"              # the lab: lower-case letters and digits, at most 12
  routing = "vxlan"          # "vxlan" (module routing-vxlan) or "direct" (module direct-routing)
  # index = 42               # optional, 1..254: 192.168.<index>.0/24, 10.<index>.<node>.0/24
  # store = "etcd"           # optional: "etcd" (default) runs an etcd with TLS at 192.168.<index>.254 that
                             # the nodes share; "static": each node lists all nodes, no cluster store
  # lease_ttl = 30           # optional, with etcd: seconds a stopped node's keys outlive it (5..3600)

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
                        description="Builds the lab: switch and node namespaces, underlay, the lab's etcd (TLS, "
                                    "certificates made with openssl;\nnot with store = \"static\"), per node a "
                                    "private dbus-daemon and membraned (waits until each answers\nand is connected "
                                    "to etcd), then each pod through membrane-cni ADD. On failure removes what it "
                                    "made.",
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
                         description="Runs CMD in the pod's network namespace, in its node's cgroup; its exit status "
                                     f"is the command's. POD {OUTSIDE!r} is the outside host: a client on the lab's "
                                     "switch that belongs to no node.")
    exe.add_argument("name", metavar="NAME", help="lab name")
    exe.add_argument("pod", metavar="POD", help=f"pod name, or {OUTSIDE!r} for the outside host")
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

    etcd = sub.add_parser("etcd", help="stop or start the lab's etcd (fault tests)",
                          description="Stops or starts the lab's etcd; its data, certificates and address stay, "
                                      "so a start is the same store.")
    etcd_sub = etcd.add_subparsers(dest="etcd_command", metavar="ACTION", required=True)
    etcd_stop = etcd_sub.add_parser("stop", help="signal etcd and wait until it is gone",
                                    description="Sends SIGNAL (default TERM; KILL simulates a crash) and waits.")
    etcd_stop.add_argument("name", metavar="NAME", help="lab name")
    etcd_stop.add_argument("--signal", default="TERM", choices=["TERM", "KILL", "INT"],
                           help="signal to send (default TERM)")
    etcd_stop.add_argument("--timeout", type=float, default=10, metavar="SECONDS",
                           help="then SIGKILL (default 10)")
    etcd_stop.set_defaults(func=cmd_etcd_stop)
    etcd_start = etcd_sub.add_parser("start", help="start etcd again and wait until it is healthy",
                                     description="Starts etcd on its data and waits for `etcdctl endpoint "
                                                 "health`.")
    etcd_start.add_argument("name", metavar="NAME", help="lab name")
    etcd_start.add_argument("--timeout", type=float, default=30, metavar="SECONDS",
                            help="how long to wait (default 30)")
    etcd_start.set_defaults(func=cmd_etcd_start)
    etcd_ctl = etcd_sub.add_parser("ctl", help="run etcdctl against the lab's etcd",
                                   description="Runs etcdctl in the etcd's namespace with the lab's CA and the "
                                               "first node's client certificate,\ne.g. `membrane-lab etcd ctl "
                                               "LAB -- get --prefix membrane/v1/`.")
    etcd_ctl.add_argument("name", metavar="NAME", help="lab name")
    etcd_ctl.add_argument("command", nargs=argparse.REMAINDER, metavar="-- ARGS...", help="etcdctl arguments")
    etcd_ctl.set_defaults(func=cmd_etcd_ctl)

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
