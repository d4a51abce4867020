"""The record of a lab (lab.json in its folder): what `up` made, kept exact so that `down` is."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path

from .errors import LabError
from .names import LAB_NAME_RE, lab_dir


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
