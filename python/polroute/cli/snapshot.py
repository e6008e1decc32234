"""``polroute snapshot``: the live namespace's links, addresses, rules and
routes as an ip batch text that recreates them (needs root); ``--owned``: only
what the owner protocol marks, as a desired-state file for plan/apply.

``-4`` and ``-6`` split a dual-stack namespace in two texts that are restored
one after the other into a fresh namespace: ``ip -batch < v4`` (the links,
then the IPv4 state), then ``ip -6 -batch < v6`` (the IPv6 addresses, routes
and rules; the links are the -4 text's, so it is not run alone).

Exit status: 0 printed, 1 bad input, a namespace that cannot be read, or out
of memory / too many open files.
"""

from __future__ import annotations

from polroute.cli.common import (
    Command,
    UsageError,
    add_family_options,
    add_quiet_option,
    new_parser,
    progress,
    resource_problem,
)
from polroute.cli.exitcodes import Exit
from polroute.cli.output import Output


def parser():
    summary, epilog = __doc__.split("\n\n", 1)
    usage = "polroute snapshot [--netns NS] [-4|-6] [--owned [--owner P]] [--quiet]"
    ap = new_parser("snapshot", summary, usage=usage, epilog=epilog)
    ap.add_argument("--netns", metavar="NS", help="the namespace to read (default: this one)")
    add_family_options(ap, "state (-4: `ip -batch` text with the links; -6: `ip -6 -batch` text to run after it)")
    ap.add_argument("--owned", action="store_true", help="only the rules and routes the owner protocol marks")
    ap.add_argument("--owner", metavar="P", help="with --owned: the owner protocol (number or rt_protos name)")
    add_quiet_option(ap)
    return ap


def _link_creating(words: list[str], names: set[str]) -> bool:
    """A line that makes a link the -4 text makes already (a veth pair by
    either end's name: an end whose peer lives elsewhere gets a stand-in)."""
    if words[:2] == ["tuntap", "add"]:
        return len(words) > 2 and words[2] in names
    if words[:2] != ["link", "add"] or len(words) < 3:
        return False
    peer = words[words.index("peer") + 2] if "peer" in words and len(words) > words.index("peer") + 2 else None
    return words[2] in names or peer in names


def after_v4(text: str, link_names: set[str]) -> str:
    """The IPv6 snapshot text without what the IPv4 one, restored before it,
    did already: the links' creation and the IPv4 sysctls (the rest of the
    link lines - addrgenmode, group, up/down - set what is set already)."""
    out = []
    for line in text.splitlines():
        if line.startswith("# polroute snapshot of "):
            line = line.replace(
                "run with `ip -6 -batch`", "run with `ip -6 -batch` after the -4 snapshot's `ip -batch` (its links)"
            )
        elif line.startswith("# sysctl -w net.ipv4.") or _link_creating(line.split(), link_names):
            continue
        out.append(line)
    return "\n".join(out) + "\n"


def without_v6_sysctls(text: str) -> str:
    return "".join(l for l in text.splitlines(True) if not l.startswith("# sysctl -w net.ipv6."))


def _link_state_lines(text: str) -> list[str]:
    return [l for l in text.splitlines() if l.startswith("link set ") and l.endswith((" up", " down"))]


def with_link_order(v4: str, whole: str) -> str:
    """The IPv4 text with its links brought up in the order the whole
    state's text brings them up: the IPv6 text runs on links that are up
    already, and the order in which links came up is the order of their
    IPv6 routes that the kernel makes then (ff00::/8).  Unchanged if the
    two texts do not change the same link states."""
    want, have = _link_state_lines(whole), _link_state_lines(v4)
    if sorted(want) != sorted(have) or want == have:
        return v4
    order, moved = iter(want), set(have)
    return "\n".join(next(order) if l in moved else l for l in v4.splitlines()) + "\n"


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
    with progress("snapshot", ns.quiet) as prog:
        prog.phase("reading the namespace")
        try:
            # -4 reads both families: its links come up in the order the IPv6 state needs
            state = read_state(ns.netns, families=(AF_INET6,) if family == AF_INET6 else (AF_INET, AF_INET6))
        except (OSError, RuntimeError) as e:
            if resource_problem(e):
                raise  # one line from cli/common.py invoke
            out.error(f"snapshot: {e.strerror if isinstance(e, OSError) and e.strerror else e}")
            return Exit.USAGE
        if ns.owned:
            from polroute.live.desired import owned_text

            try:
                owner = owner_protocol(ns.owner)
            except UsageError as e:
                raise UsageError(f"snapshot: {e}") from None
            text = owned_text(state, owner)
        else:
            prog.phase("building the batch text")
            text = snapshot_text(state, family)
            if family == AF_INET6:
                text = after_v4(text, {l.name for l in state.links})
            elif family == AF_INET:
                text = without_v6_sysctls(with_link_order(text, snapshot_text(state)))
    out.text(text)
    return Exit.OK


COMMANDS = {"snapshot": Command(parser, run)}
