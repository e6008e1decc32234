"""The C field tables (csrc/fields.c), read through the cffi API, against
the Python side's own lists of rule selectors.

The tables are the one description of each rule selector and route
attribute; the Python consumers read them (``polroute._core.fields``): the
``ip`` reader, ``kernel_keys.rule_key``, ``show.format_rule``,
``lines.rule_line``, the dump decoder and its ``_RULE_UNSUPPORTED`` map; on
the route side the reader (``iproute2/route.py``), ``show.format_route`` and
``lines.route_line``.
Each check below is generic over the rows, so a row none of them handles
fails here.
"""

from __future__ import annotations

import dataclasses
import ipaddress

import pytest

from polroute import Policy
from polroute._core import fields
from polroute._polroute_cffi import ffi, lib
from polroute.iproute2 import show
from polroute.iproute2.batch import apply_batch, parse_command
from polroute.iproute2.lexer import ParseError, split_args
from polroute.live import dump as kernel_dump
from polroute.live import keys as kernel_keys
from polroute.live.lines import _Names, rule_line
from polroute.live.netlink import encoded_messages
from polroute.types import requests as rq
from polroute.types.requests import RuleRequest


@dataclasses.dataclass(frozen=True)
class Row:
    index: int
    name: str
    keyword: str
    aliases: tuple
    syntax: str
    print: str
    example: str
    nla_name: str
    nla_type: int
    present_bit: int
    offset: int
    size: int
    aux_offset: int
    aux_size: int
    link: int
    flag: int
    max: int
    kind: int
    role: int
    index_key: int
    print_fmt: int
    families: int
    flags: int


def _text(a) -> str:
    return ffi.string(a).decode()


def _rows(count, get) -> list:
    out = []
    f = ffi.new("pr_field_info *")
    for i in range(count()):
        assert get(i, f) == 0
        out.append(
            Row(
                i,
                _text(f.name),
                _text(f.keyword),
                tuple(a for a in _text(f.aliases).split(",") if a),
                _text(f.syntax),
                _text(f.print),
                _text(f.example),
                _text(f.nla_name),
                f.nla_type,
                f.present_bit,
                f.offset,
                f.size,
                f.aux_offset,
                f.aux_size,
                f.link,
                f.flag,
                f.max,
                f.kind,
                f.role,
                f.index_key,
                f.print_fmt,
                f.families,
                f.flags,
            )
        )
    assert get(count(), f) == -2
    return out


RULE_ROWS = _rows(lib.pr_rule_field_count, lib.pr_rule_field_get)
ROUTE_ROWS = _rows(lib.pr_route_field_count, lib.pr_route_field_get)
SELECTORS = [r for r in RULE_ROWS if r.role == lib.PR_FROLE_SELECTOR]


def _members(ctype: str) -> dict:
    """C member name -> (offset, size), by cffi's own reading of the struct."""
    return {name: (f.offset, ffi.sizeof(f.type)) for name, f in ffi.typeof(ctype).fields}


def _members_of(row: Row, ctype: str, aux: bool = False) -> list:
    """The C members a row's bytes (or its aux bytes) are."""
    off, size = (row.aux_offset, row.aux_size) if aux else (row.offset, row.size)
    return [m for m, (o, s) in _members(ctype).items() if off <= o and o + s <= off + size]


@pytest.mark.parametrize("ctype, rows", [("pr_rule_req", RULE_ROWS), ("pr_route_req", ROUTE_ROWS)])
def test_every_struct_member_has_a_row(ctype, rows):
    """cffi sees every member, padding aside: each is some row's field or aux."""
    for name, (off, size) in _members(ctype).items():
        owners = [
            r.name
            for r in rows
            if r.offset <= off
            and off + size <= r.offset + r.size
            or r.aux_size
            and r.aux_offset <= off
            and off + size <= r.aux_offset + r.aux_size
        ]
        assert owners, f"{ctype}.{name} has no row in csrc/fields.c"


def test_attribute_numbers_match_the_python_constants():
    for r in RULE_ROWS + ROUTE_ROWS:
        if r.nla_type < 0:
            assert r.present_bit == -1 and not r.nla_name.startswith(("FRA_", "RTA_")), r
            continue
        assert getattr(rq, r.nla_name) == r.nla_type, r.name
        assert getattr(lib, "PR_" + r.nla_name) == r.nla_type, r.name
        assert r.present_bit == r.nla_type, r.name


def test_rule_request_mirrors_every_rule_member():
    fields = {f.name for f in dataclasses.fields(RuleRequest)}
    assert set(_members("pr_rule_req")) <= fields


def test_index_allow_list():
    """The selectors the rule index keys (csrc/rule_index.c); every other one
    sends its rules to the linear path."""
    keyed = {r.name: r.index_key for r in SELECTORS if r.index_key != lib.PR_IK_NONE}
    assert keyed == {
        "tos": lib.PR_IK_EXACT,
        "dport": lib.PR_IK_SINGLE,
        "fwmark": lib.PR_IK_MASKED,
        "fwmask": lib.PR_IK_MASKED,
        "from": lib.PR_IK_PREFIX,
        "to": lib.PR_IK_PREFIX,
        "iif": lib.PR_IK_IFINDEX,
        "oif": lib.PR_IK_IFINDEX,
    }
    assert all(r.index_key == lib.PR_IK_IGNORED for r in RULE_ROWS if r.role != lib.PR_FROLE_SELECTOR)
    assert all(r.index_key == lib.PR_IK_IGNORED for r in ROUTE_ROWS)


# ---- the ip reader -------------------------------------------------------------


def _rule_line(row: Row, word: str) -> str:
    fam = "-6 " if not row.families & lib.PR_FAM_IPV4 else ""
    return f"{fam}rule add {word} {row.example}".rstrip()


def _read_rule(line: str) -> RuleRequest:
    cmd = parse_command(split_args(line), Policy())
    assert len(cmd.requests) == 1
    return cmd.requests[0][1]


def _unread(rows) -> list:
    """(line, why) for each keyword / alias the reader refuses or reads
    without setting the row's field."""
    bad = []
    for row in rows:
        for word in (row.keyword,) + row.aliases:
            line = _rule_line(row, word)
            try:
                req = _read_rule(line)
            except (ParseError, ValueError) as e:
                bad.append((line, str(e)))
                continue
            members = _members_of(row, "pr_rule_req")
            base = RuleRequest(req.msg_type, req.nlmsg_flags)
            if row.kind == lib.PR_FK_FLAG:
                changed = getattr(req, members[0]) & row.flag
            else:
                changed = any(getattr(req, m) != getattr(base, m) for m in members)
            if not changed:
                bad.append((line, f"sets none of {members}"))
    return bad


_KEYWORD_ROWS = [r for r in RULE_ROWS if r.keyword]


def test_reader_takes_every_iproute2_61_rule_keyword():
    rows = [r for r in _KEYWORD_ROWS if not r.flags & lib.PR_FF_NEW_KEYWORD]
    assert len(rows) > 15
    assert _unread(rows) == []


def test_reader_takes_the_newer_rule_keywords():
    rows = [r for r in _KEYWORD_ROWS if r.flags & lib.PR_FF_NEW_KEYWORD]
    assert rows
    assert _unread(rows) == []


# ---- rule_key, format_rule, _RULE_UNSUPPORTED ----------------------------------------


def _neutral(member: str):
    return getattr(RuleRequest(rq.RTM_NEWRULE, 0), member)


def _with_row(req: RuleRequest, row: Row) -> RuleRequest:
    """req with row's field(s) set to a value other than a rule without it
    has (generic over the row's kind, from the table alone)."""
    req = dataclasses.replace(req)
    if not row.families & lib.PR_FAM_IPV4:
        req.family = rq.AF_INET6
    if row.kind == lib.PR_FK_MASK:  # a mask shows with its value
        req = _with_row(req, RULE_ROWS[row.link])
    members = _members_of(row, "pr_rule_req")
    if row.kind == lib.PR_FK_ADDR:
        (member,) = members
        (length,) = _members_of(row, "pr_rule_req", aux=True)
        setattr(req, member, ipaddress.ip_address("10.1.0.0" if req.family == rq.AF_INET else "2001:db8::"))
        setattr(req, length, 16 if req.family == rq.AF_INET else 32)
    elif row.kind == lib.PR_FK_IFNAME:
        setattr(req, members[0], "eth0")
    elif row.kind == lib.PR_FK_FLAG:
        setattr(req, members[0], getattr(req, members[0]) | row.flag)
    elif row.kind == lib.PR_FK_MASK:
        setattr(req, members[0], 0x3 if row.max else 0xFFF0)
    elif row.kind in (lib.PR_FK_RANGE16, lib.PR_FK_RANGE32):
        start, end = members
        setattr(req, start, 16)
        setattr(req, end, 16 if row.link >= 0 else 20)  # one value when a mask may follow
    else:
        for m in members:
            setattr(req, m, 4 if _neutral(m) in (0, -1) else 0)
    req.present |= 1 << row.present_bit if row.present_bit >= 0 else 0
    return req


def _missing(rows, seen) -> list:
    """Rows whose field, set alone, leaves `seen(request)` unchanged."""
    out = []
    for row in rows:
        base = RuleRequest(rq.RTM_NEWRULE, 0, action=rq.FR_ACT_GOTO, table=100)
        if not row.families & lib.PR_FAM_IPV4:
            base.family = rq.AF_INET6
        if row.kind == lib.PR_FK_MASK:
            base = _with_row(base, RULE_ROWS[row.link])
        if seen(base) == seen(_with_row(base, row)):
            out.append(row.name)
    return out


_DESCRIBED = [r for r in RULE_ROWS if r.role != lib.PR_FROLE_META]


def test_rule_key_sees_every_rule_field():
    assert _missing(_DESCRIBED, kernel_keys.rule_key) == []


def test_format_rule_prints_every_rule_field():
    printed = [r for r in _DESCRIBED if r.print_fmt != lib.PR_PF_NONE]
    assert _missing(printed, show.format_rule) == []


def test_rule_line_writes_every_rule_field():
    """live/lines.rule_line (snapshots, plans): every row (_missing's base is
    a goto rule, which writes no table: the table is checked on a lookup)."""
    names = _Names({0}, {0})
    line = lambda r: rule_line(r, "add", names)  # noqa: E731
    assert _missing(_DESCRIBED, line) == ["table"]
    lookup = RuleRequest(rq.RTM_NEWRULE, 0, action=rq.FR_ACT_TO_TBL, table=100)
    assert line(lookup) != line(dataclasses.replace(lookup, table=101))


def test_python_rule_tables_are_the_c_table():
    """The Python records (polroute._core.fields) are the rows cffi reads."""
    assert [r.name for r in fields.RULE_FIELDS] == [r.name for r in RULE_ROWS]
    assert [r.name for r in fields.ROUTE_FIELDS] == [r.name for r in ROUTE_ROWS]
    for py, c in zip(fields.RULE_FIELDS, RULE_ROWS, strict=True):
        assert py.members == tuple(_members_of(c, "pr_rule_req")), c.name
        assert (py.nla_type, py.kind, py.role, py.link, py.flags) == (c.nla_type, c.kind, c.role, c.link, c.flags)


def test_dump_decoder_reads_every_rule_member():
    assert set(kernel_dump._RULE_MEMBERS) == set(_members("pr_rule_req"))


@pytest.mark.parametrize("row", [r for r in _DESCRIBED if r.nla_type >= 0], ids=lambda r: r.name)
def test_every_rule_attribute_survives_encode_and_decode(row):
    """The C encoder (live/netlink) writes the row's attribute and the dump
    decoder (csrc/nl_dump.c + live/dump.py) reads it back: same key."""
    base = RuleRequest(rq.RTM_NEWRULE, 0, action=rq.FR_ACT_GOTO, table=100)
    if not row.families & lib.PR_FAM_IPV4:
        base.family = rq.AF_INET6
    req = _with_row(base, row)
    if row.kind == lib.PR_FK_MASK or row.link >= 0:  # value and mask travel together
        req.present |= 1 << RULE_ROWS[row.link].present_bit
    (msg,) = encoded_messages([req])
    (got,) = kernel_dump.decode_messages(msg)["rules"]
    assert kernel_keys.rule_key(got) == kernel_keys.rule_key(req)


def test_rule_unsupported_maps_are_the_newer_keyword_rows():
    """The one map (live/dump.py) names the attributes iproute2 6.1 has no
    keyword for: the rows flagged PR_FF_NEW_KEYWORD."""
    newer = {r.nla_type for r in RULE_ROWS if r.flags & lib.PR_FF_NEW_KEYWORD}
    assert set(kernel_dump._RULE_UNSUPPORTED) == newer


# ---- route rows ------------------------------------------------------------------


def _route_line(row: Row) -> str:
    fam = "-6 " if not row.families & lib.PR_FAM_IPV4 else ""
    if row.keyword == "to":
        return f"{fam}route add to {row.example} dev eth0"
    if row.name in ("type",):
        return f"{fam}route add {row.example} 10.9.0.0/16"
    prefix = "2001:db8::/32" if fam else "10.0.0.0/8"
    if row.keyword in ("dev", "nhid", "nexthop"):
        return f"{fam}route add {prefix} {row.keyword} {row.example}"
    word = row.keyword if row.keyword else ""
    return f"{fam}route add {prefix} dev eth0 {word} {row.example}"


def test_reader_takes_every_route_keyword():
    pol = Policy()
    apply_batch(pol, "link add eth0 type veth peer name sw0\nlink set eth0 up\n", "host.ip")
    bad = []
    for row in ROUTE_ROWS:
        if row.role == lib.PR_FROLE_META:
            continue
        for line in [_route_line(row)] + [
            _route_line(dataclasses.replace(row, keyword=a)) for a in row.aliases if row.keyword
        ]:
            try:
                cmd = parse_command(split_args(line), pol)
            except (ParseError, ValueError) as e:
                bad.append((line, str(e)))
                continue
            assert len(cmd.requests) == 1, line
    assert bad == []


def test_a_new_selector_needs_no_reader_edit():
    """A selector row the reader has no case of its own for is parsed by its
    kind (the generic path of iproute2/rule.py), rows made up here from real
    ones: a number, a range and a value with its mask row."""
    import dataclasses

    from polroute._core import fields
    from polroute.iproute2 import rule as rule_mod
    from polroute.iproute2.lexer import ParseError

    by_name = {r.name: r for r in fields.RULE_FIELDS}
    num = dataclasses.replace(by_name["ipproto"], keyword="newsel")
    rng = dataclasses.replace(by_name["sport"], keyword="newrange")
    masked = dataclasses.replace(by_name["fwmark"], keyword="newmark")
    req = RuleRequest(32, 0)
    rule_mod._parse_generic(num, "46", req)
    rule_mod._parse_generic(rng, "10-20", req)
    rule_mod._parse_generic(masked, "0x10/0xff", req)
    assert (req.ip_proto, req.sport_start, req.sport_end, req.fwmark, req.fwmask) == (46, 10, 20, 0x10, 0xFF)
    for row in (num, rng, masked):
        assert req.present & (1 << row.present_bit)
    with pytest.raises(ParseError, match='invalid "newsel"|newsel'):
        rule_mod._parse_generic(num, "300", RuleRequest(32, 0))  # past a u8
    with pytest.raises(ParseError):
        rule_mod._parse_generic(rng, "20-10", RuleRequest(32, 0))
    with pytest.raises(ParseError):
        rule_mod._parse_generic(num, "1/2", RuleRequest(32, 0))  # no mask row
    # the rows this reader parses by hand are not generic; every other NEW_KEYWORD selector row is
    hand = {"dscp", "flowlabel", "sport", "dport"}
    newer = {
        r.keyword for r in fields.RULE_FIELDS if r.flags & fields.FF_NEW_KEYWORD and r.role == fields.ROLE_SELECTOR
    }
    assert set(rule_mod._GENERIC) | hand >= {k for k in newer if k}


# ---- route rows: the reader, format_route and route_line read ROUTE_FIELDS ---------

_ROUTE_DESCRIBED = [r for r in ROUTE_ROWS if r.role != lib.PR_FROLE_META]


def _route_lines(row: Row, word: str) -> tuple[str, str]:
    """(a line with the row's word and example value, the same line without)."""
    fam = "-6 " if not row.families & lib.PR_FAM_IPV4 else ""
    prefix = "2001:db8::/32" if fam else "10.0.0.0/8"
    if word == "to":
        return f"{fam}route add to {row.example} dev eth0", f"{fam}route add default dev eth0"
    if not word:  # the route type, the metrics: the example is the words
        return f"{fam}route add {row.example} {prefix} dev eth0", f"{fam}route add {prefix} dev eth0"
    if word in ("dev", "oif", "nhid", "nexthop", "via"):
        return f"{fam}route add {prefix} {word} {row.example}", f"{fam}route add {prefix}"
    # with a gateway, so that no example is the default the line gets anyway (scope link)
    gw = "via 2001:db8::1" if fam else "via 10.0.0.1"
    return f"{fam}route add {prefix} {gw} dev eth0 {word} {row.example}", f"{fam}route add {prefix} {gw} dev eth0"


def _route_row_bytes(line: str, pol: Policy, row: Row) -> bytes:
    """The bytes of the row's field (and aux field) in the pr_route_req the reader's request packs into."""
    from polroute._core.codec import route_to_c

    cmd = parse_command(split_args(line), pol)
    assert len(cmd.requests) == 1, line
    c, _keep = route_to_c(cmd.requests[0][1])
    raw = bytes(ffi.buffer(c))
    return raw[row.offset : row.offset + row.size] + raw[row.aux_offset : row.aux_offset + row.aux_size]


def test_reader_sets_every_route_row():
    """Each route row's keyword (and aliases) with its example value changes
    the row's bytes in the packed request."""
    pol = Policy()
    apply_batch(pol, "link add eth0 type veth peer name sw0\nlink set eth0 up\n", "host.ip")
    bad = []
    for row in _ROUTE_DESCRIBED:
        for word in (row.keyword, *row.aliases) if row.keyword else ("",):
            with_row, without = _route_lines(row, word)
            try:
                if _route_row_bytes(with_row, pol, row) == _route_row_bytes(without, pol, row):
                    bad.append((with_row, "sets nothing of the row"))
            except (ParseError, ValueError) as e:
                bad.append((with_row, str(e)))
    assert bad == []


_ROUTE_ATTRS = {"gw": "gateway"}  # RouteRequest's name where it is not the C member's


def _with_route_row(req: rq.RouteRequest, row: Row) -> rq.RouteRequest:
    """req with the row's field set to a value a route without it does not
    have (generic over the row's kind)."""
    req = dataclasses.replace(req, nexthops=list(req.nexthops), metrics=dict(req.metrics))
    v6 = req.family == rq.AF_INET6
    members = [_ROUTE_ATTRS.get(m, m) for m in _members_of(row, "pr_route_req")]
    if row.kind == lib.PR_FK_ADDR:
        setattr(req, members[0], ipaddress.ip_address("2001:db8::" if v6 else "10.1.0.0"))
        if row.aux_size:  # the prefix length
            setattr(req, _members_of(row, "pr_route_req", aux=True)[0], 32 if v6 else 16)
    elif row.kind == lib.PR_FK_FAMILY:  # RTA_VIA: a gateway of the other family
        req.gateway = ipaddress.ip_address("10.0.0.1" if v6 else "fe80::1")
    elif row.kind == lib.PR_FK_IFINDEX:
        setattr(req, members[0], 4)
    elif row.kind == lib.PR_FK_FLAG:
        req.rtm_flags |= row.flag
    elif row.kind == lib.PR_FK_MULTIPATH:
        req.nexthops = [rq.NexthopRequest(None, 4, 2), rq.NexthopRequest(None, 5, 1)]
    elif row.kind == lib.PR_FK_METRICS:
        req.metrics = {2: 1400}  # RTAX_MTU
    else:
        for m in members:
            setattr(req, m, 4 if getattr(rq.RouteRequest(0, 0), m) == 1 else 1)
    req.present |= 1 << row.present_bit if row.present_bit >= 0 else 0
    return req


def _route_missing(seen) -> list:
    """Route rows whose field, set alone, leaves `seen(route)` unchanged."""
    out = []
    for row in _ROUTE_DESCRIBED:
        fam = rq.AF_INET6 if not row.families & lib.PR_FAM_IPV4 else rq.AF_INET
        gw = ipaddress.ip_address("2001:db8::9" if fam == rq.AF_INET6 else "10.0.0.9")  # (scope: universe)
        base = rq.RouteRequest(rq.RTM_NEWROUTE, 0, family=fam, protocol=rq.RTPROT_STATIC, oif=2, priority=5, gateway=gw)
        if seen(base) == seen(_with_route_row(base, row)):
            out.append(row.name)
    return out


def test_format_route_prints_every_route_row():
    """show.format_route: every row but RTA_PREF, which it prints as the
    "pref medium" an IPv6 dump of a route added without `pref` carries."""
    assert _route_missing(lambda r: show.format_route(r, table_filter="all")) == ["pref"]


def test_route_line_writes_every_route_row():
    """live/lines.route_line: every row but nhid (a route on a nexthop
    object, which the dump marks unsupported)."""
    from polroute.live.lines import route_line

    names = _Names({0}, {0})
    assert _route_missing(lambda r: route_line(r, "add", str, names)) == ["nhid"]


def test_a_new_plain_route_attribute_needs_no_python_edit(monkeypatch):
    """A plain route row none of the three has a case of its own for (made
    up here from a real one) is read, printed and written by its row."""
    from polroute.iproute2 import route as route_mod
    from polroute.live import lines

    row = dataclasses.replace(fields.ROUTE_BY_NAME["nhid"], name="newattr", keyword="newattr")
    monkeypatch.setitem(route_mod._GENERIC, "newattr", row)
    monkeypatch.setattr(show, "_LATER_ROUTE_ROWS", (row,))
    monkeypatch.setattr(lines, "_LATER_ROUTE_ROWS", ((row, None),))
    pol = Policy()
    apply_batch(pol, "link add eth0 type veth peer name sw0\n", "host.ip")
    req = parse_command(split_args("route add 10.0.0.0/8 dev eth0 newattr 0x2a"), pol).requests[0][1]
    assert (req.nh_id, req.present >> row.present_bit & 1) == (42, 1)
    with pytest.raises(ParseError, match='invalid "newattr"|newattr'):
        parse_command(split_args("route add 10.0.0.0/8 dev eth0 newattr 4294967296"), pol)
    assert "newattr 42 " in show.format_route(req)
    assert lines.route_line(req, "add", str, _Names({0}, {0})).endswith(" newattr 42")
