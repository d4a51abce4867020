#!/usr/bin/env python3
"""A service client for the service tests (lab_service, cni_chained), run inside a pod (membrane-lab
exec, ip netns exec). It talks to the echo servers of lab_test_lib.sh (labtest_serve: "pong <pod>
<line>") or its own (accept, echo) and prints one JSON object.

  tcp ADDR PORT N          N connections: replies by pod, getpeername() of each, errors by name
  udp ADDR PORT N          N datagrams on one unconnected socket: replies by pod, their source addresses
  tcp-ports ADDR PORT FIRST N
                           N connections, the i-th from source port FIRST+i (bound, SO_REUSEADDR), each
                           closed with a RST after the reply, so that no TIME_WAIT keeps the port from
                           the next run: the pod that answered by source port, errors by name
  refused ADDR PORT        one connect(): its errno name ("" if it connected) and how long it took
  udp-refused ADDR PORT    one datagram on a connected UDP socket, then a receive (2 s): its errno
                           name ("" if an answer came, "timeout" if nothing) and how long it took
  connect-loop ADDR PORT CONTROL SECONDS
                           new connections, 1,500 a second (64 at once at most, non-blocking), each
                           connect(), getpeername() == ADDR:PORT, then the server's close read (EOF:
                           its listener accepted it) and close(); "looping" once one went through,
                           then until the file CONTROL holds "BEGIN END" (wall-clock seconds, the
                           window to measure) or SECONDS pass: ok and failed counts, errors by name,
                           the rate of connects that went through, overall and within the window
                           (a connect not through in 3 s failed)
  accept PORT SECONDS      (a server) accepts connections on PORT and closes them at once, until
                           SECONDS pass: the backend of connect-loop (labtest_serve's echo servers
                           fork a shell a connection, far from 1,000 a second)
  echo POD PORT SECONDS    (a server) answers one line a TCP connection on PORT with "pong POD
                           <line>", as labtest_serve's does (for tests without socat), until
                           SECONDS pass
  udp-follow ADDR PORT POD SECONDS
                           a connected UDP socket on POD (new sockets until one is), "on POD" once it
                           is, then one exchange every 50 ms for SECONDS: on an error, a new socket
                           (as a DNS client retries); replies by pod before and after the first
                           error, the errors by name
"""
import errno
import json
import select
import socket
import struct
import sys
import time


def read_line(s):
    """The server's one-line answer, up to its newline or its close, stripped."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(256)
        if not chunk:
            break
        data += chunk
    return data.decode().strip()


def exchange(address, port, line, timeout=3.0):
    with socket.create_connection((address, port), timeout=timeout) as s:
        peer = "%s:%d" % s.getpeername()
        s.sendall(line.encode() + b"\n")
        s.shutdown(socket.SHUT_WR)
        return peer, read_line(s)


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


def tcp_ports(address, port, first, count):
    by_port, errors = {}, {}
    for source in range(first, first + count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.settimeout(3)
            s.bind(("0.0.0.0", source))
            s.connect((address, port))
            s.sendall(b"port %d\n" % source)
            reply = read_line(s)
            by_port[str(source)] = reply.split()[1] if reply.startswith("pong ") else f"?{reply}"
        except OSError as error:
            errors[error_name(error)] = errors.get(error_name(error), 0) + 1
        finally:
            s.close()  # SO_LINGER 0: a RST, no TIME_WAIT
    return {"by_port": by_port, "errors": errors}


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


def udp_refused(address, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    began = time.monotonic()
    try:
        s.connect((address, port))
        s.send(b"anyone?\n")
        s.recv(2048)
        name = ""
    except socket.timeout:
        name = "timeout"
    except OSError as error:
        name = error_name(error)
    return {"errno": name, "seconds": round(time.monotonic() - began, 3)}


class ConnectLoop:
    """connect-loop: a schedule of connects at RATE a second, each socket a small state machine on one epoll."""

    RATE = 1500.0
    AT_ONCE = 64
    TIMEOUT = 3.0
    MAX_LAG = 1.0  # after a stall, at most this much of the schedule is caught up

    def __init__(self, address, port):
        self.target = (address, port)
        self.service = "%s:%d" % self.target
        self.poller = select.epoll()
        self.pending = {}  # fd -> [socket, deadline, connected]; in start order, so deadlines ascend
        self.ok, self.failed, self.errors = 0, 0, {}
        self.ok_at = []  # time.time() when each connect went through

    def fail(self, fd, name):
        self.failed += 1
        self.errors[name] = self.errors.get(name, 0) + 1
        self.close(fd)

    def close(self, fd):
        s = self.pending.pop(fd)[0]
        self.poller.unregister(fd)
        s.close()

    def start(self, now):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        code = s.connect_ex(self.target)
        if code not in (0, errno.EINPROGRESS):
            s.close()
            self.failed += 1
            name = errno.errorcode.get(code, str(code))
            self.errors[name] = self.errors.get(name, 0) + 1
            return
        fd = s.fileno()
        self.pending[fd] = [s, now + self.TIMEOUT, False]
        self.poller.register(fd, select.EPOLLOUT)

    def step(self, fd):
        s, _, connected = self.pending[fd]
        try:
            if not connected:
                code = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code:
                    return self.fail(fd, errno.errorcode.get(code, str(code)))
                if "%s:%d" % s.getpeername() != self.service:
                    return self.fail(fd, "getpeername-not-the-service")
                self.pending[fd][2] = True
                self.poller.modify(fd, select.EPOLLIN)
                return None
            if s.recv(64):
                return self.fail(fd, "data-instead-of-eof")
        except OSError as error:
            return self.fail(fd, error_name(error))
        self.ok += 1
        self.ok_at.append(time.time())
        return self.close(fd)

    def expire(self, now):
        while self.pending:
            fd, (_, deadline, connected) = next(iter(self.pending.items()))
            if deadline > now:
                break
            self.fail(fd, "timeout-accept" if connected else "timeout-connect")

    def run(self, control, seconds):
        began = time.monotonic()
        wall_began = time.time()
        next_start, next_look, window, announced = began, began, None, False
        while True:
            now = time.monotonic()
            if window is None and now >= next_look:
                next_look = now + 0.01
                window = read_window(control)
            stopping = window is not None or now >= began + seconds
            if stopping and not self.pending:
                break
            if not stopping:
                next_start = max(next_start, now - self.MAX_LAG)
                while next_start <= now and len(self.pending) < self.AT_ONCE:
                    self.start(now)
                    next_start += 1.0 / self.RATE
            # The next start is due, unless 64 are out already (no spinning while they are).
            full = stopping or len(self.pending) >= self.AT_ONCE
            wait = 0.01 if full else min(0.01, max(0.0, next_start - now))
            for fd, _ in self.poller.poll(wait):
                if fd in self.pending:
                    self.step(fd)
            self.expire(time.monotonic())
            if not announced and self.ok:
                print("looping", flush=True)
                announced = True
        elapsed = time.time() - wall_began
        result = {"ok": self.ok, "failed": self.failed, "errors": self.errors,
                  "seconds": round(elapsed, 3), "rate": round(self.ok / elapsed, 1)}
        if window:
            begin, end = window
            inside = sum(1 for t in self.ok_at if begin <= t <= end)
            result.update(window_seconds=round(end - begin, 3), window_ok=inside,
                          window_rate=round(inside / (end - begin), 1) if end > begin else 0.0)
        return result


def read_window(control):
    try:
        with open(control) as f:
            begin, end = (float(field.replace(",", ".")) for field in f.read().split())
        return begin, end
    except (OSError, ValueError):
        return None


def connect_loop(address, port, control, seconds):
    return ConnectLoop(address, port).run(control, seconds)


def listen(port):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("0.0.0.0", port))
    listener.listen(4096)
    listener.settimeout(0.5)
    return listener


def connections(listener, seconds):
    """The connections LISTENER accepts until SECONDS pass."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            conn, _ = listener.accept()
        except socket.timeout:
            continue
        yield conn


def accept(port, seconds):
    accepted = 0
    for conn in connections(listen(port), seconds):
        conn.close()
        accepted += 1
    return {"accepted": accepted}


def echo(pod, port, seconds):
    answered = 0
    for conn in connections(listen(port), seconds):
        with conn:
            conn.settimeout(2)
            try:
                line = conn.makefile("rb").readline().decode().strip()
                conn.sendall(f"pong {pod} {line}\n".encode())
                answered += 1
            except OSError:
                pass
    return {"answered": answered}


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
    if sys.argv[1] == "accept":
        print(json.dumps(accept(int(sys.argv[2]), float(sys.argv[3]))))
        return
    if sys.argv[1] == "echo":
        print(json.dumps(echo(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))))
        return
    mode, address, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "tcp":
        result = tcp(address, port, int(sys.argv[4]))
    elif mode == "udp":
        result = udp(address, port, int(sys.argv[4]))
    elif mode == "tcp-ports":
        result = tcp_ports(address, port, int(sys.argv[4]), int(sys.argv[5]))
    elif mode == "refused":
        result = refused(address, port)
    elif mode == "udp-refused":
        result = udp_refused(address, port)
    elif mode == "udp-follow":
        result = udp_follow(address, port, sys.argv[4], float(sys.argv[5]))
    elif mode == "connect-loop":
        result = connect_loop(address, port, sys.argv[4], float(sys.argv[5]))
    else:
        sys.exit(f"unknown mode {mode}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
