"""Provisioning operations: one rule or route request with its undo, the
phases they run in, and copies of requests (for undos and deletions)."""

from __future__ import annotations

import contextlib
import gc
from dataclasses import dataclass

from polroute.live.netlink import Request
from polroute.types.requests import (
    FRA_PRIORITY,
    FRA_PROTOCOL,
    RTM_DELROUTE,
    RTM_DELRULE,
    RouteRequest,
    RuleRequest,
    bit,
)

# phases, in the order they run
PHASE_ROUTE_ADD, PHASE_RULE_ADD, PHASE_RULE_DEL, PHASE_ROUTE_DEL = range(4)


PHASE_NAMES = ("route adds/replaces", "rule adds", "rule deletions", "route deletions")


def _lazy(fn, *args, **kw):
    """Made only when needed: lines when printed, undos when rolling back
    (a 50,000-object plan needs neither)."""
    return lambda: fn(*args, **kw)


@dataclass
class Op:
    """One operation: the request sent, the request that undoes it, and why."""

    phase: int
    verb: str  # add | replace | append | del
    req: Request
    undo: object  # the request that undoes it, or a function making it
    why: str  # "FILE:LINE" of the declaration, or what is pruned
    render: object = ""  # the ip batch line, or a function that makes it

    def undo_request(self) -> Request | None:
        """The undo (made only when a rollback needs it)."""
        if callable(self.undo):
            self.undo = self.undo()
        return self.undo

    @property
    def text(self) -> str:
        if callable(self.render):
            self.render = self.render()
        return self.render

    @property
    def kind(self) -> str:
        return "rule" if isinstance(self.req, RuleRequest) else "route"


def _as_request(r, **changes):
    """A copy of request ``r`` (nexthops and metrics copied too) with
    ``changes``.  (copy.copy is several times slower for these dataclasses.)"""
    n = object.__new__(type(r))
    d = n.__dict__
    d.update(r.__dict__)
    if isinstance(r, RouteRequest):
        d["nexthops"] = [_as_request(l) for l in r.nexthops] if r.nexthops else []
        d["metrics"] = dict(r.metrics)
    d.update(changes)
    return n


def _route_del(r: RouteRequest) -> RouteRequest:
    """A delete naming exactly ``r`` (protocol included: the kernel then
    matches only a route of that protocol)."""
    return _as_request(r, msg_type=RTM_DELROUTE, nlmsg_flags=0)


def _rule_del(r: RuleRequest) -> RuleRequest:
    return _as_request(
        r, msg_type=RTM_DELRULE, nlmsg_flags=0, present=r.present | bit(FRA_PRIORITY) | bit(FRA_PROTOCOL)
    )


@contextlib.contextmanager
def _gc_paused():
    """No cyclic GC while tens of thousands of request objects are made: its
    full passes would walk them all again and again (measured: half the
    planning time at 10,000 tenants).  Nothing made here forms cycles."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
