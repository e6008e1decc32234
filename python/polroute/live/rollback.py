"""Undoing an apply.

Two ways in.  In the applying process, with every operation's outcome known,
:func:`undo_ops` undoes exactly what was applied (or may have been).  After a
crash, a signal, or an unconfirmed ``--confirm``, :func:`undo_journal` undoes
from the journal alone (``live/journal.py``): every operation of every phase
that may have reached the kernel, newest first, each sent as its inverse --
an add as a delete of the same message, a delete as an add, a replace as a
replace with the journaled old content -- where "already so" answers
(ENOENT/ESRCH for a delete, EEXIST for an add) count as done.

Both then put rules back in their order within a priority (the kernel
appends within a priority, so a deleted and re-added rule lands last), moving
**owned rules only**: where the old order cannot be restored without moving
a foreign rule, that is reported, never done.
"""

from __future__ import annotations

import dataclasses
import errno as _errno
from collections.abc import Iterable
from dataclasses import dataclass

from polroute.live import journal
from polroute.live.keys import _ukey
from polroute.live.netlink import KernelSocket, NetlinkError, Outcome, Request, message_type, raw_batch, split_messages
from polroute.live.objects import KRule
from polroute.live.ops import Op, _as_request, _rule_del
from polroute.live.read import read_state
from polroute.types.requests import (
    AF_INET,
    AF_INET6,
    FRA_PRIORITY,
    NLM_F_APPEND,
    NLM_F_CREATE,
    NLM_F_EXCL,
    RTM_DELROUTE,
    RTM_DELRULE,
    RTM_NEWROUTE,
    RTM_NEWRULE,
    RuleRequest,
    bit,
)

_INVERSE = {RTM_NEWROUTE: RTM_DELROUTE, RTM_DELROUTE: RTM_NEWROUTE, RTM_NEWRULE: RTM_DELRULE, RTM_DELRULE: RTM_NEWRULE}


def send_all(ks: KernelSocket, batch_or_requests) -> list[Outcome]:
    """ks.send, with a socket error turned into outcomes: what was
    acknowledged stays known, the rest is unknown."""
    try:
        return ks.send(batch_or_requests)
    except NetlinkError as e:
        n = len(batch_or_requests) if isinstance(batch_or_requests, list) else None
        rest = (n - len(e.outcomes)) if n is not None else 0
        return e.outcomes + [Outcome(-1, str(e))] * rest


def undo_ops(ks: KernelSocket, done: list[Op]) -> list[str]:
    """Undo ``done`` (applied, or of unknown outcome) in reverse order, as one
    batch (the kernel handles a batch's messages in order).  A delete that
    finds nothing is fine: the operation may never have been applied."""
    undo_ops_ = [op for op in reversed(done) if op.undo_request() is not None]
    outcomes = send_all(ks, [op.undo_request() for op in undo_ops_])
    problems = []
    for op, out in zip(undo_ops_, outcomes):
        if out.ok:
            continue
        if out.error in (_errno.ENOENT, _errno.ESRCH) and op.undo_request().msg_type in (RTM_DELROUTE, RTM_DELRULE):
            continue
        problems.append(f"undo of {op.text!r}: {out.iproute2_text()}")
    return problems


# ---------------------------------------------------------------- from the journal


def inverse_flags(mtype: int, family: int) -> int:
    """The nlmsg flags of the message that undoes one of type ``mtype``: a
    delete takes none.  A phase cut short by a kill may have sent only some of
    its deletes, so a re-add must not duplicate what was never deleted: a rule
    goes with NLM_F_EXCL (the kernel then compares every attribute and says
    EEXIST); an IPv6 route likewise (one route per key); an IPv4 route is
    appended behind routes of its key (``ip route append``) -- journal_steps
    leaves out those still in the kernel."""
    if mtype in (RTM_NEWROUTE, RTM_NEWRULE):
        return 0
    if mtype == RTM_DELRULE:
        return NLM_F_CREATE | NLM_F_EXCL
    return NLM_F_CREATE | (NLM_F_APPEND if family == AF_INET else NLM_F_EXCL)


def route_identity(msg) -> tuple:
    """(family, table, dst, dst_len, tos, priority, protocol, type, gateway,
    oif, multipath) of an encoded route message (rtmsg + RTA_*): what tells
    one IPv4 route from another under one key."""
    m = bytes(msg)
    fam, dst_len, _src_len, tos, table8, proto, _scope, rtype = m[16:24]
    attrs = _attrs(m, 28)
    table = int.from_bytes(attrs[_RTA_TABLE], "little") if _RTA_TABLE in attrs else table8
    prio = int.from_bytes(attrs[_RTA_PRIORITY], "little") if _RTA_PRIORITY in attrs else 0
    oif = int.from_bytes(attrs[_RTA_OIF], "little") if _RTA_OIF in attrs else 0
    dst = attrs.get(_RTA_DST, b"")
    return (
        fam,
        table,
        dst,
        dst_len,
        tos,
        prio,
        proto,
        rtype,
        attrs.get(_RTA_GATEWAY, b""),
        oif,
        _RTA_MULTIPATH in attrs,
    )


def _attrs(m: bytes, start: int) -> dict[int, bytes]:
    attrs: dict[int, bytes] = {}
    i = start
    while i + 4 <= len(m):
        alen, atype = int.from_bytes(m[i : i + 2], "little"), int.from_bytes(m[i + 2 : i + 4], "little")
        if alen < 4:
            break
        attrs[atype & 0x3FFF] = m[i + 4 : i + alen]
        i += (alen + 3) & ~3
    return attrs


def rule_place(msg) -> tuple[int, int]:
    """(family, priority) of an encoded rule message (fib_rule_hdr + FRA_*)."""
    m = bytes(msg)
    prio = _attrs(m, 28).get(FRA_PRIORITY)
    return m[16], int.from_bytes(prio, "little") if prio else 0


def dumped_identity(r) -> tuple:
    """route_identity of a dumped route (KRoute)."""
    dst = r.dst.packed if (r.dst is not None and r.dst_len) else b""
    gw = r.gateway.packed if r.gateway is not None else b""
    return (r.family, r.table, dst, r.dst_len, r.tos, r.priority, r.protocol, r.type, gw, r.oif, bool(r.nexthops))


_RTA_DST, _RTA_OIF, _RTA_GATEWAY, _RTA_PRIORITY, _RTA_MULTIPATH, _RTA_TABLE = 1, 4, 5, 6, 9, 15


@dataclass
class JournalStep:
    """One message that undoes (or redoes) one journaled operation."""

    phase: int
    index: int  # the operation's index within its phase
    message: memoryview | bytes
    msg_type: int
    flags: int
    fine: tuple[int, ...]  # errnos that mean "already so"


def journal_steps(
    header: dict,
    blobs: list[bytes],
    phases_started: int,
    present: set | None = None,
    converged: set | None = None,
) -> list[JournalStep]:
    """The messages that undo a journaled apply whose first ``phases_started``
    phases may have reached the kernel.  ``present``:
    route_identity of every route in the kernel now (a deleted IPv4 route is
    added back only when it is not there).  ``converged``: (family, priority)
    of the rule places that converge_rules restores instead (there a rule may
    have had an identical twin, which a delete cannot tell apart)."""
    steps: list[JournalStep] = []
    phases = header["phases"]
    for p in reversed(range(min(phases_started, len(phases)))):
        ph = phases[p]
        if ph["do"] is None:
            continue
        msgs = split_messages(blobs[ph["do"]])
        explicit = dict(zip(ph["explicit"], split_messages(blobs[ph["undo"]]))) if ph.get("undo") is not None else {}
        for i in reversed(range(len(msgs))):
            if i in explicit:  # a replace: replace back with the old content
                msg = explicit[i]
                mtype, flags = message_type(msg)
                steps.append(JournalStep(p, i, msg, mtype, flags, ()))
                continue
            msg = msgs[i]
            mtype, _ = message_type(msg)
            inv = _INVERSE[mtype]
            if converged and mtype in (RTM_NEWRULE, RTM_DELRULE) and rule_place(msg) in converged:
                continue
            if inv == RTM_NEWROUTE and msg[16] == AF_INET and present is not None and route_identity(msg) in present:
                continue  # its delete never went: adding it again would make a second copy
            fine = (_errno.ENOENT, _errno.ESRCH) if inv in (RTM_DELROUTE, RTM_DELRULE) else (_errno.EEXIST,)
            steps.append(JournalStep(p, i, msg, inv, inverse_flags(mtype, msg[16]), fine))
    return steps


def present_routes(netns: str | None) -> set:
    """route_identity of every route the namespace holds now."""
    now = read_state(netns, sysctls=False)
    return {dumped_identity(r) for fam in now.routes for r in now.routes[fam]}


def send_steps(ks: KernelSocket, steps: list[JournalStep]) -> list[str]:
    """Send journal steps as one batch; the problems (none when every step
    applied or was already so)."""
    if not steps:
        return []
    outcomes = send_all(ks, raw_batch((s.message, s.msg_type, s.flags) for s in steps))
    problems = []
    for s, out in zip(steps, outcomes):
        if out.ok or (out.error in s.fine):
            continue
        verb = {RTM_NEWROUTE: "route add", RTM_DELROUTE: "route del", RTM_NEWRULE: "rule add", RTM_DELRULE: "rule del"}
        problems.append(f"phase {s.phase} operation {s.index} ({verb[s.msg_type]}): {out.iproute2_text()}")
    return problems


# ---------------------------------------------------------------- rule order


def rules_at(rules: Iterable[KRule | RuleRequest], priorities: set[int] | None) -> dict[tuple[int, int], list]:
    """{(family, priority): rules in list order}, for ``priorities`` (all if None)."""
    out: dict[tuple[int, int], list] = {}
    for r in rules:
        prio = r.priority & 0xFFFFFFFF
        if priorities is None or prio in priorities:
            out.setdefault((r.family, prio), []).append(r)
    return out


def order_repair(before: dict[tuple[int, int], list], after: dict[tuple[int, int], list], owner: int):
    """The requests that put owned rules back in their old order within each
    priority, and what cannot be restored without moving a foreign rule.

    Only where the two lists hold the same rules in another order: from the
    first difference on, every rule (old and new order) must be owned; then
    those are deleted and added again in the old order.  Rules that differ
    (missing, extra) are the state comparison's to report."""
    fix: list[Request] = []
    problems: list[str] = []
    for where, old in before.items():
        new = after.get(where, [])
        ko, kn = [_ukey(r) for r in old], [_ukey(r) for r in new]
        if ko == kn or sorted(map(repr, ko)) != sorted(map(repr, kn)):
            continue  # the same, or not just an order difference
        i = 0
        while ko[i] == kn[i]:
            i += 1
        foreign = [r for r in old[i:] if r.protocol != owner]  # the same rules as in new[i:]
        fam, prio = where
        if foreign:
            problems.append(
                f"rules at priority {prio} ({'IPv6' if fam == AF_INET6 else 'IPv4'}) are in another order than "
                f"before; putting them back would move {len(foreign)} rule(s) polroute does not own: not done"
            )
            continue
        fix += [_rule_del(r) for r in new[i:]]
        fix += [
            _as_request(r, msg_type=RTM_NEWRULE, nlmsg_flags=NLM_F_CREATE, present=r.present | bit(FRA_PRIORITY))
            for r in old[i:]
        ]
    return fix, problems


def repair_rule_order(
    ks: KernelSocket, before: dict[tuple[int, int], list], netns: str | None, owner: int
) -> list[str]:
    """Re-read the rules and restore the old order of owned rules within the
    priorities of ``before`` (see order_repair)."""
    if not before:
        return []
    fams = tuple(sorted({f for f, _ in before})) or (AF_INET, AF_INET6)
    now = read_state(netns, families=fams, sysctls=False)
    prios = {p for _, p in before}
    after = rules_at((r for fam in fams for r in now.rules.get(fam, [])), prios)
    fix, problems = order_repair(before, after, owner)
    if fix:
        outcomes = send_all(ks, fix)
        problems += [f"order repair: {o.iproute2_text()}" for o in outcomes if not o.ok]
    return problems


def converge_rules(ks: KernelSocket, before: dict[tuple[int, int], list], netns: str | None, owner: int) -> list[str]:
    """Make the owned rules at each (family, priority) of ``before`` what they
    were, whatever of an interrupted apply reached the kernel: owned rules
    there more often than before are deleted (identical copies are one rule
    to the kernel's delete, so counting is the only exact way), missing ones
    added back; then their order is restored (owned rules only)."""
    if not before:
        return []
    fams = tuple(sorted({f for f, _ in before}))
    now = read_state(netns, families=fams, sysctls=False)
    after = rules_at((r for fam in fams for r in now.rules.get(fam, [])), {p for _, p in before})
    fix: list[Request] = []
    for where, old in before.items():
        want: dict[tuple, list] = {}
        for r in old:
            if r.protocol == owner:
                want.setdefault(_ukey(r), []).append(r)
        have: dict[tuple, int] = {}
        for r in after.get(where, []):
            if r.protocol == owner:
                k = _ukey(r)
                have[k] = have.get(k, 0) + 1
                if have[k] > len(want.get(k, [])):
                    fix.append(_rule_del(r))
        for k, rs in want.items():
            for r in rs[have.get(k, 0) :]:
                fix.append(
                    _as_request(
                        r, msg_type=RTM_NEWRULE, nlmsg_flags=NLM_F_CREATE, present=r.present | bit(FRA_PRIORITY)
                    )
                )
    problems = []
    if fix:
        problems += [f"rule restore: {o.iproute2_text()}" for o in send_all(ks, fix) if not o.ok]
    return problems + repair_rule_order(ks, before, netns, owner)


def undo_journal(ks: KernelSocket, header: dict, blobs: list[bytes], started: int, netns: str | None) -> list[str]:
    """Put the namespace back as it was before a journaled apply of which the
    first ``started`` phases may have reached the kernel; the problems."""
    if header.get("cookie") is not None and ks.netns_cookie() != header["cookie"]:
        # the namespace file's inode now belongs to a new namespace: the journal's is gone
        return ["the journal belonged to a namespace that no longer exists: discarded, nothing sent"]
    order = [journal.request_from_json(r) for r in header.get("order_rules", [])]
    before = rules_at(order, None)
    steps = journal_steps(header, blobs, started, present=present_routes(netns), converged=set(before))
    problems = send_steps(ks, steps)
    if before:
        problems += converge_rules(ks, before, netns, header["owner"])
    return problems


def redo_journal(ks: KernelSocket, header: dict, blobs: list[bytes]) -> list[str]:
    """Send every phase of a journaled apply again, in order, from the state
    before it (undo_journal first): the apply completed as planned.  Stops
    at a phase that fails."""
    for k, ph in enumerate(header["phases"]):
        if ph["do"] is None:
            continue
        msgs = split_messages(blobs[ph["do"]])
        batch = raw_batch((m, *message_type(m)) for m in msgs)
        outcomes = send_all(ks, batch)
        problems = [f"phase {k} operation {i}: {o.iproute2_text()}" for i, o in enumerate(outcomes) if not o.ok]
        if problems:
            return problems
    return []


def rule_to_journal(r: KRule) -> RuleRequest:
    """A dumped rule as a plain request (what the journal keeps of rules whose order matters)."""
    base = {f.name: getattr(r, f.name) for f in dataclasses.fields(RuleRequest)}
    return RuleRequest(**base)
