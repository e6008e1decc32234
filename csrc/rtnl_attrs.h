/*
 * rtnl_attrs.h - rtnetlink message types, family-header sizes and attribute
 * numbers, with the kernel's names (internal; not part of polroute.h).
 *
 * These are the uapi values of linux/rtnetlink.h, linux/fib_rules.h,
 * linux/if_link.h and linux/if_addr.h.  They are part of the kernel's ABI and
 * never renumbered, so they are written down here instead of taken from the
 * system's headers: a build host's headers may be missing or older than the
 * attributes the kernel under test sends (FRA_FLOWLABEL, FRA_DSCP_MASK are recent).
 * Do not include those linux/ headers next to this one: the names collide.
 */
#ifndef POLROUTE_RTNL_ATTRS_H
#define POLROUTE_RTNL_ATTRS_H

#if defined(__LINUX_RTNETLINK_H) || defined(_UAPI__LINUX_RTNETLINK_H) \
    || defined(__LINUX_FIB_RULES_H) || defined(_UAPI__LINUX_FIB_RULES_H) \
    || defined(_LINUX_IF_LINK_H) || defined(_UAPI_LINUX_IF_LINK_H) \
    || defined(__LINUX_IF_ADDR_H)
#error "rtnl_attrs.h defines the uapi rtnetlink names itself; do not mix it with linux/rtnetlink.h"
#endif

/* rtnetlink message types (linux/rtnetlink.h) */
enum {
    RTM_NEWLINK = 16, RTM_GETLINK = 18,
    RTM_NEWADDR = 20, RTM_GETADDR = 22,
    RTM_NEWROUTE = 24, RTM_DELROUTE = 25, RTM_GETROUTE = 26,
    RTM_NEWRULE = 32, RTM_DELRULE = 33, RTM_GETRULE = 34,
};

/* Sizes of the family headers that follow the nlmsghdr. */
enum {
    RTNL_IFINFOMSG_LEN = 16,    /* struct ifinfomsg */
    RTNL_IFADDRMSG_LEN = 8,     /* struct ifaddrmsg */
    RTNL_FIB_RULE_HDR_LEN = 12, /* struct fib_rule_hdr */
    RTNL_RTMSG_LEN = 12,        /* struct rtmsg */
    RTNL_RTNEXTHOP_LEN = 8,     /* struct rtnexthop */
    RTNL_RTA_CACHEINFO_LEN = 32,/* struct rta_cacheinfo */
    RTNL_IFA_CACHEINFO_LEN = 16,/* struct ifa_cacheinfo */
};

enum { RT_TABLE_UNSPEC = 0 };

/* Routing-rule attributes (linux/fib_rules.h). */
enum {
    FRA_UNSPEC = 0, FRA_DST = 1, FRA_SRC = 2, FRA_IIFNAME = 3, FRA_GOTO = 4,
    FRA_UNUSED2 = 5, FRA_PRIORITY = 6, FRA_UNUSED3 = 7, FRA_UNUSED4 = 8, FRA_UNUSED5 = 9,
    FRA_FWMARK = 10, FRA_FLOW = 11, FRA_TUN_ID = 12, FRA_SUPPRESS_IFGROUP = 13,
    FRA_SUPPRESS_PREFIXLEN = 14, FRA_TABLE = 15, FRA_FWMASK = 16, FRA_OIFNAME = 17,
    FRA_PAD = 18, FRA_L3MDEV = 19, FRA_UID_RANGE = 20, FRA_PROTOCOL = 21, FRA_IP_PROTO = 22,
    FRA_SPORT_RANGE = 23, FRA_DPORT_RANGE = 24, FRA_DSCP = 25, FRA_FLOWLABEL = 26,
    FRA_FLOWLABEL_MASK = 27, FRA_SPORT_MASK = 28, FRA_DPORT_MASK = 29, FRA_DSCP_MASK = 30,
    FRA_MAX = FRA_DSCP_MASK,
};

/* Route attributes (linux/rtnetlink.h, enum rtattr_type_t). */
enum {
    RTA_UNSPEC = 0, RTA_DST = 1, RTA_SRC = 2, RTA_IIF = 3, RTA_OIF = 4, RTA_GATEWAY = 5,
    RTA_PRIORITY = 6, RTA_PREFSRC = 7, RTA_METRICS = 8, RTA_MULTIPATH = 9, RTA_PROTOINFO = 10,
    RTA_FLOW = 11, RTA_CACHEINFO = 12, RTA_SESSION = 13, RTA_MP_ALGO = 14, RTA_TABLE = 15,
    RTA_MARK = 16, RTA_MFC_STATS = 17, RTA_VIA = 18, RTA_NEWDST = 19, RTA_PREF = 20,
    RTA_ENCAP_TYPE = 21, RTA_ENCAP = 22, RTA_EXPIRES = 23, RTA_PAD = 24, RTA_UID = 25,
    RTA_TTL_PROPAGATE = 26, RTA_IP_PROTO = 27, RTA_SPORT = 28, RTA_DPORT = 29, RTA_NH_ID = 30,
    RTA_FLOWLABEL = 31,
    RTA_MAX = RTA_FLOWLABEL,
};

/* Route metrics, nested in RTA_METRICS (linux/rtnetlink.h). */
enum {
    RTAX_UNSPEC = 0, RTAX_LOCK = 1, RTAX_MTU = 2, RTAX_WINDOW = 3, RTAX_RTT = 4,
    RTAX_RTTVAR = 5, RTAX_SSTHRESH = 6, RTAX_CWND = 7, RTAX_ADVMSS = 8, RTAX_REORDERING = 9,
    RTAX_HOPLIMIT = 10, RTAX_INITCWND = 11, RTAX_FEATURES = 12, RTAX_RTO_MIN = 13,
    RTAX_INITRWND = 14, RTAX_QUICKACK = 15, RTAX_CC_ALGO = 16, RTAX_FASTOPEN_NO_COOKIE = 17,
    RTAX_MAX = RTAX_FASTOPEN_NO_COOKIE,
};

/* Address attributes (linux/if_addr.h). */
enum {
    IFA_UNSPEC = 0, IFA_ADDRESS = 1, IFA_LOCAL = 2, IFA_LABEL = 3, IFA_BROADCAST = 4,
    IFA_ANYCAST = 5, IFA_CACHEINFO = 6, IFA_MULTICAST = 7, IFA_FLAGS = 8, IFA_RT_PRIORITY = 9,
    IFA_TARGET_NETNSID = 10, IFA_PROTO = 11,
    IFA_MAX = IFA_PROTO,
};

/* Link attributes (linux/if_link.h), as far as the decoder reads them. */
enum {
    IFLA_UNSPEC = 0, IFLA_ADDRESS = 1, IFLA_BROADCAST = 2, IFLA_IFNAME = 3, IFLA_MTU = 4,
    IFLA_LINK = 5, IFLA_QDISC = 6, IFLA_STATS = 7, IFLA_COST = 8, IFLA_PRIORITY = 9,
    IFLA_MASTER = 10, IFLA_WIRELESS = 11, IFLA_PROTINFO = 12, IFLA_TXQLEN = 13, IFLA_MAP = 14,
    IFLA_WEIGHT = 15, IFLA_OPERSTATE = 16, IFLA_LINKMODE = 17, IFLA_LINKINFO = 18,
    IFLA_NET_NS_PID = 19, IFLA_IFALIAS = 20, IFLA_NUM_VF = 21, IFLA_VFINFO_LIST = 22,
    IFLA_STATS64 = 23, IFLA_VF_PORTS = 24, IFLA_PORT_SELF = 25, IFLA_AF_SPEC = 26,
    IFLA_GROUP = 27, IFLA_NET_NS_FD = 28, IFLA_EXT_MASK = 29, IFLA_PROMISCUITY = 30,
    IFLA_NUM_TX_QUEUES = 31, IFLA_NUM_RX_QUEUES = 32, IFLA_CARRIER = 33, IFLA_PHYS_PORT_ID = 34,
    IFLA_CARRIER_CHANGES = 35, IFLA_PHYS_SWITCH_ID = 36, IFLA_LINK_NETNSID = 37,
};

/* Nested in IFLA_LINKINFO. */
enum {
    IFLA_INFO_UNSPEC = 0, IFLA_INFO_KIND = 1, IFLA_INFO_DATA = 2, IFLA_INFO_XSTATS = 3,
    IFLA_INFO_SLAVE_KIND = 4, IFLA_INFO_SLAVE_DATA = 5,
    IFLA_INFO_MAX = IFLA_INFO_SLAVE_DATA,
};

/* Nested in IFLA_INFO_DATA of a tun/tap device. */
enum {
    IFLA_TUN_UNSPEC = 0, IFLA_TUN_OWNER = 1, IFLA_TUN_GROUP = 2, IFLA_TUN_TYPE = 3,
};

/* Nested in IFLA_AF_SPEC's AF_INET6 entry. */
enum {
    IFLA_INET6_UNSPEC = 0, IFLA_INET6_FLAGS = 1, IFLA_INET6_CONF = 2, IFLA_INET6_STATS = 3,
    IFLA_INET6_MCAST = 4, IFLA_INET6_CACHEINFO = 5, IFLA_INET6_ICMP6STATS = 6,
    IFLA_INET6_TOKEN = 7, IFLA_INET6_ADDR_GEN_MODE = 8,
};

#endif /* POLROUTE_RTNL_ATTRS_H */
