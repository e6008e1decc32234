"""Progress and messages against the kernel, in private namespaces (prt-*):
--dry-run says what it would do, running out of memory or descriptors is one
line with the kernel state told truthfully, multihome conflicts name the host
file's line, and snapshot -4 then -6 restore a dual-stack namespace."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
from netns import Netns  # noqa: E402
from test_snapshot import diff_dumps, dump, restore  # noqa: E402

from multihome_fixtures import TWO_NIC_HOST  # noqa: E402
from polroute.cli import app as cli  # noqa: E402
from polroute.cli.demo import split_recipe, two_nic_batch  # noqa: E402

pytestmark = pytest.mark.kernel

BASE = (
    "link set lo up\nlink add v0 type veth peer name v0p\nlink set v0 up\nlink set v0p up\n"
    "addr add 10.7.0.1/24 dev v0\n"
)
DESIRED = "route add 198.18.0.0/24 via 10.7.0.9 dev v0 table 100\nrule add pref 100 from 10.7.0.0/24 lookup 100\n"


def _owned(ns: Netns) -> list[str]:
    return [l for args in (["rule"], ["route", "show", "table", "100"]) for l in ns.ip(*args).stdout.splitlines()]


def _run(capsys, *argv):
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_apply_dry_run_prints_the_plan_and_what_it_would_do(capsys, tmp_path):
    path = tmp_path / "d.ip"
    path.write_text(DESIRED)
    with Netns() as ns:
        assert not ns.batch(BASE).refused()
        before = _owned(ns)
        for extra in ([], ["--confirm", "5"]):
            rc, out, err = _run(capsys, "apply", "--netns", ns.name, "--batch", str(path), "--dry-run", *extra)
            assert rc == 0, err
            assert out.startswith(f"# plan for namespace {ns.name}, owner protocol 245: 1 routes add, 1 rules add")
            assert "route add 198.18.0.0/24 table 100 via 10.7.0.9 dev v0 proto 245" in out
            assert out.endswith(f"dry run (namespace {ns.name}): would apply 1 routes add, 1 rules add; 0 unchanged\n")
            assert "roll" not in (out + err).lower() and "confirm" not in (out + err).lower()
            assert _owned(ns) == before


def test_reported_plan_time_includes_parsing(capsys, tmp_path, monkeypatch):
    from polroute.live import desired

    slow_parse = desired.parse_desired

    def parse(*a, **kw):
        time.sleep(0.4)
        return slow_parse(*a, **kw)

    monkeypatch.setattr(desired, "parse_desired", parse)
    path = tmp_path / "d.ip"
    path.write_text(DESIRED)
    with Netns() as ns:
        assert not ns.batch(BASE).refused()
        rc, out, err = _run(capsys, "apply", "--netns", ns.name, "--batch", str(path), "--json")
        assert rc == 0, err
        import json

        seconds = json.loads(out)["seconds"]
        assert seconds["plan"] >= 0.4 and seconds["total"] >= 0.4, seconds


@pytest.mark.parametrize("exc", [MemoryError(), OSError(24, "Too many open files")], ids=["memory", "emfile"])
def test_running_out_after_sending_is_undone_and_said(capsys, tmp_path, monkeypatch, exc):
    """A raw MemoryError / EMFILE between two phases: the first phase is in
    the kernel; the CLI undoes it from the journal and says so (exit 2)."""
    import polroute.live.apply as live_apply

    real = live_apply.send_all
    calls = []

    def send_all(ks, batch):
        calls.append(1)
        if len(calls) == 2:
            raise exc
        return real(ks, batch)

    monkeypatch.setattr(live_apply, "send_all", send_all)
    path = tmp_path / "d.ip"
    path.write_text(DESIRED)
    with Netns() as ns:
        assert not ns.batch(BASE).refused()
        before = _owned(ns)
        rc, out, err = _run(capsys, "apply", "--netns", ns.name, "--batch", str(path))
        problem = "out of memory" if isinstance(exc, MemoryError) else "too many open files"
        assert rc == 2 and out == "", err
        assert err == (
            f"polroute: apply: {problem} while applying; the 2 operation(s) it may have sent "
            "were undone from its journal\n"
        )
        assert _owned(ns) == before
        # before anything was sent (reading the namespace): nothing changed, exit 1
        import polroute.live.read as live_read

        def read_state(*a, **kw):
            raise exc

        monkeypatch.setattr(live_read, "read_state", read_state)
        rc, out, err = _run(capsys, "apply", "--netns", ns.name, "--batch", str(path))
        assert (rc, out, err) == (1, "", f"polroute: apply: {problem}; nothing was changed\n")
        monkeypatch.undo()
        assert _owned(ns) == before


def test_ulimit_descriptors_apply_is_one_line_and_all_or_nothing(tmp_path):
    path = tmp_path / "d.ip"
    path.write_text(DESIRED)
    polroute = [sys.executable, "-m", "polroute"]
    with Netns() as ns:
        assert not ns.batch(BASE).refused()
        before = _owned(ns)
        seen = set()
        for n in range(6, 14):
            cmd = " ".join(polroute + ["apply", "--netns", ns.name, "--batch", str(path)])
            res = subprocess.run(["bash", "-c", f"ulimit -n {n}; exec {cmd}"], capture_output=True, text=True)
            assert "Traceback" not in res.stderr, (n, res.stderr)
            seen.add(res.returncode)
            if res.returncode == 0:
                assert _owned(ns) != before
                assert ns.ip("rule", "del", "pref", "100").returncode == 0
                assert ns.ip("route", "flush", "table", "100").returncode == 0
            else:
                assert res.returncode in (1, 2), res
                assert res.stderr.startswith("polroute: apply: too many open files"), res.stderr
                assert res.stderr.count("\n") == 1, res.stderr
            assert _owned(ns) == before, n
        assert 0 in seen and seen - {0}, seen


def test_multihome_conflict_names_the_yaml_line(capsys, tmp_path):
    base, _ = split_recipe(two_nic_batch())
    host = tmp_path / "host.yaml"
    host.write_text(TWO_NIC_HOST)
    with Netns() as ns:
        assert not ns.batch(base).refused()
        assert not ns.batch("route add default via 192.168.16.1 dev eth1 table 2 proto static\n").refused()
        rc, out, err = _run(capsys, "multihome", "apply", str(host), "--netns", ns.name)
        assert rc == 1 and out == ""
        first = err.splitlines()[0]
        # line 11 of the host file is eth1's `gateway:`
        assert first.startswith(f"polroute multihome: apply: {host}:11 (uplink eth1, uplinks[1].gateway: `route add"), (
            err
        )
        assert "--adopt" not in err and "rendered batch" not in err
        assert err.endswith("polroute multihome: apply: nothing was changed\n")


def test_snapshot_v4_then_v6_restore_a_dual_stack_namespace(capsys):
    with Netns() as a, Netns() as b:
        r = a.batch(
            "link add v0 type veth peer name v0p\nlink add v1 type veth peer name v1p\n"
            "link set v0 addrgenmode none\nlink set v0p addrgenmode none\n"
            "link set v1 addrgenmode none\nlink set v1p addrgenmode none\nlink set lo up\n"
            "link set v0 up\nlink set v0p up\nlink set v1 up\nlink set v1p up\n"
            "addr add 10.1.0.1/24 dev v0\naddr add 10.2.0.1/24 dev v1\n"
            "addr add 2001:db8:1::1/64 dev v0 nodad\naddr add 2001:db8:2::1/64 dev v1 nodad\n"
            "route add 198.18.0.0/24 via 10.1.0.9 table 100\n"
            "route add 2001:db8:9::/64 via 2001:db8:1::9 table 100\n"
            "rule add pref 100 from 10.1.0.0/24 lookup 100\n"
        )
        assert not r.refused(), r.refused()
        assert not a.batch("rule add pref 100 from 2001:db8:1::/64 lookup 100\n", family=6).refused()
        a.settle()
        assert cli.main(["snapshot", "--netns", a.name, "-4"]) == 0
        v4 = capsys.readouterr().out
        assert cli.main(["snapshot", "--netns", a.name, "-6"]) == 0
        v6 = capsys.readouterr().out
        assert "link add v0p type veth peer name v0" in v4 or "link add v0 type veth peer name v0p" in v4
        assert "link add" not in v6 and "10.1.0" not in v6 and "2001:db8" not in v4
        assert restore(b, [([], v4), (["-6"], v6)], []) == []
        b.settle()
        assert not diff_dumps(dump(a), dump(b))
