#!/usr/bin/env python3
"""A small driver for profiling lookup_bulk under perf or callgrind.

    python bench/profile_bulk.py two-nic 1000000 10      # workload, flows, repetitions
    python bench/profile_bulk.py tenants 20000 3

Profile an unstripped build with symbols (a regular wheel is stripped), e.g.

    python3 -m venv /tmp/vprof && /tmp/vprof/bin/pip install numpy cffi
    /tmp/vprof/bin/pip install . -Cinstall.strip=false -Ccmake.define.CMAKE_C_FLAGS=-g \
        -Cbuild-dir=/tmp/vprof-build
    perf record -e cpu-clock -F 4000 -g /tmp/vprof/bin/python bench/profile_bulk.py two-nic 1000000 10
    perf report --no-children --sort dso,symbol
    valgrind --tool=callgrind --toggle-collect=pr_lookup_bulk_v4 \
        /tmp/vprof/bin/python bench/profile_bulk.py two-nic 100000 1
    callgrind_annotate --auto=yes callgrind.out.<pid>

(--toggle-collect counts only inside the C bulk call, so the Python start-up
and the policy build do not show up; instruction counts do not depend on the
machine's load, unlike timings.)
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
# numpy's OpenBLAS starts spinning worker threads; on a 2-vCPU box they compete with the
# measured thread.  Nothing here uses BLAS: keep it to one thread.
for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import workloads as W  # noqa: E402
from polroute.model.bulk import lookup_bulk  # noqa: E402


def main(argv: list[str]) -> int:
    which = argv[0] if argv else "two-nic"
    n = int(argv[1]) if len(argv) > 1 else 1_000_000
    reps = int(argv[2]) if len(argv) > 2 else 5
    if which == "two-nic":
        p, f = W.build_two_nic(), W.two_nic_flows(n)
    elif which == "tenants":
        p, f = W.build_tenants_requests(), W.tenant_flows(n)
    else:
        raise SystemExit("workload: two-nic | tenants")
    out = lookup_bulk(p, f.dst, src=f.src)
    c, t = time.thread_time(), time.perf_counter()
    for _ in range(reps):
        lookup_bulk(p, f.dst, src=f.src, out=out)
    wall, cpu = time.perf_counter() - t, time.thread_time() - c
    print(
        f"{which}: {n:,} flows x {reps}: {n * reps / cpu:,.0f} flows/s CPU ({cpu / (n * reps) * 1e9:,.0f} ns/flow), "
        f"{n * reps / wall:,.0f} flows/s wall",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
