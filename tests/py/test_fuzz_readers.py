"""Fuzzing every reader with hypothesis (bounded: POLROUTE_FUZZ_EXAMPLES
examples each - else POLROUTE_HYPOTHESIS_EXAMPLES, else 150 -, no deadline): the ip batch reader, the flows
reader (`polroute eval`), the YAML host file reader, the bulk API's
arguments and the netlink dump decoder (``decode_messages`` /
``pr_dump_decode``, fed random buffers and mutations of a real dump,
``data/netlink-dump.bin``).  Whatever the input, a reader answers or refuses
it with its own error (BatchError naming FILE:LINE, UsageError,
HostFileError, ValueError / TypeError for the bulk API, DumpError for the
dump decoder) - never another exception, never a crash; the command line
exits with a documented code and no traceback."""

from __future__ import annotations

import contextlib
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polroute.cli import app as cli
from polroute.cli.common import UsageError, decode_batch
from polroute.cli.demo import two_nic_batch
from polroute.cli.exitcodes import DOCUMENTED
from polroute.iproute2.batch import apply_batch
from polroute.iproute2.lexer import BatchError
from polroute.live.dump import DumpError, decode_messages
from polroute.model.bulk import lookup_bulk
from polroute.model.policy import Policy
from polroute.multihome.hostfile import HostFileError, parse_host_text

EXAMPLES = int(os.environ.get("POLROUTE_FUZZ_EXAMPLES") or os.environ.get("POLROUTE_HYPOTHESIS_EXAMPLES") or 150)
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)

WORDS = [
    "ip",
    "-4",
    "-6",
    "route",
    "rule",
    "addr",
    "link",
    "add",
    "del",
    "replace",
    "change",
    "append",
    "prepend",
    "from",
    "to",
    "via",
    "dev",
    "src",
    "table",
    "tab",
    "lookup",
    "pref",
    "priority",
    "metric",
    "proto",
    "scope",
    "fwmark",
    "iif",
    "oif",
    "not",
    "goto",
    "nop",
    "blackhole",
    "unreachable",
    "throw",
    "local",
    "default",
    "all",
    "onlink",
    "nexthop",
    "weight",
    "type",
    "dummy",
    "veth",
    "peer",
    "name",
    "up",
    "down",
    "set",
    "uidrange",
    "ipproto",
    "sport",
    "dport",
    "tos",
    "mtu",
    "suppress_prefixlength",
    "eth0",
    "lo",
    "main",
    "10.0.0.0/8",
    "10.0.0.1",
    "192.168.16.1",
    "2001:db8::1",
    "::/0",
    "0",
    "1",
    "255",
    "4294967295",
    "4294967296",
    "-1",
    "0x10",
    "010",
    "1e3",
    "/",
    "#",
    "\\",
    '"',
    "'",
    "\t",
    "\x00",
    "\xff",
    "é",
    "\u202e",
]
words = st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=6)), max_size=14)
lines = st.lists(words.map(" ".join), max_size=12).map("\n".join)
blobs = st.one_of(lines.map(lambda t: t.encode("utf-8", "surrogatepass")), st.binary(max_size=300))


def _base() -> Policy:
    p = Policy()
    apply_batch(p, "link add eth0 type dummy\nlink set eth0 up\naddr add 10.0.0.2/24 dev eth0\n", "base")
    return p


BASE = None


@FUZZ
@given(blobs)
def test_batch_reader(data):
    global BASE
    BASE = BASE or _base()
    try:
        text = decode_batch(data, "fuzz.ip")
    except UsageError as e:
        assert str(e).startswith("fuzz.ip")
        return
    try:
        apply_batch(BASE.clone(), text, "fuzz.ip")
    except BatchError as e:
        assert str(e).startswith("fuzz.ip:"), e


@FUZZ
@given(blobs)
def test_flows_reader(data):
    from polroute.cli.eval import _questions
    from polroute.iproute2.rt_tables import RtTables

    global BASE
    BASE = BASE or _base()
    try:
        _questions(decode_batch(data, "flows"), "flows", BASE, RtTables())
    except UsageError as e:
        assert str(e).startswith("flows"), e


YAML_KEYS = ["version", "uplinks", "tenants", "name", "gateway", "addresses", "table", "priority", "owner", "family"]
yaml_scalars = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from(["eth0", "192.168.16.1", "192.168.16.20/24", "2001:db8::1", "main", "", "~", "null", "yes"]),
    st.text(max_size=8),
)
yaml_values = st.recursive(
    yaml_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(YAML_KEYS) | st.text(max_size=5), inner, max_size=4),
    ),
    max_leaves=20,
)


def _yaml(value, indent=0) -> str:
    pad = "  " * indent
    if isinstance(value, dict):
        if not value:
            return pad + "{}\n"
        return "".join(f"{pad}{k!r}:\n{_yaml(v, indent + 1)}" for k, v in value.items())
    if isinstance(value, list):
        if not value:
            return pad + "[]\n"
        return "".join(f"{pad}-\n{_yaml(v, indent + 1)}" for v in value)
    return f"{pad}{value!r}\n"


@FUZZ
@given(st.one_of(yaml_values.map(_yaml), st.text(max_size=200), blobs.map(lambda b: b.decode("latin-1"))))
def test_host_file_reader(text):
    try:
        parse_host_text(text, "host.yaml")
    except HostFileError as e:
        assert str(e).startswith("host.yaml"), e


columns = st.one_of(
    st.none(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.text(max_size=20),
    st.lists(st.one_of(st.integers(min_value=-(2**40), max_value=2**40), st.text(max_size=16)), max_size=5),
    st.builds(
        lambda dt, n, shape2: np.zeros((n, shape2) if shape2 else n, dtype=dt),
        st.sampled_from([np.uint8, np.uint16, np.uint32, np.int64, np.float64, np.bool_, object]),
        st.integers(0, 5),
        st.sampled_from([0, 0, 4, 16, 3]),
    ),
)


@FUZZ
@given(
    st.fixed_dictionaries(
        {"dst": columns},
        optional={k: columns for k in ("src", "iif", "oif", "tos", "mark", "uid", "ipproto", "sport", "dport")}
        | {
            "family": st.sampled_from([None, 4, 6, 5, "4"]),
            "linear": st.booleans(),
            "fast": st.sampled_from([None, True, False]),
        },
    )
)
def test_bulk_api_arguments(kwargs):
    global BASE
    BASE = BASE or _base()
    dst = kwargs.pop("dst")
    with contextlib.suppress(ValueError, TypeError, OverflowError):  # the API's own refusals
        lookup_bulk(BASE, dst, **kwargs)


@FUZZ
@given(blobs, st.sampled_from(["get", "eval", "show", "audit", "check"]))
def test_cli_on_fuzzed_files(tmp_path_factory, capsys, data, command):
    d = tmp_path_factory.mktemp("fuzz")
    f = d / "input"
    f.write_bytes(data)
    good = d / "two-nic.ip"
    good.write_text(two_nic_batch())
    argv = {
        "get": ["get", "--batch", str(f), "8.8.8.8", "--json"],
        "eval": ["eval", "--batch", str(good), "--flows", str(f)],
        "show": ["show", "routes", "--batch", str(f)],
        "audit": ["audit", "--batch", str(f)],
        "check": ["multihome", "check", str(f)],
    }[command]
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    assert rc in DOCUMENTED and "Traceback" not in err and "internal error" not in err, err


# ---- the netlink dump decoder ------------------------------------------------------

#: a real dump (links, addresses, rules, routes of both families, a multipath
#: route, metrics, an nhid route), captured by tools/capture_netlink_dump.py
DUMP = (Path(__file__).parent / "data" / "netlink-dump.bin").read_bytes()


def _split(buf: bytes) -> list[bytes]:
    """The dump's messages, by their nlmsg_len."""
    out, off = [], 0
    while off < len(buf):
        (length,) = struct.unpack_from("=I", buf, off)
        step = (length + 3) & ~3
        out.append(buf[off : off + step])
        off += step
    return out


MESSAGES = _split(DUMP)
NLMSG_TYPES = [2, 3, 16, 17, 20, 21, 24, 25, 32, 33, 104, 0, 0xFFFF]
#: the places where a length lives: nlmsg_len (u32 at 0), an rtattr's rta_len (u16)
length_values = st.one_of(st.integers(0, 64), st.sampled_from([0xFFFF, 0xFFFE, 0x8000, 0xFFFFFFFF, 1 << 16]))


def _mutate(buf: bytearray, edit) -> None:
    kind, pos, value, data = edit
    if not buf:
        buf += data
        return
    pos %= len(buf) + 1
    if kind == "set":
        buf[pos % len(buf)] = value & 0xFF
    elif kind == "u16":
        buf[pos : pos + 2] = struct.pack("=H", value & 0xFFFF)
    elif kind == "u32":
        buf[pos : pos + 4] = struct.pack("=I", value & 0xFFFFFFFF)
    elif kind == "cut":
        del buf[pos:]
    elif kind == "insert":
        buf[pos:pos] = data
    else:  # "delete"
        del buf[pos : pos + 1 + value % 16]


edits = st.tuples(
    st.sampled_from(["set", "u16", "u32", "cut", "insert", "delete"]),
    st.integers(0, 1 << 16),
    st.one_of(st.integers(0, 1 << 32), length_values),
    st.binary(max_size=24),
)
#: mostly types the decoder knows (with or without NLA_F_NESTED), some any
attr_types = st.one_of(st.integers(0, 45), st.integers(0, 45).map(lambda t: t | 0x8000), st.integers(0, 0xFFFF))
message_picks = st.lists(st.integers(0, len(MESSAGES) - 1), min_size=1, max_size=8)


@st.composite
def mutated_dumps(draw) -> bytes:
    """Whole real messages (some with another nlmsg_type), then edits."""
    buf = bytearray()
    for i in draw(message_picks):
        m = bytearray(MESSAGES[i])
        if draw(st.integers(0, 7)) == 0:
            m[4:6] = struct.pack("=H", draw(st.sampled_from(NLMSG_TYPES)))
        buf += m
    for edit in draw(st.lists(edits, max_size=6)):
        _mutate(buf, edit)
    return bytes(buf)


@st.composite
def made_dumps(draw) -> bytes:
    """Messages built from random attributes (nested ones too) behind a
    real message's family header: right lengths, wrong contents."""
    out = b""
    for i in draw(message_picks):
        real = MESSAGES[i]
        mtype = struct.unpack_from("=H", real, 4)[0]
        fixed = {16: 16, 20: 8, 24: 12, 32: 12}.get(mtype, 12)
        body = bytearray(real[16 : 16 + fixed])
        for t, payload, nested in draw(
            st.lists(st.tuples(attr_types, st.binary(max_size=20), st.booleans()), max_size=8)
        ):
            if nested:
                payload = struct.pack("=HH", 4 + len(payload), t & 0x3F) + payload
            body += struct.pack("=HH", 4 + len(payload), t) + payload + bytes(-len(payload) % 4)
        out += struct.pack("=IHHII", 16 + len(body), mtype, 2, 0, 0) + body
    return out


@FUZZ
@given(st.one_of(st.binary(max_size=600), mutated_dumps(), made_dumps()))
def test_dump_decoder(buf):
    try:
        got = decode_messages(buf)
    except DumpError as e:
        assert e.errno and e.errno > 0, e
        return
    assert set(got) == {"links", "addrs", "rules", "routes"}


def test_dump_decoder_seed_decodes():
    """The seed is a real, whole dump: it decodes (so the mutations start
    from messages the decoder takes)."""
    got = decode_messages(DUMP)
    assert [len(got[k]) for k in ("links", "addrs", "rules", "routes")] == [5, 9, 12, 28]
    assert any(r.nh_id for r in got["routes"]) and any(r.nexthops for r in got["routes"])


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])
