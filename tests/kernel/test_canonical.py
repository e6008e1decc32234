"""Provisioning compares declared and live objects in the kernel's stored
form (provisioning issue, item 5): ``apply`` then ``plan`` is empty, and a
second ``apply`` changes nothing, also for declarations the kernel completes
(a gateway's device, IPv6 reject routes on lo, a goto's resolution); and a
desired state is validated as the kernel takes it (refusals with FILE:LINE).

Private namespaces only (``Netns``: ``prt-*``, deleted in ``finally``);
configuration only, no packet is sent.

The property test draws random desired states - every route type (unicast
with and without a device, via a gateway with and without one, onlink,
blackhole/unreachable/prohibit/throw, IPv4 multipath), rules with every
action (lookup, goto, nop, blackhole/unreachable/prohibit) and selector
(from/to/iif/oif/fwmark[/mask]/tos/uidrange/ipproto/sport/dport), both
families - and applies each to a fresh namespace.  Examples:
``POLROUTE_HYPOTHESIS_EXAMPLES`` (default 25).
"""

from __future__ import annotations

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netns import Netns  # noqa: E402

from polroute.iproute2.batch import apply_batch, apply_batch_force  # noqa: E402
from polroute.iproute2.lexer import BatchError  # noqa: E402
from polroute.live.apply import apply_text  # noqa: E402
from polroute.live.desired import DEFAULT_OWNER_PROTO, DesiredStateError  # noqa: E402
from polroute.live.plan import plan  # noqa: E402
from polroute.live.read import read_state  # noqa: E402
from polroute.live.snapshot import policy_from_state  # noqa: E402

pytestmark = pytest.mark.kernel

OWNER = DEFAULT_OWNER_PROTO
NLINKS = 2
EXAMPLES = int(os.environ.get("POLROUTE_HYPOTHESIS_EXAMPLES", "25"))


def base_text() -> str:
    """Links v0, v1 (veth, both ends here, up), 10.200.K.1/24 and
    2001:db8:K::1/64 on vK."""
    lines = ["link set lo up"]
    for k in range(NLINKS):
        lines += [
            f"link add v{k} type veth peer name p{k}",
            f"link set v{k} addrgenmode none",
            f"link set p{k} addrgenmode none",
            f"link set v{k} up",
            f"link set p{k} up",
            f"addr add 10.200.{k}.1/24 dev v{k}",
            f"addr add 2001:db8:{k}::1/64 dev v{k} nodad",
        ]
    return "\n".join(lines) + "\n"


def make_ns() -> Netns:
    ns = Netns().create()
    try:
        res = ns.batch(base_text())
        assert not res.refused(), res.refused()
    except BaseException:
        ns.delete()
        raise
    return ns


def dumps(ns: Netns) -> dict[str, list]:
    """``ip -j`` rules (in order) and routes of every table, both families."""
    out = {}
    for fam in ("-4", "-6"):
        out[f"rules{fam}"] = json.loads(ns.ip("-j", fam, "rule", "show").stdout or "[]")
        out[f"routes{fam}"] = json.loads(ns.ip("-j", fam, "route", "show", "table", "all").stdout or "[]")
    return out


def owned(d: dict[str, list]) -> dict[str, list]:
    return {k: [x for x in v if str(x.get("protocol")) == str(OWNER)] for k, v in d.items()}


def check_idempotent(ns: Netns, text: str) -> dict[str, list]:
    """Apply ``text``; then: plan (with and without prune) has no operation,
    and a second apply leaves the dumps as they were.  Returns the dumps."""
    rep = apply_text(text, filename="d.ip", netns=ns.name, prune=True)
    assert rep.ok, rep.text() + "\n" + text
    first = dumps(ns)
    for prune in (False, True):
        again = plan(text, ns.name, prune=prune, filename="d.ip")
        assert again.ops == [], again.text() + "\n" + text
    rep = apply_text(text, filename="d.ip", netns=ns.name, prune=True)
    assert rep.ok, rep.text()
    assert dumps(ns) == first, text
    return first


# ---------------------------------------------------------------------------
# the reported cases
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line, family",
    [
        ("route add default via 10.200.1.254 table 1", "-4"),
        ("route add 10.9.0.0/16 via 10.200.0.254 metric 5", "-4"),
        ("route add default via 2001:db8:1::fe table 1", "-6"),
        ("route add 2001:db8:9::/48 via 2001:db8::fe metric 7 table 2", "-6"),
    ],
)
def test_gateway_without_dev_is_not_replaced(line, family):
    ns = make_ns()
    try:
        d = check_idempotent(ns, line + "\n")
        (got,) = owned(d)[f"routes{family}"]
        assert got["dev"] == ("v1" if "1.254" in line or "1::fe" in line else "v0")
    finally:
        ns.delete()


def test_reject_routes_are_not_replaced():
    """IPv6 reject routes (the kernel puts them on lo, throw included) and
    their IPv4 counterparts."""
    text = "".join(
        f"route add {t} 2001:db8:{90 + i}::/48 table 7\nroute add {t} 10.{90 + i}.0.0/16 table 7\n"
        for i, t in enumerate(("throw", "unreachable", "prohibit", "blackhole"))
    )
    ns = make_ns()
    try:
        d = owned(check_idempotent(ns, text))
        assert len(d["routes-6"]) == 4 and {r["dev"] for r in d["routes-6"]} == {"lo"}
        assert len(d["routes-4"]) == 4
    finally:
        ns.delete()


def test_goto_rule_is_added_once():
    text = (
        "rule add from 10.0.0.0/16 iif eth1 goto 111 priority 103\n"
        "rule add lookup 5 priority 111\n"
        "-6 rule add from 2001:db8:5::/48 goto 211 priority 203\n"
        "-6 rule add lookup 5 priority 211\n"
        "rule add fwmark 3 goto 999 priority 105\n"  # unresolved: nothing at 999
    )
    ns = make_ns()
    try:
        d = owned(check_idempotent(ns, text))
        assert [r["priority"] for r in d["rules-4"]] == [103, 105, 111]
        assert [r["priority"] for r in d["rules-6"]] == [203, 211]
    finally:
        ns.delete()


def test_desired_state_is_validated_as_the_kernel_takes_it():
    """Two ``route add`` lines for one table, prefix and metric: ip -batch
    and polroute get --batch refuse the second; so does the plan (nothing
    sent), with the same message and the line."""
    text = (
        "route add 10.9.0.0/16 dev v0 table 3\n"
        "rule add from 10.1.0.0/16 lookup 3 priority 10\n"
        "route add 10.9.0.0/16 dev v1 table 3\n"
        "route add 2001:db8:9::/48 dev v0 table 3\n"
        "route add 2001:db8:9::/48 via 2001:db8:1::fe table 3\n"
        "route add 10.8.0.0/16 via 10.201.0.254 table 3\n"  # not on-link
    )
    ns = make_ns()
    try:
        before = dumps(ns)
        with pytest.raises(DesiredStateError) as ei:
            plan(text, ns.name, filename="d.ip")
        want = [
            "d.ip:3: RTNETLINK answers: File exists",
            "d.ip:5: RTNETLINK answers: File exists",
            "d.ip:6: Error: Nexthop has invalid gateway.",
        ]
        assert ei.value.errors == want
        with pytest.raises(DesiredStateError):
            apply_text(text, netns=ns.name, filename="d.ip")
        assert dumps(ns) == before
        # the model of the namespace given the file line by line (polroute get
        # --batch stops at the first refusal; -force goes on)
        model = policy_from_state(read_state(ns.name))
        with pytest.raises(BatchError) as bi:
            apply_batch(model, text, "d.ip")
        assert str(bi.value) == want[0]
        assert [str(e) for e in apply_batch_force(model, text, "d.ip")] == want
        # and ip -batch
        res = ns.batch(text, settle=False)
        assert sorted(res.failures) == [3, 5, 6], res.failures
        assert res.failures[3] == "RTNETLINK answers: File exists"
    finally:
        ns.delete()


# ---------------------------------------------------------------------------
# the property
# ---------------------------------------------------------------------------

try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover
    given = None

if given is not None:

    def _v4_route(draw, i: int, table: int) -> str:
        prefix = draw(st.sampled_from([f"10.{20 + i}.0.0/16", f"10.{20 + i}.{i}.0/24", "default"]))
        k = draw(st.integers(0, NLINKS - 1))
        kind = draw(
            st.sampled_from(
                ["dev", "via_dev", "via", "onlink", "blackhole", "unreachable", "prohibit", "throw", "multipath"]
            )
        )
        metric = draw(st.sampled_from(["", "", " metric 7", " metric 100"]))
        if kind == "dev":
            body = f"{prefix} dev v{k}"
        elif kind == "via_dev":
            body = f"{prefix} via 10.200.{k}.254 dev v{k}"
        elif kind == "via":
            body = f"{prefix} via 10.200.{k}.{draw(st.sampled_from([253, 254]))}"
        elif kind == "onlink":
            body = f"{prefix} via 192.0.2.{k + 1} dev v{k} onlink"
        elif kind == "multipath":
            legs = []
            for j in range(draw(st.integers(2, 3))):
                kk = draw(st.integers(0, NLINKS - 1))
                dev = draw(st.sampled_from([f" dev v{kk}", ""]))
                w = draw(st.sampled_from(["", " weight 2", " weight 5"]))
                legs.append(f"nexthop via 10.200.{kk}.{250 + j}{dev}{w}")
            return f"route add {prefix} table {table}{metric} {' '.join(legs)}"
        else:
            body = f"{kind} {prefix}"
        return f"route add {body} table {table}{metric}"

    def _v6_route(draw, i: int, table: int) -> str:
        prefix = draw(
            st.sampled_from([f"2001:db8:{0x100 + i:x}::/48", f"2001:db8:{0x100 + i:x}:{i:x}::/64", "default"])
        )
        k = draw(st.integers(0, NLINKS - 1))
        kind = draw(
            st.sampled_from(["dev", "via_dev", "via", "onlink", "blackhole", "unreachable", "prohibit", "throw"])
        )
        metric = draw(st.sampled_from(["", "", " metric 7", " metric 1024"]))
        if kind == "dev":
            body = f"{prefix} dev v{k}"
        elif kind == "via_dev":
            body = f"{prefix} via 2001:db8:{k}::fe dev v{k}"
        elif kind == "via":
            body = f"{prefix} via 2001:db8:{k}::{draw(st.sampled_from(['fd', 'fe']))}"
        elif kind == "onlink":
            body = f"{prefix} via 2001:db8:ff{k}::1 dev v{k} onlink"
        else:
            body = f"{kind} {prefix}"
        # ip takes a route's family from its first address: "default" and the
        # reject routes are IPv6 only with -6
        return f"-6 route add {body} table {table}{metric}"

    def _rule(draw, v6: bool, prio: int, later: list[int], tables: list[int]) -> str:
        sel = []
        action = draw(st.sampled_from(["lookup", "lookup", "goto", "nop", "blackhole", "unreachable", "prohibit"]))
        if action in ("blackhole", "unreachable", "prohibit") or draw(st.booleans()):
            # a reject rule always has a source: the kernel's gateway checks
            # (source 0.0.0.0, iif lo) must not meet it
            sel.append(f"from 2001:db8:f{prio % 16:x}::/64" if v6 else f"from 10.250.{prio % 256}.0/24")
        if draw(st.booleans()):
            sel.append(f"to 2001:db8:e{prio % 16:x}::/64" if v6 else f"to 198.51.100.{prio % 256}/32")
        if draw(st.booleans()):
            sel.append(draw(st.sampled_from(["iif v0", "iif v1", "iif eth9"])))
        if draw(st.booleans()):
            sel.append(draw(st.sampled_from(["oif v0", "oif v1", "oif eth9"])))
        if draw(st.booleans()):
            sel.append(draw(st.sampled_from(["fwmark 0x10", "fwmark 0x20/0xf0", "fwmark 7/0xff"])))
        if not v6 and draw(st.booleans()):
            sel.append("tos 0x10")
        if draw(st.booleans()):
            sel.append(draw(st.sampled_from(["uidrange 1000-2000", "uidrange 0-0"])))
        if draw(st.booleans()):
            sel.append(draw(st.sampled_from(["ipproto tcp", "ipproto udp", "ipproto 17"])))
            if draw(st.booleans()):
                sel.append(draw(st.sampled_from(["sport 1000-2000", "sport 53"])))
            if draw(st.booleans()):
                sel.append(draw(st.sampled_from(["dport 443", "dport 8000-8080"])))
        if action == "lookup":
            act = f"lookup {draw(st.sampled_from(tables or [100]))}"
        elif action == "goto":
            act = f"goto {draw(st.sampled_from(later + [prio + 1]))}"  # forward: to a rule, or to none
        else:
            act = action
        line = f"rule add {' '.join(sel)} {act} priority {prio}".replace("  ", " ")
        return f"-6 {line}" if v6 else line

    @st.composite
    def desired_states(draw) -> str:
        tables = draw(st.lists(st.integers(100, 104), min_size=1, max_size=3, unique=True))
        lines = []
        for i in range(draw(st.integers(0, 6))):
            lines.append(_v4_route(draw, i, draw(st.sampled_from(tables))))
        for i in range(draw(st.integers(0, 4))):
            lines.append(_v6_route(draw, i, draw(st.sampled_from(tables))))
        # one route per table, prefix and metric (the kernel refuses a second add)
        seen, routes = set(), []
        for l in lines:
            w = l.split()
            prefix = next(x for x in w[2 + (w[0] == "-6") :] if "/" in x or x == "default")
            metric = w[w.index("metric") + 1] if "metric" in w else "1024" if w[0] == "-6" else "0"
            key = (w[0] == "-6", prefix, w[w.index("table") + 1], metric)
            if key not in seen:
                seen.add(key)
                routes.append(l)
        rules = []
        for v6 in (False, True):
            prios = sorted(draw(st.lists(st.integers(10, 60), max_size=5, unique=True)))
            for j, p in enumerate(prios):
                rules.append(_rule(draw, v6, p, prios[j + 1 :], tables))
        objs = routes + rules
        order = draw(st.permutations(range(len(objs))))
        return "".join(objs[i] + "\n" for i in order)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
    )
    @given(desired_states())
    def test_random_desired_state_apply_then_plan_is_empty(text):
        ns = make_ns()
        try:
            check_idempotent(ns, text)
        finally:
            ns.delete()


def test_model_ifindexes_differ_from_the_kernels():
    """Links deleted before: the kernel's ifindexes have gaps the model's do
    not; declared devices and resolved ones still compare right."""
    ns = Netns().create()
    try:
        gaps = "link add d0 type veth peer name d1\nlink del d0\n"
        assert not ns.batch(gaps).refused()
        assert not ns.batch(base_text()).refused()
        state = read_state(ns.name)
        model = policy_from_state(state)
        kernel_idx = {l.name: l.ifindex for l in state.links}
        model_idx = {l.name: l.ifindex for l in model.links()}
        assert kernel_idx["v0"] != model_idx["v0"]
        text = (
            "route add default via 10.200.1.254 table 1\n"
            "route add 10.9.0.0/16 dev v1 table 1\n"
            "route add 10.8.0.0/16 table 1 nexthop via 10.200.0.254 nexthop via 10.200.1.254 dev v1 weight 3\n"
            "route add default via 2001:db8:1::fe table 2\n"
            "route add throw 2001:db8:7::/48 table 2\n"
            "rule add iif v1 lookup 1 priority 10\n"
        )
        d = owned(check_idempotent(ns, text))
        assert [r.get("dev") for r in d["routes-4"] if r["dst"] == "default"] == ["v1"]
        assert [r.get("dev") for r in d["routes-6"] if r["dst"] == "default"] == ["v1"]
    finally:
        ns.delete()
