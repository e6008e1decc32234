"""Copy-on-write snapshots (pr_policy_snapshot behind Policy.compile / Published).

A snapshot must answer exactly as a policy built from scratch with the edits
made before it was taken, whatever the writer does afterwards (isolation);
readers in other threads must get, on the snapshot they hold, the answers of
that snapshot while the writer keeps editing and publishing.
"""

import contextlib
import random
import threading

import numpy as np
import pytest

from polroute import Policy
from polroute._core.errors import PolicyError
from polroute.iproute2.batch import apply_line
from polroute.iproute2.lexer import ParseError
from polroute.model.bulk import lookup_bulk
from polroute.model.compiled import Published

N_TABLES = 12
BASE = [
    "link set lo up",
    "link add v0 type veth peer name v0p",
    "link set v0 up",
    "link set v0p up",
    "link add v1 type veth peer name v1p",
    "link set v1 up",
    "link set v1p up",
    "addr add 10.9.0.1/24 dev v0",
    "addr add 10.9.1.1/24 dev v1",
    "route add default via 10.9.0.254 dev v0",
]


def random_line(rng: random.Random) -> str:
    t = 100 + rng.randrange(N_TABLES)
    src = f"172.16.{rng.randrange(2)}.{rng.randrange(8)}"
    k = rng.randrange(100)
    if k < 30:
        return f"rule add from {src} lookup {t} priority {1000 + rng.randrange(50)}"
    if k < 40:
        return f"rule del from {src} lookup {t} priority {1000 + rng.randrange(50)}"
    dev, gw = rng.choice([("v0", "10.9.0.254"), ("v1", "10.9.1.254")])
    dst = rng.choice(["default", f"198.51.{rng.randrange(4)}.0/24", f"198.{rng.randrange(4)}.0.0/16"])
    table = f" table {t}" if rng.randrange(4) else ""
    if k < 70:
        kind = rng.choice(["", "", "", "unreachable "])
        via = "" if kind else f" via {gw} dev {dev}"
        return f"route add {kind}{dst}{via}{table}"
    if k < 85:
        return f"route del {dst}{table}"
    if k < 92:
        return f"link set v1 {rng.choice(['up', 'down'])}"
    if k < 97:
        return f"addr {rng.choice(['add', 'del'])} 10.9.1.{rng.randrange(2, 5)}/24 dev v1"
    return f"route flush table {t}" if rng.randrange(2) else f"route add 203.0.113.0/24 dev v1 table {t}"


def apply_tolerant(policy, line):
    """A failing line changes nothing (the model's contract), so replaying
    the same lines the same way rebuilds the same state."""
    with contextlib.suppress(ParseError, PolicyError):
        apply_line(policy, line)


def from_scratch(lines):
    p = Policy()
    for line in lines:
        apply_tolerant(p, line)
    return p


def flows(rng: np.random.Generator, n: int) -> dict:
    dst = np.concatenate(
        [
            rng.integers(0xC6330000, 0xC6330400, size=n // 2),  # 198.51.0-3.x
            rng.integers(0xC6000000, 0xC6040000, size=n - n // 2),  # 198.0-3.x.x
        ]
    ).astype(np.uint32)
    src = (0xAC100000 + rng.integers(0, 2, size=n) * 256 + rng.integers(0, 8, size=n)).astype(np.uint32)
    src[rng.random(n) < 0.2] = 0
    return {"dst": dst, "src": src}


FIELDS = ("error", "type", "table", "rule_priority", "oif", "gateway", "prefsrc", "flags")


def same(a, b) -> bool:
    return all(np.array_equal(getattr(a, f), getattr(b, f)) for f in FIELDS)


@pytest.mark.parametrize("seed", range(6))
def test_snapshots_stay_isolated_from_later_edits(seed):
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    cols = flows(nrng, 3000)
    lines = list(BASE)
    p = from_scratch(lines)
    pub = Published(p)
    kept = []  # (snapshot, the lines it saw, its answers when taken)
    for _step in range(25):
        for _ in range(rng.randrange(1, 6)):
            line = random_line(rng)
            lines.append(line)
            apply_tolerant(p, line)
        snap = pub.publish(p)
        kept.append((snap, list(lines), snap.lookup_bulk(**cols)))
        if len(kept) > 6:
            kept.pop(rng.randrange(len(kept)))  # snapshots die in any order
        # every snapshot still held answers as when it was taken, and as a
        # policy built from scratch with its lines
        for s, _seen, answers in kept:
            assert same(s.lookup_bulk(**cols), answers)
        s, seen, answers = kept[rng.randrange(len(kept))]
        assert same(lookup_bulk(from_scratch(seen), **cols), answers)
    # the newest snapshot is the writer as it is now
    assert same(pub.current.lookup_bulk(**cols), lookup_bulk(p, **cols))


def test_snapshot_outlives_its_writer_and_writer_outlives_snapshots():
    p = from_scratch(
        BASE
        + ["route add 198.51.0.0/24 via 10.9.1.254 dev v1 table 100", "rule add from 172.16.0.1 lookup 100 priority 10"]
    )
    cols = flows(np.random.default_rng(1), 500)
    snaps = [p.compile() for _ in range(5)]
    want = lookup_bulk(p, **cols)
    apply_line(p, "route del 198.51.0.0/24 table 100")
    del snaps[1:3]
    del p
    for s in snaps:
        assert same(s.lookup_bulk(**cols), want)


def test_readers_in_threads_get_their_snapshots_answers():
    """Readers take pub.current and bulk-look-up on it while the writer edits
    and publishes; afterwards every recorded answer is checked against the
    snapshot it came from (single-threaded) and a from-scratch policy."""
    rng = random.Random(99)
    cols = flows(np.random.default_rng(99), 20000)
    lines = list(BASE)
    p = from_scratch(lines)
    pub = Published(p)
    versions = {id(pub.current): list(lines)}
    records = []
    lock = threading.Lock()
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            snap = pub.current
            res = snap.lookup_bulk(**cols)
            with lock:
                if len(records) < 400:
                    records.append((snap, res))

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for _ in range(150):
            for _ in range(rng.randrange(1, 4)):
                line = random_line(rng)
                lines.append(line)
                apply_tolerant(p, line)
            snap = pub.publish(p)
            versions[id(snap)] = list(lines)
            keep_alive = snap  # ids stay unique while recorded snapshots are alive
    finally:
        stop.set()
        for t in threads:
            t.join()
    del keep_alive
    assert records
    checked = {}
    for snap, res in records:
        assert same(snap.lookup_bulk(**cols), res)
        key = id(snap)
        if key not in checked and len(checked) < 15:
            checked[key] = lookup_bulk(from_scratch(versions[key]), **cols)
        if key in checked:
            assert same(checked[key], res)
    assert len({id(s) for s, _ in records}) > 1  # readers did see several publications
