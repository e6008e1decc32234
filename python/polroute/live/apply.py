"""Applying a plan: the four phases as netlink batches, rollback (undo in
reverse order, rule order repair, a re-read compared with the state before),
confirmation (``apply(confirm_seconds=...)`` / :func:`confirm`), one apply
at a time per namespace, and :func:`owned_text`.
"""

from __future__ import annotations

import dataclasses
import errno as _errno
import fcntl
import os
import select
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from polroute.live.compare import state_differences
from polroute.live.desired import DEFAULT_OWNER_PROTO
from polroute.live.keys import _ukey
from polroute.live.netlink import KernelSocket, NetlinkError, Outcome, Request
from polroute.live.objects import KernelState, KRule
from polroute.live.ops import Op, _as_request, _gc_paused, _rule_del
from polroute.live.plan import Plan, plan
from polroute.live.read import read_state
from polroute.types.requests import (
    AF_INET,
    AF_INET6,
    FRA_PRIORITY,
    NLM_F_CREATE,
    RTM_DELROUTE,
    RTM_DELRULE,
    RTM_NEWRULE,
    bit,
)


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
        if self.confirmed is False:
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


def _send_phase(ks: KernelSocket, ops: list[Op]) -> list[Outcome]:
    try:
        return ks.send([op.req for op in ops])
    except NetlinkError as e:  # a socket error: what was acknowledged stays known
        return e.outcomes + [Outcome(-1, str(e))] * (len(ops) - len(e.outcomes))


def _undo(ks: KernelSocket, done: list[Op]) -> list[str]:
    """Undo ``done`` (applied, or of unknown outcome) in reverse order, as one
    batch (the kernel handles a batch's messages in order).  A delete that
    finds nothing is fine: the operation may never have been applied."""
    undo_ops = [op for op in reversed(done) if op.undo_request() is not None]
    outcomes = _send_phase(ks, [dataclasses.replace(op, req=op.undo_request()) for op in undo_ops])
    problems = []
    for op, out in zip(undo_ops, outcomes):
        if out.ok:
            continue
        if out.error in (_errno.ENOENT, _errno.ESRCH) and op.undo_request().msg_type in (RTM_DELROUTE, RTM_DELRULE):
            continue
        problems.append(f"undo of {op.text!r}: {out.iproute2_text()}")
    return problems


def _repair_rule_order(ks: KernelSocket, before: KernelState, netns: str | None) -> list[str]:
    """After an undo, rules that were deleted and added back sit at the end
    of their priority.  Where a priority's rules are the same as before but
    in another order, its rules from the first difference on are deleted and
    added again in the old order (each with its own protocol)."""
    after = read_state(netns, families=tuple(before.rules) or (AF_INET, AF_INET6), sysctls=False)
    fix: list[Request] = []
    for fam, old in before.rules.items():
        new = after.rules.get(fam, [])
        by_old: dict[int, list[KRule]] = {}
        by_new: dict[int, list[KRule]] = {}
        for r in old:
            by_old.setdefault(r.priority & 0xFFFFFFFF, []).append(r)
        for r in new:
            by_new.setdefault(r.priority & 0xFFFFFFFF, []).append(r)
        for prio, o in by_old.items():
            n = by_new.get(prio, [])
            ko, kn = [_ukey(r) for r in o], [_ukey(r) for r in n]
            if ko == kn or sorted(map(repr, ko)) != sorted(map(repr, kn)):
                continue  # same, or not just an order difference
            i = 0
            while ko[i] == kn[i]:
                i += 1
            fix += [_rule_del(r) for r in n[i:]]
            fix += [
                _as_request(r, msg_type=RTM_NEWRULE, nlmsg_flags=NLM_F_CREATE, present=r.present | bit(FRA_PRIORITY))
                for r in o[i:]
            ]
    if not fix:
        return []
    outcomes = ks.send(fix)
    return [f"order repair: {o.iproute2_text()}" for o in outcomes if not o.ok]


def _run_dir() -> str:
    return os.environ.get("POLROUTE_RUN_DIR", "/run/polroute")


def _ns_tag(netns: str | None) -> str:
    return (netns or "root").replace("/", "_")


def confirm(netns: str | None = None) -> bool:
    """Confirm a pending ``apply(confirm=...)`` on ``netns`` (from any
    process).  False if none is waiting."""
    path = os.path.join(_run_dir(), f"confirm-{_ns_tag(netns)}")
    pending = os.path.join(_run_dir(), f"pending-{_ns_tag(netns)}")
    if not os.path.exists(pending):
        return False
    with open(path, "w") as f:
        f.write(str(os.getpid()))
    return True


def _wait_confirm(netns: str | None, seconds: float, ask: Callable[[float], bool] | None) -> bool:
    """True when confirmed within ``seconds``: by ``ask`` (a callback given
    the time left), by a line on a terminal stdin, or by :func:`confirm`."""
    flag = os.path.join(_run_dir(), f"confirm-{_ns_tag(netns)}")
    deadline = time.monotonic() + seconds
    tty = ask is None and sys.stdin is not None and sys.stdin.isatty()
    while True:
        left = deadline - time.monotonic()
        if os.path.exists(flag):
            os.unlink(flag)
            return True
        if left <= 0:
            return False
        if ask is not None:
            if ask(left):
                return True
            time.sleep(min(0.1, max(left, 0)))
        elif tty:
            r, _, _ = select.select([sys.stdin], [], [], min(0.2, left))
            if r:
                return bool(sys.stdin.readline().strip().lower() in ("y", "yes", ""))
        else:
            time.sleep(min(0.1, left))


class _Lock:
    """One apply at a time per namespace (an flock in the run directory)."""

    def __init__(self, netns: str | None):
        os.makedirs(_run_dir(), exist_ok=True)
        self.path = os.path.join(_run_dir(), f"lock-{_ns_tag(netns)}")
        self.fd = -1

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise RuntimeError(f"another polroute apply holds {self.path}") from None
        return self

    def __exit__(self, *exc):
        os.close(self.fd)


def apply(p: Plan, **kw) -> ApplyReport:
    """Carry out a plan.  All or nothing: on any failure (or no confirmation
    in time) what was applied is undone and the kernel re-read to check it
    is as before.  Options: dry_run, confirm_seconds, ask, check_restore."""
    with _gc_paused():
        return _apply(p, **kw)


def _apply(
    p: Plan,
    *,
    dry_run: bool = False,
    confirm_seconds: float | None = None,
    ask: Callable[[float], bool] | None = None,
    check_restore: bool = True,
) -> ApplyReport:
    rep = ApplyReport(p, dry_run=dry_run)
    rep.seconds = dict(p.seconds)
    if dry_run or not p.ops:
        rep.seconds["total"] = sum(p.seconds.values())
        return rep
    t0 = time.perf_counter()
    kernel = 0.0
    done: list[Op] = []
    with _Lock(p.netns), KernelSocket(p.netns) as ks:
        ks.set_buffers(1 << 22, 1 << 22, force=True)
        for phase in range(4):
            ops = [op for op in p.ops if op.phase == phase]
            if not ops:
                continue
            outcomes = _send_phase(ks, ops)
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
        rep.applied = len(done)
        rep.seconds["kernel"] = kernel
        if not rep.failures and confirm_seconds is not None:
            pending = os.path.join(_run_dir(), f"pending-{_ns_tag(p.netns)}")
            with open(pending, "w") as f:
                f.write(str(os.getpid()))
            try:
                rep.confirmed = _wait_confirm(p.netns, confirm_seconds, ask)
            finally:
                os.unlink(pending)
        if rep.failures or rep.confirmed is False:
            problems = _undo(ks, done)
            if any(op.kind == "rule" for op in done):
                problems += _repair_rule_order(ks, p.state, p.netns)
            rep.rolled_back = True
            rep.leftover = problems
            if check_restore:
                after = read_state(p.netns, families=tuple(p.state.rules) or (AF_INET, AF_INET6), sysctls=False)
                rep.leftover += state_differences(p.state, after)
                rep.restored = not rep.leftover
    rep.seconds["apply"] = time.perf_counter() - t0
    rep.seconds["total"] = rep.seconds["apply"] + p.seconds.get("read", 0) + p.seconds.get("plan", 0)
    return rep


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
) -> ApplyReport:
    """Plan ``text`` (a desired-state ip batch text) against ``netns`` and
    apply it.  DesiredStateError for bad input (nothing sent)."""
    p = plan(text, netns, owner=owner, prune=prune, adopt=adopt, filename=filename)
    return apply(p, dry_run=dry_run, confirm_seconds=confirm_seconds, ask=ask)
