"""Provisioning under faults: applies killed at random points and recovered
from the journal (both directions, with --prune and --adopt), signals during
an apply, and ``--confirm`` when the terminal or the process goes away.

Private namespaces only (``prt-*``, deleted in ``finally``); no packet is
sent.  Each test has its own run directory (POLROUTE_RUN_DIR).
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import random
import signal
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_provision import DesiredGen, _seed, assert_same, dumps, make_ns  # noqa: E402

from polroute.live.plan import plan  # noqa: E402

pytestmark = pytest.mark.kernel

FOREIGN = (
    "route add 10.9.0.0/16 via 10.200.0.254 dev v0 proto static\n"
    "rule add fwmark 7 lookup 1000 priority 900 protocol static\n"
    "rule add from 172.16.9.9 lookup 1003 priority 1003 protocol static\n"
)


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    d = tmp_path / "run"
    monkeypatch.setenv("POLROUTE_RUN_DIR", str(d))
    return d


def _start(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "polroute", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def _cli(*args: str, stdin=subprocess.DEVNULL) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "polroute", *args], capture_output=True, text=True, timeout=120, stdin=stdin
    )


def _adoptable(gen: DesiredGen, ns) -> str:
    """Foreign routes (proto static) under keys the desired state declares and
    the namespace does not hold yet: --adopt replaces them."""
    used = {str(r.get("table", "main")) for r in json.loads(ns.ip("-j", "route", "show", "table", "all").stdout)}
    tables = [k[3:] for k in gen.objs if k.startswith("r4-") and k[3:] not in used][:5]
    return "".join(f"route add default via 10.200.3.250 dev v3 table {t} proto static\n" for t in tables)


@pytest.mark.parametrize("direction", ["back", "forward"])
def test_killed_apply_is_recovered(run_dir, tmp_path, direction):
    """SIGKILL at a random point after the journal is written; then
    `polroute recover`: back, the dumps equal the state before (foreign
    objects included, replaced foreign routes restored); forward, the plan is
    empty.  Kills that land mid-apply must be at least a third of the trials
    (strace delays every netlink send and receive so that they can)."""
    rng = random.Random(_seed())
    ns = make_ns(0)
    mid = 0
    trials = int(os.environ.get("POLROUTE_FAULT_TRIALS", "12"))
    try:
        assert ns.ip("-batch", "-", stdin=FOREIGN).returncode == 0
        gen = DesiredGen(rng, 3000)
        first = tmp_path / "first.ip"
        first.write_text(gen.text(False))
        r = _cli("apply", "--batch", str(first), "--netns", ns.name)
        assert r.returncode == 0, r.stderr
        for trial in range(trials):
            for _ in range(4):  # a big change: the sends take tens of milliseconds
                gen.mutate()
            text = gen.text(False)
            desired = tmp_path / f"d{trial}.ip"
            desired.write_text(text)
            prune, adopt = rng.random() < 0.6, rng.random() < 0.5
            if adopt:
                assert ns.ip("-batch", "-", stdin=_adoptable(gen, ns)).returncode == 0
            before = dumps(ns)
            opts = ["--prune"] * prune + ["--adopt"] * adopt
            phases = sorted({op.phase + 1 for op in plan(text, ns.name, prune=prune, adopt=adopt).ops})
            tracer, pid = _start_slowed("apply", "--batch", str(desired), "--netns", ns.name, *opts)
            # kill inside a random phase: its progress is written just before it is sent, and
            # every netlink send and receive is held up 20 ms going in and coming out
            if phases and _wait_for_phase(run_dir, tracer, rng.choice(phases)):
                time.sleep(rng.uniform(0, 0.06))
            with contextlib.suppress(ProcessLookupError):  # it may have ended first: all of it applied
                os.kill(pid, signal.SIGKILL)
            tracer.communicate(timeout=60)
            pending = bool(list(run_dir.glob("journal-*")))
            mid += pending
            rec = _cli("recover", "--netns", ns.name, *(["--forward"] if direction == "forward" else []))
            assert rec.returncode == 0, rec.stdout + rec.stderr
            assert ("nothing to recover" in rec.stdout) == (not pending), rec.stdout
            assert list(run_dir.glob("*")) == [], "files left in the run directory"
            done = plan(text, ns.name, prune=prune, adopt=adopt).ops == []
            if direction == "back" and pending:
                assert_same(before, dumps(ns))
            elif direction == "forward" and pending:
                assert done, f"trial {trial}: not complete after recover --forward"
            else:  # killed before the journal (nothing sent) or after the end (all of it)
                assert done or dumps(ns) == before
            if not done:  # bring the namespace to this state for the next trial
                r = _cli("apply", "--batch", str(desired), "--netns", ns.name, *opts)
                assert r.returncode == 0, r.stderr
        assert mid >= trials // 3, f"only {mid} of {trials} kills landed during the apply"
        print(f"{mid} of {trials} kills landed during the apply")
    finally:
        ns.delete()


def _start_slowed(*args: str) -> tuple[subprocess.Popen, int]:
    """`polroute ARGS` under strace, every netlink send and receive delayed
    (syscall fault injection), so that a kill can land between and inside the
    phases; the tracer and the pid of polroute itself."""
    env = dict(os.environ)
    preload = env.pop("LD_PRELOAD", None)  # the tracer is not an ASan program; polroute gets it back
    calls = "sendmsg,sendto,sendmmsg,recvmsg,recvmmsg"
    cmd = ["strace", "-f", "-qq", "-o", "/dev/null", "-e", f"trace={calls}", "-e", f"inject={calls}:delay_enter=20000"]
    if preload:
        cmd += ["-E", f"LD_PRELOAD={preload}"]
    tracer = subprocess.Popen(
        [*cmd, sys.executable, "-m", "polroute", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    end = time.monotonic() + 30
    while time.monotonic() < end:
        try:
            with open(f"/proc/{tracer.pid}/task/{tracer.pid}/children") as f:
                kids = f.read().split()
        except OSError:
            kids = []
        if kids:
            return tracer, int(kids[0])
        time.sleep(0.005)
    raise AssertionError("strace did not start polroute")


def _wait_for_phase(run_dir, proc, phase: int) -> bool:
    """Wait until the apply announces phase ``phase`` (1-4) or a later one."""
    end = time.monotonic() + 60
    while time.monotonic() < end and proc.poll() is None:
        for f in run_dir.glob("state-*") if run_dir.exists() else []:
            try:
                if json.loads(f.read_bytes()).get("phases_started", 0) >= phase:
                    return True
            except (OSError, ValueError):
                pass
        time.sleep(0.0005)
    return False


def _wait_for_journal(run_dir, proc) -> bool:
    end = time.monotonic() + 60
    while time.monotonic() < end and proc.poll() is None:
        if run_dir.exists() and any(run_dir.glob("journal-*")):
            return True
        time.sleep(0.001)
    return False


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_signal_during_apply_rolls_back_at_once(run_dir, tmp_path, sig):
    rng = random.Random(_seed())
    ns = make_ns(0)
    try:
        assert ns.ip("-batch", "-", stdin=FOREIGN).returncode == 0
        gen = DesiredGen(rng, 600)
        desired = tmp_path / "d.ip"
        desired.write_text(gen.text(False))
        before = dumps(ns)
        proc = _start("apply", "--batch", str(desired), "--netns", ns.name, "--prune")
        landed = _wait_for_journal(run_dir, proc)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
        if landed and proc.returncode != 0:
            assert f"interrupted by {sig.name}" in err and "as it was before" in err, err
            assert proc.returncode == 2
            assert_same(before, dumps(ns))
        else:  # the apply ended before the signal was looked at
            assert proc.returncode == 0, err
        assert list(run_dir.glob("*")) == []
    finally:
        ns.delete()


def _confirm_apply(ns, desired, seconds: str, **kw) -> subprocess.Popen:
    return _start("apply", "--batch", str(desired), "--netns", ns.name, "--confirm", seconds, **kw)


def test_confirm_survives_the_death_of_the_applying_process(run_dir, tmp_path):
    """SIGKILL during the wait: the watchdog still rolls back at the deadline,
    and leaves no file behind."""
    ns = make_ns(0)
    try:
        desired = tmp_path / "d.ip"
        desired.write_text("route add default via 10.200.0.254 dev v0 table 7\n")
        before = dumps(ns)
        proc = _confirm_apply(ns, desired, "3")
        _wait_until(lambda: ns.ip("route", "show", "table", "7").stdout != "")
        proc.kill()
        proc.communicate(timeout=30)
        assert ns.ip("route", "show", "table", "7").stdout != ""  # still applied: the deadline is not there yet
        _wait_until(lambda: ns.ip("route", "show", "table", "7").stdout == "", timeout=15)
        assert_same(before, dumps(ns))
        _wait_until(lambda: list(run_dir.glob("*")) == [], timeout=5)
        c = _cli("confirm", "--netns", ns.name)
        assert c.returncode == 1 and "no apply is waiting" in c.stderr
    finally:
        ns.delete()


def _wait_until(cond, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


@pytest.mark.parametrize("typed, kept", [(b"yes\n", True), (b"\n", False), (b"no\n", False), (None, False)])
def test_confirm_on_a_terminal_needs_an_explicit_yes(run_dir, tmp_path, typed, kept):
    """Only `yes` keeps the change; Enter is no answer (the deadline decides),
    `no` undoes it at once, and a terminal that goes away (None: the pty is
    closed) is no answer either."""
    ns = make_ns(0)
    master, slave = pty.openpty()
    try:
        desired = tmp_path / "d.ip"
        desired.write_text("route add default via 10.200.0.254 dev v0 table 7\n")
        before = dumps(ns)
        t0 = time.monotonic()
        proc = _confirm_apply(ns, desired, "2", stdin=slave)
        os.close(slave)
        slave = -1
        _wait_until(lambda: ns.ip("route", "show", "table", "7").stdout != "")
        if typed is None:
            os.close(master)
            master = -1
        else:
            os.write(master, typed)
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - t0
        if kept:
            assert proc.returncode == 0 and "confirmed" in out, err
            assert ns.ip("route", "show", "table", "7").stdout != ""
        else:
            assert proc.returncode == 3, err
            assert_same(before, dumps(ns))
            if typed != b"no\n":
                assert took >= 2, "rolled back before the deadline without a no"
        assert list(run_dir.glob("*")) == []
    finally:
        for fd in (master, slave):
            if fd >= 0:
                os.close(fd)
        ns.delete()


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0", "soon"])
def test_confirm_seconds_must_be_finite_and_positive(run_dir, tmp_path, value):
    ns = make_ns(0)
    try:
        desired = tmp_path / "d.ip"
        desired.write_text("route add default via 10.200.0.254 dev v0 table 7\n")
        before = dumps(ns)
        r = _cli("apply", "--batch", str(desired), "--netns", ns.name, f"--confirm={value}")
        assert r.returncode == 1 and "--confirm" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
        assert_same(before, dumps(ns))
    finally:
        ns.delete()


def test_dry_run_with_confirm_does_not_promise_a_rollback(run_dir, tmp_path):
    ns = make_ns(0)
    try:
        desired = tmp_path / "d.ip"
        desired.write_text("route add default via 10.200.0.254 dev v0 table 7\n")
        r = _cli("apply", "--batch", str(desired), "--netns", ns.name, "--dry-run", "--confirm", "30")
        assert r.returncode == 0 and "rolled back" not in r.stderr and "dry run" in r.stdout + r.stderr
    finally:
        ns.delete()


def test_one_lock_per_namespace_whatever_its_spelling(run_dir, tmp_path):
    """A waiting --confirm holds the namespace: an apply naming it by path is refused."""
    ns = make_ns(0)
    try:
        desired = tmp_path / "d.ip"
        desired.write_text("route add default via 10.200.0.254 dev v0 table 7\n")
        proc = _confirm_apply(ns, desired, "5")
        _wait_until(lambda: ns.ip("route", "show", "table", "7").stdout != "")
        other = tmp_path / "o.ip"
        other.write_text("route add default via 10.200.0.254 dev v0 table 8\n")
        r = _cli("apply", "--batch", str(other), "--netns", f"/run/netns/{ns.name}")
        assert r.returncode == 1 and "another polroute process" in r.stderr, r.stderr
        assert ns.ip("route", "show", "table", "8").stdout == ""
        c = _cli("confirm", "--netns", f"/run/netns/{ns.name}")
        assert c.returncode == 0 and "confirmed" in c.stdout, c.stderr
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0 and "confirmed" in out, err
        c = _cli("confirm", "--netns", ns.name)
        assert c.returncode == 1  # no flag outlives its apply
    finally:
        ns.delete()


def _foreign_rules() -> list:
    """Foreign rules at priority 100 carrying the newer selectors (sent with
    polroute's own encoder: iproute2 6.1 has no keywords for them)."""
    import ipaddress

    from polroute.types.requests import (
        FRA_DPORT_MASK,
        FRA_DPORT_RANGE,
        FRA_DSCP,
        FRA_FLOWLABEL,
        FRA_FLOWLABEL_MASK,
        FRA_FWMARK,
        FRA_FWMASK,
        FRA_IP_PROTO,
        FRA_PRIORITY,
        FRA_PROTOCOL,
        FRA_SPORT_MASK,
        FRA_SPORT_RANGE,
        FRA_SRC,
        FRA_TABLE,
        FRA_UID_RANGE,
        NLM_F_CREATE,
        RTM_NEWRULE,
        RuleRequest,
        bit,
    )

    common = dict(msg_type=RTM_NEWRULE, nlmsg_flags=NLM_F_CREATE, action=1, table=3000, priority=100, protocol=4)
    base = bit(FRA_PRIORITY) | bit(FRA_TABLE) | bit(FRA_PROTOCOL)
    v4 = RuleRequest(
        **common, family=2, dscp=46, ip_proto=6, sport_start=0x0400, sport_end=0x0400, sport_mask=0xFF00,
        dport_start=443, dport_end=443, dport_mask=0xFFFF, uid_start=1000, uid_end=1999, fwmark=0x42, fwmask=0xFF,
        present=base | bit(FRA_DSCP) | bit(FRA_IP_PROTO) | bit(FRA_SPORT_RANGE) | bit(FRA_SPORT_MASK)
        | bit(FRA_DPORT_RANGE) | bit(FRA_DPORT_MASK) | bit(FRA_UID_RANGE) | bit(FRA_FWMARK) | bit(FRA_FWMASK),
    )  # fmt: skip
    v6 = RuleRequest(
        **common, family=10, flowlabel=0x12345, flowlabel_mask=0xFFFFF, src=ipaddress.ip_address("2001:db8:5::"),
        src_len=48, present=base | bit(FRA_FLOWLABEL) | bit(FRA_FLOWLABEL_MASK) | bit(FRA_SRC),
    )  # fmt: skip
    return [v4, v6]


def test_rollback_never_rewrites_foreign_rules(run_dir, tmp_path):
    """Owned rules around foreign ones at one priority; the apply deletes an
    owned rule and is not confirmed: the rollback puts the owned rule back,
    but restoring the old order would move the foreign rules, so it is
    reported and not done; the foreign rules keep every selector."""
    from polroute.live.netlink import KernelSocket
    from polroute.live.read import read_state

    ns = make_ns(0)
    try:
        owned = tmp_path / "owned.ip"
        owned.write_text("rule add from 172.16.0.1 lookup 1000 priority 100\n")
        assert _cli("apply", "--batch", str(owned), "--netns", ns.name).returncode == 0
        with KernelSocket(ns.name) as ks:
            assert all(o.ok for o in ks.send(_foreign_rules())), "the kernel took the foreign rules"
        owned.write_text(
            "rule add from 172.16.0.1 lookup 1000 priority 100\nrule add from 172.16.0.2 lookup 1000 priority 100\n"
        )
        assert _cli("apply", "--batch", str(owned), "--netns", ns.name).returncode == 0

        def at100():
            st = read_state(ns.name, sysctls=False)
            return [r for fam in st.rules for r in st.rules[fam] if r.priority == 100]

        before = at100()
        foreign = [r for r in before if r.protocol == 4]
        assert [r.dscp for r in foreign if r.family == 2] == [46] and len(foreign) == 2
        empty = tmp_path / "none.ip"
        empty.write_text("rule add from 172.16.0.2 lookup 1000 priority 100\n")
        r = _cli("apply", "--batch", str(empty), "--netns", ns.name, "--prune", "--confirm", "0.5")
        assert r.returncode == 4, r.stderr
        assert "would move 1 rule(s) polroute does not own: not done" in r.stderr, r.stderr
        after = at100()
        assert [x for x in after if x.protocol == 4] == foreign  # untouched: same objects, same order
        assert sorted(map(repr, after)) == sorted(map(repr, before))  # the owned rule is back
        assert list(run_dir.glob("*")) == []
    finally:
        ns.delete()
