"""Comparing states: a dump with a Policy (:func:`compare_with_policy`) and
two dumps (:func:`state_differences`).
"""

from __future__ import annotations

from collections.abc import Iterable

from polroute.live.keys import _group_key, _ifname_fn, _rkey, _ukey, route_key, rule_key
from polroute.live.lines import _Names, route_line, rule_line
from polroute.live.objects import RTNH_F_DEAD, KernelState
from polroute.model.policy import Policy
from polroute.types.requests import (
    AF_INET,
    AF_INET6,
)


def compare_with_policy(state: KernelState, policy: Policy, families: Iterable[int] = (AF_INET, AF_INET6)) -> list[str]:
    """Differences between the dumped rules/routes and a Policy's (empty when
    equal).  Rules are compared in order.  Routes are compared table by table
    as a multiset plus, within each group the kernel keeps in insertion order
    (same prefix, tos, metric), in order; the order of different prefixes is
    the dump's walk of the kernel's trie (and of tables, its hash), which the
    model does not copy.  The ``dead`` flag is ignored: the kernel computes it
    when it dumps a linkdown nexthop of a device with
    ignore_routes_with_linkdown."""
    names = {l.ifindex: l.name for l in policy.links()}
    pname = lambda i: names.get(i, f"if{i}")  # noqa: E731

    def groups(routes, ifname):
        out: dict[tuple, list] = {}
        for r in routes:
            k = route_key(r, ifname)
            legs = tuple(leg[:3] + (leg[3] & ~RTNH_F_DEAD,) for leg in k[10])
            out.setdefault(_group_key(r), []).append(k[:10] + (legs, k[11] & ~RTNH_F_DEAD) + k[12:])
        return out

    out = []
    for fam in families:
        if fam not in state.routes:
            continue
        a = [rule_key(r) for r in state.rules.get(fam, [])]
        b = [rule_key(r) for r in policy.rules(fam)]
        if a != b:
            out.append(f"rules (family {fam}): kernel {a} / model {b}")
        ga, gb = groups(state.routes[fam], state.ifname), groups(policy.routes(fam), pname)
        for g in sorted(set(ga) | set(gb), key=repr):
            a, b = ga.get(g, []), gb.get(g, [])
            if a != b:
                out.append(
                    f"routes (family {fam}, table {g[0]}, {g[1]}/{g[2]} tos {g[3]} "
                    f"metric {g[4]}): kernel {a} / model {b}"
                )
    return out


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
