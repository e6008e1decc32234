"""The records of a live namespace as read from the kernel: links, addresses,
rules and routes (:class:`KLink`, :class:`KAddr`, :class:`KRule`,
:class:`KRoute`), the :class:`KernelState` holding them, and the sysctls
the model knows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from polroute.types.requests import (
    IPAddress,
    RouteRequest,
    RuleRequest,
)

IFF_UP = 0x1
IFF_LOWER_UP = 0x10000
RTNH_F_DEAD = 0x01
RTNH_F_LINKDOWN = 0x10
IFA_F_SECONDARY = 0x01
IFA_F_NODAD = 0x02
IFA_F_OPTIMISTIC = 0x04
IFA_F_HOMEADDRESS = 0x10
IFA_F_MANAGETEMPADDR = 0x100
IFA_F_MCAUTOJOIN = 0x400
INFINITY_LIFE = 0xFFFFFFFF
IN6_ADDR_GEN_MODE_NONE = 1


# sysctls the model knows (net.ipv4.conf.X.KEY / net.ipv6.conf.X.KEY)
SYSCTL_V4_KEYS = (
    "forwarding",
    "route_localnet",
    "rp_filter",
    "accept_local",
    "ignore_routes_with_linkdown",
    "src_valid_mark",
    "promote_secondaries",
)
SYSCTL_V6_KEYS = ("forwarding", "ignore_routes_with_linkdown", "disable_ipv6")


# ---------------------------------------------------------------------------
# records
# ---------------------------------------------------------------------------


@dataclass
class KLink:
    ifindex: int
    name: str
    kind: str  # loopback | veth | bridge | ifb | tun | tap | other
    info_kind: str = ""  # IFLA_INFO_KIND ("" for a device without one)
    up: bool = False  # IFF_UP (admin state)
    carrier: bool = False  # IFF_LOWER_UP
    peer: int = 0  # veth: the peer's ifindex when it is in this namespace
    peer_elsewhere: bool = False
    group: int = 0
    addr_gen_mode: int | None = None
    master: int = 0


@dataclass
class KAddr:
    family: int
    ifindex: int
    local: IPAddress
    prefixlen: int
    scope: int = 0
    flags: int = 0  # IFA_FLAGS (32 bits)
    label: str = ""
    broadcast: IPAddress | None = None
    peer: IPAddress | None = None  # IFA_ADDRESS when it differs from the local address
    metric: int = 0  # IFA_RT_PRIORITY
    valid_lft: int = INFINITY_LIFE
    preferred_lft: int = INFINITY_LIFE
    proto: int = 0  # IFA_PROTO (1 lo, 2 RA, 3 link-local: made by the kernel)

    @property
    def secondary(self) -> bool:
        return bool(self.flags & IFA_F_SECONDARY)


@dataclass
class KRule(RuleRequest):
    """A dumped rule; ``unsupported`` names what iproute2 6.1 cannot write."""

    unsupported: list = field(default_factory=list)


@dataclass
class KRoute(RouteRequest):
    """A dumped route; ``unsupported`` names what iproute2 6.1 / the model
    cannot carry (expiry, congctl, encap, nexthop objects...)."""

    expires: int = 0
    congctl: str = ""
    unsupported: list = field(default_factory=list)


@dataclass
class KernelState:
    netns: str | None
    links: list[KLink] = field(default_factory=list)
    addrs: list[KAddr] = field(default_factory=list)
    rules: dict[int, list[KRule]] = field(default_factory=dict)
    routes: dict[int, list[KRoute]] = field(default_factory=dict)
    sysctls: dict[str, int] = field(default_factory=dict)
    v4_merged: bool | None = None  # None: not observable (no local route) or not read
    timings: dict[str, float] = field(default_factory=dict)

    def link_by_index(self, ifindex: int) -> KLink | None:
        for link in self.links:
            if link.ifindex == ifindex:
                return link
        return None

    def ifname(self, ifindex: int) -> str:
        link = self.link_by_index(ifindex)
        return link.name if link is not None else f"if{ifindex}"

    @property
    def sysctl_lines(self) -> list[tuple[str, int]]:
        """(key, value) to set after the batches, in an order that leaves each
        value as read: ``default``, then ``all`` (its forwarding propagates to
        every device), then each device explicitly."""
        return _sysctl_plan(self)


# ---------------------------------------------------------------------------
# sysctls
# ---------------------------------------------------------------------------


def _sysctl_plan(state: KernelState) -> list[tuple[str, int]]:
    """``default`` and ``all`` first, then the devices whose value would not
    otherwise be what was read: a device value that is not 0 (a new
    namespace's value of every key the model knows), or any value of a key
    whose ``all`` write reaches every device (forwarding; IPv6
    disable_ipv6 and ignore_routes_with_linkdown) or whose ``default`` write
    reaches the devices never set (IPv4) when that one is not 0.
    ``net.ipv4.ip_forward`` is ``conf.all.forwarding`` under another name."""
    sc = state.sysctls
    out: list[tuple[str, int]] = []
    devs = [l.name for l in state.links]
    for fam, keys in (("ipv4", SYSCTL_V4_KEYS), ("ipv6", SYSCTL_V6_KEYS)):
        for key in keys:
            vals = {d: sc.get(f"net.{fam}.conf.{d}.{key}") for d in ["default", "all"] + devs}
            if not any(vals.values()):
                continue
            spread = (key == "forwarding" or (fam == "ipv6" and key != "forwarding")) and vals["all"]
            spread = spread or (fam == "ipv4" and vals["default"])
            for d in ["default", "all"] + devs:
                v = vals[d]
                if v is None or (not v and (d in ("default", "all") or not spread)):
                    continue
                out.append((f"net.{fam}.conf.{d}.{key}", v))
    if sc.get("net.ipv4.ip_nonlocal_bind"):
        out.append(("net.ipv4.ip_nonlocal_bind", sc["net.ipv4.ip_nonlocal_bind"]))
    return out
