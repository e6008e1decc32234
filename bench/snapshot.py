#!/usr/bin/env python3
"""Reading live state at 100,000 routes: read_state and snapshot_text, C reader vs pyroute2.

    python bench/snapshot.py [--routes 100000] [--tables 1000] [--runs 3]
                             [--readers c,pyroute2] [--what read,snapshot,policy] [--parse]
                             [--json FILE]

Builds the namespace ``prt-bench-snap-<pid>`` (deleted in a ``finally``): 4
veth pairs v0..v3 (both ends inside, IPv4 10.200.k.1/24 and IPv6
2001:db8:200:k::1/64 on vk), then ``--routes`` routes spread over
``--tables`` tables (ids 1000..): per table, 90 % IPv4 /24s (half ``dev vk``,
half ``via 10.200.k.254``; every 50th a 2-leg multipath), 10 % IPv6 /64s via
a gateway, each with a distinct metric (routes sharing oif/proto/scope/metric
slow the kernel's inserts down: shared/docs/anchors-measured.md), all with
``ip -batch`` *before* the rules; then one rule per table
(``from 172.16.x.y/32 lookup T``).  Only configuration and dumps: no packet
is sent.

Each measurement runs in a fresh ``python`` child: ``read`` is
``read_state(ns)`` (or, for pyroute2, the tests' reader in
tests/kernel/pyroute2_state.py; sysctls included), ``snapshot`` is what
``polroute snapshot --netns NS`` does (read_state + snapshot_text), ``policy``
is read_state + policy_from_state.  ``--parse`` sets
``polroute.live.snapshot.FAST_ROUTES = False`` in the child: every written route line is
parsed back (the path before route_line_request / route_line_packed).  The
child reports wall and CPU time (process_time) per phase and its peak RSS
(VmHWM of /proc/self/status: ``ru_maxrss`` is not used because Linux carries
the parent's pre-exec peak over into it), and the peak right after the
imports (the interpreter + cffi floor).  Medians over ``--runs``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

TESTS_KERNEL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "kernel")

CHILD = r"""
import json, resource, sys, time
reader, ns, what, parse = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "parse"


def hwm_mb():
    # VmHWM: this process image's own peak.  ru_maxrss is not used: Linux keeps
    # the parent's (pre-exec) peak in it across fork+exec.
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024

import polroute.live.snapshot as ks
from polroute.live.read import read_state
ks.FAST_ROUTES = not parse      # --parse: every written line parsed back (the old path)
import polroute.live.dump  # noqa: F401  (cffi module: import cost outside the timing)
if reader == "pyroute2":
    import pyroute2  # noqa: F401  (import cost outside the timing, as for numpy/cffi)
    sys.path.insert(0, TESTS_KERNEL)  # the pyroute2 reader is the tests' oracle
    from pyroute2_state import read_state_pyroute2 as read_state
floor = hwm_mb()
w0, c0 = time.perf_counter(), time.process_time()
state = read_state(ns)
w1, c1 = time.perf_counter(), time.process_time()
out = {"read_wall": w1 - w0, "read_cpu": c1 - c0, "timings": state.timings,
       "routes": sum(len(v) for v in state.routes.values()),
       "rules": sum(len(v) for v in state.rules.values()),
       "links": len(state.links), "addrs": len(state.addrs)}
if what == "policy":
    policy = ks.policy_from_state(state)
    w2, c2 = time.perf_counter(), time.process_time()
    out.update(snap_wall=w2 - w1, snap_cpu=c2 - c1, lines=sum(len(policy.routes(f)) for f in (2, 10)),
               not_restorable=0)
if what == "snapshot":
    if len(sys.argv) > 5:
        import cProfile, pstats
        prof = cProfile.Profile()
        prof.enable()
    text = ks.snapshot_text(state)
    w2, c2 = time.perf_counter(), time.process_time()
    out.update(snap_wall=w2 - w1, snap_cpu=c2 - c1, lines=text.count("\n"),
               not_restorable=text.count("# not restorable"))
    if len(sys.argv) > 5:
        prof.disable()
        pstats.Stats(prof, stream=sys.stderr).sort_stats("cumulative").print_stats(40)
out["floor_rss_mb"] = floor
out["peak_rss_mb"] = hwm_mb()
out["ru_maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def ip(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], input=stdin, capture_output=True, text=True, check=False)


def build(ns: str, nroutes: int, ntables: int) -> dict:
    lines = []
    for k in range(4):
        lines += [
            f"link add v{k} type veth peer name v{k}p",
            f"link set v{k} addrgenmode none",
            f"link set v{k}p addrgenmode none",
        ]
    lines.append("link set lo up")
    for k in range(4):
        lines += [
            f"link set v{k} up",
            f"link set v{k}p up",
            f"addr add 10.200.{k}.1/24 dev v{k}",
            f"addr add 2001:db8:200:{k}::1/64 dev v{k} nodad",
        ]
    per = max(1, nroutes // ntables)
    n = 0
    for t in range(ntables):
        table = 1000 + t
        for j in range(per):
            if n >= nroutes:
                break
            k = n % 4
            metric = n + 1
            if j % 10 == 9:
                lines.append(
                    f"route add 2001:db8:{t:x}:{j:x}::/64 via 2001:db8:200:{k}::fe dev v{k} "
                    f"table {table} metric {metric}"
                )
            elif j % 50 == 0:
                lines.append(
                    f"route add 10.{t // 256}.{t % 256}.{j}/32 table {table} metric {metric} "
                    f"nexthop via 10.200.{k}.254 dev v{k} nexthop via 10.200.{(k + 1) % 4}.254 "
                    f"dev v{(k + 1) % 4} weight 2"
                )
            elif j % 2:
                lines.append(
                    f"route add 10.{t // 256}.{t % 256}.{j}/32 via 10.200.{k}.254 dev v{k} "
                    f"table {table} metric {metric}"
                )
            else:
                lines.append(f"route add 10.{t // 256}.{t % 256}.{j}/32 dev v{k} table {table} metric {metric}")
            n += 1
    for t in range(ntables):
        lines.append(f"rule add from 172.16.{t // 256}.{t % 256}/32 lookup {1000 + t} pref {t + 1}")
    t0 = time.perf_counter()
    r = ip("-n", ns, "-batch", "-", stdin="\n".join(lines) + "\n")
    if r.returncode != 0:
        raise RuntimeError(f"ip -batch failed: {r.stderr[-2000:]}")
    return {"setup_s": time.perf_counter() - t0, "lines": len(lines), "routes_added": n}


def child(reader: str, ns: str, what: str, profile: bool = False, parse: bool = False) -> dict:
    argv = [
        sys.executable,
        "-c",
        CHILD.replace("TESTS_KERNEL", repr(TESTS_KERNEL)),
        reader,
        ns,
        what,
        "parse" if parse else "fast",
    ] + (["profile"] if profile else [])
    r = subprocess.run(argv, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"child {reader} {what} failed:\n{r.stderr[-3000:]}")
    if profile:
        print(r.stderr)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--routes", type=int, default=100_000)
    ap.add_argument("--tables", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--readers", default="c,pyroute2")
    ap.add_argument("--what", default="read,snapshot")
    ap.add_argument("--profile", action="store_true", help="cProfile snapshot_text once (C reader)")
    ap.add_argument(
        "--parse",
        action="store_true",
        help="polroute.live.snapshot.FAST_ROUTES = False: parse every written line back (the old path)",
    )
    ap.add_argument("--json", help="write the raw results here")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (ip netns)", file=sys.stderr)
        return 2
    ns = f"prt-bench-snap-{os.getpid()}"
    r = ip("netns", "add", ns)
    if r.returncode != 0:
        print(r.stderr, file=sys.stderr)
        return 1
    results: dict = {"routes": args.routes, "tables": args.tables, "runs": {}}
    try:
        results["setup"] = build(ns, args.routes, args.tables)
        print(f"namespace {ns}: {results['setup']}", flush=True)
        if args.profile:
            child("c", ns, "snapshot", profile=True, parse=args.parse)
        for what in args.what.split(","):
            for reader in args.readers.split(","):
                runs = []
                for _ in range(args.runs):
                    runs.append(child(reader, ns, what, parse=args.parse))
                    print(f"  {what:8} {reader:8} {json.dumps(runs[-1])}", flush=True)
                results["runs"][f"{what}/{reader}"] = runs
    finally:
        ip("netns", "del", ns)
    print()
    print("| measurement | reader | wall s | CPU s | peak RSS MB (floor after imports) | objects |")
    print("|---|---|---:|---:|---:|---|")
    for key, runs in results["runs"].items():
        what, reader = key.split("/")
        med = lambda k, runs=runs: statistics.median(x[k] for x in runs)  # noqa: E731
        objs = f"{runs[0]['routes']} routes, {runs[0]['rules']} rules"
        print(
            f"| read_state | {reader} | {med('read_wall'):.3f} | {med('read_cpu'):.3f} | "
            f"{med('peak_rss_mb'):.0f} ({med('floor_rss_mb'):.0f}) | {objs} |"
            if what == "read"
            else f"| read_state + {'policy_from_state' if what == 'policy' else 'snapshot_text'}"
            f"{' (--parse)' if args.parse else ''} | {reader} | {med('read_wall'):.3f} + {med('snap_wall'):.3f} | "
            f"{med('read_cpu'):.3f} + {med('snap_cpu'):.3f} | {med('peak_rss_mb'):.0f} "
            f"({med('floor_rss_mb'):.0f}) | {runs[0]['lines']} {'routes' if what == 'policy' else 'lines'} |"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
