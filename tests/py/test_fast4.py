"""The specialised IPv4 evaluator (csrc/fast4.c) answers exactly as the exact path.

``CompiledPolicy.lookup_bulk`` with only ``dst``/``src`` columns goes through
fast4; ``fast=False`` forces the exact path (pr_route_get per row, itself
checked against the kernel and the reference model elsewhere).  Every output
column must be equal on:

* the reference suite's random policies (every route type, rules with every
  selector and action, deletions, a link set down, sysctls);
* policies aimed at fast4's own cases: nested ``from`` prefixes, ``to``
  rules, throw / error routes, one-prefix tables, rules naming tables that do
  not exist, local-table prefixes covering sources, merged policies;
* flows aimed at every prefix boundary (network - 1, network, broadcast,
  broadcast + 1, inside) of every address in the policy, local addresses,
  0.0.0.0, loopback, multicast and broadcast, both as source and as
  destination.

``fast_rows`` (rows fast4 answered itself) keeps the comparison honest: the
tenant workload must be answered by fast4 entirely, and across the random
policies a good share of rows must be.
"""

from __future__ import annotations

import contextlib
import ipaddress
import random
import re
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from polroute import Policy
from polroute._core.errors import PolicyError
from polroute.iproute2.batch import apply_batch, apply_line
from polroute.iproute2.lexer import ParseError
from polroute.model.bulk import lookup_bulk

COLUMNS = ("error", "type", "table", "rule_priority", "oif", "gateway", "prefsrc", "flags")
SPECIAL = [
    "0.0.0.0",
    "127.0.0.1",
    "127.1.2.3",
    "224.0.0.1",
    "239.9.9.9",
    "255.255.255.255",
    "240.0.0.1",
    "1.1.1.1",
    "8.8.8.8",
]


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from suite_modules import reference_vs_core  # noqa: E402

rvc = reference_vs_core()

_ADDR = re.compile(r"(?<![\d.:])(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})(?:/(\d{1,2}))?(?![\d.])")


def boundary_addresses(lines, rnd: random.Random) -> list[int]:
    """Every IPv4 address/prefix in the lines, with its edges and an inside point."""
    out = {int(ipaddress.IPv4Address(a)) for a in SPECIAL}
    for line in lines:
        for a, plen in _ADDR.findall(line):
            try:
                v = int(ipaddress.IPv4Address(a))
            except ValueError:
                continue
            plen = int(plen) if plen else 32
            if plen > 32:
                continue
            mask = (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF if plen else 0
            net, last = v & mask, (v & mask) | (~mask & 0xFFFFFFFF)
            out.update(
                {v, net, last, (net - 1) & 0xFFFFFFFF, (last + 1) & 0xFFFFFFFF, net + rnd.randint(0, last - net)}
            )
    return sorted(out)


def flows_for(lines, rnd: random.Random, n: int, local: list[int]):
    pool = boundary_addresses(lines, rnd)
    dst = np.array(
        [rnd.choice(pool) if rnd.random() < 0.85 else rnd.getrandbits(32) for _ in range(n)], dtype=np.uint32
    )
    srcs = pool + local * 4 + [0] * max(4, len(pool) // 3)
    src = np.array([rnd.choice(srcs) for _ in range(n)], dtype=np.uint32)
    return dst, src


def local_addresses(p: Policy) -> list[int]:
    out = []
    for a in p.addresses():
        addr = getattr(a, "local", None) or getattr(a, "address", None)
        if isinstance(addr, ipaddress.IPv4Address):
            out.append(int(addr))
    return out


def compare(p: Policy, dst, src, what: str):
    """fast == exact on every column; returns the fast answer."""
    snap = p.compile()
    fast = lookup_bulk(snap, dst, src=src)
    exact = lookup_bulk(snap, dst, src=src, fast=False)
    assert fast.fast_rows is not None and exact.fast_rows is None
    for col in COLUMNS:
        a, b = getattr(fast, col), getattr(exact, col)
        if not np.array_equal(a, b):
            i = int(np.nonzero(a != b)[0][0])
            pytest.fail(
                f"{what}: column {col} differs at row {i}: fast {a[i]} exact {b[i]} for "
                f"src {ipaddress.IPv4Address(int(src[i]))} dst {ipaddress.IPv4Address(int(dst[i]))}; "
                f"exact row: " + ", ".join(f"{c}={getattr(exact, c)[i]}" for c in COLUMNS)
            )
    return fast


# ------------------------------------------------------------------ the reference suite's policies


def reference_policy(seed: int, n_ops: int, rules: bool = True):
    sc = rvc.Gen(random.Random(seed), n_ops, 0, rules=rules, v6=False).build()
    return sc.build(), sc.lines


@pytest.mark.parametrize("seed", range(40))
def test_reference_policies(seed):
    p, lines = reference_policy(seed, 45, rules=seed % 5 != 0)
    rnd = random.Random(seed)
    dst, src = flows_for(lines, rnd, 3000, local_addresses(p))
    compare(p, dst, src, f"seed {seed}")


@rvc.PROPERTY
@given(seed=st.integers(0, 2**32 - 1), n_ops=st.integers(0, 60), rules=st.booleans())
def test_reference_policies_property(seed, n_ops, rules):
    p, lines = reference_policy(seed, n_ops, rules)
    dst, src = flows_for(lines, random.Random(seed), 600, local_addresses(p))
    compare(p, dst, src, f"seed {seed} n_ops {n_ops} rules {rules}")


def test_fast4_answers_rows_of_the_random_policies():
    """Not vacuous: fast4 itself answers some of the rows compared above (the
    reference policies are rule-heavy: an inverted or goto rule any source can
    reach sends every row to the exact path)."""
    fast = total = 0
    for seed in range(12):
        p, lines = reference_policy(seed, 45)
        dst, src = flows_for(lines, random.Random(seed), 2000, local_addresses(p))
        res = compare(p, dst, src, f"seed {seed}")
        fast += res.fast_rows
        total += len(dst)
    assert fast > 0.01 * total, f"fast4 answered {fast} of {total} rows"


# ------------------------------------------------------------------ policies aimed at fast4


def fast4_policy(rnd: random.Random):
    """Tenant-like policies with the shapes fast4 compiles, and a few it must refuse."""
    lines = ["link set lo up"]
    for k in range(3):
        lines += [
            f"link add v{k} type veth peer name v{k}p",
            f"link set v{k} up",
            f"link set v{k}p up",
            f"addr add 10.20{k}.0.1/24 dev v{k}",
        ]
    if rnd.random() < 0.3:
        lines.append("link set v2 down")
    base = [f"172.16.{rnd.randint(0, 3)}.0", "172.16.0.0", "198.18.0.0", "8.8.8.0"]
    tables = [1000 + i for i in range(rnd.randint(1, 12))]
    for t in tables:
        k = rnd.randrange(3)
        for _ in range(rnd.choice([1, 1, 1, 2, 3, 9, 12])):
            plen = rnd.choice([0, 0, 8, 16, 24, 25, 32])
            net = ipaddress.IPv4Network(f"{rnd.choice(base)}/{plen}", strict=False)
            dst = "default" if plen == 0 else str(net)
            kind = rnd.choices(
                ["via", "dev", "unreachable", "prohibit", "blackhole", "throw", "src"], [40, 15, 8, 5, 5, 10, 8]
            )[0]
            if kind == "via":
                lines.append(f"route replace {dst} via 10.20{k}.0.254 dev v{k} table {t}")
            elif kind == "dev":
                lines.append(f"route replace {dst} dev v{k} table {t}")
            elif kind == "src":
                lines.append(f"route replace {dst} via 10.20{k}.0.254 dev v{k} src 10.20{k}.0.1 table {t}")
            else:
                lines.append(f"route replace {kind} {dst} table {t}")
    for _i in range(rnd.randint(0, 40)):
        a = ipaddress.IPv4Address(f"172.16.{rnd.randint(0, 3)}.{rnd.randint(1, 254)}")
        lines.append(f"addr add {a}/{rnd.choice([32, 32, 28])} dev v{rnd.randrange(3)}")
    for _i in range(rnd.randint(0, 30)):
        plen = rnd.choice([32, 32, 28, 24, 16, 0])
        src = ipaddress.IPv4Network(f"172.16.{rnd.randint(0, 3)}.{rnd.randint(0, 255)}/{plen}", strict=False)
        sel = f"from {src}" if plen else "from all"
        if rnd.random() < 0.2:
            sel += f" to {ipaddress.IPv4Network(f'{rnd.choice(base)}/{rnd.choice([8, 16, 24])}', strict=False)}"
        prio = rnd.choice([rnd.randint(1, 40000), 100, 100, 32766])
        action = rnd.choices(
            ["lookup", "missing", "unreachable", "prohibit", "goto", "nop", "suppress", "mark", "invert"],
            [70, 4, 3, 2, 3, 2, 4, 6, 3],
        )[0]
        if action == "lookup":
            lines.append(f"rule add {sel} lookup {rnd.choice(tables)} priority {prio}")
        elif action == "missing":
            lines.append(f"rule add {sel} lookup 4242 priority {prio}")
        elif action in ("unreachable", "prohibit"):
            lines.append(f"rule add {sel} {action} priority {prio}")
        elif action == "goto":
            lines.append(f"rule add {sel} goto {prio + rnd.randint(1, 50)} priority {prio}")
        elif action == "nop":
            lines.append(f"rule add {sel} nop priority {prio}")
        elif action == "suppress":
            lines.append(f"rule add {sel} lookup main suppress_prefixlength {rnd.choice([0, 8, 24])} priority {prio}")
        elif action == "mark":
            lines.append(
                f"rule add {sel} fwmark {rnd.choice(['0', '0x1', '0/0x1'])} lookup {rnd.choice(tables)} priority {prio}"
            )
        else:
            lines.append(f"rule add not {sel} lookup {rnd.choice(tables)} priority {prio}")
    for _ in range(rnd.randint(0, 20)):
        plen = rnd.choice([8, 16, 24, 32])
        net = ipaddress.IPv4Network(f"{rnd.choice(base)}/{plen}", strict=False)
        k = rnd.randrange(3)
        lines.append(f"route replace {net} via 10.20{k}.0.254 dev v{k}")
    if rnd.random() < 0.7:
        lines.append("route replace default via 10.200.0.254 dev v0")
    if rnd.random() < 0.15:
        lines.append("route replace local 172.16.9.0/24 dev lo table local")
    p = Policy()
    applied = []
    for line in lines:
        try:
            apply_batch(p, line + "\n", "fast4.ip")
        except Exception:
            continue  # a refused line changes nothing
        applied.append(line)
    return p, applied


@pytest.mark.parametrize("seed", range(60))
def test_fast4_shaped_policies(seed):
    rnd = random.Random(1000 + seed)
    p, lines = fast4_policy(rnd)
    dst, src = flows_for(lines, rnd, 3000, local_addresses(p))
    compare(p, dst, src, f"fast4 seed {seed}\n" + "\n".join(lines))


def test_fast4_answers_most_fast4_shaped_rows():
    """About a quarter of these rows have a source that is not local (the exact
    path's ENETUNREACH) or reach a rule fast4 leaves to the exact path."""
    fast = total = 0
    for seed in range(30):
        rnd = random.Random(1000 + seed)
        p, lines = fast4_policy(rnd)
        dst, src = flows_for(lines, rnd, 2000, local_addresses(p))
        res = compare(p, dst, src, f"fast4 seed {seed}")
        fast += res.fast_rows
        total += len(dst)
    assert fast >= 0.15 * total, f"fast4 answered {fast} of {total} rows"


@rvc.PROPERTY
@given(seed=st.integers(0, 2**32 - 1))
def test_fast4_shaped_policies_property(seed):
    rnd = random.Random(seed)
    p, lines = fast4_policy(rnd)
    dst, src = flows_for(lines, rnd, 800, local_addresses(p))
    compare(p, dst, src, f"fast4 seed {seed}\n" + "\n".join(lines))


# ------------------------------------------------------------------ the tenant workload


def tenant_policy(n: int, plen: int = 32) -> Policy:
    lines = ["link set lo up"]
    for k in range(4):
        lines += [
            f"link add v{k} type veth peer name v{k}p",
            f"link set v{k} up",
            f"link set v{k}p up",
            f"addr add 10.200.{k}.1/24 dev v{k}",
        ]
    step = 1 << (32 - plen)
    base = int(ipaddress.IPv4Address("172.16.0.0"))
    for i in range(n):
        a = ipaddress.IPv4Address(base + i * step)
        lines.append(f"addr add {a}/32 dev v{i % 4}")
        lines.append(f"route add default via 10.200.{i % 4}.254 dev v{i % 4} table {1000 + i}")
    lines += ["route add default via 10.200.0.254 dev v0", "route add 8.0.0.0/8 via 10.200.1.254 dev v1"]
    lines += [
        f"rule add from {ipaddress.IPv4Address(base + i * step)}/{plen} lookup {1000 + i} priority {1 + i}"
        for i in range(n)
    ]
    p = Policy()
    apply_batch(p, "\n".join(lines) + "\n", "tenants.ip")
    return p


@pytest.mark.parametrize("plen", [32, 28])
def test_tenant_workload_is_answered_by_fast4_whole(plen):
    """The benchmark's shape: every row is fast4's own (no silent fallback)."""
    n = 2000
    p = tenant_policy(n, plen)
    rng = np.random.default_rng(plen)
    step = 1 << (32 - plen)
    tenant = rng.integers(0, n, 20000)
    src = (int(ipaddress.IPv4Address("172.16.0.0")) + tenant * step).astype(np.uint32)
    src[rng.random(20000) < 0.1] = 0
    dst = rng.integers(int(ipaddress.IPv4Address("1.0.0.0")), int(ipaddress.IPv4Address("100.0.0.0")), 20000).astype(
        np.uint32
    )
    res = compare(p, dst, src, f"tenants /{plen}")
    if plen == 32:
        assert res.fast_rows == len(dst)
        assert np.array_equal(res.table, np.where(src == 0, 254, 1000 + tenant).astype(np.uint32))
    else:
        # addresses inside a /28 other than the configured one are not local: ENETUNREACH
        # from the exact path; the configured ones are fast4's
        assert res.fast_rows >= int(np.count_nonzero(src == 0))
    stats = p.compile().fast_stats()
    assert stats["classes"] >= n and stats["outcomes"] < 20 and not stats["merged"]


def test_other_columns_take_the_exact_path():
    p = tenant_policy(50)
    snap = p.compile()
    dst = np.arange(1, 1001, dtype=np.uint32) << 20
    src = (int(ipaddress.IPv4Address("172.16.0.0")) + np.arange(1000) % 50).astype(np.uint32)
    mark = np.zeros(1000, dtype=np.uint32)
    res = lookup_bulk(snap, dst, src=src, mark=mark)
    exact = lookup_bulk(snap, dst, src=src, mark=mark, fast=False)
    assert res.fast_rows == 0
    for col in COLUMNS:
        assert np.array_equal(getattr(res, col), getattr(exact, col)), col


def test_fast_flag():
    p = tenant_policy(3)
    with pytest.raises(ValueError, match="linear"):
        lookup_bulk(p.compile(), np.zeros(3, dtype=np.uint32), fast=True, linear=True)
    # a small batch on a Policy: the exact path unless asked
    assert lookup_bulk(p, np.ones(3, dtype=np.uint32) << 24).fast_rows is None
    assert lookup_bulk(p, np.ones(3, dtype=np.uint32) << 24, fast=True).fast_rows == 3
    with pytest.raises(ValueError, match="IPv4 only"):
        lookup_bulk(p.compile(), ["2001:db8::1"], fast=True)
    empty = lookup_bulk(p.compile(), np.zeros(0, dtype=np.uint32), src=np.zeros(0, dtype=np.uint32))
    assert empty.fast_rows == 0 and empty.table.shape == (0,)


EDITS = [
    "route replace 9.0.0.0/8 via 10.200.2.254 dev v2",
    "route replace unreachable 11.0.0.0/8",
    "route del default table 1003",
    "rule add from 172.16.0.7 lookup main priority 5",
    "rule del priority 2",
    "addr del 172.16.0.9/32 dev v1",
    "addr add 172.16.0.200/32 dev v0",
    "link set v3 down",
    "link set v3 up",
    "route replace default via 10.200.1.254 dev v1 table 1001",
    "rule add to 9.0.0.0/8 lookup 1002 priority 0",
    "route add throw 9.9.0.0/16 table 1002",
]


def test_policy_batches_follow_every_change():
    """lookup_bulk on a mutable Policy: big dst/src batches use an evaluator
    built for the policy as it is; after any change (a refused one too) the
    answers are the new state's (compared with the exact path each time)."""
    p = tenant_policy(40)
    rng = np.random.default_rng(11)
    n = 70_000  # >= AUTO_FAST_ROWS
    base = int(ipaddress.IPv4Address("172.16.0.0"))
    src = (base + rng.integers(0, 48, n)).astype(np.uint32)
    src[rng.random(n) < 0.1] = 0
    dst = np.concatenate([rng.integers(1 << 24, 200 << 24, n - 2000), rng.integers(9 << 24, 12 << 24, 2000)]).astype(
        np.uint32
    )
    for step, line in enumerate([None] + EDITS + ["route add 1.2.3.4 via 99.99.99.99"]):
        if line is not None:
            # in place (apply_batch would apply to a clone and swap handles)
            # the last line is refused: a refused request still counts as a change
            with contextlib.suppress(ParseError, PolicyError):
                apply_line(p, line)
        auto = lookup_bulk(p, dst, src=src)
        exact = lookup_bulk(p, dst, src=src, fast=False)
        assert auto.fast_rows is not None and auto.fast_rows > n // 2, (step, line)
        for col in COLUMNS:
            assert np.array_equal(getattr(auto, col), getattr(exact, col)), (step, line, col)


def test_policy_swap_keeps_each_evaluator_with_its_state():
    a, b = tenant_policy(10), tenant_policy(20)
    apply_batch(b, "route replace default via 10.200.3.254 dev v3 table 1000\n", "b.ip")
    rng = np.random.default_rng(5)
    n = 70_000
    src = (int(ipaddress.IPv4Address("172.16.0.0")) + rng.integers(0, 10, n)).astype(np.uint32)
    dst = rng.integers(1 << 24, 200 << 24, n).astype(np.uint32)
    first = lookup_bulk(a, dst, src=src)  # builds a's evaluator
    want_b = lookup_bulk(b, dst, src=src, fast=False)
    a._swap(b)  # a now holds b's state, and b a's
    after = lookup_bulk(a, dst, src=src)
    assert after.fast_rows is not None
    for col in COLUMNS:
        assert np.array_equal(getattr(after, col), getattr(want_b, col)), col
        assert np.array_equal(getattr(lookup_bulk(b, dst, src=src), col), getattr(first, col)), col


def test_threads_share_one_evaluator():
    """Built once under a lock, read by many threads at once: same answers."""
    p = tenant_policy(500)
    snap = p.compile()
    rng = np.random.default_rng(3)
    src = (int(ipaddress.IPv4Address("172.16.0.0")) + rng.integers(0, 500, 50000)).astype(np.uint32)
    dst = rng.integers(1 << 24, 200 << 24, 50000).astype(np.uint32)
    want = lookup_bulk(snap, dst, src=src, fast=False)
    got, errors = [], []

    def run():
        try:
            for _ in range(5):
                got.append(lookup_bulk(snap, dst, src=src))
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(got) == 20
    for res in got:
        assert res.fast_rows == got[0].fast_rows > 0.9 * len(dst)  # 127/8 destinations are local: exact path
        for col in COLUMNS:
            assert np.array_equal(getattr(res, col), getattr(want, col)), col
