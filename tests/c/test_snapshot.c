/* test_snapshot.c - copy-on-write snapshots (pr_policy_snapshot) are isolated.
 *
 * A writer makes random edits (tenant rules and routes, route deletes in
 * shared tables, link state, addresses, sysctls) and takes a snapshot every
 * few edits, together with a deep copy (pr_policy_clone) as the reference.
 * Every snapshot must keep answering exactly as its reference while the
 * writer goes on editing, and as the writer itself did at that moment.
 * Snapshots are freed in random order (some before the writer, some after):
 * under ASan this checks the reference counts (no leak, no use after free).
 * A threaded part has readers query published snapshots while the writer
 * edits and publishes through an atomic pointer. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "polroute.h"
#include "testutil.h"

static void put4(uint8_t *b, uint32_t a)
{
    memset(b, 0, 16);
    b[0] = (uint8_t)(a >> 24);
    b[1] = (uint8_t)(a >> 16);
    b[2] = (uint8_t)(a >> 8);
    b[3] = (uint8_t)a;
}

#define NTABLES 40u
static uint32_t pool_addr(uint64_t *st) { return 0x0A000000u | ((uint32_t)(rnd_r(st) % 4) << 16) | ((uint32_t)(rnd_r(st) % 8) << 8) | (uint32_t)(rnd_r(st) % 8); }

static void rule_edit(pr_policy *p, int del)
{
    pr_rule_req q;
    memset(&q, 0, sizeof(q));
    q.family = PR_AF_INET;
    q.action = PR_FR_ACT_TO_TBL;
    q.table = 100 + below(NTABLES);
    q.priority = 1000 + below(200);
    q.present = 1u << PR_FRA_PRIORITY;
    q.src_len = (uint8_t)(below(2) ? 32 : 24);
    put4(q.src, pool_addr(&rng_state));
    q.present |= 1u << PR_FRA_SRC;
    (void)pr_rule_request(p, del ? PR_RTM_DELRULE : PR_RTM_NEWRULE, del ? 0 : PR_NLM_F_CREATE, &q);
}

static void route_edit(pr_policy *p, int del)
{
    pr_route_req r;
    memset(&r, 0, sizeof(r));
    r.family = PR_AF_INET;
    r.protocol = 3;
    r.type = below(8) ? PR_RTN_UNICAST : PR_RTN_UNREACHABLE;
    r.table = below(4) ? 100 + below(NTABLES) : 254;
    r.dst_len = (uint8_t)(below(3) ? 0 : 16 + 8 * below(2));
    put4(r.dst, pool_addr(&rng_state));
    if (r.type == PR_RTN_UNICAST) {
        r.present = 1u << PR_RTA_OIF;
        r.oif = 2 + below(2);
        if (below(2)) {
            r.gw_family = PR_AF_INET;
            put4(r.gw, 0x0A000000u | (r.oif == 2 ? 0x000001FEu : 0x000102FEu));
            r.present |= 1u << PR_RTA_GATEWAY;
        } else {
            r.scope = 253;
        }
    }
    (void)pr_route_request(p, del ? PR_RTM_DELROUTE : PR_RTM_NEWROUTE,
                           del ? 0 : PR_NLM_F_CREATE | PR_NLM_F_APPEND, &r);
}

static void addr_edit(pr_policy *p, uint32_t ifindex, uint32_t a, int del)
{
    pr_addr_req q;
    memset(&q, 0, sizeof(q));
    q.family = PR_AF_INET;
    q.prefixlen = 24;
    q.ifindex = ifindex;
    put4(q.local, a);
    (void)pr_addr_request(p, del ? PR_RTM_DELADDR : PR_RTM_NEWADDR, &q);
}

static void random_edit(pr_policy *p)
{
    uint32_t k = below(100);
    if (k < 35)
        rule_edit(p, 0);
    else if (k < 45)
        rule_edit(p, 1);
    else if (k < 80)
        route_edit(p, 0);
    else if (k < 92)
        route_edit(p, 1);
    else if (k < 95)
        (void)pr_link_set_up(p, 3, (int)below(2));
    else if (k < 98)
        addr_edit(p, 3, 0x0A000101u + below(3), (int)below(2));
    else
        (void)pr_sysctl_set(p, "net.ipv4.conf.all.rp_filter", below(3));
}

static void random_flow(uint64_t *st, pr_flow *q)
{
    memset(q, 0, sizeof(*q));
    q->family = PR_AF_INET;
    q->lookup_table = 1;
    put4(q->dst, rnd_r(st) % 4 ? pool_addr(st) : (uint32_t)rnd_r(st));
    if (rnd_r(st) % 4) {
        q->has_src = 1;
        put4(q->src, pool_addr(st));
    }
    if (rnd_r(st) % 6 == 0) {
        q->iif = 2;
        q->has_src = 1;
        put4(q->src, pool_addr(st));
    }
}

static int same_answer(const pr_result *a, const pr_result *b)
{
    if (a->error != b->error || a->type != b->type || a->table != b->table || a->rule_index != b->rule_index ||
        a->matched_len != b->matched_len || a->nh_count != b->nh_count || a->metric != b->metric ||
        memcmp(a->prefsrc, b->prefsrc, 16) != 0 || a->has_prefsrc != b->has_prefsrc ||
        a->not_modelled != b->not_modelled)
        return 0;
    for (uint32_t i = 0; i < a->nh_count && i < 32; i++)
        if (a->nh[i].oif != b->nh[i].oif || a->nh[i].gw_family != b->nh[i].gw_family ||
            memcmp(a->nh[i].gw, b->nh[i].gw, 16) != 0)
            return 0;
    return 1;
}

/* Answers of p and ref to the same nflows flows (seeded): differences. */
static int compare(const pr_policy *p, const pr_policy *ref, uint64_t seed, size_t nflows)
{
    int bad = 0;
    uint64_t st = seed;
    for (size_t i = 0; i < nflows; i++) {
        pr_flow q;
        random_flow(&st, &q);
        pr_result a, b;
        memset(&a, 0, sizeof(a));
        memset(&b, 0, sizeof(b));
        pr_route_get(p, &q, &a, NULL);
        pr_route_get(ref, &q, &b, NULL);
        if (!same_answer(&a, &b))
            bad++;
    }
    /* the rule lists and the route dumps are equal too */
    if (pr_rule_count(p, PR_AF_INET) != pr_rule_count(ref, PR_AF_INET))
        bad++;
    return bad;
}

static size_t route_dump_count(const pr_policy *p)
{
    pr_policy *c = pr_policy_clone(p);   /* pr_route_dump writes its policy's dump buffer */
    size_t n = c ? pr_route_dump(c, PR_AF_INET, 0) : 0;
    pr_policy_free(c);
    return n;
}

static pr_policy *base_policy(void)
{
    pr_policy *p = pr_policy_new();
    int a = pr_link_add_veth(p, "eth0", "peer0");   /* peer0 = 2, eth0 = 3 */
    (void)a;
    pr_link_set_up(p, 1, 1);
    pr_link_set_up(p, 2, 1);
    pr_link_set_up(p, 3, 1);
    addr_edit(p, 2, 0x0A000001u, 0);
    addr_edit(p, 3, 0x0A000101u, 0);
    for (int i = 0; i < 200; i++)
        route_edit(p, 0);
    for (int i = 0; i < 100; i++)
        rule_edit(p, 0);
    return p;
}

/* fast4 (the specialised evaluator) built on a snapshot answers every column
 * as the exact bulk path; freed before the snapshot. */
#define FAST4_FLOWS 2000
static size_t fast4_rows, fast4_total;
static int fast4_check(const pr_policy *snap, uint64_t seed)
{
    static uint32_t dst[FAST4_FLOWS], src[FAST4_FLOWS];
    static int32_t e1[FAST4_FLOWS], e2[FAST4_FLOWS];
    static uint8_t t1[FAST4_FLOWS], t2[FAST4_FLOWS];
    static uint32_t c1[6][FAST4_FLOWS], c2[6][FAST4_FLOWS];
    uint64_t st = seed;
    for (size_t i = 0; i < FAST4_FLOWS; i++) {
        dst[i] = rnd_r(&st) % 4 ? pool_addr(&st) : (uint32_t)rnd_r(&st);
        uint64_t k = rnd_r(&st) % 8;
        src[i] = k < 5 ? pool_addr(&st) : k == 5 ? 0 : k == 6 ? 0x0A000001u : (uint32_t)rnd_r(&st);
    }
    pr_fast4 *f = NULL;
    if (pr_fast4_build(snap, &f) != 0)
        return 1;
    pr_bulk_in in;
    memset(&in, 0, sizeof(in));
    in.dst = dst;
    in.src = src;
    pr_bulk_out o1 = {e1, t1, c1[0], c1[1], c1[2], c1[3], c1[4], c1[5]};
    pr_bulk_out o2 = {e2, t2, c2[0], c2[1], c2[2], c2[3], c2[4], c2[5]};
    size_t slow = 0;
    int bad = pr_fast4_lookup_bulk(f, FAST4_FLOWS, &in, &o1, &slow) != 0;
    bad += pr_lookup_bulk_v4(snap, FAST4_FLOWS, &in, &o2) != 0;
    bad += memcmp(e1, e2, sizeof(e1)) != 0 || memcmp(t1, t2, sizeof(t1)) != 0 || memcmp(c1, c2, sizeof(c1)) != 0;
    fast4_rows += FAST4_FLOWS - slow;
    fast4_total += FAST4_FLOWS;
    pr_fast4_free(f);
    return bad;
}

#define NSNAP 24

static int isolation_round(uint64_t seed)
{
    rng_state = seed;
    pr_policy *w = base_policy();
    pr_policy *snap[NSNAP], *ref[NSNAP];
    size_t ndump[NSNAP];
    int bad = 0;
    for (int s = 0; s < NSNAP; s++) {
        snap[s] = pr_policy_snapshot(w);
        ref[s] = pr_policy_clone(w);
        if (!snap[s] || !ref[s]) {
            fprintf(stderr, "ENOMEM\n");
            return 1;
        }
        ndump[s] = route_dump_count(w);
        bad += compare(snap[s], w, seed + (uint64_t)s, 300);   /* equal to the writer now */
        bad += fast4_check(snap[s], seed + (uint64_t)s);
        int nedits = 1 + (int)below(12);
        for (int e = 0; e < nedits; e++)
            random_edit(w);
        /* every live snapshot still answers as when it was taken */
        for (int t = 0; t <= s; t++) {
            if (!snap[t])
                continue;
            bad += compare(snap[t], ref[t], seed * 31u + (uint64_t)t, 100);
            if (route_dump_count(snap[t]) != ndump[t])
                bad++;
        }
        /* drop a random older snapshot now and then */
        if (s > 2 && below(3) == 0) {
            uint32_t t = below((uint32_t)s);
            pr_policy_free(snap[t]);
            pr_policy_free(ref[t]);
            snap[t] = ref[t] = NULL;
        }
        /* compiled copies are shared; compiling a snapshot changes no answer */
        if (below(4) == 0 && snap[s])
            pr_policy_compile(snap[s], 1);
    }
    /* the writer goes first for half the snapshots: they outlive it */
    for (int s = 0; s < NSNAP / 2; s++) {
        pr_policy_free(snap[s]);
        pr_policy_free(ref[s]);
    }
    pr_policy_free(w);
    for (int s = NSNAP / 2; s < NSNAP; s++) {
        if (snap[s])
            bad += compare(snap[s], ref[s], seed + 7u, 100);
        pr_policy_free(snap[s]);
        pr_policy_free(ref[s]);
    }
    return bad;
}

/* ---- threads: readers on published snapshots while the writer publishes */

typedef struct published {
    pr_policy *snap, *ref;
} published;

#define NPUB 64
static published pubs[NPUB];
static _Atomic(published *) current;
static atomic_int done;
static atomic_int thread_bad;

static void *reader(void *arg)
{
    uint64_t st = (uint64_t)(uintptr_t)arg;
    long checks = 0;
    while (!atomic_load_explicit(&done, memory_order_acquire) || checks < 50) {
        /* acquire pairs with the writer's release store: the snapshot is seen whole */
        published *pb = atomic_load_explicit(&current, memory_order_acquire);
        pr_flow q;
        random_flow(&st, &q);
        pr_result a, b;
        memset(&a, 0, sizeof(a));
        memset(&b, 0, sizeof(b));
        pr_route_get(pb->snap, &q, &a, NULL);
        pr_route_get(pb->ref, &q, &b, NULL);
        if (!same_answer(&a, &b))
            atomic_fetch_add(&thread_bad, 1);
        checks++;
    }
    return NULL;
}

static int threaded_round(uint64_t seed)
{
    rng_state = seed;
    pr_policy *w = base_policy();
    pubs[0].snap = pr_policy_snapshot(w);
    pubs[0].ref = pr_policy_clone(w);
    atomic_store_explicit(&current, &pubs[0], memory_order_release);
    atomic_store(&done, 0);
    pthread_t th[3];
    for (uintptr_t i = 0; i < 3; i++)
        pthread_create(&th[i], NULL, reader, (void *)(seed + i + 1));
    for (int s = 1; s < NPUB; s++) {
        for (int e = 0; e < 4; e++)
            random_edit(w);
        pubs[s].snap = pr_policy_snapshot(w);
        pubs[s].ref = pr_policy_clone(w);
        atomic_store_explicit(&current, &pubs[s], memory_order_release);
    }
    atomic_store_explicit(&done, 1, memory_order_release);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    pr_policy_free(w);
    for (int s = 0; s < NPUB; s++) {
        pr_policy_free(pubs[s].snap);
        pr_policy_free(pubs[s].ref);
    }
    return atomic_load(&thread_bad);
}

int main(int argc, char **argv)
{
    /* rounds use seeds derived from the base one (0: the historical seeds) */
    uint64_t base = tu_seed("test_snapshot", argc, argv, 0);
    for (uint64_t k = 1; k <= 12; k++) {
        uint64_t seed = (base + k) * 1000003u;
        int bad = isolation_round(seed);
        CHECK_MSG(bad == 0, "isolation round %" PRIu64 " (seed %" PRIu64 "): %d differences", k, seed, bad);
    }
    printf("isolation: fast4 answered %zu of %zu rows itself\n", fast4_rows, fast4_total);
    CHECK(fast4_rows >= fast4_total / 10);   /* the comparison must not be vacuous */
    int tb = threaded_round(base + 77);
    printf("threaded: %d differences\n", tb);
    CHECK_EQ(tb, 0);
    return tu_summary("test_snapshot");
}
