"""pytest-benchmark benchmarks of the bulk API (run only when asked):

    python -m pytest bench/ --benchmark-only
    python -m pytest bench/ --benchmark-only --benchmark-json=/tmp/bulk.json

The main suite's testpaths is ["tests"], so a plain `pytest` never collects
this directory.  No timing is asserted anywhere; the few asserts check the
answers (so a benchmark of wrong answers fails loudly).  The LPM rows skip
when pytricia / py-radix are not installed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# numpy's OpenBLAS starts spinning worker threads; on a 2-vCPU box they compete with the
# measured thread.  Nothing here uses BLAS: keep it to one thread.
for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402 (after the thread settings above)
import pytest  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))  # --import-mode=importlib: no implicit sys.path

import workloads as W  # noqa: E402
from polroute.model.bulk import lookup_bulk  # noqa: E402

pytest.importorskip("pytest_benchmark")

N_TWO_NIC = 1_000_000
N_TENANT = 5_000


@pytest.fixture(scope="module")
def two_nic():
    return W.build_two_nic()


@pytest.fixture(scope="module")
def tenants():
    return W.build_tenants_requests()


@pytest.fixture(scope="module")
def two_nic_flows():
    return W.two_nic_flows(N_TWO_NIC)


@pytest.fixture(scope="module")
def tenant_flows():
    return W.tenant_flows(N_TENANT)


def _check(res, expected):
    assert not res.error.any()
    assert np.array_equal(res.table, expected)


def test_bulk_two_nic(benchmark, two_nic, two_nic_flows):
    f = two_nic_flows
    benchmark.extra_info["flows"] = len(f)
    res = benchmark(lookup_bulk, two_nic, f.dst, src=f.src, fast=False)  # the exact path
    _check(res, W.expected_two_nic_tables(f))


def test_bulk_two_nic_out_reused(benchmark, two_nic, two_nic_flows):
    f = two_nic_flows
    out = lookup_bulk(two_nic, f.dst, src=f.src, fast=False)
    benchmark.extra_info["flows"] = len(f)
    res = benchmark(lookup_bulk, two_nic, f.dst, src=f.src, out=out, fast=False)
    _check(res, W.expected_two_nic_tables(f))


def test_bulk_two_nic_one_flow_per_call(benchmark, two_nic, two_nic_flows):
    """The Python wrapper's fixed cost per lookup_bulk call."""
    d, s = two_nic_flows.dst[:1].copy(), two_nic_flows.src[:1].copy()
    out = lookup_bulk(two_nic, d, src=s)
    benchmark.extra_info["flows"] = 1
    benchmark(lookup_bulk, two_nic, d, src=s, out=out)


def test_bulk_10k_tenants(benchmark, tenants, tenant_flows):
    f = tenant_flows
    benchmark.extra_info["flows"] = len(f)
    res = benchmark.pedantic(
        lookup_bulk, args=(tenants, f.dst), kwargs={"src": f.src}, rounds=5, iterations=1, warmup_rounds=1
    )
    _check(res, W.expected_tenant_tables(f))


def test_bulk_10k_tenants_fast4(benchmark, tenants):
    """The compiled snapshot's specialised evaluator (fast4.c) on 1M flows."""
    f = W.tenant_flows(1_000_000)
    snap = tenants.compile()
    out = lookup_bulk(snap, f.dst, src=f.src)
    benchmark.extra_info["flows"] = len(f)
    benchmark.extra_info["fast4"] = snap.fast_stats()
    res = benchmark.pedantic(
        lookup_bulk, args=(snap, f.dst), kwargs={"src": f.src, "out": out}, rounds=7, iterations=1, warmup_rounds=1
    )
    _check(res, W.expected_tenant_tables(f))
    assert res.fast_rows == len(f)


def test_bulk_two_nic_fast4(benchmark, two_nic, two_nic_flows):
    f = two_nic_flows
    snap = two_nic.compile()
    out = lookup_bulk(snap, f.dst, src=f.src)
    benchmark.extra_info["flows"] = len(f)
    res = benchmark(lookup_bulk, snap, f.dst, src=f.src, out=out)
    _check(res, W.expected_two_nic_tables(f))


def test_build_10k_tenants_requests(benchmark):
    benchmark.extra_info["objects"] = 3 * W.N_TENANTS + W.N_MAIN_ROUTES
    p = benchmark.pedantic(W.build_tenants_requests, rounds=1, iterations=1)
    assert len(p.rules()) == W.N_TENANTS + 3


# ---- one Python call per lookup (anchors) --------------------------------


def _lpm_keys():
    rng = np.random.default_rng(W.SEED + 9)
    return W.public_dsts(100_000, rng).tolist()


def test_pytricia_1k_main(benchmark):
    pytricia = pytest.importorskip("pytricia")
    t = pytricia.PyTricia(32)
    for net, plen, k in W.TenantSpec().main_routes():
        t.insert(f"{W.ip4(net)}/{plen}", k)
    keys = _lpm_keys()
    g = t.get

    def loop():
        for a in keys:
            g(a)

    benchmark.extra_info["flows"] = len(keys)
    benchmark(loop)


def test_radix_1k_main(benchmark):
    radix = pytest.importorskip("radix")
    rt = radix.Radix()
    for net, plen, k in W.TenantSpec().main_routes():
        rt.add(f"{W.ip4(net)}/{plen}").data["v"] = k
    keys = [W.ip4(a) for a in _lpm_keys()]
    sb = rt.search_best

    def loop():
        for a in keys:
            sb(a).data["v"]

    benchmark.extra_info["flows"] = len(keys)
    benchmark(loop)
