"""`polroute demo`: the multi-homed two-NIC host, offline.

Two NICs on one subnet.  Without policy routing, a reply sourced from the
second NIC's address leaves through the first NIC (the kernel picks the
route by destination alone): asymmetric routing.  The recipe - one table per
NIC and a `from <addr>` rule per address - fixes it.  The demo shows the rules,
the tables and a few decisions with the rule walk behind each.

As root (``ip netns`` available) the story goes on live (the second half of
this module): the host in a private namespace ``prt-demo-<pid>`` (veth links,
deleted in ``finally``; only configuration and ``ip route get`` questions, no
packet is sent), `polroute audit` finds the asymmetric reply,
`multihome discover` writes the host file, its recipe is rendered and
applied, the audit passes, and the model and the kernel agree.
`polroute demo --offline` stops after the model; `--live` skips it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from importlib import resources

from polroute.cli.common import Command, new_parser
from polroute.cli.exitcodes import Exit
from polroute.iproute2.batch import apply_batch
from polroute.iproute2.route_get import explain_text, route_get, to_text
from polroute.iproute2.rt_tables import RtTables
from polroute.iproute2.show import format_routes, format_rules
from polroute.live.ip_command import IP, run_ip
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


def parser():
    ap = new_parser("demo", __doc__, usage="polroute demo [--offline|--live]")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--offline", action="store_true", help="the model only (no namespace, even as root)")
    g.add_argument("--live", action="store_true", help="the live part only (root)")
    return ap


def run(ns) -> int:
    """The offline story; then, as root, the same host live in a private namespace."""
    ok = True
    if not ns.live:
        ok = run_offline()
    if ns.offline:
        return Exit.OK if ok else Exit.USAGE
    why = live_unavailable()
    if why:
        print(
            f"\n(the live part - the same host in a private network namespace - needs {why}; "
            "this was the offline model only)"
        )
        return (Exit.OK if ok else Exit.USAGE) if not ns.live else Exit.USAGE
    return Exit.OK if run_live() and ok else Exit.USAGE


def run_demo(argv: list[str]) -> int:
    """``polroute demo ARGV`` (what the command line runs)."""
    from polroute.cli.common import invoke

    return invoke(COMMANDS["demo"], argv)


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


# ---------------------------------------------------------------- the live half (root)

_FIELDS = ("dev", "gateway", "prefsrc", "table", "error")


def live_unavailable() -> str | None:
    """None when we may create a network namespace, else what is missing."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "root"
    if shutil.which(IP) is None:
        return "the ip command (iproute2)"
    return None


def _ip(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return run_ip(list(args), stdin=stdin)


class LiveNetns:
    def __init__(self, name: str):
        if not name.startswith("prt-"):
            raise ValueError("namespace names must start with prt-")
        self.name = name
        self.created = False

    def __enter__(self) -> LiveNetns:
        r = _ip("netns", "add", self.name)
        if r.returncode != 0:
            raise RuntimeError(f"ip netns add {self.name}: {r.stderr.strip()}")
        self.created = True
        return self

    def __exit__(self, *exc) -> None:
        if self.created:
            _ip("netns", "del", self.name)
            self.created = False

    def batch(self, text: str, family: int = 4) -> None:
        """``ip -batch`` (``ip -6 -batch`` for family 6); RuntimeError names the failed line."""
        if not text.strip():
            return
        opts = ["-6"] if family == 6 else []
        r = _ip("-n", self.name, *opts, "-batch", "-", stdin=text)
        if r.returncode != 0:
            raise RuntimeError(f"ip -batch in {self.name}: {r.stderr.strip()}")

    def settle(self, timeout: float = 3.0) -> None:
        """Wait until every up link has its carrier seen by linkwatch."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            links = json.loads(_ip("-n", self.name, "-j", "link", "show").stdout or "[]")
            if all(
                l.get("operstate") in ("UP", "UNKNOWN")
                for l in links
                if "UP" in l.get("flags", []) and l.get("ifname") != "lo"
            ):
                return
            time.sleep(0.01)

    def route_get(self, argv: list[str]) -> dict:
        r = _ip("-n", self.name, "-j", "route", "get", *argv)
        if r.returncode == 0 and r.stdout.strip():
            return json.loads(r.stdout)[0]
        return {"error": r.stderr.strip()}


def apply_recipe(ns: LiveNetns, cfg, text: str) -> str:
    """Through polroute.live.apply (plan, ownership, rollback); says what it did."""
    from polroute.cli.multihome import apply_engine, report_text

    report = apply_engine()(text, filename=cfg.filename, netns=ns.name, owner=cfg.owner, prune=False, dry_run=False)
    if not report.ok:
        raise RuntimeError(f"apply failed:\n{report_text(report)}")
    return f"polroute.live.apply.apply_text (plan, ownership, rollback): {report_text(report).strip()}"


def _pick(d: dict) -> dict:
    out = {k: d.get(k) for k in _FIELDS if k != "error"}
    out["table"] = out["table"] or "main"
    if "error" in d:
        return {"error": True}
    return out


def run_live() -> bool:
    from polroute.audit import audit_policy, format_report, kernel_route_get
    from polroute.iproute2.route_get import get_json
    from polroute.live.read import read_state
    from polroute.live.snapshot import policy_from_state
    from polroute.multihome.discover import discover_text
    from polroute.multihome.hostfile import parse_host_text
    from polroute.multihome.render import batch_text

    name = f"prt-demo-{os.getpid()}"
    base, _ = split_recipe(two_nic_batch())
    print(
        f"\n==== Live: the same host in a private network namespace {name} (veth links; "
        "nothing is sent, only `ip route get` questions)"
    )
    with LiveNetns(name) as ns:
        ns.batch(base)
        ns.settle()
        print("\n== polroute audit --netns (the model of the live namespace)")
        before = audit_policy(policy_from_state(read_state(name)))
        print(format_report(before))

        host_text = discover_text(read_state(name))
        print(f"\n== polroute multihome discover --netns {name}")
        print(host_text.rstrip())
        cfg = parse_host_text(host_text, "discovered.yaml")
        recipe = batch_text(cfg)
        print("\n== polroute multihome render discovered.yaml --to batch")
        print(recipe.rstrip())
        how = apply_recipe(ns, cfg, recipe)
        print(f"\n== applied through {how}")

        state = read_state(name)
        model = policy_from_state(state)
        after = audit_policy(model, kernel=kernel_route_get(name))
        print(f"\n== polroute audit --netns {name} --kernel (each question also asked to the kernel)")
        print(format_report(after))

        print("\n== the model and the kernel (`ip -j route get`) on sample questions")
        questions = [["8.8.8.8"]]
        for u in cfg.uplinks:
            questions += [
                ["8.8.8.8", "from", str(u.address.ip)],
                [str(u.address.network.network_address + 7), "from", str(u.address.ip)],
                [str(u.gateway), "from", str(u.address.ip)],
            ]
        agree = True
        for q in questions:
            m, k = _pick(get_json(model, q)), _pick(ns.route_get(q))
            same = m == k
            agree &= same
            via = f"via {k['gateway']}" if k.get("gateway") else "directly"
            shown = "error" if "error" in k else f"dev {k['dev']} {via}, table {k['table']}"
            print(
                f"  {'agree   ' if same else 'DISAGREE'} ip route get {' '.join(q):<36} kernel: {shown}"
                + ("" if same else f"  model: {m}")
            )
    holds = (not before.ok) and after.ok and agree
    print(
        f"\nlive: asymmetric before: {'yes' if not before.ok else 'no'}; audit passes after the recipe: "
        f"{'yes' if after.ok else 'no'}; model and kernel agree: {'yes' if agree else 'no'}"
    )
    return holds


COMMANDS = {"demo": Command(parser, run)}
