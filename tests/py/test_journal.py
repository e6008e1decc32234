"""The run directory, the namespace lock, namespace names and the journal's request codec."""

import ipaddress
import multiprocessing
import os

import pytest

from polroute.live import journal
from polroute.live.netns import NetnsError, NetnsId, netns_id, netns_path
from polroute.types.requests import (
    NLM_F_CREATE,
    NLM_F_REPLACE,
    RTM_NEWROUTE,
    RTM_NEWRULE,
    NexthopRequest,
    RouteRequest,
    RuleRequest,
)


@pytest.fixture
def rundir(tmp_path, monkeypatch):
    d = tmp_path / "run"
    monkeypatch.setenv("POLROUTE_RUN_DIR", str(d))
    return d


def test_run_dir_is_0700_whatever_the_umask(rundir):
    old = os.umask(0)
    try:
        assert journal.run_dir() == str(rundir)
    finally:
        os.umask(old)
    assert rundir.stat().st_mode & 0o777 == 0o700
    journal.write_file("x", b"data")
    assert (rundir / "x").stat().st_mode & 0o777 == 0o600
    assert journal.read_file("x") == b"data"


def test_run_dir_open_to_others_or_a_symlink_is_refused(rundir, tmp_path):
    rundir.mkdir(mode=0o700)
    rundir.chmod(0o755)  # an older polroute's: only readable by others, so closed
    journal.run_dir()
    assert rundir.stat().st_mode & 0o777 == 0o700
    rundir.chmod(0o777)
    with pytest.raises(journal.RunDirError, match="writable by other users"):
        journal.run_dir()
    rundir.rmdir()
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    rundir.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(journal.RunDirError, match="not a directory"):
        journal.run_dir()


def test_files_are_never_read_through_a_symlink(rundir, tmp_path):
    journal.run_dir()
    (tmp_path / "planted").write_text("confirm")
    (rundir / "confirm-x").symlink_to(tmp_path / "planted")
    with pytest.raises(journal.RunDirError, match="symbolic link"):
        journal.read_file("confirm-x")
    with pytest.raises(FileExistsError):
        journal.write_file("confirm-x", b"", exclusive=True)


def _try_lock(ns, q):
    try:
        with journal.NamespaceLock(ns):
            q.put("got it")
    except journal.LockBusy as e:
        q.put(str(e))


def test_one_lock_per_namespace_identity(rundir):
    ns = NetnsId(4, 1234, "/run/netns/a")
    other_spelling = NetnsId(4, 1234, "/var/run/netns/a")
    assert ns == other_spelling and ns.tag == other_spelling.tag
    ctx = multiprocessing.get_context("fork")
    with journal.NamespaceLock(ns):
        q = ctx.Queue()
        p = ctx.Process(target=_try_lock, args=(other_spelling, q))
        p.start()
        p.join(10)
        msg = q.get(timeout=5)
        assert msg.startswith(f"another polroute process (pid {os.getpid()}) is changing /var/run/netns/a")
    assert not (rundir / f"lock-{ns.tag}").exists()  # no lock file outlives its holder
    q = ctx.Queue()
    p = ctx.Process(target=_try_lock, args=(other_spelling, q))
    p.start()
    p.join(10)
    assert q.get(timeout=5) == "got it"


def test_netns_names_are_ip_netns_names_or_absolute_paths(tmp_path):
    assert netns_path(None) is None and netns_path("") is None
    assert netns_path("edge1") == "/run/netns/edge1"
    assert netns_path("/proc/1/ns/net") == "/proc/1/ns/net"
    for bad in ("../x", "a/b", ".", ".."):
        with pytest.raises(NetnsError, match="a name from `ip netns` or an absolute path"):
            netns_path(bad)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(NetnsError, match="not a namespace file"):
        netns_id(str(fifo))  # opened without blocking: no hang
    with pytest.raises(NetnsError, match="not a network namespace"):
        netns_id("/proc/self/ns/uts")
    own = netns_id(None)
    assert own == netns_id("/proc/self/ns/net") and own.path == ""


def test_requests_round_trip_through_json():
    rule = RuleRequest(
        RTM_NEWRULE, NLM_F_CREATE, family=10, src=ipaddress.ip_address("2001:db8::1"), src_len=128,
        priority=100, table=7, dscp=46, present=123, iifname="eth0", sport_start=1, sport_end=2, sport_mask=3,
    )  # fmt: skip
    route = RouteRequest(
        RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, dst=ipaddress.ip_address("10.0.0.0"), dst_len=8,
        nexthops=[NexthopRequest(ipaddress.ip_address("10.1.0.1"), 3, 2, 4)], metrics={2: 1400, 16: 7},
    )  # fmt: skip
    import json

    for req in (rule, route):
        assert journal.request_from_json(json.loads(json.dumps(journal.request_to_json(req)))) == req


def test_process_identity_survives_pid_reuse():
    me = journal.owner_record()
    assert journal.alive(me)
    assert not journal.alive(dict(me, start=me["start"] + 1))
    assert not journal.alive({"pid": 2**22 + 12345, "start": 1})
