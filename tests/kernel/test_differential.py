"""Differential tests: polroute's answers must equal the running kernel's.

Random scenarios (tests/kernel/scenario.py) run on both sides
(tests/kernel/compare.py): the kernel in a private namespace per scenario,
the model in a fresh Policy.  Every flow's ``ip route get`` answer and every
refused batch line must agree.  On a mismatch the scenario is shrunk and a
reproducer script is written (its path is in the failure message).

Environment:
  POLROUTE_SEED=N               master seed (default: random, printed)
  POLROUTE_DIFF_SCENARIOS=N     scenarios per run, IPv4 + IPv6 together (default 200)
  POLROUTE_DIFF_WORKERS=N       parallel scenarios (default 2 x CPUs, at least 4)
  POLROUTE_SCENARIO=SEED:FAM    run just this one scenario (FAM 4 or 6)
  POLROUTE_SHRINK_MAX=N         kinds of mismatch shrunk per test (default 2)
  POLROUTE_SHRINK_SECONDS=S     time budget per shrink (default 40)
  POLROUTE_REPRO_DIR=DIR        where reproducers go (default $TMPDIR/polroute-repro)
  POLROUTE_DETERMINISM_SCENARIOS=N  kernel-vs-kernel scenarios (default 6)

The focused tests at the end pin kernel facts that the model relies on (see
docs/kernel-notes.md); they need only the kernel.
"""

from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netns import Netns, cleanup_all  # noqa: E402
from scenario import generate, scenario_seeds  # noqa: E402

from compare import (  # noqa: E402
    Comparison,
    KernelSide,
    ModelSide,
    ModelUnavailable,
    Run,
    SideResult,
    compare_results,
    diff_answers,
    format_run,
    normalise,
    normalise_message,
    run_both,
    shrink_mismatch,
    write_reproducer,
)
from polroute.model import kernel_profile  # noqa: E402

pytestmark = pytest.mark.kernel


def _env_int(name: str, default: int) -> int:
    v = os.environ.get(name, "").strip()
    return int(v, 0) if v else default


def _master_seed() -> int:
    v = os.environ.get("POLROUTE_SEED", "").strip()
    if v:
        return int(v, 0)
    return int.from_bytes(os.urandom(6), "big") ^ time.time_ns() & 0xFFFFFFFFFFFF


MASTER_SEED = _master_seed()
N_SCENARIOS = _env_int("POLROUTE_DIFF_SCENARIOS", 200)
WORKERS = _env_int("POLROUTE_DIFF_WORKERS", max(4, 2 * (os.cpu_count() or 1)))
SHRINK_MAX = _env_int("POLROUTE_SHRINK_MAX", 2)
SHRINK_SECONDS = float(os.environ.get("POLROUTE_SHRINK_SECONDS", "40"))
SHOW = 8  # mismatches listed per failure message


@pytest.fixture(scope="session", autouse=True)
def _cleanup_namespaces():
    yield
    cleanup_all()


def _say(capsys, text: str) -> None:
    with capsys.disabled():
        print("\n" + text, flush=True)


def _scenarios(family: int):
    one = os.environ.get("POLROUTE_SCENARIO", "").strip()
    if one:
        seed, _, fam = one.partition(":")
        fam = int(fam or "4")
        return [(int(seed, 0), fam)] if fam == family else []
    return [(s, f) for s, f in scenario_seeds(MASTER_SEED, N_SCENARIOS) if f == family]


# ---------------------------------------------------------------------------
# the differential run (once per family, shared by the two tests)


class FamilyRun:
    def __init__(self, family: int):
        self.family = family
        self.items = []  # (scenario, run, kernel result, model result, comparison)
        self.seconds = 0.0
        self.error = None


_RUNS: dict[int, FamilyRun] = {}


def _family_run(family: int, capsys) -> FamilyRun:
    if family in _RUNS:
        return _RUNS[family]
    fr = FamilyRun(family)
    _RUNS[family] = fr
    try:
        model = ModelSide()
    except ModelUnavailable as exc:
        fr.error = str(exc)
        return fr
    kernel = KernelSide()
    seeds = _scenarios(family)
    _say(
        capsys,
        f"[polroute differential] IPv{family}: POLROUTE_SEED={MASTER_SEED} scenarios={len(seeds)} workers={WORKERS}",
    )

    def one(sf):
        seed, fam = sf
        sc = generate(seed, fam, nexthops=True)
        run, k, m, c = run_both(Run.of(sc), kernel, model, verify_not_modelled=True)
        return sc, run, k, m, c

    t0 = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=WORKERS) as ex:
            fr.items = list(ex.map(one, seeds))
    except ModelUnavailable as exc:
        fr.error = str(exc)
    fr.seconds = time.monotonic() - t0
    tot = Comparison()
    for *_, c in fr.items:
        tot.compared += c.compared
        tot.equal += c.equal
        tot.not_modelled += c.not_modelled
        tot.kernel_refused += c.kernel_refused
        tot.mismatches += c.mismatches
    flows = sum(len(sc.flows) for sc, *_ in fr.items)
    _say(
        capsys,
        f"[polroute differential] IPv{family}: {len(fr.items)} scenarios, {flows} flows in "
        f"{fr.seconds:.1f}s: compared {tot.compared}, equal {tot.equal}, "
        f"not modelled {tot.not_modelled}, answer mismatches {len(tot.answer_mismatches())}, "
        f"kernel-refused lines {tot.kernel_refused}, refusal mismatches "
        f"{len(tot.refusal_mismatches())}",
    )
    return fr


def _signature(mm) -> tuple:
    """Mismatches with the same signature are most likely one bug."""
    if mm.kind == "answer":
        k, m = normalise(mm.kernel), normalise(mm.model)
        return (mm.kind, mm.fields, k.get("error"), m.get("error"), k.get("type"), m.get("type"))
    return (mm.kind, normalise_message(mm.kernel or ""), normalise_message(mm.model or ""))


def _report(fr: FamilyRun, kinds: tuple, capsys) -> str:
    """The failure text: counts, one example per kind of mismatch, shrunk reproducers."""
    bad = [(sc, run, k, m, mm) for sc, run, k, m, c in fr.items for mm in c.mismatches if mm.kind in kinds]
    if not bad:
        return ""
    groups: dict[tuple, list] = {}
    for item in bad:
        groups.setdefault(_signature(item[4]), []).append(item)
    ordered = sorted(groups.values(), key=len, reverse=True)
    out = [
        f"{len(bad)} mismatch(es) between kernel and model (IPv{fr.family}, POLROUTE_SEED={MASTER_SEED}, "
        f"{len({x[0].seed for x in bad})} scenario(s), {len(groups)} kind(s)); one example per kind:"
    ]
    for items in ordered[:SHOW]:
        sc, run, k, m, mm = items[0]
        out.append(f"  {len(items):5d} x  [seed {sc.seed}:{sc.family}] {mm.kind} {mm.detail}")
    if len(ordered) > SHOW:
        out.append(f"  ... and {len(ordered) - SHOW} more kind(s)")
    kernel = KernelSide()
    model = ModelSide()
    for items in ordered[:SHRINK_MAX]:
        # the smallest scenario of the group shrinks fastest
        sc, run, k, m, mm = min(items, key=lambda x: len(x[1].lines))
        t0 = time.monotonic()
        small, tries = shrink_mismatch(run, mm, kernel, model, budget_s=SHRINK_SECONDS)
        _, ks, ms, cs = run_both(small, kernel, model)
        mms = [x for x in cs.mismatches if x.kind == mm.kind]
        if mm.kind == "refusal":  # the shrunk run may refuse other lines too: show the target
            target = run.lines[mm.index - 1]
            mms = [x for x in mms if 0 < x.index <= len(small.lines) and small.lines[x.index - 1] == target]
        mms = mms or [mm]
        path = write_reproducer(small, mms[0], f"seed{sc.seed}-ipv{sc.family}-{mm.kind}-{mm.index}", ks, ms)
        out.append(
            f"\n  shrunk [seed {sc.seed}:{sc.family}] from {len(run.lines)} to {len(small.lines)} lines "
            f"({tries} re-runs, {time.monotonic() - t0:.1f}s): {mms[0].detail}"
        )
        out.append(format_run(small))
        out.append(f"    reproducer: {path}")
        out.append(f"    re-run the scenario: POLROUTE_SCENARIO={sc.seed}:{sc.family} pytest {__file__}")
    return "\n".join(out)


@pytest.mark.parametrize("family", [4, 6])
def test_answers_match_kernel(kernel_ok, family, capsys):
    fr = _family_run(family, capsys)
    if fr.error:
        pytest.fail(fr.error)
    if not fr.items:
        pytest.skip("no scenario of this family selected")
    msg = _report(fr, ("answer", "not_modelled"), capsys)
    if msg:
        pytest.fail(msg, pytrace=False)


@pytest.mark.parametrize("family", [4, 6])
def test_refused_lines_match_kernel(kernel_ok, family, capsys):
    fr = _family_run(family, capsys)
    if fr.error:
        pytest.fail(fr.error)
    if not fr.items:
        pytest.skip("no scenario of this family selected")
    msg = _report(fr, ("refusal", "sysctl"), capsys)
    if msg:
        pytest.fail(msg, pytrace=False)


# ---------------------------------------------------------------------------
# the harness itself (kernel only)


class _ReversedKernel(KernelSide):
    """The kernel, asked the flows in reverse order (answers put back in order)."""

    def run(self, run: Run) -> SideResult:
        res = super().run(replace(run, flows=run.flows[::-1]))
        res.answers = res.answers[::-1]
        return res


def test_kernel_is_deterministic(kernel_ok, capsys):
    """The same scenario twice on the kernel, the second time with the flows in
    reverse order, gives the same refusals and answers: no hidden state (no
    round robin, no caches) and no timing effects, which would show as noise
    in the differential test."""
    n = _env_int("POLROUTE_DETERMINISM_SCENARIOS", 6)
    kernel = KernelSide()
    reverse = _ReversedKernel()
    seeds = scenario_seeds(MASTER_SEED ^ 0x5A5A, n)
    _say(capsys, f"[polroute determinism] POLROUTE_SEED={MASTER_SEED} scenarios={n}")

    def one(sf):
        sc = generate(*sf)
        return sc, run_both(Run.of(sc), kernel, reverse)[3]

    with ThreadPoolExecutor(max_workers=WORKERS) as ex:
        res = list(ex.map(one, seeds))
    bad = [f"[seed {sc.seed}:{sc.family}] {m.kind} {m.detail}" for sc, c in res for m in c.mismatches]
    assert not bad, "kernel answers differ between two runs:\n" + "\n".join(bad[:20])


class _PerturbedKernel(KernelSide):
    """A fake model: the kernel, except that answers leaving through veth0
    say `bogus0` whenever the batch created veth0."""

    name = "fake-model"

    def run(self, run: Run) -> SideResult:
        res = super().run(run)
        if "link add veth0 type veth peer name veth0p" in run.lines:
            res.answers = [dict(a, dev="bogus0") if a.get("dev") == "veth0" else a for a in res.answers]
        return res


def test_shrinker_and_reproducer_with_fake_model(kernel_ok, tmp_path, monkeypatch):
    monkeypatch.setenv("POLROUTE_REPRO_DIR", str(tmp_path))
    lines = [
        "link add veth0 type veth peer name veth0p",
        "link add veth1 type veth peer name veth1p",
        "link set veth0 addrgenmode none",
        "link set veth1 addrgenmode none",
        "link set lo up",
        "addr add 10.1.0.1/24 dev veth0",
        "addr add 10.2.0.1/24 dev veth1",
        "link set veth0 up",
        "link set veth1 up",
        "route add 198.18.0.0/24 via 10.1.0.9",
        "route add 198.19.0.0/24 via 10.2.0.9",
        "rule add pref 100 fwmark 5 lookup 100",
        "route add 198.18.0.0/24 dev veth1 table 100",
    ]
    run = Run(lines, [("net.ipv4.ip_forward", 1)], [["198.19.0.5"], ["198.18.0.5"]])
    kernel, fake = KernelSide(), _PerturbedKernel()
    run2, k, m, c = run_both(run, kernel, fake)
    assert [mm.kind for mm in c.mismatches] == ["answer"]
    mm = c.mismatches[0]
    assert mm.index == 1 and mm.fields == ("dev",)
    small, tries = shrink_mismatch(run2, mm, kernel, fake, budget_s=60)
    assert small.lines == [
        "link add veth0 type veth peer name veth0p",
        "addr add 10.1.0.1/24 dev veth0",
        "link set veth0 up",
        "route add 198.18.0.0/24 via 10.1.0.9",
    ], small.lines
    assert small.sysctls == [] and small.flows == [["198.18.0.5"]]
    path = write_reproducer(small, mm, "fake", None, None)
    with open(path) as f:
        text = f.read()
    assert "route add 198.18.0.0/24 via 10.1.0.9" in text and 'ip -n "$NS" -j route get 198.18.0.5' in text
    assert os.access(path, os.X_OK)


def test_compare_rules():
    """Normalisation and comparison, without any namespace."""
    assert normalise({"dst": "10.0.0.1", "dev": "a", "flags": [], "uid": 0}) == {
        "type": "unicast",
        "dst": "10.0.0.1",
        "dev": "a",
    }
    assert normalise({"dst": "2001:DB8::1", "from": "::"})["dst"] == "2001:db8::1"
    assert (
        normalise({"error": "RTNETLINK answers:  No route to host\n", "errno": "X"})
        == {"error": "No route to host"}
        == normalise({"error": "No route to host"})
    )
    assert normalise({"error": "Error: Unsupported ip proto."}) == {"error": "Error: Unsupported ip proto."}
    assert diff_answers({"dst": "1.1.1.1", "table": "100"}, {"dst": "1.1.1.1"}) == [("table", "100", None)]
    assert diff_answers({"dst": "1.1.1.1", "uid": 0}, {"dst": "1.1.1.1", "uid": 5}) == []
    run = Run(["a", "b"], [("k", 1)], [["1.1.1.1"], ["2.2.2.2"], ["3.3.3.3"]])
    k = SideResult(refused={2: "Error: x."}, answers=[{"dst": "1.1.1.1"}, {"dst": "2.2.2.2"}, {"error": "e"}])
    m = SideResult(
        refused={2: "Error: y."},
        sysctl_errors={0: "nope"},
        answers=[{"dst": "1.1.1.1"}, {"dst": "2.2.2.2", "not_modelled": "multipath"}, {"error": "f"}],
    )
    c = compare_results(run, k, m)
    assert (c.compared, c.equal, c.not_modelled) == (2, 1, 1)
    assert [x.kind for x in c.mismatches] == ["refusal", "sysctl", "answer"]


# ---------------------------------------------------------------------------
# focused kernel facts (see docs/kernel-notes.md)


def _routes(ns: Netns, family: int) -> list[str]:
    """`ip -j route show table all` as compact strings, in dump order."""
    r = ns.ip("-6" if family == 6 else "-4", "-j", "route", "show", "table", "all")
    out = []
    for x in json.loads(r.stdout or "[]"):
        s = f"{x.get('type', 'unicast')} {x['dst']} dev {x.get('dev', '-')} table {x.get('table', 'main')}"
        if "metric" in x:
            s += f" metric {x['metric']}"
        if "prefsrc" in x:
            s += f" src {x['prefsrc']}"
        if "linkdown" in x.get("flags", []):
            s += " linkdown"
        out.append(s)
    return out


def test_fresh_namespace(kernel_ok):
    with Netns() as ns:
        assert ns.ip("rule").stdout.split("\n")[:3] == [
            "0:\tfrom all lookup local",
            "32766:\tfrom all lookup main",
            "32767:\tfrom all lookup default",
        ]
        assert ns.ip("-6", "rule").stdout.strip().split("\n") == [
            "0:\tfrom all lookup local",
            "32766:\tfrom all lookup main",
        ]
        lo = json.loads(ns.ip("-j", "addr", "show", "lo").stdout)[0]
        assert lo["ifindex"] == 1 and "UP" not in lo["flags"] and lo["addr_info"] == []
        assert _routes(ns, 4) == [] and _routes(ns, 6) == []
        assert ns.route_get_json(["0.0.0.0"]) == {
            "type": "local",
            "dst": "0.0.0.0",
            "dev": "lo",
            "prefsrc": "127.0.0.1",
            "flags": [],
            "uid": 0,
            "cache": ["local"],
        }
        for dst in ("127.0.0.1", "::1", "10.1.1.1", "::"):
            assert ns.route_get_json([dst])["errno"] == "ENETUNREACH"
        for key in (
            "net.ipv4.ip_forward",
            "net.ipv4.conf.all.rp_filter",
            "net.ipv6.conf.all.forwarding",
            "net.ipv6.conf.all.keep_addr_on_down",
            "net.ipv4.conf.all.promote_secondaries",
        ):
            assert ns.sysctl_get(key) == "0", key
        ns.batch("link set lo up")
        assert _routes(ns, 4) == [
            "local 127.0.0.0/8 dev lo table local src 127.0.0.1",
            "local 127.0.0.1 dev lo table local src 127.0.0.1",
            "broadcast 127.255.255.255 dev lo table local src 127.0.0.1",
        ]
        assert _routes(ns, 6) == ["local ::1 dev lo table local metric 0"]


def test_ipv4_derived_routes(kernel_ok):
    with Netns() as ns:
        b = ns.batch("""link add v0 type veth peer name v0p
addr add 10.1.0.1/24 dev v0
addr add 10.1.0.3/24 dev v0
addr add 10.7.0.0/31 dev v0
addr add 10.8.0.1/32 dev v0
addr add 10.9.0.1/24 dev v0 metric 55
addr add 10.10.0.1/24 dev v0 noprefixroute
addr add 198.51.100.1/24 dev lo
""")
        assert not b.refused()
        # link down: only the local /32 routes; a secondary's prefsrc is the primary
        assert sorted(_routes(ns, 4)) == sorted(
            [
                "local 10.1.0.1 dev v0 table local src 10.1.0.1",
                "local 10.1.0.3 dev v0 table local src 10.1.0.1",
                "local 10.7.0.0 dev v0 table local src 10.7.0.0",
                "local 10.8.0.1 dev v0 table local src 10.8.0.1",
                "local 10.9.0.1 dev v0 table local src 10.9.0.1",
                "local 10.10.0.1 dev v0 table local src 10.10.0.1",
                "local 198.51.100.1 dev lo table local src 198.51.100.1",
            ]
        )
        ns.batch("link set lo up\nlink set v0 up")
        got = _routes(ns, 4)
        for want in (
            "unicast 10.1.0.0/24 dev v0 table main src 10.1.0.1 linkdown",  # no carrier
            "broadcast 10.1.0.255 dev v0 table local src 10.1.0.1 linkdown",
            "unicast 10.7.0.0/31 dev v0 table main src 10.7.0.0 linkdown",  # /31: no broadcast
            "unicast 10.9.0.0/24 dev v0 table main metric 55 src 10.9.0.1 linkdown",
            "broadcast 10.10.0.255 dev v0 table local src 10.10.0.1 linkdown",  # noprefixroute keeps it
            "local 198.51.100.0/24 dev lo table local src 198.51.100.1",  # lo: type local, table local
            "broadcast 198.51.100.255 dev lo table local src 198.51.100.1",
        ):
            assert want in got, (want, got)
        assert not any(
            r.startswith("unicast 10.10.0.0/24") or "10.8.0.1/" in r or "10.1.0.0 " in r or "10.7.0.1" in r for r in got
        ), got
        # deleting the primary deletes its secondaries (promote_secondaries=0)
        ns.batch("addr del 10.1.0.1/24 dev v0")
        assert not any("10.1.0." in r for r in _routes(ns, 4))


def test_ipv6_derived_routes(kernel_ok):
    """What addrconf creates with nodad + addrgenmode none (docs/kernel-notes.md)."""
    with Netns() as ns:
        b = ns.batch(
            """link set lo up
link add v0 type veth peer name v0p
link set v0 addrgenmode none
link set v0p addrgenmode none
addr add 2001:db8:1::1/64 dev v0 nodad
addr add 2001:db8:1::3/64 dev v0 nodad
addr add 2001:db8:7::1/127 dev v0 nodad
addr add 2001:db8:8::1/64 dev v0 nodad noprefixroute
addr add 2001:db8:9::1/64 dev v0 nodad metric 77
addr add 2001:db8:ff::99/128 dev lo nodad
addr add 2001:db8:fe::1/64 dev lo nodad
""",
            family=6,
        )
        assert not b.refused()
        # v0 down: only local routes (dev v0, metric 0); lo addresses also get prefix routes on lo
        assert sorted(_routes(ns, 6)) == sorted(
            [
                "unicast 2001:db8:fe::/64 dev lo table main metric 256",
                "unicast 2001:db8:ff::99 dev lo table main metric 256",
                "local ::1 dev lo table local metric 0",
                "local 2001:db8:1::1 dev v0 table local metric 0",
                "local 2001:db8:1::3 dev v0 table local metric 0",
                "local 2001:db8:7::1 dev v0 table local metric 0",
                "local 2001:db8:8::1 dev v0 table local metric 0",
                "local 2001:db8:9::1 dev v0 table local metric 0",
                "local 2001:db8:fe::1 dev lo table local metric 0",
                "local 2001:db8:ff::99 dev lo table local metric 0",
            ]
        )
        ns.batch("link set v0 up", family=6)  # no carrier: prefix routes linkdown, no ff00::/8
        got = _routes(ns, 6)
        assert "unicast 2001:db8:1::/64 dev v0 table main metric 256 linkdown" in got
        assert "unicast 2001:db8:7::/127 dev v0 table main metric 256 linkdown" in got
        assert "unicast 2001:db8:9::/64 dev v0 table main metric 77 linkdown" in got
        assert not any("2001:db8:8::/64" in r or "ff00::/8" in r for r in got), got
        ns.batch("link set v0p up", family=6)  # carrier: v0p's NETDEV_UP first, then v0's carrier
        got = _routes(ns, 6)
        assert [r for r in got if "ff00::/8" in r] == [
            "multicast ff00::/8 dev v0p table local metric 256",
            "multicast ff00::/8 dev v0 table local metric 256",
        ]
        assert "unicast 2001:db8:1::/64 dev v0 table main metric 256" in got
        mc = ns.route_get_json(["ff02::1"])
        assert (mc["type"], mc["dev"], mc["table"], "prefsrc" in mc) == ("multicast", "v0p", "local", False)
        # forwarding: subnet-router anycast for every prefix shorter than /127, lo and noprefixroute included
        assert ns.sysctl("net.ipv6.conf.all.forwarding", 1) is None
        anycast = sorted(r for r in _routes(ns, 6) if r.startswith("anycast"))
        assert anycast == sorted(
            [
                "anycast 2001:db8:1:: dev v0 table local metric 0",
                "anycast 2001:db8:8:: dev v0 table local metric 0",
                "anycast 2001:db8:9:: dev v0 table local metric 0",
                "anycast 2001:db8:fe:: dev lo table local metric 0",
            ]
        )
        a = ns.route_get_json(["2001:db8:1::"])
        # ties in source selection (longest match is capped at the prefix length) go to the
        # newest address: IPv6 addresses are kept newest first
        assert (a["type"], a["dev"], a["prefsrc"]) == ("anycast", "lo", "2001:db8:1::3")
        assert ns.sysctl("net.ipv6.conf.all.forwarding", 0) is None
        assert not any(r.startswith("anycast") for r in _routes(ns, 6))
        # the prefix route lives while one address of the prefix does
        ns.batch("addr del 2001:db8:1::1/64 dev v0", family=6)
        assert "unicast 2001:db8:1::/64 dev v0 table main metric 256" in _routes(ns, 6)
        # carrier loss: linkdown, ff00::/8 of v0 stays; admin down: addresses and all routes go
        ns.batch("link set v0p down", family=6)
        got = _routes(ns, 6)
        assert "multicast ff00::/8 dev v0 table local metric 256 linkdown" in got
        assert not any("dev v0p" in r for r in got)
        ns.batch("route add 2001:db8:50::/64 dev v0 table 100", family=6)
        ns.batch("link set v0 down", family=6)
        assert not any("dev v0 " in r for r in _routes(ns, 6))
        v0 = json.loads(ns.ip("-j", "addr", "show", "dev", "v0").stdout)[0]
        assert [a for a in v0["addr_info"] if a["family"] == "inet6"] == []


def test_batch_rule_family(kernel_ok):
    """A batch line cannot give a rule the IPv6 family: only `ip -6 -batch` can."""
    with Netns() as ns:
        b = ns.batch(
            "rule add from 2001:db8::/64 lookup 100\nrule add to 2001:db8::/64 lookup 100\n"
            "rule add from ::/0 lookup 101"
        )
        assert b.failures == {1: "Error: Invalid source address.", 2: "Error: Invalid dst address."}
        assert "lookup 101" in ns.ip("rule").stdout and "lookup 101" not in ns.ip("-6", "rule").stdout
        b = ns.batch("rule add fwmark 7 lookup 102\naddr add 10.9.9.9/32 dev lo\nrule add lookup 103", family=6)
        assert b.fatal == 2 and b.fatal_msg == 'Error: inet6 prefix is expected rather than "10.9.9.9/32".'
        assert "lookup 102" in ns.ip("-6", "rule").stdout and "lookup 103" not in ns.ip("-6", "rule").stdout


def test_route_get_json_shapes(kernel_ok):
    with Netns() as ns:
        b = ns.batch("""link set lo up
link add v0 type veth peer name v0p
link set v0 addrgenmode none
link set v0p addrgenmode none
addr add 10.1.0.1/24 dev v0
addr add 2001:db8:1::1/64 dev v0 nodad
link set v0 up
link set v0p up
route add default via 10.1.0.254
route add 198.18.0.0/16 via 10.1.0.9 table 100 tos 0x10 mtu 1400
rule add pref 10 tos 0x10 lookup 100
route add 2001:db8:2::/64 via 2001:db8:1::9
""")
        assert not b.refused()
        assert ns.sysctl("net.ipv4.ip_forward", 1) is None
        g = ns.route_get_json
        assert g(["8.8.8.8", "mark", "5"]) == {
            "dst": "8.8.8.8",
            "gateway": "10.1.0.254",
            "dev": "v0",
            "prefsrc": "10.1.0.1",
            "flags": [],
            "mark": 5,
            "uid": 0,
            "cache": [],
        }
        assert g(["198.18.1.1", "tos", "0x10"]) == {
            "dst": "198.18.1.1",
            "tos": "0x10",
            "gateway": "10.1.0.9",
            "dev": "v0",
            "table": "100",
            "prefsrc": "10.1.0.1",
            "flags": [],
            "uid": 0,
            "cache": [],
            "metrics": [{"mtu": 1400}],
        }
        assert g(["10.1.0.1"]) == {
            "type": "local",
            "dst": "10.1.0.1",
            "dev": "lo",
            "table": "local",
            "prefsrc": "10.1.0.1",
            "flags": [],
            "uid": 0,
            "cache": ["local"],
        }
        assert g(["10.1.0.255"])["cache"] == ["local", "brd"]
        assert g(["8.8.8.8", "from", "10.1.0.1"]) == {
            "dst": "8.8.8.8",
            "from": "10.1.0.1",
            "gateway": "10.1.0.254",
            "dev": "v0",
            "flags": [],
            "uid": 0,
            "cache": [],
        }
        assert g(["8.8.8.8", "from", "10.1.0.7", "iif", "v0p"]) == {
            "dst": "8.8.8.8",
            "from": "10.1.0.7",
            "gateway": "10.1.0.254",
            "dev": "v0",
            "flags": [],
            "cache": [],
            "iif": "v0p",
        }
        assert g(["10.1.0.1", "from", "10.1.0.7", "iif", "v0p", "uid", "5"])["uid"] == 5
        assert "uid" not in g(["8.8.8.8", "uid", "4294967295"])
        assert g(["2001:db8:2::5"]) == {
            "dst": "2001:db8:2::5",
            "from": "::",
            "gateway": "2001:db8:1::9",
            "dev": "v0",
            "prefsrc": "2001:db8:1::1",
            "metric": 1024,
            "flags": [],
            "pref": "medium",
        }
        assert g(["2001:db8:1::1"]) == {
            "type": "local",
            "dst": "2001:db8:1::1",
            "from": "::",
            "dev": "lo",
            "table": "local",
            "protocol": "kernel",
            "prefsrc": "2001:db8:1::1",
            "metric": 0,
            "flags": [],
            "pref": "medium",
        }
        assert g(["2001:db8:1::5", "from", "2001:db8:1::7", "iif", "v0p"]) == {
            "dst": "2001:db8:1::5",
            "from": "2001:db8:1::7",
            "dev": "v0",
            "protocol": "kernel",
            "metric": 256,
            "flags": [],
            "iif": "v0p",
            "pref": "medium",
        }
        # how the kernel was built decides this one (polroute.model.kernel_profile)
        if kernel_profile.resolve("auto").ipv6_mroute:
            assert g(["ff02::1", "iif", "v0p"]) == {"error": "RTNETLINK answers: Message too long", "errno": "EMSGSIZE"}
        else:
            assert g(["ff02::1", "iif", "v0p"]) == {
                "type": "multicast",
                "dst": "ff02::1",
                "from": "::",
                "dev": "v0p",
                "table": "local",
                "protocol": "kernel",
                "metric": 256,
                "flags": [],
                "iif": "v0p",
                "pref": "medium",
            }
        assert g(["8.8.8.8", "ipproto", "gre"]) == {"error": "Error: Unsupported ip proto.", "errno": "EINVAL"}
        assert g(["8.8.8.8", "oif", "nosuch"]) == {"error": 'Cannot find device "nosuch"', "errno": "ENODEV"}
        assert g(["8.8.8.8", "from", "10.99.0.1"])["error"] == "RTNETLINK answers: Network is unreachable"


class _OverFlaggingKernel(KernelSide):
    """A fake model that calls every answer not modelled."""

    name = "fake-model"

    def run(self, run: Run) -> SideResult:
        res = super().run(run)
        res.answers = [dict(a, not_modelled="multipath") for a in res.answers]
        return res


def test_not_modelled_flags_are_checked(kernel_ok):
    """A not-modelled flag is accepted only where the kernel's FIB entry is multipath."""
    lines = [
        "link set lo up",
        "link add veth0 type veth peer name veth0p",
        "addr add 10.1.0.1/24 dev veth0",
        "link set veth0 up",
        "route add 198.18.0.0/24 nexthop via 10.1.0.8 nexthop via 10.1.0.9",
        "route add 198.19.0.0/24 via 10.1.0.9",
    ]
    run = Run(lines, [], [["198.18.0.5"], ["198.19.0.5"], ["198.20.0.5"]])
    _, k, m, c = run_both(run, KernelSide(), _OverFlaggingKernel(), verify_not_modelled=True)
    assert c.not_modelled == 3 and c.compared == 0
    assert [(x.kind, x.index) for x in c.mismatches] == [("not_modelled", 1)]


def test_not_modelled_multipath_before_a_suppress_is_accepted(kernel_ok):
    """IPv6 suppress_ifgroup looks at the leg the hash chose: the model flags the
    flow and the kernel answers from a later rule (single-path FIB entry).  The
    flag is accepted because the model's trail matched a multipath route that
    the kernel's own table holds (seed 28495262972247:6)."""
    lines = [
        "link set lo up",
        "link add veth1 type veth peer name veth1p",
        "link add veth2 type veth peer name veth2p",
        "link set veth1 addrgenmode none",
        "link set veth2 addrgenmode none",
        "link set dev veth2 group 1",
        "link set veth1 up",
        "link set veth2 up",
        "link set veth1p up",
        "link set veth2p up",
        "addr add 2001:db8:2::1/64 dev veth1 nodad",
        "addr add 2001:db8:3::1/64 dev veth2 nodad",
        "route add ::/0 table 100 nexthop via 2001:db8:2::fe dev veth1 nexthop via fe80::1 dev veth2",
        "rule add preference 300 lookup 100 suppress_ifgroup 1",
    ]
    flows = [["2001:db8:9::" + format(i, "x")] for i in range(1, 9)]
    run = Run(lines, [], flows, batch_family=6)
    _, k, m, c = run_both(run, KernelSide(), ModelSide(), verify_not_modelled=True)
    assert c.not_modelled == len(flows) and c.mismatches == []
    assert all(m.trails[i] == [(100, "::/0")] for i in range(len(flows)))
    # the kernel really answers both ways over these flows (the hash decides)
    assert {a.get("table") for a in k.answers} >= {"100"} and any("error" in a for a in k.answers)


def test_multicast_under_a_broadcast_route_depends_on_the_cache(kernel_ok):
    """A multicast destination under a broadcast route answers "multicast"
    on a fresh namespace, but "broadcast ... cache local brd" after a lookup
    through another broadcast route with the same fib_info (the rtable
    cached on the shared nexthop).  The model cannot know what was asked
    before: it flags the answer, and the harness accepts the claim
    (POLROUTE_SCENARIO=233969017792374:4).  The cache is per CPU, so the
    random scenarios see it only when both lookups ran on the same CPU."""
    lines = [
        "link set lo up",
        "link add br0 type bridge",
        "addr add 10.10.0.3/28 dev br0",
        "link set br0 up",
        "route add broadcast 239.1.0.0/16 dev br0",
        "route add broadcast 10.2.0.1/32 dev br0",
    ]
    # the cache is per CPU (nhc_pcpu_rth_output): ip runs pinned to one CPU
    # (children inherit the affinity), else the second lookup may miss it
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})
    try:
        alone = KernelSide().run(Run(lines, [], [["239.1.204.74"]]))
        after = Run(lines, [], [["10.2.0.1"], ["239.1.204.74"]])
        _, k, m, c = run_both(after, KernelSide(), ModelSide(), verify_not_modelled=True)
    finally:
        os.sched_setaffinity(0, cpus)
    assert alone.answers[0]["type"] == "multicast"
    assert k.answers[1]["type"] == "broadcast" and k.answers[1]["cache"] == ["local", "brd"]
    assert "route cache" in " ".join(m.answers[1]["not_modelled"])
    assert c.mismatches == []
