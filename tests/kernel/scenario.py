"""Seeded random policy-routing scenarios for the differential tests.

A :class:`Scenario` is

* ``lines``: ``ip -batch`` lines (no leading ``ip``).  IPv6 scenarios are
  meant for ``ip -6 -batch`` (``batch_family == 6``): iproute2 cannot give a
  rule a family on a batch line (``ip rule add`` uses the ``-4/-6`` option or
  AF_INET, never the family of its addresses), so IPv6 rules need the whole
  batch to run with ``-6``; IPv4 scenarios run in plain ``ip -batch`` and may
  contain IPv6 addresses and routes (their family follows the address).
* ``sysctls``: ``(key, value)`` pairs applied *after* the batch, in order.
* ``flows``: ``ip route get`` argument lists (after ``ip -j route get``).

The same seed always gives the same scenario (``random.Random(seed)`` only;
no hashing of sets, no time).  The generator keeps a loose picture of the
namespace (links, subnets, tables, rule selectors) so that most lines are
valid (gateways on a connected subnet of an up link, forward gotos, existing
devices) and flows hit the configured prefixes, local and broadcast
addresses and rule selectors; a few lines are deliberately invalid.

Link-up order and IPv6: every link gets ``addrgenmode none`` before it goes
up and every IPv6 address ``nodad``, so no random link-local address or DAD
state exists.  See docs/kernel-notes.md for the routes the kernel derives.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass, field

try:
    from .scenario_nexthop import nexthop_block, nexthop_flows, nexthop_late
except ImportError:  # run as a script or imported from the directory
    from scenario_nexthop import nexthop_block, nexthop_flows, nexthop_late  # type: ignore

# ---------------------------------------------------------------------------

TABLE_POOL = [100, 200, 300, 1000, 7777, 100000, 253, 254]  # 253 default, 254 main
TABLE_NAMES = {253: "default", 254: "main", 255: "local"}


@dataclass
class Scenario:
    seed: int
    family: int  # 4 or 6: the family of the flows
    lines: list[str] = field(default_factory=list)
    sysctls: list[tuple[str, int]] = field(default_factory=list)
    flows: list[list[str]] = field(default_factory=list)
    batch_family: int = 0  # 6: run the batch as `ip -6 -batch`
    tags: set[str] = field(default_factory=set)

    @property
    def batch_text(self) -> str:
        return "\n".join(self.lines) + "\n"

    @property
    def batch_opts(self) -> list[str]:
        return ["-6"] if self.batch_family == 6 else []

    def describe(self) -> str:
        return (
            f"seed={self.seed} family=IPv{self.family} lines={len(self.lines)} "
            f"sysctls={len(self.sysctls)} flows={len(self.flows)} tags={sorted(self.tags)}"
        )


@dataclass
class _Link:
    name: str
    kind: str  # veth | bridge | ifb | tap
    peer: str | None = None
    up: bool = False
    v4: list = field(default_factory=list)  # ipaddress.IPv4Interface
    v6: list = field(default_factory=list)  # ipaddress.IPv6Interface
    group: int = 0
    deleted: bool = False
    sid: int = 0  # subnet number: both ends of a veth pair share it


class _Gen:
    def __init__(self, seed: int, family: int, nexthops: bool = False):
        self.r = random.Random(seed)
        self.with_nexthops = nexthops
        self.fam = family
        self.sc = Scenario(seed=seed, family=family, batch_family=6 if family == 6 else 0)
        self.links: list[_Link] = []
        self.tables: list[int] = []
        self.prefixes: list = []  # destination prefixes used in routes
        self.gateways: list = []  # gateways used
        self.marks: list[tuple[int, int | None]] = []
        self.uids: list[tuple[int, int]] = []
        self.ports: list[tuple[int, int]] = []
        self.toses: list[int] = []
        self.prefs: list[int] = []  # explicit rule prefs used
        self.rule_lines: list[str] = []
        self.route_lines: list[str] = []
        self.groups: list[int] = []
        self.no_rules = False

    # ---- helpers ----------------------------------------------------------
    def chance(self, p: float) -> bool:
        return self.r.random() < p

    def emit(self, line: str) -> None:
        self.sc.lines.append(line)

    def live_links(self) -> list[_Link]:
        return [l for l in self.links if not l.deleted]

    def up_links(self) -> list[_Link]:
        return [l for l in self.live_links() if l.up]

    def addrs(self, fam: int, links=None) -> list:
        out = []
        for l in links if links is not None else self.live_links():
            out.extend(l.v4 if fam == 4 else l.v6)
        return out

    def table_word(self, t: int) -> str:
        if t in TABLE_NAMES and self.chance(0.7):
            return TABLE_NAMES[t]
        return str(t)

    def dest_prefix_rn(self, fam: int, rn: random.Random):
        """dest_prefix drawing from rn (scenario_nexthop.py's own stream)."""
        saved, self.r = self.r, rn
        try:
            return self.dest_prefix(fam)
        finally:
            self.r = saved

    def host_in(self, net, bias_edges: bool = True):
        """A host address inside ``net``: edges (first/last/second) or random."""
        n = net.num_addresses
        if n <= 2:
            return net[self.r.randrange(n)]
        if bias_edges and self.chance(0.3):
            return net[self.r.choice([1, 2, n - 2, n - 1, 0])]
        return net[self.r.randrange(n)]

    # ---- topology -----------------------------------------------------------
    def topology(self) -> None:
        r = self.r
        nveth = r.choice([1, 1, 2, 2, 2, 3])
        for i in range(nveth):
            a, b = f"veth{i}", f"veth{i}p"
            self.emit(f"link add {a} type veth peer name {b}")
            la, lb = _Link(a, "veth", b), _Link(b, "veth", a)
            la.sid = lb.sid = i + 1
            self.links += [la, lb]
        if self.chance(0.7):
            self.emit("link add br0 type bridge")
            self.links.append(_Link("br0", "bridge", sid=10))
        if self.chance(0.5):
            self.emit("link add ifb0 type ifb")
            self.links.append(_Link("ifb0", "ifb", sid=11))
        if self.chance(0.1):
            self.emit("tuntap add tap0 mode tap")
            self.links.append(_Link("tap0", "tap", sid=12))
            self.sc.tags.add("tap")
        for l in self.links:
            self.emit(f"link set {l.name} addrgenmode none")
        for l in self.links:
            if self.chance(0.15):
                l.group = r.choice([1, 5, 42])
                self.groups.append(l.group)
                self.emit(f"link set dev {l.name} group {l.group}")

    def plan_addresses(self) -> list[tuple[_Link, str]]:
        """Address lines (not yet emitted) for every link."""
        r = self.r
        out = []
        for l in self.links:
            k = l.sid
            # the peer end: often no address, sometimes one in the same subnet
            if l.kind == "veth" and l.name.endswith("p") and self.chance(0.6) and self.chance(0.5):
                continue
            want4 = self.fam == 4 or self.chance(0.3)
            want6 = self.fam == 6 or self.chance(0.3)
            if self.fam == 6:
                want4 = False  # ip -6 -batch refuses IPv4 addresses (fatally)
            if want4 and self.chance(0.93):
                plen = r.choice([24, 24, 24, 24, 16, 28, 30, 31, 32, 8])
                base = (
                    ipaddress.ip_network(f"10.{k}.0.0/16").supernet(new_prefix=min(16, plen))
                    if plen < 16
                    else ipaddress.ip_network(f"10.{k}.0.0/{plen}")
                )
                host = base[1] if base.num_addresses > 2 else base[0]
                if l.name.endswith("p") and base.num_addresses > 4:
                    host = base[2]
                extra = ""
                if self.chance(0.06):
                    extra += f" metric {r.choice([5, 100])}"
                if self.chance(0.05):
                    extra += " noprefixroute"
                out.append((l, f"addr add {host}/{plen} dev {l.name}{extra}"))
                l.v4.append(ipaddress.ip_interface(f"{host}/{plen}"))
                if plen <= 29 and self.chance(0.3):  # secondary in the same subnet
                    h2 = base[3]
                    out.append((l, f"addr add {h2}/{plen} dev {l.name}"))
                    l.v4.append(ipaddress.ip_interface(f"{h2}/{plen}"))
                if self.chance(0.2):  # a second primary
                    h3 = ipaddress.ip_address(f"172.16.{k}.1")
                    out.append((l, f"addr add {h3}/24 dev {l.name}"))
                    l.v4.append(ipaddress.ip_interface(f"{h3}/24"))
            if want6 and self.chance(0.93):
                plen = r.choice([64, 64, 64, 64, 48, 120, 127, 128, 112])
                net = ipaddress.ip_network(f"2001:db8:{k}::/{plen}", strict=False)
                host = net[1] if net.num_addresses > 2 else net[0]
                if l.name.endswith("p") and net.num_addresses > 4:
                    host = net[2]
                extra = ""
                if self.chance(0.06):
                    extra += f" metric {r.choice([5, 100, 2048])}"
                if self.chance(0.05):
                    extra += " noprefixroute"
                out.append((l, f"addr add {host}/{plen} dev {l.name} nodad{extra}"))
                l.v6.append(ipaddress.ip_interface(f"{host}/{plen}"))
                if self.chance(0.25):
                    h2 = ipaddress.ip_address(f"fd00:{k}::1")
                    out.append((l, f"addr add {h2}/64 dev {l.name} nodad"))
                    l.v6.append(ipaddress.ip_interface(f"{h2}/64"))
                if plen <= 120 and self.chance(0.2):
                    h3 = net[3]
                    out.append((l, f"addr add {h3}/{plen} dev {l.name} nodad"))
                    l.v6.append(ipaddress.ip_interface(f"{h3}/{plen}"))
        return out

    def bring_up(self, addr_lines: list[tuple[_Link, str]]) -> None:
        """lo up, addresses before or after their link is up, links up in random order."""
        r = self.r
        lo_up_now = self.chance(0.93)
        if lo_up_now:
            self.emit("link set lo up")
        if self.chance(0.2):
            # an address on lo (a loopback-owned service address)
            if self.fam == 4:
                self.emit("addr add 192.0.2.99/32 dev lo")
                self.lo4 = ipaddress.ip_interface("192.0.2.99/32")
            else:
                self.emit("addr add 2001:db8:ff::99/128 dev lo nodad")
                self.lo6 = ipaddress.ip_interface("2001:db8:ff::99/128")
        order = list(self.links)
        r.shuffle(order)
        down = set()
        for l in order:
            if self.chance(0.12):
                down.add(l.name)
        # veth pairs: sometimes one end stays down -> the other has no carrier
        pending = list(addr_lines)
        r.shuffle(pending)
        before = [p for p in pending if self.chance(0.6)]
        after = [p for p in pending if p not in before]
        # keep the per-link order of address lines (primary before secondary)
        before.sort(key=lambda p: addr_lines.index(p))
        after.sort(key=lambda p: addr_lines.index(p))
        for _, line in before:
            self.emit(line)
        for l in order:
            if l.name in down:
                continue
            self.emit(r.choice([f"link set {l.name} up", f"link set dev {l.name} up"]))
            l.up = True
        for _, line in after:
            self.emit(line)
        if not lo_up_now and self.chance(0.5):
            self.emit("link set lo up")
            lo_up_now = True
        self.lo_up = lo_up_now

    def carrier(self, l: _Link) -> bool:
        if not l.up or l.kind == "tap":
            return False
        if l.kind == "veth":
            peer = next((x for x in self.links if x.name == l.peer), None)
            return bool(peer and peer.up and not peer.deleted)
        return True

    # ---- routes -------------------------------------------------------------
    def gateway(self, fam: int, valid: bool = True):
        """A gateway on a connected subnet of an up link (or something random)."""
        cands = []
        for l in self.up_links():
            for a in l.v4 if fam == 4 else l.v6:
                if a.network.num_addresses >= 4:
                    cands.append((l, a))
        if valid and cands and self.chance(0.92):
            l, a = self.r.choice(cands)
            net = a.network
            while True:
                gw = net[
                    self.r.choice(
                        [
                            net.num_addresses - 2,
                            5 % net.num_addresses,
                            9 % net.num_addresses,
                            self.r.randrange(net.num_addresses),
                        ]
                    )
                ]
                if gw != a.ip or net.num_addresses <= 2:
                    break
            return gw, l
        if fam == 4:
            return ipaddress.ip_address(self.r.choice(["10.77.0.1", "192.0.2.1", "203.0.113.9"])), None
        return ipaddress.ip_address(self.r.choice(["2001:db8:77::1", "2001:db8:1:ffff::1", "fe80::1"])), None

    def dest_prefix(self, fam: int):
        r = self.r
        if self.prefixes and self.chance(0.25):
            p = r.choice(self.prefixes)
            if p.version == fam:
                if p.prefixlen < (32 if fam == 4 else 128) and self.chance(0.5):
                    # a longer or shorter neighbour of an existing prefix
                    if self.chance(0.5):
                        return next(iter(p.subnets(prefixlen_diff=1)))
                    return p.supernet()
                return p
        if fam == 4:
            c = r.random()
            if c < 0.12:
                return ipaddress.ip_network("0.0.0.0/0")
            if c < 0.55:
                plen = r.choice([15, 16, 20, 24, 24, 24, 25, 28, 32])
                base = (
                    ipaddress.ip_address("198.18.0.0")
                    + (r.randrange(0, 8) << 16) % (1 << 17)
                    + (r.randrange(0, 16) << 8)
                )
                return ipaddress.ip_network(f"{base}/{plen}", strict=False)
            if c < 0.75:
                addrs = self.addrs(4)
                if addrs:
                    a = r.choice(addrs)
                    plen = r.choice(
                        [a.network.prefixlen, max(0, a.network.prefixlen - 8), 32, min(32, a.network.prefixlen + 1)]
                    )
                    return ipaddress.ip_network(f"{a.ip}/{plen}", strict=False)
            if c < 0.82:
                return ipaddress.ip_network(
                    r.choice(
                        ["203.0.113.0/24", "100.64.0.0/10", "192.0.2.0/24", "8.8.8.0/24", "0.0.0.0/1", "128.0.0.0/1"]
                    )
                )
            if c < 0.88:
                return ipaddress.ip_network(r.choice(["224.0.0.0/4", "239.1.0.0/16", "224.0.0.0/24"]))
            if c < 0.91:
                return ipaddress.ip_network(r.choice(["127.0.0.0/16", "127.1.0.0/24"]))
            return ipaddress.ip_network(f"{r.randrange(1, 224)}.{r.randrange(256)}.0.0/16")
        c = r.random()
        if c < 0.12:
            return ipaddress.ip_network("::/0")
        if c < 0.55:
            plen = r.choice([40, 48, 56, 64, 64, 64, 96, 120, 128])
            base = ipaddress.ip_address(f"2001:db8:{0x100 + r.randrange(8):x}:{r.randrange(4):x}::")
            return ipaddress.ip_network(f"{base}/{plen}", strict=False)
        if c < 0.75:
            addrs = self.addrs(6)
            if addrs:
                a = r.choice(addrs)
                plen = r.choice(
                    [a.network.prefixlen, max(0, a.network.prefixlen - 16), 128, min(128, a.network.prefixlen + 1)]
                )
                return ipaddress.ip_network(f"{a.ip}/{plen}", strict=False)
        if c < 0.85:
            return ipaddress.ip_network(
                r.choice(["2001:db8::/32", "fd00::/8", "64:ff9b::/96", "2000::/3", "::ffff:0:0/96", "fc00::/7"])
            )
        if c < 0.9:
            return ipaddress.ip_network(r.choice(["ff00::/8", "ff0e::/16", "ff02::/16"]))
        return ipaddress.ip_network(f"2001:db8:{r.randrange(0x200, 0xFFFF):x}::/48")

    def route_line(self, fam: int) -> str:
        r = self.r
        dst = self.dest_prefix(fam)
        self.prefixes.append(dst)
        dtxt = str(dst)
        if dst.prefixlen == 0 and fam == 4 and self.chance(0.5):
            dtxt = "default"
        table = r.choice(self.tables) if self.tables and self.chance(0.7) else None
        opts = []
        nexthops = []  # `nexthop ...` must come last
        kind = r.choices(
            [
                "gw",
                "dev",
                "gwdev",
                "onlink",
                "local",
                "broadcast",
                "multicast",
                "blackhole",
                "unreachable",
                "prohibit",
                "throw",
                "multipath",
            ],
            weights=[30, 14, 8, 4, 4, 2 if fam == 4 else 0, 2, 5, 6, 5, 7, 5],
        )[0]
        if fam == 4 and dst.is_multicast and kind in ("gw", "dev", "gwdev", "onlink", "multipath"):
            # A unicast route to a multicast prefix (>= /4) shares its fib_info, and so the
            # rtable cached on its nexthop, with unicast routes: the kernel then answers a
            # multicast lookup with a cached unicast rtable or the reverse, depending on the
            # order of earlier lookups.  The model flags such answers as not modelled.
            kind = "multicast"
        cmd = "add"
        if self.chance(0.12):
            cmd = r.choice(["replace", "append", "prepend", "change"] if fam == 4 else ["replace", "append", "prepend"])
        tword = ""
        if kind in ("local", "broadcast", "blackhole", "unreachable", "prohibit", "throw", "multicast"):
            tword = kind + " "
        if kind == "local" and self.chance(0.5) and table is None:
            table = None  # default table for local routes is `local`
        if kind in ("gw", "gwdev", "onlink"):
            gw, l = self.gateway(fam, valid=kind != "onlink")
            opts += ["via", str(gw)]
            if kind in ("gwdev", "onlink") or (gw.version == 6 and gw.is_link_local):
                dev = l.name if l is not None and self.chance(0.8) else self.any_dev()
                opts += ["dev", dev]
            if kind == "onlink":
                opts.append("onlink")
        elif kind in ("dev", "local", "broadcast", "multicast"):
            opts += ["dev", self.any_dev(prefer_up=True)]
        elif kind == "multipath":
            tword = ""
            n = r.choice([2, 2, 3])
            for _ in range(n):
                gw, l = self.gateway(fam)
                leg = ["nexthop", "via", str(gw)]
                if l is not None:
                    leg += ["dev", l.name]
                elif fam == 6 and gw.is_link_local:
                    leg += ["dev", self.any_dev()]
                if fam == 4 and self.chance(0.5):
                    leg += ["weight", str(r.choice([1, 2, 3, 10]))]
                nexthops += leg
            self.sc.tags.add("multipath")
        if table is not None:
            opts[0:0] = ["table", self.table_word(table)]
        if fam == 4 and kind not in ("local", "broadcast") and self.chance(0.12):
            opts += ["tos", r.choice(["0x10", "0x08", "0x04", "0x18", "0x1c"])]
            self.toses.append(int(opts[-1], 16))
        if self.chance(0.35):
            opts += ["metric", str(r.choice([0, 1, 5, 10, 100, 256, 1024, 2048]))]
        if kind in ("gw", "gwdev", "dev") and self.chance(0.12):
            addrs = self.addrs(fam)
            if addrs and self.chance(0.85):
                opts += ["src", str(r.choice(addrs).ip)]
            else:
                opts += ["src", "10.200.0.1" if fam == 4 else "2001:db8:200::1"]
        if kind in ("gw", "gwdev", "dev", "multipath") and self.chance(0.1):
            opts += r.choice(
                [["mtu", "1400"], ["advmss", "1200"], ["hoplimit", "9"], ["mtu", "lock", "1300"], ["initcwnd", "10"]]
            )
        if fam == 4 and kind == "dev" and self.chance(0.06):
            opts += ["scope", r.choice(["link", "host", "global"])]
        if self.chance(0.08):
            # names only: iproute2 6.1's rtnl_rtprot_a2n caches the last name but
            # overwrites its cached value when it parses a number, so `proto 99`
            # followed by `protocol static` sends 99 (an ip bug the model does not copy)
            opts += ["proto", r.choice(["static", "kernel", "openr"])]
        if fam == 6 and kind in ("gw", "gwdev", "dev") and self.chance(0.05):
            opts += ["pref", r.choice(["low", "high"])]
        return f"route {cmd} {tword}{dtxt} " + " ".join(opts + nexthops)

    def any_dev(self, prefer_up: bool = False) -> str:
        links = self.up_links() if prefer_up and self.up_links() and self.chance(0.85) else self.live_links()
        if not links or self.chance(0.03):
            return self.r.choice(["lo", "nosuch0"]) if self.chance(0.5) else "lo"
        return self.r.choice(links).name

    def route_del_line(self, fam: int) -> str:
        r = self.r
        if self.route_lines and self.chance(0.8):
            line = r.choice(self.route_lines)
            words = line.split()
            # "route add [type] PREFIX ..." -> "route del [type] PREFIX [table T] [metric M] [tos]"
            out = ["route", "del"]
            i = 2
            if words[i] in ("local", "broadcast", "blackhole", "unreachable", "prohibit", "throw", "multicast"):
                out.append(words[i])
                i += 1
            out.append(words[i])
            rest = words[i + 1 :]
            for key in ("table", "metric", "tos", "via", "dev"):
                if key in rest and (key in ("table", "tos") or self.chance(0.5)):
                    j = rest.index(key)
                    out += [key, rest[j + 1]]
            return " ".join(out)
        p = self.dest_prefix(fam)
        return f"route del {p}" + (f" table {r.choice(self.tables)}" if self.tables and self.chance(0.5) else "")

    # ---- rules --------------------------------------------------------------
    def rule_line(self, fam: int, table: int | None = None) -> str:
        r = self.r
        parts = ["rule", "add"]
        pref = None
        if self.chance(0.75):
            pref = r.choice([r.randrange(1, 32766), r.choice([10, 100, 200, 300, 1000, 32765, 32766, 0])])
            if self.chance(0.15) and self.prefs:
                pref = r.choice(self.prefs)  # equal prefs: insertion order
            self.prefs.append(pref)
            parts += [r.choice(["pref", "priority", "preference"]), str(pref)]
        if self.chance(0.1):
            parts.append("not")
        sel = 0
        if self.chance(0.3):
            sel += 1
            addrs = self.addrs(fam)
            c = r.random()
            if c < 0.4 and addrs:
                a = r.choice(addrs)
                parts += ["from", str(a.network) if self.chance(0.5) else f"{a.ip}/{a.max_prefixlen}"]
            elif c < 0.5:
                parts += ["from", "0.0.0.0/32" if fam == 4 else "::/128"]
            elif c < 0.6:
                parts += ["from", "all"]
            else:
                parts += ["from", str(self.dest_prefix(fam))]
        if self.chance(0.3):
            sel += 1
            p = r.choice(self.prefixes) if self.prefixes and self.chance(0.6) else self.dest_prefix(fam)
            if p.version != fam:
                p = self.dest_prefix(fam)
            parts += ["to", str(p)]
        if self.chance(0.15):
            sel += 1
            parts += ["iif", r.choice([l.name for l in self.live_links()] + ["lo", "lo", "ghost0"])]
        if self.chance(0.1):
            sel += 1
            parts += ["oif", r.choice([l.name for l in self.live_links()] + ["ghost1"])]
        if self.chance(0.2):
            sel += 1
            m = r.choice(
                [(0x1, None), (0x5, None), (0x10, 0xF0), (0x100, None), (0x0, 0xFFFFFFFF), (0x3, 0x3), (0x0, None)]
            )
            self.marks.append(m)
            parts += ["fwmark", f"{m[0]:#x}" + (f"/{m[1]:#x}" if m[1] is not None else "")]
        if self.chance(0.1):
            sel += 1
            if fam == 4:
                t = r.choice(["0x10", "0x08", "0x04", "0x18", "0x1c", "0x02", "0xb8", "0x0c"])
            else:
                t = r.choice(["0x10", "0x20", "0xb8", "0x04", "0x03"])
            self.toses.append(int(t, 16) if t.startswith("0x") else 0x10)
            parts += ["tos", t]
        if self.chance(0.12):
            sel += 1
            u = r.choice([(1000, 2000), (0, 0), (5, 5), (1000, 1000), (2000, 1000), (0, 4294967294)])
            self.uids.append(u)
            parts += ["uidrange", f"{u[0]}-{u[1]}"]
        if self.chance(0.12):
            sel += 1
            parts += [
                "ipproto",
                r.choice(["tcp", "udp", "icmp", "6", "17"] if fam == 4 else ["tcp", "udp", "ipv6-icmp", "6"]),
            ]
        for kw in ("sport", "dport"):
            if self.chance(0.08):
                sel += 1
                a = r.choice([1000, 443, 53, 1, 65534, 0, 65535])
                b = r.choice([a, min(a + 1000, 65535), 2000, 65534])
                self.ports.append((a, b))
                parts += [kw, f"{a}" if a == b or self.chance(0.3) else f"{a}-{b}"]
        if fam == 6 and not any(w in parts for w in ("from", "to")) and self.sc.batch_family != 6:
            parts += ["from", "::/0"]
        # action
        c = 0.0 if table is not None else r.random()
        if c < 0.62:
            t = table if table is not None else r.choice(self.tables + [254, 253, 255, 4242]) if self.tables else 254
            parts += [r.choice(["lookup", "table"]), self.table_word(t)]
            if self.chance(0.15):
                parts += ["suppress_prefixlength", str(r.choice([0, 0, 8, 16, 24, 25, 32, 64, 128]))]
            if self.chance(0.06) and self.groups:
                parts += ["suppress_ifgroup", str(r.choice(self.groups))]
        elif c < 0.72:
            if pref is None:
                pref = r.randrange(1, 32000)
                parts[2:2] = ["pref", str(pref)]
                self.prefs.append(pref)
            later = [p for p in self.prefs if p > pref]
            if later and self.chance(0.6):
                target = r.choice(later)
            elif self.chance(0.6):
                target = pref + r.choice([1, 5, 50])  # maybe unresolved, maybe later resolved
            else:
                target = max(0, pref - 1)  # backward: refused
            parts += ["goto", str(target)]
        elif c < 0.78:
            parts.append("nop")
        else:
            parts.append(r.choice(["blackhole", "unreachable", "prohibit"]))
        if self.chance(0.05):
            parts += ["protocol", r.choice(["static", "boot", "openr"])]
        return " ".join(parts)

    def rule_del_line(self, fam: int) -> str:
        r = self.r
        c = r.random()
        if self.rule_lines and c < 0.55:
            line = r.choice(self.rule_lines)
            return line.replace("rule add", "rule del", 1)
        if c < 0.75 and self.prefs:
            return f"rule del pref {r.choice(self.prefs)}"
        if c < 0.85:
            return r.choice(
                [
                    "rule del pref 32767",
                    "rule del pref 32766 lookup main",
                    "rule del pref 0 lookup local",
                    "rule del lookup default",
                ]
            )
        if c < 0.92:
            return f"rule del fwmark {r.choice(['0x10', '0x5', '0x10/0xf0'])}"
        return "rule del pref 31999"

    # ---- the scenario ------------------------------------------------------
    def build(self) -> Scenario:
        r = self.r
        fam = self.fam
        self.lo4 = self.lo6 = None
        self.topology()
        addr_lines = self.plan_addresses()
        self.bring_up(addr_lines)
        self.no_rules = self.chance(0.2)
        if self.no_rules:
            self.sc.tags.add("no-rules")
            self.tables = [254] if self.chance(0.6) else [254, 253]
        else:
            ntab = r.choice([1, 2, 2, 3, 4])
            self.tables = r.sample(TABLE_POOL, ntab)
        if self.chance(0.6):
            # a default route in main, usually via a valid gateway
            gw, l = self.gateway(fam)
            dflt = "default" if fam == 4 else "::/0"
            line = f"route add {dflt} via {gw}" + (f" dev {l.name}" if l is not None and self.chance(0.3) else "")
            self.route_lines.append(line)
            self.emit(line)
        nroutes = r.randrange(6, 26)
        nrules = 0 if self.no_rules else r.randrange(2, 14)
        items = ["route"] * nroutes + ["rule"] * nrules
        if not self.no_rules:
            # most custom tables get a rule that reaches them
            for t in self.tables:
                if t not in (253, 254) and self.chance(0.85):
                    items.append(("lookup", t))
        r.shuffle(items)
        other = 6 if fam == 4 else 4
        for it in items:
            if it == "route":
                f = fam
                if fam == 4 and self.chance(0.1):
                    f = other  # IPv6 routes in a plain batch: family follows the address
                line = self.route_line(f)
                self.route_lines.append(line)
            else:
                line = self.rule_line(fam, table=it[1] if isinstance(it, tuple) else None)
                self.rule_lines.append(line)
            self.emit(line)
        # nexthop objects and nhid routes (their own random stream)
        nh_plan = nexthop_block(self) if self.with_nexthops else None
        # deliberate oddities
        if fam == 4 and not self.no_rules and self.chance(0.1):
            self.emit("rule add from 2001:db8::/64 lookup 100")  # IPv4 family, IPv6 address
        # deletions and late changes
        for _ in range(r.choice([0, 0, 1, 2, 3])):
            self.emit(self.route_del_line(fam))
        if not self.no_rules:
            for _ in range(r.choice([0, 1, 1, 2])):
                self.emit(self.rule_del_line(fam))
            if self.chance(0.3):
                for _ in range(r.randrange(1, 4)):
                    line = self.rule_line(fam)
                    self.rule_lines.append(line)
                    self.emit(line)
        if self.chance(0.2):
            l = r.choice(self.up_links()) if self.up_links() else None
            if l is not None:
                self.emit(f"link set {l.name} down")
                l.up = False
                self.sc.tags.add("late-down")
        if self.chance(0.06):
            l = r.choice(self.live_links())
            if l.kind == "veth":
                self.emit(f"link del {l.name}")
                l.deleted = True
                for x in self.links:
                    if x.name == l.peer:
                        x.deleted = True
                self.sc.tags.add("link-del")
        if self.chance(0.08):
            ls = [l for l in self.live_links() if (l.v4 if fam == 4 else l.v6)]
            if ls:
                l = r.choice(ls)
                lst = l.v4 if fam == 4 else l.v6
                a = lst[0]
                self.emit(f"addr del {a} dev {l.name}")
                lst.remove(a)
                self.sc.tags.add("addr-del")
        if self.chance(0.15):
            # a few more routes after the deletions
            for _ in range(r.randrange(1, 4)):
                line = self.route_line(fam)
                self.route_lines.append(line)
                self.emit(line)
        nexthop_late(self, nh_plan)
        self.sysctls()
        self.flows(100)
        nexthop_flows(self, nh_plan)
        return self.sc

    def sysctls(self) -> None:
        r = self.r
        out = self.sc.sysctls
        names = [l.name for l in self.live_links()]
        if self.fam == 4:
            if self.chance(0.35):
                out.append((r.choice(["net.ipv4.ip_forward", "net.ipv4.conf.all.forwarding"]), 1))
            elif self.chance(0.2) and names:
                out.append((f"net.ipv4.conf.{r.choice(names)}.forwarding", 1))
            if self.chance(0.15):
                out.append((f"net.ipv4.conf.{r.choice(['all'] + names)}.route_localnet", 1))
            if self.chance(0.25):
                out.append((f"net.ipv4.conf.{r.choice(['all'] + names)}.ignore_routes_with_linkdown", 1))
        else:
            if self.chance(0.3):
                out.append(("net.ipv6.conf.all.forwarding", 1))
            elif self.chance(0.2) and names:
                out.append((f"net.ipv6.conf.{r.choice(names)}.forwarding", 1))
            if self.chance(0.25):
                out.append((f"net.ipv6.conf.{r.choice(['all'] + names)}.ignore_routes_with_linkdown", 1))
        if self.chance(0.03):
            out.append(("net.ipv4.conf.nosuch0.forwarding", 1))
        if out:
            self.sc.tags.add("sysctl")

    # ---- flows --------------------------------------------------------------
    def flow_dst(self) -> str:
        r = self.r
        fam = self.fam
        c = r.random()
        local = self.addrs(fam)
        if self.lo4 is not None and fam == 4:
            local = local + [self.lo4]
        if self.lo6 is not None and fam == 6:
            local = local + [self.lo6]
        pfx = [p for p in self.prefixes if p.version == fam]
        if c < 0.45 and pfx:
            return str(self.host_in(r.choice(pfx)))
        if c < 0.55 and local:
            return str(r.choice(local).ip)
        if c < 0.63 and local:
            a = r.choice(local)
            return str(self.host_in(a.network))
        if fam == 4:
            if c < 0.68 and local:
                a = r.choice(local)
                return str(r.choice([a.network.broadcast_address, a.network.network_address]))
            if c < 0.70:
                return "255.255.255.255"
            if c < 0.72:
                return "0.0.0.0"
            if c < 0.76:
                return r.choice(["127.0.0.1", "127.0.0.2", "127.1.2.3", "127.255.255.255"])
            if c < 0.81:
                return r.choice(["224.0.0.1", "224.0.0.251", "239.1.2.3", "239.255.0.1", "225.0.0.9"])
            if c < 0.83:
                return r.choice(["169.254.1.1", "240.0.0.1", "0.1.2.3"])
            return str(ipaddress.IPv4Address(r.getrandbits(32)))
        if c < 0.65:
            return "::"
        if c < 0.69:
            return "::1"
        if c < 0.75:
            return r.choice(["ff02::1", "ff02::2", "ff05::1:3", "ff0e::101", "ff01::1"])
        if c < 0.78:
            return r.choice(["fe80::1", "::ffff:10.1.0.1", "64:ff9b::1.2.3.4"])
        if c < 0.84 and local:
            a = r.choice(local)
            return str(a.network.network_address)  # subnet-router anycast
        return str(ipaddress.IPv6Address((0x2001 << 112) | r.getrandbits(112)))

    def flows(self, n: int) -> None:
        r = self.r
        fam = self.fam
        local = self.addrs(fam)
        names = [l.name for l in self.live_links()]
        for _ in range(n):
            argv = [self.flow_dst()]
            iif = None
            if self.chance(0.15) and names:
                iif = r.choice(names + ["lo"])
                argv += ["iif", iif]
            if self.chance(0.45 if iif else 0.25):
                c = r.random()
                if iif and c < 0.7:
                    # a remote source: a host on a connected subnet, or anything
                    if local and self.chance(0.6):
                        src = self.host_in(r.choice(local).network)
                    else:
                        src = "203.0.113.7" if fam == 4 else "2001:db8:feed::7"
                elif local and c < 0.88:
                    src = r.choice(local).ip
                elif c < 0.94:
                    src = (
                        self.host_in(r.choice(local).network)
                        if local
                        else ("10.99.0.1" if fam == 4 else "2001:db8:99::1")
                    )
                else:
                    src = r.choice(
                        ["127.0.0.1", "10.99.0.1", "0.0.0.0"] if fam == 4 else ["::1", "2001:db8:99::1", "::"]
                    )
                argv += ["from", str(src)]
            if self.chance(0.12 if not iif else 0.03) and names:
                argv += ["oif", r.choice(names + ["lo"])]
            if self.chance(0.22):
                if self.marks and self.chance(0.7):
                    m, mask = r.choice(self.marks)
                    val = m if self.chance(0.7) else (m | 0x100)
                    if mask == 0xF0 and self.chance(0.5):
                        val = 0x15
                else:
                    val = r.choice([1, 2, 5, 0x10, 0x1F, 0x100, 0xFFFFFFFF])
                argv += ["mark", str(val) if self.chance(0.5) else hex(val)]
            if self.chance(0.15):
                if self.toses and self.chance(0.6):
                    t = r.choice(self.toses)
                    t = r.choice([t, t | 0x01, t | 0xA0, t | 0x02])
                else:
                    t = r.choice([0x10, 0x08, 0x04, 0xB8, 0x11, 0x1C, 0x20])
                argv += ["tos", hex(t & 0xFF)]
            if self.chance(0.2):
                if self.uids and self.chance(0.7):
                    a, b = r.choice(self.uids)
                    u = r.choice([a, b, (a + b) // 2, b + 1, max(a - 1, 0)])
                else:
                    u = r.choice([0, 1, 1000, 1500, 2001, 65534, 4294967294])
                argv += ["uid", str(u)]
            proto = None
            if self.chance(0.2):
                proto = r.choice(["tcp", "udp", "icmp"] if fam == 4 else ["tcp", "udp", "ipv6-icmp"])
                if self.chance(0.03):
                    proto = "gre"  # refused by the kernel
                argv += ["ipproto", proto]
            for kw in ("sport", "dport"):
                if self.chance(0.15):
                    if self.ports and self.chance(0.7):
                        a, b = r.choice(self.ports)
                        p = r.choice([a, b, (a + b) // 2, min(b + 1, 65535), max(a - 1, 0)])
                    else:
                        p = r.choice([1, 53, 80, 443, 1000, 1500, 2000, 2001, 65534, 65535])
                    argv += [kw, str(p)]
            self.sc.flows.append(argv)


def generate(seed: int, family: int, nexthops: bool = False) -> Scenario:
    """The scenario for (seed, family); deterministic.  ``nexthops``: with
    nexthop objects and nhid routes (scenario_nexthop.py; for the
    differential test - snapshots, the dump reader and the determinism check
    do not take them: the live reader refuses nhid routes, and routes through
    shared objects answer from route caches, docs/kernel-notes.md 9)."""
    return _Gen(seed, family, nexthops).build()


def scenario_seeds(master_seed: int, count: int) -> list[tuple[int, int]]:
    """(seed, family) for `count` scenarios derived from one master seed,
    alternating IPv4 and IPv6 (IPv4 first)."""
    r = random.Random(master_seed)
    return [(r.getrandbits(48), 4 if i % 2 == 0 else 6) for i in range(count)]


if __name__ == "__main__":  # print a scenario (as the differential test runs it): python scenario.py SEED [4|6]
    import sys

    s = generate(int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 4, nexthops=True)
    print("#", s.describe())
    print(s.batch_text, end="")
    for k, v in s.sysctls:
        print(f"# sysctl {k}={v}")
    for f in s.flows[:20]:
        print("# route get", " ".join(f))
