"""Printers: the exact text iproute2 6.1 prints for ``ip rule show`` and
``ip route show`` (ip/iprule.c print_rule, ip/iproute.c print_route).

The input is what the kernel would dump (RuleRequest / RouteRequest as
returned by :meth:`polroute.Policy.rules` / :meth:`~polroute.Policy.routes`),
so the printers decide "was this attribute in the dump" the way the kernel
does (e.g. an IPv4 route carries RTA_PRIORITY only when its metric is not 0),
not from the ``present`` bits.

Route lines keep iproute2's trailing space after every token; IPv6 lines end
in ``pref medium`` with no space.  A multipath route is one entry whose
text contains ``"\\n\\tnexthop ..."`` continuation lines, as ip prints it.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable

from polroute._core.codec import ROUTE_TYPE_NAMES
from polroute._core.fields import (
    KIND_FLAG,
    PF_DSCP,
    PF_FLAG,
    PF_HEX,
    PF_HEX_MASK,
    PF_NONE,
    PF_PORT,
    PF_RANGE,
    PF_S32,
    PF_WITH_LINK,
    ROUTE_FIELDS,
    RULE_FIELDS,
    FieldRow,
    mask_of,
)
from polroute.iproute2.rt_tables import RtTables
from polroute.types.requests import (
    AF_INET,
    AF_INET6,
    FIB_RULE_INVERT,
    FR_ACT_GOTO,
    FR_ACT_NOP,
    FR_ACT_TO_TBL,
    RT_SCOPE_UNIVERSE,
    RT_TABLE_LOCAL,
    RT_TABLE_MAIN,
    RTN_LOCAL,
    RTN_NAT,
    RTN_UNICAST,
    RTPROT_BOOT,
    RTPROT_KERNEL,
    IPAddress,
    RouteRequest,
    RuleRequest,
)

FIB_RULE_UNRESOLVED = 0x04
FIB_RULE_IIF_DETACHED = 0x08
FIB_RULE_OIF_DETACHED = 0x10

# rtm_flags words, in print_rt_flags() order
_RT_FLAG_WORDS = (
    (0x01, "dead"),
    (0x04, "onlink"),
    (0x02, "pervasive"),
    (0x08, "offload"),
    (0x40, "trap"),
    (0x100, "notify"),
    (0x10, "linkdown"),
    (0x20, "unresolved"),
    (0x4000, "rt_offload"),
    (0x8000, "rt_trap"),
    (0x20000000, "rt_offload_failed"),
)

#: rtm_type -> iproute2's word (rtnl_rtntype_n2a), index = type: the codec's names
RTN_NAMES = tuple(ROUTE_TYPE_NAMES[i] for i in range(len(ROUTE_TYPE_NAMES)))

# RTAX_* names as print_rta_metrics knows them (index = RTAX id)
MX_NAMES = (
    None,
    None,
    "mtu",
    "window",
    "rtt",
    "rttvar",
    "ssthresh",
    "cwnd",
    "advmss",
    "reordering",
    "hoplimit",
    "initcwnd",
    "features",
    "rto_min",
    "initrwnd",
    "quickack",
    "congctl",
    "fastopen_no_cookie",
)
RTAX_LOCK, RTAX_RTT, RTAX_RTTVAR, RTAX_HOPLIMIT = 1, 4, 5, 10
RTAX_FEATURES, RTAX_RTO_MIN, RTAX_CC_ALGO, RTAX_MAX = 12, 13, 16, 17


def rtntype_name(t: int) -> str:
    return RTN_NAMES[t] if 0 <= t < len(RTN_NAMES) else str(t)


# ---------------------------------------------------------------------------
# address text (glibc inet_ntop)
# ---------------------------------------------------------------------------


def inet_ntop(addr: IPAddress) -> str:
    """The C library's inet_ntop, as ip uses it (glibc prints ::1.2.3.4 and
    ::ffff:1.2.3.4 dotted, unlike Python's ipaddress)."""
    if addr.version == 4:
        return str(addr)
    return socket.inet_ntop(socket.AF_INET6, addr.packed)


def _host_len(family: int) -> int:
    return 128 if family == AF_INET6 else 32


def _c_hex(v: int) -> str:
    """printf("%#x"): no 0x prefix for zero."""
    return "0" if v == 0 else f"{v:#x}"


def _tables(tables: RtTables | None) -> RtTables:
    return tables if tables is not None else RtTables()


# ---------------------------------------------------------------------------
# ip rule show
# ---------------------------------------------------------------------------


def format_rule(r: RuleRequest, tables: RtTables | None = None) -> str:
    """One ``ip rule show`` line (no newline)."""
    t = _tables(tables)
    host_len = _host_len(r.family)
    out = [f"{r.priority & 0xFFFFFFFF}:\t"]
    if r.flags & FIB_RULE_INVERT:
        out.append("not ")
    # the kernel dumps FRA_SRC/FRA_DST only for a non-zero prefix length
    if r.src_len and r.src is not None:
        out.append("from " + inet_ntop(r.src))
        if r.src_len != host_len:
            out.append(f"/{r.src_len}")
    elif r.src_len:
        out.append(f"from 0/{r.src_len}")
    else:
        out.append("from all")
    if r.dst_len and r.dst is not None:
        out.append(" to " + inet_ntop(r.dst))
        if r.dst_len != host_len:
            out.append(f"/{r.dst_len}")
    elif r.dst_len:
        out.append(f" to 0/{r.dst_len}")
    if r.tos:
        out.append(" tos " + t.dsfield.name(r.tos))
    # FRA_FWMARK is dumped when mark != 0, FRA_FWMASK when mark or mask != 0
    if r.fwmark or r.fwmask:
        out.append(" fwmark " + _c_hex(r.fwmark & 0xFFFFFFFF))
        if r.fwmask & 0xFFFFFFFF != 0xFFFFFFFF:
            out.append("/" + _c_hex(r.fwmask & 0xFFFFFFFF))
    if r.iifname:
        out.append(" iif " + r.iifname)
        if r.flags & FIB_RULE_IIF_DETACHED:
            out.append(" [detached]")
    if r.oifname:
        out.append(" oif " + r.oifname)
        if r.flags & FIB_RULE_OIF_DETACHED:
            out.append(" [detached]")
    if r.l3mdev:
        out.append(" lookup [l3mdev-table]")
    if (r.uid_start, r.uid_end) != (0, 0xFFFFFFFF):
        out.append(f" uidrange {r.uid_start}-{r.uid_end}")
    if r.ip_proto:
        out.append(" ipproto " + ipproto_name(r.ip_proto))
    for word, start, end, mask in (
        ("sport", r.sport_start, r.sport_end, r.sport_mask),
        ("dport", r.dport_start, r.dport_end, r.dport_mask),
    ):
        if not (start and end):  # fib_rule_port_range_set()
            continue
        if start != end:
            out.append(f" {word} {start}-{end}")
        elif mask and mask != 0xFFFF:  # newer iproute2: the port in hex then
            out.append(f" {word} {_c_hex(start)}/{_c_hex(mask)}")
        else:
            out.append(f" {word} {start}")
    if r.tun_id:
        out.append(f" tun_id {r.tun_id}")
    if r.table:
        out.append(" lookup " + t.name(r.table))
        # the C side may hand these back as u32: 0xFFFFFFFF is "unset" too
        if _s32(r.suppress_prefixlen) != -1:
            out.append(f" suppress_prefixlength {_s32(r.suppress_prefixlen)}")
        if _s32(r.suppress_ifgroup) != -1:
            out.append(" suppress_ifgroup " + t.group_name(_s32(r.suppress_ifgroup)))
    if r.realm:
        frm, to = (r.realm >> 16) & 0xFFFF, r.realm & 0xFFFF
        out.append(f" realms {t.realms.name(frm)}/" if frm else " realms ")
        out.append(t.realms.name(to))
    if r.action == RTN_NAT:
        out.append(" masquerade")  # the kernel never dumps a NAT gateway
    elif r.action == FR_ACT_GOTO:
        out.append(f" goto {r.goto_target}" if r.goto_target else " goto none")
        if r.flags & FIB_RULE_UNRESOLVED:
            out.append(" [unresolved]")
    elif r.action == FR_ACT_NOP:
        out.append(" nop")
    elif r.action != FR_ACT_TO_TBL:
        out.append(" " + rtntype_name(r.action))
    if r.protocol and r.protocol != RTPROT_KERNEL:
        out.append(" proto " + t.protos.name(r.protocol))
    # selectors newer than 6.1's print_rule: iproute2 prints them last, in
    # the order they were added, which is the rule table's
    for row in _LATER_ROWS:
        if _row_dumped(r, row):
            out.append(_format_row(r, row, t))
    return "".join(out)


# Rule rows print_rule() of iproute2 6.1 prints (by hand above, in its order);
# the printers of the other rows come from their print_fmt.
_SHOWN_61 = frozenset(
    (
        "family",
        "present",
        "priority",
        "not",
        "from",
        "to",
        "tos",
        "fwmark",
        "fwmask",
        "iif",
        "oif",
        "l3mdev",
        "uidrange",
        "ipproto",
        "sport",
        "dport",
        "sport_mask",
        "dport_mask",
        "tun_id",
        "table",
        "suppress_prefixlength",
        "suppress_ifgroup",
        "realms",
        "action",
        "goto",
        "protocol",
    )
)
_LATER_ROWS = tuple(
    row for row in RULE_FIELDS if row.name not in _SHOWN_61 and row.print_fmt not in (PF_NONE, PF_WITH_LINK)
)
_NEUTRAL_RULE = RuleRequest(0, 0)


def _row_dumped(r, row: FieldRow, neutral=_NEUTRAL_RULE, table: tuple[FieldRow, ...] = RULE_FIELDS) -> bool:
    """Whether the kernel dumps the row's attribute: its present bit, or a
    value other than a request without it has (what pr_rule_selectors says)."""
    if row.present_bit >= 0 and r.present >> row.present_bit & 1:
        return True
    if row.kind == KIND_FLAG:
        return bool(getattr(r, row.members[0]) & row.flag)
    mask = mask_of(row, table)
    names = row.members + row.aux_members + (mask.members if mask else ())
    return any(getattr(r, m) != getattr(neutral, m) for m in names)


def _format_row(r, row: FieldRow, t: RtTables, table: tuple[FieldRow, ...] = RULE_FIELDS) -> str:
    """One row of ``table`` as current iproute2 prints it (leading space)."""
    vals = [getattr(r, m) for m in row.members]
    mask_row = mask_of(row, table)
    mask = getattr(r, mask_row.members[0]) if mask_row else 0
    word, fmt = row.keyword, row.print_fmt
    if fmt == PF_DSCP:
        if mask_row and mask and mask != mask_row.all_ones:
            return f" {word} {_c_hex(vals[0])}/{_c_hex(mask)}"
        name = t.dsfield.tab[(vals[0] << 2) & 0xFF]  # rtnl_dscp_n2a
        return f" {word} {name if name is not None else vals[0]}"
    if fmt == PF_HEX_MASK:
        text = f" {word} {_c_hex(vals[0])}"
        return text + (f"/{_c_hex(mask)}" if mask_row and mask != mask_row.all_ones else "")
    if fmt == PF_FLAG:
        return f" {word}"
    if fmt == PF_HEX:
        return f" {word} {_c_hex(vals[0])}"
    if fmt in (PF_RANGE, PF_PORT) and len(vals) == 2:
        return f" {word} {vals[0]}" if vals[0] == vals[1] else f" {word} {vals[0]}-{vals[1]}"
    if fmt == PF_S32:
        return f" {word} {_s32(vals[0])}"
    return f" {word} " + " ".join(str(v) for v in vals)  # %u, %llu and what has no printer yet


def format_rules(
    rules: Iterable[RuleRequest], tables: RtTables | None = None, ifname: Callable[[int], str] | None = None
) -> list[str]:
    """``ip rule show`` lines, one per rule, in the given (dump) order.
    ``ifname`` is accepted for symmetry: rules carry device names."""
    return [format_rule(r, tables) for r in rules]


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


# ---------------------------------------------------------------------------
# ip protocol names (getprotobynumber / getprotobyname on Debian's netbase)
# ---------------------------------------------------------------------------

_PROTOCOLS = """\
ip 0 IP|hopopt 0 HOPOPT|icmp 1 ICMP|igmp 2 IGMP|ggp 3 GGP|ipencap 4 IP-ENCAP|st 5 ST
tcp 6 TCP|egp 8 EGP|igp 9 IGP|pup 12 PUP|udp 17 UDP|hmp 20 HMP|xns-idp 22 XNS-IDP
rdp 27 RDP|iso-tp4 29 ISO-TP4|dccp 33 DCCP|xtp 36 XTP|ddp 37 DDP|idpr-cmtp 38 IDPR-CMTP
ipv6 41 IPv6|ipv6-route 43 IPv6-Route|ipv6-frag 44 IPv6-Frag|idrp 45 IDRP|rsvp 46 RSVP
gre 47 GRE|esp 50 IPSEC-ESP|ah 51 IPSEC-AH|skip 57 SKIP|ipv6-icmp 58 IPv6-ICMP
ipv6-nonxt 59 IPv6-NoNxt|ipv6-opts 60 IPv6-Opts|rspf 73 RSPF CPHB|vmtp 81 VMTP
eigrp 88 EIGRP|ospf 89 OSPFIGP|ax.25 93 AX.25|ipip 94 IPIP|etherip 97 ETHERIP
encap 98 ENCAP|pim 103 PIM|ipcomp 108 IPCOMP|vrrp 112 VRRP|l2tp 115 L2TP|isis 124 ISIS
sctp 132 SCTP|fc 133 FC|mobility-header 135 Mobility-Header|udplite 136 UDPLite
mpls-in-ip 137 MPLS-in-IP|manet 138|hip 139 HIP|shim6 140 Shim6|wesp 141 WESP
rohc 142 ROHC|ethernet 143 Ethernet|mptcp 262 MPTCP"""
PROTO_BY_NAME: dict[str, int] = {}
PROTO_BY_NUMBER: dict[int, str] = {}
for _entry in _PROTOCOLS.replace("\n", "|").split("|"):
    _name, _num, *_aliases = _entry.split()
    PROTO_BY_NUMBER.setdefault(int(_num), _name)
    for _n in [_name] + _aliases:
        PROTO_BY_NAME.setdefault(_n, int(_num))


def ipproto_name(proto: int) -> str:
    """inet_proto_n2a: the /etc/protocols name, else ``ipproto-N``."""
    return PROTO_BY_NUMBER.get(proto, f"ipproto-{proto}")


# ---------------------------------------------------------------------------
# ip route show
# ---------------------------------------------------------------------------

TableFilter = None | int | str


def _table_filter(table_filter: TableFilter, tables: RtTables) -> int:
    """None -> main (ip route show's default), "all" -> 0, else a table id."""
    if table_filter is None:
        return RT_TABLE_MAIN
    if isinstance(table_filter, str):
        return 0 if table_filter == "all" else tables.id(table_filter)
    return table_filter


# Route rows print_route() of iproute2 6.1 prints (by hand in format_route, in
# its order); any other row is printed by its print_fmt after them, so a new
# plain route attribute needs no edit here.
_ROUTE_SHOWN_61 = frozenset(
    ("family", "present", "tos", "proto", "scope", "type", "via", "pref", "table", "onlink", "metric", "dev")
    + ("nhid", "realms", "nexthop", "metrics", "to", "src", "gateway")
)
_LATER_ROUTE_ROWS = tuple(
    row for row in ROUTE_FIELDS if row.name not in _ROUTE_SHOWN_61 and row.print_fmt not in (PF_NONE, PF_WITH_LINK)
)
_NEUTRAL_ROUTE = RouteRequest(0, 0)


def _later_route_rows_text(r: RouteRequest, t: RtTables) -> str:
    """The rows of _LATER_ROUTE_ROWS the route carries, each "WORD VALUE " (a
    route line's tokens end in a space)."""
    return "".join(
        _format_row(r, row, t, ROUTE_FIELDS)[1:] + " "
        for row in _LATER_ROUTE_ROWS
        if _row_dumped(r, row, _NEUTRAL_ROUTE, ROUTE_FIELDS)
    )


def _metrics_text(metrics: dict[int, int]) -> str:
    lock = metrics.get(RTAX_LOCK, 0)
    out = []
    for i in range(2, RTAX_MAX + 1):
        if i not in metrics and not lock & (1 << i):
            continue
        val = metrics.get(i, 0) & 0xFFFFFFFF
        if i == RTAX_HOPLIMIT and val == 0xFFFFFFFF:
            continue
        out.append(f"{MX_NAMES[i]} " if MX_NAMES[i] else f"metric {i} ")
        if lock & (1 << i):
            out.append("lock ")
        if i == RTAX_FEATURES:
            if val & 1:
                out.append("ecn ")
            if val & ~1:
                out.append(f"{_c_hex(val)} ")  # ip prints the whole value
        elif i in (RTAX_RTT, RTAX_RTTVAR, RTAX_RTO_MIN):
            if i == RTAX_RTT:
                val //= 8
            elif i == RTAX_RTTVAR:
                val //= 4
            out.append(f"{'%g' % (val / 1e3)}s " if val >= 1000 else f"{val}ms ")
        else:
            out.append(f"{val} ")
    return "".join(out)


def _flags_text(flags: int) -> str:
    return "".join(f"{word} " for bit, word in _RT_FLAG_WORDS if flags & bit)


def _via_text(route_family: int, gw: IPAddress) -> str:
    # a gateway of the other family travels as RTA_VIA: "via inet6 ADDR"
    gw_family = AF_INET if gw.version == 4 else AF_INET6
    if gw_family == route_family:
        return f"via {inet_ntop(gw)} "
    return f"via {'inet' if gw_family == AF_INET else 'inet6'} {inet_ntop(gw)} "


def format_route(
    r: RouteRequest,
    tables: RtTables | None = None,
    ifname: Callable[[int], str] = str,
    table_filter: TableFilter = None,
    _filter_tb: int | None = None,
) -> str:
    """One ``ip route show`` entry (multipath legs on continuation lines)."""
    t = _tables(tables)
    filter_tb = _table_filter(table_filter, t) if _filter_tb is None else _filter_tb
    host_len = _host_len(r.family)
    out = []
    if r.type != RTN_UNICAST:
        out.append(rtntype_name(r.type) + " ")
    if r.dst_len and r.dst is not None:
        if r.dst_len != host_len:
            out.append(f"{inet_ntop(r.dst)}/{r.dst_len} ")
        else:
            out.append(f"{inet_ntop(r.dst)} ")
    elif r.dst_len:
        out.append(f"0/{r.dst_len}  ")  # sic: ip's "0/%d " then "%s "
    else:
        out.append("default ")
    if r.nh_id:
        out.append(f"nhid {r.nh_id} ")
    if r.tos:
        out.append(f"tos {t.dsfield.name(r.tos)} ")
    if r.gateway is not None and not r.nexthops:
        out.append(_via_text(r.family, r.gateway))
    if r.oif and not r.nexthops:
        out.append(f"dev {ifname(r.oif)} ")
    if r.table and r.table != RT_TABLE_MAIN and not filter_tb:
        out.append(f"table {t.name(r.table)} ")
    if r.protocol != RTPROT_BOOT:
        out.append(f"proto {t.protos.name(r.protocol)} ")
    if r.scope != RT_SCOPE_UNIVERSE:
        out.append(f"scope {t.scopes.name(r.scope)} ")
    if r.prefsrc is not None:
        out.append(f"src {inet_ntop(r.prefsrc)} ")
    # IPv4 dumps RTA_PRIORITY only for a non-zero metric, IPv6 always
    if r.family == AF_INET6 or r.priority:
        out.append(f"metric {r.priority & 0xFFFFFFFF} ")
    out.append(_flags_text(r.rtm_flags))
    if r.realm:
        frm, to = (r.realm >> 16) & 0xFFFF, r.realm & 0xFFFF
        out.append("realms " if frm else "realm ")
        if frm:
            out.append(f"{t.realms.name(frm)}/")
        out.append(f"{t.realms.name(to)} ")
    if r.metrics:
        out.append(_metrics_text(r.metrics))
    if _LATER_ROUTE_ROWS:
        out.append(_later_route_rows_text(r, t))
    if r.family == AF_INET6:
        out.append("pref medium")  # RTA_PREF is always dumped for IPv6
    for leg in r.nexthops:
        out.append("\n\tnexthop ")
        if leg.gateway is not None:
            out.append(_via_text(r.family, leg.gateway))
        out.append(f"dev {ifname(leg.ifindex) if leg.ifindex else '*'} ")
        out.append(f"weight {leg.weight} ")
        out.append(_flags_text(leg.flags))
    return "".join(out)


def format_routes(
    routes: Iterable[RouteRequest],
    tables: RtTables | None = None,
    ifname: Callable[[int], str] = str,
    table_filter: TableFilter = None,
) -> list[str]:
    """``ip route show [table X|all]`` entries for the given dumped routes.

    ``table_filter``: None (main, the default of ``ip route show``), "all"
    or 0, a table id or name.  Routes of other tables are dropped as ip's
    filter does (including its IPv6 quirk: until a non-main IPv6 route has
    been seen in the dump, ``table local`` / ``table main`` select IPv6
    routes by type local / not local).  The ``table NAME`` word is printed
    only when showing all tables and the table is not main.
    """
    t = _tables(tables)
    filter_tb = _table_filter(table_filter, t)
    lines = []
    ip6_multiple_tables = False
    for r in routes:
        table = r.table
        if r.family == AF_INET6 and table != RT_TABLE_MAIN:
            ip6_multiple_tables = True
        if r.family == AF_INET6 and not ip6_multiple_tables:
            if filter_tb:
                if filter_tb == RT_TABLE_LOCAL:
                    if r.type != RTN_LOCAL:
                        continue
                elif filter_tb == RT_TABLE_MAIN:
                    if r.type == RTN_LOCAL:
                        continue
                else:
                    continue
        elif filter_tb and filter_tb != table:
            continue
        lines.append(format_route(r, t, ifname, _filter_tb=filter_tb))
    return lines
