"""One writer per namespace, from reading the state to the end of the apply.

:func:`writer` takes the namespace's lock (keyed by its identity, so every
spelling of one namespace takes the same lock), and before anything else
finishes an apply that died: a journal found under the lock belongs to no
live process (an apply holds the lock while it runs, and its ``--confirm``
watchdog inherits it), so it is undone -- or, asked to, completed -- at once.
The lock is reentrant within a process: ``polroute apply`` holds it across
read, plan and apply, and :func:`polroute.live.apply.apply` inside finds it
held.

:func:`check_fresh` is the compare-and-set of a plan: the namespace is read
again under the lock and the plan refused when anything changed since the
state it was made from.  What remains is the time between that read and the
kernel taking the batch (measured in docs/provisioning.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field

from polroute.live import journal
from polroute.live.compare import state_differences
from polroute.live.netlink import KernelSocket
from polroute.live.netns import NetnsId, netns_id
from polroute.live.objects import KernelState
from polroute.live.read import read_state
from polroute.live.rollback import redo_journal, undo_journal
from polroute.types.requests import AF_INET, AF_INET6, RTPROT_KERNEL

_HELD: dict[str, journal.NamespaceLock] = {}


class PlanStale(RuntimeError):
    """The namespace changed between the plan and the apply: plan again."""

    def __init__(self, differences: list[str]):
        self.differences = differences
        shown = "; ".join(differences[:3]) + (f"; and {len(differences) - 3} more" if len(differences) > 3 else "")
        super().__init__(f"the namespace changed since the plan was made ({shown}): nothing was sent; plan again")


@dataclass
class Recovery:
    """What finishing an interrupted apply did."""

    netns: str
    direction: str  # "back" (undone) or "forward" (completed)
    steps: int = 0
    problems: list[str] = field(default_factory=list)

    def text(self) -> str:
        what = "undid" if self.direction == "back" else "completed"
        head = f"recovered {self.netns}: {what} an interrupted apply ({self.steps} operation(s))"
        if not self.problems:
            return head + "\n"
        return head + "; these did not go as expected:\n" + "".join(f"  {p}\n" for p in self.problems)


#: Recoveries done while taking a lock in this process (the CLI reports them).
RECOVERED: list[Recovery] = []


@contextlib.contextmanager
def writer(netns: str | None, *, forward: bool = False, wait: float = 0.0) -> Iterator[journal.NamespaceLock]:
    """Hold the namespace (see the module text); recovers first."""
    ns = netns_id(netns)
    held = _HELD.get(ns.tag)
    if held is not None:
        yield held
        return
    lock = journal.NamespaceLock(ns, wait=wait).acquire()
    _HELD[ns.tag] = lock
    try:
        journal.remove_stale_temporaries(ns)
        rec = _recover(ns, netns, forward)
        if rec is not None:
            RECOVERED.append(rec)
        yield lock
    finally:
        _HELD.pop(ns.tag, None)
        lock.release()


def recover(netns: str | None, *, forward: bool = False) -> Recovery | None:
    """Finish an interrupted apply on ``netns`` now (None: nothing to do)."""
    before = len(RECOVERED)
    with writer(netns, forward=forward):
        pass
    return RECOVERED[-1] if len(RECOVERED) > before else None


def _recover(ns: NetnsId, netns: str | None, forward: bool) -> Recovery | None:
    loaded = journal.read_journal(ns)
    if loaded is None:
        journal.remove_file(journal.state_name(ns))
        return None
    header, blobs = loaded
    started = int(journal.read_state_file(ns).get("phases_started", 0))
    rec = Recovery(ns.label(), "forward" if forward else "back")
    with KernelSocket(netns) as ks:
        ks.set_buffers(1 << 22, 1 << 22, force=True)
        rec.problems = undo_journal(ks, header, blobs, started, netns)
        if forward and not rec.problems:  # from the state before, the plan once more, whole
            rec.problems = redo_journal(ks, header, blobs)
    rec.steps = sum(ph["ops"] for ph in header["phases"][:started] if ph["do"] is not None)
    journal.discard(ns)
    return rec


def _configured(state: KernelState) -> KernelState:
    """The state without the routes the kernel derives by itself (protocol
    kernel: local, broadcast, prefix and ff00::/8 routes): they come and go
    with links and addresses (an IPv6 address's local route appears when DAD
    ends), a plan neither declares nor deletes them, and a key one takes makes
    the apply fail and roll back."""
    routes = {fam: [r for r in rs if r.protocol != RTPROT_KERNEL] for fam, rs in state.routes.items()}
    return dataclasses.replace(state, routes=routes)


def check_fresh(state: KernelState, netns: str | None) -> None:
    """PlanStale when the namespace's rules or configured routes differ from ``state``."""
    fams = tuple(state.rules) or (AF_INET, AF_INET6)
    now = read_state(netns, families=fams, sysctls=False)
    diffs = state_differences(_configured(state), _configured(now))
    if diffs:
        raise PlanStale(diffs)
