"""The desired state: a desired-state text (or requests built in code) read
against the live namespace into declared rules and routes, and their normal
forms (what the kernel would dump for each).
"""

from __future__ import annotations

import dataclasses
import errno as _errno
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from polroute._core.codec import pack_route
from polroute._core.errors import PolicyError
from polroute.iproute2.batch import parse_command
from polroute.iproute2.lexer import BatchError, ParseError, batch_lines, split_args
from polroute.iproute2.rt_tables import RtTables
from polroute.live.keys import _ifname_fn, _rkey, _slot_key, _ukey
from polroute.live.lines import _Names, route_line, rule_line
from polroute.live.netlink import Request
from polroute.live.objects import RTNH_F_DEAD, RTNH_F_LINKDOWN, KernelState
from polroute.live.ops import _as_request, _gc_paused
from polroute.live.snapshot import policy_from_state
from polroute.model.policy import Policy
from polroute.types.requests import (
    AF_INET,
    AF_INET6,
    FR_ACT_GOTO,
    FRA_PRIORITY,
    FRA_PROTOCOL,
    NLM_F_CREATE,
    NLM_F_EXCL,
    NLM_F_REPLACE,
    RT_SCOPE_UNIVERSE,
    RTM_NEWADDR,
    RTM_NEWROUTE,
    RTM_NEWRULE,
    RTN_ANYCAST,
    RTN_BLACKHOLE,
    RTN_LOCAL,
    RTN_PROHIBIT,
    RTN_THROW,
    RTN_UNREACHABLE,
    AddrRequest,
    LinkRequest,
    RouteRequest,
    RuleRequest,
    bit,
)

DEFAULT_OWNER_PROTO = 245  # no name in iproute2's rt_protos; --owner changes it


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
_V6_REJECT = (RTN_BLACKHOLE, RTN_UNREACHABLE, RTN_PROHIBIT, RTN_THROW)  # fib6_is_reject: on lo


def normal_route(r: RouteRequest, lo_ifindex: int = 1) -> RouteRequest:
    """The route as the kernel dumps it after adding ``r``, where that follows
    from the request alone: the prefix masked, one-leg multipath as a plain
    nexthop, and for IPv6 metric 0 as 1024, scope universe, and reject routes
    (throw too) on lo.  What depends on the namespace - the device of a
    gateway given without ``dev`` - is left out (see :func:`kernel_routes`,
    which takes such routes from the model)."""
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
        if n.type in _V6_REJECT and not n.oif:
            n.oif = lo_ifindex
    return n


def _needs_model(n: RouteRequest) -> bool:
    """Whether the normal form of a route may differ from what the kernel
    stores: a nexthop without a device (the kernel resolves it: fib_check_nh),
    or several legs (the kernel's own leg forms)."""
    if n.nexthops:
        return True
    return not n.oif and n.type not in _V6_REJECT and n.nh_id == 0


def _state_without(state: KernelState, owner: int) -> KernelState:
    """``state`` without the rules and routes of protocol ``owner``."""
    return dataclasses.replace(
        state,
        rules={f: [r for r in rs if r.protocol != owner] for f, rs in state.rules.items()},
        routes={f: [r for r in rs if r.protocol != owner] for f, rs in state.routes.items()},
    )


def kernel_routes(
    declared: list[Declared], state: KernelState, owner: int, errors: list[str], notes: list[str] | None = None
) -> list[tuple[Declared, RouteRequest]]:
    """Each declared route with the form the kernel stores for it, in
    declared order; the refused ones are left out and their errors appended
    (``FILE:LINE: MESSAGE``, as ``polroute get --batch`` and ``ip -batch``
    print them).

    The declared routes are applied, in order, to the model of the namespace
    without polroute's objects (:func:`policy_from_state` of ``state`` minus
    the owner's rules and routes): so a route the kernel would refuse (a
    second ``route add`` for one table, prefix, tos and metric, a gateway that
    is not on-link, a prefsrc that is not local...) is refused here, before
    anything is sent.  Routes are applied before rules, as apply sends them
    (phase 0); declared rules are checked by :func:`_normal_rules`.  A route
    declared on a key that a foreign route holds is applied as a replace (the
    plan reports the conflict, or adopts it).

    The stored form is :func:`normal_route` where that is exact (a route with
    a device: the common case, and fast), else the model's own stored route
    (gateway without a device, multipath), matched by content within its key.
    If the model cannot rebuild the namespace, every route keeps its normal
    form, unchecked (a line in ``notes`` says so)."""
    lo = next((l.ifindex for l in state.links if l.kind == "loopback"), 1)
    out: list[tuple[Declared, RouteRequest]] = []
    if not declared:
        return out
    try:
        model = policy_from_state(_state_without(state, owner), sysctls=False)
    except (BatchError, PolicyError, ParseError) as e:
        if notes is not None:
            notes.append(f"declared routes not checked: the model cannot rebuild the namespace ({e})")
        return [(d, normal_route(d.req, lo)) for d in declared]
    k_names = {l.ifindex: l.name for l in state.links}
    m_index = {l.name: l.ifindex for l in model.links()}
    to_model = {k: m_index.get(name, 0) for k, name in k_names.items()}
    identity = all(k == m for k, m in to_model.items())
    foreign_keys = None
    slots_seen: set[tuple] = set()
    pending: list[int] = []  # indexes in out of the routes whose form the model gives
    for d in declared:
        n = normal_route(d.req, lo)
        key = _slot_key(n)
        q = d.req if identity else _to_model(d.req, to_model)
        try:
            packed = pack_route(q)
            if packed is not None:
                model.route_packed(q.msg_type, q.nlmsg_flags, packed)
            else:
                model.route(q)
        except PolicyError as e:
            if e.errno == _errno.EEXIST and q.nlmsg_flags & NLM_F_EXCL and key not in slots_seen:
                if foreign_keys is None:
                    foreign_keys = {_slot_key(r) for rs in state.routes.values() for r in rs if r.protocol != owner}
                if key in foreign_keys:  # the plan reports it (or adopts)
                    try:
                        model.route(_as_request(q, nlmsg_flags=NLM_F_CREATE | NLM_F_REPLACE))
                    except PolicyError as e2:
                        errors.append(f"{d.source}: {e2.iproute2_text()}")
                        continue
                    slots_seen.add(key)
                    out.append((d, n))
                    continue
            errors.append(f"{d.source}: {e.iproute2_text()}")
            continue
        slots_seen.add(key)
        if _needs_model(n):
            pending.append(len(out))
        out.append((d, n))
    if pending:
        _forms_from_model(out, pending, model, owner, {m: k for k, m in to_model.items()}, k_names)
    return out


def _to_model(r: RouteRequest, to_model: dict[int, int]) -> RouteRequest:
    """A copy of ``r`` with the model's ifindexes."""
    n = _as_request(r, oif=to_model.get(r.oif, 0) if r.oif else 0)
    for leg in n.nexthops:
        if leg.ifindex:
            leg.ifindex = to_model.get(leg.ifindex, 0)
    return n


def _forms_from_model(
    out: list[tuple[Declared, RouteRequest]],
    pending: list[int],
    model: Policy,
    owner: int,
    to_kernel: dict[int, int],
    k_names: dict[int, str],
) -> None:
    """Replace the normal forms at ``pending`` by the model's stored routes
    (kernel ifindexes), each matched within its key by content: the stored
    route whose key equals the normal form's once the form's missing devices
    are taken from it."""

    def ifname(i: int) -> str:
        return k_names.get(i, f"if{i}")

    stored: dict[tuple, list[RouteRequest]] = {}
    for fam in sorted({out[i][1].family for i in pending}):
        for s in model.routes(fam):
            if s.protocol != owner:
                continue
            s.rtm_flags &= ~(RTNH_F_DEAD | RTNH_F_LINKDOWN)
            if s.oif:
                s.oif = to_kernel.get(s.oif, s.oif)
            for leg in s.nexthops:
                leg.flags &= ~(RTNH_F_DEAD | RTNH_F_LINKDOWN)
                if leg.ifindex:
                    leg.ifindex = to_kernel.get(leg.ifindex, leg.ifindex)
            stored.setdefault(_slot_key(s), []).append(s)
    for i in pending:
        d, n = out[i]
        cands = stored.get(_slot_key(n), [])
        for j, s in enumerate(cands):
            if _fills(n, s, ifname):
                out[i] = (d, s)
                del cands[j]
                break


def _fills(n: RouteRequest, s: RouteRequest, ifname) -> bool:
    """Whether stored route ``s`` is normal form ``n`` with the devices ``n``
    leaves to the kernel filled in."""
    if len(n.nexthops) != len(s.nexthops):
        return False
    f = _as_request(n)
    if f.nexthops:
        for a, b in zip(f.nexthops, s.nexthops):
            if not a.ifindex:
                a.ifindex = b.ifindex
    elif not f.oif:
        f.oif = s.oif
    return _rkey(f, ifname) == _rkey(s, ifname)


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


_UNRESOLVED = 0x4  # FIB_RULE_UNRESOLVED: a goto whose target priority holds no rule (yet)


def rule_ident(r: RuleRequest) -> tuple:
    """A rule's identity: everything it carries but the flags that say what
    else is in the namespace - its devices' presence (iif/oif detached) and,
    for a goto, whether a rule holds the target priority (unresolved)."""
    return _ukey(r)


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
        n = _as_request(form, flags=form.flags & ~_UNRESOLVED)
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
        k = rule_ident(n)
        if k in seen:
            errors.append(
                f"{d.source}: the same rule as {seen[k].source} (the kernel keeps one: RTNETLINK answers: File exists)"
            )
            continue
        seen[k] = d
        uniq.append((d, n, k))
    return uniq


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
            k = _slot_key(r)
            verb = "append" if groups.get(k) else "add"
            groups[k] = 1
            out.append(route_line(r, verb, ifname, names))
    for fam in (AF_INET, AF_INET6):
        for r in state.rules.get(fam, []):
            if r.protocol == owner:
                text = rule_line(r, "add", names)
                out.append(f"-6 {text}" if fam == AF_INET6 else text)
    return "\n".join(out) + ("\n" if out else "")
