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

:func:`plan` reads the live state (:func:`polroute.live.read.read_state`),
puts both sides in the form the kernel stores (the declared routes applied in
order to the model of the namespace without polroute's objects, which refuses
what the kernel would refuse and resolves what the kernel resolves - see
:func:`kernel_routes`; rules through the model, which applies the kernel's
defaults exactly), and compares them by identity:

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
``netplan try``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from polroute.iproute2.rt_tables import RtTables
from polroute.live.desired import (
    DEFAULT_OWNER_PROTO,
    Declared,
    Desired,
    DesiredStateError,
    _normal_rules,
    kernel_routes,
    parse_desired,
    rule_ident,
)
from polroute.live.keys import _ifname_fn, _rkey, _slot_key
from polroute.live.lines import _Names, route_line, rule_line
from polroute.live.objects import KernelState, KRoute, KRule
from polroute.live.ops import (
    PHASE_NAMES,
    PHASE_ROUTE_ADD,
    PHASE_ROUTE_DEL,
    PHASE_RULE_ADD,
    PHASE_RULE_DEL,
    Op,
    _as_request,
    _gc_paused,
    _lazy,
    _route_del,
    _rule_del,
)
from polroute.live.read import read_state
from polroute.types.requests import (
    AF_INET,
    AF_INET6,
    NLM_F_APPEND,
    NLM_F_CREATE,
    NLM_F_EXCL,
    NLM_F_REPLACE,
    RTM_NEWROUTE,
    RTM_NEWRULE,
    RouteRequest,
    RuleRequest,
)

# ---------------------------------------------------------------------------
# the plan
# ---------------------------------------------------------------------------


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


def plan(desired: Desired | str, netns: str | None = None, **kw) -> Plan:
    """The ordered operations that make the live namespace hold ``desired``
    (a Desired, or desired-state text); see _plan for the options."""
    with _gc_paused():
        return _plan(desired, netns, **kw)


@dataclass
class _Diff:
    """What the route and rule diffs share: the live state, the options, the
    line printers (for texts and messages), and what they collect."""

    state: KernelState
    owner: int
    prune: bool
    adopt: bool
    ifname: Callable[[int], str]
    names: _Names
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unchanged: int = 0

    def rline(self, r: RouteRequest, verb: str) -> str:
        return route_line(r, verb, self.ifname, self.names)

    def ruline(self, r: RuleRequest, verb: str) -> str:
        text = rule_line(r, verb, self.names)
        return f"-6 {text}" if r.family == AF_INET6 else text


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
    protos = (
        {owner}
        | {r.protocol for rs in state.routes.values() for r in rs}
        | {r.protocol for rs in state.rules.values() for r in rs}
    )
    names = _Names(protos, {r.scope for rs in state.routes.values() for r in rs} | {0, 253, 254})
    diff = _Diff(state, owner, prune, adopt, _ifname_fn(state), names)
    route_adds, route_dels = _route_diff(diff, desired)
    rule_adds, rule_dels = _rule_diff(diff, desired)
    if diff.errors:
        raise DesiredStateError(diff.errors)
    ops = _ordered(route_adds, rule_adds, rule_dels, route_dels)
    notes = diff.notes
    if len(notes) > 20:
        notes = notes[:20] + [f"... and {len(notes) - 20} more kept objects"]
    t2 = time.perf_counter()
    return Plan(netns, owner, ops, diff.unchanged, state, notes, {"read": t1 - t0, "plan": t2 - t1})


def _ordered(route_adds: list[Op], rule_adds: list[Op], rule_dels: list[Op], route_dels: list[Op]) -> list[Op]:
    """The phases in order (see the module docstring): route adds in declared
    order (a key's first route before its appends); rule adds in descending
    priority, declared order within one priority; rule deletions in ascending
    priority; route deletions."""
    rule_adds.sort(key=lambda op: -(op.req.priority & 0xFFFFFFFF))
    rule_dels.sort(key=lambda op: op.req.priority & 0xFFFFFFFF)
    return route_adds + rule_adds + rule_dels + route_dels


# ---- routes -------------------------------------------------------------------


def _route_diff(diff: _Diff, desired: Desired) -> tuple[list[Op], list[Op]]:
    """Route adds/replaces and (with prune) deletions, key by key (table,
    prefix, tos, metric: see _slot_key)."""
    state = diff.state
    cur_groups: dict[tuple, list[KRoute]] = {}
    for fam in (AF_INET, AF_INET6):
        for r in state.routes.get(fam, []):
            cur_groups.setdefault(_slot_key(r), []).append(r)
    des_groups: dict[tuple, list[tuple[Declared, RouteRequest]]] = {}
    for d, n in kernel_routes(desired.routes, state, diff.owner, diff.errors, diff.notes):
        des_groups.setdefault(_slot_key(n), []).append((d, n))
    route_adds: list[Op] = []
    route_dels: list[Op] = []
    for key, des in des_groups.items():
        _route_slot(diff, key, des, cur_groups.get(key, []), route_adds, route_dels)
    if diff.prune:
        _prune_undeclared_routes(diff, cur_groups, des_groups, route_dels)
    return route_adds, route_dels


def _route_slot(
    diff: _Diff,
    key: tuple,
    des: list[tuple[Declared, RouteRequest]],
    cur: list[KRoute],
    route_adds: list[Op],
    route_dels: list[Op],
) -> None:
    """The operations for one key: its declared routes against the live ones."""
    owner, ifname, rline = diff.owner, diff.ifname, diff.rline
    owned = [c for c in cur if c.protocol == owner]
    foreign = [c for c in cur if c.protocol != owner]
    d0 = des[0][0]
    if foreign:
        f = foreign[0]
        if diff.adopt and not owned and len(foreign) == 1 and len(des) == 1 and not f.unsupported:
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
            return
        diff.errors.append(
            f"{d0.source}: the kernel already has {rline(f, 'add')!r} with the same "
            f"table, prefix, tos and metric, not owned by polroute (protocol "
            f"{f.protocol} != {owner}); it is left alone unless --adopt is given"
        )
        return
    if len(des) > 1 and key[0] == AF_INET6:
        diff.errors.append(
            f"{des[1][0].source}: a second IPv6 route with the same prefix and metric "
            f"as {d0.source}: declare an IPv6 multipath route as one route with "
            "'nexthop' legs"
        )
        return
    dkeys = [_rkey(n, ifname) for _, n in des]
    okeys = [_rkey(c, ifname) for c in owned]
    if dkeys == okeys:
        diff.unchanged += len(des)
        return
    if len(des) == 1 and len(owned) == 1:
        if owned[0].unsupported:
            diff.errors.append(
                f"{d0.source}: the owned route {rline(owned[0], 'add')!r} has what "
                f"polroute cannot restore ({', '.join(owned[0].unsupported)})"
            )
            return
        req = _as_request(d0.req, nlmsg_flags=NLM_F_CREATE | NLM_F_REPLACE)
        undo = _as_request(owned[0], msg_type=RTM_NEWROUTE, nlmsg_flags=NLM_F_CREATE | NLM_F_REPLACE)
        route_adds.append(Op(PHASE_ROUTE_ADD, "replace", req, undo, d0.source, _lazy(rline, des[0][1], "replace")))
        return
    _route_slot_appends(diff, des, owned, dkeys, okeys, route_adds, route_dels)


def _route_slot_appends(
    diff: _Diff,
    des: list[tuple[Declared, RouteRequest]],
    owned: list[KRoute],
    dkeys: list[tuple],
    okeys: list[tuple],
    route_adds: list[Op],
    route_dels: list[Op],
) -> None:
    """Several routes under one key (IPv4 append): add the missing ones,
    delete (with prune) the extra ones; order inside the key is the kernel's
    append order."""
    rline = diff.rline
    d0 = des[0][0]
    have = list(okeys)
    for (d, n), k in zip(des, dkeys):
        if k in have:
            have.remove(k)
            diff.unchanged += 1
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
        k = _rkey(c, diff.ifname)
        if k in have:
            have.remove(k)
            if diff.prune:
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
                diff.notes.append(f"kept, not declared (no --prune): {rline(c, 'add')}")


def _prune_undeclared_routes(
    diff: _Diff, cur_groups: dict[tuple, list[KRoute]], des_groups: dict, route_dels: list[Op]
) -> None:
    """Deletions of the owned routes under keys nothing is declared for."""
    owner, rline = diff.owner, diff.rline
    for key, cur in cur_groups.items():
        if key in des_groups:
            continue
        for c in cur:
            if c.protocol != owner:
                continue
            if c.unsupported:
                diff.errors.append(
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


# ---- rules --------------------------------------------------------------------


def _rule_diff(diff: _Diff, desired: Desired) -> tuple[list[Op], list[Op]]:
    """Rule adds and deletions (re-adds that keep the declared order, and
    with prune the undeclared owned rules), family by family.  A rule's
    identity is its whole kernel form (see _normal_rules)."""
    rule_adds: list[Op] = []
    rule_dels: list[Op] = []
    normal3 = _normal_rules(desired.rules, diff.errors)
    normal = [(d, n) for d, n, _ in normal3]
    normal_keys = {id(n): k for _, n, k in normal3}
    for fam in (AF_INET, AF_INET6):
        mine = [(d, n) for d, n in normal if n.family == fam]
        _family_rule_ops(diff, fam, mine, normal_keys, rule_adds, rule_dels)
    return rule_adds, rule_dels


def _family_rule_ops(
    diff: _Diff,
    fam: int,
    mine: list[tuple[Declared, RuleRequest]],
    normal_keys: dict[int, tuple],
    rule_adds: list[Op],
    rule_dels: list[Op],
) -> None:
    ruline = diff.ruline
    owned = [r for r in diff.state.rules.get(fam, []) if r.protocol == diff.owner]
    # keys (each made once) only where a declared rule can match: same priority
    prios = {n.priority & 0xFFFFFFFF for _, n in mine}
    okey = {id(r): rule_ident(r) for r in owned if (r.priority & 0xFFFFFFFF) in prios}
    avail: dict[tuple, list[KRule]] = {}
    for r in owned:
        if id(r) in okey:
            avail.setdefault(okey[id(r)], []).append(r)
    kept: set[int] = set()  # id() of current owned rules that stay
    unmatched: set[int] = set()  # id() of declared kernel forms not present
    for _d, n in mine:
        k = normal_keys[id(n)]
        if avail.get(k):
            kept.add(id(avail[k].pop(0)))
        else:
            unmatched.add(id(n))
    add_list, readd = _declared_order(mine, owned, okey, normal_keys, kept, unmatched)
    diff.unchanged += len(kept)
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
        if not diff.prune:
            diff.notes.append(f"kept, not declared (no --prune): {ruline(r, 'add')}")
        elif r.unsupported:
            diff.errors.append(
                f"owned rule {ruline(r, 'add')!r} has what polroute cannot "
                f"restore ({', '.join(r.unsupported)}); delete it by hand"
            )
        else:
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


def _declared_order(
    mine: list[tuple[Declared, RuleRequest]],
    owned: list[KRule],
    okey: dict[int, tuple],
    normal_keys: dict[int, tuple],
    kept: set[int],
    unmatched: set[int],
) -> tuple[list[tuple[Declared, RuleRequest]], list[KRule]]:
    """The declared rules to add, and the kept ones to add again (``kept``
    loses them).  The kernel appends within a priority, so after the adds a
    priority holds its kept rules (kernel order) and then the added ones
    (declared order).  Where that differs from the declared order, the
    declared rules from the first difference on are added again (new copy
    first, then the old one deleted: the delete takes the first match, the
    old)."""
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
    return add_list, readd
