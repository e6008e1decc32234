"""Policy.rule / Policy.route in the keyword form pyroute2 users write: the
same state as the `ip` line with iproute2's defaults, and ip's refusals."""

from __future__ import annotations

import pytest

from polroute import Policy, PolicyError
from polroute.iproute2.batch import apply_batch
from polroute.iproute2.keywords import route_words, rule_words

BASE = (
    "link add eth0 type dummy\nlink add eth1 type dummy\nlink set eth0 up\nlink set eth1 up\n"
    "addr add 192.168.16.20/24 dev eth0\naddr add 192.168.16.21/24 dev eth1\naddr add 2001:db8::2/64 dev eth0\n"
)


def fresh() -> Policy:
    p = Policy()
    apply_batch(p, BASE, "base")
    return p


def state(p: Policy):
    return (p.rules(2), p.rules(10), p.routes(2), p.routes(10))


CASES = [
    (
        "rule",
        {"cmd": "add", "src": "192.168.16.20/32", "table": 1, "priority": 500},
        "rule add from 192.168.16.20/32 lookup 1 priority 500",
    ),
    ("rule", {"cmd": "add", "src": "192.168.16.21", "table": 2}, "rule add from 192.168.16.21 table 2"),
    (
        "rule",
        {"cmd": "add", "src": "10.0.0.0", "src_len": 8, "table": "main", "fwmark": 5, "fwmask": 255},
        "rule add from 10.0.0.0/8 fwmark 5/255 lookup main",
    ),
    (
        "rule",
        {"cmd": "add", "priority": 600, "action": "blackhole", "iifname": "eth0"},
        "rule add pref 600 iif eth0 blackhole",
    ),
    ("rule", {"cmd": "add", "priority": 700, "action": "FR_ACT_GOTO", "goto": 32766}, "rule add pref 700 goto 32766"),
    (
        "rule",
        {"cmd": "add", "uid_range": (100, 200), "dport": 53, "ipproto": "udp", "table": 5},
        "rule add uidrange 100-200 dport 53 ipproto udp lookup 5",
    ),
    (
        "rule",
        {"cmd": "add", "family": 6, "dst": "2001:db8:5::/48", "table": 5, "invert": True},
        "-6 rule add not to 2001:db8:5::/48 lookup 5",
    ),
    (
        "route",
        {"cmd": "add", "dst": "default", "gateway": "192.168.16.1", "oif": "eth0", "table": 1},
        "route add default via 192.168.16.1 dev eth0 table 1",
    ),
    (
        "route",
        {"cmd": "add", "dst": "10.9.0.0/16", "gateway": "192.168.16.1"},
        "route add 10.9.0.0/16 via 192.168.16.1",
    ),
    (
        "route",
        {"cmd": "add", "dst": "10.8.0.0", "dst_len": 16, "oif": 2, "priority": 7, "proto": "static"},
        "route add 10.8.0.0/16 dev eth0 metric 7 proto static",
    ),
    (
        "route",
        {"cmd": "add", "type": "blackhole", "dst": "10.7.0.0/16", "table": 9},
        "route add blackhole 10.7.0.0/16 table 9",
    ),
    (
        "route",
        {"cmd": "add", "dst": "10.6.0.0/16", "oif": "eth1", "prefsrc": "192.168.16.21", "metrics": {"mtu": 1400}},
        "route add 10.6.0.0/16 dev eth1 src 192.168.16.21 mtu 1400",
    ),
    (
        "route",
        {
            "cmd": "add",
            "dst": "10.5.0.0/16",
            "multipath": [{"gateway": "192.168.16.1", "oif": "eth0", "hops": 1}, {"gateway": "192.168.16.2", "oif": 3}],
        },
        "route add 10.5.0.0/16 nexthop via 192.168.16.1 dev eth0 weight 2 nexthop via 192.168.16.2 dev eth1",
    ),
    (
        "route",
        {"cmd": "add", "dst": "2001:db8:9::/48", "gateway": "2001:db8::1", "table": 4},
        "route add 2001:db8:9::/48 via 2001:db8::1 table 4",
    ),
    (
        "route",
        {"cmd": "replace", "dst": "10.4.0.0/16", "oif": "eth0", "scope": "link"},
        "route replace 10.4.0.0/16 dev eth0 scope link",
    ),
]


@pytest.mark.parametrize("kind, kw, line", CASES, ids=[c[2] for c in CASES])
def test_keyword_form_equals_the_ip_line(kind, kw, line):
    a, b = fresh(), fresh()
    kw = dict(kw)
    getattr(a, kind)(kw.pop("cmd"), **kw)
    apply_batch(b, line + "\n", "line")
    assert state(a) == state(b)


def test_delete_and_the_kernels_refusals():
    p = fresh()
    p.rule("add", src="192.168.16.20/32", table=1, priority=500)
    with pytest.raises(PolicyError, match="File exists"):
        p.rule("add", src="192.168.16.20/32", table=1, priority=500)
    p.rule("del", src="192.168.16.20/32", table=1, priority=500)
    with pytest.raises(PolicyError):
        p.rule("delete", priority=500)
    p.route("add", dst="10.1.0.0/16", gateway="192.168.16.1")
    p.route("remove", dst="10.1.0.0/16")
    assert state(p) == state(fresh())
    with pytest.raises(PolicyError, match="Nexthop has invalid gateway|unreachable"):
        p.route("add", dst="10.2.0.0/16", gateway="10.99.0.1")


@pytest.mark.parametrize(
    "call, exc",
    [
        (lambda p: p.rule("add", table="nosuch"), ValueError),
        (lambda p: p.rule("add", src="not-an-address"), ValueError),
        (lambda p: p.rule("add", bogus=1), TypeError),
        (lambda p: p.rule("frobnicate"), ValueError),
        (lambda p: p.rule("add", fwmask=5), ValueError),
        (lambda p: p.rule("add", action="goto"), ValueError),
        (lambda p: p.rule("add", action="sideways"), ValueError),
        (lambda p: p.rule("add", family=5), ValueError),
        (lambda p: p.rule("add"), ValueError),  # ip: "ip rule add" requires arguments
        (lambda p: p.route("add", dst="10.0.0.0/8", oif="nosuch0"), (ValueError, PolicyError)),
        (lambda p: p.route("add", dst="10.0.0.0/8", bogus=1), TypeError),
        (lambda p: p.route("add", dst="10.0.0.0/8", multipath=[{"gateway": "192.168.16.1", "x": 1}]), TypeError),
        (lambda p: p.route("add", dst="10.0.0.0/99", oif="eth0"), ValueError),
    ],
)
def test_bad_keywords_are_refused_and_change_nothing(call, exc):
    p = fresh()
    before = state(p)
    with pytest.raises(exc):
        call(p)
    assert state(p) == before


def test_words():
    assert rule_words("add", src="192.168.16.20/32", table=1, priority=500) == [
        "rule",
        "add",
        "from",
        "192.168.16.20/32",
        "lookup",
        "1",
        "priority",
        "500",
    ]
    assert route_words("add", dst="default", gateway="192.168.16.1", oif="eth0", table=1) == [
        "route",
        "add",
        "default",
        "via",
        "192.168.16.1",
        "table",
        "1",
        "dev",
        "eth0",
    ]
