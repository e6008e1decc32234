"""What the model dumps: links, addresses, rules, routes.

A dumped rule is a :class:`~polroute.types.requests.RuleRequest` (msg_type
RTM_NEWRULE, priority always present), a dumped route a
:class:`~polroute.types.requests.RouteRequest` (msg_type RTM_NEWROUTE): the same
shape as the kernel's dump messages, so what is read back can be sent again.
Links and addresses get their own small records.
"""

from __future__ import annotations

from dataclasses import dataclass

from polroute.types.requests import IPAddress

IFA_F_SECONDARY = 0x01


@dataclass(frozen=True)
class LinkInfo:
    ifindex: int
    name: str
    kind: str  # "loopback" | "veth" | "bridge" | "ifb" | "other"
    up: bool
    carrier: bool
    group: int = 0


@dataclass(frozen=True)
class AddrInfo:
    ifindex: int
    family: int
    local: IPAddress
    prefixlen: int
    scope: int
    secondary: bool
    flags: int = 0
    metric: int = 0
    broadcast: IPAddress | None = None


@dataclass(frozen=True)
class NexthopObjInfo:
    """A dumped nexthop object (what ``ip nexthop show`` reads)."""

    id: int
    family: int  # 0 for a group
    scope: int = 0
    protocol: int = 0
    flags: int = 0  # RTNH_F_ONLINK
    blackhole: bool = False
    ifindex: int = 0
    gateway: IPAddress | None = None
    group: tuple[tuple[int, int], ...] | None = None  # (id, weight); None for a single nexthop
    group_type: int = 0
