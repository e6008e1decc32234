#!/usr/bin/env python3
"""Publishing snapshots at 10,000 tenants, and bulk lookups on them from 1 and 2 threads.

    python bench/publish.py [--tenants 10000] [--runs 200] [--flows 1000000] [--json FILE]

Policy: ``polroute.cli.bench_workloads.build_tenants`` (per tenant an address, a rule
``from 172.16.x.y lookup T priority P`` and ``default via ... table T``;
1,000 routes in main, which is compiled).  Measured, thread CPU time
(time.thread_time), medians:

  full copy   what publishing cost before: pr_policy_clone + pr_policy_compile
  edit        adding one tenant on the writer: one rule + one route request
  publish     Published.publish(policy): pr_policy_snapshot + compile
  edit+publish+drop   the two, plus dropping the previous snapshot

Bulk scaling: ``--flows`` tenant flows on one snapshot, answered by 1 thread,
then split in halves over 2 threads (the C call releases the GIL).  Reports
wall time and process CPU time (process_time) per configuration, medians of
``--runs-bulk``.  The machine's vCPUs are shared with other jobs: the 2-thread
wall time is only meaningful next to its CPU time.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import json
import statistics
import threading
import time

from polroute._polroute_cffi import lib
from polroute.cli.bench_workloads import N_LINKS, TABLE_BASE, TENANT_BASE, _template, build_tenants, tenant_flows
from polroute.model.compiled import Published


def median_us(v):
    return statistics.median(v) * 1e6


def publish_bench(n: int, runs: int) -> dict:
    p = build_tenants(n)
    pub = Published(p)
    rep = dataclasses.replace
    V4 = ipaddress.IPv4Address
    ifidx = [p.ifindex(f"v{k}") for k in range(N_LINKS)]
    gws = [V4(f"10.200.{k}.254") for k in range(N_LINKS)]
    troute_t = _template(p, f"route add default via 10.200.0.254 dev v0 table {TABLE_BASE}")
    rule_t = _template(p, f"rule add from 172.16.0.0/32 lookup {TABLE_BASE} priority 2")
    full, edit, publish, total = [], [], [], []
    for _ in range(min(runs, 20)):
        t0 = time.thread_time()
        h = lib.pr_policy_clone(p._h)
        lib.pr_policy_compile(h, 256)
        full.append(time.thread_time() - t0)
        lib.pr_policy_free(h)
    for r in range(runs):
        i = n + r
        k = i % N_LINKS
        t0 = time.thread_time()
        p.rule(rep(rule_t, src=V4(TENANT_BASE + i), table=TABLE_BASE + i, priority=2 + 2 * i))
        p.route(rep(troute_t, table=TABLE_BASE + i, gateway=gws[k], oif=ifidx[k]))
        t1 = time.thread_time()
        pub.publish(p)  # the previous snapshot loses its last reference here
        t2 = time.thread_time()
        edit.append(t1 - t0)
        publish.append(t2 - t1)
        total.append(t2 - t0)
    return {
        "tenants": n,
        "runs": runs,
        "full_copy_us": median_us(full),
        "edit_us": median_us(edit),
        "publish_us": median_us(publish),
        "edit_publish_drop_us": median_us(total),
    }


def bulk_bench(n_tenants: int, nflows: int, runs: int) -> dict:
    p = build_tenants(n_tenants)
    snap = Published(p).current
    cols = tenant_flows(nflows, n_tenants).cols
    ref = snap.lookup_bulk(**cols)
    out = {}
    for nthreads in (1, 2):
        parts = [
            {k: v[j * nflows // nthreads : (j + 1) * nflows // nthreads] for k, v in cols.items()}
            for j in range(nthreads)
        ]
        walls, cpus = [], []
        for _ in range(runs):
            results = [None] * nthreads

            def work(j, results=results, parts=parts):
                results[j] = snap.lookup_bulk(**parts[j])

            ths = [threading.Thread(target=work, args=(j,)) for j in range(nthreads)]
            w0, c0 = time.perf_counter(), time.process_time()
            for t in ths:
                t.start()
            for t in ths:
                t.join()
            walls.append(time.perf_counter() - w0)
            cpus.append(time.process_time() - c0)
            for j in range(nthreads):  # same answers as one call
                lo = j * nflows // nthreads
                assert (results[j].table == ref.table[lo : lo + len(results[j].table)]).all()
        out[f"{nthreads}_threads"] = {
            "wall_ms": statistics.median(walls) * 1e3,
            "cpu_ms": statistics.median(cpus) * 1e3,
            "mflows_per_s_wall": nflows / statistics.median(walls) / 1e6,
        }
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tenants", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--flows", type=int, default=1_000_000)
    ap.add_argument("--runs-bulk", type=int, default=7)
    ap.add_argument("--json")
    a = ap.parse_args()
    res = {"publish": publish_bench(a.tenants, a.runs), "bulk": bulk_bench(a.tenants, a.flows, a.runs_bulk)}
    print(json.dumps(res, indent=2))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
