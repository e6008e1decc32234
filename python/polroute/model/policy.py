"""Policy: one network namespace's routing state, modelled by the C core.

Every change is a request shaped like the rtnetlink message ``ip`` would send
(:mod:`polroute.types.requests`); a refused request raises
:class:`~polroute._core.errors.PolicyError` with the kernel's errno and message and
changes nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from polroute._core.binding import ffi, lib
from polroute._core.codec import (
    LINK_KINDS,
    NULL,
    addr_from_c,
    addr_to_c,
    link_from_c,
    nhobj_from_c,
    nhobj_to_c,
    out_struct,
    route_from_c,
    route_to_c,
    route_view,
    rule_from_c,
    rule_to_c,
    text,
)
from polroute._core.errors import PolicyError, check, check_handle
from polroute.model.fast4 import build_fast4
from polroute.model.kernel_profile import PROFILES, KernelProfile
from polroute.model.kernel_profile import resolve as resolve_profile
from polroute.types.infos import AddrInfo, LinkInfo, NexthopObjInfo
from polroute.types.requests import (
    AF_INET,
    AF_INET6,
    AddrRequest,
    LinkRequest,
    NexthopObjRequest,
    RouteRequest,
    RuleRequest,
)

if TYPE_CHECKING:
    from polroute.model.compiled import CompiledPolicy

#: The keyword form of Policy.rule/route ("add", src=..., table=...): set by
#: polroute.iproute2.keywords when imported (it needs ip's reader, a layer above).
KEYWORDS: dict[str, Callable[..., None]] = {}


def _keywords(what: str) -> Callable[..., None]:
    try:
        return KEYWORDS[what]
    except KeyError:
        raise TypeError(
            f"Policy.{what}('add', ...): the keyword form needs polroute.iproute2.keywords "
            "(import polroute, or that module, first)"
        ) from None


class Policy:
    """The routing state of one namespace, starting as a fresh one: ``lo``
    (ifindex 1, down, no addresses), the default rules, no routes.

    ``kernel`` is the kernel build whose answers it gives
    (:mod:`polroute.model.kernel_profile`): ``"auto"`` (the running kernel when it can
    be read, else the common distributions' build), a profile name, or a
    :class:`~polroute.model.kernel_profile.KernelProfile`.
    """

    def __init__(self, _handle: Any = None, *, kernel: str | KernelProfile | None = "auto") -> None:
        h = check_handle(_handle if _handle is not None else lib.pr_policy_new(), "pr_policy_new")
        self._h = ffi.gc(h, lib.pr_policy_free)
        if _handle is None:
            self.set_kernel(kernel)
        self._fast4_cache: tuple[int, Any] | None = None  # (generation, evaluator) for bulk calls
        self._fast4_lock = threading.Lock()

    # ---- lifetime -------------------------------------------------------
    def clone(self) -> Policy:
        """An independent copy of this namespace (the batch reader applies to a clone, all or nothing)."""
        h = check_handle(lib.pr_policy_clone(self._h), "pr_policy_clone")
        return Policy(h)

    def compile(self) -> CompiledPolicy:
        """An immutable snapshot with compiled tables (polroute.model.compiled.CompiledPolicy)."""
        from polroute.model.compiled import CompiledPolicy

        return CompiledPolicy(self)

    def _swap(self, other: Policy) -> None:
        """Take over other's state (used to commit an all-or-nothing batch)."""
        self._h, other._h = other._h, self._h
        self._fast4_cache, other._fast4_cache = other._fast4_cache, self._fast4_cache

    def _fast4_current(self) -> Any:
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
            check(rc, what, text(lib.pr_errmsg(self._h)))
        return rc

    # ---- links ------------------------------------------------------------
    def ifindex(self, name: str) -> int:
        """The ifindex of a link; PolicyError(ENODEV) when there is none."""
        idx = lib.pr_link_index(self._h, name.encode())
        if idx == 0:
            import errno

            raise PolicyError(errno.ENODEV, "", f'Cannot find device "{name}"')
        return int(idx)

    def has_link(self, name: str) -> bool:
        """Whether a link named ``name`` exists."""
        return bool(lib.pr_link_index(self._h, name.encode()) != 0)

    def ifname(self, ifindex: int) -> str:
        """The name of the link with index ``ifindex``."""
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
                kind = LINK_KINDS.get(req.kind, lib.PR_LINK_OTHER)
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
        """Every link, in ifindex order."""
        out = []
        info = out_struct("pr_link_info")
        for i in range(lib.pr_link_count(self._h)):
            self._check(lib.pr_link_get(self._h, i, info))
            out.append(link_from_c(info))
        return out

    # ---- addresses --------------------------------------------------------
    def addr(self, req: AddrRequest) -> None:
        """Apply an address request (RTM_NEWADDR/RTM_DELADDR); the kernel's derived routes follow."""
        self._check(lib.pr_addr_request(self._h, req.msg_type, addr_to_c(req)))

    def addresses(self) -> list[AddrInfo]:
        """Every address of every link."""
        out = []
        info = out_struct("pr_addr_info")
        for i in range(lib.pr_addr_count(self._h)):
            self._check(lib.pr_addr_get(self._h, i, info))
            out.append(addr_from_c(info))
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
        """Set a modelled sysctl (``net.ipv4.ip_forward``, ``net.ipv4.conf.eth0.rp_filter``, ...)."""
        rc = lib.pr_sysctl_set(self._h, key.encode(), int(value))
        if rc < 0:
            self._check(rc, f"sysctl {key}")

    def sysctl_get(self, key: str) -> int:
        """The value of a modelled sysctl."""
        v = out_struct("int64_t")
        self._check(lib.pr_sysctl_get(self._h, key.encode(), v))
        return int(v[0])

    # ---- rules ------------------------------------------------------------
    def rule(self, req: RuleRequest | str, /, **kw: Any) -> None:
        """Apply a rule request (RTM_NEWRULE/RTM_DELRULE), or its keyword
        form as pyroute2 writes it, with iproute2's defaults:
        ``policy.rule("add", src="192.168.16.20/32", table=1, priority=500)``
        (``polroute.iproute2.keywords``).  A refused request raises
        PolicyError and changes nothing."""
        if isinstance(req, str):
            _keywords("rule")(self, req, **kw)
            return
        c = rule_to_c(req)
        self._check(lib.pr_rule_request(self._h, req.msg_type, req.nlmsg_flags, c))

    def rules(self, family: int = AF_INET) -> list[RuleRequest]:
        """The rules of one family, in the order the kernel walks (and dumps) them."""
        out = []
        info = out_struct("pr_rule_info")
        for i in range(lib.pr_rule_count(self._h, family)):
            self._check(lib.pr_rule_get(self._h, family, i, info))
            out.append(rule_from_c(info, family))
        return out

    # ---- routes -----------------------------------------------------------
    def route(self, req: RouteRequest | str, /, **kw: Any) -> None:
        """Apply a route request (RTM_NEWROUTE/RTM_DELROUTE), or its keyword
        form with iproute2's defaults: ``policy.route("add", dst="default",
        gateway="192.168.16.1", oif="eth0", table=1)``
        (``polroute.iproute2.keywords``).  A refused request raises
        PolicyError and changes nothing."""
        if isinstance(req, str):
            _keywords("route")(self, req, **kw)
            return
        c, _legs = route_to_c(req)  # _legs keeps the nexthop array alive
        self._check(lib.pr_route_request(self._h, req.msg_type, req.nlmsg_flags, c))

    def route_packed(self, msg_type: int, nlmsg_flags: int, packed: bytes) -> None:
        """Apply a route request given as the bytes of a ``pr_route_req``
        without nexthops (``nh`` NULL): what route() sends for such a request,
        without building it field by field (kernel_state's snapshot path)."""
        self._check(lib.pr_route_request(self._h, msg_type, nlmsg_flags, route_view(packed)))

    def routes(self, family: int = AF_INET, table: int = 0) -> list[RouteRequest]:
        """Routes of one family (all tables when table is 0), in dump order."""
        n = lib.pr_route_dump(self._h, family, table)
        info = out_struct("pr_route_info")
        nh = out_struct("pr_nexthop_info", 32)
        out = []
        # ids of nexthop groups: an IPv6 route through one dumps RTA_MULTIPATH
        groups = {o.id for o in self.nexthops() if o.group is not None} if family == AF_INET6 else set()
        for i in range(n):
            self._check(lib.pr_route_get_dumped(self._h, i, info, nh, 32))
            out.append(route_from_c(info, nh, groups))
        return out

    # ---- nexthop objects ---------------------------------------------------
    def nexthop(self, req: NexthopObjRequest) -> None:
        """Apply a nexthop object request (RTM_NEWNEXTHOP / RTM_DELNEXTHOP),
        with the kernel's checks; routes through a changed object follow it."""
        c, _grp = nhobj_to_c(req)  # _grp keeps the member array alive
        self._check(lib.pr_nexthop_request(self._h, req.msg_type, req.nlmsg_flags, c))

    def nexthops(self) -> list[NexthopObjInfo]:
        """The nexthop objects in ascending id order (the kernel's dump order)."""
        info = out_struct("pr_nhobj_info")
        out = []
        for i in range(lib.pr_nexthop_count(self._h)):
            self._check(lib.pr_nexthop_get(self._h, i, info, NULL, 0))
            grp = NULL
            if info.is_group:
                grp = out_struct("pr_nhgrp_entry", info.ngroup)
                self._check(lib.pr_nexthop_get(self._h, i, info, grp, info.ngroup))
            out.append(nhobj_from_c(info, grp))
        return out

    def v4_merged(self) -> bool:
        """True while no IPv4 rule was ever added or deleted (local/main merged)."""
        return bool(lib.pr_policy_v4_merged(self._h))
