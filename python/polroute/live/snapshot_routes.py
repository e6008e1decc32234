"""Snapshot steps 3-4: derived-route deletions, routes, rules, retries and
reordering (see :mod:`polroute.live.snapshot`).
"""

from __future__ import annotations

from polroute.live.keys import _DEFAULT_RULES, _gkey, _key_sig, _matches_default, route_key
from polroute.live.lines import _Line, _Names, _ntop, _route_unrepresentable, names_table, route_line, rule_line
from polroute.live.objects import RTNH_F_DEAD, KRoute
from polroute.types.requests import (
    AF_INET,
    AF_INET6,
    RT_TABLE_MAIN,
    RTN_UNICAST,
    RTPROT_KERNEL,
    NexthopRequest,
)

_HELPER_METRIC = 4294967295  # a metric no restored route is likely to use
_THROWAWAY_V4 = "198.51.100.255/32"


class RouteSteps:
    """The snapshot builder's route and rule steps (mixed into
    polroute.live.snapshot._Builder, whose helpers they use)."""

    def derived_deletions(self) -> dict[int, list]:
        """Delete the derived routes the source lacks; return, per family, the
        derived routes' keys that stay (in the model's order)."""
        kept: dict[int, list] = {}
        for fam in self.families:
            model_routes = self.model.routes(fam)
            # only source routes that can share a key with a model route are keyed
            # (route_key is the costly part at 100k routes; the model has few)
            sigs = {_key_sig(r) for r in model_routes}
            have: dict[tuple, int] = {}
            for r in self.state.routes.get(fam, []):
                if _key_sig(r) in sigs:
                    k = route_key(r, self.ifname, False)
                    have[k] = have.get(k, 0) + 1
            kept[fam] = []
            for r in model_routes:
                k = route_key(r, self.model_ifname, False)
                if have.get(k, 0) > 0:
                    have[k] -= 1
                    kept[fam].append(k)
                else:
                    self.emit_or_comment(route_line(r, "del", self.model_ifname, self.names), fam)
        return kept

    def routes(self, fam: int, derived: list, which: str | None = None) -> list[tuple[KRoute, str]]:
        """Write the source's non-derived routes (``which``: "first", the groups
        without a gateway and the ``early`` ones; "second", the others; None,
        all); return the refused ones."""
        todo, gks, verbs, front, first = self._route_plan(fam, derived)
        refused: list[tuple[KRoute, str]] = []
        if which is not None:
            want = which == "first"
            todo = [item for item, g in zip(todo, gks) if first[g] == want]
        written_front: set[tuple] = set()
        done: set[int] = set()
        if fam == AF_INET:
            done = self._disabled_legs(todo, verbs, refused)
        for r, is_derived in todo:
            if is_derived or id(r) in done:
                continue
            bad = _route_unrepresentable(r)
            if bad:
                self.comment(f"not restorable ({', '.join(bad)}): {route_line(r, 'add', self.ifname, self.names)}", fam)
                continue
            verb = verbs.get(id(r), "add")
            if verb == "prepend":
                gkey = _gkey(r)
                if gkey in written_front:
                    continue
                written_front.add(gkey)
                # each prepend goes first: write the group's front in reverse
                for rr in reversed(front[gkey]):
                    if not self.emit_route(rr, "prepend", fam):
                        refused.append((rr, "prepend"))
                continue
            if not self.emit_route(r, verb, fam):
                refused.append((r, verb))
        return refused

    def _route_plan(self, fam: int, derived: list) -> tuple:
        """(todo, group key per todo item, verbs, front, first) for routes();
        computed once per family (both IPv4 passes share it)."""
        memo = self._plans.get(fam)
        if memo is not None and memo[0] is derived:
            return memo[1]
        pool: dict[tuple, int] = {}
        for k in derived:
            pool[k] = pool.get(k, 0) + 1
        # a route whose table/length/tos/metric no derived key has is not derived
        sigs = {(k[1], k[4], k[5], k[6]) for k in derived}
        todo: list[tuple[KRoute, bool]] = []  # (route, is_derived)
        for r in self.state.routes.get(fam, []):
            if (r.table, r.dst_len, r.tos, r.priority & 0xFFFFFFFF) not in sigs:
                todo.append((r, False))
                continue
            k = route_key(r, self.ifname, False)
            if pool.get(k, 0) > 0:
                pool[k] -= 1
                todo.append((r, True))
            else:
                todo.append((r, False))
        # Routes with the same table/prefix/tos/metric stay in insertion order:
        # IPv4 `append`/`prepend` put a route after/before those already there;
        # IPv6 puts any non-exclusive add after them (a gateway route joins the
        # multipath group).  Derived routes exist before any of these lines.
        gks = [_gkey(r) for r, _ in todo]
        groups: dict[tuple, list[tuple[KRoute, bool]]] = {}
        for item, g in zip(todo, gks):
            items = groups.get(g)
            if items is None:
                groups[g] = [item]
            else:
                items.append(item)
        verbs: dict[int, str] = {}  # absent: "add"
        front: dict[tuple, list[KRoute]] = {}
        first: dict[tuple, bool] = {}
        early = self.early
        for gkey, items in groups.items():
            # the groups without a gateway (and the early ones) go before the IPv4 rules
            first[gkey] = gkey in early or not any(
                r.gateway is not None or any(l.gateway is not None for l in r.nexthops) for r, d in items if not d
            )
            if len(items) == 1:
                continue  # (not derived: "add"; derived: skipped)
            first_derived = next((i for i, (_, d) in enumerate(items) if d), None)
            if first_derived is None:
                for r, _ in items[1:]:
                    verbs[id(r)] = "append"
                continue
            for i, (r, d) in enumerate(items):
                if d:
                    continue
                if i < first_derived and fam == AF_INET:
                    verbs[id(r)] = "prepend"
                    front.setdefault(gkey, []).append(r)
                else:
                    verbs[id(r)] = "append"
        plan = (todo, gks, verbs, front, first)
        self._plans[fam] = (derived, plan)
        return plan

    def _disabled_legs(self, todo, verbs, refused) -> set[int]:
        """Removing a device's last IPv4 address disables IPv4 on it: routes
        through it go, and multipath legs through it stay, dead.  When the
        source has such legs on an up device without IPv4 addresses, those
        routes are added first and the device is disabled the same way (a
        throwaway address added and deleted); the other routes come after."""
        st = self.state
        with4 = {a.ifindex for a in st.addrs if a.family == AF_INET}
        dead = set()
        for r, d in todo:
            for leg in r.nexthops:
                link = st.link_by_index(leg.ifindex)
                if (
                    not d
                    and leg.flags & RTNH_F_DEAD
                    and link is not None
                    and link.up
                    and leg.ifindex not in with4
                    and self.model.has_link(link.name)
                ):
                    dead.add(leg.ifindex)
        if not dead:
            return set()
        first = [r for r, d in todo if not d and any(leg.ifindex in dead for leg in r.nexthops)]
        self.comment(
            "multipath legs through devices whose IPv4 was disabled (last address "
            "deleted): add the routes, then disable it the same way",
            AF_INET,
        )
        before = self._model_keys()
        for ifindex in sorted(dead):
            self.emit_or_comment(f"addr add {_THROWAWAY_V4} dev {st.ifname(ifindex)}", AF_INET)
        for r in first:
            if not self.emit_route(r, verbs.get(id(r), "add"), AF_INET):
                refused.append((r, verbs.get(id(r), "add")))
        for ifindex in sorted(dead):
            self.emit_or_comment(f"addr del {_THROWAWAY_V4} dev {st.ifname(ifindex)}", AF_INET)
        self._re_add_flushed(before, verbs, refused)
        return {id(r) for r in first}

    def _model_keys(self) -> dict[tuple, int]:
        """The model's IPv4 route keys, counted."""
        keys: dict[tuple, int] = {}
        for r in self.model.routes(AF_INET):
            k = route_key(r, self.model_ifname, False)
            keys[k] = keys.get(k, 0) + 1
        return keys

    def _re_add_flushed(self, before: dict[tuple, int], verbs, refused) -> None:
        """Deleting the throwaway address (the device's last IPv4 one) makes
        the kernel flush the routes through the device (fib_disable_ip): the
        ones written before it (routes without gateways, written in the first
        pass) are written again (POLROUTE_SCENARIO=29262017651935:4)."""
        lost = dict(before)
        for k, n in self._model_keys().items():
            if k in lost:
                lost[k] -= n
        lost = {k: n for k, n in lost.items() if n > 0}
        if not lost:
            return
        self.comment("the routes through those devices that the address deletion flushed, again", AF_INET)
        for r in self.state.routes.get(AF_INET, []):
            k = route_key(r, self.ifname, False)
            if lost.get(k, 0) > 0:
                lost[k] -= 1
                if not self.emit_route(r, verbs.get(id(r), "add"), AF_INET):
                    refused.append((r, verbs.get(id(r), "add")))

    def emit_route(self, r: KRoute, verb: str, fam: int, v6_batch: bool = False) -> bool:
        """Write a route.  The kernel checks a route's gateways and prefsrc
        only when it is added; the source may hold routes whose gateway is no
        longer on-link or whose prefsrc is no longer local (their address went
        away after).  When the model refuses a route, the line is retried
        with what it lacked made true for the time of the add:

        * a gateway (no longer on-link, or - onlink - covered by a route
          added later through another device): a host route to it through its
          device in the route's table, deleted after;
        * an IPv4 prefsrc: the address as a /32 on a device that keeps other
          IPv4 addresses, deleted after (IPv4 sweeps stale prefsrcs from table
          main only, as the source's kernel did);
        * an IPv6 prefsrc: the address on a spare veth pair that is deleted at
          the end and takes the address with it (deleting the address itself
          would also drop the routes' prefsrc, which going with a link does not).
        """
        text = route_line(r, verb, self.ifname, self.names)
        if self.emit_route_line(r, verb, text, fam, v6_batch):
            return True
        err = self.last_error
        gw = self._gateway_helpers(r)
        src = self._source_helper(r, fam)
        for helpers in ([[gw]] if gw else []) + ([[src]] if src else []) + ([[gw, src]] if gw and src else []):
            probe, mark, spare = self.model.clone(), len(self.lines), self.spare
            ok = True
            for h in helpers:
                ok = ok and h["setup"](v6_batch) and all(self.emit(x, fam, v6_batch) for x in h["add"]())
            ok = ok and self.emit(text, fam, v6_batch)
            for h in helpers:
                ok = ok and all(self.emit(x, fam, v6_batch) for x in h["del"])
            if ok:
                self.lines.insert(
                    mark,
                    _Line(
                        f"# {text.split()[2]}: " + " and ".join(h["why"] for h in helpers) + " for the time of the add",
                        fam,
                        v6_batch,
                        comment=True,
                    ),
                )
                return True
            self.model, self.model_names, self.spare = probe, {}, spare
            del self.lines[mark:]
        self.last_error = err
        return False

    def _gateway_helpers(self, r: KRoute) -> dict | None:
        legs = r.nexthops or [NexthopRequest(r.gateway, r.oif, 1, r.rtm_flags)]
        adds = []
        for leg in legs:
            # (onlink too: its check fails when a route added later covers the
            # gateway through another device or as a reject route)
            if leg.gateway is None or not leg.ifindex:
                continue
            if leg.gateway.version == 6 and leg.gateway.is_link_local:
                continue
            plen = 32 if leg.gateway.version == 4 else 128
            h = (
                f"{_ntop(leg.gateway)}/{plen} dev {self.ifname(leg.ifindex)} "
                f"table {names_table(r.table)} metric {_HELPER_METRIC}"
            )
            if h not in adds:
                adds.append(h)
        if not adds:
            return None
        # append: two legs may have the same gateway through different devices
        return {
            "setup": lambda v6: True,
            "add": lambda: [f"route append {h}" for h in adds],
            "del": [f"route del {h}" for h in adds],
            "why": "each gateway gets a host route through its device",
        }

    def _source_helper(self, r: KRoute, fam: int) -> dict | None:
        if r.prefsrc is None:
            return None
        st = self.state
        src = _ntop(r.prefsrc)
        why = "its prefsrc, no longer local, is made local"
        if fam == AF_INET:
            if any(str(a.local) == str(r.prefsrc) for a in st.addrs):
                return None
            with4 = [
                l
                for l in st.links
                if any(a.ifindex == l.ifindex and a.family == AF_INET for a in st.addrs) and self.model.has_link(l.name)
            ]
            if not with4:
                return None
            dev = with4[0].name
            dels = [f"addr del {src}/32 dev {dev}"]
            if r.table == RT_TABLE_MAIN:
                # `addr del` sweeps main's routes using the address as src unless it is
                # still a local address; a second local route (not proto kernel, so
                # fib_del_ifaddr leaves it) keeps it local for the delete
                # (POLROUTE_SCENARIO=9520407219778:4)
                guard = f"local {src}/32 dev {dev} table local metric {_HELPER_METRIC}"
                dels = [f"route add {guard}"] + dels + [f"route del {guard}"]
            return {"setup": lambda v6: True, "add": lambda: [f"addr add {src}/32 dev {dev}"], "del": dels, "why": why}

        def setup(v6_batch: bool) -> bool:
            if self.spare:
                return True
            names = {l.name for l in st.links}
            i = 0
            while f"prsnap{i}" in names or f"prsnap{i + 1}" in names:
                i += 2
            spare = (f"prsnap{i}", f"prsnap{i + 1}")
            if not self.emit(f"link add {spare[0]} type veth peer name {spare[1]}", 0, v6_batch):
                return False
            self.spare = spare
            return True

        if any(str(a.local) == str(r.prefsrc) for a in st.addrs):
            return None
        return {"setup": setup, "add": lambda: [f"addr add {src}/128 dev {self.spare[0]} nodad"], "del": [], "why": why}

    def rules(self, fam: int) -> None:
        st = self.state
        rules = st.rules.get(fam, [])
        v6 = fam == AF_INET6
        kept = set()
        for pref, table in _DEFAULT_RULES[fam]:
            for i, r in enumerate(rules):
                if _matches_default(r, pref, table):
                    # a default rule stays only if no other rule of its priority precedes it
                    if not any((x.priority & 0xFFFFFFFF) == pref for x in rules[:i]):
                        kept.add(i)
                    break
        kept_defaults = {(rules[i].priority, rules[i].table) for i in kept}
        for pref, table in _DEFAULT_RULES[fam]:
            if (pref, table) not in kept_defaults:
                self.emit_or_comment(f"rule del pref {pref} lookup {_Names.table(table)}", fam, v6)
        for i, r in enumerate(rules):
            if i in kept:
                continue
            text = rule_line(r, "add", self.names)
            if r.unsupported:
                self.comment(f"not restorable ({', '.join(r.unsupported)}): {text}", fam, v6)
                continue
            self.emit_or_comment(text, fam, v6)
        if (
            not v6
            and self.state.v4_merged is False
            and not any(l.family == AF_INET and l.text.startswith("rule ") for l in self.lines)
        ):
            # local/main were unmerged in the source by a rule change since undone
            self.comment(
                "the source's IPv4 local and main tables are unmerged (a rule was "
                "changed and changed back): delete and re-add the last default rule",
                fam,
            )
            self.emit_or_comment("rule del pref 32767 lookup default", fam)
            self.emit_or_comment("rule add pref 32767 lookup default protocol kernel", fam)

    def retry(self, fam: int, refused: list[tuple[KRoute, str]], v6_batch: bool, early: bool = False) -> None:
        pending = list(refused)
        while pending:
            left = []
            for r, verb in pending:
                if not self.emit_route(r, verb, fam, v6_batch):
                    left.append((r, verb))
            if len(left) == len(pending):
                break
            pending = left
        for r, verb in pending:
            if early:
                self.needs_early.add(_gkey(r))
            self.emit_route(r, verb, fam, v6_batch)  # sets last_error
            self.comment(
                f"not restorable ({' '.join(self.last_error.split())}): {route_line(r, verb, self.ifname, self.names)}",
                fam,
                v6_batch,
            )

    def reorder(self, fam: int, v6_batch: bool) -> None:
        """Routes the kernel keeps in insertion order (same table, prefix, tos,
        metric) may have come out in another order than the source's: which of
        two devices' addresses or link-ups came first is not in any dump.  Such a
        group is put right by deleting its members from the first difference on
        and appending them again in the source's order (a route re-added with
        ``proto kernel`` dumps exactly as the kernel's own)."""

        def grouped(routes, ifname, only):
            out: dict[tuple, list] = {}
            for r in routes:
                g = _gkey(r)
                if g in only:
                    out.setdefault(g, []).append((route_key(r, ifname, False), r))
            return out

        # a group can only need putting back if both sides have the same number
        # (>= 2) of routes in it: key only those (most groups are single routes)
        src_routes = self.state.routes.get(fam, [])
        n_want: dict[tuple, int] = {}
        for r in src_routes:
            g = _gkey(r)
            n_want[g] = n_want.get(g, 0) + 1
        cand = {g for g, n in n_want.items() if n >= 2}
        if not cand:
            return
        # only the tables that hold such groups are read back from the model
        model_routes = self._model_routes(fam, {g[0] for g in cand})
        n_have: dict[tuple, int] = {}
        for r in model_routes:
            g = _gkey(r)
            if g in cand:
                n_have[g] = n_have.get(g, 0) + 1
        multi = {g for g in cand if n_have.get(g) == n_want[g]}
        want = grouped(src_routes, self.ifname, multi)
        have = grouped(model_routes, self.model_ifname, multi)
        for gkey, a in want.items():
            m = have.get(gkey, [])
            ka, km = [k for k, _ in a], [k for k, _ in m]
            if ka == km or sorted(ka, key=repr) != sorted(km, key=repr):
                continue
            i = next(j for j in range(len(ka)) if ka[j] != km[j])
            if any(_route_unrepresentable(r) for _, r in a[i:]):
                continue
            probe, mark = self.model.clone(), len(self.lines)
            ok = all(self.emit(route_line(r, "del", self.model_ifname, self.names), fam, v6_batch) for _, r in m[i:])
            ok = ok and all(
                self.emit(route_line(r, "append", self.ifname, self.names), fam, v6_batch) for _, r in a[i:]
            )
            if ok:
                now = [
                    k for k, _ in grouped(self.model.routes(fam, gkey[0] or 0), self.model_ifname, {gkey}).get(gkey, [])
                ]
                ok = now == ka
            if not ok:
                self.model, self.model_names = probe, {}
                del self.lines[mark:]
                continue
            self.lines.insert(
                mark,
                _Line(
                    f"# {route_line(a[0][1], 'add', self.ifname, self.names).split()[2 if a[0][1].type == RTN_UNICAST else 3]}"  # noqa: E501
                    f" (table {names_table(gkey[0])}): put back in the source's order",
                    fam,
                    v6_batch,
                    comment=True,
                ),
            )

    def remove_extras(self, v6_batch: bool) -> None:
        """Links that were up only for the restore may leave routes the source
        does not have (a peer's ff00::/8 made at carrier-on): delete them."""
        for fam in self.families:
            want: dict[tuple, int] = {}
            for r in self.state.routes.get(fam, []):
                k = route_key(r, self.ifname, False)
                want[k] = want.get(k, 0) + 1
            for r in self.model.routes(fam):
                k = route_key(r, self.model_ifname, False)
                if want.get(k, 0) > 0:
                    want[k] -= 1
                    continue
                if r.protocol != RTPROT_KERNEL:
                    continue  # only what the kernel made on its own is a side effect
                self.emit_or_comment(route_line(r, "del", self.model_ifname, self.names), fam, v6_batch)
