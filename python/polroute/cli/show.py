"""``polroute show``: the model's rules or routes, as ``ip rule show`` /
``ip route show`` print them."""

from __future__ import annotations

from polroute.cli.common import (
    Command,
    UsageError,
    add_family_options,
    add_policy_options,
    new_parser,
    policy_from,
)
from polroute.cli.output import Output

USAGE = "polroute show rules|routes [table ID|all] [-4|-6] [--batch FILE]..."


def parser():
    ap = new_parser("show", "The model's rules or routes, as `ip rule show` / `ip route show` print them.", usage=USAGE)
    ap.add_argument("what", nargs="*", metavar="rules|routes [table ID|all]", help="what to show")
    add_family_options(ap, "rules or routes")
    add_policy_options(ap)
    return ap


def run(ns) -> int:
    from polroute.iproute2.show import format_routes, format_rules
    from polroute.types.requests import AF_INET, AF_INET6

    rest = ns.what
    policy, tables = policy_from(ns)
    family = AF_INET6 if ns.v6 else AF_INET
    if not rest or rest[0] not in ("rules", "routes", "rule", "route"):
        raise UsageError("show rules|routes [table ID|all]")
    names = {link.ifindex: link.name for link in policy.links()}
    ifname = lambda i: names.get(i, f"if{i}")  # noqa: E731
    if rest[0].startswith("rule"):
        if len(rest) > 1:
            raise UsageError(f"show rules: unexpected argument {rest[1]!r}")
        lines = format_rules(policy.rules(family), tables)
    else:
        table_filter: object | None = None
        if len(rest) >= 3 and rest[1] in ("table", "tab"):
            table_filter = rest[2]
        elif len(rest) > 1:
            raise UsageError(f"show routes: unexpected argument {rest[1]!r}")
        lines = format_routes(policy.routes(family), tables, ifname, table_filter)
    Output().lines(lines)
    return 0


COMMANDS = {"show": Command(parser, run)}
