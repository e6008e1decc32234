"""Benchmark workloads: the policies and the flows (numpy columns).

Policies
--------
* two-NIC: the shipped batch (``polroute.cli.demo.two_nic_batch()``): two veth
  NICs on 192.168.16.0/24, tables 1 and 2, rules ``from <addr> lookup 1|2``.
* 10k tenants (the shape of the anchors' Job 1b, ``anchors-measured.md``):
  - 4 veth pairs ``v0..v3`` (peers ``v0p..v3p``), all up, ``10.200.k.1/24``
    on ``vk``;
  - tenant *i* (0 <= i < 10,000) owns the local address ``172.16.0.0 + i``
    (``addr add A/32 dev v(i%4)``: a ``from`` source must be a local address
    for an output lookup, in the kernel as in the model), the table
    ``1000 + i`` holding ``default via 10.200.(i%4).254 dev v(i%4)``, and the
    rule ``from A/32 lookup 1000+i priority 1+i`` (beyond 32,000 tenants
    priorities are shared, ``TenantSpec.tenant_priority``, so that every
    tenant rule comes before main's 32766);
  - the main table gets 1,000 routes: 999 distinct public-ish prefixes
    (/8../24, BGP-like length mix, seeded) via ``10.200.(k%4).254`` plus a
    default route via ``10.200.0.254`` (and the kernel's 4 connected /24s).
  Routes go in before the rules (the kernel checks a gateway with a full
  policy lookup; with 10k rules installed that makes route adds ~10x
  slower, see the anchors' "routes after rules" variant).

Both builders produce exactly the same state: ``build_tenants_batch`` through
``apply_batch`` (the ip -batch text, also fed to the kernel by compare.py) and
``build_tenants_requests`` through request dataclasses cloned from one parsed
template per line shape (no per-line parsing).

Flows
-----
numpy uint32 columns in host order (what ``polroute.model.bulk.lookup_bulk`` takes):
``dst`` uniform over public-ish unicast space, ``src`` a local address of the
policy (so that each flow hits its own rule) or 0 (no source: the flow walks
all rules down to main).  Everything is seeded: same seed, same flows.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import time
from dataclasses import dataclass

import numpy as np

from polroute.cli.bench_workloads import _LEN_WEIGHTS as _BGP_LEN_WEIGHTS
from polroute.cli.demo import two_nic_batch
from polroute.iproute2.batch import apply_batch, parse_command
from polroute.model.policy import Policy

SEED = 20261126
N_TENANTS = 10_000
N_MAIN_ROUTES = 1_000  # including the default route
N_LINKS = 4
TENANT_BASE = int(ipaddress.IPv4Address("172.16.0.0"))
TABLE_BASE = 1000
PRIO_BASE = 1
PRIO_SPREAD = 32000  # tenant rules stay below main's (32766)

TWO_NIC_ADDRS = (int(ipaddress.IPv4Address("192.168.16.20")), int(ipaddress.IPv4Address("192.168.16.21")))


def ip4(a: int) -> str:
    return str(ipaddress.IPv4Address(int(a)))


# ---------------------------------------------------------------------------
# address space
# ---------------------------------------------------------------------------

# Not "public-ish": 0/8, 10/8, 100.64/10, 127/8, 169.254/16, 172.16/12,
# 192.0.0/24, 192.0.2/24, 192.168/16, 198.18/15, 198.51.100/24, 203.0.113/24,
# and everything from 224/4 up (the draw stays below 224.0.0.0).
_EXCLUDED = [
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
    )
]
_EXCLUDED_INT = [(int(n.network_address), n.prefixlen) for n in _EXCLUDED]
_PUBLIC_LO = int(ipaddress.IPv4Address("1.0.0.0"))
_PUBLIC_HI = int(ipaddress.IPv4Address("224.0.0.0"))


def _mask(plen: int) -> int:
    return (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF


def _excluded_mask(a: np.ndarray) -> np.ndarray:
    bad = np.zeros(a.shape, dtype=bool)
    for net in _EXCLUDED:
        m = np.uint32(int(net.netmask))
        bad |= (a & m) == np.uint32(int(net.network_address))
    return bad


def public_dsts(n: int, rng: np.random.Generator) -> np.ndarray:
    """n uniform public-ish unicast IPv4 addresses (uint32, host order)."""
    out = rng.integers(_PUBLIC_LO, _PUBLIC_HI, size=n, dtype=np.uint32)
    bad = _excluded_mask(out)
    while bad.any():
        out[bad] = rng.integers(_PUBLIC_LO, _PUBLIC_HI, size=int(bad.sum()), dtype=np.uint32)
        bad = _excluded_mask(out)
    return out


# BGP-like length mix (anchors' j2_gen.py weights), /8../24: the package's
# mix (polroute bench's LPM workload) without its longer-than-/24 tail
_LEN_WEIGHTS = {plen: w for plen, w in _BGP_LEN_WEIGHTS.items() if plen <= 24}


def main_prefixes(n: int, seed: int = SEED) -> list[tuple[int, int]]:
    """n distinct public-ish (network, plen) pairs, seeded, in draw order."""
    rng = np.random.default_rng(seed + 1)
    lens = np.array(sorted(_LEN_WEIGHTS), dtype=np.int64)
    w = np.array([_LEN_WEIGHTS[x] for x in lens], dtype=float)
    w /= w.sum()
    seen: set[tuple[int, int]] = set()
    out: list[tuple[int, int]] = []
    while len(out) < n:
        addrs = public_dsts(2 * n, rng)
        plens = rng.choice(lens, size=2 * n, p=w)
        for a, plen in zip(addrs.tolist(), plens.tolist()):
            net = a & _mask(plen)
            # the prefix must not overlap a non-public block (a /8 may cover 10/8)
            if (net, plen) in seen or any((net ^ xn) & _mask(min(plen, xl)) == 0 for xn, xl in _EXCLUDED_INT):
                continue
            seen.add((net, plen))
            out.append((net, plen))
            if len(out) == n:
                break
    return out


# ---------------------------------------------------------------------------
# the 10k-tenant policy
# ---------------------------------------------------------------------------


@dataclass
class TenantSpec:
    n_tenants: int = N_TENANTS
    n_main: int = N_MAIN_ROUTES  # routes in main, the last one being the default
    n_links: int = N_LINKS
    seed: int = SEED

    def tenant_addr(self, i):
        return TENANT_BASE + i

    def tenant_table(self, i):
        return TABLE_BASE + i

    def tenant_link(self, i):
        return i % self.n_links

    def tenant_priority(self, i):
        """1 + i while that stays below main's rule (32766); beyond 32,000
        tenants several share a priority (the kernel keeps their insertion
        order), so that every tenant rule still comes before main."""
        if self.n_tenants <= PRIO_SPREAD:
            return PRIO_BASE + i
        return PRIO_BASE + i * PRIO_SPREAD // self.n_tenants

    def gateway(self, k):
        return int(ipaddress.IPv4Address(f"10.200.{k}.254"))

    def main_routes(self) -> list[tuple[int, int, int]]:
        """(network, plen, link) of the main-table routes (default last)."""
        pfx = main_prefixes(self.n_main - 1, self.seed) if self.n_main > 1 else []
        out = [(net, plen, k % self.n_links) for k, (net, plen) in enumerate(pfx)]
        if self.n_main >= 1:
            out.append((0, 0, 0))
        return out


def _setup_lines(spec: TenantSpec) -> list[str]:
    lines = ["link set lo up"]
    for k in range(spec.n_links):
        lines += [
            f"link add v{k} type veth peer name v{k}p",
            f"link set v{k} up",
            f"link set v{k}p up",
            f"addr add 10.200.{k}.1/24 dev v{k}",
        ]
    return lines


DEFAULT_SPEC = TenantSpec()  # frozen: one shared default is safe


def tenant_batch_lines(spec: TenantSpec = DEFAULT_SPEC) -> list[str]:
    """The ``ip -batch`` lines (without a leading ``ip``), in apply order:
    links, addresses, main routes, tenant routes, rules."""
    lines = _setup_lines(spec)
    n = spec.n_tenants
    lines += [f"addr add {ip4(spec.tenant_addr(i))}/32 dev v{spec.tenant_link(i)}" for i in range(n)]
    for net, plen, k in spec.main_routes():
        dst = "default" if plen == 0 else f"{ip4(net)}/{plen}"
        lines.append(f"route add {dst} via 10.200.{k}.254 dev v{k}")
    lines += [
        f"route add default via 10.200.{spec.tenant_link(i)}.254 dev v{spec.tenant_link(i)}"
        f" table {spec.tenant_table(i)}"
        for i in range(n)
    ]
    lines += [
        f"rule add from {ip4(spec.tenant_addr(i))}/32 lookup {spec.tenant_table(i)} priority {spec.tenant_priority(i)}"
        for i in range(n)
    ]
    return lines


def tenant_batch_text(spec: TenantSpec = DEFAULT_SPEC) -> str:
    return "\n".join(tenant_batch_lines(spec)) + "\n"


def build_tenants_batch(spec: TenantSpec = DEFAULT_SPEC, text: str | None = None) -> Policy:
    """The 10k-tenant policy through ``apply_batch`` (one parse per line)."""
    p = Policy()
    apply_batch(p, text if text is not None else tenant_batch_text(spec), "tenants.ip")
    return p


def _template(policy: Policy, line: str):
    reqs = parse_command(line.split(), policy).requests
    assert len(reqs) == 1, (line, reqs)
    return reqs[0]


def build_tenants_requests(spec: TenantSpec = DEFAULT_SPEC, timings: dict | None = None) -> Policy:
    """The same policy through request dataclasses: one parsed template per
    line shape, then ``dataclasses.replace`` per object (no per-line
    parsing).  ``timings`` (if given) gets seconds per phase."""
    t0 = time.perf_counter()
    p = Policy()
    apply_batch(p, "\n".join(_setup_lines(spec)) + "\n", "setup.ip")
    ifidx = [p.ifindex(f"v{k}") for k in range(spec.n_links)]
    V4 = ipaddress.IPv4Address
    replace = dataclasses.replace
    n = spec.n_tenants
    t1 = time.perf_counter()

    m, addr_t = _template(p, "addr add 172.16.0.0/32 dev v0")
    for i in range(n):
        p.addr(replace(addr_t, local=V4(spec.tenant_addr(i)), ifindex=ifidx[spec.tenant_link(i)]))
    t2 = time.perf_counter()

    _, main_t = _template(p, "route add 1.0.0.0/8 via 10.200.0.254 dev v0")
    _, dflt_t = _template(p, "route add default via 10.200.0.254 dev v0")
    gws = [V4(spec.gateway(k)) for k in range(spec.n_links)]
    for net, plen, k in spec.main_routes():
        if plen == 0:
            p.route(replace(dflt_t, gateway=gws[k], oif=ifidx[k]))
        else:
            p.route(replace(main_t, dst=V4(net), dst_len=plen, gateway=gws[k], oif=ifidx[k]))
    t3 = time.perf_counter()

    _, troute_t = _template(p, f"route add default via 10.200.0.254 dev v0 table {TABLE_BASE}")
    for i in range(n):
        k = spec.tenant_link(i)
        p.route(replace(troute_t, table=spec.tenant_table(i), gateway=gws[k], oif=ifidx[k]))
    t4 = time.perf_counter()

    _, rule_t = _template(p, f"rule add from 172.16.0.0/32 lookup {TABLE_BASE} priority {PRIO_BASE}")
    for i in range(n):
        p.rule(
            replace(rule_t, src=V4(spec.tenant_addr(i)), table=spec.tenant_table(i), priority=spec.tenant_priority(i))
        )
    t5 = time.perf_counter()
    if timings is not None:
        timings.update(
            setup=t1 - t0, addrs=t2 - t1, main_routes=t3 - t2, tenant_routes=t4 - t3, rules=t5 - t4, total=t5 - t0
        )
    return p


def same_state(a: Policy, b: Policy) -> bool:
    """Rules, routes (all tables) and addresses compare equal."""
    return a.rules() == b.rules() and a.routes(table=0) == b.routes(table=0) and a.addresses() == b.addresses()


# ---------------------------------------------------------------------------
# the two-NIC policy
# ---------------------------------------------------------------------------


def build_two_nic() -> Policy:
    p = Policy()
    apply_batch(p, two_nic_batch(), "two-nic.ip")
    return p


# ---------------------------------------------------------------------------
# flows
# ---------------------------------------------------------------------------


@dataclass
class Flows:
    dst: np.ndarray  # uint32, host order
    src: np.ndarray  # uint32, 0 = no source
    tenant: np.ndarray  # int64: tenant index (or NIC index) hit, -1 = no source

    def __len__(self):
        return int(self.dst.shape[0])

    def head(self, n: int) -> Flows:
        return Flows(self.dst[:n].copy(), self.src[:n].copy(), self.tenant[:n].copy())


def two_nic_flows(n: int, seed: int = SEED, no_src_frac: float = 0.10) -> Flows:
    """src: eth0's or eth1's address (equally likely) or, for no_src_frac of
    the flows, none."""
    rng = np.random.default_rng(seed + 2)
    dst = public_dsts(n, rng)
    which = rng.integers(0, 2, size=n)
    src = np.asarray(TWO_NIC_ADDRS, dtype=np.uint32)[which]
    none = rng.random(n) < no_src_frac
    src[none] = 0
    tenant = np.where(none, -1, which).astype(np.int64)
    return Flows(dst, src, tenant)


def tenant_flows(n: int, spec: TenantSpec = DEFAULT_SPEC, seed: int = SEED, no_src_frac: float = 0.10) -> Flows:
    """src: a uniformly drawn tenant's address (so the flow hits that tenant's
    rule) or, for no_src_frac of the flows, none (walks every rule to main)."""
    rng = np.random.default_rng(seed + 3)
    dst = public_dsts(n, rng)
    tenant = rng.integers(0, spec.n_tenants, size=n).astype(np.int64)
    none = rng.random(n) < no_src_frac
    tenant[none] = -1
    src = np.where(none, 0, TENANT_BASE + tenant).astype(np.uint32)
    return Flows(dst, src, tenant)


def expected_tenant_tables(flows: Flows) -> np.ndarray:
    """The table each tenant flow must report: 1000+i, or main (254)."""
    return np.where(flows.tenant >= 0, TABLE_BASE + flows.tenant, 254).astype(np.uint32)


def expected_two_nic_tables(flows: Flows) -> np.ndarray:
    return np.where(flows.tenant >= 0, 1 + flows.tenant, 254).astype(np.uint32)
