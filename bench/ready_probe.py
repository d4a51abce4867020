#!/usr/bin/env python3
"""Start a Type=notify daemon N times under a private NOTIFY_SOCKET; print, per
run, milliseconds from exec to READY=1 and the daemon's RSS (KiB) at READY,
then stop it with SIGTERM. Bounded: each run gives up after 20 s."""
import argparse, os, signal, socket, subprocess, sys, tempfile, time

parser = argparse.ArgumentParser()
parser.add_argument("--netns", required=True)
parser.add_argument("--runs", type=int, default=10)
parser.add_argument("command", nargs=argparse.REMAINDER)
args = parser.parse_args()
command = [c for c in args.command if c != "--"]

with tempfile.TemporaryDirectory(prefix="membrane-ready-") as tmp:
    path = os.path.join(tmp, "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(20)
    for _ in range(args.runs):
        env = dict(os.environ, NOTIFY_SOCKET=path)
        start = time.monotonic()
        proc = subprocess.Popen(["ip", "netns", "exec", args.netns] + command, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            ready_ms = None
            while ready_ms is None:
                data, _ = sock.recvfrom(4096)
                if b"READY=1" in data.split(b"\n"):
                    ready_ms = (time.monotonic() - start) * 1000
            # `ip netns exec` execs the daemon, so the pid is the daemon's.
            rss = 0
            with open(f"/proc/{proc.pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        rss = int(line.split()[1])
            print(f"{ready_ms:.2f} {rss}", flush=True)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
