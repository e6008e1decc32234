"""``ip tuntap add/delete`` (iproute2 v6.1.0 ip/iptuntap.c)."""

from __future__ import annotations

from polroute.iproute2.args import Args, check_ifname, invalid, matches, unsupported
from polroute.iproute2.command import Command, Context, first_match, no_change
from polroute.iproute2.lexer import ParseError
from polroute.types.requests import LinkRequest


def _tuntap_cmd(sub: str, a: Args, ctx: Context) -> Command:
    """`ip tuntap add|del [dev] NAME mode tap|tun`: a device without a reader,
    so it never has carrier."""
    name, mode = None, None
    while a.more():
        tok = a.cur
        if tok == "mode":
            mode = a.next()
            if mode not in ("tap", "tun"):
                raise invalid('"mode"', mode)
        elif tok == "dev" or matches(tok, "name"):
            name = a.next()
        elif tok in ("user", "group", "one_queue", "pi", "vnet_hdr", "multi_queue", "persist"):
            raise unsupported(tok)
        elif name is None:
            name = tok
        else:
            raise ParseError(f'unknown keyword "{tok}"')
        a.advance()
    if not name:
        raise ParseError('Not enough information: "dev" argument is required.')
    if mode is None:
        raise ParseError("You failed to specify a tunnel mode")
    if not check_ifname(name):
        raise invalid('"dev"', name)
    if sub == "delete":
        ctx.ifindex(name)
        return Command([("link", LinkRequest("del", name))])
    return Command([("link", LinkRequest("add", name, kind="tap" if mode == "tap" else "tun"))])


def do_iptuntap(sub_word: str, a: Args, ctx: Context) -> Command:
    """iptuntap.c:do_iptuntap(): ``ip tuntap SUBCOMMAND ...``."""
    sub = first_match(sub_word, ("add", "delete", "list", "show", "lst", "help"))
    if sub in ("add", "delete"):
        return _tuntap_cmd(sub, a, ctx)
    raise no_change("tuntap", sub_word, sub)
