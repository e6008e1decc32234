"""Reading live state: one network namespace's links, addresses, rules and
routes, as records, as ``ip -batch`` text that recreates them, and as a
:class:`~polroute.Policy`.

* :func:`read_state` dumps the current namespace (or ``netns=NAME``) in C
  (:mod:`polroute.live.dump`: RTM_GETLINK/GETADDR/GETRULE/GETROUTE, both
  families, every table; pyroute2 stays as the tests' reference reader)
  and reads the sysctls the model knows from ``/proc/sys/net`` inside it.
  Rules and routes become the dataclasses of :mod:`polroute.types.requests`
  (:class:`KRule`, :class:`KRoute`: the same shape as
  :meth:`Policy.rules` / :meth:`Policy.routes` give, plus what the model
  cannot represent), links and addresses :class:`KLink` / :class:`KAddr`.
* :func:`snapshot_text` / :func:`snapshot_batches` turn a state into ip batch
  text; :func:`policy_from_state` applies that text (and the sysctls) to a
  fresh Policy; :func:`compare_with_policy` says where a Policy differs.

What the text contains, in order.  Every line is applied to a model
namespace as it is written; what the model refuses is retried as described
below, and written as a ``# not restorable (ERROR): LINE`` comment if it
still fails.

1. links in ifindex order (veth pairs once, the lower ifindex as the peer so
   that the pair gets the same relative ifindexes), groups, and
   ``addrgenmode none`` on every link but lo, so that the new namespace makes
   no link-local address of its own: the source's link-local addresses are
   addresses like any other and are added explicitly (a MAC-derived one could
   not be reproduced anyway);
2. addresses (IPv6 with ``nodad``; each device's in the order that recreates
   its list, devices interleaved so that an address on several devices gets
   its local routes in the source's order), then ``link set ... up`` in the
   order that recreates the IPv6 ``ff00::/8`` routes' order (a link whose
   route predates its carrier gets its newest IPv6 address after it is up);
3. ``route del`` of the routes the kernel derived from 1-2 that the source no
   longer has; the derived routes themselves are not written.  "Derived" is
   decided by the model: links, addresses and link states applied to a fresh
   Policy, whose routes are then the kernel's own (so a user route that merely
   looks like a kernel one - ``proto kernel``, a local route in table 100 - is
   kept);
4. routes, in dump order (routes sharing table/prefix/tos/metric with
   ``append``/``prepend`` so that their order is the source's): IPv4 routes
   without gateways, the IPv4 rules (missing default rules deleted, the others
   added with explicit ``pref`` in dump order), the IPv4 routes with gateways
   (their nexthops resolve against the final rules and routes, as if added
   now); the IPv6 routes before the IPv6 rules.  A route refused because its
   gateway is no longer on-link or its prefsrc no longer local (the kernel
   checks those only when a route is added) is added with a host route to the
   gateway / the address made local for the time of the add; a route refused
   before the rules exist is retried after them (and the other way round);
   multipath legs through down links or links whose IPv4 was disabled are
   recreated by the same events (the link is up for the restore and goes down
   at the end; a throwaway address is added and deleted); a group of routes
   that still came out in another order is deleted and appended again.

``ip -batch`` cannot make an IPv6 rule (a rule's family comes only from
``ip -6``), so IPv6 rules need ``ip -6 -batch``: :func:`snapshot_batches`
returns the two batches, :func:`snapshot_text` either one family's batch or
the whole state as one text whose IPv6-rule lines start with ``-6`` (polroute
reads that; ``ip -batch`` stops there).  Sysctls cannot be set by ``ip``;
they are listed as ``# sysctl -w KEY=VALUE`` comments, to apply after the
batches (:attr:`KernelState.sysctl_lines`)."""

from __future__ import annotations

import contextlib

from polroute._core.errors import PolicyError
from polroute.iproute2.batch import apply_batch, apply_line
from polroute.iproute2.lexer import ParseError
from polroute.iproute2.rt_tables import RtTables
from polroute.live.keys import route_key
from polroute.live.line_requests import _VERB_FLAGS, route_line_packed, route_line_request
from polroute.live.lines import _Line, _Names
from polroute.live.objects import KernelState, KLink, KRoute
from polroute.live.snapshot_links import LinkSteps
from polroute.live.snapshot_routes import RouteSteps
from polroute.model.policy import Policy
from polroute.types.requests import (
    AF_INET,
    AF_INET6,
    RTM_NEWROUTE,
    RouteRequest,
)

# The fast path (apply route_line_request instead of parsing route lines);
# False: parse every line (the reference the tests compare the fast path with).
FAST_ROUTES = True
# Tests: also parse each route line and compare with the fast request (raises
# AssertionError on a difference); counts in FAST_CHECK_COUNTS.
FAST_CHECK = False
FAST_CHECK_COUNTS = {"fast": 0, "fallback": 0}


def _check_route_request(
    model: Policy,
    tables: RtTables,
    text: str,
    req: RouteRequest | None,
    v6_batch: bool,
    packed: bytes | None = None,
    full: RouteRequest | None = None,
) -> None:
    """``packed``: route_line_packed's bytes, then ``full`` (route_line_request)
    is checked as req and the bytes against route_to_c of the parsed request."""
    from polroute._core.codec import route_to_c, struct_bytes
    from polroute.iproute2.batch import parse_command
    from polroute.iproute2.lexer import split_args

    if packed is not None:
        _check_route_request(model, tables, text, full, v6_batch)
        cmd = parse_command(split_args(text), model, tables, AF_INET6 if v6_batch else 0)
        want, _ = route_to_c(cmd.requests[0][1])
        assert struct_bytes(want) == packed, f"{text!r}: packed request differs from route_to_c of the parsed one"
        FAST_CHECK_COUNTS["packed"] = FAST_CHECK_COUNTS.get("packed", 0) + 1
        return
    try:
        cmd = parse_command(split_args(text), model, tables, AF_INET6 if v6_batch else 0)
    except (ParseError, PolicyError) as e:
        assert req is None, f"{text!r}: parse refuses it ({e}) but the fast request is {req}"
        FAST_CHECK_COUNTS["fallback"] += 1
        return
    if req is None:
        FAST_CHECK_COUNTS["fallback"] += 1
        return
    assert len(cmd.requests) == 1 and cmd.requests[0][0] == "route", (text, cmd.requests)
    want = cmd.requests[0][1]
    diff = {k: (v, getattr(req, k)) for k, v in vars(want).items() if getattr(req, k) != v}
    assert not diff, f"{text!r}: fast request differs from the parsed one (parsed, fast): {diff}"
    assert type(want.dst) is type(req.dst) and type(want.gateway) is type(req.gateway), text
    FAST_CHECK_COUNTS["fast"] += 1


class _Builder(LinkSteps, RouteSteps):
    """Builds the lines, checking each on a model namespace as it goes."""

    def __init__(self, state: KernelState, families: tuple[int, ...]):
        self.state = state
        self.families = families
        self.lines: list[_Line] = []
        self.model = Policy()
        self.tables = RtTables()  # iproute2's built-in names: what the text uses
        protos = {r.protocol for f in families for r in state.routes.get(f, [])}
        protos |= {r.protocol for f in families for r in state.rules.get(f, []) if r.protocol}
        scopes = {r.scope for f in families for r in state.routes.get(f, [])}
        self.names = _Names(protos, scopes)
        self.model_names: dict[int, str] = {}
        self._src_names = {l.ifindex: l.name for l in state.links}
        self._model_index: dict[str, int] = {}
        self._index_for: dict | None = None
        self._plans: dict[int, tuple] = {}
        self.spare: tuple[str, str] | None = None
        self.early: set[tuple] = set()  # IPv4 gateway groups to add before the rules
        self.needs_early: set[tuple] = set()
        self.temp_up: list[KLink] = []
        self.late6: set[int] = set()

    # ---- helpers ------------------------------------------------------------
    def ifname(self, ifindex: int) -> str:
        name = self._src_names.get(ifindex)
        return name if name is not None else self.state.ifname(ifindex)

    def _model_ifindex(self, src_ifindex: int) -> int:
        """The model's ifindex of the source device's name (0: none)."""
        if self._index_for is not self.model_names or not self.model_names:
            links = self.model.links()
            self.model_names = {l.ifindex: l.name for l in links}
            self._model_index = {l.name: l.ifindex for l in links}
            self._index_for = self.model_names
        return self._model_index.get(self.ifname(src_ifindex), 0)

    def emit_route_line(self, r: KRoute, verb: str, text: str, fam: int, v6_batch: bool) -> bool:
        """emit(text) for ``text = route_line(r, verb, ...)``, applying the
        request it makes directly when route_line_request covers it."""
        packed = req = None
        if FAST_ROUTES:
            packed = route_line_packed(r, verb, self._model_ifindex, v6_batch)
            if packed is None:
                req = route_line_request(r, verb, self._model_ifindex, v6_batch)
        if FAST_CHECK:
            _check_route_request(
                self.model,
                self.tables,
                text,
                req,
                v6_batch,
                packed,
                route_line_request(r, verb, self._model_ifindex, v6_batch),
            )
        if req is None and packed is None:
            if not self.emit(text, fam, v6_batch):
                return False
        else:
            try:
                if packed is not None:
                    self.model.route_packed(RTM_NEWROUTE, _VERB_FLAGS[verb], packed)
                else:
                    self.model.route(req)
            except PolicyError as e:
                self.last_error = e.iproute2_text()
                return False
            self.lines.append(_Line(text, fam, v6_batch))
        self.lines[-1].route = (r, verb)
        return True

    def model_ifname(self, ifindex: int) -> str:
        name = self.model_names.get(ifindex)
        if name is None:
            self.model_names = {l.ifindex: l.name for l in self.model.links()}
            name = self.model_names.get(ifindex, f"if{ifindex}")
        return name

    def comment(self, text: str, family: int = 0, v6_batch: bool = False) -> None:
        self.lines.append(_Line("# " + text, family, v6_batch, comment=True))

    def emit(self, text: str, family: int = 0, v6_batch: bool = False, check: bool = True) -> bool:
        """Append ``text`` if the model accepts it; otherwise return False
        (nothing appended).  ``check`` False appends without asking."""
        if check:
            try:
                apply_line(self.model, text, self.tables, family=AF_INET6 if v6_batch else 0)
            except (ParseError, PolicyError) as e:
                self.last_error = str(e) if isinstance(e, ParseError) else e.iproute2_text()
                return False
            self.model_names = {}
        self.lines.append(_Line(text, family, v6_batch))
        return True

    def emit_or_comment(self, text: str, family: int = 0, v6_batch: bool = False) -> bool:
        if self.emit(text, family, v6_batch):
            return True
        self.comment(f"not restorable ({' '.join(self.last_error.split())}): {text}", family, v6_batch)
        return False

    # ---- 1. links -----------------------------------------------------------

    def _model_routes(self, fam: int, tables: set) -> list[RouteRequest]:
        """The model's routes of these tables, each table's in dump order
        (all of them when that is fewer calls)."""
        if 0 in tables or len(tables) > 16:
            return self.model.routes(fam)
        return [r for t in sorted(tables) for r in self.model.routes(fam, t)]

    def sysctls_for_model(self) -> None:
        for key, value in self.state.sysctl_lines:
            with contextlib.suppress(PolicyError):
                self.model.sysctl(key, value)

    def build(self) -> list[_Line]:
        self.links()
        self.plan_link_states()
        self.addresses()
        self.link_states()
        self.lo_address_deletions()
        # derived routes: the model now has what the kernel derives from links,
        # addresses and link states (sysctl-driven ones come with the sysctls)
        probe = self.model.clone()
        self.sysctls_for_model()
        derived_all = {f: [route_key(r, self.model_ifname, False) for r in self.model.routes(f)] for f in self.families}
        self.model = probe
        self.model_names = {}
        kept = self.derived_deletions()
        for fam in self.families:
            # sysctl-derived routes (e.g. IPv6 anycast with forwarding) appear only
            # once the sysctls are set, after the batch: never write them
            extra = list(derived_all[fam])
            for k in kept[fam]:
                if k in extra:
                    extra.remove(k)
            kept[fam] = kept[fam] + extra
        # IPv4: routes without gateways, the rules, then the routes with gateways.
        # A gateway's nexthop keeps the scope of what the gateway resolved to
        # when the route was added (a local route: host, the gateway is then not
        # used; a link route: link), which no dump shows; resolving against the
        # final rules and routes is the reading "as if configured now".  Routes
        # that only the rules of a fresh namespace let through go first (early).
        if AF_INET in self.families:
            refused4 = self.routes(AF_INET, kept[AF_INET], "first")
        if AF_INET6 in self.families:
            refused6 = self.routes(AF_INET6, kept[AF_INET6])
        if AF_INET in self.families:
            self.rules(AF_INET)
            late = self.routes(AF_INET, kept[AF_INET], "second")
            self.retry(AF_INET, refused4, v6_batch=False)
            self.retry(AF_INET, late, v6_batch=False, early=True)
            self.reorder(AF_INET, v6_batch=False)
        if AF_INET6 in self.families:
            self.rules(AF_INET6)
            # IPv6 routes waiting for rules wait for the IPv6 rules: `ip -6 -batch`
            self.retry(AF_INET6, refused6, v6_batch=True)
            self.reorder(AF_INET6, v6_batch=True)
        v6 = any(l.v6_batch and not l.comment for l in self.lines)
        if self.spare:
            self.emit_or_comment(f"link del {self.spare[0]}", 0, v6)
        if self.temp_up:
            for link in self.temp_up:
                self.emit_or_comment(f"link set {link.name} down", 0, v6)
            for link in self.temp_up:
                for _, a in self._addr_items(link, AF_INET6) if AF_INET6 in self.families else ():
                    self._emit_addr(link, a, v6)
        if self.temp_up or self.spare:
            self.remove_extras(v6)
        for key, value in self.state.sysctl_lines:
            self.comment(f"sysctl -w {key}={value}")
        return self.lines


def _build(state: KernelState, families: tuple[int, ...]) -> list[_Line]:
    fams = tuple(f for f in (AF_INET, AF_INET6) if f in families and f in state.routes)
    if not fams:
        fams = tuple(f for f in (AF_INET, AF_INET6) if f in families)
    import gc

    was = gc.isenabled()
    gc.disable()  # many small tuples, no cycles: the cyclic collector only costs here
    try:
        return _build_lines(state, fams)
    finally:
        if was:
            gc.enable()


def _build_lines(state: KernelState, fams: tuple[int, ...]) -> list[_Line]:
    early: set[tuple] = set()
    for _ in range(3):
        b = _Builder(state, fams)
        b.early = set(early)
        lines = b.build()
        if not b.needs_early - early:
            return lines
        early |= b.needs_early  # refused after the rules: try them before
    return lines


def snapshot_batches(state: KernelState) -> list[tuple[list[str], str]]:
    """The whole state (both families) as ``[(ip options, batch text), ...]``:
    first a batch for ``ip -batch`` (links, addresses, routes of both families,
    IPv4 rules), then - when IPv6 rules differ from a new namespace's - one for
    ``ip -6 -batch`` (IPv6 rules and the routes that need them).  Run them in
    order, then set :attr:`KernelState.sysctl_lines`."""
    lines = _build(state, (AF_INET, AF_INET6))
    first = [l.text for l in lines if not l.v6_batch]
    second = [l.text for l in lines if l.v6_batch]
    out = [([], "\n".join(first) + "\n")]
    if second:
        out.append((["-6"], "\n".join(second) + "\n"))
    return out


def snapshot_text(state: KernelState, family: int | None = None, header: bool = True) -> str:
    """``family`` AF_INET: one text for ``ip -batch`` with the links and the
    IPv4 state; AF_INET6: one text for ``ip -6 -batch`` with the links and the
    IPv6 state.  None: the whole state as one text, the lines that need
    ``ip -6`` (IPv6 rules) last and prefixed ``-6`` - polroute's reader takes
    that prefix per line; ``ip -batch`` does not (use the family texts, or
    :func:`snapshot_batches`)."""
    fams = (AF_INET, AF_INET6) if family is None else (family,)
    lines = _build(state, fams)
    where = f"namespace {state.netns}" if state.netns else "the current namespace"
    out = []
    if header:
        if family == AF_INET:
            out.append(f"# polroute snapshot of {where}, IPv4: run with `ip -batch`")
        elif family == AF_INET6:
            out.append(f"# polroute snapshot of {where}, IPv6: run with `ip -6 -batch`")
        else:
            out.append(
                f"# polroute snapshot of {where}; lines starting with -6 need "
                "`ip -6 -batch` (use -4 / -6 for ip's own batches)"
            )
    if family is None:
        out += [l.text for l in lines if not l.v6_batch]
        for l in lines:
            if l.v6_batch:
                out.append(l.text if l.comment or not l.text.startswith("rule ") else "-6 " + l.text)
    else:
        out += [l.text for l in lines]
    return "\n".join(out) + "\n"


def policy_from_state(state: KernelState, sysctls: bool = True) -> Policy:
    """A Policy built by applying the snapshot batches (and the sysctls)."""
    p = Policy()
    if FAST_ROUTES:
        lines = _build(state, (AF_INET, AF_INET6))
        for v6 in (False, True):
            batch = [l for l in lines if l.v6_batch == v6]
            if batch or not v6:
                _apply_lines(p, state, batch, v6)
    else:
        for opts, text in snapshot_batches(state):
            apply_batch(p, text, "snapshot", family=AF_INET6 if "-6" in opts else 0)
    if sysctls:
        for key, value in state.sysctl_lines:
            with contextlib.suppress(PolicyError):
                p.sysctl(key, value)
    return p


def _apply_lines(policy: Policy, state: KernelState, lines: list[_Line], v6_batch: bool) -> None:
    """apply_batch(policy, the lines' batch text, "snapshot") with the route
    lines applied as route_line_request (what parsing them gives; see
    _Builder.emit_route_line) and the others parsed: all or nothing, the
    same BatchError on a refused line."""
    from polroute.iproute2.batch import parse_command
    from polroute.iproute2.lexer import BatchError, split_args

    work, tables = policy.clone(), RtTables()
    names = {l.ifindex: l.name for l in state.links}
    index: dict[str, int] = {}

    def model_ifindex(src: int) -> int:
        if not index:
            index.update((l.name, l.ifindex) for l in work.links())
        return index.get(names.get(src, f"if{src}"), 0)

    for lineno, line in enumerate(lines, 1):
        if line.comment:
            continue
        try:
            packed = req = None
            if line.route is not None:
                r, verb = line.route
                packed = route_line_packed(r, verb, model_ifindex, v6_batch)
                if packed is None:
                    req = route_line_request(r, verb, model_ifindex, v6_batch)
            if packed is not None:
                work.route_packed(RTM_NEWROUTE, _VERB_FLAGS[verb], packed)
            elif req is not None:
                work.route(req)
            else:
                parse_command(split_args(line.text), work, tables, AF_INET6 if v6_batch else 0).apply(work)
                index.clear()  # links may have changed
        except ParseError as e:
            raise BatchError("snapshot", lineno, str(e), line.text, e) from None
        except PolicyError as e:
            raise BatchError("snapshot", lineno, e.iproute2_text(), line.text, e) from None
    policy._swap(work)
