"""polroute.iproute2.show prints what iproute2 6.1 prints.

Every expected string below was produced by the real `ip` 6.1.0 (kernel
6.18) in a throwaway network namespace, from the same configuration the
request objects describe (vethA=3, vethB=2, br0=4, lo=1, vethC=5).  Route
lines keep ip's trailing space; IPv6 lines end in "pref medium".
"""

import ipaddress

import pytest

from polroute.iproute2.rt_tables import RtTables
from polroute.iproute2.show import format_routes, format_rules, inet_ntop, ipproto_name
from polroute.types.requests import (
    AF_INET,
    AF_INET6,
    FIB_RULE_INVERT,
    FR_ACT_BLACKHOLE,
    FR_ACT_GOTO,
    FR_ACT_NOP,
    FR_ACT_PROHIBIT,
    FR_ACT_TO_TBL,
    FR_ACT_UNREACHABLE,
    RT_SCOPE_HOST,
    RT_SCOPE_LINK,
    RTM_NEWROUTE,
    RTM_NEWRULE,
    RTN_BLACKHOLE,
    RTN_BROADCAST,
    RTN_LOCAL,
    RTN_MULTICAST,
    RTN_PROHIBIT,
    RTN_THROW,
    RTN_UNICAST,
    RTN_UNREACHABLE,
    RTNH_F_ONLINK,
    NexthopRequest,
    RouteRequest,
    RuleRequest,
)

IFNAMES = {1: "lo", 2: "vethB", 3: "vethA", 4: "br0", 5: "vethC"}
ifname = IFNAMES.__getitem__
TABLES = RtTables()
DEAD, LINKDOWN = 0x01, 0x10


def ip(a):
    return ipaddress.ip_address(a)


def rule(prio, family=AF_INET, table=0, action=FR_ACT_TO_TBL, src=None, dst=None, **kw):
    r = RuleRequest(RTM_NEWRULE, 0, family=family, priority=prio, table=table, action=action, **kw)
    if src:
        net = ipaddress.ip_network(src)
        r.src, r.src_len = net.network_address, net.prefixlen
    if dst:
        net = ipaddress.ip_network(dst)
        r.dst, r.dst_len = net.network_address, net.prefixlen
    return r


def route(
    dst,
    family=AF_INET,
    gw=None,
    oif=0,
    table=254,
    protocol=3,
    scope=0,
    type=RTN_UNICAST,
    prefsrc=None,
    priority=0,
    **kw,
):
    r = RouteRequest(
        RTM_NEWROUTE,
        0,
        family=family,
        table=table,
        protocol=protocol,
        scope=scope,
        type=type,
        priority=priority,
        oif=oif,
        **kw,
    )
    if dst != "default":
        net = ipaddress.ip_network(dst)
        r.dst, r.dst_len = net.network_address, net.prefixlen
    r.gateway = ip(gw) if gw else None
    r.prefsrc = ip(prefsrc) if prefsrc else None
    return r


# ---------------------------------------------------------------------------
# ip rule show
# ---------------------------------------------------------------------------

RULE_GOLDENS = [
    (rule(0, table=255, protocol=2), "0:\tfrom all lookup local"),
    (rule(32766, table=254, protocol=2), "32766:\tfrom all lookup main"),
    (rule(32767, table=253, protocol=2), "32767:\tfrom all lookup default"),
    (
        rule(191, table=12, ip_proto=250, sport_start=1000, sport_end=2000),
        "191:\tfrom all ipproto ipproto-250 sport 1000-2000 lookup 12",
    ),
    (rule(192, table=11, ip_proto=6, dport_start=443, dport_end=443), "192:\tfrom all ipproto tcp dport 443 lookup 11"),
    (rule(193, table=10, uid_start=1000, uid_end=2000), "193:\tfrom all uidrange 1000-2000 lookup 10"),
    (rule(194, table=255, tos=0x10), "194:\tfrom all tos 0x10 lookup local"),
    (rule(195, table=8, oifname="nosuchdev", flags=0x10), "195:\tfrom all oif nosuchdev [detached] lookup 8"),
    (rule(196, table=7, iifname="vethA"), "196:\tfrom all iif vethA lookup 7"),
    (rule(197, table=5, fwmark=0, fwmask=0xFFFFFFFF), "197:\tfrom all fwmark 0 lookup 5"),
    (rule(198, table=254, fwmark=5, fwmask=0xFFFFFFFF), "198:\tfrom all fwmark 0x5 lookup main"),
    (rule(199, table=300, fwmark=0x10, fwmask=0xF0), "199:\tfrom all fwmark 0x10/0xf0 lookup 300"),
    (rule(200, table=200, dst="10.2.0.5/32"), "200:\tfrom all to 10.2.0.5 lookup 200"),
    (rule(500, table=9, src="10.0.0.0/8", flags=FIB_RULE_INVERT), "500:\tnot from 10.0.0.0/8 lookup 9"),
    (rule(600, table=254, suppress_prefixlen=0), "600:\tfrom all lookup main suppress_prefixlength 0"),
    (rule(601, table=254, suppress_ifgroup=0), "601:\tfrom all lookup main suppress_ifgroup default"),
    (rule(602, table=254, suppress_ifgroup=5), "602:\tfrom all lookup main suppress_ifgroup 5"),
    (rule(650, action=FR_ACT_GOTO, goto_target=700), "650:\tfrom all goto 700"),
    (rule(651, action=FR_ACT_GOTO, goto_target=900, flags=0x04), "651:\tfrom all goto 900 [unresolved]"),
    (rule(700, action=FR_ACT_NOP), "700:\tfrom all nop"),
    (rule(701, action=FR_ACT_BLACKHOLE), "701:\tfrom all blackhole"),
    (rule(702, action=FR_ACT_UNREACHABLE), "702:\tfrom all unreachable"),
    (rule(703, action=FR_ACT_PROHIBIT), "703:\tfrom all prohibit"),
    (rule(704, l3mdev=1), "704:\tfrom all lookup [l3mdev-table]"),
    (rule(705, table=100000), "705:\tfrom all lookup 100000"),
    (rule(706, table=6, protocol=4), "706:\tfrom all lookup 6 proto static"),
    (rule(707, table=6, protocol=99), "707:\tfrom all lookup 6 proto openr"),
    (rule(708, table=6, realm=(3 << 16) | 4), "708:\tfrom all lookup 6 realms 3/4"),
    (rule(709, table=6, realm=5), "709:\tfrom all lookup 6 realms 5"),
    (rule(710, table=6, tun_id=77), "710:\tfrom all tun_id 77 lookup 6"),
    (rule(711, table=6, src="0.0.0.0/32"), "711:\tfrom 0.0.0.0 lookup 6"),
    (rule(712, table=1), "712:\tfrom all lookup 1"),
    (rule(32765, table=100, src="10.1.0.0/24"), "32765:\tfrom 10.1.0.0/24 lookup 100"),
    # second namespace
    (rule(10, table=5, iifname="lo", flags=FIB_RULE_INVERT), "10:\tnot from all iif lo lookup 5"),
    (rule(11, table=6, src="10.1.0.1/32"), "11:\tfrom 10.1.0.1 lookup 6"),
    (
        rule(12, table=253, src="192.168.1.0/24", dst="10.0.0.0/8", tos=0x04, fwmark=0x100, fwmask=0xFF00),
        "12:\tfrom 192.168.1.0/24 to 10.0.0.0/8 tos 0x04 fwmark 0x100/0xff00 lookup default",
    ),
    (
        rule(13, table=7, iifname="nosuch0", oifname="vethA", flags=0x08),
        "13:\tfrom all iif nosuch0 [detached] oif vethA lookup 7",
    ),
    (rule(14, table=8, realm=5 << 16), "14:\tfrom all lookup 8 realms 5/cosmos"),
    (
        rule(15, table=9, ip_proto=1, sport_start=7, sport_end=7, dport_start=1, dport_end=2),
        "15:\tfrom all ipproto icmp sport 7 dport 1-2 lookup 9",
    ),
    (
        rule(16, table=10, suppress_prefixlen=24, suppress_ifgroup=3),
        "16:\tfrom all lookup 10 suppress_prefixlength 24 suppress_ifgroup 3",
    ),
    (rule(17, action=4), "17:\tfrom all anycast"),
    (rule(18, table=10, fwmark=5, fwmask=0), "18:\tfrom all fwmark 0x5/0 lookup 10"),
    # IPv6
    (
        rule(99, AF_INET6, table=203, fwmark=7, fwmask=0xFFFFFFFF, ip_proto=17),
        "99:\tfrom all fwmark 0x7 ipproto udp lookup 203",
    ),
    (
        rule(100, AF_INET6, table=201, dst="2001:db8::1/128", iifname="lo"),
        "100:\tfrom all to 2001:db8::1 iif lo lookup 201",
    ),
    (rule(101, AF_INET6, table=202, tos=0xB8), "101:\tfrom all tos EF lookup 202"),
    (rule(32765, AF_INET6, table=200, src="2001:db8:2::/64"), "32765:\tfrom 2001:db8:2::/64 lookup 200"),
    (rule(5, AF_INET6, table=5, tos=0x28), "5:\tfrom all tos AF11 lookup 5"),
    (rule(6, AF_INET6, table=6, src="2001:db8::1/128", flags=FIB_RULE_INVERT), "6:\tnot from 2001:db8::1 lookup 6"),
    (rule(7, AF_INET6, table=7, uid_start=0, uid_end=0), "7:\tfrom all uidrange 0-0 lookup 7"),
    (rule(8, AF_INET6, table=8, protocol=3), "8:\tfrom all lookup 8 proto boot"),
]


@pytest.mark.parametrize("req,golden", RULE_GOLDENS, ids=[g for _, g in RULE_GOLDENS])
def test_rule_golden(req, golden):
    assert format_rules([req], TABLES, ifname) == [golden]


def test_rule_list_keeps_dump_order():
    rules = [r for r, _ in RULE_GOLDENS[:5]]
    assert format_rules(rules, TABLES, ifname) == [g for _, g in RULE_GOLDENS[:5]]


def test_rule_edge_cases():
    # a prefix length without an address (never dumped by a real kernel)
    r = rule(3, table=5)
    r.src_len, r.dst_len = 8, 16
    assert format_rules([r]) == ["3:\tfrom 0/8 to 0/16 lookup 5"]
    # goto without target, action 0, a custom table name
    assert format_rules([rule(4, action=FR_ACT_GOTO)]) == ["4:\tfrom all goto none"]
    assert format_rules([rule(4, action=0)]) == ["4:\tfrom all none"]
    t = RtTables().load_text("700 vpn\n")
    assert format_rules([rule(9, table=700)], t) == ["9:\tfrom all lookup vpn"]


# ---------------------------------------------------------------------------
# ip route show
# ---------------------------------------------------------------------------

MAIN_V4 = [
    (route("default", gw="10.1.0.254", oif=3), "default via 10.1.0.254 dev vethA "),
    (
        route("10.1.0.0/24", oif=3, protocol=2, scope=RT_SCOPE_LINK, prefsrc="10.1.0.1"),
        "10.1.0.0/24 dev vethA proto kernel scope link src 10.1.0.1 ",
    ),
    (route("10.84.0.0/16", oif=3, scope=17), "10.84.0.0/16 dev vethA scope 17 "),
    (
        route("10.85.0.0/16", oif=3, scope=RT_SCOPE_LINK, metrics={1: 1 << 2, 2: 1300}),
        "10.85.0.0/16 dev vethA scope link mtu lock 1300 ",
    ),
    (
        route(
            "10.86.0.0/16",
            gw="10.1.0.254",
            oif=3,
            metrics={
                3: 1000,
                4: 800,
                5: 20,
                6: 5,
                7: 10,
                9: 3,
                10: 64,
                11: 12,
                12: 1,
                13: 200,
                14: 20,
                15: 1,
                1: 1 << 13,
            },
        ),
        "10.86.0.0/16 via 10.1.0.254 dev vethA window 1000 rtt 100ms rttvar 5ms ssthresh 5 "
        "cwnd 10 reordering 3 hoplimit 64 initcwnd 12 features ecn rto_min lock 200ms "
        "initrwnd 20 quickack 1 ",
    ),
    (
        route("10.89.0.0/16", oif=3, protocol=99, scope=RT_SCOPE_LINK, realm=(3 << 16) | 4),
        "10.89.0.0/16 dev vethA proto openr scope link realms 3/4 ",
    ),
    (route("10.90.0.0/16", oif=3, scope=RT_SCOPE_LINK, realm=5), "10.90.0.0/16 dev vethA scope link realm 5 "),
    (
        route("10.91.0.0/16", gw="10.1.0.254", oif=3, rtm_flags=RTNH_F_ONLINK),
        "10.91.0.0/16 via 10.1.0.254 dev vethA onlink ",
    ),
    (
        route(
            "10.93.0.0/16", nexthops=[NexthopRequest(ip("10.1.0.254"), 3, 1), NexthopRequest(ip("10.2.0.254"), 2, 3)]
        ),
        "10.93.0.0/16 \n\tnexthop via 10.1.0.254 dev vethA weight 1 \n\tnexthop via 10.2.0.254 dev vethB weight 3 ",
    ),
    (
        route("10.94.0.0/16", gw="10.1.0.254", oif=3, tos=0x10, metrics={2: 1400, 8: 1300}),
        "10.94.0.0/16 tos 0x10 via 10.1.0.254 dev vethA mtu 1400 advmss 1300 ",
    ),
    (route("10.97.0.0/16", type=RTN_PROHIBIT, priority=7), "prohibit 10.97.0.0/16 metric 7 "),
    (route("10.98.0.0/16", type=RTN_UNREACHABLE), "unreachable 10.98.0.0/16 "),
    (
        route("224.1.0.0/16", oif=3, type=RTN_MULTICAST, scope=RT_SCOPE_LINK),
        "multicast 224.1.0.0/16 dev vethA scope link ",
    ),
    # second namespace (vethC=5)
    (
        route(
            "10.5.0.0/24", oif=5, protocol=2, scope=RT_SCOPE_LINK, prefsrc="10.5.0.1", priority=33, rtm_flags=LINKDOWN
        ),
        "10.5.0.0/24 dev vethC proto kernel scope link src 10.5.0.1 metric 33 linkdown ",
    ),
    (route("10.50.0.0/16", gw="2001:db8:1::ff", oif=3), "10.50.0.0/16 via inet6 2001:db8:1::ff dev vethA "),
    (
        route("10.51.0.0/16", gw="10.5.0.254", oif=5, protocol=4, priority=10, rtm_flags=LINKDOWN),
        "10.51.0.0/16 via 10.5.0.254 dev vethC proto static metric 10 linkdown ",
    ),
    (
        route(
            "10.52.0.0/16",
            nexthops=[
                NexthopRequest(ip("10.1.0.254"), 3, 1),
                NexthopRequest(ip("10.5.0.254"), 5, 1, RTNH_F_ONLINK | DEAD | LINKDOWN),
            ],
        ),
        "10.52.0.0/16 \n\tnexthop via 10.1.0.254 dev vethA weight 1 "
        "\n\tnexthop via 10.5.0.254 dev vethC weight 1 dead onlink linkdown ",
    ),
    (
        route("10.53.0.0/16", oif=3, scope=RT_SCOPE_LINK, prefsrc="10.1.0.1", priority=0xFFFFFFFF),
        "10.53.0.0/16 dev vethA scope link src 10.1.0.1 metric 4294967295 ",
    ),
    (
        route(
            "10.54.0.0/16",
            oif=3,
            scope=RT_SCOPE_LINK,
            metrics={4: 16000, 8: 1000, 10: 5, 11: 3, 12: 1, 17: 1, 1: 1 << 8},
        ),
        "10.54.0.0/16 dev vethA scope link rtt 2s advmss lock 1000 hoplimit 5 initcwnd 3 "
        "features ecn fastopen_no_cookie 1 ",
    ),
    (
        route("10.55.0.0/16", oif=3, scope=RT_SCOPE_LINK, metrics={4: 12000, 5: 12000}),
        "10.55.0.0/16 dev vethA scope link rtt 1.5s rttvar 3s ",
    ),
    (
        route("10.56.0.1/32", oif=3, scope=RT_SCOPE_LINK, tos=0xB8, realm=2 << 16),
        "10.56.0.1 tos EF dev vethA scope link realms 2/cosmos ",
    ),
    (route("10.57.0.0/16", oif=3, scope=RT_SCOPE_LINK, protocol=0), "10.57.0.0/16 dev vethA proto unspec scope link "),
    (
        route(
            "10.5.0.0/24",
            oif=5,
            protocol=2,
            scope=RT_SCOPE_LINK,
            prefsrc="10.5.0.1",
            priority=33,
            rtm_flags=DEAD | LINKDOWN,
        ),
        "10.5.0.0/24 dev vethC proto kernel scope link src 10.5.0.1 metric 33 dead linkdown ",
    ),
]


@pytest.mark.parametrize("req,golden", MAIN_V4, ids=[g.split(" ")[0] for _, g in MAIN_V4])
def test_route_golden_main(req, golden):
    assert format_routes([req], TABLES, ifname) == [golden]


def test_ip_route_show_table_all():
    """`ip route show table all`: IPv4 then IPv6, `table X` except for main."""
    routes = [
        route("10.96.0.0/16", table=300, type=RTN_THROW),
        route("10.99.0.0/16", table=100, type=RTN_BLACKHOLE),
        route("192.168.0.0/16", gw="10.2.0.254", oif=2, table=100, priority=50),
        route("10.87.0.0/16", oif=3, table=100000, scope=RT_SCOPE_LINK),
        route("10.95.0.0/16", oif=3, table=700, protocol=4, scope=RT_SCOPE_LINK, prefsrc="10.1.0.1"),
        route("default", gw="10.1.0.254", oif=3),
        route("10.1.0.1/32", oif=3, table=255, protocol=2, scope=RT_SCOPE_HOST, type=RTN_LOCAL, prefsrc="10.1.0.1"),
        route(
            "10.1.0.255/32", oif=3, table=255, protocol=2, scope=RT_SCOPE_LINK, type=RTN_BROADCAST, prefsrc="10.1.0.1"
        ),
        route("10.88.0.1/32", oif=3, table=255, scope=RT_SCOPE_HOST, type=RTN_LOCAL),
        route("127.0.0.0/8", oif=1, table=255, protocol=2, scope=RT_SCOPE_HOST, type=RTN_LOCAL, prefsrc="127.0.0.1"),
        route("2001:db8:6::/64", AF_INET6, oif=3, table=200, priority=5),
        route("2001:db8:1::/64", AF_INET6, oif=3, protocol=2, priority=256),
        route("2001:db8:5::/64", AF_INET6, gw="2001:db8:1::ff", oif=3, priority=1024),
        route("2001:db8:7::/64", AF_INET6, oif=1, type=RTN_UNREACHABLE, priority=1024),
        route(
            "2001:db8:8::/64",
            AF_INET6,
            priority=1024,
            nexthops=[NexthopRequest(ip("2001:db8:1::fe"), 3, 1), NexthopRequest(ip("2001:db8:1::fd"), 3, 2)],
        ),
        route("::1/128", AF_INET6, oif=1, table=255, protocol=2, type=RTN_LOCAL),
        route("ff00::/8", AF_INET6, oif=2, table=255, protocol=2, type=RTN_MULTICAST, priority=256),
        route("default", AF_INET6, oif=1, table=300, type=RTN_BLACKHOLE, priority=1024),
        route("2001:db8:9::/64", AF_INET6, oif=3, priority=10, metrics={2: 1400}),
    ]
    assert format_routes(routes, TABLES, ifname, "all") == [
        "throw 10.96.0.0/16 table 300 ",
        "blackhole 10.99.0.0/16 table 100 ",
        "192.168.0.0/16 via 10.2.0.254 dev vethB table 100 metric 50 ",
        "10.87.0.0/16 dev vethA table 100000 scope link ",
        "10.95.0.0/16 dev vethA table 700 proto static scope link src 10.1.0.1 ",
        "default via 10.1.0.254 dev vethA ",
        "local 10.1.0.1 dev vethA table local proto kernel scope host src 10.1.0.1 ",
        "broadcast 10.1.0.255 dev vethA table local proto kernel scope link src 10.1.0.1 ",
        "local 10.88.0.1 dev vethA table local scope host ",
        "local 127.0.0.0/8 dev lo table local proto kernel scope host src 127.0.0.1 ",
        "2001:db8:6::/64 dev vethA table 200 metric 5 pref medium",
        "2001:db8:1::/64 dev vethA proto kernel metric 256 pref medium",
        "2001:db8:5::/64 via 2001:db8:1::ff dev vethA metric 1024 pref medium",
        "unreachable 2001:db8:7::/64 dev lo metric 1024 pref medium",
        "2001:db8:8::/64 metric 1024 pref medium"
        "\n\tnexthop via 2001:db8:1::fe dev vethA weight 1 "
        "\n\tnexthop via 2001:db8:1::fd dev vethA weight 2 ",
        "local ::1 dev lo table local proto kernel metric 0 pref medium",
        "multicast ff00::/8 dev vethB table local proto kernel metric 256 pref medium",
        "blackhole default dev lo table 300 metric 1024 pref medium",
        "2001:db8:9::/64 dev vethA metric 10 mtu 1400 pref medium",
    ]
    # `ip route show table 100`: only that table, no `table` word
    assert format_routes(routes, TABLES, ifname, 100) == [
        "blackhole 10.99.0.0/16 ",
        "192.168.0.0/16 via 10.2.0.254 dev vethB metric 50 ",
    ]
    # `ip route show table local` (IPv4 part), by name
    assert format_routes(routes[:10], TABLES, ifname, "local") == [
        "local 10.1.0.1 dev vethA proto kernel scope host src 10.1.0.1 ",
        "broadcast 10.1.0.255 dev vethA proto kernel scope link src 10.1.0.1 ",
        "local 10.88.0.1 dev vethA scope host ",
        "local 127.0.0.0/8 dev lo proto kernel scope host src 127.0.0.1 ",
    ]
    # default filter is main
    assert format_routes(routes[:10], TABLES, ifname) == ["default via 10.1.0.254 dev vethA "]


def test_ipv6_single_table_quirk():
    """Until a non-main IPv6 route is seen, ip's filter selects `table local`
    by type local (filter_nlmsg's ip6_multiple_tables)."""
    local_in_main = route("2001:db8::1/128", AF_INET6, oif=3, type=RTN_LOCAL, protocol=2)
    plain = route("2001:db8::/64", AF_INET6, oif=3, priority=1024)
    assert format_routes([local_in_main, plain], TABLES, ifname, "local") == [
        "local 2001:db8::1 dev vethA proto kernel metric 0 pref medium"
    ]
    assert format_routes([local_in_main, plain], TABLES, ifname) == ["2001:db8::/64 dev vethA metric 1024 pref medium"]


def test_route_names_and_odd_fields():
    t = RtTables().load_text("700 vpn\n")
    r = route("10.0.0.0/8", oif=3, table=700, nh_id=7)
    assert format_routes([r], t, ifname, "all") == ["10.0.0.0/8 nhid 7 dev vethA table vpn "]
    # a multipath leg without a device prints "*"; features beyond ecn in hex
    r = route("10.0.0.0/8", nexthops=[NexthopRequest(ip("10.1.0.1"), 0, 256)], metrics={12: 3})
    assert format_routes([r]) == ["10.0.0.0/8 features ecn 0x3 \n\tnexthop via 10.1.0.1 dev * weight 256 "]


def test_inet_ntop_and_protocols():
    assert inet_ntop(ip("::ffff:1.2.3.4")) == "::ffff:1.2.3.4"
    assert inet_ntop(ip("2001:0:0:1:0:0:0:1")) == "2001:0:0:1::1"
    assert inet_ntop(ip("10.1.2.3")) == "10.1.2.3"
    assert ipproto_name(6) == "tcp" and ipproto_name(58) == "ipv6-icmp"
    assert ipproto_name(0) == "ip" and ipproto_name(250) == "ipproto-250"


def test_unset_suppressors_as_u32():
    # a core returning the s32 -1 as 0xFFFFFFFF must print the same
    r = rule(5, table=254, suppress_prefixlen=0xFFFFFFFF, suppress_ifgroup=0xFFFFFFFF)
    assert format_rules([r]) == ["5:\tfrom all lookup main"]
