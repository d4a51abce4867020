"""Running things: commands (bounded, errors as LabError), detached processes told apart from recycled
pids, signals with a bounded wait, and polling."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from .errors import LabError, log


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

    def all_gone() -> bool:
        return not any(is_alive(p) for p in alive)

    wait_until(all_gone, timeout, 0.05)
    for process in alive:
        if is_alive(process):
            log(f"pid {process['pid']} ({process.get('cmd', '?')}) ignored signal {sig}: SIGKILL")
            with contextlib.suppress(ProcessLookupError):
                os.kill(process["pid"], signal.SIGKILL)
    wait_until(all_gone, 5, 0.05)


def wait_until(predicate, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
