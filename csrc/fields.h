/*
 * fields.h - the rule and route field tables (internal side; the public
 * accessors are in polroute.h).  See fields.c.
 */
#ifndef POLROUTE_FIELDS_H
#define POLROUTE_FIELDS_H

#include <stdatomic.h>
#include <stdint.h>

#include "polroute.h"

/* Row ids of the rule table, in pr_rule_req order.  A new selector gets a
 * row here and in fields.c; the rule index keys it only once rule_index.c
 * lists it (until then rules carrying it take the linear path). */
enum pr_rule_field_id {
    PR_RF_FAMILY,
    PR_RF_TOS,
    PR_RF_ACTION,
    PR_RF_PROTOCOL,
    PR_RF_IPPROTO,
    PR_RF_L3MDEV,
    PR_RF_DSCP,
    PR_RF_DSCP_MASK,
    PR_RF_SPORT,
    PR_RF_DPORT,
    PR_RF_SPORT_MASK,
    PR_RF_DPORT_MASK,
    PR_RF_TABLE,
    PR_RF_NOT,
    PR_RF_PRESENT,
    PR_RF_PRIORITY,
    PR_RF_GOTO,
    PR_RF_FWMARK,
    PR_RF_FWMASK,
    PR_RF_REALMS,
    PR_RF_SUPPRESS_PREFIXLEN,
    PR_RF_SUPPRESS_IFGROUP,
    PR_RF_UIDRANGE,
    PR_RF_FLOWLABEL,
    PR_RF_FLOWLABEL_MASK,
    PR_RF_TUN_ID,
    PR_RF_FROM,
    PR_RF_TO,
    PR_RF_IIF,
    PR_RF_OIF,
    PR_RF_COUNT
};

/* Row ids of the route table, in pr_route_req order. */
enum pr_route_field_id {
    PR_TF_FAMILY,
    PR_TF_TOS,
    PR_TF_PROTOCOL,
    PR_TF_SCOPE,
    PR_TF_TYPE,
    PR_TF_VIA,
    PR_TF_PREF,
    PR_TF_TABLE,
    PR_TF_ONLINK,
    PR_TF_PRESENT,
    PR_TF_METRIC,
    PR_TF_DEV,
    PR_TF_NHID,
    PR_TF_REALMS,
    PR_TF_NEXTHOP,
    PR_TF_METRICS,
    PR_TF_TO,
    PR_TF_SRC,
    PR_TF_GATEWAY,
    PR_TF_COUNT
};

#define PR_RF_BIT(id) (UINT64_C(1) << (id))

/* The rows themselves (index_key not filled: rule_index.c owns it). */
extern const pr_field_info pr_rule_fields[PR_RF_COUNT];
extern const pr_field_info pr_route_fields[PR_TF_COUNT];

/* A table's attribute rows (nla_type >= 0) in wire order -- ascending
 * nla_type, the order the encoders write them in (netlink.c) -- the row of
 * each attribute type (the dump decoder, nl_dump.c; and the encoders, a
 * row's present bit being its type), and the rows the family header holds.
 * Types are < 32: the present words have a bit per type
 * (tests/c/test_fields.c checks both). */
enum { PR_FIELD_TYPES = 32, PR_FIELD_ROWS_MAX = 64 };
typedef struct pr_field_wire {
    uint8_t count;                          /* attribute rows */
    uint8_t order[PR_FIELD_ROWS_MAX];       /* their row ids, by ascending nla_type */
    int8_t row_of_type[PR_FIELD_TYPES];     /* -1: no row has that type */
    uint32_t bits;                          /* the present bits attribute rows have */
    uint8_t nhdr;                           /* rows with a header slot (pr_*_hdr_slots) */
    uint8_t hdr[PR_FIELD_ROWS_MAX];
} pr_field_wire;

/* Built on first use, once (any thread, any time; then constant). */
const pr_field_wire *pr_rule_wire(void);
const pr_field_wire *pr_route_wire(void);

/* call_once without a thread library: the first caller of a `state`
 * (zero-initialised) runs build, later ones wait until it has returned. */
void pr_field_once(atomic_int *state, void (*build)(void));

/* Where a row lives in the family header, fib_rule_hdr / struct rtmsg (the
 * uapi layout, which the rows do not hold): `at` its value (1 + offset, 0 =
 * not there; as wide as the row's field, but an ALSO_HEADER twin is one
 * byte: the id, or RT_TABLE_UNSPEC above 255), `aux_at` its aux byte (an
 * address's prefix length).  Bytes no row names are 0 in requests
 * (res1/res2, rtm_src_len). */
typedef struct pr_hdr_slot {
    uint8_t at, aux_at;
} pr_hdr_slot;
extern const pr_hdr_slot pr_rule_hdr_slots[PR_RF_COUNT];
extern const pr_hdr_slot pr_route_hdr_slots[PR_TF_COUNT];

/* Where a route attribute row lands in a dumped route: pr_dump_route is a
 * record of its own, not a pr_route_req (it keeps what dumps carry and no
 * request does: rtm_src_len, the 8-bit rtm_table, RTA_IIF / MARK / EXPIRES
 * ..., legs and metrics in the handle's arrays).  `at`: 1 + the offset of
 * a field as wide as the row's (0: not decoded into the record -- the
 * structured kinds, decoded by nl_dump.c's handlers); `fam_at`: 1 + the
 * offset where an address row's family goes (a gateway), 0 = nowhere. */
typedef struct pr_dump_slot {
    uint16_t at, fam_at;
} pr_dump_slot;
extern const pr_dump_slot pr_route_dump_slots[PR_TF_COUNT];

/* A rule without any attribute: what fib_nl2rule defaults to (no uid range
 * = 0-4294967295, suppress_* -1), as the model and dumps store it. */
extern const pr_rule_req pr_rule_neutral;

/* Bit PR_RF_x for every selector row r carries: its present bit is set, or
 * its bytes differ from those of a rule without it (uidrange 0-4294967295,
 * no flag bit for a PR_FK_FLAG row).  Rows of other roles are never set. */
uint64_t pr_rule_selectors(const pr_rule_req *r);

#endif
