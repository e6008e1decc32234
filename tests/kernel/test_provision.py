"""Provisioning (polroute.live.plan / polroute.live.apply: plan / apply / rollback) against the kernel.

Every test works in private namespaces (``prt-*``, deleted in ``finally``)
and only configures links, addresses, rules and routes, and asks route
lookups: no packet is sent.

The oracle for "apply gives the desired state" is independent of polroute's
own comparison: a second namespace with the same links and addresses gets
the desired text through plain ``ip -batch`` (owner protocol written out),
and the two namespaces' ``ip -j rule show`` / ``ip -j route show table all``
must be equal.  Desired states are random (seed printed: POLROUTE_SEED=N),
and each test applies a sequence of them, so that replaces, prunes and
re-orderings happen on top of earlier states.
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netns import Netns  # noqa: E402

from compare import diff_answers, is_not_modelled  # noqa: E402
from polroute.iproute2.route_get import get_json  # noqa: E402
from polroute.live.apply import apply, apply_text  # noqa: E402
from polroute.live.desired import DEFAULT_OWNER_PROTO, DesiredStateError  # noqa: E402
from polroute.live.ops import PHASE_ROUTE_ADD, PHASE_ROUTE_DEL, PHASE_RULE_ADD, PHASE_RULE_DEL  # noqa: E402
from polroute.live.plan import plan  # noqa: E402
from polroute.live.read import read_state  # noqa: E402
from polroute.live.session import PlanStale  # noqa: E402
from polroute.live.snapshot import policy_from_state  # noqa: E402

pytestmark = pytest.mark.kernel

OWNER = DEFAULT_OWNER_PROTO
NLINKS = 4


def _seed() -> int:
    s = int(os.environ.get("POLROUTE_SEED", random.SystemRandom().randrange(1 << 40)))
    print(f"POLROUTE_SEED={s}")
    return s


def base_text(n_local: int = 0) -> str:
    """Links v0..v3 (veth, both ends here, up), 10.200.K.1/24 and 2001:db8:K::1/64
    on vK, and n_local tenant addresses 172.16.x.y/32 spread over them."""
    lines = []
    for k in range(NLINKS):
        # addrgenmode none: no MAC-derived link-local address (it would differ between namespaces)
        lines += [
            f"link add v{k} type veth peer name p{k}",
            f"link set v{k} addrgenmode none",
            f"link set p{k} addrgenmode none",
            f"link set v{k} up",
            f"link set p{k} up",
            f"addr add 10.200.{k}.1/24 dev v{k}",
            f"addr add 2001:db8:{k}::1/64 dev v{k} nodad",
        ]
    for i in range(n_local):
        lines.append(f"addr add {tenant_addr(i)}/32 dev v{i % NLINKS}")
    return "\n".join(lines) + "\n"


def tenant_addr(i: int) -> str:
    return f"172.16.{i // 250}.{i % 250 + 1}"


def make_ns(n_local: int = 0) -> Netns:
    ns = Netns().create()
    r = ns.ip("-batch", "-", stdin=base_text(n_local))
    assert r.returncode == 0, r.stderr
    return ns


class DesiredGen:
    """Random desired states over the base links: tenants (a table with a
    default route and maybe a link route, a `from` rule), IPv6 tenants, rules
    with other selectors, multipath, reject routes, metrics, append groups,
    rules sharing a priority."""

    def __init__(self, rng: random.Random, n: int):
        self.rng = rng
        self.n = n
        self.objs: dict[str, str] = {}  # identity -> line (without proto)
        for i in range(n):
            self._tenant(i)
        for j in range(rng.randrange(1, 6)):
            self._extra(j)

    def _tenant(self, i: int) -> None:
        r = self.rng
        k = r.randrange(NLINKS)
        t = 1000 + i
        if r.random() < 0.8:
            self.objs[f"r4-{t}"] = f"route add default via 10.200.{k}.{r.choice((254, 253))} dev v{k} table {t}"
            if r.random() < 0.3:
                self.objs[f"r4l-{t}"] = f"route add 10.200.{k}.0/24 dev v{k} src 10.200.{k}.1 table {t}"
            prio = 1000 + (i if r.random() < 0.8 else i - i % 3)  # some share a priority
            self.objs[f"u4-{i}"] = f"rule add from {tenant_addr(i)} lookup {t} priority {prio}"
        else:
            self.objs[f"r6-{t}"] = f"route add default via 2001:db8:{k}::fe dev v{k} table {t}"
            self.objs[f"u6-{i}"] = f"-6 rule add from 2001:db8:ff::{i + 1:x} lookup {t} priority {1000 + i}"

    def _extra(self, j: int) -> None:
        r = self.rng
        t = 5000 + j
        kind = r.randrange(6)
        if kind == 0:
            self.objs[f"mp-{t}"] = (
                f"route add 10.{50 + j}.0.0/16 table {t} nexthop via 10.200.0.254 dev v0 "
                f"nexthop via 10.200.1.254 dev v1 weight {r.randrange(1, 4)}"
            )
        elif kind == 1:
            self.objs[f"bh-{t}"] = f"route add blackhole 10.{60 + j}.0.0/16 table {t}"
            self.objs[f"un6-{t}"] = f"route add unreachable 2001:db8:{0x77 + j:x}::/48 table {t}"
        elif kind == 2:
            self.objs[f"mtu-{t}"] = f"route add 10.{70 + j}.0.0/16 via 10.200.2.254 dev v2 mtu 1400 metric 7"
        elif kind == 3:
            # an append group: two routes under one key
            self.objs[f"ap1-{t}"] = f"route add 10.{80 + j}.0.0/16 via 10.200.3.254 dev v3 table {t}"
            self.objs[f"ap2-{t}"] = f"route append 10.{80 + j}.0.0/16 via 10.200.2.254 dev v2 table {t}"
        elif kind == 4:
            self.objs[f"fw-{j}"] = f"rule add fwmark {0x10 + j:#x}/0xff lookup {t} priority {700 + j}"
            self.objs[f"fwr-{t}"] = f"route add default via 10.200.1.254 dev v1 table {t}"
        else:
            self.objs[f"sel-{j}"] = (
                f"rule add to 198.51.100.{j}/32 iif v{j % NLINKS} ipproto tcp dport "
                f"{1000 + j}-{2000 + j} tos 0x10 lookup {5000 + j} priority {800 + j}"
            )

    def mutate(self) -> None:
        """Drop, change and add some objects; shuffle rules sharing a priority."""
        r = self.rng
        keys = list(self.objs)
        for key in r.sample(keys, k=max(1, len(keys) // 5)):
            del self.objs[key]
        for key in list(self.objs):
            if key.startswith("r4-") and r.random() < 0.2:  # a replace (same key, new gateway)
                k = r.randrange(NLINKS)
                t = key[3:]
                self.objs[key] = f"route add default via 10.200.{k}.252 dev v{k} table {t}"
        for i in range(self.n, self.n + r.randrange(1, 5)):
            self._tenant(i)
        self.n += 5
        items = list(self.objs.items())
        r.shuffle(items)
        self.objs = dict(items)

    def text(self, explicit_proto: bool) -> str:
        """Routes first (an append after its add), then rules; with
        explicit_proto each line names the owner protocol (for plain ip)."""
        routes = [l for k, l in self.objs.items() if "rule" not in l and "append" not in l]
        routes += [l for k, l in self.objs.items() if "append" in l]
        rules = [l for l in self.objs.values() if "rule" in l]
        out = []
        for l in routes + rules:
            if explicit_proto or self.rng.random() < 0.2:
                # right after the verb: a keyword may precede the prefix, never follow a nexthop
                head, verb, rest = l.partition(" add " if " add " in l else " append ")
                word = "protocol" if "rule" in l else "proto"
                l = f"{head}{verb}{word} {OWNER} {rest}"
            out.append(l)
        return "\n".join(out) + "\n"


def dumps(ns: Netns) -> dict[str, list]:
    out = {}
    for fam in ("-4", "-6"):
        r = ns.ip("-j", fam, "rule", "show")
        out[f"rules{fam}"] = json.loads(r.stdout or "[]")
        r = ns.ip("-j", fam, "route", "show", "table", "all")
        routes = json.loads(r.stdout or "[]")
        out[f"routes{fam}"] = sorted(json.dumps(x, sort_keys=True) for x in routes)
    return out


def oracle_dumps(desired_text: str, n_local: int = 0) -> dict[str, list]:
    """The dumps of a fresh namespace that got ``desired_text`` with ip -batch."""
    ns = make_ns(n_local)
    try:
        v4 = "\n".join(l for l in desired_text.splitlines() if not l.startswith("-6 "))
        v6 = "\n".join(l[3:] for l in desired_text.splitlines() if l.startswith("-6 "))
        r = ns.ip("-batch", "-", stdin=v4 + "\n")
        assert r.returncode == 0, f"oracle ip -batch: {r.stderr}"
        if v6.strip():
            r = ns.ip("-6", "-batch", "-", stdin=v6 + "\n")
            assert r.returncode == 0, f"oracle ip -6 -batch: {r.stderr}"
        return dumps(ns)
    finally:
        ns.delete()


def assert_same(a: dict, b: dict) -> None:
    for key in a:
        assert a[key] == b[key], f"{key} differ:\n" + "\n".join(
            [f"- {x}" for x in a[key] if x not in b[key]] + [f"+ {x}" for x in b[key] if x not in a[key]]
        )


# ---------------------------------------------------------------------------


def test_apply_sequence_matches_ip_batch_and_is_idempotent():
    """Random desired states applied one after the other (prune): each time
    the namespace equals a fresh one given the same text by ip -batch, and a
    second apply plans nothing."""
    rng = random.Random(_seed())
    gen = DesiredGen(rng, 40)
    ns = make_ns(0)
    try:
        for step in range(4):
            text = gen.text(explicit_proto=False)
            rep = apply_text(text, filename=f"step{step}.ip", netns=ns.name, prune=True)
            assert rep.ok, rep.text() + "\n" + text
            assert_same(oracle_dumps(gen.text(explicit_proto=True)), dumps(ns))
            again = plan(text, ns.name, prune=True)
            assert again.ops == [], again.text()
            gen.mutate()
    finally:
        ns.delete()


def test_foreign_objects_survive_and_conflicts_are_refused():
    ns = make_ns(0)
    try:
        foreign = (
            "route add 10.9.0.0/16 via 10.200.0.254 dev v0 proto static\n"
            "route add default via 10.200.1.254 dev v1 table 1000\n"  # proto boot
            "rule add from 172.16.0.1 lookup 1000 priority 1000 protocol static\n"
            "rule add fwmark 7 lookup 1000 priority 900\n"
        )
        assert ns.ip("-batch", "-", stdin=foreign).returncode == 0
        before = dumps(ns)
        # a declared route on a key a foreign route holds: refused, nothing sent
        with pytest.raises(DesiredStateError) as ei:
            plan("route add default via 10.200.2.254 dev v2 table 1000\n", ns.name, filename="d.ip")
        assert ei.value.errors[0].startswith(
            "d.ip:1: the kernel already has 'route add default table 1000 via 10.200.1.254 dev v1'"
        )
        # owned objects next to the foreign ones, then pruned: the foreign ones stay
        desired = (
            "route add default via 10.200.2.254 dev v2 table 1001\n"
            "rule add from 172.16.0.1 lookup 1001 priority 1000\n"  # same pref, owned
            "rule add fwmark 7 lookup 1001 priority 900\n"
        )
        assert apply_text(desired, netns=ns.name, prune=True).ok
        after = dumps(ns)
        for key in before:
            for x in before[key]:
                assert x in after[key], f"foreign {x} lost"
        assert apply_text("", netns=ns.name, prune=True).ok
        assert_same(before, dumps(ns))
        # --adopt takes over the foreign route (and its undo would restore it)
        p = plan("route add default via 10.200.2.254 dev v2 table 1000\n", ns.name, adopt=True)
        assert [op.verb for op in p.ops] == ["replace"]
        assert p.ops[0].undo.protocol == 3
    finally:
        ns.delete()


def test_failure_in_a_10000_object_batch_leaves_the_kernel_as_before():
    """5,000 tenants (rule + default route each) over an owned state of 300,
    with pruning and replaces.  A gateway that is not on-link is refused by
    the plan (the model validates the desired state: nothing is sent).  Then one
    route in the middle of a plan gets that gateway (what the model did not
    foresee): the kernel refuses that add, everything is undone, and the dumps
    equal the ones before."""
    rng = random.Random(_seed())
    ns = make_ns(0)
    try:
        first = [
            f"route add default via 10.200.{i % 4}.254 dev v{i % 4} table {1000 + i}\n"
            f"rule add from {tenant_addr(i)} lookup {1000 + i} priority {1000 + i}"
            for i in range(300)
        ]
        assert apply_text("\n".join(first) + "\n", netns=ns.name).ok
        bad = rng.randrange(1000, 4000)

        def text(bad_gw: bool) -> str:
            lines = []
            for i in range(100, 5100):
                gw = f"10.200.{i % 4}.{253 if i % 7 == 0 else 254}"
                if i == bad and bad_gw:
                    gw = "10.201.0.254"  # not on-link: "Nexthop has invalid gateway"
                lines.append(f"route add default via {gw} dev v{i % 4} table {1000 + i}")
                lines.append(f"rule add from {tenant_addr(i)} lookup {1000 + i} priority {1000 + i}")
            return "\n".join(lines) + "\n"

        before = dumps(ns)
        with pytest.raises(DesiredStateError) as ei:
            plan(text(True), ns.name, filename="big.ip", prune=True)
        assert ei.value.errors == [f"big.ip:{2 * (bad - 100) + 1}: Error: Nexthop has invalid gateway."]
        assert_same(before, dumps(ns))
        # a refusal the model did not foresee: one request of the plan changed
        p = plan(text(False), ns.name, filename="big.ip", prune=True)
        (op,) = [op for op in p.ops if op.kind == "route" and op.req.table == 1000 + bad]
        op.req.gateway = ipaddress.IPv4Address("10.201.0.254")
        rep = apply(p)
        assert not rep.ok
        line = 2 * (bad - 100) + 1
        assert [str(f) for f in rep.failures] == [f"big.ip:{line}: {op.text}: Error: Nexthop has invalid gateway."]
        assert rep.rolled_back and rep.restored, rep.text()
        assert_same(before, dumps(ns))
    finally:
        ns.delete()


def test_not_confirmed_rolls_back_every_phase():
    rng = random.Random(_seed())
    gen = DesiredGen(rng, 30)
    ns = make_ns(0)
    try:
        assert apply_text(gen.text(False), netns=ns.name, prune=True).ok
        before = dumps(ns)
        gen.mutate()
        p = plan(gen.text(False), ns.name, prune=True)
        assert {op.phase for op in p.ops} >= {
            PHASE_ROUTE_ADD,
            PHASE_RULE_ADD,
            PHASE_RULE_DEL,
            PHASE_ROUTE_DEL,
        }, p.text()
        rep = apply(p, confirm_seconds=0.2, ask=lambda left: False)
        assert rep.confirmed is False and rep.rolled_back and rep.restored, rep.text()
        assert_same(before, dumps(ns))
        # confirmed: kept
        rep = apply(plan(gen.text(False), ns.name, prune=True), confirm_seconds=5, ask=lambda left: True)
        assert rep.ok and rep.confirmed
        assert plan(gen.text(False), ns.name, prune=True).ops == []
    finally:
        ns.delete()


def test_concurrent_writer_keeps_its_objects():
    """Between plan and apply another tool adds a rule equal to an owned one
    (its own protocol) and takes over an owned route's key: the stale plan is
    refused with nothing sent (compare-and-set); planned again, the prune
    deletes neither foreign object."""
    ns = make_ns(0)
    try:
        owned = (
            "route add default via 10.200.0.254 dev v0 table 1000\n"
            "route add default via 10.200.0.254 dev v0 table 1001\n"
            "rule add from 172.16.0.1 lookup 1000 priority 1000\n"
        )
        assert apply_text(owned, netns=ns.name).ok
        p = plan("", ns.name, prune=True)
        assert len(p.ops) == 3
        assert (
            ns.ip(
                "rule", "add", "from", "172.16.0.1", "lookup", "1000", "priority", "1000", "protocol", "static"
            ).returncode
            == 0
        )
        assert (
            ns.ip(
                "route", "replace", "default", "via", "10.200.1.254", "dev", "v1", "table", "1001", "proto", "static"
            ).returncode
            == 0
        )
        before = dumps(ns)
        with pytest.raises(PlanStale, match="changed since the plan was made") as e:
            apply(p)
        assert "rule extra: rule add pref 1000 from 172.16.0.1/32 lookup 1000 protocol static" in e.value.differences
        assert_same(before, dumps(ns))
        p = plan("", ns.name, prune=True)
        assert len(p.ops) == 2  # the owned rule and the owned route of table 1000
        rep = apply(p)
        assert rep.ok, rep.text()
        rules = ns.ip("rule", "show").stdout
        assert "from 172.16.0.1 lookup 1000 proto static" in rules
        assert f"proto {OWNER}" not in rules
        assert "default via 10.200.1.254 dev v1 proto static" in ns.ip("route", "show", "table", "1001").stdout
        assert ns.ip("route", "show", "table", "1000").stdout == ""
    finally:
        ns.delete()


def test_rule_order_within_a_priority_follows_the_declaration():
    rng = random.Random(_seed())
    ns = make_ns(0)
    try:
        rules = [f"rule add from 172.16.0.{i} lookup {100 + i} priority 500" for i in range(1, 7)]
        for _ in range(5):
            rng.shuffle(rules)
            keep = rules[: rng.randrange(3, 7)]
            assert apply_text("\n".join(keep) + "\n", netns=ns.name, prune=True).ok
            got = [
                l.split(":", 1)[1].strip() for l in ns.ip("rule", "show").stdout.splitlines() if l.startswith("500:")
            ]
            want = [f"from 172.16.0.{l.split()[3].rsplit('.', 1)[1]} lookup {l.split()[5]} proto {OWNER}" for l in keep]
            assert got == want
    finally:
        ns.delete()


def test_model_and_kernel_agree_after_apply():
    rng = random.Random(_seed())
    gen = DesiredGen(rng, 60)
    ns = make_ns(60 + 40)
    try:
        assert apply_text(gen.text(False), netns=ns.name, prune=True).ok
        policy = policy_from_state(read_state(ns.name))
        checked = 0
        for _ in range(150):
            i = rng.randrange(100)
            flow = [f"198.51.100.{rng.randrange(256)}", "from", tenant_addr(i)]
            if rng.random() < 0.3:
                flow += ["mark", str(0x10 + rng.randrange(6))]
            ma = get_json(policy, list(flow))
            if is_not_modelled(ma):
                continue
            ka = ns.route_get_json(flow)
            assert not diff_answers(ka, ma), (flow, ka, ma)
            checked += 1
        assert checked > 100
    finally:
        ns.delete()


def _cli(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run(
        [sys.executable, "-m", "polroute", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_cli_plan_apply_dry_run_bad_input(tmp_path):
    ns = make_ns(0)
    try:
        good = tmp_path / "good.ip"
        good.write_text(
            "# uplink 1\nroute add default via 10.200.0.254 dev v0 table 1\n"
            "rule add from 172.16.0.1 lookup 1 priority 100\n"
        )
        before = dumps(ns)
        r = _cli("apply", "--batch", str(good), "--netns", ns.name, "--dry-run")
        assert r.returncode == 0, r.stderr
        assert f"route add default table 1 via 10.200.0.254 dev v0 proto {OWNER}    # {good}:2" in r.stdout
        assert_same(before, dumps(ns))
        bad = tmp_path / "bad.ip"
        bad.write_text(
            "route add default via 10.200.0.254 dev v0 table 1\n"
            "route add default via 10.200.0.254 dev nosuchdev table 2\n"
            "rule add from 172.16.0.1 lookup 1\n"
        )
        r = _cli("apply", "--batch", str(bad), "--netns", ns.name)
        assert r.returncode == 1
        assert r.stderr.splitlines() == [
            f'polroute: {bad}:2: Cannot find device "nosuchdev"',
            f"polroute: {bad}:3: a declared rule needs an explicit 'priority' (the kernel would "
            "pick one from the rules present at the time)",
            "polroute: apply: nothing was changed",
        ]
        assert_same(before, dumps(ns))
        r = _cli("apply", "--batch", str(good), "--netns", ns.name)
        assert r.returncode == 0 and r.stdout.startswith(
            f"applied to namespace {ns.name}: 1 routes add, 1 rules add; 0 unchanged"
        )
        r = _cli("plan", "--batch", str(good), "--netns", ns.name)
        assert r.returncode == 0 and "no changes; 2 unchanged" in r.stdout
        r = _cli("snapshot", "--owned", "--netns", ns.name)
        assert r.stdout == (
            f"route add default table 1 via 10.200.0.254 dev v0 proto {OWNER}\n"
            f"rule add pref 100 from 172.16.0.1/32 lookup 1 protocol {OWNER}\n"
        )
    finally:
        ns.delete()


def test_cli_confirm(tmp_path):
    ns = make_ns(0)
    env = {"POLROUTE_RUN_DIR": str(tmp_path / "run")}
    try:
        d = tmp_path / "d.ip"
        d.write_text("route add default via 10.200.0.254 dev v0 table 1\n")
        before = dumps(ns)
        r = _cli("apply", "--batch", str(d), "--netns", ns.name, "--confirm", "0.5", env_extra=env)
        assert r.returncode == 3, r.stderr
        assert "not confirmed in time" in r.stderr and "as it was before" in r.stderr
        assert_same(before, dumps(ns))
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "polroute",
                "apply",
                "--batch",
                str(d),
                "--netns",
                ns.name,
                "--confirm",
                "30",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ, **env),
        )
        try:
            import time

            deadline = time.time() + 20
            while True:
                c = _cli("confirm", "--netns", ns.name, env_extra=env)
                if c.returncode == 0 or time.time() > deadline:
                    break
                time.sleep(0.1)
            assert c.returncode == 0, c.stderr
            out, err = proc.communicate(timeout=30)
        finally:
            proc.kill()
        assert proc.returncode == 0, err
        assert "default via 10.200.0.254 dev v0" in ns.ip("route", "show", "table", "1").stdout
    finally:
        ns.delete()
