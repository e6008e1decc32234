"""The batch reader's fast path: the common line shapes, table-driven.

Provisioning files and snapshots are almost entirely lines like

    route add default via 10.10.0.1 dev up0 table T
    route add 10.1.2.0/24 dev eth0 src 10.1.2.1 table T
    rule add from 10.1.2.3 lookup T priority P
    -6 rule add from 2001:db8::1 lookup T pref P

and the full reader (rule.py ``_rule_modify``, route.py ``_route_modify``)
spends most of its time walking ip's if-chains of ``matches()`` for them.
:func:`fast_command` reads such a line with one dict lookup per keyword and
gives exactly the Command the full reader gives -- or None, and then the full
reader reads the line.  It returns None for anything it is not certain
about: a keyword outside its tables (abbreviations included), a value its
strict parsers do not take (short or octal IPv4 forms, a ``0x`` or octal
prefix length, a name it cannot resolve; numbers other than plain decimal go
to the reference get_u32 itself), a missing argument, a second ``via``/destination, a
family mismatch.  So every error, and every line shape not listed here, is
the full reader's alone.

Why a Python table and not a C parser (measured; docs/architecture.md, "The
batch reader's fast path", has the numbers): with this path and the packed
rule struct (codec.fill_rule) the reader costs ~6 µs a line, about what
building the same request through the API costs, and ``apply_batch`` of the
10k-tenant file went from ~0.8 s to ~0.28 s of CPU.  A C parser could only
remove part of that: device names, rt_tables names and the interleaving with
lines only the full reader reads keep a round trip through Python per line,
and it would be a second implementation of get_addr/strtoul semantics, in
another language, to keep equal to the reference.

Each keyword table lists only full spellings whose branch in ip's if-chain is
known (tests/py/test_fastline.py checks every one against the full reader, and
a property test compares random lines and near-misses).
"""

from __future__ import annotations

import socket
from ipaddress import IPv4Address, IPv6Address

from polroute._core.errors import PolicyError
from polroute.iproute2.args import check_ifname
from polroute.iproute2.command import Command, Context
from polroute.iproute2.lexer import ParseError
from polroute.iproute2.rt_tables import get_u32
from polroute.types.requests import (
    AF_INET,
    AF_INET6,
    FIB_RULE_INVERT,
    FR_ACT_TO_TBL,
    FR_ACT_UNSPEC,
    FRA_DST,
    FRA_FWMARK,
    FRA_FWMASK,
    FRA_IIFNAME,
    FRA_OIFNAME,
    FRA_PRIORITY,
    FRA_SRC,
    FRA_TABLE,
    NLM_F_APPEND,
    NLM_F_CREATE,
    NLM_F_EXCL,
    NLM_F_REPLACE,
    RT_SCOPE_LINK,
    RT_SCOPE_NOWHERE,
    RT_SCOPE_UNIVERSE,
    RT_TABLE_MAIN,
    RTA_DST,
    RTA_GATEWAY,
    RTA_OIF,
    RTA_PREFSRC,
    RTA_PRIORITY,
    RTA_TABLE,
    RTA_VIA,
    RTM_DELROUTE,
    RTM_DELRULE,
    RTM_NEWROUTE,
    RTM_NEWRULE,
    RTN_UNICAST,
    RTN_UNSPEC,
    RTNH_F_ONLINK,
    RouteRequest,
    RuleRequest,
    bit,
)

# (message type, netlink flags) per command word; only full spellings (and
# ip's own "del"), whose meaning in do_iproute()/do_iprule() is unambiguous
_ROUTE_SUBS = {
    "add": (RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL),
    "change": (RTM_NEWROUTE, NLM_F_REPLACE),
    "replace": (RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE),
    "prepend": (RTM_NEWROUTE, NLM_F_CREATE),
    "append": (RTM_NEWROUTE, NLM_F_CREATE | NLM_F_APPEND),
    "test": (RTM_NEWROUTE, NLM_F_EXCL),
    "delete": (RTM_DELROUTE, 0),
    "del": (RTM_DELROUTE, 0),
}
_RULE_SUBS = {"add": RTM_NEWRULE, "delete": RTM_DELRULE, "del": RTM_DELRULE}

# keyword -> the branch of iproute_modify()'s if-chain it takes (no earlier
# branch matches these words; "pref", "to" and all abbreviations are left out)
_R_SRC, _R_VIA, _R_METRIC, _R_SCOPE, _R_PROTO, _R_TABLE, _R_DEV, _R_ONLINK = range(8)
_ROUTE_KEYS = {
    "src": _R_SRC,
    "via": _R_VIA,
    "metric": _R_METRIC,
    "priority": _R_METRIC,
    "preference": _R_METRIC,
    "scope": _R_SCOPE,
    "proto": _R_PROTO,
    "protocol": _R_PROTO,
    "table": _R_TABLE,
    "dev": _R_DEV,
    "oif": _R_DEV,
    "onlink": _R_ONLINK,
}
# the same for iprule_modify()
_U_FROM, _U_TO, _U_PREF, _U_TABLE, _U_FWMARK, _U_IIF, _U_OIF, _U_NOT = range(8)
_RULE_KEYS = {
    "from": _U_FROM,
    "to": _U_TO,
    "preference": _U_PREF,
    "pref": _U_PREF,
    "order": _U_PREF,
    "priority": _U_PREF,
    "prio": _U_PREF,
    "table": _U_TABLE,
    "lookup": _U_TABLE,
    "fwmark": _U_FWMARK,
    "iif": _U_IIF,
    "dev": _U_IIF,
    "oif": _U_OIF,
    "not": _U_NOT,
}
_B_FRA_SRC, _B_FRA_DST, _B_FRA_PRIORITY, _B_FRA_TABLE = bit(FRA_SRC), bit(FRA_DST), bit(FRA_PRIORITY), bit(FRA_TABLE)
_B_FRA_FWMARK, _B_FRA_FWMASK = bit(FRA_FWMARK), bit(FRA_FWMASK)
_B_FRA_IIFNAME, _B_FRA_OIFNAME = bit(FRA_IIFNAME), bit(FRA_OIFNAME)
_B_RTA_DST, _B_RTA_PREFSRC, _B_RTA_GATEWAY, _B_RTA_VIA = bit(RTA_DST), bit(RTA_PREFSRC), bit(RTA_GATEWAY), bit(RTA_VIA)
_B_RTA_PRIORITY, _B_RTA_TABLE, _B_RTA_OIF = bit(RTA_PRIORITY), bit(RTA_TABLE), bit(RTA_OIF)

_DIGITS = frozenset("0123456789")


def _plen(s: str, maximum: int) -> int | None:
    """A prefix length written in plain decimal (no sign, no leading 0, no 0x:
    those read differently under strtoul base 0 -- left to the full reader)."""
    if not s or not s.isascii() or not s.isdigit() or (s[0] == "0" and len(s) > 1):
        return None
    n = int(s)
    return n if n <= maximum else None


def _u32(s: str) -> int | None:
    """get_u32(): plain decimal inline (the common case), anything else by get_u32."""
    if s.isdigit() and s.isascii() and (s[0] != "0" or len(s) == 1):
        n = int(s)
        return n if n <= 0xFFFFFFFF else None
    return get_u32(s)


def _addr(s: str, family: int):
    """get_addr_1() for a plain address: (family, address) or None.
    inet_pton takes exactly the strict dotted quad (four decimal parts of at
    most 255, no leading zeros) on which ip's get_addr_ipv4 and it agree."""
    if ":" in s:
        if family == AF_INET:
            return None
        try:
            return AF_INET6, IPv6Address(socket.inet_pton(socket.AF_INET6, s))
        except (OSError, ValueError):
            return None
    if family == AF_INET6:
        return None
    try:
        return AF_INET, IPv4Address(socket.inet_pton(socket.AF_INET, s))
    except (OSError, ValueError):
        return None


def _prefix(s: str, family: int):
    """get_prefix_1() for ADDR or ADDR/LEN: (family, address, bitlen) or None."""
    base, slash, plen_s = s.partition("/")
    got = _addr(base, family)
    if got is None:
        return None
    fam, addr = got
    full = 32 if fam == AF_INET else 128
    if not slash:
        return fam, addr, full
    plen = _plen(plen_s, full)
    if plen is None:
        return None
    return fam, addr, plen


def fast_command(words: list[str], policy, tables, family: int, route_proto: int) -> Command | None:
    """The Command parse_command(words, ...) gives, for the common shapes of
    ``[-4|-6]... route|rule add|del|...``; None for any other line (and for
    any line the full reader would refuse)."""
    n = len(words)
    i = 0
    while i < n and words[i] in ("-4", "-6"):
        family = AF_INET if words[i] == "-4" else AF_INET6
        i += 1
    if n - i < 3 or family not in (0, AF_INET, AF_INET6):
        return None
    obj = words[i]
    try:
        if obj == "rule":
            msg_type = _RULE_SUBS.get(words[i + 1])
            if msg_type is None:
                return None
            return _rule(words, i + 2, msg_type, tables, family)
        if obj == "route":
            sub = _ROUTE_SUBS.get(words[i + 1])
            if sub is None:
                return None
            return _route(words, i + 2, sub[0], sub[1], policy, tables, family, route_proto)
    except (ParseError, PolicyError, ValueError):
        return None  # the full reader says what is wrong
    return None


def _rule(words: list[str], i: int, msg_type: int, t, fam: int) -> Command | None:
    """iprule_modify() for the _RULE_KEYS words."""
    n = len(words)
    req = RuleRequest(msg_type, NLM_F_CREATE | NLM_F_EXCL if msg_type == RTM_NEWRULE else 0)
    req.action = FR_ACT_TO_TBL if msg_type == RTM_NEWRULE else FR_ACT_UNSPEC
    present = 0
    frh_table, fra_table = 0, None
    table_ok = False
    want = AF_INET6 if fam == AF_INET6 else AF_INET  # the family ip sends (rule: only -4/-6 set it)
    keys = _RULE_KEYS
    while i < n:
        k = keys.get(words[i])
        if k is None or i + 1 >= n and k != _U_NOT:
            return None
        if k == _U_NOT:
            req.flags |= FIB_RULE_INVERT
            i += 1
            continue
        v = words[i + 1]
        i += 2
        if k == _U_PREF:
            req.priority = _u32(v)
            if req.priority is None:
                return None
            present |= _B_FRA_PRIORITY
        elif k == _U_TABLE:
            tid = t.id(v)  # ValueError: "invalid table" is the full reader's
            if tid < 256:  # (an earlier id >= 256 stays sent, as in ip)
                frh_table = tid
            else:  # ids >= 256 only fit in FRA_TABLE
                frh_table, fra_table = 0, tid
            table_ok = True
        elif k <= _U_TO:
            if v in ("all", "any"):  # no address: length 0, nothing sent
                bits, addr = 0, None
            else:
                got = _prefix(v, fam)
                if got is None or got[0] != want:  # the kernel refuses the wrong size
                    return None
                _, addr, bits = got
            if k == _U_FROM:
                req.src_len, req.src = bits, addr
                if addr is not None:
                    present |= _B_FRA_SRC
            else:
                req.dst_len, req.dst = bits, addr
                if addr is not None:
                    present |= _B_FRA_DST
        elif k == _U_FWMARK:
            mark_s, slash, mask_s = v.partition("/")
            req.fwmark = _u32(mark_s)
            if req.fwmark is None:
                return None
            present |= _B_FRA_FWMARK
            if slash:  # the mask is sent only when written
                req.fwmask = _u32(mask_s)
                if req.fwmask is None:
                    return None
                present |= _B_FRA_FWMASK
        elif k == _U_IIF:
            if not check_ifname(v):
                return None
            req.iifname = v
            present |= _B_FRA_IIFNAME
        else:  # _U_OIF
            if not check_ifname(v):
                return None
            req.oifname = v
            present |= _B_FRA_OIFNAME
    req.family = want
    if not table_ok and msg_type == RTM_NEWRULE:
        frh_table = RT_TABLE_MAIN
    if fra_table is not None:
        req.table = fra_table
        present |= _B_FRA_TABLE
    else:
        req.table = frh_table
    req.present = present
    return Command([("rule", req)])


def _route_dst(req: RouteRequest, tok: str, fam: int) -> tuple[int, int] | None:
    """The destination ("default" or a prefix) into req: (family, present
    bits), or None when the strict parser declines it."""
    if tok == "default":
        req.dst_len = 0
        if not fam:
            return fam, 0
        # ip sends the zero address of a known family
        req.dst = IPv4Address(0) if fam == AF_INET else IPv6Address(0)
        return fam, _B_RTA_DST
    got = _prefix(tok, fam)
    if got is None:
        return None
    fam, req.dst, req.dst_len = got
    return fam, _B_RTA_DST


def _route(
    words: list[str], i: int, msg_type: int, flags: int, policy, t, fam: int, route_proto: int
) -> Command | None:
    """iproute_modify() for the _ROUTE_KEYS words and a destination."""
    n = len(words)
    req = RouteRequest(msg_type, flags)
    if msg_type == RTM_DELROUTE:
        req.protocol, req.scope, req.type = 0, RT_SCOPE_NOWHERE, RTN_UNSPEC
    else:
        req.protocol, req.scope, req.type = route_proto, RT_SCOPE_UNIVERSE, RTN_UNICAST
    rtm_table, rta_table = RT_TABLE_MAIN, None
    present = 0
    dev = None
    gw_ok = dst_ok = scope_ok = False
    keys = _ROUTE_KEYS
    while i < n:
        tok = words[i]
        k = keys.get(tok)
        if k is None:
            # the destination: "default", or a token with a digit first or a
            # ':' (no keyword of the chain and no route type reads like that)
            if dst_ok or not (tok == "default" or tok[0] in _DIGITS or ":" in tok):
                return None
            got = _route_dst(req, tok, fam)
            if got is None:
                return None
            fam, bits = got
            present |= bits
            dst_ok = True
            i += 1
            continue
        if k == _R_ONLINK:
            req.rtm_flags |= RTNH_F_ONLINK
            i += 1
            continue
        if i + 1 >= n:
            return None
        v = words[i + 1]
        i += 2
        if k == _R_DEV:
            dev = v
        elif k == _R_VIA:
            if gw_ok or v in ("inet", "inet6"):
                return None
            gw_ok = True
            got = _addr(v, fam)
            if got is None:
                return None
            fam = fam or got[0]
            req.gateway = got[1]
            present |= _B_RTA_GATEWAY if got[0] == fam else _B_RTA_VIA
        elif k == _R_TABLE:
            tid = t.id(v)
            if tid < 256:  # (an earlier id >= 256 stays sent, as in ip)
                rtm_table = tid
            else:
                rtm_table, rta_table = 0, tid
        elif k == _R_SRC:
            got = _addr(v, fam)
            if got is None:
                return None
            fam = fam or got[0]
            req.prefsrc = got[1]
            present |= _B_RTA_PREFSRC
        elif k == _R_METRIC:
            req.priority = _u32(v)
            if req.priority is None:
                return None
            present |= _B_RTA_PRIORITY
        elif k == _R_SCOPE:
            req.scope = t.scopes.id(v)
            scope_ok = True
        else:  # _R_PROTO
            req.protocol = t.protos.id(v)
    if not dst_ok:
        return None
    if dev is not None:
        req.oif = Context(policy, t).ifindex(dev)  # ParseError: the full reader's
        present |= _B_RTA_OIF
    if not fam:
        fam = AF_INET
    req.family = fam
    if rta_table is not None:
        req.table = rta_table
        present |= _B_RTA_TABLE
    else:
        req.table = rtm_table
    if not scope_ok:  # the types read here: unicast (add ...) and unspec (delete)
        if fam == AF_INET6:
            req.scope = RT_SCOPE_UNIVERSE
        elif msg_type == RTM_DELROUTE:
            req.scope = RT_SCOPE_NOWHERE
        elif not gw_ok:
            req.scope = RT_SCOPE_LINK
    req.present = present
    return Command([("route", req)])
