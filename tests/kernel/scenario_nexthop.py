"""Nexthop objects in the random scenarios (scenario.py): ``ip nexthop``
singles (gateway, device, blackhole, onlink), groups with weights, routes
with ``nhid`` in several tables, and later deletions, replacements and
flushes; a few lines are deliberately refused (unknown ids, blackholes in
groups, nested groups, IPv6 routes through IPv4 objects, down devices).

It draws from its own random stream (seeded from the scenario's seed), so a
scenario it leaves alone is exactly the scenario it was before it existed
(replays of recorded seeds stay valid).  IPv4 scenarios run in plain
``ip -batch``, where an object's family follows its gateway and groups are
possible; IPv6 scenarios run in ``ip -6 -batch`` (every object is IPv6 and a
group line is refused: "Invalid family for group"), except those without
rules, which switch to a plain batch so that IPv6 groups appear too.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass, field


@dataclass
class NexthopPlan:
    singles: dict[int, int] = field(default_factory=dict)  # id -> 4 | 6 (family), 0 = blackhole
    groups: dict[int, list[int]] = field(default_factory=dict)  # id -> member ids
    prefixes: list = field(default_factory=list)  # destinations of nhid routes
    late: list[str] = field(default_factory=list)  # lines for after the scenario's own late changes


def _gw(gen, rn: random.Random, fam: int):
    """A gateway on a connected subnet of a link with carrier, and that link."""
    cands = []
    for l in gen.up_links():
        if not gen.carrier(l):
            continue
        for a in l.v4 if fam == 4 else l.v6:
            if a.network.num_addresses >= 4:
                cands.append((l, a))
    if cands and rn.random() < 0.9:
        l, a = rn.choice(cands)
        net = a.network
        for _ in range(8):
            gw = net[rn.choice([net.num_addresses - 2, 5 % net.num_addresses, rn.randrange(net.num_addresses)])]
            if gw != a.ip:
                return gw, l
        return net[1], l
    l = rn.choice(gen.live_links()) if gen.live_links() else None
    gw = ipaddress.ip_address(rn.choice(["10.77.0.1", "192.0.2.1"] if fam == 4 else ["2001:db8:77::1", "fe80::1"]))
    return gw, l


def nexthop_block(gen) -> NexthopPlan | None:
    """Emit nexthop objects and nhid routes into gen's scenario (or nothing)."""
    rn = random.Random(gen.sc.seed * 7919 + gen.fam)
    if rn.random() < 0.6 or not gen.live_links():
        return None
    plan = NexthopPlan()
    sc = gen.sc
    sc.tags.add("nexthop")
    if gen.fam == 6 and gen.no_rules and rn.random() < 0.6:
        sc.batch_family = 0  # IPv6 groups need a family-less batch
        sc.tags.add("nexthop-unspec-batch")
    plain = sc.batch_family == 0
    nid = rn.choice([1, 10, 100])
    for _ in range(rn.randrange(2, 9)):
        kind = rn.choices(["gw", "dev", "blackhole", "onlink", "other"], [6, 2, 1, 1, 2])[0]
        fam = gen.fam
        if kind == "other" and plain:
            fam = 10 - gen.fam  # the other family: objects for mixed groups
            kind = "gw"
        if kind == "gw":
            gw, l = _gw(gen, rn, fam)
            if l is None:
                continue
            line = f"nexthop add id {nid} via {gw} dev {l.name}"
        elif kind == "dev":
            l = rn.choice(gen.live_links())
            line = f"nexthop add id {nid} dev {l.name}"
            fam = 4 if plain else 6
        elif kind == "blackhole":
            line = f"nexthop add id {nid} blackhole"
            fam = 0
        else:
            l = rn.choice(gen.live_links())
            gw = "198.51.100.1" if fam == 4 else "2001:db8:77::1"
            line = f"nexthop add id {nid} via {gw} dev {l.name} onlink"
        if rn.random() < 0.08:
            line += " proto static"
        gen.emit(line)
        plan.singles[nid] = fam
        nid += rn.choice([1, 1, 2])
    ids = list(plan.singles)
    for _ in range(rn.randrange(0, 4)):
        if not ids:
            break
        members = rn.sample(ids, min(len(ids), rn.choice([1, 2, 2, 3])))
        if rn.random() < 0.08:
            members.append(rn.choice([999, *plan.groups] if plan.groups else [999]))
        parts = [f"{m}" + (f",{rn.choice([2, 3, 16, 256])}" if rn.random() < 0.3 else "") for m in members]
        gen.emit(f"nexthop add id {nid} group {'/'.join(parts)}")
        plan.groups[nid] = members
        nid += 1
    all_ids = ids + list(plan.groups)
    for _ in range(rn.randrange(2, 10)):
        if not all_ids:
            break
        target = rn.choice(all_ids + [4242]) if rn.random() < 0.05 else rn.choice(all_ids)
        fam = gen.fam
        if plain and gen.fam == 4 and rn.random() < 0.15:
            fam = 6  # an IPv6 route in a plain batch (refused through IPv4 objects)
        dst = gen.dest_prefix_rn(fam, rn)
        plan.prefixes.append(dst)
        line = f"route {rn.choice(['add', 'add', 'append', 'replace'])} {dst} nhid {target}"
        if gen.tables and rn.random() < 0.5:
            line += f" table {rn.choice(gen.tables)}"
        if rn.random() < 0.2:
            line += f" metric {rn.choice([5, 100, 1024])}"
        gen.emit(line)
        gen.route_lines.append(line)
    # later: deletions, replacements, a flush
    for _ in range(rn.choice([0, 0, 1, 2])):
        if not all_ids:
            break
        x = rn.random()
        target = rn.choice(all_ids)
        if x < 0.4:
            plan.late.append(f"nexthop del id {target}")
        elif x < 0.75 and target in plan.singles:
            gw, l = _gw(gen, rn, gen.fam)
            if l is not None:
                plan.late.append(f"nexthop replace id {target} via {gw} dev {l.name}")
        elif x < 0.9 and target in plan.groups and len(ids) >= 1:
            members = rn.sample(ids, min(len(ids), 2))
            plan.late.append(f"nexthop replace id {target} group {'/'.join(map(str, members))}")
        else:
            plan.late.append(rn.choice(["nexthop flush", "nexthop flush groups"]))
    return plan


def nexthop_late(gen, plan: NexthopPlan | None) -> None:
    for line in plan.late if plan else ():
        gen.emit(line)


def nexthop_flows(gen, plan: NexthopPlan | None) -> None:
    """Point some of the flows at the nhid routes' destinations."""
    if plan is None:
        return
    rn = random.Random(gen.sc.seed * 104729 + gen.fam)
    pfx = [p for p in plan.prefixes if p.version == gen.fam]
    if not pfx:
        return
    flows = gen.sc.flows
    for i in rn.sample(range(len(flows)), min(len(flows), 35)):
        argv = list(flows[i])
        saved, gen.r = gen.r, rn
        try:
            argv[0] = str(gen.host_in(rn.choice(pfx)))
        finally:
            gen.r = saved
        flows[i] = argv
