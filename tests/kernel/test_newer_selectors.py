"""Rule selectors the kernel takes but this machine's ``ip`` (iproute2 6.1)
cannot write: dscp (and its mask), flowlabel (and its mask), port masks,
next to older ones (uid ranges, ipproto, ports, fwmark, l3mdev).

Namespaces are built with ``ip``; the rules go in through polroute's own
netlink encoder (``KernelSocket.send``), the requests made by polroute's
reader (which takes current iproute2's keywords).  Then:

* ``read_state`` gives every field back (round trip), and the dump equals the
  model that took the same requests (``compare_with_policy``);
* ``polroute snapshot`` writes each rule: a rule iproute2 6.1 can write as a
  line, one it cannot as a comment line naming what it cannot (and the text
  without the comments goes through ``ip -batch``).

Only configuration and dumps, in private ``prt-*`` namespaces.
"""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netns import Netns  # noqa: E402

from polroute import Policy  # noqa: E402
from polroute._core.fields import KIND_MASK, RULE_FIELDS, rule_mask_of  # noqa: E402
from polroute.iproute2.batch import apply_batch, parse_command  # noqa: E402
from polroute.iproute2.lexer import split_args  # noqa: E402
from polroute.live.compare import compare_with_policy  # noqa: E402
from polroute.live.netlink import KernelSocket  # noqa: E402
from polroute.live.read import read_state  # noqa: E402
from polroute.live.snapshot import snapshot_text  # noqa: E402
from polroute.types.requests import AF_INET, AF_INET6  # noqa: E402

pytestmark = pytest.mark.kernel

# (family, rule line in current iproute2 syntax, what iproute2 6.1 cannot write)
RULES = [
    (AF_INET, "rule add pref 100 dscp 46 lookup 100", {"dscp"}),
    (
        AF_INET,
        "rule add pref 101 dscp 8/0x38 ipproto tcp dport 1024/0xfc00 lookup 101",
        {"dscp", "dscp mask", "dport mask"},
    ),
    (AF_INET, "rule add pref 102 sport 2000/0xfff0 uidrange 1000-1999 lookup 102", {"sport mask"}),
    (AF_INET, "rule add pref 103 ipproto udp sport 53 dport 1000-2000 fwmark 0x10/0xff lookup 103", set()),
    (AF_INET, "rule add pref 104 l3mdev", set()),
    (AF_INET, "rule add pref 105 not from 10.1.0.0/16 iif lo tos 0x10 lookup 105", set()),
    (AF_INET6, "-6 rule add pref 200 flowlabel 0x12345 lookup 200", {"flowlabel"}),
    (
        AF_INET6,
        "-6 rule add pref 201 flowlabel 0x12300/0xfff00 dscp 10 ipproto tcp dport 443 lookup 201",
        {"flowlabel", "flowlabel mask", "dscp"},
    ),
    (AF_INET6, "-6 rule add pref 202 dscp 46/0x3e uidrange 0-99 oif lo lookup 202", {"dscp", "dscp mask"}),
]


def _request(line: str):
    (kind, req), *_ = parse_command(split_args(line), Policy()).requests
    assert kind == "rule"
    return req


def _sent_fields(req) -> dict:
    """Every member of every row the request sent (and the value a mask row
    goes with), as the dump must give it back."""
    out = {}
    for row in RULE_FIELDS:
        if row.present_bit < 0 or not req.present >> row.present_bit & 1:
            continue
        for m in row.members + row.aux_members:
            out[m] = getattr(req, m)
        mask = rule_mask_of(row)
        # the kernel stores (and dumps) 0x3f for a DSCP alone
        if (
            row.name == "dscp"
            and mask is not None
            and mask.kind == KIND_MASK
            and not req.present >> mask.present_bit & 1
        ):
            out[mask.members[0]] = mask.all_ones
    return out


@pytest.fixture(scope="module")
def loaded():
    with Netns() as ns:
        ns.batch("link set lo up\n")
        reqs = [(fam, line, _request(line), why) for fam, line, why in RULES]
        with KernelSocket(ns.name) as ks:
            outcomes = ks.send([r for _, _, r, _ in reqs])
        assert [o for o in outcomes if not o.ok] == [], outcomes
        model = Policy()
        apply_batch(model, "link set lo up\n", "setup")
        for _, _, r, _ in reqs:
            model.rule(r)
        yield ns, reqs, read_state(ns.name), model


def test_every_field_survives_the_round_trip(kernel_ok, loaded):
    _ns, reqs, state, model = loaded
    for fam, line, req, why in reqs:
        (got,) = [r for r in state.rules[fam] if r.priority == req.priority]
        for member, value in _sent_fields(req).items():
            assert getattr(got, member) == value, (line, member)
        assert set(got.unsupported) == why, line
    # the model took the same requests: same rules as the kernel keeps them
    assert compare_with_policy(state, model) == []


def test_snapshot_writes_what_ip_61_can_and_comments_the_rest(kernel_ok, loaded, capsys):
    from polroute.cli.app import main

    ns, reqs, state, _model = loaded
    assert main(["snapshot", "--netns", ns.name]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    for fam, line, req, why in reqs:
        pref = f"rule add pref {req.priority} "
        mine = [l for l in lines if pref in l]
        assert len(mine) == 1, (line, mine)
        if why:
            # a comment a person can read: what is missing, and the rule in current syntax
            assert mine[0].startswith("# not restorable (") and all(w in mine[0] for w in why), mine[0]
            # ... which polroute's reader takes back as the same rule
            text = mine[0].split("): ", 1)[1]
            again = _request(("-6 " if fam == AF_INET6 else "") + text)
            assert _sent_fields(again) == _sent_fields(req), mine[0]
        else:
            assert not mine[0].startswith("#"), mine[0]
    # nothing iproute2 6.1 would reject outside comments
    for text, family in ((snapshot_text(state, AF_INET), 0), (snapshot_text(state, AF_INET6), 6)):
        body = [l for l in text.splitlines() if l.strip() and not l.startswith("#")]
        assert not any(w in l.split() for l in body for w in ("dscp", "flowlabel")), body
        with Netns() as fresh:
            res = fresh.batch(text, family=family)
            assert res.fatal is None and res.failures == {}, (res.fatal_msg, res.failures)
