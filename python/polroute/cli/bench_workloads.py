"""The workloads of ``polroute bench`` (cli/bench.py runs and times them):
seeded policies and flows in numpy columns, also used by the tests and by
bench/ (publish.py, workloads.py).

  * two-NIC: the shipped demo batch; src 45 % / 45 % one NIC's address, 10 % none;
  * N tenants: tenant i owns 172.16.0.0+i/32 on one of 4 veths, table 1000+i
    with a default route, and ``from <addr>/32 lookup 1000+i``; main has 1,000
    BGP-like prefixes; 90 % of flows come from a random tenant, 10 % have no source;
  * mixed: the tenant policy with a fwmark, iif, dport, tos or ``to`` rule
    before every 10th tenant (flows carry marks, ports and tos);
  * LPM: prefixes with a BGP-like length mix (60 % /24, /16-/23, ~1.5 % longer);
  * IPv6: main holds prefixes in 2000::/3, mostly /48 and /64, over 4 veths;
    90 % of the destinations fall inside a random prefix.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass

import numpy as np

SEED = 20261126
TENANT_BASE = int(ipaddress.IPv4Address("172.16.0.0"))
TABLE_BASE = 1000
N_LINKS = 4
MARK_BASE = 0x100

# BGP-like length mix (anchors' j2_gen.py weights, /8-/24) plus ~1.5 % longer than /24
_LEN_WEIGHTS = {
    24: 60,
    23: 10,
    22: 13,
    21: 4.5,
    20: 4.5,
    19: 2.5,
    18: 0.9,
    17: 0.6,
    16: 1.4,
    15: 0.05,
    14: 0.05,
    13: 0.05,
    12: 0.05,
    11: 0.04,
    10: 0.03,
    9: 0.02,
    8: 0.01,
    25: 0.4,
    26: 0.3,
    27: 0.2,
    28: 0.3,
    29: 0.2,
    30: 0.1,
    32: 0.3,
}
_PUBLIC_LO = int(ipaddress.IPv4Address("1.0.0.0"))
_PUBLIC_HI = int(ipaddress.IPv4Address("224.0.0.0"))
_EXCLUDED = [
    (int(n.network_address), int(n.netmask))
    for n in map(
        ipaddress.IPv4Network,
        (
            "10.0.0.0/8",
            "100.64.0.0/10",
            "127.0.0.0/8",
            "169.254.0.0/16",
            "172.16.0.0/12",
            "192.0.0.0/24",
            "192.0.2.0/24",
            "192.168.0.0/16",
            "198.18.0.0/15",
        ),
    )
]


def public_dsts(n: int, rng: np.random.Generator) -> np.ndarray:
    """n uniform public-ish unicast addresses (uint32, host order)."""
    out = rng.integers(_PUBLIC_LO, _PUBLIC_HI, size=n, dtype=np.uint32)
    while True:
        bad = np.zeros(n, dtype=bool)
        for net, mask in _EXCLUDED:
            bad |= (out & np.uint32(mask)) == np.uint32(net)
        if not bad.any():
            return out
        out[bad] = rng.integers(_PUBLIC_LO, _PUBLIC_HI, size=int(bad.sum()), dtype=np.uint32)


def lpm_prefixes(n: int, seed: int = SEED, max_len: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """About n distinct public-ish (network, plen) pairs with the BGP-like mix."""
    rng = np.random.default_rng(seed + 1)
    lens = np.array([x for x in sorted(_LEN_WEIGHTS) if x <= max_len], dtype=np.int64)
    w = np.array([_LEN_WEIGHTS[x] for x in lens], dtype=float)
    w /= w.sum()
    addr = public_dsts(n + n // 8, rng)
    plen = rng.choice(lens, size=addr.shape[0], p=w).astype(np.uint8)
    mask = np.where(plen == 0, 0, (0xFFFFFFFF << (32 - plen.astype(np.uint64))) & 0xFFFFFFFF).astype(np.uint32)
    key = (addr & mask).astype(np.uint64) << np.uint64(8) | plen.astype(np.uint64)
    _, first = np.unique(key, return_index=True)
    first = np.sort(first)[:n]
    return (addr & mask)[first], plen[first]


# ---------------------------------------------------------------------------
# policies
# ---------------------------------------------------------------------------


def _ip(a: int) -> str:
    return str(ipaddress.IPv4Address(int(a)))


def _template(policy, line: str):
    from polroute.iproute2.batch import parse_command

    reqs = parse_command(line.split(), policy).requests
    return reqs[0][1]


def build_two_nic():
    from polroute.cli.demo import two_nic_batch
    from polroute.iproute2.batch import apply_batch
    from polroute.model.policy import Policy

    p = Policy()
    apply_batch(p, two_nic_batch(), "two-nic.ip")
    return p


MIXED_KINDS = ("fwmark", "iif", "dport", "tos", "to")


PRIO_SLOTS = 16_000  # tenant rules stay below main's rule (32766)


def tenant_priority(i: int, n: int) -> int:
    """2+2i up to 16,000 tenants; beyond, tenants share priorities (the
    kernel keeps insertion order among equal priorities) so that every tenant
    rule still comes before main's 32766.  An extra (mixed) rule goes at one
    less."""
    return 2 + 2 * (i if n <= PRIO_SLOTS else i * PRIO_SLOTS // n)


def build_tenants(n: int, mixed: bool = False, n_main: int = 1000):
    """The tenant policy through request templates (one parse per line shape).
    Tenant i's rule has priority tenant_priority(i, n) (2+2i up to 16,000
    tenants); with mixed, every 10th tenant gets one extra rule just before
    it, of kind MIXED_KINDS[(i // 10) % 5]."""
    from polroute.iproute2.batch import apply_batch
    from polroute.model.policy import Policy

    p = Policy()
    setup = ["link set lo up"]
    for k in range(N_LINKS):
        setup += [
            f"link add v{k} type veth peer name v{k}p",
            f"link set v{k} up",
            f"link set v{k}p up",
            f"addr add 10.200.{k}.1/24 dev v{k}",
        ]
    apply_batch(p, "\n".join(setup) + "\n", "setup.ip")
    ifidx = [p.ifindex(f"v{k}") for k in range(N_LINKS)]
    V4 = ipaddress.IPv4Address
    rep = dataclasses.replace
    gws = [V4(f"10.200.{k}.254") for k in range(N_LINKS)]
    addr_t = _template(p, "addr add 172.16.0.0/32 dev v0")
    for i in range(n):
        p.addr(rep(addr_t, local=V4(TENANT_BASE + i), ifindex=ifidx[i % N_LINKS]))
    main_t = _template(p, "route add 1.0.0.0/8 via 10.200.0.254 dev v0")
    nets, plens = lpm_prefixes(n_main - 1, max_len=24)
    for j, (net, plen) in enumerate(zip(nets.tolist(), plens.tolist())):
        p.route(rep(main_t, dst=V4(net), dst_len=plen, gateway=gws[j % N_LINKS], oif=ifidx[j % N_LINKS]))
    p.route(rep(_template(p, "route add default via 10.200.0.254 dev v0"), gateway=gws[0], oif=ifidx[0]))
    troute_t = _template(p, f"route add default via 10.200.0.254 dev v0 table {TABLE_BASE}")
    for i in range(n):
        k = i % N_LINKS
        p.route(rep(troute_t, table=TABLE_BASE + i, gateway=gws[k], oif=ifidx[k]))
    rule_t = _template(p, f"rule add from 172.16.0.0/32 lookup {TABLE_BASE} priority 2")
    extra = {
        "fwmark": _template(p, f"rule add fwmark 0x100 lookup {TABLE_BASE} priority 1"),
        "iif": _template(p, f"rule add iif v0 lookup {TABLE_BASE} priority 1"),
        "dport": _template(p, f"rule add dport 1000 lookup {TABLE_BASE} priority 1"),
        "tos": _template(p, f"rule add tos 0x10 lookup {TABLE_BASE} priority 1"),
        "to": _template(p, f"rule add to 198.51.0.0/24 lookup {TABLE_BASE} priority 1"),
    }
    for i in range(n):
        if mixed and i % 10 == 0:
            kind = MIXED_KINDS[(i // 10) % 5]
            t, prio = extra[kind], tenant_priority(i, n) - 1
            tab = TABLE_BASE + i
            if kind == "fwmark":
                p.rule(rep(t, fwmark=MARK_BASE + i, table=tab, priority=prio))
            elif kind == "iif":
                p.rule(rep(t, table=tab, priority=prio))
            elif kind == "dport":
                p.rule(rep(t, dport_start=1000 + i % 60000, dport_end=1000 + i % 60000, table=tab, priority=prio))
            elif kind == "tos":
                p.rule(rep(t, table=tab, priority=prio))
            else:
                p.rule(rep(t, dst=V4(int(V4("198.51.0.0")) + ((i // 10) % 256) * 256), table=tab, priority=prio))
        p.rule(rep(rule_t, src=V4(TENANT_BASE + i), table=TABLE_BASE + i, priority=tenant_priority(i, n)))
    return p


def tenants_batch_text(n: int, n_main: int = 1000) -> str:
    """build_tenants(n) as `ip -batch` text (the kernel anchor applies it)."""
    lines = ["link set lo up"]
    for k in range(N_LINKS):
        lines += [
            f"link add v{k} type veth peer name v{k}p",
            f"link set v{k} up",
            f"link set v{k}p up",
            f"addr add 10.200.{k}.1/24 dev v{k}",
        ]
    lines += [f"addr add {_ip(TENANT_BASE + i)}/32 dev v{i % N_LINKS}" for i in range(n)]
    nets, plens = lpm_prefixes(n_main - 1, max_len=24)
    lines += [
        f"route add {_ip(net)}/{plen} via 10.200.{j % N_LINKS}.254 dev v{j % N_LINKS}"
        for j, (net, plen) in enumerate(zip(nets.tolist(), plens.tolist()))
    ]
    lines.append("route add default via 10.200.0.254 dev v0")
    lines += [
        f"route add default via 10.200.{i % N_LINKS}.254 dev v{i % N_LINKS} table {TABLE_BASE + i}" for i in range(n)
    ]
    lines += [
        f"rule add from {_ip(TENANT_BASE + i)}/32 lookup {TABLE_BASE + i} priority {tenant_priority(i, n)}"
        for i in range(n)
    ]
    return "\n".join(lines) + "\n"


@dataclass
class Flows:
    cols: dict  # lookup_bulk keyword -> numpy column (dst first)

    def __len__(self):
        return int(self.cols["dst"].shape[0])


def two_nic_flows(n: int) -> Flows:
    rng = np.random.default_rng(SEED + 2)
    src = np.asarray([0xC0A81014, 0xC0A81015], dtype=np.uint32)[rng.integers(0, 2, size=n)]
    src[rng.random(n) < 0.10] = 0
    return Flows({"dst": public_dsts(n, rng), "src": src})


def tenant_flows(n: int, n_tenants: int, mixed: bool = False) -> Flows:
    rng = np.random.default_rng(SEED + 3)
    tenant = rng.integers(0, n_tenants, size=n)
    src = (TENANT_BASE + tenant).astype(np.uint32)
    src[rng.random(n) < 0.10] = 0
    cols = {"dst": public_dsts(n, rng), "src": src}
    if mixed:
        cols["mark"] = np.where(rng.random(n) < 0.2, MARK_BASE + tenant, 0).astype(np.uint32)
        cols["dport"] = np.where(rng.random(n) < 0.2, 1000 + tenant % 60000, 443).astype(np.uint16)
        cols["tos"] = np.where(rng.random(n) < 0.1, 0x10, 0).astype(np.uint8)
    return Flows(cols)


# IPv6 prefix-length mix for a 100k-prefix table: mostly /48 (end sites) and
# /64 (subnets), some provider blocks /32-/44, /56 and host routes
_V6_LEN_WEIGHTS = {32: 4, 36: 2, 40: 4, 44: 5, 48: 40, 56: 8, 60: 2, 64: 30, 128: 5}


def v6_prefixes(n: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """n distinct (network, plen) pairs in 2000::/3: networks as (n, 2) uint64
    (high, low halves, host order), plen uint8."""
    rng = np.random.default_rng(seed + 11)
    lens = np.array(sorted(_V6_LEN_WEIGHTS), dtype=np.int64)
    w = np.array([_V6_LEN_WEIGHTS[x] for x in lens], dtype=float)
    w /= w.sum()
    m = n + n // 8
    hi = rng.integers(0, 2**61, size=m, dtype=np.uint64) | np.uint64(1 << 61)  # 2000::/3
    lo = rng.integers(0, 2**63, size=m, dtype=np.uint64) * np.uint64(2) + rng.integers(0, 2, size=m, dtype=np.uint64)
    plen = rng.choice(lens, size=m, p=w).astype(np.uint8)
    mhi, mlo = _v6_masks(plen)
    hi, lo = hi & mhi, lo & mlo
    key = np.stack([hi, lo, plen.astype(np.uint64)], axis=1)
    _, first = np.unique(key, axis=0, return_index=True)
    first = np.sort(first)[:n]
    return np.stack([hi[first], lo[first]], axis=1), plen[first]


def _v6_masks(plen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pl = plen.astype(np.int64)
    ones = np.uint64(0xFFFFFFFFFFFFFFFF)
    hi_bits, lo_bits = np.clip(pl, 0, 64), np.clip(pl - 64, 0, 64)
    # shift by 64 is undefined: plen 0 of a half gives mask 0 explicitly
    mhi = np.where(hi_bits == 0, np.uint64(0), ones << (64 - hi_bits).astype(np.uint64) % np.uint64(64))
    mhi = np.where(hi_bits == 64, ones, mhi).astype(np.uint64)
    mlo = np.where(lo_bits == 0, np.uint64(0), ones << (64 - lo_bits).astype(np.uint64) % np.uint64(64))
    mlo = np.where(lo_bits == 64, ones, mlo).astype(np.uint64)
    return mhi, mlo


def _v6_rows(halves: np.ndarray) -> np.ndarray:
    """(n, 2) uint64 host-order halves -> (n, 16) uint8 network order."""
    return np.ascontiguousarray(halves.astype(">u8")).view(np.uint8).reshape(-1, 16)


def build_v6(n: int):
    """Main holds n IPv6 prefixes (v6_prefixes) via gateways on 4 veths."""
    from polroute.iproute2.batch import apply_batch
    from polroute.model.policy import Policy

    p = Policy()
    setup = ["link set lo up"]
    for k in range(N_LINKS):
        setup += [
            f"link add v{k} type veth peer name v{k}p",
            f"link set v{k} up",
            f"link set v{k}p up",
            f"addr add 2001:db8:{k}::1/64 dev v{k} nodad",
        ]
    setup.append("-6 route add default via 2001:db8:0::ff dev v0")
    apply_batch(p, "\n".join(setup) + "\n", "setup6.ip")
    ifidx = [p.ifindex(f"v{k}") for k in range(N_LINKS)]
    gws = [ipaddress.IPv6Address(f"2001:db8:{k}::ff") for k in range(N_LINKS)]
    t = _template(p, "-6 route add 2400::/32 via 2001:db8:0::ff dev v0")
    rep = dataclasses.replace
    nets, plens = v6_prefixes(n)
    V6 = ipaddress.IPv6Address
    for j, ((h, l), plen) in enumerate(zip(nets.tolist(), plens.tolist())):
        p.route(rep(t, dst=V6((h << 64) | l), dst_len=plen, gateway=gws[j % N_LINKS], oif=ifidx[j % N_LINKS]))
    return p


def v6_flows(n: int, n_prefixes: int = 100_000) -> np.ndarray:
    """(n, 16) uint8 destinations: 90 % inside a random prefix of v6_prefixes(n_prefixes)."""
    rng = np.random.default_rng(SEED + 12)
    nets, plens = v6_prefixes(n_prefixes)
    pick = rng.integers(0, nets.shape[0], size=n)
    mhi, mlo = _v6_masks(plens[pick])
    rhi = rng.integers(0, 2**63, size=n, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    rlo = rng.integers(0, 2**63, size=n, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    hi = (nets[pick, 0] & mhi) | (rhi & ~mhi)
    lo = (nets[pick, 1] & mlo) | (rlo & ~mlo)
    wild = rng.random(n) < 0.10
    hi[wild] = rng.integers(0, 2**61, size=int(wild.sum()), dtype=np.uint64) | np.uint64(1 << 61)
    return _v6_rows(np.stack([hi, lo], axis=1))
