"""``ip link add/set/delete``: the part of iproute2 v6.1.0 ip/iplink.c (and
ip/link_veth.c for ``type veth peer``) that the model knows."""

from __future__ import annotations

from polroute.iproute2.args import Args, check_ifname, invalid, matches, unsupported
from polroute.iproute2.command import Command, Context, first_match, no_change
from polroute.iproute2.lexer import ParseError
from polroute.iproute2.rt_tables import RtTables
from polroute.types.requests import LinkRequest


def _link_args(a: Args, tables: RtTables, allow_type: bool) -> dict:
    """The part of iplink_parse() the model knows: name/dev, up/down, group,
    and (for add) ``type KIND [peer [name] PEER]``."""
    out = {"dev": None, "name": None, "up": None, "group": None, "kind": "", "peer": None}
    while a.more():
        tok = a.cur
        if tok == "up":
            out["up"] = True
        elif tok == "down":
            out["up"] = False
        elif tok == "name":
            v = a.next()
            if out["name"] is not None:
                raise ParseError(f'duplicate "name": "{v}"')
            if not check_ifname(v):
                raise invalid('"name"', v)
            out["name"] = v
        elif matches(tok, "group"):
            v = a.next()
            try:
                out["group"] = tables.group_id(v)
            except ValueError:
                raise invalid('"group" value', v) from None
        elif tok == "addrgenmode":
            # the model never creates IPv6 link-local addresses, which is what
            # `addrgenmode none` asks of the kernel; other modes would need them
            v = a.next()
            if v != "none":
                raise unsupported(f"addrgenmode {v}")
        elif matches(tok, "type") and allow_type:
            out["kind"] = a.next()
            a.advance()
            _link_type_args(a, tables, out)
            break
        elif tok in (
            "mtu",
            "address",
            "broadcast",
            "brd",
            "txqueuelen",
            "txqlen",
            "master",
            "nomaster",
            "netns",
            "link",
            "index",
            "arp",
            "multicast",
            "promisc",
            "alias",
            "vrf",
            "state",
            "mode",
        ):
            raise unsupported(tok)
        else:
            if matches(tok, "help"):
                raise ParseError(f'unknown keyword "{tok}"')
            if tok == "dev":
                tok = a.next()
            if out["dev"] is not None:
                raise ParseError(f'unknown keyword "{tok}"')
            if not tok or any(c == "/" or c.isspace() for c in tok):
                raise invalid('"dev"', tok)
            out["dev"] = tok
        a.advance()
    return out


def _link_type_args(a: Args, tables: RtTables, out: dict) -> None:
    kind = out["kind"]
    if kind != "veth":
        if a.more():
            raise unsupported(f"{kind} {a.cur}")
        return
    if not a.more():
        return
    if a.cur != "peer":
        raise ParseError(f'unknown keyword "{a.cur}"')
    a.advance()
    peer = _link_args(a, tables, allow_type=False)
    if peer["up"] is not None or peer["group"] is not None:
        raise unsupported("peer options")
    out["peer"] = peer["name"] or peer["dev"] or ""


def _link_cmd(sub: str, a: Args, ctx: Context) -> Command:
    args = _link_args(a, ctx.tables, allow_type=sub in ("add", "delete"))
    if sub == "add":
        name = args["name"] or args["dev"]
        if not name:
            raise ParseError('Not enough information: "dev" argument is required.')
        if not args["kind"]:
            raise ParseError('Not enough information: "type" argument is required')
        reqs = [("link", LinkRequest("add", name, kind=args["kind"], peer=args["peer"] or ""))]
        if args["up"] is not None or args["group"] is not None:
            reqs.append(("link", LinkRequest("set", name, up=args["up"], group=args["group"])))
        return Command(reqs)
    dev = args["dev"]
    if dev is None:
        raise ParseError('Not enough information: "dev" argument is required.')
    ctx.ifindex(dev)  # "Cannot find device" before anything is sent
    if sub == "delete":
        return Command([("link", LinkRequest("del", dev))])
    newname = args["name"] if args["name"] not in (None, dev) else ""
    return Command([("link", LinkRequest("set", dev, up=args["up"], group=args["group"], newname=newname))])


def do_iplink(sub_word: str, a: Args, ctx: Context) -> Command:
    """iplink.c:do_iplink(): ``ip link SUBCOMMAND ...``."""
    sub = first_match(sub_word, ("add", "set", "change", "replace", "delete", "show", "lst", "list", "help"))
    if sub == "change":
        sub = "set"
    if sub in ("add", "set", "delete"):
        return _link_cmd(sub, a, ctx)
    if sub == "replace":
        raise unsupported("link replace")
    raise no_change("link", sub_word, sub)
