"""Live state through the C dump reader (csrc/nl_dump.c).

:class:`LiveDump` opens one NETLINK_ROUTE socket in a namespace, runs the
RTM_GETLINK / GETADDR / GETRULE / GETROUTE dumps in C (the GIL is released
meanwhile) and turns the flat record arrays into the records of
:mod:`polroute.live.objects` (KLink, KAddr, KRule, KRoute), field for field
what the pyroute2 reader of the tests (tests/kernel/pyroute2_state.py) makes.

The C arrays are read record by record by ``polroute._core.codec.records``
(``struct.iter_unpack``, the layout taken from the cffi struct), one
constructor call per record: besides the final records only one record's
values exist at a time, and address objects are shared between records
that carry the same address.
"""

from __future__ import annotations

import gc
import ipaddress

from polroute._core.binding import ffi, lib
from polroute._core.codec import out_struct, raw_bytes, struct_dict, text
from polroute._core.codec import records as _records
from polroute._core.codec import u16s as _u16s
from polroute._core.codec import u32s as _u32s
from polroute._core.errors import DumpError, check, check_handle
from polroute._core.fields import FF_NEW_KEYWORD, KIND_MASK, KIND_RANGE16, RULE_FIELDS, RULE_PRESENT_BITS
from polroute.live.netns import checked_netns_path
from polroute.live.objects import KAddr, KLink, KRoute, KRule
from polroute.types.requests import (
    AF_INET,
    AF_INET6,
    FRA_DST,
    FRA_L3MDEV,
    FRA_PRIORITY,
    FRA_SRC,
    FRA_SUPPRESS_IFGROUP,
    FRA_SUPPRESS_PREFIXLEN,
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
    RTM_NEWROUTE,
    RTM_NEWRULE,
    NexthopRequest,
)

# attribute ids as the C records' `seen` bits
_IFLA_LINK_NETNSID = 37
_IFA_ADDRESS, _IFA_LOCAL, _IFA_BROADCAST, _IFA_FLAGS = 1, 2, 4, 8
_RTA_SRC, _RTA_IIF, _RTA_NEWDST, _RTA_ENCAP_TYPE, _RTA_ENCAP = 2, 3, 19, 21, 22
_RTA_EXPIRES, _RTA_TTL_PROPAGATE = 23, 26
_ARPHRD_LOOPBACK = 772
_IFF_UP, _IFF_LOWER_UP = 0x1, 0x10000

# route attributes whose presence sets their `present` bit
_ROUTE_PRESENT_MASK = sum(
    1 << a for a in (RTA_DST, RTA_PREFSRC, RTA_GATEWAY, RTA_OIF, RTA_FLOW, RTA_PREF, RTA_NH_ID, RTA_MULTIPATH)
)
_ROUTE_NOTE_TEXT = {
    _RTA_ENCAP_TYPE: "RTA_ENCAP_TYPE",
    _RTA_ENCAP: "RTA_ENCAP",
    _RTA_SRC: "RTA_SRC",
    _RTA_IIF: "RTA_IIF",
    _RTA_NEWDST: "RTA_NEWDST",
    _RTA_TTL_PROPAGATE: "RTA_TTL_PROPAGATE",
}


def _fast_address_makers():
    """int -> IPv4Address / IPv6Address without the constructors' argument
    checks (the value comes from a fixed-size field, so it is in range): 3-4x
    cheaper, which matters at 100k routes.  Checked against the constructors
    once; the constructors are used if this CPython's layout differs."""
    v4, v6 = ipaddress.IPv4Address, ipaddress.IPv6Address
    new = object.__new__

    def mk4(n: int):
        a = new(v4)
        a._ip = n
        return a

    def mk6(n: int):
        a = new(v6)
        a._ip = n
        a._scope_id = None
        return a

    try:
        for n4, n6 in ((0x0A000001, 1), (0xFFFFFFFF, (1 << 128) - 1)):
            a, b = mk4(n4), mk6(n6)
            if (a, hash(a), str(a), b, hash(b), str(b)) != (
                v4(n4),
                hash(v4(n4)),
                str(v4(n4)),
                v6(n6),
                hash(v6(n6)),
                str(v6(n6)),
            ):
                raise ValueError
        return mk4, mk6
    except (AttributeError, TypeError, ValueError):  # pragma: no cover - other Pythons
        return v4, v6


_mk4, _mk6 = _fast_address_makers()
_from_bytes = int.from_bytes


def _new_addr(raw: bytes, family: int):
    """A fresh address object from a 16-byte field (IPv4 in the first 4)."""
    if family == AF_INET:
        return _mk4(_from_bytes(raw[:4], "big"))
    return _mk6(_from_bytes(raw, "big"))


class _Addrs:
    """Shared address objects for values that repeat (gateways, prefsrcs,
    rule selectors); destinations are mostly unique and are not cached."""

    def __init__(self):
        self.v4: dict[bytes, object] = {}
        self.v6: dict[bytes, object] = {}

    def get(self, raw: bytes, family: int):
        cache = self.v4 if family == AF_INET else self.v6
        a = cache.get(raw)
        if a is None:
            a = cache[raw] = _new_addr(raw, family)
        return a


# ---------------------------------------------------------------------------
# the reader
# ---------------------------------------------------------------------------


class LiveDump:
    """One NETLINK_ROUTE socket in ``netns`` (an ``ip netns`` name, a path, or
    None) and the C dump handle its replies are decoded into."""

    def __init__(self, netns: str | None = None):
        try:
            path = checked_netns_path(netns)
        except FileNotFoundError:
            raise FileNotFoundError(2, f'Cannot open network namespace "{netns}": No such file or directory') from None
        fd = lib.pr_nl_open(path.encode() if path else ffi.NULL)
        check(fd, f'Cannot open network namespace "{netns}"' if path else "", error=OSError)
        self._fd: int | None = fd
        self._d = ffi.gc(check_handle(lib.pr_dump_new(), "pr_dump_new", self.close), lib.pr_dump_free)
        self._addrs = _Addrs()

    def close(self) -> None:
        fd, self._fd = getattr(self, "_fd", None), None
        if fd is not None:
            lib.pr_nl_close(fd)

    def __enter__(self) -> LiveDump:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    # ---- C calls ------------------------------------------------------------
    def _check(self, rc: int) -> int:
        """rc, or the DumpError with the decoder's text for a negative one."""
        if rc >= 0:
            return rc
        return check(rc, "", _decoder_text(self._d), error=DumpError)

    def _dump(self, msg_type: int, family: int, convert, *args) -> list:
        """One dump, converted a chunk of records at a time (the C arrays
        then hold one chunk, not the whole dump); a dump the kernel had to
        start again (it changed meanwhile) is taken again from scratch."""
        if self._fd is None:
            raise ValueError("the dump socket is closed")
        lib.pr_dump_clear(self._d)
        self._check(lib.pr_dump_start(self._d, self._fd, msg_type, family))
        out: list = []
        was = gc.isenabled()
        gc.disable()  # 100k records hold no cycles: the collector only costs here
        try:
            while True:
                lib.pr_dump_clear(self._d)
                rc = lib.pr_dump_step(self._d, _CHUNK)
                if rc == lib.PR_DUMP_RESTARTED:
                    out = []
                    continue
                if self._check(rc) == 0:
                    return out
                out += convert(self._view(), *args)
        finally:
            lib.pr_dump_clear(self._d)
            if was:
                gc.enable()

    def _view(self):
        v = out_struct("pr_dump_view")
        lib.pr_dump_get_view(self._d, v)
        return v

    def stats(self) -> dict[str, int]:
        st = out_struct("pr_dump_stats")
        lib.pr_dump_get_stats(self._d, st)
        return struct_dict(st, skip=("pad",))

    def route_table(self, dst) -> int:
        """The table the kernel reports for ``ip route get DST`` (as pyroute2
        asks it: RTA_DST only)."""
        fam = AF_INET if dst.version == 4 else AF_INET6
        out = out_struct("uint32_t")
        check(lib.pr_dump_route_table(self._d, self._fd, fam, dst.packed.ljust(16, b"\0"), out), error=DumpError)
        return out[0]

    # ---- records --------------------------------------------------------------
    def links(self) -> list:
        return sorted(self._dump(lib.PR_RTM_GETLINK, 0, links_from_view), key=lambda l: l.ifindex)

    def addrs(self) -> list:
        return self._dump(lib.PR_RTM_GETADDR, 0, addrs_from_view, self._addrs)

    def rules(self, family: int) -> list:
        return self._dump(lib.PR_RTM_GETRULE, family, rules_from_view, self._addrs)

    def routes(self, family: int) -> list:
        return self._dump(lib.PR_RTM_GETROUTE, family, routes_from_view, self._addrs)


_CHUNK = 4096  # records per step


def _decoder_text(d) -> str:
    """The C decoder's text for its last error ("" if none)."""
    return text(lib.pr_dump_error(d), "replace")


def decode_messages(buf: bytes) -> dict[str, list]:
    """Decode a buffer of netlink messages (as a dump delivers them) with the
    C decoder into records: {"links", "addrs", "rules", "routes"}.  Raises
    DumpError (EBADMSG with the decoder's text) for a malformed buffer."""
    d = ffi.gc(lib.pr_dump_new(), lib.pr_dump_free)
    rc = lib.pr_dump_decode(d, buf, len(buf))
    if rc < 0:
        check(rc, "", _decoder_text(d), error=DumpError)
    v = out_struct("pr_dump_view")
    lib.pr_dump_get_view(d, v)
    addrs = _Addrs()
    return {
        "links": links_from_view(v),
        "addrs": addrs_from_view(v, addrs),
        "rules": rules_from_view(v, addrs),
        "routes": routes_from_view(v, addrs),
    }


# ---------------------------------------------------------------------------
# records from the arrays (what kernel_state's pyroute2 functions make)
# ---------------------------------------------------------------------------


def _strings(v) -> bytes:
    return raw_bytes(v.strings, v.strings_len)


def _text(strings: bytes, off: int, length: int) -> str:
    return strings[off : off + length].decode("utf-8", "replace")


def _name(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def links_from_view(v) -> list:
    strings = _strings(v)
    out = []
    for (
        ifindex,
        flags,
        ifi_type,
        gen_mode,
        has_gen_mode,
        tun_type,
        group,
        master,
        link,
        seen,
        name_off,
        name_len,
        kind_off,
        kind_len,
    ) in _records(
        v.links,
        v.n_links,
        "pr_dump_link",
        (
            "ifindex",
            "flags",
            "ifi_type",
            "addr_gen_mode",
            "has_addr_gen_mode",
            "tun_type",
            "group",
            "master",
            "link",
            "seen",
            "name.off",
            "name.len",
            "kind.off",
            "kind.len",
        ),
    ):
        info_kind = _text(strings, kind_off, kind_len)
        k = "other"
        if ifi_type == _ARPHRD_LOOPBACK:
            k = "loopback"
        elif info_kind in ("veth", "bridge", "ifb"):
            k = info_kind
        elif info_kind == "tun":
            k = "tap" if tun_type == 2 else "tun"
        lk = KLink(
            ifindex,
            _text(strings, name_off, name_len),
            k,
            info_kind,
            bool(flags & _IFF_UP),
            bool(flags & _IFF_LOWER_UP),
            group=group,
            master=master,
            addr_gen_mode=gen_mode if has_gen_mode else None,
        )
        if k == "veth":
            if seen >> _IFLA_LINK_NETNSID & 1:
                lk.peer_elsewhere = True
            else:
                lk.peer = link
        out.append(lk)
    out.sort(key=lambda l: l.ifindex)
    return out


def addrs_from_view(v, addrs: _Addrs) -> list:
    strings = _strings(v)
    get = addrs.get
    out = []
    for (
        fam,
        ifindex,
        plen,
        scope,
        flags,
        label_off,
        label_len,
        bcast,
        address,
        local,
        metric,
        valid,
        pref,
        proto,
        seen,
    ) in _records(
        v.addrs,
        v.n_addrs,
        "pr_dump_addr",
        (
            "family",
            "ifindex",
            "prefixlen",
            "scope",
            "flags",
            "label.off",
            "label.len",
            "broadcast",
            "address",
            "local",
            "metric",
            "valid_lft",
            "preferred_lft",
            "proto",
            "seen",
        ),
    ):
        has_local, has_address = seen >> _IFA_LOCAL & 1, seen >> _IFA_ADDRESS & 1
        if not has_local:
            local, has_local, has_address = address, has_address, 0
        peer = None
        if has_address and address != local:
            peer = get(address, fam)
        out.append(
            KAddr(
                fam,
                ifindex,
                get(local, fam) if has_local else None,
                plen,
                scope,
                flags,
                _text(strings, label_off, label_len),
                get(bcast, fam) if seen >> _IFA_BROADCAST & 1 else None,
                peer,
                metric,
                valid,
                pref,
                proto,
            )
        )
    return out


# FRA_* attributes iproute2 6.1 has no keyword for (the rule table's
# NEW_KEYWORD rows): decoded, and named in KRule.unsupported
_RULE_UNSUPPORTED = {r.nla_type: r.name.replace("_", " ") for r in RULE_FIELDS if r.flags & FF_NEW_KEYWORD}
# every member of the rule table's rows, in table order
_RULE_MEMBERS = tuple(dict.fromkeys(m for row in RULE_FIELDS for m in row.members + row.aux_members))
_RULE_BY_NLA = {r.nla_type: r for r in RULE_FIELDS if r.nla_type >= 0}


def _implied_mask(t: int, d: dict) -> bool:
    """Whether note t is a mask all ones, as the value alone makes it (dscp's
    0x3f; a single port's 0xffff, which newer kernels dump for `sport N`)."""
    row = _RULE_BY_NLA.get(t)
    if row is None or row.kind != KIND_MASK or d[row.members[0]] != row.all_ones:
        return False
    value = RULE_FIELDS[row.link]
    if value.kind == KIND_RANGE16:
        start, end = (d[m] for m in value.members)
        return start == end and bool(d["present"] >> value.present_bit & 1)
    return True


def rules_from_view(v, addrs: _Addrs) -> list:
    """KRules, field for field what the kernel's fib_nl_fill_rule (net/core/fib_rules.c) put in each RTM_NEWRULE."""
    get = addrs.get
    notes = _u16s(v.notes, v.n_notes)
    out = []
    fields = tuple("r." + f for f in _RULE_MEMBERS) + ("note_off", "note_count")
    for rec in _records(v.rules, v.n_rules, "pr_dump_rule", fields):
        d = dict(zip(_RULE_MEMBERS, rec))
        note_off, note_count = rec[-2:]
        fam, present = d["family"], (d["present"] & RULE_PRESENT_BITS) | (1 << FRA_PRIORITY)
        # the kernel sends 0xFFFFFFFF for "no suppress_*", as if absent
        for m, a in (("suppress_prefixlen", FRA_SUPPRESS_PREFIXLEN), ("suppress_ifgroup", FRA_SUPPRESS_IFGROUP)):
            if d[m] == -1:
                present &= ~(1 << a)
            else:
                d[m] &= 0xFFFFFFFF
        if not d["l3mdev"]:
            present &= ~(1 << FRA_L3MDEV)
        d["present"] = present
        d["src"] = get(d["src"], fam) if present >> FRA_SRC & 1 else None
        d["dst"] = get(d["dst"], fam) if present >> FRA_DST & 1 else None
        d["iifname"], d["oifname"] = _name(d["iifname"]), _name(d["oifname"])
        unsupported = [
            _RULE_UNSUPPORTED.get(t, f"FRA attribute {t}")
            for t in (notes[note_off : note_off + note_count] if note_count else ())
            if not _implied_mask(t, d)
        ]
        out.append(KRule(RTM_NEWRULE, 0, unsupported=unsupported, **d))
    return out


_ROUTE_FIELDS = (
    "family",
    "dst_len",
    "src_len",
    "tos",
    "protocol",
    "scope",
    "type",
    "table",
    "rtm_flags",
    "priority",
    "oif",
    "nh_id",
    "realm",
    "pref",
    "gw_family",
    "seen",
    "metrics_present",
    "metrics_off",
    "nh_off",
    "nh_count",
    "note_off",
    "note_count",
    "dst",
    "prefsrc",
    "gw",
    "expires",
    "congctl.off",
    "congctl.len",
)


def _route_notes(r: KRoute, notes: list, expires: int, strings: bytes, cc_off: int, cc_len: int, legs: list) -> None:
    """What the model cannot carry of one route, in message order, added to
    its ``unsupported`` (and its expires and congctl set)."""
    unsupported = r.unsupported
    for t in notes:
        if t == RTA_NH_ID:
            unsupported.append("nhid (nexthop objects)")
        elif t == _RTA_EXPIRES:
            r.expires = expires
            if expires:
                unsupported.append(f"expires {expires}")
        elif t == RTA_METRICS:
            r.congctl = _text(strings, cc_off, cc_len)
            unsupported.append(f"congctl {r.congctl}")
        elif t == RTA_MULTIPATH:
            unsupported.extend("nexthop realms" for leg in legs if leg[5])
        elif t in _ROUTE_NOTE_TEXT:
            unsupported.append(_ROUTE_NOTE_TEXT[t])


def routes_from_view(v, addrs: _Addrs) -> list:
    """KRoutes, field for field what fib_dump_info (ipv4) / rt6_fill_node (ipv6) put in each RTM_NEWROUTE."""
    get = addrs.get
    strings = _strings(v)
    legs = list(
        _records(v.nexthops, v.n_nexthops, "pr_dump_nexthop", ("gw_family", "gw", "ifindex", "hops", "flags", "realm"))
    )
    notes = _u16s(v.notes, v.n_notes)
    mvals = _u32s(v.metric_values, v.n_metric_values)
    base_present = (1 << RTA_TABLE) | (1 << RTA_PRIORITY)
    out = []
    append = out.append
    for (
        fam,
        dst_len,
        src_len,
        tos,
        proto,
        scope,
        rtype,
        table,
        rflags,
        prio,
        oif,
        nh_id,
        realm,
        pref,
        gw_fam,
        seen,
        mxp,
        mx_off,
        nh_off,
        nh_count,
        note_off,
        note_count,
        dst,
        prefsrc,
        gw,
        expires,
        cc_off,
        cc_len,
    ) in _records(v.routes, v.n_routes, "pr_dump_route", _ROUTE_FIELDS):
        present = base_present | (seen & _ROUTE_PRESENT_MASK)
        if seen >> RTA_VIA & 1:
            present |= 1 << RTA_GATEWAY
        mx = {}
        if mxp:
            for k in range(1, 18):
                if mxp >> k & 1 and k != 16:
                    mx[k] = mvals[mx_off + k]
            if mx:
                present |= 1 << RTA_METRICS
        nhs = []
        for lf, lgw, ifindex, hops, lflags, _ in legs[nh_off : nh_off + nh_count] if nh_count else ():
            nhs.append(NexthopRequest(get(lgw, lf) if lf else None, ifindex, hops + 1, lflags))
        unsupported = ["from (source-specific route)"] if src_len else []
        r = KRoute(
            RTM_NEWROUTE,
            0,
            fam,
            dst_len,
            tos,
            proto,
            scope,
            rtype,
            table,
            rflags,
            present,
            (_mk4(_from_bytes(dst[:4], "big")) if fam == AF_INET else _mk6(_from_bytes(dst, "big")))
            if seen >> RTA_DST & 1
            else None,
            prio,
            get(prefsrc, fam) if seen >> RTA_PREFSRC & 1 else None,
            get(gw, gw_fam) if gw_fam else None,
            oif,
            nh_id,
            realm,
            pref,
            nhs,
            mx,
            0,
            "",
            unsupported,
        )
        if note_count:  # (rare: a call only for routes that have notes)
            _route_notes(
                r,
                notes[note_off : note_off + note_count],
                expires,
                strings,
                cc_off,
                cc_len,
                legs[nh_off : nh_off + nh_count],
            )
        append(r)
    return out
