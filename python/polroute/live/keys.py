"""Object identity: the keys that say when two rules or routes are the same
(device names, not ifindexes: the model numbers its own links), the groups
the kernel keeps in insertion order, and the kernel's default rules.
"""

from __future__ import annotations

from collections.abc import Callable

from polroute.live.objects import RTNH_F_DEAD, RTNH_F_LINKDOWN, KernelState
from polroute.types.requests import (
    AF_INET,
    AF_INET6,
    FR_ACT_GOTO,
    FR_ACT_TO_TBL,
    RT_TABLE_DEFAULT,
    RT_TABLE_LOCAL,
    RT_TABLE_MAIN,
    RTM_NEWRULE,
    RTNH_F_ONLINK,
    RTPROT_KERNEL,
    RouteRequest,
    RuleRequest,
)

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


def _is_default_rule(r: RuleRequest) -> bool:
    defaults = _DEFAULT_RULES.get(r.family, ())
    return any(_matches_default(r, pref, table) for pref, table in defaults)


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


def _ifname_fn(state: KernelState) -> Callable[[int], str]:
    names = {l.ifindex: l.name for l in state.links}
    return lambda i: names.get(i, f"if{i}")


def _rkey(r: RouteRequest, ifname) -> tuple:
    return route_key(r, ifname, state_flags=False)


_RULE_DETACHED = 0x8 | 0x10  # FIB_RULE_IIF/OIF_DETACHED: the device's presence, not configuration


def _ukey(r: RuleRequest) -> tuple:
    k = rule_key(r)
    return k[:2] + (k[2] & ~_RULE_DETACHED,) + k[3:]


def _slot_key(r: RouteRequest) -> tuple:
    dst = r.dst if r.dst_len else None
    return (r.family, r.table & 0xFFFFFFFF, dst, r.dst_len, r.tos, r.priority & 0xFFFFFFFF)
