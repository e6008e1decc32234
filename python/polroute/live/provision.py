"""Provisioning: plan and apply a desired set of rules and routes on a live kernel.

How it works
------------
A *desired state* is an ``ip -batch`` text (the same lines the model reads)
that *declares* rules and routes: ``rule add``, ``route add|replace|append|
prepend``.  ``link`` and ``address`` lines are preconditions (the device or the
address must exist; provisioning does not create them).  Everything declared
carries the *owner protocol* (``proto``/``protocol``, default
:data:`DEFAULT_OWNER_PROTO`); that number is how polroute recognises what it
owns, in the kernel and in later runs.  Nothing with another protocol is ever
changed or deleted unless the caller says so (``adopt``).

:func:`plan` reads the live state (:func:`polroute.live.state.read_state`),
puts both sides in the form the kernel dumps (rules through the model, which
applies the kernel's defaults exactly; routes by :func:`normal_route`), and
compares them by identity:

* a route's identity is its *key* - table, prefix, tos and metric - which the
  kernel keeps unique unless routes are appended; a declared route whose key
  holds an owned route with other content is *replaced* (NLM_F_REPLACE is
  atomic: traffic never sees the key empty); a key held by a foreign route is
  a conflict (or, with ``adopt``, a replace whose undo restores the original);
* a rule's identity is its whole content; a changed rule is a new rule plus
  (with ``prune``) the deletion of the old one, new before old.

The operations run in four phases, each one batch (csrc/netlink.c), so that
traffic never finds a rule without its routes: (0) route adds and replaces,
(1) rule adds, (2) rule deletions, (3) route deletions.  A phase runs only if
the one before succeeded completely.

The kernel's cost depends on order and flags (anchors-measured.md, Job 1a):
every rule insert walks the rule list to find its place and, with
NLM_F_EXCL, once more for duplicates.  The plan knows what exists, so rule
adds go without NLM_F_EXCL and in descending priority (each insert then stops
at the rule added just before it: O(1) instead of O(rules)); rules of equal
priority keep their declared order because the kernel appends within a
priority.  Deletions go in ascending priority, so each search ends near the
head.  Routes go before rules also because a route with a gateway added
while many rules exist pays a policy lookup over all of them.

Safety: every applied operation has an undo (add -> delete with the owner
protocol, replace -> replace with the previous content, delete -> add).  If
any operation fails, or its outcome is unknown, the applied ones are undone in
reverse order and the kernel is read again and compared with the state before
(:attr:`ApplyReport.restored`).  Deletions always carry the owner protocol,
and the kernel matches on it: another tool adding a similar rule or route
meanwhile cannot make polroute delete it.  ``confirm`` rolls back unless
:func:`confirm` is called (or the callback says yes) in time, like
``netplan try``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno as _errno
import fcntl
import gc
import ipaddress
import os
import select
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Union

from polroute._core.errors import PolicyError
from polroute.iproute2.batch import parse_command
from polroute.iproute2.lexer import ParseError, batch_lines, split_args
from polroute.iproute2.rt_tables import RtTables
from polroute.live.netlink import KernelSocket, NetlinkError, Outcome
from polroute.live.state import (
    KernelState,
    KRoute,
    KRule,
    _Names,
    read_state,
    route_key,
    route_line,
    rule_key,
    rule_line,
)
from polroute.model.policy import Policy
from polroute.types.requests import (
    AF_INET,
    AF_INET6,
    FR_ACT_GOTO,
    FRA_PRIORITY,
    FRA_PROTOCOL,
    NLM_F_APPEND,
    NLM_F_CREATE,
    NLM_F_EXCL,
    NLM_F_REPLACE,
    RT_SCOPE_UNIVERSE,
    RTM_DELROUTE,
    RTM_DELRULE,
    RTM_NEWADDR,
    RTM_NEWROUTE,
    RTM_NEWRULE,
    RTN_ANYCAST,
    RTN_BLACKHOLE,
    RTN_LOCAL,
    RTN_PROHIBIT,
    RTN_UNREACHABLE,
    AddrRequest,
    LinkRequest,
    RouteRequest,
    RuleRequest,
    bit,
)

DEFAULT_OWNER_PROTO = 245  # no name in iproute2's rt_protos; --owner changes it

Request = Union[RuleRequest, RouteRequest]

# phases, in the order they run
PHASE_ROUTE_ADD, PHASE_RULE_ADD, PHASE_RULE_DEL, PHASE_ROUTE_DEL = range(4)
PHASE_NAMES = ("route adds/replaces", "rule adds", "rule deletions", "route deletions")


class DesiredStateError(ValueError):
    """The desired state cannot be planned; ``errors`` are ``FILE:LINE: ...``
    lines.  Nothing was sent to the kernel."""

    def __init__(self, errors: list[str]):
        super().__init__("\n".join(errors))
        self.errors = errors


# ---------------------------------------------------------------------------
# the desired state
# ---------------------------------------------------------------------------


@dataclass
class Declared:
    """One declared rule or route: the request (kernel ifindexes, owner
    protocol) and where it was declared."""

    req: Request
    source: str = ""  # "FILE:LINE"
    line: str = ""


@dataclass
class Desired:
    rules: list[Declared] = field(default_factory=list)
    routes: list[Declared] = field(default_factory=list)


class _LiveNames:
    """The live namespace's device names, for the iproute2 reader (which
    resolves ``dev NAME`` through ``policy.ifindex``)."""

    def __init__(self, state: KernelState):
        self.state = state
        self.by_name = {link.name: link.ifindex for link in state.links}

    def ifindex(self, name: str) -> int:
        try:
            return self.by_name[name]
        except KeyError:
            raise PolicyError(_errno.ENODEV) from None

    def addresses(self):  # only `addr del` without a prefix asks
        return []


def parse_desired(text: str, state: KernelState, **kw) -> Desired:
    """Read a desired-state text against the live ``state``.  Every error is
    collected (``FILE:LINE: message``) and raised together as
    DesiredStateError.  Options: filename, owner, tables."""
    with _gc_paused():
        return _parse_desired(text, state, **kw)


def _parse_desired(
    text: str,
    state: KernelState,
    *,
    filename: str = "<desired>",
    owner: int = DEFAULT_OWNER_PROTO,
    tables: RtTables | None = None,
) -> Desired:
    tables = tables if tables is not None else RtTables()
    names = _LiveNames(state)
    addrs = {(a.ifindex, a.local, a.prefixlen) for a in state.addrs}
    out = Desired()
    errors: list[str] = []
    for lineno, line in batch_lines(text):
        where = f"{filename}:{lineno}"
        try:
            words = split_args(line)
            if not words:
                continue
            cmd = parse_command(words, names, tables, route_proto=owner)
        except ParseError as e:
            errors.append(f"{where}: {e}")
            continue
        except PolicyError as e:
            errors.append(f"{where}: {e.iproute2_text()}")
            continue
        for method, req in cmd.requests:
            msg = _declaration_error(method, req, owner, names, addrs)
            if msg:
                errors.append(f"{where}: {msg}")
            elif isinstance(req, RuleRequest):
                out.rules.append(Declared(req, where, line.strip()))
            elif isinstance(req, RouteRequest):
                out.routes.append(Declared(req, where, line.strip()))
    if errors:
        raise DesiredStateError(errors)
    return out


def _declaration_error(method: str, req, owner: int, names: _LiveNames, addrs) -> str:
    """Why ``req`` cannot be part of a desired state ("" if it can)."""
    if isinstance(req, RuleRequest):
        if req.msg_type != RTM_NEWRULE:
            return "'rule del' in a desired state: declare what should exist (--prune removes the rest)"
        if not req.present & bit(FRA_PRIORITY):
            return (
                "a declared rule needs an explicit 'priority' (the kernel would pick one "
                "from the rules present at the time)"
            )
        if req.present & bit(FRA_PROTOCOL):
            if req.protocol != owner:
                return (
                    f"'protocol {req.protocol}': declared rules carry the owner protocol "
                    f"({owner}); drop it or change the owner"
                )
        else:
            req.protocol = owner
            req.present |= bit(FRA_PROTOCOL)
        return ""
    if isinstance(req, RouteRequest):
        if req.msg_type != RTM_NEWROUTE:
            return "'route del' in a desired state: declare what should exist (--prune removes the rest)"
        if not req.nlmsg_flags & NLM_F_CREATE:
            return "'route change/test' in a desired state: declare it with 'route add'"
        if req.protocol != owner:
            return (
                f"'proto {req.protocol}': declared routes carry the owner protocol ({owner}); "
                "drop it or change the owner"
            )
        return ""
    if isinstance(req, LinkRequest):
        if req.op == "del":
            return f"'link del {req.name}': provisioning does not delete links"
        if req.name not in names.by_name:
            return f"device '{req.name}' does not exist (provisioning does not create links)"
        return ""
    if isinstance(req, AddrRequest):
        if req.msg_type != RTM_NEWADDR:
            return "'address del' in a desired state: provisioning does not change addresses"
        if (req.ifindex, req.local, req.prefixlen) not in addrs:
            return (
                f"address {req.local}/{req.prefixlen} is not configured on that device "
                "(provisioning does not add addresses)"
            )
        return ""
    return f"'{method}' cannot be declared"


def desired_from_requests(
    rules: Iterable[RuleRequest] = (), routes: Iterable[RouteRequest] = (), owner: int = DEFAULT_OWNER_PROTO
) -> Desired:
    """A desired state built in code (ifindexes of the live namespace): every
    rule needs FRA_PRIORITY; the owner protocol is set on all.  The requests
    are copied (the caller's objects are not changed)."""
    with _gc_paused():
        return _desired_from_requests(rules, routes, owner)


def _desired_from_requests(rules, routes, owner: int) -> Desired:
    out = Desired()
    for i, r in enumerate(rules):
        r = _as_request(
            r,
            msg_type=RTM_NEWRULE,
            nlmsg_flags=NLM_F_CREATE | NLM_F_EXCL,
            protocol=owner,
            present=r.present | bit(FRA_PROTOCOL),
        )
        if not r.present & bit(FRA_PRIORITY):
            raise DesiredStateError([f"rule #{i}: a declared rule needs an explicit priority"])
        out.rules.append(Declared(r, f"rule #{i}"))
    for i, r in enumerate(routes):
        flags = r.nlmsg_flags if r.nlmsg_flags & NLM_F_CREATE else NLM_F_CREATE | NLM_F_EXCL
        out.routes.append(
            Declared(_as_request(r, msg_type=RTM_NEWROUTE, nlmsg_flags=flags, protocol=owner), f"route #{i}")
        )
    return out


# ---------------------------------------------------------------------------
# normal forms: what the kernel would dump for a request
# ---------------------------------------------------------------------------

_V6_USER_METRIC = 1024  # IP6_RT_PRIO_USER: a user route's metric 0 becomes this


def normal_route(r: RouteRequest, lo_ifindex: int = 1) -> RouteRequest:
    """The route as the kernel dumps it after adding ``r``: the prefix masked,
    one-leg multipath as a plain nexthop, and for IPv6 metric 0 as 1024,
    scope universe, and reject routes on lo."""
    n = _as_request(r)
    if n.dst is not None:
        bits = 32 if n.family == AF_INET else 128
        if not n.dst_len:
            n.dst = None
        elif n.dst_len < bits:
            host = (1 << (bits - n.dst_len)) - 1
            v = int(n.dst)
            if v & host:
                n.dst = ipaddress.ip_address(v & ~host) if bits == 32 else ipaddress.IPv6Address(v & ~host)
    if len(n.nexthops) == 1:
        leg = n.nexthops[0]
        n.gateway, n.oif, n.rtm_flags = leg.gateway, leg.ifindex, n.rtm_flags | leg.flags
        n.nexthops = []
    if n.family == AF_INET6:
        n.scope = RT_SCOPE_UNIVERSE
        if n.priority == 0 and n.type not in (RTN_LOCAL, RTN_ANYCAST):
            n.priority = _V6_USER_METRIC
        if n.type in (RTN_BLACKHOLE, RTN_UNREACHABLE, RTN_PROHIBIT) and not n.oif:
            n.oif = lo_ifindex
    return n


_VARYING = frozenset(("src", "dst", "priority", "table", "msg_type", "nlmsg_flags"))


def _shape(r: RuleRequest) -> tuple:
    """A rule's fields but the ones the kernel stores as given (addresses,
    priority, a non-zero table): rules of one shape normalise alike.  (The
    class is part of it: its fields come in declaration order.)"""
    return (type(r),) + tuple(v for k, v in r.__dict__.items() if k not in _VARYING)


def _kernel_rule(r: RuleRequest) -> RuleRequest | PolicyError:
    """The rule the kernel stores for request ``r`` (through a scratch model:
    it applies the kernel's defaults and refusals), or why it refuses it."""
    scratch = Policy()
    try:
        scratch.rule(_as_request(r, nlmsg_flags=NLM_F_CREATE, protocol=255, present=r.present | bit(FRA_PROTOCOL)))
    except PolicyError as e:
        return e
    got = [x for x in scratch.rules(r.family) if x.protocol == 255]
    if len(got) != 1:
        raise RuntimeError(f"internal: scratch model gave {len(got)} rules for one")
    got[0].protocol = r.protocol
    return got[0]


def _normal_rules(declared: list[Declared], errors: list[str]) -> list[tuple[Declared, RuleRequest, tuple]]:
    """Each declared rule with its kernel form and key, in kernel order (priority,
    then declared order).  The form comes from the model, once per rule shape
    (see _shape; a 50,000-tenant policy has a handful); duplicates among the
    declared rules are refused as the kernel would."""
    out = []
    forms: dict[tuple, RuleRequest | PolicyError] = {}
    for d in sorted(declared, key=lambda d: d.req.priority & 0xFFFFFFFF):
        q = d.req
        if q.family == AF_INET and q.table == 0:
            form = _kernel_rule(q)  # the kernel picks a table: no sharing
        else:
            shape = _shape(q)
            form = forms.get(shape)
            if form is None:
                form = forms[shape] = _kernel_rule(q)
        if isinstance(form, PolicyError):
            errors.append(f"{d.source}: {form.iproute2_text()}")
            continue
        if q.action == FR_ACT_GOTO and q.goto_target <= q.priority:  # depends on the priority
            errors.append(f"{d.source}: Error: Backward goto not supported.")
            continue
        n = _as_request(form)
        if q.src_len:
            n.src = q.src
        if q.dst_len:
            n.dst = q.dst
        n.priority = q.priority
        if q.table:
            n.table = q.table
        out.append((d, n))
    seen: dict[tuple, Declared] = {}
    uniq = []
    for d, n in out:
        k = _ukey(n)
        if k in seen:
            errors.append(
                f"{d.source}: the same rule as {seen[k].source} (the kernel keeps one: RTNETLINK answers: File exists)"
            )
            continue
        seen[k] = d
        uniq.append((d, n, k))
    return uniq


# ---------------------------------------------------------------------------
# the plan
# ---------------------------------------------------------------------------


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


@dataclass
class Plan:
    netns: str | None
    owner: int
    ops: list[Op]
    unchanged: int
    state: KernelState = field(repr=False)
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        c: dict[str, int] = {}
        for op in self.ops:
            k = f"{op.kind}s {op.verb if op.verb != 'append' else 'add'}"
            c[k] = c.get(k, 0) + 1
        return c

    def summary(self) -> str:
        c = self.counts()
        parts = [f"{n} {k}" for k, n in sorted(c.items())] or ["no changes"]
        return f"{', '.join(parts)}; {self.unchanged} unchanged"

    def text(self) -> str:
        where = f"namespace {self.netns}" if self.netns else "the current namespace"
        out = [f"# plan for {where}, owner protocol {self.owner}: {self.summary()}"]
        out += [f"# note: {n}" for n in self.notes]
        phase = -1
        for op in self.ops:
            if op.phase != phase:
                phase = op.phase
                out.append(f"# phase {phase}: {PHASE_NAMES[phase]}")
            out.append(f"{op.text}    # {op.why}")
        return "\n".join(out) + "\n"


def _ifname_fn(state: KernelState) -> Callable[[int], str]:
    names = {l.ifindex: l.name for l in state.links}
    return lambda i: names.get(i, f"if{i}")


def _rkey(r: RouteRequest, ifname) -> tuple:
    return route_key(r, ifname, state_flags=False)


_RULE_DETACHED = 0x8 | 0x10  # FIB_RULE_IIF/OIF_DETACHED: the device's presence, not configuration


def _ukey(r: RuleRequest) -> tuple:
    k = rule_key(r)
    return k[:2] + (k[2] & ~_RULE_DETACHED,) + k[3:]


def _group_key(r: RouteRequest) -> tuple:
    dst = r.dst if r.dst_len else None
    return (r.family, r.table & 0xFFFFFFFF, dst, r.dst_len, r.tos, r.priority & 0xFFFFFFFF)


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


def plan(desired: Desired | str, netns: str | None = None, **kw) -> Plan:
    """The ordered operations that make the live namespace hold ``desired``
    (a Desired, or desired-state text); see _plan for the options."""
    with _gc_paused():
        return _plan(desired, netns, **kw)


def _plan(
    desired: Desired | str,
    netns: str | None = None,
    *,
    owner: int = DEFAULT_OWNER_PROTO,
    prune: bool = False,
    adopt: bool = False,
    filename: str = "<desired>",
    state: KernelState | None = None,
    tables: RtTables | None = None,
) -> Plan:
    """The ordered operations that make the live namespace hold ``desired``
    (a Desired, or desired-state text).  Raises DesiredStateError (nothing
    sent) for bad lines and conflicts with objects polroute does not own."""
    t0 = time.perf_counter()
    if state is None:
        state = read_state(netns, sysctls=False)
    t1 = time.perf_counter()
    if isinstance(desired, str):
        desired = parse_desired(desired, state, filename=filename, owner=owner, tables=tables)
    ifname = _ifname_fn(state)
    lo = next((l.ifindex for l in state.links if l.kind == "loopback"), 1)
    errors: list[str] = []
    notes: list[str] = []
    ops: list[Op] = []
    unchanged = 0
    protos = (
        {owner}
        | {r.protocol for rs in state.routes.values() for r in rs}
        | {r.protocol for rs in state.rules.values() for r in rs}
    )
    names = _Names(protos, {r.scope for rs in state.routes.values() for r in rs} | {0, 253, 254})

    def rline(r: RouteRequest, verb: str) -> str:
        return route_line(r, verb, ifname, names)

    def ruline(r: RuleRequest, verb: str) -> str:
        text = rule_line(r, verb, names)
        return f"-6 {text}" if r.family == AF_INET6 else text

    # ---- routes -------------------------------------------------------------
    cur_groups: dict[tuple, list[KRoute]] = {}
    for fam in (AF_INET, AF_INET6):
        for r in state.routes.get(fam, []):
            cur_groups.setdefault(_group_key(r), []).append(r)
    des_groups: dict[tuple, list[tuple[Declared, RouteRequest]]] = {}
    for d in desired.routes:
        n = normal_route(d.req, lo)
        des_groups.setdefault(_group_key(n), []).append((d, n))
    route_adds: list[Op] = []
    route_dels: list[Op] = []
    for key, des in des_groups.items():
        cur = cur_groups.get(key, [])
        owned = [c for c in cur if c.protocol == owner]
        foreign = [c for c in cur if c.protocol != owner]
        d0 = des[0][0]
        if foreign:
            f = foreign[0]
            if adopt and not owned and len(foreign) == 1 and len(des) == 1 and not f.unsupported:
                # a replace even when the content is the same: it takes ownership
                req = _as_request(d0.req, nlmsg_flags=NLM_F_CREATE | NLM_F_REPLACE)
                undo = _as_request(f, msg_type=RTM_NEWROUTE, nlmsg_flags=NLM_F_CREATE | NLM_F_REPLACE)
                route_adds.append(
                    Op(
                        PHASE_ROUTE_ADD,
                        "replace",
                        req,
                        undo,
                        f"{d0.source} (adopts: {rline(f, 'add')})",
                        _lazy(rline, des[0][1], "replace"),
                    )
                )
                continue
            errors.append(
                f"{d0.source}: the kernel already has {rline(f, 'add')!r} with the same "
                f"table, prefix, tos and metric, not owned by polroute (protocol "
                f"{f.protocol} != {owner}); it is left alone unless --adopt is given"
            )
            continue
        if len(des) > 1 and key[0] == AF_INET6:
            errors.append(
                f"{des[1][0].source}: a second IPv6 route with the same prefix and metric "
                f"as {d0.source}: declare an IPv6 multipath route as one route with "
                "'nexthop' legs"
            )
            continue
        dkeys = [_rkey(n, ifname) for _, n in des]
        okeys = [_rkey(c, ifname) for c in owned]
        if dkeys == okeys:
            unchanged += len(des)
            continue
        if len(des) == 1 and len(owned) == 1:
            if owned[0].unsupported:
                errors.append(
                    f"{d0.source}: the owned route {rline(owned[0], 'add')!r} has what "
                    f"polroute cannot restore ({', '.join(owned[0].unsupported)})"
                )
                continue
            req = _as_request(d0.req, nlmsg_flags=NLM_F_CREATE | NLM_F_REPLACE)
            undo = _as_request(owned[0], msg_type=RTM_NEWROUTE, nlmsg_flags=NLM_F_CREATE | NLM_F_REPLACE)
            route_adds.append(Op(PHASE_ROUTE_ADD, "replace", req, undo, d0.source, _lazy(rline, des[0][1], "replace")))
            continue
        # several routes under one key (IPv4 append): add the missing ones,
        # delete (with prune) the extra ones; order inside the key is the kernel's append order
        have = list(okeys)
        for (d, n), k in zip(des, dkeys):
            if k in have:
                have.remove(k)
                unchanged += 1
                continue
            first = not owned and d is d0
            flags = NLM_F_CREATE | (NLM_F_EXCL if first else NLM_F_APPEND)
            req = d.req
            req.nlmsg_flags = flags  # the Desired holds its own copies: no copy here
            route_adds.append(
                Op(
                    PHASE_ROUTE_ADD,
                    "add" if first else "append",
                    req,
                    _lazy(_route_del, n),
                    d.source,
                    _lazy(rline, n, "add" if first else "append"),
                )
            )
        for c in owned:
            k = _rkey(c, ifname)
            if k in have:
                have.remove(k)
                if prune:
                    route_dels.append(
                        Op(
                            PHASE_ROUTE_DEL,
                            "del",
                            _route_del(c),
                            _as_request(c, msg_type=RTM_NEWROUTE, nlmsg_flags=NLM_F_CREATE | NLM_F_APPEND),
                            "not declared (prune)",
                            _lazy(rline, c, "del"),
                        )
                    )
                else:
                    notes.append(f"kept, not declared (no --prune): {rline(c, 'add')}")
    if prune:
        for key, cur in cur_groups.items():
            if key in des_groups:
                continue
            for c in cur:
                if c.protocol != owner:
                    continue
                if c.unsupported:
                    errors.append(
                        f"owned route {rline(c, 'add')!r} has what polroute cannot "
                        f"restore ({', '.join(c.unsupported)}); delete it by hand"
                    )
                    continue
                flags = NLM_F_CREATE | (NLM_F_APPEND if c.family == AF_INET else NLM_F_EXCL)
                route_dels.append(
                    Op(
                        PHASE_ROUTE_DEL,
                        "del",
                        _route_del(c),
                        _lazy(_as_request, c, msg_type=RTM_NEWROUTE, nlmsg_flags=flags),
                        "not declared (prune)",
                        _lazy(rline, c, "del"),
                    )
                )

    # ---- rules ----------------------------------------------------------------
    rule_adds: list[Op] = []
    rule_dels: list[Op] = []
    normal3 = _normal_rules(desired.rules, errors)
    normal = [(d, n) for d, n, _ in normal3]
    normal_keys = {id(n): k for _, n, k in normal3}
    for fam in (AF_INET, AF_INET6):
        cur = state.rules.get(fam, [])
        owned = [r for r in cur if r.protocol == owner]
        mine = [(d, n) for d, n in normal if n.family == fam]
        # keys (each made once) only where a declared rule can match: same priority
        prios = {n.priority & 0xFFFFFFFF for _, n in mine}
        okey = {id(r): _ukey(r) for r in owned if (r.priority & 0xFFFFFFFF) in prios}
        avail: dict[tuple, list[KRule]] = {}
        for r in owned:
            if id(r) in okey:
                avail.setdefault(okey[id(r)], []).append(r)
        kept: set[int] = set()  # id() of current owned rules that stay
        unmatched: set[int] = set()  # id() of declared kernel forms not present
        for d, n in mine:
            k = normal_keys[id(n)]
            if avail.get(k):
                kept.add(id(avail[k].pop(0)))
            else:
                unmatched.add(id(n))
        # The kernel appends within a priority, so after the adds a priority
        # holds its kept rules (kernel order) and then the added ones (declared
        # order).  Where that differs from the declared order, the declared
        # rules from the first difference on are added again (new copy first,
        # then the old one deleted: the delete takes the first match, the old).
        by_prio: dict[int, list[tuple[Declared, RuleRequest]]] = {}
        for d, n in mine:
            by_prio.setdefault(n.priority & 0xFFFFFFFF, []).append((d, n))
        add_list: list[tuple[Declared, RuleRequest]] = []
        readd: list[KRule] = []
        owned_by_prio: dict[int, list[KRule]] = {}
        for r in owned:
            owned_by_prio.setdefault(r.priority & 0xFFFFFFFF, []).append(r)
        for prio, group in by_prio.items():
            kept_here = [r for r in owned_by_prio.get(prio, ()) if id(r) in kept]
            new_here = [(d, n) for d, n in group if id(n) in unmatched]
            final = [okey[id(r)] for r in kept_here] + [normal_keys[id(n)] for _, n in new_here]
            want = [normal_keys[id(n)] for _, n in group]
            if final == want:
                add_list.extend(new_here)
                continue
            i = 0
            while final[i] == want[i]:
                i += 1
            add_list.extend(group[i:])
            for r in kept_here[i:]:
                kept.discard(id(r))
                readd.append(r)
        unchanged += len(kept)
        for d, n in add_list:
            req = d.req
            req.nlmsg_flags = NLM_F_CREATE
            rule_adds.append(Op(PHASE_RULE_ADD, "add", req, _lazy(_rule_del, n), d.source, _lazy(ruline, n, "add")))
        readd_ids = {id(r) for r in readd}
        for r in readd:
            rule_dels.append(
                Op(
                    PHASE_RULE_DEL,
                    "del",
                    _rule_del(r),
                    _as_request(r, msg_type=RTM_NEWRULE, nlmsg_flags=NLM_F_CREATE),
                    "added again above to keep the declared order",
                    _lazy(ruline, r, "del"),
                )
            )
        for r in owned:
            if id(r) in kept or id(r) in readd_ids:
                continue
            if prune:
                if r.unsupported:
                    errors.append(
                        f"owned rule {ruline(r, 'add')!r} has what polroute cannot "
                        f"restore ({', '.join(r.unsupported)}); delete it by hand"
                    )
                    continue
                rule_dels.append(
                    Op(
                        PHASE_RULE_DEL,
                        "del",
                        _rule_del(r),
                        _lazy(_as_request, r, msg_type=RTM_NEWRULE, nlmsg_flags=NLM_F_CREATE),
                        "not declared (prune)",
                        _lazy(ruline, r, "del"),
                    )
                )
            else:
                notes.append(f"kept, not declared (no --prune): {ruline(r, 'add')}")
    if errors:
        raise DesiredStateError(errors)

    # ---- order (see the module docstring) -------------------------------------
    # route adds: in declared order (a key's first route before its appends)
    # rule adds: descending priority, declared order within one priority
    rule_adds.sort(key=lambda op: -(op.req.priority & 0xFFFFFFFF))
    rule_dels.sort(key=lambda op: op.req.priority & 0xFFFFFFFF)
    ops = route_adds + rule_adds + rule_dels + route_dels
    if len(notes) > 20:
        notes = notes[:20] + [f"... and {len(notes) - 20} more kept objects"]
    t2 = time.perf_counter()
    return Plan(netns, owner, ops, unchanged, state, notes, {"read": t1 - t0, "plan": t2 - t1})


# ---------------------------------------------------------------------------
# applying
# ---------------------------------------------------------------------------


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


def state_differences(before: KernelState, after: KernelState) -> list[str]:
    """Rules (in order) and routes (as multisets) that differ between two
    dumps; the dead/linkdown flags are ignored."""
    out = []
    fb, fa = _ifname_fn(before), _ifname_fn(after)
    names = _Names({0}, {0})
    for fam in sorted(set(before.rules) | set(after.rules)):
        kb = [_ukey(r) for r in before.rules.get(fam, [])]
        ka = [_ukey(r) for r in after.rules.get(fam, [])]
        if kb != ka:
            sb, sa = set(kb), set(ka)
            for r in before.rules.get(fam, []):
                if _ukey(r) not in sa:
                    out.append(f"rule missing: {rule_line(r, 'add', names)}")
            for r in after.rules.get(fam, []):
                if _ukey(r) not in sb:
                    out.append(f"rule extra: {rule_line(r, 'add', names)}")
            if sb == sa:
                out.append(f"rules of family {fam} in another order")
    for fam in sorted(set(before.routes) | set(after.routes)):
        mb: dict[tuple, int] = {}
        for r in before.routes.get(fam, []):
            k = _rkey(r, fb)
            mb[k] = mb.get(k, 0) + 1
        for r in after.routes.get(fam, []):
            k = _rkey(r, fa)
            if mb.get(k):
                mb[k] -= 1
            else:
                out.append(f"route extra: {route_line(r, 'add', fa, names)}")
        for r in before.routes.get(fam, []):
            k = _rkey(r, fb)
            if mb.get(k):
                mb[k] -= 1
                out.append(f"route missing: {route_line(r, 'add', fb, names)}")
    return out


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


def owned_text(state: KernelState, owner: int = DEFAULT_OWNER_PROTO) -> str:
    """The owned rules and routes of a dump as a desired-state text (routes
    first, then rules; IPv6 rules with ``-6``): planning it against the same
    kernel gives no operation."""
    ifname = _ifname_fn(state)
    names = _Names({owner}, {0, 253, 254})
    out = []
    for fam in (AF_INET, AF_INET6):
        groups: dict[tuple, int] = {}
        for r in state.routes.get(fam, []):
            if r.protocol != owner:
                continue
            k = _group_key(r)
            verb = "append" if groups.get(k) else "add"
            groups[k] = 1
            out.append(route_line(r, verb, ifname, names))
    for fam in (AF_INET, AF_INET6):
        for r in state.rules.get(fam, []):
            if r.protocol == owner:
                text = rule_line(r, "add", names)
                out.append(f"-6 {text}" if fam == AF_INET6 else text)
    return "\n".join(out) + ("\n" if out else "")
