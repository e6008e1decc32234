"""A brute-force reference evaluator for ``ip route get``, written from the spec.

Source of truth: the project's specification of the kernel's behaviour (rules,
tables, route types, source selection, ip route get: shared/docs/kernel-semantics.md,
beside the repository, sections 2-7 and 10) and docs/kernel-notes.md.  The
evaluator reads only the *dumped* state of a :class:`polroute.model.policy.Policy`
(``rules(fam)``, ``routes(fam)``, ``links()``, ``addresses()``,
``sysctl_get(key)``, ``v4_merged()``) and answers a route question by linear
scans: the rule list in order (3.5), and per table every route whose prefix
covers the destination, sorted longest prefix first and then in the entry order
of 5.3 (tos descending, metric ascending, dump order for equal keys).  It shares
no code with the C core; the only polroute import is the rt_tables name layer,
used to print table/dsfield/protocol names exactly as ``to_json`` does.

The answer is the projection of ``query.to_json`` that the spec determines:

    errors:   {"errno": "EHOSTUNREACH"}
    success:  type, dst, from, tos, gateway, dev, table, protocol, prefsrc,
              metric, flags, mark, uid, cache, iif, pref

Where the spec is silent the evaluator does not guess.  Either the whole
question is declared out of scope (:class:`Unspecified`, with the reason), or a
field is listed in ``Answer.ignore``, or several outcomes are accepted
(``Answer.alternatives``).  Every such place carries a ``SPEC-GAP`` comment.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field

from polroute.iproute2.rt_tables import RtTables

AF_INET, AF_INET6 = 2, 10
LOOPBACK_IFINDEX = 1  # spec 2: output lookups use iif 1 (lo)

# rule actions (3.4)
FR_ACT_UNSPEC, FR_ACT_TO_TBL, FR_ACT_GOTO, FR_ACT_NOP = 0, 1, 2, 3
FR_ACT_BLACKHOLE, FR_ACT_UNREACHABLE, FR_ACT_PROHIBIT = 6, 7, 8
FIB_RULE_INVERT = 2
FRA_DSCP, FRA_DSCP_MASK = 25, 30

# route types (5.2)
RTN_UNICAST, RTN_LOCAL, RTN_BROADCAST, RTN_ANYCAST, RTN_MULTICAST = 1, 2, 3, 4, 5
RTN_BLACKHOLE, RTN_UNREACHABLE, RTN_PROHIBIT, RTN_THROW, RTN_NAT, RTN_XRESOLVE = 6, 7, 8, 9, 10, 11
TYPE_NAMES = {1: "unicast", 2: "local", 3: "broadcast", 4: "anycast", 5: "multicast"}

RT_SCOPE_UNIVERSE, RT_SCOPE_LINK, RT_SCOPE_HOST = 0, 253, 254
RTNH_F_DEAD, RTNH_F_LINKDOWN = 1, 16
IPPROTO_ICMP, IPPROTO_IGMP, IPPROTO_TCP, IPPROTO_UDP = 1, 2, 6, 17
TABLE_DEFAULT, TABLE_MAIN, TABLE_LOCAL = 253, 254, 255

# 3.4 / 5.2: what a route type returns from inside a table.
EAGAIN = "EAGAIN"
ROUTE_TYPE_ERROR = {
    RTN_UNREACHABLE: "EHOSTUNREACH",
    RTN_PROHIBIT: "EACCES",
    RTN_BLACKHOLE: "EINVAL",
    RTN_THROW: EAGAIN,
    RTN_NAT: "EINVAL",
    RTN_XRESOLVE: "EINVAL",
}


def rule_action_error(action: int) -> str:
    """3.4: unreachable -> ENETUNREACH, prohibit -> EACCES, blackhole, 0, 4, 5 -> EINVAL."""
    if action == FR_ACT_UNREACHABLE:
        return "ENETUNREACH"
    if action == FR_ACT_PROHIBIT:
        return "EACCES"
    return "EINVAL"


class Unspecified(Exception):
    """The spec does not determine the answer to this question."""


# --------------------------------------------------------------------------- flows

_PROTO_NAMES = {1: "icmp", 2: "igmp", 6: "tcp", 17: "udp", 132: "sctp"}


@dataclass(frozen=True)
class Flow:
    """One ``ip route get`` question (names, not ifindexes)."""

    dst: str
    src: str | None = None
    iif: str | None = None
    oif: str | None = None
    mark: int = 0
    tos: int = 0
    uid: int | None = None
    ipproto: int | None = None
    sport: int | None = None
    dport: int | None = None

    @property
    def family(self) -> int:
        return AF_INET6 if ":" in self.dst else AF_INET

    def argv(self) -> list[str]:
        out = [self.dst]
        if self.src is not None:
            out += ["from", self.src]
        if self.iif is not None:
            out += ["iif", self.iif]
        if self.oif is not None:
            out += ["oif", self.oif]
        if self.mark:
            out += ["mark", str(self.mark)]
        if self.tos:
            out += ["tos", f"0x{self.tos:02x}"]
        if self.uid is not None:
            out += ["uid", str(self.uid)]
        if self.ipproto is not None:
            out += ["ipproto", _PROTO_NAMES.get(self.ipproto, str(self.ipproto))]
        if self.sport is not None:
            out += ["sport", str(self.sport)]
        if self.dport is not None:
            out += ["dport", str(self.dport)]
        return out

    def __str__(self) -> str:
        return "ip route get " + " ".join(self.argv())


# --------------------------------------------------------------------------- answers

COMPARED_FIELDS = (
    "type",
    "dst",
    "from",
    "tos",
    "gateway",
    "dev",
    "table",
    "protocol",
    "prefsrc",
    "metric",
    "flags",
    "mark",
    "uid",
    "cache",
    "iif",
    "pref",
)


def project(d: dict) -> dict:
    """The part of a ``query.to_json`` dict the reference answers."""
    if "error" in d:
        return {"errno": d.get("errno")}
    out = {k: d.get(k) for k in COMPARED_FIELDS}
    out["type"] = d.get("type", "unicast")
    out["flags"] = tuple(d.get("flags", ()))
    out["cache"] = tuple(d["cache"]) if "cache" in d else None
    out["mark"] = d.get("mark") or None
    return out


@dataclass
class Answer:
    result: dict  # projected, see project()
    ignore: frozenset = frozenset()  # fields the spec does not determine
    alternatives: tuple = ()  # other acceptable projected results
    notes: list = field(default_factory=list)  # SPEC-GAP notes that applied

    def accepts(self, got: dict) -> bool:
        return any(_same(want, got, self.ignore) for want in (self.result, *self.alternatives))

    def diff(self, got: dict) -> dict:
        keys = (set(self.result) | set(got)) - set(self.ignore)
        return {k: (self.result.get(k), got.get(k)) for k in sorted(keys) if self.result.get(k) != got.get(k)}


def _same(want: dict, got: dict, ignore) -> bool:
    if "errno" in want or "errno" in got:
        return want.get("errno") == got.get("errno") and ("errno" in want) == ("errno" in got)
    return all(want.get(k) == got.get(k) for k in set(want) | set(got) if k not in ignore)


def _err(name: str) -> dict:
    return {"errno": name}


# --------------------------------------------------------------------------- helpers


def _ip(s) -> int:
    return int(ipaddress.ip_address(s))


def _s4(v: int) -> str:
    return str(ipaddress.IPv4Address(v))


def _s6(v: int) -> str:
    return str(ipaddress.IPv6Address(v))


def _covers(prefix: int, plen: int, addr: int, bits: int) -> bool:
    if plen == 0:
        return True
    shift = bits - plen
    return (prefix >> shift) == (addr >> shift)


def v4_multicast(a: int) -> bool:
    return (a & 0xF0000000) == 0xE0000000


def v4_local_multicast(a: int) -> bool:  # 224.0.0.x
    return (a & 0xFFFFFF00) == 0xE0000000


def v4_lbcast(a: int) -> bool:
    return a == 0xFFFFFFFF


def v4_zeronet(a: int) -> bool:
    return (a & 0xFF000000) == 0


def v4_loopback(a: int) -> bool:
    return (a & 0xFF000000) == 0x7F000000


@dataclass
class _Leg:
    gw: int | None
    ifindex: int
    flags: int


@dataclass
class _Route:
    idx: int  # dump position (ties of 5.3 keep the kernel's list order)
    table: int
    dst: int
    dst_len: int
    tos: int
    priority: int
    type: int
    scope: int
    protocol: int
    prefsrc: int | None
    legs: list


@dataclass
class _Rule:
    idx: int
    pref: int
    action: int
    table: int
    invert: bool
    goto_target: int
    src: int
    src_len: int
    dst: int
    dst_len: int
    tos: int
    dscp: int | None  # None unless FRA_DSCP was given
    dscp_mask: int
    fwmark: int
    fwmask: int
    iifname: str
    oifname: str
    uid_start: int
    uid_end: int
    ip_proto: int
    sport: tuple
    dport: tuple
    suppress_prefixlen: int
    suppress_ifgroup: int
    l3mdev: int
    tun_id: int
    flowlabel: int
    flowlabel_mask: int


@dataclass
class _Res:
    """One table lookup result (a fib_result)."""

    route: _Route
    nh: int  # chosen nexthop index
    table: int  # table to report


@dataclass
class _FlowKey:
    """Section 2: what rules and tables see."""

    daddr: int
    saddr: int
    has_saddr: bool
    iif: int
    oif: int
    mark: int
    uid: int
    tos: int  # DS field with ECN cleared (IPv6: traffic class)
    proto: int
    sport: int
    dport: int


# --------------------------------------------------------------------------- the model


class Reference:
    """The dumped state of a Policy plus the spec's algorithms over it."""

    def __init__(self, policy, caller_uid: int | None = None, tables: RtTables | None = None):
        self.policy = policy
        self.names = tables if tables is not None else RtTables()
        self.caller_uid = (os.getuid() if hasattr(os, "getuid") else 0) if caller_uid is None else caller_uid
        self.links = policy.links()
        self.link_by_name = {l.name: l for l in self.links}
        self.link_by_index = {l.ifindex: l for l in self.links}
        self.addrs = policy.addresses()
        self.merged = policy.v4_merged()
        self.rules = {
            fam: [self._rule(i, r, fam) for i, r in enumerate(policy.rules(fam))] for fam in (AF_INET, AF_INET6)
        }
        self.routes: dict[int, dict[int, list[_Route]]] = {}
        for fam in (AF_INET, AF_INET6):
            per: dict[int, list[_Route]] = {}
            for i, r in enumerate(policy.routes(fam)):
                per.setdefault(r.table, []).append(self._route(i, r))
            self.routes[fam] = per
        self._sysctl: dict[str, int] = {}
        self._lookup_cache: dict = {}

    # ---- dumped state -------------------------------------------------------
    @staticmethod
    def _rule(i: int, r, fam: int) -> _Rule:
        return _Rule(
            idx=i,
            pref=r.priority,
            action=r.action,
            table=r.table,
            invert=bool(r.flags & FIB_RULE_INVERT),
            goto_target=r.goto_target,
            src=int(r.src) if r.src is not None else 0,
            src_len=r.src_len,
            dst=int(r.dst) if r.dst is not None else 0,
            dst_len=r.dst_len,
            tos=r.tos,
            dscp=r.dscp if r.present & (1 << FRA_DSCP) else None,
            dscp_mask=r.dscp_mask if r.present & (1 << FRA_DSCP_MASK) else 0x3F,
            fwmark=r.fwmark,
            fwmask=r.fwmask,
            iifname=r.iifname,
            oifname=r.oifname,
            uid_start=r.uid_start,
            uid_end=r.uid_end,
            ip_proto=r.ip_proto,
            sport=(r.sport_start, r.sport_end, r.sport_mask),
            dport=(r.dport_start, r.dport_end, r.dport_mask),
            suppress_prefixlen=r.suppress_prefixlen,
            suppress_ifgroup=r.suppress_ifgroup,
            l3mdev=r.l3mdev,
            tun_id=r.tun_id,
            flowlabel=r.flowlabel,
            flowlabel_mask=r.flowlabel_mask,
        )

    @staticmethod
    def _route(i: int, r) -> _Route:
        if r.nexthops:
            legs = [_Leg(int(l.gateway) if l.gateway is not None else None, l.ifindex, l.flags) for l in r.nexthops]
        elif r.oif or r.gateway is not None:
            legs = [_Leg(int(r.gateway) if r.gateway is not None else None, r.oif, r.rtm_flags)]
        else:
            legs = []
        return _Route(
            idx=i,
            table=r.table,
            dst=int(r.dst) if r.dst is not None else 0,
            dst_len=r.dst_len,
            tos=r.tos,
            priority=r.priority,
            type=r.type,
            scope=r.scope,
            protocol=r.protocol,
            prefsrc=int(r.prefsrc) if r.prefsrc is not None else None,
            legs=legs,
        )

    def sysctl(self, key: str) -> int:
        if key not in self._sysctl:
            try:
                self._sysctl[key] = self.policy.sysctl_get(key)
            except Exception:
                self._sysctl[key] = 0
        return self._sysctl[key]

    def _conf(self, fam: str, ifindex: int, name: str) -> int:
        link = self.link_by_index.get(ifindex)
        return self.sysctl(f"net.{fam}.conf.{link.name}.{name}") if link else 0

    def ifname(self, ifindex: int) -> str:
        link = self.link_by_index.get(ifindex)
        return link.name if link else f"if{ifindex}"

    def _addrs_of(self, ifindex: int, family: int):
        return [a for a in self.addrs if a.ifindex == ifindex and a.family == family]

    def is_local_v4(self, a: int) -> bool:
        """5.8 step 1: "a local address of the namespace (any device)"."""
        return any(a == int(x.local) for x in self.addrs if x.family == AF_INET)

    def _table_name(self, table: int) -> str | None:
        """7.3: printed only when not main (254); 0 (no table) prints nothing."""
        if not table or table == TABLE_MAIN:
            return None
        return self.names.name(table)

    # ---- rules (3.3) --------------------------------------------------------
    def _bound(self, name: str) -> int | None:
        """3.12: rules store names; a missing device binds to -1 (never matches)."""
        link = self.link_by_name.get(name)
        return link.ifindex if link else None

    def _rule_matches(self, r: _Rule, fl: _FlowKey, fam: int) -> bool:
        ok = self._selectors_match(r, fl, fam)
        return (not ok) if r.invert else ok  # 3.3: invert flips everything

    def _selectors_match(self, r: _Rule, fl: _FlowKey, fam: int) -> bool:
        bits = 32 if fam == AF_INET else 128
        if r.iifname and self._bound(r.iifname) != fl.iif:
            return False
        if r.oifname and self._bound(r.oifname) != fl.oif:
            return False
        if (r.fwmark ^ fl.mark) & r.fwmask:
            return False
        if r.tun_id:  # 3.3.4: route get flows carry tun_id 0
            return False
        if r.l3mdev:  # 3.3.5: no VRF, never matches
            return False
        if not r.uid_start <= fl.uid <= r.uid_end:
            return False
        if r.dst_len and not _covers(r.dst, r.dst_len, fl.daddr, bits):
            return False
        if fam == AF_INET:
            if r.src_len and not _covers(r.src, r.src_len, fl.saddr, bits):
                return False
            if r.dscp is not None:
                if (r.dscp ^ (fl.tos >> 2)) & r.dscp_mask:
                    return False
            elif r.tos and r.tos != (fl.tos & 0x1E):
                return False
        else:
            if r.src_len and (not fl.has_saddr or not _covers(r.src, r.src_len, fl.saddr, bits)):
                return False  # 3.3.7: no source, no match (even ::/128)
            if r.dscp is not None:
                if (r.dscp ^ (fl.tos >> 2)) & r.dscp_mask:
                    return False
            elif r.tos and r.tos != (fl.tos & 0xFC):
                return False
            if r.flowlabel & r.flowlabel_mask:  # route get carries flow label 0
                return False
        if r.ip_proto and r.ip_proto != fl.proto:
            return False
        for (start, end, mask), port in ((r.sport, fl.sport), (r.dport, fl.dport)):
            if (start ^ port) & mask:
                return False
            if mask == 0 and start != 0 and end != 0 and not start <= port <= end:
                return False
        return True

    def _goto_target(self, fam: int, r: _Rule) -> int | None:
        """3.6: the first rule in list order whose pref is the target, else unresolved."""
        for x in self.rules[fam]:
            if x.pref == r.goto_target:
                return x.idx
        return None

    def fib_lookup(self, fam: int, fl: _FlowKey, notes: list):
        """3.5 (or the merged fast path of 4.2 for IPv4).  Returns (errno-or-None, _Res)."""
        if fam == AF_INET and self.merged:
            return self._merged_lookup(fl, notes)
        rules = self.rules[fam]
        i = 0
        while i < len(rules):
            r = rules[i]
            if not self._rule_matches(r, fl, fam):
                i += 1
                continue
            if r.action == FR_ACT_GOTO:
                t = self._goto_target(fam, r)
                i = i + 1 if t is None else t  # the target's own match is tested next
                continue
            if r.action == FR_ACT_NOP:
                i += 1
                continue
            if r.action != FR_ACT_TO_TBL:
                return rule_action_error(r.action), None
            err, res = self.table_lookup(fam, (r.table,), fl, notes)
            if err is None and self._suppressed(r, res):
                i += 1
                continue
            if err == EAGAIN:  # miss, throw, missing table
                i += 1
                continue
            if res is not None:
                res.table = r.table
            return err, res
        return "ENETUNREACH", None

    def _suppressed(self, r: _Rule, res: _Res) -> bool:
        """3.7: after a successful table action only; no shorter-prefix retry."""
        if res.route.dst_len <= r.suppress_prefixlen:
            return True
        if r.suppress_ifgroup != -1 and res.route.legs:
            link = self.link_by_index.get(res.route.legs[0].ifindex)
            if link is not None and link.group == r.suppress_ifgroup:
                return True
        return False

    def _merged_lookup(self, fl: _FlowKey, notes: list):
        """4.2: one LPM over local+main (local first at equal length), then default."""
        err, res = self.table_lookup(AF_INET, (TABLE_LOCAL, TABLE_MAIN), fl, notes)
        if err is None:
            res.table = TABLE_MAIN  # hits on local entries report main
            return None, res
        if err != EAGAIN:
            return err, None
        err, res = self.table_lookup(AF_INET, (TABLE_DEFAULT,), fl, notes)
        if err is None:
            res.table = TABLE_DEFAULT
            return None, res
        if err == EAGAIN:
            return "ENETUNREACH", None
        return err, None

    # ---- one table ------------------------------------------------------------
    def _candidates(self, fam: int, tables: tuple, daddr: int) -> list:
        key = (fam, tables, daddr)
        c = self._lookup_cache.get(key)
        if c is None:
            bits = 32 if fam == AF_INET else 128
            c = [r for t in tables for r in self.routes[fam].get(t, ()) if _covers(r.dst, r.dst_len, daddr, bits)]
            if fam == AF_INET:
                # 5.3: longer prefix, higher table (merged only), higher tos, lower metric
                c.sort(key=lambda r: (-r.dst_len, -r.table, -r.tos, r.priority, r.idx))
            else:
                # 6: ascending metric inside a node
                c.sort(key=lambda r: (-r.dst_len, r.priority, r.idx))
            self._lookup_cache[key] = c
        return c

    def table_lookup(self, fam: int, tables: tuple, fl: _FlowKey, notes: list):
        if fam == AF_INET:
            return self._table_lookup4(tables, fl)
        return self._table_lookup6(tables, fl, notes)

    def _nh_usable4(self, leg: _Leg, fl: _FlowKey) -> bool:
        if leg.flags & RTNH_F_DEAD:
            return False
        if leg.flags & RTNH_F_LINKDOWN and self._conf("ipv4", leg.ifindex, "ignore_routes_with_linkdown"):
            return False
        return not fl.oif or fl.oif == leg.ifindex

    def _table_lookup4(self, tables: tuple, fl: _FlowKey):
        """5.4, entry by entry."""
        for e in self._candidates(AF_INET, tables, fl.daddr):
            if e.tos and e.tos != (fl.tos & 0x1E):
                continue
            err = ROUTE_TYPE_ERROR.get(e.type)
            if err is not None:  # before any nexthop/oif check
                return err, _Res(e, 0, e.table)
            if e.legs and all(l.flags & RTNH_F_DEAD for l in e.legs):
                continue
            for k, leg in enumerate(e.legs):
                if self._nh_usable4(leg, fl):
                    return None, _Res(e, k, e.table)
        return EAGAIN, None

    def _table_lookup6(self, tables: tuple, fl: _FlowKey, notes: list):
        """6: longest node first; lowest-metric group, then the rest; then backtrack."""
        cands = self._candidates(AF_INET6, tables, fl.daddr)
        by_len: dict[int, list] = {}
        for e in cands:
            by_len.setdefault(e.dst_len, []).append(e)
        for plen in sorted(by_len, reverse=True):
            node = by_len[plen]
            head = node[0].priority
            for group in ([e for e in node if e.priority == head], [e for e in node if e.priority != head]):
                # ECMP siblings (6) are dumped as one multipath route: each leg is
                # a candidate of its own, as the siblings are separate entries.
                ok = []
                for e in group:
                    if e.type not in (RTN_UNICAST, RTN_LOCAL, RTN_ANYCAST, RTN_MULTICAST):
                        if fl.oif:
                            # SPEC-GAP: reject routes report dev lo (6); whether the
                            # oif score/strictness applies to them is not stated.
                            raise Unspecified("IPv6 oif with a reject route among the candidates")
                        ok.append((e, 0))
                        continue
                    for k, l in enumerate(e.legs):
                        if l.flags & RTNH_F_DEAD or (
                            l.flags & RTNH_F_LINKDOWN and self._conf("ipv6", l.ifindex, "ignore_routes_with_linkdown")
                        ):
                            continue
                        if fl.oif and l.ifindex != fl.oif and self._strict6(fl):
                            continue
                        ok.append((e, k))
                if not ok:
                    continue
                if len(ok) > 1:
                    # SPEC-GAP: several candidates: scoring depends on neighbour state
                    # and round robin (6, UNVERIFIED), siblings on the flow hash (5.6).
                    raise Unspecified("IPv6: several candidate routes in one metric group")
                e, k = ok[0]
                err = ROUTE_TYPE_ERROR.get(e.type)
                if err is not None:
                    return err, _Res(e, 0, e.table)
                return None, _Res(e, k, e.table)
        return EAGAIN, None

    def _strict6(self, fl: _FlowKey) -> bool:
        """6: strict when oif given and no saddr, or a link-local / multicast destination."""
        d = fl.daddr
        ll_or_mc = (d >> 118) == 0x3FA or (d >> 120) == 0xFF
        return (bool(fl.oif) and not fl.has_saddr) or ll_or_mc

    # ---- source selection (5.8) -------------------------------------------------
    def inet_select_addr(self, ifindex: int, dst: int, scope: int) -> int:
        first = 0
        for a in self._addrs_of(ifindex, AF_INET):
            if a.secondary or a.scope > scope:
                continue
            mask = (0xFFFFFFFF << (32 - a.prefixlen)) & 0xFFFFFFFF if a.prefixlen else 0
            if not dst or ((dst ^ int(a.local)) & mask) == 0:
                return int(a.local)
            if not first:
                first = int(a.local)
        if first:
            return first
        for link in self.links:  # loopback first (list order)
            for a in self._addrs_of(link.ifindex, AF_INET):
                if not a.secondary and a.scope != RT_SCOPE_LINK and a.scope <= scope:
                    return int(a.local)
        return 0

    def _route_prefsrc4(self, res: _Res) -> int:
        r = res.route
        if r.prefsrc is not None:
            return r.prefsrc
        leg = r.legs[res.nh]
        return self.inet_select_addr(leg.ifindex, leg.gw or 0, r.scope)

    def _num_default(self, table: int) -> int:
        tabs = (TABLE_LOCAL, TABLE_MAIN) if self.merged and table == TABLE_MAIN else (table,)
        return sum(1 for t in tabs for r in self.routes[AF_INET].get(t, ()) if r.dst_len == 0)

    # ---- entry point ---------------------------------------------------------------
    def route_get(self, flow: Flow) -> Answer:
        """The answer to ``ip route get`` for flow; raises Unspecified."""
        notes: list = []
        if flow.family == AF_INET:
            if flow.iif is not None:
                ans = self._input4(flow, notes)
            else:
                ans = self._output4(flow, notes)
        else:
            if flow.iif is not None:
                # SPEC-GAP: the IPv6 input path is not described (5.9 is IPv4 only).
                raise Unspecified("IPv6 input path")
            ans = self._output6(flow, notes)
        ans.notes = notes
        return ans

    def _ifindex(self, name: str | None) -> int:
        if name is None:
            return 0
        link = self.link_by_name.get(name)
        if link is None:
            raise Unspecified(f"unknown device {name}")
        return link.ifindex

    def _l4(self, flow: Flow, default_proto: int) -> tuple:
        proto = flow.ipproto if flow.ipproto is not None else default_proto
        return proto, flow.sport or 0, flow.dport or 0

    # ---- IPv4 output (5.8) ---------------------------------------------------------
    def _output4(self, flow: Flow, notes: list) -> Answer:
        daddr = _ip(flow.dst)
        asked_dst = daddr
        given_src = _ip(flow.src) if flow.src is not None else 0
        if flow.src is not None and given_src == 0:
            # SPEC-GAP: "from 0.0.0.0" (RTA_SRC present but zero) is not described.
            raise Unspecified("from 0.0.0.0")
        saddr = given_src
        oif = self._ifindex(flow.oif)
        proto, sport, dport = self._l4(flow, IPPROTO_UDP)
        uid = flow.uid if flow.uid is not None else self.caller_uid
        tos = flow.tos & 0xFC
        res: _Res | None = None
        rtype = RTN_UNICAST
        dev = 0

        # step 1: saddr checks
        direct = False
        if saddr:
            if v4_multicast(saddr) or v4_lbcast(saddr):
                return Answer(_err("EINVAL"))
            if v4_zeronet(saddr):
                raise Unspecified("zeronet source")  # SPEC-GAP: only mc/bcast listed
            if not oif and (v4_multicast(daddr) or v4_lbcast(daddr)):
                owners = [a for a in self.addrs if a.family == AF_INET and int(a.local) == saddr]
                if not owners:
                    # SPEC-GAP: no rule for a non-local saddr in this branch.
                    raise Unspecified("mc/bcast destination from a non-local source")
                dev = owners[0].ifindex
                direct = True
            elif not self.is_local_v4(saddr):
                if self._covered_by_local_route(saddr):
                    # SPEC-GAP: "local address" vs. addresses reachable through a
                    # `local` route that is not an interface address.
                    raise Unspecified("source covered by a local route but not an address")
                return Answer(_err("ENETUNREACH"))
        # step 2: oif checks
        if not direct and oif:
            link = self.link_by_index[oif]
            if not link.up:
                return Answer(_err("ENETUNREACH"))
            if v4_local_multicast(daddr) or v4_lbcast(daddr) or proto == IPPROTO_IGMP:
                if not saddr:
                    saddr = self.inet_select_addr(oif, 0, RT_SCOPE_LINK)
                dev = oif
                direct = True
            elif not saddr and (v4_multicast(daddr) or daddr == 0):
                # SPEC-GAP: source pre-selection for these with oif is not described.
                raise Unspecified("oif with a multicast or 0.0.0.0 destination")
        # step 3: daddr 0.0.0.0
        if not direct and daddr == 0:
            daddr = saddr or 0x7F000001
            saddr = saddr or 0x7F000001
            dev = LOOPBACK_IFINDEX
            rtype = RTN_LOCAL
            direct = True
        # step 4: the FIB lookup
        if not direct:
            fl = _FlowKey(daddr, saddr, bool(saddr), LOOPBACK_IFINDEX, oif, flow.mark, uid, tos, proto, sport, dport)
            err, res = self.fib_lookup(AF_INET, fl, notes)
            if err is not None:
                if not oif:
                    return Answer(_err(err))
                # any error with an oif: assume the destination is on link
                res = None
                if not saddr:
                    saddr = self.inet_select_addr(oif, 0, RT_SCOPE_LINK)
                rtype = RTN_UNICAST
                dev = oif
            elif res.route.type == RTN_LOCAL:  # step 5
                if not saddr:
                    saddr = res.route.prefsrc if res.route.prefsrc is not None else daddr
                dev = LOOPBACK_IFINDEX
                rtype = RTN_LOCAL
            else:  # step 6
                r = res.route
                rtype = r.type
                if not oif:
                    if len(r.legs) > 1:
                        raise Unspecified("multipath (hash selection not reproduced, 5.6)")
                    if r.dst_len == 0 and r.type == RTN_UNICAST and self._num_default(res.table) > 1:
                        raise Unspecified("several default routes (fib_select_default, 5.6)")
                if not saddr:
                    saddr = self._route_prefsrc4(res)
                dev = r.legs[res.nh].ifindex
                if rtype in (RTN_ANYCAST, RTN_MULTICAST) and not (v4_multicast(daddr) or v4_lbcast(daddr)):
                    # SPEC-GAP: output through an anycast/multicast-type route.
                    raise Unspecified(f"output via a route of type {TYPE_NAMES[rtype]}")
        # step 7: building the result
        dev_link = self.link_by_index.get(dev)
        is_lo = dev_link is not None and dev_link.kind == "loopback"
        if v4_loopback(saddr) and not is_lo:
            if self._conf("ipv4", dev, "route_localnet") or self.sysctl("net.ipv4.conf.all.route_localnet"):
                raise Unspecified("route_localnet")
            return Answer(_err("EINVAL"))
        gateway = None
        ignore = set()
        if res is not None and rtype != RTN_LOCAL:
            gateway = res.route.legs[res.nh].gw
            if gateway is not None and self._covered_by_local_route(gateway):
                # SPEC-GAP: 7.2 prints RTA_GATEWAY "if a gateway is used"; a gateway
                # that resolved through a `local` route is not covered.
                ignore.add("gateway")
        if v4_lbcast(daddr):
            rtype = RTN_BROADCAST
        elif v4_multicast(daddr):
            rtype = RTN_MULTICAST
            if res is not None and res.route.dst_len < 4:
                gateway = None
        elif v4_zeronet(daddr):
            return Answer(_err("EINVAL"))
        if rtype == RTN_BROADCAST:
            gateway = None
        if rtype == RTN_LOCAL:
            cache = ("local",)
        elif rtype == RTN_BROADCAST:
            cache = ("local", "brd")
        elif rtype == RTN_UNICAST and not is_lo:
            cache = ()
        else:
            # SPEC-GAP: multicast <local> depends on group membership; unicast
            # through lo gets cache flags the spec does not list.
            cache = None
            ignore.add("cache")
        out = {
            "type": TYPE_NAMES.get(rtype, str(rtype)),
            "dst": _s4(asked_dst),
            "from": _s4(given_src) if flow.src is not None else None,
            "tos": self.names.dsfield.name(res.route.tos) if res is not None and res.route.tos else None,
            "gateway": _s4(gateway) if gateway is not None else None,
            "dev": self.ifname(dev),
            "table": self._table_name(res.table) if res is not None else None,
            "protocol": None,
            "prefsrc": _s4(saddr) if saddr != given_src else None,
            "metric": None,
            "flags": ("rt_offload_failed",) if rtype == RTN_MULTICAST else (),
            "mark": flow.mark or None,
            "uid": uid,
            "cache": cache,
            "iif": None,
            "pref": None,
        }
        return Answer(out, frozenset(ignore))

    def _covered_by_local_route(self, a: int) -> bool:
        return any(
            r.type == RTN_LOCAL and _covers(r.dst, r.dst_len, a, 32) for rs in self.routes[AF_INET].values() for r in rs
        )

    # ---- IPv4 input (5.9) ------------------------------------------------------------
    def _input4(self, flow: Flow, notes: list) -> Answer:
        daddr = _ip(flow.dst)
        saddr = _ip(flow.src) if flow.src is not None else 0
        iif = self._ifindex(flow.iif)
        link = self.link_by_index[iif]
        if not link.up:
            raise Unspecified("iif down")  # SPEC-GAP
        if flow.src is not None and saddr == 0:
            raise Unspecified("from 0.0.0.0")
        proto, sport, dport = self._l4(flow, IPPROTO_UDP)
        if proto not in (IPPROTO_UDP, IPPROTO_TCP, IPPROTO_ICMP) or (proto == IPPROTO_ICMP and (sport or dport)):
            # SPEC-GAP: the fake packet only carries UDP/TCP ports (an ICMP echo
            # header has none); other protocols are not described.
            raise Unspecified("input path L4 fields for this protocol")
        tos = flow.tos & 0xFC
        if v4_multicast(daddr):
            raise Unspecified("input multicast destination")  # SPEC-GAP
        if v4_multicast(saddr) or v4_lbcast(saddr):
            return Answer(_err("EINVAL"))
        res = None
        if v4_lbcast(daddr):
            return self._brd_input4(flow, saddr, None)
        if saddr == 0:
            if daddr == 0:
                # SPEC-GAP: "destination 0: EINVAL" vs. "source 0 ... unless the
                # destination is broadcast": both zero is not decided.
                raise Unspecified("input with source and destination 0")
            if self._is_broadcast_route_dst(daddr):
                # SPEC-GAP: "unless the destination is broadcast" - limited only, or
                # also a subnet broadcast?
                raise Unspecified("input from 0 to a subnet broadcast")
            return Answer(_err("EINVAL"))
        if v4_zeronet(saddr):
            raise Unspecified("zeronet source")  # SPEC-GAP: only 0 is listed
        if daddr == 0:
            return Answer(_err("EINVAL"))
        if v4_zeronet(daddr):
            raise Unspecified("zeronet destination")  # SPEC-GAP
        if v4_loopback(daddr) or v4_loopback(saddr):
            if self._conf("ipv4", iif, "route_localnet") or self.sysctl("net.ipv4.conf.all.route_localnet"):
                raise Unspecified("route_localnet")
            return Answer(_err("EINVAL"))
        fl = _FlowKey(daddr, saddr, True, iif, 0, flow.mark, 0, tos, proto, sport, dport)
        err, res = self.fib_lookup(AF_INET, fl, notes)
        forwarding = self._conf("ipv4", iif, "forwarding")
        if err is not None:
            return Answer(_err(err if forwarding else "EHOSTUNREACH"))
        r = res.route
        if r.type == RTN_BROADCAST:
            return self._brd_input4(flow, saddr, res)
        if r.type == RTN_LOCAL:
            out = self._input_result(flow, res, "local", LOOPBACK_IFINDEX, None, ("local",))
            # SPEC-GAP: "A local result runs source validation (rp_filter,
            # accept_local). Failures give EINVAL." - no algorithm is given.
            notes.append("source validation: EINVAL accepted")
            return Answer(out, self._input_ignore(flow), alternatives=(_err("EINVAL"),))
        if not forwarding:
            return Answer(_err("EHOSTUNREACH"))
        if r.type != RTN_UNICAST:
            return Answer(_err("EINVAL"))
        if len(r.legs) > 1:
            raise Unspecified("multipath (hash selection not reproduced)")
        leg = r.legs[res.nh]
        out = self._input_result(flow, res, "unicast", leg.ifindex, leg.gw, None)
        notes.append("source validation: EINVAL accepted")
        # SPEC-GAP: forwarded results may carry redirect/src-direct cache flags.
        ignore = self._input_ignore(flow) | {"cache"}
        if leg.gw is not None and self._covered_by_local_route(leg.gw):
            ignore |= {"gateway"}  # SPEC-GAP: see _output4
        return Answer(out, ignore, alternatives=(_err("EINVAL"),))

    def _is_broadcast_route_dst(self, a: int) -> bool:
        return any(
            r.type == RTN_BROADCAST and _covers(r.dst, r.dst_len, a, 32)
            for rs in self.routes[AF_INET].values()
            for r in rs
        )

    def _brd_input4(self, flow: Flow, saddr: int, res: _Res | None) -> Answer:
        out = self._input_result(flow, res, "broadcast", LOOPBACK_IFINDEX, None, ("local", "brd"))
        # SPEC-GAP: the device reported for a broadcast input route is not stated.
        ignore = self._input_ignore(flow) | {"dev"}
        if saddr:
            return Answer(out, ignore, alternatives=(_err("EINVAL"),))
        return Answer(out, ignore)

    @staticmethod
    def _input_ignore(flow: Flow) -> frozenset:
        # SPEC-GAP: 7.2 says RTA_UID is omitted on the input path, for the default
        # case; whether an explicitly given `uid` is echoed is not stated.
        return frozenset({"uid"}) if flow.uid is not None else frozenset()

    def _input_result(self, flow: Flow, res: _Res | None, rtype: str, dev: int, gw: int | None, cache) -> dict:
        saddr = _ip(flow.src) if flow.src is not None else 0
        return {
            "type": rtype,
            "dst": flow.dst,
            "from": _s4(saddr) if saddr else None,  # 7.2: RTA_SRC only when given
            "tos": self.names.dsfield.name(res.route.tos) if res is not None and res.route.tos else None,
            "gateway": _s4(gw) if gw is not None else None,
            "dev": self.ifname(dev),
            "table": self._table_name(res.table) if res is not None else None,
            "protocol": None,
            "prefsrc": None,  # 7.2: output path only
            "metric": None,
            "flags": (),
            "mark": flow.mark or None,
            "uid": None,  # 7.2: omitted on the input path
            "cache": cache,
            "iif": flow.iif,
            "pref": None,
        }

    # ---- IPv6 output (3.3, 3.14, 6, 7.2) ----------------------------------------------
    def _output6(self, flow: Flow, notes: list) -> Answer:
        daddr = _ip(flow.dst)
        saddr = _ip(flow.src) if flow.src is not None else 0
        if saddr and not any(int(a.local) == saddr for a in self.addrs if a.family == AF_INET6):
            # SPEC-GAP: IPv6 source validity on the output path is not described.
            raise Unspecified("IPv6 from a non-local address")
        if (daddr >> 120) == 0xFF or (daddr >> 118) == 0x3FA:
            raise Unspecified("IPv6 multicast / link-local destination")  # SPEC-GAP
        oif = self._ifindex(flow.oif)
        if oif and daddr == 1:
            # SPEC-GAP: 6 lists link-local and multicast destinations as "strict";
            # whether ::1 is one too is not stated.
            raise Unspecified("IPv6 oif with the loopback destination")
        proto, sport, dport = self._l4(flow, 0)  # 2: IPv6 defaults to proto 0
        uid = flow.uid if flow.uid is not None else self.caller_uid
        fl = _FlowKey(
            daddr, saddr, bool(saddr), LOOPBACK_IFINDEX, oif, flow.mark, uid, flow.tos & 0xFC, proto, sport, dport
        )
        err, res = self.fib_lookup(AF_INET6, fl, notes)
        if err is not None:
            return Answer(_err(err))
        r = res.route
        leg = r.legs[res.nh] if r.legs else None
        dev = LOOPBACK_IFINDEX if r.type in (RTN_LOCAL, RTN_ANYCAST) else (leg.ifindex if leg else 0)
        ignore = set()
        if r.prefsrc is not None:
            prefsrc = _s6(r.prefsrc)
        else:
            prefsrc = self._v6_saddr(leg.ifindex if leg else 0, daddr)
            if prefsrc is False:
                ignore.add("prefsrc")
                prefsrc = None
        out = {
            "type": TYPE_NAMES.get(r.type, str(r.type)),
            "dst": flow.dst,
            "from": _s6(saddr),  # 7.2: RTA_SRC always (:: when none)
            "tos": None,
            "gateway": _s6(leg.gw) if leg is not None and leg.gw is not None else None,
            "dev": self.ifname(dev),
            "table": self._table_name(res.table),
            "protocol": self.names.protos.name(r.protocol) if r.protocol != 3 else None,
            "prefsrc": prefsrc,
            "metric": r.priority,
            "flags": (),
            "mark": None,  # 7.2: no RTA_MARK, no RTA_UID
            "uid": None,
            "cache": None,
            "iif": None,
            "pref": "medium",
        }
        return Answer(out, frozenset(ignore))

    def _v6_saddr(self, out_dev: int, daddr: int):
        """6: RFC 6724 rules 1 (same), 2 (scope), 5 (outgoing interface), 6 (label),
        8 (longest prefix).  Rules 3, 4 and 7 need address states that no test
        creates.  Returns the address text, None when there is no candidate, or
        False when the spec does not decide (SPEC-GAP): candidates tie (no tie
        break is given), or the answer depends on whether addresses on a down
        link (never DAD-completed in the kernel) are candidates."""
        with_down = self._v6_saddr_pick(out_dev, daddr, True)
        without = self._v6_saddr_pick(out_dev, daddr, False)
        if with_down != without or with_down is False:
            return False
        return with_down

    def _v6_saddr_pick(self, out_dev: int, daddr: int, include_down: bool):
        dscope = _v6_scope(daddr)
        dlabel = _v6_label(daddr)
        only_oif = out_dev and dscope <= 2
        best, best_key, tie = None, None, False
        for link in self.links:
            if only_oif and link.ifindex != out_dev:
                continue
            if not include_down and not link.up:
                continue
            for a in self._addrs_of(link.ifindex, AF_INET6):
                v = int(a.local)
                if v == 0 or (v >> 120) == 0xFF:
                    continue
                sc = _v6_scope(v)
                cp = 128 - (v ^ daddr).bit_length()
                key = (
                    v == daddr,
                    -sc if sc >= dscope else sc - 128,
                    (not out_dev) or a.ifindex == out_dev,
                    _v6_label(v) == dlabel,
                    min(cp, a.prefixlen),
                )
                if best_key is None or key > best_key:
                    best, best_key, tie = v, key, False
                elif key == best_key:
                    tie = True
        if best is None:
            return None
        return False if tie else _s6(best)


def _v6_scope(a: int) -> int:
    if (a >> 120) == 0xFF:
        return (a >> 112) & 0xF
    if (a >> 118) == 0x3FA:  # fe80::/10
        return 2
    if (a >> 118) == 0x3FB:  # fec0::/10
        return 5
    if a == 1:
        return 1
    return 14


_RFC6724_LABELS = [  # RFC 6724 2.1 default policy table (prefix, len, label)
    (1, 128, 0),
    (0, 0, 1),
    (0xFFFF << 32, 96, 4),
    (0x2002 << 112, 16, 2),
    (0x2001 << 112, 32, 5),
    (0xFC << 120, 7, 13),
    (0, 96, 3),
    (0xFEC << 116, 10, 11),
    (0x3FFE << 112, 16, 12),
]


def _v6_label(a: int) -> int:
    best_len, best = -1, 1
    for prefix, plen, label in _RFC6724_LABELS:
        if _covers(prefix, plen, a, 128) and plen > best_len:
            best_len, best = plen, label
    return best
