"""Nexthop objects (``ip nexthop``) and routes with ``nhid``: the model against
what kernel 6.18 with iproute2 6.1 showed in a namespace (docs/kernel-notes.md
section 9; tests/kernel/test_nexthop_kernel.py asks the kernel itself).

Every expected text below is copied from the kernel's transcript."""

from __future__ import annotations

import errno

import pytest

from polroute._core.errors import PolicyError
from polroute.iproute2 import route_get as query
from polroute.iproute2.batch import apply_batch, apply_line
from polroute.iproute2.lexer import BatchError
from polroute.iproute2.nexthop import show_nexthops
from polroute.iproute2.show import format_routes
from polroute.model.policy import Policy
from polroute.types.requests import AF_INET6

BASE = """\
link set lo up
link add v0 type veth peer name v0p
link add v1 type veth peer name v1p
link set v0 up
link set v0p up
link set v1 up
link set v1p up
addr add 10.0.0.2/24 dev v0
addr add 10.1.0.2/24 dev v1
addr add 2001:db8:1::2/64 dev v1 nodad
"""

OBJECTS = """\
nexthop add id 1 via 10.0.0.1 dev v0
nexthop add id 2 dev v0
nexthop add id 3 blackhole
nexthop add id 5 via fe80::1 dev v0
nexthop add id 20 via 10.1.0.1 dev v1
nexthop add id 21 via 2001:db8:1::1 dev v1
nexthop add id 10 group 1/2
nexthop add id 11 group 1/5
nexthop add id 18 group 1,256/2,2
nexthop add id 22 group 1/20
nexthop add id 23 group 21
nexthop add id 61 via 9.9.9.9 dev v0 onlink
nexthop add id 8 via 10.0.0.1 dev v0 proto static
"""


EXCLUSIVE = "Error: Nexthop specification and nexthop id are mutually exclusive."


def ns(extra: str = "") -> Policy:
    p = Policy()
    apply_batch(p, BASE + OBJECTS + extra, "t.ip")
    return p


def refused(p: Policy, line: str) -> str:
    with pytest.raises((PolicyError, BatchError)) as ei:
        apply_batch(p, line + "\n", "t.ip")
    return str(ei.value).split(": ", 1)[1] if isinstance(ei.value, BatchError) else str(ei.value)


def routes(p: Policy, family: int = 2, table: int = 0) -> list[str]:
    return format_routes(p.routes(family, table), ifname=p.ifname, table_filter=table or "all")


def test_show_text_and_json():
    p = ns()
    assert show_nexthops(p) == (
        "id 1 via 10.0.0.1 dev v0 scope link \n"
        "id 2 dev v0 scope host \n"
        "id 3 blackhole \n"
        "id 5 via fe80::1 dev v0 scope link \n"
        "id 8 via 10.0.0.1 dev v0 scope link proto static \n"
        "id 10 group 1/2 \n"
        "id 11 group 1/5 \n"
        "id 18 group 1,256/2,2 \n"
        "id 20 via 10.1.0.1 dev v1 scope link \n"
        "id 21 via 2001:db8:1::1 dev v1 scope link \n"
        "id 22 group 1/20 \n"
        "id 23 group 21 \n"
        "id 61 via 9.9.9.9 dev v0 scope link onlink \n"
    )
    js = show_nexthops(p, as_json=True)
    assert js.startswith(
        '[{"id":1,"gateway":"10.0.0.1","dev":"v0","scope":"link","flags":[]},'
        '{"id":2,"dev":"v0","scope":"host","flags":[]},{"id":3,"blackhole":null,"flags":[]},'
    )
    assert '{"id":18,"group":[{"id":1,"weight":256},{"id":2,"weight":2}],"flags":[]}' in js
    assert '{"id":61,"gateway":"9.9.9.9","dev":"v0","scope":"link","flags":["onlink"]}' in js
    # -4 / -6 show single nexthops of that family only (groups have none)
    assert [line.split()[1] for line in show_nexthops(p, AF_INET6).splitlines()] == ["5", "21"]


def test_routes_with_nhid_print_as_ip_prints_them():
    p = ns(
        "route add 1.1.1.0/24 nhid 1\n"
        "route add 1.1.2.0/24 nhid 22\n"
        "route add 1.1.3.0/24 nhid 3\n"
        "route add 1.1.4.0/24 nhid 21\n"
        "route add 1.1.8.0/24 nhid 11\n"
        "route add 1.1.9.0/24 nhid 1 src 10.0.0.2\n"
        "route add 1.1.10.0/24 nhid 1 scope link\n"
        "route add blackhole 1.1.11.0/24 nhid 1\n"
        "route add 1.1.7.0/24 nhid 18 table 7 metric 5\n"
        "route add 2001:db8:5::/64 nhid 21\n"
        "route add 2001:db8:7::/64 nhid 23\n"
    )
    assert routes(p, table=254) == [
        "1.1.1.0/24 nhid 1 via 10.0.0.1 dev v0 ",
        "1.1.2.0/24 nhid 22 \n\tnexthop via 10.0.0.1 dev v0 weight 1 \n\tnexthop via 10.1.0.1 dev v1 weight 1 ",
        "blackhole 1.1.3.0/24 nhid 3 dev lo ",
        "1.1.4.0/24 nhid 21 via inet6 2001:db8:1::1 dev v1 ",
        "1.1.8.0/24 nhid 11 \n\tnexthop via 10.0.0.1 dev v0 weight 1 \n\tnexthop via inet6 fe80::1 dev v0 weight 1 ",
        "1.1.9.0/24 nhid 1 via 10.0.0.1 dev v0 src 10.0.0.2 ",
        "1.1.10.0/24 nhid 1 via 10.0.0.1 dev v0 scope link ",
        "blackhole 1.1.11.0/24 nhid 1 via 10.0.0.1 dev v0 ",
        "10.0.0.0/24 dev v0 proto kernel scope link src 10.0.0.2 ",
        "10.1.0.0/24 dev v1 proto kernel scope link src 10.1.0.2 ",
    ]
    assert routes(p, table=7) == [
        "1.1.7.0/24 nhid 18 metric 5 \n\tnexthop via 10.0.0.1 dev v0 weight 256 \n\tnexthop dev v0 weight 2 "
    ]
    six = [r for r in routes(p, AF_INET6, 254) if r.startswith("2001:db8:5") or r.startswith("2001:db8:7")]
    assert six == [
        "2001:db8:5::/64 nhid 21 via 2001:db8:1::1 dev v1 metric 1024 pref medium",
        "2001:db8:7::/64 nhid 23 metric 1024 pref medium\n\tnexthop via 2001:db8:1::1 dev v1 weight 1 ",
    ]


def test_route_get_through_objects():
    p = ns(
        "route add 1.1.1.0/24 nhid 1\nroute add 1.1.2.0/24 nhid 22\nroute add 1.1.3.0/24 nhid 3\n"
        "route add 1.1.4.0/24 nhid 21\nroute add 2001:db8:5::/64 nhid 21\n"
        "route add 2001:db8:30::/64 nhid 23\n"
    )
    assert query.get_json(p, ["1.1.1.1"]) == {
        "dst": "1.1.1.1",
        "gateway": "10.0.0.1",
        "dev": "v0",
        "prefsrc": "10.0.0.2",
        "flags": [],
        "uid": 0,
        "cache": [],
    }
    assert query.get_json(p, ["1.1.4.1"]) == {
        "dst": "1.1.4.1",
        "via": {"family": "inet6", "host": "2001:db8:1::1"},
        "dev": "v1",
        "prefsrc": "10.1.0.2",
        "flags": [],
        "uid": 0,
        "cache": [],
    }
    # a blackhole object answers as a blackhole route does
    assert query.get_json(p, ["1.1.3.1"]) == {"error": "Invalid argument", "errno": "EINVAL"}
    # a group of two is multipath: the candidates, flagged
    two = query.get_json(p, ["1.1.2.1"])
    assert two["not_modelled"] == ["multipath hash"]
    assert [(c["dev"], c["gateway"]) for c in two["candidates"]] == [("v0", "10.0.0.1"), ("v1", "10.1.0.1")]
    six = query.get_json(p, ["2001:db8:5::1"])
    assert (six["gateway"], six["dev"], six["prefsrc"], six["metric"]) == ("2001:db8:1::1", "v1", "2001:db8:1::2", 1024)
    assert "not_modelled" not in query.get_json(p, ["2001:db8:30::1"])  # a group of one


@pytest.mark.parametrize(
    "line, text",
    [
        ("nexthop add id 1 via 10.0.0.3 dev v0", "RTNETLINK answers: File exists"),
        ("nexthop add id 30 via 2001:db8::1 dev v0", "RTNETLINK answers: No route to host"),
        ("nexthop add id 30 via 9.9.9.9 dev v0", "Error: Nexthop has invalid gateway."),
        ("nexthop add id 30 via 10.0.0.1", "Error: Device attribute required for non-blackhole and non-fdb nexthops."),
        ("nexthop add id 30 dev v0 onlink", "Error: ONLINK flag can not be set for nexthop without a gateway."),
        ("nexthop add id 30 group 1/3", "Error: Blackhole nexthop can not be used in a group with more than 1 path."),
        ("nexthop add id 30 group 10", "Error: Hash-threshold group can not be a nexthop within a group."),
        ("nexthop add id 30 group 1/99", "Error: Invalid nexthop id."),
        ("nexthop add id 30 group 1/1", "Error: Nexthop id can not be used twice in a group."),
        ("nexthop add id 30 group 1 dev v0", "Error: Invalid family for group."),
        ("-6 nexthop add id 30 group 21", "Error: Invalid family for group."),
        ("nexthop replace id 1 group 2", "Error: Can not replace a nexthop with a nexthop group."),
        ("nexthop replace id 10 via 10.0.0.1 dev v0", "Error: Can not replace a nexthop group with a nexthop."),
        ("nexthop del id 99", "RTNETLINK answers: No such file or directory"),
        ("nexthop del id 0", "Error: Invalid nexthop id."),
        ("nexthop del", "Error: Nexthop id is missing."),
        ("route add 1.1.6.0/24 nhid 99", "Error: Nexthop id does not exist."),
        ("route add 2001:db8:5::/64 nhid 1", "Error: IPv6 routes can not use an IPv4 nexthop."),
        ("route add 2001:db8:5::/64 nhid 22", "Error: IPv6 routes can not use an IPv4 nexthop."),
        ("route add 2001:db8:5::/64 nhid 3", "Error: IPv6 routes can not use an IPv4 nexthop."),
        ("route add 2001:db8:5::/64 nhid 11", "Error: IPv6 routes can not use an IPv4 nexthop."),
        ("route add 1.1.9.0/24 nhid 1 via 10.0.0.1", EXCLUSIVE),
        ("route add 1.1.9.0/24 nhid 1 dev v0", EXCLUSIVE),
        ("route add local 1.1.12.0/24 nhid 1", "Error: Route with host scope can not have a gateway."),
        ("route add 5.0.0.0/8 nhid 61 scope link", "Error: Scope mismatch with nexthop."),
        ("route add 6.0.0.0/8 nhid 22 scope host", "Error: Route with host scope can not have multiple nexthops."),
        ("route del 1.1.1.0/24 nhid 77", "Error: Nexthop id does not exist."),
        ("nexthop add id 30 group 1,300/2", 'Error: argument "300" is wrong: "weight" is invalid'),
        # seed 214551885930402:6: invarg's text starts with "Error: " as ip prints it
        ("nexthop replace id 3 via 2001:db8:1::5 dev nx", 'Error: argument "nx" is wrong: Device does not exist'),
    ],
)
def test_refusals(line, text):
    p = ns()
    before = show_nexthops(p)
    assert text in refused(p, line)
    assert show_nexthops(p) == before


def test_link_state_removes_nexthops_groups_and_routes():
    p = ns(
        "nexthop add id 40 via 10.1.0.1 dev v1\nnexthop add id 41 dev v0\nnexthop add id 42 group 40/41\n"
        "nexthop add id 43 group 41\nroute add 2.2.2.0/24 nhid 42\nroute add 2.2.3.0/24 nhid 43\n"
        "route add 2.2.4.0/24 nhid 41\nroute add 2001:db8:44::/64 nhid 21\n"
    )
    apply_line(p, "link set v0 down")
    assert show_nexthops(p) == (
        "id 3 blackhole \nid 20 via 10.1.0.1 dev v1 scope link \nid 21 via 2001:db8:1::1 dev v1 scope link \n"
        "id 22 group 20 \nid 23 group 21 \nid 40 via 10.1.0.1 dev v1 scope link \nid 42 group 40 \n"
    )
    assert [r for r in routes(p, table=254) if r.startswith("2.")] == ["2.2.2.0/24 nhid 42 via 10.1.0.1 dev v1 "]
    assert query.get_json(p, ["2.2.3.1"])["errno"] == "ENETUNREACH"
    apply_line(p, "link set v0 up")
    assert "id 41 " not in show_nexthops(p)  # they do not come back
    # carrier loss (the veth peer goes down) removes them as well
    apply_line(p, "link set v1p down")
    assert show_nexthops(p) == "id 3 blackhole \n"
    assert [r for r in routes(p, table=254) if "nhid" in r] == []
    assert query.get_json(p, ["2.2.2.1"])["errno"] == "ENETUNREACH"


def test_delete_replace_and_flush():
    p = ns("route add 3.3.3.0/24 nhid 20\nroute add 3.3.4.0/24 nhid 22\nroute add 2001:db8:53::/64 nhid 21\n")
    apply_line(p, "nexthop replace id 20 via 10.0.0.1 dev v0")
    assert routes(p, table=254)[0:2] == [
        "3.3.3.0/24 nhid 20 via 10.0.0.1 dev v0 ",
        "3.3.4.0/24 nhid 22 \n\tnexthop via 10.0.0.1 dev v0 weight 1 \n\tnexthop via 10.0.0.1 dev v0 weight 1 ",
    ]
    assert "IPv6 routes can not use an IPv4 nexthop" in refused(p, "nexthop replace id 21 via 10.0.0.1 dev v0")
    apply_line(p, "nexthop replace id 60 via 10.0.0.1 dev v0")  # replace creates
    apply_line(p, "nexthop del id 1")
    got = show_nexthops(p)
    assert "id 10 group 2 \n" in got and "id 11 group 5 \n" in got and "id 18 group 2,2 \n" in got
    assert "id 22 group 20 \n" in got
    assert routes(p, table=254)[1] == "3.3.4.0/24 nhid 22 via 10.0.0.1 dev v0 "
    apply_line(p, "nexthop del id 2")
    assert "id 10 " not in show_nexthops(p)  # a group left empty goes
    apply_line(p, "nexthop flush")
    assert show_nexthops(p) == ""
    assert [r for r in routes(p, table=254) if "nhid" in r] == []
    assert [r for r in routes(p, AF_INET6, 254) if "nhid" in r] == []


def test_auto_ids_and_route_delete():
    p = ns()
    apply_line(p, "nexthop add dev v0")
    apply_line(p, "nexthop add dev v1")
    ids = [int(line.split()[1]) for line in show_nexthops(p).splitlines()]
    assert 4 in ids and 6 in ids  # nh_find_unused_id: 1, 2, 3 taken; then 5 taken
    apply_batch(p, "route add 7.0.0.0/8 nhid 20 table 9\n", "t")
    with pytest.raises(PolicyError) as ei:
        apply_line(p, "route del 7.0.0.0/8 table 9 dev v1")
    assert ei.value.errno == errno.ESRCH
    with pytest.raises(PolicyError):
        apply_line(p, "route del 7.0.0.0/8 table 9 nhid 1")
    apply_line(p, "route del 7.0.0.0/8 table 9")
    assert routes(p, table=9) == []


def test_blackhole_needs_lo_up():
    p = Policy()
    assert "Device for nexthop is not up" in refused(p, "nexthop add id 1 blackhole")
    assert "Nexthop device is not up" in refused(p, "-6 nexthop add id 1 blackhole")


def test_bulk_never_answers_a_multipath_object_route_as_exact():
    import numpy as np

    from polroute.model.bulk import lookup_bulk

    p = ns("route add 1.1.2.0/24 nhid 22\nroute add 1.1.1.0/24 nhid 1\n")
    dst = np.array([0x01010201, 0x01010101] * 40000, dtype=np.uint32)
    out = lookup_bulk(p, dst, fast=True)
    assert out.flags[0] != 0 and out.flags[1] == 0
    assert out.oif[1] == p.ifindex("v0") and out.gateway[1] == 0x0A000001
