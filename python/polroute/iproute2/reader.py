"""The iproute2 6.1 client side: ``ip`` command lines -> rtnetlink requests.

This module does what ``ip`` itself does before the kernel sees anything:
keyword abbreviation (``matches()``, tested in ip's own if-chain order),
header defaults (protocol boot, scope from type and gateway, table main or
local, family from the first address), the >= 256 table id carried in the
table attribute, the implicit fwmask only when given, ``route flush`` /
``rule flush`` as dump-then-delete, and so on.  What the kernel then does
with a request is the core's business (:class:`polroute.Policy`).

Entry points:

* :func:`apply_batch` -- an ``ip -batch`` style text, all or nothing;
* :func:`apply_line` / :func:`parse_command` -- one command;
* :func:`parse_route_get` -- the arguments of ``ip route get``.

Sources followed: iproute2 v6.1.0 ip/ip.c, ip/iproute.c, ip/iprule.c,
ip/ipaddress.c, ip/iplink.c, ip/link_veth.c, lib/utils.c, lib/rt_names.c.
"""

from __future__ import annotations

import copy
import errno as _errno
import ipaddress
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

from polroute._core.errors import PolicyError
from polroute.iproute2.rt_tables import (
    RtTables,
    get_s32,
    get_u8,
    get_u16,
    get_u32,
    get_u64,
    get_unsigned_max,
    scan_uint,
    strtoul,
)
from polroute.iproute2.show import PROTO_BY_NAME
from polroute.types.requests import (
    AF_INET,
    AF_INET6,
    FIB_RULE_INVERT,
    FR_ACT_GOTO,
    FR_ACT_NOP,
    FR_ACT_TO_TBL,
    FR_ACT_UNSPEC,
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
    NLM_F_REPLACE,
    RT_SCOPE_HOST,
    RT_SCOPE_LINK,
    RT_SCOPE_NOWHERE,
    RT_SCOPE_UNIVERSE,
    RT_TABLE_LOCAL,
    RT_TABLE_MAIN,
    RT_TABLE_UNSPEC,
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
    RTA_VIA,
    RTM_DELADDR,
    RTM_DELROUTE,
    RTM_DELRULE,
    RTM_NEWADDR,
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
    RTN_XRESOLVE,
    RTNH_F_ONLINK,
    RTPROT_BOOT,
    AddrRequest,
    IPAddress,
    LinkRequest,
    NexthopRequest,
    RouteRequest,
    RuleRequest,
    bit,
)

AF_UNSPEC = 0
PREFIXLEN_SPECIFIED = 1
IFNAMSIZ = 16

# RTAX_* metric ids
RTAX_LOCK, RTAX_MTU, RTAX_WINDOW, RTAX_RTT, RTAX_RTTVAR = 1, 2, 3, 4, 5
RTAX_SSTHRESH, RTAX_CWND, RTAX_ADVMSS, RTAX_REORDERING = 6, 7, 8, 9
RTAX_HOPLIMIT, RTAX_INITCWND, RTAX_FEATURES, RTAX_RTO_MIN = 10, 11, 12, 13
RTAX_INITRWND, RTAX_QUICKACK, RTAX_FASTOPEN_NO_COOKIE = 14, 15, 17

# ifaddr flags (ipaddress.c ifa_flag_data): name -> (mask, readonly, v6only)
_IFA_FLAGS = {
    "secondary": (0x01, True, False),
    "temporary": (0x01, True, False),
    "nodad": (0x02, False, True),
    "optimistic": (0x04, False, True),
    "dadfailed": (0x08, True, True),
    "home": (0x10, False, True),
    "deprecated": (0x20, True, True),
    "tentative": (0x40, True, True),
    "permanent": (0x80, True, True),
    "mngtmpaddr": (0x100, False, True),
    "noprefixroute": (IFA_F_NOPREFIXROUTE, False, False),
    "autojoin": (0x400, False, False),
    "stable-privacy": (0x800, True, True),
}
IFA_F_MCAUTOJOIN = 0x400


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------


class ParseError(ValueError):
    """A command line ``ip`` would refuse before sending anything; the
    message names the offending token."""


class BatchError(Exception):
    """First failing line of a batch: ``FILE:LINE: message``.

    ``cause`` is the ParseError or PolicyError behind it; for a request the
    model refused, ``message`` is what ip prints (``RTNETLINK answers: ...``
    or ``Error: ....``).
    """

    def __init__(self, filename: str, lineno: int, message: str, line: str = "", cause: BaseException | None = None):
        super().__init__(f"{filename}:{lineno}: {message}")
        self.filename = filename
        self.lineno = lineno
        self.message = message
        self.line = line
        self.cause = cause


# ---------------------------------------------------------------------------
# lexing: ip's getcmdline() + makeargs()
# ---------------------------------------------------------------------------


def split_args(line: str) -> list[str]:
    """makeargs(): whitespace separated words; a word starting with ' or "
    runs to the matching quote."""
    ws = " \t\r\n"
    args, i, n = [], 0, len(line)
    while i < n:
        while i < n and line[i] in ws:
            i += 1
        if i >= n:
            break
        if line[i] in "'\"":
            quote = line[i]
            end = line.find(quote, i + 1)
            if end < 0:
                raise ParseError("Unterminated quoted string")
            args.append(line[i + 1 : end])
            i = end + 1
        else:
            j = i
            while j < n and line[j] not in ws:
                j += 1
            args.append(line[i:j])
            i = j + 1
    return args


def batch_lines(text: str) -> Iterator[tuple[int, str]]:
    """(first line number, command text) per command of a batch.

    As getcmdline(): '#' starts a comment anywhere on a line, a backslash
    before the newline continues the command on the next line; empty
    commands are skipped.
    """
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        start = i
        cur = lines[i].split("#", 1)[0] if "#" in lines[i] else lines[i]
        raw = lines[i]
        while cur.endswith("\\") and "#" not in raw and i + 1 < len(lines):
            i += 1
            raw = lines[i]
            nxt = raw.split("#", 1)[0]
            cur = cur[:-1] + nxt
        i += 1
        if cur.strip(" \t\r\n"):
            yield start + 1, cur.strip()


# ---------------------------------------------------------------------------
# argument helpers
# ---------------------------------------------------------------------------


def matches(arg: str, keyword: str) -> bool:
    """iproute2 matches(): arg is a non-empty prefix of keyword."""
    return bool(arg) and keyword.startswith(arg)


class _Args:
    """A cursor over argv, with NEXT_ARG()'s "missing argument" error."""

    def __init__(self, words: list[str]):
        self.words = words
        self.i = 0

    def more(self) -> bool:
        return self.i < len(self.words)

    @property
    def cur(self) -> str:
        return self.words[self.i]

    def advance(self) -> None:
        self.i += 1

    def next(self) -> str:
        key = self.cur
        self.i += 1
        if self.i >= len(self.words):
            raise ParseError(f'missing argument after "{key}"')
        return self.words[self.i]

    def rest(self) -> list[str]:
        return self.words[self.i :]


def _bad(what: str, tok: str) -> ParseError:
    return ParseError(f'invalid {what} "{tok}"')


def _need(value, what: str, tok: str):
    if value is None:
        raise _bad(what, tok)
    return value


def _unsupported(tok: str) -> ParseError:
    return ParseError(f'unsupported keyword "{tok}" (not modelled)')


def _looks_like_word(tok: str) -> bool:
    return bool(tok) and tok[0].isalpha() and not any(c in tok for c in ":/.")


# ---------------------------------------------------------------------------
# addresses: lib/utils.c get_addr_1 / get_prefix_1
# ---------------------------------------------------------------------------


@dataclass
class Prefix:
    """inet_prefix: family may stay AF_UNSPEC for "default"/"all"."""

    family: int
    addr: IPAddress | None  # None when no bytes would be sent
    bytelen: int
    bitlen: int
    flags: int = 0


def _zero(family: int) -> IPAddress | None:
    if family == AF_INET:
        return ipaddress.IPv4Address(0)
    if family == AF_INET6:
        return ipaddress.IPv6Address(0)
    return None


def _ipv4_legacy(s: str) -> bytes | None:
    """get_addr_ipv4(): up to 4 strtoul(base 0) parts, "10.8" = 10.8.0.0."""
    parts = s.split(".")
    if len(parts) == 4 and all(
        p.isascii() and p.isdigit() and (p[0] != "0" or len(p) == 1) and len(p) <= 3 for p in parts
    ):
        values = [int(p) for p in parts]  # the common case: plain dotted decimal
        if max(values) <= 255:
            return bytes(values)
    out = bytearray(4)
    pos = 0
    for i in range(4):
        value, end, _ = strtoul(s, 0, pos)
        if value > 255 or end == pos:
            return None
        out[i] = value
        if end == len(s):
            return bytes(out)
        if i == 3 or s[end] != ".":
            return None
        pos = end + 1
    return bytes(out)


def get_addr_1(name: str, family: int) -> Prefix | None:
    if name == "default":
        return Prefix(family, _zero(family), {AF_INET: 4, AF_INET6: 16}.get(family, 0), -2, PREFIXLEN_SPECIFIED)
    if name in ("all", "any"):
        return Prefix(family, None, 0, -2)
    if ":" in name:
        if family not in (AF_UNSPEC, AF_INET6):
            return None
        try:
            packed = socket.inet_pton(socket.AF_INET6, name)
        except OSError:
            return None
        return Prefix(AF_INET6, ipaddress.IPv6Address(packed), 16, -1)
    if family not in (AF_UNSPEC, AF_INET):
        return None
    packed = _ipv4_legacy(name)
    if packed is None:
        return None
    return Prefix(AF_INET, ipaddress.IPv4Address(packed), 4, -1)


def _mask2bits(packed: bytes) -> int:
    mask = int.from_bytes(packed, "big")
    host = ~mask & 0xFFFFFFFF
    if host & (host + 1):
        return -1
    return bin(mask).count("1")


def get_prefix_1(arg: str, family: int) -> Prefix | None:
    base, slash, plen_s = arg.partition("/")
    p = get_addr_1(base, family)
    if p is None:
        return None
    bitlen = {AF_INET: 32, AF_INET6: 128}.get(p.family, 0)
    if slash:
        if p.bitlen == -2:
            return None
        plen = get_unsigned_max(plen_s, 0xFFFFFFFF)
        if plen is None:  # a dotted netmask also works
            m = get_addr_1(plen_s, AF_INET)
            if m is None or m.family != AF_INET or _mask2bits(m.addr.packed) < 0:
                return None
            plen = _mask2bits(m.addr.packed)
        if plen > bitlen:
            return None
        p.flags |= PREFIXLEN_SPECIFIED
        bitlen = plen
    elif p.bitlen == -2:
        bitlen = 0
    p.bitlen = bitlen
    return p


def get_prefix(arg: str, family: int) -> Prefix:
    p = get_prefix_1(arg, family)
    if p is None:
        if _looks_like_word(arg):
            raise ParseError(f'unknown keyword "{arg}"')
        raise _bad("prefix", arg)
    return p


def get_addr(arg: str, family: int) -> Prefix:
    p = get_addr_1(arg, family)
    if p is None:
        raise _bad("address", arg)
    return p


def read_family(name: str) -> int:
    return {"inet": AF_INET, "inet6": AF_INET6}.get(name, AF_UNSPEC)


# ---------------------------------------------------------------------------
# other value parsers
# ---------------------------------------------------------------------------


def rtntype_a2n(arg: str) -> int | None:
    """rtnl_rtntype_a2n (note: "u" is unreachable, "uni" unicast)."""
    if arg == "local":
        return RTN_LOCAL
    if arg == "nat":
        return RTN_NAT
    for word, value in (
        ("broadcast", RTN_BROADCAST),
        ("anycast", RTN_ANYCAST),
        ("multicast", RTN_MULTICAST),
        ("prohibit", RTN_PROHIBIT),
        ("unreachable", RTN_UNREACHABLE),
        ("blackhole", RTN_BLACKHOLE),
        ("xresolve", RTN_XRESOLVE),
        ("unicast", RTN_UNICAST),
    ):
        if matches(arg, word) or (word == "broadcast" and arg == "brd"):
            return value
    if arg == "throw":
        return RTN_THROW
    value, end, _ = strtoul(arg, 0)
    if end == 0 or end != len(arg) or value > 255:
        return None
    return value


def get_rt_realms_or_raw(arg: str, tables: RtTables) -> int | None:
    raw = get_u32(arg)
    if raw is not None:
        return raw
    realms = 0
    frm, slash, to = arg.partition("/")
    if slash:
        try:
            realms = tables.realms.id(frm) << 16
        except ValueError:
            return None
    else:
        to = arg
    if to:
        try:
            realms |= tables.realms.id(to)
        except ValueError:
            return None
    return realms


def inet_proto_a2n(arg: str) -> int | None:
    value = get_u8(arg, 10)
    if value is not None:
        return value
    return PROTO_BY_NAME.get(arg)


def get_time_rtt(arg: str) -> tuple[int, bool] | None:
    """get_time_rtt(): milliseconds (ceil) and whether the value was raw."""
    if "." in arg:
        i = 0
        while i < len(arg) and (arg[i].isdigit() or arg[i] in ".+-eE"):
            i += 1
        try:
            t = float(arg[:i])
        except ValueError:
            return None
        if t < 0:
            return None
    else:
        value, i, ovf = strtoul(arg, 0)
        if i == 0 or ovf:
            return None
        t = float(value)
    suffix = arg[i:]
    raw = not suffix
    if suffix:
        if suffix.lower() in ("s", "sec", "secs"):
            t *= 1000
        elif suffix.lower() not in ("ms", "msec", "msecs"):
            return None
    ms = int(t) & 0xFFFFFFFF
    if ms < t:
        ms += 1
    return ms, raw


def check_ifname(name: str) -> bool:
    return 0 < len(name) < IFNAMSIZ and not any(c == "/" or c.isspace() for c in name)


# ---------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------


@dataclass
class Context:
    policy: object
    tables: RtTables
    family: int = AF_UNSPEC
    route_proto: int = RTPROT_BOOT  # what a route add gets without `proto` (ip: boot)

    def ifindex(self, name: str) -> int:
        """ll_name_to_index(): a known name, else "ifN" means ifindex N."""
        try:
            return self.policy.ifindex(name)
        except PolicyError as e:
            if e.errno != _errno.ENODEV:
                raise
        if name.startswith("if"):
            got = scan_uint(name, 2)
            if got is not None and got[0] & 0xFFFFFFFF:
                return got[0] & 0xFFFFFFFF
        raise ParseError(f'Cannot find device "{name}"')


class Command:
    """A parsed command: the requests ``ip`` would send, in order, as
    (Policy method name, request) pairs."""

    def __init__(self, requests: list | None = None, warnings: list | None = None):
        self.requests: list[tuple[str, object]] = requests or []
        self.warnings: list[str] = warnings or []

    def apply(self, policy) -> None:
        for method, req in self.requests:
            getattr(policy, method)(req)


# ---- ip route add/del/change/... ---------------------------------------------

_ROUTE_CMDS = (  # do_iproute() order
    ("add", RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL),
    ("change", RTM_NEWROUTE, NLM_F_REPLACE),
    ("replace", RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE),
    ("prepend", RTM_NEWROUTE, NLM_F_CREATE),
    ("append", RTM_NEWROUTE, NLM_F_CREATE | NLM_F_APPEND),
    ("test", RTM_NEWROUTE, NLM_F_EXCL),
    ("delete", RTM_DELROUTE, 0),
)

# exact-match metric keywords that take an optional "lock": keyword -> RTAX id
_LOCKABLE = {"mtu": RTAX_MTU, "hoplimit": RTAX_HOPLIMIT, "advmss": RTAX_ADVMSS}


def _route_modify(a: _Args, msg_type: int, flags: int, ctx: Context) -> Command:
    t = ctx.tables
    fam = ctx.family
    req = RouteRequest(msg_type, flags)
    rtm_table, rta_table = RT_TABLE_MAIN, None
    if msg_type == RTM_DELROUTE:
        req.protocol, req.scope, req.type = 0, RT_SCOPE_NOWHERE, RTN_UNSPEC
    else:
        req.protocol, req.scope, req.type = ctx.route_proto, RT_SCOPE_UNIVERSE, RTN_UNICAST
    mx: dict[int, int] = {}
    mxlock = 0
    dev = None
    gw_ok = dst_ok = nhs_ok = scope_ok = table_ok = False
    router_pref = None  # RTA_PREF is sent only when `pref` is given

    def metric(tok: str, rtax: int, maximum: int = 0xFFFFFFFF) -> None:
        nonlocal mxlock
        v = a.next()
        if v == "lock":
            mxlock |= 1 << rtax
            v = a.next()
        mx[rtax] = _need(get_unsigned_max(v, maximum), f'"{tok}" value', v)

    def timed(tok: str, rtax: int, scale: int) -> None:
        nonlocal mxlock
        v = a.next()
        if v == "lock":
            mxlock |= 1 << rtax
            v = a.next()
        got = _need(get_time_rtt(v), f'"{tok}" value', v)
        mx[rtax] = (got[0] if got[1] else got[0] * scale) & 0xFFFFFFFF

    while a.more():
        tok = a.cur
        if tok == "src":
            p = get_addr(a.next(), fam)
            fam = fam or p.family
            req.prefsrc = p.addr
            req.present |= bit(RTA_PREFSRC)
        elif tok == "as":
            raise _unsupported(tok)
        elif tok == "via":
            if gw_ok:
                raise ParseError(f'use nexthop syntax to specify multiple via "{tok}"')
            gw_ok = True
            v = a.next()
            vfam = read_family(v)
            if vfam == AF_UNSPEC:
                if v in ("link", "ipx", "dnet", "mpls", "bridge"):
                    raise _unsupported(f"via {v}")
                vfam = fam
            else:
                v = a.next()
            p = get_addr(v, vfam)
            fam = fam or p.family
            req.gateway = p.addr
            # a gateway of the route's own family is RTA_GATEWAY, else RTA_VIA
            req.present |= bit(RTA_GATEWAY if p.family == fam else RTA_VIA)
        elif tok == "from":
            raise _unsupported(tok)  # source-specific routes
        elif tok == "tos" or matches(tok, "dsfield"):
            v = a.next()
            req.tos = _dsfield(t, v)
        elif tok == "expires":
            raise _unsupported(tok)
        elif matches(tok, "metric") or matches(tok, "priority") or tok == "preference":
            v = a.next()
            req.priority = _need(get_u32(v), "metric", v)
            req.present |= bit(RTA_PRIORITY)
        elif tok == "scope":
            v = a.next()
            req.scope = _name_id(t.scopes, v, "scope")
            scope_ok = True
        elif tok in _LOCKABLE:
            metric(tok, _LOCKABLE[tok], 255 if tok == "hoplimit" else 0xFFFFFFFF)
        elif matches(tok, "reordering"):
            metric("reordering", RTAX_REORDERING)
        elif tok == "rtt":
            timed(tok, RTAX_RTT, 8)
        elif tok == "rto_min":
            mxlock |= 1 << RTAX_RTO_MIN  # ip always locks rto_min
            v = a.next()
            mx[RTAX_RTO_MIN] = _need(get_time_rtt(v), '"rto_min" value', v)[0]
        elif matches(tok, "window"):
            metric("window", RTAX_WINDOW)
        elif matches(tok, "cwnd"):
            metric("cwnd", RTAX_CWND)
        elif matches(tok, "initcwnd"):
            metric("initcwnd", RTAX_INITCWND)
        elif matches(tok, "initrwnd"):
            metric("initrwnd", RTAX_INITRWND)
        elif matches(tok, "features"):
            v = a.next()
            if v != "ecn":
                raise _bad('"features" value', v)
            mx[RTAX_FEATURES] = 1
        elif matches(tok, "quickack"):
            v = a.next()
            q = _need(get_unsigned_max(v, 0xFFFFFFFF), '"quickack" value', v)
            if q not in (0, 1):
                raise _bad('"quickack" value (0 or 1)', v)
            mx[RTAX_QUICKACK] = q
        elif matches(tok, "congctl"):
            raise _unsupported(tok)  # a string metric
        elif matches(tok, "rttvar"):
            timed("rttvar", RTAX_RTTVAR, 4)
        elif matches(tok, "ssthresh"):
            metric("ssthresh", RTAX_SSTHRESH)
        elif matches(tok, "realms"):
            v = a.next()
            req.realm = _need(get_rt_realms_or_raw(v, t), "realms", v)
            req.present |= bit(RTA_FLOW)
        elif tok == "onlink":
            req.rtm_flags |= RTNH_F_ONLINK
        elif tok == "nexthop":
            nhs_ok = True
            break
        elif tok == "nhid":
            v = a.next()
            req.nh_id = _need(get_u32(v), "nhid", v)
            req.present |= bit(RTA_NH_ID)
        elif matches(tok, "protocol"):
            v = a.next()
            req.protocol = _name_id(t.protos, v, "protocol")
        elif matches(tok, "table"):
            v = a.next()
            tid = _table_id(t, v)
            if tid < 256:
                rtm_table = tid
            else:  # ids >= 256 only fit in RTA_TABLE
                rtm_table, rta_table = RT_TABLE_UNSPEC, tid
            table_ok = True
        elif matches(tok, "vrf"):
            raise _unsupported(tok)
        elif tok in ("dev", "oif"):
            dev = a.next()
        elif matches(tok, "pref"):
            v = a.next()
            router_pref = {"low": 3, "medium": 0, "high": 1}.get(v)
            if router_pref is None:
                router_pref = _need(get_u8(v), '"pref" value', v)
        elif tok in ("encap", "ttl-propagate"):
            raise _unsupported(tok)
        elif matches(tok, "fastopen_no_cookie"):
            v = a.next()
            q = _need(get_unsigned_max(v, 0xFFFFFFFF), '"fastopen_no_cookie" value', v)
            if q not in (0, 1):
                raise _bad('"fastopen_no_cookie" value (0 or 1)', v)
            mx[RTAX_FASTOPEN_NO_COOKIE] = q
        else:
            if tok == "to":
                tok = a.next()
            rtype = rtntype_a2n(tok) if not tok[:1].isdigit() else None
            if rtype is not None:
                tok = a.next()
                req.type = rtype
            if matches(tok, "help"):
                raise ParseError(f'unknown keyword "{tok}"')
            if dst_ok:
                # ip: either "to" is duplicate, or TOKEN is a garbage
                if get_prefix_1(tok, fam) is None:
                    raise ParseError(f'unknown keyword "{tok}"')
                raise ParseError(f'duplicate destination "{tok}"')
            p = get_prefix(tok, fam)
            fam = fam or p.family
            req.dst_len = p.bitlen
            dst_ok = True
            if p.bytelen:
                req.dst = p.addr
                req.present |= bit(RTA_DST)
        a.advance()

    if not dst_ok:
        raise ParseError("missing destination prefix")
    if dev is not None:
        req.oif = ctx.ifindex(dev)
        req.present |= bit(RTA_OIF)
    if mx:
        if mxlock:
            mx[RTAX_LOCK] = mxlock
        req.metrics = mx
        req.present |= bit(RTA_METRICS)
    if nhs_ok:
        fam = _parse_nexthops(a, req, fam, ctx)
    if fam == AF_UNSPEC:
        fam = AF_INET
    req.family = fam
    if fam == AF_INET6 and router_pref is not None:
        # RTA_PREF: the IPv6 router preference (IPv4 ignores it)
        req.pref = router_pref
        req.present |= bit(RTA_PREF)
    if not table_ok and req.type in (RTN_LOCAL, RTN_BROADCAST, RTN_NAT, RTN_ANYCAST):
        rtm_table = RT_TABLE_LOCAL
    req.table = rta_table if rta_table is not None else rtm_table
    if rta_table is not None:
        req.present |= bit(RTA_TABLE)
    if not scope_ok:
        if fam == AF_INET6:
            req.scope = RT_SCOPE_UNIVERSE
        elif req.type in (RTN_LOCAL, RTN_NAT):
            req.scope = RT_SCOPE_HOST
        elif req.type in (RTN_BROADCAST, RTN_MULTICAST, RTN_ANYCAST):
            req.scope = RT_SCOPE_LINK
        elif req.type in (RTN_UNICAST, RTN_UNSPEC):
            if msg_type == RTM_DELROUTE:
                req.scope = RT_SCOPE_NOWHERE
            elif not gw_ok and not nhs_ok and not req.nh_id:
                req.scope = RT_SCOPE_LINK
    return Command([("route", req)])


def _parse_nexthops(a: _Args, req: RouteRequest, fam: int, ctx: Context) -> int:
    """parse_nexthops()/parse_one_nh(): the RTA_MULTIPATH legs; may set the
    route family from the first gateway."""
    legs = []
    while a.more():
        if a.cur != "nexthop":
            raise ParseError(f'"nexthop" or end of line is expected instead of "{a.cur}"')
        if a.i + 1 >= len(a.words):
            raise ParseError('unexpected end of line after "nexthop"')
        leg = NexthopRequest()
        a.advance()
        while a.more():
            tok = a.cur
            if tok == "via":
                v = a.next()
                vfam = read_family(v)
                if vfam == AF_UNSPEC:
                    vfam = fam
                else:
                    v = a.next()
                p = get_addr(v, vfam)
                fam = fam or p.family
                leg.gateway = p.addr
            elif tok == "dev":
                name = a.next()
                try:
                    leg.ifindex = ctx.ifindex(name)
                except ParseError as e:  # ip: parse_one_nh fails, then "cannot parse nexthop"
                    raise ParseError(f"{e}\nError: cannot parse nexthop") from None
            elif tok == "weight":
                v = a.next()
                w = get_unsigned_max(v, 0xFFFFFFFF)
                if w is None or not 1 <= w <= 256:
                    raise _bad('"weight"', v)
                leg.weight = w
            elif tok == "onlink":
                leg.flags |= RTNH_F_ONLINK
            elif matches(tok, "realms") or tok in ("encap", "as"):
                raise _unsupported(f"nexthop {tok}")
            else:
                break
            a.advance()
        legs.append(leg)
    req.nexthops = legs
    req.present |= bit(RTA_MULTIPATH)
    return fam


def _dsfield(t: RtTables, v: str) -> int:
    try:
        return t.dsfield.id(v)  # names or hex (base 16!)
    except ValueError:
        raise _bad("tos", v) from None


def _name_id(tab, v: str, what: str) -> int:
    try:
        return tab.id(v)
    except ValueError:
        raise _bad(what, v) from None


def _table_id(t: RtTables, v: str) -> int:
    try:
        return t.id(v)
    except ValueError:
        raise _bad("table", v) from None


# ---- ip route flush ------------------------------------------------------------


@dataclass
class _RouteFilter:
    """The subset of iproute.c's filter that ``ip route flush`` uses."""

    tb: int = RT_TABLE_MAIN
    protocol: int = 0
    protocolmask: int = 0
    scope: int = 0
    scopemask: int = 0
    typemask: int = 0
    tos: int = 0
    tosmask: int = 0
    oif: int = 0
    oifmask: int = 0
    metric: int = 0
    metricmask: int = 0
    realm: int = 0
    realmmask: int = 0
    rdst: Prefix | None = None
    mdst: Prefix | None = None
    rvia: Prefix | None = None
    rprefsrc: Prefix | None = None
    cloned: bool = False


def _bits(addr: IPAddress | None, nbytes: int | None = None) -> int:
    """An address as a 128-bit big-endian integer (inet_prefix.data)."""
    raw = addr.packed if addr is not None else b""
    if nbytes is not None:
        raw = raw[:nbytes]
    return int.from_bytes(raw.ljust(16, b"\0"), "big")


def inet_addr_match(a: int, b: int, bits: int) -> bool:
    if bits <= 0:
        return True
    shift = 128 - min(bits, 128)
    return (a >> shift) == (b >> shift)


def _family_of(addr: IPAddress) -> int:
    return AF_INET if addr.version == 4 else AF_INET6


class RouteFlush(Command):
    """``ip route flush SELECTOR``: dump, delete every match, repeat until a
    dump finds nothing (iproute_flush())."""

    def __init__(self, flt: _RouteFilter, families: list[int], family_filter: int):
        super().__init__()
        self.filter = flt
        self.families = families
        self.family_filter = family_filter

    def matching(self, policy) -> list[RouteRequest]:
        out = []
        for fam in self.families:
            state = {"ip6_multiple_tables": False}
            for r in policy.routes(fam, 0):
                if _route_filter_match(r, self.filter, self.family_filter, state):
                    out.append(r)
        return out

    def apply(self, policy) -> None:
        if self.filter.cloned:
            return  # "flush cache": there is no route cache in the model
        rounds = 0
        while True:
            victims = self.matching(policy)
            if not victims:
                return
            rounds += 1
            if rounds > 64:
                raise ParseError(f"Flush not completed, {len(victims)} entries remain")
            for r in victims:
                d = copy.deepcopy(r)
                d.msg_type, d.nlmsg_flags = RTM_DELROUTE, 0
                try:
                    policy.route(d)
                except PolicyError as e:
                    raise ParseError(f"Failed to send flush request: {e.strerror}") from e


def _route_filter_match(r: RouteRequest, f: _RouteFilter, family_filter: int, state: dict) -> bool:
    """filter_nlmsg() of ip/iproute.c for one dumped route."""
    table = r.table
    if family_filter != AF_UNSPEC and r.family != family_filter:
        return False
    if r.family == AF_INET6 and table != RT_TABLE_MAIN:
        state["ip6_multiple_tables"] = True
    if r.family == AF_INET6 and not state["ip6_multiple_tables"]:
        if f.tb:
            if f.tb == RT_TABLE_LOCAL:
                if r.type != RTN_LOCAL:
                    return False
            elif f.tb == RT_TABLE_MAIN:
                if r.type == RTN_LOCAL:
                    return False
            else:
                return False
    elif f.tb > 0 and f.tb != table:
        return False
    if (f.protocol ^ r.protocol) & f.protocolmask:
        return False
    if (f.scope ^ r.scope) & f.scopemask:
        return False
    if f.typemask and not f.typemask & (1 << r.type):
        return False
    if (f.tos ^ r.tos) & f.tosmask:
        return False
    for pfx, is_root in ((f.rdst, True), (f.mdst, False)):
        if pfx is None:
            continue
        if pfx.family and r.family != pfx.family:
            return False
        if pfx.family or pfx.flags & PREFIXLEN_SPECIFIED:
            if is_root and pfx.bitlen > r.dst_len:
                return False
            if not is_root and 0 <= pfx.bitlen < r.dst_len:
                return False
    dst = _bits(r.dst, (r.dst_len + 7) // 8) if r.dst_len else 0
    if f.rvia is not None:
        gw_family = _family_of(r.gateway) if r.gateway is not None else r.family
        if f.rvia.family != gw_family:
            return False
    if f.rprefsrc is not None and f.rprefsrc.family and r.family != f.rprefsrc.family:
        return False
    if f.rdst is not None and (f.rdst.family or f.rdst.flags & PREFIXLEN_SPECIFIED):
        if not inet_addr_match(dst, _bits(f.rdst.addr), f.rdst.bitlen):
            return False
    if f.mdst is not None and (f.mdst.family or f.mdst.flags & PREFIXLEN_SPECIFIED):
        if not inet_addr_match(dst, _bits(f.mdst.addr), r.dst_len):
            return False
    if f.rvia is not None and f.rvia.bitlen > 0:
        if not inet_addr_match(_bits(r.gateway), _bits(f.rvia.addr), f.rvia.bitlen):
            return False
    if f.rprefsrc is not None and f.rprefsrc.bitlen > 0:
        if not inet_addr_match(_bits(r.prefsrc), _bits(f.rprefsrc.addr), f.rprefsrc.bitlen):
            return False
    if f.realmmask and (r.realm ^ f.realm) & f.realmmask:
        return False
    if f.oifmask and (r.oif ^ f.oif) & f.oifmask:
        return False
    if f.metricmask:
        metric = r.priority if (r.family == AF_INET6 or r.priority) else 0
        if (metric ^ f.metric) & f.metricmask:
            return False
    # the IPv6 null entry (unreachable default, metric 0xFFFFFFFF) is never flushed
    return not (
        r.family == AF_INET6 and r.dst_len == 0 and r.type == RTN_UNREACHABLE and r.priority & 4294967295 == 4294967295
    )


def _route_flush(a: _Args, ctx: Context) -> Command:
    t = ctx.tables
    if not a.more():
        raise ParseError('"ip route flush" requires arguments')
    f = _RouteFilter()
    dump_family = ctx.family
    od = None
    while a.more():
        tok = a.cur
        if matches(tok, "table"):
            v = a.next()
            try:
                f.tb = t.id(v)
            except ValueError:
                if v == "all":
                    f.tb = 0
                elif v == "cache":
                    f.cloned = True
                else:
                    raise _bad("table", v) from None
        elif matches(tok, "vrf"):
            raise _unsupported(tok)
        elif matches(tok, "cached") or matches(tok, "cloned"):
            f.cloned = True
        elif tok == "tos" or matches(tok, "dsfield"):
            f.tos = _dsfield(t, a.next())
            f.tosmask = -1
        elif matches(tok, "protocol"):
            v = a.next()
            f.protocolmask = -1
            try:
                f.protocol = t.protos.id(v)
            except ValueError:
                if v != "all":
                    raise _bad("protocol", v) from None
                f.protocol, f.protocolmask = 0, 0
        elif matches(tok, "scope"):
            v = a.next()
            f.scopemask = -1
            try:
                f.scope = t.scopes.id(v)
            except ValueError:
                if v != "all":
                    raise _bad("scope", v) from None
                f.scope, f.scopemask = RT_SCOPE_NOWHERE, 0
        elif matches(tok, "type"):
            v = a.next()
            f.typemask = 1 << _need(rtntype_a2n(v), "type", v)
        elif tok in ("dev", "oif"):
            od = a.next()
        elif tok in ("iif", "mark"):
            raise _unsupported(tok)  # dumped routes carry neither
        elif matches(tok, "metric") or matches(tok, "priority") or tok == "preference":
            v = a.next()
            f.metric = _need(get_u32(v), "metric", v)
            f.metricmask = -1
        elif tok == "via":
            v = a.next()
            vfam = read_family(v)
            if vfam == AF_UNSPEC:
                vfam = dump_family
            else:
                v = a.next()
            f.rvia = get_prefix(v, vfam)
        elif tok == "src":
            f.rprefsrc = get_prefix(a.next(), dump_family)
        elif matches(tok, "realms"):
            v = a.next()
            f.realm = _need(get_rt_realms_or_raw(v, t), "realms", v)
            f.realmmask = 0xFFFFFFFF
            if f.realm & 0xFFFF == 0 and v.endswith("/"):
                f.realmmask &= ~0xFFFF
            if f.realm & 0xFFFF0000 == 0 and ("/" not in v or v.startswith("/")):
                f.realmmask &= ~0xFFFF0000
        elif matches(tok, "from"):
            raise _unsupported(tok)
        else:
            if matches(tok, "to"):
                tok = a.next()
            if matches(tok, "root"):
                f.rdst = get_prefix(a.next(), dump_family)
            elif matches(tok, "match"):
                f.mdst = get_prefix(a.next(), dump_family)
            else:
                if matches(tok, "exact"):
                    tok = a.next()
                f.mdst = get_prefix(tok, dump_family)
                f.rdst = f.mdst
        a.advance()
    if dump_family == AF_UNSPEC and f.tb:
        dump_family = AF_INET
    if od is not None:
        f.oif, f.oifmask = ctx.ifindex(od), -1
    families = [dump_family] if dump_family else [AF_INET, AF_INET6]
    return RouteFlush(f, families, ctx.family)


# ---- ip rule ------------------------------------------------------------------


def _rule_modify(a: _Args, msg_type: int, ctx: Context) -> Command:
    t = ctx.tables
    fam = ctx.family  # ip rule does NOT take the family from addresses
    req = RuleRequest(msg_type, NLM_F_CREATE | NLM_F_EXCL if msg_type == RTM_NEWRULE else 0)
    req.action = FR_ACT_TO_TBL if msg_type == RTM_NEWRULE else FR_ACT_UNSPEC
    frh_table, fra_table = 0, None
    table_ok = l3mdev_rule = False
    tid = 0
    addr_family_seen = {}
    if not a.more():
        which = "add" if msg_type == RTM_NEWRULE else "del"
        raise ParseError(f'"ip rule {which}" requires arguments')

    def port_range(tok: str) -> tuple[int, int]:
        v = a.next()
        got = scan_uint(v, 0)
        if got is None:
            raise _bad("port range", v)
        start, end = got[0] & 0xFFFF, got[0] & 0xFFFF
        if got[1] < len(v) and v[got[1]] == "-":
            got2 = scan_uint(v, got[1] + 1)
            if got2 is not None:
                end = got2[0] & 0xFFFF
        return start, end

    while a.more():
        tok = a.cur
        if tok == "not":
            req.flags |= FIB_RULE_INVERT
        elif tok in ("from", "to"):
            v = a.next()
            p = get_prefix(v, fam)
            if tok == "from":
                req.src_len = p.bitlen
                req.src = p.addr
                if p.bytelen:
                    req.present |= bit(FRA_SRC)
            else:
                req.dst_len = p.bitlen
                req.dst = p.addr
                if p.bytelen:
                    req.present |= bit(FRA_DST)
            if p.bytelen:
                addr_family_seen[tok] = p.family
        elif matches(tok, "preference") or matches(tok, "order") or matches(tok, "priority"):
            v = a.next()
            req.priority = _need(get_u32(v), "preference", v)
            req.present |= bit(FRA_PRIORITY)
        elif tok == "tos" or matches(tok, "dsfield"):
            req.tos = _dsfield(t, a.next())
        elif tok == "fwmark":
            v = a.next()
            mark_s, slash, mask_s = v.partition("/")
            req.fwmark = _need(get_u32(mark_s), "fwmark", mark_s)
            req.present |= bit(FRA_FWMARK)
            if slash:  # the mask is sent only when written
                req.fwmask = _need(get_u32(mask_s), "fwmask", mask_s)
                req.present |= bit(FRA_FWMASK)
        elif matches(tok, "realms"):
            v = a.next()
            req.realm = _need(get_rt_realms_or_raw(v, t), "realms", v)
            req.present |= bit(FRA_FLOW)
        elif matches(tok, "protocol"):
            v = a.next()
            req.protocol = _name_id(t.protos, v, "protocol")
            req.present |= bit(FRA_PROTOCOL)
        elif matches(tok, "tun_id"):
            v = a.next()
            req.tun_id = _need(get_u64(v), "tun_id", v)
            req.present |= bit(FRA_TUN_ID)
        elif matches(tok, "table") or tok == "lookup":
            v = a.next()
            tid = _table_id(t, v)
            if tid < 256:
                frh_table = tid
            else:  # ids >= 256 only fit in FRA_TABLE
                frh_table, fra_table = RT_TABLE_UNSPEC, tid
            table_ok = True
        elif matches(tok, "suppress_prefixlength") or tok == "sup_pl":
            v = a.next()
            pl = get_s32(v)
            if pl is None or pl < 0:
                raise _bad("suppress_prefixlength", v)
            req.suppress_prefixlen = pl
            req.present |= bit(FRA_SUPPRESS_PREFIXLEN)
        elif matches(tok, "suppress_ifgroup") or tok == "sup_group":
            v = a.next()
            try:
                req.suppress_ifgroup = t.group_id(v)
            except ValueError:
                raise _bad("suppress_ifgroup", v) from None
            req.present |= bit(FRA_SUPPRESS_IFGROUP)
        elif tok in ("dev", "iif"):
            v = a.next()
            if not check_ifname(v):
                raise _bad("iif", v)
            req.iifname = v
            req.present |= bit(FRA_IIFNAME)
        elif tok == "oif":
            v = a.next()
            if not check_ifname(v):
                raise _bad("oif", v)
            req.oifname = v
            req.present |= bit(FRA_OIFNAME)
        elif tok == "l3mdev":
            req.l3mdev = 1
            req.present |= bit(FRA_L3MDEV)
            table_ok = l3mdev_rule = True
        elif tok == "uidrange":
            v = a.next()
            got = scan_uint(v, 0)
            got2 = None
            if got is not None and got[1] < len(v) and v[got[1]] == "-":
                got2 = scan_uint(v, got[1] + 1)
            if got2 is None:
                raise _bad("uid range", v)
            req.uid_start, req.uid_end = got[0] & 0xFFFFFFFF, got2[0] & 0xFFFFFFFF
            req.present |= bit(FRA_UID_RANGE)
        elif tok == "nat" or matches(tok, "map-to"):
            raise _unsupported(tok)  # route NAT is long gone
        elif tok == "ipproto":
            v = a.next()
            req.ip_proto = _need(inet_proto_a2n(v), "ipproto", v)
            req.present |= bit(FRA_IP_PROTO)
        elif tok == "sport":
            req.sport_start, req.sport_end = port_range(tok)
            req.present |= bit(FRA_SPORT_RANGE)
        elif tok == "dport":
            req.dport_start, req.dport_end = port_range(tok)
            req.present |= bit(FRA_DPORT_RANGE)
        else:
            if tok == "type":
                tok = a.next()
            if matches(tok, "help"):
                raise ParseError(f'unknown keyword "{tok}"')
            if matches(tok, "goto"):
                v = a.next()
                req.goto_target = _need(get_u32(v), "goto target", v)
                req.present |= bit(FRA_GOTO)
                action = FR_ACT_GOTO
            elif matches(tok, "nop"):
                action = FR_ACT_NOP
            else:
                action = rtntype_a2n(tok)
                if action is None:
                    raise ParseError(f'unknown keyword "{tok}"')
            req.action = action
            table_ok = True
        a.advance()

    if l3mdev_rule and tid != 0:
        raise ParseError("table can not be specified for l3mdev rules")
    if fam == AF_UNSPEC:
        fam = AF_INET
    req.family = fam
    if not table_ok and msg_type == RTM_NEWRULE:
        frh_table = RT_TABLE_MAIN
    req.table = fra_table if fra_table is not None else frh_table
    if fra_table is not None:
        req.present |= bit(FRA_TABLE)
    # ip leaves the rule family at its default (inet) even for IPv6 addresses:
    # the kernel then refuses the wrong-sized address attribute.  The request
    # dataclass cannot carry that size, so the refusal is produced here.
    want = 4 if fam == AF_INET else 16
    for key, text in (("from", "Invalid source address"), ("to", "Invalid dst address")):
        got = addr_family_seen.get(key)
        if got is not None and (4 if got == AF_INET else 16) != want:
            raise PolicyError(_errno.EINVAL, text)
    return Command([("rule", req)])


@dataclass
class _RuleFilter:
    """iprule.c's list/flush filter."""

    pref: int | None = None
    invert: bool = False
    src: Prefix | None = None
    dst: Prefix | None = None
    tos: int | None = None
    fwmark: int = 0
    fwmask: int = 0
    iif: str | None = None
    oif: str | None = None
    l3mdev: bool = False
    uidrange: tuple[int, int] | None = None
    ipproto: int = 0
    sport: tuple[int, int] = (0, 0)
    dport: tuple[int, int] = (0, 0)
    tun_id: int = 0
    tb: int = 0
    protocol: int = 0
    protocolmask: int = 0


def _prefix_match_rule(f: Prefix, fam: int, plen: int, addr: IPAddress | None) -> bool:
    if f.family != fam or f.bitlen > plen:
        return False
    if addr is None or not plen or f.family == AF_UNSPEC or f.bitlen <= 0:
        return True  # inet_addr_match_rta() without an attribute matches
    return inet_addr_match(_bits(addr), _bits(f.addr), f.bitlen)


def _rule_filter_match(r: RuleRequest, f: _RuleFilter) -> bool:
    if f.pref is not None and f.pref != r.priority:
        return False
    if f.invert and not r.flags & FIB_RULE_INVERT:
        return False
    if f.src is not None and not _prefix_match_rule(f.src, r.family, r.src_len, r.src):
        return False
    if f.dst is not None and not _prefix_match_rule(f.dst, r.family, r.dst_len, r.dst):
        return False
    if f.tos is not None and f.tos != r.tos:
        return False
    mark_dumped = r.fwmark
    mask_dumped = r.fwmask if (r.fwmark or r.fwmask) else 0
    if f.fwmark and f.fwmark != mark_dumped:
        return False
    if f.fwmask and f.fwmask != mask_dumped:
        return False
    if f.iif is not None and f.iif != r.iifname:
        return False
    if f.oif is not None and f.oif != r.oifname:
        return False
    if f.l3mdev and not r.l3mdev:
        return False
    if f.uidrange is not None and f.uidrange != (r.uid_start, r.uid_end):
        return False
    if f.ipproto and f.ipproto != r.ip_proto:
        return False
    if f.sport[0] and f.sport != (r.sport_start, r.sport_end):
        return False
    if f.dport[0] and f.dport != (r.dport_start, r.dport_end):
        return False
    if f.tun_id and f.tun_id != r.tun_id:
        return False
    if f.tb > 0 and f.tb != r.table:
        return False
    return not (f.protocol ^ r.protocol) & f.protocolmask


class RuleFlush(Command):
    """``ip rule flush [SELECTOR]``: every dumped rule of the family that
    matches and has a FRA_PRIORITY (pref != 0) is sent back as a delete."""

    def __init__(self, flt: _RuleFilter, family: int):
        super().__init__()
        self.filter = flt
        self.family = family

    def matching(self, policy) -> list[RuleRequest]:
        return [r for r in policy.rules(self.family) if r.priority != 0 and _rule_filter_match(r, self.filter)]

    def apply(self, policy) -> None:
        for r in self.matching(policy):
            d = copy.deepcopy(r)
            d.msg_type, d.nlmsg_flags = RTM_DELRULE, 0
            policy.rule(d)


def _rule_flush(a: _Args, ctx: Context) -> Command:
    t = ctx.tables
    af = ctx.family or AF_INET
    f = _RuleFilter()

    def ports(v: str) -> tuple[int, int]:
        got = scan_uint(v, 0)
        if got is None:
            raise _bad("port range", v)
        start = end = got[0] & 0xFFFF
        if got[1] < len(v) and v[got[1]] == "-":
            got2 = scan_uint(v, got[1] + 1)
            if got2 is not None:
                end = got2[0] & 0xFFFF
        return start, end

    while a.more():
        tok = a.cur
        if matches(tok, "preference") or matches(tok, "order") or matches(tok, "priority"):
            v = a.next()
            f.pref = _need(get_u32(v), "preference", v)
        elif tok == "not":
            f.invert = True
        elif tok == "tos":
            f.tos = _dsfield(t, a.next())
        elif tok == "fwmark":
            v = a.next()
            mark_s, slash, mask_s = v.partition("/")
            f.fwmark = _need(get_u32(mark_s), "fwmark", mark_s)
            if slash:
                f.fwmask = _need(get_u32(mask_s), "fwmask", mask_s)
        elif tok in ("dev", "iif"):
            v = a.next()
            if not check_ifname(v):
                raise _bad("iif", v)
            f.iif = v
        elif tok == "oif":
            v = a.next()
            if not check_ifname(v):
                raise _bad("oif", v)
            f.oif = v
        elif tok == "l3mdev":
            f.l3mdev = True
        elif tok == "uidrange":
            v = a.next()
            got = scan_uint(v, 0)
            got2 = None
            if got is not None and got[1] < len(v) and v[got[1]] == "-":
                got2 = scan_uint(v, got[1] + 1)
            if got2 is None:
                raise _bad("uid range", v)
            f.uidrange = (got[0] & 0xFFFFFFFF, got2[0] & 0xFFFFFFFF)
        elif matches(tok, "tun_id"):
            v = a.next()
            f.tun_id = _need(get_u64(v), "tun_id", v)
        elif matches(tok, "lookup") or matches(tok, "table"):
            f.tb = _table_id(t, a.next())
        elif matches(tok, "from") or matches(tok, "src"):
            f.src = get_prefix(a.next(), af)
        elif matches(tok, "protocol"):
            v = a.next()
            f.protocolmask = -1
            try:
                f.protocol = t.protos.id(v)
            except ValueError:
                if v != "all":
                    raise _bad("protocol", v) from None
                f.protocol, f.protocolmask = 0, 0
        elif tok == "ipproto":
            v = a.next()
            f.ipproto = _need(inet_proto_a2n(v), "ipproto", v)
        elif tok == "sport":
            f.sport = ports(a.next())
        elif tok == "dport":
            f.dport = ports(a.next())
        else:
            if matches(tok, "dst") or matches(tok, "to"):
                tok = a.next()
            f.dst = get_prefix(tok, af)
        a.advance()
    return RuleFlush(f, af)


# ---- ip address ---------------------------------------------------------------


def _addr_modify(a: _Args, msg_type: int, flags: int, ctx: Context) -> Command:
    t = ctx.tables
    fam = ctx.family
    warnings = []
    dev = label = None
    lcl: Prefix | None = None
    brd_len = 0
    broadcast = None
    scope = None
    metric = 0
    ifa_flags = 0
    while a.more():
        tok = a.cur
        if tok in ("peer", "remote", "anycast"):
            raise _unsupported(tok)
        elif matches(tok, "broadcast") or tok == "brd":
            v = a.next()
            if brd_len:
                raise ParseError(f'duplicate "broadcast": "{v}"')
            if v == "+":
                brd_len = -1
            elif v == "-":
                brd_len = -2
            else:
                p = get_addr(v, fam)
                fam = fam or p.family
                broadcast = p.addr
                brd_len = p.bytelen
        elif tok == "scope":
            scope = _name_id(t.scopes, a.next(), "scope")
        elif tok == "dev":
            dev = a.next()
        elif tok == "label":
            label = a.next()
        elif matches(tok, "metric") or matches(tok, "priority") or matches(tok, "preference"):
            v = a.next()
            metric = _need(get_u32(v), "metric", v)
        elif matches(tok, "valid_lft") or matches(tok, "preferred_lft"):
            v = a.next()
            if v != "forever":
                raise _unsupported(tok)  # lifetimes are not modelled
        elif tok in _IFA_FLAGS:
            mask, readonly, v6only = _IFA_FLAGS[tok]
            if readonly:
                warnings.append(f"Warning: {tok} option is not mutable from userspace")
            elif v6only and fam != AF_INET6:
                # judged on the family known so far, as ip does
                warnings.append(f"Warning: {tok} option can be set only for IPv6 addresses")
            else:
                ifa_flags |= mask
        else:
            if tok == "local":
                tok = a.next()
            if matches(tok, "help"):
                raise ParseError(f'unknown keyword "{tok}"')
            if lcl is not None:
                if get_prefix_1(tok, fam) is None:
                    raise ParseError(f'unknown keyword "{tok}"')
                raise ParseError(f'duplicate local address "{tok}"')
            lcl = get_prefix(tok, fam)
            fam = fam or lcl.family
        a.advance()
    if dev is None:
        raise ParseError('Not enough information: "dev" argument is required.')
    # is_valid_label(): the device name, alone or followed by ":..."
    if label is not None and not (label.startswith(dev) and label[len(dev) : len(dev) + 1] in ("", ":")):
        raise _bad("label", label)
    if lcl is None or lcl.addr is None:
        raise ParseError("missing local address")
    prefixlen = lcl.bitlen
    wildcard = msg_type == RTM_DELADDR and lcl.family == AF_INET and not lcl.flags & PREFIXLEN_SPECIFIED
    if wildcard:
        warnings.append(
            "Warning: Executing wildcard deletion to stay compatible with old scripts.\n"
            f"         Explicitly specify the prefix length ({_addr_text(lcl.addr)}/32)"
            " to avoid this warning.\n"
            "         This special behaviour is likely to disappear in further releases,\n"
            "         fix your scripts!"
        )
    if brd_len < 0 and msg_type != RTM_DELADDR:
        if fam != AF_INET:
            raise ParseError("Broadcast can be set only for IPv4 addresses")
        if prefixlen <= 30:
            host = (1 << (32 - prefixlen)) - 1
            value = int(lcl.addr)
            value = value | host if brd_len == -1 else value & ~host
            broadcast = ipaddress.IPv4Address(value)
    if scope is None:
        scope = 0
        if msg_type != RTM_DELADDR and lcl.family == AF_INET and lcl.addr.packed[0] == 127:
            scope = RT_SCOPE_HOST  # default_scope(): loopback addresses
    ifindex = ctx.ifindex(dev)
    if ifa_flags & IFA_F_MCAUTOJOIN and not lcl.addr.is_multicast:
        raise ParseError("autojoin needs multicast address")
    if wildcard:
        # without IFA_ADDRESS the kernel deletes the first address with this
        # local on the device whatever its prefix length
        for info in ctx.policy.addresses():
            if info.ifindex == ifindex and info.local == lcl.addr:
                prefixlen = info.prefixlen
                break
    fam = fam or AF_INET
    if fam != AF_INET:
        broadcast = None  # the kernel ignores IFA_BROADCAST for IPv6
    req = AddrRequest(
        msg_type,
        flags,
        fam,
        ifindex,
        lcl.addr,
        prefixlen,
        scope=scope,
        flags=ifa_flags,
        metric=metric,
        broadcast=broadcast,
    )
    return Command([("addr", req)], warnings)


def _addr_text(addr: IPAddress) -> str:
    if addr.version == 4:
        return str(addr)
    return socket.inet_ntop(socket.AF_INET6, addr.packed)


# ---- ip link ------------------------------------------------------------------


def _link_args(a: _Args, tables: RtTables, allow_type: bool) -> dict:
    """The part of iplink_parse() the model knows: name/dev, up/down, group,
    and (for add) ``type KIND [peer [name] PEER]``."""
    out = {"dev": None, "name": None, "up": None, "group": None, "kind": "", "peer": None}
    while a.more():
        tok = a.cur
        if tok == "up":
            out["up"] = True
        elif tok == "down":
            out["up"] = False
        elif tok == "name":
            v = a.next()
            if out["name"] is not None:
                raise ParseError(f'duplicate "name": "{v}"')
            if not check_ifname(v):
                raise _bad('"name"', v)
            out["name"] = v
        elif matches(tok, "group"):
            v = a.next()
            try:
                out["group"] = tables.group_id(v)
            except ValueError:
                raise _bad('"group" value', v) from None
        elif tok == "addrgenmode":
            # the model never creates IPv6 link-local addresses, which is what
            # `addrgenmode none` asks of the kernel; other modes would need them
            v = a.next()
            if v != "none":
                raise _unsupported(f"addrgenmode {v}")
        elif matches(tok, "type") and allow_type:
            out["kind"] = a.next()
            a.advance()
            _link_type_args(a, tables, out)
            break
        elif tok in (
            "mtu",
            "address",
            "broadcast",
            "brd",
            "txqueuelen",
            "txqlen",
            "master",
            "nomaster",
            "netns",
            "link",
            "index",
            "arp",
            "multicast",
            "promisc",
            "alias",
            "vrf",
            "state",
            "mode",
        ):
            raise _unsupported(tok)
        else:
            if matches(tok, "help"):
                raise ParseError(f'unknown keyword "{tok}"')
            if tok == "dev":
                tok = a.next()
            if out["dev"] is not None:
                raise ParseError(f'unknown keyword "{tok}"')
            if not tok or any(c == "/" or c.isspace() for c in tok):
                raise _bad('"dev"', tok)
            out["dev"] = tok
        a.advance()
    return out


def _link_type_args(a: _Args, tables: RtTables, out: dict) -> None:
    kind = out["kind"]
    if kind != "veth":
        if a.more():
            raise _unsupported(f"{kind} {a.cur}")
        return
    if not a.more():
        return
    if a.cur != "peer":
        raise ParseError(f'unknown keyword "{a.cur}"')
    a.advance()
    peer = _link_args(a, tables, allow_type=False)
    if peer["up"] is not None or peer["group"] is not None:
        raise _unsupported("peer options")
    out["peer"] = peer["name"] or peer["dev"] or ""


def _link_cmd(sub: str, a: _Args, ctx: Context) -> Command:
    args = _link_args(a, ctx.tables, allow_type=sub in ("add", "delete"))
    if sub == "add":
        name = args["name"] or args["dev"]
        if not name:
            raise ParseError('Not enough information: "dev" argument is required.')
        if not args["kind"]:
            raise ParseError('Not enough information: "type" argument is required')
        reqs = [("link", LinkRequest("add", name, kind=args["kind"], peer=args["peer"] or ""))]
        if args["up"] is not None or args["group"] is not None:
            reqs.append(("link", LinkRequest("set", name, up=args["up"], group=args["group"])))
        return Command(reqs)
    dev = args["dev"]
    if dev is None:
        raise ParseError('Not enough information: "dev" argument is required.')
    ctx.ifindex(dev)  # "Cannot find device" before anything is sent
    if sub == "delete":
        return Command([("link", LinkRequest("del", dev))])
    newname = args["name"] if args["name"] not in (None, dev) else ""
    return Command([("link", LinkRequest("set", dev, up=args["up"], group=args["group"], newname=newname))])


def _tuntap_cmd(sub: str, a: _Args, ctx: Context) -> Command:
    """`ip tuntap add|del [dev] NAME mode tap|tun`: a device without a reader,
    so it never has carrier."""
    name, mode = None, None
    while a.more():
        tok = a.cur
        if tok == "mode":
            mode = a.next()
            if mode not in ("tap", "tun"):
                raise _bad('"mode"', mode)
        elif tok == "dev" or matches(tok, "name"):
            name = a.next()
        elif tok in ("user", "group", "one_queue", "pi", "vnet_hdr", "multi_queue", "persist"):
            raise _unsupported(tok)
        elif name is None:
            name = tok
        else:
            raise ParseError(f'unknown keyword "{tok}"')
        a.advance()
    if not name:
        raise ParseError('Not enough information: "dev" argument is required.')
    if mode is None:
        raise ParseError("You failed to specify a tunnel mode")
    if not check_ifname(name):
        raise _bad('"dev"', name)
    if sub == "delete":
        ctx.ifindex(name)
        return Command([("link", LinkRequest("del", name))])
    return Command([("link", LinkRequest("add", name, kind="tap" if mode == "tap" else "tun"))])


# ---------------------------------------------------------------------------
# ip route get
# ---------------------------------------------------------------------------


@dataclass
class GetArgs:
    """The RTM_GETROUTE request ``ip route get`` builds (names unresolved).

    ``dst_len`` is what ip sends: 32/128 whatever was written (it warns and
    forces it); ``src_len`` is the ``from`` prefix length as written (the
    kernel's strict check refuses anything but 0 or the full length).
    ``mark`` 0 is not sent; ``ip_proto``/``uid``/ports are None when not given
    (the kernel then defaults IPv4 to UDP and the uid to the caller's).
    """

    family: int
    dst: IPAddress
    dst_len: int
    src: IPAddress | None = None
    src_len: int = 0
    iif: str | None = None
    oif: str | None = None
    tos: int = 0
    mark: int = 0
    uid: int | None = None
    ip_proto: int | None = None
    sport: int | None = None
    dport: int | None = None
    fibmatch: bool = False
    connected: bool = False
    notify: bool = False
    warnings: list[str] = field(default_factory=list)


def parse_route_get(tokens: list[str], tables: RtTables | None = None, family: int = AF_UNSPEC) -> GetArgs:
    """The arguments after ``ip [-4|-6] route get``; ValueError (ParseError)
    naming the token on error."""
    t = tables if tables is not None else RtTables()
    a = _Args(list(tokens))
    fam = family
    dst: Prefix | None = None
    dst_len = 0
    src: Prefix | None = None
    out = GetArgs(AF_UNSPEC, ipaddress.IPv4Address(0), 0)
    while a.more():
        tok = a.cur
        if tok == "tos" or matches(tok, "dsfield"):
            out.tos = _dsfield(t, a.next())
        elif matches(tok, "from"):
            v = a.next()
            if matches(v, "help"):
                raise ParseError(f'unknown keyword "{v}"')
            src = get_prefix(v, fam)
            fam = fam or src.family
            out.src_len = src.bitlen
        elif matches(tok, "iif"):
            out.iif = a.next()
        elif matches(tok, "mark"):
            v = a.next()
            out.mark = _need(get_unsigned_max(v, 0xFFFFFFFF), "mark", v)
        elif matches(tok, "oif") or tok == "dev":
            out.oif = a.next()
        elif matches(tok, "notify"):
            out.notify = True
        elif matches(tok, "connected"):
            out.connected = True
        elif matches(tok, "vrf"):
            raise _unsupported(tok)
        elif matches(tok, "uid"):
            v = a.next()
            out.uid = _need(get_unsigned_max(v, 0xFFFFFFFF), "uid", v)
        elif matches(tok, "fibmatch"):
            out.fibmatch = True
        elif tok == "as":
            raise _unsupported(tok)
        elif matches(tok, "sport"):
            v = a.next()
            out.sport = _need(get_u16(v), "sport", v)
        elif matches(tok, "dport"):
            v = a.next()
            out.dport = _need(get_u16(v), "dport", v)
        elif matches(tok, "ipproto"):
            v = a.next()
            out.ip_proto = _need(inet_proto_a2n(v), "ipproto", v)
        else:
            if tok == "to":
                tok = a.next()
            if matches(tok, "help"):
                raise ParseError(f'unknown keyword "{tok}"')
            dst = get_prefix(tok, fam)
            fam = fam or dst.family
            full = {AF_INET: 32, AF_INET6: 128}.get(fam)
            if full is not None and dst.bitlen != full:
                out.warnings.append(
                    f"Warning: /{dst.bitlen} as prefix is invalid, only /{full} (or none) is supported."
                )
                dst_len = full
            else:
                dst_len = dst.bitlen
        a.advance()
    if dst is None:
        raise ParseError("need at least a destination address")
    fam = fam or AF_INET
    out.family = fam
    out.dst = dst.addr if dst.bytelen else _zero(fam)
    out.dst_len = dst_len
    if src is not None and src.bytelen:
        out.src = src.addr
    return out


# ---------------------------------------------------------------------------
# dispatch: ip.c's object table and the per-object command tables
# ---------------------------------------------------------------------------

_OBJECTS = (
    "address",
    "addrlabel",
    "maddress",
    "route",
    "rule",
    "neighbor",
    "neighbour",
    "ntable",
    "ntbl",
    "link",
    "l2tp",
    "fou",
    "ila",
    "macsec",
    "tunnel",
    "tunl",
    "tuntap",
    "tap",
    "token",
    "tcpmetrics",
    "tcp_metrics",
    "monitor",
    "xfrm",
    "mroute",
    "mrule",
    "netns",
    "netconf",
    "vrf",
    "sr",
    "nexthop",
    "mptcp",
    "ioam",
    "help",
    "stats",
)


def _first_match(word: str, choices) -> str | None:
    for c in choices:
        if matches(word, c):
            return c
    return None


def _not_a_change(obj: str, sub: str) -> ParseError:
    return ParseError(f'"{obj} {sub}" does not change anything; not supported here')


def _strip_prefix(words: list[str], family: int) -> tuple[list[str], int]:
    """Drop a leading ``ip`` and ip's global options -4/-6/-f FAMILY."""
    if words and words[0] == "ip":
        words = words[1:]
    while words and words[0].startswith("-"):
        opt = words[0]
        if opt.startswith("--"):
            opt = opt[1:]
        if opt == "-4":
            family = AF_INET
        elif opt == "-6":
            family = AF_INET6
        elif matches(opt, "-family") and len(opt) > 1:
            if len(words) < 2:
                raise ParseError(f'missing argument after "{words[0]}"')
            fam = {"inet": AF_INET, "inet6": AF_INET6, "help": None}.get(words[1])
            if fam is None:
                raise ParseError(f'unsupported family "{words[1]}"')
            family = fam
            words = words[1:]
        else:
            raise ParseError(f'unsupported option "{words[0]}"')
        words = words[1:]
    return words, family


def parse_command(
    words: list[str], policy, tables: RtTables | None = None, family: int = AF_UNSPEC, route_proto: int = RTPROT_BOOT
) -> Command:
    """Parse one ``ip`` command (words as makeargs splits them; a leading
    ``ip`` and -4/-6 are allowed).  Device names resolve against ``policy``.
    ``route_proto`` is the protocol of a route added without ``proto`` (ip's
    is boot; provisioning uses its owner protocol).
    Raises ParseError, or PolicyError for the few refusals decided client-side."""
    t = tables if tables is not None else RtTables()
    words, family = _strip_prefix(list(words), family)
    if not words:
        raise ParseError("missing object")
    obj = _first_match(words[0], _OBJECTS)
    if obj is None:
        raise ParseError(f'unknown object "{words[0]}"')
    if obj == "tap":
        obj = "tuntap"
    if obj not in ("address", "route", "rule", "link", "tuntap"):
        raise ParseError(f'unsupported object "{obj}"')
    ctx = Context(policy, t, family, route_proto)
    if len(words) < 2:
        raise _not_a_change(obj, "show")
    sub_word = words[1]
    a = _Args(words[2:])

    if obj == "route":
        for name, msg_type, flags in _ROUTE_CMDS[:6]:
            if matches(sub_word, name) or (name == "change" and sub_word == "chg"):
                return _route_modify(a, msg_type, flags, ctx)
        if matches(sub_word, "delete"):
            return _route_modify(a, RTM_DELROUTE, 0, ctx)
        sub = _first_match(sub_word, ("list", "show", "lst", "get", "flush", "save", "restore", "showdump", "help"))
        if sub == "flush":
            return _route_flush(a, ctx)
    elif obj == "rule":
        sub = _first_match(sub_word, ("list", "lst", "show", "save", "restore", "add", "delete", "flush", "help"))
        if sub == "add":
            return _rule_modify(a, RTM_NEWRULE, ctx)
        if sub == "delete":
            return _rule_modify(a, RTM_DELRULE, ctx)
        if sub == "flush":
            return _rule_flush(a, ctx)
    elif obj == "address":
        sub = _first_match(
            sub_word,
            (
                "add",
                "change",
                "replace",
                "delete",
                "list",
                "show",
                "lst",
                "flush",
                "save",
                "showdump",
                "restore",
                "help",
            ),
        )
        if sub_word == "chg":
            sub = "change"
        flags = {"add": NLM_F_CREATE | NLM_F_EXCL, "change": NLM_F_REPLACE, "replace": NLM_F_CREATE | NLM_F_REPLACE}
        if sub in flags:
            return _addr_modify(a, RTM_NEWADDR, flags[sub], ctx)
        if sub == "delete":
            return _addr_modify(a, RTM_DELADDR, 0, ctx)
        if sub == "flush":
            raise _unsupported("address flush")
    elif obj == "tuntap":
        sub = _first_match(sub_word, ("add", "delete", "list", "show", "lst", "help"))
        if sub in ("add", "delete"):
            return _tuntap_cmd(sub, a, ctx)
    else:  # link
        sub = _first_match(sub_word, ("add", "set", "change", "replace", "delete", "show", "lst", "list", "help"))
        if sub == "change":
            sub = "set"
        if sub in ("add", "set", "delete"):
            return _link_cmd(sub, a, ctx)
        if sub == "replace":
            raise _unsupported("link replace")
    if sub is None:
        raise ParseError(f'unknown command "{sub_word}" for "{obj}"')
    raise _not_a_change(obj, sub)


def apply_line(policy, line: str, tables: RtTables | None = None, family: int = AF_UNSPEC) -> list[str]:
    """Parse and apply one command directly to ``policy`` (no clone).
    Returns ip's warnings.  Raises ParseError or PolicyError."""
    words = split_args(line.split("#", 1)[0])
    cmd = parse_command(words, policy, tables, family)
    cmd.apply(policy)
    return cmd.warnings


def apply_batch(
    policy, text: str, filename: str = "<batch>", tables: RtTables | None = None, family: int = AF_UNSPEC
) -> list[str]:
    """Apply an ``ip -batch`` style text, all or nothing.

    Lines are parsed and applied in order to ``policy.clone()``, so a name
    created on one line resolves on the next.  On success the clone is
    swapped in and ip's warnings are returned as ``FILE:LINE: text``.  On
    the first failure BatchError(``FILE:LINE: message``) is raised and
    ``policy`` is unchanged.  ``family`` is ip's -4/-6 (AF_INET6 means
    ``ip -6 -batch``: a rule gets its family only from that option).
    """
    t = tables if tables is not None else RtTables()
    work = policy.clone()
    warnings = []
    for lineno, line in batch_lines(text):
        try:
            words = split_args(line)
            if not words:
                continue
            cmd = parse_command(words, work, t, family)
            cmd.apply(work)
        except ParseError as e:
            raise BatchError(filename, lineno, str(e), line, e) from None
        except PolicyError as e:
            raise BatchError(filename, lineno, e.iproute2_text(), line, e) from None
        warnings.extend(f"{filename}:{lineno}: {w}" for w in cmd.warnings)
    policy._swap(work)
    return warnings


def apply_batch_force(
    policy, text: str, filename: str = "<batch>", tables: RtTables | None = None, family: int = AF_UNSPEC
) -> list[BatchError]:
    """``ip -force -batch``: apply every line directly to ``policy`` and go on
    after a failure.  A refused request keeps the side effects the kernel keeps
    (e.g. a route add that fails validation still creates its table).  Returns
    the refused lines as BatchError, in order."""
    t = tables if tables is not None else RtTables()
    errors = []
    for lineno, line in batch_lines(text):
        try:
            words = split_args(line)
            if not words:
                continue
            parse_command(words, policy, t, family).apply(policy)
        except ParseError as e:
            errors.append(BatchError(filename, lineno, str(e), line, e))
        except PolicyError as e:
            errors.append(BatchError(filename, lineno, e.iproute2_text(), line, e))
    return errors
