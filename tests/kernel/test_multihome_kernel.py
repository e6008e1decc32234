"""multihome against the kernel, in private namespaces (prt-*, deleted in finally).

Only configuration and `ip route get` questions: no packet is sent.
"""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path

import jsonschema

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "py"))
from netns import Netns  # noqa: E402

from multihome_fixtures import TWO_NIC_HOST, big_host  # noqa: E402
from polroute import Policy  # noqa: E402
from polroute.audit import audit_policy, kernel_route_get, policy_from_netns  # noqa: E402
from polroute.cli import app as cli  # noqa: E402
from polroute.cli.demo import split_recipe, two_nic_batch  # noqa: E402
from polroute.iproute2.batch import apply_batch  # noqa: E402
from polroute.iproute2.route_get import get_json  # noqa: E402
from polroute.iproute2.rt_tables import RtTables  # noqa: E402
from polroute.multihome.hostfile import parse_host_text  # noqa: E402
from polroute.multihome.render import batch_text, split_for_ip  # noqa: E402

_KEYS = ("dst", "from", "dev", "gateway", "prefsrc", "table")


def _same(model: dict, kernel: dict) -> bool:
    if "error" in model or "error" in kernel:
        return ("error" in model) == ("error" in kernel)
    return all(model.get(k) == kernel.get(k) for k in _KEYS)


def _apply_ip(ns: Netns, text: str) -> None:
    v4, v6 = split_for_ip(text)
    for fam, part in ((0, v4), (6, v6)):  # plain ip -batch: routes take their family from the address
        if part.strip():
            res = ns.batch(part, settle=False, family=fam)
            assert not res.refused(), res.refused()


def _audit_cli(capsys, ns: Netns) -> tuple[int, dict]:
    rc = cli.main(["audit", "--netns", ns.name, "--json"])
    return rc, json.loads(capsys.readouterr().out)


def test_two_nic_discover_render_apply_audit(capsys, tmp_path):
    base, _ = split_recipe(two_nic_batch())
    with Netns() as ns:
        res = ns.batch(base)
        assert not res.refused()
        rc, rep = _audit_cli(capsys, ns)
        assert rc == 5 and rep["asymmetric"] == ["192.168.16.21"], rep
        assert cli.main(["audit", "--netns", ns.name, "--kernel", "--json"]) == 5
        krep = json.loads(capsys.readouterr().out)
        assert krep["kernel_checked"] == krep["questions"] and {f["kind"] for f in krep["findings"]} == {
            "asymmetric"
        }, krep

        out = tmp_path / "host.yaml"
        assert cli.main(["multihome", "discover", "--netns", ns.name, "-o", str(out)]) == 0
        cfg = parse_host_text(out.read_text(), str(out), RtTables())
        assert [(u.interface, str(u.address), str(u.gateway)) for u in cfg.uplinks] == [
            ("eth0", "192.168.16.20/24", "192.168.16.1"),
            ("eth1", "192.168.16.21/24", "192.168.16.1"),
        ]
        # --json: the same host file as data (schema multihome-discover.json), and a host file itself
        capsys.readouterr()
        assert cli.main(["multihome", "discover", "--netns", ns.name, "--json"]) == 0
        found = json.loads(capsys.readouterr().out)
        schema = json.loads((Path(HERE).parents[1] / "docs" / "schemas" / "multihome-discover.json").read_text())
        jsonschema.Draft202012Validator(schema).validate(found)
        as_json = parse_host_text(json.dumps(found["host"]), "found.json", RtTables())
        assert [(u.interface, u.address, u.gateway, u.table) for u in as_json.uplinks] == [
            (u.interface, u.address, u.gateway, u.table) for u in cfg.uplinks
        ]

        assert cli.main(["multihome", "render", str(out), "--to", "batch"]) == 0
        recipe = capsys.readouterr().out
        _apply_ip(ns, recipe)
        rc, rep = _audit_cli(capsys, ns)
        assert rc == 0 and rep["ok"] and rep["addresses"] == 2, rep
        # every question asked to the kernel too: it answers as the model does
        assert cli.main(["audit", "--netns", ns.name, "--kernel", "--json"]) == 0
        rep = json.loads(capsys.readouterr().out)
        assert rep["ok"] and rep["kernel_checked"] == rep["questions"] == 4

        # discover again: the owned tables are reused, the file is the same
        again = parse_host_text(_discover(ns), "again.yaml", RtTables())
        assert [(u.interface, u.table) for u in again.uplinks] == [(u.interface, u.table) for u in cfg.uplinks]

        model = Policy()
        apply_batch(model, base + recipe, "two-nic")
        live = policy_from_netns(ns.name)
        for src in ("192.168.16.20", "192.168.16.21", None):
            for dst in ("8.8.8.8", "192.168.16.7", "192.168.16.1"):
                q = [dst] + (["from", src] if src else [])
                k = ns.route_get_json(q)
                for p in (model, live):
                    assert _same(get_json(p, q), k), (q, get_json(p, q), k)


def _discover(ns: Netns) -> str:
    from polroute.live.read import read_state
    from polroute.multihome.discover import discover_text

    return discover_text(read_state(ns.name))


def test_rich_host_batch_through_ip_and_model():
    """Both families, ranges, prefixes, tenants and a multipath default: the
    rendered batch goes through `ip -batch` and through polroute, and every
    probe is answered alike."""
    import test_multihome as T

    cfg = parse_host_text(T.RICH_HOST, "rich.yaml", RtTables())
    base = T._base(cfg)
    recipe = batch_text(cfg)
    model = T._model(cfg)
    with Netns() as ns:
        assert not ns.batch(base).refused()
        assert ns.sysctl("net.ipv4.conf.all.forwarding", 1) is None
        _apply_ip(ns, recipe)
        questions = []
        for u in cfg.uplinks:
            for fam, dst in ((4, "8.8.8.8"), (6, "2001:4860:4860::8888")):
                for net in u.sources(fam):
                    questions.append([dst, "from", str(T._probe(net))])
        questions.append(["8.8.8.8", "from", "172.16.5.9", "iif", "lan0"])
        for q in questions:
            m, k = get_json(model, q), ns.route_get_json(q)
            assert "error" not in k, (q, k)
            assert _same(m, k), (q, m, k)
        # a multipath answer: the kernel's leg is one of the model's
        q = ["8.8.8.8", "from", "172.16.6.9", "iif", "lan0"]
        k = ns.route_get_json(q)
        from polroute.iproute2.route_get import route_get

        legs = {(c.dev, c.gateway) for c in route_get(model, q).candidates}
        assert (k["dev"], k["gateway"]) in legs and len(legs) == 2
        assert audit_policy(policy_from_netns(ns.name)).asymmetric_addresses() == ["172.16.0.1"]

        # discover with the recipe's owner: the same uplinks, tables reused, IPv6 found,
        # the served addresses (local /32 and /128) listed
        from polroute.live.read import read_state
        from polroute.multihome.discover import discover_text

        found = parse_host_text(discover_text(read_state(ns.name), owner=201), "found.yaml", RtTables())
        assert found.owner == 201 and found.priority_base == 3000
        assert [
            (u.interface, str(u.address), str(u.gateway), u.table, str(u.address6), str(u.gateway6))
            for u in found.uplinks
        ] == [
            (u.interface, str(u.address), str(u.gateway), u.table, str(u.address6), str(u.gateway6))
            for u in cfg.uplinks
        ]
        for u, f in zip(cfg.uplinks, found.uplinks):
            assert {str(s.net) for s in f.serves} == {f"{T._probe(s.net)}/{s.net.max_prefixlen}" for s in u.serves}


def test_5000_addresses_over_4_uplinks(capsys, tmp_path):
    host, base, owner = big_host(5000, 4)
    path = tmp_path / "big.yaml"
    path.write_text(host)
    with Netns() as ns:
        res = ns.batch(base, settle=False)
        assert not res.refused()
        ns.settle()
        rc, rep = _audit_cli(capsys, ns)
        assert rc == 5  # asymmetric replies found
        assert set(rep["asymmetric"]) == {a for a, dev in owner.items() if dev != "eth0"}
        assert cli.main(["multihome", "render", str(path), "--to", "batch"]) == 0
        recipe = capsys.readouterr().out
        assert recipe.count("\nrule add ") == 5004
        assert cli.main(["multihome", "apply", str(path), "--netns", ns.name]) == 0
        capsys.readouterr()
        live = policy_from_netns(ns.name)  # what `audit --netns` reads (once: ~5k addresses)
        rep = audit_policy(live, kernel=kernel_route_get(ns.name))  # every question to the kernel too
        assert rep.kernel_checked == rep.questions
        assert rep.ok and rep.addresses == 5004 and rep.questions == 5004 * 5, rep.asymmetric_addresses()[:5]
        rnd = random.Random(5000)
        for a in rnd.sample(sorted(owner), 150):
            for dst in ("8.8.8.8", "10.1.0.77"):
                q = [dst, "from", a]
                k = ns.route_get_json(q)
                assert k.get("dev") == owner[a], (q, k)
                assert _same(get_json(live, q), k), (q, get_json(live, q), k)


def test_apply_through_the_engine():
    """`multihome apply` through polroute.live.apply.apply_text."""
    import tempfile

    base, _ = split_recipe(two_nic_batch())
    with Netns() as ns, tempfile.TemporaryDirectory() as d:
        assert not ns.batch(base).refused()
        host = os.path.join(d, "host.yaml")
        with open(host, "w") as f:
            f.write(TWO_NIC_HOST)
        before = _rules_and_routes(ns)
        assert cli.main(["multihome", "apply", host, "--netns", ns.name, "--dry-run"]) == 0
        assert _rules_and_routes(ns) == before
        assert cli.main(["multihome", "apply", host, "--netns", ns.name]) == 0
        assert audit_policy(policy_from_netns(ns.name)).ok
        # applying again changes nothing
        after = _rules_and_routes(ns)
        assert after != before
        assert cli.main(["multihome", "apply", host, "--netns", ns.name]) == 0
        assert _rules_and_routes(ns) == after


def _rules_and_routes(ns: Netns) -> list[str]:
    """What provisioning may change: rules, and routes the kernel did not
    derive (link-local addresses finish DAD on their own time)."""
    out = []
    for args in (
        ["rule", "show"],
        ["-6", "rule", "show"],
        ["route", "show", "table", "all"],
        ["-6", "route", "show", "table", "all"],
    ):
        out += [l for l in ns.ip(*args).stdout.splitlines() if "proto kernel" not in l]
    return out


def test_demo_live_story(capsys):
    from polroute.cli.demo import run_demo

    assert run_demo(["--live"]) == 0
    out = capsys.readouterr().out
    assert "live: asymmetric before: yes; audit passes after the recipe: yes; model and kernel agree: yes" in out
    assert "DISAGREE" not in out


def test_link_down_up_loses_table_routes_and_the_hook_restores_them(tmp_path):
    """Why the unit is re-applied: a link that goes down and up comes back
    without the recipe's table routes (the kernel deletes them), and the rules
    then send replies nowhere.  The rendered networkd-dispatcher hook, with a
    stand-in systemctl that runs the unit's ExecStart (in the namespace),
    restores exactly the state of the first apply."""
    import shlex
    import subprocess

    from polroute.multihome.render import render

    base, _ = split_recipe(two_nic_batch())
    host = tmp_path / "host.yaml"
    host.write_text(TWO_NIC_HOST)
    cfg = parse_host_text(TWO_NIC_HOST, str(host), RtTables())
    files, _ = render(cfg, "systemd-unit")
    exec_start = next(x for x in files["polroute-multihome.service"].splitlines() if x.startswith("ExecStart="))
    with Netns() as ns:
        assert not ns.batch(base).refused()
        argv = shlex.split(exec_start[len("ExecStart=") :]) + ["--netns", ns.name]
        stub = tmp_path / "bin"
        stub.mkdir()
        (stub / "systemctl").write_text(
            "#!/bin/sh\n"
            '[ "$*" = "restart --no-block polroute-multihome.service" ] || exit 3\n'
            f"exec {' '.join(shlex.quote(a) for a in argv)}\n"
        )
        os.chmod(stub / "systemctl", 0o755)
        hook = tmp_path / "hook"
        hook.write_text(files["networkd-dispatcher/routable.d/50-polroute-multihome"])
        env = dict(os.environ, PATH=f"{stub}:{os.environ['PATH']}", IFACE="eth1", STATE="routable")
        r = subprocess.run(["sh", str(hook)], env=env, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        applied = _rules_and_routes(ns)
        assert any("table 2" in line for line in applied)
        ns.ip("link", "set", "eth1", "down")
        ns.ip("link", "set", "eth1", "up")
        lost = _rules_and_routes(ns)
        assert not any("table 2" in line for line in lost) and lost != applied
        assert not audit_policy(policy_from_netns(ns.name)).ok
        r = subprocess.run(["sh", str(hook)], env=env, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert _rules_and_routes(ns) == applied
        assert audit_policy(policy_from_netns(ns.name)).ok


def test_audit_of_routed_prefixes_and_link_local_gateways_agrees_with_the_kernel(capsys, tmp_path):
    """The host with IPv6 link-local gateways and a LAN (test_multihome.LL_*)
    in a namespace with forwarding: `audit --kernel --host` asks the kernel the
    forwarding questions (input path from lan0) too, and it answers as the
    model does; the lost tenant rule is found on the live state as well."""
    import test_multihome as T

    cfg = parse_host_text(T.LL_HOST, "ll.yaml", RtTables())
    host = tmp_path / "ll.yaml"
    host.write_text(T.LL_HOST)
    base4, base6 = split_for_ip(T.LL_BASE)
    recipe = batch_text(cfg)
    with Netns() as ns:
        for key in ("net.ipv4.conf.all.forwarding", "net.ipv6.conf.all.forwarding"):
            assert ns.sysctl(key, 1) is None
        assert ns.sysctl("net.ipv4.conf.all.rp_filter", 0) is None
        assert not ns.batch(base4).refused()
        assert not ns.batch(base6, family=6).refused()
        lost = "\n".join(x for x in recipe.splitlines() if "172.16.5.0/24" not in x) + "\n"
        _apply_ip(ns, lost)
        assert cli.main(["audit", "--netns", ns.name, "--kernel", "--host", str(host), "--json"]) == 5
        rep = json.loads(capsys.readouterr().out)
        assert rep["routed"] == 4 and rep["kernel_checked"] == rep["questions"], rep
        kinds = {(f["address"], f["kind"]) for f in rep["findings"]}
        assert ("172.16.5.0/24", "forwarded") in kinds and not {k for _, k in kinds} & {"model-differs"}, kinds
        # the uplinks' own addresses (IPv6 via fe80::1) are symmetric; lan0's own one is not (no uplink)
        assert {a for a, k in kinds if k == "asymmetric"} == {"172.16.0.1", "2001:db8:5::1"}, kinds


def test_unit_command_needs_only_cap_net_admin(tmp_path):
    """The hardened unit keeps CAP_NET_ADMIN alone (CapabilityBoundingSet=,
    NoNewPrivileges=): its ExecStart, run in a namespace with that bounding set
    (setpriv; systemd itself cannot run here), applies the recipe."""
    import shlex
    import shutil
    import subprocess

    import pytest

    from polroute.multihome.render import render

    if shutil.which("setpriv") is None:
        pytest.fail("setpriv (util-linux) not installed")
    base, _ = split_recipe(two_nic_batch())
    host = tmp_path / "host.yaml"
    host.write_text(TWO_NIC_HOST)
    cfg = parse_host_text(TWO_NIC_HOST, str(host), RtTables())
    unit = render(cfg, "systemd-unit")[0]["polroute-multihome.service"]
    assert "CapabilityBoundingSet=CAP_NET_ADMIN\n" in unit and "NoNewPrivileges=yes\n" in unit
    exec_start = next(x for x in unit.splitlines() if x.startswith("ExecStart="))
    argv = shlex.split(exec_start[len("ExecStart=") :])
    with Netns() as ns:
        assert not ns.batch(base).refused()
        drop = ["setpriv", "--bounding-set", "-all,+net_admin", "--inh-caps", "-all", "--no-new-privs", "--"]
        r = subprocess.run(["ip", "netns", "exec", ns.name] + drop + argv, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert audit_policy(policy_from_netns(ns.name)).ok
        # and without CAP_NET_ADMIN the kernel refuses it: the bounding set is what allowed it
        ns.ip("rule", "del", "priority", "501")
        drop[2] = "-all"
        r = subprocess.run(["ip", "netns", "exec", ns.name] + drop + argv, capture_output=True, text=True)
        assert r.returncode != 0 and "Operation not permitted" in r.stderr, r.stderr
