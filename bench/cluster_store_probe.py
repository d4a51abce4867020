#!/usr/bin/env python3
"""The cluster store's costs on a running two-node membrane-lab (its etcd), as bench/cluster_store_bench.sh runs it.

    cluster_store_probe.py LAB NODE_FROM NODE_TO [PODS]     prints JSON

- Propagation: a pod added on NODE_FROM by membrane-cni (as a runtime calls
  it, from inside the node's namespace) until its /32 is in NODE_TO's
  ipcache, read from the pinned map with the bpf() syscall every 0.5 ms;
  likewise a DEL until the entry is gone. Both from the start of the CNI call,
  and beside it the CNI call's own duration.
- etcd writes per ADD and per DEL: the store's revision (one a write) before
  and after all ADDs, then all DELs.
- Identity allocation: the CNI ADD's duration for a label set new to the
  cluster (one etcd transaction more) against one every node knows.
- Agent memory with many remote endpoints: NODE_TO's membraned RSS before and
  after 1,000 endpoint records of a made-up node are written to etcd (and are
  in its ipcache), then the records are deleted again.
Pod namespaces carry the lab's prefix, so `membrane-lab down` removes them if
this is interrupted.
"""
import base64
import ctypes
import ipaddress
import json
import math
import os
import secrets
import statistics
import subprocess
import sys
import time

CLONE_NEWNET = 0x40000000
SYS_BPF = 321  # x86_64
BPF_MAP_LOOKUP_ELEM, BPF_OBJ_GET = 1, 7
libc = ctypes.CDLL("libc.so.6", use_errno=True)


def enter_netns(name: str) -> None:
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {name}")
    finally:
        os.close(fd)


def bpf(cmd: int, attr: bytes) -> int:
    buf = ctypes.create_string_buffer(attr, 128)
    return libc.syscall(SYS_BPF, cmd, buf, 128)


def pinned_map(path: str) -> int:
    name = ctypes.create_string_buffer(path.encode())
    fd = bpf(BPF_OBJ_GET, ctypes.c_uint64(ctypes.addressof(name)).value.to_bytes(8, "little") + bytes(8))
    if fd < 0:
        raise OSError(ctypes.get_errno(), f"bpf obj get {path}")
    return fd


def ipcache_has(fd: int, address: str) -> bool:
    """Whether the LPM ipcache (key: u32 prefixlen, be32 address) gives ADDRESS a pod's identity (>= 256):
    a lookup is a longest-prefix match, so without the pod's /32 it finds its node's pod CIDR (WORLD, 2)."""
    key = ctypes.create_string_buffer((32).to_bytes(4, "little") + ipaddress.IPv4Address(address).packed)
    value = ctypes.create_string_buffer(64)
    attr = (fd.to_bytes(4, "little") + bytes(4) + ctypes.addressof(key).to_bytes(8, "little") +
            ctypes.addressof(value).to_bytes(8, "little") + bytes(8))
    return bpf(BPF_MAP_LOOKUP_ELEM, attr) == 0 and int.from_bytes(value.raw[:4], "little") >= 256


def wait_ms(predicate, start: float, limit: float = 10.0) -> float:
    while not predicate():
        if time.perf_counter() - start > limit:
            sys.exit("cluster_store_probe: the ipcache did not follow within 10 s")
        time.sleep(0.0005)
    return (time.perf_counter() - start) * 1000


def cni(binary: str, command: str, container_id: str, netns: str, config: str, pod: str) -> tuple[float, dict]:
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "CNI_COMMAND": command,
           "CNI_CONTAINERID": container_id, "CNI_NETNS": f"/var/run/netns/{netns}", "CNI_IFNAME": "eth0",
           "CNI_PATH": os.path.dirname(binary), "CNI_ARGS": f"IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME={pod}"}
    start = time.perf_counter()
    result = subprocess.run([binary], input=config, capture_output=True, text=True, env=env, timeout=30)
    if result.returncode != 0:
        sys.exit(f"cluster_store_probe: membrane-cni {command} failed: {result.stdout.strip()} {result.stderr.strip()}")
    return start, (json.loads(result.stdout) if result.stdout.strip() else {})


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def summary(samples: list[float]) -> dict:
    return {"p50_ms": round(statistics.median(samples), 2), "p99_ms": round(percentile(samples, 0.99), 2)}


class Etcd:
    """The lab's etcd through its JSON gateway (curl in the store's namespace, with the lab's certificates)."""

    def __init__(self, record: dict):
        store, first = record["etcd"], next(iter(record["nodes"].values()))
        self.base = ["ip", "netns", "exec", store["namespace"], "curl", "-sS", "--fail", "--cacert", store["ca"],
                     "--cert", first["etcd_cert"], "--key", first["etcd_key"]]
        self.url = store["url"]

    def call(self, path: str, body: dict) -> dict:
        out = subprocess.run(self.base + [f"{self.url}/v3/{path}", "-d", json.dumps(body)], capture_output=True,
                             text=True, timeout=30, check=True)
        return json.loads(out.stdout)

    def revision(self) -> int:
        return int(self.call("kv/range", {"key": b64("membrane"), "limit": 1})["header"]["revision"])

    def put_many(self, items: list[tuple[str, str]]) -> None:
        for i in range(0, len(items), 100):  # etcd takes 128 operations a transaction
            self.call("kv/txn", {"success": [{"requestPut": {"key": b64(k), "value": b64(v)}}
                                             for k, v in items[i:i + 100]]})

    def delete_prefix(self, prefix: str) -> None:
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        self.call("kv/deleterange", {"key": b64(prefix), "range_end": b64(end)})


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def rss_kib(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main() -> int:
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    lab, node_from, node_to = sys.argv[1:4]
    pods = int(sys.argv[4]) if len(sys.argv) == 5 else 200
    record = json.load(open(f"/run/membrane-lab/{lab}/lab.json"))
    source, target = record["nodes"][node_from], record["nodes"][node_to]
    binary = record["binaries"]["cni"]
    etcd = Etcd(record)
    ipcache = pinned_map(f"{record['bpffs']}/membrane/{node_to}/mbr_ipcache_v1")

    def config(labels: dict) -> str:
        return json.dumps({"cniVersion": "1.0.0", "name": f"membrane-lab-{lab}", "type": "membrane",
                           "dbus_address": source["bus"], "labels": labels})

    enter_netns(source["namespace"])
    known = config({"app": "bench"})
    added, gone, add_calls, del_calls = [], [], [], []
    live = []
    cni_add_warm = f"ml-{lab}-cbwarm"
    subprocess.run(["ip", "netns", "add", cni_add_warm], check=True)
    warm_id = secrets.token_hex(32)
    cni(binary, "ADD", warm_id, cni_add_warm, known, "warm")  # the label set is known from here on
    revision_start = etcd.revision()
    try:
        for i in range(pods):
            ns = f"ml-{lab}-cb{i}"
            subprocess.run(["ip", "netns", "add", ns], check=True)
            container_id = secrets.token_hex(32)
            start, result = cni(binary, "ADD", container_id, ns, known, f"p{i}")
            add_calls.append((time.perf_counter() - start) * 1000)
            address = result["ips"][0]["address"].split("/")[0]
            added.append(wait_ms(lambda: ipcache_has(ipcache, address), start))
            live.append((ns, container_id, address))
        revision_added = etcd.revision()
        for i, (ns, container_id, address) in enumerate(live):
            start, _ = cni(binary, "DEL", container_id, ns, known, f"p{i}")
            del_calls.append((time.perf_counter() - start) * 1000)
            gone.append(wait_ms(lambda: not ipcache_has(ipcache, address), start))
        revision_deleted = etcd.revision()
    finally:
        for ns, _, _ in live:
            subprocess.run(["ip", "netns", "del", ns], check=False)

    # Identity allocation: ADD of a label set new to the cluster, against a known one.
    new_adds, known_adds = [], []
    for i in range(20):
        for labels, into in ((config({"app": f"new-{secrets.token_hex(4)}"}), new_adds), (known, known_adds)):
            ns = f"ml-{lab}-cbid"
            subprocess.run(["ip", "netns", "add", ns], check=True)
            try:
                container_id = secrets.token_hex(32)
                start, _ = cni(binary, "ADD", container_id, ns, labels, f"id{i}")
                into.append((time.perf_counter() - start) * 1000)
                cni(binary, "DEL", container_id, ns, labels, f"id{i}")
            finally:
                subprocess.run(["ip", "netns", "del", ns], check=False)
    cni(binary, "DEL", warm_id, cni_add_warm, known, "warm")
    subprocess.run(["ip", "netns", "del", cni_add_warm], check=False)

    # Memory: 1,000 endpoints of a made-up node, in NODE_TO's ipcache.
    pid = target["daemon"]["pid"]
    rss_before = rss_kib(pid)
    root = f"membrane/v1/{lab}/endpoints/"
    ghost_ip = str(ipaddress.IPv4Address(source["ip"]) + 100)
    records = [(f"{root}10.250.{i // 250}.{i % 250 + 1}",
                json.dumps({"identity": 65536 + 300 + i % 50, "node": "ghost", "node_ip": ghost_ip}))
               for i in range(1000)]
    etcd.put_many(records)
    last = records[-1][0].rsplit("/", 1)[1]
    wait_ms(lambda: ipcache_has(ipcache, last), time.perf_counter(), 30)
    time.sleep(2)  # the cache file and the allocator settle
    rss_after = rss_kib(pid)
    etcd.delete_prefix(f"{root}10.250.")
    wait_ms(lambda: not ipcache_has(ipcache, last), time.perf_counter(), 30)

    print(json.dumps({
        "pods": pods,
        "add_to_remote_ipcache": summary(added), "cni_add": summary(add_calls),
        "del_to_remote_ipcache_gone": summary(gone), "cni_del": summary(del_calls),
        "etcd_writes_per_add": round((revision_added - revision_start) / pods, 2),
        "etcd_writes_per_del": round((revision_deleted - revision_added) / pods, 2),
        "cni_add_new_labels": summary(new_adds), "cni_add_known_labels": summary(known_adds),
        "rss_kib_before": rss_before, "rss_kib_with_1000_remote": rss_after,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
