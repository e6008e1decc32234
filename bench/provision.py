"""Provisioning benchmark: install, then remove, N tenants (each a table with a default route and a `from` rule).

Tenant i (0 <= i < N): ``rule add from 172.16.0.0+i/32 lookup 1000+i priority 1+i``
and ``route add default via 10.200.k.254 dev vk table 1000+i`` (k = i % 4).

Methods, each in a fresh namespace ``prt-pbench-<pid>-<n>`` (4 veth pairs
``vk``/``pk`` with both ends inside, ``10.200.k.1/24`` on ``vk``, IPv6 off),
deleted in a ``finally``:

* ``api``: :func:`polroute.live.desired.desired_from_requests` -> ``plan`` -> ``apply``;
  removal ``plan(Desired(), prune=True)`` -> ``apply`` (read/plan/kernel split).
* ``cli``: ``polroute apply --batch FILE --netns NS`` (interpreter start, text
  parsing included); removal: an empty file with ``--prune``.
* ``apifile``: the CLI's path in this process: ``apply_text`` on the same file
  (read inside the clock), the namespace held from read to end as the CLI
  holds it; removal ``apply_text("", prune=True)``.  ``cli`` / ``apifile`` is
  what the command line adds (interpreter start, imports, argument parsing).
* ``pyroute2``: ``IPRoute`` one call per object (rule, then route, per tenant),
  in a worker process inside the namespace (``ip netns exec``); removal alike.
* ``ip -batch``: one ``ip -n NS -batch FILE`` process per phase, lines in the
  order people write them (rule + route per tenant, ascending priority).
* ``ipfile``: ``ip -n NS -batch FILE`` on the very file ``cli`` and ``apifile``
  are given, in its own order (per tenant its route, then its rule); removal
  the same lines with ``del``.
* ``raw floor``: pre-built requests sent with :class:`polroute.live.netlink.KernelSocket`
  in the order and with the flags the kernel handles fastest (routes first,
  rules in descending priority without NLM_F_EXCL; deletions: rules in
  ascending priority, then routes); only the send is timed.

Times: wall, and CPU = user+sys of the process doing the work (this process
for api and raw floor, the child for cli, ip -batch and pyroute2).  The
kernel's netlink work runs in the sender's syscalls, so sys time is about the
kernel's share; ``kernel`` is ``KernelSocket.timing["kernel"]`` (sendmsg +
reading the ACKs) where there is one.

Correctness: after the install every method's namespace must dump the same
rules and routes (``ip -j rule show``, ``ip -j -4 route show table all``,
protocol removed: it differs by method) and hold N tenant rules and N tenant
routes; after the removal no tenant rule or route may be left.

Only configuration inside the namespaces this script creates; no packets.

    python bench/provision.py [--quick] [--runs R] [--sizes 1000,10000] [--methods api,raw]
                              [--skip-slow] [--json FILE]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import ipaddress
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent

N_LINKS = 4
TENANT_BASE = int(ipaddress.IPv4Address("172.16.0.0"))
TABLE_BASE = 1000
METHODS = ("api", "apifile", "cli", "pyroute2", "ipbatch", "ipfile", "raw")
METHOD_NAMES = {
    "api": "polroute API (plan + apply)",
    "apifile": "polroute API `apply_text` (same file as CLI)",
    "cli": "polroute CLI `apply --batch`",
    "pyroute2": "pyroute2 IPRoute, 1 call/object",
    "ipbatch": "`ip -batch` (naive order)",
    "ipfile": "`ip -batch` of the CLI's file (routes first)",
    "raw": "raw floor (KernelSocket, best order)",
}
# methods whose time grows ~N^2 in the kernel's rule insert (NLM_F_EXCL,
# ascending priority): at 50k, minutes
SLOW = ("pyroute2",)

_counter = 0


# ---------------------------------------------------------------------------
# the workload
# ---------------------------------------------------------------------------


def tenant_addr(i: int) -> str:
    return str(ipaddress.IPv4Address(TENANT_BASE + i))


def rule_line(i: int, verb: str = "add") -> str:
    return f"rule {verb} from {tenant_addr(i)}/32 lookup {TABLE_BASE + i} priority {1 + i}"


def route_line(i: int, verb: str = "add") -> str:
    k = i % N_LINKS
    return f"route {verb} default via 10.200.{k}.254 dev v{k} table {TABLE_BASE + i}"


def naive_text(n: int, verb: str) -> str:
    """What people write for ip -batch: per tenant its rule then its route
    (ascending priority); removal the same way."""
    out = []
    for i in range(n):
        out.append(rule_line(i, verb))
        out.append(route_line(i, verb))
    return "\n".join(out) + "\n"


def desired_text(n: int, verb: str = "add") -> str:
    """The desired state for polroute (order does not matter to it); with
    verb "del" the same lines as deletions, for ``ip -batch``."""
    return "".join(f"{route_line(i, verb)}\n{rule_line(i, verb)}\n" for i in range(n))


def desired_file(tmp: Path, n: int) -> Path:
    """The one desired file that cli, apifile and ipfile are given."""
    f = tmp / f"desired-{n}.ip"
    if not f.exists():
        f.write_text(desired_text(n))
    return f


class _Names:
    """ifindex by name for the request builder (polroute.iproute2.batch.parse_command)."""

    def __init__(self, by_name: dict[str, int]):
        self.by_name = by_name

    def ifindex(self, name: str) -> int:
        return self.by_name[name]

    def addresses(self):
        return []


def build_requests(n: int, ifindex: dict[str, int], owner: int):
    """(rules, routes): the tenants as polroute requests (as `ip rule add` /
    `ip route add` would send them, routes with the owner protocol)."""
    from polroute.iproute2.batch import parse_command
    from polroute.iproute2.lexer import split_args

    names = _Names(ifindex)
    rules, routes = [], []
    # parse one of each, then stamp the per-tenant fields on copies: parsing
    # 100,000 lines here would only slow the set-up
    rule0 = parse_command(split_args(rule_line(0)), names).requests[0][1]
    route0 = [parse_command(split_args(route_line(k)), names, route_proto=owner).requests[0][1] for k in range(N_LINKS)]
    import dataclasses

    for i in range(n):
        rules.append(
            dataclasses.replace(rule0, src=ipaddress.IPv4Address(TENANT_BASE + i), table=TABLE_BASE + i, priority=1 + i)
        )
        routes.append(dataclasses.replace(route0[i % N_LINKS], table=TABLE_BASE + i, nexthops=[], metrics={}))
    return rules, routes


# ---------------------------------------------------------------------------
# namespaces
# ---------------------------------------------------------------------------


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def new_ns() -> str:
    global _counter
    _counter += 1
    name = f"prt-pbench-{os.getpid()}-{_counter}"
    r = _run(["ip", "netns", "add", name])
    if r.returncode:
        raise RuntimeError(f"ip netns add {name}: {r.stderr.strip()}")
    try:
        _run(
            [
                "ip",
                "netns",
                "exec",
                name,
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ]
        )
        setup = ["link set lo up"]
        for k in range(N_LINKS):
            setup += [
                f"link add v{k} type veth peer name p{k}",
                f"link set p{k} up",
                f"link set v{k} up",
                f"address add 10.200.{k}.1/24 dev v{k}",
            ]
        r = _run(["ip", "-n", name, "-batch", "-"], input="\n".join(setup) + "\n")
        if r.returncode:
            raise RuntimeError(f"set-up of {name}: {r.stderr.strip()}")
        # the connected routes must be there before gateways can resolve
        for _ in range(100):
            out = _run(["ip", "-n", name, "-4", "route", "show", "table", "main"]).stdout
            if all(f"10.200.{k}.0/24" in out for k in range(N_LINKS)):
                break
            time.sleep(0.02)
    except BaseException:
        del_ns(name)
        raise
    return name


def del_ns(name: str) -> None:
    _run(["ip", "netns", "del", name])


def ns_ifindex(name: str) -> dict[str, int]:
    out = json.loads(_run(["ip", "-n", name, "-j", "link", "show"]).stdout)
    return {l["ifname"]: l["ifindex"] for l in out}


def dump(name: str) -> tuple[list, list]:
    rules = json.loads(_run(["ip", "-n", name, "-j", "rule", "show"]).stdout or "[]")
    routes = json.loads(_run(["ip", "-n", name, "-j", "-4", "route", "show", "table", "all"]).stdout or "[]")
    return rules, routes


def _norm(objs: list) -> list[str]:
    out = []
    for o in objs:
        o = {k: v for k, v in o.items() if k != "protocol"}
        out.append(json.dumps(o, sort_keys=True))
    return sorted(out)


def _is_tenant_rule(r: dict) -> bool:
    t = r.get("table")
    return str(t).isdigit() and int(t) >= TABLE_BASE


def _is_tenant_route(r: dict) -> bool:
    t = r.get("table")
    return str(t).isdigit() and int(t) >= TABLE_BASE


def check_installed(name: str, n: int) -> tuple[str, str]:
    """(problem or "", digest of the normalised dump)."""
    rules, routes = dump(name)
    nr = sum(map(_is_tenant_rule, rules))
    nt = sum(map(_is_tenant_route, routes))
    digest = hashlib.sha256("\n".join(_norm(rules) + ["--"] + _norm(routes)).encode()).hexdigest()
    if nr != n or nt != n:
        return f"after install: {nr} tenant rules, {nt} tenant routes (want {n} each)", digest
    return "", digest


def check_removed(name: str) -> str:
    rules, routes = dump(name)
    nr = sum(map(_is_tenant_rule, rules))
    nt = sum(map(_is_tenant_route, routes))
    if nr or nt:
        return f"after removal: {nr} tenant rules and {nt} tenant routes left"
    return ""


# ---------------------------------------------------------------------------
# timing
# ---------------------------------------------------------------------------


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _self_cpu() -> tuple[float, float]:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime, ru.ru_stime


@dataclass
class Phase:
    wall: float = 0.0
    cpu: float = 0.0  # user + sys of the working process
    sys: float | None = None  # its sys part, where known
    kernel: float | None = None  # KernelSocket.timing["kernel"] (sendmsg + ACKs)
    split: dict = field(default_factory=dict)  # read/plan/... seconds

    def as_dict(self) -> dict:
        return {"wall": self.wall, "cpu": self.cpu, "sys": self.sys, "kernel": self.kernel, "split": self.split}


class SelfClock:
    def __init__(self):
        self.u, self.s = _self_cpu()
        self.t = time.perf_counter()

    def stop(self, ph: Phase) -> Phase:
        ph.wall = time.perf_counter() - self.t
        u, s = _self_cpu()
        ph.cpu, ph.sys = (u - self.u) + (s - self.s), s - self.s
        return ph


def run_child(cmd: list[str], timeout: float, stdin: str | None = None) -> tuple[Phase, subprocess.CompletedProcess]:
    """Run a child; wall time and its user+sys (sys separately)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=stdin)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    sys_ = after.ru_stime - before.ru_stime
    return Phase(wall, (after.ru_utime - before.ru_utime) + sys_, sys_), r


# ---------------------------------------------------------------------------
# methods: install(ns, n) -> Phase, then remove(ns, n) -> Phase
# ---------------------------------------------------------------------------

OWNER = 245  # polroute's default owner protocol (also used by the raw floor)


class Method:
    key = ""

    def __init__(self, tmp: Path):
        self.tmp = tmp

    def install(self, ns: str, n: int) -> Phase:
        raise NotImplementedError

    def remove(self, ns: str, n: int) -> Phase:
        raise NotImplementedError


class Api(Method):
    """desired_from_requests -> plan -> apply; removal: plan(Desired(), prune=True) -> apply.
    The requests are built before the clock starts (what an embedding tool
    would already hold)."""

    key = "api"

    def install(self, ns, n):
        from polroute.live.apply import apply
        from polroute.live.desired import desired_from_requests
        from polroute.live.plan import plan

        rules, routes = build_requests(n, ns_ifindex(ns), OWNER)
        c = SelfClock()
        t0 = time.perf_counter()
        desired = desired_from_requests(rules, routes, owner=OWNER)
        t1 = time.perf_counter()
        p = plan(desired, ns, owner=OWNER)
        rep = apply(p)
        ph = c.stop(Phase())
        if not rep.ok or len(p.ops) != 2 * n:
            raise RuntimeError(f"api install: {rep.text().strip()} ({len(p.ops)} ops)")
        ph.kernel = rep.seconds["kernel"]
        ph.split = {
            "desired": t1 - t0,
            "read": p.seconds["read"],
            "plan": p.seconds["plan"],
            "kernel": rep.seconds["kernel"],
            "apply": rep.seconds["apply"],
        }
        return ph

    def remove(self, ns, n):
        from polroute.live.apply import apply
        from polroute.live.desired import Desired
        from polroute.live.plan import plan

        c = SelfClock()
        p = plan(Desired(), ns, owner=OWNER, prune=True)
        rep = apply(p)
        ph = c.stop(Phase())
        if not rep.ok or len(p.ops) != 2 * n:
            raise RuntimeError(f"api removal: {rep.text().strip()} ({len(p.ops)} ops)")
        ph.kernel = rep.seconds["kernel"]
        ph.split = {
            "read": p.seconds["read"],
            "plan": p.seconds["plan"],
            "kernel": rep.seconds["kernel"],
            "apply": rep.seconds["apply"],
        }
        return ph


_APPLIED_RE = re.compile(r"in ([\d.]+) s \(read ([\d.]+) s, plan ([\d.]+) s, kernel ([\d.]+) s\)")


def polroute_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "polroute"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "polroute"]


class Cli(Method):
    """`polroute apply --batch FILE --netns NS`; removal: an empty file + --prune."""

    key = "cli"

    def _apply(self, ns, path, extra):
        ph, r = run_child(
            polroute_cmd() + ["apply", "--batch", str(path), "--netns", ns, "--owner", str(OWNER)] + extra, timeout=3600
        )
        if r.returncode:
            raise RuntimeError(f"polroute apply: rc {r.returncode}: {r.stderr.strip()[-400:]}")
        m = _APPLIED_RE.search(r.stdout)
        if m:
            ph.kernel = float(m.group(4))
            ph.split = {
                "in-process": float(m.group(1)),
                "read": float(m.group(2)),
                # the CLI parses the file before plan(): its "plan" and "in X s" leave
                # the parse out (the key keeps its old name for older JSON files)
                "parse+plan": float(m.group(3)),
                "kernel": float(m.group(4)),
            }
        return ph

    def install(self, ns, n):
        return self._apply(ns, desired_file(self.tmp, n), [])

    def remove(self, ns, n):
        f = self.tmp / "empty.ip"
        f.write_text("")
        return self._apply(ns, f, ["--prune"])


class ApiFile(Method):
    """What `polroute apply --batch FILE --netns NS` runs, in this process:
    the file read and ``apply_text`` (session.writer + plan + apply) inside the
    clock; removal ``apply_text("", prune=True)`` like the CLI's empty file."""

    key = "apifile"

    def _go(self, ns, n, path: Path | None, prune: bool):
        from polroute.live.apply import apply_text

        c = SelfClock()
        text = path.read_text() if path else ""
        rep = apply_text(text, filename=str(path or "<empty>"), netns=ns, owner=OWNER, prune=prune)
        ph = c.stop(Phase())
        if not rep.ok or rep.applied != 2 * n:
            raise RuntimeError(f"apifile: {rep.text().strip()} ({rep.applied} applied)")
        ph.kernel = rep.seconds.get("kernel")
        ph.split = {**{k: v for k, v in rep.plan.seconds.items() if k in ("read", "plan")}, **rep.seconds}
        return ph

    def install(self, ns, n):
        return self._go(ns, n, desired_file(self.tmp, n), False)

    def remove(self, ns, n):
        return self._go(ns, n, None, True)


PYROUTE2_WORKER = r"""
import ipaddress, json, resource, sys, time
t_import = time.perf_counter()
from pyroute2 import IPRoute
verb = sys.argv[1]; n = int(sys.argv[2]); base = int(sys.argv[3]); tb = int(sys.argv[4]); nl = int(sys.argv[5])
def cpu():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime, ru.ru_stime
with IPRoute() as ipr:
    idx = [ipr.link_lookup(ifname=f"v{k}")[0] for k in range(nl)]
    addrs = [str(ipaddress.IPv4Address(base + i)) for i in range(n)]
    gws = [f"10.200.{k}.254" for k in range(nl)]
    u0, s0 = cpu(); t0 = time.perf_counter()
    for i in range(n):          # as people write it: per tenant its rule, then its route
        k = i % nl
        ipr.rule(verb, src=addrs[i], src_len=32, table=tb + i, priority=1 + i)
        ipr.route(verb, dst="0.0.0.0/0", gateway=gws[k], oif=idx[k], table=tb + i)
    wall = time.perf_counter() - t0; u1, s1 = cpu()
print(json.dumps({"wall": wall, "cpu": (u1 - u0) + (s1 - s0), "sys": s1 - s0}))
"""


class Pyroute2(Method):
    """IPRoute().rule()/route() one call per object, in a worker process inside
    the namespace (IPRoute(netns=...) would proxy every call through another
    process); the worker times its own loop (interpreter start and import excluded)."""

    key = "pyroute2"

    def _go(self, ns, n, verb):
        wk = self.tmp / "pr2_worker.py"
        wk.write_text(PYROUTE2_WORKER)
        _ph, r = run_child(
            [
                "ip",
                "netns",
                "exec",
                ns,
                sys.executable,
                str(wk),
                verb,
                str(n),
                str(TENANT_BASE),
                str(TABLE_BASE),
                str(N_LINKS),
            ],
            timeout=7200,
        )
        if r.returncode:
            raise RuntimeError(f"pyroute2 worker ({verb}): {r.stderr.strip()[-400:]}")
        g = json.loads(r.stdout)
        return Phase(g["wall"], g["cpu"], g["sys"])

    def install(self, ns, n):
        return self._go(ns, n, "add")

    def remove(self, ns, n):
        return self._go(ns, n, "del")


class IpBatch(Method):
    """`ip -n NS -batch FILE`, one process per phase (start-up included)."""

    key = "ipbatch"

    def _go(self, ns, n, verb):
        f = self.tmp / f"naive-{verb}-{n}.ip"
        if not f.exists():
            f.write_text(naive_text(n, verb))
        ph, r = run_child(["ip", "-n", ns, "-batch", str(f)], timeout=3600)
        if r.returncode:
            raise RuntimeError(f"ip -batch {verb}: {r.stderr.strip()[-400:]}")
        return ph

    def install(self, ns, n):
        return self._go(ns, n, "add")

    def remove(self, ns, n):
        return self._go(ns, n, "del")


class IpFile(Method):
    """`ip -n NS -batch FILE` on the CLI's own desired file, in its order
    (route then rule per tenant); removal: the same lines with `del`."""

    key = "ipfile"

    def install(self, ns, n):
        return self._go(ns, desired_file(self.tmp, n), "add")

    def remove(self, ns, n):
        f = self.tmp / f"desired-del-{n}.ip"
        if not f.exists():
            f.write_text(desired_text(n, "del"))
        return self._go(ns, f, "del")

    def _go(self, ns, f: Path, verb: str):
        ph, r = run_child(["ip", "-n", ns, "-batch", str(f)], timeout=3600)
        if r.returncode:
            raise RuntimeError(f"ip -batch {verb} ({f.name}): {r.stderr.strip()[-400:]}")
        return ph


def raw_requests(n: int, ifindex: dict[str, int]):
    """(install, removal) request lists in the kernel's cheapest order and flags."""
    import dataclasses

    from polroute.types.requests import NLM_F_CREATE, RTM_DELROUTE, RTM_DELRULE

    rules, routes = build_requests(n, ifindex, OWNER)
    rules = [dataclasses.replace(r, nlmsg_flags=NLM_F_CREATE, protocol=OWNER) for r in rules]  # no EXCL
    install = routes + sorted(rules, key=lambda r: -r.priority)
    removal = [dataclasses.replace(r, msg_type=RTM_DELRULE, nlmsg_flags=0) for r in rules] + [
        dataclasses.replace(r, msg_type=RTM_DELROUTE, nlmsg_flags=0) for r in routes
    ]
    return install, removal


class Raw(Method):
    """Pre-built requests, best order and flags, one KernelSocket; only send() timed."""

    key = "raw"

    def _send(self, ns, reqs):
        from polroute.live.netlink import KernelSocket

        with KernelSocket(ns) as ks:
            ks.set_buffers(1 << 22, 1 << 22, force=True)
            c = SelfClock()
            outcomes = ks.send(reqs)
            ph = c.stop(Phase())
            timing = dict(ks.timing)
        bad = [o for o in outcomes if not o.ok]
        if bad:
            raise RuntimeError(f"raw: {len(bad)} refused, first: {bad[0].iproute2_text()}")
        ph.kernel = timing["kernel"]
        ph.split = {"encode": timing["encode"], "kernel": timing["kernel"]}
        return ph

    def install(self, ns, n):
        self.reqs = raw_requests(n, ns_ifindex(ns))
        return self._send(ns, self.reqs[0])

    def remove(self, ns, n):
        return self._send(ns, self.reqs[1])


CLASSES = {c.key: c for c in (Api, ApiFile, Cli, Pyroute2, IpBatch, IpFile, Raw)}


# ---------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------


@dataclass
class Result:
    method: str
    n: int
    runs: list = field(default_factory=list)  # [(install Phase, remove Phase)]
    problems: list = field(default_factory=list)
    digest: str = ""
    note: str = ""

    def med(self, which: int, attr: str) -> float | None:
        vals = [getattr(r[which], attr) for r in self.runs if getattr(r[which], attr) is not None]
        return statistics.median(vals) if vals else None

    def med_split(self, which: int, key: str) -> float | None:
        vals = [r[which].split[key] for r in self.runs if key in r[which].split]
        return statistics.median(vals) if vals else None

    def total(self, attr: str) -> float | None:
        vals = [
            getattr(a, attr) + getattr(b, attr)
            for a, b in self.runs
            if getattr(a, attr) is not None and getattr(b, attr) is not None
        ]
        return statistics.median(vals) if vals else None

    def as_dict(self) -> dict:
        return {
            "method": self.method,
            "n": self.n,
            "problems": self.problems,
            "note": self.note,
            "digest": self.digest,
            "runs": [{"install": a.as_dict(), "remove": b.as_dict()} for a, b in self.runs],
        }


def _loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def run_method(key: str, n: int, reps: int, tmp: Path, log) -> Result:
    res = Result(key, n)
    m = CLASSES[key](tmp)
    for rep in range(reps):
        ns = new_ns()
        try:
            inst = m.install(ns, n)
            prob, digest = check_installed(ns, n)
            if prob:
                res.problems.append(f"run {rep + 1}: {prob}")
            if res.digest and digest != res.digest:
                res.problems.append(f"run {rep + 1}: installed state differs from run 1")
            res.digest = res.digest or digest
            rem = m.remove(ns, n)
            prob = check_removed(ns)
            if prob:
                res.problems.append(f"run {rep + 1}: {prob}")
            res.runs.append((inst, rem))
            log(
                f"  {key:8s} N={n:>6,} run {rep + 1}/{reps}: install {inst.wall:8.3f} s wall "
                f"{inst.cpu:8.3f} s CPU; remove {rem.wall:7.3f} s wall {rem.cpu:7.3f} s CPU"
                + f"; load {_loadavg()}"
                + (f"  [{inst.split}]" if inst.split else "")
            )
        except Exception as e:  # noqa: BLE001 - one method's failure must not lose the others
            res.problems.append(f"run {rep + 1}: {e}")
            log(f"  {key:8s} N={n:>6,} run {rep + 1}: FAILED: {e}")
            break
        finally:
            del_ns(ns)
    return res


# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------


def machine_info() -> dict:
    cpu = "?"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            lines = f.readlines()
        for line in lines:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    git = "?"
    if (HERE.parent / ".git").exists() and shutil.which("git"):
        rev = _run(["git", "-C", str(HERE.parent), "rev-parse", "--short", "HEAD"]).stdout.strip()
        dirty = _run(["git", "-C", str(HERE.parent), "status", "--porcelain", "--untracked-files=no"]).stdout.strip()
        git = rev + (" (working tree modified)" if dirty else "")
    try:
        from importlib import metadata

        pr2 = metadata.version("pyroute2")
    except Exception:  # noqa: BLE001
        pr2 = "not installed"
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "repo": git,
        "pyroute2": pr2,
        "iproute2": _run(["ip", "-V"]).stdout.strip(),
        "loadavg_start": " ".join(open("/proc/loadavg").read().split()[:3]),
    }


def _f(x: float | None, d: int = 3) -> str:
    return "–" if x is None else f"{x:.{d}f}"


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b <= 0:
        return "–"
    return f"{a / b:.2f}x" if a / b < 10 else f"{a / b:.1f}x"


def report(info: dict, results: list[Result], argv: list[str]) -> str:
    out = [
        f"# Provisioning benchmark — {info['date']}",
        "",
        f"`python bench/provision.py {' '.join(argv)}` — {info['cpu']}, {info['cpus']} CPUs, "
        f"{info['kernel']}, Python {info['python']}, pyroute2 {info['pyroute2']}, {info['iproute2']}, "
        f"repo {info['repo']}. Load average at start {info['loadavg_start']}, end "
        f"{info.get('loadavg_end', '?')}: the machine is shared, wall times are inflated; "
        "CPU = user+sys of the working process (its sys part is mostly the kernel's netlink work).",
        "",
        "Medians over the runs (runs column). install + remove = both phases of one run.",
        "",
        "| N | method | runs | install wall s | install CPU s (sys) | remove wall s | remove CPU s (sys) "
        "| install+remove wall s | install+remove CPU s | kernel (sendmsg+ACKs) inst / rem s | check |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in results:
        if not r.runs:
            out.append(f"| {r.n:,} | {METHOD_NAMES[r.method]} | 0 | | | | | | | | {'; '.join(r.problems) or r.note} |")
            continue
        kern = "–" if r.med(0, "kernel") is None else f"{_f(r.med(0, 'kernel'))} / {_f(r.med(1, 'kernel'))}"
        check = "ok" if not r.problems else "; ".join(r.problems)
        out.append(
            f"| {r.n:,} | {METHOD_NAMES[r.method]} | {len(r.runs)} | {_f(r.med(0, 'wall'))} | "
            f"{_f(r.med(0, 'cpu'))} ({_f(r.med(0, 'sys'))}) | {_f(r.med(1, 'wall'))} | "
            f"{_f(r.med(1, 'cpu'))} ({_f(r.med(1, 'sys'))}) | {_f(r.total('wall'))} | "
            f"{_f(r.total('cpu'))} | {kern} | {check} |"
        )
    # cross-method state comparison
    out += [
        "",
        "Installed state (rules + IPv4 routes of all tables, protocol removed) compared between methods at each N:",
    ]
    for n in sorted({r.n for r in results}):
        groups: dict[str, list[str]] = {}
        legacy = False
        for r in results:
            if r.n == n and r.digest:
                # results of older runs kept Python's per-process str hash: comparable
                # only with results of the same file
                key = r.digest if len(r.digest) == 64 else f"{r.note}:{r.digest}"
                legacy |= len(r.digest) != 64
                groups.setdefault(key, []).append(r.method)
        if len(groups) == 1:
            out.append(f"* N={n:,}: identical in " + ", ".join(next(iter(groups.values()))))
        elif legacy and not any(len(k) == 64 for k in groups):
            out.append(
                f"* N={n:,}: identical within each run: "
                + "; ".join(", ".join(g) for g in groups.values())
                + " (these runs' digests are not comparable across runs; see the smaller N)"
            )
        else:
            out.append(f"* N={n:,}: DIFFERENT: " + "; ".join(", ".join(g) for g in groups.values()))
    # api split
    out += [
        "",
        "polroute API split (median s): install = desired / read / plan / kernel; remove = read / plan / kernel",
        "",
    ]
    for r in results:
        if r.method == "api" and r.runs:
            out.append(
                f"* N={r.n:,}: install {_f(r.med_split(0, 'desired'))} / {_f(r.med_split(0, 'read'))} / "
                f"{_f(r.med_split(0, 'plan'))} / {_f(r.med_split(0, 'kernel'))}; remove "
                f"{_f(r.med_split(1, 'read'))} / {_f(r.med_split(1, 'plan'))} / "
                f"{_f(r.med_split(1, 'kernel'))}"
            )
        if r.method == "apifile" and r.runs:
            out.append(
                f"* apply_text N={r.n:,}: install read {_f(r.med_split(0, 'read'))} / plan "
                f"{_f(r.med_split(0, 'plan'))} / journal {_f(r.med_split(0, 'journal'))} / kernel "
                f"{_f(r.med_split(0, 'kernel'))} / apply {_f(r.med_split(0, 'apply'))}; remove read "
                f"{_f(r.med_split(1, 'read'))} / plan {_f(r.med_split(1, 'plan'))} / kernel "
                f"{_f(r.med_split(1, 'kernel'))} / apply {_f(r.med_split(1, 'apply'))}"
            )
        if r.method == "cli" and r.runs:
            out.append(
                f"* CLI N={r.n:,} (its own timing line; the file's parse is in none of these): install read "
                f"{_f(r.med_split(0, 'read'))} / plan "
                f"{_f(r.med_split(0, 'parse+plan'))} / kernel {_f(r.med_split(0, 'kernel'))}; remove "
                f"read {_f(r.med_split(1, 'read'))} / plan {_f(r.med_split(1, 'parse+plan'))} / "
                f"kernel {_f(r.med_split(1, 'kernel'))}"
            )
    # targets
    by = {(r.method, r.n): r for r in results if r.runs}
    out += [
        "",
        "Targets, from the medians above; CPU first (the steadier figure on this shared machine), wall in brackets:",
        "",
    ]

    def cmp(slow: Result | None, fast: Result | None, which) -> str:
        if not slow or not fast:
            return "–"
        if which == "total":
            return f"{_ratio(slow.total('cpu'), fast.total('cpu'))} [{_ratio(slow.total('wall'), fast.total('wall'))}]"
        return (
            f"{_ratio(slow.med(which, 'cpu'), fast.med(which, 'cpu'))} "
            f"[{_ratio(slow.med(which, 'wall'), fast.med(which, 'wall'))}]"
        )

    def wcmp(slow: Result | None, fast: Result | None, which) -> str:
        if which == "total":
            return f"{_ratio(slow.total('wall'), fast.total('wall'))} [{_ratio(slow.total('cpu'), fast.total('cpu'))}]"
        return (
            f"{_ratio(slow.med(which, 'wall'), fast.med(which, 'wall'))} "
            f"[{_ratio(slow.med(which, 'cpu'), fast.med(which, 'cpu'))}]"
        )

    for n in sorted({r.n for r in results}):
        api, raw = by.get(("api", n)), by.get(("raw", n))
        for other, want in (("pyroute2", "≥ 20x"), ("ipbatch", "≥ 3x")):
            o = by.get((other, n))
            if api and o:
                out.append(
                    f"* N={n:,}: {METHOD_NAMES[other]} / polroute API (want {want} at 10k): install "
                    f"{cmp(o, api, 0)}, remove {cmp(o, api, 1)}, install+remove {cmp(o, api, 'total')}"
                )
        if api and raw:
            out.append(
                f"* N={n:,}: polroute API / raw floor (want ≤ 1.3x): install {cmp(api, raw, 0)}, "
                f"remove {cmp(api, raw, 1)}, install+remove {cmp(api, raw, 'total')}"
            )
        cli = by.get(("cli", n))
        if cli and raw:
            out.append(f"* N={n:,}: polroute CLI / raw floor: install+remove {cmp(cli, raw, 'total')}")
        # the command line against the others, wall first (what a user waits for;
        # the CLI's CPU is its child process's, the API's this process's)
        for other, want in (("ipfile", "≥ 3x"), ("ipbatch", ""), ("pyroute2", "≥ 20x")):
            o = by.get((other, n))
            if cli and o:
                out.append(
                    f"* N={n:,}: {METHOD_NAMES[other]} / polroute CLI"
                    + (f" (want {want} at 10k)" if want else "")
                    + f", wall [CPU]: install {wcmp(o, cli, 0)}, remove {wcmp(o, cli, 1)}, "
                    f"install+remove {wcmp(o, cli, 'total')}"
                )
        for api_key in ("apifile", "api"):
            a = by.get((api_key, n))
            if cli and a:
                out.append(
                    f"* N={n:,}: polroute CLI / {METHOD_NAMES[api_key]} (want ≤ 1.3x), wall [CPU]: "
                    f"install {wcmp(cli, a, 0)}, remove {wcmp(cli, a, 1)}, install+remove {wcmp(cli, a, 'total')}"
                )
        for m in ("cli", "apifile"):
            r = by.get((m, n))
            if r and raw:
                out.append(
                    f"* N={n:,}: {METHOD_NAMES[m]} / raw floor (want ≤ 1.3x at 50k), wall [CPU]: "
                    f"install {wcmp(r, raw, 0)}, remove {wcmp(r, raw, 1)}, install+remove {wcmp(r, raw, 'total')}"
                )
        if n >= 50000:
            for m in ("api", "cli", "raw"):
                r = by.get((m, n))
                if r:
                    out.append(
                        f"* N={n:,}: {METHOD_NAMES[m]} install (rules + routes; want < 2 s): "
                        f"{_f(r.med(0, 'wall'))} s wall, {_f(r.med(0, 'cpu'))} s CPU"
                        + (f", kernel {_f(r.med(0, 'kernel'))} s" if r.med(0, "kernel") else "")
                    )
    return "\n".join(out) + "\n"


def route_variants(n: int, log) -> str:
    """Why N routes cost what they cost: the raw floor's route install (no
    rules present) in three shapes, each in a fresh namespace.  Sys CPU is
    the kernel's work.  See the README for the kernel source behind it."""
    import dataclasses

    from polroute.live.netlink import KernelSocket

    rows = []
    shapes = {
        "tenant routes: 1 default route per table, same (dev, gw, proto, metric) pattern": lambda rs: rs,
        "same, but metric = i (distinct fib_info hash per route)": lambda rs: [
            dataclasses.replace(r, priority=1 + i, present=r.present | (1 << 6)) for i, r in enumerate(rs)
        ],
        "same gateways/devs, all in ONE table (10.64.0.0+i/32 routes)": lambda rs: [
            dataclasses.replace(
                r,
                table=TABLE_BASE,
                dst_len=32,
                present=r.present | (1 << 1),
                dst=ipaddress.IPv4Address(int(ipaddress.IPv4Address("10.64.0.0")) + i),
            )
            for i, r in enumerate(rs)
        ],
    }

    def rules_desc(rs):
        from polroute.types.requests import NLM_F_CREATE

        return sorted((dataclasses.replace(r, nlmsg_flags=NLM_F_CREATE) for r in rs), key=lambda r: -r.priority)

    for label, shape in list(shapes.items()) + [
        ("(for comparison) the tenant RULES, descending priority, no NLM_F_EXCL, no routes", None)
    ]:
        ns = new_ns()
        try:
            rules, routes = build_requests(n, ns_ifindex(ns), OWNER)
            reqs = rules_desc(rules) if shape is None else shape(routes)
            with KernelSocket(ns) as ks:
                ks.set_buffers(1 << 22, 1 << 22, force=True)
                c = SelfClock()
                outs = ks.send(reqs)
                ph = c.stop(Phase())
                kern = ks.timing["kernel"]
            bad = sum(not o.ok for o in outs)
            rows.append(f"| {n:,} | {label} | {ph.wall:.3f} | {kern:.3f} | {ph.sys:.3f} | {n / kern:,.0f} | {bad} |")  # noqa: E501
            log(rows[-1])
        finally:
            del_ns(ns)
    return (
        "\n".join(
            [
                "",
                f"Kernel cost of {n:,} route adds (raw floor, no rules installed):",
                "",
                "| N | objects | send wall s | kernel s | sys CPU s | objects/s (kernel) | refused |",
                "|---:|---|---:|---:|---:|---:|---:|",
            ]
            + rows
        )
        + "\n"
    )


def load_results(path: str) -> list[Result]:
    data = json.loads(Path(path).read_text())
    out = []
    for d in data["results"]:
        r = Result(
            d["method"],
            d["n"],
            problems=d["problems"],
            note=d["note"] or f"from {Path(path).name} ({data['info']['date']})",
            digest=d.get("digest", ""),
        )
        for run in d["runs"]:
            r.runs.append(tuple(Phase(**{k: v for k, v in run[w].items()}) for w in ("install", "remove")))
        out.append(r)
    return out


def warm_up() -> None:
    """Import polroute, cffi and pyroute2 and open a socket once, so that the
    first timed run (the only one at 50k) does not pay for imports."""
    from polroute.live.desired import Desired
    from polroute.live.netlink import KernelSocket
    from polroute.live.plan import plan

    ns = new_ns()
    try:
        plan(Desired(), ns, owner=OWNER)
        with KernelSocket(ns) as ks:
            ks.send([])
    finally:
        del_ns(ns)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="N = 1,000 and 10,000 only")
    ap.add_argument("--sizes", help="comma-separated N (default 1000,10000,50000)")
    ap.add_argument("--runs", type=int, help="runs per point (default 3 below 50k, 1 at 50k)")
    ap.add_argument(
        "--methods", default=",".join(METHODS), help=f"subset of {','.join(METHODS)} ('' with --include: only report)"
    )
    ap.add_argument("--skip-slow", action="store_true", help="no pyroute2 at N >= 50,000 (minutes)")
    ap.add_argument("--json", help="write the raw numbers here")
    ap.add_argument(
        "--route-variants",
        type=int,
        metavar="N",
        help="only measure the kernel's cost of N route adds in three shapes (see README)",
    )
    ap.add_argument(
        "--include",
        action="append",
        default=[],
        help="also report the results of an earlier --json file (e.g. pyroute2 at 50k, "
        "run once); its methods and sizes are not run again",
    )
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("needs root (ip netns)", file=sys.stderr)
        return 2
    sizes = (
        [int(s) for s in args.sizes.split(",")]
        if args.sizes
        else ([1000, 10000] if args.quick else [1000, 10000, 50000])
    )
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for m in methods:
        if m not in CLASSES:
            ap.error(f"unknown method {m!r}")
    info = machine_info()

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    if args.route_variants:
        sys.stdout.write(route_variants(args.route_variants, log))
        return 0

    results: list[Result] = []
    for path in args.include:
        results += load_results(path)
    done = {(r.method, r.n) for r in results}
    tmp = Path(tempfile.mkdtemp(prefix="prt-pbench-"))
    try:
        if methods:
            warm_up()
        for n in sizes:
            reps = args.runs or (1 if n >= 50000 else 3)
            for m in methods:
                if (m, n) in done:
                    continue
                if args.skip_slow and m in SLOW and n >= 50000:
                    results.append(Result(m, n, note="skipped (--skip-slow)"))
                    continue
                results.append(run_method(m, n, reps, tmp, log))
                if args.json:
                    Path(args.json).write_text(
                        json.dumps({"info": info, "argv": argv, "results": [r.as_dict() for r in results]}, indent=1)
                    )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    with open("/proc/loadavg") as f:
        info["loadavg_end"] = " ".join(f.read().split()[:3])
    if args.json:
        Path(args.json).write_text(
            json.dumps({"info": info, "argv": argv, "results": [r.as_dict() for r in results]}, indent=1)
        )
    order = {m: i for i, m in enumerate(METHODS)}
    results.sort(key=lambda r: (r.n, order[r.method]))
    sys.stdout.write(report(info, results, argv))
    return 0 if all(not r.problems for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
