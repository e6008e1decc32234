"""polroute bench: bulk-evaluation throughput on standard workloads.

    polroute bench [--quick] [--plot FILE.png] [--json FILE] [--threads] [--only WORKLOAD ...]

Workloads (all seeded, flows already in numpy columns):
  * two-NIC: the shipped demo batch; src 45 % / 45 % one NIC's address, 10 % none;
  * N tenants (1,000 / 10,000 / 100,000; --quick stops at 10,000): tenant i owns
    172.16.0.0+i/32 on one of 4 veths, table 1000+i with a default route, and
    ``from <addr>/32 lookup 1000+i``; main has 1,000 BGP-like prefixes;
    90 % of flows come from a random tenant, 10 % have no source;
  * mixed: the 10,000-tenant policy with a fwmark, iif, dport, tos or ``to``
    rule before every 10th tenant (flows carry marks, ports and tos);
  * LPM: 500,000 prefixes with a BGP-like length mix (60 % /24, /16-/23,
    ~1.5 % longer) compiled into ``polroute.model.lpm.Lpm4``;
  * IPv6: main has 100,000 prefixes (--quick: 20,000) in 2000::/3, mostly
    /48 and /64, some /32-/44, /56 and /128, over 4 veths; 90 % of the
    destinations fall inside a random prefix, 10 % are random in 2000::/3;
    evaluated with ``lookup_bulk`` on (n, 16) uint8 columns (the full
    ``ip -6 route get`` answer per flow, the trie walk of lookup.c), rows in
    address order (the default for big batches) and as given.
Methods: the compiled snapshot's specialised evaluator (fast4.c,
``lookup_bulk(policy.compile(), ...)``) and the exact path
(``lookup_bulk(policy, ..., fast=False)``).  Anchors measured in the same run:
polroute's own linear rule selection (``lookup_bulk(..., linear=True)``),
pytricia and py-radix on the same prefixes (when installed), and, as root,
the kernel's RTM_GETROUTE on the 10k-tenant policy in a private namespace
``prt-bench-<pid>`` (2,000 ``route get`` questions through one
``ip -j -force -batch``; nothing is sent; ``--no-kernel`` skips it;
bench/compare.py has pyroute2 too).  The largest tenant count is also timed
alternately with the smallest (the per-flow cost must stay within 1.5x as tenants grow).  pytricia (PyTricia(128)) and
py-radix are the IPv6 anchors on the same prefixes (prefix lookup only, one
call per flow).

Times are CPU time of the calling thread (time.thread_time), median of the
repetitions [best]: the machine is usually shared.  --plot needs matplotlib
(the ``bench`` extra).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import resource
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from polroute.cli.bench_workloads import (
    N_LINKS,
    SEED,
    Flows,
    _ip,
    build_tenants,
    build_two_nic,
    build_v6,
    lpm_prefixes,
    public_dsts,
    tenant_flows,
    tenants_batch_text,
    two_nic_flows,
    v6_flows,
    v6_prefixes,
)
from polroute.cli.common import Command, new_parser
from polroute.cli.exitcodes import Exit
from polroute.cli.output import INDENTED, dumps


def bench_v6(rows: list, n_prefixes: int, n_flows: int, reps: int) -> None:
    from polroute.model.bulk import lookup_bulk, v6_addresses

    name = f"IPv6 {n_prefixes // 1000}k prefixes"
    rss, c = _rss_mb(), time.process_time()
    p = build_v6(n_prefixes)
    build = time.process_time() - c
    mem = f"RSS +{_rss_mb() - rss:,.0f} MB (peak)"
    dst = v6_flows(n_flows, n_prefixes)
    out = lookup_bulk(p, dst)
    rows.append(
        Row(
            name,
            "polroute lookup_bulk (IPv6, full route get)",
            n_prefixes,
            n_flows,
            timed(lambda: lookup_bulk(p, dst, out=out), reps),
            mem,
            f"build {build:.1f} s CPU (Python requests); rows in address order (incl. the sort)",
        )
    )
    main_row = rows[-1]
    plain = lookup_bulk(p, dst, order=False)
    rows.append(
        Row(
            name,
            "polroute lookup_bulk (IPv6), rows as given (order=False)",
            n_prefixes,
            n_flows,
            timed(lambda: lookup_bulk(p, dst, out=plain, order=False), max(1, reps // 2)),
            notes=f"answers == ordered: {_same(plain, out)}",
        )
    )
    nets, plens = v6_prefixes(n_prefixes)
    strs = [f"{ipaddress.IPv6Address((h << 64) | l)}/{pl}" for (h, l), pl in zip(nets.tolist(), plens.tolist())]
    nq = min(n_flows, 200_000)
    qs = [str(a) for a in v6_addresses(dst[:nq])]
    # which prefix answered, to check the anchors agree with polroute: the gateway
    # tells the link (j % 4), enough to catch a wrong prefix most of the time
    try:
        import pytricia
    except ImportError:
        rows.append(Row(name, "pytricia: not installed", 0, 1, [1.0], skipped=True))
    else:
        pt = pytricia.PyTricia(128)
        for j, s in enumerate(strs):
            pt[s] = j % N_LINKS
        get = pt.get
        gw_link = [int(str(g).split(":")[2] or 0) if g else None for g in v6_addresses(out.gateway[:20000])]
        agree = sum(1 for a, g in zip(qs[:20000], gw_link) if (get(a) if get(a) is not None else 0) == g)
        rows.append(
            Row(
                name,
                "pytricia get(str), one call per lookup",
                n_prefixes,
                nq,
                timed(lambda: [get(a) for a in qs], max(1, reps // 2)),
                notes=f"answers vs polroute (link of the prefix): {agree:,}/{len(gw_link):,} agree",
            )
        )
        main_row.anchor = rows[-1].method
    try:
        import radix
    except ImportError:
        rows.append(Row(name, "py-radix: not installed", 0, 1, [1.0], skipped=True))
    else:
        rt = radix.Radix()
        for s in strs:
            rt.add(s)
        sb = rt.search_best
        rows.append(Row(name, "py-radix search_best(str)", n_prefixes, nq, timed(lambda: [sb(a) for a in qs], 1)))


# ---------------------------------------------------------------------------
# measuring
# ---------------------------------------------------------------------------


@dataclass
class Row:
    workload: str
    method: str
    size: int  # rules or prefixes
    n: int  # flows per repetition
    cpu: list  # seconds per repetition (thread CPU)
    memory: str = ""
    notes: str = ""
    anchor: str | None = None  # method this row's ratio is taken against
    skipped: bool = False  # a "not installed / not implemented" row: no numbers

    @property
    def rate(self) -> float:
        return self.n / float(np.median(self.cpu))

    @property
    def best(self) -> float:
        return self.n / min(self.cpu)


def timed(fn: Callable[[], object], reps: int) -> list:
    out = []
    for _ in range(reps):
        c = time.thread_time()
        fn()
        out.append(time.thread_time() - c)
    return out


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _same(a, b) -> bool:
    return all(
        np.array_equal(getattr(a, k), getattr(b, k))
        for k in ("error", "type", "table", "rule_priority", "oif", "gateway", "prefsrc", "flags")
    )


FAST_METHOD = "polroute compiled lookup_bulk (fast4)"
EXACT_METHOD = "polroute lookup_bulk (exact path, rule index)"


def bench_policy(
    rows: list,
    workload: str,
    policy,
    flows: Flows,
    size: int,
    reps: int,
    linear_n: int,
    memory: str = "",
    with_single: bool = False,
):
    """Rows for the specialised evaluator (on policy.compile()), the exact path
    and (linear_n flows) the exact path with the linear rule walk.  Returns
    the compiled snapshot."""
    from polroute.model.bulk import lookup_bulk

    cols = flows.cols
    c = time.thread_time()
    snap = policy.compile()
    fast = lookup_bulk(snap, **cols)
    build = time.thread_time() - c
    st = snap.fast_stats()
    out = lookup_bulk(policy, **cols, fast=False)
    agree = _same(fast, out)
    share = fast.fast_rows / max(1, len(flows))
    rows.append(
        Row(
            workload,
            FAST_METHOD,
            size,
            len(flows),
            timed(lambda: lookup_bulk(snap, **cols, out=fast), reps),
            f"{st['memory'] / 1e6:.1f} MB",
            f"compile + fast4 build {build:.3f} s CPU; {share:.0%} of rows fast4's own"
            f"{'' if fast.fast_rows == len(flows) else ' (the rest: exact path)'}; "
            f"answers == exact: {agree}",
        )
    )
    fast_row = rows[-1]
    rows.append(
        Row(
            workload,
            EXACT_METHOD,
            size,
            len(flows),
            timed(lambda: lookup_bulk(policy, **cols, out=out, fast=False), reps),
            memory,
        )
    )
    fast_row.anchor = rows[-1].method
    if linear_n:
        sub = {k: v[:linear_n].copy() for k, v in cols.items()}
        lin = lookup_bulk(policy, **sub, linear=True)
        agree = _same(lin, lookup_bulk(policy, **sub, fast=False))
        rows.append(
            Row(
                workload,
                "polroute lookup_bulk, linear rule walk",
                size,
                linear_n,
                timed(lambda: lookup_bulk(policy, **sub, linear=True, out=lin), max(1, reps // 2)),
                notes=f"answers == index: {agree} ({linear_n:,} flows)",
            )
        )
        rows[-2].anchor = rows[-1].method
    return snap


def bench_lpm(rows: list, n_prefixes: int, n_flows: int, reps: int, quick: bool) -> None:
    from polroute.model.lpm import Lpm4

    addr, plen = lpm_prefixes(n_prefixes)
    values = np.arange(addr.shape[0], dtype=np.uint32)
    c = time.thread_time()
    t = Lpm4(addr, plen, values)
    build = time.thread_time() - c
    rng = np.random.default_rng(SEED + 5)
    q = public_dsts(n_flows, rng)
    out = t.lookup_bulk(q)
    label = f"{addr.shape[0]:,} prefixes"
    rows.append(
        Row(
            "LPM",
            "polroute Lpm4.lookup_bulk",
            int(addr.shape[0]),
            n_flows,
            timed(lambda: t.lookup_bulk(q, out=out), reps),
            f"{t.memory / 1e6:.1f} MB",
            f"build {build:.3f} s CPU; {label}",
        )
    )
    lpm_row = rows[-1]
    nq = min(n_flows, 200_000)
    qs = q[:nq].tolist()
    try:
        import pytricia
    except ImportError:
        rows.append(Row("LPM", "pytricia: not installed", 0, 1, [1.0], skipped=True))
    else:
        pt = pytricia.PyTricia(32)
        for a, pl, v in zip(addr.tolist(), plen.tolist(), values.tolist()):
            pt[f"{_ip(a)}/{pl}"] = v
        get = pt.get
        mism = sum(
            1 for a, v in zip(qs[:20000], out[:20000].tolist()) if (get(a) if get(a) is not None else Lpm4.NONE) != v
        )
        rows.append(
            Row(
                "LPM",
                "pytricia get(int), one call per lookup",
                int(addr.shape[0]),
                nq,
                timed(lambda: [get(a) for a in qs], max(1, reps // 2)),
                notes=f"answers vs Lpm4: {20000 - mism:,}/20,000 agree",
            )
        )
        lpm_row.anchor = rows[-1].method
    if not quick:
        try:
            import radix
        except ImportError:
            rows.append(Row("LPM", "py-radix: not installed", 0, 1, [1.0], skipped=True))
        else:
            rt = radix.Radix()
            for a, pl in zip(addr.tolist(), plen.tolist()):
                rt.add(_ip(a), pl)
            strs = [_ip(a) for a in qs]
            sb = rt.search_best
            rows.append(
                Row("LPM", "py-radix search_best(str)", int(addr.shape[0]), nq, timed(lambda: [sb(s) for s in strs], 1))
            )


def bench_ratio(rows: list, small: tuple, big: tuple, nflows: int, rounds: int) -> None:
    """Per-flow time of fast4 at big vs small tenant counts, the two timed
    alternately (rounds times) so that both see the same machine: the
    "within 1.5x of the smallest" target (single rows of a shared host drift
    between workloads)."""
    from polroute.model.bulk import lookup_bulk

    (ns, ss), (nb, sb) = small, big
    fs, fb = tenant_flows(nflows, ns), tenant_flows(nflows, nb)
    os_, ob = lookup_bulk(ss, **fs.cols), lookup_bulk(sb, **fb.cols)
    ts, tb = [], []
    for _ in range(rounds):
        ts += timed(lambda: lookup_bulk(ss, **fs.cols, out=os_), 1)
        tb += timed(lambda: lookup_bulk(sb, **fb.cols, out=ob), 1)
    ratio = float(np.median(tb)) / float(np.median(ts))
    rows.append(
        Row(
            f"{nb // 1000}k tenants",
            f"fast4, timed alternately with {ns // 1000}k tenants",
            nb + 3,
            nflows,
            tb,
            notes=f"{ns // 1000}k: {1e9 * float(np.median(ts)) / nflows:.1f} ns/flow; "
            f"per-flow ratio {ratio:.2f}x (median), {min(tb) / min(ts):.2f}x (best)",
        )
    )


def bench_kernel(rows: list, n_tenants: int, flows: Flows, fast_rate: float | None, n: int = 2000) -> None:
    """The kernel's answer to the same questions (RTM_GETROUTE through one
    `ip -j -force -batch` of `route get` lines; asking sends nothing) in a
    private namespace prt-bench-<pid>, deleted afterwards.  Needs root."""
    import os
    import shutil

    from polroute.audit import kernel_route_get
    from polroute.live.ip_command import run_ip

    label = f"{n_tenants // 1000}k tenants"
    if os.geteuid() != 0 or not shutil.which("ip"):
        rows.append(Row(label, "kernel RTM_GETROUTE: needs root and ip netns", 0, 1, [1.0], skipped=True))
        return
    # CI names its namespaces with its own prefix so that its clean-up finds them
    ns = f"{os.environ.get('POLROUTE_NETNS_PREFIX', 'prt-')}bench-{os.getpid()}"
    created = False
    try:
        r = run_ip(["netns", "add", ns])
        if r.returncode:
            raise RuntimeError(r.stderr.strip())
        created = True
        # no IPv6 in the namespace: no autoconf/DAD frames on its veths
        for key in ("all", "default"):
            _ns_sysctl(ns, f"net.ipv6.conf.{key}.disable_ipv6", "1")
        r = run_ip(["-n", ns, "-batch", "-"], stdin=tenants_batch_text(n_tenants), timeout=600)
        if r.returncode:
            raise RuntimeError(r.stderr.strip()[:300])
        dst, src = flows.cols["dst"][:n].tolist(), flows.cols["src"][:n].tolist()
        questions = [[_ip(d)] + (["from", _ip(s_)] if s_ else []) for d, s_ in zip(dst, src)]
        ask = kernel_route_get(ns)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        w = time.perf_counter()
        answers = ask(questions)
        wall = time.perf_counter() - w
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        bad = sum(1 for a in answers if "error" in a)
        rows.append(
            Row(
                label,
                "kernel RTM_GETROUTE (ip -j -force -batch route get, in a netns)",
                n_tenants + 3,
                n,
                [cpu],
                notes=f"wall {wall:.2f} s; {n - bad:,}/{n:,} answered"
                + (f"; fast4 is {fast_rate / (n / cpu):,.0f}x" if fast_rate else ""),
            )
        )
    except Exception as exc:  # noqa: BLE001 - a kernel problem must not lose the other rows
        rows.append(Row(label, f"kernel RTM_GETROUTE: failed: {exc}", 0, 1, [1.0], skipped=True))
    finally:
        if created:
            run_ip(["netns", "del", ns])


def _ns_sysctl(ns: str, key: str, value: str) -> None:
    """sysctl -w key=value inside namespace ns."""
    import subprocess

    from polroute.live.ip_command import IP, child_env

    subprocess.run(
        [IP, "netns", "exec", ns, "sysctl", "-qw", f"{key}={value}"], capture_output=True, env=child_env(), timeout=60
    )


CHUNK = 65_536  # rows per call in the chunked thread runs: a chunk's columns stay in cache


def bench_threads(rows: list, policy, flows: Flows, reps: int) -> None:
    """One thread vs two threads on the compiled snapshot (fast4; the GIL is
    released in C), each thread evaluating all the flows: once with the whole
    arrays per call (the output columns stream to DRAM, ~37 bytes per flow:
    memory bandwidth is shared by the threads), once in chunks of CHUNK rows
    into reused output buffers (how a tool streaming flows would call it)."""
    from polroute.model.bulk import lookup_bulk

    cols = flows.cols
    n = len(flows)
    whole = [lookup_bulk(policy, **cols) for _ in range(2)]
    chunks = [{k: v[a : a + CHUNK] for k, v in cols.items()} for a in range(0, n, CHUNK)]
    small = [lookup_bulk(policy, **chunks[0]) for _ in range(2)]

    def work_whole(k, rounds):
        for _ in range(rounds):
            lookup_bulk(policy, **cols, out=whole[k])

    def work_chunks(k, rounds):
        out = small[k]
        for _ in range(rounds):
            for c in chunks:
                if len(c["dst"]) == CHUNK:
                    lookup_bulk(policy, **c, out=out)
                else:
                    lookup_bulk(policy, **c)

    def run(work, nthreads, rounds):
        ts = [threading.Thread(target=work, args=(k, rounds)) for k in range(nthreads)]
        w, c = time.perf_counter(), time.process_time()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return time.perf_counter() - w, time.process_time() - c

    rounds = max(reps, 10)  # >= ~0.3 s per run: thread start-up and noise stay small
    for label, work in (("whole arrays", work_whole), (f"chunks of {CHUNK:,}", work_chunks)):
        w1, c1 = run(work, 1, rounds)
        w2, c2 = run(work, 2, rounds)
        total = n * rounds
        rows.append(
            Row("10k tenants", f"fast4, 1 thread, {label} (wall)", 0, total, [w1], notes=f"process CPU {c1:.2f} s")
        )
        rows.append(
            Row(
                "10k tenants",
                f"fast4, 2 threads, {label} (wall, 2x the flows)",
                0,
                2 * total,
                [w2],
                notes=f"process CPU {c2:.2f} s; speed-up {2 * w1 / w2:.2f}x",
            )
        )


# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------


def _fmt(rows: list) -> str:
    by_method = {(r.workload, r.method): r for r in rows}
    lines = [
        "| workload | method | rules / prefixes | flows x reps | flows/s (CPU, median) | best | ns/flow | memory "
        "| vs anchor | notes |",
        "|---|---|---:|---:|---:|---:|---:|---|---|---|",
    ]
    for r in rows:
        if r.skipped:
            lines.append(f"| {r.workload} | {r.method} | | | | | | | | |")
            continue
        ratio = ""
        if r.anchor and (r.workload, r.anchor) in by_method:
            a = by_method[(r.workload, r.anchor)]
            ratio = f"{r.rate / a.rate:,.1f}x {a.method.split(' ')[0]}{' linear' if 'linear' in a.method else ''}"
            ratio += " exact" if "exact path" in a.method else ""
        lines.append(
            f"| {r.workload} | {r.method} | {r.size:,} | {r.n:,} x {len(r.cpu)} | {r.rate:,.0f} | "
            f"{r.best:,.0f} | {1e9 / r.rate:,.1f} | {r.memory} | {ratio} | {r.notes} |"
        )
    return "\n".join(lines)


def _plot(rows: list, path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("polroute bench: --plot needs matplotlib (pip install 'polroute[bench]')") from None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    series: dict[str, list] = {}
    for r in rows:
        if r.workload.endswith("tenants") and r.size:
            series.setdefault(r.method, []).append((r.size, r.rate))
    for method, pts in series.items():
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=method)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("rules")
    ax.set_ylabel("flows/s (one core, CPU time)")
    ax.set_title("polroute bulk evaluation, tenant policies")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


WORKLOADS = ("two-nic", "tenants", "mixed", "lpm", "ipv6")


def parser():
    head, _, rest = __doc__.partition("\n\n")
    ap = new_parser("bench", head.split(": ", 1)[1], epilog=rest)
    ap.add_argument("--quick", action="store_true", help="smaller runs, 1,000 and 10,000 tenants only (~1 min)")
    ap.add_argument("--plot", metavar="FILE.png", help="flows/s against rule count (needs matplotlib)")
    ap.add_argument("--json", metavar="FILE", help="write the raw numbers (-: on stdout, the table on stderr)")
    ap.add_argument("--threads", action="store_true", help="also time 1 vs 2 threads on 10k tenants")
    ap.add_argument(
        "--no-kernel",
        action="store_true",
        help="skip the kernel anchor (as root it asks a private namespace with the 10k-tenant policy)",
    )
    ap.add_argument(
        "--only",
        nargs="+",
        choices=WORKLOADS,
        metavar="WORKLOAD",
        help=f"run only these workloads ({', '.join(WORKLOADS)}); default all",
    )
    return ap


def run(args) -> int:
    only = set(args.only or WORKLOADS)
    quick = args.quick
    reps = 3 if quick else 5
    nflows = 200_000 if quick else 1_000_000
    rows: list = []

    def say(*a):
        return print(*a, file=sys.stderr, flush=True)

    if "two-nic" in only:
        say("two-NIC ...")
        p = build_two_nic()
        bench_policy(rows, "two-NIC", p, two_nic_flows(nflows), 4 + 3, reps, 0)
        rows[-1].size = rows[-2].size = len(p.rules())

    tenant_sizes = ((1_000, 10_000) if quick else (1_000, 10_000, 100_000)) if "tenants" in only else ()
    ten10k = None
    for nt in tenant_sizes:
        say(f"{nt:,} tenants: building ...")
        rss, c = _rss_mb(), time.process_time()
        p = build_tenants(nt)
        build = time.process_time() - c
        say(f"  built in {build:.1f} s CPU; evaluating ...")
        name = f"{nt // 1000}k tenants"
        snap = bench_policy(
            rows,
            name,
            p,
            tenant_flows(nflows, nt),
            nt + 3,
            reps,
            linear_n=max(200, min(20_000, 20_000_000 // nt // (4 if quick else 1))),
            memory=f"RSS +{_rss_mb() - rss:,.0f} MB (peak)",
        )
        rows[-2].notes = f"build {build:.1f} s CPU (Python requests)"
        if nt == tenant_sizes[0]:
            smallest = (nt, snap)
        elif nt == tenant_sizes[-1]:
            bench_ratio(rows, smallest, (nt, snap), nflows, max(reps, 9))
        if nt == 10_000:
            ten10k = snap
            if not args.no_kernel:
                say("  kernel anchor (namespace prt-bench-<pid>) ...")
                fast = next(r for r in rows if r.workload == name and r.method == FAST_METHOD)
                bench_kernel(rows, nt, tenant_flows(nflows, nt), fast.rate)
    if args.threads and ten10k is not None:
        say("threads ...")
        bench_threads(rows, ten10k, tenant_flows(nflows, 10_000), reps)
    if "mixed" in only:
        say("mixed ...")
        nm = 2_000 if quick else 10_000
        p = build_tenants(nm, mixed=True)
        bench_policy(
            rows,
            f"mixed {nm // 1000}k",
            p,
            tenant_flows(nflows // 2, nm, mixed=True),
            nm + nm // 10 + 3,
            reps,
            linear_n=max(200, 4_000_000 // nm // (4 if quick else 1)),
        )
        del p
    if "lpm" in only:
        say("LPM 500k ...")
        bench_lpm(rows, 500_000, 4_000_000 if not quick else 2_000_000, reps, quick)
    if "ipv6" in only:
        say("IPv6 ...")
        bench_v6(rows, 20_000 if quick else 100_000, 500_000 if quick else 2_000_000, reps)

    table = sys.stderr if args.json == "-" else sys.stdout  # --json -: the numbers alone on stdout
    print(
        f"polroute bench{' --quick' if quick else ''}: CPU time of the calling thread, median of "
        f"repetitions [best]; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n",
        file=table,
    )
    print(_fmt(rows), file=table)
    if args.json:
        numbers = dumps([dict(dataclasses.asdict(r), rate=r.rate) for r in rows], INDENTED)
        if args.json == "-":
            print(numbers)
        else:
            with open(args.json, "w") as fh:
                fh.write(numbers)
    if args.plot:
        _plot(rows, args.plot)
        say(f"plot: {args.plot}")
    return Exit.OK


COMMANDS = {"bench": Command(parser, run)}

if __name__ == "__main__":
    from polroute.cli.common import invoke

    sys.exit(invoke(COMMANDS["bench"], sys.argv[1:]))
