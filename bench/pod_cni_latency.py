#!/usr/bin/env python3
"""CNI ADD and DEL latency, as a container runtime sees it, on a node of a running membrane-lab.

    pod_cni_latency.py LAB NODE [CYCLES]     prints JSON: median and p99 of ADD and DEL, in ms

Like a runtime on that node, it runs in the node's network namespace (setns)
and execs membrane-cni with the CNI environment and the network config on
stdin; each cycle gets a fresh pod namespace (made and removed outside the
timing) and a fresh container id. The pod namespace carries the lab's prefix,
so `membrane-lab down` removes it even if this script is interrupted.
"""
import ctypes
import json
import math
import os
import secrets
import statistics
import subprocess
import sys
import time

CLONE_NEWNET = 0x40000000


def enter_netns(name: str) -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {name}")
    finally:
        os.close(fd)


def cni(binary: str, command: str, container_id: str, netns: str, config: str) -> float:
    env = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": container_id,
        "CNI_NETNS": f"/var/run/netns/{netns}",
        "CNI_IFNAME": "eth0",
        "CNI_PATH": os.path.dirname(binary),
        "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=latency",
    }
    start = time.perf_counter()
    result = subprocess.run([binary], input=config, capture_output=True, text=True, env=env, timeout=30)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"pod_cni_latency: membrane-cni {command} failed: {result.stdout.strip()} {result.stderr.strip()}")
    return elapsed * 1000


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def main() -> int:
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    lab, node_name = sys.argv[1], sys.argv[2]
    cycles = int(sys.argv[3]) if len(sys.argv) == 4 else 200
    record = json.load(open(f"/run/membrane-lab/{lab}/lab.json"))
    node = record["nodes"][node_name]
    binary = record["binaries"]["cni"]
    config = json.dumps({"cniVersion": "1.0.0", "name": f"membrane-lab-{lab}", "type": "membrane",
                         "dbus_address": node["bus"], "labels": {"app": "latency"}})
    pod_ns = f"ml-{lab}-cnibench"
    enter_netns(node["namespace"])
    adds, dels = [], []
    for _ in range(cycles):
        subprocess.run(["ip", "netns", "add", pod_ns], check=True)
        try:
            container_id = secrets.token_hex(32)
            adds.append(cni(binary, "ADD", container_id, pod_ns, config))
            dels.append(cni(binary, "DEL", container_id, pod_ns, config))
        finally:
            subprocess.run(["ip", "netns", "del", pod_ns], check=True)
    print(json.dumps({
        "cycles": cycles,
        "add_median_ms": round(statistics.median(adds), 2), "add_p99_ms": round(percentile(adds, 0.99), 2),
        "del_median_ms": round(statistics.median(dels), 2), "del_p99_ms": round(percentile(dels, 0.99), 2),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
