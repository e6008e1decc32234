"""`polroute multihome discover`: a host file from a live namespace.

Uplinks are the interfaces with a global IPv4 address and a gateway: the
gateway of a default route through the interface, in any table (main or a
per-uplink one), else - the two-NICs-on-one-subnet case - a default route's
gateway that lies on the interface's subnet (said in a comment).  A table
that already holds the recipe's default route for the interface with the
owner protocol is reused, and so is the lowest priority of the owner's
rules.  Further global addresses of an uplink become its ``serves`` list
(consecutive addresses as ranges).  Interfaces without a gateway are listed
as comments.
"""

from __future__ import annotations

import ipaddress

from polroute.multihome.hostfile import (
    MAIN_RULE_PRIORITY,
    PRIORITY_BASE_DEFAULT,
    RESERVED_TABLES,
    TABLE_BASE_DEFAULT,
    default_owner_proto,
)
from polroute.types.requests import AF_INET, AF_INET6

SCOPE_UNIVERSE = 0


def _ranges(addrs: list) -> list[str]:
    """Sorted addresses as `A` and `FIRST-LAST` runs of consecutive ones."""
    out = []
    addrs = sorted(set(addrs))
    i = 0
    while i < len(addrs):
        j = i
        while j + 1 < len(addrs) and int(addrs[j + 1]) == int(addrs[j]) + 1:
            j += 1
        out.append(str(addrs[i]) if i == j else f"{addrs[i]}-{addrs[j]}")
        i = j + 1
    return out


def _default_gateways(state, family: int) -> list[tuple[int, object, int, int]]:
    """(oif, gateway, table, protocol) of every default route leg."""
    out = []
    for r in state.routes.get(family, []):
        if r.dst_len != 0 or r.table == 255 or r.type not in (0, 1):
            continue
        if r.nexthops:
            out.extend((n.ifindex, n.gateway, r.table, r.protocol) for n in r.nexthops if n.gateway)
        elif r.gateway is not None:
            out.append((r.oif, r.gateway, r.table, r.protocol))
    return out


def _net(a) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(f"{a.local}/{a.prefixlen}", strict=False)


def _uplink_address(addrs: list, own_gws: list, any_gws: list):
    """The interface's address that faces its gateway: the one whose subnet
    holds the interface's own default gateway, else any default gateway, else
    the primary with the shortest prefix (served /32s are primaries too)."""

    def rank(item):
        i, a = item
        net = _net(a)
        return (not any(g in net for g in own_gws), not any(g in net for g in any_gws), a.secondary, a.prefixlen, i)

    return min(enumerate(addrs), key=rank)[1]


def discover_text(state, owner: int | None = None) -> str:
    owner = default_owner_proto() if owner is None else owner
    where = f"namespace {state.netns}" if state.netns else "this host"
    gws4 = _default_gateways(state, AF_INET)
    gws6 = _default_gateways(state, AF_INET6)
    owned_rules = [
        r
        for fam in (AF_INET, AF_INET6)
        for r in state.rules.get(fam, [])
        if r.protocol == owner and 0 < r.priority < MAIN_RULE_PRIORITY
    ]
    prio_base = min((r.priority for r in owned_rules), default=PRIORITY_BASE_DEFAULT)
    lines = [
        f"# polroute multihome host file, discovered from {where}.",
        "# Check the gateways and tables, then: polroute multihome render FILE --to batch",
        "version: 1",
        f"owner-protocol: {owner}",
        f"priority-base: {prio_base}",
        f"table-base: {TABLE_BASE_DEFAULT}",
        "uplinks:",
    ]
    comments = []
    used_tables: set[int] = set()
    n = 0
    for link in state.links:
        if link.name == "lo":
            continue
        addrs = [a for a in state.addrs if a.ifindex == link.ifindex and a.scope == SCOPE_UNIVERSE]
        v4 = [a for a in addrs if a.family == AF_INET]
        v6 = [a for a in addrs if a.family == AF_INET6]
        if not v4:
            if v6:
                comments.append(
                    f"# {link.name}: IPv6 only ({v6[0].local}/{v6[0].prefixlen}); an uplink needs an IPv4 address"
                )
            continue
        primary = _uplink_address(v4, [g[1] for g in gws4 if g[0] == link.ifindex], [g[1] for g in gws4])
        net = _net(primary)
        own = [g for g in gws4 if g[0] == link.ifindex and g[1] in net]
        note = ""
        if not own:
            other = [g for g in gws4 if g[1] in net]
            if not other:
                comments.append(
                    f"# {link.name} {primary.local}/{primary.prefixlen}: no default route "
                    "through it and no gateway on its subnet; add it with a gateway if it is an uplink"
                )
                continue
            own = [(link.ifindex, other[0][1], 0, 0)]
            note = f"  # inferred: {state.ifname(other[0][0])}'s default gateway is on this subnet"
        gateway = own[0][1]
        table = next((t for (_, _, t, p) in own if p == owner and t not in RESERVED_TABLES), None)
        lines += [
            f"  - interface: {link.name}",
            f"    address: {primary.local}/{primary.prefixlen}",
            f"    gateway: {gateway}{note}",
        ]
        if table is not None and table not in used_tables:
            lines.append(f"    table: {table}    # reused: holds this uplink's owned default route")
            used_tables.add(table)
        elif TABLE_BASE_DEFAULT + n in used_tables:
            lines.append(f"    table: {max(used_tables | {TABLE_BASE_DEFAULT + n}) + 1}")
        six = [a for a in v6 if not a.local.is_link_local]
        gw6 = [g for g in gws6 if g[0] == link.ifindex]
        rest6 = []
        if six and gw6:
            p6 = _uplink_address(six, [g[1] for g in gw6], [])
            lines += [f"    address6: {p6.local}/{p6.prefixlen}", f"    gateway6: {gw6[0][1]}"]
            rest6 = [a.local for a in six if a is not p6]
        rest4 = [a.local for a in v4 if a is not primary]
        if rest4 or rest6:
            lines.append("    serves:")
            lines += [f"      - {r}" for r in _ranges(rest4) + _ranges(rest6)]
        n += 1
    if n == 0:
        lines.append("  []   # no interface with a global IPv4 address and a gateway was found")
    return "\n".join(lines + comments) + "\n"
