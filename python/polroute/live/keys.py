"""Object identity: the keys that say when two rules or routes are the same
(device names, not ifindexes: the model numbers its own links), the groups
the kernel keeps in insertion order, and the kernel's default rules.
"""

from __future__ import annotations

from collections.abc import Callable

from polroute._core.fields import (
    FF_DUMP_ONLY_BITS,
    KIND_ADDR,
    KIND_FAMILY,
    KIND_FLAG,
    KIND_IFNAME,
    KIND_MASK,
    KIND_RANGE16,
    KIND_S32,
    ROLE_META,
    RULE_FIELDS,
    FieldRow,
)
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


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


def _rule_part(row: FieldRow, flags_mask: int) -> str:
    """How one rule row counts in the key, from its kind alone, as an
    expression of ``r`` (the goto target only with the goto action: the
    kernel keeps it for no other)."""
    ms, aux = row.members, row.aux_members
    if row.name == "goto":
        return f"(r.{ms[0]} if r.action == {FR_ACT_GOTO} else 0)"
    if row.kind == KIND_ADDR:
        (m,), (ln,) = ms, aux
        return f"(r.{ln}, r.{m} if r.{ln} else None)"
    if row.kind == KIND_IFNAME:
        return f"r.{ms[0]}"
    if row.kind == KIND_FLAG:
        if row.flags & FF_DUMP_ONLY_BITS:  # all of frh.flags: UNRESOLVED, DETACHED are the kernel's view
            return f"r.{ms[0]} & {flags_mask:#x}"
        return f"bool(r.{ms[0]} & {row.flag:#x})"
    if row.kind == KIND_S32:
        return f"_s32(r.{ms[0]})"
    w = f"{row.width_mask:#x}"
    if len(ms) == 2:
        return f"(r.{ms[0]} & {w}, r.{ms[1]} & {w})"
    link = RULE_FIELDS[row.link] if row.link >= 0 else None
    if row.kind == KIND_MASK and link is not None and link.kind == KIND_RANGE16:
        # a single port gets an implicit all-ones mask (the kernel dumps it,
        # a request without the mask does not carry it): the same rule
        return f"(0 if r.{ms[0]} & {w} == {w} else r.{ms[0]} & {w})"
    return f"r.{ms[0]} & {w}"


def _rule_key_fn(flags_mask: int, skip: frozenset = frozenset()) -> Callable[[RuleRequest], tuple]:
    """A function of a rule giving one part per row (the family and every
    non-META row, in table order, but those named in ``skip``), compiled
    once from the table: as fast as a hand-written tuple."""
    parts = [
        _rule_part(row, flags_mask)
        for row in RULE_FIELDS
        if (row.role != ROLE_META or row.kind == KIND_FAMILY) and row.name not in skip
    ]
    return eval(f"lambda r: ({', '.join(parts)},)", {"_s32": _s32, "bool": bool})  # noqa: S307


# FIB_RULE_IIF/OIF_DETACHED (the device's presence) and FIB_RULE_UNRESOLVED (a
# goto whose target priority holds no rule) say what else is in the namespace,
# not what the rule is
_RULE_DETACHED = 0x8 | 0x10
_RULE_UNRESOLVED = 0x4
_rule_key = _rule_key_fn(0xFFFFFFFF)
_ukey_fn = _rule_key_fn(0xFFFFFFFF & ~_RULE_DETACHED & ~_RULE_UNRESOLVED)
# what a default rule is besides its priority, table, action and protocol
_default_rest = _rule_key_fn(0xFFFFFFFF, frozenset(("family", "priority", "table", "action", "protocol", "goto")))


def rule_key(r: RuleRequest) -> tuple:
    """Everything a dumped rule carries (as ``ip rule show`` and the kernel's
    own comparisons see it): the family and every non-META row of the rule
    table (csrc/fields.c), in table order.  Compare keys whole: positions
    follow the table."""
    return _rule_key(r)


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
        and _default_rest(r) == _neutral_rest(r.family)
    )


def _neutral_rest(family: int) -> tuple:
    """The selectors and other actions of a rule that has none (the kernel's
    defaults: no suppress_*, no l3mdev, uidrange 0-4294967295 ...)."""
    got = _NEUTRAL_REST.get(family)
    if got is None:
        got = _NEUTRAL_REST[family] = _default_rest(RuleRequest(RTM_NEWRULE, 0, family=family))
    return got


_NEUTRAL_REST: dict[int, tuple] = {}


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


def _ukey(r: RuleRequest) -> tuple:
    """rule_key without the flags that describe the rest of the namespace
    (DETACHED: the device's presence; UNRESOLVED: the goto target's): a
    rule's identity."""
    return _ukey_fn(r)


def _slot_key(r: RouteRequest) -> tuple:
    dst = r.dst if r.dst_len else None
    return (r.family, r.table & 0xFFFFFFFF, dst, r.dst_len, r.tos, r.priority & 0xFFFFFFFF)
