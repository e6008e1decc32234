"""Capture a real rtnetlink dump for the dump decoder's fuzz seeds.

Run inside a private namespace (root)::

    ip netns exec NS python3 tools/capture_netlink_dump.py OUT.bin

It dumps links, addresses, IPv4/IPv6 rules and IPv4/IPv6 routes over a raw
NETLINK_ROUTE socket (read-only: dump requests alone) and writes the
messages, without the NLMSG_DONE ones, concatenated as the C decoder
(``pr_dump_decode``) takes them.  ``tests/py/data/netlink-dump.bin`` was
made from a namespace holding the batch in ``tests/py/data/netlink-dump.ip``
(``ip -force -batch``, then its ``ip -6`` lines with ``ip -6 -batch``).
"""

from __future__ import annotations

import socket
import struct
import sys

RTM_GETLINK, RTM_GETADDR, RTM_GETROUTE, RTM_GETRULE = 18, 22, 26, 34
NLM_F_REQUEST, NLM_F_DUMP = 1, 0x300
NLMSG_DONE = 3
#: (type, family, size of the family header after nlmsghdr)
DUMPS = ((RTM_GETLINK, 0, 16), (RTM_GETADDR, 0, 8), (RTM_GETRULE, 2, 12), (RTM_GETRULE, 10, 12))
DUMPS += ((RTM_GETROUTE, 2, 12), (RTM_GETROUTE, 10, 12))


def capture() -> bytes:
    out = bytearray()
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as s:
        s.bind((0, 0))
        for seq, (mtype, family, size) in enumerate(DUMPS, 1):
            body = struct.pack("=B", family) + bytes(size - 1)
            s.send(struct.pack("=IHHII", 16 + len(body), mtype, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body)
            done = False
            while not done:
                data = s.recv(1 << 16)
                off = 0
                while off < len(data):
                    length, kind = struct.unpack_from("=IH", data, off)
                    step = (length + 3) & ~3
                    if kind == NLMSG_DONE:
                        done = True
                    else:
                        out += data[off : off + step]
                    off += step
    return bytes(out)


if __name__ == "__main__":
    data = capture()
    with open(sys.argv[1], "wb") as f:
        f.write(data)
    print(f"{len(data)} bytes")
