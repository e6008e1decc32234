"""``ip nexthop add|replace|delete|flush`` as iproute2 v6.1.0 ip/ipnexthop.c
parses them, and ``ip [-j] nexthop show`` as it prints them.

ipnh_modify() reads every keyword with strcmp (no abbreviations, except
``protocol``); ``dev`` makes an unspecified family inet, ``via`` takes the
gateway's family, ``blackhole`` makes it inet.  Delete sends the same
message shape (the kernel wants the id alone).  ``flush`` is ip's dump and
delete: groups first when flushing everything, then the rest.
"""

from __future__ import annotations

import json

from polroute.iproute2.args import AF_UNSPEC, Args, get_addr, matches, read_family, unsupported
from polroute.iproute2.command import Command, Context, first_match, no_change
from polroute.iproute2.lexer import ParseError
from polroute.iproute2.rt_tables import RtTables, get_unsigned_max
from polroute.types.infos import NexthopObjInfo
from polroute.types.requests import (
    AF_INET,
    AF_INET6,
    NEXTHOP_GRP_TYPE_MPATH,
    NEXTHOP_GRP_TYPE_RES,
    NHA_BLACKHOLE,
    NHA_FDB,
    NHA_GATEWAY,
    NHA_GROUP,
    NHA_GROUP_TYPE,
    NHA_ID,
    NHA_OIF,
    NHA_RES_GROUP,
    NLM_F_CREATE,
    NLM_F_EXCL,
    NLM_F_REPLACE,
    RTM_DELNEXTHOP,
    RTM_NEWNEXTHOP,
    RTNH_F_ONLINK,
    NexthopObjRequest,
    bit,
)

_COMMANDS = ("add", "replace", "delete", "list", "show", "lst", "get", "flush", "bucket", "help")


def _wrong(tok: str, what: str) -> ParseError:
    """invarg() (lib/utils.c): ``Error: argument "TOK" is wrong: WHAT``."""
    return ParseError(f'Error: argument "{tok}" is wrong: {what}')


def _ifindex(ctx: Context, name: str) -> int:
    """ll_name_to_index, with ipnh's own error."""
    try:
        return ctx.ifindex(name)
    except ParseError:
        raise _wrong(name, "Device does not exist") from None


def _parse_id(tok: str) -> int:
    v = get_unsigned_max(tok, 0xFFFFFFFF)
    if v is None:
        raise _wrong(tok, "invalid id value")
    return v


def _parse_group(tok: str) -> list[tuple[int, int]]:
    """add_nh_group_attr: ``ID[,WEIGHT]/...``."""
    if tok == "":
        raise _wrong(tok, '"group" value is invalid')
    out = []
    for part in tok.split("/"):
        nid, sep, w = part.partition(",")
        i = get_unsigned_max(nid, 0xFFFFFFFF)
        if i is None:
            raise _wrong(tok, '"group" value is invalid')
        weight = 1
        if sep:
            wv = get_unsigned_max(w, 0xFFFFFFFF)
            if wv is None or wv == 0 or wv > 256:
                raise _wrong(w, '"weight" is invalid')
            weight = wv
        out.append((i, weight))
    return out


def _modify(a: Args, msg_type: int, flags: int, ctx: Context) -> Command:
    req = NexthopObjRequest(msg_type, flags, family=ctx.family)
    nh_flags = 0
    while a.more():
        tok = a.cur
        if tok == "id":
            req.id = _parse_id(a.next())
            req.present |= bit(NHA_ID)
        elif tok == "dev":
            v = a.next()
            req.oif = _ifindex(ctx, v)
            req.present |= bit(NHA_OIF)
            if req.family == AF_UNSPEC:
                req.family = AF_INET
        elif tok == "via":
            v = a.next()
            fam = read_family(v)
            if fam == AF_UNSPEC:
                fam = req.family
            else:
                v = a.next()
            addr = get_addr(v, fam).addr
            afam = AF_INET if addr.version == 4 else AF_INET6
            if req.family == AF_UNSPEC:
                req.family = afam
            elif req.family != afam:
                raise _wrong(v, "address family mismatch")
            req.gateway = addr
            req.present |= bit(NHA_GATEWAY)
        elif tok == "encap":
            raise unsupported(tok)
        elif tok == "blackhole":
            req.present |= bit(NHA_BLACKHOLE)
            if req.family == AF_UNSPEC:
                req.family = AF_INET
        elif tok == "fdb":
            req.present |= bit(NHA_FDB)
        elif tok == "onlink":
            nh_flags |= RTNH_F_ONLINK
        elif tok == "group":
            req.group = _parse_group(a.next())
            req.present |= bit(NHA_GROUP)
        elif tok == "type":
            v = a.next()
            t = {"mpath": NEXTHOP_GRP_TYPE_MPATH, "resilient": NEXTHOP_GRP_TYPE_RES}.get(v)
            if t is None:
                raise _wrong(v, '"type" value is invalid')
            if t == NEXTHOP_GRP_TYPE_RES:
                # buckets / idle_timer / unbalanced_timer follow; the core
                # refuses resilient groups as not modelled
                req.present |= bit(NHA_RES_GROUP)
                while a.i + 1 < len(a.words) and a.words[a.i + 1] in ("buckets", "idle_timer", "unbalanced_timer"):
                    a.advance()
                    k = a.cur
                    val = a.next()
                    if k == "buckets":
                        b = get_unsigned_max(val, 0xFFFF)
                        if b is None:
                            raise _wrong(val, "invalid buckets value")
                        req.res_buckets = b
                    elif get_unsigned_max(val, 0xFFFFFFFF // 100 - 1) is None:
                        raise _wrong(val, f"invalid {k.replace('_', ' ')} value")
            req.group_type = t
            req.present |= bit(NHA_GROUP_TYPE)
        elif matches(tok, "protocol"):
            v = a.next()
            try:
                req.protocol = ctx.tables.protos.id(v)
            except ValueError:
                raise _wrong(v, '"protocol" value is invalid') from None
        elif tok == "help":
            raise ParseError("help: not a change")
        else:
            raise _wrong(tok, "")
        a.advance()
    req.flags = nh_flags
    return Command([("nexthop", req)])


class NexthopFlush(Command):
    """``ip nexthop flush [id N | dev D | groups | protocol P]``: a dump, then
    one delete per object shown (groups first when flushing everything)."""

    def __init__(self, ctx_family: int, ifindex: int = 0, groups: bool = False, proto: int | None = None):
        super().__init__()
        self.family, self.ifindex, self.groups, self.proto = ctx_family, ifindex, groups, proto
        self.all = not ifindex and not groups and proto is None

    def _selected(self, o: NexthopObjInfo, groups_only: bool) -> bool:
        if groups_only and o.group is None:
            return False
        if self.proto is not None and o.protocol != self.proto:
            return False
        if not self.ifindex and not self.family:
            return True
        if o.group is not None:
            return False  # nh_dump_filtered: a device or family filter skips groups
        if self.family and o.family != self.family:
            return False
        return not self.ifindex or o.ifindex == self.ifindex

    def apply(self, policy) -> None:
        passes = (True, False) if self.all else (self.groups,)
        for groups_only in passes:
            for o in policy.nexthops():
                if not self._selected(o, groups_only):
                    continue
                if not any(x.id == o.id for x in policy.nexthops()):
                    continue  # went with an earlier one
                policy.nexthop(NexthopObjRequest(RTM_DELNEXTHOP, 0, present=bit(NHA_ID), id=o.id))


def _flush(a: Args, ctx: Context) -> Command:
    ifindex, groups, proto, the_id = 0, False, None, None
    while a.more():
        tok = a.cur
        if matches(tok, "dev"):
            ifindex = _ifindex(ctx, a.next())
        elif matches(tok, "groups"):
            groups = True
        elif tok == "id":
            the_id = _parse_id(a.next())
            break
        elif matches(tok, "protocol"):
            v = a.next()
            proto = get_unsigned_max(v, 0xFFFFFFFF)
            if proto is None:
                raise _wrong(v, "invalid protocol value")
        elif matches(tok, "master") or matches(tok, "vrf") or matches(tok, "fdb"):
            raise unsupported(tok)
        else:
            raise _wrong(tok, "")
        a.advance()
    if the_id is not None:
        return Command([("nexthop", NexthopObjRequest(RTM_DELNEXTHOP, 0, present=bit(NHA_ID), id=the_id))])
    return NexthopFlush(ctx.family, ifindex, groups, proto)


def do_ipnh(sub_word: str, a: Args, ctx: Context) -> Command:
    sub = first_match(sub_word, _COMMANDS)
    if sub == "add":
        return _modify(a, RTM_NEWNEXTHOP, NLM_F_CREATE | NLM_F_EXCL, ctx)
    if sub == "replace":
        return _modify(a, RTM_NEWNEXTHOP, NLM_F_CREATE | NLM_F_REPLACE, ctx)
    if sub == "delete":
        return _modify(a, RTM_DELNEXTHOP, 0, ctx)
    if sub == "flush":
        return _flush(a, ctx)
    raise no_change("nexthop", sub_word, sub)


# ---- printing: ip nexthop show (print_nexthop / __print_nexthop_entry)


def _selected_for_show(o: NexthopObjInfo, family: int) -> bool:
    return not family or (o.group is None and o.family == family)


def format_nexthop(o: NexthopObjInfo, ifname, tables: RtTables) -> str:
    """One line as ``ip nexthop show`` prints it (with ip's trailing space)."""
    out = [f"id {o.id} "]
    if o.group is not None:
        members = "/".join(f"{i}" + (f",{w}" if w != 1 else "") for i, w in o.group)
        out.append(f"group {members} ")
        if o.group_type != NEXTHOP_GRP_TYPE_MPATH:
            out.append("type resilient ")
    if o.gateway is not None:
        out.append(f"via {o.gateway} ")
    if o.ifindex:
        out.append(f"dev {ifname(o.ifindex)} ")
    if o.scope:
        out.append(f"scope {tables.scopes.name(o.scope)} ")
    if o.blackhole:
        out.append("blackhole ")
    if o.protocol:
        out.append(f"proto {tables.protos.name(o.protocol)} ")
    if o.flags & RTNH_F_ONLINK:
        out.append("onlink ")
    return "".join(out)


def nexthop_json(o: NexthopObjInfo, ifname, tables: RtTables) -> dict:
    """One object as ``ip -j nexthop show`` prints it."""
    d: dict = {"id": o.id}
    if o.group is not None:
        d["group"] = [{"id": i, **({"weight": w} if w != 1 else {})} for i, w in o.group]
        if o.group_type != NEXTHOP_GRP_TYPE_MPATH:
            d["type"] = "resilient"
    if o.gateway is not None:
        d["gateway"] = str(o.gateway)
    if o.ifindex:
        d["dev"] = ifname(o.ifindex)
    if o.scope:
        d["scope"] = tables.scopes.name(o.scope)
    if o.blackhole:
        d["blackhole"] = None
    if o.protocol:
        d["protocol"] = tables.protos.name(o.protocol)
    d["flags"] = ["onlink"] if o.flags & RTNH_F_ONLINK else []
    return d


def show_nexthops(policy, family: int = AF_UNSPEC, as_json: bool = False, tables: RtTables | None = None) -> str:
    """``ip [-4|-6] [-j] nexthop show``: the text ip prints (JSON on one line)."""
    t = tables if tables is not None else RtTables()
    objs = [o for o in policy.nexthops() if _selected_for_show(o, family)]
    if as_json:
        return json.dumps([nexthop_json(o, policy.ifname, t) for o in objs], separators=(",", ":")) + "\n"
    return "".join(format_nexthop(o, policy.ifname, t) + "\n" for o in objs)
