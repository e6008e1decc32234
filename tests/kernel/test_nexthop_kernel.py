"""Nexthop objects and routes with ``nhid``: the model against the kernel.

The same batch goes to a private namespace (``ip -force -batch``) and to the
model; then ``ip nexthop show`` (text and ``-j``), the routes with ``nhid``
as ``ip route show`` prints them, every refused line's message and
``ip -j route get`` answers must be equal (a "multipath hash" answer is
verified with fibmatch by the differential harness, ``compare.run_both``).

Only configuration and lookups, in private ``prt-*`` namespaces.
"""

from __future__ import annotations

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netns import Netns  # noqa: E402

from compare import KernelSide, ModelSide, Run, run_both  # noqa: E402
from polroute import Policy  # noqa: E402
from polroute.iproute2.batch import apply_batch_force  # noqa: E402
from polroute.iproute2.nexthop import show_nexthops  # noqa: E402
from polroute.iproute2.show import format_routes  # noqa: E402
from polroute.types.requests import AF_INET, AF_INET6  # noqa: E402

pytestmark = pytest.mark.kernel

BASE = """\
link set lo up
link add v0 type veth peer name v0p
link add v1 type veth peer name v1p
link add br0 type bridge
link set v0 addrgenmode none
link set v0p addrgenmode none
link set v1 addrgenmode none
link set v1p addrgenmode none
link set br0 addrgenmode none
link set v0 up
link set v0p up
link set v1 up
link set v1p up
link set br0 up
addr add 10.0.0.2/24 dev v0
addr add 10.1.0.2/24 dev v1
addr add 10.2.0.2/24 dev br0
addr add 2001:db8:1::2/64 dev v1 nodad
addr add 2001:db8:2::2/64 dev br0 nodad
"""

OBJECTS = """\
nexthop add id 1 via 10.0.0.1 dev v0
nexthop add id 2 dev v0
nexthop add id 3 blackhole
nexthop add id 5 via fe80::1 dev v0
nexthop add id 20 via 10.1.0.1 dev v1
nexthop add id 21 via 2001:db8:1::1 dev v1
nexthop add id 24 via 2001:db8:2::1 dev br0
nexthop add id 10 group 1/2
nexthop add id 11 group 1/5
nexthop add id 18 group 1,256/2,2
nexthop add id 22 group 1/20
nexthop add id 23 group 21
nexthop add id 25 group 21/24,3
nexthop add id 61 via 9.9.9.9 dev v0 onlink
nexthop add id 8 via 10.0.0.1 dev v0 proto static
nexthop add id 63 via 10.0.0.2 dev v0
nexthop add dev v1
route add 1.1.1.0/24 nhid 1
route add 1.1.2.0/24 nhid 22
route add 1.1.3.0/24 nhid 3
route add 1.1.4.0/24 nhid 21
route add 1.1.5.0/24 nhid 23
route add 1.1.8.0/24 nhid 11
route add 1.1.9.0/24 nhid 1 src 10.0.0.2
route add 1.1.10.0/24 nhid 1 scope link
route add blackhole 1.1.11.0/24 nhid 1
route add 1.1.7.0/24 nhid 18 table 7 metric 5
route add 1.1.12.0/24 nhid 63
route add 1.1.13.0/24 nhid 61
route append 1.1.1.0/24 nhid 20
route add 2001:db8:5::/64 nhid 21
route add 2001:db8:7::/64 nhid 23
route add 2001:db8:8::/64 nhid 25 table 7
route add 2001:db8:9::/64 nhid 24 metric 7
"""

REFUSALS = """\
nexthop add id 1 via 10.0.0.3 dev v0
nexthop add id 30 via 2001:db8::1 dev v0
nexthop add id 30 via 9.9.9.9 dev v0
nexthop add id 30 via 10.0.0.1
nexthop add id 30 dev v0 onlink
nexthop add id 30 group 1/3
nexthop add id 30 group 10
nexthop add id 30 group 1/99
nexthop add id 30 group 1/1
nexthop add id 30 group 1 dev v0
nexthop replace id 1 group 2
nexthop replace id 10 via 10.0.0.1 dev v0
nexthop replace id 21 via 10.0.0.1 dev v0
nexthop replace id 5 blackhole
nexthop del id 99
nexthop del id 0
nexthop del
route add 1.1.6.0/24 nhid 99
route add 2001:db8:5::/64 nhid 1
route add 2001:db8:6::/64 nhid 22
route add 2001:db8:6::/64 nhid 3
route add 2001:db8:6::/64 nhid 11
route add 1.1.9.0/24 nhid 1 via 10.0.0.1
route add 1.1.9.0/24 nhid 1 dev v0
route add local 1.1.12.0/24 nhid 1
route add 5.0.0.0/8 nhid 61 scope link
route add 6.0.0.0/8 nhid 22 scope host
route add 1.1.1.0/24 nhid 2
route del 1.1.1.0/24 nhid 77
route del 1.1.1.0/24 dev v0
route del 1.1.2.0/24 nhid 1
"""

FLOWS4 = [
    ["1.1.1.1"],
    ["1.1.2.1"],
    ["1.1.3.1"],
    ["1.1.4.1"],
    ["1.1.5.1"],
    ["1.1.8.1"],
    ["1.1.9.1"],
    ["1.1.10.1"],
    ["1.1.11.1"],
    ["1.1.12.1"],
    ["1.1.13.1"],
    ["1.1.1.1", "oif", "v1"],
    ["1.1.2.1", "oif", "v1"],
    ["1.1.2.1", "from", "10.1.0.2"],
    ["1.1.7.1"],
    ["1.1.1.1", "from", "10.2.0.9", "iif", "br0"],
]
FLOWS6 = [
    ["2001:db8:5::1"],
    ["2001:db8:7::1"],
    ["2001:db8:9::1"],
    ["2001:db8:5::1", "oif", "br0"],
    ["2001:db8:9::1", "from", "2001:db8:1::2"],
]


def _nhid_routes_kernel(ns: Netns, family: int) -> list[str]:
    out = ns.ip("-6" if family == AF_INET6 else "-4", "route", "show", "table", "all").stdout
    lines, cur = [], None
    for line in out.splitlines():
        if line.startswith("\t"):
            cur += "\n" + line
            continue
        if cur is not None:
            lines.append(cur)
        cur = line
    if cur is not None:
        lines.append(cur)
    return [x for x in lines if " nhid " in x]


def _nhid_routes_model(p: Policy, family: int) -> list[str]:
    return [x for x in format_routes(p.routes(family), ifname=p.ifname, table_filter="all") if " nhid " in x]


def _both(text: str) -> tuple[Netns, Policy, dict, dict]:
    ns = Netns().create()
    k = ns.batch(text).refused()
    p = Policy()
    m = {e.lineno: str(e).split(": ", 1)[1] for e in apply_batch_force(p, text, "t.ip")}
    return ns, p, k, m


def _assert_same_state(ns: Netns, p: Policy) -> None:
    assert show_nexthops(p) == ns.ip("nexthop", "show").stdout
    assert json.loads(show_nexthops(p, as_json=True)) == json.loads(ns.ip("-j", "nexthop", "show").stdout or "[]")
    for fam, opt in ((AF_INET, "-4"), (AF_INET6, "-6")):
        assert show_nexthops(p, fam) == ns.ip(opt, "nexthop", "show").stdout
        assert _nhid_routes_model(p, fam) == _nhid_routes_kernel(ns, fam)


def test_objects_routes_and_answers(kernel_ok):
    ns, p, k, m = _both(BASE + OBJECTS)
    try:
        assert k == {} and m == {}
        _assert_same_state(ns, p)
    finally:
        ns.delete()
    model = ModelSide()
    for flows, fam in ((FLOWS4, 4), (FLOWS6, 6)):
        run = Run((BASE + OBJECTS).splitlines(), flows=flows)
        _, ka, ma, c = run_both(run, KernelSide(), model, verify_not_modelled=True)
        assert not c.mismatches, "\n".join(x.detail for x in c.mismatches)
        assert c.compared >= len(flows) - 4, f"IPv{fam}: too many not-modelled answers: {ma.answers}"


def test_refusals_match_kernel(kernel_ok):
    text = BASE + OBJECTS + REFUSALS
    ns, p, k, m = _both(text)
    try:
        first = len((BASE + OBJECTS).splitlines()) + 1
        assert set(k) == set(range(first, first + len(REFUSALS.splitlines())))
        assert {n: m.get(n) for n in k} == k
        _assert_same_state(ns, p)  # the refusals changed nothing
    finally:
        ns.delete()


@pytest.mark.parametrize(
    "events",
    [
        "link set v0 down",
        "link set v0p down",
        "link set v1p down\nlink set v1p up",
        "link del v0",
        "link set lo down",
        "addr del 10.0.0.2/24 dev v0",
        "nexthop del id 1",
        "nexthop del id 2\nnexthop del id 20",
        "nexthop del id 21",
        "nexthop replace id 1 via 10.1.0.1 dev v1",
        "nexthop replace id 2 via 10.0.0.9 dev v0",
        "nexthop replace id 22 group 20,5/2",
        "nexthop replace id 24 via 2001:db8:1::9 dev v1",
        "nexthop flush",
        "nexthop flush dev v1",
        "nexthop flush groups",
    ],
)
def test_events_match_kernel(kernel_ok, events):
    text = BASE + OBJECTS + events + "\n"
    ns, p, k, m = _both(text)
    try:
        assert k == m
        _assert_same_state(ns, p)
    finally:
        ns.delete()
    model = ModelSide()
    for flows in (FLOWS4, FLOWS6):
        _, _, _, c = run_both(Run(text.splitlines(), flows=flows), KernelSide(), model, verify_not_modelled=True)
        assert not c.mismatches, "\n".join(x.detail for x in c.mismatches)


def test_unusable_object_route_ends_its_trie_leaf(kernel_ok):
    """fib_table_lookup: a route through an object with no usable nexthop (the
    oif does not match) is a "miss" for its whole trie leaf: the /16 of the
    same key is not tried, the /15 is (POLROUTE_SCENARIO=462:4)."""
    lines = (
        BASE
        + "nexthop add id 70 via 10.1.0.1 dev v1\n"
        + "route add 5.5.0.0/17 nhid 70 table 70\n"
        + "route add 5.5.0.0/16 dev v0 table 70\n"
        + "route add 5.4.0.0/15 via 10.0.0.9 dev v0 table 70\n"
        + "route add 6.6.0.0/24 nhid 70 table 70\n"
        + "route append 6.6.0.0/24 dev v0 table 70\n"
        + "rule add pref 70 lookup 70\n"
    ).splitlines()
    flows = [["5.5.1.1"], ["5.5.1.1", "oif", "v0"], ["5.5.200.1", "oif", "v0"], ["6.6.0.1", "oif", "v0"]]
    _, k, m, c = run_both(Run(lines, flows=flows), KernelSide(), ModelSide(), verify_not_modelled=True)
    assert not c.mismatches, "\n".join(x.detail for x in c.mismatches)
    assert [a.get("gateway") for a in m.answers[:3]] == ["10.1.0.1", "10.0.0.9", None]
