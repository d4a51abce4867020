"""Each node's own cgroup v2 folder, so that a node's socket programs (service-lb's connect4...) see only
its own pods' sockets: the node's membraned attaches them there ([agent] cgroup_root), and
`membrane-lab exec` runs a pod's command inside its node's cgroup.

`ip netns exec` mounts a fresh /sys for its command, where the host's cgroup mounts are not: membraned
reaches the same folder through a bind mount of the cgroup2 mount in the lab's folder (<lab folder>/cgroup)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from .errors import LabError

CGROUP_FOLDER = "membrane-lab"  # <cgroup2 mount>/membrane-lab/<lab>/<node>


def cgroup2_mount() -> Path:
    """The cgroup v2 mount: /sys/fs/cgroup on a unified host, /sys/fs/cgroup/unified on a hybrid one."""
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            fields = line.split()
            fstype = fields[fields.index("-") + 1]
            if fstype == "cgroup2":
                return Path(fields[4].replace("\\040", " "))
    raise LabError("no cgroup v2 mount (mount -t cgroup2 none /sys/fs/cgroup/unified): the lab gives each node "
                   "its own cgroup for its socket programs")


def lab_cgroup(lab_name: str) -> Path:
    return cgroup2_mount() / CGROUP_FOLDER / lab_name


def make_node_cgroup(lab_name: str, node: str) -> str:
    """The node's cgroup, made; its path on the host's cgroup2 mount."""
    folder = lab_cgroup(lab_name) / node
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder)


def seen_from_lab_mount(cgroup: str, lab_mount: Path) -> str:
    """The same cgroup through the lab's own cgroup2 mount (what membraned can reach)."""
    return str(lab_mount / Path(cgroup).relative_to(cgroup2_mount()))


def enter(cgroup: str) -> None:
    """Moves this process (and so what it execs) into `cgroup`."""
    try:
        Path(cgroup, "cgroup.procs").write_text(f"{os.getpid()}\n")
    except OSError as error:
        raise LabError(f"cannot enter the node's cgroup {cgroup}: {error}") from None


def pids_in(lab_name: str) -> list[int]:
    """Processes in the lab's cgroups (what `exec` started there)."""
    pids = []
    with contextlib.suppress(LabError):
        root = lab_cgroup(lab_name)
        for procs in root.glob("**/cgroup.procs") if root.exists() else []:
            with contextlib.suppress(OSError):
                pids += [int(pid) for pid in procs.read_text().split()]
    return pids


def remove_lab_cgroups(lab_name: str) -> bool:
    """Kills what is left in the lab's cgroups and removes them, deepest first. False if one stays."""
    try:
        root = lab_cgroup(lab_name)
    except LabError:
        return True
    if not root.exists():
        return True
    # cgroup.kill (5.14+) also takes what forks meanwhile; then the stragglers one by one.
    for kill in root.glob("**/cgroup.kill"):
        with contextlib.suppress(OSError):
            kill.write_text("1")
    for pid in pids_in(lab_name):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    folders = sorted((p for p in root.glob("**/") if p.is_dir()), key=lambda p: -len(p.parts))
    deadline = time.monotonic() + 5
    for folder in folders + [root]:
        while True:
            try:
                folder.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:  # EBUSY until the killed processes are gone
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.05)
    with contextlib.suppress(OSError):
        root.parent.rmdir()  # <mount>/membrane-lab, once no other lab uses it
    return True
