"""Bulk evaluation equals one-at-a-time answers; buffers are validated; the GIL is released."""

import array
import ipaddress
import threading
import time

import numpy as np
import pytest

from polroute import Policy
from polroute.cli.demo import two_nic_batch
from polroute.iproute2.batch import apply_batch
from polroute.iproute2.route_get import route_get
from polroute.model.bulk import NO_RULE, lookup_bulk

ERRNO = {"ENETUNREACH": 101, "EINVAL": 22, "EHOSTUNREACH": 113, "EACCES": 13}
TYPES = {"unicast": 1, "local": 2, "broadcast": 3, "multicast": 5}


@pytest.fixture(scope="module")
def policy():
    p = Policy()
    apply_batch(
        p,
        two_nic_batch() + "route add prohibit 203.0.113.0/24 table 2\n"
        "route add 198.51.100.0/24 via 192.168.16.2 dev eth1 table 1\n",
    )
    return p


def u32(s):
    return int(ipaddress.IPv4Address(s))


def test_bulk_equals_single_lookups(policy):
    rng = np.random.default_rng(7)
    n = 3000
    picks = np.array(
        [
            u32(a)
            for a in (
                "8.8.8.8",
                "192.168.16.20",
                "192.168.16.255",
                "203.0.113.9",
                "198.51.100.1",
                "224.0.0.5",
                "127.0.0.1",
                "0.0.0.0",
            )
        ],
        dtype=np.uint32,
    )
    dst = np.where(
        rng.random(n) < 0.5, rng.integers(0, 2**32, n, dtype=np.uint32), picks[rng.integers(0, len(picks), n)]
    ).astype(np.uint32)
    srcs = np.array([0, u32("192.168.16.20"), u32("192.168.16.21"), u32("10.9.9.9")], dtype=np.uint32)
    src = srcs[rng.integers(0, len(srcs), n)]
    oif = np.where(rng.random(n) < 0.1, policy.ifindex("eth1"), 0).astype(np.uint32)
    r = lookup_bulk(policy, dst, src=src, oif=oif)
    names = {l.ifindex: l.name for l in policy.links()}
    for i in range(n):
        argv = [str(ipaddress.IPv4Address(int(dst[i])))]
        if src[i]:
            argv += ["from", str(ipaddress.IPv4Address(int(src[i])))]
        if oif[i]:
            argv += ["oif", names[int(oif[i])]]
        one = route_get(policy, argv)
        assert r.error[i] == one.error, argv
        if one.error:
            continue
        assert r.type[i] == TYPES[one.type], argv
        assert names.get(int(r.oif[i])) == one.dev, argv
        gw = int(r.gateway[i])
        assert (str(ipaddress.IPv4Address(gw)) if gw else None) == one.gateway, argv
        ps = int(r.prefsrc[i])
        assert ps == (u32(one.prefsrc) if one.prefsrc else (u32(one.from_) if one.from_ else 0)) or (
            one.prefsrc is None and ps == 0
        ), argv
        want_rule = one.rule_priority if one.rule_priority is not None else NO_RULE
        assert r.rule_priority[i] == want_rule, argv
        assert r.table[i] == one.table_id, argv


def test_bulk_accepts_array_module_and_reuses_out(policy):
    dst = array.array("I", [u32("8.8.8.8")] * 4)
    src = array.array("I", [u32("192.168.16.21")] * 4)
    r = lookup_bulk(policy, dst, src=src)
    assert list(r.oif) == [policy.ifindex("eth1")] * 4
    r2 = lookup_bulk(policy, dst, out=r)
    assert r2 is r and list(r.oif) == [policy.ifindex("eth0")] * 4


def test_bulk_rejects_bad_columns(policy):
    with pytest.raises(TypeError):
        lookup_bulk(policy, np.zeros(4, dtype=np.float32))
    with pytest.raises(ValueError):
        lookup_bulk(policy, np.zeros(4, dtype=np.uint32), src=np.zeros(3, dtype=np.uint32))
    with pytest.raises(TypeError):
        lookup_bulk(policy, np.array([-1, 2], dtype=np.int64))
    with pytest.raises(ValueError):
        lookup_bulk(policy, np.zeros((2, 2), dtype=np.uint32))


def test_bulk_releases_the_gil(policy):
    """While one thread evaluates, the main thread keeps running (stall method)."""
    n = 2_000_000
    dst = np.random.default_rng(1).integers(0, 2**32, n, dtype=np.uint32)
    done = threading.Event()
    worst = 0.0

    def work():
        lookup_bulk(policy, dst)
        done.set()

    t = threading.Thread(target=work)
    start = last = time.perf_counter()
    t.start()
    ticks = 0
    while not done.is_set():
        now = time.perf_counter()
        worst = max(worst, now - last)
        last = now
        ticks += 1
    t.join()
    duration = time.perf_counter() - start
    assert ticks > 100, "main thread did not run while C evaluated"
    # with the GIL held the main thread would stall for the whole call; on a
    # loaded machine it may still wait a while for a CPU, hence the margin
    assert worst < 0.6 * duration, f"main thread stalled {worst:.3f}s of {duration:.3f}s: GIL held?"


def test_index_compiled_and_linear_walks_agree(monkeypatch):
    """A tenant policy with fwmark/iif/dport/tos/to rules among the tenants and a
    main table big enough to be compiled: the rule index with compiled tables,
    the linear rule walk and uncompiled tries give the same answers."""
    from polroute.cli.bench_workloads import build_tenants, tenant_flows
    from polroute.model import bulk as bulk_mod

    fields = ("error", "type", "table", "rule_priority", "oif", "gateway", "prefsrc", "flags")
    flows = tenant_flows(4000, 300, mixed=True).cols
    flows["dst"][:300] = (0xAC100000 + np.arange(300)).astype(np.uint32)  # local addresses
    compiled = build_tenants(300, mixed=True, n_main=600)
    fast = lookup_bulk(compiled, **flows)
    slow = lookup_bulk(compiled, **flows, linear=True)
    monkeypatch.setattr(bulk_mod, "COMPILE_MIN_PREFIXES", 10**9)
    plain = lookup_bulk(build_tenants(300, mixed=True, n_main=600), **flows)
    for f in fields:
        assert np.array_equal(getattr(fast, f), getattr(slow, f)), f
        assert np.array_equal(getattr(fast, f), getattr(plain, f)), f
    assert len(set(fast.table.tolist())) > 100  # many tenants' tables were hit


def test_compiled_snapshot_is_immutable_and_answers_the_same():
    """A snapshot answers as its policy did when it was taken, whatever the
    writer does to the policy afterwards; the next publish sees the change."""
    from polroute.cli.bench_workloads import build_tenants, tenant_flows
    from polroute.iproute2.batch import apply_batch
    from polroute.model.compiled import Published

    p = build_tenants(50)
    flows = tenant_flows(2000, 60).cols  # tenants 50..59 do not exist yet
    pub = Published(p)
    snap = pub.current
    before = lookup_bulk(p, **flows)
    apply_batch(
        p,
        "addr add 172.16.0.55/32 dev v0\nroute add default via 10.200.0.254 dev v0 table 1055\n"
        "rule add from 172.16.0.55/32 lookup 1055 priority 5\nroute del default\n",
    )
    after = lookup_bulk(p, **flows)
    old = snap.lookup_bulk(**flows)
    assert np.array_equal(old.table, before.table) and np.array_equal(old.error, before.error)
    assert not np.array_equal(after.table, before.table)
    new = pub.publish(p).lookup_bulk(**flows)
    assert np.array_equal(new.table, after.table) and np.array_equal(new.error, after.error)
    assert pub.current is not snap
