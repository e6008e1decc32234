"""``polroute snapshot``: the live namespace's links, addresses, rules and
routes as an ip batch text that recreates them (needs root); ``--owned``: only
what the owner protocol marks, as a desired-state file for plan/apply."""

from __future__ import annotations

from polroute.cli.common import Command, UsageError, add_family_options, new_parser
from polroute.cli.output import Output


def parser():
    ap = new_parser("snapshot", __doc__, usage="polroute snapshot [--netns NS] [-4|-6] [--owned [--owner P]]")
    ap.add_argument("--netns", metavar="NS", help="the namespace to read (default: this one)")
    add_family_options(ap, "state (one `ip -batch` / `ip -6 -batch` file; neither: both families)")
    ap.add_argument("--owned", action="store_true", help="only the rules and routes the owner protocol marks")
    ap.add_argument("--owner", metavar="P", help="with --owned: the owner protocol (number or rt_protos name)")
    return ap


def run(ns) -> int:
    from polroute.cli.provision import owner_protocol
    from polroute.live.read import read_state
    from polroute.live.snapshot import snapshot_text
    from polroute.types.requests import AF_INET, AF_INET6

    if ns.owner is not None and not ns.owned:
        raise UsageError("snapshot: --owner goes with --owned")
    if ns.v4 and ns.v6:
        raise UsageError("snapshot: -4 and -6 exclude each other (neither: both families)")
    family = AF_INET if ns.v4 else AF_INET6 if ns.v6 else None
    out = Output()
    try:
        state = read_state(ns.netns, families=(family,) if family else (AF_INET, AF_INET6))
    except (OSError, RuntimeError) as e:
        out.error(f"snapshot: {e.strerror if isinstance(e, OSError) and e.strerror else e}")
        return 1
    if ns.owned:
        from polroute.live.desired import owned_text

        try:
            owner = owner_protocol(ns.owner)
        except UsageError as e:
            raise UsageError(f"snapshot: {e}") from None
        out.text(owned_text(state, owner))
        return 0
    out.text(snapshot_text(state, family))
    return 0


COMMANDS = {"snapshot": Command(parser, run)}
