"""`polroute demo`: the multi-homed two-NIC host, offline.

Two NICs on one subnet.  Without policy routing, a reply sourced from the
second NIC's address leaves through the first NIC (the kernel picks the
route by destination alone): asymmetric routing.  The recipe - one table per
NIC and a `from <addr>` rule per address - fixes it.  The demo shows the rules,
the tables and a few decisions with the rule walk behind each.

As root (``ip netns`` available) the story goes on live (demo_live.py): the
host in a private namespace, `polroute audit` finds the asymmetric reply,
`multihome discover` writes the host file, its recipe is rendered and
applied, the audit passes, and the model and the kernel agree.
`polroute demo --offline` stops after the model; `--live` skips it.
"""

from __future__ import annotations

from importlib import resources

from polroute.iproute2.batch import apply_batch
from polroute.iproute2.route_get import explain_text, route_get, to_text
from polroute.iproute2.rt_tables import RtTables
from polroute.iproute2.show import format_routes, format_rules
from polroute.model.policy import Policy
from polroute.types.requests import AF_INET

RECIPE_MARKER = "# --- the recipe"


def two_nic_batch() -> str:
    """The shipped two-NIC batch file (also examples/two-nic.ip)."""
    return resources.files("polroute").joinpath("data/two-nic.ip").read_text(encoding="utf-8")


def split_recipe(text: str) -> tuple[str, str]:
    """(the host without policy routing, the recipe lines)."""
    head, marker, tail = text.partition(RECIPE_MARKER)
    if not marker:
        raise ValueError("two-nic.ip has no recipe marker")
    return head, marker + tail


def _section(title: str) -> None:
    print(f"\n== {title}")


def _decision(policy: Policy, tables: RtTables, args: str, why: str) -> None:
    r = route_get(policy, args.split(), tables, explain=True)
    print(f"\n$ ip route get {args}        # {why}")
    print(to_text(r, tables))
    print(explain_text(policy, r, tables))


def run_demo(argv: list[str]) -> int:
    """The offline story; then, as root, the same host live in a private namespace."""
    if argv not in ([], ["--offline"], ["--live"]):
        raise SystemExit("usage: polroute demo [--offline|--live]")
    ok = True
    if argv != ["--live"]:
        ok = run_offline()
    if argv == ["--offline"]:
        return 0 if ok else 1
    from polroute.cli.demo_live import live_unavailable, run_live

    why = live_unavailable()
    if why:
        print(
            f"\n(the live part - the same host in a private network namespace - needs {why}; "
            "this was the offline model only)"
        )
        return (0 if ok else 1) if argv != ["--live"] else 1
    return 0 if run_live() and ok else 1


def run_offline() -> bool:
    tables = RtTables()
    base, recipe = split_recipe(two_nic_batch())
    before = Policy()
    apply_batch(before, base, "two-nic.ip", tables)
    names = {link.ifindex: link.name for link in before.links()}

    print("polroute demo: a host with two NICs on 192.168.16.0/24")
    print("  eth0 192.168.16.20, eth1 192.168.16.21, default route via 192.168.16.1 on eth0")

    _section("Before: only the main table")
    for line in format_routes(before.routes(AF_INET), tables, lambda i: names.get(i, str(i))):
        print("  " + line)
    _decision(
        before, tables, "8.8.8.8 from 192.168.16.21", "a reply from eth1's address: leaves through eth0 (asymmetric)"
    )
    r = route_get(before, ["8.8.8.8", "from", "192.168.16.21"], tables)
    asymmetric = r.dev != "eth1"

    after = before.clone()
    apply_batch(after, recipe, "two-nic.ip", tables)
    _section("The recipe (ip batch lines)")
    for line in recipe.splitlines():
        if line.strip() and not line.startswith("#"):
            print("  " + line)
    _section("After: rules")
    for line in format_rules(after.rules(AF_INET), tables):
        print("  " + line)
    _section("After: tables 1 and 2")
    names = {link.ifindex: link.name for link in after.links()}
    for line in format_routes(after.routes(AF_INET), tables, lambda i: names.get(i, str(i)), "all"):
        if " table 1 " in f" {line} " or " table 2 " in f" {line} ":
            print("  " + line)
    _decision(after, tables, "8.8.8.8 from 192.168.16.21", "the same reply now leaves through eth1")
    _decision(after, tables, "8.8.8.8 from 192.168.16.20", "eth0's address keeps eth0")
    _decision(after, tables, "8.8.8.8", "locally originated traffic without a source: main table")
    _decision(after, tables, "192.168.16.7 from 192.168.16.21", "a neighbour on the subnet, directly via eth1")
    fixed = route_get(after, ["8.8.8.8", "from", "192.168.16.21"], tables).dev == "eth1"
    print()
    print(f"asymmetric before the recipe: {'yes' if asymmetric else 'no'}; fixed after: {'yes' if fixed else 'no'}")
    return asymmetric and fixed
