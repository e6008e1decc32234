"""pytest-benchmark of provisioning through the polroute API (run only when asked):

    python -m pytest bench/test_bench_provision.py --benchmark-only

1,000 tenants (rule + table + default route each, the shape of bench/provision.py)
installed with desired_from_requests -> plan -> apply and removed with
plan(Desired(), prune=True) -> apply, in a fresh ``prt-pbench-*`` namespace per
round (deleted in a finally).  Needs root and ``ip netns``; skipped otherwise.
No timing is asserted: the asserts check that everything was applied and that
nothing is left.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # --import-mode=importlib: no implicit sys.path

import provision as P  # noqa: E402

pytest.importorskip("pytest_benchmark")

N = int(os.environ.get("POLROUTE_BENCH_TENANTS", "1000"))

if os.geteuid() != 0 or shutil.which("ip") is None:
    pytest.skip("needs root and ip netns", allow_module_level=True)


@pytest.fixture(scope="module", autouse=True)
def _warm():
    P.warm_up()


def _round(ns: str) -> None:
    from polroute.live.apply import apply
    from polroute.live.desired import Desired, desired_from_requests
    from polroute.live.plan import plan

    rules, routes = P.build_requests(N, P.ns_ifindex(ns), P.OWNER)
    p = plan(desired_from_requests(rules, routes, owner=P.OWNER), ns, owner=P.OWNER)
    rep = apply(p)
    assert rep.ok and rep.applied == 2 * N, rep.text()
    p = plan(Desired(), ns, owner=P.OWNER, prune=True)
    rep = apply(p)
    assert rep.ok and rep.applied == 2 * N, rep.text()


def test_api_install_and_remove(benchmark):
    names: list[str] = []

    def setup():
        names.append(P.new_ns())
        return (names[-1],), {}

    try:
        benchmark.pedantic(_round, setup=setup, rounds=3, iterations=1)
        assert P.check_removed(names[-1]) == ""
    finally:
        for ns in names:
            P.del_ns(ns)
