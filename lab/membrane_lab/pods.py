"""Pods: added and deleted through membrane-cni, called as a container runtime calls it (or, in a baseline
lab, wired with the plain kernel)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
from pathlib import Path

from .errors import LabError
from .names import POD_IF, STORE, SWITCH, netns_name
from .processes import ip
from .record import Lab
from .topology import PodSpec
from .wiring import add_netns, wire_baseline_pod


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
    if pod.get("ports"):
        config["args"] = {"cni": {"membrane": {"ports": pod["ports"]}}}
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
    if spec.name in lab.data["pods"] or spec.name in lab.data["nodes"] or spec.name in (SWITCH, STORE):
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
        "ports": spec.ports,
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
