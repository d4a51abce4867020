#!/usr/bin/env python3
"""ECN across the overlay, seen on the wire (lab_connectivity_test.sh).

  sniff-outer IFACE ICMP_ID SECONDS   the outer IPv4 ECN field of the first VXLAN
                                      packet on IFACE carrying an ICMP echo request
                                      with ICMP_ID (run in a node's namespace)
  sniff-inner IFACE ICMP_ID SECONDS   the IPv4 ECN field of the first ICMP echo
                                      request with ICMP_ID on IFACE (a pod's)
  send-vxlan NODE_IP PORT VNI SRC DST ICMP_ID OUTER_TOS INNER_TOS
                                      one VXLAN packet (UDP checksum 0, as the
                                      overlay sends) to NODE_IP:PORT holding an
                                      ICMP echo request SRC -> DST

A sniffer prints "ready" once its socket is bound, then the ECN value (0-3), or
exits 1 when nothing matched in SECONDS.
"""
import select
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
SO_NO_CHECK = 11


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_id(ip: bytes):
    """The ICMP id of an echo request in IPv4 packet `ip`, or None."""
    if len(ip) < 28 or ip[9] != 1:
        return None
    icmp = ip[(ip[0] & 0x0F) * 4:]
    if len(icmp) < 8 or icmp[0] != 8:
        return None
    return struct.unpack("!H", icmp[4:6])[0]


def sniff(iface: str, icmp_id: int, seconds: float, outer: bool) -> int:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind((iface, 0))
    print("ready", flush=True)
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if not select.select([sock], [], [], left)[0]:
            break
        frame = sock.recv(65535)
        if len(frame) < 34 or frame[12:14] != b"\x08\x00":
            continue
        ip = frame[14:]
        if outer:
            # outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14)
            if ip[9] != 17 or len(ip) < 50 + 28 or ip[48:50] != b"\x08\x00":
                continue
            if echo_id(ip[50:]) == icmp_id:
                print(ip[1] & 3, flush=True)
                return 0
        elif echo_id(ip) == icmp_id:
            print(ip[1] & 3, flush=True)
            return 0
    return 1


def send_vxlan(node_ip, port, vni, src, dst, icmp_id, outer_tos, inner_tos) -> int:
    icmp = struct.pack("!BBHHH", 8, 0, 0, icmp_id, 1) + b"membrane-ecn-probe"
    icmp = icmp[:2] + struct.pack("!H", checksum(icmp)) + icmp[4:]
    header = struct.pack("!BBHHHBBH4s4s", 0x45, inner_tos, 20 + len(icmp), 0, 0, 64, 1, 0,
                         socket.inet_aton(src), socket.inet_aton(dst))
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    inner_eth = b"\x02\x00\x00\x00\x00\x01" + b"\x02\x00\x00\x00\x00\x02" + b"\x08\x00"
    vxlan = struct.pack("!II", 0x08000000, vni << 8)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, SO_NO_CHECK, 1)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, outer_tos)
    sock.sendto(vxlan + inner_eth + header + icmp, (node_ip, port))
    return 0


def main(argv) -> int:
    if len(argv) >= 4 and argv[0] in ("sniff-outer", "sniff-inner"):
        return sniff(argv[1], int(argv[2]), float(argv[3]), argv[0] == "sniff-outer")
    if len(argv) == 9 and argv[0] == "send-vxlan":
        return send_vxlan(argv[1], int(argv[2]), int(argv[3]), argv[4], argv[5], int(argv[6]), int(argv[7], 0),
                          int(argv[8], 0))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
