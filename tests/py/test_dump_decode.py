"""The C dump decoder (csrc/nl_dump.c) fed bytes directly: pr_dump_decode is
the function the dump loop calls on every datagram.

Well-formed messages (built here with struct, as the kernel lays them out)
must decode into exactly the records kernel_state's readers make; malformed
ones (truncated anywhere, lengths past their container, fixed-size
attributes of another size, addresses of the wrong length, strings without
their NUL, bad nested structures) must fail with EBADMSG, a text naming the
message and the attribute, and nothing appended.  No kernel needed.
"""

from __future__ import annotations

import errno
import ipaddress
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polroute._polroute_cffi import ffi, lib
from polroute.live.dump import DumpError, decode_messages
from polroute.live.objects import KAddr, KLink, KRoute, KRule
from polroute.types.requests import NexthopRequest, bit

AF_INET, AF_INET6 = 2, 10
RTM_NEWLINK, RTM_NEWADDR, RTM_NEWROUTE, RTM_NEWRULE = 16, 20, 24, 32
NLMSG_ERROR, NLMSG_DONE = 2, 3


def pad4(b: bytes) -> bytes:
    return b + bytes(-len(b) % 4)


def attr(t: int, data: bytes) -> bytes:
    return pad4(struct.pack("=HH", 4 + len(data), t) + data)


def u8(t, v):
    return attr(t, struct.pack("=B", v))


def u16(t, v):
    return attr(t, struct.pack("=H", v))


def u32(t, v):
    return attr(t, struct.pack("=I", v))


def s(t, text):
    return attr(t, text.encode() + b"\0")


def ip(t, a):
    return attr(t, ipaddress.ip_address(a).packed)


def msg(mtype: int, payload: bytes, flags: int = 2, seq: int = 0) -> bytes:
    return pad4(struct.pack("=IHHII", 16 + len(payload), mtype, flags, seq, 0) + payload)


def rtmsg(family=AF_INET, dst_len=24, src_len=0, tos=0, table=0, proto=3, scope=0, rtype=1, flags=0):
    return struct.pack("=BBBBBBBBI", family, dst_len, src_len, tos, table, proto, scope, rtype, flags)


def leg(gw: str | None, ifindex: int, hops: int = 0, flags: int = 0, extra: bytes = b"") -> bytes:
    body = (ip(5, gw) if gw else b"") + extra
    return struct.pack("=HBBi", 8 + len(body), flags, hops, ifindex) + body


ROUTE = msg(
    RTM_NEWROUTE,
    rtmsg(table=0)
    + u32(15, 100000)
    + ip(1, "198.18.7.0")
    + u32(6, 7)
    + ip(7, "10.0.0.1")
    + attr(8 | 0x8000, u32(2, 1400) + u32(1, 1 << 2) + s(16, "reno") + u32(17, 1))
    + attr(9, leg("10.0.0.9", 3, hops=1, flags=4) + leg("10.0.1.9", 4, extra=u32(11, 5))),
)
ROUTE6 = msg(
    RTM_NEWROUTE,
    rtmsg(AF_INET6, 64, table=254)
    + u32(15, 254)
    + ip(1, "2001:db8:1::")
    + u32(6, 1024)
    + ip(5, "fe80::1")
    + u32(4, 2)
    + u8(20, 3)
    + attr(26, b"\x01"),
)
RULE = msg(
    RTM_NEWRULE,
    struct.pack("=BBBBBBBBI", AF_INET, 24, 32, 0x10, 0, 0, 0, 1, 2)
    + u32(15, 4000000000)
    + u32(6, 100)
    + ip(2, "10.1.2.3")
    + ip(1, "198.18.0.0")
    + s(3, "d0")
    + s(17, "ghost7")
    + u32(10, 5)
    + u32(16, 0xFF)
    + u32(14, 0xFFFFFFFF)
    + u32(13, 3)
    + attr(20, struct.pack("=II", 1000, 2000))
    + u8(21, 4)
    + u8(22, 6)
    + attr(23, struct.pack("=HH", 53, 53))
    + u16(28, 0xFFFF)
    + attr(24, struct.pack("=HH", 1, 1024))
    + u16(29, 0xFFFF)
    + attr(12, (1 << 40).to_bytes(8, "big"))
    + u32(11, 9)
    + attr(40, b"xyz"),
)
LINK = msg(
    RTM_NEWLINK,
    struct.pack("=BBHiII", 0, 0, 1, 5, 0x10041, 0)
    + s(3, "d0")
    + u32(4, 1500)
    + u32(5, 6)
    + u32(27, 4)
    + attr(18 | 0x8000, s(1, "veth"))
    + attr(26, attr(2, b"\0" * 8) + attr(10 | 0x8000, u8(8, 1))),
)
ADDR = msg(
    RTM_NEWADDR,
    struct.pack("=BBBBI", AF_INET, 32, 0x80, 0, 5)
    + ip(1, "10.0.1.2")
    + ip(2, "10.0.1.1")
    + s(3, "d0:x")
    + u32(8, 0x280)
    + u32(9, 7)
    + attr(6, struct.pack("=IIII", 100, 200, 1, 2))
    + u8(11, 0),
)
ALL = [LINK, ADDR, RULE, ROUTE, ROUTE6]


def test_records_are_what_the_readers_make():
    got = decode_messages(b"".join(ALL))
    assert got["links"] == [KLink(5, "d0", "veth", "veth", True, True, peer=6, group=4, addr_gen_mode=1)]
    assert got["addrs"] == [
        KAddr(
            AF_INET,
            5,
            ipaddress.ip_address("10.0.1.1"),
            32,
            0,
            0x280,
            "d0:x",
            None,
            ipaddress.ip_address("10.0.1.2"),
            7,
            200,
            100,
            0,
        )
    ]
    want_rule = KRule(
        RTM_NEWRULE,
        0,
        family=AF_INET,
        dst_len=24,
        src_len=32,
        tos=0x10,
        action=1,
        table=4000000000,
        flags=2,
        priority=100,
        fwmark=5,
        fwmask=0xFF,
        realm=9,
        suppress_prefixlen=-1,
        suppress_ifgroup=3,
        uid_start=1000,
        uid_end=2000,
        protocol=4,
        ip_proto=6,
        sport_start=53,
        sport_end=53,
        dport_start=1,
        dport_end=1024,
        sport_mask=0xFFFF,  # decoded (the rule table's rows), noted only when not implied
        dport_mask=0xFFFF,
        tun_id=1 << 40,
        src=ipaddress.ip_address("10.1.2.3"),
        dst=ipaddress.ip_address("198.18.0.0"),
        iifname="d0",
        oifname="ghost7",
        unsupported=["dport mask", "FRA attribute 40"],
    )
    want_rule.present = sum(bit(a) for a in (15, 6, 2, 1, 3, 17, 10, 16, 13, 20, 21, 22, 23, 24, 12, 11, 28, 29))
    assert got["rules"] == [want_rule]
    r4, r6 = got["routes"]
    want4 = KRoute(
        RTM_NEWROUTE,
        0,
        family=AF_INET,
        dst_len=24,
        protocol=3,
        table=100000,
        dst=ipaddress.ip_address("198.18.7.0"),
        priority=7,
        prefsrc=ipaddress.ip_address("10.0.0.1"),
        nexthops=[
            NexthopRequest(ipaddress.ip_address("10.0.0.9"), 3, 2, 4),
            NexthopRequest(ipaddress.ip_address("10.0.1.9"), 4, 1, 0),
        ],
        metrics={1: 4, 2: 1400, 17: 1},
        congctl="reno",
        unsupported=["congctl reno", "nexthop realms"],
    )
    want4.present = sum(bit(a) for a in (15, 6, 1, 7, 8, 9))
    assert r4 == want4
    want6 = KRoute(
        RTM_NEWROUTE,
        0,
        family=AF_INET6,
        dst_len=64,
        protocol=3,
        table=254,
        dst=ipaddress.ip_address("2001:db8:1::"),
        priority=1024,
        gateway=ipaddress.ip_address("fe80::1"),
        oif=2,
        pref=3,
        unsupported=["RTA_TTL_PROPAGATE"],
    )
    want6.present = sum(bit(a) for a in (15, 6, 1, 5, 4, 20))
    assert r6 == want6


def test_newer_rule_attributes_are_decoded_and_named():
    """FRA_DSCP.. FRA_DSCP_MASK (no keyword in iproute2 6.1) fill their fields;
    those not implied by another are named in ``unsupported``."""
    rule6 = msg(
        RTM_NEWRULE,
        struct.pack("=BBBBBBBBI", AF_INET6, 0, 0, 0, 0, 0, 0, 1, 0)
        + u32(15, 100)
        + u32(6, 7)
        + u8(25, 46)
        + u8(30, 0x3F)
        + attr(26, struct.pack(">I", 0x12300))
        + attr(27, struct.pack(">I", 0xFFF00))
        + attr(24, struct.pack("=HH", 1024, 1024))
        + u16(29, 0xFC00),
    )
    (r,) = decode_messages(rule6)["rules"]
    assert (r.dscp, r.dscp_mask, r.flowlabel, r.flowlabel_mask) == (46, 0x3F, 0x12300, 0xFFF00)
    assert (r.dport_start, r.dport_end, r.dport_mask) == (1024, 1024, 0xFC00)
    assert all(r.present & bit(a) for a in (25, 26, 27, 29, 30))
    assert r.unsupported == ["dscp", "flowlabel", "flowlabel mask", "dport mask"]


def test_done_ends_and_error_is_the_kernels():
    done = msg(NLMSG_DONE, struct.pack("=i", 0))
    got = decode_messages(LINK + done + ROUTE)
    assert len(got["links"]) == 1 and got["routes"] == []
    with pytest.raises(DumpError) as e:
        decode_messages(LINK + msg(NLMSG_ERROR, struct.pack("=i", -errno.EPERM) + bytes(16)))
    assert e.value.errno == errno.EPERM


def test_other_families_are_skipped():
    got = decode_messages(msg(RTM_NEWROUTE, rtmsg(128) + u32(15, 5)) + ROUTE)
    assert len(got["routes"]) == 1


@pytest.mark.parametrize(
    "buf, text",
    [
        (msg(RTM_NEWROUTE, rtmsg() + attr(15, b"\1\2\3")), "attribute 15: 3 bytes of payload, 4 expected"),
        (msg(RTM_NEWROUTE, rtmsg() + attr(1, bytes(16))), "attribute 1: 16 bytes of payload, 4 expected"),
        (msg(RTM_NEWROUTE, rtmsg(AF_INET6) + attr(5, bytes(4))), "attribute 5: 4 bytes of payload, 16 expected"),
        (msg(RTM_NEWROUTE, rtmsg() + struct.pack("=HH", 40, 15) + bytes(4)), "attribute 15: length 40 past"),
        (msg(RTM_NEWROUTE, rtmsg() + struct.pack("=HH", 2, 15)), "attribute 15: length 2 past"),
        (msg(RTM_NEWROUTE, rtmsg()[:8]), "shorter than struct rtmsg"),
        (msg(RTM_NEWROUTE, rtmsg() + attr(18, struct.pack("=H", 7) + bytes(4))), "RTA_VIA: family 7"),
        (msg(RTM_NEWROUTE, rtmsg() + attr(9, struct.pack("=HBBi", 4, 0, 0, 1))), "RTA_MULTIPATH: nexthop length 4"),
        (msg(RTM_NEWROUTE, rtmsg() + attr(9, leg("10.0.0.1", 1)[:-2])), "RTA_MULTIPATH"),
        (msg(RTM_NEWROUTE, rtmsg() + attr(9, leg(None, 1, extra=attr(5, bytes(16))))), "RTA_GATEWAY of 16 bytes"),
        (msg(RTM_NEWROUTE, rtmsg() + attr(8, u32(2, 1)[:6])), "RTA_METRICS"),
        (msg(RTM_NEWROUTE, rtmsg() + attr(8, attr(2, b"\1\2"))), "RTAX 2 of 2 bytes"),
        (msg(RTM_NEWROUTE, rtmsg() + attr(8, attr(16, b"reno"))), "string without its NUL"),
        (msg(RTM_NEWROUTE, rtmsg() + attr(12, bytes(8))), "RTA_CACHEINFO: 8 bytes"),
        (
            msg(RTM_NEWRULE, bytes(12)[:0] + struct.pack("=BBBBBBBBI", 2, 0, 0, 0, 0, 0, 0, 1, 0) + attr(3, b"x" * 20)),
            "interface name without a NUL",
        ),
        (
            msg(RTM_NEWRULE, struct.pack("=BBBBBBBBI", 2, 0, 0, 0, 0, 0, 0, 1, 0) + attr(12, bytes(4))),
            "attribute 12: 4 bytes of payload, 8 expected",
        ),
        (msg(RTM_NEWLINK, bytes(16) + attr(3, b"lo")), "string without its NUL"),
        (msg(RTM_NEWLINK, bytes(16) + attr(18, attr(1, b"veth\0") + struct.pack("=HH", 30, 2))), "past its container"),
        (msg(RTM_NEWLINK, bytes(16) + attr(26, attr(10, attr(8, b"\1\2")))), "IFLA_INET6_ADDR_GEN_MODE"),
        (msg(RTM_NEWADDR, struct.pack("=BBBBI", 2, 24, 0, 0, 1) + attr(6, bytes(12))), "IFA_CACHEINFO"),
        (
            msg(RTM_NEWADDR, struct.pack("=BBBBI", 10, 64, 0, 0, 1) + attr(2, bytes(4))),
            "4 bytes of payload, 16 expected",
        ),
    ],
)
def test_malformed_is_refused_and_named(buf, text):
    with pytest.raises(DumpError) as e:
        decode_messages(ROUTE + buf)
    assert e.value.errno == errno.EBADMSG
    assert "message 1 (" in str(e.value) and text in str(e.value), str(e.value)


def _handle_with(buf: bytes):
    d = ffi.gc(lib.pr_dump_new(), lib.pr_dump_free)
    assert lib.pr_dump_decode(d, buf, len(buf)) == len(ALL)
    return d


def _counts(d) -> tuple:
    v = ffi.new("pr_dump_view *")
    lib.pr_dump_get_view(d, v)
    return (v.n_links, v.n_addrs, v.n_rules, v.n_routes, v.n_nexthops, v.n_notes, v.n_metric_values, v.strings_len)


def test_every_truncation_is_refused_whole():
    whole = b"".join(ALL)
    bounds = {0}
    for m in ALL:
        bounds.add(max(bounds) + len(m))
    d = _handle_with(whole)
    before = _counts(d)
    for cut in range(1, len(whole)):
        rc = lib.pr_dump_decode(d, whole[:cut], cut)
        if cut in bounds:
            assert rc == sorted(bounds).index(cut), cut
            # appended: take it back for the next round
            d = _handle_with(whole)
        else:
            assert rc == -errno.EBADMSG, cut
            assert _counts(d) == before, cut  # nothing of a refused buffer stays
            assert ffi.string(lib.pr_dump_error(d)).startswith(b"message ")


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=6))
def test_corrupted_bytes_decode_or_are_refused(edits):
    buf = bytearray(b"".join(ALL))
    for pos, value in edits:
        buf[pos % len(buf)] = value
    d = _handle_with(b"".join(ALL))
    before = _counts(d)
    rc = lib.pr_dump_decode(d, bytes(buf), len(buf))
    if rc < 0:
        assert _counts(d) == before
    else:
        assert rc <= len(ALL) + 8
    try:
        decode_messages(bytes(buf))  # the Python side takes whatever C accepted
    except DumpError as e:
        assert e.errno in (errno.EBADMSG, errno.EPROTO) or e.errno > 0
