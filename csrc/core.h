/*
 * core.h - internal state of the polroute model (not part of the public API).
 *
 * One pr_policy is one network namespace.  Per family it keeps
 *  - the rule list: an array kept sorted by priority, insertion order within a
 *    priority (exactly the kernel's list order);
 *  - the tables: an array sorted by id; each table is a Patricia trie mapping
 *    (prefix, length) to a slot holding the routes of that prefix in the
 *    kernel's order (tos descending, metric ascending, then by the flags the
 *    route was added with).
 * Links and addresses are flat arrays; an address array keeps each device's
 * addresses in the kernel's list order (primaries first as inserted,
 * secondaries after).
 */
#ifndef POLROUTE_CORE_H
#define POLROUTE_CORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc.h"
#include "polroute.h"
#include "trie.h"

#define PR_SCOPE_UNIVERSE 0u
#define PR_SCOPE_SITE 200u
#define PR_SCOPE_LINK 253u
#define PR_SCOPE_HOST 254u
#define PR_SCOPE_NOWHERE 255u

#define PR_RTPROT_KERNEL 2u
#define PR_RTPROT_BOOT 3u
#define PR_RTPROT_RA 9u

#define PR_TABLE_DEFAULT 253u
#define PR_TABLE_MAIN 254u
#define PR_TABLE_LOCAL 255u

#define PR_RTCF_LOCAL 0x80000000u
#define PR_RTCF_DOREDIRECT 0x01000000u
#define PR_RTM_F_OFFLOAD_FAILED 0x20000000u

#define PR_IFA_F_SECONDARY 0x01u
#define PR_IFA_F_NOPREFIXROUTE 0x200u

#define PR_LOOPBACK_IFINDEX 1u

/* errno values, spelled out so the core does not depend on <errno.h> values
 * differing from Linux ones (it models Linux, whatever it runs on). */
enum {
    PR_EPERM = 1, PR_ENOENT = 2, PR_ESRCH = 3, PR_EAGAIN = 11, PR_ENOMEM = 12,
    PR_EACCES = 13, PR_EEXIST = 17, PR_ENODEV = 19, PR_EINVAL = 22, PR_ERANGE = 34,
    PR_EOPNOTSUPP = 95, PR_EAFNOSUPPORT = 97, PR_ENETDOWN = 100, PR_ENETUNREACH = 101,
    PR_ENOBUFS = 105, PR_EHOSTUNREACH = 113, PR_EXDEV = 18, PR_EADDRNOTAVAIL = 99, PR_EMSGSIZE = 90,
};

typedef struct pr_nh {
    uint8_t gw_family;        /* 0 = no gateway */
    uint8_t flags;            /* PR_RTNH_F_* (DEAD, LINKDOWN, ONLINK) */
    uint8_t scope;            /* fib_nh_scope: link for a gateway, host for dev-only, nowhere for host routes */
    uint8_t nhc_v6;           /* from an IPv6 nexthop object: no IPv4 source cache (fib_result_prefsrc) */
    uint16_t weight;
    uint16_t pad2;
    uint32_t ifindex;
    uint32_t saddr_cache;     /* IPv4: nh_saddr, the source computed when saddr_genid was current */
    uint32_t saddr_genid;
    uint8_t gw[16];
} pr_nh;

typedef struct pr_route {
    uint8_t family, dst_len, tos, protocol, scope, type, has_prefsrc, pref;
    uint8_t addrconf;         /* IPv6: created by the kernel from an address (not ECMP-able) */
    uint8_t fa_type;          /* nh_id routes: the type as requested (type may say blackhole for a blackhole object) */
    uint8_t pad[2];
    uint32_t table;
    uint32_t priority;
    uint32_t nh_id;
    uint32_t realm;
    uint32_t nh_count;
    uint32_t metrics_present;
    uint32_t metrics[18];
    uint8_t dst[16];
    uint8_t prefsrc[16];
    pr_nh nh0;                /* first nexthop */
    pr_nh *nhx;               /* nexthops 1..nh_count-1 (heap), NULL when nh_count <= 1 */
} pr_route;

static inline pr_nh *route_nh(pr_route *r, uint32_t i) { return i == 0 ? &r->nh0 : &r->nhx[i - 1]; }
static inline const pr_nh *route_nh_c(const pr_route *r, uint32_t i) { return i == 0 ? &r->nh0 : &r->nhx[i - 1]; }

/* Routes of one (table, prefix, length), in kernel order. */
typedef struct pr_rlist {
    uint32_t n, cap;
    pr_route *v;
} pr_rlist;

/* A table is its own heap object, shared by every snapshot that has not
 * changed it (copy-on-write, see pr_table_mut in routes.c): refs counts the
 * families pointing at it.  A table with refs > 1 is never written, except
 * that its compiled copy (lpm) may go from NULL to built once (atomically). */
typedef struct pr_table {
    atomic_uint refs;
    uint32_t id;
    pr_trie trie;             /* (prefix, len) -> slot index in slots[] */
    pr_rlist *slots;
    uint32_t nslots, capslots;
    uint32_t free_slot;       /* head of the free-slot chain (slot.cap holds next), UINT32_MAX = none */
    size_t nroutes;
    pr_lpm4 *_Atomic lpm;     /* IPv4: compiled copy of the trie (prefix -> slot), NULL = none or stale */
} pr_table;

/* One entry of a family's table list: the id next to the pointer keeps the
 * binary search inside one array.  slot: the table's handle (below). */
typedef struct pr_table_ref {
    uint32_t id;
    uint32_t slot;
    pr_table *t;
} pr_table_ref;

/* Table handles: every table id a rule or a table of the family has named
 * gets a slot that never changes (ids -> slots in an open-addressing hash,
 * slots -> the table or NULL while it does not exist).  A rule keeps its
 * table's slot, so creating a table (which shifts positions in the sorted
 * list) never revisits the rules, and a rule added before its table finds it
 * once it exists. */
typedef struct pr_tid {
    uint32_t id;
    uint32_t slot1;           /* slot + 1; 0 = empty entry */
} pr_tid;

typedef struct pr_rule {
    pr_rule_req r;            /* priority always set; present has FRA_PRIORITY */
    uint64_t okey;            /* order key: (priority << 32) | insertion serial; list order */
    int32_t iif_index;        /* bound ifindex, -1 when detached, 0 when no iif selector */
    int32_t oif_index;
    int32_t tab_slot;         /* handle of r.table (pr_tid), -1 = none: look the id up */
    uint32_t src4, srcmask4;  /* IPv4 selectors as host-order words (derived) */
    uint32_t dst4, dstmask4;
    uint8_t only_prefixes;    /* IPv4 rule selecting on from/to alone (derived): the fast match */
} pr_rule;

/* The rule index (rule_index.c): per selector shape, a hash table from the
 * masked selector values to the sorted order keys of the rules with them. */
typedef struct pr_rkey {
    uint8_t src[16], dst[16];
    int32_t iif, oif;
    uint32_t mark;
    uint16_t dport;           /* exact destination port (shapes with has_dport) */
    uint8_t tos;              /* IPv4 tos & 0x1C / IPv6 tclass & 0xFC (shapes with has_tos) */
    uint8_t pad;
} pr_rkey;
typedef struct pr_rbucket {
    uint64_t hash;            /* 0 = empty slot */
    uint64_t k0, k1;          /* keys[0], keys[1] copied (UINT64_MAX when absent): most probes stop here */
    pr_rkey key;
    uint64_t *keys;           /* order keys, ascending; inside the index's pool when capkeys is 0 */
    uint32_t n, capkeys;
} pr_rbucket;
typedef struct pr_rshape {
    uint8_t src_len, dst_len;
    bool has_iif, has_oif, has_dport, has_tos;
    uint32_t fwmask;
    pr_rbucket *slots;        /* open addressing, cap a power of two */
    uint32_t cap, count;
} pr_rshape;
typedef struct pr_rindex {
    pr_rshape *shapes;
    uint32_t nshapes, capshapes;
    uint64_t *complex;        /* order keys of rules the full matcher must test */
    uint32_t ncomplex, capcomplex;
    uint64_t *all;            /* order keys of every rule, ascending: key -> list position */
    size_t nall, capall, headall;   /* a pr_gap_insert array, like the rules */
    uint64_t *pool;           /* a clone's bucket key arrays, in one block (pr_rindex_clone) */
} pr_rindex;

/* Shared rule storage (copy-on-write): the rules array and its index as a
 * family held them when a snapshot was taken; every family pointing here has
 * the same rules/index field values and may not write them (rules.c,
 * pr_rules_own). */
typedef struct pr_rshare {
    atomic_uint refs;
    pr_rule *rules;           /* the block (what free takes), not rule 0 */
    pr_rindex index;
} pr_rshare;

typedef struct pr_family {
    uint8_t family;
    pr_rshare *rshare;        /* non-NULL: rules/index below are shared, read-only */
    pr_rule *rules;           /* a pr_gap_insert array: the block starts rules_head rules before */
    size_t nrules, caprules, rules_head;
    uint32_t rule_seq;        /* insertion serial for order keys */
    pr_rindex index;
    pr_table_ref *tables;     /* sorted by id; each table possibly shared with snapshots;
                               * a pr_gap_insert array (tables created in descending id order) */
    size_t ntables, captables, tables_head;
    pr_table **tslots;        /* slot -> table (the same pointer as in tables[]) or NULL */
    uint32_t ntslots, captslots;
    pr_tid *tids;             /* table id -> slot; capacity a power of two, at most half full */
    uint32_t captids;
} pr_family;

/* The start of f's rule block (NULL when none). */
static inline pr_rule *pr_rules_block(const pr_family *f)
{
    return f->rules ? f->rules - f->rules_head : NULL;
}

/* Per-device IPv4/IPv6 configuration (the sysctls that change answers). */
typedef struct pr_devconf {
    int32_t forwarding;
    int32_t route_localnet;
    int32_t rp_filter;
    int32_t accept_local;
    int32_t ignore_linkdown;
    int32_t src_valid_mark;
    int32_t promote_secondaries;
    int32_t v6_forwarding;
    int32_t v6_ignore_linkdown;
    int32_t v6_disable;
} pr_devconf;

typedef struct pr_link {
    uint32_t ifindex;
    uint32_t group;
    uint32_t peer;            /* veth peer ifindex, 0 if none */
    uint8_t kind;
    uint8_t up;
    uint8_t carrier_forced_off;
    uint8_t pad;
    char name[16];
    pr_devconf conf;
    uint32_t a4_first, a4_count; /* this device's IPv4 addresses: a contiguous run of addrs[] (derived) */
} pr_link;

typedef struct pr_ifaddr {
    uint32_t ifindex;
    uint8_t family;
    uint8_t prefixlen;
    uint8_t scope;
    uint8_t has_broadcast;
    uint32_t flags;           /* PR_IFA_F_* */
    uint32_t metric;
    uint32_t seq;             /* insertion serial: the address hash finds the newest first */
    uint8_t local[16];
    uint8_t broadcast[16];
} pr_ifaddr;

/* A nexthop object (nexthop.c). */
typedef struct pr_nhobj {
    uint32_t id;
    uint8_t family;           /* AF_INET / AF_INET6; 0 for a group */
    uint8_t blackhole;
    uint8_t is_group;
    uint8_t protocol;
    pr_nh nh;                 /* a single nexthop: gateway, device, scope, ONLINK; lo for a blackhole */
    uint32_t ngrp;
    pr_nhgrp_entry *grp;      /* a group's members (heap) */
} pr_nhobj;

struct pr_policy {
    uint64_t generation;      /* pr_policy_touch: new at every request that may change p, unique process-wide */
    pr_link *links;
    size_t nlinks, caplinks;
    uint32_t next_ifindex;
    pr_ifaddr *addrs;
    size_t naddrs, capaddrs;
    pr_family v4, v6;
    bool v4_custom_rules;     /* sticky: first IPv4 rule add/del unmerges local/main */
    bool v4_custom_local_routes;
    uint32_t addr_seq;
    uint32_t addr_genid;      /* dev_addr_genid: bumped by every IPv4 address change */
    uint32_t *local4;         /* sorted multiset of local IPv4 addresses (__ip_dev_find) */
    size_t nlocal4, caplocal4;
    pr_devconf conf_all, conf_default;
    int32_t ip_nonlocal_bind;
    uint32_t kernel_features; /* PR_KF_*: how the modelled kernel was built */
    pr_nhobj *nhobjs;         /* nexthop objects, ascending id */
    size_t nnhobjs, capnhobjs;
    uint32_t nh_last_auto;    /* net->nexthop.last_id_allocated */
    /* Snapshot for pr_route_dump(). */
    const pr_route **dump;
    size_t ndump, capdump;
    char errmsg[160];
};

/* ---- helpers shared across files ---- */
void pr_set_err(pr_policy *p, const char *msg);
int pr_fail(pr_policy *p, int err, const char *msg);   /* sets msg, returns -err */
void *pr_grow(void *ptr, size_t *cap, size_t need, size_t elem);
/* Sorted arrays that take insertions at both ends in O(1) amortized time
 * (a rule list built in descending priority, or without priorities, grows
 * at its head): *v is element 0, *head free elements precede it in the
 * block, *cap elements fit from *v on; the block starts at
 * (char *)*v - *head * elem (free that).  pr_gap_insert makes room for one
 * element at pos (0 <= pos <= n) by moving the shorter side, in a new block
 * when that side is full, and returns the slot (the caller stores it and
 * counts n + 1) or NULL on ENOMEM (nothing changed).  pr_gap_remove closes
 * the hole of element pos (the caller counts n - 1). */
void *pr_gap_insert(void **v, size_t *head, size_t n, size_t *cap, size_t elem, size_t pos);
void pr_gap_remove(void **v, size_t *head, size_t n, size_t *cap, size_t elem, size_t pos);

static inline unsigned fam_bits(uint8_t family) { return family == PR_AF_INET ? 32u : 128u; }
static inline unsigned fam_bytes(uint8_t family) { return family == PR_AF_INET ? 4u : 16u; }
pr_family *pr_fam(pr_policy *p, uint8_t family);
const pr_family *pr_fam_c(const pr_policy *p, uint8_t family);

bool addr_prefix_match(const uint8_t *a, const uint8_t *b, unsigned plen);
bool addr_is_zero(const uint8_t *a, unsigned nbytes);
void addr_mask(uint8_t out[16], const uint8_t *a, unsigned plen, unsigned nbytes);
static inline uint32_t v4_get(const uint8_t *a)
{
    return ((uint32_t)a[0] << 24) | ((uint32_t)a[1] << 16) | ((uint32_t)a[2] << 8) | (uint32_t)a[3];
}
static inline void v4_put(uint8_t *a, uint32_t v)
{
    a[0] = (uint8_t)(v >> 24); a[1] = (uint8_t)(v >> 16); a[2] = (uint8_t)(v >> 8); a[3] = (uint8_t)v;
}

/* links */
pr_link *pr_link_by_index(pr_policy *p, uint32_t ifindex);
const pr_link *pr_link_by_index_c(const pr_policy *p, uint32_t ifindex);
const pr_link *pr_link_by_name_c(const pr_policy *p, const char *name);
bool pr_link_carrier(const pr_policy *p, const pr_link *l);
/* Effective per-device sysctl: the kernel's IN_DEV_ORCONF / MAXCONF. */
int pr_conf_forwarding(const pr_policy *p, const pr_link *l);
int pr_conf_route_localnet(const pr_policy *p, const pr_link *l);
int pr_conf_rp_filter(const pr_policy *p, const pr_link *l);
int pr_conf_accept_local(const pr_policy *p, const pr_link *l);
int pr_conf_ignore_linkdown(const pr_policy *p, const pr_link *l, uint8_t family);

/* addresses */
bool pr_addr_is_local_v4(const pr_policy *p, uint32_t addr);   /* inet_lookup_ifaddr_rcu != NULL */
/* __ip_dev_find: the device of the newest address, else of a local-table route; 0 if none */
uint32_t pr_ip_dev_find(const pr_policy *p, uint32_t addr);
/* the __ip_dev_find fallback alone: the device of a local-table route covering addr, or 0 */
uint32_t pr_ip_local_route_dev(const pr_policy *p, uint32_t addr);
/* the newest address of that value, or NULL */
const pr_ifaddr *pr_addr_find(const pr_policy *p, uint8_t family, const uint8_t *addr);
uint32_t pr_inet_select_addr(const pr_policy *p, uint32_t ifindex, uint32_t dst, unsigned scope);
/* fib_info_update_nhc_saddr for every nexthop of a new IPv4 route */
void pr_route_cache_saddr(const pr_policy *p, pr_route *r);

/* tables and routes (routes.c) */
/* Writable table (copied first when a snapshot shares it): NULL when it does
 * not exist or on ENOMEM (then *oom is set when oom is not NULL). */
pr_table *pr_table_get(pr_family *f, uint32_t id);
pr_table *pr_table_get_oom(pr_family *f, uint32_t id, int *oom);
const pr_table *pr_table_get_c(const pr_family *f, uint32_t id);
pr_table *pr_table_new(pr_family *f, uint32_t id);  /* get or create, writable; NULL on ENOMEM */
/* Position of table id in f->tables, or -1. */
int32_t pr_table_pos(const pr_family *f, uint32_t id);
/* The slot of table id, made when missing: >= 0, or -1 on ENOMEM. */
int32_t pr_table_slot(pr_family *f, uint32_t id);
/* The table a rule points at (its slot, else a search by id), NULL if none. */
const pr_table *pr_rule_table(const pr_family *f, const pr_rule *r);
/* Drop one reference (frees the table with the last). */
void pr_table_unref(pr_table *t);
/* Make every table and the rules of both families writable (copies what
 * snapshots share): 0 or -ENOMEM (nothing changed meaning-wise). */
int pr_policy_own(pr_policy *p);
/* The rules/index of f writable: 0 or -ENOMEM. */
int pr_rules_own(pr_family *f);
void pr_rshare_unref(pr_rshare *s);
int pr_rindex_clone(pr_rindex *dst, const pr_rindex *src);
int pr_route_insert(pr_policy *p, const pr_route *nr, int nlflags);
int pr_route_delete_req(pr_policy *p, const pr_route_req *req);
void pr_route_free_contents(pr_route *r);
/* Remove nexthop k of a multipath route (an IPv6 sibling going away). */
void pr_route_drop_leg(pr_route *r, uint32_t k);
int pr_route_copy(pr_route *dst, const pr_route *src);
void pr_family_free(pr_family *f);
int pr_family_clone(pr_family *dst, const pr_family *src);
/* dst shares src's tables and rules (src then treats them as shared too). */
int pr_family_share(pr_family *dst, pr_family *src);
/* Apply fn to every route of a family; fn returns 1 to delete the route. */
typedef int (*pr_route_edit_fn)(pr_policy *p, pr_route *r, void *ctx);
void pr_routes_edit(pr_policy *p, uint8_t family, pr_route_edit_fn fn, void *ctx);
/* Kernel-created route (fib_magic): add with CREATE|APPEND, ignore EEXIST. */
void pr_route_magic(pr_policy *p, int add, uint8_t family, uint8_t type, uint32_t table,
                    const uint8_t *dst, unsigned dst_len, const uint8_t *prefsrc,
                    uint32_t ifindex, uint32_t metric);

/* One table lookup result (fib_result). */
typedef struct pr_fib_res {
    const pr_route *route;
    const pr_rlist *slot;     /* all routes of the matched prefix (tb_num_default for /0) */
    uint32_t nh_index;        /* chosen nexthop (first usable) */
    uint32_t table;
    uint8_t prefixlen;
    uint8_t type;
    uint8_t scope;
    uint8_t hash_dependent;   /* a rule's suppress_ifgroup decision depended on the multipath leg */
} pr_fib_res;

/* Lookup inside one IPv4 table: 0 found, -EAGAIN miss/throw, or -error of the route type. */
typedef struct pr_flow4 {
    uint32_t daddr, saddr;
    uint32_t iif, oif, mark, uid;
    uint8_t tos, proto, scope, ignore_linkstate;
    uint16_t sport, dport;
} pr_flow4;
int pr_fib4_table_lookup(const pr_policy *p, const pr_table *t, const pr_flow4 *fl, pr_fib_res *res);
/* compile.c: a table's trie changed, its compiled copy is stale */
void pr_table_lpm_drop(pr_table *t);
int pr_fib4_merged_lookup(const pr_policy *p, const pr_flow4 *fl, pr_fib_res *res);
/* fib_table_lookup on the local table (main's trie while merged); -EAGAIN also when it does not exist */
int pr_fib4_local_lookup(const pr_policy *p, const pr_flow4 *fl, pr_fib_res *res);

/* policy.c: p may change now (a new process-wide unique generation) */
void pr_policy_touch(pr_policy *p);

/* fast4.c's views of the exact path (routes.c, rules.c, lookup.c, bulk.c) */
int pr_fib4_try_slot(const pr_policy *p, const pr_table *t, uint32_t slot, unsigned plen, const pr_flow4 *fl,
                     pr_fib_res *res);
enum { PR_RULE4_NEVER = 0, PR_RULE4_LOOKUP = 1, PR_RULE4_COMPLEX = 2 };
int pr_rule4_fast_kind(const pr_family *f, size_t i);
uint32_t pr_result_prefsrc4(const pr_policy *p, const pr_route *r, uint32_t k);
void pr_bulk4_flow_init(pr_flow *q);
void pr_bulk4_row(const pr_policy *p, const pr_bulk_in *in, pr_bulk_out *out, size_t i, pr_flow *q,
                  pr_result *res);

/* The rule walk (rules.c). */
typedef struct pr_flow6 {
    uint8_t daddr[16], saddr[16];
    uint8_t has_saddr, tclass, proto, strict_oif;
    uint32_t iif, oif, mark, uid;
    uint32_t score_oif;       /* device routes are scored against (the iif on the input path) */
    uint16_t sport, dport;
} pr_flow6;
int pr_fib4_lookup(const pr_policy *p, const pr_flow4 *fl, pr_fib_res *res, pr_trace *tr, int32_t *rule_index);
int pr_fib6_lookup(const pr_policy *p, const pr_flow6 *fl, pr_fib_res *res, pr_trace *tr, int32_t *rule_index);
/* fib6_lookup as nexthop validation uses it: a found route ends the walk, reject ones too */
int pr_fib6_lookup_alt(const pr_policy *p, const pr_flow6 *fl, pr_fib_res *res);
int pr_fib6_table_lookup(const pr_policy *p, const pr_table *t, const pr_flow6 *fl, pr_fib_res *res);
void pr_rules_init_defaults(pr_policy *p);
/* While true on a thread, its rule walks scan the list instead of asking the index. */
extern _Thread_local bool pr_rules_force_linear;
extern atomic_uint pr_linear_users;   /* threads with pr_rules_force_linear set */
void pr_rules_rebind(pr_policy *p);   /* after link add/del/rename */
void pr_trace_push(pr_trace *tr, int32_t idx, uint32_t prio, uint32_t table, uint8_t kind, int32_t err, uint8_t mlen);

/* nexthop objects (nexthop.c) */
const pr_nhobj *pr_nhobj_find(const pr_policy *p, uint32_t id);
/* the object's nexthops onto r (RTA_NH_ID routes): 0 or -ENOMEM */
int pr_nhobj_materialize(const pr_policy *p, const pr_nhobj *o, pr_route *r);
/* nexthop_flush_dev: the device went down (down=1), lost its carrier (down=1)
 * or is unregistered (down=0) */
void pr_nexthop_flush_dev(pr_policy *p, uint32_t ifindex, int down);
void pr_nhobjs_free(pr_policy *p);
int pr_nhobjs_clone(pr_policy *dst, const pr_policy *src);
/* fib_check_nexthop / fib6_check_nexthop for a route of family, scope */
/* rt6_get_pcpu_route: whether an IPv6 answer through leg of r could report
 * another route's table/metric/protocol/pref/prefsrc (the rt6_info cached on
 * the object's fib6_nh is shared by every IPv6 route through it) */
bool pr_nhobj_v6_cache_ambiguous(const pr_policy *p, const pr_route *r, uint32_t leg);
/* whether another IPv4 route through leg's object covers multicast
 * destinations at /4 or longer: the rtable such a lookup caches on the
 * shared nexthop (type multicast) is what later unicast lookups get */
bool pr_nhobj_v4_mc_shared(const pr_policy *p, const pr_route *r, uint32_t leg);
int pr_nhobj_check_route(pr_policy *p, const pr_nhobj *o, uint8_t family, unsigned scope);
int pr_check_nh4(pr_policy *p, pr_nh *nh, uint32_t table, unsigned scope);
int pr_check_nh6(pr_policy *p, pr_nh *nh, uint32_t table);

/* derived-route maintenance (policy.c) */
void pr_sync_link_down(pr_policy *p, uint32_t ifindex);
void pr_sync_link_up(pr_policy *p, uint32_t ifindex);
void pr_sync_carrier(pr_policy *p, uint32_t ifindex);

#endif
