"""Policy: one network namespace's routing state, modelled by the C core.

Every change is a request shaped like the rtnetlink message ``ip`` would send
(:mod:`polroute.types.requests`); a refused request raises
:class:`~polroute._core.errors.PolicyError` with the kernel's errno and message and
changes nothing.
"""

from __future__ import annotations

import ipaddress
import threading

from polroute._core.binding import ffi, lib
from polroute._core.codec import RULE_INT_FIELDS, addr_bytes, nhobj_to_c, route_to_c, rule_to_c
from polroute._core.errors import PolicyError, check, check_handle
from polroute.model.fast4 import build_fast4
from polroute.model.kernel_profile import PROFILES, KernelProfile
from polroute.model.kernel_profile import resolve as resolve_profile
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
    LinkRequest,
    NexthopObjRequest,
    NexthopRequest,
    RouteRequest,
    RuleRequest,
    bit,
)

_KINDS = {
    "loopback": lib.PR_LINK_LOOPBACK,
    "veth": lib.PR_LINK_VETH,
    "bridge": lib.PR_LINK_BRIDGE,
    "ifb": lib.PR_LINK_IFB,
    "tap": lib.PR_LINK_TAP,
    "tun": lib.PR_LINK_TAP,
}
_KIND_NAMES = {v: k for k, v in _KINDS.items()}
_KIND_NAMES[lib.PR_LINK_OTHER] = "other"


def _addr_from(family: int, raw) -> IPAddress:
    b = bytes(ffi.buffer(raw, 16))
    if family == AF_INET:
        return ipaddress.IPv4Address(b[:4])
    return ipaddress.IPv6Address(b)


class Policy:
    """The routing state of one namespace, starting as a fresh one: ``lo``
    (ifindex 1, down, no addresses), the default rules, no routes.

    ``kernel`` is the kernel build whose answers it gives
    (:mod:`polroute.model.kernel_profile`): ``"auto"`` (the running kernel when it can
    be read, else the common distributions' build), a profile name, or a
    :class:`~polroute.model.kernel_profile.KernelProfile`.
    """

    def __init__(self, _handle=None, *, kernel: str | KernelProfile | None = "auto"):
        h = check_handle(_handle if _handle is not None else lib.pr_policy_new(), "pr_policy_new")
        self._h = ffi.gc(h, lib.pr_policy_free)
        if _handle is None:
            self.set_kernel(kernel)
        self._fast4_cache = None  # (generation, evaluator) for bulk calls
        self._fast4_lock = threading.Lock()

    # ---- lifetime -------------------------------------------------------
    def clone(self) -> Policy:
        h = check_handle(lib.pr_policy_clone(self._h), "pr_policy_clone")
        return Policy(h)

    def compile(self):
        """An immutable snapshot with compiled tables (polroute.model.compiled.CompiledPolicy)."""
        from polroute.model.compiled import CompiledPolicy

        return CompiledPolicy(self)

    def _swap(self, other: Policy) -> None:
        """Take over other's state (used to commit an all-or-nothing batch)."""
        self._h, other._h = other._h, self._h
        self._fast4_cache, other._fast4_cache = other._fast4_cache, self._fast4_cache

    def _fast4_current(self):
        """The specialised IPv4 evaluator (csrc/fast4.c) for the policy as it
        is now: built on demand and kept until the next change (any request
        gives the policy a new pr_policy_generation).  Like any lookup, not
        while another thread changes the policy."""
        gen = lib.pr_policy_generation(self._h)
        cached = self._fast4_cache
        if cached is not None and cached[0] == gen:
            return cached[1]
        with self._fast4_lock:
            cached = self._fast4_cache
            if cached is None or cached[0] != gen:
                cached = self._fast4_cache = (gen, build_fast4(self._h))
        return cached[1]

    def _check(self, rc: int, what: str = "") -> int:
        """rc, or the error the core reported for this handle (its extended-ack text)."""
        if rc < 0:
            check(rc, what, ffi.string(lib.pr_errmsg(self._h)).decode())
        return rc

    # ---- links ------------------------------------------------------------
    def ifindex(self, name: str) -> int:
        """The ifindex of a link; PolicyError(ENODEV) when there is none."""
        idx = lib.pr_link_index(self._h, name.encode())
        if idx == 0:
            import errno

            raise PolicyError(errno.ENODEV, "", f'Cannot find device "{name}"')
        return idx

    def has_link(self, name: str) -> bool:
        return lib.pr_link_index(self._h, name.encode()) != 0

    def ifname(self, ifindex: int) -> str:
        for link in self.links():
            if link.ifindex == ifindex:
                return link.name
        return f"if{ifindex}"

    def link(self, req: LinkRequest) -> None:
        """Apply a LinkRequest (add / del / set)."""
        if req.op == "add":
            if req.kind == "veth":
                if not req.peer:
                    raise PolicyError(22, "", "veth needs a peer name")
                self._check(lib.pr_link_add_veth(self._h, req.name.encode(), req.peer.encode()))
            else:
                kind = _KINDS.get(req.kind, lib.PR_LINK_OTHER)
                self._check(lib.pr_link_add(self._h, req.name.encode(), kind, 0))
        elif req.op == "del":
            self._check(lib.pr_link_del(self._h, self.ifindex(req.name)))
        elif req.op == "set":
            idx = self.ifindex(req.name)
            if req.newname:
                self._check(lib.pr_link_rename(self._h, idx, req.newname.encode()))
            if req.group is not None:
                self._check(lib.pr_link_set_group(self._h, idx, req.group))
            if req.up is not None:
                self._check(lib.pr_link_set_up(self._h, idx, 1 if req.up else 0))
        else:
            raise ValueError(f"unknown link op {req.op!r}")

    def links(self) -> list[LinkInfo]:
        out = []
        info = ffi.new("pr_link_info *")
        for i in range(lib.pr_link_count(self._h)):
            self._check(lib.pr_link_get(self._h, i, info))
            out.append(
                LinkInfo(
                    info.ifindex,
                    ffi.string(info.name).decode(),
                    _KIND_NAMES.get(info.kind, "other"),
                    bool(info.up),
                    bool(info.carrier),
                    info.group,
                )
            )
        return out

    # ---- addresses --------------------------------------------------------
    def addr(self, req: AddrRequest) -> None:
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
        self._check(lib.pr_addr_request(self._h, req.msg_type, c))

    def addresses(self) -> list[AddrInfo]:
        out = []
        info = ffi.new("pr_addr_info *")
        for i in range(lib.pr_addr_count(self._h)):
            self._check(lib.pr_addr_get(self._h, i, info))
            a = info.a
            out.append(
                AddrInfo(
                    a.ifindex,
                    a.family,
                    _addr_from(a.family, a.local),
                    a.prefixlen,
                    a.scope,
                    bool(info.secondary),
                    a.flags,
                    a.metric,
                    _addr_from(a.family, a.broadcast) if a.has_broadcast else None,
                )
            )
        return out

    # ---- kernel build -----------------------------------------------------
    def set_kernel(self, kernel: str | KernelProfile | None) -> KernelProfile:
        """Model the kernel build ``kernel`` (see :func:`polroute.model.kernel_profile.resolve`)
        from now on; returns the profile.  Unknown names raise ProfileError."""
        profile = resolve_profile(kernel)
        self._check(lib.pr_policy_set_kernel_features(self._h, profile.features))
        self._kernel = profile
        return profile

    @property
    def kernel(self) -> KernelProfile:
        """The kernel build this policy models."""
        got = getattr(self, "_kernel", None)
        if got is None or got.features != lib.pr_policy_kernel_features(self._h):
            bits = lib.pr_policy_kernel_features(self._h)
            got = next(p for p in PROFILES.values() if p.features == bits)
        return got

    # ---- sysctls ----------------------------------------------------------
    def sysctl(self, key: str, value: int) -> None:
        rc = lib.pr_sysctl_set(self._h, key.encode(), int(value))
        if rc < 0:
            self._check(rc, f"sysctl {key}")

    def sysctl_get(self, key: str) -> int:
        v = ffi.new("int64_t *")
        self._check(lib.pr_sysctl_get(self._h, key.encode(), v))
        return int(v[0])

    # ---- rules ------------------------------------------------------------
    def rule(self, req: RuleRequest) -> None:
        c = rule_to_c(req)
        self._check(lib.pr_rule_request(self._h, req.msg_type, req.nlmsg_flags, c))

    def rules(self, family: int = AF_INET) -> list[RuleRequest]:
        out = []
        info = ffi.new("pr_rule_info *")
        for i in range(lib.pr_rule_count(self._h, family)):
            self._check(lib.pr_rule_get(self._h, family, i, info))
            r = info.r
            req = RuleRequest(RTM_NEWRULE, 0)
            for name in RULE_INT_FIELDS:
                setattr(req, name, getattr(r, name))
            req.src = _addr_from(family, r.src) if r.present & bit(FRA_SRC) else None
            req.dst = _addr_from(family, r.dst) if r.present & bit(FRA_DST) else None
            req.iifname = ffi.string(r.iifname).decode() if r.present & bit(FRA_IIFNAME) else ""
            req.oifname = ffi.string(r.oifname).decode() if r.present & bit(FRA_OIFNAME) else ""
            out.append(req)
        return out

    # ---- routes -----------------------------------------------------------
    def route(self, req: RouteRequest) -> None:
        c, _legs = route_to_c(req)  # _legs keeps the nexthop array alive
        self._check(lib.pr_route_request(self._h, req.msg_type, req.nlmsg_flags, c))

    def route_packed(self, msg_type: int, nlmsg_flags: int, packed: bytes) -> None:
        """Apply a route request given as the bytes of a ``pr_route_req``
        without nexthops (``nh`` NULL): what route() sends for such a request,
        without building it field by field (kernel_state's snapshot path)."""
        self._check(lib.pr_route_request(self._h, msg_type, nlmsg_flags, ffi.from_buffer("pr_route_req *", packed)))

    def routes(self, family: int = AF_INET, table: int = 0) -> list[RouteRequest]:
        """Routes of one family (all tables when table is 0), in dump order."""
        n = lib.pr_route_dump(self._h, family, table)
        info = ffi.new("pr_route_info *")
        nh = ffi.new("pr_nexthop_info[]", 32)
        out = []
        groups = None  # ids of nexthop groups: an IPv6 route through one dumps RTA_MULTIPATH
        for i in range(n):
            self._check(lib.pr_route_get_dumped(self._h, i, info, nh, 32))
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
            req.dst = _addr_from(info.family, info.dst)
            if info.dst_len:
                req.present |= bit(RTA_DST)
            if info.has_prefsrc:
                req.prefsrc = _addr_from(info.family, info.prefsrc)
                req.present |= bit(RTA_PREFSRC)
            if info.nh_id:
                req.present |= bit(RTA_NH_ID)
            # a route through an object carries its nexthops for printing, but
            # sends only RTA_NH_ID (the kernel refuses both together)
            via_obj = bool(info.nh_id)
            legs = []
            for j in range(min(info.nh_count, 32)):
                leg = nh[j]
                legs.append(
                    NexthopRequest(
                        _addr_from(leg.gw_family, leg.gw) if leg.gw_family else None, leg.ifindex, leg.weight, leg.flags
                    )
                )
            if via_obj and family == AF_INET6 and legs:
                if groups is None:
                    groups = {o.id for o in self.nexthops() if o.group is not None}
                if info.nh_id in groups:
                    req.nexthops = legs
                    legs = []
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
            for k in range(18):
                if info.metrics_present & (1 << k):
                    req.metrics[k] = info.metrics[k]
            if req.metrics:
                req.present |= bit(RTA_METRICS)
            out.append(req)
        return out

    # ---- nexthop objects ---------------------------------------------------
    def nexthop(self, req: NexthopObjRequest) -> None:
        c, _grp = nhobj_to_c(req)  # _grp keeps the member array alive
        self._check(lib.pr_nexthop_request(self._h, req.msg_type, req.nlmsg_flags, c))

    def nexthops(self) -> list[NexthopObjInfo]:
        """The nexthop objects in ascending id order (the kernel's dump order)."""
        info = ffi.new("pr_nhobj_info *")
        out = []
        for i in range(lib.pr_nexthop_count(self._h)):
            self._check(lib.pr_nexthop_get(self._h, i, info, ffi.NULL, 0))
            group = None
            if info.is_group:
                grp = ffi.new("pr_nhgrp_entry[]", info.ngroup)
                self._check(lib.pr_nexthop_get(self._h, i, info, grp, info.ngroup))
                group = tuple((grp[k].id, grp[k].weight) for k in range(info.ngroup))
            out.append(
                NexthopObjInfo(
                    id=info.id,
                    family=info.family,
                    scope=info.scope,
                    protocol=info.protocol,
                    flags=info.flags,
                    blackhole=bool(info.blackhole),
                    ifindex=info.ifindex,
                    gateway=_addr_from(info.gw_family, info.gw) if info.gw_family else None,
                    group=group,
                    group_type=info.group_type,
                )
            )
        return out

    def v4_merged(self) -> bool:
        """True while no IPv4 rule was ever added or deleted (local/main merged)."""
        return bool(lib.pr_policy_v4_merged(self._h))
