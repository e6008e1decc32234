"""The Python API: Policy requests, kernel errors, all-or-nothing batches."""

import errno
import ipaddress

import pytest

from polroute import Policy, PolicyError
from polroute.iproute2.batch import apply_batch
from polroute.iproute2.lexer import BatchError
from polroute.iproute2.route_get import get_json, route_get, to_text
from polroute.types.requests import (
    AF_INET,
    AF_INET6,
    FR_ACT_TO_TBL,
    FRA_PRIORITY,
    FRA_SRC,
    NLM_F_CREATE,
    NLM_F_EXCL,
    RTA_GATEWAY,
    RTM_NEWROUTE,
    RTM_NEWRULE,
    RouteRequest,
    RuleRequest,
    bit,
)

HOST = """\
link add eth0 type veth peer name sw0
link set lo up
link set sw0 up
link set eth0 up
addr add 10.1.0.1/24 dev eth0
route add default via 10.1.0.254
"""


def host():
    p = Policy()
    apply_batch(p, HOST, "host.ip")
    return p


def test_fresh_namespace_has_lo_down_and_default_rules():
    p = Policy()
    links = p.links()
    assert [(l.ifindex, l.name, l.up) for l in links] == [(1, "lo", False)]
    assert [(r.priority, r.table) for r in p.rules(AF_INET)] == [(0, 255), (32766, 254), (32767, 253)]
    assert [(r.priority, r.table) for r in p.rules(AF_INET6)] == [(0, 255), (32766, 254)]
    assert p.routes(AF_INET) == []
    assert p.v4_merged()


def test_veth_peer_gets_the_lower_ifindex():
    p = host()
    idx = {l.name: l.ifindex for l in p.links()}
    assert idx["sw0"] < idx["eth0"]


def test_duplicate_route_raises_eexist_and_changes_nothing():
    p = host()
    before = p.routes(AF_INET)
    req = RouteRequest(
        RTM_NEWROUTE,
        NLM_F_CREATE | NLM_F_EXCL,
        protocol=3,
        dst=ipaddress.ip_address("0.0.0.0"),
        gateway=ipaddress.ip_address("10.1.0.253"),
    )
    req.present = bit(RTA_GATEWAY)
    with pytest.raises(PolicyError) as ei:
        p.route(req)
    assert ei.value.errno == errno.EEXIST
    assert str(ei.value) == "RTNETLINK answers: File exists"
    assert p.routes(AF_INET) == before


def test_kernel_message_is_carried():
    p = host()
    with pytest.raises(BatchError) as ei:
        apply_batch(p, "route add 10.9.0.0/24 via 10.77.0.1\n", "bad.ip")
    assert str(ei.value) == "bad.ip:1: Error: Nexthop has invalid gateway."
    assert isinstance(ei.value.cause, PolicyError)
    assert ei.value.cause.kernel_message == "Nexthop has invalid gateway"


def test_batch_is_all_or_nothing():
    p = host()
    rules_before = p.rules(AF_INET)
    routes_before = p.routes(AF_INET)
    text = (
        "rule add from 10.1.0.1 lookup 7 pref 100\n"
        "route add 10.2.0.0/16 dev eth0 table 7\n"
        "route add 10.3.0.0/33 dev eth0\n"
    )
    with pytest.raises(BatchError) as ei:
        apply_batch(p, text, "t.ip")
    assert str(ei.value).startswith("t.ip:3: ")
    assert "10.3.0.0/33" in str(ei.value)
    assert p.rules(AF_INET) == rules_before
    assert p.routes(AF_INET) == routes_before
    assert p.v4_merged(), "a failed batch must not unmerge local/main either"


def test_clone_is_independent():
    p = host()
    q = p.clone()
    apply_batch(q, "rule add from 10.1.0.1 lookup 5\n")
    assert len(q.rules(AF_INET)) == 4
    assert len(p.rules(AF_INET)) == 3


def test_rule_request_without_priority_takes_second_rule_minus_one():
    p = host()
    req = RuleRequest(RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, action=FR_ACT_TO_TBL, table=100)
    p.rule(req)
    p.rule(RuleRequest(RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, action=FR_ACT_TO_TBL, table=101))
    assert [r.priority for r in p.rules(AF_INET)] == [0, 32764, 32765, 32766, 32767]


def test_rule_src_selector_and_lookup_result():
    p = host()
    apply_batch(p, "route add default via 10.1.0.254 dev eth0 table 9\n")
    req = RuleRequest(
        RTM_NEWRULE,
        NLM_F_CREATE | NLM_F_EXCL,
        action=FR_ACT_TO_TBL,
        table=9,
        src_len=32,
        src=ipaddress.ip_address("10.1.0.1"),
        priority=10,
        present=bit(FRA_SRC) | bit(FRA_PRIORITY),
    )
    p.rule(req)
    r = route_get(p, ["8.8.8.8", "from", "10.1.0.1"], explain=True)
    assert (r.dev, r.gateway, r.table, r.rule_priority) == ("eth0", "10.1.0.254", "9", 10)
    assert [s.kind for s in r.trace] == ["table-miss", "decided"]
    assert [s.priority for s in r.trace] == [0, 10]


def test_unknown_device_in_question():
    p = host()
    with pytest.raises(PolicyError) as ei:
        route_get(p, ["8.8.8.8", "oif", "nope0"])
    assert ei.value.errno == errno.ENODEV


def test_bad_question_names_the_token():
    p = host()
    with pytest.raises(ValueError) as ei:
        route_get(p, ["8.8.8.8", "frum", "1.2.3.4"])
    assert "frum" in str(ei.value)


def test_text_output_matches_ip_layout():
    p = host()
    assert to_text(route_get(p, ["8.8.8.8"])) == "8.8.8.8 via 10.1.0.254 dev eth0 src 10.1.0.1 uid 0 \n    cache "
    assert get_json(p, ["8.8.8.8", "from", "10.99.0.1"]) == {"error": "Network is unreachable", "errno": "ENETUNREACH"}


def test_multipath_answer_lists_candidates_not_a_guess():
    p = host()
    apply_batch(
        p,
        "link add eth1 type veth peer name sw1\nlink set sw1 up\nlink set eth1 up\n"
        "addr add 10.2.0.1/24 dev eth1\n"
        "route add 198.51.100.0/24 nexthop via 10.1.0.254 dev eth0 weight 1 "
        "nexthop via 10.2.0.254 dev eth1 weight 3\n",
    )
    r = route_get(p, ["198.51.100.7"])
    assert r.not_modelled == ["multipath hash"]
    assert [(c.dev, c.gateway, c.weight) for c in r.candidates] == [
        ("eth0", "10.1.0.254", 1),
        ("eth1", "10.2.0.254", 3),
    ]
    d = get_json(p, ["198.51.100.7"])
    assert d["not_modelled"] == ["multipath hash"] and len(d["candidates"]) == 2
    # with an oif the kernel does not hash: the answer is exact
    r = route_get(p, ["198.51.100.7", "oif", "eth1"])
    assert r.not_modelled == [] and (r.dev, r.gateway) == ("eth1", "10.2.0.254")


def test_sysctl_keys():
    p = host()
    p.sysctl("net.ipv4.ip_forward", 1)
    assert p.sysctl_get("net.ipv4.conf.eth0.forwarding") == 1
    p.sysctl("net.ipv4.conf.eth0.ignore_routes_with_linkdown", 1)
    assert p.sysctl_get("net.ipv4.conf.eth0.ignore_routes_with_linkdown") == 1
    with pytest.raises(PolicyError) as ei:
        p.sysctl("net.ipv4.conf.eth0.no_such_key", 1)
    assert ei.value.errno == errno.ENOENT
    with pytest.raises(PolicyError) as ei:
        p.sysctl("net.ipv4.ip_forward", 7)
    assert ei.value.errno == errno.EINVAL


def test_forwarding_decides_input_path():
    p = host()
    apply_batch(
        p, "link add eth1 type veth peer name sw1\nlink set sw1 up\nlink set eth1 up\naddr add 10.2.0.1/24 dev eth1\n"
    )
    assert get_json(p, ["8.8.8.8", "iif", "eth1", "from", "10.2.0.9"])["errno"] == "EHOSTUNREACH"
    p.sysctl("net.ipv4.ip_forward", 1)
    d = get_json(p, ["8.8.8.8", "iif", "eth1", "from", "10.2.0.9"])
    assert d == {
        "dst": "8.8.8.8",
        "from": "10.2.0.9",
        "gateway": "10.1.0.254",
        "dev": "eth0",
        "flags": [],
        "cache": [],
        "iif": "eth1",
    }
