/*
 * fields.c - one description per rule selector and per route attribute.
 *
 * Policy as data, after the kernel's fib_rule_policy[] / rtm_ipv4_policy[]
 * (net/core/fib_rules.c, net/ipv4/fib_frontend.c) and pyroute2's nla_map
 * (pyroute2/netlink/rtnl/fibmsg.py, rtmsg.py): a row per fib_rule_hdr /
 * rtmsg field and per FRA_* / RTA_* attribute of the request structs, naming
 * its attribute number, where it lives in the struct, what kind of value it
 * is and how iproute2 writes and prints it (ip/iprule.c, ip/iproute.c; 6.1
 * for the older keywords, the reader's reference).  Rows are indexed by the
 * named ids of fields.h, so a row cannot silently move.
 *
 * Who reads it: netlink.c (the request encoder: header rows into
 * fib_rule_hdr / rtmsg through the header slots below, attribute rows in
 * ascending type by their kind), nl_dump.c (the dump decoder: its rule and
 * route attribute tables are built from the rows; a rule's header through
 * the slots, a route's attributes into pr_dump_route through
 * pr_route_dump_slots), rule_index.c (which selectors a rule carries,
 * against the index's own allow-list), rules.c (the IPv4 prefix-only fast
 * match), the public accessors (Python), tests/c/test_fields.c (the rows
 * cover every byte of pr_rule_req and pr_route_req but padding; the wire
 * order and the slots) and tests/c/test_nl_encode.c (random requests drawn
 * from the rows, encoded and decoded back).
 */
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

#include "core.h"
#include "fields.h"
#include "rule_index.h"

/* struct member -> offset and size; SPAN covers first..last inclusive */
#define RQ_AT(m) .offset = offsetof(pr_rule_req, m), .size = sizeof(((pr_rule_req *)0)->m)
#define RQ_AUX(m) .aux_offset = offsetof(pr_rule_req, m), .aux_size = sizeof(((pr_rule_req *)0)->m)
#define RQ_SPAN(a, b)                                                                                             \
    .offset = offsetof(pr_rule_req, a),                                                                           \
    .size = offsetof(pr_rule_req, b) + sizeof(((pr_rule_req *)0)->b) - offsetof(pr_rule_req, a)
#define RT_AT(m) .offset = offsetof(pr_route_req, m), .size = sizeof(((pr_route_req *)0)->m)
#define RT_AUX(m) .aux_offset = offsetof(pr_route_req, m), .aux_size = sizeof(((pr_route_req *)0)->m)

/* header fields have no attribute number nor present bit */
#define HDR(field_name) .nla_name = field_name, .nla_type = -1, .present_bit = -1, .flags = PR_FF_HEADER
/* an attribute whose present bit is its number, as in pr_rule_req / pr_route_req */
#define NLA(constant, number) .nla_name = constant, .nla_type = number, .present_bit = number
#define BOTH (PR_FAM_IPV4 | PR_FAM_IPV6)

const pr_field_info pr_rule_fields[PR_RF_COUNT] = {
    [PR_RF_FAMILY] = {.name = "family", .aliases = "-4,-6,-family", HDR("frh.family"), RQ_AT(family),
                      .link = -1, .kind = PR_FK_FAMILY, .role = PR_FROLE_META, .families = BOTH},
    [PR_RF_TOS] = {.name = "tos", .keyword = "tos", .aliases = "dsfield", .syntax = "TOS", .print = "tos %s",
                   .example = "0x10", HDR("frh.tos"), RQ_AT(tos), .link = -1, .kind = PR_FK_U8,
                   .role = PR_FROLE_SELECTOR, .print_fmt = PR_PF_DSFIELD, .families = BOTH},
    /* the type word may also stand alone: goto, nop, blackhole, unreachable, prohibit */
    [PR_RF_ACTION] = {.name = "action", .keyword = "type", .syntax = "TYPE", .print = "%s",
                      .example = "unreachable", HDR("frh.action"), RQ_AT(action), .link = -1, .kind = PR_FK_U8,
                      .role = PR_FROLE_ACTION, .print_fmt = PR_PF_RTNTYPE, .families = BOTH},
    [PR_RF_PROTOCOL] = {.name = "protocol", .keyword = "protocol", .syntax = "PROTO", .print = "proto %s",
                        .example = "static", NLA("FRA_PROTOCOL", PR_FRA_PROTOCOL), RQ_AT(protocol), .link = -1,
                        .kind = PR_FK_U8, .role = PR_FROLE_ATTR, .print_fmt = PR_PF_PROTO, .families = BOTH},
    [PR_RF_IPPROTO] = {.name = "ipproto", .keyword = "ipproto", .syntax = "PROTOCOL", .print = "ipproto %s",
                       .example = "tcp", NLA("FRA_IP_PROTO", PR_FRA_IP_PROTO), RQ_AT(ip_proto), .link = -1,
                       .kind = PR_FK_U8, .role = PR_FROLE_SELECTOR, .print_fmt = PR_PF_IPPROTO, .families = BOTH},
    /* a selector too: the rule matches only flows that carry an l3mdev */
    [PR_RF_L3MDEV] = {.name = "l3mdev", .keyword = "l3mdev", .print = "lookup [l3mdev-table]",
                      NLA("FRA_L3MDEV", PR_FRA_L3MDEV), RQ_AT(l3mdev), .link = -1, .flag = 1, .max = 1,
                      .kind = PR_FK_FLAG, .role = PR_FROLE_SELECTOR, .print_fmt = PR_PF_FLAG, .families = BOTH},
    [PR_RF_DSCP] = {.name = "dscp", .keyword = "dscp", .syntax = "DSCP[/MASK]", .print = "dscp %s[/%#x]",
                    .example = "46", NLA("FRA_DSCP", PR_FRA_DSCP), RQ_AT(dscp), .link = PR_RF_DSCP_MASK,
                    .max = 63, .kind = PR_FK_U8, .role = PR_FROLE_SELECTOR, .print_fmt = PR_PF_DSCP,
                    .families = BOTH, .flags = PR_FF_NEW_KEYWORD},
    [PR_RF_DSCP_MASK] = {.name = "dscp_mask", .keyword = "dscp", .syntax = "DSCP/MASK", .example = "46/0x3f",
                         NLA("FRA_DSCP_MASK", PR_FRA_DSCP_MASK), RQ_AT(dscp_mask), .link = PR_RF_DSCP, .max = 63,
                         .kind = PR_FK_MASK, .role = PR_FROLE_SELECTOR, .print_fmt = PR_PF_WITH_LINK,
                         .families = BOTH, .flags = PR_FF_NEW_KEYWORD},
    /* ports: 1..65534 (fib_rule_port_range_valid) */
    [PR_RF_SPORT] = {.name = "sport", .keyword = "sport", .syntax = "NUMBER[-NUMBER|/MASK]",
                     .print = "sport %u[-%u|/%#x]", .example = "1024-2047",
                     NLA("FRA_SPORT_RANGE", PR_FRA_SPORT_RANGE), RQ_SPAN(sport_start, sport_end),
                     .link = PR_RF_SPORT_MASK, .max = 0xFFFE, .kind = PR_FK_RANGE16, .role = PR_FROLE_SELECTOR,
                     .print_fmt = PR_PF_PORT, .families = BOTH},
    [PR_RF_DPORT] = {.name = "dport", .keyword = "dport", .syntax = "NUMBER[-NUMBER|/MASK]",
                     .print = "dport %u[-%u|/%#x]", .example = "53", NLA("FRA_DPORT_RANGE", PR_FRA_DPORT_RANGE),
                     RQ_SPAN(dport_start, dport_end), .link = PR_RF_DPORT_MASK, .max = 0xFFFE,
                     .kind = PR_FK_RANGE16, .role = PR_FROLE_SELECTOR, .print_fmt = PR_PF_PORT, .families = BOTH},
    [PR_RF_SPORT_MASK] = {.name = "sport_mask", .keyword = "sport", .syntax = "NUMBER/MASK",
                          .example = "1024/0xfc00", NLA("FRA_SPORT_MASK", PR_FRA_SPORT_MASK), RQ_AT(sport_mask),
                          .link = PR_RF_SPORT, .kind = PR_FK_MASK, .role = PR_FROLE_SELECTOR,
                          .print_fmt = PR_PF_WITH_LINK, .families = BOTH, .flags = PR_FF_NEW_KEYWORD},
    [PR_RF_DPORT_MASK] = {.name = "dport_mask", .keyword = "dport", .syntax = "NUMBER/MASK",
                          .example = "1024/0xfc00", NLA("FRA_DPORT_MASK", PR_FRA_DPORT_MASK), RQ_AT(dport_mask),
                          .link = PR_RF_DPORT, .kind = PR_FK_MASK, .role = PR_FROLE_SELECTOR,
                          .print_fmt = PR_PF_WITH_LINK, .families = BOTH, .flags = PR_FF_NEW_KEYWORD},
    /* ids < 256 travel in frh.table, larger ones in FRA_TABLE only */
    [PR_RF_TABLE] = {.name = "table", .keyword = "lookup", .aliases = "table", .syntax = "TABLE_ID",
                     .print = "lookup %s", .example = "100", NLA("FRA_TABLE", PR_FRA_TABLE), RQ_AT(table),
                     .link = -1, .kind = PR_FK_U32, .role = PR_FROLE_ACTION, .print_fmt = PR_PF_TABLE,
                     .families = BOTH, .flags = PR_FF_ALSO_HEADER},
    /* requests take FIB_RULE_INVERT only; dumps add UNRESOLVED / *_DETACHED */
    [PR_RF_NOT] = {.name = "not", .keyword = "not", .print = "not ", .nla_name = "frh.flags", .nla_type = -1,
                   .present_bit = -1, RQ_AT(flags), .link = -1, .flag = PR_FIB_RULE_INVERT, .kind = PR_FK_FLAG,
                   .role = PR_FROLE_SELECTOR, .print_fmt = PR_PF_FLAG, .families = BOTH,
                   .flags = PR_FF_HEADER | PR_FF_DUMP_ONLY_BITS},
    [PR_RF_PRESENT] = {.name = "present", .nla_type = -1, .present_bit = -1, RQ_AT(present), .link = -1,
                       .kind = PR_FK_BITMAP, .role = PR_FROLE_META, .families = BOTH},
    [PR_RF_PRIORITY] = {.name = "priority", .keyword = "preference", .aliases = "order,priority",
                        .syntax = "NUMBER", .print = "%u:", .example = "100",
                        NLA("FRA_PRIORITY", PR_FRA_PRIORITY), RQ_AT(priority), .link = -1, .kind = PR_FK_U32,
                        .role = PR_FROLE_ATTR, .print_fmt = PR_PF_PRIORITY, .families = BOTH},
    [PR_RF_GOTO] = {.name = "goto", .keyword = "goto", .syntax = "NUMBER", .print = "goto %u", .example = "40000",
                    NLA("FRA_GOTO", PR_FRA_GOTO), RQ_AT(goto_target), .link = -1, .kind = PR_FK_U32,
                    .role = PR_FROLE_ACTION, .print_fmt = PR_PF_U32, .families = BOTH},
    /* a mark without a mask gets 0xffffffff (fib_nl2rule) */
    [PR_RF_FWMARK] = {.name = "fwmark", .keyword = "fwmark", .syntax = "FWMARK[/MASK]", .print = "fwmark %#x[/%#x]",
                      .example = "0x10/0xff", NLA("FRA_FWMARK", PR_FRA_FWMARK), RQ_AT(fwmark), .link = PR_RF_FWMASK,
                      .kind = PR_FK_U32, .role = PR_FROLE_SELECTOR, .print_fmt = PR_PF_HEX_MASK, .families = BOTH},
    [PR_RF_FWMASK] = {.name = "fwmask", .keyword = "fwmark", .syntax = "FWMARK/MASK", .example = "0x10/0xff",
                      NLA("FRA_FWMASK", PR_FRA_FWMASK), RQ_AT(fwmask), .link = PR_RF_FWMARK, .kind = PR_FK_MASK,
                      .role = PR_FROLE_SELECTOR, .print_fmt = PR_PF_WITH_LINK, .families = BOTH},
    /* sets the route's realm (tclassid): an action, not a selector */
    [PR_RF_REALMS] = {.name = "realms", .keyword = "realms", .syntax = "[SRCREALM/]DSTREALM", .print = "realms %s",
                      .example = "1/2", NLA("FRA_FLOW", PR_FRA_FLOW), RQ_AT(realm), .link = -1, .kind = PR_FK_U32,
                      .role = PR_FROLE_ACTION, .print_fmt = PR_PF_REALMS, .families = BOTH},
    /* -1 (0xffffffff on the wire) = none; both judge the result after the lookup */
    [PR_RF_SUPPRESS_PREFIXLEN] = {.name = "suppress_prefixlength", .keyword = "suppress_prefixlength",
                                  .aliases = "sup_pl", .syntax = "NUMBER", .print = "suppress_prefixlength %d",
                                  .example = "0", NLA("FRA_SUPPRESS_PREFIXLEN", PR_FRA_SUPPRESS_PREFIXLEN),
                                  RQ_AT(suppress_prefixlen), .link = -1, .kind = PR_FK_S32,
                                  .role = PR_FROLE_ACTION, .print_fmt = PR_PF_S32, .families = BOTH},
    [PR_RF_SUPPRESS_IFGROUP] = {.name = "suppress_ifgroup", .keyword = "suppress_ifgroup", .aliases = "sup_group",
                                .syntax = "GROUP", .print = "suppress_ifgroup %s", .example = "1",
                                NLA("FRA_SUPPRESS_IFGROUP", PR_FRA_SUPPRESS_IFGROUP), RQ_AT(suppress_ifgroup),
                                .link = -1, .kind = PR_FK_S32, .role = PR_FROLE_ACTION, .print_fmt = PR_PF_GROUP,
                                .families = BOTH},
    /* no range = 0-4294967295; 4294967295 itself is refused (fib_rules.c uid_range_set) */
    [PR_RF_UIDRANGE] = {.name = "uidrange", .keyword = "uidrange", .syntax = "NUMBER-NUMBER",
                        .print = "uidrange %u-%u", .example = "1000-1999", NLA("FRA_UID_RANGE", PR_FRA_UID_RANGE),
                        RQ_SPAN(uid_start, uid_end), .link = -1, .max = 0xFFFFFFFEu, .kind = PR_FK_RANGE32,
                        .role = PR_FROLE_SELECTOR, .print_fmt = PR_PF_RANGE, .families = BOTH},
    /* IPv6 only; value and mask must come together (fib6_nl2rule_flowlabel) */
    [PR_RF_FLOWLABEL] = {.name = "flowlabel", .keyword = "flowlabel", .syntax = "FLOWLABEL[/MASK]",
                         .print = "flowlabel %#x[/%#x]", .example = "0x12345/0xfffff",
                         NLA("FRA_FLOWLABEL", PR_FRA_FLOWLABEL), RQ_AT(flowlabel), .link = PR_RF_FLOWLABEL_MASK,
                         .max = 0xFFFFF, .kind = PR_FK_U32, .role = PR_FROLE_SELECTOR,
                         .print_fmt = PR_PF_HEX_MASK, .families = PR_FAM_IPV6,
                         .flags = PR_FF_BE_WIRE | PR_FF_NEW_KEYWORD},
    [PR_RF_FLOWLABEL_MASK] = {.name = "flowlabel_mask", .keyword = "flowlabel", .syntax = "FLOWLABEL/MASK",
                              .example = "0x12345/0xfffff", NLA("FRA_FLOWLABEL_MASK", PR_FRA_FLOWLABEL_MASK),
                              RQ_AT(flowlabel_mask), .link = PR_RF_FLOWLABEL, .max = 0xFFFFF, .kind = PR_FK_MASK,
                              .role = PR_FROLE_SELECTOR, .print_fmt = PR_PF_WITH_LINK, .families = PR_FAM_IPV6,
                              .flags = PR_FF_BE_WIRE | PR_FF_NEW_KEYWORD},
    [PR_RF_TUN_ID] = {.name = "tun_id", .keyword = "tun_id", .syntax = "NUMBER", .print = "tun_id %llu",
                      .example = "5", NLA("FRA_TUN_ID", PR_FRA_TUN_ID), RQ_AT(tun_id), .link = -1,
                      .kind = PR_FK_U64, .role = PR_FROLE_SELECTOR, .print_fmt = PR_PF_U64, .families = BOTH,
                      .flags = PR_FF_BE_WIRE},
    /* the prefix length is frh.src_len / dst_len */
    [PR_RF_FROM] = {.name = "from", .keyword = "from", .syntax = "PREFIX", .print = "from %s", .example = "10.0.0.0/8",
                    NLA("FRA_SRC", PR_FRA_SRC), RQ_AT(src), RQ_AUX(src_len), .link = -1, .kind = PR_FK_ADDR,
                    .role = PR_FROLE_SELECTOR, .print_fmt = PR_PF_PREFIX, .families = BOTH},
    [PR_RF_TO] = {.name = "to", .keyword = "to", .syntax = "PREFIX", .print = "to %s", .example = "10.0.0.0/8",
                  NLA("FRA_DST", PR_FRA_DST), RQ_AT(dst), RQ_AUX(dst_len), .link = -1, .kind = PR_FK_ADDR,
                  .role = PR_FROLE_SELECTOR, .print_fmt = PR_PF_PREFIX, .families = BOTH},
    [PR_RF_IIF] = {.name = "iif", .keyword = "iif", .aliases = "dev", .syntax = "NAME", .print = "iif %s",
                   .example = "eth0", NLA("FRA_IIFNAME", PR_FRA_IIFNAME), RQ_AT(iifname), .link = -1,
                   .kind = PR_FK_IFNAME, .role = PR_FROLE_SELECTOR, .print_fmt = PR_PF_IFNAME, .families = BOTH},
    [PR_RF_OIF] = {.name = "oif", .keyword = "oif", .syntax = "NAME", .print = "oif %s", .example = "eth0",
                   NLA("FRA_OIFNAME", PR_FRA_OIFNAME), RQ_AT(oifname), .link = -1, .kind = PR_FK_IFNAME,
                   .role = PR_FROLE_SELECTOR, .print_fmt = PR_PF_IFNAME, .families = BOTH},
};

const pr_field_info pr_route_fields[PR_TF_COUNT] = {
    [PR_TF_FAMILY] = {.name = "family", .aliases = "-4,-6,-family", HDR("rtm_family"), RT_AT(family), .link = -1,
                      .kind = PR_FK_FAMILY, .role = PR_FROLE_META, .families = BOTH},
    [PR_TF_TOS] = {.name = "tos", .keyword = "tos", .aliases = "dsfield", .syntax = "TOS", .print = "tos %s",
                   .example = "0x10", HDR("rtm_tos"), RT_AT(tos), .link = -1, .kind = PR_FK_U8,
                   .role = PR_FROLE_SELECTOR, .print_fmt = PR_PF_DSFIELD, .families = BOTH},
    [PR_TF_PROTOCOL] = {.name = "proto", .keyword = "proto", .aliases = "protocol", .syntax = "RTPROTO",
                        .print = "proto %s", .example = "static", HDR("rtm_protocol"), RT_AT(protocol), .link = -1,
                        .kind = PR_FK_U8, .role = PR_FROLE_ATTR, .print_fmt = PR_PF_PROTO, .families = BOTH},
    [PR_TF_SCOPE] = {.name = "scope", .keyword = "scope", .syntax = "SCOPE", .print = "scope %s", .example = "link",
                     HDR("rtm_scope"), RT_AT(scope), .link = -1, .kind = PR_FK_U8, .role = PR_FROLE_ATTR,
                     .print_fmt = PR_PF_SCOPE, .families = BOTH},
    /* the type word goes before the prefix: "unreachable 10.0.0.0/8" */
    [PR_TF_TYPE] = {.name = "type", .syntax = "TYPE", .print = "%s ", .example = "unreachable", HDR("rtm_type"),
                    RT_AT(type), .link = -1, .kind = PR_FK_U8, .role = PR_FROLE_ACTION, .print_fmt = PR_PF_RTNTYPE,
                    .families = BOTH},
    /* a gateway of another family: struct rtvia (family + address in gw) */
    [PR_TF_VIA] = {.name = "via", .keyword = "via", .syntax = "[FAMILY] ADDRESS", .print = "via %s %s",
                   .example = "inet6 fe80::1", NLA("RTA_VIA", PR_RTA_VIA), RT_AT(gw_family), RT_AUX(gw),
                   .link = PR_TF_GATEWAY, .kind = PR_FK_FAMILY, .role = PR_FROLE_ACTION, .print_fmt = PR_PF_ADDR,
                   .families = BOTH},
    /* IPv6 router preference: 0 medium, 1 high, 3 low */
    [PR_TF_PREF] = {.name = "pref", .keyword = "pref", .syntax = "low|medium|high", .print = "pref %s",
                    .example = "high", NLA("RTA_PREF", PR_RTA_PREF), RT_AT(pref), .link = -1, .max = 3,
                    .kind = PR_FK_U8, .role = PR_FROLE_ATTR, .print_fmt = PR_PF_ROUTER_PREF,
                    .families = PR_FAM_IPV6},
    [PR_TF_TABLE] = {.name = "table", .keyword = "table", .syntax = "TABLE_ID", .print = "table %s",
                     .example = "100", NLA("RTA_TABLE", PR_RTA_TABLE), RT_AT(table), .link = -1, .kind = PR_FK_U32,
                     .role = PR_FROLE_ATTR, .print_fmt = PR_PF_TABLE, .families = BOTH,
                     .flags = PR_FF_ALSO_HEADER},
    /* rtm_flags takes RTNH_F_ONLINK only (DEAD / LINKDOWN are refused) */
    [PR_TF_ONLINK] = {.name = "onlink", .keyword = "onlink", .print = "onlink", .nla_name = "rtm_flags",
                      .nla_type = -1, .present_bit = -1, RT_AT(rtm_flags), .link = -1, .flag = PR_RTNH_F_ONLINK,
                      .kind = PR_FK_FLAG, .role = PR_FROLE_ACTION, .print_fmt = PR_PF_FLAG, .families = BOTH,
                      .flags = PR_FF_HEADER | PR_FF_DUMP_ONLY_BITS},
    [PR_TF_PRESENT] = {.name = "present", .nla_type = -1, .present_bit = -1, RT_AT(present), .link = -1,
                       .kind = PR_FK_BITMAP, .role = PR_FROLE_META, .families = BOTH},
    [PR_TF_METRIC] = {.name = "metric", .keyword = "metric", .aliases = "priority,preference", .syntax = "NUMBER",
                      .print = "metric %u", .example = "100", NLA("RTA_PRIORITY", PR_RTA_PRIORITY), RT_AT(priority),
                      .link = -1, .kind = PR_FK_U32, .role = PR_FROLE_ATTR, .print_fmt = PR_PF_U32,
                      .families = BOTH},
    [PR_TF_DEV] = {.name = "dev", .keyword = "dev", .aliases = "oif", .syntax = "NAME", .print = "dev %s",
                   .example = "eth0", NLA("RTA_OIF", PR_RTA_OIF), RT_AT(oif), .link = -1, .kind = PR_FK_IFINDEX,
                   .role = PR_FROLE_ACTION, .print_fmt = PR_PF_IFNAME, .families = BOTH},
    [PR_TF_NHID] = {.name = "nhid", .keyword = "nhid", .syntax = "ID", .print = "nhid %u", .example = "1",
                    NLA("RTA_NH_ID", PR_RTA_NH_ID), RT_AT(nh_id), .link = -1, .kind = PR_FK_U32,
                    .role = PR_FROLE_ACTION, .print_fmt = PR_PF_U32, .families = BOTH},
    [PR_TF_REALMS] = {.name = "realms", .keyword = "realms", .aliases = "realm", .syntax = "[SRCREALM/]DSTREALM",
                      .print = "realms %s", .example = "1/2", NLA("RTA_FLOW", PR_RTA_FLOW), RT_AT(realm),
                      .link = -1, .kind = PR_FK_U32, .role = PR_FROLE_ATTR, .print_fmt = PR_PF_REALMS,
                      .families = PR_FAM_IPV4},
    [PR_TF_NEXTHOP] = {.name = "nexthop", .keyword = "nexthop", .syntax = "NHINFO", .print = "nexthop %s",
                       .example = "via 10.0.0.1 weight 2", NLA("RTA_MULTIPATH", PR_RTA_MULTIPATH), RT_AT(nh_count),
                       RT_AUX(nh), .link = -1, .max = 32, .kind = PR_FK_MULTIPATH, .role = PR_FROLE_ACTION,
                       .print_fmt = PR_PF_NEXTHOPS, .families = BOTH},
    /* one keyword per RTAX_x (mtu, advmss, window, rtt ... with "lock") */
    [PR_TF_METRICS] = {.name = "metrics", .aliases = "mtu,advmss,window,rtt", .syntax = "[lock] NAME VALUE",
                       .print = "%s %u", .example = "mtu 1400", NLA("RTA_METRICS", PR_RTA_METRICS), RT_AT(metrics),
                       RT_AUX(metrics_present), .link = -1, .kind = PR_FK_METRICS, .role = PR_FROLE_ATTR,
                       .print_fmt = PR_PF_METRICS, .families = BOTH},
    [PR_TF_TO] = {.name = "to", .keyword = "to", .syntax = "PREFIX", .print = "%s", .example = "10.0.0.0/8",
                  NLA("RTA_DST", PR_RTA_DST), RT_AT(dst), RT_AUX(dst_len), .link = -1, .kind = PR_FK_ADDR,
                  .role = PR_FROLE_SELECTOR, .print_fmt = PR_PF_PREFIX, .families = BOTH},
    [PR_TF_SRC] = {.name = "src", .keyword = "src", .syntax = "ADDRESS", .print = "src %s", .example = "10.0.0.1",
                   NLA("RTA_PREFSRC", PR_RTA_PREFSRC), RT_AT(prefsrc), .link = -1, .kind = PR_FK_ADDR,
                   .role = PR_FROLE_ATTR, .print_fmt = PR_PF_ADDR, .families = BOTH},
    /* a gateway of the route's own family */
    [PR_TF_GATEWAY] = {.name = "gateway", .keyword = "via", .syntax = "ADDRESS", .print = "via %s",
                       .example = "10.0.0.1", NLA("RTA_GATEWAY", PR_RTA_GATEWAY), RT_AT(gw), .link = PR_TF_VIA,
                       .kind = PR_FK_ADDR, .role = PR_FROLE_ACTION, .print_fmt = PR_PF_ADDR, .families = BOTH},
};

_Static_assert(PR_RF_COUNT <= 64, "pr_rule_selectors returns one bit per rule row");
_Static_assert((int)PR_RF_COUNT <= (int)PR_FIELD_ROWS_MAX && (int)PR_TF_COUNT <= (int)PR_FIELD_ROWS_MAX,
               "pr_field_wire.order");

/* ---- wire order and rows by type ------------------------------------------ */

/* A type no row has, or one past the bitmaps (a row the tests refuse), maps
 * to no row; duplicates keep the first row (the tests refuse them too). */
static void wire_build(pr_field_wire *w, const pr_field_info *rows, const pr_hdr_slot *slots, size_t n)
{
    memset(w->row_of_type, -1, sizeof w->row_of_type);
    w->count = 0;
    w->bits = 0;
    for (int32_t t = 0; t < PR_FIELD_TYPES; t++)
        for (size_t i = 0; i < n; i++)
            if (rows[i].nla_type == t && w->row_of_type[t] < 0) {
                w->row_of_type[t] = (int8_t)i;
                w->order[w->count++] = (uint8_t)i;
                w->bits |= UINT32_C(1) << t;
            }
    w->nhdr = 0;
    for (size_t i = 0; i < n; i++)
        if (slots[i].at || slots[i].aux_at)
            w->hdr[w->nhdr++] = (uint8_t)i;
}

enum { ONCE_NONE, ONCE_RUNNING, ONCE_DONE };

void pr_field_once(atomic_int *state, void (*build)(void))
{
    if (atomic_load_explicit(state, memory_order_acquire) == ONCE_DONE)
        return;
    int expect = ONCE_NONE;
    if (atomic_compare_exchange_strong_explicit(state, &expect, ONCE_RUNNING, memory_order_acq_rel,
                                                memory_order_acquire)) {
        build();
        atomic_store_explicit(state, ONCE_DONE, memory_order_release);
        return;
    }
    while (atomic_load_explicit(state, memory_order_acquire) != ONCE_DONE)
        sched_yield();                          /* a build takes about a microsecond */
}

static pr_field_wire rule_wire, route_wire;
static void rule_wire_build(void) { wire_build(&rule_wire, pr_rule_fields, pr_rule_hdr_slots, PR_RF_COUNT); }
static void route_wire_build(void) { wire_build(&route_wire, pr_route_fields, pr_route_hdr_slots, PR_TF_COUNT); }

const pr_field_wire *pr_rule_wire(void)
{
    static atomic_int once;
    pr_field_once(&once, rule_wire_build);
    return &rule_wire;
}

const pr_field_wire *pr_route_wire(void)
{
    static atomic_int once;
    pr_field_once(&once, route_wire_build);
    return &route_wire;
}

/* ---- the family headers ------------------------------------------------------ */

#define AT(hdr, m) (uint8_t)(1 + offsetof(hdr, m))
struct frh_layout { uint8_t family, dst_len, src_len, tos, table, res1, res2, action; uint32_t flags; };
struct rtm_layout { uint8_t family, dst_len, src_len, tos, table, protocol, scope, type; uint32_t flags; };
_Static_assert(sizeof(struct frh_layout) == 12 && sizeof(struct rtm_layout) == 12, "fib_rule_hdr / rtmsg");

const pr_hdr_slot pr_rule_hdr_slots[PR_RF_COUNT] = {
    [PR_RF_FAMILY] = { AT(struct frh_layout, family), 0 },
    [PR_RF_TO] = { 0, AT(struct frh_layout, dst_len) },
    [PR_RF_FROM] = { 0, AT(struct frh_layout, src_len) },
    [PR_RF_TOS] = { AT(struct frh_layout, tos), 0 },
    [PR_RF_TABLE] = { AT(struct frh_layout, table), 0 },
    [PR_RF_ACTION] = { AT(struct frh_layout, action), 0 },
    [PR_RF_NOT] = { AT(struct frh_layout, flags), 0 },      /* the whole frh.flags word */
};

const pr_hdr_slot pr_route_hdr_slots[PR_TF_COUNT] = {
    [PR_TF_FAMILY] = { AT(struct rtm_layout, family), 0 },
    [PR_TF_TO] = { 0, AT(struct rtm_layout, dst_len) },
    [PR_TF_TOS] = { AT(struct rtm_layout, tos), 0 },
    [PR_TF_TABLE] = { AT(struct rtm_layout, table), 0 },
    [PR_TF_PROTOCOL] = { AT(struct rtm_layout, protocol), 0 },
    [PR_TF_SCOPE] = { AT(struct rtm_layout, scope), 0 },
    [PR_TF_TYPE] = { AT(struct rtm_layout, type), 0 },
    [PR_TF_ONLINK] = { AT(struct rtm_layout, flags), 0 },   /* the whole rtm_flags word */
};
#undef AT

/* ---- dumped routes ------------------------------------------------------------ */

#define DUMP_AT(m) (uint16_t)(1 + offsetof(pr_dump_route, m))
#define DUMP(m) { DUMP_AT(m), 0 }
const pr_dump_slot pr_route_dump_slots[PR_TF_COUNT] = {
    [PR_TF_TO] = DUMP(dst),
    [PR_TF_DEV] = DUMP(oif),
    [PR_TF_GATEWAY] = { DUMP_AT(gw), DUMP_AT(gw_family) },     /* the route's family: RTA_VIA's is a handler's */
    [PR_TF_METRIC] = DUMP(priority),
    [PR_TF_SRC] = DUMP(prefsrc),
    [PR_TF_REALMS] = DUMP(realm),
    [PR_TF_TABLE] = DUMP(table),
    [PR_TF_PREF] = DUMP(pref),
    [PR_TF_NHID] = DUMP(nh_id),
};
#undef DUMP
#undef DUMP_AT

/* What a rule without any selector holds (fib_nl2rule's defaults as rules.c stores them). */
const pr_rule_req pr_rule_neutral = {
    .uid_start = 0, .uid_end = 0xFFFFFFFFu, .suppress_prefixlen = -1, .suppress_ifgroup = -1};

static uint64_t load_uint(const unsigned char *p, uint32_t size)
{
    switch (size) {
    case 1: return *p;
    case 2: { uint16_t v; memcpy(&v, p, 2); return v; }
    case 4: { uint32_t v; memcpy(&v, p, 4); return v; }
    case 8: { uint64_t v; memcpy(&v, p, 8); return v; }
    default: return 0;
    }
}

static bool rule_field_set(const pr_rule_req *r, const pr_field_info *f)
{
    const unsigned char *a = (const unsigned char *)r, *n = (const unsigned char *)&pr_rule_neutral;
    if (f->kind == PR_FK_FLAG)
        return (load_uint(a + f->offset, f->size) & f->flag) != 0;
    if (f->present_bit >= 0 && ((r->present >> f->present_bit) & 1u))
        return true;
    if (memcmp(a + f->offset, n + f->offset, f->size) != 0)
        return true;
    return f->aux_size && memcmp(a + f->aux_offset, n + f->aux_offset, f->aux_size) != 0;
}

uint64_t pr_rule_selectors(const pr_rule_req *r)
{
    uint64_t carried = 0;
    for (unsigned i = 0; i < PR_RF_COUNT; i++) {
        const pr_field_info *f = &pr_rule_fields[i];
        if (f->role == PR_FROLE_SELECTOR && rule_field_set(r, f))
            carried |= PR_RF_BIT(i);
    }
    return carried;
}

size_t pr_rule_field_count(void) { return PR_RF_COUNT; }
size_t pr_route_field_count(void) { return PR_TF_COUNT; }

int pr_rule_field_get(size_t i, pr_field_info *out)
{
    if (!out || i >= PR_RF_COUNT)
        return -PR_ENOENT;
    *out = pr_rule_fields[i];
    /* the index's own allow-list says how it keys a selector */
    out->index_key = out->role == PR_FROLE_SELECTOR ? pr_rindex_key_kind(i) : (uint8_t)PR_IK_IGNORED;
    return 0;
}

int pr_route_field_get(size_t i, pr_field_info *out)
{
    if (!out || i >= PR_TF_COUNT)
        return -PR_ENOENT;
    *out = pr_route_fields[i];
    out->index_key = PR_IK_IGNORED;   /* the index is over rules */
    return 0;
}
