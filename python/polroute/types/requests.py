"""Requests as rtnetlink carries them.

These dataclasses mirror the C request structs of ``csrc/polroute.h`` field
for field.  They are what ``ip`` would send: the iproute2 reader
(:mod:`polroute.iproute2.batch`) fills in iproute2's client-side defaults (protocol
boot, scope, table, flags); the core applies the kernel's semantics.  Keeping
the two apart means the same request can later be sent to the real kernel.

Addresses are ``ipaddress`` objects (or None), devices are ifindexes.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

AF_INET = 2
AF_INET6 = 10

# nlmsg types
RTM_NEWADDR = 20
RTM_DELADDR = 21
RTM_NEWROUTE = 24
RTM_DELROUTE = 25
RTM_NEWRULE = 32
RTM_DELRULE = 33

# nlmsg flags
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_APPEND = 0x800

# FRA_* attribute ids (bit positions in RuleRequest.present)
FRA_DST, FRA_SRC, FRA_IIFNAME, FRA_GOTO, FRA_PRIORITY = 1, 2, 3, 4, 6
FRA_FWMARK, FRA_FLOW, FRA_TUN_ID, FRA_SUPPRESS_IFGROUP = 10, 11, 12, 13
FRA_SUPPRESS_PREFIXLEN, FRA_TABLE, FRA_FWMASK, FRA_OIFNAME = 14, 15, 16, 17
FRA_L3MDEV, FRA_UID_RANGE, FRA_PROTOCOL, FRA_IP_PROTO = 19, 20, 21, 22
FRA_SPORT_RANGE, FRA_DPORT_RANGE, FRA_DSCP = 23, 24, 25
FRA_FLOWLABEL, FRA_FLOWLABEL_MASK, FRA_SPORT_MASK, FRA_DPORT_MASK, FRA_DSCP_MASK = 26, 27, 28, 29, 30

# RTA_* attribute ids (bit positions in RouteRequest.present)
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PRIORITY, RTA_PREFSRC = 1, 4, 5, 6, 7
RTA_METRICS, RTA_MULTIPATH, RTA_FLOW, RTA_TABLE, RTA_VIA, RTA_PREF, RTA_NH_ID = 8, 9, 11, 15, 18, 20, 30

# rule actions
FR_ACT_UNSPEC, FR_ACT_TO_TBL, FR_ACT_GOTO, FR_ACT_NOP = 0, 1, 2, 3
FR_ACT_BLACKHOLE, FR_ACT_UNREACHABLE, FR_ACT_PROHIBIT = 6, 7, 8
FIB_RULE_INVERT = 2

# route types
RTN_UNSPEC, RTN_UNICAST, RTN_LOCAL, RTN_BROADCAST, RTN_ANYCAST, RTN_MULTICAST = 0, 1, 2, 3, 4, 5
RTN_BLACKHOLE, RTN_UNREACHABLE, RTN_PROHIBIT, RTN_THROW, RTN_NAT, RTN_XRESOLVE = 6, 7, 8, 9, 10, 11

# scopes
RT_SCOPE_UNIVERSE, RT_SCOPE_SITE, RT_SCOPE_LINK, RT_SCOPE_HOST, RT_SCOPE_NOWHERE = 0, 200, 253, 254, 255

# protocols
RTPROT_UNSPEC, RTPROT_KERNEL, RTPROT_BOOT, RTPROT_STATIC = 0, 2, 3, 4

RTNH_F_ONLINK = 4
IFA_F_NOPREFIXROUTE = 0x200

# tables
RT_TABLE_UNSPEC, RT_TABLE_COMPAT, RT_TABLE_DEFAULT, RT_TABLE_MAIN, RT_TABLE_LOCAL = 0, 252, 253, 254, 255


def bit(attr: int) -> int:
    """The ``present`` bit of attribute number ``attr``."""
    return 1 << attr


@dataclass
class RuleRequest:
    """RTM_NEWRULE / RTM_DELRULE: fib_rule_hdr + FRA_* attributes.

    ``present`` has bit(FRA_x) set for each attribute that would be sent; a
    field whose bit is clear is ignored by the core.
    """

    msg_type: int  # RTM_NEWRULE or RTM_DELRULE
    nlmsg_flags: int  # e.g. NLM_F_CREATE | NLM_F_EXCL for `ip rule add`
    family: int = AF_INET
    dst_len: int = 0
    src_len: int = 0
    tos: int = 0
    action: int = FR_ACT_UNSPEC
    table: int = 0  # frh.table, or FRA_TABLE when present
    flags: int = 0  # FIB_RULE_INVERT
    present: int = 0
    priority: int = 0
    goto_target: int = 0
    fwmark: int = 0
    fwmask: int = 0
    realm: int = 0
    suppress_prefixlen: int = -1
    suppress_ifgroup: int = -1
    uid_start: int = 0
    uid_end: int = 0xFFFFFFFF
    protocol: int = 0
    ip_proto: int = 0
    l3mdev: int = 0
    dscp: int = 0
    dscp_mask: int = 0
    sport_start: int = 0
    sport_end: int = 0
    dport_start: int = 0
    dport_end: int = 0
    sport_mask: int = 0
    dport_mask: int = 0
    flowlabel: int = 0
    flowlabel_mask: int = 0
    tun_id: int = 0
    src: IPAddress | None = None
    dst: IPAddress | None = None
    iifname: str = ""
    oifname: str = ""


@dataclass
class NexthopRequest:
    """One RTA_MULTIPATH leg (struct rtnexthop + RTA_GATEWAY/RTA_VIA)."""

    gateway: IPAddress | None = None
    ifindex: int = 0
    weight: int = 1  # 1..256 (rtnh_hops + 1)
    flags: int = 0  # RTNH_F_ONLINK


@dataclass
class RouteRequest:
    """RTM_NEWROUTE / RTM_DELROUTE: struct rtmsg + RTA_* attributes."""

    msg_type: int  # RTM_NEWROUTE or RTM_DELROUTE
    nlmsg_flags: int  # add: CREATE|EXCL, replace: CREATE|REPLACE, ...
    family: int = AF_INET
    dst_len: int = 0
    tos: int = 0
    protocol: int = RTPROT_UNSPEC
    scope: int = RT_SCOPE_UNIVERSE
    type: int = RTN_UNICAST
    table: int = RT_TABLE_MAIN  # rtm_table, or RTA_TABLE when present
    rtm_flags: int = 0  # RTNH_F_ONLINK for a single path
    present: int = 0  # bit(RTA_x) for each attribute sent
    dst: IPAddress | None = None
    priority: int = 0
    prefsrc: IPAddress | None = None
    gateway: IPAddress | None = None
    oif: int = 0
    nh_id: int = 0
    realm: int = 0
    pref: int = 0  # IPv6 router preference (RTA_PREF): 0 medium, 1 high, 3 low
    nexthops: list[NexthopRequest] = field(default_factory=list)  # RTA_MULTIPATH
    metrics: dict[int, int] = field(default_factory=dict)  # RTAX_x -> value


@dataclass
class AddrRequest:
    """RTM_NEWADDR / RTM_DELADDR (ifaddrmsg + IFA_*)."""

    msg_type: int
    nlmsg_flags: int
    family: int
    ifindex: int
    local: IPAddress
    prefixlen: int
    scope: int = RT_SCOPE_UNIVERSE
    flags: int = 0  # IFA_F_NOPREFIXROUTE
    metric: int = 0
    broadcast: IPAddress | None = None


@dataclass
class LinkRequest:
    """Link changes the model supports: add (kind veth|bridge|ifb|...), del, set."""

    op: str  # "add" | "del" | "set"
    name: str
    kind: str = ""  # for add
    peer: str = ""  # veth peer name
    up: bool | None = None  # for set
    group: int | None = None
    newname: str = ""  # set NAME name NEWNAME


# ---- nexthop objects (ip nexthop): RTM_NEWNEXTHOP / RTM_DELNEXTHOP
RTM_NEWNEXTHOP = 104
RTM_DELNEXTHOP = 105
# NHA_* attribute ids (bit positions in NexthopObjRequest.present)
NHA_ID, NHA_GROUP, NHA_GROUP_TYPE, NHA_BLACKHOLE, NHA_OIF, NHA_GATEWAY = 1, 2, 3, 4, 5, 6
NHA_ENCAP_TYPE, NHA_ENCAP, NHA_FDB, NHA_RES_GROUP = 7, 8, 11, 12
NEXTHOP_GRP_TYPE_MPATH, NEXTHOP_GRP_TYPE_RES = 0, 1


@dataclass
class NexthopObjRequest:
    """RTM_NEWNEXTHOP / RTM_DELNEXTHOP: struct nhmsg + NHA_* attributes.
    group: (member id, weight 1..256) pairs."""

    msg_type: int
    nlmsg_flags: int
    family: int = 0  # AF_UNSPEC for groups
    present: int = 0  # bit(NHA_x) for each attribute sent
    id: int = 0
    protocol: int = 0
    flags: int = 0  # RTNH_F_ONLINK
    oif: int = 0
    gateway: IPAddress | None = None
    group: list[tuple[int, int]] = field(default_factory=list)
    group_type: int = NEXTHOP_GRP_TYPE_MPATH
    res_buckets: int = 0
