/*
 * rule_index.h - tuple-space index over a family's rule list (internal).
 * See rule_index.c for the design.
 */
#ifndef POLROUTE_RULE_INDEX_H
#define POLROUTE_RULE_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core.h"

/* The flow fields the index keys on. */
typedef struct pr_rflow {
    uint8_t family;
    bool has_saddr;
    const uint8_t *saddr, *daddr;
    uint32_t saddr4, daddr4;  /* IPv4: host order */
    uint32_t iif, oif, mark;
    uint16_t dport;
    uint8_t tos;
} pr_rflow;

/* Whether the index can answer for this rule by exact match (else it is
 * "complex" and listed for the full matcher). */
bool pr_rindex_is_simple(const pr_rule_req *r);
/* How the index keys rule field row `row` (enum pr_index_key; PR_IK_NONE:
 * it cannot, so rules carrying that selector take the linear path). */
uint8_t pr_rindex_key_kind(size_t row);
int pr_rindex_add(pr_rindex *ix, const pr_rule *rule);          /* 0 or -1 (ENOMEM) */
void pr_rindex_del(pr_rindex *ix, const pr_rule *rule);
int pr_rindex_rebuild(pr_rindex *ix, const pr_rule *rules, size_t n);
void pr_rindex_free(pr_rindex *ix);
/* Smallest order key >= from among the simple rules matching fl, or UINT64_MAX. */
uint64_t pr_rindex_first_simple(const pr_rindex *ix, const pr_rflow *fl, uint64_t from);

/* Position in the rule list of the rule with this order key (which exists):
 * a lower bound in a dense key array instead of the 184-byte rules. */
size_t pr_rindex_position(const pr_rindex *ix, uint64_t okey);

#endif
