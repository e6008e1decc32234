"""Request dataclasses to the C request structs of ``csrc/polroute.h``.

Shared by :class:`polroute.model.policy.Policy` (the model) and
:class:`polroute.live.netlink.KernelSocket` (the live kernel), so that both see
exactly the same struct for the same request.
"""

from __future__ import annotations

import functools
import ipaddress
import operator
import struct

from polroute._core.binding import ffi, lib
from polroute.types.infos import AddrInfo, LinkInfo, NexthopObjInfo
from polroute.types.requests import (
    AF_INET,
    AF_INET6,
    FRA_DST,
    FRA_IIFNAME,
    FRA_OIFNAME,
    FRA_SRC,
    RTA_DST,
    RTA_GATEWAY,
    RTA_METRICS,
    RTA_MULTIPATH,
    RTA_NH_ID,
    RTA_OIF,
    RTA_PREFSRC,
    RTA_PRIORITY,
    RTA_TABLE,
    RTM_NEWROUTE,
    RTM_NEWRULE,
    AddrRequest,
    IPAddress,
    NexthopObjRequest,
    NexthopRequest,
    RouteRequest,
    RuleRequest,
    bit,
)

#: the C NULL pointer (an absent optional argument or result)
NULL = ffi.NULL

# ---- names of the core's enums, keyed by the extension's own constants

#: rtm_type / PR_RTN_* -> iproute2's word (lib/rt_names.c rtnl_rtntype_n2a)
ROUTE_TYPE_NAMES = {
    lib.PR_RTN_UNSPEC: "none",
    lib.PR_RTN_UNICAST: "unicast",
    lib.PR_RTN_LOCAL: "local",
    lib.PR_RTN_BROADCAST: "broadcast",
    lib.PR_RTN_ANYCAST: "anycast",
    lib.PR_RTN_MULTICAST: "multicast",
    lib.PR_RTN_BLACKHOLE: "blackhole",
    lib.PR_RTN_UNREACHABLE: "unreachable",
    lib.PR_RTN_PROHIBIT: "prohibit",
    lib.PR_RTN_THROW: "throw",
    lib.PR_RTN_NAT: "nat",
    lib.PR_RTN_XRESOLVE: "xresolve",
}
#: PR_STEP_* (one step of the rule walk in a pr_trace) -> its name in explanations
TRACE_STEP_NAMES = {
    lib.PR_STEP_NO_MATCH: "no-match",
    lib.PR_STEP_GOTO: "goto",
    lib.PR_STEP_GOTO_UNRESOLVED: "goto-unresolved",
    lib.PR_STEP_NOP: "nop",
    lib.PR_STEP_TABLE_MISS: "table-miss",
    lib.PR_STEP_NO_TABLE: "no-table",
    lib.PR_STEP_THROW: "throw",
    lib.PR_STEP_SUPPRESSED: "suppressed",
    lib.PR_STEP_DECIDED: "decided",
    lib.PR_STEP_ACTION_ERROR: "action-error",
    lib.PR_STEP_MERGED: "merged",
    lib.PR_STEP_FIND_SADDR_SKIP: "find-saddr-skip",
}
#: PR_NM_* bit -> what the model does not cover in an answer
NOT_MODELLED_NAMES = {
    lib.PR_NM_MULTIPATH_HASH: "multipath hash",
    lib.PR_NM_NEXTHOP_OBJECT: "nexthop object (IPv6 route cache shared by its routes)",
    lib.PR_NM_L3MDEV: "l3mdev/VRF",
    lib.PR_NM_DEFAULT_ROTATION: "default gateway rotation (fib_select_default)",
    lib.PR_NM_IPV6_NEIGH: "IPv6 neighbour state",
    lib.PR_NM_TUN_ID: "tunnel metadata",
    lib.PR_NM_MULTICAST_GROUP: "multicast group membership",
    lib.PR_NM_OTHER: "other",
    lib.PR_NM_ROUTE_CACHE: "route cache (multicast via a unicast or broadcast route)",
}

#: link kind words (``ip link add ... type KIND``) -> PR_LINK_*
LINK_KINDS = {
    "loopback": lib.PR_LINK_LOOPBACK,
    "veth": lib.PR_LINK_VETH,
    "bridge": lib.PR_LINK_BRIDGE,
    "ifb": lib.PR_LINK_IFB,
    "tap": lib.PR_LINK_TAP,
    "tun": lib.PR_LINK_TAP,
}
#: PR_LINK_* -> the kind a LinkInfo names (tun and tap are one PR_LINK_TAP: "tun")
LINK_KIND_NAMES = {v: k for k, v in LINK_KINDS.items()} | {lib.PR_LINK_OTHER: "other"}

# ---- request structs


def _int_members(ctype: str) -> tuple[str, ...]:
    """The integer members of a C struct, in struct order (from cffi's view)."""
    fields = sorted(ffi.typeof(ctype).fields, key=lambda nf: nf[1].offset)
    return tuple(name for name, f in fields if f.type.kind == "primitive")


#: the pr_rule_req integer members, each a RuleRequest attribute of the same
#: name (read from the struct, so a new selector's field needs no list here;
#: tests/py/test_codec.py checks RuleRequest has them all)
RULE_INT_FIELDS = _int_members("pr_rule_req")


def addr_bytes(addr: IPAddress | None) -> bytes:
    """16 bytes in network order (IPv4 in the first 4); zeros for None."""
    if addr is None:
        return bytes(16)
    return addr.packed.ljust(16, b"\0")


def family_of(addr: IPAddress) -> int:
    """AF_INET or AF_INET6, the address's family."""
    return AF_INET if addr.version == 4 else AF_INET6


def _fill_rule_fields(c, req: RuleRequest) -> None:
    """fill_rule() one cffi attribute at a time: the reference (and what
    raises OverflowError for a value out of its C type's range)."""
    for name in RULE_INT_FIELDS:
        setattr(c, name, getattr(req, name))
    ffi.memmove(c.src, addr_bytes(req.src), 16)
    ffi.memmove(c.dst, addr_bytes(req.dst), 16)
    c.iifname = req.iifname.encode()[:15]
    c.oifname = req.oifname.encode()[:15]


def pack_rule(req: RuleRequest) -> bytes | None:
    """The bytes of the ``pr_rule_req`` for req, in one ``struct.pack``
    (~2.5x cheaper than 35 cffi attribute writes: it was ~20 % of reading a
    batch); None when a value does not fit its C type (the field-by-field
    path then raises as before) or the layout is not the one expected."""
    if _RULE_STRUCT is None:
        return None
    try:
        return _RULE_STRUCT.pack(
            *_rule_ints(req),
            b"" if req.src is None else req.src.packed,  # the Struct pads to 16 bytes with zeros
            b"" if req.dst is None else req.dst.packed,
            req.iifname.encode()[:15],
            req.oifname.encode()[:15],
        )
    except (struct.error, AttributeError, TypeError):
        return None


def fill_rule(c, req: RuleRequest) -> None:
    """Fill a ``pr_rule_req *`` (all fields) from a RuleRequest."""
    data = pack_rule(req)
    if data is None:
        _fill_rule_fields(c, req)
    else:
        ffi.memmove(c, data, len(data))


def rule_to_c(req: RuleRequest):
    """A new ``pr_rule_req *`` for req."""
    c = ffi.new("pr_rule_req *")
    fill_rule(c, req)
    return c


def route_to_c(req: RouteRequest):
    """A new ``pr_route_req *`` for req, and the nexthop array it points to
    (keep both alive while the struct is in use)."""
    # (a dict initializer is filled in C: ~30 % cheaper than one setattr per field)
    c = ffi.new(
        "pr_route_req *",
        {
            "family": req.family,
            "dst_len": req.dst_len,
            "tos": req.tos,
            "protocol": req.protocol,
            "scope": req.scope,
            "type": req.type,
            "table": req.table,
            "rtm_flags": req.rtm_flags,
            "present": req.present,
            "priority": req.priority,
            "oif": req.oif,
            "nh_id": req.nh_id,
            "realm": req.realm,
            "pref": req.pref,
        },
    )
    if req.dst is not None:  # (the struct starts zeroed: None is all zeros)
        ffi.memmove(c.dst, req.dst.packed, 4 if req.dst.version == 4 else 16)
    if req.prefsrc is not None:
        ffi.memmove(c.prefsrc, req.prefsrc.packed, 4 if req.prefsrc.version == 4 else 16)
    if req.gateway is not None:
        c.gw_family = family_of(req.gateway)
        ffi.memmove(c.gw, addr_bytes(req.gateway), 16)
    nh = None
    if req.nexthops:
        nh = ffi.new("pr_nexthop_req[]", len(req.nexthops))
        for i, leg in enumerate(req.nexthops):
            nh[i].ifindex = leg.ifindex
            nh[i].weight = leg.weight
            nh[i].flags = leg.flags
            if leg.gateway is not None:
                nh[i].gw_family = family_of(leg.gateway)
                ffi.memmove(nh[i].gw, addr_bytes(leg.gateway), 16)
        c.nh = nh
        c.nh_count = len(req.nexthops)
    for k, v in req.metrics.items():
        c.metrics_present |= 1 << k
        c.metrics[k] = v
    return c, nh


# ---- request structs as one struct.Struct each
#
# The layouts are read from cffi's own view of the structs (offsets, sizes,
# member types), so they cannot drift from csrc/polroute.h; the value order
# of each pack() is checked against the one the packers below are written
# for.  Any other shape leaves the Struct None and the callers go field by
# field (route_to_c, _fill_rule_fields).  tests/py/test_fastline.py and
# tests/py/test_codec.py compare the two.

_CODES = {
    "uint8_t": "B",
    "int8_t": "b",
    "uint16_t": "H",
    "int16_t": "h",
    "uint32_t": "I",
    "int32_t": "i",
    "uint64_t": "Q",
    "int64_t": "q",
    "char": "c",
}


def _walk(ctype, base: int, prefix: str, skip: tuple[str, ...], pointers: bool, fmt: list, out: list, pos: int) -> int:
    """Append the struct's members to fmt (struct codes, explicit padding)
    and (name, number of values) to out; nested structs as "outer.inner";
    members in skip, and pointers unless ``pointers``, as padding.  The end
    offset reached."""
    for name, f in sorted(ctype.fields, key=lambda nf: nf[1].offset):
        off, t = base + f.offset, f.type
        size = ffi.sizeof(t)
        key = prefix + name
        if key in skip or (t.kind == "pointer" and not pointers):
            continue
        if off > pos:
            fmt.append(f"{off - pos}x")
        if t.kind == "struct":
            pos = _walk(t, off, key + ".", skip, pointers, fmt, out, off)
            continue
        if t.kind == "primitive" and t.cname in _CODES:
            fmt.append(_CODES[t.cname])
            out.append((key, 1))
        elif t.kind == "pointer":
            fmt.append({8: "Q", 4: "I"}[size])
            out.append((key, 1))
        elif t.kind == "array" and t.item.cname in ("uint8_t", "char"):
            fmt.append(f"{size}s")
            out.append((key, 1))
        elif t.kind == "array" and t.item.cname in _CODES:
            fmt.append(f"{t.length}{_CODES[t.item.cname]}")
            out.append((key, t.length))
        else:
            raise TypeError(f"{key}: {t.cname}")
        pos = off + size
    return pos


def _layout_of(ctype: str, skip: tuple[str, ...] = (), pointers: bool = True) -> tuple[struct.Struct, list]:
    fmt: list[str] = ["="]
    out: list[tuple[str, int]] = []
    pos = _walk(ffi.typeof(ctype), 0, "", skip, pointers, fmt, out, 0)
    if ffi.sizeof(ctype) > pos:
        fmt.append(f"{ffi.sizeof(ctype) - pos}x")
    st = struct.Struct("".join(fmt))
    if st.size != ffi.sizeof(ctype):
        raise TypeError(f"{ctype}: packed size {st.size} != {ffi.sizeof(ctype)}")
    return st, out


def struct_layout(ctype: str, skip: tuple[str, ...] = ()) -> tuple[struct.Struct, tuple[str, ...]] | None:
    """A Struct with the exact layout of the C struct ``ctype`` (explicit
    padding, native byte order) and the members its pack() takes, in order:
    integers, pointers (as integers), byte arrays (as bytes, zero-padded) and
    integer arrays (one value per element).  Members in ``skip`` are zero
    padding.  None for a member of another type."""
    try:
        st, members = _layout_of(ctype, skip)
    except (TypeError, KeyError):
        return None
    return st, tuple(name for name, _ in members)


@functools.cache
def _record_layout(ctype: str) -> tuple[struct.Struct, dict[str, int]]:
    """struct_layout for reading: pointers are padding (never read from a
    record), and each member's position in the unpacked tuple ("r.family"
    for a nested member; an integer array takes one value per element)."""
    st, members = _layout_of(ctype, pointers=False)
    index, count = {}, 0
    for name, n in members:
        index[name] = count
        count += n
    return st, index


def records(ptr, n: int, ctype: str, fields: tuple[str, ...]):
    """The named members of each of the n ``ctype`` records at ptr, as
    tuples, one at a time (a C array the core owns; nothing per record is
    kept but what the caller builds)."""
    st, index = _record_layout(ctype)
    if n == 0:
        return iter(())
    pick = operator.itemgetter(*(index[f] for f in fields))
    return map(pick, st.iter_unpack(ffi.buffer(ptr, n * st.size)))


def u16s(ptr, n: int) -> list[int]:
    """n uint16_t at ptr."""
    return list(struct.unpack(f"={n}H", ffi.buffer(ptr, 2 * n))) if n else []


def u32s(ptr, n: int) -> list[int]:
    """n uint32_t at ptr."""
    return list(struct.unpack(f"={n}I", ffi.buffer(ptr, 4 * n))) if n else []


def raw_bytes(ptr, n: int) -> bytes:
    """n bytes at ptr (b"" for none)."""
    return ffi.buffer(ptr, n)[:] if n else b""


# pr_rule_req: the integer members in struct order (RULE_INT_FIELDS, read from
# the same struct), then src, dst, iifname, oifname as byte strings
_RULE_TAIL = ("src", "dst", "iifname", "oifname")
_layout = struct_layout("pr_rule_req")
if _layout and _layout[1] == RULE_INT_FIELDS + _RULE_TAIL:
    _RULE_STRUCT = _layout[0]
    _rule_ints = operator.attrgetter(*RULE_INT_FIELDS)
else:  # pragma: no cover - another layout: field by field
    _RULE_STRUCT = _rule_ints = None

# pr_route_req: the order route_values() and pack_route() give the values in
_ROUTE_ORDER = (
    ("family", "dst_len", "tos", "protocol", "scope", "type", "gw_family", "pref")
    + ("table", "rtm_flags", "present", "priority", "oif", "nh_id", "realm")
    + ("nh_count", "nh", "metrics_present", "metrics", "dst", "prefsrc", "gw")
)
_ROUTE_LEGS_METRICS = ("nh_count", "nh", "metrics_present", "metrics")
_full = struct_layout("pr_route_req")
_plain = struct_layout("pr_route_req", skip=_ROUTE_LEGS_METRICS)
_ROUTE_OK = (
    _full is not None
    and _plain is not None
    and _full[1] == _ROUTE_ORDER
    and _plain[1] == tuple(n for n in _ROUTE_ORDER if n not in _ROUTE_LEGS_METRICS)
)
_ROUTE_FULL = _full[0] if _ROUTE_OK else None
_ROUTE_PLAIN = _plain[0] if _ROUTE_OK else None
#: RTAX ids the request's ``metrics`` array holds
N_METRICS: int = dict(ffi.typeof("pr_route_req").fields)["metrics"].type.length

#: ``route_values(family, dst_len, tos, protocol, scope, type, gw_family,
#: pref, table, rtm_flags, present, priority, oif, nh_id, realm, dst,
#: prefsrc, gw)``: the bytes of a ``pr_route_req`` without nexthops or
#: metrics (addresses as bytes, zero-padded to 16), in one ``struct.pack``
#: for callers that have the values at hand; None when the layout is not the
#: expected one.  struct.error for a value out of its C type's range.
route_values = _ROUTE_PLAIN.pack if _ROUTE_OK else None


# the RouteRequest members before and after gw_family, in _ROUTE_ORDER
_route_head = operator.attrgetter(*_ROUTE_ORDER[:6])
_route_mid = operator.attrgetter(*_ROUTE_ORDER[7:15])


def _addr(a: IPAddress | None) -> bytes:
    return b"" if a is None else a.packed  # the Struct pads to 16 bytes with zeros


def pack_route(r: RouteRequest) -> bytes | None:
    """The bytes of the ``pr_route_req`` route_to_c makes of ``r`` (its
    ``nh`` NULL), in one ``struct.pack`` (about a third of the cost of the
    field-by-field path); None for a request with nexthops, a metric id past
    the array, a value out of its C type's range, or an unexpected layout."""
    if r.nexthops or not _ROUTE_OK:
        return None
    gw = r.gateway
    gw_family = 0 if gw is None else (AF_INET if gw.version == 4 else AF_INET6)
    try:
        m = r.metrics
        if not m:
            # the common shape, spelled out: ~10 % cheaper than the getters below
            return _ROUTE_PLAIN.pack(
                r.family,
                r.dst_len,
                r.tos,
                r.protocol,
                r.scope,
                r.type,
                gw_family,
                r.pref,
                r.table,
                r.rtm_flags,
                r.present,
                r.priority,
                r.oif,
                r.nh_id,
                r.realm,
                _addr(r.dst),
                _addr(r.prefsrc),
                _addr(gw),
            )
        if any(not 0 <= k < N_METRICS for k in m):
            return None
        present = 0
        for k in m:
            present |= 1 << k
        return _ROUTE_FULL.pack(
            *_route_head(r),
            gw_family,
            *_route_mid(r),
            0,  # nh_count
            0,  # nh
            present,
            *(m.get(k, 0) for k in range(N_METRICS)),
            _addr(r.dst),
            _addr(r.prefsrc),
            _addr(gw),
        )
    except (struct.error, AttributeError, TypeError):
        return None


def route_view(packed: bytes):
    """A ``pr_route_req *`` over the bytes of pack_route/route_values (no copy:
    keep ``packed`` alive while it is in use)."""
    return ffi.from_buffer("pr_route_req *", packed)


def copy_into(c, data: bytes):
    """``c`` (a struct pointer) with ``data`` (its packed bytes) copied in."""
    ffi.memmove(c, data, len(data))
    return c


# ---- column structs (pr_bulk_in, pr_bulk_out, pr_bulk6_in, pr_bulk6_out)
#
# Each member points to a caller-owned column; the member's item type is
# read from cffi, so the columns' C types are written down only in
# csrc/polroute.h.


@functools.cache
def column_types(cname: str) -> dict[str, str]:
    """{member: its item's C type ("uint32_t", ...)} of a struct of column
    pointers, in struct order (cached: do not change it)."""
    return {name: f.type.item.cname for name, f in ffi.typeof(cname).fields}


_from_writable = functools.partial(ffi.from_buffer, require_writable=True)


@functools.cache
def _column_decls(cname: str) -> tuple[str, dict[str, str]]:
    return cname + " *", {m: t + "[]" for m, t in column_types(cname).items()}


def columns_struct(cname: str, arrays, *, writable: bool = False, rename: dict | None = None):
    """A new ``cname *`` whose members point into the buffers of ``arrays``
    ((column, C-contiguous buffer) pairs, or a dict; no copy; a column
    missing stays NULL) and the list of cdata that must stay alive while the
    struct is in use.  ``rename`` maps a column to its member where the
    names differ."""
    ptr_decl, decls = _column_decls(cname)
    c = ffi.new(ptr_decl)
    keep = []
    from_buffer = _from_writable if writable else ffi.from_buffer  # (no keyword per call)
    for name, arr in arrays.items() if isinstance(arrays, dict) else arrays:
        member = rename.get(name, name) if rename else name
        view = from_buffer(decls[member], arr)
        keep.append(view)
        setattr(c, member, view)
    return c, keep


def column(item: str, arr, *, writable: bool = False):
    """An ``item[]`` view of a C-contiguous buffer (no copy: keep ``arr``
    alive while it is in use); ``writable`` for one the core writes."""
    return ffi.from_buffer(item + "[]", arr, require_writable=writable)


# ---- the question of pr_route_get


def flow_to_c(
    family: int,
    dst: IPAddress,
    *,
    src: IPAddress | None = None,
    tos: int = 0,
    fibmatch: bool = False,
    iif: int = 0,
    oif: int = 0,
    mark: int = 0,
    uid: int | None = None,
    ipproto: int | None = None,
    sport: int = 0,
    dport: int = 0,
):
    """A new ``pr_flow *`` (ifindexes resolved; None: not given).  IPv4
    questions look up a table (RTM_F_LOOKUP_TABLE, as ``ip route get``)."""
    q = ffi.new("pr_flow *")
    q.family = family
    q.tos = tos
    q.lookup_table = 1 if family == AF_INET else 0
    q.fibmatch = 1 if fibmatch else 0
    ffi.memmove(q.dst, addr_bytes(dst), 16)
    if src is not None:
        q.has_src = 1
        ffi.memmove(q.src, addr_bytes(src), 16)
    q.iif = iif
    q.oif = oif
    q.mark = mark
    if uid is not None:
        q.has_uid = 1
        q.uid = uid
    if ipproto is not None:
        q.has_ipproto = 1
        q.ipproto = ipproto
    q.sport = sport
    q.dport = dport
    return q


def trace_to_c(cap: int):
    """A new ``pr_trace *`` with room for cap steps, and the step array it
    points to (keep both alive while it is in use)."""
    trace = ffi.new("pr_trace *")
    steps = ffi.new("pr_trace_step[]", cap)
    trace.cap = cap
    trace.steps = steps
    return trace, steps


# ---- records the core hands back (pr_link_info, pr_addr_info, pr_rule_info,
# pr_route_info): an out-struct to fill, and its Python value


def out_struct(ctype: str, n: int = 0):
    """A zeroed ``ctype *`` for a core call to fill (``ctype[n]`` when n)."""
    return ffi.new(f"{ctype}[]", n) if n else ffi.new(ctype + " *")


def new_struct(ctype: str, values: dict):
    """A new ``ctype *`` with the named members set (the rest zero)."""
    return ffi.new(ctype + " *", values)


def struct_dict(c, skip: tuple[str, ...] = ()) -> dict[str, int]:
    """{member: value} of a filled struct of integers (stats, counters)."""
    return {name: getattr(c, name) for name, _ in ffi.typeof(c).item.fields if name not in skip}


def struct_bytes(c) -> bytes:
    """The bytes of the struct ``c`` points to."""
    return bytes(ffi.buffer(c))


def text(chars, errors: str = "strict") -> str:
    """A NUL-terminated C string (a char array or pointer) as UTF-8 text."""
    return ffi.string(chars).decode("utf-8", errors)


def addr_from(family: int, raw) -> IPAddress:
    """An address from 16 bytes in network order (IPv4 in the first 4)."""
    b = bytes(ffi.buffer(raw, 16))
    if family == AF_INET:
        return ipaddress.IPv4Address(b[:4])
    return ipaddress.IPv6Address(b)


def addr_to_c(req: AddrRequest):
    """A new ``pr_addr_req *`` for req."""
    c = ffi.new("pr_addr_req *")
    c.family = req.family
    c.prefixlen = req.prefixlen
    c.scope = req.scope
    c.ifindex = req.ifindex
    c.flags = req.flags
    c.metric = req.metric
    ffi.memmove(c.local, addr_bytes(req.local), 16)
    if req.broadcast is not None:
        c.has_broadcast = 1
        ffi.memmove(c.broadcast, addr_bytes(req.broadcast), 16)
    return c


def link_from_c(info) -> LinkInfo:
    """The LinkInfo of a filled ``pr_link_info *``."""
    return LinkInfo(
        info.ifindex,
        text(info.name),
        LINK_KIND_NAMES.get(info.kind, "other"),
        bool(info.up),
        bool(info.carrier),
        info.group,
    )


def addr_from_c(info) -> AddrInfo:
    """The AddrInfo of a filled ``pr_addr_info *``."""
    a = info.a
    return AddrInfo(
        a.ifindex,
        a.family,
        addr_from(a.family, a.local),
        a.prefixlen,
        a.scope,
        bool(info.secondary),
        a.flags,
        a.metric,
        addr_from(a.family, a.broadcast) if a.has_broadcast else None,
    )


def rule_from_c(info, family: int) -> RuleRequest:
    """The rule of a filled ``pr_rule_info *``, as a RuleRequest (RTM_NEWRULE)."""
    r = info.r
    req = RuleRequest(RTM_NEWRULE, 0)
    for name in RULE_INT_FIELDS:
        setattr(req, name, getattr(r, name))
    req.src = addr_from(family, r.src) if r.present & bit(FRA_SRC) else None
    req.dst = addr_from(family, r.dst) if r.present & bit(FRA_DST) else None
    req.iifname = text(r.iifname) if r.present & bit(FRA_IIFNAME) else ""
    req.oifname = text(r.oifname) if r.present & bit(FRA_OIFNAME) else ""
    return req


def route_from_c(info, nh, groups: frozenset[int] | set[int] = frozenset()) -> RouteRequest:
    """The route of a filled ``pr_route_info *`` and its ``pr_nexthop_info``
    array, as a RouteRequest (RTM_NEWROUTE) with the present bits a dump has:
    one leg as gateway/oif, more as nexthops.  A route through a nexthop
    object (``nh_id``) carries its object's legs for printing but sends only
    RTA_NH_ID (the kernel refuses both); an IPv6 one through a group (an id
    in ``groups``) dumps its legs as RTA_MULTIPATH even with one member."""
    req = RouteRequest(
        RTM_NEWROUTE,
        0,
        family=info.family,
        dst_len=info.dst_len,
        tos=info.tos,
        protocol=info.protocol,
        scope=info.scope,
        type=info.type,
        table=info.table,
        rtm_flags=info.rtm_flags,
        priority=info.priority,
        nh_id=info.nh_id,
        pref=info.pref,
    )
    req.present = bit(RTA_TABLE) | bit(RTA_PRIORITY)
    req.dst = addr_from(info.family, info.dst)
    if info.dst_len:
        req.present |= bit(RTA_DST)
    if info.has_prefsrc:
        req.prefsrc = addr_from(info.family, info.prefsrc)
        req.present |= bit(RTA_PREFSRC)
    if info.nh_id:
        req.present |= bit(RTA_NH_ID)
    via_obj = bool(info.nh_id)
    legs = []
    for j in range(min(info.nh_count, len(nh))):
        leg = nh[j]
        gw = addr_from(leg.gw_family, leg.gw) if leg.gw_family else None
        legs.append(NexthopRequest(gw, leg.ifindex, leg.weight, leg.flags))
    if via_obj and info.family == AF_INET6 and legs and info.nh_id in groups:
        req.nexthops, legs = legs, []
    if len(legs) == 1:
        req.gateway, req.oif = legs[0].gateway, legs[0].ifindex
        req.rtm_flags |= legs[0].flags
        if req.gateway is not None and not via_obj:
            req.present |= bit(RTA_GATEWAY)
        if req.oif and not via_obj:
            req.present |= bit(RTA_OIF)
    elif legs:
        req.nexthops = legs
        if not via_obj:
            req.present |= bit(RTA_MULTIPATH)
    for k in range(len(info.metrics)):
        if info.metrics_present & (1 << k):
            req.metrics[k] = info.metrics[k]
    if req.metrics:
        req.present |= bit(RTA_METRICS)
    return req


def nhobj_to_c(req: NexthopObjRequest):
    """A new ``pr_nhobj_req *`` for req, and the member array it points to
    (keep both alive while the struct is in use)."""
    c = ffi.new(
        "pr_nhobj_req *",
        {
            "family": req.family,
            "protocol": req.protocol,
            "flags": req.flags,
            "present": req.present,
            "id": req.id,
            "oif": req.oif,
            "group_type": req.group_type,
            "res_buckets": req.res_buckets,
        },
    )
    if req.gateway is not None:
        ffi.memmove(c.gw, addr_bytes(req.gateway), 16)
    grp = None
    if req.group:
        grp = ffi.new("pr_nhgrp_entry[]", len(req.group))
        for i, (nid, weight) in enumerate(req.group):
            grp[i].id = nid
            grp[i].weight = weight
        c.group = grp
        c.ngroup = len(req.group)
    return c, grp


def nhobj_from_c(info, grp) -> NexthopObjInfo:
    """A filled ``pr_nhobj_info *`` (and its ``pr_nhgrp_entry`` array for a
    group, else NULL) as a NexthopObjInfo."""
    group = tuple((grp[k].id, grp[k].weight) for k in range(info.ngroup)) if info.is_group else None
    return NexthopObjInfo(
        id=info.id,
        family=info.family,
        scope=info.scope,
        protocol=info.protocol,
        flags=info.flags,
        blackhole=bool(info.blackhole),
        ifindex=info.ifindex,
        gateway=addr_from(info.gw_family, info.gw) if info.gw_family else None,
        group=group,
        group_type=info.group_type,
    )
