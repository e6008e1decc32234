"""Provisioning's kernel forms without a kernel (polroute.live.desired):
the packed route request given to the model equals route_to_c's struct, the
normal form of IPv6 reject routes, a goto rule's identity."""

from __future__ import annotations

import ipaddress
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polroute._core.binding import ffi
from polroute._core.codec import pack_route as _packed
from polroute._core.codec import route_to_c
from polroute.iproute2.batch import parse_command
from polroute.iproute2.lexer import split_args
from polroute.live.desired import normal_route, rule_ident
from polroute.model.policy import Policy
from polroute.types.requests import AF_INET6, RTN_THROW, RouteRequest, RuleRequest

EXAMPLES = int(os.environ.get("POLROUTE_HYPOTHESIS_EXAMPLES", "25"))


def _model() -> Policy:
    p = Policy()
    parse_command(split_args("link add v0 type veth peer name p0"), p).apply(p)
    return p


MODEL = _model()


def _req(line: str):
    return parse_command(split_args(line), MODEL, route_proto=245).requests[0][1]


@settings(max_examples=max(EXAMPLES, 100), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_packed_request_equals_route_to_c(data):
    six = data.draw(st.booleans())
    prefix = data.draw(
        st.sampled_from(["default", "2001:db8::/32", "2001:db8:1::1"] if six else ["default", "10.0.0.0/8", "10.1.2.3"])
    )
    gw = data.draw(st.sampled_from(["", " via 2001:db8::fe" if six else " via 10.0.0.1"]))
    dev = data.draw(st.sampled_from(["", " dev v0"]))
    rtype = data.draw(st.sampled_from(["", "blackhole ", "throw ", "unreachable ", "local "]))
    extra = data.draw(
        st.sampled_from(
            [
                "",
                " metric 7",
                " table 300",
                " table 5 metric 99",
                " src 10.0.0.9" if not six else " pref high",
                " realm 3" if not six else "",
                " mtu 1400",
                " mtu lock 1400 window 10 rto_min 5",
            ]
        )
    )
    tos = " tos 0x10" if not six and data.draw(st.booleans()) else ""
    line = f"{'-6 ' if six else ''}route add {rtype}{prefix}{gw if not rtype else ''}{dev}{extra}{tos}"
    q = _req(line)
    want, _ = route_to_c(q)
    assert _packed(q) == bytes(ffi.buffer(want)), line


def test_packed_declines_nexthops_metric_ids_past_the_array_and_out_of_range():
    assert _packed(_req("route add 10.0.0.0/8 nexthop via 10.0.0.1 dev v0 nexthop via 10.0.0.2 dev v0")) is None
    assert _packed(RouteRequest(24, 0, metrics={18: 1})) is None
    assert _packed(RouteRequest(24, 0, metrics={2: 1 << 32})) is None
    assert _packed(RouteRequest(24, 0, priority=1 << 33)) is None


def test_ipv6_reject_routes_are_on_lo():
    for t in ("throw", "unreachable", "prohibit", "blackhole"):
        n = normal_route(_req(f"route add {t} 2001:db8::/32 table 5"), lo_ifindex=1)
        assert (n.family, n.oif, n.priority) == (AF_INET6, 1, 1024), t
    n = normal_route(_req("route add throw 10.0.0.0/8 table 5"))
    assert n.oif == 0 and n.type == RTN_THROW


def test_rule_identity_ignores_whether_a_goto_resolves():
    r = RuleRequest(0, 0, priority=5, action=2, goto_target=9, src=ipaddress.IPv4Address("10.0.0.0"), src_len=8)
    unresolved = RuleRequest(**{**r.__dict__, "flags": 0x4})
    other = RuleRequest(**{**r.__dict__, "goto_target": 10})
    assert rule_ident(r) == rule_ident(unresolved)
    assert rule_ident(r) != rule_ident(other)
