"""Host files and namespace texts shared by the multihome tests (py and kernel)."""

from __future__ import annotations

import ipaddress

TWO_NIC_HOST = """\
# the two-NIC host of `polroute demo`
version: 1
priority-base: 500
table-base: 1
uplinks:
  - interface: eth0
    address: 192.168.16.20/24
    gateway: 192.168.16.1
  - interface: eth1
    address: 192.168.16.21/24
    gateway: 192.168.16.1
"""


def base_links(n: int) -> list[str]:
    """eth0..eth{n-1} (veth, peers sw*) up, lo up."""
    out = ["link set lo up"]
    for i in range(n):
        out += [f"link add eth{i} type veth peer name sw{i}", f"link set sw{i} up", f"link set eth{i} up"]
    return out


def big_host(n_addrs: int = 5000, n_uplinks: int = 4) -> tuple[str, str, dict]:
    """(host file, base batch, {address: uplink interface}) for a host with
    n_uplinks uplinks (eth{i} 10.{i}.0.2/24 via 10.{i}.0.1) and n_addrs
    further /32 addresses, every other address of 10.64.0.0/12 (so that
    each is its own rule), dealt round-robin over the uplinks."""
    base = base_links(n_uplinks)
    host = ["version: 1", "priority-base: 2000", "table-base: 2000", "uplinks:"]
    owner: dict[str, str] = {}
    served: dict[int, list[str]] = {i: [] for i in range(n_uplinks)}
    start = int(ipaddress.ip_address("10.64.0.0"))
    for k in range(n_addrs):
        a = str(ipaddress.ip_address(start + 2 * k + 1))
        served[k % n_uplinks].append(a)
        owner[a] = f"eth{k % n_uplinks}"
    for i in range(n_uplinks):
        base.append(f"addr add 10.{i}.0.2/24 dev eth{i}")
        owner[f"10.{i}.0.2"] = f"eth{i}"
        host += [f"  - interface: eth{i}", f"    address: 10.{i}.0.2/24", f"    gateway: 10.{i}.0.1", "    serves:"]
        host += [f"      - {a}" for a in served[i]]
    for i in range(n_uplinks):
        base += [f"addr add {a}/32 dev eth{i}" for a in served[i]]
    base.append("route add default via 10.0.0.1 dev eth0")
    return "\n".join(host) + "\n", "\n".join(base) + "\n", owner


def consumer_env(**extra: str) -> dict:
    """The environment for a network manager's own program (networkd, libnm's
    python, netplan): without the sanitizer preload of CI's ASan stage (it checks
    polroute's C core, not them)."""
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "PYTHONMALLOC") and "SAN_OPTIONS" not in k}
    env.update(extra)
    return env
