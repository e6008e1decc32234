"""The iproute2 6.1 client side: ``ip`` command lines -> rtnetlink requests.

This is ip.c: global options, the object table, each object's command
table, and ``ip -batch``.  Each object parses its arguments in its own
module, as iproute2 splits them (route.py = ip/iproute.c, rule.py =
ip/iprule.c, addr.py = ip/ipaddress.c, link.py = ip/iplink.c, tuntap.py =
ip/iptuntap.c); the shared vocabulary is in args.py, the lexing in lexer.py.
Like ``ip`` itself they do everything before the kernel sees anything:
keyword abbreviation (``matches()``, tested in ip's own if-chain order),
header defaults (protocol boot, scope from type and gateway, table main or
local, family from the first address), the >= 256 table id carried in the
table attribute, the implicit fwmask only when given, ``route flush`` /
``rule flush`` as dump-then-delete, and so on.  What the kernel then does
with a request is the core's business (:class:`polroute.Policy`).

Entry points:

* :func:`apply_batch` -- an ``ip -batch`` style text, all or nothing;
* :func:`apply_batch_force` -- ``ip -force -batch``;
* :func:`apply_line` / :func:`parse_command` -- one command;
* :func:`polroute.iproute2.route_get_args.parse_route_get` -- the arguments
  of ``ip route get``.
"""

from __future__ import annotations

from typing import Any

from polroute._core.errors import PolicyError
from polroute.iproute2.addr import do_ipaddr
from polroute.iproute2.args import AF_UNSPEC, Args, matches
from polroute.iproute2.command import Command, Context, first_match, not_a_change
from polroute.iproute2.fastline import fast_command
from polroute.iproute2.lexer import BatchError, ParseError, batch_lines, split_args
from polroute.iproute2.link import do_iplink
from polroute.iproute2.nexthop import do_ipnh
from polroute.iproute2.route import do_iproute
from polroute.iproute2.rt_tables import RtTables
from polroute.iproute2.rule import do_iprule
from polroute.iproute2.tuntap import do_iptuntap
from polroute.types.requests import AF_INET, AF_INET6, RTPROT_BOOT

# ip.c's object table, in its order: an abbreviation means the first that matches
_OBJECTS = (
    "address",
    "addrlabel",
    "maddress",
    "route",
    "rule",
    "neighbor",
    "neighbour",
    "ntable",
    "ntbl",
    "link",
    "l2tp",
    "fou",
    "ila",
    "macsec",
    "tunnel",
    "tunl",
    "tuntap",
    "tap",
    "token",
    "tcpmetrics",
    "tcp_metrics",
    "monitor",
    "xfrm",
    "mroute",
    "mrule",
    "netns",
    "netconf",
    "vrf",
    "sr",
    "nexthop",
    "mptcp",
    "ioam",
    "help",
    "stats",
)

# the objects the model changes: each one's command table, in its own module
_DO = {
    "address": do_ipaddr,
    "route": do_iproute,
    "rule": do_iprule,
    "link": do_iplink,
    "tuntap": do_iptuntap,
    "nexthop": do_ipnh,
}


def _strip_prefix(words: list[str], family: int) -> tuple[list[str], int]:
    """Drop a leading ``ip`` and ip's global options -4/-6/-f FAMILY."""
    if words and words[0] == "ip":
        words = words[1:]
    while words and words[0].startswith("-"):
        opt = words[0]
        if opt.startswith("--"):
            opt = opt[1:]
        if opt == "-4":
            family = AF_INET
        elif opt == "-6":
            family = AF_INET6
        elif matches(opt, "-family") and len(opt) > 1:
            if len(words) < 2:
                raise ParseError(f'missing argument after "{words[0]}"')
            fam = {"inet": AF_INET, "inet6": AF_INET6, "help": None}.get(words[1])
            if fam is None:
                raise ParseError(f'unsupported family "{words[1]}"')
            family = fam
            words = words[1:]
        else:
            raise ParseError(f'unsupported option "{words[0]}"')
        words = words[1:]
    return words, family


def parse_command(
    words: list[str],
    policy: Any,
    tables: RtTables | None = None,
    family: int = AF_UNSPEC,
    route_proto: int = RTPROT_BOOT,
) -> Command:
    """Parse one ``ip`` command (words as makeargs splits them; a leading
    ``ip`` and -4/-6 are allowed).  Device names resolve against ``policy``.
    ``route_proto`` is the protocol of a route added without ``proto`` (ip's
    is boot; provisioning uses its owner protocol).
    Raises ParseError, or PolicyError for the few refusals decided client-side."""
    t = tables if tables is not None else RtTables()
    # the common shapes, table-driven (fastline.py); anything else, and any
    # line it is not certain about, is read by the full reader below
    cmd = fast_command(words, policy, t, family, route_proto)
    if cmd is not None:
        return cmd
    words, family = _strip_prefix(list(words), family)
    if not words:
        raise ParseError("missing object")
    obj = first_match(words[0], _OBJECTS)
    if obj is None:
        raise ParseError(f'unknown object "{words[0]}"')
    if obj == "tap":
        obj = "tuntap"
    do = _DO.get(obj)
    if do is None:
        raise ParseError(f'unsupported object "{obj}"')
    ctx = Context(policy, t, family, route_proto)
    if len(words) < 2:
        raise not_a_change(obj, "show")
    return do(words[1], Args(words[2:]), ctx)


def apply_line(policy: Any, line: str, tables: RtTables | None = None, family: int = AF_UNSPEC) -> list[str]:
    """Parse and apply one command directly to ``policy`` (no clone).
    Returns ip's warnings.  Raises ParseError or PolicyError."""
    words = split_args(line.split("#", 1)[0])
    cmd = parse_command(words, policy, tables, family)
    cmd.apply(policy)
    return cmd.warnings


def apply_batch(
    policy: Any, text: str, filename: str = "<batch>", tables: RtTables | None = None, family: int = AF_UNSPEC
) -> list[str]:
    """Apply an ``ip -batch`` style text, all or nothing.

    Lines are parsed and applied in order to ``policy.clone()``, so a name
    created on one line resolves on the next.  On success the clone is
    swapped in and ip's warnings are returned as ``FILE:LINE: text``.  On
    the first failure BatchError(``FILE:LINE: message``) is raised and
    ``policy`` is unchanged.  ``family`` is ip's -4/-6 (AF_INET6 means
    ``ip -6 -batch``: a rule gets its family only from that option).
    """
    t = tables if tables is not None else RtTables()
    work = policy.clone()
    warnings: list[str] = []
    for lineno, line in batch_lines(text):
        try:
            words = split_args(line)
            if not words:
                continue
            cmd = parse_command(words, work, t, family)
            cmd.apply(work)
        except ParseError as e:
            raise BatchError(filename, lineno, str(e), line, e) from None
        except PolicyError as e:
            raise BatchError(filename, lineno, e.iproute2_text(), line, e) from None
        warnings.extend(f"{filename}:{lineno}: {w}" for w in cmd.warnings)
    policy._swap(work)
    return warnings


def apply_batch_force(
    policy: Any, text: str, filename: str = "<batch>", tables: RtTables | None = None, family: int = AF_UNSPEC
) -> list[BatchError]:
    """``ip -force -batch``: apply every line directly to ``policy`` and go on
    after a failure.  A refused request keeps the side effects the kernel keeps
    (e.g. a route add that fails validation still creates its table).  Returns
    the refused lines as BatchError, in order."""
    t = tables if tables is not None else RtTables()
    errors = []
    for lineno, line in batch_lines(text):
        try:
            words = split_args(line)
            if not words:
                continue
            parse_command(words, policy, t, family).apply(policy)
        except ParseError as e:
            errors.append(BatchError(filename, lineno, str(e), line, e))
        except PolicyError as e:
            errors.append(BatchError(filename, lineno, e.iproute2_text(), line, e))
    return errors
