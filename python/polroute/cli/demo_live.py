"""The live half of `polroute demo` (root): the two-NIC host in a private
network namespace ``prt-demo-<pid>`` (veth links), deleted in ``finally``.

Only configuration and ``ip route get`` questions: no packet is sent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

from polroute.live.ip_command import IP, run_ip

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
    """Through polroute.live.provision (plan, ownership, rollback); says what it did."""
    from polroute.cli.multihome import apply_engine, report_text

    report = apply_engine()(text, filename=cfg.filename, netns=ns.name, owner=cfg.owner, prune=False, dry_run=False)
    if not report.ok:
        raise RuntimeError(f"apply failed:\n{report_text(report)}")
    return f"polroute.live.provision.apply_text (plan, ownership, rollback): {report_text(report).strip()}"


def _pick(d: dict) -> dict:
    out = {k: d.get(k) for k in _FIELDS if k != "error"}
    out["table"] = out["table"] or "main"
    if "error" in d:
        return {"error": True}
    return out


def run_live() -> bool:
    from polroute.audit import audit_policy, format_report, kernel_route_get
    from polroute.cli.demo import split_recipe, two_nic_batch
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
