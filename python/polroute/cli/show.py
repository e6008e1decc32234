"""``polroute show``: the model's rules, routes or nexthop objects, as
``ip rule show`` / ``ip route show`` / ``ip nexthop show`` print them.

As `ip`: IPv4 unless -6 is given (-4 names IPv4); `table ID|NAME|all` for
routes (main by default); a table name that rt_tables does not know is an
error.  `nexthops`, as `ip nexthop show`: every object (groups included)
unless -4 or -6 selects that family's single nexthops.  --json prints what
`ip -j rule show` / `ip -j route show` / `ip -j nexthop show` print, an
array of objects (schemas docs/schemas/show-rules.json, show-routes.json,
show-nexthops.json).  --netns NS shows a live namespace's state, read into
the model; the live reader has no nexthop dump, so `show nexthops --netns`
is an error (exit 1; `ip -n NS nexthop show` shows them).
"""

from __future__ import annotations

import json

from polroute.cli.common import (
    Command,
    UsageError,
    add_family_options,
    add_json_option,
    add_policy_options,
    new_parser,
    policy_from,
)
from polroute.cli.exitcodes import Exit
from polroute.cli.output import Output

USAGE = "polroute show rules|routes [table ID|all]|nexthops [-4|-6] [--batch FILE]..."


def parser():
    summary, epilog = __doc__.split("\n\n", 1)
    ap = new_parser("show", summary.replace("``", "`"), usage=USAGE, epilog=epilog)
    ap.add_argument("what", nargs="*", metavar="rules|routes [table ID|all]|nexthops", help="what to show")
    add_family_options(ap, "rules, routes or nexthops")
    add_policy_options(ap)
    add_json_option(ap, "an array of objects, as `ip -j rule|route|nexthop show` print it")
    return ap


def run(ns) -> int:
    from polroute.iproute2.show import format_routes, format_rules
    from polroute.types.requests import AF_INET, AF_INET6

    rest = ns.what
    if ns.v4 and ns.v6:
        raise UsageError("show: -4 and -6 exclude each other (neither: IPv4, as ip shows)")
    if not rest or rest[0] not in ("rules", "routes", "rule", "route", *NEXTHOPS):
        raise UsageError("show rules|routes [table ID|all]|nexthops")
    if rest[0] in NEXTHOPS:
        return _nexthops(ns)
    policy, tables = policy_from(ns)
    family = AF_INET6 if ns.v6 else AF_INET
    names = {link.ifindex: link.name for link in policy.links()}
    ifname = lambda i: names.get(i, f"if{i}")  # noqa: E731
    if rest[0].startswith("rule"):
        if len(rest) > 1:
            raise UsageError(f"show rules: unexpected argument {rest[1]!r}")
        lines = format_rules(policy.rules(family), tables)
    else:
        table_filter: object | None = None
        if len(rest) >= 2 and rest[1] in ("table", "tab"):
            if len(rest) < 3:
                raise UsageError("show routes: table needs an ID, a name or all")
            table_filter = rest[2]
            if table_filter != "all":
                try:
                    tables.id(table_filter)
                except ValueError:
                    raise UsageError(
                        f'show routes: argument "{table_filter}" is wrong: table id value is invalid'
                        + (f" (names from {ns.rt_tables})" if ns.rt_tables else " (not in rt_tables; --rt-tables FILE)")
                    ) from None
            if len(rest) > 3:
                raise UsageError(f"show routes: unexpected argument {rest[3]!r}")
        elif len(rest) > 1:
            raise UsageError(f"show routes: unexpected argument {rest[1]!r}")
        lines = format_routes(policy.routes(family), tables, ifname, table_filter)
    out = Output(ns.json)
    if out.as_json:
        from polroute.cli.showjson import route_json, rule_json

        convert = rule_json if rest[0].startswith("rule") else route_json
        out.json([convert(line) for line in lines])
    else:
        out.lines(lines)
    return Exit.OK


#: the words that name nexthop objects (as ip's `nexthop`, `nh`)
NEXTHOPS = ("nexthops", "nexthop", "nh")

#: why `show nexthops --netns` is refused
NO_LIVE_NEXTHOPS = (
    "show nexthops: --netns cannot show nexthop objects (the live reader has no nexthop dump;"
    " `ip -n NS nexthop show` shows them); use --batch FILE"
)


def _nexthops(ns) -> int:
    """``show nexthops``: every object, or -4/-6's single nexthops."""
    from polroute.iproute2.nexthop import show_nexthops
    from polroute.types.requests import AF_INET, AF_INET6

    if len(ns.what) > 1:
        raise UsageError(f"show nexthops: unexpected argument {ns.what[1]!r}")
    if getattr(ns, "netns", None):
        raise UsageError(NO_LIVE_NEXTHOPS)
    policy, tables = policy_from(ns)
    family = AF_INET6 if ns.v6 else AF_INET if ns.v4 else 0
    out = Output(ns.json)
    if out.as_json:
        out.json(json.loads(show_nexthops(policy, family, True, tables)))
    else:
        out.text(show_nexthops(policy, family, False, tables))
    return Exit.OK


COMMANDS = {"show": Command(parser, run)}
