"""The argument vocabulary every ``ip`` object shares (iproute2 v6.1.0
lib/utils.c, lib/rt_names.c): matches(), the argv cursor with NEXT_ARG()'s
error, inet_prefix parsing (get_addr_1/get_prefix_1), route types, realms,
protocols, times, device names, and the "invalid ..." error texts.

The integer parsers (get_u32 and friends) and the name databases live in
:mod:`polroute.iproute2.rt_tables`.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

from polroute._core import fields
from polroute.iproute2.lexer import ParseError
from polroute.iproute2.rt_tables import RtTables, get_u8, get_u32, get_u64, get_unsigned_max, strtoul
from polroute.iproute2.show import PROTO_BY_NAME
from polroute.types.requests import (
    AF_INET,
    AF_INET6,
    RTN_ANYCAST,
    RTN_BLACKHOLE,
    RTN_BROADCAST,
    RTN_LOCAL,
    RTN_MULTICAST,
    RTN_NAT,
    RTN_PROHIBIT,
    RTN_THROW,
    RTN_UNICAST,
    RTN_UNREACHABLE,
    RTN_XRESOLVE,
    IPAddress,
    bit,
)

AF_UNSPEC = 0
PREFIXLEN_SPECIFIED = 1  # inet_prefix.flags: a /LEN was written (or "default")
IFNAMSIZ = 16


# ---------------------------------------------------------------------------
# argv: matches(), NEXT_ARG(), the error texts
# ---------------------------------------------------------------------------


def matches(arg: str, keyword: str) -> bool:
    """iproute2 matches(): arg is a non-empty prefix of keyword."""
    return bool(arg) and keyword.startswith(arg)


class Args:
    """A cursor over argv, with NEXT_ARG()'s "missing argument" error."""

    def __init__(self, words: list[str]):
        self.words = words
        self.i = 0

    def more(self) -> bool:
        return self.i < len(self.words)

    @property
    def cur(self) -> str:
        return self.words[self.i]

    def advance(self) -> None:
        self.i += 1

    def next(self) -> str:
        key = self.cur
        self.i += 1
        if self.i >= len(self.words):
            raise ParseError(f'missing argument after "{key}"')
        return self.words[self.i]

    def rest(self) -> list[str]:
        return self.words[self.i :]


def invalid(what: str, tok: str) -> ParseError:
    return ParseError(f'invalid {what} "{tok}"')


def need(value, what: str, tok: str):
    if value is None:
        raise invalid(what, tok)
    return value


def unsupported(tok: str) -> ParseError:
    return ParseError(f'unsupported keyword "{tok}" (not modelled)')


def _looks_like_word(tok: str) -> bool:
    return bool(tok) and tok[0].isalpha() and not any(c in tok for c in ":/.")


# ---------------------------------------------------------------------------
# addresses: lib/utils.c get_addr_1 / get_prefix_1
# ---------------------------------------------------------------------------


@dataclass
class Prefix:
    """inet_prefix: family may stay AF_UNSPEC for "default"/"all"."""

    family: int
    addr: IPAddress | None  # None when no bytes would be sent
    bytelen: int
    bitlen: int
    flags: int = 0


def zero_addr(family: int) -> IPAddress | None:
    if family == AF_INET:
        return ipaddress.IPv4Address(0)
    if family == AF_INET6:
        return ipaddress.IPv6Address(0)
    return None


def _ipv4_legacy(s: str) -> bytes | None:
    """get_addr_ipv4(): up to 4 strtoul(base 0) parts, "10.8" = 10.8.0.0."""
    parts = s.split(".")
    if len(parts) == 4 and all(
        p.isascii() and p.isdigit() and (p[0] != "0" or len(p) == 1) and len(p) <= 3 for p in parts
    ):
        values = [int(p) for p in parts]  # the common case: plain dotted decimal
        if max(values) <= 255:
            return bytes(values)
    out = bytearray(4)
    pos = 0
    for i in range(4):
        value, end, _ = strtoul(s, 0, pos)
        if value > 255 or end == pos:
            return None
        out[i] = value
        if end == len(s):
            return bytes(out)
        if i == 3 or s[end] != ".":
            return None
        pos = end + 1
    return bytes(out)


def get_addr_1(name: str, family: int) -> Prefix | None:
    if name == "default":
        return Prefix(family, zero_addr(family), {AF_INET: 4, AF_INET6: 16}.get(family, 0), -2, PREFIXLEN_SPECIFIED)
    if name in ("all", "any"):
        return Prefix(family, None, 0, -2)
    if ":" in name:
        if family not in (AF_UNSPEC, AF_INET6):
            return None
        try:
            packed = socket.inet_pton(socket.AF_INET6, name)
        except OSError:
            return None
        return Prefix(AF_INET6, ipaddress.IPv6Address(packed), 16, -1)
    if family not in (AF_UNSPEC, AF_INET):
        return None
    packed = _ipv4_legacy(name)
    if packed is None:
        return None
    return Prefix(AF_INET, ipaddress.IPv4Address(packed), 4, -1)


def _mask2bits(packed: bytes) -> int:
    mask = int.from_bytes(packed, "big")
    host = ~mask & 0xFFFFFFFF
    if host & (host + 1):
        return -1
    return bin(mask).count("1")


def get_prefix_1(arg: str, family: int) -> Prefix | None:
    base, slash, plen_s = arg.partition("/")
    p = get_addr_1(base, family)
    if p is None:
        return None
    bitlen = {AF_INET: 32, AF_INET6: 128}.get(p.family, 0)
    if slash:
        if p.bitlen == -2:
            return None
        plen = get_unsigned_max(plen_s, 0xFFFFFFFF)
        if plen is None:  # a dotted netmask also works
            m = get_addr_1(plen_s, AF_INET)
            if m is None or m.family != AF_INET or _mask2bits(m.addr.packed) < 0:
                return None
            plen = _mask2bits(m.addr.packed)
        if plen > bitlen:
            return None
        p.flags |= PREFIXLEN_SPECIFIED
        bitlen = plen
    elif p.bitlen == -2:
        bitlen = 0
    p.bitlen = bitlen
    return p


def get_prefix(arg: str, family: int) -> Prefix:
    p = get_prefix_1(arg, family)
    if p is None:
        if _looks_like_word(arg):
            raise ParseError(f'unknown keyword "{arg}"')
        raise invalid("prefix", arg)
    return p


def get_addr(arg: str, family: int) -> Prefix:
    p = get_addr_1(arg, family)
    if p is None:
        raise invalid("address", arg)
    return p


def read_family(name: str) -> int:
    return {"inet": AF_INET, "inet6": AF_INET6}.get(name, AF_UNSPEC)


# ---------------------------------------------------------------------------
# other value parsers: lib/rt_names.c, lib/utils.c
# ---------------------------------------------------------------------------


def rtntype_a2n(arg: str) -> int | None:
    """rtnl_rtntype_a2n (note: "u" is unreachable, "uni" unicast)."""
    if arg == "local":
        return RTN_LOCAL
    if arg == "nat":
        return RTN_NAT
    for word, value in (
        ("broadcast", RTN_BROADCAST),
        ("anycast", RTN_ANYCAST),
        ("multicast", RTN_MULTICAST),
        ("prohibit", RTN_PROHIBIT),
        ("unreachable", RTN_UNREACHABLE),
        ("blackhole", RTN_BLACKHOLE),
        ("xresolve", RTN_XRESOLVE),
        ("unicast", RTN_UNICAST),
    ):
        if matches(arg, word) or (word == "broadcast" and arg == "brd"):
            return value
    if arg == "throw":
        return RTN_THROW
    value, end, _ = strtoul(arg, 0)
    if end == 0 or end != len(arg) or value > 255:
        return None
    return value


def get_rt_realms_or_raw(arg: str, tables: RtTables) -> int | None:
    raw = get_u32(arg)
    if raw is not None:
        return raw
    realms = 0
    frm, slash, to = arg.partition("/")
    if slash:
        try:
            realms = tables.realms.id(frm) << 16
        except ValueError:
            return None
    else:
        to = arg
    if to:
        try:
            realms |= tables.realms.id(to)
        except ValueError:
            return None
    return realms


def inet_proto_a2n(arg: str) -> int | None:
    value = get_u8(arg, 10)
    if value is not None:
        return value
    return PROTO_BY_NAME.get(arg)


def get_time_rtt(arg: str) -> tuple[int, bool] | None:
    """get_time_rtt(): milliseconds (ceil) and whether the value was raw."""
    if "." in arg:
        i = 0
        while i < len(arg) and (arg[i].isdigit() or arg[i] in ".+-eE"):
            i += 1
        try:
            t = float(arg[:i])
        except ValueError:
            return None
        if t < 0:
            return None
    else:
        value, i, ovf = strtoul(arg, 0)
        if i == 0 or ovf:
            return None
        t = float(value)
    suffix = arg[i:]
    raw = not suffix
    if suffix:
        if suffix.lower() in ("s", "sec", "secs"):
            t *= 1000
        elif suffix.lower() not in ("ms", "msec", "msecs"):
            return None
    ms = int(t) & 0xFFFFFFFF
    if ms < t:
        ms += 1
    return ms, raw


def check_ifname(name: str) -> bool:
    return 0 < len(name) < IFNAMSIZ and not any(c == "/" or c.isspace() for c in name)


# ---------------------------------------------------------------------------
# names -> ids, with ip's "invalid ..." text
# ---------------------------------------------------------------------------


def dsfield_id(t: RtTables, v: str) -> int:
    try:
        return t.dsfield.id(v)  # names or hex (base 16!)
    except ValueError:
        raise invalid("tos", v) from None


def name_id(tab, v: str, what: str) -> int:
    try:
        return tab.id(v)
    except ValueError:
        raise invalid(what, v) from None


def table_id(t: RtTables, v: str) -> int:
    try:
        return t.id(v)
    except ValueError:
        raise invalid("table", v) from None


# ---------------------------------------------------------------------------
# address matching (the route and rule flush filters)
# ---------------------------------------------------------------------------


def addr_bits(addr: IPAddress | None, nbytes: int | None = None) -> int:
    """An address as a 128-bit big-endian integer (inet_prefix.data)."""
    raw = addr.packed if addr is not None else b""
    if nbytes is not None:
        raw = raw[:nbytes]
    return int.from_bytes(raw.ljust(16, b"\0"), "big")


def inet_addr_match(a: int, b: int, bits: int) -> bool:
    """lib/utils.c inet_addr_match() on addr_bits() values: the first ``bits`` agree."""
    if bits <= 0:
        return True
    shift = 128 - min(bits, 128)
    return (a >> shift) == (b >> shift)


# ---- values of table-described fields (csrc/fields.c rows)


def _row_number(s: str, what: str, limit: int) -> int:
    n = get_u64(s) if limit > 0xFFFFFFFF else get_u32(s)
    if n is None or n > limit:
        raise invalid(what, s)
    return n


def parse_row_value(row: fields.FieldRow, value: str, req, table: tuple[fields.FieldRow, ...]) -> None:
    """One value of a row of ``table`` (a number, a range ``N[-M]``, a value
    with its mask row as ``V/M``) into the request's members, with its
    present bit: the way iproute2 parses such numbers (get_u*, ``invalid
    KEYWORD``), so that a new row of these kinds needs no reader edit."""
    value_s, slash, mask_s = value.partition("/")
    limit = row.max or row.width_mask
    if row.kind in fields.RANGE_KINDS:
        lo_s, dash, hi_s = value_s.partition("-")
        lo = _row_number(lo_s, row.keyword, limit)
        hi = _row_number(hi_s, row.keyword, limit) if dash else lo
        if hi < lo:
            raise invalid(row.keyword, value)
        setattr(req, row.members[0], lo)
        setattr(req, row.members[1], hi)
    else:
        setattr(req, row.members[0], _row_number(value_s, row.keyword, limit))
    if row.present_bit >= 0:
        req.present |= bit(row.present_bit)
    if slash:
        mask_row = fields.mask_of(row, table)
        if mask_row is None:
            raise invalid(row.keyword, value)
        setattr(req, mask_row.members[0], _row_number(mask_s, f"{row.keyword} mask", mask_row.all_ones))
        if mask_row.present_bit >= 0:
            req.present |= bit(mask_row.present_bit)
