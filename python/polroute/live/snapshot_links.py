"""Snapshot steps 1-2: links, addresses and link states (see
:mod:`polroute.live.snapshot`).
"""

from __future__ import annotations

from polroute.live.lines import _addr_line, _ntop
from polroute.live.objects import INFINITY_LIFE, KAddr, KLink
from polroute.types.requests import (
    AF_INET,
    AF_INET6,
    RT_SCOPE_HOST,
    RT_TABLE_LOCAL,
    RTN_LOCAL,
    RTN_MULTICAST,
    RTPROT_KERNEL,
)


def _interleave(
    chains: list[list[tuple[KLink, KAddr]]], local_order: dict[str, list[int]]
) -> list[tuple[KLink, KAddr]]:
    """Merge per-link address lists keeping each list's order and, for an
    address on several links, the order of its local routes (a stable
    topological sort; the plain concatenation when the constraints clash)."""
    import heapq

    flat = [item for chain in chains for item in chain]
    index = {id(item): i for i, item in enumerate(flat)}
    succ: dict[int, set[int]] = {i: set() for i in range(len(flat))}
    indeg = [0] * len(flat)

    def edge(a: int, b: int) -> None:
        if b not in succ[a]:
            succ[a].add(b)
            indeg[b] += 1

    for chain in chains:
        for x, y in zip(chain, chain[1:]):
            edge(index[id(x)], index[id(y)])
    by_value: dict[str, dict[int, int]] = {}
    for i, (link, a) in enumerate(flat):
        by_value.setdefault(str(a.local), {})[link.ifindex] = i
    for value, devs in by_value.items():
        order = [d for d in local_order.get(value, []) if d in devs]
        for d1, d2 in zip(order, order[1:]):
            edge(devs[d1], devs[d2])
    ready = [i for i in range(len(flat)) if indeg[i] == 0]
    heapq.heapify(ready)
    out = []
    while ready:
        i = heapq.heappop(ready)
        out.append(flat[i])
        for j in succ[i]:
            indeg[j] -= 1
            if indeg[j] == 0:
                heapq.heappush(ready, j)
    return out if len(out) == len(flat) else flat


class LinkSteps:
    """The snapshot builder's link and address steps (mixed into
    polroute.live.snapshot._Builder, whose helpers they use)."""

    def links(self) -> None:
        st = self.state
        done: set[int] = set()
        for link in st.links:
            if link.kind == "loopback" or link.ifindex in done:
                continue
            if link.kind == "veth":
                peer = st.link_by_index(link.peer) if link.peer else None
                if peer is not None and peer.kind == "veth":
                    # `link add A type veth peer name B` registers B first: B gets
                    # the lower ifindex, as `link` (the lower one) has here
                    self.emit_or_comment(f"link add {peer.name} type veth peer name {link.name}")
                    done.update((link.ifindex, peer.ifindex))
                    continue
                other = f"prpeer{link.ifindex}"
                self.comment(f"{link.name}'s veth peer is in another namespace; it is recreated here as {other}")
                self.emit_or_comment(f"link add {other} type veth peer name {link.name}")
            elif link.kind in ("bridge", "ifb"):
                self.emit_or_comment(f"link add {link.name} type {link.kind}")
            elif link.kind in ("tun", "tap"):
                self.emit_or_comment(f"tuntap add {link.name} mode {link.kind}")
            elif link.info_kind:
                self.emit_or_comment(f"link add {link.name} type {link.info_kind}")
            else:
                self.comment(f"{link.name}: a device `ip link add` cannot make (no link kind); it must exist already")
            done.add(link.ifindex)
        for link in st.links:
            if link.group and self.model.has_link(link.name):
                self.emit_or_comment(f"link set dev {link.name} group {link.group}")
        for link in st.links:
            if link.master:
                self.comment(
                    f"not restorable (no `master` in the model): link set dev "
                    f"{link.name} master {st.ifname(link.master)}"
                )
        for link in st.links:
            if link.kind != "loopback" and self.model.has_link(link.name):
                self.emit_or_comment(f"link set {link.name} addrgenmode none")

    # ---- 2. addresses and link state -----------------------------------------
    def _auto_lo(self, a: KAddr) -> bool:
        """127.0.0.1/8 and ::1/128 on lo are made by `link set lo up`."""
        lo = self.state.link_by_index(a.ifindex)
        if lo is None or lo.kind != "loopback" or not lo.up:
            return False
        if a.family == AF_INET:
            return (
                (str(a.local), a.prefixlen, a.scope, a.flags & ~0x80) == ("127.0.0.1", 8, RT_SCOPE_HOST, 0)
                and a.label in ("", lo.name)
                and a.broadcast is None
                and not a.metric
            )
        return (str(a.local), a.prefixlen) == ("::1", 128)

    def addresses(self) -> None:
        """Every link's addresses, each link's in the order that recreates the
        kernel's list, the links interleaved so that an address that is on
        several devices is added to them in the order of its ``local`` routes
        (the kernel appends one per address as it is added, and the newest
        address of a value is the one ``__ip_dev_find`` sees first)."""
        for fam in self.families:
            chains = []
            for link in self.state.links:
                if not self.model.has_link(link.name) or (
                    fam == AF_INET6 and link.ifindex in self.late6 and link in self.temp_up
                ):
                    continue
                items = self._addr_items(link, fam)
                if fam == AF_INET6 and link.ifindex in self.late6:
                    items = items[:-1]  # the newest comes after the link is up
                chains.append(items)
            for link, a in _interleave(chains, self._local_route_order(fam)):
                self._emit_addr(link, a)

    def _local_route_order(self, fam: int) -> dict[str, list[int]]:
        host = 32 if fam == AF_INET else 128
        out: dict[str, list[int]] = {}
        for r in self.state.routes.get(fam, []):
            if (
                r.type == RTN_LOCAL
                and r.table == RT_TABLE_LOCAL
                and r.dst_len == host
                and r.protocol == RTPROT_KERNEL
                and r.dst is not None
                and r.oif
            ):
                out.setdefault(str(r.dst), []).append(r.oif)
        return out

    def _addr_items(self, link: KLink, fam: int) -> list[tuple[KLink, KAddr]]:
        mine = [a for a in self.state.addrs if a.ifindex == link.ifindex and a.family == fam]
        if fam == AF_INET6:
            # the kernel keeps a device's IPv6 addresses sorted by scope,
            # newest first within a scope: adding oldest first recreates it
            mine = list(reversed(mine))
        return [(link, a) for a in mine if not self._auto_lo(a)]

    def _emit_addr(self, link: KLink, a: KAddr, v6_batch: bool = False) -> None:
        fam = a.family
        if a.peer is not None:
            self.comment(
                f"not restorable (peer addresses are not modelled): "
                f"addr add {_ntop(a.local)} peer {_ntop(a.peer)}/{a.prefixlen} "
                f"dev {link.name}",
                fam,
                v6_batch,
            )
            return
        if (a.valid_lft, a.preferred_lft) != (INFINITY_LIFE, INFINITY_LIFE):
            self.comment(
                f"{_ntop(a.local)}/{a.prefixlen} dev {link.name} had lifetimes "
                f"valid {a.valid_lft}s preferred {a.preferred_lft}s: "
                "restored as permanent",
                fam,
                v6_batch,
            )
        self.emit_or_comment(_addr_line(a, self.state), fam, v6_batch)

    def addresses_of(self, link: KLink, fam: int) -> None:
        if fam in self.families:
            for _, a in self._addr_items(link, fam):
                self._emit_addr(link, a)

    def plan_link_states(self) -> None:
        """Decide how links come up: lo first, then in the order that
        reproduces the IPv6 ``ff00::/8`` routes' order.  The kernel appends a
        link's ff00::/8 at carrier-on (of a veth pair, the end that comes up
        second gets its route first) or when an IPv6 address is added to it
        while it is up without carrier.  So a link whose route came before its
        carrier gets its IPv6 addresses after it is up (or, with none, the route
        itself, as the kernel would make it)."""
        st = self.state
        up = [l for l in st.links if l.up and self.model.has_link(l.name)]
        steps: list[tuple[str, KLink]] = [("up", l) for l in up if l.kind == "loopback"]
        mc = []
        for r in st.routes.get(AF_INET6, []):
            link = st.link_by_index(r.oif)
            if (
                r.type == RTN_MULTICAST
                and r.table == RT_TABLE_LOCAL
                and r.dst_len == 8
                and r.dst is not None
                and str(r.dst) == "ff00::"
                and r.protocol == RTPROT_KERNEL
                and r.priority == 256
                and link is not None
                and link in up
            ):
                mc.append(link)
        seen = {l.ifindex for _, l in steps}
        has6 = {a.ifindex for a in st.addrs if a.family == AF_INET6 and not self._auto_lo(a)}
        for i, link in enumerate(mc):
            if link.ifindex in seen:
                continue
            peer = st.link_by_index(link.peer) if link.kind == "veth" and link.peer else None
            nxt = mc[i + 1] if i + 1 < len(mc) else None
            if link.carrier and peer is not None and peer.ifindex not in seen and (nxt is peer or peer not in mc):
                # one carrier-on event: this end came up second
                steps += [("up", peer), ("up", link)]
                seen.update((peer.ifindex, link.ifindex))
                continue
            if link.carrier and (peer is None or peer.ifindex in seen):
                steps.append(("up", link))  # carrier as it comes up
                seen.add(link.ifindex)
                continue
            # the route came before carrier: up, then what makes the route
            steps.append(("up", link))
            steps.append(("addrs6" if link.ifindex in has6 else "ff00", link))
            if link.ifindex in has6:
                self.late6.add(link.ifindex)
            seen.add(link.ifindex)
        steps += [("up", l) for l in up if l.ifindex not in seen]
        # A multipath route keeps a leg through a link that went down (the leg
        # is dead) but no leg can be added through a down link: such a link is
        # up while the routes are added and goes down at the end, which flushes
        # the same routes and addresses as it did in the source.
        legs = {leg.ifindex for f in self.families for r in st.routes.get(f, []) for leg in r.nexthops}
        # ... and a leg through a veth end without carrier was added while the
        # peer was up: the route as a whole is linkdown only if it was made so
        for ifindex in list(legs):
            link = st.link_by_index(ifindex)
            if link is not None and link.kind == "veth" and link.up and not link.carrier and link.peer:
                legs.add(link.peer)
        # (not a link with IPv6 addresses: they would go with it when it goes down
        # again, and be missing while the routes are added)
        with6 = {a.ifindex for a in st.addrs if a.family == AF_INET6}
        self.temp_up = [
            l
            for l in st.links
            if not l.up
            and l.ifindex in legs
            and self.model.has_link(l.name)
            and not (AF_INET6 in self.families and l.ifindex in with6)
        ]
        steps += [("up", l) for l in self.temp_up]
        # their IPv6 addresses would go with the final `link set down`: they are
        # added after it (addresses added to a down link stay)
        self.late6.update(l.ifindex for l in self.temp_up)
        self.steps = steps

    def link_states(self) -> None:
        for what, link in self.steps:
            if what == "up":
                self.emit_or_comment(f"link set {link.name} up")
            elif what == "addrs6":
                # the newest IPv6 address, added once the link is up, makes its ff00::/8
                for _, a in self._addr_items(link, AF_INET6)[-1:] if AF_INET6 in self.families else ():
                    self._emit_addr(link, a)
            else:
                self.emit_or_comment(
                    f"route append multicast ff00::/8 dev {link.name} table local "
                    f"metric 256 proto {self.names.proto(RTPROT_KERNEL)}",
                    AF_INET6,
                )

    def lo_address_deletions(self) -> None:
        """lo up made 127.0.0.1/8 and ::1; delete them when the source has not."""
        st = self.state
        lo = next((l for l in st.links if l.kind == "loopback"), None)
        if lo is None or not lo.up:
            return
        for fam, text in ((AF_INET, "addr del 127.0.0.1/8 dev lo"), (AF_INET6, "addr del ::1/128 dev lo")):
            if fam not in self.families:
                continue
            if not any(a.ifindex == lo.ifindex and a.family == fam and self._auto_lo(a) for a in st.addrs):
                self.emit_or_comment(text, fam)

    # ---- 3.-4. routes and rules ---------------------------------------------
