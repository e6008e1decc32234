"""``ip rule add/delete`` and ``ip rule flush``, as iproute2 v6.1.0
ip/iprule.c parses them; ``ip rule add`` also takes the keywords newer
iproute2 added (``dscp``, ``flowlabel``, ``sport``/``dport N/MASK``: the
rule table's PR_FF_NEW_KEYWORD rows) as current iproute2 parses them."""

from __future__ import annotations

import copy
import errno as _errno
from dataclasses import dataclass

from polroute._core import fields
from polroute._core.errors import PolicyError
from polroute.iproute2.args import (
    AF_UNSPEC,
    Args,
    Prefix,
    addr_bits,
    check_ifname,
    dsfield_id,
    get_prefix,
    get_rt_realms_or_raw,
    inet_addr_match,
    inet_proto_a2n,
    invalid,
    matches,
    name_id,
    need,
    parse_row_value,
    rtntype_a2n,
    table_id,
    unsupported,
)
from polroute.iproute2.command import Command, Context, first_match, no_change
from polroute.iproute2.lexer import ParseError
from polroute.iproute2.rt_tables import get_s32, get_u16, get_u32, get_u64, scan_uint
from polroute.types.requests import (
    AF_INET,
    FIB_RULE_INVERT,
    FR_ACT_GOTO,
    FR_ACT_NOP,
    FR_ACT_TO_TBL,
    FR_ACT_UNSPEC,
    FRA_DPORT_MASK,
    FRA_DPORT_RANGE,
    FRA_DSCP,
    FRA_DSCP_MASK,
    FRA_DST,
    FRA_FLOW,
    FRA_FLOWLABEL,
    FRA_FLOWLABEL_MASK,
    FRA_FWMARK,
    FRA_FWMASK,
    FRA_GOTO,
    FRA_IIFNAME,
    FRA_IP_PROTO,
    FRA_L3MDEV,
    FRA_OIFNAME,
    FRA_PRIORITY,
    FRA_PROTOCOL,
    FRA_SPORT_MASK,
    FRA_SPORT_RANGE,
    FRA_SRC,
    FRA_SUPPRESS_IFGROUP,
    FRA_SUPPRESS_PREFIXLEN,
    FRA_TABLE,
    FRA_TUN_ID,
    FRA_UID_RANGE,
    NLM_F_CREATE,
    NLM_F_EXCL,
    RT_TABLE_MAIN,
    RT_TABLE_UNSPEC,
    RTM_DELRULE,
    RTM_NEWRULE,
    IPAddress,
    RuleRequest,
    bit,
)

_DSCP_MAX_MASK = 0x3F
_LABEL_MAX_MASK = 0xFFFFF


def _dscp_a2n(t, v: str) -> int:
    """rtnl_dscp_a2n: a number (any base), else an rt_dsfield name or hex
    DS field shifted down to its DSCP."""
    n = get_u32(v)
    if n is not None:
        return n
    try:
        return t.dsfield.id(v) >> 2
    except ValueError:
        raise invalid("dscp", v) from None


# Selectors the rule table (csrc/fields.c) describes and this reader has no
# case of its own for: ones newer than this reader.  They are parsed by their
# row's kind -- a number, a range N[-M], a value with its mask row as V/M --
# the way iproute2 parses such numbers (get_u*, "invalid KEYWORD"), so a new
# selector needs no edit here (docs/architecture.md, "Where to add").
_BY_HAND = {"dscp", "flowlabel", "sport", "dport"}
_GENERIC = {
    r.keyword: r
    for r in fields.RULE_FIELDS
    if r.role == fields.ROLE_SELECTOR
    and r.flags & fields.FF_NEW_KEYWORD
    and r.keyword
    and r.keyword not in _BY_HAND
    and r.kind in fields.NUMBER_KINDS + fields.RANGE_KINDS
}


def _parse_generic(row: fields.FieldRow, value: str, req: RuleRequest) -> None:
    """One table-described selector's value into ``req`` (see _GENERIC)."""
    parse_row_value(row, value, req, fields.RULE_FIELDS)


def _rule_modify(a: Args, msg_type: int, ctx: Context) -> Command:
    """iprule.c:iprule_modify(): the selector and action in ip's if-chain
    order, then the header defaults (family inet, table main for an add)."""
    t = ctx.tables
    fam = ctx.family  # ip rule does NOT take the family from addresses
    req = RuleRequest(msg_type, NLM_F_CREATE | NLM_F_EXCL if msg_type == RTM_NEWRULE else 0)
    req.action = FR_ACT_TO_TBL if msg_type == RTM_NEWRULE else FR_ACT_UNSPEC
    frh_table, fra_table = 0, None
    table_ok = l3mdev_rule = False
    tid = 0
    addr_family_seen = {}
    if not a.more():
        which = "add" if msg_type == RTM_NEWRULE else "del"
        raise ParseError(f'"ip rule {which}" requires arguments')

    def port_range(tok: str) -> tuple[int, int, int | None]:
        """(start, end, mask or None).  N/MASK is the newer iprule_port_parse;
        anything else is 6.1's sscanf("%hu-%hu")."""
        v = a.next()
        if "/" in v and "-" not in v:
            port_s, _, mask_s = v.partition("/")
            mask = need(get_u16(mask_s), "mask", mask_s)
            start = need(get_u16(port_s), "port", port_s)
            return start, start, mask
        got = scan_uint(v, 0)
        if got is None:
            raise invalid("port range", v)
        start, end = got[0] & 0xFFFF, got[0] & 0xFFFF
        if got[1] < len(v) and v[got[1]] == "-":
            got2 = scan_uint(v, got[1] + 1)
            if got2 is not None:
                end = got2[0] & 0xFFFF
        return start, end, None

    while a.more():
        tok = a.cur
        if tok == "not":
            req.flags |= FIB_RULE_INVERT
        elif tok in ("from", "to"):
            v = a.next()
            p = get_prefix(v, fam)
            if tok == "from":
                req.src_len = p.bitlen
                req.src = p.addr
                if p.bytelen:
                    req.present |= bit(FRA_SRC)
            else:
                req.dst_len = p.bitlen
                req.dst = p.addr
                if p.bytelen:
                    req.present |= bit(FRA_DST)
            if p.bytelen:
                addr_family_seen[tok] = p.family
        elif matches(tok, "preference") or matches(tok, "order") or matches(tok, "priority"):
            v = a.next()
            req.priority = need(get_u32(v), "preference", v)
            req.present |= bit(FRA_PRIORITY)
        elif tok == "tos" or matches(tok, "dsfield"):
            req.tos = dsfield_id(t, a.next())
        elif tok == "fwmark":
            v = a.next()
            mark_s, slash, mask_s = v.partition("/")
            req.fwmark = need(get_u32(mark_s), "fwmark", mark_s)
            req.present |= bit(FRA_FWMARK)
            if slash:  # the mask is sent only when written
                req.fwmask = need(get_u32(mask_s), "fwmask", mask_s)
                req.present |= bit(FRA_FWMASK)
        elif matches(tok, "realms"):
            v = a.next()
            req.realm = need(get_rt_realms_or_raw(v, t), "realms", v)
            req.present |= bit(FRA_FLOW)
        elif matches(tok, "protocol"):
            v = a.next()
            req.protocol = name_id(t.protos, v, "protocol")
            req.present |= bit(FRA_PROTOCOL)
        elif matches(tok, "tun_id"):
            v = a.next()
            req.tun_id = need(get_u64(v), "tun_id", v)
            req.present |= bit(FRA_TUN_ID)
        elif matches(tok, "table") or tok == "lookup":
            v = a.next()
            tid = table_id(t, v)
            if tid < 256:
                frh_table = tid
            else:  # ids >= 256 only fit in FRA_TABLE
                frh_table, fra_table = RT_TABLE_UNSPEC, tid
            table_ok = True
        elif matches(tok, "suppress_prefixlength") or tok == "sup_pl":
            v = a.next()
            pl = get_s32(v)
            if pl is None or pl < 0:
                raise invalid("suppress_prefixlength", v)
            req.suppress_prefixlen = pl
            req.present |= bit(FRA_SUPPRESS_PREFIXLEN)
        elif matches(tok, "suppress_ifgroup") or tok == "sup_group":
            v = a.next()
            try:
                req.suppress_ifgroup = t.group_id(v)
            except ValueError:
                raise invalid("suppress_ifgroup", v) from None
            req.present |= bit(FRA_SUPPRESS_IFGROUP)
        elif tok in ("dev", "iif"):
            v = a.next()
            if not check_ifname(v):
                raise invalid("iif", v)
            req.iifname = v
            req.present |= bit(FRA_IIFNAME)
        elif tok == "oif":
            v = a.next()
            if not check_ifname(v):
                raise invalid("oif", v)
            req.oifname = v
            req.present |= bit(FRA_OIFNAME)
        elif tok == "l3mdev":
            req.l3mdev = 1
            req.present |= bit(FRA_L3MDEV)
            table_ok = l3mdev_rule = True
        elif tok == "uidrange":
            v = a.next()
            got = scan_uint(v, 0)
            got2 = None
            if got is not None and got[1] < len(v) and v[got[1]] == "-":
                got2 = scan_uint(v, got[1] + 1)
            if got2 is None:
                raise invalid("uid range", v)
            req.uid_start, req.uid_end = got[0] & 0xFFFFFFFF, got2[0] & 0xFFFFFFFF
            req.present |= bit(FRA_UID_RANGE)
        elif tok == "nat" or matches(tok, "map-to"):
            raise unsupported(tok)  # route NAT is long gone
        elif tok == "ipproto":
            v = a.next()
            req.ip_proto = need(inet_proto_a2n(v), "ipproto", v)
            req.present |= bit(FRA_IP_PROTO)
        elif tok in ("sport", "dport"):
            start, end, mask = port_range(tok)
            setattr(req, f"{tok}_start", start)
            setattr(req, f"{tok}_end", end)
            req.present |= bit(FRA_SPORT_RANGE if tok == "sport" else FRA_DPORT_RANGE)
            if mask is not None and mask != 0xFFFF:  # all ones is not sent
                setattr(req, f"{tok}_mask", mask)
                req.present |= bit(FRA_SPORT_MASK if tok == "sport" else FRA_DPORT_MASK)
        elif tok == "dscp":  # newer than 6.1: iprule_dscp_parse
            v = a.next()
            dscp_s, slash, mask_s = v.partition("/")
            req.dscp = _dscp_a2n(t, dscp_s) & 0xFF  # addattr8
            req.present |= bit(FRA_DSCP)
            mask = need(get_u32(mask_s), "dscp mask", mask_s) if slash else _DSCP_MAX_MASK
            # the kernel stores 0x3f for a DSCP without mask; only another one is sent
            req.dscp_mask = mask & 0xFF
            if mask != _DSCP_MAX_MASK:
                req.present |= bit(FRA_DSCP_MASK)
        elif tok == "flowlabel":  # newer than 6.1: iprule_flowlabel_parse, both always sent
            v = a.next()
            label_s, slash, mask_s = v.partition("/")
            req.flowlabel = need(get_u32(label_s), "flowlabel", label_s)
            req.flowlabel_mask = need(get_u32(mask_s), "flowlabel mask", mask_s) if slash else _LABEL_MAX_MASK
            req.present |= bit(FRA_FLOWLABEL) | bit(FRA_FLOWLABEL_MASK)
        elif tok in _GENERIC:
            _parse_generic(_GENERIC[tok], a.next(), req)
        else:
            if tok == "type":
                tok = a.next()
            if matches(tok, "help"):
                raise ParseError(f'unknown keyword "{tok}"')
            if matches(tok, "goto"):
                v = a.next()
                req.goto_target = need(get_u32(v), "goto target", v)
                req.present |= bit(FRA_GOTO)
                action = FR_ACT_GOTO
            elif matches(tok, "nop"):
                action = FR_ACT_NOP
            else:
                action = rtntype_a2n(tok)
                if action is None:
                    raise ParseError(f'unknown keyword "{tok}"')
            req.action = action
            table_ok = True
        a.advance()

    if l3mdev_rule and tid != 0:
        raise ParseError("table can not be specified for l3mdev rules")
    if fam == AF_UNSPEC:
        fam = AF_INET
    req.family = fam
    if not table_ok and msg_type == RTM_NEWRULE:
        frh_table = RT_TABLE_MAIN
    req.table = fra_table if fra_table is not None else frh_table
    if fra_table is not None:
        req.present |= bit(FRA_TABLE)
    # ip leaves the rule family at its default (inet) even for IPv6 addresses:
    # the kernel then refuses the wrong-sized address attribute.  The request
    # dataclass cannot carry that size, so the refusal is produced here.
    want = 4 if fam == AF_INET else 16
    for key, text in (("from", "Invalid source address"), ("to", "Invalid dst address")):
        got = addr_family_seen.get(key)
        if got is not None and (4 if got == AF_INET else 16) != want:
            raise PolicyError(_errno.EINVAL, text)
    return Command([("rule", req)])


@dataclass
class _RuleFilter:
    """iprule.c's list/flush filter."""

    pref: int | None = None
    invert: bool = False
    src: Prefix | None = None
    dst: Prefix | None = None
    tos: int | None = None
    fwmark: int = 0
    fwmask: int = 0
    iif: str | None = None
    oif: str | None = None
    l3mdev: bool = False
    uidrange: tuple[int, int] | None = None
    ipproto: int = 0
    sport: tuple[int, int] = (0, 0)
    dport: tuple[int, int] = (0, 0)
    tun_id: int = 0
    tb: int = 0
    protocol: int = 0
    protocolmask: int = 0


def _prefix_match_rule(f: Prefix, fam: int, plen: int, addr: IPAddress | None) -> bool:
    if f.family != fam or f.bitlen > plen:
        return False
    if addr is None or not plen or f.family == AF_UNSPEC or f.bitlen <= 0:
        return True  # inet_addr_match_rta() without an attribute matches
    return inet_addr_match(addr_bits(addr), addr_bits(f.addr), f.bitlen)


def _rule_filter_match(r: RuleRequest, f: _RuleFilter) -> bool:
    if f.pref is not None and f.pref != r.priority:
        return False
    if f.invert and not r.flags & FIB_RULE_INVERT:
        return False
    if f.src is not None and not _prefix_match_rule(f.src, r.family, r.src_len, r.src):
        return False
    if f.dst is not None and not _prefix_match_rule(f.dst, r.family, r.dst_len, r.dst):
        return False
    if f.tos is not None and f.tos != r.tos:
        return False
    mark_dumped = r.fwmark
    mask_dumped = r.fwmask if (r.fwmark or r.fwmask) else 0
    if f.fwmark and f.fwmark != mark_dumped:
        return False
    if f.fwmask and f.fwmask != mask_dumped:
        return False
    if f.iif is not None and f.iif != r.iifname:
        return False
    if f.oif is not None and f.oif != r.oifname:
        return False
    if f.l3mdev and not r.l3mdev:
        return False
    if f.uidrange is not None and f.uidrange != (r.uid_start, r.uid_end):
        return False
    if f.ipproto and f.ipproto != r.ip_proto:
        return False
    if f.sport[0] and f.sport != (r.sport_start, r.sport_end):
        return False
    if f.dport[0] and f.dport != (r.dport_start, r.dport_end):
        return False
    if f.tun_id and f.tun_id != r.tun_id:
        return False
    if f.tb > 0 and f.tb != r.table:
        return False
    return not (f.protocol ^ r.protocol) & f.protocolmask


class RuleFlush(Command):
    """``ip rule flush [SELECTOR]``: every dumped rule of the family that
    matches and has a FRA_PRIORITY (pref != 0) is sent back as a delete."""

    def __init__(self, flt: _RuleFilter, family: int):
        super().__init__()
        self.filter = flt
        self.family = family

    def matching(self, policy) -> list[RuleRequest]:
        return [r for r in policy.rules(self.family) if r.priority != 0 and _rule_filter_match(r, self.filter)]

    def apply(self, policy) -> None:
        for r in self.matching(policy):
            d = copy.deepcopy(r)
            d.msg_type, d.nlmsg_flags = RTM_DELRULE, 0
            policy.rule(d)


def _rule_flush(a: Args, ctx: Context) -> Command:
    """The selector of ``ip rule flush`` (iprule.c:iprule_list_flush_or_save())."""
    t = ctx.tables
    af = ctx.family or AF_INET
    f = _RuleFilter()

    def ports(v: str) -> tuple[int, int]:
        got = scan_uint(v, 0)
        if got is None:
            raise invalid("port range", v)
        start = end = got[0] & 0xFFFF
        if got[1] < len(v) and v[got[1]] == "-":
            got2 = scan_uint(v, got[1] + 1)
            if got2 is not None:
                end = got2[0] & 0xFFFF
        return start, end, None

    while a.more():
        tok = a.cur
        if matches(tok, "preference") or matches(tok, "order") or matches(tok, "priority"):
            v = a.next()
            f.pref = need(get_u32(v), "preference", v)
        elif tok == "not":
            f.invert = True
        elif tok == "tos":
            f.tos = dsfield_id(t, a.next())
        elif tok == "fwmark":
            v = a.next()
            mark_s, slash, mask_s = v.partition("/")
            f.fwmark = need(get_u32(mark_s), "fwmark", mark_s)
            if slash:
                f.fwmask = need(get_u32(mask_s), "fwmask", mask_s)
        elif tok in ("dev", "iif"):
            v = a.next()
            if not check_ifname(v):
                raise invalid("iif", v)
            f.iif = v
        elif tok == "oif":
            v = a.next()
            if not check_ifname(v):
                raise invalid("oif", v)
            f.oif = v
        elif tok == "l3mdev":
            f.l3mdev = True
        elif tok == "uidrange":
            v = a.next()
            got = scan_uint(v, 0)
            got2 = None
            if got is not None and got[1] < len(v) and v[got[1]] == "-":
                got2 = scan_uint(v, got[1] + 1)
            if got2 is None:
                raise invalid("uid range", v)
            f.uidrange = (got[0] & 0xFFFFFFFF, got2[0] & 0xFFFFFFFF)
        elif matches(tok, "tun_id"):
            v = a.next()
            f.tun_id = need(get_u64(v), "tun_id", v)
        elif matches(tok, "lookup") or matches(tok, "table"):
            f.tb = table_id(t, a.next())
        elif matches(tok, "from") or matches(tok, "src"):
            f.src = get_prefix(a.next(), af)
        elif matches(tok, "protocol"):
            v = a.next()
            f.protocolmask = -1
            try:
                f.protocol = t.protos.id(v)
            except ValueError:
                if v != "all":
                    raise invalid("protocol", v) from None
                f.protocol, f.protocolmask = 0, 0
        elif tok == "ipproto":
            v = a.next()
            f.ipproto = need(inet_proto_a2n(v), "ipproto", v)
        elif tok == "sport":
            f.sport = ports(a.next())
        elif tok == "dport":
            f.dport = ports(a.next())
        else:
            if matches(tok, "dst") or matches(tok, "to"):
                tok = a.next()
            f.dst = get_prefix(tok, af)
        a.advance()
    return RuleFlush(f, af)


# ---------------------------------------------------------------------------
# the command table
# ---------------------------------------------------------------------------


def do_iprule(sub_word: str, a: Args, ctx: Context) -> Command:
    """iprule.c:do_iprule(): ``ip rule SUBCOMMAND ...``."""
    sub = first_match(sub_word, ("list", "lst", "show", "save", "restore", "add", "delete", "flush", "help"))
    if sub == "add":
        return _rule_modify(a, RTM_NEWRULE, ctx)
    if sub == "delete":
        return _rule_modify(a, RTM_DELRULE, ctx)
    if sub == "flush":
        return _rule_flush(a, ctx)
    raise no_change("rule", sub_word, sub)
