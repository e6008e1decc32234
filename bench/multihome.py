#!/usr/bin/env python3
"""multihome at scale: a host with N addresses (each its own rule) over U uplinks.

    python bench/multihome.py [--addrs 5000] [--uplinks 4] [--reps 5] [--no-kernel]

CPU time (time.process_time) per step, median of --reps with min-max.  With
root, the same host in a namespace ``prt-bench-mh-<pid>`` (veth links,
deleted in finally): reading its state into a model and asking the kernel
every audit question in one ``ip -j -batch``.  No packet is sent.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from multihome_fixtures import big_host  # noqa: E402
from polroute import Policy  # noqa: E402
from polroute.audit import audit_policy, kernel_route_get, policy_from_netns  # noqa: E402
from polroute.iproute2.batch import apply_batch  # noqa: E402
from polroute.iproute2.rt_tables import RtTables  # noqa: E402
from polroute.multihome.hostfile import parse_host_text  # noqa: E402
from polroute.multihome.render import TARGETS, batch_text, render  # noqa: E402


def timed(fn, reps):
    cpu, out = [], None
    for _ in range(reps):
        t = time.process_time()
        out = fn()
        cpu.append(time.process_time() - t)
    return out, cpu


def row(name, cpu):
    print(f"| {name} | {statistics.median(cpu) * 1e3:.0f} | {min(cpu) * 1e3:.0f}-{max(cpu) * 1e3:.0f} |")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--addrs", type=int, default=5000)
    ap.add_argument("--uplinks", type=int, default=4)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--no-kernel", action="store_true")
    a = ap.parse_args()
    host, base, _ = big_host(a.addrs, a.uplinks)
    print(f"{a.addrs} addresses over {a.uplinks} uplinks; CPU ms, median of {a.reps}\n")
    print("| step | median ms | min-max |\n|---|---|---|")
    cfg, cpu = timed(lambda: parse_host_text(host, "big.yaml", RtTables()), a.reps)
    row("parse + validate host file", cpu)
    for target in TARGETS:
        _, cpu = timed(lambda target=target: render(cfg, target), a.reps)
        row(f"render --to {target}", cpu)
    recipe = batch_text(cfg)

    def model():
        p = Policy()
        apply_batch(p, base + recipe, "big")
        return p

    p, cpu = timed(model, a.reps)
    row("model: apply base + recipe batch", cpu)
    rep, cpu = timed(lambda: audit_policy(p), a.reps)
    row(f"audit on the model ({rep.questions} questions)", cpu)
    if a.no_kernel or os.geteuid() != 0:
        return 0
    name = f"prt-bench-mh-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        for text in (base, recipe):
            subprocess.run(["ip", "-n", name, "-batch", "-"], input=text, text=True, check=True)
        time.sleep(0.5)
        live, cpu = timed(lambda: policy_from_netns(name), 1)
        row("live: read_state + policy_from_state (1 run)", cpu)
        ask = kernel_route_get(name)
        qs = [
            [q.split()[0], "from", q.split()[2]]
            for q in [f"8.8.8.8 from {x}" for x in sorted({str(s.net[0]) for u in cfg.uplinks for s in u.serves})]
        ]
        t = time.perf_counter()
        ans = ask(qs)
        print(
            f"| kernel: {len(ans)} `route get` in one ip -batch (wall, 1 run) | "
            f"{(time.perf_counter() - t) * 1e3:.0f} | - |"
        )
    finally:
        subprocess.run(["ip", "netns", "del", name])
    return 0


if __name__ == "__main__":
    sys.exit(main())
