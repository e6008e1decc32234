"""The --json outputs that need a live namespace (plan, apply, audit --netns,
get/show --netns) against their schemas in docs/schemas/, and `show --json`
equal to what `ip -j rule show` / `ip -j route show` print for the same state
(in private namespaces, prt-*)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import jsonschema
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from netns import Netns  # noqa: E402

from polroute.cli import app as cli  # noqa: E402

pytestmark = pytest.mark.kernel

SCHEMAS = Path(HERE).parents[1] / "docs" / "schemas"
BASE = (
    "link set lo up\nlink add v0 type veth peer name v0p\nlink set v0 up\nlink set v0p up\n"
    "addr add 10.7.0.1/24 dev v0\nlink add v1 type veth peer name v1p\nlink set v1 up\nlink set v1p up\n"
    "addr add 10.8.0.1/24 dev v1\n"
    "route add 10.9.0.0/16 nexthop via 10.7.0.9 dev v0 weight 2 nexthop via 10.8.0.9 dev v1\n"
    "route add blackhole 10.10.0.0/16 table 5 metric 7\nroute add 10.11.0.0/16 via 10.7.0.9 mtu 1400 table 5\n"
    "rule add not from 10.0.0.0/8 fwmark 0x5/0xff lookup 5 pref 100\n"
    "rule add uidrange 100-200 lookup 5 suppress_prefixlength 0 pref 300\n"
    "addr add 2001:db8:7::1/64 dev v0 nodad\n"
    "route add 2001:db8:9::/48 via 2001:db8:7::9 table 5 metric 5\n"
    "route add unreachable 2001:db8:a::/48 table 5\n"
)
BASE6 = "rule add from 2001:db8:7::/64 lookup 5 pref 400\n"  # ip -6 -batch
DESIRED = "route add 198.18.0.0/24 via 10.7.0.9 dev v0 table 100\nrule add pref 150 from 10.7.0.0/24 lookup 100\n"


def validate(name: str, data) -> None:
    jsonschema.Draft202012Validator(json.loads((SCHEMAS / name).read_text())).validate(data)


def run(capsys, *argv):
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_plan_apply_audit_get_show_json(capsys, tmp_path, monkeypatch):
    desired = tmp_path / "desired.ip"
    desired.write_text(DESIRED)
    run_dir = tmp_path / "run"
    monkeypatch.setenv("POLROUTE_RUN_DIR", str(run_dir))
    with Netns() as ns:
        assert not ns.batch(BASE).refused()
        assert not ns.batch(BASE6, family=6).refused()
        rc, out, err = run(capsys, "plan", "--json", "--netns", ns.name, "--batch", str(desired))
        assert rc == 0, err
        validate("plan.json", json.loads(out))
        rc, out, err = run(capsys, "apply", "--json", "--netns", ns.name, "--batch", str(desired), "--dry-run")
        assert rc == 0, err
        validate("apply.json", json.loads(out))
        rc, out, err = run(capsys, "apply", "--json", "--netns", ns.name, "--batch", str(desired))
        assert rc == 0, err
        validate("apply.json", json.loads(out))
        rc, out, err = run(capsys, "recover", "--json", "--netns", ns.name)
        assert rc == 0, err
        validate("recover.json", json.loads(out))
        rc, out, err = run(capsys, "confirm", "--json", "--netns", ns.name)
        assert rc == 1, err  # nothing waits
        validate("error.json", json.loads(out))
        rc, out, err = run(capsys, "audit", "--json", "--netns", ns.name)
        assert rc in (0, 5), err
        validate("audit.json", json.loads(out))
        rc, out, err = run(capsys, "get", "--json", "--netns", ns.name, "198.18.0.1", "from", "10.7.0.1")
        assert rc == 0, err
        validate("get.json", json.loads(out))
        assert json.loads(out)[0]["gateway"] == "10.7.0.9"
        for what, ipargs in (
            (["rules"], ["rule", "show"]),
            (["routes"], ["route", "show"]),
            (["routes", "table", "5"], ["route", "show", "table", "5"]),
            (["routes", "table", "100"], ["route", "show", "table", "100"]),
            (["rules", "-6"], ["-6", "rule", "show"]),
            (["routes", "-6"], ["-6", "route", "show"]),
            (["routes", "-6", "table", "5"], ["-6", "route", "show", "table", "5"]),
        ):
            rc, out, err = run(capsys, "show", *what, "--json", "--netns", ns.name)
            assert rc == 0, err
            ours = json.loads(out)
            validate("show-rules.json" if what[0] == "rules" else "show-routes.json", ours)
            theirs = json.loads(ns.ip("-j", *ipargs).stdout or "[]")
            assert ours == theirs, (what, ours, theirs)
        # a refused apply under --json: the error object (the model refuses it first, exit 1)
        bad = tmp_path / "bad.ip"
        bad.write_text(DESIRED + "route add 198.19.0.0/24 via 10.99.0.9 table 100\n")
        rc, out, err = run(capsys, "apply", "--json", "--netns", ns.name, "--batch", str(bad))
        assert rc in (1, 2), err
        validate("apply.json" if rc == 2 else "error.json", json.loads(out))
    # the namespace lock's file does not outlive the commands (plan, apply, a refused apply)
    assert not [p.name for p in run_dir.iterdir() if p.name.startswith("lock-")]


NEXTHOPS = (
    "link set lo up\nlink add v0 type veth peer name v0p\nlink set v0 up\nlink set v0p up\n"
    "addr add 10.7.0.1/24 dev v0\naddr add 2001:db8:7::1/64 dev v0 nodad\n"
    "nexthop add id 1 via 10.7.0.9 dev v0\nnexthop add id 2 dev v0\nnexthop add id 3 blackhole\n"
    "nexthop add id 4 via 2001:db8:7::9 dev v0\nnexthop add id 5 group 1/2,3\n"
    "nexthop add id 6 via 10.7.0.8 dev v0 proto static onlink\nroute add 10.20.0.0/16 nhid 5\n"
)


def test_show_nexthops_json_as_ip(capsys, tmp_path):
    """`show nexthops --json` for a batch equals `ip -j nexthop show` after the
    same batch in a namespace (all, -4, -6); --netns is an explicit error."""
    batch = tmp_path / "nh.ip"
    batch.write_text(NEXTHOPS)
    with Netns() as ns:
        assert not ns.batch(NEXTHOPS).refused()
        for family in ([], ["-4"], ["-6"]):
            rc, out, err = run(capsys, "show", "nexthops", *family, "--json", "--batch", str(batch))
            assert rc == 0, err
            ours = json.loads(out)
            validate("show-nexthops.json", ours)
            theirs = json.loads(ns.ip("-j", *family, "nexthop", "show").stdout or "[]")
            assert ours == theirs, (family, ours, theirs)
            rc, text, err = run(capsys, "show", "nexthops", *family, "--batch", str(batch))
            assert rc == 0, err
            assert text == ns.ip(*family, "nexthop", "show").stdout, family
        rc, out, err = run(capsys, "show", "nexthops", "--json", "--netns", ns.name)
        assert rc == 1, err
        validate("error.json", json.loads(out))
