"""The lab's cluster store: one etcd (Debian's etcd-server) in its own namespace on the lab switch, serving
TLS with client-certificate authentication, and the certificates `up` makes for it with openssl."""

from __future__ import annotations

import time
from pathlib import Path

from .errors import LabError
from .names import etcd_ip, switch_port
from .processes import is_alive, run, start_detached, tail, wait_until
from .record import Lab
from .wiring import plug_into_switch

ETCD_CLIENT_PORT = 2379
ETCD_PEER_PORT = 2380  # on the store namespace's loopback: a single member has no peers to reach
KEY_OPTIONS = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
CERT_DAYS = "30"  # a lab lives for hours; a month covers one left running over a holiday


def etcd_record(lab: Lab) -> dict:
    try:
        return lab.data["etcd"]
    except KeyError:
        raise LabError(f"lab {lab.name} keeps no cluster store (store = \"static\", or a baseline lab)") from None


def plan_etcd(lab: Lab, namespace: str, lease_ttl: int) -> None:
    """Records where the store will live; `up` makes it later (start_etcd)."""
    folder = lab.dir / "etcd"
    address = etcd_ip(lab.data["index"])
    lab.data["etcd"] = {
        "namespace": namespace,
        "ip": address,
        "url": f"https://{address}:{ETCD_CLIENT_PORT}",
        "dir": str(folder),
        "data_dir": str(folder / "data"),
        "ca": str(folder / "ca.crt"),
        "log": str(folder / "etcd.log"),
        "lease_ttl": lease_ttl,
    }


def _openssl(args: list[str], folder: Path) -> None:
    result = run(["openssl", *args], check=False, timeout=30)
    if result.returncode != 0:
        raise LabError(f"openssl {args[0]} failed in {folder}: {(result.stderr or result.stdout).strip()}")


def _signed(folder: Path, name: str, subject: str, extensions: str) -> None:
    """NAME.key and NAME.crt in FOLDER, signed by the lab's CA (ca.key/ca.crt in FOLDER)."""
    (folder / f"{name}.ext").write_text(extensions)
    _openssl(["req", *KEY_OPTIONS, "-keyout", str(folder / f"{name}.key"), "-out", str(folder / f"{name}.csr"),
              "-subj", subject], folder)
    _openssl(["x509", "-req", "-in", str(folder / f"{name}.csr"), "-CA", str(folder / "ca.crt"),
              "-CAkey", str(folder / "ca.key"), "-CAcreateserial", "-out", str(folder / f"{name}.crt"),
              "-days", CERT_DAYS, "-extfile", str(folder / f"{name}.ext")], folder)
    (folder / f"{name}.key").chmod(0o600)


def make_certificates(lab: Lab) -> None:
    """A CA for the lab, etcd's server certificate (for its lab address) and one client certificate per
    node, named after the node. Only the lab's CA is trusted, so nothing else can reach the store."""
    store = etcd_record(lab)
    folder = Path(store["dir"])
    folder.mkdir(mode=0o700, exist_ok=True)
    _openssl(["req", "-x509", *KEY_OPTIONS, "-keyout", str(folder / "ca.key"), "-out", str(folder / "ca.crt"),
              "-subj", f"/CN=membrane-lab {lab.name} CA", "-days", CERT_DAYS], folder)
    (folder / "ca.key").chmod(0o600)
    _signed(folder, "server", "/CN=etcd", f"subjectAltName=IP:{store['ip']}\n"
                                          "extendedKeyUsage=serverAuth,clientAuth\n")
    for name, node in lab.data["nodes"].items():
        _signed(folder, f"client-{name}", f"/CN={name}", "extendedKeyUsage=clientAuth\n")
        node["etcd_cert"] = str(folder / f"client-{name}.crt")
        node["etcd_key"] = str(folder / f"client-{name}.key")
    lab.save()


def wire_etcd(lab: Lab, switch_ns: str) -> None:
    """The store's namespace: a veth to the switch bridge, the lab address .254 (nodes are .1 to .250)."""
    store = etcd_record(lab)
    ns = store["namespace"]
    plug_into_switch(switch_ns, ns, switch_port("kv"), store["ip"])


def etcdctl_command(lab: Lab, *args: str) -> list[str]:
    """etcdctl in the store's namespace, as the lab's first node (any lab client certificate will do)."""
    store = etcd_record(lab)
    first = next(iter(lab.data["nodes"].values()))
    if "etcd_cert" not in first:
        raise LabError(f"lab {lab.name}: its certificates were never made (a failed `up`)")
    return ["ip", "netns", "exec", store["namespace"], "etcdctl", f"--endpoints={store['url']}",
            f"--cacert={store['ca']}", f"--cert={first['etcd_cert']}", f"--key={first['etcd_key']}", *args]


def etcd_healthy(lab: Lab) -> bool:
    command = etcdctl_command(lab, "--dial-timeout=2s", "--command-timeout=3s", "endpoint", "health")
    return run(command, check=False, timeout=10).returncode == 0


def start_etcd(lab: Lab, timeout: float = 30) -> None:
    """Starts etcd on the recorded data (a restart is the same store) and waits until it is healthy."""
    store = etcd_record(lab)
    if is_alive(store.get("process")):
        raise LabError(f"lab {lab.name}: etcd is running (pid {store['process']['pid']})")
    folder = Path(store["dir"])
    peer = f"http://127.0.0.1:{ETCD_PEER_PORT}"
    with open(store["log"], "a") as log_file:
        log_file.write(f"--- membrane-lab: start {time.strftime('%Y-%m-%d %H:%M:%S')} ---\n")
    # `ip netns exec` execs etcd, so the pid recorded is etcd's.
    store["process"] = start_detached([
        "ip", "netns", "exec", store["namespace"], "etcd", "--name", "kv", "--data-dir", store["data_dir"],
        "--listen-client-urls", store["url"], "--advertise-client-urls", store["url"],
        "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", f"kv={peer}",
        f"--cert-file={folder / 'server.crt'}", f"--key-file={folder / 'server.key'}",
        f"--trusted-ca-file={store['ca']}", "--client-cert-auth", "--log-level", "warn"], Path(store["log"]))
    store["process"]["cmd"] = "etcd"
    lab.save()

    def ready() -> bool:
        if not is_alive(store["process"]):
            raise LabError(f"lab {lab.name}: etcd exited at start; last lines of {store['log']}:\n"
                           f"{tail(Path(store['log']))}")
        return etcd_healthy(lab)

    if not wait_until(ready, timeout, 0.2):
        raise LabError(f"lab {lab.name}: etcd did not report healthy within {timeout:.0f}s (log {store['log']})")


def etcd_status(lab: Lab) -> dict | None:
    store = lab.data.get("etcd")
    if not store:
        return None
    alive = is_alive(store.get("process"))
    certified = all("etcd_cert" in node for node in lab.data["nodes"].values())  # a half-made lab may lack them
    return {"url": store["url"], "pid": (store.get("process") or {}).get("pid"), "alive": alive,
            "healthy": alive and certified and etcd_healthy(lab)}
