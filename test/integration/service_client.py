#!/usr/bin/env python3
"""A service client for the lab's service tests, run inside a pod (membrane-lab exec). It talks to the
echo servers of lab_test_lib.sh (labtest_serve: "pong <pod> <line>") and prints one JSON object.

  tcp ADDR PORT N          N connections: replies by pod, getpeername() of each, errors by name
  udp ADDR PORT N          N datagrams on one unconnected socket: replies by pod, their source addresses
  refused ADDR PORT        one connect(): its errno name ("" if it connected) and how long it took
  loop ADDR PORT SECONDS   connections for SECONDS, one every 1 ms at most: ok and failed counts
  udp-follow ADDR PORT POD SECONDS
                           a connected UDP socket on POD (new sockets until one is), "on POD" once it
                           is, then one exchange every 50 ms for SECONDS: on an error, a new socket
                           (as a DNS client retries); replies by pod before and after the first
                           error, the errors by name
"""
import errno
import json
import socket
import sys
import time


def exchange(address, port, line, timeout=3.0):
    with socket.create_connection((address, port), timeout=timeout) as s:
        peer = "%s:%d" % s.getpeername()
        s.sendall(line.encode() + b"\n")
        s.shutdown(socket.SHUT_WR)
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(256)
            if not chunk:
                break
            data += chunk
        return peer, data.decode().strip()


def error_name(error):
    return errno.errorcode.get(error.errno, str(error)) if isinstance(error, OSError) and error.errno else type(error).__name__


def tcp(address, port, count):
    replies, peers, errors = {}, set(), {}
    for i in range(count):
        try:
            peer, reply = exchange(address, port, f"n{i}")
            peers.add(peer)
            pod = reply.split()[1] if reply.startswith("pong ") else f"?{reply}"
            replies[pod] = replies.get(pod, 0) + 1
        except OSError as error:
            errors[error_name(error)] = errors.get(error_name(error), 0) + 1
    return {"replies": replies, "peers": sorted(peers), "errors": errors}


def udp(address, port, count):
    replies, sources, errors = {}, set(), {}
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    for i in range(count):
        try:
            s.sendto(f"n{i}\n".encode(), (address, port))
            data, source = s.recvfrom(2048)
            sources.add("%s:%d" % source)
            reply = data.decode().strip()
            pod = reply.split()[1] if reply.startswith("pong ") else f"?{reply}"
            replies[pod] = replies.get(pod, 0) + 1
        except OSError as error:
            errors[error_name(error)] = errors.get(error_name(error), 0) + 1
    return {"replies": replies, "sources": sorted(sources), "errors": errors}


def refused(address, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    began = time.monotonic()
    try:
        s.connect((address, port))
        name = ""
    except OSError as error:
        name = error_name(error)
    return {"errno": name, "seconds": round(time.monotonic() - began, 3)}


def loop(address, port, seconds):
    ok, failed, errors = 0, 0, {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        began = time.monotonic()
        try:
            exchange(address, port, "loop", timeout=2)
            ok += 1
        except OSError as error:
            failed += 1
            errors[error_name(error)] = errors.get(error_name(error), 0) + 1
        time.sleep(max(0.0, 0.001 - (time.monotonic() - began)))
    return {"ok": ok, "failed": failed, "errors": errors}


def connected_udp(address, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.5)
    s.connect((address, port))
    return s


def ask(s, line):
    s.send(line.encode() + b"\n")
    reply = s.recv(2048).decode().strip()
    return reply.split()[1] if reply.startswith("pong ") else f"?{reply}"


def udp_follow(address, port, pod, seconds):
    for _ in range(50):
        s = connected_udp(address, port)
        if ask(s, "which") == pod:
            break
        s.close()
    else:
        return {"error": f"no connected socket landed on {pod}"}
    print(f"on {pod}", flush=True)
    before, after, errors = {}, {}, {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            got = ask(s, "follow")
            replies = after if errors else before
            replies[got] = replies.get(got, 0) + 1
        except OSError as error:
            errors[error_name(error)] = errors.get(error_name(error), 0) + 1
            s.close()
            s = connected_udp(address, port)
        time.sleep(0.05)
    return {"before": before, "after": after, "errors": errors}


def main():
    mode, address, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "tcp":
        result = tcp(address, port, int(sys.argv[4]))
    elif mode == "udp":
        result = udp(address, port, int(sys.argv[4]))
    elif mode == "refused":
        result = refused(address, port)
    elif mode == "udp-follow":
        result = udp_follow(address, port, sys.argv[4], float(sys.argv[5]))
    elif mode == "loop":
        result = loop(address, port, float(sys.argv[4]))
    else:
        sys.exit(f"unknown mode {mode}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
