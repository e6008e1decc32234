/*
 * polroute.h - public C API of the polroute core.
 *
 * The core is an offline model of one Linux network namespace's routing state:
 * links and addresses, the routing policy database (rules) and the routing
 * tables, for IPv4 and IPv6.  It is changed with requests that mirror the
 * rtnetlink messages the kernel accepts (struct rtmsg / fib_rule_hdr plus the
 * attributes, plus the nlmsg flags), and it answers RTM_GETROUTE questions the
 * way the kernel does (the project's specification, shared/docs/kernel-semantics.md
 * beside the repository, and docs/kernel-notes.md); the kernel in a
 * private namespace is the judge (tests/kernel).
 *
 * Conventions
 *  - Every function that can fail returns 0 or a negative errno, exactly the
 *    value the kernel would return for the same request.  When the kernel
 *    attaches an extended-ack message, pr_errmsg() returns its text ("" if
 *    none); it stays valid until the next call on the same handle.
 *  - Addresses are 16-byte arrays in network byte order; IPv4 uses the first
 *    4 bytes.  Ports, marks, uids and tables are host-order integers.
 *  - A pr_policy is not thread-safe for writers; lookups on a policy that is
 *    not being changed may run from any number of threads.
 *  - Buffers passed to bulk calls are owned by the caller.
 *
 * This header is also the cffi cdef: the text between the cdef markers must
 * stay plain C declarations (no macros used in declarations, literal array
 * sizes).  tools/gen_cdef.py drops the preprocessor lines.
 */
#ifndef POLROUTE_H
#define POLROUTE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* cdef-begin */

typedef struct pr_policy pr_policy;

enum {
    PR_AF_INET = 2,
    PR_AF_INET6 = 10,
    PR_IFNAMSIZ = 16,
    PR_MAX_NEXTHOPS = 32,     /* multipath legs a route may carry in the model */
    PR_RTAX_MAX = 17,
};

/* Link kinds the model knows (the kernel's behaviour differs only for lo). */
enum pr_link_kind {
    PR_LINK_LOOPBACK = 0,
    PR_LINK_VETH = 1,
    PR_LINK_BRIDGE = 2,
    PR_LINK_IFB = 3,
    PR_LINK_OTHER = 4,
    PR_LINK_TAP = 5,          /* tun/tap without a reader: never has carrier */
};

/* Route types (rtm_type) and rule actions (frh.action), kernel values. */
enum {
    PR_RTN_UNSPEC = 0, PR_RTN_UNICAST = 1, PR_RTN_LOCAL = 2, PR_RTN_BROADCAST = 3,
    PR_RTN_ANYCAST = 4, PR_RTN_MULTICAST = 5, PR_RTN_BLACKHOLE = 6,
    PR_RTN_UNREACHABLE = 7, PR_RTN_PROHIBIT = 8, PR_RTN_THROW = 9, PR_RTN_NAT = 10,
    PR_RTN_XRESOLVE = 11,
};
enum {
    PR_FR_ACT_UNSPEC = 0, PR_FR_ACT_TO_TBL = 1, PR_FR_ACT_GOTO = 2, PR_FR_ACT_NOP = 3,
    PR_FR_ACT_BLACKHOLE = 6, PR_FR_ACT_UNREACHABLE = 7, PR_FR_ACT_PROHIBIT = 8,
};
/* nlmsg types and flags used by the request calls. */
enum {
    PR_RTM_NEWROUTE = 24, PR_RTM_DELROUTE = 25, PR_RTM_NEWRULE = 32, PR_RTM_DELRULE = 33,
    PR_RTM_NEWADDR = 20, PR_RTM_DELADDR = 21,
    PR_NLM_F_REPLACE = 0x100, PR_NLM_F_EXCL = 0x200, PR_NLM_F_CREATE = 0x400,
    PR_NLM_F_APPEND = 0x800,
};
/* Rule flags (frh.flags). */
enum {
    PR_FIB_RULE_PERMANENT = 1, PR_FIB_RULE_INVERT = 2, PR_FIB_RULE_UNRESOLVED = 4,
    PR_FIB_RULE_IIF_DETACHED = 8, PR_FIB_RULE_OIF_DETACHED = 16,
};
/* Nexthop flags (rtnh_flags / low byte of rtm_flags). */
enum {
    PR_RTNH_F_DEAD = 1, PR_RTNH_F_ONLINK = 4, PR_RTNH_F_LINKDOWN = 16,
};
/* Route cache flags reported by a lookup (printed on the "cache" line). */
enum {
    PR_RTCF_NOTIFY = 0x10000, PR_RTCF_REDIRECTED = 0x01000000,
    PR_RTCF_DIRECTSRC = 0x04000000, PR_RTCF_BROADCAST = 0x10000000,
    PR_RTCF_MULTICAST = 0x20000000,
    PR_RTCF_LOCAL_SHIFT = 31,   /* RTCF_LOCAL is 0x80000000, outside int */
};
/* Reasons an answer is not modelled (pr_result.not_modelled bits). */
enum {
    PR_NM_MULTIPATH_HASH = 1,    /* several nexthops: the kernel hashes, we list candidates */
    PR_NM_NEXTHOP_OBJECT = 2,    /* IPv6 via a nexthop object shared by routes that report differently:
                                  * the answer reports the route that cached its rt6_info on the object first */
    PR_NM_L3MDEV = 4,            /* VRF / l3mdev rule in play */
    PR_NM_DEFAULT_ROTATION = 8,  /* several default gateways: fib_select_default uses ARP state */
    PR_NM_IPV6_NEIGH = 16,       /* IPv6 choice depends on neighbour state */
    PR_NM_TUN_ID = 32,           /* rule on tunnel metadata */
    PR_NM_MULTICAST_GROUP = 64,  /* multicast result depends on group membership */
    PR_NM_OTHER = 128,
    PR_NM_ROUTE_CACHE = 256,     /* answer depends on the rtable cached on a nexthop by earlier lookups */
};

/* Bits of pr_rule_req.present: bit (1u << FRA_x) for each attribute sent. */
enum {
    PR_FRA_DST = 1, PR_FRA_SRC = 2, PR_FRA_IIFNAME = 3, PR_FRA_GOTO = 4, PR_FRA_PRIORITY = 6,
    PR_FRA_FWMARK = 10, PR_FRA_FLOW = 11, PR_FRA_TUN_ID = 12, PR_FRA_SUPPRESS_IFGROUP = 13,
    PR_FRA_SUPPRESS_PREFIXLEN = 14, PR_FRA_TABLE = 15, PR_FRA_FWMASK = 16, PR_FRA_OIFNAME = 17,
    PR_FRA_L3MDEV = 19, PR_FRA_UID_RANGE = 20, PR_FRA_PROTOCOL = 21, PR_FRA_IP_PROTO = 22,
    PR_FRA_SPORT_RANGE = 23, PR_FRA_DPORT_RANGE = 24, PR_FRA_DSCP = 25, PR_FRA_FLOWLABEL = 26,
    PR_FRA_FLOWLABEL_MASK = 27, PR_FRA_SPORT_MASK = 28, PR_FRA_DPORT_MASK = 29,
    PR_FRA_DSCP_MASK = 30,
};
/* Bits of pr_route_req.present: bit (1u << RTA_x). */
enum {
    PR_RTA_DST = 1, PR_RTA_OIF = 4, PR_RTA_GATEWAY = 5, PR_RTA_PRIORITY = 6,
    PR_RTA_PREFSRC = 7, PR_RTA_METRICS = 8, PR_RTA_MULTIPATH = 9, PR_RTA_FLOW = 11,
    PR_RTA_TABLE = 15, PR_RTA_VIA = 18, PR_RTA_PREF = 20, PR_RTA_NH_ID = 30,
};

/* An RTM_NEWRULE / RTM_DELRULE request: fib_rule_hdr plus FRA_* attributes. */
typedef struct pr_rule_req {
    uint8_t family;
    uint8_t dst_len;
    uint8_t src_len;
    uint8_t tos;
    uint8_t action;
    uint8_t protocol;        /* FRA_PROTOCOL */
    uint8_t ip_proto;        /* FRA_IP_PROTO */
    uint8_t l3mdev;          /* FRA_L3MDEV */
    uint8_t dscp;            /* FRA_DSCP */
    uint8_t dscp_mask;       /* FRA_DSCP_MASK */
    uint16_t sport_start, sport_end, dport_start, dport_end;
    uint16_t sport_mask, dport_mask;
    uint32_t table;          /* frh.table, or FRA_TABLE when present (it wins) */
    uint32_t flags;          /* frh.flags (PR_FIB_RULE_INVERT) */
    uint32_t present;        /* which FRA_* attributes were sent */
    uint32_t priority;
    uint32_t goto_target;
    uint32_t fwmark, fwmask;
    uint32_t realm;          /* FRA_FLOW */
    int32_t suppress_prefixlen, suppress_ifgroup;
    uint32_t uid_start, uid_end;
    uint32_t flowlabel, flowlabel_mask;   /* host order */
    uint64_t tun_id;
    uint8_t src[16];
    uint8_t dst[16];
    char iifname[16];
    char oifname[16];
} pr_rule_req;

/* One multipath leg of a route request (struct rtnexthop + RTA_GATEWAY/RTA_VIA). */
typedef struct pr_nexthop_req {
    uint8_t gw_family;       /* 0 = no gateway */
    uint8_t flags;           /* RTNH_F_ONLINK */
    uint16_t weight;         /* 1..256 */
    uint32_t ifindex;        /* 0 = none */
    uint8_t gw[16];
} pr_nexthop_req;

/* An RTM_NEWROUTE / RTM_DELROUTE request: struct rtmsg plus RTA_* attributes. */
typedef struct pr_route_req {
    uint8_t family;
    uint8_t dst_len;
    uint8_t tos;
    uint8_t protocol;
    uint8_t scope;
    uint8_t type;
    uint8_t gw_family;       /* RTA_GATEWAY / RTA_VIA family, 0 = none */
    uint8_t pref;            /* RTA_PREF (IPv6 router preference) */
    uint32_t table;          /* rtm_table, or RTA_TABLE when present */
    uint32_t rtm_flags;      /* RTNH_F_ONLINK for a single path */
    uint32_t present;        /* which RTA_* attributes were sent */
    uint32_t priority;
    uint32_t oif;
    uint32_t nh_id;
    uint32_t realm;
    uint32_t nh_count;       /* RTA_MULTIPATH legs in nh[] */
    const pr_nexthop_req *nh;
    uint32_t metrics_present;          /* bit (1u << RTAX_x) */
    uint32_t metrics[18];              /* indexed by RTAX_x */
    uint8_t dst[16];
    uint8_t prefsrc[16];
    uint8_t gw[16];
} pr_route_req;

/* An RTM_NEWADDR / RTM_DELADDR request (struct ifaddrmsg + IFA_*). */
typedef struct pr_addr_req {
    uint8_t family;
    uint8_t prefixlen;
    uint8_t scope;           /* RT_SCOPE_*: 0 global, 253 link, 254 host */
    uint8_t has_broadcast;
    uint32_t ifindex;
    uint32_t flags;          /* IFA_F_* : NOPREFIXROUTE 0x200 */
    uint32_t metric;         /* IFA_RT_PRIORITY */
    uint8_t local[16];
    uint8_t broadcast[16];
} pr_addr_req;

/* One RTM_GETROUTE question, as `ip route get` sends it. */
typedef struct pr_flow {
    uint8_t family;
    uint8_t tos;             /* rtm_tos: the DS field */
    uint8_t has_src;         /* RTA_SRC present */
    uint8_t has_ipproto;     /* RTA_IP_PROTO present (IPv4 defaults to UDP) */
    uint8_t ipproto;
    uint8_t has_uid;         /* RTA_UID present (else the caller's uid, 0 as root) */
    uint8_t lookup_table;    /* RTM_F_LOOKUP_TABLE: iproute2 sets it for IPv4 */
    uint8_t fibmatch;        /* RTM_F_FIB_MATCH (not modelled yet) */
    uint16_t sport, dport;   /* host order; 0 = not given */
    uint32_t iif;            /* RTA_IIF; 0 = output path */
    uint32_t oif;            /* RTA_OIF; 0 = none */
    uint32_t mark;
    uint32_t uid;
    uint8_t dst[16];
    uint8_t src[16];
} pr_flow;

/* One nexthop of an answer. */
typedef struct pr_result_nh {
    uint8_t gw_family;       /* 0 = no gateway printed */
    uint8_t pad0, pad1, pad2;
    uint32_t oif;
    uint32_t weight;
    uint8_t gw[16];
    uint8_t prefsrc[16];     /* the source this leg would choose */
} pr_result_nh;

/* The answer to one question: what `ip -j route get` prints, plus why. */
typedef struct pr_result {
    int32_t error;           /* 0, or the positive errno the kernel returns */
    uint8_t family;
    uint8_t type;            /* PR_RTN_* of the answer */
    uint8_t tos;             /* the matched route's tos (rtm_tos of the reply) */
    uint8_t has_from;        /* print "from": RTA_SRC (always for IPv6) */
    uint8_t has_prefsrc;     /* print "src" (prefsrc) */
    uint8_t has_uid;         /* print "uid" (output path) */
    uint8_t has_metric;      /* IPv6: RTA_PRIORITY */
    uint8_t input;           /* answered on the input path (iif given) */
    uint8_t protocol;        /* IPv6: the route's protocol */
    uint8_t pref;            /* IPv6 router preference (0 medium) */
    uint8_t matched_len;     /* prefix length of the FIB entry used */
    uint8_t pad0;
    uint32_t table;          /* RTA_TABLE as reported; 0 = none */
    uint32_t iif;
    uint32_t mark;
    uint32_t uid;
    uint32_t metric;
    uint32_t rtm_flags;      /* flags words printed: RTNH_F_*, RTM_F_OFFLOAD_FAILED quirk */
    uint32_t cache_flags;    /* PR_RTCF_* */
    uint32_t not_modelled;   /* PR_NM_* bits; when set the answer must not be trusted */
    int32_t rule_index;      /* index in the rule list of the deciding rule; -1 = none */
    uint32_t rule_priority;  /* its priority */
    uint32_t nh_count;       /* candidate nexthops in nh[]; > 1 only with PR_NM_MULTIPATH_HASH */
    const char *errmsg;      /* the kernel's extended-ack text for error, or NULL (static storage) */
    uint8_t dst[16];
    uint8_t from[16];
    uint8_t prefsrc[16];
    uint8_t matched_dst[16]; /* prefix of the FIB entry used */
    pr_result_nh nh[32];     /* nh[0] is the answer's nexthop (dev, gateway) */
} pr_result;

/* One step of the rule walk, for explanations. */
enum pr_step_kind {
    PR_STEP_NO_MATCH = 0,     /* selectors did not match: passed over */
    PR_STEP_GOTO = 1,         /* goto taken (value = target priority) */
    PR_STEP_GOTO_UNRESOLVED = 2,
    PR_STEP_NOP = 3,
    PR_STEP_TABLE_MISS = 4,   /* table has no matching route: continue */
    PR_STEP_NO_TABLE = 5,     /* table does not exist: continue */
    PR_STEP_THROW = 6,        /* throw route: continue */
    PR_STEP_SUPPRESSED = 7,   /* suppress_prefixlength / ifgroup rejected the result */
    PR_STEP_DECIDED = 8,      /* a route was found, or a route type error ended the walk */
    PR_STEP_ACTION_ERROR = 9, /* blackhole/unreachable/prohibit rule ended the walk */
    PR_STEP_MERGED = 10,      /* IPv4 local+main merged fast path (no rule walk) */
    PR_STEP_FIND_SADDR_SKIP = 11,
};
typedef struct pr_trace_step {
    int32_t rule_index;       /* -1 for pseudo steps (merged lookup) */
    uint32_t priority;
    uint32_t table;
    uint8_t kind;             /* enum pr_step_kind */
    uint8_t matched_len;
    uint16_t pad;
    int32_t error;            /* errno for DECIDED/ACTION_ERROR */
} pr_trace_step;

typedef struct pr_trace {
    uint32_t cap;             /* capacity of steps[] */
    uint32_t len;             /* steps written */
    uint32_t dropped;         /* steps that did not fit */
    pr_trace_step *steps;
} pr_trace;

/* A dumped rule (what RTM_GETRULE returns). */
typedef struct pr_rule_info {
    pr_rule_req r;            /* priority always filled; flags include UNRESOLVED/DETACHED */
} pr_rule_info;

/* A dumped route (what RTM_GETROUTE dump returns). Nexthops via pr_route_nexthop(). */
typedef struct pr_route_info {
    uint8_t family, dst_len, tos, protocol, scope, type, pref, pad;
    uint32_t table;
    uint32_t priority;
    uint32_t rtm_flags;      /* RTNH_F_DEAD / LINKDOWN / ONLINK of a single path */
    uint32_t nh_id;
    uint32_t nh_count;
    uint8_t has_prefsrc, pad1, pad2, pad3;
    uint32_t metrics_present;
    uint32_t metrics[18];
    uint8_t dst[16];
    uint8_t prefsrc[16];
} pr_route_info;

typedef struct pr_nexthop_info {
    uint8_t gw_family;
    uint8_t flags;           /* RTNH_F_* (DEAD, LINKDOWN, ONLINK) */
    uint16_t weight;
    uint32_t ifindex;
    uint8_t gw[16];
} pr_nexthop_info;

typedef struct pr_link_info {
    uint32_t ifindex;
    uint32_t group;
    uint8_t kind;
    uint8_t up;
    uint8_t carrier;
    uint8_t pad;
    char name[16];
} pr_link_info;

typedef struct pr_addr_info {
    pr_addr_req a;
    uint8_t secondary;
    uint8_t pad[3];
} pr_addr_info;

/* Columns for bulk evaluation.  Input pointers may be NULL (meaning all zero).
 * IPv4 addresses are uint32 in host order (10.0.0.1 = 0x0A000001). */
typedef struct pr_bulk_in {
    const uint32_t *dst;
    const uint32_t *src;     /* 0 = no source given */
    const uint32_t *iif;     /* ifindex; 0 = output path */
    const uint32_t *oif;
    const uint8_t *tos;
    const uint32_t *mark;
    const uint32_t *uid;
    const uint8_t *ipproto;  /* 0 = default (UDP for IPv4) */
    const uint16_t *sport;
    const uint16_t *dport;
} pr_bulk_in;

/* Output columns; any pointer may be NULL to skip that column. */
typedef struct pr_bulk_out {
    int32_t *error;          /* 0 or positive errno */
    uint8_t *type;
    uint32_t *table;
    uint32_t *rule_priority; /* deciding rule's priority; 0xFFFFFFFF = none */
    uint32_t *oif;
    uint32_t *gateway;       /* host order; 0 = none */
    uint32_t *prefsrc;       /* host order */
    uint32_t *flags;         /* not_modelled bits */
} pr_bulk_out;

/* ---- lifetime ---- */

/* A fresh namespace: lo (ifindex 1, down, no addresses), the default rules,
 * empty tables, sysctls at their namespace defaults.  NULL on ENOMEM. */
pr_policy *pr_policy_new(void);
void pr_policy_free(pr_policy *p);
/* A number that changes with every call that may change p (any request,
 * also a refused one) and is never given to another policy state in this
 * process (new, clone and snapshot get their own): equal generations mean
 * the same policy, unchanged.  For caches of things compiled from p. */
uint64_t pr_policy_generation(const pr_policy *p);
/* A deep copy (for apply-all-or-nothing).  NULL on ENOMEM. */
pr_policy *pr_policy_clone(const pr_policy *p);

/* ---- kernel build ----
 * Answers that depend on how the modelled kernel was built.  A new policy
 * models PR_KF_DEFAULT (what Debian, Ubuntu, Fedora and RHEL kernels are
 * built with); clones and snapshots keep their source's features. */
enum pr_kernel_feature {
    /* CONFIG_IPV6_MROUTE: an IPv6 input-path question answered by a multicast
     * prefix fails with EMSGSIZE (rt6_fill_node hands it to ip6mr_get_route);
     * without it the kernel answers the multicast route with its iif. */
    PR_KF_IPV6_MROUTE = 1,
    PR_KF_ALL = 1,
    PR_KF_DEFAULT = 1,
};
/* 0, or -EINVAL for a bit outside PR_KF_ALL (nothing is changed then). */
int pr_policy_set_kernel_features(pr_policy *p, uint32_t features);
uint32_t pr_policy_kernel_features(const pr_policy *p);
const char *pr_errmsg(const pr_policy *p);

/* ---- links and addresses ---- */

/* Creates a link; ifindex 0 takes the next free index.  Returns the ifindex
 * (> 0) or a negative errno (-EEXIST, -EINVAL for a bad name). */
int pr_link_add(pr_policy *p, const char *name, int kind, uint32_t ifindex);
/* A veth pair; the peer is registered first, as the kernel does.  Returns
 * name's ifindex or a negative errno. */
int pr_link_add_veth(pr_policy *p, const char *name, const char *peer);
/* Deleting one end of a veth pair deletes both. */
int pr_link_del(pr_policy *p, uint32_t ifindex);
/* Admin state (IFF_UP). Carrier follows admin state for lo/veth pairs/bridge/ifb in the model. */
int pr_link_set_up(pr_policy *p, uint32_t ifindex, int up);
int pr_link_set_carrier(pr_policy *p, uint32_t ifindex, int carrier);
int pr_link_set_group(pr_policy *p, uint32_t ifindex, uint32_t group);
int pr_link_rename(pr_policy *p, uint32_t ifindex, const char *name);
/* 0 if unknown. */
uint32_t pr_link_index(const pr_policy *p, const char *name);
int pr_addr_request(pr_policy *p, int msg_type, const pr_addr_req *req);

/* ---- sysctls ----
 * key: "net.ipv4.ip_forward", "net.ipv4.conf.{all,default,IFNAME}.forwarding",
 * ".route_localnet", ".rp_filter", ".accept_local", ".ignore_routes_with_linkdown",
 * "net.ipv6.conf.{all,IFNAME}.forwarding" ...  -ENOENT for an unknown key,
 * -EINVAL for a value the kernel refuses. */
int pr_sysctl_set(pr_policy *p, const char *key, int64_t value);
int pr_sysctl_get(const pr_policy *p, const char *key, int64_t *value);

/* ---- rules and routes: requests as rtnetlink carries them ---- */

int pr_rule_request(pr_policy *p, int msg_type, int nlmsg_flags, const pr_rule_req *req);
int pr_route_request(pr_policy *p, int msg_type, int nlmsg_flags, const pr_route_req *req);

/* ---- nexthop objects (`ip nexthop`, RTM_NEWNEXTHOP / RTM_DELNEXTHOP) ----
 * Objects live in the namespace, keyed by id (dumped in ascending id order).
 * A route with RTA_NH_ID resolves through its object: the model stores the
 * object's nexthops on the route (as the kernel's compat dump shows them) and
 * refreshes them whenever the object changes.  Not modelled (refused with
 * -EOPNOTSUPP and a "polroute: ... not modelled" message): resilient groups,
 * fdb nexthops, encap. */
enum {
    PR_RTM_NEWNEXTHOP = 104, PR_RTM_DELNEXTHOP = 105,
    PR_NEXTHOP_GRP_TYPE_MPATH = 0, PR_NEXTHOP_GRP_TYPE_RES = 1,
};
/* Bits of pr_nhobj_req.present: bit (1u << NHA_x). */
enum {
    PR_NHA_ID = 1, PR_NHA_GROUP = 2, PR_NHA_GROUP_TYPE = 3, PR_NHA_BLACKHOLE = 4,
    PR_NHA_OIF = 5, PR_NHA_GATEWAY = 6, PR_NHA_ENCAP_TYPE = 7, PR_NHA_ENCAP = 8,
    PR_NHA_FDB = 11, PR_NHA_RES_GROUP = 12,
};
/* One member of a group (struct nexthop_grp; weight 1..256 as ip takes it). */
typedef struct pr_nhgrp_entry {
    uint32_t id;
    uint16_t weight;
    uint16_t pad;
} pr_nhgrp_entry;
/* An RTM_NEWNEXTHOP / RTM_DELNEXTHOP request: struct nhmsg plus NHA_*. */
typedef struct pr_nhobj_req {
    uint8_t family;          /* nh_family: AF_UNSPEC (groups), AF_INET, AF_INET6 */
    uint8_t scope;           /* nh_scope (must be 0) */
    uint8_t protocol;        /* nh_protocol */
    uint8_t pad;
    uint32_t flags;          /* nh_flags: RTNH_F_ONLINK */
    uint32_t present;        /* which NHA_* attributes were sent */
    uint32_t id;
    uint32_t oif;
    uint16_t group_type;
    uint16_t res_buckets;
    uint32_t ngroup;         /* members in group[] */
    const pr_nhgrp_entry *group;
    uint8_t gw[16];          /* NHA_GATEWAY in the request's family */
} pr_nhobj_req;
/* A dumped nexthop object (what RTM_GETNEXTHOP returns). */
typedef struct pr_nhobj_info {
    uint32_t id;
    uint8_t family;          /* 0 for a group */
    uint8_t scope;           /* nh_scope */
    uint8_t protocol;
    uint8_t blackhole;
    uint8_t is_group;
    uint8_t gw_family;       /* 0 = no gateway */
    uint16_t group_type;
    uint32_t flags;          /* RTNH_F_ONLINK ... */
    uint32_t ifindex;        /* 0 for groups and blackholes */
    uint32_t ngroup;         /* members */
    uint8_t gw[16];
} pr_nhobj_info;
/* msg_type PR_RTM_NEWNEXTHOP (nlmsg_flags CREATE|EXCL for add, CREATE|REPLACE
 * for replace) or PR_RTM_DELNEXTHOP.  0 or the kernel's negative errno. */
int pr_nexthop_request(pr_policy *p, int msg_type, int nlmsg_flags, const pr_nhobj_req *req);
size_t pr_nexthop_count(const pr_policy *p);
/* Object i (ascending id); its first grp_cap members into grp (may be NULL). */
int pr_nexthop_get(const pr_policy *p, size_t i, pr_nhobj_info *out, pr_nhgrp_entry *grp, size_t grp_cap);

/* ---- dumps (list order; index from 0 while < count) ---- */

size_t pr_link_count(const pr_policy *p);
int pr_link_get(const pr_policy *p, size_t i, pr_link_info *out);
size_t pr_addr_count(const pr_policy *p);
int pr_addr_get(const pr_policy *p, size_t i, pr_addr_info *out);
size_t pr_rule_count(const pr_policy *p, int family);
int pr_rule_get(const pr_policy *p, int family, size_t i, pr_rule_info *out);
/* Routes of one family, table by table (ascending id), each table in trie
 * order.  table 0 = all tables.  The dump is a snapshot taken by
 * pr_route_dump(); it stays valid until the next change.  pr_route_dump
 * writes p's dump buffer: on a snapshot read by several threads, dump from
 * one thread at a time (or from a pr_policy_clone). */
size_t pr_route_dump(pr_policy *p, int family, uint32_t table);
int pr_route_get_dumped(const pr_policy *p, size_t i, pr_route_info *out,
                        pr_nexthop_info *nh, size_t nh_cap);
/* Whether IPv4 local/main are still merged (no rule ever changed). */
int pr_policy_v4_merged(const pr_policy *p);

/* ---- lookups ---- */

/* The answer to one RTM_GETROUTE; returns 0 (see res->error) or a negative
 * errno when the question itself is malformed.  trace may be NULL. */
int pr_route_get(const pr_policy *p, const pr_flow *q, pr_result *res, pr_trace *trace);

/* Evaluates n IPv4 output/input questions from columns into columns.
 * No allocation; safe from several threads on an unchanged policy.
 * Returns 0 or a negative errno. */
int pr_lookup_bulk_v4(const pr_policy *p, size_t n, const pr_bulk_in *in, pr_bulk_out *out);
/* The same answers with the rule index switched off for this call (every
 * rule walk scans the list, as the kernel does): the benchmark's baseline. */
int pr_lookup_bulk_v4_linear(const pr_policy *p, size_t n, const pr_bulk_in *in, pr_bulk_out *out);

/* ---- netlink: sending requests to a live kernel ---- */

/* A NETLINK_ROUTE socket with NETLINK_EXT_ACK and NETLINK_CAP_ACK, large
 * send/receive buffers (SO_*BUFFORCE when allowed) and a kernel-assigned port
 * id.  netns_path (e.g. "/run/netns/NAME") or NULL/"" for the caller's
 * namespace: the calling thread enters that namespace only to create the
 * socket and always returns to its own.  Returns the fd or a negative errno. */
int pr_nl_open(const char *netns_path);
int pr_nl_close(int fd);

/* A batch of encoded requests, in order; operation i is the i-th add. */
typedef struct pr_nl_batch pr_nl_batch;
/* capacity: expected number of operations (a hint; the batch grows). NULL on ENOMEM. */
pr_nl_batch *pr_nl_batch_new(size_t capacity);
void pr_nl_batch_free(pr_nl_batch *b);
void pr_nl_batch_clear(pr_nl_batch *b);
size_t pr_nl_batch_count(const pr_nl_batch *b);
size_t pr_nl_batch_bytes(const pr_nl_batch *b);
/* Encode one request as iproute2 would (every attribute whose `present` bit
 * is set; table ids > 255 also through FRA_TABLE / RTA_TABLE with 0 in the
 * 8-bit field), with NLM_F_REQUEST|NLM_F_ACK added to nlmsg_flags.  Returns
 * the operation's index or a negative errno (-EINVAL: wrong type, family,
 * interface name without NUL, > 32 or bad nexthops, congctl metric). */
int pr_nl_batch_add_rule(pr_nl_batch *b, int msg_type, int nlmsg_flags, const pr_rule_req *req);
int pr_nl_batch_add_route(pr_nl_batch *b, int msg_type, int nlmsg_flags, const pr_route_req *req);
/* The encoded message of operation i (its seq is the one of the last send,
 * 0 before); NULL when i is out of range. */
const uint8_t *pr_nl_batch_message(const pr_nl_batch *b, size_t i, size_t *len);
/* All encoded messages, back to back (each 4-aligned, nlmsg_len first), and
 * their total length in *len; NULL for an empty batch.  Valid until the next
 * change of b.  (The provisioning journal keeps these bytes.) */
const uint8_t *pr_nl_batch_data(const pr_nl_batch *b, size_t *len);
/* Appends a copy of one encoded rule or route message (as pr_nl_batch_data
 * gave it) with its type and flags replaced: msg_type RTM_NEW/DELRULE or
 * RTM_NEW/DELROUTE, nlmsg_flags as for pr_nl_batch_add_rule.  The attributes
 * are kept as they are (a journaled add is undone by sending it as a delete).
 * Returns the operation's index or -EINVAL (not one whole message of that
 * length, or another type) / -ENOMEM / -E2BIG. */
int pr_nl_batch_add_raw(pr_nl_batch *b, const uint8_t *msg, size_t len, int msg_type, int nlmsg_flags);

/* Outcome codes besides 0 (applied) and a positive errno (refused). */
enum {
    PR_NL_UNKNOWN = -1,       /* sent, but its ACK was lost (ENOBUFS) or late: may or may not be applied */
    PR_NL_NOT_SENT = -2,      /* never reached the kernel (a fatal socket error first): not applied */
};

typedef struct pr_nl_result {
    int32_t error;            /* 0, a positive errno, PR_NL_UNKNOWN or PR_NL_NOT_SENT */
    char msg[128];            /* the kernel's extended-ack text (may come with a success), or why not known; "" if none */
} pr_nl_result;

typedef struct pr_nl_options {
    uint32_t max_chunk_bytes; /* 0: what the send buffer takes (SO_SNDBUF - 32).  More than that makes
                                 the kernel answer EMSGSIZE, and the chunk is split (for tests) */
    uint32_t max_chunk_acks;  /* 0: as many ACKs as the receive buffer holds.  Else that many per
                                 chunk, even if they overflow it (for tests) */
    int32_t timeout_ms;       /* wait for the ACKs a sent chunk owes; 0: 5000 */
} pr_nl_options;

typedef struct pr_nl_stats {
    uint32_t messages;        /* operations handed to the kernel */
    uint32_t chunks;          /* sendmsg calls that went through */
    uint32_t send_calls;      /* sendmsg calls, refused ones included */
    uint32_t recv_calls;
    uint32_t acks;            /* ACKs matched to an operation */
    uint32_t emsgsize_splits;
    uint32_t enobufs;         /* receive-queue overflows seen */
    uint32_t foreign;         /* replies not from the kernel (nl_pid != 0): dropped */
    uint32_t stray;           /* kernel messages matching no owed ACK: dropped */
    uint32_t stale;           /* messages already queued before sending: dropped */
    uint32_t max_chunk_ops;   /* largest chunk sent, in operations */
    uint32_t chunk_bytes_limit;
    uint32_t sndbuf, rcvbuf;  /* the socket's effective buffer sizes */
    uint64_t bytes;
} pr_nl_stats;

/* Sends every operation of the batch on fd, in order, in as few sendmsg
 * calls as the socket's buffers allow, reading ACKs between chunks.
 * results[i] (nresults >= count, caller-owned) gets operation i's outcome.
 * Messages already queued on fd are discarded first.  opt and stats may be
 * NULL.  Returns the number of operations whose outcome is not 0, or a
 * negative errno for a socket error (results are still filled: what was
 * acknowledged, PR_NL_UNKNOWN, PR_NL_NOT_SENT).  Writes each message's seq. */
int pr_nl_send(int fd, pr_nl_batch *b, pr_nl_result *results, size_t nresults,
               const pr_nl_options *opt, pr_nl_stats *stats);

/* ---- netlink: reading live state (nl_dump.c) ----
 *
 * RTM_GETLINK / GETADDR / GETRULE / GETROUTE dumps decoded into flat arrays
 * of fixed-size records.  Strings (names, link kinds, congctl) live in one
 * byte arena (pr_dump_str: offset and length, NUL-terminated there), and
 * multipath legs and "notes" (attribute types in message order that a reader
 * must look at: unknown ones, ones no request can carry) in shared arrays
 * that records index.  Everything belongs to one pr_dump handle and is freed
 * by pr_dump_free.  Integers are host order; addresses 16 bytes, network
 * order (IPv4 in the first 4).  `seen` has bit x for each attribute type x
 * (< 64) that was present at the record's top level. */

typedef struct pr_dump pr_dump;

typedef struct pr_dump_str {
    uint32_t off;             /* into the string arena */
    uint32_t len;             /* bytes, without the NUL */
} pr_dump_str;

/* RTM_NEWLINK: ifinfomsg + IFLA_*. */
typedef struct pr_dump_link {
    uint32_t ifindex;
    uint32_t flags;           /* ifi_flags: IFF_UP 0x1, IFF_LOWER_UP 0x10000 */
    uint16_t ifi_type;        /* ARPHRD_*: 772 loopback */
    uint8_t operstate;        /* IFLA_OPERSTATE */
    uint8_t addr_gen_mode;    /* IFLA_AF_SPEC/AF_INET6/IFLA_INET6_ADDR_GEN_MODE (has_addr_gen_mode) */
    uint8_t has_addr_gen_mode;
    uint8_t tun_type;         /* IFLA_LINKINFO/IFLA_INFO_DATA/IFLA_TUN_TYPE of a tun (1 tun, 2 tap), 0 = none */
    uint8_t pad[2];
    uint32_t mtu;             /* IFLA_MTU */
    uint32_t group;           /* IFLA_GROUP */
    uint32_t master;          /* IFLA_MASTER */
    uint32_t link;            /* IFLA_LINK: a veth's peer ifindex */
    int32_t link_netnsid;     /* IFLA_LINK_NETNSID (seen bit 37): the peer is in another namespace */
    uint32_t pad1;
    uint64_t seen;
    pr_dump_str name;         /* IFLA_IFNAME */
    pr_dump_str kind;         /* IFLA_LINKINFO/IFLA_INFO_KIND, len 0 = none */
} pr_dump_link;

/* RTM_NEWADDR: ifaddrmsg + IFA_*. */
typedef struct pr_dump_addr {
    uint8_t family;
    uint8_t prefixlen;
    uint8_t ifa_flags;        /* the 8-bit header field */
    uint8_t scope;
    uint32_t ifindex;
    uint32_t flags;           /* IFA_FLAGS, else ifa_flags */
    uint32_t metric;          /* IFA_RT_PRIORITY */
    uint32_t preferred_lft;   /* IFA_CACHEINFO; 0xFFFFFFFF when absent */
    uint32_t valid_lft;
    uint32_t cstamp, tstamp;  /* IFA_CACHEINFO, 0 when absent */
    uint8_t proto;            /* IFA_PROTO */
    uint8_t pad[7];
    uint64_t seen;
    pr_dump_str label;        /* IFA_LABEL */
    uint8_t local[16];        /* IFA_LOCAL (seen bit 2) */
    uint8_t address[16];      /* IFA_ADDRESS (seen bit 1): the peer of a point-to-point address */
    uint8_t broadcast[16];    /* IFA_BROADCAST (seen bit 4) */
} pr_dump_addr;

/* RTM_NEWRULE: the request struct, filled as the kernel dumps it.  r.present
 * has bit FRA_x for each FRA_* attribute pr_rule_req has a field for (FRA_PRIORITY
 * included); r.table is FRA_TABLE when present, else the header's. */
typedef struct pr_dump_rule {
    pr_rule_req r;
    uint64_t seen;
    uint32_t note_off;        /* attribute types pyroute2 0.9 has no name for (5, 7-9, >= 25), in order */
    uint32_t note_count;
} pr_dump_rule;

/* One RTA_MULTIPATH leg: struct rtnexthop + its attributes. */
typedef struct pr_dump_nexthop {
    uint8_t flags;            /* rtnh_flags: RTNH_F_DEAD / ONLINK / LINKDOWN ... */
    uint8_t hops;             /* rtnh_hops: weight - 1 */
    uint8_t gw_family;        /* RTA_GATEWAY (the route's family) or RTA_VIA's; 0 = none */
    uint8_t pad;
    uint32_t ifindex;
    uint32_t realm;           /* RTA_FLOW */
    uint32_t seen;            /* bit RTA_x of the leg's attributes (x < 32) */
    uint8_t gw[16];
} pr_dump_nexthop;

/* RTM_NEWROUTE: rtmsg + RTA_*. */
typedef struct pr_dump_route {
    uint8_t family;
    uint8_t dst_len;
    uint8_t src_len;
    uint8_t tos;
    uint8_t table8;           /* rtm_table */
    uint8_t protocol;
    uint8_t scope;
    uint8_t type;
    uint32_t rtm_flags;
    uint32_t table;           /* RTA_TABLE, else rtm_table */
    uint32_t priority;        /* RTA_PRIORITY */
    uint32_t oif;             /* RTA_OIF */
    uint32_t iif;             /* RTA_IIF */
    uint32_t nh_id;           /* RTA_NH_ID */
    uint32_t realm;           /* RTA_FLOW */
    uint32_t mark;            /* RTA_MARK */
    uint8_t pref;             /* RTA_PREF */
    uint8_t gw_family;        /* RTA_GATEWAY (the route's family) or RTA_VIA's; 0 = none */
    uint16_t encap_type;      /* RTA_ENCAP_TYPE */
    int32_t cache_expires;    /* RTA_CACHEINFO rta_expires (jiffies; IPv6 route lifetime) */
    uint64_t expires;         /* RTA_EXPIRES */
    uint64_t seen;
    uint32_t metrics_present; /* bit RTAX_x for each u32 metric present */
    uint32_t metrics_off;     /* metric_values[metrics_off + x] is RTAX_x (18 slots), when metrics_present */
    pr_dump_str congctl;      /* RTAX_CC_ALGO, len 0 = none */
    uint32_t nh_off;          /* legs in the nexthop array */
    uint32_t nh_count;
    uint32_t note_off;        /* attribute types a reader must look at, in message order */
    uint32_t note_count;
    uint8_t dst[16];
    uint8_t src[16];
    uint8_t prefsrc[16];
    uint8_t gw[16];
} pr_dump_route;

/* The handle's arrays; valid until the next call that adds to or frees it. */
typedef struct pr_dump_view {
    const pr_dump_link *links;
    size_t n_links;
    const pr_dump_addr *addrs;
    size_t n_addrs;
    const pr_dump_rule *rules;
    size_t n_rules;
    const pr_dump_route *routes;
    size_t n_routes;
    const pr_dump_nexthop *nexthops;
    size_t n_nexthops;
    const uint16_t *notes;
    size_t n_notes;
    const uint32_t *metric_values;   /* 18 per route that has metrics, indexed by RTAX_x */
    size_t n_metric_values;
    const char *strings;
    size_t strings_len;
} pr_dump_view;

typedef struct pr_dump_stats {
    uint32_t messages;        /* records decoded */
    uint32_t datagrams;
    uint32_t restarts;        /* dumps started again (NLM_F_DUMP_INTR, ENOBUFS, a truncated datagram) */
    uint32_t foreign;         /* datagrams not from the kernel: dropped */
    uint32_t stray;           /* messages of another sequence number or type: dropped */
    uint32_t pad;
    uint64_t bytes;
} pr_dump_stats;

enum {
    PR_RTM_GETLINK = 18, PR_RTM_GETADDR = 22, PR_RTM_GETROUTE = 26, PR_RTM_GETRULE = 34,
    PR_RTM_NEWLINK = 16,
};

/* NULL on ENOMEM. */
pr_dump *pr_dump_new(void);
void pr_dump_free(pr_dump *d);
/* Empties the arrays (keeps their memory; not the statistics, nor a running session). */
void pr_dump_clear(pr_dump *d);
/* One NLM_F_DUMP request (PR_RTM_GET*; family PR_AF_INET / PR_AF_INET6, or 0
 * for links and addresses of every family; routes of every table) on fd (from
 * pr_nl_open), every reply decoded and appended.  Only datagrams from the
 * kernel (nl_pid 0) with this request's seq count.  An interrupted dump
 * (NLM_F_DUMP_INTR) or a lost reply (ENOBUFS, a datagram larger than the
 * buffer) drops what this call appended and dumps again (up to 8 times).
 * Returns the number of records appended or a negative errno (the kernel's
 * NLMSG_ERROR, -EBADMSG for a malformed reply: pr_dump_error() names it,
 * -EAGAIN when the dump never came through whole); on error nothing stays
 * appended. */
int pr_dump_run(pr_dump *d, int fd, int msg_type, int family);
/* The same dump in steps, so that a caller can take the records a chunk at a
 * time (and memory stays one chunk): pr_dump_start sends the request (0 or a
 * negative errno); each pr_dump_step appends the records of whole datagrams
 * until at least min_records came or the dump ended, and returns how many
 * (0: the dump is complete), PR_DUMP_RESTARTED (the dump had to start again:
 * what earlier steps gave is void; this step appended nothing) or a negative
 * errno (nothing of this step appended; the session is over).  The caller
 * may pr_dump_clear between steps. */
enum { PR_DUMP_RESTARTED = -10000 };
int pr_dump_start(pr_dump *d, int fd, int msg_type, int family);
int pr_dump_step(pr_dump *d, size_t min_records);
/* Decodes a buffer of netlink messages as a dump delivers them (RTM_NEWLINK /
 * NEWADDR / NEWROUTE / NEWRULE; NLMSG_DONE ends it; other types are
 * skipped).  Returns the records appended, or -EBADMSG with nothing appended
 * (pr_dump_error() says which message and attribute). */
int pr_dump_decode(pr_dump *d, const uint8_t *buf, size_t len);
/* "" when the last call succeeded. */
const char *pr_dump_error(const pr_dump *d);
void pr_dump_get_view(const pr_dump *d, pr_dump_view *v);
void pr_dump_get_stats(const pr_dump *d, pr_dump_stats *st);
/* One RTM_GETROUTE question (RTA_DST, no flags, as pyroute2 asks it) on fd;
 * *table gets the answer's RTA_TABLE (else rtm_table).  0 or a negative errno. */
int pr_dump_route_table(pr_dump *d, int fd, int family, const uint8_t *dst, uint32_t *table);
/* ---- compiled IPv4 longest-prefix match (lpm4.c) ----
 * A read-only structure built once from a prefix list (poptrie-like: a
 * 2^18-entry direct table, then 64-way nodes of two bitmaps).  Lookups
 * neither allocate nor write: any number of threads may share one.  Values
 * are caller-chosen, below PR_LPM4_NONE; addresses are host-order uint32. */
typedef struct pr_lpm4 pr_lpm4;
enum { PR_LPM4_NONE = 0x7FFFFFFF, PR_LPM4_EINVAL = 22, PR_LPM4_ENOMEM = 12 };
/* n prefixes (addr[i] masked to plen[i] <= 32) with their values; for a
 * repeated (addr, plen) the last one wins.  0, -PR_LPM4_EINVAL or
 * -PR_LPM4_ENOMEM; *out NULL on error.  Free with pr_lpm4_free. */
int pr_lpm4_build(pr_lpm4 **out, size_t n, const uint32_t *addr, const uint8_t *plen, const uint32_t *value);
void pr_lpm4_free(pr_lpm4 *t);
/* The value of the longest prefix covering addr, or PR_LPM4_NONE. */
uint32_t pr_lpm4_lookup(const pr_lpm4 *t, uint32_t addr);
/* values[i] = pr_lpm4_lookup(t, addrs[i]); groups of lookups overlap their
 * memory accesses.  Caller-owned buffers. */
void pr_lpm4_lookup_bulk(const pr_lpm4 *t, size_t n, const uint32_t *addrs, uint32_t *values);
size_t pr_lpm4_memory(const pr_lpm4 *t);   /* bytes held */
size_t pr_lpm4_count(const pr_lpm4 *t);    /* distinct prefixes */
/* Compiles every IPv4 table of at least min_prefixes prefixes whose compiled
 * copy is missing or stale (a route add/delete that changes the table's
 * prefixes drops the copy; lookups then use the trie until the next
 * compile).  Same answers, faster lookups.  A writer operation, but safe to
 * call from several threads at once on a policy nobody is changing (it
 * serialises itself and does nothing when all copies are current): the
 * Python bulk call runs it first.  0 or -PR_LPM4_ENOMEM. */
int pr_policy_compile(pr_policy *p, size_t min_prefixes);
/* ---- snapshots (copy-on-write publishing) ----
 * An immutable view of p as it is now, sharing p's tables and rule storage
 * with reference counts (C11 atomics); p keeps being the writer and copies a
 * shared table or its rule list before its next write to it.  Costs O(tables)
 * pointer copies plus the (small) link and address arrays, not a deep copy.
 * Call it from p's writer thread; the snapshot may then be read (lookups,
 * bulk calls, pr_policy_compile) from any number of threads and freed with
 * pr_policy_free from any one of them.  Never pass a snapshot to a function
 * that changes a policy.  NULL on ENOMEM. */
pr_policy *pr_policy_snapshot(pr_policy *p);

/* ---- IPv6 bulk evaluation (bulk.c) ----
 * As pr_lookup_bulk_v4, for IPv6: each row is answered exactly as
 * pr_route_get() answers the same family-6 question (`ip -6 route get`).
 * Addresses are 16-byte columns: row i is bytes [16*i, 16*i+16), network
 * order (a numpy uint8 array of shape (n, 16), C-contiguous).  Input pointers
 * may be NULL (all zero); any output pointer may be NULL (column skipped). */
typedef struct pr_bulk6_in {
    const uint8_t *dst;      /* n x 16 */
    const uint8_t *src;      /* n x 16; all zero (::) = no source given */
    const uint32_t *iif;     /* ifindex; 0 = output path */
    const uint32_t *oif;
    const uint8_t *tclass;   /* traffic class (rtm_tos) */
    const uint32_t *mark;
    const uint32_t *uid;     /* NULL = no RTA_UID (the caller's uid as root) */
    const uint8_t *ipproto;  /* 0 = not given */
    const uint16_t *sport;
    const uint16_t *dport;
    /* NULL: rows 0..n-1 in sequence.  Else the rows to evaluate, in this
     * order (each < n; rows not listed are not written): answers are the
     * same, but rows near each other in address space share trie paths in
     * cache.  pr_bulk6_order() makes one. */
    const uint32_t *order;
} pr_bulk6_in;

typedef struct pr_bulk6_out {
    int32_t *error;          /* 0 or positive errno */
    uint8_t *type;
    uint32_t *table;
    uint32_t *rule_priority; /* deciding rule's priority; 0xFFFFFFFF = none */
    uint32_t *oif;
    uint8_t *gateway;        /* n x 16; all zero = none; an IPv4 gateway is ::ffff:a.b.c.d */
    uint8_t *prefsrc;        /* n x 16; all zero = none */
    uint32_t *flags;         /* not_modelled bits */
} pr_bulk6_out;

/* Evaluates n IPv6 output/input questions from columns into columns.  No
 * allocation; safe from several threads on an unchanged policy.  0 or a
 * negative errno (-EINVAL for a NULL policy, or NULL dst/in/out with n > 0). */
int pr_lookup_bulk_v6(const pr_policy *p, size_t n, const pr_bulk6_in *in, pr_bulk6_out *out);
/* order[0..n) = the row indices 0..n-1 sorted (stably) by the top 32 bits of
 * dst[i]: an evaluation order for pr_bulk6_in.order.  Random destinations
 * over a big table then walk the trie with warm caches (about 2x faster at
 * 100k prefixes, bench/README.md).  scratch: 2n caller-owned uint64.  0, or
 * -EINVAL for NULL buffers with n > 0 or n >= 2^32. */
int pr_bulk6_order(size_t n, const uint8_t *dst, uint32_t *order, uint64_t *scratch);
/* The same answers with the rule index switched off (linear rule walk). */
int pr_lookup_bulk_v6_linear(const pr_policy *p, size_t n, const pr_bulk6_in *in, pr_bulk6_out *out);

/* ---- specialised IPv4 evaluation (fast4.c) ----
 * A read-only evaluator compiled from one policy for the bulk question whose
 * only varying fields are destination and source (pr_bulk_in with every
 * column but dst and src NULL): rule chains per source class and interned
 * table outcomes, so that a flow costs a few table reads.  Answers are
 * exactly pr_lookup_bulk_v4's; rows it does not cover (see fast4.c) go
 * through the exact path, and a call with any other column is answered by
 * the exact path whole.  The policy must not change while the evaluator
 * lives: build it from a snapshot and free it before the snapshot.  Lookups
 * neither allocate nor write the evaluator: any number of threads may share
 * one. */
typedef struct pr_fast4 pr_fast4;
typedef struct pr_fast4_stats {
    size_t classes;          /* distinct (source kind, rule chain) */
    size_t chain_entries;
    size_t tables;           /* compiled table copies */
    size_t outcomes;         /* distinct lookup outcomes */
    size_t src_prefixes;     /* prefixes of the source LPM */
    size_t memory;           /* bytes held */
    uint32_t merged;         /* no custom rules: local+main then default */
} pr_fast4_stats;
/* 0, -PR_EINVAL (NULL argument) or -ENOMEM (12); *out NULL on error. */
int pr_fast4_build(const pr_policy *p, pr_fast4 **out);
void pr_fast4_free(pr_fast4 *f);
/* As pr_lookup_bulk_v4 on the policy f was built from; *slow (if not NULL)
 * gets how many rows the exact path answered. */
int pr_fast4_lookup_bulk(const pr_fast4 *f, size_t n, const pr_bulk_in *in, pr_bulk_out *out, size_t *slow);
void pr_fast4_get_stats(const pr_fast4 *f, pr_fast4_stats *st);

/* ---- field tables (fields.c) ----
 * One row per field of pr_rule_req and pr_route_req: the fib_rule_hdr /
 * rtmsg header fields and the FRA_* / RTA_* attributes the model carries,
 * as the kernel's nla_policy tables and pyroute2's nla_map describe them,
 * plus how iproute2 writes and prints each one.  The rows cover every byte
 * of the request structs but padding (tests/c/test_fields.c), so a field
 * added to a struct without a row fails a test, and a selector row the rule
 * index does not declare it can key makes rules carrying it take the linear
 * path (rule_index.c).  Readers of rules and routes (Python included) should
 * walk these tables instead of keeping their own lists of selectors. */

/* pr_field_info.kind: how the field's bytes read. */
enum pr_field_kind {
    PR_FK_U8 = 0, PR_FK_U16 = 1, PR_FK_U32 = 2, PR_FK_S32 = 3, PR_FK_U64 = 4,
    PR_FK_RANGE16 = 5,        /* start, end (two u16, inclusive) */
    PR_FK_RANGE32 = 6,        /* start, end (two u32, inclusive) */
    PR_FK_MASK = 7,           /* the mask of the value row `link` (same width) */
    PR_FK_ADDR = 8,           /* 16 bytes, network order; aux = its u8 prefix length when it has one */
    PR_FK_IFNAME = 9,         /* char[16], NUL-terminated */
    PR_FK_FLAG = 10,          /* the bits `flag` of an integer field */
    PR_FK_IFINDEX = 11,       /* u32 ifindex (a device name in iproute2 text) */
    PR_FK_FAMILY = 12,        /* u8 address family; RTA_VIA: aux = the address */
    PR_FK_MULTIPATH = 13,     /* u32 leg count; aux = the pr_nexthop_req pointer */
    PR_FK_METRICS = 14,       /* u32[18] indexed by RTAX_x; aux = the u32 bitmap of those present */
    PR_FK_BITMAP = 15,        /* u32 `present`: bit x for attribute x sent */
};
/* pr_field_info.role.  0 is "selector" so that a row added without one is
 * treated with the most care (a selector the rule index cannot key). */
enum pr_field_role {
    PR_FROLE_SELECTOR = 0,    /* rules: decides whether a flow matches; routes: the lookup key (prefix, tos) */
    PR_FROLE_ACTION = 1,      /* what a matching rule / a route does (table, goto, nexthops ...) */
    PR_FROLE_ATTR = 2,        /* identity or bookkeeping: priority, protocol, scope ... */
    PR_FROLE_META = 3,        /* family and the present bitmap: not an attribute of its own */
};
/* pr_field_info.index_key: how the rule index (rule_index.c) keys a selector. */
enum pr_index_key {
    PR_IK_NONE = 0,           /* it cannot: a rule carrying this selector is matched by the linear path */
    PR_IK_PREFIX = 1,         /* address masked to the rule's prefix length (a shape dimension) */
    PR_IK_EXACT = 2,          /* exact compare of the flow's (masked) value */
    PR_IK_IFINDEX = 3,        /* the bound ifindex of the device name */
    PR_IK_MASKED = 4,         /* value & mask, the mask being a shape dimension */
    PR_IK_SINGLE = 5,         /* a range only when start == end (one exact value) */
    PR_IK_IGNORED = 6,        /* not a selector (role != SELECTOR): the index ignores it */
};
/* pr_field_info.print_fmt: how iproute2 (6.1 for older fields) prints the row;
 * pr_field_info.print has the text form. */
enum pr_print_fmt {
    PR_PF_NONE = 0,           /* not printed */
    PR_PF_WITH_LINK = 1,      /* printed by its `link` row (a mask, a family, a length) */
    PR_PF_U32 = 2,            /* "%u" */
    PR_PF_S32 = 3,            /* "%d" */
    PR_PF_PREFIX = 4,         /* "ADDR/LEN", "ADDR" at host length, rules: "from all" when absent */
    PR_PF_ADDR = 5,           /* "ADDR" */
    PR_PF_HEX_MASK = 6,       /* "%#x", then "/%#x" unless the mask is all ones */
    PR_PF_RANGE = 7,          /* "%u-%u" */
    PR_PF_PORT = 8,           /* "%u", "%u-%u" or "%u/%#x" (a mask) */
    PR_PF_IFNAME = 9,         /* the name, " [detached]" when the device is gone */
    PR_PF_FLAG = 10,          /* the keyword alone */
    PR_PF_DSFIELD = 11,       /* rt_dsfield name, else "0x%x" */
    PR_PF_DSCP = 12,          /* rt_dsfield name of DSCP << 2, else "%u"; "/%#x" for a mask */
    PR_PF_TABLE = 13,         /* rt_tables name, else "%u" */
    PR_PF_PROTO = 14,         /* rt_protos name, else "%u" */
    PR_PF_IPPROTO = 15,       /* /etc/protocols name (getprotobynumber), else "%u" */
    PR_PF_REALMS = 16,        /* "[FROM/]TO" with rt_realms names */
    PR_PF_GROUP = 17,         /* group name, else "%d" */
    PR_PF_RTNTYPE = 18,       /* route type word: "unreachable" ... (unicast not printed) */
    PR_PF_SCOPE = 19,         /* rt_scopes name */
    PR_PF_ROUTER_PREF = 20,   /* "low" / "medium" / "high" */
    PR_PF_PRIORITY = 21,      /* rules: "%u:" heading the line */
    PR_PF_NEXTHOPS = 22,      /* "nexthop via ... dev ... weight N" per leg */
    PR_PF_METRICS = 23,       /* "mtu N advmss N ..." per RTAX present */
    PR_PF_HEX = 24,           /* "%#x" */
    PR_PF_U64 = 25,           /* "%llu" */
};
/* pr_field_info.families */
enum { PR_FAM_IPV4 = 1, PR_FAM_IPV6 = 2 };
/* pr_field_info.flags */
enum {
    PR_FF_BE_WIRE = 1,        /* big-endian in the attribute, host order in the struct */
    PR_FF_NEW_KEYWORD = 2,    /* iproute2 6.1 (the reader's reference) has no keyword for it */
    PR_FF_HEADER = 4,         /* a fib_rule_hdr / rtmsg field, not an attribute */
    PR_FF_ALSO_HEADER = 8,    /* the attribute has an 8-bit header twin (frh.table / rtm_table) */
    PR_FF_DUMP_ONLY_BITS = 16,/* the field has more bits in dumps than requests take (rule flags) */
};

typedef struct pr_field_info {
    char name[24];            /* unique within its table: "fwmark", "fwmask", "sport_mask" ... */
    char keyword[24];         /* the iproute2 keyword that sets it; "" = positional or none */
    char aliases[32];         /* other spellings, comma-separated (no keyword: the words that set it) */
    char syntax[40];          /* what follows the keyword, iproute2 usage style; "" = nothing */
    char print[40];           /* what `ip rule show` / `ip route show` print for it */
    char example[40];         /* a value iproute2 6.1 (or the newer one) accepts after the keyword */
    char nla_name[32];        /* "FRA_FWMARK", or the header field "frh.tos" */
    int32_t nla_type;         /* FRA_x / RTA_x (kernel uapi value); -1 for a header field */
    int32_t present_bit;      /* the .present bit that says it was sent; -1 = none */
    uint32_t offset;          /* offsetof in pr_rule_req / pr_route_req */
    uint32_t size;            /* bytes (both halves of a range) */
    uint32_t aux_offset;      /* a second field it needs (kind says which); aux_size 0 = none */
    uint32_t aux_size;
    int32_t link;             /* row index of its companion (value <-> mask, via <-> gateway); -1 = none */
    uint32_t flag;            /* PR_FK_FLAG: the bits of the field */
    uint64_t max;             /* the largest value the kernel takes (nla_policy max); 0 = the type's */
    uint8_t kind;             /* enum pr_field_kind */
    uint8_t role;             /* enum pr_field_role */
    uint8_t index_key;        /* enum pr_index_key (rule rows; PR_IK_IGNORED for routes) */
    uint8_t print_fmt;        /* enum pr_print_fmt */
    uint8_t families;         /* PR_FAM_* bits it applies to */
    uint8_t flags;            /* PR_FF_* */
    uint8_t pad[2];
} pr_field_info;

/* Rows of the rule table (pr_rule_req) and of the route table
 * (pr_route_req), in struct order.  *_get: 0, or -2 (ENOENT) when i >=
 * count or out is NULL.  The tables are constant: any thread, any time. */
size_t pr_rule_field_count(void);
int pr_rule_field_get(size_t i, pr_field_info *out);
size_t pr_route_field_count(void);
int pr_route_field_get(size_t i, pr_field_info *out);

/* cdef-end */

#ifdef __cplusplus
}
#endif
#endif /* POLROUTE_H */
