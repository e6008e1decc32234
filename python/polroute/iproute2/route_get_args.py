"""The arguments of ``ip route get`` (iproute2 v6.1.0 ip/iproute.c
iproute_get()): the RTM_GETROUTE question, names unresolved.  Asking it of a
Policy and printing the answer is :mod:`polroute.iproute2.route_get`."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from polroute.iproute2.args import (
    AF_UNSPEC,
    Args,
    Prefix,
    dsfield_id,
    get_prefix,
    inet_proto_a2n,
    matches,
    need,
    unsupported,
    zero_addr,
)
from polroute.iproute2.lexer import ParseError
from polroute.iproute2.rt_tables import RtTables, get_u16, get_unsigned_max
from polroute.types.requests import AF_INET, AF_INET6, IPAddress


@dataclass
class GetArgs:
    """The RTM_GETROUTE request ``ip route get`` builds (names unresolved).

    ``dst_len`` is what ip sends: 32/128 whatever was written (it warns and
    forces it); ``src_len`` is the ``from`` prefix length as written (the
    kernel's strict check refuses anything but 0 or the full length).
    ``mark`` 0 is not sent; ``ip_proto``/``uid``/ports are None when not given
    (the kernel then defaults IPv4 to UDP and the uid to the caller's).
    """

    family: int
    dst: IPAddress
    dst_len: int
    src: IPAddress | None = None
    src_len: int = 0
    iif: str | None = None
    oif: str | None = None
    tos: int = 0
    mark: int = 0
    uid: int | None = None
    ip_proto: int | None = None
    sport: int | None = None
    dport: int | None = None
    fibmatch: bool = False
    connected: bool = False
    notify: bool = False
    warnings: list[str] = field(default_factory=list)


def parse_route_get(tokens: list[str], tables: RtTables | None = None, family: int = AF_UNSPEC) -> GetArgs:
    """The arguments after ``ip [-4|-6] route get``; ValueError (ParseError)
    naming the token on error."""
    t = tables if tables is not None else RtTables()
    a = Args(list(tokens))
    fam = family
    dst: Prefix | None = None
    dst_len = 0
    src: Prefix | None = None
    out = GetArgs(AF_UNSPEC, ipaddress.IPv4Address(0), 0)
    while a.more():
        tok = a.cur
        if tok == "tos" or matches(tok, "dsfield"):
            out.tos = dsfield_id(t, a.next())
        elif matches(tok, "from"):
            v = a.next()
            if matches(v, "help"):
                raise ParseError(f'unknown keyword "{v}"')
            src = get_prefix(v, fam)
            fam = fam or src.family
            out.src_len = src.bitlen
        elif matches(tok, "iif"):
            out.iif = a.next()
        elif matches(tok, "mark"):
            v = a.next()
            out.mark = need(get_unsigned_max(v, 0xFFFFFFFF), "mark", v)
        elif matches(tok, "oif") or tok == "dev":
            out.oif = a.next()
        elif matches(tok, "notify"):
            out.notify = True
        elif matches(tok, "connected"):
            out.connected = True
        elif matches(tok, "vrf"):
            raise unsupported(tok)
        elif matches(tok, "uid"):
            v = a.next()
            out.uid = need(get_unsigned_max(v, 0xFFFFFFFF), "uid", v)
        elif matches(tok, "fibmatch"):
            out.fibmatch = True
        elif tok == "as":
            raise unsupported(tok)
        elif matches(tok, "sport"):
            v = a.next()
            out.sport = need(get_u16(v), "sport", v)
        elif matches(tok, "dport"):
            v = a.next()
            out.dport = need(get_u16(v), "dport", v)
        elif matches(tok, "ipproto"):
            v = a.next()
            out.ip_proto = need(inet_proto_a2n(v), "ipproto", v)
        else:
            if tok == "to":
                tok = a.next()
            if matches(tok, "help"):
                raise ParseError(f'unknown keyword "{tok}"')
            dst = get_prefix(tok, fam)
            fam = fam or dst.family
            full = {AF_INET: 32, AF_INET6: 128}.get(fam)
            if full is not None and dst.bitlen != full:
                out.warnings.append(
                    f"Warning: /{dst.bitlen} as prefix is invalid, only /{full} (or none) is supported."
                )
                dst_len = full
            else:
                dst_len = dst.bitlen
        a.advance()
    if dst is None:
        raise ParseError("need at least a destination address")
    fam = fam or AF_INET
    out.family = fam
    out.dst = dst.addr if dst.bytelen else zero_addr(fam)
    out.dst_len = dst_len
    if src is not None and src.bytelen:
        out.src = src.addr
    return out
