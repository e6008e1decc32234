"""The iproute2 reader (polroute.iproute2.batch and the per-object modules it
dispatches to) turns `ip` command lines into the requests iproute2 6.1 sends.
A small fake policy (same method names as polroute.Policy) records the
requests and keeps just enough state for names, dumps and flushes.

Defaults and abbreviations asserted here were checked against the real
`ip` 6.1.0 in throwaway namespaces where noted (e.g. `tos 10` is 0x10,
`ip rule add t 5` sets tun_id, `ip route add ... pref 5` sets no metric).
"""

import copy
import errno
import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polroute._core.errors import PolicyError
from polroute.iproute2.args import matches
from polroute.iproute2.batch import apply_batch, apply_line, parse_command
from polroute.iproute2.lexer import BatchError, ParseError, batch_lines, split_args
from polroute.iproute2.route_get_args import GetArgs, parse_route_get
from polroute.iproute2.rt_tables import RtTables
from polroute.types.infos import AddrInfo
from polroute.types.requests import (
    AF_INET,
    AF_INET6,
    FIB_RULE_INVERT,
    FR_ACT_GOTO,
    FR_ACT_NOP,
    FR_ACT_TO_TBL,
    FR_ACT_UNSPEC,
    FRA_DPORT_MASK,
    FRA_DSCP,
    FRA_DSCP_MASK,
    FRA_DST,
    FRA_FLOWLABEL,
    FRA_FLOWLABEL_MASK,
    FRA_FWMARK,
    FRA_FWMASK,
    FRA_GOTO,
    FRA_PRIORITY,
    FRA_SPORT_MASK,
    FRA_SRC,
    FRA_TABLE,
    IFA_F_NOPREFIXROUTE,
    NLM_F_APPEND,
    NLM_F_CREATE,
    NLM_F_EXCL,
    NLM_F_REPLACE,
    RT_SCOPE_HOST,
    RT_SCOPE_LINK,
    RT_SCOPE_NOWHERE,
    RT_SCOPE_UNIVERSE,
    RTA_DST,
    RTA_GATEWAY,
    RTA_METRICS,
    RTA_MULTIPATH,
    RTA_NH_ID,
    RTA_OIF,
    RTA_PREFSRC,
    RTA_PRIORITY,
    RTA_TABLE,
    RTA_VIA,
    RTM_DELADDR,
    RTM_DELROUTE,
    RTM_DELRULE,
    RTM_NEWADDR,
    RTM_NEWROUTE,
    RTM_NEWRULE,
    RTN_ANYCAST,
    RTN_BLACKHOLE,
    RTN_BROADCAST,
    RTN_LOCAL,
    RTN_MULTICAST,
    RTN_NAT,
    RTN_UNICAST,
    RTN_UNREACHABLE,
    RTNH_F_ONLINK,
    RTPROT_BOOT,
    LinkRequest,
    NexthopRequest,
    RouteRequest,
    RuleRequest,
    bit,
)


def ip(a):
    return ipaddress.ip_address(a)


# ---------------------------------------------------------------------------
# the fake policy
# ---------------------------------------------------------------------------


def _same(a, b):
    """Equal apart from the message header (a dump re-sent as a delete)."""
    a, b = copy.copy(a), copy.copy(b)
    a.msg_type = b.msg_type = 0
    a.nlmsg_flags = b.nlmsg_flags = 0
    return a == b


class FakePolicy:
    """Records every request; links by name, a dump of rules/routes that
    deletes shrink, addresses for the wildcard delete.  ``refuse`` maps a
    method name to an error raised (once) for its next request."""

    def __init__(self):
        self.links = {"lo": 1}
        self.next_index = 2
        self.sent = []
        self.addrs = []
        self.rule_dump = {
            AF_INET: [
                RuleRequest(RTM_NEWRULE, 0, AF_INET, priority=p, table=t, action=1, protocol=2)
                for p, t in ((0, 255), (32766, 254), (32767, 253))
            ],
            AF_INET6: [
                RuleRequest(RTM_NEWRULE, 0, AF_INET6, priority=p, table=t, action=1, protocol=2)
                for p, t in ((0, 255), (32766, 254))
            ],
        }
        self.route_dump = []
        self.refuse = {}

    # state handling the batch code relies on
    def clone(self):
        return copy.deepcopy(self)

    def _swap(self, other):
        self.__dict__, other.__dict__ = other.__dict__, self.__dict__

    def ifindex(self, name):
        if name not in self.links:
            raise PolicyError(errno.ENODEV, "", f'Cannot find device "{name}"')
        return self.links[name]

    def _record(self, method, req):
        if method in self.refuse:
            raise self.refuse.pop(method)
        self.sent.append((method, req))

    def link(self, req):
        self._record("link", req)
        if req.op == "add":
            for name in (req.name, req.peer):
                if name:
                    self.links[name] = self.next_index
                    self.next_index += 1
        elif req.op == "del":
            del self.links[req.name]
        elif req.newname:
            self.links[req.newname] = self.links.pop(req.name)

    def addr(self, req):
        self._record("addr", req)
        if req.msg_type == RTM_NEWADDR:
            self.addrs.append(AddrInfo(req.ifindex, req.family, req.local, req.prefixlen, req.scope, False))

    def rule(self, req):
        self._record("rule", req)
        if req.msg_type == RTM_DELRULE:
            dump = self.rule_dump[req.family]
            for i, r in enumerate(dump):
                if _same(r, req):
                    del dump[i]
                    break

    def route(self, req):
        self._record("route", req)
        if req.msg_type == RTM_DELROUTE:
            for i, r in enumerate(self.route_dump):
                if _same(r, req):
                    del self.route_dump[i]
                    break

    def rules(self, family=AF_INET):
        return [copy.copy(r) for r in self.rule_dump[family]]

    def routes(self, family=AF_INET, table=0):
        return [copy.copy(r) for r in self.route_dump if r.family == family and (table == 0 or r.table == table)]

    def addresses(self):
        return list(self.addrs)


@pytest.fixture
def pol():
    p = FakePolicy()
    for name in ("vethA", "vethB", "br0"):
        p.links[name] = p.next_index
        p.next_index += 1
    return p  # lo=1 vethA=2 vethB=3 br0=4


def one(pol, line, tables=None):
    """The single request a line sends."""
    cmd = parse_command(split_args(line), pol, tables)
    assert len(cmd.requests) == 1
    return cmd.requests[0][1]


# ---------------------------------------------------------------------------
# lexing and dispatch
# ---------------------------------------------------------------------------


def test_matches_is_a_nonempty_prefix():
    assert matches("tab", "table") and matches("table", "table")
    assert not matches("", "table") and not matches("tables", "table")


def test_batch_lines_comments_and_continuations():
    text = "# header\n\nroute add 10.0.0.0/8 \\\n  dev vethA # trailing\nrule add lookup 5\n"
    assert list(batch_lines(text)) == [(3, "route add 10.0.0.0/8   dev vethA"), (5, "rule add lookup 5")]
    assert split_args("link add 'a b' type \"x\"") == ["link", "add", "a b", "type", "x"]


@pytest.mark.parametrize(
    "line,kind",
    [
        ("r add 10.0.0.0/8 dev vethA", "route"),
        ("ro a 10.0.0.0/8 dev vethA", "route"),
        ("ru add lookup 5", "rule"),
        ("a add 10.0.0.1/24 dev vethA", "addr"),
        ("addr add 10.0.0.1/24 dev vethA", "addr"),
        ("l set vethA up", "link"),
        ("ip -4 route add 10.0.0.0/8 dev vethA", "route"),
        ("ip -6 r add 2001:db8::/32 dev vethA", "route"),
        ("-6 ru add lookup 5", "rule"),
    ],
)
def test_object_abbreviations(pol, line, kind):
    cmd = parse_command(split_args(line), pol)
    assert cmd.requests[0][0] == kind


def test_unknown_and_unsupported_objects(pol):
    with pytest.raises(ParseError, match='unknown object "foo"'):
        parse_command(["foo", "add"], pol)
    with pytest.raises(ParseError, match='unsupported object "neighbor"'):
        parse_command(["n", "add"], pol)
    with pytest.raises(ParseError, match='"route show" does not change anything'):
        parse_command(["route", "show"], pol)


# ---------------------------------------------------------------------------
# ip route add / del / ...
# ---------------------------------------------------------------------------


def test_route_add_defaults(pol):
    r = one(pol, "route add 10.0.0.0/8 via 10.1.0.254")
    assert (r.msg_type, r.nlmsg_flags) == (RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL)
    assert (r.family, r.dst, r.dst_len) == (AF_INET, ip("10.0.0.0"), 8)
    assert (r.protocol, r.scope, r.type, r.table) == (RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST, 254)
    assert r.gateway == ip("10.1.0.254") and r.oif == 0 and r.priority == 0
    assert r.present == bit(RTA_DST) | bit(RTA_GATEWAY)


def test_route_without_gateway_is_scope_link(pol):
    r = one(pol, "route add 10.0.0.0/8 dev vethA")
    assert r.scope == RT_SCOPE_LINK and r.oif == 2
    assert r.present == bit(RTA_DST) | bit(RTA_OIF)


@pytest.mark.parametrize(
    "line,rtype,table,scope",
    [
        ("route add local 10.88.0.1 dev vethA", RTN_LOCAL, 255, RT_SCOPE_HOST),
        ("route add broadcast 10.1.0.255 dev vethA", RTN_BROADCAST, 255, RT_SCOPE_LINK),
        ("route add b 10.1.0.255 dev vethA", RTN_BROADCAST, 255, RT_SCOPE_LINK),
        ("route add nat 10.1.0.5 via 10.2.0.5", RTN_NAT, 255, RT_SCOPE_HOST),
        ("route add anycast 10.1.0.0 dev vethA", RTN_ANYCAST, 255, RT_SCOPE_LINK),
        ("route add multicast 224.1.0.0/16 dev vethA", RTN_MULTICAST, 254, RT_SCOPE_LINK),
        ("route add blackhole 10.99.0.0/16", RTN_BLACKHOLE, 254, RT_SCOPE_UNIVERSE),
        ("route add u 10.98.0.0/16", RTN_UNREACHABLE, 254, RT_SCOPE_UNIVERSE),  # "u" = unreachable
        ("route add uni 10.10.0.0/16 dev vethA", RTN_UNICAST, 254, RT_SCOPE_LINK),
        ("route add to unreachable 10.9.0.0/16", RTN_UNREACHABLE, 254, RT_SCOPE_UNIVERSE),
        ("route add local 10.88.0.1 dev vethA table 7", RTN_LOCAL, 7, RT_SCOPE_HOST),
        ("route add local 10.88.0.1 dev vethA scope link", RTN_LOCAL, 255, RT_SCOPE_LINK),
    ],
)
def test_route_type_defaults(pol, line, rtype, table, scope):
    r = one(pol, line)
    assert (r.type, r.table, r.scope) == (rtype, table, scope)


def test_route_host_prefix_and_legacy_ipv4(pol):
    r = one(pol, "route add local 10.88.0.1 dev vethA")
    assert r.dst_len == 32
    r = one(pol, "route add 10.10/16 dev vethA")  # ip's "10.10" = 10.10.0.0
    assert (r.dst, r.dst_len) == (ip("10.10.0.0"), 16)
    r = one(pol, "route add 10.0.0.0/255.255.0.0 dev vethA")
    assert r.dst_len == 16


@pytest.mark.parametrize(
    "line,table,attr",
    [
        ("route add 10.0.0.0/8 dev vethA table 100", 100, False),
        ("route add 10.0.0.0/8 dev vethA tab 100", 100, False),
        ("route add 10.0.0.0/8 dev vethA t 100", 100, False),
        ("route add 10.0.0.0/8 dev vethA table 100000", 100000, True),
        ("route add 10.0.0.0/8 dev vethA table local", 255, False),
        # the attribute wins over the 8-bit field, as in the kernel
        ("route add 10.0.0.0/8 dev vethA table 300 table 5", 300, True),
    ],
)
def test_route_table(pol, line, table, attr):
    r = one(pol, line)
    assert r.table == table
    assert bool(r.present & bit(RTA_TABLE)) == attr


def test_route_table_names_from_file(pol):
    t = RtTables().load_text("700 vpn\n")
    assert one(pol, "route add 10.0.0.0/8 dev vethA table vpn", t).table == 700


@pytest.mark.parametrize(
    "line,metric",
    [
        ("route add 10.0.0.0/8 dev vethA metric 5", 5),
        ("route add 10.0.0.0/8 dev vethA m 5", 5),
        ("route add 10.0.0.0/8 dev vethA priority 6", 6),
        ("route add 10.0.0.0/8 dev vethA p 7", 7),
        ("route add 10.0.0.0/8 dev vethA preference 8", 8),
        ("route add 10.0.0.0/8 dev vethA metric 0x10", 16),
    ],
)
def test_route_metric_spellings(pol, line, metric):
    r = one(pol, line)
    assert r.priority == metric and r.present & bit(RTA_PRIORITY)


def test_route_pref_is_router_preference_not_metric(pol):
    r = one(pol, "route add 10.5.0.0/16 dev vethA pref 5")  # ip: no metric shown
    assert r.priority == 0 and not r.present & bit(RTA_PRIORITY)


@pytest.mark.parametrize(
    "line,tos",
    [
        ("route add 10.0.0.0/8 dev vethA tos 10", 0x10),  # base 16, as rt_dsfield does
        ("route add 10.0.0.0/8 dev vethA tos 0x18", 0x18),
        ("route add 10.0.0.0/8 dev vethA dsfield AF11", 0x28),
        ("route add 10.0.0.0/8 dev vethA d EF", 0xB8),
    ],
)
def test_route_tos(pol, line, tos):
    assert one(pol, line).tos == tos


@pytest.mark.parametrize(
    "line,proto",
    [
        ("route add 10.0.0.0/8 dev vethA proto static", 4),
        ("route add 10.0.0.0/8 dev vethA protocol 99", 99),
        ("route add 10.0.0.0/8 dev vethA pro kernel", 2),
        ("route add 10.0.0.0/8 dev vethA proto openr", 99),
    ],
)
def test_route_protocol(pol, line, proto):
    assert one(pol, line).protocol == proto


@pytest.mark.parametrize(
    "word,flags",
    [
        ("add", NLM_F_CREATE | NLM_F_EXCL),
        ("change", NLM_F_REPLACE),
        ("chg", NLM_F_REPLACE),
        ("replace", NLM_F_CREATE | NLM_F_REPLACE),
        ("r", NLM_F_CREATE | NLM_F_REPLACE),
        ("prepend", NLM_F_CREATE),
        ("p", NLM_F_CREATE),
        ("append", NLM_F_CREATE | NLM_F_APPEND),
        ("test", NLM_F_EXCL),
    ],
)
def test_route_nlmsg_flags(pol, word, flags):
    r = one(pol, f"route {word} 10.0.0.0/8 dev vethA")
    assert (r.msg_type, r.nlmsg_flags) == (RTM_NEWROUTE, flags)


def test_route_del_defaults(pol):
    r = one(pol, "route del 10.0.0.0/8")
    assert (r.msg_type, r.nlmsg_flags) == (RTM_DELROUTE, 0)
    assert (r.protocol, r.scope, r.type, r.table) == (0, RT_SCOPE_NOWHERE, 0, 254)
    r = one(pol, "route d local 10.88.0.1")
    assert (r.type, r.table, r.scope) == (RTN_LOCAL, 255, RT_SCOPE_HOST)
    r = one(pol, "route del blackhole 10.99.0.0/16")
    assert (r.type, r.scope) == (RTN_BLACKHOLE, RT_SCOPE_NOWHERE)
    r = one(pol, "-6 route del 2001:db8::/32")
    assert r.scope == RT_SCOPE_UNIVERSE


def test_route_family_inference(pol):
    r = one(pol, "route add 2001:db8::/32 via 2001:db8::1")
    assert (r.family, r.scope) == (AF_INET6, RT_SCOPE_UNIVERSE)
    # "default" has no family of its own: the gateway decides, no RTA_DST is sent
    r = one(pol, "route add default via 2001:db8::1")
    assert (r.family, r.dst, r.dst_len) == (AF_INET6, None, 0)
    assert not r.present & bit(RTA_DST)
    r = one(pol, "route add default dev vethA")
    assert r.family == AF_INET
    # with -6, "default" is 16 zero bytes in RTA_DST
    r = one(pol, "ip -6 route add default dev vethA")
    assert (r.family, r.dst, r.dst_len) == (AF_INET6, ip("::"), 0)
    assert r.present & bit(RTA_DST)
    r = one(pol, "route add 10.0.0.0/8 dev vethA src 10.1.0.1")
    assert r.prefsrc == ip("10.1.0.1") and r.present & bit(RTA_PREFSRC)


def test_route_via_other_family(pol):
    r = one(pol, "route add 10.50.0.0/16 via inet6 2001:db8:1::ff dev vethA")
    assert r.family == AF_INET and r.gateway == ip("2001:db8:1::ff")
    assert r.present & bit(RTA_VIA) and not r.present & bit(RTA_GATEWAY)
    with pytest.raises(ParseError, match='invalid address "2001:db8::1"'):
        parse_command(split_args("route add 10.0.0.0/8 via 2001:db8::1"), pol)


def test_route_multipath(pol):
    r = one(
        pol,
        "route add 10.93.0.0/16 nexthop via 10.1.0.254 dev vethA weight 1 "
        "nexthop via 10.2.0.254 dev vethB weight 3 onlink",
    )
    assert r.nexthops == [
        NexthopRequest(ip("10.1.0.254"), 2, 1, 0),
        NexthopRequest(ip("10.2.0.254"), 3, 3, RTNH_F_ONLINK),
    ]
    assert r.present & bit(RTA_MULTIPATH) and r.scope == RT_SCOPE_UNIVERSE
    r = one(pol, "route add 2001:db8:8::/64 nexthop via 2001:db8:1::fe dev vethA")
    assert r.family == AF_INET6 and len(r.nexthops) == 1
    # the legs' family comes from the first gateway when nothing else set it
    r = one(pol, "route add default nexthop via 2001:db8::1 dev vethA")
    assert r.family == AF_INET6
    with pytest.raises(ParseError, match='"nexthop" or end of line is expected instead of "metric"'):
        parse_command(split_args("route add 10.0.0.0/8 nexthop via 10.1.0.1 metric 5"), pol)
    with pytest.raises(ParseError, match='invalid "weight" "0"'):
        parse_command(split_args("route add 10.0.0.0/8 nexthop via 10.1.0.1 weight 0"), pol)
    with pytest.raises(ParseError, match='Cannot find device "eth9"'):
        parse_command(split_args("route add 10.0.0.0/8 nexthop via 10.1.0.1 dev eth9"), pol)


def test_route_nhid_onlink_realms(pol):
    r = one(pol, "route add 10.0.0.0/8 nhid 5")
    assert r.nh_id == 5 and r.present & bit(RTA_NH_ID) and r.scope == RT_SCOPE_UNIVERSE
    r = one(pol, "route add 10.91.0.0/16 via 10.1.0.254 onlink dev vethA")
    assert r.rtm_flags == RTNH_F_ONLINK
    assert one(pol, "route add 10.0.0.0/8 dev vethA realms 3/4").realm == (3 << 16) | 4
    assert one(pol, "route add 10.0.0.0/8 dev vethA realm 5").realm == 5
    assert one(pol, "route add 10.0.0.0/8 dev vethA realms 5/cosmos").realm == 5 << 16


def test_route_metrics(pol):
    r = one(
        pol,
        "route add 10.0.0.0/8 dev vethA mtu lock 1400 advmss 1300 rtt 100ms "
        "rttvar 20 rto_min 200ms features ecn hoplimit 64 window 1000 cwnd 10 "
        "initcwnd 12 initrwnd 20 ssthresh 5 reordering 3 quickack 1",
    )
    assert r.present & bit(RTA_METRICS)
    assert r.metrics == {
        2: 1400,
        8: 1300,
        4: 800,
        5: 20,
        13: 200,
        12: 1,
        10: 64,
        3: 1000,
        7: 10,
        11: 12,
        14: 20,
        6: 5,
        9: 3,
        15: 1,
        1: (1 << 2) | (1 << 13),
    }  # rto_min is always locked
    assert one(pol, "route add 10.0.0.0/8 dev vethA rtt 2s").metrics == {4: 16000}
    assert one(pol, "route add 10.0.0.0/8 dev vethA rtt 1.5s").metrics == {4: 12000}
    assert one(pol, "route add 10.0.0.0/8 dev vethA rt 3000ms").metrics == {5: 12000}  # rttvar
    with pytest.raises(ParseError, match='invalid "hoplimit" value "256"'):
        parse_command(split_args("route add 10.0.0.0/8 dev vethA hoplimit 256"), pol)


@pytest.mark.parametrize(
    "line,message",
    [
        ("route add 10.0.0.0/33 dev vethA", 'invalid prefix "10.0.0.0/33"'),
        ("route add 10.0.0.0/8 dev vethA tabel 5", 'unknown keyword "tabel"'),
        ("route add tabel 5 10.0.0.0/8 dev vethA", 'unknown keyword "tabel"'),
        ("route add 10.11.0.0/16 dev vethA type unicast", 'unknown keyword "type"'),
        ("route add 10.0.0.0/8 dev eth9", 'Cannot find device "eth9"'),
        ("route add 10.0.0.0/8 dev vethA table", 'missing argument after "table"'),
        ("route add 10.0.0.0/8 blackhole", 'missing argument after "blackhole"'),
        ("route add 10.0.0.0/8 dev vethA table foo", 'invalid table "foo"'),
        ("route add 10.0.0.0/8 dev vethA metric -1", 'invalid metric "-1"'),
        ("route add 10.0.0.0/8 dev vethA tos 0x100", 'invalid tos "0x100"'),
        ("route add 10.0.0.0/8 dev vethA proto nope", 'invalid protocol "nope"'),
        ("route add 10.0.0.0/8 via 10.1.0.1 via 10.1.0.2", "use nexthop syntax"),
        ("route add 10.0.0.0/8 10.1.0.0/16", 'duplicate destination "10.1.0.0/16"'),
        ("route add dev vethA", "missing destination prefix"),
        ("ip -6 route add 10.0.0.0/8 dev vethA", 'invalid prefix "10.0.0.0/8"'),
        ("route add 10.0.0.0/8 dev vethA congctl cubic", 'unsupported keyword "congctl"'),
        ("route add 2001:db8::/32 dev vethA pref highest", 'invalid "pref" value "highest"'),
        ("route frobnicate 10.0.0.0/8", 'unknown command "frobnicate" for "route"'),
    ],
)
def test_route_errors_name_the_token(pol, line, message):
    with pytest.raises(ParseError, match=message.replace("(", r"\(")):
        parse_command(split_args(line), pol)


def test_route_ipv6_router_preference(pol):
    req = one(pol, "route add 2001:db8::/32 dev vethA pref high")
    assert (req.pref, bool(req.present & (1 << 20))) == (1, True)
    assert one(pol, "route add 2001:db8::/32 dev vethA pref low").pref == 3


def test_route_dev_ifN_fallback(pol):
    # ll_name_to_index(): an unknown "ifN" name means ifindex N
    assert one(pol, "route add 10.0.0.0/8 dev if7").oif == 7


# ---------------------------------------------------------------------------
# ip rule
# ---------------------------------------------------------------------------


def test_rule_add_defaults(pol):
    r = one(pol, "rule add from 10.1.0.0/24 lookup 100")
    assert (r.msg_type, r.nlmsg_flags) == (RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL)
    assert (r.family, r.action, r.table) == (AF_INET, FR_ACT_TO_TBL, 100)
    assert (r.src, r.src_len, r.dst_len) == (ip("10.1.0.0"), 24, 0)
    assert r.present == bit(FRA_SRC)  # no FRA_PRIORITY: the kernel picks
    r = one(pol, "rule add from 1.2.3.4")
    assert r.table == 254  # main when no table/type is given


def test_rule_del_defaults(pol):
    r = one(pol, "rule del pref 100")
    assert (r.msg_type, r.nlmsg_flags) == (RTM_DELRULE, 0)
    assert (r.action, r.table, r.priority) == (FR_ACT_UNSPEC, 0, 100)
    assert r.present == bit(FRA_PRIORITY)


@pytest.mark.parametrize(
    "line,field,value",
    [
        ("rule add pref 5 lookup 8", "priority", 5),
        ("rule add pr 5 lookup 8", "priority", 5),  # "pr" is a prefix of preference
        ("rule add order 6 lookup 8", "priority", 6),
        ("rule add prio 7 lookup 8", "priority", 7),
        ("rule add t 5 lookup 7", "tun_id", 5),  # tun_id comes before table
        ("rule add ta 7", "table", 7),
        ("rule add table main", "table", 254),
        ("rule add d 0x10 lookup 9", "tos", 0x10),
        ("rule add tos 10 lookup 5", "tos", 0x10),  # hex
        ("rule add s 3 lookup 10", "suppress_prefixlen", 3),
        ("rule add sup_pl 0 lookup 10", "suppress_prefixlen", 0),
        ("rule add suppress_i default lookup 10", "suppress_ifgroup", 0),
        ("rule add sup_group 5 lookup 10", "suppress_ifgroup", 5),
        ("rule add realms 3/4 lookup 6", "realm", (3 << 16) | 4),
        ("rule add r 5 lookup 6", "realm", 5),
        ("rule add protocol static lookup 6", "protocol", 4),
        ("rule add uidrange 1000-2000 lookup 10", "uid_start", 1000),
        ("rule add ipproto tcp lookup 11", "ip_proto", 6),
        ("rule add ipproto 250 lookup 11", "ip_proto", 250),
        ("rule add ipproto UDP lookup 11", "ip_proto", 17),
        ("rule add iif vethA lookup 7", "iifname", "vethA"),
        ("rule add dev nosuchdev lookup 7", "iifname", "nosuchdev"),  # names are not resolved
        ("rule add oif nosuchdev lookup 8", "oifname", "nosuchdev"),
        ("rule add not from 10.0.0.0/8 lookup 9", "flags", FIB_RULE_INVERT),
    ],
)
def test_rule_keywords(pol, line, field, value):
    assert getattr(one(pol, line), field) == value


def test_rule_fwmark_mask_only_when_given(pol):
    r = one(pol, "rule add fwmark 0x10/0xf0 lookup 300")
    assert (r.fwmark, r.fwmask) == (0x10, 0xF0)
    assert r.present & bit(FRA_FWMARK) and r.present & bit(FRA_FWMASK)
    r = one(pol, "rule add fwmark 5 lookup main")
    assert (r.fwmark, r.fwmask) == (5, 0)
    assert r.present & bit(FRA_FWMARK) and not r.present & bit(FRA_FWMASK)


def test_rule_newer_keywords(pol):
    """dscp, flowlabel and port masks as current iproute2 sends them: a mask
    equal to all ones is not sent (but dscp's is what the kernel stores)."""
    r = one(pol, "rule add dscp 46 lookup 5")
    assert (r.dscp, r.dscp_mask) == (46, 0x3F)
    assert r.present & bit(FRA_DSCP) and not r.present & bit(FRA_DSCP_MASK)
    r = one(pol, "rule add dscp 0x8/0x38 lookup 5")
    assert (r.dscp, r.dscp_mask) == (8, 0x38) and r.present & bit(FRA_DSCP_MASK)
    r = one(pol, "-6 rule add flowlabel 0x12345 lookup 5")
    assert (r.flowlabel, r.flowlabel_mask) == (0x12345, 0xFFFFF)
    assert r.present & bit(FRA_FLOWLABEL) and r.present & bit(FRA_FLOWLABEL_MASK)
    r = one(pol, "rule add sport 1024/0xfc00 dport 53/0xffff lookup 5")
    assert (r.sport_start, r.sport_end, r.sport_mask) == (1024, 1024, 0xFC00)
    assert (r.dport_start, r.dport_end, r.dport_mask) == (53, 53, 0)
    assert r.present & bit(FRA_SPORT_MASK) and not r.present & bit(FRA_DPORT_MASK)
    # a range keeps 6.1's sscanf("%hu-%hu"): what follows is ignored
    r = one(pol, "rule add sport 1000-2000/0xff lookup 5")
    assert (r.sport_start, r.sport_end, r.sport_mask) == (1000, 2000, 0)


def test_rule_tables_and_actions(pol):
    r = one(pol, "rule add lookup 100000")
    assert r.table == 100000 and r.present & bit(FRA_TABLE)
    r = one(pol, "rule add lookup 100")
    assert r.table == 100 and not r.present & bit(FRA_TABLE)
    r = one(pol, "rule add goto 700 pref 650")
    assert (r.action, r.goto_target, r.table) == (FR_ACT_GOTO, 700, 0)
    assert r.present & bit(FRA_GOTO)
    assert one(pol, "rule add nop").action == FR_ACT_NOP
    assert (one(pol, "rule add blackhole").action, one(pol, "rule add blackhole").table) == (6, 0)
    assert one(pol, "rule add unreachable").action == 7
    assert one(pol, "rule add type prohibit").action == 8
    # any type word means "a table was given": no main default
    r = one(pol, "rule add from 1.2.3.4 type unicast")
    assert (r.action, r.table) == (FR_ACT_TO_TBL, 0)
    r = one(pol, "rule add l3mdev")
    assert (r.l3mdev, r.table) == (1, 0)


def test_rule_ports_and_uids(pol):
    r = one(pol, "rule add ipproto tcp dport 443 sport 1000-2000 lookup 11")
    assert (r.dport_start, r.dport_end, r.sport_start, r.sport_end) == (443, 443, 1000, 2000)
    r = one(pol, "rule add uidrange 0-0 lookup 7")
    assert (r.uid_start, r.uid_end) == (0, 0)


def test_rule_from_all_and_default(pol):
    r = one(pol, "rule add from all lookup 100")
    assert (r.src, r.src_len) == (None, 0) and not r.present & bit(FRA_SRC)
    r = one(pol, "rule add to 10.2.0.5 lookup 200")
    assert (r.dst, r.dst_len) == (ip("10.2.0.5"), 32) and r.present & bit(FRA_DST)
    r = one(pol, "-4 rule add from default lookup 102")
    assert (r.src, r.src_len) == (ip("0.0.0.0"), 0)


def test_rule_ipv6(pol):
    r = one(pol, "ip -6 rule add from 2001:db8:2::/64 lookup 200")
    assert (r.family, r.src, r.src_len) == (AF_INET6, ip("2001:db8:2::"), 64)
    r = one(pol, "-6 rule add tos 0xb8 lookup 202 pref 101")
    assert (r.family, r.tos, r.priority) == (AF_INET6, 0xB8, 101)


def test_rule_ipv6_address_without_dash6_is_refused(pol):
    # ip keeps the rule family at inet; the kernel refuses the 16-byte FRA_SRC
    with pytest.raises(PolicyError) as e:
        parse_command(split_args("rule add from 2001:db8::/32 lookup 100"), pol)
    assert e.value.iproute2_text() == "Error: Invalid source address."
    with pytest.raises(PolicyError) as e:
        parse_command(split_args("rule add to 2001:db8::1 lookup 100"), pol)
    assert e.value.iproute2_text() == "Error: Invalid dst address."


@pytest.mark.parametrize(
    "line,message",
    [
        ("rule add", '"ip rule add" requires arguments'),
        ("rule del", '"ip rule del" requires arguments'),
        ("rule add from 1.2.3.4 tabel 5", 'unknown keyword "tabel"'),
        ("rule add lookup nosuch", 'invalid table "nosuch"'),
        ("-6 rule add from 10.0.0.0/8 lookup 5", 'invalid prefix "10.0.0.0/8"'),
        ("rule add fwmark 0x10/zz lookup 5", 'invalid fwmask "zz"'),
        ("rule add uidrange 5 lookup 5", 'invalid uid range "5"'),
        ("rule add sport x lookup 5", 'invalid port range "x"'),
        ("rule add ipproto nosuchproto lookup 5", 'invalid ipproto "nosuchproto"'),
        ("rule add suppress_prefixlength -1 lookup 5", 'invalid suppress_prefixlength "-1"'),
        ("rule add iif a/b lookup 5", 'invalid iif "a/b"'),
        ("rule add l3mdev lookup 5", "table can not be specified for l3mdev rules"),
        ("rule add pref", 'missing argument after "pref"'),
        # the newer keywords, with current iproute2's texts
        ("rule add dscp zz lookup 5", 'invalid dscp "zz"'),
        ("rule add dscp 4/zz lookup 5", 'invalid dscp mask "zz"'),
        ("-6 rule add flowlabel x lookup 5", 'invalid flowlabel "x"'),
        ("-6 rule add flowlabel 1/x lookup 5", 'invalid flowlabel mask "x"'),
        ("rule add sport 1024/zz lookup 5", 'invalid mask "zz"'),
        ("rule add dport 70000/0xff lookup 5", 'invalid port "70000"'),
    ],
)
def test_rule_errors(pol, line, message):
    with pytest.raises(ParseError, match=message):
        parse_command(split_args(line), pol)


def test_rule_flush_keeps_pref_0(pol):
    pol.rule_dump[AF_INET].insert(1, RuleRequest(RTM_NEWRULE, 0, AF_INET, priority=0, table=6))
    pol.rule_dump[AF_INET].insert(
        2, RuleRequest(RTM_NEWRULE, 0, AF_INET, priority=32765, table=5, action=1, src=ip("1.2.3.4"), src_len=32)
    )
    apply_line(pol, "rule flush")
    assert [(r.priority, r.table) for r in pol.rule_dump[AF_INET]] == [(0, 255), (0, 6)]
    deletes = [req for _, req in pol.sent]
    assert [(d.msg_type, d.nlmsg_flags, d.priority) for d in deletes] == [
        (RTM_DELRULE, 0, 32765),
        (RTM_DELRULE, 0, 32766),
        (RTM_DELRULE, 0, 32767),
    ]
    assert deletes[0].src == ip("1.2.3.4")  # the dumped rule is sent back whole
    assert len(pol.rule_dump[AF_INET6]) == 2  # ip rule flush is IPv4 unless -6


def test_rule_flush_selectors(pol):
    dump = pol.rule_dump[AF_INET]
    dump.insert(1, RuleRequest(RTM_NEWRULE, 0, AF_INET, priority=100, table=7, protocol=4))
    dump.insert(2, RuleRequest(RTM_NEWRULE, 0, AF_INET, priority=101, table=7))
    apply_line(pol, "rule flush protocol static")
    assert [r.priority for r in dump] == [0, 101, 32766, 32767]
    apply_line(pol, "rule flush table 7")
    assert [r.priority for r in dump] == [0, 32766, 32767]
    apply_line(pol, "-6 rule flush")
    assert [r.priority for r in pol.rule_dump[AF_INET6]] == [0]


# ---------------------------------------------------------------------------
# ip route flush
# ---------------------------------------------------------------------------


def _dumped(dst, family=AF_INET, **kw):
    net = ipaddress.ip_network(dst)
    r = RouteRequest(RTM_NEWROUTE, 0, family=family, dst=net.network_address, dst_len=net.prefixlen, **kw)
    r.present = bit(RTA_TABLE) | bit(RTA_PRIORITY) | (bit(RTA_DST) if net.prefixlen else 0)
    return r


@pytest.fixture
def routed(pol):
    pol.route_dump = [
        _dumped("10.5.0.0/16", table=100, gateway=ip("10.1.0.254"), oif=2, protocol=3),
        _dumped("10.6.0.0/16", table=100, oif=2, protocol=4, scope=RT_SCOPE_LINK),
        _dumped("10.7.0.0/16", oif=2, protocol=3, scope=RT_SCOPE_LINK),
        _dumped("10.8.0.0/16", table=100, type=RTN_BLACKHOLE, protocol=3),
        _dumped("10.1.0.0/24", oif=2, protocol=2, scope=RT_SCOPE_LINK),
        _dumped("10.9.0.0/16", oif=3, protocol=3, scope=RT_SCOPE_LINK, priority=7),
        _dumped("2001:db8:9::/64", AF_INET6, table=100, oif=2, protocol=3, priority=1024),
        _dumped("2001:db8:1::/64", AF_INET6, oif=2, protocol=2, priority=256),
        _dumped("::/0", AF_INET6, type=RTN_UNREACHABLE, priority=0xFFFFFFFF),
    ]
    return pol


def _left(pol):
    return [str(r.dst) + "/" + str(r.dst_len) for r in pol.route_dump]


def test_route_flush_table_proto(routed):
    apply_line(routed, "route flush table 100 proto static")
    assert "10.6.0.0/16" not in _left(routed) and len(routed.route_dump) == 8
    ((method, req),) = routed.sent
    assert (method, req.msg_type, req.nlmsg_flags, req.table) == ("route", RTM_DELROUTE, 0, 100)


def test_route_flush_dev_is_main_and_ipv4(routed):
    apply_line(routed, "route flush dev vethA")
    assert _left(routed) == [
        "10.5.0.0/16",
        "10.6.0.0/16",
        "10.8.0.0/16",
        "10.9.0.0/16",
        "2001:db8:9::/64",
        "2001:db8:1::/64",
        "::/0",
    ]


def test_route_flush_table_all_type_covers_both_families(routed):
    routed.route_dump.append(_dumped("2001:db8:7::/64", AF_INET6, type=RTN_BLACKHOLE, table=300))
    apply_line(routed, "route flush table all type blackhole")
    assert "10.8.0.0/16" not in _left(routed) and "2001:db8:7::/64" not in _left(routed)
    assert len(routed.route_dump) == 8


def test_route_flush_prefix_selectors(routed):
    apply_line(routed, "route flush root 10.0.0.0/13 table all")  # 10.0/13: 10.0-10.7
    assert _left(routed)[:2] == ["10.8.0.0/16", "10.9.0.0/16"]
    assert "2001:db8:9::/64" in _left(routed)  # no family: both dumped, v6 not inside
    apply_line(routed, "route flush 10.9.0.0/16")  # exact, main
    assert "10.9.0.0/16" not in _left(routed)
    apply_line(routed, "route flush metric 256 table all")
    assert "10.8.0.0/16" in _left(routed)  # IPv4 only (dump family)


def test_route_flush_ipv6_keeps_null_entry(routed):
    apply_line(routed, "-6 route flush table all")
    assert _left(routed) == [
        "10.5.0.0/16",
        "10.6.0.0/16",
        "10.7.0.0/16",
        "10.8.0.0/16",
        "10.1.0.0/24",
        "10.9.0.0/16",
        "::/0",
    ]


def test_route_flush_errors(routed):
    with pytest.raises(ParseError, match='"ip route flush" requires arguments'):
        apply_line(routed, "route flush")
    with pytest.raises(ParseError, match='Cannot find device "eth9"'):
        apply_line(routed, "route flush dev eth9")
    routed.refuse["route"] = PolicyError(errno.ESRCH)
    with pytest.raises(ParseError, match="Failed to send flush request: No such process"):
        apply_line(routed, "route flush table 100")
    apply_line(routed, "route flush cache")  # no route cache in the model: nothing sent
    assert routed.sent == []


# ---------------------------------------------------------------------------
# ip address
# ---------------------------------------------------------------------------


def test_addr_add(pol):
    a = one(pol, "addr add 10.1.0.1/24 dev vethA")
    assert (a.msg_type, a.nlmsg_flags, a.family) == (RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, AF_INET)
    assert (a.ifindex, a.local, a.prefixlen, a.scope) == (2, ip("10.1.0.1"), 24, 0)
    assert (a.flags, a.metric, a.broadcast) == (0, 0, None)
    assert one(pol, "a add 10.9.0.1 dev vethA").prefixlen == 32  # no /len: /32
    assert one(pol, "address add 127.0.0.2/8 dev lo").scope == RT_SCOPE_HOST
    assert one(pol, "addr add 10.1.0.1/24 dev vethA scope link").scope == RT_SCOPE_LINK
    a = one(pol, "addr add 10.1.0.1/24 dev vethA metric 33 noprefixroute")
    assert (a.metric, a.flags) == (33, IFA_F_NOPREFIXROUTE)
    assert one(pol, "addr replace 10.1.0.1/24 dev vethA").nlmsg_flags == NLM_F_CREATE | NLM_F_REPLACE
    assert one(pol, "addr change 10.1.0.1/24 dev vethA").nlmsg_flags == NLM_F_REPLACE


def test_addr_broadcast(pol):
    assert one(pol, "addr add 10.1.0.1/24 brd + dev vethA").broadcast == ip("10.1.0.255")
    assert one(pol, "addr add 10.1.0.1/24 broadcast - dev vethA").broadcast == ip("10.1.0.0")
    assert one(pol, "addr add 10.1.0.1/31 brd + dev vethA").broadcast is None
    assert one(pol, "addr add 10.1.0.1/24 brd 10.1.0.127 dev vethA").broadcast == ip("10.1.0.127")
    with pytest.raises(ParseError, match="Broadcast can be set only for IPv4"):
        parse_command(split_args("addr add 2001:db8::1/64 brd + dev vethA"), pol)


def test_addr_ipv6_and_flag_warnings(pol):
    a = one(pol, "addr add 2001:db8:1::1/64 dev vethA nodad")
    assert (a.family, a.prefixlen, a.flags) == (AF_INET6, 64, 0x02)
    assert one(pol, "addr add 2001:db8:1::1 dev vethA").prefixlen == 128
    # a v6-only flag before the address: ip does not know the family yet
    cmd = parse_command(split_args("addr add nodad 2001:db8:1::1/64 dev vethA"), pol)
    assert cmd.requests[0][1].flags == 0
    assert cmd.warnings == ["Warning: nodad option can be set only for IPv6 addresses"]
    cmd = parse_command(split_args("addr add 10.1.0.1/24 dev vethA secondary"), pol)
    assert cmd.warnings == ["Warning: secondary option is not mutable from userspace"]


def test_addr_del_wildcard(pol):
    pol.addrs.append(AddrInfo(2, AF_INET, ip("10.9.0.1"), 24, 0, False))
    cmd = parse_command(split_args("addr del 10.9.0.1 dev vethA"), pol)
    a = cmd.requests[0][1]
    assert (a.msg_type, a.nlmsg_flags, a.prefixlen) == (RTM_DELADDR, 0, 24)
    assert cmd.warnings[0].startswith("Warning: Executing wildcard deletion")
    assert "(10.9.0.1/32)" in cmd.warnings[0]
    assert one(pol, "addr del 10.9.0.1/16 dev vethA").prefixlen == 16


@pytest.mark.parametrize(
    "line,message",
    [
        ("addr add 10.1.0.1/24", 'Not enough information: "dev" argument is required.'),
        ("addr add 10.1.0.1/24 dev eth9", 'Cannot find device "eth9"'),
        ("addr add 10.1.0.1/33 dev vethA", 'invalid prefix "10.1.0.1/33"'),
        ("addr add 10.1.0.1/24 dev vethA label foo", 'invalid label "foo"'),
        ("addr add 10.1.0.1/24 10.1.0.2/24 dev vethA", 'duplicate local address "10.1.0.2/24"'),
        ("addr add 10.1.0.1/24 dev vethA bogus", 'unknown keyword "bogus"'),
    ],
)
def test_addr_errors(pol, line, message):
    with pytest.raises(ParseError, match=message):
        parse_command(split_args(line), pol)


# ---------------------------------------------------------------------------
# ip link
# ---------------------------------------------------------------------------


def test_link_commands(pol):
    assert one(pol, "link add vethX type veth peer name vethY") == LinkRequest(
        "add", "vethX", kind="veth", peer="vethY"
    )
    assert one(pol, "link add name vethX type veth peer vethY") == LinkRequest(
        "add", "vethX", kind="veth", peer="vethY"
    )
    assert one(pol, "l add br1 type bridge") == LinkRequest("add", "br1", kind="bridge")
    assert one(pol, "link add ifb0 type ifb") == LinkRequest("add", "ifb0", kind="ifb")
    assert one(pol, "link set vethA up") == LinkRequest("set", "vethA", up=True)
    assert one(pol, "link set dev vethA down") == LinkRequest("set", "vethA", up=False)
    assert one(pol, "link set vethA down up") == LinkRequest("set", "vethA", up=True)
    assert one(pol, "link set vethA name vethZ") == LinkRequest("set", "vethA", newname="vethZ")
    assert one(pol, "link set vethA group 5") == LinkRequest("set", "vethA", group=5)
    assert one(pol, "link set vethA group default") == LinkRequest("set", "vethA", group=0)
    assert one(pol, "link del vethA") == LinkRequest("del", "vethA")
    assert one(pol, "link delete dev vethA") == LinkRequest("del", "vethA")
    cmd = parse_command(split_args("link add vethX up type veth peer name vethY"), pol)
    assert [r for _, r in cmd.requests] == [
        LinkRequest("add", "vethX", kind="veth", peer="vethY"),
        LinkRequest("set", "vethX", up=True),
    ]


@pytest.mark.parametrize(
    "line,message",
    [
        ("link del eth9", 'Cannot find device "eth9"'),
        ("link set eth9 up", 'Cannot find device "eth9"'),
        ("link set vethA mtu 9000", 'unsupported keyword "mtu"'),
        ("link add vethX type veth peer name a/b", 'invalid "name" "a/b"'),
        ("link add vethX", '"type" argument is required'),
    ],
)
def test_link_errors(pol, line, message):
    with pytest.raises(ParseError, match=message):
        parse_command(split_args(line), pol)


# ---------------------------------------------------------------------------
# ip route get
# ---------------------------------------------------------------------------


def test_route_get_full():
    g = parse_route_get(
        split_args(
            "8.8.8.8 from 10.1.0.1 iif vethB oif vethA tos 10 mark 0x10 uid 1000 ipproto tcp sport 1000 dport 443"
        )
    )
    assert g == GetArgs(
        AF_INET,
        ip("8.8.8.8"),
        32,
        src=ip("10.1.0.1"),
        src_len=32,
        iif="vethB",
        oif="vethA",
        tos=0x10,
        mark=16,
        uid=1000,
        ip_proto=6,
        sport=1000,
        dport=443,
    )


def test_route_get_variants():
    g = parse_route_get(["to", "2001:db8::1"])
    assert (g.family, g.dst, g.dst_len, g.ip_proto, g.uid) == (AF_INET6, ip("2001:db8::1"), 128, None, None)
    g = parse_route_get(["10.0.0.1/24", "dev", "vethA", "fibmatch"])
    assert (g.dst_len, g.oif, g.fibmatch) == (32, "vethA", True)
    assert g.warnings == ["Warning: /24 as prefix is invalid, only /32 (or none) is supported."]
    g = parse_route_get(["10.0.0.1", "d", "0x18", "i", "vethB", "m", "0"])  # d=dsfield i=iif m=mark
    assert (g.tos, g.iif, g.mark) == (0x18, "vethB", 0)
    g = parse_route_get(["default"], family=AF_INET6)
    assert (g.family, g.dst) == (AF_INET6, ip("::"))


@pytest.mark.parametrize(
    "args,message",
    [
        ([], "need at least a destination address"),
        (["from", "10.1.0.1"], "need at least a destination address"),
        (["10.0.0.1", "tos", "zz"], 'invalid tos "zz"'),
        (["10.0.0.1", "dport", "65536"], 'invalid dport "65536"'),
        (["10.0.0.1", "uid"], 'missing argument after "uid"'),
        (["10.0.0.1", "bogus"], 'unknown keyword "bogus"'),
        (["10.0.0.1", "from", "2001:db8::1"], 'invalid prefix "2001:db8::1"'),
    ],
)
def test_route_get_errors(args, message):
    with pytest.raises(ValueError, match=message):
        parse_route_get(args)


# ---------------------------------------------------------------------------
# batches
# ---------------------------------------------------------------------------


def test_batch_resolves_names_created_by_earlier_lines(pol):
    text = """\
# two NICs
ip link add vethX type veth peer name vethY
ip link set vethX up
ip -4 addr add 10.7.0.1/24 dev vethX
route add 10.8.0.0/16 via 10.7.0.254 dev vethX table 100
ip rule add from 10.7.0.0/24 lookup 100
"""
    before = copy.deepcopy(pol.sent)
    assert apply_batch(pol, text, "two-nic.ip") == []
    kinds = [m for m, _ in pol.sent]
    assert kinds == ["link", "link", "addr", "route", "rule"] and before == []
    assert pol.sent[3][1].oif == pol.links["vethX"]


def test_batch_is_all_or_nothing(pol):
    text = "link add vethX type veth peer name vethY\nroute add 10.0.0.0/8 dev vethX\nroute add 10.0.0.0/33 dev vethX\n"
    with pytest.raises(BatchError) as e:
        apply_batch(pol, text, "two-nic.ip")
    assert str(e.value) == 'two-nic.ip:3: invalid prefix "10.0.0.0/33"'
    assert (e.value.lineno, e.value.line) == (3, "route add 10.0.0.0/33 dev vethX")
    assert pol.sent == [] and "vethX" not in pol.links


@pytest.mark.parametrize(
    "text,expected",
    [
        ("\n\n\n\n\n\nrule add from 1.2.3.4 tabel 5\n", 'x.ip:7: unknown keyword "tabel"'),
        ("# c\nroute add 10.0.0.0/8 dev eth9\n", 'x.ip:2: Cannot find device "eth9"'),
        ("link add 'vethX type veth\n", "x.ip:1: Unterminated quoted string"),
        ("route show\n", 'x.ip:1: "route show" does not change anything; not supported here'),
    ],
)
def test_batch_parse_errors(pol, text, expected):
    with pytest.raises(BatchError) as e:
        apply_batch(pol, text, "x.ip")
    assert str(e.value) == expected


def test_batch_reports_what_ip_prints_for_refused_requests(pol):
    text = "route add 10.0.0.0/8 dev vethA\nrule add lookup 5\nrule add lookup 6\nroute add 10.0.0.0/8 dev vethA\n"
    pol_copy = copy.deepcopy(pol)

    def refuse_4th(policy):
        orig = policy.clone

        def clone():
            c = orig()
            real_route = c.route
            calls = []

            def route(req):
                calls.append(req)
                if len(calls) == 2:
                    raise PolicyError(errno.EEXIST)
                real_route(req)

            c.route = route
            return c

        policy.clone = clone

    refuse_4th(pol)
    with pytest.raises(BatchError) as e:
        apply_batch(pol, text, "x.ip")
    assert str(e.value) == "x.ip:4: RTNETLINK answers: File exists"
    assert isinstance(e.value.cause, PolicyError)
    assert pol.sent == pol_copy.sent == []

    pol2 = copy.deepcopy(pol_copy)
    pol2.refuse["route"] = PolicyError(errno.EINVAL, "Nexthop has invalid gateway")
    with pytest.raises(BatchError) as e:
        apply_batch(pol2, "route add 10.0.0.0/8 via 10.9.9.9\n", "x.ip")
    assert str(e.value) == "x.ip:1: Error: Nexthop has invalid gateway."
    with pytest.raises(BatchError) as e:
        apply_batch(pol2, "\nrule add from 2001:db8::/32 lookup 100\n", "x.ip")
    assert str(e.value) == "x.ip:2: Error: Invalid source address."


def test_batch_warnings_carry_file_and_line(pol):
    pol.addrs.append(AddrInfo(2, AF_INET, ip("10.9.0.1"), 24, 0, False))
    out = apply_batch(pol, "link set vethA up\naddr del 10.9.0.1 dev vethA\n", "w.ip")
    assert len(out) == 1 and out[0].startswith("w.ip:2: Warning: Executing wildcard deletion")
    assert pol.sent[1][1].prefixlen == 24


def _ipv4_legacy_reference(s: str):
    """get_addr_ipv4() step by step (strtoul base 0 per part), no fast path."""
    from polroute.iproute2.rt_tables import strtoul as _strtoul

    out = bytearray(4)
    pos = 0
    for i in range(4):
        value, end, _ = _strtoul(s, 0, pos)
        if value > 255 or end == pos:
            return None
        out[i] = value
        if end == len(s):
            return bytes(out)
        if i == 3 or s[end] != ".":
            return None
        pos = end + 1
    return bytes(out)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            ["0", "1", "7", "8", "9", "25", "255", "256", "010", "0x1f", "00", "300", "1000", "", "+1", "-1", "a"]
        ),
        min_size=1,
        max_size=5,
    )
)
def test_ipv4_legacy_fast_path_equals_reference(parts):
    from polroute.iproute2.args import _ipv4_legacy

    s = ".".join(parts)
    assert _ipv4_legacy(s) == _ipv4_legacy_reference(s)
