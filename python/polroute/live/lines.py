"""``ip -batch`` lines for dumped objects: :func:`route_line`, :func:`rule_line`
and the address line, with iproute2 6.1's compiled-in protocol, scope,
table and type names, and :class:`_Line` (a written line with the batch it
belongs to).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from socket import inet_ntoa

from polroute._core.fields import (
    FF_NEW_KEYWORD,
    KIND_MASK,
    KIND_RANGE16,
    NUMBER_KINDS,
    PF_HEX_MASK,
    ROUTE_FIELDS,
    RULE_FIELDS,
    mask_of,
    rule_mask_of,
)
from polroute.iproute2.rt_tables import COMPILED_PROTOS, COMPILED_SCOPES
from polroute.iproute2.show import RTN_NAMES
from polroute.live.keys import _s32
from polroute.live.objects import (
    IFA_F_HOMEADDRESS,
    IFA_F_MANAGETEMPADDR,
    IFA_F_MCAUTOJOIN,
    IFA_F_OPTIMISTIC,
    KAddr,
    KernelState,
    KRoute,
)
from polroute.types.requests import (
    AF_INET,
    AF_INET6,
    FIB_RULE_INVERT,
    FR_ACT_GOTO,
    FR_ACT_NOP,
    FR_ACT_TO_TBL,
    IFA_F_NOPREFIXROUTE,
    RT_SCOPE_HOST,
    RT_SCOPE_LINK,
    RT_SCOPE_UNIVERSE,
    RT_TABLE_DEFAULT,
    RT_TABLE_LOCAL,
    RT_TABLE_MAIN,
    RTN_ANYCAST,
    RTN_BROADCAST,
    RTN_LOCAL,
    RTN_MULTICAST,
    RTN_NAT,
    RTN_UNICAST,
    RTN_UNSPEC,
    RTNH_F_ONLINK,
    RTPROT_BOOT,
    IPAddress,
    RouteRequest,
    RuleRequest,
)

_PROTO_NAMES = COMPILED_PROTOS  # always known to `ip`, whatever /etc/iproute2 says
_SCOPE_NAMES = COMPILED_SCOPES
_TABLE_NAMES = {RT_TABLE_DEFAULT: "default", RT_TABLE_MAIN: "main", RT_TABLE_LOCAL: "local"}
# the type words `ip route add` / `ip rule add` take: the printed ones, but "unspec" for 0
_RTN_NAMES = ("unspec",) + RTN_NAMES[1:]

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
        # a value the caller did not declare (a report's leftover) goes as a number
        return _PROTO_NAMES.get(p, str(p)) if self.proto_names else str(p)

    def scope(self, s: int) -> str:
        return _SCOPE_NAMES.get(s, str(s)) if self.scope_names else str(s)

    @staticmethod
    def table(t: int) -> str:
        return _TABLE_NAMES.get(t, str(t))


def names_table(t: int) -> str:
    return _TABLE_NAMES.get(t, str(t))


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


# Route rows route_line writes by hand (nhid: a nexthop object, which the
# dump marks unsupported); any other plain row (one number) is written as
# "KEYWORD VALUE" by its row, so a new plain route attribute needs no edit here.
_ROUTE_WRITTEN = frozenset(
    ("family", "present", "tos", "proto", "scope", "type", "via", "pref", "table", "onlink", "metric", "dev")
    + ("nhid", "realms", "nexthop", "metrics", "to", "src", "gateway")
)
_LATER_ROUTE_ROWS = tuple(
    (row, mask_of(row, ROUTE_FIELDS))
    for row in ROUTE_FIELDS
    if row.name not in _ROUTE_WRITTEN and row.kind in NUMBER_KINDS and row.keyword and len(row.members) == 1
)


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
    if _LATER_ROUTE_ROWS:
        w += _row_words(r, _LATER_ROUTE_ROWS)
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
    """``rule VERB pref N ...`` recreating ``r``: every FRA_* field iproute2 6.1
    can write, and those it cannot in current iproute2's syntax (the dump
    names them in ``KRule.unsupported``, and a snapshot comments the line)."""
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
    for word, start, end, mask in (
        ("sport", r.sport_start, r.sport_end, r.sport_mask),
        ("dport", r.dport_start, r.dport_end, r.dport_mask),
    ):
        if start == end and mask not in (0, 0xFFFF):
            w += [word, f"{start}/{mask:#x}"]  # newer than 6.1: KRule.unsupported names it
        elif start or end:
            w += [word, f"{start}-{end}"]
    w += _newer_words(r)
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


# value rows newer than iproute2 6.1 (dscp, flowlabel ...), written as current
# iproute2 takes them: a line with one is shown in a comment, not run
_NEWER_ROWS = tuple(
    (row, rule_mask_of(row))
    for row in RULE_FIELDS
    if row.flags & FF_NEW_KEYWORD and row.kind not in (KIND_MASK, KIND_RANGE16) and len(row.members) == 1
)


def _row_words(r, rows: tuple) -> list[str]:
    """[keyword, value, ...] for each (row, mask row) of rows the request
    carries (a value, a mask or its present bit), as current iproute2 takes
    them: hex for a PF_HEX_MASK row, "/MASK" unless the mask is all ones."""
    w = []
    for row, mask_row in rows:
        value = getattr(r, row.members[0])
        mask = getattr(r, mask_row.members[0]) if mask_row else 0
        if not (value or mask or (row.present_bit >= 0 and r.present >> row.present_bit & 1)):
            continue
        text = f"{value:#x}" if row.print_fmt == PF_HEX_MASK else str(value)
        if mask_row and mask and mask != mask_row.all_ones:
            text += f"/{mask:#x}"
        w += [row.keyword, text]
    return w


def _newer_words(r: RuleRequest) -> list[str]:
    return _row_words(r, _NEWER_ROWS)


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


@dataclass
class _Line:
    text: str
    family: int = 0  # 0: links (both), AF_INET or AF_INET6
    v6_batch: bool = False  # must run in `ip -6 -batch` (IPv6 rules) or after it
    comment: bool = False
    route: tuple | None = None  # (KRoute, verb) when text is route_line(KRoute, verb)
