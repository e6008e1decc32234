"""The request a route line makes, without parsing the line.

Where the snapshot builder writes ``route add/append/prepend`` lines it
applies the request that :func:`~polroute.live.lines.route_line` encodes
instead of parsing the text back (the parse was ~70 % of a snapshot's time):
:func:`route_line_request` as a RouteRequest, :func:`route_line_packed` as
the bytes of its ``pr_route_req``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from polroute._core.codec import route_values
from polroute.live.lines import (
    _MX_WORDS,
    RTAX_ADVMSS,
    RTAX_CWND,
    RTAX_FASTOPEN_NO_COOKIE,
    RTAX_FEATURES,
    RTAX_HOPLIMIT,
    RTAX_INITCWND,
    RTAX_INITRWND,
    RTAX_LOCK,
    RTAX_MTU,
    RTAX_QUICKACK,
    RTAX_REORDERING,
    RTAX_SSTHRESH,
    RTAX_WINDOW,
)
from polroute.types.requests import (
    AF_INET,
    AF_INET6,
    NLM_F_APPEND,
    NLM_F_CREATE,
    NLM_F_EXCL,
    RTA_DST,
    RTA_FLOW,
    RTA_GATEWAY,
    RTA_METRICS,
    RTA_MULTIPATH,
    RTA_OIF,
    RTA_PREF,
    RTA_PREFSRC,
    RTA_PRIORITY,
    RTA_TABLE,
    RTM_NEWROUTE,
    RTN_ANYCAST,
    RTN_BLACKHOLE,
    RTN_BROADCAST,
    RTN_LOCAL,
    RTN_MULTICAST,
    RTN_PROHIBIT,
    RTN_THROW,
    RTN_UNICAST,
    RTN_UNREACHABLE,
    RTNH_F_ONLINK,
    NexthopRequest,
    RouteRequest,
    bit,
)

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


def route_line_packed(
    r: RouteRequest, verb: str, ifindex: Callable[[int], int], v6_batch: bool = False
) -> bytes | None:
    """route_line_request(...) already as the bytes of its ``pr_route_req``
    (what codec.route_to_c makes of it, packed by codec.route_values), for
    the shapes without nexthops or metrics; None otherwise (use
    route_line_request)."""
    fam = r.family
    rtype = r.type
    if (
        r.nexthops
        or r.metrics
        or r.nh_id
        or verb not in _VERB_FLAGS
        or rtype not in _FAST_TYPES
        or (v6_batch and fam != AF_INET6)
        or route_values is None
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
    return route_values(
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
