/* test_build_order.c - the model built in any order equals the brute-force
 * reference (provisioning issue, item 8).
 *
 * The build is O(N log N): rules name their table by a stable handle
 * (pr_table_slot) instead of a list position; the rule list, the index's key
 * list and the table list take insertions at both ends in O(1)
 * (pr_gap_insert); the duplicate check visits one priority's run.  Each fast
 * path is checked against its reference on random request sequences (rules
 * and tables created in ascending, descending, random order, rules with and
 * without priorities, before and after their tables, deletes, duplicates,
 * snapshots and clones taken midway):
 *  - the rule list equals a plain array kept by linear insertion (after the
 *    last rule of priority <= p; default priority = rule 1's - 1), deletes
 *    removing the first rule of that priority with that table;
 *  - NLM_F_EXCL answers -EEXIST exactly when the reference holds an equal rule;
 *  - every rule's table by handle (pr_rule_table) equals the search by id
 *    (pr_table_get_c), the table list is sorted and each entry's slot points
 *    at it, the index's key list equals the rules' order keys;
 *  - a snapshot or clone keeps answering as it did when it was taken. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "polroute.h"
#include "testutil.h"

typedef struct {
    uint32_t prio, table, src;
} ref_rule;

typedef struct {
    ref_rule *v;
    size_t n, cap;
} ref_list;

static void ref_insert(ref_list *l, ref_rule r)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = realloc(l->v, l->cap * sizeof(ref_rule));
        if (!l->v)
            abort();
    }
    size_t pos = 0;
    while (pos < l->n && l->v[pos].prio <= r.prio)
        pos++;
    memmove(&l->v[pos + 1], &l->v[pos], (l->n - pos) * sizeof(ref_rule));
    l->v[pos] = r;
    l->n++;
}

static void put4(uint8_t *b, uint32_t a)
{
    memset(b, 0, 16);
    b[0] = (uint8_t)(a >> 24);
    b[1] = (uint8_t)(a >> 16);
    b[2] = (uint8_t)(a >> 8);
    b[3] = (uint8_t)a;
}

static uint32_t get4(const uint8_t *b)
{
    return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
}

static int rule_req(pr_policy *p, int type, int flags, int with_prio, uint32_t prio, uint32_t table, uint32_t src)
{
    pr_rule_req q;
    memset(&q, 0, sizeof(q));
    q.family = PR_AF_INET;
    q.action = PR_FR_ACT_TO_TBL;
    q.table = table;
    q.priority = prio;
    q.present = 1u << PR_FRA_TABLE;
    if (with_prio)
        q.present |= 1u << PR_FRA_PRIORITY;
    if (src) {
        q.src_len = 32;
        put4(q.src, src);
        q.present |= 1u << PR_FRA_SRC;
    }
    return pr_rule_request(p, type, flags, &q);
}

static int route_req(pr_policy *p, uint32_t table, uint32_t gw)
{
    pr_route_req r;
    memset(&r, 0, sizeof(r));
    r.family = PR_AF_INET;
    r.protocol = 3;
    r.type = PR_RTN_UNICAST;
    r.table = table;
    r.present = (1u << PR_RTA_OIF) | (1u << PR_RTA_GATEWAY) | (1u << PR_RTA_TABLE);
    r.oif = 2;
    r.gw_family = PR_AF_INET;
    put4(r.gw, gw);
    return pr_route_request(p, PR_RTM_NEWROUTE, PR_NLM_F_CREATE | PR_NLM_F_EXCL, &r);
}

/* The internal structures against their brute-force definitions. */
static void check_family(const pr_family *f)
{
    for (size_t i = 1; i < f->ntables; i++)
        CHECK(f->tables[i - 1].id < f->tables[i].id);
    for (size_t i = 0; i < f->ntables; i++) {
        CHECK(f->tables[i].slot < f->ntslots);
        CHECK(f->tslots[f->tables[i].slot] == f->tables[i].t);
        CHECK(f->tables[i].t->id == f->tables[i].id);
    }
    CHECK_EQ(f->index.nall, f->nrules);
    for (size_t i = 0; i < f->nrules; i++) {
        const pr_rule *r = &f->rules[i];
        if (i)
            CHECK(f->rules[i - 1].okey < r->okey);
        CHECK(f->index.all[i] == r->okey);
        CHECK((uint32_t)(r->okey >> 32) == r->r.priority);
        if (r->r.action == PR_FR_ACT_TO_TBL)
            CHECK_MSG(pr_rule_table(f, r) == pr_table_get_c(f, r->r.table), "rule %zu table %u", i, r->r.table);
    }
}

/* The public rule list against the reference (priority, table, source). */
static void check_list(const pr_policy *p, const ref_list *l)
{
    CHECK_EQ(pr_rule_count(p, PR_AF_INET), l->n);
    if (pr_rule_count(p, PR_AF_INET) != l->n)
        return;
    for (size_t i = 0; i < l->n; i++) {
        pr_rule_info ri;
        CHECK_EQ(pr_rule_get(p, PR_AF_INET, i, &ri), 0);
        uint32_t src = ri.r.src_len ? get4(ri.r.src) : 0;
        CHECK_MSG(ri.r.priority == l->v[i].prio && ri.r.table == l->v[i].table && src == l->v[i].src,
                  "rule %zu: %u/%u/%08x, reference %u/%u/%08x", i, ri.r.priority, ri.r.table, src, l->v[i].prio,
                  l->v[i].table, l->v[i].src);
    }
}

/* A flow from each tenant source reaches the table its first rule names, if
 * that table exists (the walk reads tables through the handles). */
static void check_walk(pr_policy *p, const ref_list *l)
{
    for (int k = 0; k < 20 && l->n > 3; k++) {
        const ref_rule *r = &l->v[below((uint32_t)l->n)];
        if (!r->src)
            continue;
        size_t first = 0;
        while (l->v[first].src != r->src && l->v[first].src != 0)
            first++;
        pr_flow q;
        memset(&q, 0, sizeof(q));
        q.family = PR_AF_INET;
        put4(q.dst, 0x08080808u);
        put4(q.src, r->src);
        q.iif = 0;
        pr_result res;
        int rc = pr_route_get(p, &q, &res, NULL);
        if (l->v[first].src == 0)
            continue;   /* a catch-all (the local table) decides first */
        int has = pr_table_get_c(&p->v4, l->v[first].table) != NULL;
        if (has)
            CHECK_MSG(rc == 0 && res.table == l->v[first].table, "src %08x: rc %d table %u, expected %u", r->src,
                      rc, res.table, l->v[first].table);
    }
}

int main(int argc, char **argv)
{
    tu_seed("test_build_order", argc, argv, 20261127u);
    for (int round = 0; round < 24; round++) {
        int order = round % 4;   /* 0 ascending, 1 descending, 2 random, 3 no priorities */
        uint32_t n = round < 20 ? 50 + below(400) : 3000 + below(3000);
        pr_policy *p = pr_policy_new();
        int up0 = pr_link_add(p, "up0", PR_LINK_OTHER, 0);
        pr_link_set_up(p, 1, 1);
        pr_link_set_up(p, (uint32_t)up0, 1);
        pr_addr_req ar;
        memset(&ar, 0, sizeof(ar));
        ar.family = PR_AF_INET;
        ar.prefixlen = 16;
        ar.ifindex = (uint32_t)up0;
        put4(ar.local, 0x0A0A0002u);
        CHECK_EQ(pr_addr_request(p, PR_RTM_NEWADDR, &ar), 0);
        for (uint32_t i = 0; i < 64; i++) {   /* tenant sources must be local to be used as `from` */
            put4(ar.local, 0x0A100000u + i);
            ar.prefixlen = 32;
            CHECK_EQ(pr_addr_request(p, PR_RTM_NEWADDR, &ar), 0);
        }
        ref_list ref = {0};
        ref_insert(&ref, (ref_rule){0, 255, 0});
        ref_insert(&ref, (ref_rule){32766, 254, 0});
        ref_insert(&ref, (ref_rule){32767, 253, 0});
        pr_policy *snap = NULL, *clone = NULL;
        ref_list snapref = {0};
        for (uint32_t k = 0; k < n; k++) {
            uint32_t i = order == 1 ? n - 1 - k : order == 2 ? below(n) : k;
            uint32_t prio = 1 + i * 7 / 3;   /* some priorities shared */
            uint32_t table = 1000 + (below(4) ? i : below(n));
            uint32_t src = 0x0A100000u + below(64);
            int route_first = (int)below(2);
            if (route_first && !pr_table_get_c(&p->v4, table))
                CHECK_EQ(route_req(p, table, 0x0A0A0001u), 0);
            int with_prio = order != 3 || !below(4);
            if (!with_prio) {
                /* default priority: rule 1's minus one (0 when it is 0) */
                prio = ref.n >= 2 && ref.v[1].prio ? ref.v[1].prio - 1 : 0;
            }
            int dup = 0;
            for (size_t j = 0; j < ref.n; j++)
                dup |= ref.v[j].prio == prio && ref.v[j].table == table && ref.v[j].src == src;
            int rc = rule_req(p, PR_RTM_NEWRULE, PR_NLM_F_CREATE | PR_NLM_F_EXCL, with_prio, prio, table, src);
            CHECK_EQ(rc, dup ? -17 : 0);
            if (rc == 0)
                ref_insert(&ref, (ref_rule){prio, table, src});
            if (!route_first && !pr_table_get_c(&p->v4, table) && below(3))
                CHECK_EQ(route_req(p, table, 0x0A0A0001u), 0);
            ref_rule d = ref.n > 3 ? ref.v[1 + below((uint32_t)ref.n - 2)] : ref.v[0];
            if (!below(8) && d.table >= 1000) {   /* keep local, main and default */
                /* delete by priority and table: the first such rule goes */
                size_t first = 0;
                while (!(ref.v[first].prio == d.prio && ref.v[first].table == d.table))
                    first++;
                CHECK_EQ(rule_req(p, PR_RTM_DELRULE, 0, 1, d.prio, d.table, 0), 0);
                memmove(&ref.v[first], &ref.v[first + 1], (ref.n - first - 1) * sizeof(ref_rule));
                ref.n--;
            }
            if (k == n / 2) {
                snap = pr_policy_snapshot(p);
                clone = pr_policy_clone(p);
                snapref.v = malloc(ref.n * sizeof(ref_rule));
                memcpy(snapref.v, ref.v, ref.n * sizeof(ref_rule));
                snapref.n = snapref.cap = ref.n;
            }
        }
        check_list(p, &ref);
        check_family(&p->v4);
        check_family(&p->v6);
        check_walk(p, &ref);
        if (snap) {
            check_list(snap, &snapref);
            check_family(&snap->v4);
            check_list(clone, &snapref);
            check_family(&clone->v4);
            check_walk(clone, &snapref);
            pr_policy_free(snap);
            pr_policy_free(clone);
        }
        free(snapref.v);
        free(ref.v);
        pr_policy_free(p);
    }
    return tu_summary("test_build_order");
}
