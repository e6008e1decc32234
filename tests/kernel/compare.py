"""Run a scenario on the kernel and on the model, compare, shrink, reproduce.

Two *sides* execute the same :class:`Run` (batch lines, sysctls, flows):

* :class:`KernelSide`: a fresh private namespace, ``ip -force -batch``,
  ``sysctl -w``, ``ip -j route get`` (tests/kernel/netns.py);
* :class:`ModelSide`: a fresh ``polroute.Policy``; the batch is applied
  **line by line** with ``apply_batch`` (one line per call), which mirrors
  ``ip -force -batch``: a refused line changes nothing and the next line runs.

Both give a :class:`SideResult`: the refused lines with their messages, the
failing sysctls and one answer per flow.  :func:`compare_results` compares
them; on a mismatch :func:`shrink` removes sysctls and batch lines greedily
while the mismatch persists (re-running both sides each time) and
:func:`write_reproducer` writes a self-contained shell script.

Compared fields of an answer: type (missing = unicast), dst, from, gateway,
dev, prefsrc, table, iif; for errors only the error text (``RTNETLINK answers: ``
prefix ignored).  Refused batch lines must have exactly ip's message
(whitespace-normalised), e.g. ``RTNETLINK answers: File exists``.  Model answers that
carry a ``not_modelled`` key are counted and skipped, never counted as equal.
"""

from __future__ import annotations

import inspect
import ipaddress
import json
import os
import re
import shlex
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

try:  # as a package module (pytest) or a plain script
    from .netns import Netns, _is_link_event
    from .scenario import Scenario
except ImportError:  # pragma: no cover
    from netns import Netns, _is_link_event  # type: ignore
    from scenario import Scenario  # type: ignore

FIELDS = ("type", "dst", "from", "gateway", "dev", "prefsrc", "table", "iif")
ADDR_FIELDS = ("dst", "from", "gateway", "prefsrc")


# ---------------------------------------------------------------------------
# what runs, and what comes back


@dataclass
class Run:
    lines: list[str]
    sysctls: list[tuple[str, int]] = field(default_factory=list)
    flows: list[list[str]] = field(default_factory=list)
    batch_family: int = 0  # 6: `ip -6 -batch`
    stop_after: int | None = None  # apply only lines 1..stop_after (ip exited there)

    @classmethod
    def of(cls, sc: Scenario) -> Run:
        return cls(list(sc.lines), list(sc.sysctls), [list(f) for f in sc.flows], sc.batch_family)

    @property
    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


@dataclass
class SideResult:
    refused: dict[int, str] = field(default_factory=dict)  # 1-based line -> message
    fatal: int | None = None  # kernel: ip exited at this line
    sysctl_errors: dict[int, str] = field(default_factory=dict)  # index into sysctls -> message
    answers: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    # model: flow index -> the (table, "prefix/len") its rule trail matched in
    trails: dict[int, list[tuple[int, str]]] = field(default_factory=dict)
    # kernel (when asked): every route of the namespace, `ip -j route show table all`
    routes: list[dict] = field(default_factory=list)


class KernelSide:
    name = "kernel"

    def run(self, run: Run, dump_routes: bool = False) -> SideResult:
        t0 = time.monotonic()
        res = SideResult()
        with Netns() as ns:
            lines = run.lines if run.stop_after is None else run.lines[: run.stop_after]
            br = ns.batch("\n".join(lines) + "\n", family=run.batch_family)
            res.refused = br.refused()
            res.fatal = br.fatal
            for i, (k, v) in enumerate(run.sysctls):
                err = ns.sysctl(k, v)
                if err is not None:
                    res.sysctl_errors[i] = err
            ns.settle_addresses()
            res.answers = [ns.route_get_json(f) for f in run.flows]
            if dump_routes:
                v6 = run.batch_family == 6 or any(":" in f[0] for f in run.flows[:1])
                fam = "-6" if v6 else "-4"
                r = ns.ip("-j", fam, "route", "show", "table", "all")
                res.routes = json.loads(r.stdout or "[]") if r.returncode == 0 else []
        res.seconds = time.monotonic() - t0
        return res


class ModelUnavailable(RuntimeError):
    pass


class ModelSide:
    """The polroute model.  Imports lazily so the kernel side works without it."""

    name = "model"
    FILENAME = "scenario.batch"

    def __init__(self):
        try:
            from polroute import Policy
            from polroute.iproute2.batch import apply_batch, apply_batch_force
            from polroute.iproute2.lexer import BatchError
            from polroute.iproute2.route_get import get_json, route_get
            from polroute.iproute2.route_get_args import parse_route_get
        except ImportError as exc:  # the model is not built / not written yet
            raise ModelUnavailable(f"polroute model not importable: {exc!r}") from exc
        self.Policy, self.apply_batch, self.BatchError, self.get_json = Policy, apply_batch, BatchError, get_json
        self.apply_batch_force = apply_batch_force
        self.route_get, self.parse_route_get = route_get, parse_route_get
        params = inspect.signature(apply_batch).parameters
        self.family_kw = next((p for p in ("family", "preferred_family") if p in params), None)

    def _apply(self, policy, text: str, family: int) -> None:
        if family == 6:
            if self.family_kw is None:
                raise ModelUnavailable(
                    "IPv6 scenarios run as `ip -6 -batch` (a batch line cannot give a rule a "
                    "family); polroute.iproute2.batch.apply_batch needs a `family` parameter "
                    "(family=socket.AF_INET6 meaning `ip -6 -batch`)"
                )
            self.apply_batch(policy, text, self.FILENAME, **{self.family_kw: socket.AF_INET6})
        else:
            self.apply_batch(policy, text, self.FILENAME)

    @staticmethod
    def batch_error_message(exc: BaseException) -> str:
        """``FILE:LINE: msg`` -> ``msg``."""
        msg = getattr(exc, "message", None)
        if isinstance(msg, str):
            return msg.strip()
        text = str(exc)
        m = re.match(r"^[^\n]*?:\d+: ?(.*)$", text, re.S)
        return (m.group(1) if m else text).strip()

    def run(self, run: Run) -> SideResult:
        t0 = time.monotonic()
        res = SideResult()
        policy = self.Policy()
        n = len(run.lines) if run.stop_after is None else run.stop_after
        # `ip -force -batch`: a refused line keeps the kernel's side effects
        family = socket.AF_INET6 if run.batch_family == 6 else 0
        text = "".join(line + "\n" for line in run.lines[:n])
        for exc in self.apply_batch_force(policy, text, self.FILENAME, None, family):
            res.refused[exc.lineno] = self.batch_error_message(exc)
        for i, (k, v) in enumerate(run.sysctls):
            try:
                policy.sysctl(k, v)
            except Exception as exc:  # PolicyError or KeyError/ValueError
                res.sysctl_errors[i] = str(exc) or type(exc).__name__
        for f in run.flows:
            try:
                res.answers.append(self.get_json(policy, list(f)))
            except Exception as exc:  # a crash of the model is a mismatch too
                res.answers.append({"error": f"model raised {type(exc).__name__}: {exc}", "errno": "EMODEL"})
        for i, (f, a) in enumerate(zip(run.flows, res.answers)):
            if is_not_modelled(a):
                res.trails[i] = self._trail(policy, list(f))
        res.seconds = time.monotonic() - t0
        return res

    def _trail(self, policy, argv: list[str]) -> list[tuple[int, str]]:
        """The tables the rule trail looked into, with the prefix matched there."""
        dst = self.parse_route_get(list(argv)).dst
        out = []
        for step in self.route_get(policy, argv, explain=True).trace:
            if step.kind in ("suppressed", "decided"):
                net = ipaddress.ip_network(f"{dst}/{step.matched_len}", strict=False)
                out.append((step.table, str(net)))
        return out


# ---------------------------------------------------------------------------
# normalisation and comparison


def _norm_addr(v: str) -> str:
    try:
        return str(ipaddress.ip_address(v))
    except ValueError:
        try:
            return str(ipaddress.ip_network(v, strict=False))
        except ValueError:
            return v


def normalise_message(text: str) -> str:
    return " ".join(str(text).split())


def normalise_answer_error(text: str) -> str:
    """An answer's error text without ip's ``RTNETLINK answers: `` prefix: the
    kernel side records ip's stderr, the model's get_json gives the strerror
    text (both forms are accepted); ``Error: ….`` extack texts stay as they are."""
    t = normalise_message(text)
    return t[len("RTNETLINK answers: ") :] if t.startswith("RTNETLINK answers: ") else t


def normalise(ans: dict) -> dict:
    """The compared view of an answer."""
    if "error" in ans:
        msg = ans.get("message")  # the model's extended-ack text, printed as ip does
        if msg:
            return {"error": normalise_answer_error("Error: " + msg + ("" if msg.endswith(".") else "."))}
        return {"error": normalise_answer_error(ans["error"])}
    out = {}
    for f in FIELDS:
        v = ans.get(f)
        if f == "type" and v is None:
            v = "unicast"
        if v is None:
            continue
        v = str(v)
        if f in ADDR_FIELDS:
            v = _norm_addr(v)
        out[f] = v
    return out


def diff_answers(kernel: dict, model: dict) -> list[tuple[str, str | None, str | None]]:
    """[(field, kernel value, model value)] for every differing field."""
    k, m = normalise(kernel), normalise(model)
    if k == m:
        return []
    if "error" in k or "error" in m:
        return [("error", k.get("error"), m.get("error"))] + [
            (f, k.get(f), m.get(f)) for f in FIELDS if k.get(f) != m.get(f) and (f in k or f in m)
        ]
    return [(f, k.get(f), m.get(f)) for f in FIELDS if k.get(f) != m.get(f)]


@dataclass
class Mismatch:
    kind: str  # "answer" | "refusal" | "sysctl" | "not_modelled"
    index: int  # flow index, 1-based line number, or sysctl index
    detail: str
    fields: tuple = ()  # differing field names (answers)
    kernel: object = None
    model: object = None


@dataclass
class Comparison:
    compared: int = 0
    equal: int = 0
    not_modelled: int = 0
    kernel_refused: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)

    def answer_mismatches(self) -> list[Mismatch]:
        return [m for m in self.mismatches if m.kind in ("answer", "not_modelled")]

    def refusal_mismatches(self) -> list[Mismatch]:
        return [m for m in self.mismatches if m.kind in ("refusal", "sysctl")]


def is_not_modelled(ans: dict) -> bool:
    return isinstance(ans, dict) and bool(ans.get("not_modelled"))


def compare_results(run: Run, k: SideResult, m: SideResult) -> Comparison:
    c = Comparison()
    c.kernel_refused = len(k.refused)
    # refused lines: same set, same message
    for line in sorted(set(k.refused) | set(m.refused)):
        km, mm = k.refused.get(line), m.refused.get(line)
        if km is None or mm is None or normalise_message(km) != normalise_message(mm):
            text = run.lines[line - 1] if 0 < line <= len(run.lines) else "?"
            c.mismatches.append(
                Mismatch(
                    "refusal", line, f"line {line} `{text}`: kernel {_q(km)} / model {_q(mm)}", kernel=km, model=mm
                )
            )
    for i in sorted(set(k.sysctl_errors) | set(m.sysctl_errors)):
        if (i in k.sysctl_errors) != (i in m.sysctl_errors):
            key = "{}={}".format(*run.sysctls[i])
            c.mismatches.append(
                Mismatch(
                    "sysctl",
                    i,
                    f"sysctl {key}: kernel {_q(k.sysctl_errors.get(i))} / model {_q(m.sysctl_errors.get(i))}",
                    kernel=k.sysctl_errors.get(i),
                    model=m.sysctl_errors.get(i),
                )
            )
    for i, (flow, ka, ma) in enumerate(zip(run.flows, k.answers, m.answers)):
        if is_not_modelled(ma):
            c.not_modelled += 1
            continue
        c.compared += 1
        d = diff_answers(ka, ma)
        if not d:
            c.equal += 1
            continue
        c.mismatches.append(
            Mismatch(
                "answer",
                i,
                f"route get {' '.join(flow)}: "
                + ", ".join(f"{f}: kernel {_q(kv)} / model {_q(mv)}" for f, kv, mv in d),
                fields=tuple(f for f, _, _ in d),
                kernel=ka,
                model=ma,
            )
        )
    return c


def run_both(
    run: Run, kernel, model, verify_not_modelled: bool = False
) -> tuple[Run, SideResult, SideResult, Comparison]:
    """Kernel first; when ip exited at a line (usage error), the model gets the
    lines up to that one only, like ip.  With ``verify_not_modelled`` the flows
    the model flagged are asked again with ``fibmatch`` on the kernel: the flag
    is justified only when the kernel's FIB entry is multipath (``nexthops``)
    or the lookup fails; otherwise it is a mismatch of kind "not_modelled"."""
    k = kernel.run(run)
    if k.fatal is not None:
        run = replace(run, stop_after=k.fatal)
    m = model.run(run)
    c = compare_results(run, k, m)
    if verify_not_modelled and c.not_modelled and isinstance(kernel, KernelSide):
        idx = [i for i, a in enumerate(m.answers) if is_not_modelled(a)]
        fib = kernel.run(replace(run, flows=[run.flows[i] + ["fibmatch"] for i in idx]), dump_routes=True)
        for i, entry in zip(idx, fib.answers):
            if "error" in entry or len(entry.get("nexthops", [])) > 1:
                continue
            if _multipath_on_trail(m.trails.get(i, []), fib.routes):
                continue  # a rule's suppress_* saw the hash-chosen leg of an earlier lookup
            if _cache_claim_holds(m.answers[i].get("not_modelled", []), run.flows[i], entry, fib.routes):
                continue  # an answer built from a route cached by an earlier lookup
            c.mismatches.append(
                Mismatch(
                    "not_modelled",
                    i,
                    f"route get {' '.join(run.flows[i])}: model says not modelled "
                    f"({m.answers[i].get('not_modelled')!r}) but the kernel's FIB entry is single-path: "
                    f"{json.dumps(entry, sort_keys=True)}; kernel answer {json.dumps(k.answers[i], sort_keys=True)}",
                    kernel=k.answers[i],
                    model=m.answers[i],
                )
            )
    return run, k, m, c


def _multipath_on_trail(trail: list[tuple[int, str]], routes: list[dict]) -> bool:
    """True when one of the (table, prefix) lookups of the model's rule trail
    holds a multipath route in the kernel's own table dump."""
    want = set(trail)
    for r in routes:
        if len(r.get("nexthops", [])) < 2:
            continue
        dst = r.get("dst", "")
        if dst == "default":
            dst = "::/0" if ":" in json.dumps(r.get("nexthops")) else "0.0.0.0/0"
        elif "/" not in dst:
            dst += "/128" if ":" in dst else "/32"
        table = {"main": 254, "local": 255, "default": 253}.get(str(r.get("table", "main")), r.get("table", 254))
        if (int(table), str(ipaddress.ip_network(dst, strict=False))) in want:
            return True
    return False


_NH_CACHE = "nexthop object (IPv6 route cache shared by its routes)"
_MC_CACHE = "route cache (multicast via a unicast or broadcast route)"


def _reported(r: dict) -> tuple:
    return (r.get("table", "main"), r.get("metric"), r.get("protocol"), r.get("pref"), r.get("prefsrc"))


def _legs(r: dict) -> set:
    legs = r.get("nexthops") or [r]
    return {(x.get("gateway") or (x.get("via") or {}).get("host"), x.get("dev")) for x in legs}


def _mc_prefix(r: dict) -> bool:
    dst = str(r.get("dst", ""))
    if dst == "default" or ":" in dst:
        return False
    net = ipaddress.ip_network(dst if "/" in dst else dst + "/32", strict=False)
    return net.prefixlen >= 4 and net.subnet_of(ipaddress.ip_network("224.0.0.0/4"))


def _cache_claim_holds(claims: list, flow: list[str], entry: dict, routes: list[dict]) -> bool:
    """The route-cache claims, checked against the kernel's own FIB entry and
    table dump: an IPv4 multicast destination answered by a unicast route of
    /4 or longer (the rtable cached on its nexthop); an IPv6 route through a
    nexthop object that another IPv6 route reporting other attributes shares
    (the rt6_info cached on the object's fib6_nh, rt6_get_pcpu_route)."""
    if not claims or any(c not in (_NH_CACHE, _MC_CACHE) for c in claims):
        return False
    for c in claims:
        if c == _MC_CACHE:
            dst = ipaddress.ip_address(flow[0])
            plen = int(str(entry.get("dst", "")).partition("/")[2] or (32 if dst.version == 4 else 128))
            if dst.version == 4 and dst.is_multicast and plen >= 4:
                continue
            # a unicast destination through a nexthop object that a route
            # covering multicast destinations (/4 or longer) shares
            mine = _legs(entry) if "nhid" in entry else set()
            if not any(
                "nhid" in r and _mc_prefix(r) and (r["nhid"] == entry.get("nhid") or mine & _legs(r)) for r in routes
            ):
                return False
        else:
            if "nhid" not in entry:
                return False
            mine = _legs(entry)
            if not any(
                "nhid" in r and _reported(r) != _reported(entry) and (r["nhid"] == entry["nhid"] or mine & _legs(r))
                for r in routes
            ):
                return False
    return True


def _q(v) -> str:
    return "(none)" if v is None else json.dumps(v)


# ---------------------------------------------------------------------------
# shrinking


def _answer_predicate(kernel: KernelSide, model, flow: list[str], fields: tuple) -> Callable[[Run], bool]:
    def still(run: Run) -> bool:
        _, k, m, _ = run_both(replace(run, flows=[flow], stop_after=None), kernel, model)
        if is_not_modelled(m.answers[0]):
            return False
        d = diff_answers(k.answers[0], m.answers[0])
        return bool(d) and tuple(f for f, _, _ in d) == fields

    return still


def _refusal_predicate(kernel: KernelSide, model, target_text: str, pattern: tuple) -> Callable[[Run], bool]:
    """The target line is still refused differently, in the same way: ``pattern``
    is (kernel refused, model refused) of the original mismatch."""

    def still(run: Run) -> bool:
        try:
            idx = run.lines.index(target_text) + 1
        except ValueError:
            return False
        _, k, m, _ = run_both(replace(run, flows=[], stop_after=None), kernel, model)
        if k.fatal is not None and k.fatal < idx:
            return False
        km, mm = k.refused.get(idx), m.refused.get(idx)
        if (km is not None, mm is not None) != pattern:
            return False
        return (km is None) != (mm is None) or (km is not None and normalise_message(km) != normalise_message(mm))

    return still


def shrink(
    run: Run, still_fails: Callable[[Run], bool], keep: str | None = None, budget_s: float = 60.0, max_tries: int = 600
) -> tuple[Run, int]:
    """Greedy reduction: drop sysctls one by one, then batch lines in chunks
    of halving size down to single lines, keeping each removal after which the
    mismatch persists.  ``keep`` is a line that must stay (the refused line).
    Returns (smaller run, number of re-runs)."""
    deadline = time.monotonic() + budget_s
    tries = 0

    def ok(r: Run) -> bool:
        nonlocal tries
        tries += 1
        return still_fails(r)

    cur = replace(run, lines=list(run.lines), sysctls=list(run.sysctls), stop_after=None)
    # sysctls
    i = len(cur.sysctls) - 1
    while i >= 0 and time.monotonic() < deadline and tries < max_tries:
        cand = replace(cur, sysctls=cur.sysctls[:i] + cur.sysctls[i + 1 :])
        if ok(cand):
            cur = cand
        i -= 1
    # lines: chunks, then singles, repeated until nothing more goes
    changed = True
    while changed and time.monotonic() < deadline and tries < max_tries:
        changed = False
        size = max(1, len(cur.lines) // 2)
        while size >= 1 and time.monotonic() < deadline and tries < max_tries:
            start = len(cur.lines) - size
            while start >= 0 and time.monotonic() < deadline and tries < max_tries:
                chunk = cur.lines[start : start + size]
                if keep is not None and keep in chunk:
                    start -= size
                    continue
                cand = replace(cur, lines=cur.lines[:start] + cur.lines[start + size :])
                if cand.lines and ok(cand):
                    cur = cand
                    changed = True
                start -= size
            size //= 2
    return cur, tries


def shrink_mismatch(run: Run, mm: Mismatch, kernel: KernelSide, model, budget_s: float = 60.0) -> tuple[Run, int]:
    """Shrink ``run`` keeping mismatch ``mm``; the result's flows are the one flow (answers)."""
    if mm.kind == "answer":
        flow = run.flows[mm.index]
        pred = _answer_predicate(kernel, model, flow, mm.fields)
        small, tries = shrink(replace(run, flows=[flow]), pred, budget_s=budget_s)
        return replace(small, flows=[flow]), tries
    if mm.kind == "refusal":
        stop = run.stop_after
        lines = run.lines[: mm.index] if stop is None else run.lines[: min(mm.index, stop)]
        target = run.lines[mm.index - 1]
        pred = _refusal_predicate(kernel, model, target, (mm.kernel is not None, mm.model is not None))
        small, tries = shrink(replace(run, lines=lines, flows=[]), pred, keep=target, budget_s=budget_s)
        return small, tries
    if mm.kind == "not_modelled":
        return replace(run, flows=[run.flows[mm.index]]), 0
    return replace(run, flows=[]), 0


# ---------------------------------------------------------------------------
# reproducers


def repro_dir() -> str:
    d = os.environ.get("POLROUTE_REPRO_DIR") or os.path.join(os.environ.get("TMPDIR", "/tmp"), "polroute-repro")
    os.makedirs(d, exist_ok=True)
    return d


def write_reproducer(
    run: Run, mm: Mismatch, title: str, kernel_res: SideResult | None = None, model_res: SideResult | None = None
) -> str:
    """Write a self-contained shell script that replays ``run`` on the kernel
    (in a throwaway namespace) and on the model, and prints both answers.
    Returns its path."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", title)[:80]
    path = os.path.join(repro_dir(), f"{name}.sh")
    opts = "-6 " if run.batch_family == 6 else ""
    flows = run.flows
    lines = ["#!/bin/sh", f"# polroute differential reproducer: {title}", f"# mismatch: {mm.detail}"]
    if mm.kind == "answer":
        lines.append(f"# kernel: {json.dumps(mm.kernel, sort_keys=True)}")
        lines.append(f"# model:  {json.dumps(mm.model, sort_keys=True)}")
    lines += [
        "# Kernel side: needs root; only configures a private namespace and asks `ip route get`.",
        'NS="prt-repro-$$"',
        'ip netns add "$NS" || exit 1',
        "trap 'ip netns del \"$NS\"' EXIT",
        "# The batch is cut after link up/down/del lines, and linkwatch gets time to settle",
        "# (carrier changes are asynchronous; the test harness waits for them the same way).",
    ]
    chunk: list[str] = []
    for i, line in enumerate(run.lines):
        chunk.append(line)
        if _is_link_event(line) or i == len(run.lines) - 1:
            lines += [f"ip -n \"$NS\" {opts}-force -batch - <<'POLROUTE_BATCH'", *chunk, "POLROUTE_BATCH"]
            if _is_link_event(line):
                lines.append("sleep 0.1")
            chunk = []
    for k, v in run.sysctls:
        lines.append(f'ip netns exec "$NS" sysctl -qw {shlex.quote(f"{k}={v}")}')
    for f in flows:
        lines.append(f'echo "kernel: ip route get {" ".join(f)}"')
        lines.append(f'ip -n "$NS" -j route get {" ".join(shlex.quote(a) for a in f)}; echo')
    fam = "socket.AF_INET6" if run.batch_family == 6 else "None"
    py = [
        "import socket, sys, json",
        "from polroute import Policy",
        "from polroute.iproute2.batch import apply_batch",
        "from polroute.iproute2.lexer import BatchError",
        "from polroute.iproute2.route_get import get_json",
        f"lines = {run.lines!r}",
        f"sysctls = {run.sysctls!r}",
        f"flows = {flows!r}",
        f"family = {fam}",
        "p = Policy()",
        "for i, line in enumerate(lines, 1):",
        "    try:",
        "        if family: apply_batch(p, line + '\\n', 'repro.batch', family=family)",
        "        else: apply_batch(p, line + '\\n', 'repro.batch')",
        "    except BatchError as e:",
        "        print(f'model refused line {i}: {e}')",
        "for k, v in sysctls:",
        "    try:",
        "        p.sysctl(k, v)",
        "    except Exception as e:",
        "        print(f'model refused sysctl {k}={v}: {e}')",
        "for f in flows:",
        "    print('model: ip route get', ' '.join(f))",
        "    print(json.dumps(get_json(p, f)))",
    ]
    lines += ["# Model side:", "python3 - <<'POLROUTE_PY'", *py, "POLROUTE_PY", ""]
    with open(path, "w") as fh:
        fh.write("\n".join(lines))
    os.chmod(path, 0o755)
    return path


def format_run(run: Run) -> str:
    out = [f"    ip {'-6 ' if run.batch_family == 6 else ''}-force -batch:"]
    out += [f"      {i:3d}  {l}" for i, l in enumerate(run.lines, 1)]
    if run.sysctls:
        out += ["    sysctls: " + ", ".join(f"{k}={v}" for k, v in run.sysctls)]
    for f in run.flows:
        out += [f"    ip route get {' '.join(f)}"]
    return "\n".join(out)
