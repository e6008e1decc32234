/*
 * fast4.c - a specialised evaluator for IPv4 output-path questions that vary
 * only in source and destination, compiled from one immutable policy.
 *
 * Why.  The exact path (lookup.c) answers any question the way the kernel
 * does: it walks the rules with trace semantics, looks the destination up in
 * each table, validates the source, selects a preferred source and builds
 * the reply, about 1,700 instructions per flow on a 10,000-tenant policy.
 * Bulk users ask a narrower question millions of times: "which rule, table,
 * device, gateway and source does the packet from S to D get", everything
 * else fixed (no iif, oif, mark, tos, uid or ports).  For that question most
 * of the exact path is a function of the policy alone, so it is evaluated
 * once, here, and a flow costs a few table reads.
 *
 * What is precomputed.
 *   - Source classes.  Every address the source can be falls into the
 *     longest of a set U of prefixes: the `from` prefixes of the rules that
 *     can match, the local addresses (/32), the prefixes of the table the
 *     source check looks in (local; local+main while they are merged), and
 *     the special ranges (0/32, 127/8, 224/4, 255.255.255.255/32).  All
 *     addresses whose longest U prefix is P share: which rules match their
 *     source (a rule's prefix contains the address iff it contains P), and
 *     whether the kernel accepts them as a source (__ip_dev_find and the
 *     local-table fallback only see U's prefixes).  So the exact functions
 *     are asked once per P, at a representative address of P that no longer
 *     U prefix covers (found by one sweep over U in address order), and P
 *     gets a class: "source given and valid", "no source" (0.0.0.0) or
 *     "slow".  A class carries its chain: the rules that match its source,
 *     in order, each with its `to` prefix and the table it looks in.
 *   - Table outcomes.  For each table a rule looks in, every prefix gets the
 *     outcome a lookup landing on it has for this question (routes.c's
 *     try_slot4 with tos 0, scope universe, no oif): a route (device,
 *     gateway, the preferred source the kernel would pick when none is
 *     given), an error route, a throw (the walk goes on), or nothing usable,
 *     in which case the covering prefix decides, as fib_table_lookup
 *     backtracks.  Outcomes are interned (a 500,000-prefix table through 4
 *     gateways has a handful).  Tables of up to SMALL_MAX prefixes are a
 *     short list, longest first; bigger ones get their own lpm4.
 *
 * Layout, for speed (a 10,000-tenant flow reads one random cache line).
 *   - Sources: a hash of the /32s of U (tenant addresses) gives the class in
 *     one probe, and a class of one record sits in its source's 32-byte slot;
 *     other sources go through the source LPM (lpm4.c).
 *   - The rule every chain starts with (`from all lookup local`) is hoisted
 *     out of the chains and evaluated once per flow; its table's /16 presence
 *     filter rules out almost every destination with one L1 read.
 *   - A rule whose table has one prefix carries that prefix (FUSED), and when
 *     that prefix is 0/0 and the rule has no `to`, just the outcome (ALWAYS):
 *     a tenant's class is one 16-byte record.  A rule whose table decides every
 *     destination ends its chain (what follows is never reached).
 *   - pr_fast4_lookup_bulk is a software pipeline: each level's cache miss is
 *     issued a fixed number of flows before it is needed.
 *
 * What is not covered, and goes to the exact path row by row: any input
 * column besides dst and src; destinations 0.0.0.0, 224/4, 255.255.255.255;
 * sources that are not local, multicast or loopback; rules other than plain
 * `lookup` (goto, nop, error actions, suppress_*, invert) that a source's
 * chain reaches; outcomes other than a single-nexthop unicast route or an
 * error route (local, broadcast, multipath, nexthop objects...).  The exact
 * path is the reference: tests/py/test_fast4.py compares every column of
 * both on random policies and flows aimed at every prefix boundary.
 *
 * The policy must not change while the evaluator lives: build it from a
 * snapshot (pr_policy_snapshot), whose lifetime the caller ties to it.
 */
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "lpm4.h"

#define SMALL_MAX 8u      /* tables up to this many prefixes are scanned */
#define CHAIN_MAX 63u     /* longer rule chains are left to the exact path (records <= 127) */
#define NO_PARENT UINT32_MAX
#define NO_REP UINT64_MAX
#define COMPLEX_TABLE UINT32_MAX
#define NONE_OUTCOME UINT32_MAX   /* build time: the prefix defers to its parent */

enum { K_MISS = 0, K_FINAL = 1, K_ERROR = 2, K_SLOW = 3 };
enum { O_MISS = 0, O_SLOW = 1 };   /* outcome ids interned first */
enum { C_SRC = 0, C_NOSRC = 1, C_SLOW = 2 };

/* What a lookup landing on a prefix gives (the table id is the table's). */
typedef struct f4_outcome {
    uint8_t kind;
    uint8_t nosrc_slow;   /* without a given source the exact path refuses (loopback source) */
    uint8_t pad[2];
    uint32_t error, oif, gw, prefsrc;
} f4_outcome;

typedef struct f4_small {
    uint32_t addr, mask, outcome;
} f4_small;

/* 32 bytes.  A one-prefix table (a tenant's default route) is inline. */
typedef struct f4_table {
    pr_lpm4 *lpm;         /* NULL: n prefixes, inline (n == 1) or small[first ..], longest first */
    uint32_t n;
    uint32_t report;      /* the table id answers name */
    uint32_t filter;      /* 1 + index of a /16 presence bitmap in filters[], 0 = none */
    union {
        uint32_t first;
        f4_small one;
    } u;
} f4_table;

/* The program: a class is its chain, one 16-byte record per rule that can
 * match its sources, in rule order; the class id (what the source lookups
 * return) holds the chain's position, length and the source kind, so a
 * tenant's class is 32 bytes and one cache line read.  Three record shapes,
 * told apart by the last word:
 *   entry   a rule and the index of its compiled table;
 *   FUSED   a rule whose table has one prefix, followed by that prefix (f4_one);
 *   ALWAYS  a rule without `to` whose table's one prefix is 0/0 (a tenant's
 *           default route): it always gives that outcome (f4_always). */
typedef struct f4_entry {
    uint32_t dst, dmask;    /* the rule's `to` prefix */
    uint32_t priority;      /* what the rule_priority column reports */
    uint32_t table;         /* index in tables[], or FUSED / ALWAYS */
} f4_entry;

typedef struct f4_one {
    uint32_t addr, mask, outcome, report;
} f4_one;

typedef struct f4_always {
    uint32_t outcome, report, priority, tag;
} f4_always;
#define FUSED 0x80000000u
#define ALWAYS 0x80000001u

typedef union f4_rec {
    f4_entry e;
    f4_one one;
    f4_always al;
} f4_rec;

/* class id = position | records << 22 | kind << 29 (below PR_LPM4_NONE) */
#define CLS_POS_MAX (1u << 22)
#define CLS(pos, nrec, kind) ((uint32_t)(pos) | (uint32_t)(nrec) << 22 | (uint32_t)(kind) << 29)
static inline uint32_t cls_pos(uint32_t c) { return c & (CLS_POS_MAX - 1u); }
static inline uint32_t cls_nrec(uint32_t c) { return (c >> 22) & 0x7Fu; }
static inline uint32_t cls_kind(uint32_t c) { return c >> 29; }

#define FILTER_WORDS (65536u / 64u)

/* The /32 source prefixes (tenant addresses) are found by one hash probe
 * instead of a five-level LPM walk: an address that is itself a /32 of U has
 * that /32 as its longest match.  A class of one record (a tenant: the local
 * rule is the shared head) is copied into the slot, so a tenant's flow reads
 * one cache line. */
typedef struct f4_slot {
    uint32_t addr, cls;     /* cls UINT32_MAX: empty */
    uint32_t pad[2];
    f4_rec rec;             /* the class's record when it has exactly one */
} f4_slot;

struct pr_fast4 {
    const pr_policy *p;
    pr_lpm4 *src_lpm;       /* source address -> class (its index in prog[]) */
    f4_slot *src32;         /* open addressing, linear probing, nslots slots */
    uint32_t nslots;
    uint8_t has_head;
    f4_entry head;          /* the first rule of every chain (the local rule), hoisted out of them */
    uint32_t nosrc_class;   /* the class of 0.0.0.0, for calls without a src column */
    uint8_t merged;
    f4_rec *prog;
    f4_table *tables;
    f4_small *small;
    f4_outcome *outcomes;
    uint64_t *filters;      /* FILTER_WORDS words each: bit k set = some prefix meets k.0.0/16 */
    size_t nprog, nclasses, nentries, ntables, nsmall, noutcomes, nfilters, nsrc_prefixes;
};

/* ------------------------------------------------------------ build helpers */

typedef struct {
    uint32_t addr;
    uint8_t plen;
} pfx;

static uint32_t mask4(unsigned plen) { return plen ? (uint32_t)(0xFFFFFFFFu << (32u - plen)) : 0u; }

static int pfx_cmp(const void *a, const void *b)
{
    const pfx *x = a, *y = b;
    if (x->addr != y->addr)
        return x->addr < y->addr ? -1 : 1;
    return (int)x->plen - (int)y->plen;
}

static bool pfx_contains(pfx outer, pfx inner)
{
    return outer.plen <= inner.plen && ((outer.addr ^ inner.addr) & mask4(outer.plen)) == 0;
}

/* u sorted by (addr, plen), unique.  parent[j]: the longest u prefix
 * strictly containing u[j]; rep[j] (if wanted): the lowest address whose
 * longest u prefix is u[j], NO_REP when longer prefixes cover all of it. */
static int sweep(const pfx *u, size_t n, uint32_t *parent, uint64_t *rep)
{
    uint32_t *stack = pr_malloc((n ? n : 1) * sizeof(uint32_t));
    uint64_t *next = rep ? pr_malloc((n ? n : 1) * sizeof(uint64_t)) : NULL;
    uint8_t *found = rep ? pr_calloc(n ? n : 1, 1) : NULL;
    if (!stack || (rep && (!next || !found))) {
        free(stack);
        free(next);
        free(found);
        return -PR_ENOMEM;
    }
    size_t top = 0;
    for (size_t j = 0; j <= n; j++) {
        while (top && (j == n || !pfx_contains(u[stack[top - 1]], u[j]))) {
            uint32_t k = stack[--top];
            if (rep) {
                uint64_t end = (uint64_t)(u[k].addr | ~mask4(u[k].plen));
                rep[k] = found[k] || next[k] <= end ? next[k] : NO_REP;
            }
        }
        if (j == n)
            break;
        parent[j] = top ? stack[top - 1] : NO_PARENT;
        if (rep) {
            if (top) {
                uint32_t t = stack[top - 1];
                /* children arrive in address order and are disjoint */
                if (!found[t]) {
                    if (next[t] < u[j].addr)
                        found[t] = 1;
                    else
                        next[t] = (uint64_t)(u[j].addr | ~mask4(u[j].plen)) + 1u;
                }
            }
            next[j] = u[j].addr;
        }
        stack[top++] = (uint32_t)j;
    }
    free(stack);
    free(next);
    free(found);
    return 0;
}

static size_t sort_unique(pfx *v, size_t n)
{
    if (!n)
        return 0;
    qsort(v, n, sizeof(pfx), pfx_cmp);
    size_t k = 1;
    for (size_t i = 1; i < n; i++)
        if (v[i].addr != v[k - 1].addr || v[i].plen != v[k - 1].plen)
            v[k++] = v[i];
    return k;
}

static uint64_t mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    h *= UINT64_C(0xc4ceb9fe1a85ec53);
    h ^= h >> 33;
    return h;
}

/* A growable array. */
typedef struct {
    void *v;
    size_t n, cap, elem;
} vec;

static void *vec_push(vec *a, size_t count)
{
    void *nv = pr_grow(a->v, &a->cap, a->n + count, a->elem);
    if (!nv)
        return NULL;
    a->v = nv;
    void *at = (char *)a->v + a->n * a->elem;
    a->n += count;
    return at;
}

/* An open-addressing set of ids keyed by a 64-bit hash; equality is checked
 * by the caller's compare. */
typedef struct {
    uint64_t *hash;
    uint32_t *id;
    size_t cap, count;
} idset;

static int idset_init(idset *s, size_t expect)
{
    size_t cap = 64;
    while (cap < 2 * expect + 2)
        cap *= 2;
    s->hash = pr_calloc(cap, sizeof(uint64_t));
    s->id = pr_malloc(cap * sizeof(uint32_t));
    s->cap = cap;
    s->count = 0;
    return s->hash && s->id ? 0 : -PR_ENOMEM;
}

static void idset_free(idset *s)
{
    free(s->hash);
    free(s->id);
}

static int idset_grow(idset *s)
{
    idset n;
    if (idset_init(&n, s->cap) < 0) {
        idset_free(&n);
        return -PR_ENOMEM;
    }
    for (size_t i = 0; i < s->cap; i++) {
        if (!s->hash[i])
            continue;
        size_t k = s->hash[i] & (n.cap - 1);
        while (n.hash[k])
            k = (k + 1) & (n.cap - 1);
        n.hash[k] = s->hash[i];
        n.id[k] = s->id[i];
    }
    n.count = s->count;
    idset_free(s);
    *s = n;
    return 0;
}

typedef struct builder {
    const pr_policy *p;
    vec outcomes, tables, small, prog, filters;
    idset outcome_ids, class_ids;
    uint32_t *table_of;     /* family table index -> tables[] index, UINT32_MAX = not built */
    vec total;              /* per tables[]: uint8_t, every destination gets a decisive outcome */
    vec lentries, lclasses; /* interned chains as rules (f4_entry), and their classes (lclass) */
} builder;

typedef struct {
    uint32_t lfirst, n, id;    /* lentries[lfirst .. +n), class id */
    uint8_t kind;
} lclass;

static uint64_t outcome_hash(const f4_outcome *o)
{
    uint64_t h = mix64(((uint64_t)o->kind << 40) ^ ((uint64_t)o->nosrc_slow << 48) ^ o->error);
    h = mix64(h ^ o->oif);
    h = mix64(h ^ ((uint64_t)o->gw << 32 | o->prefsrc));
    return h | 1u;   /* 0 marks an empty slot */
}

static int outcome_intern(builder *b, const f4_outcome *o, uint32_t *id)
{
    idset *s = &b->outcome_ids;
    if (2 * (s->count + 1) > s->cap && idset_grow(s) < 0)
        return -PR_ENOMEM;
    uint64_t h = outcome_hash(o);
    size_t k = h & (s->cap - 1);
    const f4_outcome *all = b->outcomes.v;
    for (; s->hash[k]; k = (k + 1) & (s->cap - 1))
        if (s->hash[k] == h && memcmp(&all[s->id[k]], o, sizeof(*o)) == 0) {
            *id = s->id[k];
            return 0;
        }
    f4_outcome *slot = vec_push(&b->outcomes, 1);
    if (!slot)
        return -PR_ENOMEM;
    *slot = *o;
    *id = (uint32_t)(b->outcomes.n - 1);
    s->hash[k] = h;
    s->id[k] = *id;
    s->count++;
    return 0;
}

static bool v4_loopback(uint32_t a) { return (a & 0xFF000000u) == 0x7F000000u; }

/* The outcome of a lookup that found res (try_slot4 returned > 0). */
static int outcome_of_route(builder *b, const pr_fib_res *res, uint32_t *id)
{
    const pr_route *r = res->route;
    f4_outcome o;
    memset(&o, 0, sizeof(o));
    o.kind = K_SLOW;
    if (res->type == PR_RTN_UNICAST && r->nh_count == 1 && !r->nh_id) {
        const pr_nh *nh = route_nh_c(r, res->nh_index);
        const pr_link *dev = pr_link_by_index_c(b->p, nh->ifindex);
        if (dev) {
            o.kind = K_FINAL;
            o.oif = nh->ifindex;
            o.gw = nh->scope == PR_SCOPE_LINK && nh->gw_family == PR_AF_INET ? v4_get(nh->gw) : 0;
            o.prefsrc = pr_result_prefsrc4(b->p, r, res->nh_index);
            /* __mkroute_output refuses a loopback source on another device */
            o.nosrc_slow = !pr_conf_route_localnet(b->p, dev) && v4_loopback(o.prefsrc) &&
                           dev->kind != PR_LINK_LOOPBACK;
        }
    }
    if (o.kind == K_SLOW)
        memset(&o, 0, sizeof(o)), o.kind = K_SLOW;
    return outcome_intern(b, &o, id);
}

typedef struct {
    uint32_t addr, slot;
    uint8_t plen, src;      /* src: which of the merged tables */
} tpfx;

typedef struct {
    tpfx *v;
    size_t n;
    uint8_t src;
} tcollect;

static int tcollect_cb(void *ctx, const uint8_t key[16], unsigned plen, uint32_t value)
{
    tcollect *c = ctx;
    c->v[c->n++] = (tpfx){v4_get(key), value, (uint8_t)plen, c->src};
    return 0;
}

static int tpfx_cmp(const void *a, const void *b)
{
    const tpfx *x = a, *y = b;
    if (x->addr != y->addr)
        return x->addr < y->addr ? -1 : 1;
    if (x->plen != y->plen)
        return (int)x->plen - (int)y->plen;
    return (int)x->src - (int)y->src;
}

/* Compiles the tables src[0..nsrc) (one table, or local then main while they
 * are merged: at equal length local's routes come first) into tables[];
 * report is the table id answers name. */
static int table_build(builder *b, const pr_table *const *src, size_t nsrc, uint32_t report, uint32_t *out)
{
    size_t nall = 0;
    for (size_t k = 0; k < nsrc; k++)
        nall += pr_trie_count(&src[k]->trie);
    tpfx *tp = pr_malloc((nall ? nall : 1) * sizeof(tpfx));
    pfx *u = pr_malloc((nall ? nall : 1) * sizeof(pfx));
    uint32_t *own = pr_malloc((nall ? nall : 1) * sizeof(uint32_t));
    uint32_t *parent = pr_malloc((nall ? nall : 1) * sizeof(uint32_t));
    uint32_t *addr = pr_malloc((nall ? nall : 1) * sizeof(uint32_t));
    uint8_t *plen = pr_malloc(nall ? nall : 1);
    int rc = -PR_ENOMEM;
    if (!tp || !u || !own || !parent || !addr || !plen)
        goto out;
    tcollect c = {tp, 0, 0};
    for (size_t k = 0; k < nsrc; k++) {
        c.src = (uint8_t)k;
        pr_trie_walk(&src[k]->trie, tcollect_cb, &c);
    }
    qsort(tp, c.n, sizeof(tpfx), tpfx_cmp);
    pr_flow4 fl;
    memset(&fl, 0, sizeof(fl));   /* tos 0, scope universe, no oif: the question's constants */
    size_t nu = 0;
    for (size_t i = 0; i < c.n;) {
        uint32_t o = NONE_OUTCOME;
        size_t j = i;
        for (; j < c.n && tp[j].addr == tp[i].addr && tp[j].plen == tp[i].plen; j++) {
            if (o != NONE_OUTCOME)
                continue;
            pr_fib_res res;
            memset(&res, 0, sizeof(res));
            int r = pr_fib4_try_slot(b->p, src[tp[j].src], tp[j].slot, tp[j].plen, &fl, &res);
            if (r > 0) {
                if ((rc = outcome_of_route(b, &res, &o)) < 0)
                    goto out;
            } else if (r == -PR_EAGAIN) {
                o = O_MISS;   /* throw: this table is done, the walk goes on */
            } else if (r < 0) {
                f4_outcome e;
                memset(&e, 0, sizeof(e));
                e.kind = K_ERROR;
                e.error = (uint32_t)-r;
                if ((rc = outcome_intern(b, &e, &o)) < 0)
                    goto out;
            }
        }
        u[nu] = (pfx){tp[i].addr, tp[i].plen};
        own[nu++] = o;
        i = j;
    }
    if ((rc = sweep(u, nu, parent, NULL)) < 0)
        goto out;
    for (size_t j = 0; j < nu; j++)   /* parents come first in address order */
        if (own[j] == NONE_OUTCOME)
            own[j] = parent[j] == NO_PARENT ? O_MISS : own[parent[j]];
    f4_table t;
    memset(&t, 0, sizeof(t));
    t.n = (uint32_t)nu;
    t.report = report;
    if (nu == 1) {
        t.u.one = (f4_small){u[0].addr, mask4(u[0].plen), own[0]};
    } else if (nu <= SMALL_MAX) {
        t.u.first = (uint32_t)b->small.n;
        f4_small *s = vec_push(&b->small, nu);
        if (!s)
            goto nomem;
        /* longest first: the first match is the longest match */
        size_t k = 0;
        for (int l = 32; l >= 0; l--)
            for (size_t j = 0; j < nu; j++)
                if (u[j].plen == l)
                    s[k++] = (f4_small){u[j].addr, mask4(u[j].plen), own[j]};
    } else {
        /* a /16 presence filter when most /16s have no prefix (the local
         * table): a miss then costs one L1 read instead of a walk */
        uint64_t bits[FILTER_WORDS];
        memset(bits, 0, sizeof(bits));
        size_t set = 0;
        for (size_t j = 0; j < nu && set <= 32768u; j++) {
            uint32_t lo = u[j].addr >> 16, hi = (u[j].addr | ~mask4(u[j].plen)) >> 16;
            for (uint32_t k = lo; k <= hi; k++)
                if (!(bits[k / 64] & (UINT64_C(1) << (k % 64)))) {
                    bits[k / 64] |= UINT64_C(1) << (k % 64);
                    set++;
                }
        }
        if (set <= 32768u) {
            uint64_t *fw = vec_push(&b->filters, FILTER_WORDS);
            if (!fw)
                goto nomem;
            memcpy(fw, bits, sizeof(bits));
            t.filter = (uint32_t)(b->filters.n / FILTER_WORDS);
        }
        for (size_t j = 0; j < nu; j++) {
            addr[j] = u[j].addr;
            plen[j] = u[j].plen;
        }
        if (pr_lpm4_build(&t.lpm, nu, addr, plen, own) < 0)
            goto nomem;
    }
    /* a table that decides every destination ends the walk: rules after it
     * (without a `to` prefix of their own) are never reached */
    uint8_t total = nu > 0 && u[0].addr == 0 && u[0].plen == 0;
    for (size_t j = 0; j < nu && total; j++)
        total = own[j] != O_MISS;
    uint8_t *tot = vec_push(&b->total, 1);
    f4_table *tv = tot ? vec_push(&b->tables, 1) : NULL;
    if (!tv) {
        pr_lpm4_free(t.lpm);
        goto nomem;
    }
    *tot = total;
    *tv = t;
    *out = (uint32_t)(b->tables.n - 1);
    rc = 0;
    goto out;
nomem:
    rc = -PR_ENOMEM;
out:
    free(tp);
    free(u);
    free(own);
    free(parent);
    free(addr);
    free(plen);
    return rc;
}

static int table_for_rule(builder *b, const pr_family *f, const pr_rule *r, uint32_t *out)
{
    int32_t tab_idx = pr_table_pos(f, r->r.table);   /* it exists: PR_RULE4_LOOKUP */
    if (b->table_of[tab_idx] == UINT32_MAX) {
        const pr_table *t = f->tables[tab_idx].t;
        int rc = table_build(b, &t, 1, t->id, &b->table_of[tab_idx]);
        if (rc < 0)
            return rc;
    }
    *out = b->table_of[tab_idx];
    return 0;
}

/* A rule that can match, on the source prefix it selects. */
typedef struct {
    pfx from;
    uint32_t pos;           /* position in the rule list */
    f4_entry e;             /* e.table == COMPLEX_TABLE: the exact path must walk it */
} ritem;

static int ritem_cmp(const void *a, const void *b)
{
    const ritem *x = a, *y = b;
    int c = pfx_cmp(&x->from, &y->from);
    if (c)
        return c;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* A class's records (see f4_entry).  A class of up to 4 records does not
 * straddle a cache line (prog is 64-byte aligned at the end). */
static int class_emit(builder *b, uint8_t kind, const f4_entry *e, size_t n, uint32_t *id)
{
    const f4_table *tables = b->tables.v;
    size_t size = 0;
    for (size_t i = 0; i < n; i++) {
        const f4_table *t = &tables[e[i].table];
        size += !t->lpm && t->n == 1 && (e[i].dmask || t->u.one.mask) ? 2 : 1;
    }
    size_t at = b->prog.n;
    size_t pad = size <= 4 && at % 4 + size > 4 ? 4 - at % 4 : 0;
    if (at + pad + size > CLS_POS_MAX) {
        *id = CLS(0, 0, C_SLOW);   /* out of positions: the exact path */
        return 0;
    }
    f4_rec *r = vec_push(&b->prog, pad + size);
    if (!r)
        return -PR_ENOMEM;
    memset(r, 0, (pad + size) * sizeof(*r));
    r += pad;
    *id = CLS(at + pad, size, kind);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const f4_table *t = &tables[e[i].table];
        if (!t->lpm && t->n == 1 && !e[i].dmask && !t->u.one.mask) {
            r[k++].al = (f4_always){t->u.one.outcome, t->report, e[i].priority, ALWAYS};
        } else if (!t->lpm && t->n == 1) {
            r[k].e = e[i];
            r[k++].e.table = FUSED;
            r[k++].one = (f4_one){t->u.one.addr, t->u.one.mask, t->u.one.outcome, t->report};
        } else {
            r[k++].e = e[i];
        }
    }
    return 0;
}

static int class_intern(builder *b, uint8_t kind, const f4_entry *e, size_t n, uint32_t *id)
{
    idset *s = &b->class_ids;
    if (2 * (s->count + 1) > s->cap && idset_grow(s) < 0)
        return -PR_ENOMEM;
    uint64_t h = mix64(kind ^ ((uint64_t)n << 8));
    for (size_t i = 0; i < n; i++) {
        h = mix64(h ^ ((uint64_t)e[i].dst << 32 | e[i].dmask));
        h = mix64(h ^ ((uint64_t)e[i].priority << 32 | e[i].table));
    }
    h |= 1u;
    size_t k = h & (s->cap - 1);
    const lclass *cl = b->lclasses.v;
    const f4_entry *le = b->lentries.v;
    for (; s->hash[k]; k = (k + 1) & (s->cap - 1)) {
        const lclass *c = &cl[s->id[k]];
        if (s->hash[k] == h && c->kind == kind && c->n == n &&
            (!n || memcmp(&le[c->lfirst], e, n * sizeof(*e)) == 0)) {
            *id = c->id;
            return 0;
        }
    }
    size_t lfirst = b->lentries.n;
    f4_entry *dst = vec_push(&b->lentries, n);
    lclass *c = dst ? vec_push(&b->lclasses, 1) : NULL;
    if (!c)
        return -PR_ENOMEM;
    memcpy(dst, e, n * sizeof(*e));
    *c = (lclass){(uint32_t)lfirst, (uint32_t)n, 0, kind};
    int rc = class_emit(b, kind, e, n, &c->id);
    if (rc < 0)
        return rc;
    *id = c->id;
    s->hash[k] = h;
    s->id[k] = (uint32_t)(b->lclasses.n - 1);
    s->count++;
    return 0;
}

static inline uint32_t src32_hash(uint32_t a)
{
    return (uint32_t)(((uint64_t)a * UINT64_C(0x9E3779B97F4A7C15)) >> 32);
}

/* The first slot to probe for a: the hash scaled to nslots (no power of two needed). */
static inline uint32_t slot_of(const pr_fast4 *f, uint32_t a)
{
    return (uint32_t)(((uint64_t)src32_hash(a) * f->nslots) >> 32);
}

static uint8_t source_kind(const pr_policy *p, uint64_t rep)
{
    if (rep == NO_REP)
        return C_SLOW;   /* no address lands here */
    uint32_t a = (uint32_t)rep;
    if (a == 0)
        return C_NOSRC;
    /* multicast, broadcast and loopback sources: the exact path's errors */
    if ((a & 0xF0000000u) == 0xE0000000u || a == 0xFFFFFFFFu || v4_loopback(a))
        return C_SLOW;
    if (!pr_addr_is_local_v4(p, a) && !pr_ip_local_route_dev(p, a))
        return C_SLOW;   /* ENETUNREACH, from the exact path */
    return C_SRC;
}

static int ritem_pos_cmp(const void *a, const void *b)
{
    const ritem *x = a, *y = b;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

void pr_fast4_free(pr_fast4 *f)
{
    if (!f)
        return;
    pr_lpm4_free(f->src_lpm);
    for (size_t i = 0; i < f->ntables; i++)
        pr_lpm4_free(f->tables[i].lpm);
    free(f->src32);
    free(f->prog);
    free(f->tables);
    free(f->small);
    free(f->outcomes);
    free(f->filters);
    free(f);
}

static void builder_free(builder *b)
{
    f4_table *t = b->tables.v;
    for (size_t i = 0; i < b->tables.n; i++)
        pr_lpm4_free(t[i].lpm);
    free(b->tables.v);
    free(b->outcomes.v);
    free(b->small.v);
    free(b->prog.v);
    free(b->filters.v);
    free(b->total.v);
    free(b->lentries.v);
    free(b->lclasses.v);
    idset_free(&b->outcome_ids);
    idset_free(&b->class_ids);
    free(b->table_of);
}

typedef struct {
    pfx *v;
    size_t n;
} pcollect;

static int pcollect_cb(void *ctx, const uint8_t key[16], unsigned plen, uint32_t value)
{
    (void)value;
    pcollect *c = ctx;
    c->v[c->n++] = (pfx){v4_get(key), (uint8_t)plen};
    return 0;
}

/* The state of one pr_fast4_build between its phases.  All of it is scratch
 * except the compiled tables, outcomes and program in b, which
 * build_evaluator hands over to the evaluator as its last step. */
typedef struct build {
    const pr_policy *p;
    builder b;
    bool merged;              /* no custom rules: the fixed walk local+main, then default */
    const pr_table *local, *maint;
    f4_entry fixed[2];        /* merged: the fixed walk's compiled tables */
    size_t nfixed;
    ritem *items;             /* custom rules: the ones that can match, sorted by source prefix */
    size_t nitems;
    pfx *u;                   /* the source prefixes U, sorted and unique */
    size_t nu;
    uint32_t *parent;         /* per u[j]: the longest u prefix containing it */
    uint64_t *rep;            /* per u[j]: a representative address (see sweep) */
    uint32_t *ustart;         /* items of u[j]: items[ustart[j] .. ustart[j+1]) */
    uint32_t *value;          /* per u[j]: its class id */
    uint32_t *addr;           /* per u[j]: address and length, as pr_lpm4_build takes them */
    uint8_t *plen;
    f4_entry *chain;          /* one class's chain, CHAIN_MAX records */
    ritem *gather;            /* one class's rules before ordering, CHAIN_MAX + 1 */
    bool has_head;
    f4_entry head;            /* the rule every chain starts with, hoisted out of them */
} build;

static void build_free(build *s)
{
    builder_free(&s->b);
    free(s->items);
    free(s->u);
    free(s->parent);
    free(s->rep);
    free(s->ustart);
    free(s->value);
    free(s->addr);
    free(s->plen);
    free(s->chain);
    free(s->gather);
}

/* Phase 1: the empty builder, with the outcomes every table may refer to
 * interned first (O_MISS, O_SLOW).  s is freeable by build_free even when
 * this fails. */
static int build_init(build *s, const pr_policy *p)
{
    memset(s, 0, sizeof(*s));
    s->p = p;
    builder *b = &s->b;
    b->p = p;
    b->outcomes.elem = sizeof(f4_outcome);
    b->tables.elem = sizeof(f4_table);
    b->small.elem = sizeof(f4_small);
    b->prog.elem = sizeof(f4_rec);
    b->total.elem = 1;
    b->lentries.elem = sizeof(f4_entry);
    b->lclasses.elem = sizeof(lclass);
    b->filters.elem = sizeof(uint64_t);
    const pr_family *f = &p->v4;
    b->table_of = pr_malloc((f->ntables ? f->ntables : 1) * sizeof(uint32_t));
    if (!b->table_of || idset_init(&b->outcome_ids, 64) < 0 || idset_init(&b->class_ids, 1024) < 0)
        return -PR_ENOMEM;
    for (size_t i = 0; i < f->ntables; i++)
        b->table_of[i] = UINT32_MAX;
    uint32_t oid;
    f4_outcome miss = {.kind = K_MISS}, slow = {.kind = K_SLOW};
    if (outcome_intern(b, &miss, &oid) < 0 || outcome_intern(b, &slow, &oid) < 0)
        return -PR_ENOMEM;
    s->merged = !p->v4_custom_rules;
    s->local = pr_table_get_c(f, PR_TABLE_LOCAL);
    s->maint = pr_table_get_c(f, PR_TABLE_MAIN);
    return 0;
}

/* Phase 2: the rules, each with its compiled table; merged, the fixed walk
 * (local+main as one table, then default) instead. */
static int build_rules(build *s)
{
    const pr_family *f = &s->p->v4;
    int rc;
    uint32_t ti;
    if (s->merged) {
        const pr_table *lm[2];
        size_t nlm = 0;
        if (s->local)
            lm[nlm++] = s->local;
        if (s->maint)
            lm[nlm++] = s->maint;
        if (nlm) {
            if ((rc = table_build(&s->b, lm, nlm, PR_TABLE_MAIN, &ti)) < 0)
                return rc;
            s->fixed[s->nfixed++] = (f4_entry){0, 0, UINT32_MAX, ti};
        }
        const pr_table *dt = pr_table_get_c(f, PR_TABLE_DEFAULT);
        if (dt) {
            if ((rc = table_build(&s->b, &dt, 1, PR_TABLE_DEFAULT, &ti)) < 0)
                return rc;
            s->fixed[s->nfixed++] = (f4_entry){0, 0, UINT32_MAX, ti};
        }
        return 0;
    }
    s->items = pr_malloc((f->nrules ? f->nrules : 1) * sizeof(ritem));
    if (!s->items)
        return -PR_ENOMEM;
    for (size_t i = 0; i < f->nrules; i++) {
        int kind = pr_rule4_fast_kind(f, i);
        if (kind == PR_RULE4_NEVER)
            continue;
        const pr_rule *r = &f->rules[i];
        ritem *it = &s->items[s->nitems++];
        it->from = (pfx){r->src4 & mask4(r->r.src_len), r->r.src_len};
        if (r->r.flags & PR_FIB_RULE_INVERT)
            it->from = (pfx){0, 0};   /* `not from P` matches outside P: every source may reach it */
        it->pos = (uint32_t)i;
        it->e = (f4_entry){r->dst4 & r->dstmask4, r->dstmask4, r->r.priority, COMPLEX_TABLE};
        if (kind == PR_RULE4_LOOKUP && (rc = table_for_rule(&s->b, f, r, &it->e.table)) < 0)
            return rc;
    }
    qsort(s->items, s->nitems, sizeof(ritem), ritem_cmp);
    return 0;
}

/* Phase 3: the source prefixes U (rule `from`s, local addresses, the source
 * check's table prefixes, the special ranges), their nesting and
 * representatives, and which rules each one carries. */
static int build_source_prefixes(build *s)
{
    const pr_policy *p = s->p;
    size_t nlocal_pfx = s->local ? pr_trie_count(&s->local->trie) : 0;
    size_t nmain_pfx = s->merged && s->maint ? pr_trie_count(&s->maint->trie) : 0;
    size_t cap = s->nitems + p->nlocal4 + nlocal_pfx + nmain_pfx + 5;
    pfx *u = s->u = pr_malloc(cap * sizeof(pfx));
    if (!u)
        return -PR_ENOMEM;
    size_t nu = 0;
    for (size_t i = 0; i < s->nitems; i++)
        u[nu++] = s->items[i].from;
    for (size_t i = 0; i < p->nlocal4; i++)
        u[nu++] = (pfx){p->local4[i], 32};
    pcollect pc = {u + nu, 0};
    if (s->local)
        pr_trie_walk(&s->local->trie, pcollect_cb, &pc);
    if (nmain_pfx)
        pr_trie_walk(&s->maint->trie, pcollect_cb, &pc);
    nu += pc.n;
    static const pfx specials[5] = {{0, 0}, {0, 32}, {0x7F000000u, 8}, {0xE0000000u, 4}, {0xFFFFFFFFu, 32}};
    for (size_t i = 0; i < 5; i++)
        u[nu++] = specials[i];
    nu = s->nu = sort_unique(u, nu);   /* >= 5: the specials */
    s->parent = pr_malloc(nu * sizeof(uint32_t));
    s->rep = pr_malloc(nu * sizeof(uint64_t));
    s->ustart = pr_malloc((nu + 1) * sizeof(uint32_t));
    if (!s->parent || !s->rep || !s->ustart)
        return -PR_ENOMEM;
    int rc = sweep(u, nu, s->parent, s->rep);
    if (rc < 0)
        return rc;
    for (size_t j = 0, k = 0; j <= nu; j++) {
        s->ustart[j] = (uint32_t)k;
        while (j < nu && k < s->nitems && s->items[k].from.addr == u[j].addr && s->items[k].from.plen == u[j].plen)
            k++;
    }
    return 0;
}

/* Phase 4: the first rule that can match at all, when it selects every
 * source and destination (`from all lookup local`), starts every chain: it
 * is evaluated once per flow instead of being stored per class. */
static void build_head(build *s)
{
    if (s->merged && s->nfixed) {
        s->has_head = true;
        s->head = s->fixed[0];
    } else if (!s->merged && s->nitems) {
        const ritem *first = &s->items[0];
        for (size_t k = 1; k < s->nitems; k++)
            if (s->items[k].pos < first->pos)
                first = &s->items[k];
        if (first->from.plen == 0 && !first->e.dmask && first->e.table != COMPLEX_TABLE) {
            s->has_head = true;
            s->head = first->e;
        }
    }
}

/* Phase 5: per source prefix, its kind and chain (the rules that match its
 * sources, in list order, cut after one that decides every destination),
 * interned as a class. */
static int build_classes(build *s)
{
    size_t nu = s->nu;
    s->value = pr_malloc(nu * sizeof(uint32_t));
    s->addr = pr_malloc(nu * sizeof(uint32_t));
    s->plen = pr_malloc(nu);
    s->chain = pr_malloc(CHAIN_MAX * sizeof(f4_entry));
    s->gather = pr_malloc((CHAIN_MAX + 1) * sizeof(ritem));
    if (!s->value || !s->addr || !s->plen || !s->chain || !s->gather)
        return -PR_ENOMEM;
    const uint8_t *total = s->b.total.v;
    f4_entry *chain = s->chain;
    ritem *gather = s->gather;
    for (size_t j = 0; j < nu; j++) {
        uint8_t kind = source_kind(s->p, s->rep[j]);
        size_t g = 0, n = 0;
        if (s->merged) {
            for (size_t k = 0; k < s->nfixed; k++)
                gather[g++].e = s->fixed[k];
        } else if (kind != C_SLOW) {
            /* the rules of u[j] and of every prefix containing it, in list order */
            for (uint32_t a = (uint32_t)j; a != NO_PARENT && kind != C_SLOW; a = s->parent[a])
                for (uint32_t k = s->ustart[a]; k < s->ustart[a + 1]; k++) {
                    if (g == CHAIN_MAX) {
                        kind = C_SLOW;
                        break;
                    }
                    gather[g++] = s->items[k];
                }
            qsort(gather, g, sizeof(ritem), ritem_pos_cmp);
        }
        for (size_t k = 0; k < g && kind != C_SLOW; k++) {
            if (gather[k].e.table == COMPLEX_TABLE) {
                kind = C_SLOW;   /* reached: the exact path walks it */
                break;
            }
            chain[n++] = gather[k].e;
            if (!gather[k].e.dmask && total[gather[k].e.table])
                break;           /* nothing after it is reached */
        }
        if (kind == C_SLOW)
            n = 0;
        const f4_entry *ch = chain;
        if (s->has_head && kind != C_SLOW) {
            if (n && memcmp(&chain[0], &s->head, sizeof(s->head)) == 0) {
                ch++;
                n--;
            } else {
                kind = C_SLOW;   /* cannot happen (the head matches every source): be safe */
                n = 0;
            }
        }
        int rc = class_intern(&s->b, kind, ch, n, &s->value[j]);
        if (rc < 0)
            return rc;
        s->addr[j] = s->u[j].addr;
        s->plen[j] = s->u[j].plen;
    }
    return 0;
}

/* Phase 6: the evaluator: the source LPM and /32 hash, the program, and
 * (last, once nothing can fail) the builder's tables and outcomes handed
 * over.  *out is set as soon as the evaluator exists, so that on failure
 * the caller frees what was built with pr_fast4_free. */
static int build_evaluator(build *s, pr_fast4 **out)
{
    builder *b = &s->b;
    size_t nu = s->nu;
    pr_fast4 *fa = *out = pr_calloc(1, sizeof(*fa));
    if (!fa)
        return -PR_ENOMEM;
    fa->p = s->p;
    fa->merged = s->merged;
    fa->has_head = s->has_head;
    fa->head = s->head;
    if (pr_lpm4_build(&fa->src_lpm, nu, s->addr, s->plen, s->value) < 0)
        return -PR_ENOMEM;
    fa->nosrc_class = pr_lpm4_lookup(fa->src_lpm, 0);
    size_t n32 = 0;
    for (size_t j = 0; j < nu; j++)
        n32 += s->plen[j] == 32;
    size_t nslots = n32 + n32 / 2 + 16;   /* load <= 2/3 */
    size_t slots_size = nslots * sizeof(f4_slot);   /* read at random: huge pages */
    if (!(fa->src32 = pr_alloc_random_access(&slots_size)))
        return -PR_ENOMEM;
    fa->nslots = (uint32_t)nslots;
    memset(fa->src32, 0, nslots * sizeof(f4_slot));
    for (size_t k = 0; k < nslots; k++)
        fa->src32[k].cls = UINT32_MAX;
    /* cache-line aligned, so that the class layout of class_emit holds */
    size_t prog_size = (b->prog.n ? b->prog.n : 1) * sizeof(f4_rec);
    if (!(fa->prog = pr_alloc_random_access(&prog_size)))
        return -PR_ENOMEM;
    if (b->prog.n)
        memcpy(fa->prog, b->prog.v, b->prog.n * sizeof(f4_rec));
    fa->nprog = b->prog.n;
    for (size_t j = 0; j < nu; j++) {
        if (s->plen[j] != 32)
            continue;
        uint32_t k = slot_of(fa, s->addr[j]);
        while (fa->src32[k].cls != UINT32_MAX)
            k = k + 1 == fa->nslots ? 0 : k + 1;
        f4_slot *sl = &fa->src32[k];
        sl->addr = s->addr[j];
        sl->cls = s->value[j];
        if (cls_nrec(s->value[j]) == 1)
            sl->rec = fa->prog[cls_pos(s->value[j])];
    }
    fa->nclasses = b->lclasses.n;
    fa->nentries = b->lentries.n;
    fa->nsrc_prefixes = nu;
    /* the hand-over: from here the evaluator owns these, the builder nothing */
    fa->filters = b->filters.v;
    fa->nfilters = b->filters.n / FILTER_WORDS;
    fa->tables = b->tables.v;
    fa->ntables = b->tables.n;
    fa->small = b->small.v;
    fa->nsmall = b->small.n;
    fa->outcomes = b->outcomes.v;
    fa->noutcomes = b->outcomes.n;
    b->filters.v = b->tables.v = b->small.v = b->outcomes.v = NULL;
    b->tables.n = 0;
    return 0;
}

/* The phases in order; one exit for failures, which frees the partial
 * evaluator with its own free function and the scratch with build_free. */
int pr_fast4_build(const pr_policy *p, pr_fast4 **out)
{
    if (!p || !out)
        return -PR_EINVAL;
    *out = NULL;
    build s;
    pr_fast4 *fa = NULL;
    int rc = build_init(&s, p);
    if (rc < 0)
        goto fail;
    if ((rc = build_rules(&s)) < 0)
        goto fail;
    if ((rc = build_source_prefixes(&s)) < 0)
        goto fail;
    build_head(&s);
    if ((rc = build_classes(&s)) < 0)
        goto fail;
    if ((rc = build_evaluator(&s, &fa)) < 0)
        goto fail;
    build_free(&s);
    *out = fa;
    return 0;
fail:
    pr_fast4_free(fa);
    build_free(&s);
    return rc;
}

/* ---------------------------------------------------------------- lookups */

static inline uint32_t table_lookup(const pr_fast4 *f, const f4_table *t, uint32_t d)
{
    if (t->lpm) {
        if (t->filter) {
            uint32_t k = d >> 16;
            if (!(f->filters[(size_t)(t->filter - 1) * FILTER_WORDS + k / 64] & (UINT64_C(1) << (k % 64))))
                return O_MISS;
        }
        uint32_t v = pr_lpm4_lookup(t->lpm, d);
        return v == PR_LPM4_NONE ? O_MISS : v;
    }
    if (t->n == 1)
        return (d & t->u.one.mask) == t->u.one.addr ? t->u.one.outcome : O_MISS;
    const f4_small *s = f->small + t->u.first;
    for (uint32_t k = 0; k < t->n; k++)
        if ((d & s[k].mask) == s[k].addr)
            return s[k].outcome;
    return O_MISS;
}

static inline void store(pr_bulk_out *out, size_t i, uint32_t error, uint8_t type, uint32_t table,
                         uint32_t prio, uint32_t oif, uint32_t gw, uint32_t prefsrc)
{
    if (out->error)
        out->error[i] = (int32_t)error;
    if (out->type)
        out->type[i] = type;
    if (out->table)
        out->table[i] = table;
    if (out->rule_priority)
        out->rule_priority[i] = prio;
    if (out->oif)
        out->oif[i] = oif;
    if (out->flags)
        out->flags[i] = 0;
    if (out->gateway)
        out->gateway[i] = gw;
    if (out->prefsrc)
        out->prefsrc[i] = prefsrc;
}

/* A source's class and where its records are read. */
typedef struct {
    uint32_t cls;
    const f4_rec *rec;
} f4_src;

/* The answer for outcome o of the rule with priority prio, in a table
 * answers name report: 1 stored, 0 the exact path must answer. */
static inline int decide(const pr_fast4 *f, uint32_t kind, uint32_t o, uint32_t report, uint32_t prio,
                         pr_bulk_out *out, size_t i)
{
    const f4_outcome *oc = &f->outcomes[o];
    if (oc->kind == K_FINAL) {
        if (kind == C_NOSRC) {
            if (oc->nosrc_slow)
                return 0;
            store(out, i, 0, PR_RTN_UNICAST, report, prio, oc->oif, oc->gw, oc->prefsrc);
        } else {
            store(out, i, 0, PR_RTN_UNICAST, report, prio, oc->oif, oc->gw, 0);
        }
        return 1;
    }
    if (oc->kind == K_ERROR) {
        store(out, i, oc->error, 0, 0, prio, 0, 0, 0);
        return 1;
    }
    return 0;   /* K_SLOW */
}

/* 1 answered, 0 the exact path must answer. */
static inline int eval(const pr_fast4 *f, f4_src c, uint32_t d, pr_bulk_out *out, size_t i)
{
    uint32_t kind = cls_kind(c.cls);
    /* 0.0.0.0, multicast and limited broadcast destinations take other paths */
    if (kind == C_SLOW || d == 0 || (d & 0xF0000000u) == 0xE0000000u || d == 0xFFFFFFFFu)
        return 0;
    if (f->has_head) {
        const f4_table *t = &f->tables[f->head.table];
        uint32_t o = table_lookup(f, t, d);
        if (o != O_MISS)
            return decide(f, kind, o, t->report, f->head.priority, out, i);
    }
    const f4_rec *r = c.rec, *end = r + cls_nrec(c.cls);
    while (r < end) {
        const f4_entry *e = &r->e;
        uint32_t o, report, prio = e->priority;
        if (e->table == ALWAYS) {
            o = r->al.outcome;
            report = r->al.report;
            r += 1;
        } else if (e->table == FUSED) {
            const f4_one *one = &r[1].one;
            r += 2;
            if ((d & e->dmask) != e->dst || (d & one->mask) != one->addr)
                continue;
            o = one->outcome;
            report = one->report;
        } else {
            r += 1;
            if ((d & e->dmask) != e->dst)
                continue;
            const f4_table *t = &f->tables[e->table];
            o = table_lookup(f, t, d);
            report = t->report;
        }
        if (o == O_MISS)
            continue;
        return decide(f, kind, o, report, prio, out, i);
    }
    store(out, i, PR_ENETUNREACH, 0, 0, UINT32_MAX, 0, 0, 0);
    return 1;
}

/* The first compiled-table load of one table lookup, 1 when there is one
 * (a /16 filter that rules d out means none). */
static inline int prefetch_table(const pr_fast4 *f, const f4_table *t, uint32_t d)
{
    if (!t->lpm)
        return 0;
    if (t->filter) {
        uint32_t k = d >> 16;
        if (!(f->filters[(size_t)(t->filter - 1) * FILTER_WORDS + k / 64] & (UINT64_C(1) << (k % 64))))
            return 0;
    }
    pr_lpm4_prefetch(t->lpm, d);
    return 1;
}

#define DIST 16u      /* flows between a prefetch and its use (see pr_fast4_lookup_bulk) */
#define RING 32u      /* class ids of flows i .. i+DIST, a power of two > DIST */

/* The class of source a and where its records are: a hash probe for the
 * /32s of U (a one-record class is in the slot itself), else the LPM. */
static inline f4_src classify_one(const pr_fast4 *f, uint32_t a)
{
    for (uint32_t k = slot_of(f, a);; k = k + 1 == f->nslots ? 0 : k + 1) {
        const f4_slot *sl = &f->src32[k];
        if (sl->cls == UINT32_MAX) {
            uint32_t c = pr_lpm4_lookup(f->src_lpm, a);
            return (f4_src){c, f->prog + cls_pos(c)};
        }
        if (sl->addr == a)
            return (f4_src){sl->cls, cls_nrec(sl->cls) == 1 ? &sl->rec : f->prog + cls_pos(sl->cls)};
    }
}

/* eval's walk up to its first compiled table, prefetching that table's first
 * load for d; a fused or always rule that decides ends it. */
static inline void prefetch_walk(const pr_fast4 *f, f4_src c, uint32_t d)
{
    if (f->has_head && prefetch_table(f, &f->tables[f->head.table], d))
        return;
    const f4_rec *r = c.rec, *end = r + cls_nrec(c.cls);
    while (r < end) {
        const f4_entry *e = &r->e;
        if (e->table == ALWAYS)
            return;
        if (e->table == FUSED) {
            if ((d & e->dmask) == e->dst && (d & r[1].one.mask) == r[1].one.addr)
                return;
            r += 2;
            continue;
        }
        r += 1;
        if ((d & e->dmask) == e->dst && prefetch_table(f, &f->tables[e->table], d))
            return;
    }
}

int pr_fast4_lookup_bulk(const pr_fast4 *f, size_t n, const pr_bulk_in *in, pr_bulk_out *out, size_t *slow)
{
    if (!f || (n && (!in || !out || !in->dst)))
        return -PR_EINVAL;
    if (slow)
        *slow = 0;
    if (n == 0)
        return 0;
    size_t nslow = 0;
    pr_flow q;
    pr_result res;
    pr_bulk4_flow_init(&q);
    if (in && (in->iif || in->oif || in->tos || in->mark || in->uid || in->ipproto || in->sport || in->dport)) {
        for (size_t i = 0; i < n; i++)
            pr_bulk4_row(f->p, in, out, i, &q, &res);
        if (slow)
            *slow = n;
        return 0;
    }
    /* One software pipeline over the flows, each level's cache miss issued
     * a fixed distance ahead of its use: flow i+2*DIST's source slot is
     * prefetched, flow i+DIST is classified (its class records prefetched),
     * flow i+DIST/2's walk prefetches its first compiled-table load, and
     * flow i is evaluated.  Evenly spread prefetches keep a steady number of
     * misses in flight instead of bursts the core would drop. */
    f4_src ring[RING];
    const uint32_t *src = in->src;
    const f4_src nosrc = {f->nosrc_class, f->prog + cls_pos(f->nosrc_class)};
    size_t pre = n < DIST ? n : DIST;
    for (size_t j = 0; j < 2 * DIST && j < n && src; j++)
        __builtin_prefetch(&f->src32[slot_of(f, src[j])]);
    for (size_t j = 0; j < pre; j++) {
        ring[j % RING] = src ? classify_one(f, src[j]) : nosrc;
        __builtin_prefetch(ring[j % RING].rec);
    }
    for (size_t j = 0; j < DIST / 2 && j < n; j++)
        prefetch_walk(f, ring[j % RING], in->dst[j]);
    for (size_t i = 0; i < n; i++) {
        size_t j2 = i + 2 * DIST, j1 = i + DIST, jw = i + DIST / 2;
        if (src && j2 < n)
            __builtin_prefetch(&f->src32[slot_of(f, src[j2])]);
        if (j1 < n) {
            f4_src c = src ? classify_one(f, src[j1]) : nosrc;
            ring[j1 % RING] = c;
            __builtin_prefetch(c.rec);
        }
        if (jw < n)
            prefetch_walk(f, ring[jw % RING], in->dst[jw]);
        if (!eval(f, ring[i % RING], in->dst[i], out, i)) {
            pr_bulk4_row(f->p, in, out, i, &q, &res);
            nslow++;
        }
    }
    if (slow)
        *slow = nslow;
    return 0;
}

void pr_fast4_get_stats(const pr_fast4 *f, pr_fast4_stats *st)
{
    memset(st, 0, sizeof(*st));
    if (!f)
        return;
    st->classes = f->nclasses;
    st->chain_entries = f->nentries;
    st->tables = f->ntables;
    st->outcomes = f->noutcomes;
    st->src_prefixes = f->nsrc_prefixes;
    st->merged = f->merged;
    size_t mem = sizeof(*f) + f->nprog * sizeof(f4_rec) + (size_t)f->nslots * sizeof(f4_slot) + f->ntables * sizeof(f4_table) +
                 f->nsmall * sizeof(f4_small) + f->noutcomes * sizeof(f4_outcome) +
                 f->nfilters * FILTER_WORDS * sizeof(uint64_t);
    mem += pr_lpm4_memory(f->src_lpm);
    for (size_t i = 0; i < f->ntables; i++)
        if (f->tables[i].lpm)
            mem += pr_lpm4_memory(f->tables[i].lpm);
    st->memory = mem;
}
