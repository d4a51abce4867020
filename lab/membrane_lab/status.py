"""What a running lab looks like: nodes, daemons, pods, and the endpoints their membraned reports."""

from __future__ import annotations

import json

from .daemons import daemon_answers
from .processes import is_alive, run
from .record import Lab
from .store import etcd_status


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
        "etcd": etcd_status(lab),
        "nodes": nodes,
        "pods": pods,
        "outside": lab.data.get("outside"),
    }
