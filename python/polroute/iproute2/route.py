"""``ip route add/change/replace/prepend/append/test/delete`` and ``ip route
flush``, as iproute2 v6.1.0 ip/iproute.c parses them.

``ip route get`` arguments are in :mod:`polroute.iproute2.route_get_args`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from polroute._core import fields
from polroute._core.errors import PolicyError
from polroute.iproute2.args import (
    AF_UNSPEC,
    PREFIXLEN_SPECIFIED,
    Args,
    Prefix,
    addr_bits,
    dsfield_id,
    get_addr,
    get_prefix,
    get_prefix_1,
    get_rt_realms_or_raw,
    get_time_rtt,
    inet_addr_match,
    invalid,
    matches,
    name_id,
    need,
    parse_row_value,
    read_family,
    rtntype_a2n,
    table_id,
    unsupported,
)
from polroute.iproute2.command import Command, Context, first_match, no_change
from polroute.iproute2.lexer import ParseError
from polroute.iproute2.rt_tables import get_u8, get_u32, get_unsigned_max
from polroute.types.requests import (
    AF_INET,
    AF_INET6,
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
    RTM_DELROUTE,
    RTM_NEWROUTE,
    RTN_ANYCAST,
    RTN_BROADCAST,
    RTN_LOCAL,
    RTN_MULTICAST,
    RTN_NAT,
    RTN_UNICAST,
    RTN_UNREACHABLE,
    RTN_UNSPEC,
    RTNH_F_ONLINK,
    IPAddress,
    NexthopRequest,
    RouteRequest,
    bit,
)

# RTAX_* metric ids
RTAX_LOCK, RTAX_MTU, RTAX_WINDOW, RTAX_RTT, RTAX_RTTVAR = 1, 2, 3, 4, 5
RTAX_SSTHRESH, RTAX_CWND, RTAX_ADVMSS, RTAX_REORDERING = 6, 7, 8, 9
RTAX_HOPLIMIT, RTAX_INITCWND, RTAX_FEATURES, RTAX_RTO_MIN = 10, 11, 12, 13
RTAX_INITRWND, RTAX_QUICKACK, RTAX_FASTOPEN_NO_COOKIE = 14, 15, 17


# ---------------------------------------------------------------------------
# ip route add/del/change/...
# ---------------------------------------------------------------------------

# (command, message type, netlink flags), in do_iproute()'s order: an
# abbreviation means the first that matches
_ROUTE_CMDS = (
    ("add", RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL),
    ("change", RTM_NEWROUTE, NLM_F_REPLACE),
    ("replace", RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE),
    ("prepend", RTM_NEWROUTE, NLM_F_CREATE),
    ("append", RTM_NEWROUTE, NLM_F_CREATE | NLM_F_APPEND),
    ("test", RTM_NEWROUTE, NLM_F_EXCL),
    ("delete", RTM_DELROUTE, 0),
)

# Route rows (csrc/fields.c) whose words the if-chain below has a case of its
# own for; any other row of a plain kind (a number, a range) is read by its
# row (args.parse_row_value), so a new plain route attribute needs no edit
# here (docs/architecture.md, "Where to add").
_BY_HAND = frozenset(
    ("tos", "dsfield", "proto", "protocol", "scope", "via", "pref", "table", "onlink", "metric", "priority")
    + ("preference", "dev", "oif", "nhid", "realms", "realm", "nexthop", "mtu", "advmss", "window", "rtt")
    + ("to", "src")
)
_GENERIC = {
    word: r
    for r in fields.ROUTE_FIELDS
    if r.role != fields.ROLE_META and r.kind in fields.NUMBER_KINDS + fields.RANGE_KINDS
    for word in (r.keyword, *r.aliases)
    if word and word not in _BY_HAND
}

# exact-match metric keywords that take an optional "lock": keyword -> RTAX id
_LOCKABLE = {"mtu": RTAX_MTU, "hoplimit": RTAX_HOPLIMIT, "advmss": RTAX_ADVMSS}


def _route_modify(a: Args, msg_type: int, flags: int, ctx: Context) -> Command:
    """iproute.c:iproute_modify(): one if-chain over the arguments, in ip's
    order (abbreviations resolve to the first keyword tested), then the header
    defaults ip derives from what was given."""
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
        mx[rtax] = need(get_unsigned_max(v, maximum), f'"{tok}" value', v)

    def timed(tok: str, rtax: int, scale: int) -> None:
        nonlocal mxlock
        v = a.next()
        if v == "lock":
            mxlock |= 1 << rtax
            v = a.next()
        got = need(get_time_rtt(v), f'"{tok}" value', v)
        mx[rtax] = (got[0] if got[1] else got[0] * scale) & 0xFFFFFFFF

    while a.more():
        tok = a.cur
        if tok == "src":
            p = get_addr(a.next(), fam)
            fam = fam or p.family
            req.prefsrc = p.addr
            req.present |= bit(RTA_PREFSRC)
        elif tok == "as":
            raise unsupported(tok)
        elif tok == "via":
            if gw_ok:
                raise ParseError(f'use nexthop syntax to specify multiple via "{tok}"')
            gw_ok = True
            v = a.next()
            vfam = read_family(v)
            if vfam == AF_UNSPEC:
                if v in ("link", "ipx", "dnet", "mpls", "bridge"):
                    raise unsupported(f"via {v}")
                vfam = fam
            else:
                v = a.next()
            p = get_addr(v, vfam)
            fam = fam or p.family
            req.gateway = p.addr
            # a gateway of the route's own family is RTA_GATEWAY, else RTA_VIA
            req.present |= bit(RTA_GATEWAY if p.family == fam else RTA_VIA)
        elif tok == "from":
            raise unsupported(tok)  # source-specific routes
        elif tok == "tos" or matches(tok, "dsfield"):
            v = a.next()
            req.tos = dsfield_id(t, v)
        elif tok == "expires":
            raise unsupported(tok)
        elif matches(tok, "metric") or matches(tok, "priority") or tok == "preference":
            v = a.next()
            req.priority = need(get_u32(v), "metric", v)
            req.present |= bit(RTA_PRIORITY)
        elif tok == "scope":
            v = a.next()
            req.scope = name_id(t.scopes, v, "scope")
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
            mx[RTAX_RTO_MIN] = need(get_time_rtt(v), '"rto_min" value', v)[0]
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
                raise invalid('"features" value', v)
            mx[RTAX_FEATURES] = 1
        elif matches(tok, "quickack"):
            v = a.next()
            q = need(get_unsigned_max(v, 0xFFFFFFFF), '"quickack" value', v)
            if q not in (0, 1):
                raise invalid('"quickack" value (0 or 1)', v)
            mx[RTAX_QUICKACK] = q
        elif matches(tok, "congctl"):
            raise unsupported(tok)  # a string metric
        elif matches(tok, "rttvar"):
            timed("rttvar", RTAX_RTTVAR, 4)
        elif matches(tok, "ssthresh"):
            metric("ssthresh", RTAX_SSTHRESH)
        elif matches(tok, "realms"):
            v = a.next()
            req.realm = need(get_rt_realms_or_raw(v, t), "realms", v)
            req.present |= bit(RTA_FLOW)
        elif tok == "onlink":
            req.rtm_flags |= RTNH_F_ONLINK
        elif tok == "nexthop":
            nhs_ok = True
            break
        elif tok == "nhid":
            v = a.next()
            req.nh_id = need(get_u32(v), "nhid", v)
            req.present |= bit(RTA_NH_ID)
        elif matches(tok, "protocol"):
            v = a.next()
            req.protocol = name_id(t.protos, v, "protocol")
        elif matches(tok, "table"):
            v = a.next()
            tid = table_id(t, v)
            if tid < 256:
                rtm_table = tid
            else:  # ids >= 256 only fit in RTA_TABLE
                rtm_table, rta_table = RT_TABLE_UNSPEC, tid
            table_ok = True
        elif matches(tok, "vrf"):
            raise unsupported(tok)
        elif tok in ("dev", "oif"):
            dev = a.next()
        elif matches(tok, "pref"):
            v = a.next()
            router_pref = {"low": 3, "medium": 0, "high": 1}.get(v)
            if router_pref is None:
                router_pref = need(get_u8(v), '"pref" value', v)
        elif tok in ("encap", "ttl-propagate"):
            raise unsupported(tok)
        elif matches(tok, "fastopen_no_cookie"):
            v = a.next()
            q = need(get_unsigned_max(v, 0xFFFFFFFF), '"fastopen_no_cookie" value', v)
            if q not in (0, 1):
                raise invalid('"fastopen_no_cookie" value (0 or 1)', v)
            mx[RTAX_FASTOPEN_NO_COOKIE] = q
        elif tok in _GENERIC:
            parse_row_value(_GENERIC[tok], a.next(), req, fields.ROUTE_FIELDS)
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


def _parse_nexthops(a: Args, req: RouteRequest, fam: int, ctx: Context) -> int:
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
                    raise invalid('"weight"', v)
                leg.weight = w
            elif tok == "onlink":
                leg.flags |= RTNH_F_ONLINK
            elif matches(tok, "realms") or tok in ("encap", "as"):
                raise unsupported(f"nexthop {tok}")
            else:
                break
            a.advance()
        legs.append(leg)
    req.nexthops = legs
    req.present |= bit(RTA_MULTIPATH)
    return fam


# ---------------------------------------------------------------------------
# ip route flush
# ---------------------------------------------------------------------------


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
    dst = addr_bits(r.dst, (r.dst_len + 7) // 8) if r.dst_len else 0
    if f.rvia is not None:
        gw_family = _family_of(r.gateway) if r.gateway is not None else r.family
        if f.rvia.family != gw_family:
            return False
    if f.rprefsrc is not None and f.rprefsrc.family and r.family != f.rprefsrc.family:
        return False
    if (
        f.rdst is not None
        and (f.rdst.family or f.rdst.flags & PREFIXLEN_SPECIFIED)
        and not inet_addr_match(dst, addr_bits(f.rdst.addr), f.rdst.bitlen)
    ):
        return False
    if (
        f.mdst is not None
        and (f.mdst.family or f.mdst.flags & PREFIXLEN_SPECIFIED)
        and not inet_addr_match(dst, addr_bits(f.mdst.addr), r.dst_len)
    ):
        return False
    if (
        f.rvia is not None
        and f.rvia.bitlen > 0
        and not inet_addr_match(addr_bits(r.gateway), addr_bits(f.rvia.addr), f.rvia.bitlen)
    ):
        return False
    if (
        f.rprefsrc is not None
        and f.rprefsrc.bitlen > 0
        and not inet_addr_match(addr_bits(r.prefsrc), addr_bits(f.rprefsrc.addr), f.rprefsrc.bitlen)
    ):
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


def _route_flush(a: Args, ctx: Context) -> Command:
    """The selector of ``ip route flush`` (iproute.c:iproute_list_flush_or_save())."""
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
                    raise invalid("table", v) from None
        elif matches(tok, "vrf"):
            raise unsupported(tok)
        elif matches(tok, "cached") or matches(tok, "cloned"):
            f.cloned = True
        elif tok == "tos" or matches(tok, "dsfield"):
            f.tos = dsfield_id(t, a.next())
            f.tosmask = -1
        elif matches(tok, "protocol"):
            v = a.next()
            f.protocolmask = -1
            try:
                f.protocol = t.protos.id(v)
            except ValueError:
                if v != "all":
                    raise invalid("protocol", v) from None
                f.protocol, f.protocolmask = 0, 0
        elif matches(tok, "scope"):
            v = a.next()
            f.scopemask = -1
            try:
                f.scope = t.scopes.id(v)
            except ValueError:
                if v != "all":
                    raise invalid("scope", v) from None
                f.scope, f.scopemask = RT_SCOPE_NOWHERE, 0
        elif matches(tok, "type"):
            v = a.next()
            f.typemask = 1 << need(rtntype_a2n(v), "type", v)
        elif tok in ("dev", "oif"):
            od = a.next()
        elif tok in ("iif", "mark"):
            raise unsupported(tok)  # dumped routes carry neither
        elif matches(tok, "metric") or matches(tok, "priority") or tok == "preference":
            v = a.next()
            f.metric = need(get_u32(v), "metric", v)
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
            f.realm = need(get_rt_realms_or_raw(v, t), "realms", v)
            f.realmmask = 0xFFFFFFFF
            if f.realm & 0xFFFF == 0 and v.endswith("/"):
                f.realmmask &= ~0xFFFF
            if f.realm & 0xFFFF0000 == 0 and ("/" not in v or v.startswith("/")):
                f.realmmask &= ~0xFFFF0000
        elif matches(tok, "from"):
            raise unsupported(tok)
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


# ---------------------------------------------------------------------------
# the command table
# ---------------------------------------------------------------------------


def do_iproute(sub_word: str, a: Args, ctx: Context) -> Command:
    """iproute.c:do_iproute(): ``ip route SUBCOMMAND ...``."""
    for name, msg_type, flags in _ROUTE_CMDS[:6]:
        if matches(sub_word, name) or (name == "change" and sub_word == "chg"):
            return _route_modify(a, msg_type, flags, ctx)
    if matches(sub_word, "delete"):
        return _route_modify(a, RTM_DELROUTE, 0, ctx)
    sub = first_match(sub_word, ("list", "show", "lst", "get", "flush", "save", "restore", "showdump", "help"))
    if sub == "flush":
        return _route_flush(a, ctx)
    raise no_change("route", sub_word, sub)
