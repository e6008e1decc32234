"""Reading live state: one network namespace's links, addresses, rules and
routes, as records, as ``ip -batch`` text that recreates them, and as a
:class:`~polroute.Policy`.

* :func:`read_state` dumps the current namespace (or ``netns=NAME``) in C
  (:mod:`polroute.live.dump`: RTM_GETLINK/GETADDR/GETRULE/GETROUTE, both
  families, every table; pyroute2 stays as the tests' reference reader)
  and reads the sysctls the model knows from ``/proc/sys/net`` inside it.
  Rules and routes become the dataclasses of :mod:`polroute.types.requests`
  (:class:`KRule`, :class:`KRoute`: the same shape as
  :meth:`Policy.rules` / :meth:`Policy.routes` give, plus what the model
  cannot represent), links and addresses :class:`KLink` / :class:`KAddr`.
* :func:`snapshot_text` / :func:`snapshot_batches` turn a state into ip batch
  text; :func:`policy_from_state` applies that text (and the sysctls) to a
  fresh Policy; :func:`compare_with_policy` says where a Policy differs.

What the text contains, in order.  Every line is applied to a model
namespace as it is written; what the model refuses is retried as described
below, and written as a ``# not restorable (ERROR): LINE`` comment if it
still fails.

1. links in ifindex order (veth pairs once, the lower ifindex as the peer so
   that the pair gets the same relative ifindexes), groups, and
   ``addrgenmode none`` on every link but lo, so that the new namespace makes
   no link-local address of its own: the source's link-local addresses are
   addresses like any other and are added explicitly (a MAC-derived one could
   not be reproduced anyway);
2. addresses (IPv6 with ``nodad``; each device's in the order that recreates
   its list, devices interleaved so that an address on several devices gets
   its local routes in the source's order), then ``link set ... up`` in the
   order that recreates the IPv6 ``ff00::/8`` routes' order (a link whose
   route predates its carrier gets its newest IPv6 address after it is up);
3. ``route del`` of the routes the kernel derived from 1-2 that the source no
   longer has; the derived routes themselves are not written.  "Derived" is
   decided by the model: links, addresses and link states applied to a fresh
   Policy, whose routes are then the kernel's own (so a user route that merely
   looks like a kernel one - ``proto kernel``, a local route in table 100 - is
   kept);
4. routes, in dump order (routes sharing table/prefix/tos/metric with
   ``append``/``prepend`` so that their order is the source's): IPv4 routes
   without gateways, the IPv4 rules (missing default rules deleted, the others
   added with explicit ``pref`` in dump order), the IPv4 routes with gateways
   (their nexthops resolve against the final rules and routes, as if added
   now); the IPv6 routes before the IPv6 rules.  A route refused because its
   gateway is no longer on-link or its prefsrc no longer local (the kernel
   checks those only when a route is added) is added with a host route to the
   gateway / the address made local for the time of the add; a route refused
   before the rules exist is retried after them (and the other way round);
   multipath legs through down links or links whose IPv4 was disabled are
   recreated by the same events (the link is up for the restore and goes down
   at the end; a throwaway address is added and deleted); a group of routes
   that still came out in another order is deleted and appended again.

``ip -batch`` cannot make an IPv6 rule (a rule's family comes only from
``ip -6``), so IPv6 rules need ``ip -6 -batch``: :func:`snapshot_batches`
returns the two batches, :func:`snapshot_text` either one family's batch or
the whole state as one text whose IPv6-rule lines start with ``-6`` (polroute
reads that; ``ip -batch`` stops there).  Sysctls cannot be set by ``ip``;
they are listed as ``# sysctl -w KEY=VALUE`` comments, to apply after the
batches (:attr:`KernelState.sysctl_lines`).
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from socket import inet_ntoa

from polroute._core.errors import PolicyError
from polroute.iproute2.batch import apply_batch, apply_line
from polroute.iproute2.lexer import ParseError
from polroute.iproute2.rt_tables import RtTables
from polroute.model.policy import Policy
from polroute.types.requests import (
    AF_INET,
    AF_INET6,
    FIB_RULE_INVERT,
    FR_ACT_GOTO,
    FR_ACT_NOP,
    FR_ACT_TO_TBL,
    FRA_DPORT_RANGE,
    FRA_DST,
    FRA_FLOW,
    FRA_FWMARK,
    FRA_FWMASK,
    FRA_GOTO,
    FRA_IIFNAME,
    FRA_IP_PROTO,
    FRA_L3MDEV,
    FRA_OIFNAME,
    FRA_PRIORITY,
    FRA_PROTOCOL,
    FRA_SPORT_RANGE,
    FRA_SRC,
    FRA_SUPPRESS_IFGROUP,
    FRA_SUPPRESS_PREFIXLEN,
    FRA_TABLE,
    FRA_TUN_ID,
    FRA_UID_RANGE,
    IFA_F_NOPREFIXROUTE,
    NLM_F_APPEND,
    NLM_F_CREATE,
    NLM_F_EXCL,
    RT_SCOPE_HOST,
    RT_SCOPE_LINK,
    RT_SCOPE_UNIVERSE,
    RT_TABLE_DEFAULT,
    RT_TABLE_LOCAL,
    RT_TABLE_MAIN,
    RTA_DST,
    RTA_FLOW,
    RTA_GATEWAY,
    RTA_METRICS,
    RTA_MULTIPATH,
    RTA_NH_ID,
    RTA_OIF,
    RTA_PREF,
    RTA_PREFSRC,
    RTA_PRIORITY,
    RTA_TABLE,
    RTM_NEWROUTE,
    RTM_NEWRULE,
    RTN_ANYCAST,
    RTN_BLACKHOLE,
    RTN_BROADCAST,
    RTN_LOCAL,
    RTN_MULTICAST,
    RTN_NAT,
    RTN_PROHIBIT,
    RTN_THROW,
    RTN_UNICAST,
    RTN_UNREACHABLE,
    RTN_UNSPEC,
    RTNH_F_ONLINK,
    RTPROT_BOOT,
    RTPROT_KERNEL,
    IPAddress,
    NexthopRequest,
    RouteRequest,
    RuleRequest,
    bit,
)

__all__ = [
    "KLink",
    "KAddr",
    "KRule",
    "KRoute",
    "KernelState",
    "read_state",
    "snapshot_batches",
    "snapshot_text",
    "policy_from_state",
    "compare_with_policy",
    "route_key",
    "rule_key",
    "SYSCTL_V4_KEYS",
    "SYSCTL_V6_KEYS",
]

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

# iproute2 6.1's compiled-in protocol and scope names (lib/rt_names.c): always
# known to `ip`, whatever /etc/iproute2 says.
_PROTO_NAMES = {
    0: "unspec",
    1: "redirect",
    2: "kernel",
    3: "boot",
    4: "static",
    8: "gated",
    9: "ra",
    10: "mrt",
    11: "zebra",
    12: "bird",
    13: "dnrouted",
    14: "xorp",
    15: "ntk",
    16: "dhcp",
    18: "keepalived",
    42: "babel",
    186: "bgp",
    187: "isis",
    188: "ospf",
    189: "rip",
    192: "eigrp",
}
_SCOPE_NAMES = {0: "global", 200: "site", 253: "link", 254: "host", 255: "nowhere"}
_TABLE_NAMES = {RT_TABLE_DEFAULT: "default", RT_TABLE_MAIN: "main", RT_TABLE_LOCAL: "local"}
_RTN_NAMES = (
    "unspec",
    "unicast",
    "local",
    "broadcast",
    "anycast",
    "multicast",
    "blackhole",
    "unreachable",
    "prohibit",
    "throw",
    "nat",
    "xresolve",
)

# RTAX ids
RTAX_LOCK, RTAX_MTU, RTAX_WINDOW, RTAX_RTT, RTAX_RTTVAR, RTAX_SSTHRESH = 1, 2, 3, 4, 5, 6
RTAX_CWND, RTAX_ADVMSS, RTAX_REORDERING, RTAX_HOPLIMIT, RTAX_INITCWND = 7, 8, 9, 10, 11
RTAX_FEATURES, RTAX_RTO_MIN, RTAX_INITRWND, RTAX_QUICKACK, RTAX_CC_ALGO = 12, 13, 14, 15, 16
RTAX_FASTOPEN_NO_COOKIE = 17
_RTAX_BY_NAME = {
    "RTAX_LOCK": 1,
    "RTAX_MTU": 2,
    "RTAX_WINDOW": 3,
    "RTAX_RTT": 4,
    "RTAX_RTTVAR": 5,
    "RTAX_SSTHRESH": 6,
    "RTAX_CWND": 7,
    "RTAX_ADVMSS": 8,
    "RTAX_REORDERING": 9,
    "RTAX_HOPLIMIT": 10,
    "RTAX_INITCWND": 11,
    "RTAX_FEATURES": 12,
    "RTAX_RTO_MIN": 13,
    "RTAX_INITRWND": 14,
    "RTAX_QUICKACK": 15,
    "RTAX_CC_ALGO": 16,
    "RTAX_FASTOPEN_NO_COOKIE": 17,
}
# metric keyword per RTAX id, as `ip route add` takes it (raw values: no unit)
_MX_WORDS = {
    RTAX_MTU: "mtu",
    RTAX_WINDOW: "window",
    RTAX_RTT: "rtt",
    RTAX_RTTVAR: "rttvar",
    RTAX_SSTHRESH: "ssthresh",
    RTAX_CWND: "cwnd",
    RTAX_ADVMSS: "advmss",
    RTAX_REORDERING: "reordering",
    RTAX_HOPLIMIT: "hoplimit",
    RTAX_INITCWND: "initcwnd",
    RTAX_INITRWND: "initrwnd",
    RTAX_RTO_MIN: "rto_min",
    RTAX_QUICKACK: "quickack",
    RTAX_FASTOPEN_NO_COOKIE: "fastopen_no_cookie",
    RTAX_FEATURES: "features",
}
_MX_NO_LOCK = (RTAX_QUICKACK, RTAX_FASTOPEN_NO_COOKIE, RTAX_FEATURES)


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
# reading: the pyroute2 reference reader (the C reader is kernel_dump.py)
# ---------------------------------------------------------------------------


def _pyroute2_iproute():
    try:
        from pyroute2 import IPRoute
    except ImportError as exc:  # pragma: no cover - pyroute2 is a test/bench dependency
        raise RuntimeError("reading live state needs pyroute2 (pip install pyroute2)") from exc
    return IPRoute


def _attr(msg, name, default=None):
    for k, v in msg.get("attrs", ()):
        if k == name:
            return v
    return default


def _ip(s) -> IPAddress | None:
    return ipaddress.ip_address(s) if s not in (None, "") else None


def _link_from_msg(m) -> KLink:
    name = _attr(m, "IFLA_IFNAME", "")
    flags = m.get("flags", 0)
    info = _attr(m, "IFLA_LINKINFO")
    info_kind = _attr(info, "IFLA_INFO_KIND", "") if info else ""
    kind = "other"
    if m.get("ifi_type") == 772:  # ARPHRD_LOOPBACK
        kind = "loopback"
    elif info_kind in ("veth", "bridge", "ifb"):
        kind = info_kind
    elif info_kind == "tun":
        data = _attr(info, "IFLA_INFO_DATA")
        kind = "tap" if data and _attr(data, "IFLA_TUN_TYPE") == 2 else "tun"
    link = KLink(
        m["index"],
        name,
        kind,
        info_kind or "",
        bool(flags & IFF_UP),
        bool(flags & IFF_LOWER_UP),
        group=_attr(m, "IFLA_GROUP", 0) or 0,
        master=_attr(m, "IFLA_MASTER", 0) or 0,
    )
    if kind == "veth":
        if _attr(m, "IFLA_LINK_NETNSID") is not None:
            link.peer_elsewhere = True
        else:
            link.peer = _attr(m, "IFLA_LINK", 0) or 0
    spec = _attr(m, "IFLA_AF_SPEC")
    if spec:
        v6 = _attr(spec, "AF_INET6")
        if v6:
            link.addr_gen_mode = _attr(v6, "IFLA_INET6_ADDR_GEN_MODE")
    return link


def _addr_from_msg(m) -> KAddr:
    fam = m["family"]
    local = _attr(m, "IFA_LOCAL")
    address = _attr(m, "IFA_ADDRESS")
    if local is None:
        local, address = address, None
    peer = _ip(address) if address not in (None, local) else None
    flags = _attr(m, "IFA_FLAGS")
    if flags is None:
        flags = m.get("flags", 0)
    ci = _attr(m, "IFA_CACHEINFO") or {}
    return KAddr(
        fam,
        m["index"],
        _ip(local),
        m["prefixlen"],
        m.get("scope", 0),
        flags,
        _attr(m, "IFA_LABEL", "") or "",
        _ip(_attr(m, "IFA_BROADCAST")),
        peer,
        _attr(m, "IFA_RT_PRIORITY", 0) or 0,
        ci.get("ifa_valid", INFINITY_LIFE),
        ci.get("ifa_preferred", INFINITY_LIFE),
        _attr(m, "IFA_PROTO", 0) or 0,
    )


# new FRA_* attributes iproute2 6.1 has no keyword for (pyroute2 may not name them)
_RULE_UNSUPPORTED = {
    25: "dscp",
    26: "flowlabel",
    27: "flowlabel mask",
    28: "sport mask",
    29: "dport mask",
    30: "dscp mask",
}


def _rule_from_msg(m) -> KRule:
    r = KRule(
        RTM_NEWRULE,
        0,
        family=m["family"],
        dst_len=m["dst_len"],
        src_len=m["src_len"],
        tos=m["tos"],
        action=m["action"],
        table=m["table"],
        flags=m["flags"],
    )
    r.present = bit(FRA_PRIORITY)
    unknown = []
    for k, v in m.get("attrs", ()):
        if k == "FRA_PRIORITY":
            r.priority = v
        elif k == "FRA_TABLE":
            r.table = v
            r.present |= bit(FRA_TABLE)
        elif k == "FRA_SRC":
            r.src = _ip(v)
            r.present |= bit(FRA_SRC)
        elif k == "FRA_DST":
            r.dst = _ip(v)
            r.present |= bit(FRA_DST)
        elif k == "FRA_IIFNAME":
            r.iifname = v
            r.present |= bit(FRA_IIFNAME)
        elif k == "FRA_OIFNAME":
            r.oifname = v
            r.present |= bit(FRA_OIFNAME)
        elif k == "FRA_GOTO":
            r.goto_target = v
            r.present |= bit(FRA_GOTO)
        elif k == "FRA_FWMARK":
            r.fwmark = v
            r.present |= bit(FRA_FWMARK)
        elif k == "FRA_FWMASK":
            r.fwmask = v
            r.present |= bit(FRA_FWMASK)
        elif k == "FRA_FLOW":
            r.realm = v
            r.present |= bit(FRA_FLOW)
        elif k == "FRA_TUN_ID":
            r.tun_id = v
            r.present |= bit(FRA_TUN_ID)
        elif k == "FRA_SUPPRESS_PREFIXLEN":
            r.suppress_prefixlen = -1 if v in (-1, 0xFFFFFFFF) else v
            if r.suppress_prefixlen != -1:
                r.present |= bit(FRA_SUPPRESS_PREFIXLEN)
        elif k == "FRA_SUPPRESS_IFGROUP":
            r.suppress_ifgroup = -1 if v in (-1, 0xFFFFFFFF) else v
            if r.suppress_ifgroup != -1:
                r.present |= bit(FRA_SUPPRESS_IFGROUP)
        elif k == "FRA_L3MDEV":
            r.l3mdev = v
            if v:
                r.present |= bit(FRA_L3MDEV)
        elif k == "FRA_UID_RANGE":
            r.uid_start, r.uid_end = _range(v)
            r.present |= bit(FRA_UID_RANGE)
        elif k == "FRA_PROTOCOL":
            r.protocol = v
            r.present |= bit(FRA_PROTOCOL)
        elif k == "FRA_IP_PROTO":
            r.ip_proto = v
            r.present |= bit(FRA_IP_PROTO)
        elif k == "FRA_SPORT_RANGE":
            r.sport_start, r.sport_end = _range(v)
            r.present |= bit(FRA_SPORT_RANGE)
        elif k == "FRA_DPORT_RANGE":
            r.dport_start, r.dport_end = _range(v)
            r.present |= bit(FRA_DPORT_RANGE)
        elif k == "UNKNOWN":
            unknown.append((v.get("header") or {}).get("type"))
        elif k.startswith("FRA_") and k not in ("FRA_UNSPEC", "FRA_PAD"):
            r.unsupported.append(k)
    for t in unknown:
        # a single port gets an implicit all-ones mask, which newer kernels dump
        # (pyroute2 does not decode it): that is what `sport N` makes, not extra
        if (t == 28 and r.sport_start == r.sport_end and r.present & bit(FRA_SPORT_RANGE)) or (
            t == 29 and r.dport_start == r.dport_end and r.present & bit(FRA_DPORT_RANGE)
        ):
            continue
        r.unsupported.append(_RULE_UNSUPPORTED.get(t, f"FRA attribute {t}"))
    return r


def _range(v) -> tuple[int, int]:
    """pyroute2 gives uid/port ranges as "START:END" (or a dict)."""
    if isinstance(v, dict):
        return v["start"], v["end"]
    a, _, b = str(v).partition(":")
    return int(a), int(b or a)


def _route_from_msg(m) -> KRoute:
    fam = m["family"]
    r = KRoute(
        RTM_NEWROUTE,
        0,
        family=fam,
        dst_len=m["dst_len"],
        tos=m["tos"],
        protocol=m["proto"],
        scope=m["scope"],
        type=m["type"],
        table=m["table"],
        rtm_flags=m["flags"],
    )
    r.present = bit(RTA_TABLE) | bit(RTA_PRIORITY)
    if m.get("src_len"):
        r.unsupported.append("from (source-specific route)")
    for k, v in m.get("attrs", ()):
        if k == "RTA_TABLE":
            r.table = v
        elif k == "RTA_DST":
            r.dst = _ip(v)
            r.present |= bit(RTA_DST)
        elif k == "RTA_PRIORITY":
            r.priority = v
        elif k == "RTA_PREFSRC":
            r.prefsrc = _ip(v)
            r.present |= bit(RTA_PREFSRC)
        elif k == "RTA_GATEWAY":
            r.gateway = _ip(v)
            r.present |= bit(RTA_GATEWAY)
        elif k == "RTA_VIA":
            r.gateway = _ip(v["addr"])
            r.present |= bit(RTA_GATEWAY)
        elif k == "RTA_OIF":
            r.oif = v
            r.present |= bit(RTA_OIF)
        elif k == "RTA_FLOW":
            r.realm = v
            r.present |= bit(RTA_FLOW)
        elif k == "RTA_PREF":
            r.pref = v
            r.present |= bit(RTA_PREF)
        elif k == "RTA_NH_ID":
            r.nh_id = v
            r.present |= bit(RTA_NH_ID)
            r.unsupported.append("nhid (nexthop objects)")
        elif k == "RTA_EXPIRES":
            r.expires = v
            if v:
                r.unsupported.append(f"expires {v}")
        elif k == "RTA_METRICS":
            for mk, mv in v.get("attrs", ()):
                ident = _RTAX_BY_NAME.get(mk)
                if ident == RTAX_CC_ALGO:
                    r.congctl = mv
                    r.unsupported.append(f"congctl {mv}")
                elif ident is not None:
                    r.metrics[ident] = mv
            if r.metrics:
                r.present |= bit(RTA_METRICS)
        elif k == "RTA_MULTIPATH":
            for leg in v:
                gw = _attr(leg, "RTA_GATEWAY")
                if gw is None:
                    via = _attr(leg, "RTA_VIA")
                    gw = via["addr"] if via else None
                if _attr(leg, "RTA_FLOW"):
                    r.unsupported.append("nexthop realms")
                r.nexthops.append(
                    NexthopRequest(_ip(gw), leg.get("oif", 0), leg.get("hops", 0) + 1, leg.get("flags", 0))
                )
            r.present |= bit(RTA_MULTIPATH)
        elif k in ("RTA_ENCAP", "RTA_ENCAP_TYPE", "RTA_SRC", "RTA_IIF", "RTA_NEWDST", "RTA_TTL_PROPAGATE"):
            r.unsupported.append(k)
    return r


def _netns_thread(netns: str | None, fn: Callable[[], object]):
    """Run ``fn`` in a new thread that has entered the named network
    namespace (setns only changes the calling thread's namespace)."""
    if netns is None:
        return fn()
    out: dict = {}

    def work():
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(os.path.join("/run/netns", netns), os.O_RDONLY)
            try:
                if libc.setns(fd, 0x40000000) != 0:  # CLONE_NEWNET
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns({netns}): {os.strerror(err)}")
            finally:
                os.close(fd)
            out["value"] = fn()
        except BaseException as exc:  # re-raised in the caller
            out["error"] = exc

    t = threading.Thread(target=work, name=f"polroute-netns-{netns}")
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def _read_sysctls(netns: str | None, devices: list[str]) -> dict[str, int]:
    def read() -> dict[str, int]:
        out = {}
        for fam, keys in (("ipv4", SYSCTL_V4_KEYS), ("ipv6", SYSCTL_V6_KEYS)):
            for dev in ["all", "default"] + devices:
                for key in keys:
                    try:
                        with open(f"/proc/sys/net/{fam}/conf/{dev}/{key}") as f:
                            out[f"net.{fam}.conf.{dev}.{key}"] = int(f.read().split()[0])
                    except (OSError, ValueError, IndexError):
                        pass
        try:
            with open("/proc/sys/net/ipv4/ip_nonlocal_bind") as f:
                out["net.ipv4.ip_nonlocal_bind"] = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
        return out

    return _netns_thread(netns, read)


def _open_iproute(netns: str | None):
    IPRoute = _pyroute2_iproute()
    if netns is None:
        return IPRoute()
    if not os.path.exists(os.path.join("/run/netns", netns)):
        raise FileNotFoundError(2, f'Cannot open network namespace "{netns}": No such file or directory')
    return IPRoute(netns=netns, flags=0)  # flags=0: never create the namespace


def read_state(
    netns: str | None = None, families: Iterable[int] = (AF_INET, AF_INET6), sysctls: bool = True, reader: str = "c"
) -> KernelState:
    """Dump the current namespace, or the named one (``ip netns`` name):
    links, addresses (both families), the rules and the routes of every table
    of each family in ``families``, the model's sysctls, and whether IPv4's
    local and main tables are still merged (when observable).

    ``reader`` "c" (the default) decodes the dumps in C
    (:mod:`polroute.live.dump`); "pyroute2" is the reference reader the
    tests cross-check it against (it needs pyroute2 and is ~20x slower)."""
    families = tuple(families)
    if reader == "c":
        state = _read_state_c(netns, families)
    elif reader == "pyroute2":
        state = _read_state_pyroute2(netns, families)
    else:
        raise ValueError(f"read_state: unknown reader {reader!r} (c or pyroute2)")
    if sysctls:
        t4 = time.perf_counter()
        state.sysctls = _read_sysctls(netns, [l.name for l in state.links])
        state.timings["sysctls"] = time.perf_counter() - t4
    return state


def _read_state_c(netns: str | None, families: tuple[int, ...]) -> KernelState:
    from polroute.live.dump import LiveDump

    state = KernelState(netns)
    with LiveDump(netns) as live:
        t0 = time.perf_counter()
        state.links = live.links()
        state.addrs = live.addrs()
        t1 = time.perf_counter()
        for fam in families:
            state.rules[fam] = live.rules(fam)
        t2 = time.perf_counter()
        for fam in families:
            state.routes[fam] = live.routes(fam)
        t3 = time.perf_counter()
        if AF_INET in families:
            state.v4_merged = _v4_merged(live.route_table, state)
    state.timings = {"links+addrs": t1 - t0, "rules": t2 - t1, "routes": t3 - t2}
    return state


def _read_state_pyroute2(netns: str | None, families: tuple[int, ...]) -> KernelState:
    state = KernelState(netns)
    ipr = _open_iproute(netns)
    try:
        t0 = time.perf_counter()
        state.links = sorted((_link_from_msg(m) for m in ipr.get_links()), key=lambda l: l.ifindex)
        state.addrs = [_addr_from_msg(m) for m in ipr.get_addr() if m["family"] in (AF_INET, AF_INET6)]
        t1 = time.perf_counter()
        for fam in families:
            state.rules[fam] = [_rule_from_msg(m) for m in ipr.get_rules(family=fam)]
        t2 = time.perf_counter()
        for fam in families:
            state.routes[fam] = [_route_from_msg(m) for m in ipr.route("dump", family=fam)]
        t3 = time.perf_counter()
        if AF_INET in families:
            state.v4_merged = _v4_merged(lambda dst: _pyroute2_table(ipr, dst), state)
        state.timings = {"links+addrs": t1 - t0, "rules": t2 - t1, "routes": t3 - t2}
    finally:
        ipr.close()
    return state


def _pyroute2_table(ipr, dst) -> int | None:
    for msg in ipr.route("get", dst=str(dst)):
        return _attr(msg, "RTA_TABLE", msg.get("table"))
    return None


def _is_default_rule(r: RuleRequest) -> bool:
    defaults = _DEFAULT_RULES.get(r.family, ())
    return any(_matches_default(r, pref, table) for pref, table in defaults)


def _v4_merged(route_table: Callable[[IPAddress], int | None], state: KernelState) -> bool | None:
    """IPv4 keeps local and main in one trie until the first rule change; the
    dump cannot tell, a lookup can: a local address answers from table 254
    while merged, 255 after.  None when there is no local route to ask for.
    ``route_table(dst)``: the table the kernel reports for ``route get dst``."""
    rules = state.rules.get(AF_INET, [])
    if [(_rule_sig(r)) for r in rules] != [(p, t) for p, t in _DEFAULT_RULES[AF_INET]] or not all(
        _is_default_rule(r) for r in rules
    ):
        return False  # rules changed: unmerged for sure
    for r in state.routes.get(AF_INET, []):
        if r.type == RTN_LOCAL and r.table == RT_TABLE_LOCAL and r.dst is not None and r.dst_len == 32:
            try:
                tb = route_table(r.dst)
            except Exception:  # noqa: BLE001 - best effort
                return None
            return None if tb is None else tb != RT_TABLE_LOCAL
    return None


# ---------------------------------------------------------------------------
# identity keys (device names, not ifindexes: the model numbers its own links)
# ---------------------------------------------------------------------------


def _a(x):
    """An address as a key part (the ipaddress object itself: hashing it is
    cheap, printing it is not)."""
    return x


def route_key(r: RouteRequest, ifname: Callable[[int], str], state_flags: bool = True) -> tuple:
    """Everything ``ip route show`` distinguishes (plus pref and metrics), with
    device names.  ``state_flags`` False ignores dead/linkdown (they follow
    from link state and sysctls, not from the route's configuration)."""
    fmask = 0xFF if state_flags else RTNH_F_ONLINK
    dst = _a(r.dst) if r.dst_len and r.dst is not None else None
    if r.nexthops:
        legs = tuple(
            (_a(l.gateway), ifname(l.ifindex) if l.ifindex else None, l.weight, l.flags & fmask) for l in r.nexthops
        )
        flags = r.rtm_flags & fmask & ~(RTNH_F_DEAD | RTNH_F_LINKDOWN)
    else:
        legs = ((_a(r.gateway), ifname(r.oif) if r.oif else None, 1, 0),)
        flags = r.rtm_flags & fmask
    metrics = tuple(sorted((k, v) for k, v in r.metrics.items()))
    return (
        r.family,
        r.table,
        r.type,
        dst,
        r.dst_len,
        r.tos,
        r.priority & 0xFFFFFFFF,
        r.protocol,
        r.scope,
        _a(r.prefsrc),
        legs,
        flags,
        metrics,
        r.realm,
        r.pref if r.family == AF_INET6 else 0,
        r.nh_id,
    )


def rule_key(r: RuleRequest) -> tuple:
    """Everything a dumped rule carries (as ``ip rule show`` and the kernel's
    own comparisons see it)."""
    return (
        r.family,
        r.priority & 0xFFFFFFFF,
        r.flags,
        r.src_len,
        _a(r.src) if r.src_len else None,
        r.dst_len,
        _a(r.dst) if r.dst_len else None,
        r.tos,
        r.fwmark & 0xFFFFFFFF,
        r.fwmask & 0xFFFFFFFF,
        r.iifname,
        r.oifname,
        bool(r.l3mdev),
        (r.uid_start & 0xFFFFFFFF, r.uid_end & 0xFFFFFFFF),
        r.ip_proto,
        (r.sport_start, r.sport_end),
        (r.dport_start, r.dport_end),
        r.tun_id,
        r.realm,
        r.action,
        r.table & 0xFFFFFFFF,
        r.goto_target if r.action == FR_ACT_GOTO else 0,
        _s32(r.suppress_prefixlen),
        _s32(r.suppress_ifgroup),
        r.protocol,
    )


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


# ---------------------------------------------------------------------------
# text
# ---------------------------------------------------------------------------

_DEFAULT_RULES = {
    AF_INET: ((0, RT_TABLE_LOCAL), (32766, RT_TABLE_MAIN), (32767, RT_TABLE_DEFAULT)),
    AF_INET6: ((0, RT_TABLE_LOCAL), (32766, RT_TABLE_MAIN)),
}


def _rule_sig(r: RuleRequest) -> tuple:
    return (r.priority & 0xFFFFFFFF, r.table)


def _matches_default(r: RuleRequest, pref: int, table: int) -> bool:
    return (
        r.priority == pref
        and r.table == table
        and r.action == FR_ACT_TO_TBL
        and r.protocol == RTPROT_KERNEL
        and rule_key(r)[2:19] == rule_key(RuleRequest(RTM_NEWRULE, 0, family=r.family))[2:19]
        and _s32(r.suppress_prefixlen) == -1
        and _s32(r.suppress_ifgroup) == -1
        and not r.l3mdev
    )


def _ntop(addr: IPAddress) -> str:
    if addr.version == 4:
        return socket.inet_ntoa(addr._ip.to_bytes(4, "big"))  # str(addr), in C
    return socket.inet_ntop(socket.AF_INET6, addr.packed)


def _prefix(fam: int, addr: IPAddress | None, plen: int) -> str:
    if addr is None:
        addr = ipaddress.ip_address(0 if fam == AF_INET else "::")
    return f"{_ntop(addr)}/{plen}"


class _Names:
    """Protocol and scope words.  iproute2 6.1's rtnl_rtprot_a2n (and the
    scope one) cache the last *name* but overwrite the cached value when they
    parse a *number*: ``proto 99`` then ``proto static`` sends 99.  So a text
    uses names only when every value it needs has a compiled-in name, else
    numbers throughout."""

    def __init__(self, protos: set[int], scopes: set[int]):
        self.proto_names = all(p in _PROTO_NAMES for p in protos)
        self.scope_names = all(s in _SCOPE_NAMES for s in scopes)

    def proto(self, p: int) -> str:
        return _PROTO_NAMES[p] if self.proto_names else str(p)

    def scope(self, s: int) -> str:
        return _SCOPE_NAMES[s] if self.scope_names else str(s)

    @staticmethod
    def table(t: int) -> str:
        return _TABLE_NAMES.get(t, str(t))


_HELPER_METRIC = 4294967295  # a metric no restored route is likely to use
_THROWAWAY_V4 = "198.51.100.255/32"


def names_table(t: int) -> str:
    return _TABLE_NAMES.get(t, str(t))


def _group_key(r: RouteRequest) -> tuple:
    """Routes the kernel keeps in insertion order: same table and prefix,
    and tos and metric (IPv4) / metric (IPv6)."""
    dst = _a(r.dst) if r.dst_len else None
    return (r.table, dst, r.dst_len, r.tos, r.priority & 0xFFFFFFFF)


def _gkey(r: RouteRequest) -> tuple:
    """_group_key with the destination as its int: the builder's dict key
    (an ipaddress object hashes through hex() in Python, once per dict
    operation; routes of one family only are compared)."""
    dst = r.dst
    return (r.table, dst._ip if r.dst_len and dst is not None else None, r.dst_len, r.tos, r.priority & 0xFFFFFFFF)


def _key_sig(r: RouteRequest) -> tuple:
    """Parts of route_key (table, dst_len, tos, metric) that are cheap to get:
    routes whose signatures differ cannot have equal keys."""
    return (r.table, r.dst_len, r.tos, r.priority & 0xFFFFFFFF)


_LOCAL_TABLE_TYPES = frozenset((RTN_LOCAL, RTN_BROADCAST, RTN_NAT, RTN_ANYCAST))


def _default_route_table(rtype: int) -> int:
    return RT_TABLE_LOCAL if rtype in _LOCAL_TABLE_TYPES else RT_TABLE_MAIN


def _default_route_scope(r: RouteRequest) -> int:
    """The scope `ip route add` picks when none is written (IPv4)."""
    if r.type in (RTN_LOCAL, RTN_NAT):
        return RT_SCOPE_HOST
    if r.type in (RTN_BROADCAST, RTN_MULTICAST, RTN_ANYCAST):
        return RT_SCOPE_LINK
    if r.type in (RTN_UNICAST, RTN_UNSPEC) and r.gateway is None and not r.nexthops and not r.nh_id:
        return RT_SCOPE_LINK
    return RT_SCOPE_UNIVERSE


def route_line(r: RouteRequest, verb: str, ifname: Callable[[int], str], names: _Names) -> str:
    """``route VERB ...`` recreating (or, with ``del``, naming exactly) ``r``."""
    fam = r.family
    rtype = r.type
    if rtype == RTN_UNICAST:
        w = ["route", verb]
    else:
        w = ["route", verb, _RTN_NAMES[rtype] if 0 <= rtype < len(_RTN_NAMES) else str(rtype)]
    if fam == AF_INET and not r.dst_len:
        w.append("default")
    elif fam == AF_INET and r.dst is not None:
        w.append(f"{inet_ntoa(r.dst._ip.to_bytes(4, 'big'))}/{r.dst_len}")  # _prefix, inlined
    else:
        w.append(_prefix(fam, r.dst, r.dst_len))
    if r.tos:
        w += ["tos", f"{r.tos:#x}"]
    table = r.table
    if verb == "del" or table != (RT_TABLE_LOCAL if rtype in _LOCAL_TABLE_TYPES else RT_TABLE_MAIN):
        w += ["table", _TABLE_NAMES.get(table) or str(table)]
    if not r.nexthops:
        gw = r.gateway
        if gw is not None:
            if gw.version == 4 and fam == AF_INET:
                w += ["via", inet_ntoa(gw._ip.to_bytes(4, "big"))]
            else:
                gfam = AF_INET if gw.version == 4 else AF_INET6
                w += ["via"] + ([] if gfam == fam else ["inet" if gfam == AF_INET else "inet6"]) + [_ntop(gw)]
        if r.oif:
            w += ["dev", ifname(r.oif)]
        if r.rtm_flags & RTNH_F_ONLINK:
            w.append("onlink")
    if r.prefsrc is not None:
        w += ["src", _ntop(r.prefsrc)]
    if fam == AF_INET6 or r.priority:
        w += ["metric", str(r.priority & 0xFFFFFFFF)]
    if r.protocol != RTPROT_BOOT:
        w += ["proto", names.proto(r.protocol)]
    if fam == AF_INET:
        if r.scope != _default_route_scope(r) or (verb == "del" and r.scope):
            w += ["scope", names.scope(r.scope)]
    elif r.scope != RT_SCOPE_UNIVERSE:
        w += ["scope", names.scope(r.scope)]
    if r.realm:
        w += ["realms", str(r.realm)]
    if verb != "del" and r.metrics:
        lock = r.metrics.get(RTAX_LOCK, 0)
        for k in sorted(r.metrics):
            if k == RTAX_LOCK or k not in _MX_WORDS:
                continue
            v = r.metrics[k] & 0xFFFFFFFF
            if k == RTAX_FEATURES:
                if v & 1:
                    w += ["features", "ecn"]
                continue
            if k == RTAX_RTO_MIN:  # ip always locks rto_min
                w += ["rto_min", str(v)]
                continue
            w.append(_MX_WORDS[k])
            if lock & (1 << k) and k not in _MX_NO_LOCK:
                w.append("lock")
            w.append(str(v))
    if verb != "del" and fam == AF_INET6 and r.pref in (1, 3):
        w += ["pref", "high" if r.pref == 1 else "low"]
    for leg in r.nexthops:
        w.append("nexthop")
        if leg.gateway is not None:
            gfam = AF_INET if leg.gateway.version == 4 else AF_INET6
            w += ["via"] + ([] if gfam == fam else ["inet" if gfam == AF_INET else "inet6"]) + [_ntop(leg.gateway)]
        if leg.ifindex:
            w += ["dev", ifname(leg.ifindex)]
        if leg.weight != 1:
            w += ["weight", str(leg.weight)]
        if leg.flags & RTNH_F_ONLINK:
            w.append("onlink")
    return " ".join(w)


# ---- the request a route line makes, without parsing the line ---------------
# The builder applies every line it writes to a model.  For `route
# add/append/prepend` lines it applies the request that `route_line` encodes
# instead of parsing the text back (the parse was ~70 % of a snapshot's time).
# route_line_request gives exactly what iproute.parse_command(route_line(...))
# gives - tests/kernel/test_snapshot_fast.py checks that field by field on every
# route line of random snapshots - and None for any shape it does not cover
# (the caller then parses the line).
_VERB_FLAGS = {"add": NLM_F_CREATE | NLM_F_EXCL, "prepend": NLM_F_CREATE, "append": NLM_F_CREATE | NLM_F_APPEND}
# types route_line writes with a word rtntype_a2n reads back (unicast: no word)
_FAST_TYPES = frozenset(
    (
        RTN_UNICAST,
        RTN_LOCAL,
        RTN_BROADCAST,
        RTN_ANYCAST,
        RTN_MULTICAST,
        RTN_BLACKHOLE,
        RTN_UNREACHABLE,
        RTN_PROHIBIT,
        RTN_THROW,
    )
)
# metrics written as `WORD [lock] VALUE` and read back as the raw value, with max
_FAST_METRICS = {
    RTAX_MTU: 0xFFFFFFFF,
    RTAX_WINDOW: 0xFFFFFFFF,
    RTAX_SSTHRESH: 0xFFFFFFFF,
    RTAX_CWND: 0xFFFFFFFF,
    RTAX_ADVMSS: 0xFFFFFFFF,
    RTAX_REORDERING: 0xFFFFFFFF,
    RTAX_HOPLIMIT: 255,
    RTAX_INITCWND: 0xFFFFFFFF,
    RTAX_INITRWND: 0xFFFFFFFF,
}


def route_line_request(
    r: RouteRequest, verb: str, ifindex: Callable[[int], int], v6_batch: bool = False
) -> RouteRequest | None:
    """The RouteRequest ``ip`` sends for ``route_line(r, verb, ...)`` (verb add,
    append or prepend), or None when the line's shape is not covered here.
    ``ifindex(source_ifindex)``: the model's ifindex of the device the line
    names (0: unknown there - not covered)."""
    flags = _VERB_FLAGS.get(verb)
    fam = r.family
    if flags is None or r.type not in _FAST_TYPES or r.nh_id or (v6_batch and fam != AF_INET6):
        return None
    req = RouteRequest(RTM_NEWROUTE, flags, fam, r.dst_len, r.tos, r.protocol, r.scope, r.type, r.table)
    present = 0
    if fam == AF_INET6 or r.dst_len:
        # "default" (IPv4 /0) sends no RTA_DST; any written prefix does
        req.dst = r.dst if r.dst is not None else _ZERO[fam]
        present = _B_DST
    elif fam != AF_INET:
        return None
    if r.table >= 256:
        present |= _B_TABLE
    if r.prefsrc is not None:
        if r.prefsrc.version != _VERSION[fam]:
            return None
        req.prefsrc = r.prefsrc
        present |= _B_PREFSRC
    if fam == AF_INET6 or r.priority:
        req.priority = r.priority & 0xFFFFFFFF
        present |= _B_PRIORITY
    if r.realm:
        req.realm = r.realm & 0xFFFFFFFF
        present |= _B_FLOW
    if fam == AF_INET6 and r.pref in (1, 3):
        req.pref = r.pref
        present |= _B_PREF
    if r.metrics:
        mx: dict[int, int] = {}
        lock = r.metrics.get(RTAX_LOCK, 0)
        mxlock = 0
        for k, v in r.metrics.items():
            if k == RTAX_LOCK or k not in _MX_WORDS:
                continue
            v &= 0xFFFFFFFF
            if k == RTAX_FEATURES:
                if v & 1:
                    mx[k] = 1
                continue
            if k in (RTAX_QUICKACK, RTAX_FASTOPEN_NO_COOKIE):
                if v > 1:
                    return None
                mx[k] = v
                continue
            top = _FAST_METRICS.get(k)
            if top is None or v > top:
                return None  # rtt, rttvar, rto_min: units; not covered
            mx[k] = v
            if lock & (1 << k):
                mxlock |= 1 << k
        if mx:
            if mxlock:
                mx[RTAX_LOCK] = mxlock
            req.metrics = mx
            present |= _B_METRICS
    if r.nexthops:
        legs = []
        for leg in r.nexthops:
            if not 1 <= leg.weight <= 256:
                return None
            gw = leg.gateway
            if gw is not None and fam == AF_INET and not r.dst_len and gw.version != 4:
                return None  # "default via inet6": the route's family would follow
            oif = 0
            if leg.ifindex:
                oif = ifindex(leg.ifindex)
                if not oif:
                    return None
            legs.append(NexthopRequest(gw, oif, leg.weight, leg.flags & RTNH_F_ONLINK))
        req.nexthops = legs
        present |= _B_MULTIPATH
    else:
        gw = r.gateway
        if gw is not None:
            if gw.version != _VERSION[fam]:
                return None  # RTA_VIA (and "default via inet6"): not covered
            req.gateway = gw
            present |= _B_GATEWAY
        if r.oif:
            oif = ifindex(r.oif)
            if not oif:
                return None
            req.oif = oif
            present |= _B_OIF
        req.rtm_flags = r.rtm_flags & RTNH_F_ONLINK
    req.present = present
    return req


# pr_route_req (csrc/polroute.h) as bytes, for requests without nexthops or
# metrics: the 8 u8 fields, table .. realm, then nh_count, nh, metrics (zero),
# dst, prefsrc, gw.  Checked against the cffi layout on first use.
_ROUTE_REQ = struct.Struct("=8B7I88x16s16s16s4x")
_ROUTE_REQ_OK: bool | None = None


def _route_req_layout_ok() -> bool:
    global _ROUTE_REQ_OK
    if _ROUTE_REQ_OK is None:
        from polroute._core.binding import ffi

        off = lambda f: ffi.offsetof("pr_route_req", f)  # noqa: E731
        _ROUTE_REQ_OK = (
            ffi.sizeof("pr_route_req") == _ROUTE_REQ.size
            and (off("pref"), off("table"), off("realm"), off("nh_count")) == (7, 8, 32, 36)
            and (off("dst"), off("prefsrc"), off("gw")) == (124, 140, 156)
        )
    return _ROUTE_REQ_OK


def route_line_packed(
    r: RouteRequest, verb: str, ifindex: Callable[[int], int], v6_batch: bool = False
) -> bytes | None:
    """route_line_request(...) already as the bytes of its ``pr_route_req``
    (what convert.route_to_c makes of it), for the shapes without nexthops or
    metrics; None otherwise (use route_line_request)."""
    fam = r.family
    rtype = r.type
    if (
        r.nexthops
        or r.metrics
        or r.nh_id
        or verb not in _VERB_FLAGS
        or rtype not in _FAST_TYPES
        or (v6_batch and fam != AF_INET6)
        or not _route_req_layout_ok()
    ):
        return None
    dst = r.dst
    present = 0
    if fam == AF_INET6 or r.dst_len:
        present = _B_DST
        dst_b = dst.packed if dst is not None else b""
    elif fam == AF_INET:
        dst_b = b""
    else:
        return None
    table = r.table
    if table >= 256:
        present |= _B_TABLE
    src = r.prefsrc
    src_b = b""
    if src is not None:
        if src.version != _VERSION[fam]:
            return None
        src_b = src.packed
        present |= _B_PREFSRC
    priority = 0
    if fam == AF_INET6 or r.priority:
        priority = r.priority & 0xFFFFFFFF
        present |= _B_PRIORITY
    realm = 0
    if r.realm:
        realm = r.realm & 0xFFFFFFFF
        present |= _B_FLOW
    pref = 0
    if fam == AF_INET6 and r.pref in (1, 3):
        pref = r.pref
        present |= _B_PREF
    gw = r.gateway
    gw_b, gw_fam = b"", 0
    if gw is not None:
        if gw.version != _VERSION[fam]:
            return None
        gw_b, gw_fam = gw.packed, fam
        present |= _B_GATEWAY
    oif = 0
    if r.oif:
        oif = ifindex(r.oif)
        if not oif:
            return None
        present |= _B_OIF
    return _ROUTE_REQ.pack(
        fam,
        r.dst_len,
        r.tos,
        r.protocol,
        r.scope,
        rtype,
        gw_fam,
        pref,
        table,
        r.rtm_flags & RTNH_F_ONLINK,
        present,
        priority,
        oif,
        0,
        realm,
        dst_b,
        src_b,
        gw_b,
    )


_ZERO = {AF_INET: ipaddress.IPv4Address(0), AF_INET6: ipaddress.IPv6Address(0)}
_VERSION = {AF_INET: 4, AF_INET6: 6}
_B_DST, _B_TABLE, _B_PREFSRC, _B_PRIORITY = bit(RTA_DST), bit(RTA_TABLE), bit(RTA_PREFSRC), bit(RTA_PRIORITY)
_B_FLOW, _B_PREF, _B_METRICS, _B_MULTIPATH = bit(RTA_FLOW), bit(RTA_PREF), bit(RTA_METRICS), bit(RTA_MULTIPATH)
_B_GATEWAY, _B_OIF = bit(RTA_GATEWAY), bit(RTA_OIF)


def _route_unrepresentable(r: KRoute) -> list[str]:
    if (
        not r.metrics
        and not getattr(r, "unsupported", None)
        and (r.priority or r.family != AF_INET6 or r.type in (RTN_LOCAL, RTN_ANYCAST))
    ):
        return []  # the common case, without building anything
    out = list(getattr(r, "unsupported", []))
    mx = r.metrics
    if mx.get(RTAX_FEATURES, 0) & ~1:
        out.append(f"features {mx[RTAX_FEATURES]:#x}")
    lock = mx.get(RTAX_LOCK, 0)
    for k in _MX_NO_LOCK:
        if lock & (1 << k):
            out.append(f"lock on metric {k}")
    if RTAX_RTO_MIN in mx and not lock & (1 << RTAX_RTO_MIN):
        out.append("unlocked rto_min")
    if r.family == AF_INET6 and r.priority == 0 and r.type not in (RTN_LOCAL, RTN_ANYCAST):
        out.append("IPv6 metric 0 (the kernel makes a user route's 0 1024)")
    return out


def rule_line(r: RuleRequest, verb: str, names: _Names) -> str:
    """``rule VERB pref N ...`` recreating ``r`` (every FRA_* field iproute2 6.1 can write)."""
    fam = r.family
    w = ["rule", verb, "pref", str(r.priority & 0xFFFFFFFF)]
    if r.flags & FIB_RULE_INVERT:
        w.append("not")
    if r.src_len:
        w += ["from", _prefix(fam, r.src, r.src_len)]
    if r.dst_len:
        w += ["to", _prefix(fam, r.dst, r.dst_len)]
    if r.tos:
        w += ["tos", f"{r.tos:#x}"]
    if r.fwmark or r.fwmask:
        w += ["fwmark", f"{r.fwmark & 0xFFFFFFFF:#x}/{r.fwmask & 0xFFFFFFFF:#x}"]
    if r.iifname:
        w += ["iif", r.iifname]
    if r.oifname:
        w += ["oif", r.oifname]
    if (r.uid_start & 0xFFFFFFFF, r.uid_end & 0xFFFFFFFF) != (0, 0xFFFFFFFF):
        w += ["uidrange", f"{r.uid_start & 0xFFFFFFFF}-{r.uid_end & 0xFFFFFFFF}"]
    if r.ip_proto:
        w += ["ipproto", str(r.ip_proto)]
    for word, start, end in (("sport", r.sport_start, r.sport_end), ("dport", r.dport_start, r.dport_end)):
        if start or end:
            w += [word, f"{start}-{end}"]
    if r.tun_id:
        w += ["tun_id", str(r.tun_id)]
    if r.realm:
        w += ["realms", str(r.realm)]
    if r.l3mdev:
        w.append("l3mdev")
    elif r.action == FR_ACT_TO_TBL:
        w += ["lookup", names.table(r.table & 0xFFFFFFFF)]
    elif r.action == FR_ACT_GOTO:
        w += ["goto", str(r.goto_target)]
    elif r.action == FR_ACT_NOP:
        w.append("nop")
    else:
        w.append(_RTN_NAMES[r.action] if 0 <= r.action < len(_RTN_NAMES) else str(r.action))
    if _s32(r.suppress_prefixlen) != -1:
        w += ["suppress_prefixlength", str(_s32(r.suppress_prefixlen))]
    if _s32(r.suppress_ifgroup) != -1:
        w += ["suppress_ifgroup", str(_s32(r.suppress_ifgroup))]
    if r.protocol:
        w += ["protocol", names.proto(r.protocol)]
    return " ".join(w)


def _addr_line(a: KAddr, state: KernelState, verb: str = "add") -> str:
    dev = state.ifname(a.ifindex)
    w = ["addr", verb, f"{_ntop(a.local)}/{a.prefixlen}", "dev", dev]
    if verb == "del":
        return " ".join(w)
    if a.family == AF_INET:
        if a.broadcast is not None:
            w += ["brd", str(a.broadcast)]
        default_scope = RT_SCOPE_HOST if a.local.packed[0] == 127 else RT_SCOPE_UNIVERSE
        if a.scope != default_scope:
            w += ["scope", _SCOPE_NAMES.get(a.scope, str(a.scope))]
        if a.label and a.label != dev:
            w += ["label", a.label]
    if a.metric:
        w += ["metric", str(a.metric)]
    if a.flags & IFA_F_NOPREFIXROUTE:
        w.append("noprefixroute")
    if a.family == AF_INET6:
        w.append("nodad")
        for flag, word in (
            (IFA_F_HOMEADDRESS, "home"),
            (IFA_F_MANAGETEMPADDR, "mngtmpaddr"),
            (IFA_F_OPTIMISTIC, "optimistic"),
        ):
            if a.flags & flag:
                w.append(word)
    if a.flags & IFA_F_MCAUTOJOIN:
        w.append("autojoin")
    return " ".join(w)


def _interleave(
    chains: list[list[tuple[KLink, KAddr]]], local_order: dict[str, list[int]]
) -> list[tuple[KLink, KAddr]]:
    """Merge per-link address lists keeping each list's order and, for an
    address on several links, the order of its local routes (a stable
    topological sort; the plain concatenation when the constraints clash)."""
    import heapq

    flat = [item for chain in chains for item in chain]
    index = {id(item): i for i, item in enumerate(flat)}
    succ: dict[int, set[int]] = {i: set() for i in range(len(flat))}
    indeg = [0] * len(flat)

    def edge(a: int, b: int) -> None:
        if b not in succ[a]:
            succ[a].add(b)
            indeg[b] += 1

    for chain in chains:
        for x, y in zip(chain, chain[1:]):
            edge(index[id(x)], index[id(y)])
    by_value: dict[str, dict[int, int]] = {}
    for i, (link, a) in enumerate(flat):
        by_value.setdefault(str(a.local), {})[link.ifindex] = i
    for value, devs in by_value.items():
        order = [d for d in local_order.get(value, []) if d in devs]
        for d1, d2 in zip(order, order[1:]):
            edge(devs[d1], devs[d2])
    ready = [i for i in range(len(flat)) if indeg[i] == 0]
    heapq.heapify(ready)
    out = []
    while ready:
        i = heapq.heappop(ready)
        out.append(flat[i])
        for j in succ[i]:
            indeg[j] -= 1
            if indeg[j] == 0:
                heapq.heappush(ready, j)
    return out if len(out) == len(flat) else flat


@dataclass
class _Line:
    text: str
    family: int = 0  # 0: links (both), AF_INET or AF_INET6
    v6_batch: bool = False  # must run in `ip -6 -batch` (IPv6 rules) or after it
    comment: bool = False
    route: tuple | None = None  # (KRoute, verb) when text is route_line(KRoute, verb)


# The fast path (apply route_line_request instead of parsing route lines);
# False: parse every line (the reference the tests compare the fast path with).
FAST_ROUTES = True
# Tests: also parse each route line and compare with the fast request (raises
# AssertionError on a difference); counts in FAST_CHECK_COUNTS.
FAST_CHECK = False
FAST_CHECK_COUNTS = {"fast": 0, "fallback": 0}


def _check_route_request(
    model: Policy,
    tables: RtTables,
    text: str,
    req: RouteRequest | None,
    v6_batch: bool,
    packed: bytes | None = None,
    full: RouteRequest | None = None,
) -> None:
    """``packed``: route_line_packed's bytes, then ``full`` (route_line_request)
    is checked as req and the bytes against route_to_c of the parsed request."""
    from polroute._core.binding import ffi
    from polroute._core.codec import route_to_c
    from polroute.iproute2.batch import parse_command
    from polroute.iproute2.lexer import split_args

    if packed is not None:
        _check_route_request(model, tables, text, full, v6_batch)
        cmd = parse_command(split_args(text), model, tables, AF_INET6 if v6_batch else 0)
        want, _ = route_to_c(cmd.requests[0][1])
        assert bytes(ffi.buffer(want)) == packed, f"{text!r}: packed request differs from route_to_c of the parsed one"
        FAST_CHECK_COUNTS["packed"] = FAST_CHECK_COUNTS.get("packed", 0) + 1
        return
    try:
        cmd = parse_command(split_args(text), model, tables, AF_INET6 if v6_batch else 0)
    except (ParseError, PolicyError) as e:
        assert req is None, f"{text!r}: parse refuses it ({e}) but the fast request is {req}"
        FAST_CHECK_COUNTS["fallback"] += 1
        return
    if req is None:
        FAST_CHECK_COUNTS["fallback"] += 1
        return
    assert len(cmd.requests) == 1 and cmd.requests[0][0] == "route", (text, cmd.requests)
    want = cmd.requests[0][1]
    diff = {k: (v, getattr(req, k)) for k, v in vars(want).items() if getattr(req, k) != v}
    assert not diff, f"{text!r}: fast request differs from the parsed one (parsed, fast): {diff}"
    assert type(want.dst) is type(req.dst) and type(want.gateway) is type(req.gateway), text
    FAST_CHECK_COUNTS["fast"] += 1


class _Builder:
    """Builds the lines, checking each on a model namespace as it goes."""

    def __init__(self, state: KernelState, families: tuple[int, ...]):
        self.state = state
        self.families = families
        self.lines: list[_Line] = []
        self.model = Policy()
        self.tables = RtTables()  # iproute2's built-in names: what the text uses
        protos = {r.protocol for f in families for r in state.routes.get(f, [])}
        protos |= {r.protocol for f in families for r in state.rules.get(f, []) if r.protocol}
        scopes = {r.scope for f in families for r in state.routes.get(f, [])}
        self.names = _Names(protos, scopes)
        self.model_names: dict[int, str] = {}
        self._src_names = {l.ifindex: l.name for l in state.links}
        self._model_index: dict[str, int] = {}
        self._index_for: dict | None = None
        self._plans: dict[int, tuple] = {}
        self.spare: tuple[str, str] | None = None
        self.early: set[tuple] = set()  # IPv4 gateway groups to add before the rules
        self.needs_early: set[tuple] = set()
        self.temp_up: list[KLink] = []
        self.late6: set[int] = set()

    # ---- helpers ------------------------------------------------------------
    def ifname(self, ifindex: int) -> str:
        name = self._src_names.get(ifindex)
        return name if name is not None else self.state.ifname(ifindex)

    def _model_ifindex(self, src_ifindex: int) -> int:
        """The model's ifindex of the source device's name (0: none)."""
        if self._index_for is not self.model_names or not self.model_names:
            links = self.model.links()
            self.model_names = {l.ifindex: l.name for l in links}
            self._model_index = {l.name: l.ifindex for l in links}
            self._index_for = self.model_names
        return self._model_index.get(self.ifname(src_ifindex), 0)

    def emit_route_line(self, r: KRoute, verb: str, text: str, fam: int, v6_batch: bool) -> bool:
        """emit(text) for ``text = route_line(r, verb, ...)``, applying the
        request it makes directly when route_line_request covers it."""
        packed = req = None
        if FAST_ROUTES:
            packed = route_line_packed(r, verb, self._model_ifindex, v6_batch)
            if packed is None:
                req = route_line_request(r, verb, self._model_ifindex, v6_batch)
        if FAST_CHECK:
            _check_route_request(
                self.model,
                self.tables,
                text,
                req,
                v6_batch,
                packed,
                route_line_request(r, verb, self._model_ifindex, v6_batch),
            )
        if req is None and packed is None:
            if not self.emit(text, fam, v6_batch):
                return False
        else:
            try:
                if packed is not None:
                    self.model.route_packed(RTM_NEWROUTE, _VERB_FLAGS[verb], packed)
                else:
                    self.model.route(req)
            except PolicyError as e:
                self.last_error = e.iproute2_text()
                return False
            self.lines.append(_Line(text, fam, v6_batch))
        self.lines[-1].route = (r, verb)
        return True

    def model_ifname(self, ifindex: int) -> str:
        name = self.model_names.get(ifindex)
        if name is None:
            self.model_names = {l.ifindex: l.name for l in self.model.links()}
            name = self.model_names.get(ifindex, f"if{ifindex}")
        return name

    def comment(self, text: str, family: int = 0, v6_batch: bool = False) -> None:
        self.lines.append(_Line("# " + text, family, v6_batch, comment=True))

    def emit(self, text: str, family: int = 0, v6_batch: bool = False, check: bool = True) -> bool:
        """Append ``text`` if the model accepts it; otherwise return False
        (nothing appended).  ``check`` False appends without asking."""
        if check:
            try:
                apply_line(self.model, text, self.tables, family=AF_INET6 if v6_batch else 0)
            except (ParseError, PolicyError) as e:
                self.last_error = str(e) if isinstance(e, ParseError) else e.iproute2_text()
                return False
            self.model_names = {}
        self.lines.append(_Line(text, family, v6_batch))
        return True

    def emit_or_comment(self, text: str, family: int = 0, v6_batch: bool = False) -> bool:
        if self.emit(text, family, v6_batch):
            return True
        self.comment(f"not restorable ({' '.join(self.last_error.split())}): {text}", family, v6_batch)
        return False

    # ---- 1. links -----------------------------------------------------------
    def links(self) -> None:
        st = self.state
        done: set[int] = set()
        for link in st.links:
            if link.kind == "loopback" or link.ifindex in done:
                continue
            if link.kind == "veth":
                peer = st.link_by_index(link.peer) if link.peer else None
                if peer is not None and peer.kind == "veth":
                    # `link add A type veth peer name B` registers B first: B gets
                    # the lower ifindex, as `link` (the lower one) has here
                    self.emit_or_comment(f"link add {peer.name} type veth peer name {link.name}")
                    done.update((link.ifindex, peer.ifindex))
                    continue
                other = f"prpeer{link.ifindex}"
                self.comment(f"{link.name}'s veth peer is in another namespace; it is recreated here as {other}")
                self.emit_or_comment(f"link add {other} type veth peer name {link.name}")
            elif link.kind in ("bridge", "ifb"):
                self.emit_or_comment(f"link add {link.name} type {link.kind}")
            elif link.kind in ("tun", "tap"):
                self.emit_or_comment(f"tuntap add {link.name} mode {link.kind}")
            elif link.info_kind:
                self.emit_or_comment(f"link add {link.name} type {link.info_kind}")
            else:
                self.comment(f"{link.name}: a device `ip link add` cannot make (no link kind); it must exist already")
            done.add(link.ifindex)
        for link in st.links:
            if link.group and self.model.has_link(link.name):
                self.emit_or_comment(f"link set dev {link.name} group {link.group}")
        for link in st.links:
            if link.master:
                self.comment(
                    f"not restorable (no `master` in the model): link set dev "
                    f"{link.name} master {st.ifname(link.master)}"
                )
        for link in st.links:
            if link.kind != "loopback" and self.model.has_link(link.name):
                self.emit_or_comment(f"link set {link.name} addrgenmode none")

    # ---- 2. addresses and link state -----------------------------------------
    def _auto_lo(self, a: KAddr) -> bool:
        """127.0.0.1/8 and ::1/128 on lo are made by `link set lo up`."""
        lo = self.state.link_by_index(a.ifindex)
        if lo is None or lo.kind != "loopback" or not lo.up:
            return False
        if a.family == AF_INET:
            return (
                (str(a.local), a.prefixlen, a.scope, a.flags & ~0x80) == ("127.0.0.1", 8, RT_SCOPE_HOST, 0)
                and a.label in ("", lo.name)
                and a.broadcast is None
                and not a.metric
            )
        return (str(a.local), a.prefixlen) == ("::1", 128)

    def addresses(self) -> None:
        """Every link's addresses, each link's in the order that recreates the
        kernel's list, the links interleaved so that an address that is on
        several devices is added to them in the order of its ``local`` routes
        (the kernel appends one per address as it is added, and the newest
        address of a value is the one ``__ip_dev_find`` sees first)."""
        for fam in self.families:
            chains = []
            for link in self.state.links:
                if not self.model.has_link(link.name) or (
                    fam == AF_INET6 and link.ifindex in self.late6 and link in self.temp_up
                ):
                    continue
                items = self._addr_items(link, fam)
                if fam == AF_INET6 and link.ifindex in self.late6:
                    items = items[:-1]  # the newest comes after the link is up
                chains.append(items)
            for link, a in _interleave(chains, self._local_route_order(fam)):
                self._emit_addr(link, a)

    def _local_route_order(self, fam: int) -> dict[str, list[int]]:
        host = 32 if fam == AF_INET else 128
        out: dict[str, list[int]] = {}
        for r in self.state.routes.get(fam, []):
            if (
                r.type == RTN_LOCAL
                and r.table == RT_TABLE_LOCAL
                and r.dst_len == host
                and r.protocol == RTPROT_KERNEL
                and r.dst is not None
                and r.oif
            ):
                out.setdefault(str(r.dst), []).append(r.oif)
        return out

    def _addr_items(self, link: KLink, fam: int) -> list[tuple[KLink, KAddr]]:
        mine = [a for a in self.state.addrs if a.ifindex == link.ifindex and a.family == fam]
        if fam == AF_INET6:
            # the kernel keeps a device's IPv6 addresses sorted by scope,
            # newest first within a scope: adding oldest first recreates it
            mine = list(reversed(mine))
        return [(link, a) for a in mine if not self._auto_lo(a)]

    def _emit_addr(self, link: KLink, a: KAddr, v6_batch: bool = False) -> None:
        fam = a.family
        if a.peer is not None:
            self.comment(
                f"not restorable (peer addresses are not modelled): "
                f"addr add {_ntop(a.local)} peer {_ntop(a.peer)}/{a.prefixlen} "
                f"dev {link.name}",
                fam,
                v6_batch,
            )
            return
        if (a.valid_lft, a.preferred_lft) != (INFINITY_LIFE, INFINITY_LIFE):
            self.comment(
                f"{_ntop(a.local)}/{a.prefixlen} dev {link.name} had lifetimes "
                f"valid {a.valid_lft}s preferred {a.preferred_lft}s: "
                "restored as permanent",
                fam,
                v6_batch,
            )
        self.emit_or_comment(_addr_line(a, self.state), fam, v6_batch)

    def addresses_of(self, link: KLink, fam: int) -> None:
        if fam in self.families:
            for _, a in self._addr_items(link, fam):
                self._emit_addr(link, a)

    def plan_link_states(self) -> None:
        """Decide how links come up: lo first, then in the order that
        reproduces the IPv6 ``ff00::/8`` routes' order.  The kernel appends a
        link's ff00::/8 at carrier-on (of a veth pair, the end that comes up
        second gets its route first) or when an IPv6 address is added to it
        while it is up without carrier.  So a link whose route came before its
        carrier gets its IPv6 addresses after it is up (or, with none, the route
        itself, as the kernel would make it)."""
        st = self.state
        up = [l for l in st.links if l.up and self.model.has_link(l.name)]
        steps: list[tuple[str, KLink]] = [("up", l) for l in up if l.kind == "loopback"]
        mc = []
        for r in st.routes.get(AF_INET6, []):
            link = st.link_by_index(r.oif)
            if (
                r.type == RTN_MULTICAST
                and r.table == RT_TABLE_LOCAL
                and r.dst_len == 8
                and r.dst is not None
                and str(r.dst) == "ff00::"
                and r.protocol == RTPROT_KERNEL
                and r.priority == 256
                and link is not None
                and link in up
            ):
                mc.append(link)
        seen = {l.ifindex for _, l in steps}
        has6 = {a.ifindex for a in st.addrs if a.family == AF_INET6 and not self._auto_lo(a)}
        for i, link in enumerate(mc):
            if link.ifindex in seen:
                continue
            peer = st.link_by_index(link.peer) if link.kind == "veth" and link.peer else None
            nxt = mc[i + 1] if i + 1 < len(mc) else None
            if link.carrier and peer is not None and peer.ifindex not in seen and (nxt is peer or peer not in mc):
                # one carrier-on event: this end came up second
                steps += [("up", peer), ("up", link)]
                seen.update((peer.ifindex, link.ifindex))
                continue
            if link.carrier and (peer is None or peer.ifindex in seen):
                steps.append(("up", link))  # carrier as it comes up
                seen.add(link.ifindex)
                continue
            # the route came before carrier: up, then what makes the route
            steps.append(("up", link))
            steps.append(("addrs6" if link.ifindex in has6 else "ff00", link))
            if link.ifindex in has6:
                self.late6.add(link.ifindex)
            seen.add(link.ifindex)
        steps += [("up", l) for l in up if l.ifindex not in seen]
        # A multipath route keeps a leg through a link that went down (the leg
        # is dead) but no leg can be added through a down link: such a link is
        # up while the routes are added and goes down at the end, which flushes
        # the same routes and addresses as it did in the source.
        legs = {leg.ifindex for f in self.families for r in st.routes.get(f, []) for leg in r.nexthops}
        # ... and a leg through a veth end without carrier was added while the
        # peer was up: the route as a whole is linkdown only if it was made so
        for ifindex in list(legs):
            link = st.link_by_index(ifindex)
            if link is not None and link.kind == "veth" and link.up and not link.carrier and link.peer:
                legs.add(link.peer)
        # (not a link with IPv6 addresses: they would go with it when it goes down
        # again, and be missing while the routes are added)
        with6 = {a.ifindex for a in st.addrs if a.family == AF_INET6}
        self.temp_up = [
            l
            for l in st.links
            if not l.up
            and l.ifindex in legs
            and self.model.has_link(l.name)
            and not (AF_INET6 in self.families and l.ifindex in with6)
        ]
        steps += [("up", l) for l in self.temp_up]
        # their IPv6 addresses would go with the final `link set down`: they are
        # added after it (addresses added to a down link stay)
        self.late6.update(l.ifindex for l in self.temp_up)
        self.steps = steps

    def link_states(self) -> None:
        for what, link in self.steps:
            if what == "up":
                self.emit_or_comment(f"link set {link.name} up")
            elif what == "addrs6":
                # the newest IPv6 address, added once the link is up, makes its ff00::/8
                for _, a in self._addr_items(link, AF_INET6)[-1:] if AF_INET6 in self.families else ():
                    self._emit_addr(link, a)
            else:
                self.emit_or_comment(
                    f"route append multicast ff00::/8 dev {link.name} table local "
                    f"metric 256 proto {self.names.proto(RTPROT_KERNEL)}",
                    AF_INET6,
                )

    def lo_address_deletions(self) -> None:
        """lo up made 127.0.0.1/8 and ::1; delete them when the source has not."""
        st = self.state
        lo = next((l for l in st.links if l.kind == "loopback"), None)
        if lo is None or not lo.up:
            return
        for fam, text in ((AF_INET, "addr del 127.0.0.1/8 dev lo"), (AF_INET6, "addr del ::1/128 dev lo")):
            if fam not in self.families:
                continue
            if not any(a.ifindex == lo.ifindex and a.family == fam and self._auto_lo(a) for a in st.addrs):
                self.emit_or_comment(text, fam)

    # ---- 3.-4. routes and rules ---------------------------------------------
    def derived_deletions(self) -> dict[int, list]:
        """Delete the derived routes the source lacks; return, per family, the
        derived routes' keys that stay (in the model's order)."""
        kept: dict[int, list] = {}
        for fam in self.families:
            model_routes = self.model.routes(fam)
            # only source routes that can share a key with a model route are keyed
            # (route_key is the costly part at 100k routes; the model has few)
            sigs = {_key_sig(r) for r in model_routes}
            have: dict[tuple, int] = {}
            for r in self.state.routes.get(fam, []):
                if _key_sig(r) in sigs:
                    k = route_key(r, self.ifname, False)
                    have[k] = have.get(k, 0) + 1
            kept[fam] = []
            for r in model_routes:
                k = route_key(r, self.model_ifname, False)
                if have.get(k, 0) > 0:
                    have[k] -= 1
                    kept[fam].append(k)
                else:
                    self.emit_or_comment(route_line(r, "del", self.model_ifname, self.names), fam)
        return kept

    def routes(self, fam: int, derived: list, which: str | None = None) -> list[tuple[KRoute, str]]:
        """Write the source's non-derived routes (``which``: "first", the groups
        without a gateway and the ``early`` ones; "second", the others; None,
        all); return the refused ones."""
        todo, gks, verbs, front, first = self._route_plan(fam, derived)
        refused: list[tuple[KRoute, str]] = []
        if which is not None:
            want = which == "first"
            todo = [item for item, g in zip(todo, gks) if first[g] == want]
        written_front: set[tuple] = set()
        done: set[int] = set()
        if fam == AF_INET:
            done = self._disabled_legs(todo, verbs, refused)
        for r, is_derived in todo:
            if is_derived or id(r) in done:
                continue
            bad = _route_unrepresentable(r)
            if bad:
                self.comment(f"not restorable ({', '.join(bad)}): {route_line(r, 'add', self.ifname, self.names)}", fam)
                continue
            verb = verbs.get(id(r), "add")
            if verb == "prepend":
                gkey = _gkey(r)
                if gkey in written_front:
                    continue
                written_front.add(gkey)
                # each prepend goes first: write the group's front in reverse
                for rr in reversed(front[gkey]):
                    if not self.emit_route(rr, "prepend", fam):
                        refused.append((rr, "prepend"))
                continue
            if not self.emit_route(r, verb, fam):
                refused.append((r, verb))
        return refused

    def _route_plan(self, fam: int, derived: list) -> tuple:
        """(todo, group key per todo item, verbs, front, first) for routes();
        computed once per family (both IPv4 passes share it)."""
        memo = self._plans.get(fam)
        if memo is not None and memo[0] is derived:
            return memo[1]
        pool: dict[tuple, int] = {}
        for k in derived:
            pool[k] = pool.get(k, 0) + 1
        # a route whose table/length/tos/metric no derived key has is not derived
        sigs = {(k[1], k[4], k[5], k[6]) for k in derived}
        todo: list[tuple[KRoute, bool]] = []  # (route, is_derived)
        for r in self.state.routes.get(fam, []):
            if (r.table, r.dst_len, r.tos, r.priority & 0xFFFFFFFF) not in sigs:
                todo.append((r, False))
                continue
            k = route_key(r, self.ifname, False)
            if pool.get(k, 0) > 0:
                pool[k] -= 1
                todo.append((r, True))
            else:
                todo.append((r, False))
        # Routes with the same table/prefix/tos/metric stay in insertion order:
        # IPv4 `append`/`prepend` put a route after/before those already there;
        # IPv6 puts any non-exclusive add after them (a gateway route joins the
        # multipath group).  Derived routes exist before any of these lines.
        gks = [_gkey(r) for r, _ in todo]
        groups: dict[tuple, list[tuple[KRoute, bool]]] = {}
        for item, g in zip(todo, gks):
            items = groups.get(g)
            if items is None:
                groups[g] = [item]
            else:
                items.append(item)
        verbs: dict[int, str] = {}  # absent: "add"
        front: dict[tuple, list[KRoute]] = {}
        first: dict[tuple, bool] = {}
        early = self.early
        for gkey, items in groups.items():
            # the groups without a gateway (and the early ones) go before the IPv4 rules
            first[gkey] = gkey in early or not any(
                r.gateway is not None or any(l.gateway is not None for l in r.nexthops) for r, d in items if not d
            )
            if len(items) == 1:
                continue  # (not derived: "add"; derived: skipped)
            first_derived = next((i for i, (_, d) in enumerate(items) if d), None)
            if first_derived is None:
                for r, _ in items[1:]:
                    verbs[id(r)] = "append"
                continue
            for i, (r, d) in enumerate(items):
                if d:
                    continue
                if i < first_derived and fam == AF_INET:
                    verbs[id(r)] = "prepend"
                    front.setdefault(gkey, []).append(r)
                else:
                    verbs[id(r)] = "append"
        plan = (todo, gks, verbs, front, first)
        self._plans[fam] = (derived, plan)
        return plan

    def _disabled_legs(self, todo, verbs, refused) -> set[int]:
        """Removing a device's last IPv4 address disables IPv4 on it: routes
        through it go, and multipath legs through it stay, dead.  When the
        source has such legs on an up device without IPv4 addresses, those
        routes are added first and the device is disabled the same way (a
        throwaway address added and deleted); the other routes come after."""
        st = self.state
        with4 = {a.ifindex for a in st.addrs if a.family == AF_INET}
        dead = set()
        for r, d in todo:
            for leg in r.nexthops:
                link = st.link_by_index(leg.ifindex)
                if (
                    not d
                    and leg.flags & RTNH_F_DEAD
                    and link is not None
                    and link.up
                    and leg.ifindex not in with4
                    and self.model.has_link(link.name)
                ):
                    dead.add(leg.ifindex)
        if not dead:
            return set()
        first = [r for r, d in todo if not d and any(leg.ifindex in dead for leg in r.nexthops)]
        self.comment(
            "multipath legs through devices whose IPv4 was disabled (last address "
            "deleted): add the routes, then disable it the same way",
            AF_INET,
        )
        for ifindex in sorted(dead):
            self.emit_or_comment(f"addr add {_THROWAWAY_V4} dev {st.ifname(ifindex)}", AF_INET)
        for r in first:
            if not self.emit_route(r, verbs.get(id(r), "add"), AF_INET):
                refused.append((r, verbs.get(id(r), "add")))
        for ifindex in sorted(dead):
            self.emit_or_comment(f"addr del {_THROWAWAY_V4} dev {st.ifname(ifindex)}", AF_INET)
        return {id(r) for r in first}

    def emit_route(self, r: KRoute, verb: str, fam: int, v6_batch: bool = False) -> bool:
        """Write a route.  The kernel checks a route's gateways and prefsrc
        only when it is added; the source may hold routes whose gateway is no
        longer on-link or whose prefsrc is no longer local (their address went
        away after).  When the model refuses a route, the line is retried
        with what it lacked made true for the time of the add:

        * a gateway (no longer on-link, or - onlink - covered by a route
          added later through another device): a host route to it through its
          device in the route's table, deleted after;
        * an IPv4 prefsrc: the address as a /32 on a device that keeps other
          IPv4 addresses, deleted after (IPv4 sweeps stale prefsrcs from table
          main only, as the source's kernel did);
        * an IPv6 prefsrc: the address on a spare veth pair that is deleted at
          the end and takes the address with it (deleting the address itself
          would also drop the routes' prefsrc, which going with a link does not).
        """
        text = route_line(r, verb, self.ifname, self.names)
        if self.emit_route_line(r, verb, text, fam, v6_batch):
            return True
        err = self.last_error
        gw = self._gateway_helpers(r)
        src = self._source_helper(r, fam)
        for helpers in ([[gw]] if gw else []) + ([[src]] if src else []) + ([[gw, src]] if gw and src else []):
            probe, mark, spare = self.model.clone(), len(self.lines), self.spare
            ok = True
            for h in helpers:
                ok = ok and h["setup"](v6_batch) and all(self.emit(x, fam, v6_batch) for x in h["add"]())
            ok = ok and self.emit(text, fam, v6_batch)
            for h in helpers:
                ok = ok and all(self.emit(x, fam, v6_batch) for x in h["del"])
            if ok:
                self.lines.insert(
                    mark,
                    _Line(
                        f"# {text.split()[2]}: " + " and ".join(h["why"] for h in helpers) + " for the time of the add",
                        fam,
                        v6_batch,
                        comment=True,
                    ),
                )
                return True
            self.model, self.model_names, self.spare = probe, {}, spare
            del self.lines[mark:]
        self.last_error = err
        return False

    def _gateway_helpers(self, r: KRoute) -> dict | None:
        legs = r.nexthops or [NexthopRequest(r.gateway, r.oif, 1, r.rtm_flags)]
        adds = []
        for leg in legs:
            # (onlink too: its check fails when a route added later covers the
            # gateway through another device or as a reject route)
            if leg.gateway is None or not leg.ifindex:
                continue
            if leg.gateway.version == 6 and leg.gateway.is_link_local:
                continue
            plen = 32 if leg.gateway.version == 4 else 128
            h = (
                f"{_ntop(leg.gateway)}/{plen} dev {self.ifname(leg.ifindex)} "
                f"table {names_table(r.table)} metric {_HELPER_METRIC}"
            )
            if h not in adds:
                adds.append(h)
        if not adds:
            return None
        # append: two legs may have the same gateway through different devices
        return {
            "setup": lambda v6: True,
            "add": lambda: [f"route append {h}" for h in adds],
            "del": [f"route del {h}" for h in adds],
            "why": "each gateway gets a host route through its device",
        }

    def _source_helper(self, r: KRoute, fam: int) -> dict | None:
        if r.prefsrc is None:
            return None
        st = self.state
        src = _ntop(r.prefsrc)
        why = "its prefsrc, no longer local, is made local"
        if fam == AF_INET:
            if any(str(a.local) == str(r.prefsrc) for a in st.addrs):
                return None
            with4 = [
                l
                for l in st.links
                if any(a.ifindex == l.ifindex and a.family == AF_INET for a in st.addrs) and self.model.has_link(l.name)
            ]
            if not with4:
                return None
            dev = with4[0].name
            dels = [f"addr del {src}/32 dev {dev}"]
            if r.table == RT_TABLE_MAIN:
                # `addr del` sweeps main's routes using the address as src unless it is
                # still a local address; a second local route (not proto kernel, so
                # fib_del_ifaddr leaves it) keeps it local for the delete
                # (POLROUTE_SCENARIO=9520407219778:4)
                guard = f"local {src}/32 dev {dev} table local metric {_HELPER_METRIC}"
                dels = [f"route add {guard}"] + dels + [f"route del {guard}"]
            return {"setup": lambda v6: True, "add": lambda: [f"addr add {src}/32 dev {dev}"], "del": dels, "why": why}

        def setup(v6_batch: bool) -> bool:
            if self.spare:
                return True
            names = {l.name for l in st.links}
            i = 0
            while f"prsnap{i}" in names or f"prsnap{i + 1}" in names:
                i += 2
            spare = (f"prsnap{i}", f"prsnap{i + 1}")
            if not self.emit(f"link add {spare[0]} type veth peer name {spare[1]}", 0, v6_batch):
                return False
            self.spare = spare
            return True

        if any(str(a.local) == str(r.prefsrc) for a in st.addrs):
            return None
        return {"setup": setup, "add": lambda: [f"addr add {src}/128 dev {self.spare[0]} nodad"], "del": [], "why": why}

    def rules(self, fam: int) -> None:
        st = self.state
        rules = st.rules.get(fam, [])
        v6 = fam == AF_INET6
        kept = set()
        for pref, table in _DEFAULT_RULES[fam]:
            for i, r in enumerate(rules):
                if _matches_default(r, pref, table):
                    # a default rule stays only if no other rule of its priority precedes it
                    if not any((x.priority & 0xFFFFFFFF) == pref for x in rules[:i]):
                        kept.add(i)
                    break
        kept_defaults = {(rules[i].priority, rules[i].table) for i in kept}
        for pref, table in _DEFAULT_RULES[fam]:
            if (pref, table) not in kept_defaults:
                self.emit_or_comment(f"rule del pref {pref} lookup {_Names.table(table)}", fam, v6)
        for i, r in enumerate(rules):
            if i in kept:
                continue
            text = rule_line(r, "add", self.names)
            if r.unsupported:
                self.comment(f"not restorable ({', '.join(r.unsupported)}): {text}", fam, v6)
                continue
            self.emit_or_comment(text, fam, v6)
        if (
            not v6
            and self.state.v4_merged is False
            and not any(l.family == AF_INET and l.text.startswith("rule ") for l in self.lines)
        ):
            # local/main were unmerged in the source by a rule change since undone
            self.comment(
                "the source's IPv4 local and main tables are unmerged (a rule was "
                "changed and changed back): delete and re-add the last default rule",
                fam,
            )
            self.emit_or_comment("rule del pref 32767 lookup default", fam)
            self.emit_or_comment("rule add pref 32767 lookup default protocol kernel", fam)

    def retry(self, fam: int, refused: list[tuple[KRoute, str]], v6_batch: bool, early: bool = False) -> None:
        pending = list(refused)
        while pending:
            left = []
            for r, verb in pending:
                if not self.emit_route(r, verb, fam, v6_batch):
                    left.append((r, verb))
            if len(left) == len(pending):
                break
            pending = left
        for r, verb in pending:
            if early:
                self.needs_early.add(_gkey(r))
            self.emit_route(r, verb, fam, v6_batch)  # sets last_error
            self.comment(
                f"not restorable ({' '.join(self.last_error.split())}): {route_line(r, verb, self.ifname, self.names)}",
                fam,
                v6_batch,
            )

    def reorder(self, fam: int, v6_batch: bool) -> None:
        """Routes the kernel keeps in insertion order (same table, prefix, tos,
        metric) may have come out in another order than the source's: which of
        two devices' addresses or link-ups came first is not in any dump.  Such a
        group is put right by deleting its members from the first difference on
        and appending them again in the source's order (a route re-added with
        ``proto kernel`` dumps exactly as the kernel's own)."""

        def grouped(routes, ifname, only):
            out: dict[tuple, list] = {}
            for r in routes:
                g = _gkey(r)
                if g in only:
                    out.setdefault(g, []).append((route_key(r, ifname, False), r))
            return out

        # a group can only need putting back if both sides have the same number
        # (>= 2) of routes in it: key only those (most groups are single routes)
        src_routes = self.state.routes.get(fam, [])
        n_want: dict[tuple, int] = {}
        for r in src_routes:
            g = _gkey(r)
            n_want[g] = n_want.get(g, 0) + 1
        cand = {g for g, n in n_want.items() if n >= 2}
        if not cand:
            return
        # only the tables that hold such groups are read back from the model
        model_routes = self._model_routes(fam, {g[0] for g in cand})
        n_have: dict[tuple, int] = {}
        for r in model_routes:
            g = _gkey(r)
            if g in cand:
                n_have[g] = n_have.get(g, 0) + 1
        multi = {g for g in cand if n_have.get(g) == n_want[g]}
        want = grouped(src_routes, self.ifname, multi)
        have = grouped(model_routes, self.model_ifname, multi)
        for gkey, a in want.items():
            m = have.get(gkey, [])
            ka, km = [k for k, _ in a], [k for k, _ in m]
            if ka == km or sorted(ka, key=repr) != sorted(km, key=repr):
                continue
            i = next(j for j in range(len(ka)) if ka[j] != km[j])
            if any(_route_unrepresentable(r) for _, r in a[i:]):
                continue
            probe, mark = self.model.clone(), len(self.lines)
            ok = all(self.emit(route_line(r, "del", self.model_ifname, self.names), fam, v6_batch) for _, r in m[i:])
            ok = ok and all(
                self.emit(route_line(r, "append", self.ifname, self.names), fam, v6_batch) for _, r in a[i:]
            )
            if ok:
                now = [
                    k for k, _ in grouped(self.model.routes(fam, gkey[0] or 0), self.model_ifname, {gkey}).get(gkey, [])
                ]
                ok = now == ka
            if not ok:
                self.model, self.model_names = probe, {}
                del self.lines[mark:]
                continue
            self.lines.insert(
                mark,
                _Line(
                    f"# {route_line(a[0][1], 'add', self.ifname, self.names).split()[2 if a[0][1].type == RTN_UNICAST else 3]}"
                    f" (table {names_table(gkey[0])}): put back in the source's order",
                    fam,
                    v6_batch,
                    comment=True,
                ),
            )

    def _model_routes(self, fam: int, tables: set) -> list[RouteRequest]:
        """The model's routes of these tables, each table's in dump order
        (all of them when that is fewer calls)."""
        if 0 in tables or len(tables) > 16:
            return self.model.routes(fam)
        return [r for t in sorted(tables) for r in self.model.routes(fam, t)]

    def sysctls_for_model(self) -> None:
        for key, value in self.state.sysctl_lines:
            with contextlib.suppress(PolicyError):
                self.model.sysctl(key, value)

    def build(self) -> list[_Line]:
        self.links()
        self.plan_link_states()
        self.addresses()
        self.link_states()
        self.lo_address_deletions()
        # derived routes: the model now has what the kernel derives from links,
        # addresses and link states (sysctl-driven ones come with the sysctls)
        probe = self.model.clone()
        self.sysctls_for_model()
        derived_all = {f: [route_key(r, self.model_ifname, False) for r in self.model.routes(f)] for f in self.families}
        self.model = probe
        self.model_names = {}
        kept = self.derived_deletions()
        for fam in self.families:
            # sysctl-derived routes (e.g. IPv6 anycast with forwarding) appear only
            # once the sysctls are set, after the batch: never write them
            extra = list(derived_all[fam])
            for k in kept[fam]:
                if k in extra:
                    extra.remove(k)
            kept[fam] = kept[fam] + extra
        # IPv4: routes without gateways, the rules, then the routes with gateways.
        # A gateway's nexthop keeps the scope of what the gateway resolved to
        # when the route was added (a local route: host, the gateway is then not
        # used; a link route: link), which no dump shows; resolving against the
        # final rules and routes is the reading "as if configured now".  Routes
        # that only the rules of a fresh namespace let through go first (early).
        if AF_INET in self.families:
            refused4 = self.routes(AF_INET, kept[AF_INET], "first")
        if AF_INET6 in self.families:
            refused6 = self.routes(AF_INET6, kept[AF_INET6])
        if AF_INET in self.families:
            self.rules(AF_INET)
            late = self.routes(AF_INET, kept[AF_INET], "second")
            self.retry(AF_INET, refused4, v6_batch=False)
            self.retry(AF_INET, late, v6_batch=False, early=True)
            self.reorder(AF_INET, v6_batch=False)
        if AF_INET6 in self.families:
            self.rules(AF_INET6)
            # IPv6 routes waiting for rules wait for the IPv6 rules: `ip -6 -batch`
            self.retry(AF_INET6, refused6, v6_batch=True)
            self.reorder(AF_INET6, v6_batch=True)
        v6 = any(l.v6_batch and not l.comment for l in self.lines)
        if self.spare:
            self.emit_or_comment(f"link del {self.spare[0]}", 0, v6)
        if self.temp_up:
            for link in self.temp_up:
                self.emit_or_comment(f"link set {link.name} down", 0, v6)
            for link in self.temp_up:
                for _, a in self._addr_items(link, AF_INET6) if AF_INET6 in self.families else ():
                    self._emit_addr(link, a, v6)
        if self.temp_up or self.spare:
            self.remove_extras(v6)
        for key, value in self.state.sysctl_lines:
            self.comment(f"sysctl -w {key}={value}")
        return self.lines

    def remove_extras(self, v6_batch: bool) -> None:
        """Links that were up only for the restore may leave routes the source
        does not have (a peer's ff00::/8 made at carrier-on): delete them."""
        for fam in self.families:
            want: dict[tuple, int] = {}
            for r in self.state.routes.get(fam, []):
                k = route_key(r, self.ifname, False)
                want[k] = want.get(k, 0) + 1
            for r in self.model.routes(fam):
                k = route_key(r, self.model_ifname, False)
                if want.get(k, 0) > 0:
                    want[k] -= 1
                    continue
                if r.protocol != RTPROT_KERNEL:
                    continue  # only what the kernel made on its own is a side effect
                self.emit_or_comment(route_line(r, "del", self.model_ifname, self.names), fam, v6_batch)


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


# ---------------------------------------------------------------------------
# public text API
# ---------------------------------------------------------------------------


def _build(state: KernelState, families: tuple[int, ...]) -> list[_Line]:
    fams = tuple(f for f in (AF_INET, AF_INET6) if f in families and f in state.routes)
    if not fams:
        fams = tuple(f for f in (AF_INET, AF_INET6) if f in families)
    import gc

    was = gc.isenabled()
    gc.disable()  # many small tuples, no cycles: the cyclic collector only costs here
    try:
        return _build_lines(state, fams)
    finally:
        if was:
            gc.enable()


def _build_lines(state: KernelState, fams: tuple[int, ...]) -> list[_Line]:
    early: set[tuple] = set()
    for _ in range(3):
        b = _Builder(state, fams)
        b.early = set(early)
        lines = b.build()
        if not b.needs_early - early:
            return lines
        early |= b.needs_early  # refused after the rules: try them before
    return lines


def snapshot_batches(state: KernelState) -> list[tuple[list[str], str]]:
    """The whole state (both families) as ``[(ip options, batch text), ...]``:
    first a batch for ``ip -batch`` (links, addresses, routes of both families,
    IPv4 rules), then - when IPv6 rules differ from a new namespace's - one for
    ``ip -6 -batch`` (IPv6 rules and the routes that need them).  Run them in
    order, then set :attr:`KernelState.sysctl_lines`."""
    lines = _build(state, (AF_INET, AF_INET6))
    first = [l.text for l in lines if not l.v6_batch]
    second = [l.text for l in lines if l.v6_batch]
    out = [([], "\n".join(first) + "\n")]
    if second:
        out.append((["-6"], "\n".join(second) + "\n"))
    return out


def snapshot_text(state: KernelState, family: int | None = None, header: bool = True) -> str:
    """``family`` AF_INET: one text for ``ip -batch`` with the links and the
    IPv4 state; AF_INET6: one text for ``ip -6 -batch`` with the links and the
    IPv6 state.  None: the whole state as one text, the lines that need
    ``ip -6`` (IPv6 rules) last and prefixed ``-6`` - polroute's reader takes
    that prefix per line; ``ip -batch`` does not (use the family texts, or
    :func:`snapshot_batches`)."""
    fams = (AF_INET, AF_INET6) if family is None else (family,)
    lines = _build(state, fams)
    where = f"namespace {state.netns}" if state.netns else "the current namespace"
    out = []
    if header:
        if family == AF_INET:
            out.append(f"# polroute snapshot of {where}, IPv4: run with `ip -batch`")
        elif family == AF_INET6:
            out.append(f"# polroute snapshot of {where}, IPv6: run with `ip -6 -batch`")
        else:
            out.append(
                f"# polroute snapshot of {where}; lines starting with -6 need "
                "`ip -6 -batch` (use -4 / -6 for ip's own batches)"
            )
    if family is None:
        out += [l.text for l in lines if not l.v6_batch]
        for l in lines:
            if l.v6_batch:
                out.append(l.text if l.comment or not l.text.startswith("rule ") else "-6 " + l.text)
    else:
        out += [l.text for l in lines]
    return "\n".join(out) + "\n"


def policy_from_state(state: KernelState, sysctls: bool = True) -> Policy:
    """A Policy built by applying the snapshot batches (and the sysctls)."""
    p = Policy()
    if FAST_ROUTES:
        lines = _build(state, (AF_INET, AF_INET6))
        for v6 in (False, True):
            batch = [l for l in lines if l.v6_batch == v6]
            if batch or not v6:
                _apply_lines(p, state, batch, v6)
    else:
        for opts, text in snapshot_batches(state):
            apply_batch(p, text, "snapshot", family=AF_INET6 if "-6" in opts else 0)
    if sysctls:
        for key, value in state.sysctl_lines:
            with contextlib.suppress(PolicyError):
                p.sysctl(key, value)
    return p


def _apply_lines(policy: Policy, state: KernelState, lines: list[_Line], v6_batch: bool) -> None:
    """apply_batch(policy, the lines' batch text, "snapshot") with the route
    lines applied as route_line_request (what parsing them gives; see
    _Builder.emit_route_line) and the others parsed: all or nothing, the
    same BatchError on a refused line."""
    from polroute.iproute2.batch import parse_command
    from polroute.iproute2.lexer import BatchError, split_args

    work, tables = policy.clone(), RtTables()
    names = {l.ifindex: l.name for l in state.links}
    index: dict[str, int] = {}

    def model_ifindex(src: int) -> int:
        if not index:
            index.update((l.name, l.ifindex) for l in work.links())
        return index.get(names.get(src, f"if{src}"), 0)

    for lineno, line in enumerate(lines, 1):
        if line.comment:
            continue
        try:
            packed = req = None
            if line.route is not None:
                r, verb = line.route
                packed = route_line_packed(r, verb, model_ifindex, v6_batch)
                if packed is None:
                    req = route_line_request(r, verb, model_ifindex, v6_batch)
            if packed is not None:
                work.route_packed(RTM_NEWROUTE, _VERB_FLAGS[verb], packed)
            elif req is not None:
                work.route(req)
            else:
                parse_command(split_args(line.text), work, tables, AF_INET6 if v6_batch else 0).apply(work)
                index.clear()  # links may have changed
        except ParseError as e:
            raise BatchError("snapshot", lineno, str(e), line.text, e) from None
        except PolicyError as e:
            raise BatchError("snapshot", lineno, e.iproute2_text(), line.text, e) from None
    policy._swap(work)


def compare_with_policy(state: KernelState, policy: Policy, families: Iterable[int] = (AF_INET, AF_INET6)) -> list[str]:
    """Differences between the dumped rules/routes and a Policy's (empty when
    equal).  Rules are compared in order.  Routes are compared table by table
    as a multiset plus, within each group the kernel keeps in insertion order
    (same prefix, tos, metric), in order; the order of different prefixes is
    the dump's walk of the kernel's trie (and of tables, its hash), which the
    model does not copy.  The ``dead`` flag is ignored: the kernel computes it
    when it dumps a linkdown nexthop of a device with
    ignore_routes_with_linkdown."""
    names = {l.ifindex: l.name for l in policy.links()}
    pname = lambda i: names.get(i, f"if{i}")  # noqa: E731

    def groups(routes, ifname):
        out: dict[tuple, list] = {}
        for r in routes:
            k = route_key(r, ifname)
            legs = tuple(leg[:3] + (leg[3] & ~RTNH_F_DEAD,) for leg in k[10])
            out.setdefault(_group_key(r), []).append(k[:10] + (legs, k[11] & ~RTNH_F_DEAD) + k[12:])
        return out

    out = []
    for fam in families:
        if fam not in state.routes:
            continue
        a = [rule_key(r) for r in state.rules.get(fam, [])]
        b = [rule_key(r) for r in policy.rules(fam)]
        if a != b:
            out.append(f"rules (family {fam}): kernel {a} / model {b}")
        ga, gb = groups(state.routes[fam], state.ifname), groups(policy.routes(fam), pname)
        for g in sorted(set(ga) | set(gb), key=repr):
            a, b = ga.get(g, []), gb.get(g, [])
            if a != b:
                out.append(
                    f"routes (family {fam}, table {g[0]}, {g[1]}/{g[2]} tos {g[3]} "
                    f"metric {g[4]}): kernel {a} / model {b}"
                )
    return out
