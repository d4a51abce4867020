"""A lab's life: brought up from its record, taken down with or without one (after a crash too)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
from pathlib import Path

from .cgroups import cgroup2_mount, make_node_cgroup, pids_in, remove_lab_cgroups, seen_from_lab_mount
from .daemons import agent_config, start_bus, start_daemon, wait_ready
from .errors import LabError, log
from .names import NETNS_DIR, lab_dir, lab_prefix
from .pods import add_pod
from .processes import ip, is_alive, proc_start_time, run, stop_processes
from .record import Lab
from .store import make_certificates, start_etcd, wire_etcd
from .topology import Topology
from .wiring import add_netns, list_netns, mount_bpffs, mount_cgroup2, wire_baseline_nodes, wire_underlay


def bring_up(lab: Lab, topo: Topology, args) -> None:
    folder = lab.dir
    for node in lab.data["nodes"].values():
        for key in ("dir", "state_dir", "runtime_dir"):
            Path(node[key]).mkdir(mode=0o755, parents=True, exist_ok=True)
            os.chmod(node[key], 0o755)
    switch = wire_underlay(lab)
    if lab.data.get("etcd"):
        add_netns(lab, lab.data["etcd"]["namespace"])
        wire_etcd(lab, switch)
        make_certificates(lab)
        start_etcd(lab, args.timeout)
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
        try:
            cgroup_mount = mount_cgroup2(lab, folder / "cgroup", cgroup2_mount())
        except LabError as error:  # a host without cgroup v2: everything but socket programs works
            log(f"{error}; the nodes share the agent's default cgroup root")
            cgroup_mount = None
        for name, node in lab.data["nodes"].items():
            if cgroup_mount:
                node["cgroup"] = make_node_cgroup(lab.name, name)
                node["cgroup_root"] = seen_from_lab_mount(node["cgroup"], cgroup_mount)
                lab.save()
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
    for pid in pids_in(lab_name):  # started by `exec` in a node's cgroup
        start = proc_start_time(pid)
        if start and pid != os.getpid():
            found[pid] = {"pid": pid, "start": start, "cmd": "(in the lab's cgroup)"}
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
        if data.get("etcd", {}).get("process"):
            recorded.append(data["etcd"]["process"])
    # Daemons first (TERM: they leave pins, which go with the bpffs), then whatever is left in our namespaces.
    processes = {p["pid"]: p for p in recorded + processes_of_lab(name) if is_alive(p)}
    stop_processes(list(processes.values()))
    removed["processes"] = len(processes)
    # What a killed `up` left running may still start a last child (an
    # etcdctl probe, an openssl step): scan again until a scan finds nothing.
    for _ in range(5):
        leftovers = processes_of_lab(name)
        if not leftovers:
            break
        stop_processes(leftovers, signal.SIGKILL, timeout=5)
        removed["processes"] += len(leftovers)
    removed["cgroups"] = remove_lab_cgroups(name)
    if not removed["cgroups"]:
        log(f"could not remove lab {name}'s cgroups (processes left in them?)")
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
