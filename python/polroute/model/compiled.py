"""Immutable compiled snapshots of a Policy, for readers in many threads.

    snap = policy.compile()                  # CompiledPolicy: a deep copy, tables compiled
    res = snap.lookup_bulk(dst, src=src)     # same answers as lookup_bulk(policy, ...)

A writer keeps editing its Policy and publishes the next snapshot with
``Published.publish(policy)``; readers take ``published.current`` (one
attribute read, atomic under the GIL) and evaluate on it for as long as they
hold the reference.  A snapshot is never changed after it is built, so no
reader sees half an update, and it is freed when the last reader drops it
(Python's reference count is the snapshot's reference count).

Cost: a snapshot shares the policy's tables and rule list (pr_policy_snapshot,
copy-on-write with atomic reference counts in C): publishing costs a pointer
per table plus the small link/address arrays, and the writer's next edit of
a shared table or of the rule list copies that one.  Big tables are compiled
once and the compiled copy is shared by every snapshot until the table
changes.  Bench: bench/publish.py and bench/c_publish.c.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from polroute._core.binding import ffi, lib
from polroute._core.codec import out_struct
from polroute._core.errors import check, check_handle
from polroute.model.bulk import COMPILE_MIN_PREFIXES, BulkResult, lookup_bulk
from polroute.model.fast4 import build_fast4

if TYPE_CHECKING:  # annotations only: policy.py imports this module
    from polroute.model.policy import Policy


class CompiledPolicy:
    """A read-only copy of a Policy with its tables compiled (lpm4.c)."""

    def __init__(self, policy: Policy, min_prefixes: int = COMPILE_MIN_PREFIXES) -> None:
        # the writer's thread calls this (Published.publish / Policy.compile)
        h = check_handle(lib.pr_policy_snapshot(policy._h), "pr_policy_snapshot")
        self._h = ffi.gc(h, lib.pr_policy_free)
        check(lib.pr_policy_compile(self._h, min_prefixes), "pr_policy_compile")
        self._fast: Any = None
        self._fast_lock = threading.Lock()
        self.fast_build_seconds: float | None = None

    def _fast4(self) -> Any:
        """The specialised IPv4 evaluator (fast4.c), built on first use.  It
        reads this snapshot, so it lives exactly as long as self."""
        f = self._fast
        if f is None:
            with self._fast_lock:
                f = self._fast
                if f is None:
                    c = time.thread_time()
                    f = build_fast4(self._h)
                    self.fast_build_seconds = time.thread_time() - c
                    self._fast = f
        return f

    def fast_stats(self) -> dict[str, int | float | None]:
        """Size of the specialised evaluator (built if needed): classes,
        chain_entries, tables, outcomes, src_prefixes, memory (bytes),
        merged, build_seconds."""
        st = out_struct("pr_fast4_stats")
        lib.pr_fast4_get_stats(self._fast4(), st)
        out: dict[str, int | float | None] = {
            k: int(getattr(st, k))
            for k in ("classes", "chain_entries", "tables", "outcomes", "src_prefixes", "memory", "merged")
        }
        out["build_seconds"] = self.fast_build_seconds
        return out

    def lookup_bulk(self, dst: Any, **columns: Any) -> BulkResult:
        """As :func:`polroute.model.bulk.lookup_bulk`: IPv4 questions on dst/src go
        through the specialised evaluator (``fast=False`` for the exact path)."""
        return lookup_bulk(self, dst, **columns)


class Published:
    """The snapshot readers should use now; a writer replaces it whole."""

    def __init__(self, policy: Policy | None = None) -> None:
        self._lock = threading.Lock()  # one publisher at a time
        self.current: CompiledPolicy | None = CompiledPolicy(policy) if policy is not None else None

    def publish(self, policy: Policy) -> CompiledPolicy:
        """Compile ``policy`` now and make the copy the current one (readers see it on their next read)."""
        snap = CompiledPolicy(policy)
        with self._lock:
            self.current = snap
        return snap
