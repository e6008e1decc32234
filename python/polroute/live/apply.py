"""Applying a plan.

Under the namespace's writer lock (live/session.py: an apply that died
before is finished first, and the plan is refused if the namespace changed
since it was read), the plan's four phases go as netlink batches, each
written to the journal (live/journal.py) before it is sent.  Any failure or
a signal (SIGINT, SIGTERM, SIGHUP) undoes what was applied (live/rollback.py),
restores the order of owned rules, and re-reads the kernel to check it is as
before.  ``--confirm`` hands the deadline to a watchdog process that
outlives this one (live/watchdog.py); :func:`confirm` keeps the change.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import json
import math
import os
import secrets
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from polroute.live import journal, session
from polroute.live.compare import state_differences
from polroute.live.desired import DEFAULT_OWNER_PROTO
from polroute.live.netlink import KernelSocket, Outcome, batch_data, encode
from polroute.live.netns import netns_id
from polroute.live.ops import PHASE_NAMES, Op, _gc_paused
from polroute.live.plan import Plan, plan
from polroute.live.read import read_state
from polroute.live.rollback import repair_rule_order, rule_to_journal, rules_at, send_all, undo_ops
from polroute.live.watchdog import ack_name, confirm_name, log_name, result_name, rollback_name
from polroute.types.requests import AF_INET, AF_INET6, NLM_F_REPLACE, RTM_DELROUTE, RTM_DELRULE


@dataclass
class Failure:
    op: Op
    outcome: Outcome

    def __str__(self) -> str:
        why = self.outcome.iproute2_text() or "failed"
        return f"{self.op.why}: {self.op.text}: {why}"


@dataclass
class ApplyReport:
    """What apply did.  ``ok``: every operation applied (and, with confirm,
    confirmed).  Otherwise ``failures`` names each failed operation, and
    ``rolled_back``/``restored`` tell whether the undo ran and whether the
    kernel then equals the state before (checked by a new dump)."""

    plan: Plan
    applied: int = 0
    failures: list[Failure] = field(default_factory=list)
    rolled_back: bool = False
    restored: bool | None = None
    leftover: list[str] = field(default_factory=list)  # differences after rollback
    gone: list[str] = field(default_factory=list)  # deletes that found nothing
    dry_run: bool = False
    confirmed: bool | None = None
    interrupted: str | None = None  # the signal that stopped the apply (SIGINT, ...)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures and not self.rolled_back

    def counts(self) -> dict[str, int]:
        return self.plan.counts()

    def text(self) -> str:
        where = f"namespace {self.plan.netns}" if self.plan.netns else "the current namespace"
        t = self.seconds
        if self.dry_run:
            return f"dry run ({where}): would apply {self.plan.summary()}\n"
        lines = []
        if self.ok:
            lines.append(
                f"applied to {where}: {self.plan.summary()} in {t.get('total', 0):.3f} s "
                f"(read {t.get('read', 0):.3f} s, plan {t.get('plan', 0):.3f} s, "
                f"kernel {t.get('kernel', 0):.3f} s)"
            )
            if self.confirmed:
                lines.append("confirmed")
            return "\n".join(lines) + "\n"
        for f in self.failures:
            lines.append(f"failed: {f}")
        if self.interrupted:
            lines.append(f"interrupted by {self.interrupted}")
        elif self.confirmed is False:
            lines.append("not confirmed in time")
        if self.rolled_back:
            state = {
                True: "the kernel is as it was before (checked by a new dump)",
                False: "the kernel DIFFERS from before:",
                None: "not checked",
            }[self.restored]
            lines.append(f"rolled back {self.applied} applied operation(s); {state}")
            lines += [f"  {d}" for d in self.leftover]
        return "\n".join(lines) + "\n"


class Interrupted(RuntimeError):
    """SIGINT, SIGTERM or SIGHUP arrived while applying: everything was undone."""


@contextlib.contextmanager
def _signals_trapped() -> Iterator[dict]:
    """SIGINT, SIGTERM and SIGHUP only set a flag while an apply runs: it is
    looked at between phases and while waiting for a confirmation, and what
    was applied is then undone (exactly: every outcome is known there).  A
    second signal during the undo is remembered, not obeyed.  Off the main
    thread Python cannot install handlers: the apply is then not trapped."""
    caught: dict = {"signum": None}
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return

    def handler(signum, frame):
        if caught["signum"] is None:
            caught["signum"] = signum

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield caught
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


def _seconds(confirm_seconds: float | None) -> float | None:
    if confirm_seconds is None:
        return None
    s = float(confirm_seconds)
    if not math.isfinite(s) or s <= 0:
        raise ValueError(f"confirm_seconds must be a finite number of seconds above 0, not {confirm_seconds!r}")
    return s


def _journal_header(p: Plan, phases: list[list[Op]], batches: list, replaced: list[list[int]]) -> tuple[dict, list]:
    """The journal of a plan: each phase's messages as they are sent, the
    messages undoing its replaces, and the old order of the rules whose
    priority loses a rule (a deleted rule comes back last in its priority)."""
    blobs: list[bytes] = []
    header_phases = []
    for ops, batch, explicit in zip(phases, batches, replaced):
        entry = {
            "name": PHASE_NAMES[len(header_phases)],
            "ops": len(ops),
            "do": None,
            "undo": None,
            "explicit": explicit,
        }
        if ops:
            entry["do"] = len(blobs)
            blobs.append(batch_data(batch))
        if explicit:
            entry["undo"] = len(blobs)
            blobs.append(batch_data(encode([ops[i].undo_request() for i in explicit])))
        header_phases.append(entry)
    # Rules restored by counting (rollback.converge_rules) where an op's
    # inverse is not exact: a priority with an order to lose (two or more
    # rules before), or an add where a rule stood (it may be a re-add, the
    # identical twin of a rule no delete can tell from it).  Elsewhere -- a
    # tenant's own priority -- the inverse is exact and nothing is journaled.
    count: dict[int, int] = {}
    for fam in p.state.rules:
        for r in p.state.rules[fam]:
            count[r.priority & 0xFFFFFFFF] = count.get(r.priority & 0xFFFFFFFF, 0) + 1
    prios = set()
    for op in p.ops:
        if op.kind == "rule":
            prio = op.req.priority & 0xFFFFFFFF
            if count.get(prio, 0) >= 2 or (count.get(prio, 0) == 1 and op.verb == "add"):
                prios.add(prio)
    order = [
        rule_to_journal(r) for fam in p.state.rules for r in p.state.rules[fam] if r.priority & 0xFFFFFFFF in prios
    ]
    header = {
        "owner": p.owner,
        "phases": header_phases,
        "order_rules": [journal.request_to_json(r) for r in order],
        "started": time.time(),
    }
    return header, blobs


def apply(p: Plan, **kw) -> ApplyReport:
    """Carry out a plan.  All or nothing: on any failure, a signal, or no
    confirmation in time, what was applied is undone and the kernel re-read
    to check it is as before.  Options: dry_run, confirm_seconds, ask,
    check_restore, progress (called ``progress(step, count)`` before each
    phase is sent - ``step`` its name - and before an undo or a wait for
    confirmation: "rolling back", "waiting for confirmation").  The plan is
    refused (PlanStale, nothing sent) when the namespace changed since it
    was read; an apply that died before is finished first (live/session.py)."""
    seconds = _seconds(kw.pop("confirm_seconds", None))
    with _gc_paused():
        return _apply(p, confirm_seconds=seconds, **kw)


def _apply(
    p: Plan,
    *,
    dry_run: bool = False,
    confirm_seconds: float | None = None,
    ask: Callable[[float], bool] | None = None,
    check_restore: bool = True,
    progress: Callable[[str, int], None] | None = None,
) -> ApplyReport:
    tell = progress or (lambda step, count: None)
    rep = ApplyReport(p, dry_run=dry_run)
    rep.seconds = dict(p.seconds)
    if dry_run or not p.ops:
        rep.seconds["total"] = sum(p.seconds.values())
        return rep
    t0 = time.perf_counter()
    with session.writer(p.netns) as lock, _signals_trapped() as caught:
        session.check_fresh(p.state, p.netns)
        ns = lock.ns
        phases = [[op for op in p.ops if op.phase == k] for k in range(len(PHASE_NAMES))]
        batches = [encode([op.req for op in ops]) if ops else None for ops in phases]
        replaced = [[i for i, op in enumerate(ops) if op.req.nlmsg_flags & NLM_F_REPLACE] for ops in phases]
        with KernelSocket(p.netns) as ks:
            ks.set_buffers(1 << 22, 1 << 22, force=True)
            header, blobs = _journal_header(p, phases, batches, replaced)
            header["cookie"] = ks.netns_cookie()
            # progress first: a journal is never without it (no progress file: nothing was sent)
            progress = {"state": "applying", "phases_started": 0, "owner": journal.owner_record()}
            journal.write_state(ns, progress)
            journal.write_journal(ns, header, blobs)
            rep.seconds["journal"] = time.perf_counter() - t0
            done = _send_phases(ks, ns, progress, phases, batches, rep, caught, tell)
            rep.applied = len(done)
            interrupted = caught["signum"] is not None
            if not rep.failures and not interrupted and confirm_seconds is not None:
                tell("waiting for confirmation", 0)
                _confirm(p, ns, lock, confirm_seconds, ask, caught, rep, check_restore)
            elif rep.failures or interrupted:
                if interrupted:
                    rep.interrupted = signal.Signals(caught["signum"]).name
                tell("rolling back", len(done))
                _roll_back(ks, p, done, rep, check_restore)
                journal.discard(ns)
            else:
                journal.discard(ns)
    rep.seconds["apply"] = time.perf_counter() - t0
    rep.seconds["total"] = rep.seconds["apply"] + p.seconds.get("read", 0) + p.seconds.get("plan", 0)
    return rep


def _send_phases(ks, ns, progress: dict, phases, batches, rep: ApplyReport, caught: dict, tell) -> list[Op]:
    """Send the phases in order, each recorded in the journal's progress
    before it goes; stops at a failure or a signal.  The operations that are
    (or may be) applied."""
    done: list[Op] = []
    kernel = 0.0
    for k, ops in enumerate(phases):
        if not ops:
            continue
        if caught["signum"] is not None:
            break
        progress["phases_started"] = k + 1
        journal.write_state(ns, progress)
        tell(PHASE_NAMES[k], len(ops))
        outcomes = send_all(ks, batches[k])
        kernel += ks.timing.get("kernel", 0.0)
        for op, out in zip(ops, outcomes):
            if out.ok or out.unknown:
                done.append(op)  # unknown: may be applied, undo it too
            if out.ok:
                continue
            if out.error in (_errno.ENOENT, _errno.ESRCH) and op.req.msg_type in (RTM_DELROUTE, RTM_DELRULE):
                # gone already (another tool removed or took it over: a
                # delete names the owner protocol, so theirs is untouched)
                rep.gone.append(op.text)
                continue
            rep.failures.append(Failure(op, out))
        if rep.failures:
            break
    rep.seconds["kernel"] = kernel
    return done


def _roll_back(ks: KernelSocket, p: Plan, done: list[Op], rep: ApplyReport, check_restore: bool) -> None:
    """Undo what was applied, put owned rules back in order, and re-read."""
    problems = undo_ops(ks, done)
    if any(op.kind == "rule" for op in done):
        prios = {op.req.priority & 0xFFFFFFFF for op in done if op.kind == "rule"}
        before = rules_at((r for fam in p.state.rules for r in p.state.rules[fam]), prios)
        problems += repair_rule_order(ks, before, p.netns, p.owner)
    rep.rolled_back = True
    rep.leftover = problems
    _check_restored(p, rep, check_restore)


def _check_restored(p: Plan, rep: ApplyReport, check_restore: bool) -> None:
    if check_restore:
        after = read_state(p.netns, families=tuple(p.state.rules) or (AF_INET, AF_INET6), sysctls=False)
        rep.leftover += state_differences(p.state, after)
        rep.restored = not rep.leftover


# ---------------------------------------------------------------- --confirm


def _confirm(p, ns, lock, seconds: float, ask, caught: dict, rep: ApplyReport, check_restore: bool) -> None:
    """Hand the decision to a watchdog (live/watchdog.py) that outlives this
    process, then take part: ``ask`` (called with the seconds left; True
    keeps the change, anything else is no answer yet), ``yes``/``no`` typed
    on a terminal (Enter or end of input is no answer), or a signal (rolls
    back now).  The report says what the watchdog did."""
    token = secrets.token_hex(8)
    deadline = time.monotonic() + seconds
    journal.write_state(
        ns,
        {
            "state": "waiting",
            "phases_started": len(PHASE_NAMES),
            "token": token,
            "deadline": deadline,
            "applier": journal.owner_record(),
            "owner": journal.owner_record(),
        },
    )
    log = journal.open_new(log_name(token))
    try:
        # the same interpreter and environment (an ASan build needs its preload)
        child = subprocess.Popen(
            [sys.executable, "-m", "polroute.live.watchdog", p.netns or "", token, repr(deadline), str(lock.fd)],
            pass_fds=(lock.fd,),
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    finally:
        os.close(log)
    lock.detach()  # the watchdog shares the lock now, and releases it
    answered = False
    tty = ask is None and sys.stdin is not None and sys.stdin.isatty()
    while child.poll() is None:
        left = deadline - time.monotonic()
        said = None
        if not answered and caught["signum"] is not None:
            said = False
            rep.interrupted = signal.Signals(caught["signum"]).name
        elif not answered and ask is not None:
            said = True if ask(max(left, 0.0)) is True else None
        elif not answered and tty:
            said = _read_answer(max(min(left, 0.2), 0.0))
            if said == "eof":
                tty, said = False, None  # the terminal is gone: the deadline decides
        if said is True or said is False:
            journal.write_file((confirm_name if said else rollback_name)(token), b"", exclusive=False)
            answered = True
        time.sleep(0.02 if answered else 0.05)
    journal.remove_file(ack_name(token))  # our own yes was acknowledged; nobody else waits for it
    result = journal.read_file(result_name(token))
    said = (journal.read_file(log_name(token)) or b"").decode("utf-8", "replace").strip()
    journal.remove_file(result_name(token))
    journal.remove_file(log_name(token))
    if result:
        outcome = json.loads(result)
    else:
        outcome = {"outcome": "unknown", "problems": [f"the watchdog ended without a report: {said or 'no message'}"]}
    rep.confirmed = outcome["outcome"] == "confirmed"
    if not rep.confirmed:
        rep.rolled_back = True
        rep.leftover = list(outcome["problems"])
        _check_restored(p, rep, check_restore)


def _read_answer(timeout: float):
    """True for a typed yes, False for no, "eof" when the terminal is gone,
    None for nothing (yet) or anything else (only an explicit yes keeps)."""
    r, _, _ = select.select([sys.stdin], [], [], timeout)
    if not r:
        return None
    line = sys.stdin.readline()
    if line == "":
        return "eof"
    word = line.strip().lower()
    if word in ("y", "yes"):
        return True
    if word in ("n", "no"):
        return False
    print("type yes to keep the change, no to undo it now", file=sys.stderr)
    return None


def confirm(netns: str | None = None, wait: float = 10.0) -> bool:
    """Confirm the ``apply --confirm`` waiting on ``netns`` (from any
    process).  False when none is waiting (or it ended before it saw the
    confirmation: then it rolled back).  An apply still sending is waited
    for up to ``wait`` seconds; a confirmation is waited for until the
    apply's deadline (plus ``wait``, for a watchdog slow to start)."""
    ns = netns_id(netns)
    until = time.monotonic() + wait
    state = journal.read_state_file(ns)
    while state.get("state") == "applying" and journal.alive(state.get("owner", {})) and time.monotonic() < until:
        time.sleep(0.02)
        state = journal.read_state_file(ns)
    token = state.get("token")
    someone = journal.alive(state.get("owner", {})) or journal.alive(state.get("applier", {}))
    if state.get("state") != "waiting" or not token or not someone:
        return False
    journal.write_file(confirm_name(token), b"")
    until = max(until, float(state.get("deadline", 0)) + wait)
    while time.monotonic() < until:
        if journal.read_file(ack_name(token)) is not None:  # the watchdog took it: kept
            journal.remove_file(ack_name(token))
            return True
        if journal.read_file(confirm_name(token)) is None:  # removed unanswered: it rolled back
            return False
        time.sleep(0.02)
    journal.remove_file(confirm_name(token))  # no flag outlives its apply
    return False


def apply_text(
    text: str,
    *,
    filename: str = "<desired>",
    netns: str | None = None,
    owner: int = DEFAULT_OWNER_PROTO,
    prune: bool = False,
    dry_run: bool = False,
    adopt: bool = False,
    confirm_seconds: float | None = None,
    ask: Callable[[float], bool] | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> ApplyReport:
    """Plan ``text`` (a desired-state ip batch text) against ``netns`` and
    apply it, holding the namespace from the read to the end.
    DesiredStateError for bad input (nothing sent).  ``progress``: as
    apply's, told "reading and planning" first."""
    with session.writer(netns):
        if progress is not None:
            progress("reading and planning", 0)
        p = plan(text, netns, owner=owner, prune=prune, adopt=adopt, filename=filename)
        return apply(p, dry_run=dry_run, confirm_seconds=confirm_seconds, ask=ask, progress=progress)
