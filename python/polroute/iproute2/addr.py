"""``ip address add/change/replace/delete``, as iproute2 v6.1.0
ip/ipaddress.c parses them."""

from __future__ import annotations

import ipaddress
import socket

from polroute.iproute2.args import (
    PREFIXLEN_SPECIFIED,
    Args,
    Prefix,
    get_addr,
    get_prefix,
    get_prefix_1,
    invalid,
    matches,
    name_id,
    need,
    unsupported,
)
from polroute.iproute2.command import Command, Context, first_match, no_change
from polroute.iproute2.lexer import ParseError
from polroute.iproute2.rt_tables import get_u32
from polroute.types.requests import (
    AF_INET,
    AF_INET6,
    IFA_F_NOPREFIXROUTE,
    NLM_F_CREATE,
    NLM_F_EXCL,
    NLM_F_REPLACE,
    RT_SCOPE_HOST,
    RTM_DELADDR,
    RTM_NEWADDR,
    AddrRequest,
    IPAddress,
)

# ifaddr flags (ipaddress.c ifa_flag_data): name -> (mask, readonly, v6only)
_IFA_FLAGS = {
    "secondary": (0x01, True, False),
    "temporary": (0x01, True, False),
    "nodad": (0x02, False, True),
    "optimistic": (0x04, False, True),
    "dadfailed": (0x08, True, True),
    "home": (0x10, False, True),
    "deprecated": (0x20, True, True),
    "tentative": (0x40, True, True),
    "permanent": (0x80, True, True),
    "mngtmpaddr": (0x100, False, True),
    "noprefixroute": (IFA_F_NOPREFIXROUTE, False, False),
    "autojoin": (0x400, False, False),
    "stable-privacy": (0x800, True, True),
}
IFA_F_MCAUTOJOIN = 0x400


def _addr_modify(a: Args, msg_type: int, flags: int, ctx: Context) -> Command:
    """ipaddress.c:ipaddr_modify(): the arguments in ip's if-chain order, then
    the checks and defaults ip applies before sending (label, broadcast +/-,
    loopback scope, the IPv4 wildcard delete)."""
    t = ctx.tables
    fam = ctx.family
    warnings = []
    dev = label = None
    lcl: Prefix | None = None
    brd_len = 0
    broadcast = None
    scope = None
    metric = 0
    ifa_flags = 0
    while a.more():
        tok = a.cur
        if tok in ("peer", "remote", "anycast"):
            raise unsupported(tok)
        elif matches(tok, "broadcast") or tok == "brd":
            v = a.next()
            if brd_len:
                raise ParseError(f'duplicate "broadcast": "{v}"')
            if v == "+":
                brd_len = -1
            elif v == "-":
                brd_len = -2
            else:
                p = get_addr(v, fam)
                fam = fam or p.family
                broadcast = p.addr
                brd_len = p.bytelen
        elif tok == "scope":
            scope = name_id(t.scopes, a.next(), "scope")
        elif tok == "dev":
            dev = a.next()
        elif tok == "label":
            label = a.next()
        elif matches(tok, "metric") or matches(tok, "priority") or matches(tok, "preference"):
            v = a.next()
            metric = need(get_u32(v), "metric", v)
        elif matches(tok, "valid_lft") or matches(tok, "preferred_lft"):
            v = a.next()
            if v != "forever":
                raise unsupported(tok)  # lifetimes are not modelled
        elif tok in _IFA_FLAGS:
            mask, readonly, v6only = _IFA_FLAGS[tok]
            if readonly:
                warnings.append(f"Warning: {tok} option is not mutable from userspace")
            elif v6only and fam != AF_INET6:
                # judged on the family known so far, as ip does
                warnings.append(f"Warning: {tok} option can be set only for IPv6 addresses")
            else:
                ifa_flags |= mask
        else:
            if tok == "local":
                tok = a.next()
            if matches(tok, "help"):
                raise ParseError(f'unknown keyword "{tok}"')
            if lcl is not None:
                if get_prefix_1(tok, fam) is None:
                    raise ParseError(f'unknown keyword "{tok}"')
                raise ParseError(f'duplicate local address "{tok}"')
            lcl = get_prefix(tok, fam)
            fam = fam or lcl.family
        a.advance()
    if dev is None:
        raise ParseError('Not enough information: "dev" argument is required.')
    # is_valid_label(): the device name, alone or followed by ":..."
    if label is not None and not (label.startswith(dev) and label[len(dev) : len(dev) + 1] in ("", ":")):
        raise invalid("label", label)
    if lcl is None or lcl.addr is None:
        raise ParseError("missing local address")
    prefixlen = lcl.bitlen
    wildcard = msg_type == RTM_DELADDR and lcl.family == AF_INET and not lcl.flags & PREFIXLEN_SPECIFIED
    if wildcard:
        warnings.append(
            "Warning: Executing wildcard deletion to stay compatible with old scripts.\n"
            f"         Explicitly specify the prefix length ({_addr_text(lcl.addr)}/32)"
            " to avoid this warning.\n"
            "         This special behaviour is likely to disappear in further releases,\n"
            "         fix your scripts!"
        )
    if brd_len < 0 and msg_type != RTM_DELADDR:
        if fam != AF_INET:
            raise ParseError("Broadcast can be set only for IPv4 addresses")
        if prefixlen <= 30:
            host = (1 << (32 - prefixlen)) - 1
            value = int(lcl.addr)
            value = value | host if brd_len == -1 else value & ~host
            broadcast = ipaddress.IPv4Address(value)
    if scope is None:
        scope = 0
        if msg_type != RTM_DELADDR and lcl.family == AF_INET and lcl.addr.packed[0] == 127:
            scope = RT_SCOPE_HOST  # default_scope(): loopback addresses
    ifindex = ctx.ifindex(dev)
    if ifa_flags & IFA_F_MCAUTOJOIN and not lcl.addr.is_multicast:
        raise ParseError("autojoin needs multicast address")
    if wildcard:
        # without IFA_ADDRESS the kernel deletes the first address with this
        # local on the device whatever its prefix length
        for info in ctx.policy.addresses():
            if info.ifindex == ifindex and info.local == lcl.addr:
                prefixlen = info.prefixlen
                break
    fam = fam or AF_INET
    if fam != AF_INET:
        broadcast = None  # the kernel ignores IFA_BROADCAST for IPv6
    req = AddrRequest(
        msg_type,
        flags,
        fam,
        ifindex,
        lcl.addr,
        prefixlen,
        scope=scope,
        flags=ifa_flags,
        metric=metric,
        broadcast=broadcast,
    )
    return Command([("addr", req)], warnings)


def _addr_text(addr: IPAddress) -> str:
    if addr.version == 4:
        return str(addr)
    return socket.inet_ntop(socket.AF_INET6, addr.packed)


# ---- the command table

_ADDR_CMDS = (  # do_ipaddr() order: an abbreviation means the first that matches
    "add",
    "change",
    "replace",
    "delete",
    "list",
    "show",
    "lst",
    "flush",
    "save",
    "showdump",
    "restore",
    "help",
)
_ADDR_FLAGS = {"add": NLM_F_CREATE | NLM_F_EXCL, "change": NLM_F_REPLACE, "replace": NLM_F_CREATE | NLM_F_REPLACE}


def do_ipaddr(sub_word: str, a: Args, ctx: Context) -> Command:
    """ipaddress.c:do_ipaddr(): ``ip address SUBCOMMAND ...``."""
    sub = first_match(sub_word, _ADDR_CMDS)
    if sub_word == "chg":
        sub = "change"
    if sub in _ADDR_FLAGS:
        return _addr_modify(a, RTM_NEWADDR, _ADDR_FLAGS[sub], ctx)
    if sub == "delete":
        return _addr_modify(a, RTM_DELADDR, 0, ctx)
    if sub == "flush":
        raise unsupported("address flush")
    raise no_change("address", sub_word, sub)
