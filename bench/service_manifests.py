#!/usr/bin/env python3
"""The manifests Membrane gets for bench/service_rules.py's services (bench/service_bench_membrane.sh,
bench/service_load_bench.sh).

    service_manifests.py batches SERVICES BACKENDS FOLDER
        FOLDER/apply-NNNNN.yaml: 50 Services and their 50 EndpointSlices a file (the apply limit
        is 100 objects), service i = svc-<i> with the i-th ClusterIP of SERVICES (one a line),
        port "http" 80/TCP -> 8080, every address of BACKENDS (one a line) a ready endpoint.
    service_manifests.py changes SERVICES BACKENDS FOLDER COUNT
        COUNT changes of one EndpointSlice each, on services drawn at random (fixed seed):
        FOLDER/change-NNNNN.yaml, the slice svc-<i>-1 with its last endpoint replaced by a new
        address (10.213.130.0/23, one per change, never a bench backend), and FOLDER/changes, one
        line a change: "FILE CLUSTER_IP NEW_BACKEND". A service drawn twice keeps the earlier
        change's other endpoints: each change is one new backend in, one out.
"""
import ipaddress
import os
import random
import sys

PER_APPLY = 50
FIRST_CHANGED = ipaddress.IPv4Address("10.213.130.1")
MAX_CHANGES = 500


def service(i, ip):
    return (f"---\napiVersion: v1\nkind: Service\nmetadata: {{name: svc-{i}}}\nspec:\n"
            f"  clusterIP: {ip}\n  ports:\n  - {{name: http, port: 80, targetPort: 8080}}\n")


def slice_(i, endpoints):
    listed = "".join(f"  - addresses: [\"{b}\"]\n    conditions: {{ready: true}}\n" for b in endpoints)
    return (f"---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: svc-{i}-1\n"
            f"  labels: {{kubernetes.io/service-name: svc-{i}}}\naddressType: IPv4\n"
            f"ports:\n  - {{name: http, port: 8080, protocol: TCP}}\nendpoints:\n{listed}")


def main(argv):
    if len(argv) < 5 or argv[1] not in ("batches", "changes"):
        sys.exit(__doc__)
    services = open(argv[2]).read().split()
    backends = open(argv[3]).read().split()
    folder = argv[4]
    if argv[1] == "batches":
        for start in range(0, len(services), PER_APPLY):
            with open(os.path.join(folder, f"apply-{start // PER_APPLY:05d}.yaml"), "w") as out:
                for i, ip in enumerate(services[start:start + PER_APPLY], start):
                    out.write(service(i, ip) + slice_(i, backends))
        return
    if len(argv) != 6 or not argv[5].isdigit() or not 1 <= int(argv[5]) <= MAX_CHANGES:
        sys.exit(f"service_manifests.py changes: COUNT is within 1..{MAX_CHANGES}")
    draw = random.Random(20261203)
    current = {}  # service -> its endpoints as last changed
    with open(os.path.join(folder, "changes"), "w") as listing:
        for k in range(int(argv[5])):
            i = draw.randrange(len(services))
            endpoints = current.get(i, backends)
            new = str(FIRST_CHANGED + k)
            current[i] = endpoints[:-1] + [new]
            name = os.path.join(folder, f"change-{k:05d}.yaml")
            with open(name, "w") as out:
                out.write(slice_(i, current[i]))
            listing.write(f"{name} {services[i]} {new}\n")


if __name__ == "__main__":
    main(sys.argv)
