"""The batch reader's fast path (polroute.iproute2.fastline) against the full
reader, which is its reference: for random lines of the shapes it reads and
near-misses of them (odd spacing, uppercase, abbreviations, ``0x``/octal
numbers, rt_tables names, IPv6, trailing and bad tokens), parse_command gives
the same requests or the same error, and apply_batch the same
``FILE:LINE: message`` or the same policy afterwards.  Also: the packed
``pr_rule_req`` equals the field-by-field one, and split_args' regex equals
makeargs() character by character.

Sizes: ``POLROUTE_HYPOTHESIS_EXAMPLES`` (default 25) examples per property,
times 8 for the cheap line properties.
"""

from __future__ import annotations

import ipaddress
import os
from contextlib import contextmanager
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polroute import Policy
from polroute._core import codec
from polroute._core.binding import ffi
from polroute.iproute2 import batch as batch_mod
from polroute.iproute2 import lexer
from polroute.iproute2.batch import apply_batch, apply_batch_force, parse_command
from polroute.iproute2.fastline import _ROUTE_KEYS, _RULE_KEYS, fast_command
from polroute.iproute2.lexer import BatchError, ParseError, split_args
from polroute.iproute2.rt_tables import RtTables
from polroute.types.requests import AF_INET, AF_INET6, RTPROT_BOOT, RuleRequest

EXAMPLES = int(os.environ.get("POLROUTE_HYPOTHESIS_EXAMPLES", "25"))

SETUP = """\
link add up0 type veth peer name up0p
link add eth0 type dummy
link set up0 up
link set eth0 up
addr add 10.10.0.2/16 dev up0
addr add 10.1.2.1/24 dev eth0
addr add 2001:db8::2/64 dev up0
"""
TABLES = "700 vpn\n1000 tenant0\n5 five\n300 lookup\n"


def _tables() -> RtTables:
    return RtTables().load_text(TABLES)


_BASE: Policy | None = None  # built once, on first use


def _base() -> Policy:
    global _BASE
    if _BASE is None:
        _BASE = Policy()
        apply_batch(_BASE, SETUP, "setup")
    return _BASE


@contextmanager
def _full_reader_only():
    with mock.patch.object(batch_mod, "fast_command", lambda *a: None):
        yield


def _outcome(fn):
    try:
        return ("ok", fn())
    except (ParseError, BatchError) as e:
        return ("error", type(e).__name__, str(e))
    except Exception as e:  # PolicyError and anything else: type and text
        return ("error", type(e).__name__, str(e))


def _parsed(words, family):
    cmd = parse_command(words, _base(), _tables(), family, RTPROT_BOOT)
    return type(cmd).__name__, cmd.requests, cmd.warnings


def _state(p: Policy):
    return (p.rules(AF_INET), p.rules(AF_INET6), p.routes(AF_INET), p.routes(AF_INET6), p.links(), p.addresses())


def _applied(text, family):
    p = _base().clone()
    warnings = apply_batch(p, text, "f.ip", _tables(), family)
    return warnings, _state(p)


def _forced(text, family):
    p = _base().clone()
    errors = apply_batch_force(p, text, "f.ip", _tables(), family)
    return [str(e) for e in errors], _state(p)


# ---------------------------------------------------------------------------
# lines
# ---------------------------------------------------------------------------

ADDRS4 = ["10.16.0.5", "10.16.0.0/16", "10.16.0.5/32", "10.10.0.1", "10.1.2.1", "10.1.2.0/24", "0.0.0.0/0", "1.2.3.4/0"]
ODD_ADDRS = [
    "10.8",
    "010.1.1.1",
    "0x0a.0.0.1",
    "10.0.0.256",
    "10.0.0.0/024",
    "10.0.0.0/0x18",
    "10.0.0.0/33",
    "10.0.0.0/255.255.0.0",
    "10.0.0.0/",
    "1.2.3.4.5",
    "10.0.0.0/+8",
    "１.2.3.4",
    "default",
    "all",
    "any",
    "all/8",
    "inet",
    "link",
]
ADDRS6 = [
    "2001:db8::1",
    "2001:db8::/64",
    "2001:DB8::5/128",
    "fe80::1",
    "::",
    "::/0",
    "::ffff:1.2.3.4",
    "2001:db8::/129",
]
NUMBERS = ["5", "100", "1000", "32765", "0", "0x10", "010", "+5", "-1", "4294967295", "4294967296", "1e3", "", "08"]
TABLE_NAMES = ["main", "local", "default", "vpn", "tenant0", "five", "lookup", "nosuch", "255", "256", "0x100", "1000"]
DEVS = ["up0", "eth0", "lo", "nope", "if5", "if999", "averyveryverylongname", "a/b", "up0p"]
MARKS = ["0x1", "0x1/0xff", "1/", "/1", "0x1/0xffffffff", "7/0", "0xg"]
SCOPES = ["link", "host", "global", "253", "bogus", "0x10"]
PROTOS = ["static", "kernel", "boot", "99", "bogus", "0x10"]
VALUES = ADDRS4 + ODD_ADDRS + ADDRS6 + NUMBERS + TABLE_NAMES + DEVS + MARKS + SCOPES + PROTOS

RULE_WORDS = list(_RULE_KEYS) + ["pr", "p", "o", "t", "ta", "tab", "look", "From", "FROM", "lookup", "iif"]
ROUTE_WORDS = list(_ROUTE_KEYS) + ["m", "met", "pref", "to", "ta", "tab", "t", "prot", "Dev", "VIA", "sc", "on"]
LONE = ["not", "onlink", "default", "bogus", "help", "nexthop", "to", "blackhole", "unreachable", "Default", "l3mdev"]

_ws = st.sampled_from([" ", " ", " ", "  ", "\t", " \t ", "\r"])


def _join(tokens: list[str], seps: list[str], lead: str, trail: str) -> str:
    out = lead
    for i, t in enumerate(tokens):
        out += (seps[i % len(seps)] if i else "") + t
    return out + trail


@st.composite
def typical_lines(draw) -> str:
    """The shapes provisioning writes, with their variants."""
    six = draw(st.booleans())
    kind = draw(st.sampled_from(["rule", "route", "route", "rule"]))
    sub = draw(st.sampled_from(["add", "add", "add", "del", "delete", "replace", "append", "prepend", "change"]))
    addrs = ADDRS6 if six else ADDRS4
    words = (["-6"] if six else draw(st.sampled_from([[], [], ["-4"]]))) + [kind, sub]
    parts: list[list[str]] = []
    if kind == "rule":
        parts.append([draw(st.sampled_from(["from", "to"])), draw(st.sampled_from(addrs + ["all"]))])
        parts.append([draw(st.sampled_from(["lookup", "table"])), draw(st.sampled_from(TABLE_NAMES[:7] + NUMBERS[:4]))])
        parts.append(
            [
                draw(st.sampled_from(["priority", "pref", "preference", "prio", "order"])),
                draw(st.sampled_from(NUMBERS[:5])),
            ]
        )
        for _ in range(draw(st.integers(0, 2))):
            parts.append(
                draw(
                    st.sampled_from(
                        [
                            ["fwmark", draw(st.sampled_from(MARKS[:3]))],
                            ["iif", "up0"],
                            ["oif", "eth0"],
                            ["not"],
                            ["dev", "lo"],
                        ]
                    )
                )
            )
    else:
        parts.append([draw(st.sampled_from(addrs + ["default", "default"]))])
        if draw(st.booleans()):
            parts.append(
                ["via", draw(st.sampled_from(["2001:db8::1", "fe80::1"] if six else ["10.10.0.1", "10.1.2.7"]))]
            )
        parts.append(["dev", draw(st.sampled_from(["up0", "eth0", "up0", "lo"]))])
        for _ in range(draw(st.integers(0, 3))):
            parts.append(
                draw(
                    st.sampled_from(
                        [
                            ["table", draw(st.sampled_from(TABLE_NAMES[:7] + NUMBERS[:4]))],
                            ["src", "2001:db8::2" if six else draw(st.sampled_from(["10.1.2.1", "10.10.0.2"]))],
                            ["metric", draw(st.sampled_from(NUMBERS[:5]))],
                            ["proto", draw(st.sampled_from(PROTOS[:4]))],
                            ["scope", draw(st.sampled_from(SCOPES[:4]))],
                            ["onlink"],
                        ]
                    )
                )
            )
    parts = draw(st.permutations(parts))
    if draw(st.integers(0, 4)) == 0:  # a near-miss: one token replaced or added
        tok = draw(st.sampled_from(VALUES + LONE + RULE_WORDS + ROUTE_WORDS))
        if draw(st.booleans()) or not parts:
            parts.append([tok])
        else:
            j = draw(st.integers(0, len(parts) - 1))
            k = draw(st.integers(0, len(parts[j]) - 1))
            parts[j] = parts[j][:k] + [tok] + parts[j][k + 1 :]
    tokens = words + [w for p in parts for w in p]
    seps = draw(st.lists(_ws, min_size=1, max_size=4))
    return _join(tokens, seps, draw(st.sampled_from(["", "", " ", "\t"])), draw(st.sampled_from(["", "", " ", " \t"])))


@st.composite
def random_lines(draw) -> str:
    """Any mix of the reader's words and values (mostly refused lines)."""
    head = draw(st.sampled_from([[], [], [], ["-4"], ["-6"], ["ip"], ["-6", "-4"], ["-4", "-6"], ["-f", "inet6"]]))
    obj = draw(st.sampled_from(["rule", "route", "rule", "route", "ro", "ru", "Rule", "r", "link"]))
    sub = draw(
        st.sampled_from(
            ["add", "del", "delete", "replace", "change", "append", "prepend", "test", "a", "ADD", "flush", "show", "d"]
        )
    )
    words = ROUTE_WORDS if obj.startswith("ro") else RULE_WORDS
    tokens = head + [obj, sub]
    for _ in range(draw(st.integers(0, 6))):
        choice = draw(st.integers(0, 3))
        if choice == 0:
            tokens.append(draw(st.sampled_from(LONE + VALUES)))
        else:
            tokens.append(draw(st.sampled_from(words)))
            if choice != 3:
                tokens.append(draw(st.sampled_from(VALUES)))
    seps = draw(st.lists(_ws, min_size=1, max_size=3))
    return _join(tokens, seps, "", draw(st.sampled_from(["", " "])))


lines = st.one_of(typical_lines(), typical_lines(), random_lines())


@settings(max_examples=EXAMPLES * 8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines, st.sampled_from([0, 0, AF_INET, AF_INET6]))
def test_fast_path_parses_as_the_full_reader(line, family):
    try:
        words = split_args(line)
    except ParseError:
        return
    fast = _outcome(lambda: _parsed(words, family))
    with _full_reader_only():
        full = _outcome(lambda: _parsed(words, family))
    assert fast == full, line


@settings(max_examples=EXAMPLES * 2, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(lines, min_size=1, max_size=6), st.sampled_from([0, AF_INET6]), st.booleans())
def test_fast_path_applies_as_the_full_reader(batch, family, force):
    text = "\n".join(batch) + "\n"
    run = _forced if force else _applied
    fast = _outcome(lambda: run(text, family))
    with _full_reader_only():
        full = _outcome(lambda: run(text, family))
    assert fast == full, text


def test_the_fast_path_reads_the_typical_lines():
    """The shapes of a provisioning file and of a snapshot do not fall back."""
    for line in (
        "route add default via 10.10.0.1 dev up0 table 1000",
        "route add 10.1.2.0/24 dev eth0 src 10.1.2.1 table vpn",
        "route add 10.1.3.0/24 via 10.1.2.7 dev eth0 proto static metric 5 table 5",
        "route append 10.9.0.0/16 dev eth0 scope link onlink",
        "route del default table 1000",
        "rule add from 10.16.0.5 lookup 1000 priority 7",
        "rule add from 10.16.0.0/16 table tenant0 pref 7",
        "rule add pref 100 from 10.1.0.0/16 to 10.2.0.0/16 fwmark 0x1/0xff iif up0 lookup main",
        "rule add pref 5 not from all oif eth0 order 3 lookup 300",
        "rule del pref 7",
        "-6 rule add from 2001:db8::1 lookup 1000 priority 7",
        "-6 route add 2001:db8:1::/64 via 2001:db8::1 dev up0 table 1000",
        "route add 2001:db8:2::/64 dev up0 metric 1024",
    ):
        words = split_args(line)
        cmd = fast_command(words, _base(), _tables(), 0, RTPROT_BOOT)
        assert cmd is not None, line
        with _full_reader_only():
            want = parse_command(words, _base(), _tables(), 0, RTPROT_BOOT)
        assert cmd.requests == want.requests, line


@pytest.mark.parametrize("word", sorted(_RULE_KEYS))
def test_every_rule_keyword_takes_the_full_readers_branch(word):
    value = {"from": "10.1.0.0/16", "to": "10.1.0.0/16", "fwmark": "0x5/0xf", "iif": "up0", "dev": "up0", "oif": "eth0"}
    line = f"rule add {word} {value.get(word, '700')} pref 9" if word != "not" else "rule add not from all pref 9"
    words = split_args(line)
    cmd = fast_command(words, _base(), _tables(), 0, RTPROT_BOOT)
    with _full_reader_only():
        want = parse_command(words, _base(), _tables(), 0, RTPROT_BOOT)
    assert cmd is not None and cmd.requests == want.requests


@pytest.mark.parametrize("word", sorted(_ROUTE_KEYS))
def test_every_route_keyword_takes_the_full_readers_branch(word):
    value = {"src": "10.1.2.1", "via": "10.1.2.7", "scope": "link", "proto": "static", "protocol": "static"}
    value.update({"dev": "eth0", "oif": "eth0", "table": "vpn"})
    tail = "" if word == "onlink" else " " + value.get(word, "77")
    line = f"route add 10.7.0.0/16 {word}{tail} dev eth0"
    words = split_args(line)
    cmd = fast_command(words, _base(), _tables(), 0, RTPROT_BOOT)
    with _full_reader_only():
        want = parse_command(words, _base(), _tables(), 0, RTPROT_BOOT)
    assert cmd is not None and cmd.requests == want.requests


def test_errors_name_file_line_and_token():
    text = "route add default via 10.10.0.1 dev up0 table 1000\nrule add from 10.0.0.0/33 lookup 5 pref 1\n"
    with pytest.raises(BatchError) as fast:
        apply_batch(_base().clone(), text, "t.ip", _tables())
    with _full_reader_only(), pytest.raises(BatchError) as full:
        apply_batch(_base().clone(), text, "t.ip", _tables())
    assert str(fast.value) == str(full.value) == 't.ip:2: invalid prefix "10.0.0.0/33"'


# ---------------------------------------------------------------------------
# split_args, fill_rule
# ---------------------------------------------------------------------------

_chars = st.sampled_from(list("ab1. \t\r\n\x0b\x0c\x1c\x1f\x85\xa0\u2003#/:-"))


@settings(max_examples=EXAMPLES * 8, deadline=None)
@given(st.lists(_chars, max_size=30).map("".join))
def test_split_without_quotes_is_makeargs(text):
    assert split_args(text) == lexer._split_quoted(text)


_u = {8: st.integers(0, 0xFF), 16: st.integers(0, 0xFFFF), 32: st.integers(0, 0xFFFFFFFF)}


@st.composite
def rule_requests(draw) -> RuleRequest:
    r = RuleRequest(draw(st.sampled_from([32, 33])), draw(_u[16]))
    for name in codec.RULE_INT_FIELDS:
        f = dict(ffi.typeof("pr_rule_req").fields)[name]
        kind = f.type.cname
        bits = {"uint8_t": 8, "uint16_t": 16, "uint32_t": 32}.get(kind)
        if bits:
            value = draw(_u[bits])
        elif kind == "int32_t":
            value = draw(st.integers(-(1 << 31), (1 << 31) - 1))
        else:
            value = draw(st.integers(0, (1 << 64) - 1))
        setattr(r, name, value)
    v6 = draw(st.booleans())
    addr = st.builds(
        ipaddress.IPv6Address if v6 else ipaddress.IPv4Address, st.integers(0, (1 << (128 if v6 else 32)) - 1)
    )
    r.src = draw(st.none() | addr)
    r.dst = draw(st.none() | addr)
    r.iifname = draw(st.text(max_size=20))
    r.oifname = draw(st.sampled_from(["", "eth0", "averyveryverylongname"]))
    return r


@settings(max_examples=EXAMPLES * 4, deadline=None)
@given(rule_requests())
def test_packed_rule_struct_is_the_field_by_field_one(r):
    assert codec._RULE_STRUCT is not None  # the layout is the one expected
    packed = codec.rule_to_c(r)
    ref = ffi.new("pr_rule_req *")
    codec._fill_rule_fields(ref, r)
    assert bytes(ffi.buffer(packed)) == bytes(ffi.buffer(ref))


def test_out_of_range_values_still_raise_from_the_field_by_field_path():
    with pytest.raises(OverflowError):
        codec.rule_to_c(RuleRequest(32, 0, priority=1 << 32))
    with pytest.raises(OverflowError):
        codec.rule_to_c(RuleRequest(32, 0, suppress_prefixlen=-(1 << 31) - 1))
