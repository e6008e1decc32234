"""The snapshot's fast path (route lines applied to the model as
``route_line_request`` instead of being parsed back) against the parsing path.

On random namespaces (tests/kernel/scenario.py, both families, and the
focused generator of test_dump_reader.py: tables > 255, multipath with
weights, metrics and locks, prefsrc, realms, IPv6 pref, nexthop objects...):

1. with ``FAST_CHECK``, every route line the builder writes is also parsed
   by ``iproute.parse_command`` against the model as it stands, and the
   parsed request must equal the fast one field by field (or the fast path
   must have declined the shape: it then parses); for the shapes applied
   as packed ``pr_route_req`` bytes (``route_line_packed``), the bytes must
   equal ``convert.route_to_c`` of the parsed request;
2. ``snapshot_text`` (whole state and per family) and ``snapshot_batches``
   are byte-identical with ``FAST_ROUTES`` on and off;
3. ``policy_from_state`` gives the same links, addresses, rules and routes
   both ways.

Only configuration and dumps: no packet is sent.  Namespaces are ``prt-*``,
deleted in ``finally``.  POLROUTE_FAST_SCENARIOS=N (default 24), POLROUTE_SEED=N.
"""

from __future__ import annotations

import os
import socket
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netns import Netns, cleanup_all  # noqa: E402
from scenario import generate, scenario_seeds  # noqa: E402
from test_dump_reader import focused_batches  # noqa: E402

pytestmark = pytest.mark.kernel
pytest.importorskip("pyroute2")

import polroute.live.snapshot as ks  # noqa: E402
from polroute.live.read import read_state  # noqa: E402

SEED = int(os.environ.get("POLROUTE_SEED", "0") or 0, 0) or int.from_bytes(os.urandom(5), "big")
COUNT = int(os.environ.get("POLROUTE_FAST_SCENARIOS", "24"), 0)


@pytest.fixture(scope="module", autouse=True)
def _cleanup():
    yield
    cleanup_all()


def _scenario_state(seed: int, family: int):
    sc = generate(seed, family)
    ns = Netns()
    try:
        ns.create()
        if ns.batch(sc.batch_text, family=sc.batch_family).fatal is not None:
            return None
        for k, v in sc.sysctls:
            ns.sysctl(k, v)
        ns.settle()
        return f"POLROUTE_SCENARIO={seed}:{family}", read_state(ns.name)
    finally:
        ns.delete()


def _focused_state(seed: int):
    text4, text6 = focused_batches(seed)
    ns = Netns()
    try:
        ns.create()
        ns.batch(text4)
        ns.batch(text6, family=6)
        ns.settle()
        return f"focused seed {seed}", read_state(ns.name)
    finally:
        ns.delete()


def _texts(state) -> list[str]:
    return [
        ks.snapshot_text(state),
        ks.snapshot_text(state, socket.AF_INET),
        ks.snapshot_text(state, socket.AF_INET6),
    ] + [f"{o}\n{t}" for o, t in ks.snapshot_batches(state)]


def _policy_view(p) -> tuple:
    return (
        p.links(),
        p.addresses(),
        [p.rules(f) for f in (socket.AF_INET, socket.AF_INET6)],
        [p.routes(f) for f in (socket.AF_INET, socket.AF_INET6)],
    )


def test_fast_path_equals_parsing(kernel_ok, monkeypatch, capsys):
    with ThreadPoolExecutor(max_workers=4) as ex:
        states = list(ex.map(lambda sf: _scenario_state(*sf), scenario_seeds(SEED ^ 0xFA57, COUNT)))
        states += list(ex.map(_focused_state, [SEED + i for i in range(8)]))
    states = [s for s in states if s is not None]
    assert len(states) >= COUNT // 2 + 8
    ks.FAST_CHECK_COUNTS.update(fast=0, fallback=0, packed=0)
    for where, state in states:
        monkeypatch.setattr(ks, "FAST_CHECK", True)
        monkeypatch.setattr(ks, "FAST_ROUTES", True)
        fast = _texts(state)  # 1. raises on a request that differs
        fast_policy = _policy_view(ks.policy_from_state(state))
        monkeypatch.setattr(ks, "FAST_CHECK", False)
        monkeypatch.setattr(ks, "FAST_ROUTES", False)
        slow = _texts(state)
        slow_policy = _policy_view(ks.policy_from_state(state))
        assert fast == slow, where  # 2.
        assert fast_policy == slow_policy, where  # 3.
    counts = dict(ks.FAST_CHECK_COUNTS)
    with capsys.disabled():
        print(f"\n[polroute snapshot fast path] POLROUTE_SEED={SEED}: {len(states)} namespaces, route lines {counts}")
    # the fast path is the common case, and was compared on many lines
    assert counts["fast"] >= 200 and counts["fast"] > 4 * counts["fallback"], counts
    assert counts.get("packed", 0) >= 100, counts
