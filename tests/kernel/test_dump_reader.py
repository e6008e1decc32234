"""The C dump reader against the pyroute2 reader, field by field.

Each namespace is read twice, ``read_state(ns)`` (C, csrc/nl_dump.c +
polroute/live/dump.py) and ``read_state_pyroute2(ns)`` (tests/kernel/pyroute2_state.py); every
record of the two KernelStates must be equal, field by field.  Namespaces:

* the random scenarios of tests/kernel/scenario.py (IPv4 and IPv6: rule
  changes, multipath, links down, deleted links, sysctls...);
* a focused generator (below) for what those rarely make: rules with many
  selectors at once (ports with implicit masks, uid ranges, tun_id, goto, nop,
  suppress_*), routes in tables > 255, multipath legs with weights and
  realms, every metric iproute2 writes (locks, congctl, features,
  fastopen_no_cookie), prefsrc, realms, IPv6 pref, addresses with peers,
  labels, broadcasts and metrics, nexthop objects.

Known differences, each one an attribute that pyroute2 0.9.7 has no name for
and kernel_state.py means to read (the C reader reads it): RTA_NH_ID (a route
using a nexthop object: nh_id, its present bit, "nhid (nexthop objects)") and
RTAX_FASTOPEN_NO_COOKIE (metric 17).  They are checked to be exactly that
and then folded away.

Only configuration and dumps: no packet is sent.  Namespaces are ``prt-*``,
deleted in ``finally``.  POLROUTE_DUMP_SCENARIOS=N (default 16) and
POLROUTE_SEED=N.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import random
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netns import Netns, cleanup_all  # noqa: E402
from pyroute2_state import read_state_pyroute2  # noqa: E402
from scenario import generate, scenario_seeds  # noqa: E402

pytestmark = pytest.mark.kernel
pytest.importorskip("pyroute2")

from polroute.live.objects import KernelState  # noqa: E402
from polroute.live.read import read_state  # noqa: E402
from polroute.types.requests import AF_INET, AF_INET6, RTA_NH_ID  # noqa: E402

SEED = int(os.environ.get("POLROUTE_SEED", "0") or 0, 0) or int.from_bytes(os.urandom(5), "big")
COUNT = int(os.environ.get("POLROUTE_DUMP_SCENARIOS", "16"), 0)
RTAX_FASTOPEN_NO_COOKIE = 17


@pytest.fixture(scope="module", autouse=True)
def _cleanup():
    yield
    cleanup_all()


# ---------------------------------------------------------------------------
# the focused generator
# ---------------------------------------------------------------------------


def focused_batches(seed: int) -> tuple[str, str]:
    """(ip -batch text, ip -6 -batch text) for one seed: links and addresses,
    routes (before the rules: a gateway route after many rules is slow to
    add), then rules."""
    r = random.Random(seed)
    nlinks = r.randint(2, 4)
    v4, _v6 = [], []
    for i in range(nlinks):
        v4 += [
            f"link add d{i} type veth peer name d{i}p",
            f"link set d{i} addrgenmode none",
            f"link set d{i}p addrgenmode none",
        ]
        if r.random() < 0.3:
            v4.append(f"link set d{i} group {r.randint(1, 9)}")
    v4.append("link set lo up")
    for i in range(nlinks):
        v4 += [f"link set d{i} up", f"link set d{i}p up"]
        v4.append(
            f"addr add 10.{i}.0.1/24 dev d{i}"
            + r.choice(["", f" brd 10.{i}.0.255", f" label d{i}:x", f" metric {r.randint(1, 99)}", " noprefixroute"])
        )
        if r.random() < 0.4:
            v4.append(f"addr add 10.{i}.1.1 peer 10.{i}.1.2/32 dev d{i}")
        if r.random() < 0.5:
            v4.append(f"addr add 10.{i}.0.{r.randint(2, 200)}/24 dev d{i}")  # secondary
        v4.append(f"addr add 2001:db8:{i}::1/64 dev d{i} nodad")
        if r.random() < 0.3:
            v4.append(f"addr add fe80::{i + 1}/64 dev d{i} nodad")
    tables = [r.choice([100, 254, 300, 1000, 65536, 100000, 4000000000]) for _ in range(4)]
    metrics = [
        ["mtu", "1400"],
        ["mtu", "lock", "1300"],
        ["window", "1000"],
        ["rtt", "12"],
        ["rttvar", "7"],
        ["ssthresh", "9"],
        ["cwnd", "11"],
        ["advmss", "1200"],
        ["reordering", "4"],
        ["hoplimit", "9"],
        ["initcwnd", "10"],
        ["initrwnd", "20"],
        ["rto_min", "50ms"],
        ["quickack", "1"],
        ["features", "ecn"],
        ["congctl", "reno"],
        ["congctl", "lock", "reno"],
        ["fastopen_no_cookie", "1"],
    ]
    for n in range(r.randint(20, 60)):
        fam = r.choice([4, 6])
        i = r.randrange(nlinks)
        table = r.choice(tables)
        if fam == 4:
            dst = f"198.{18 + n % 2}.{n}.0/{r.choice([24, 25, 32])}"
            gw = f"10.{i}.0.{r.randint(2, 250)}"
        else:
            dst = f"2001:db8:{0x100 + n:x}::/{r.choice([48, 64, 128])}"
            gw = f"2001:db8:{i}::{r.randint(2, 250):x}"
        opts = [f"table {table}"]
        kind = r.random()
        if kind < 0.3:
            legs = []
            for _ in range(r.randint(2, 3)):
                j = r.randrange(nlinks)
                leg_gw = f"10.{j}.0.{r.randint(2, 250)}" if fam == 4 else f"2001:db8:{j}::{r.randint(2, 250):x}"
                leg = f"nexthop via {leg_gw} dev d{j} weight {r.randint(1, 256)}"
                if fam == 4 and r.random() < 0.3:
                    leg += f" realms {r.randint(1, 255)}"
                legs.append(leg)
            tail = " ".join(legs)
        elif kind < 0.7:
            tail = f"via {gw} dev d{i}" + (" onlink" if r.random() < 0.2 else "")
        elif kind < 0.85:
            tail = f"dev d{i} scope link" if fam == 4 else f"dev d{i}"
        else:
            tail = ""
            dst = r.choice(["blackhole ", "unreachable ", "prohibit ", "throw "]) + dst
        if r.random() < 0.5:
            opts.append(f"metric {r.choice([0, 1, 7, 1024, 4294967295])}")
        if r.random() < 0.3 and kind < 0.85:
            opts.append(f"src 10.{i}.0.1" if fam == 4 else f"src 2001:db8:{i}::1")
        if fam == 4 and r.random() < 0.2:
            opts.append(f"tos {r.choice(['0x10', '0x08', '0x04'])}")
        if fam == 4 and r.random() < 0.2 and kind < 0.85:
            opts.append(f"realms {r.randint(1, 255)}")
        if fam == 6 and r.random() < 0.2 and kind < 0.85:
            opts.append(f"pref {r.choice(['low', 'high', 'medium'])}")
        if r.random() < 0.3:
            opts.append(f"proto {r.choice(['static', 'kernel', 'bird', '99', '250'])}")
        for m in r.sample(metrics, r.choice([0, 0, 1, 3])):
            if m[0] in ("congctl", "fastopen_no_cookie", "quickack") and fam == 6 and r.random() < 0.5:
                continue
            opts += m
        v4.append(f"route add {dst} {' '.join(opts)} {tail}".rstrip())
    # a nexthop object and a route using it
    if r.random() < 0.5:
        v4 += ["nexthop add id 7 via 10.0.0.9 dev d0", "route add 203.0.113.0/24 nhid 7 table 100"]
    rules4, rules6 = [], []
    for n in range(r.randint(5, 25)):
        fam = r.choice([4, 6])
        parts = [f"pref {r.randint(1, 32000)}"]
        if r.random() < 0.15:
            parts.append("not")
        if r.random() < 0.5:
            parts.append(
                f"from 10.{r.randrange(nlinks)}.0.0/{r.choice([16, 24, 32])}"
                if fam == 4
                else f"from 2001:db8:{r.randrange(nlinks)}::/{r.choice([48, 64, 128])}"
            )
        if r.random() < 0.4:
            parts.append(f"to 198.18.{n}.0/24" if fam == 4 else f"to 2001:db8:{0x100 + n:x}::/64")
        if r.random() < 0.3:
            parts.append(f"iif d{r.randrange(nlinks)}")
        if r.random() < 0.3:
            parts.append(r.choice(["oif d0", "oif ghost7"]))
        if r.random() < 0.3:
            parts.append(f"fwmark {r.choice(['0x1', '0x10/0xf0', '0x0/0xffffffff'])}")
        if r.random() < 0.3:
            parts.append(f"uidrange {r.choice(['1000-2000', '0-0', '5-5'])}")
        if r.random() < 0.3:
            parts.append(f"ipproto {r.choice(['tcp', 'udp', '6'])}")
        if r.random() < 0.3:
            parts.append(f"sport {r.choice(['53', '1000-2000', '0-65535'])}")
        if r.random() < 0.3:
            parts.append(f"dport {r.choice(['443', '1-1024'])}")
        if r.random() < 0.2:
            parts.append(f"tos {r.choice(['0x10', '0x08'])}")
        if r.random() < 0.15:
            parts.append(f"tun_id {r.randint(1, 1 << 40)}")
        if fam == 4 and r.random() < 0.15:
            parts.append(f"realms {r.randint(1, 255)}")
        if r.random() < 0.2:
            parts.append(f"protocol {r.choice(['static', 'bird', '99'])}")
        action = r.random()
        if action < 0.6:
            parts.append(f"lookup {r.choice(tables)}")
            if r.random() < 0.3:
                parts.append(f"suppress_prefixlength {r.choice([0, 8, 24])}")
            if r.random() < 0.2:
                parts.append(f"suppress_ifgroup {r.randint(1, 9)}")
        elif action < 0.7:
            parts.append("goto 32000")
        elif action < 0.8:
            parts.append("nop")
        else:
            parts.append(r.choice(["blackhole", "unreachable", "prohibit"]))
        (rules4 if fam == 4 else rules6).append("rule add " + " ".join(parts))
    if r.random() < 0.3:
        rules4.append("rule del pref 32767")
    return "\n".join(v4 + rules4) + "\n", "\n".join(rules6) + "\n"


# ---------------------------------------------------------------------------
# comparison
# ---------------------------------------------------------------------------


def _fold_known(c: KernelState, p: KernelState, where: str) -> list[str]:
    """Fold the attributes pyroute2 0.9.7 cannot name out of the C state,
    after checking that they are the only difference they make."""
    problems = []
    for _fam, routes in c.routes.items():
        for r in routes:
            if r.nh_id:
                want = "nhid (nexthop objects)"
                if want not in r.unsupported or not r.present >> RTA_NH_ID & 1:
                    problems.append(f"{where}: route with nh_id {r.nh_id} lacks its marks: {r}")
                r.nh_id = 0
                r.present &= ~(1 << RTA_NH_ID)
                if want in r.unsupported:
                    r.unsupported.remove(want)
            if RTAX_FASTOPEN_NO_COOKIE in r.metrics:
                del r.metrics[RTAX_FASTOPEN_NO_COOKIE]
                if not r.metrics:
                    r.present &= ~(1 << 8)  # RTA_METRICS
    return problems


def diff_states(c: KernelState, p: KernelState, where: str) -> list[str]:
    out = []

    def records(kind: str, a: list, b: list) -> None:
        if len(a) != len(b):
            out.append(f"{where} {kind}: {len(a)} records (C) / {len(b)} (pyroute2)")
        for i, (x, y) in enumerate(zip(a, b)):
            if type(x) is not type(y):
                out.append(f"{where} {kind}[{i}]: {type(x).__name__} / {type(y).__name__}")
                continue
            for f in dataclasses.fields(x):
                vx, vy = getattr(x, f.name), getattr(y, f.name)
                if vx != vy or type(vx) is not type(vy):
                    out.append(f"{where} {kind}[{i}].{f.name}: C {vx!r} / pyroute2 {vy!r} (record {y})")

    records("links", c.links, p.links)
    records("addrs", c.addrs, p.addrs)
    for fam in sorted(set(c.rules) | set(p.rules)):
        records(f"rules[{fam}]", c.rules.get(fam, []), p.rules.get(fam, []))
    for fam in sorted(set(c.routes) | set(p.routes)):
        records(f"routes[{fam}]", c.routes.get(fam, []), p.routes.get(fam, []))
    if c.sysctls != p.sysctls:
        out.append(f"{where} sysctls differ")
    if c.v4_merged != p.v4_merged:
        out.append(f"{where} v4_merged: C {c.v4_merged} / pyroute2 {p.v4_merged}")
    return out


def read_both(ns: Netns, where: str) -> tuple[list[str], KernelState]:
    c = read_state(ns.name)
    p = read_state_pyroute2(ns.name)
    c_raw = copy.deepcopy(c)
    problems = _fold_known(c, p, where)
    return problems + diff_states(c, p, where), c_raw


def one_scenario(seed: int, family: int) -> dict:
    sc = generate(seed, family)
    res = {"where": f"POLROUTE_SCENARIO={seed}:{family}", "problems": [], "skipped": False, "routes": 0}
    ns = Netns()
    try:
        ns.create()
        r = ns.batch(sc.batch_text, family=sc.batch_family)
        if r.fatal is not None:
            res["skipped"] = True
            return res
        for k, v in sc.sysctls:
            ns.sysctl(k, v)
        ns.settle()
        res["problems"], state = read_both(ns, res["where"])
        res["routes"] = sum(len(v) for v in state.routes.values())
    finally:
        ns.delete()
    return res


def one_focused(seed: int) -> dict:
    text4, text6 = focused_batches(seed)
    res = {"where": f"focused seed {seed}", "problems": [], "skipped": False, "routes": 0}
    ns = Netns()
    try:
        ns.create()
        ns.batch(text4)
        ns.batch(text6, family=6)
        ns.settle()
        res["problems"], state = read_both(ns, res["where"])
        res["routes"] = sum(len(v) for v in state.routes.values())
        res["state"] = state
    finally:
        ns.delete()
    return res


# ---------------------------------------------------------------------------


def test_c_reader_equals_pyroute2_on_scenarios(kernel_ok, capsys):
    seeds = scenario_seeds(SEED ^ 0xD00D, COUNT)
    with ThreadPoolExecutor(max_workers=4) as ex:
        results = list(ex.map(lambda sf: one_scenario(*sf), seeds))
    done = [r for r in results if not r["skipped"]]
    with capsys.disabled():
        print(
            f"\n[polroute dump reader] POLROUTE_SEED={SEED}: {len(done)} scenarios, "
            f"{sum(r['routes'] for r in done)} routes compared"
        )
    assert len(done) >= len(seeds) // 2
    problems = [p for r in done for p in r["problems"]]
    assert not problems, "\n".join(problems[:20])


def test_c_reader_equals_pyroute2_on_focused(kernel_ok, capsys):
    seeds = [SEED + i for i in range(6)]
    with ThreadPoolExecutor(max_workers=3) as ex:
        results = list(ex.map(one_focused, seeds))
    problems = [p for r in results for p in r["problems"]]
    assert not problems, "\n".join(problems[:20])
    # the generator did make what it is for
    states = [r["state"] for r in results]
    routes = [x for s in states for f in (AF_INET, AF_INET6) for x in s.routes.get(f, [])]
    rules = [x for s in states for f in (AF_INET, AF_INET6) for x in s.rules.get(f, [])]
    assert any(r.table > 255 for r in routes)
    assert any(len(r.nexthops) > 1 for r in routes)
    assert any(r.metrics for r in routes)
    assert any(r.congctl for r in routes)
    assert any(r.family == AF_INET6 and r.nexthops for r in routes)
    assert any(r.sport_start or r.dport_start for r in rules)
    with capsys.disabled():
        print(
            f"\n[polroute dump reader] focused POLROUTE_SEED={SEED}: {len(routes)} routes, {len(rules)} rules compared"
        )


def test_missing_namespace_is_named(kernel_ok):
    with pytest.raises(FileNotFoundError, match='Cannot open network namespace "prt-no-such-ns"'):
        read_state("prt-no-such-ns")


def test_chunked_steps_give_the_whole_dump(kernel_ok, monkeypatch):
    """The reader takes a dump in steps of _CHUNK records (pr_dump_step);
    one record per step must give exactly what one whole pr_dump_run gives."""
    import polroute.live.dump as kd
    from polroute._polroute_cffi import ffi, lib

    text4, text6 = focused_batches(SEED)
    with Netns() as ns:
        ns.batch(text4)
        ns.batch(text6, family=6)
        ns.settle()
        whole = read_state(ns.name, sysctls=False)
        monkeypatch.setattr(kd, "_CHUNK", 1)
        stepped = read_state(ns.name, sysctls=False)
        assert diff_states(stepped, whole, "chunk 1") == []
        with kd.LiveDump(ns.name) as live:
            assert lib.pr_dump_run(live._d, live._fd, lib.PR_RTM_GETROUTE, AF_INET) == len(whole.routes[AF_INET])
            assert ffi.string(lib.pr_dump_error(live._d)) == b""
            st = live.stats()
            assert st["foreign"] == 0 and st["restarts"] == 0 and st["messages"] > 0


def test_dump_changed_midway_is_taken_again(kernel_ok, monkeypatch):
    """An address added between two steps of an address dump: the kernel
    flags the rest of the dump NLM_F_DUMP_INTR, the reader drops what it had
    and dumps again, and the result has every address exactly once."""
    import polroute.live.dump as kd

    with Netns() as ns:
        lines = ["link add d0 type veth peer name d0p"]
        lines += [f"addr add 10.{i // 250}.{i % 250}.1/32 dev d0" for i in range(3000)]
        r = ns.batch("\n".join(lines) + "\n", settle=False)
        assert not r.refused()
        monkeypatch.setattr(kd, "_CHUNK", 1)
        calls = []
        convert = kd.addrs_from_view

        def add_one_after_the_first_step(v, addrs):
            calls.append(1)
            if len(calls) == 1:
                res = ns.ip("addr", "add", "10.250.0.1/32", "dev", "d0")
                assert res.returncode == 0, res.stderr
            return convert(v, addrs)

        monkeypatch.setattr(kd, "addrs_from_view", add_one_after_the_first_step)
        with kd.LiveDump(ns.name) as live:
            got = [str(a.local) for a in live.addrs() if a.ifindex != 1]
            assert live.stats()["restarts"] >= 1
        want = sorted([f"10.{i // 250}.{i % 250}.1" for i in range(3000)] + ["10.250.0.1"])
        assert sorted(x for x in got if x.startswith("10.")) == want
