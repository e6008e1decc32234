/*
 * routes.c - routing tables: insert/delete with the kernel's ordering and
 * flag semantics (fib_table_insert / fib_table_delete, ip6_ins_rt), and the
 * lookup inside one table (fib_table_lookup, rt6_select).
 *
 * A table is a Patricia trie from (prefix, length) to a slot; a slot holds the
 * routes of that prefix in kernel order: tos descending, metric ascending,
 * then insertion position as the nlmsg flags decide.  The kernel keeps the
 * aliases of one key in a single leaf; since each slot here holds one prefix
 * length, walking the trie's matches longest-first visits exactly the order in
 * which fib_table_lookup backtracks.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "rule_index.h"

#define SLOT_NONE UINT32_MAX

/* ---------------------------------------------------------------- tables */

/*
 * Tables are shared between a policy and its snapshots (pr_policy_snapshot)
 * and copied when written: every writer path gets its table through
 * pr_table_get / pr_table_new / pr_routes_edit, which replace a shared table
 * (refs > 1) with a private copy first.  Reference counts: increments are
 * relaxed (the incrementer already holds a reference); decrements are
 * acq_rel, so a reader's last reads of a table happen before whoever frees
 * it; the writer's "refs == 1" test is an acquire load, so reads done by a
 * snapshot that has just let go happen before the writer's next write.
 */

static int table_cmp_id(const pr_family *f, uint32_t id, size_t *pos)
{
    size_t lo = 0, hi = f->ntables;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (f->tables[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *pos = lo;
    return lo < f->ntables && f->tables[lo].id == id;
}

int32_t pr_table_pos(const pr_family *f, uint32_t id)
{
    size_t pos;
    return table_cmp_id(f, id, &pos) ? (int32_t)pos : -1;
}

/* ---- table handles (core.h, pr_tid) */

static uint32_t tid_hash(uint32_t id) { return (uint32_t)(((uint64_t)id * UINT64_C(0x9E3779B97F4A7C15)) >> 32); }

/* The entry of id, or the empty entry where it would go; NULL when no hash. */
static pr_tid *tid_probe(pr_tid *v, uint32_t cap, uint32_t id)
{
    if (!cap)
        return NULL;
    uint32_t mask = cap - 1;
    for (uint32_t i = tid_hash(id) & mask;; i = (i + 1) & mask)
        if (v[i].slot1 == 0 || v[i].id == id)
            return &v[i];
}

static int32_t tid_find(const pr_family *f, uint32_t id)
{
    const pr_tid *e = tid_probe(f->tids, f->captids, id);
    return e && e->slot1 ? (int32_t)(e->slot1 - 1) : -1;
}

int32_t pr_table_slot(pr_family *f, uint32_t id)
{
    int32_t found = tid_find(f, id);
    if (found >= 0)
        return found;
    if (f->ntslots >= (uint32_t)INT32_MAX)
        return -1;
    if ((size_t)(f->ntslots + 1) * 2 > f->captids) {
        uint32_t ncap = f->captids ? f->captids * 2 : 64;
        pr_tid *nv = pr_calloc(ncap, sizeof(pr_tid));
        if (!nv)
            return -1;
        for (uint32_t i = 0; i < f->captids; i++)
            if (f->tids[i].slot1)
                *tid_probe(nv, ncap, f->tids[i].id) = f->tids[i];
        free(f->tids);
        f->tids = nv;
        f->captids = ncap;
    }
    if (f->ntslots == f->captslots) {
        uint32_t ncap = f->captslots ? f->captslots * 2 : 32;
        pr_table **nv = pr_realloc(f->tslots, (size_t)ncap * sizeof(pr_table *));
        if (!nv)
            return -1;
        f->tslots = nv;
        f->captslots = ncap;
    }
    uint32_t slot = f->ntslots++;
    f->tslots[slot] = NULL;
    pr_tid *e = tid_probe(f->tids, f->captids, id);
    e->id = id;
    e->slot1 = slot + 1;
    return (int32_t)slot;
}

const pr_table *pr_rule_table(const pr_family *f, const pr_rule *r)
{
    if (r->tab_slot >= 0)
        return f->tslots[r->tab_slot];
    return pr_table_get_c(f, r->r.table);
}

/* dst gets src's handles (the same slots for the same ids; rules may be
 * shared), with every slot empty: the caller fills in its tables. */
static int tids_copy(pr_family *dst, const pr_family *src)
{
    if (src->captids) {
        dst->tids = pr_malloc((size_t)src->captids * sizeof(pr_tid));
        if (!dst->tids)
            return -PR_ENOMEM;
        memcpy(dst->tids, src->tids, (size_t)src->captids * sizeof(pr_tid));
        dst->captids = src->captids;
    }
    if (src->ntslots) {
        dst->tslots = pr_calloc(src->ntslots, sizeof(pr_table *));
        if (!dst->tslots)
            return -PR_ENOMEM;
        dst->ntslots = dst->captslots = src->ntslots;
    }
    return 0;
}

static void table_destroy(pr_table *t)
{
    for (uint32_t i = 0; i < t->nslots; i++) {
        pr_rlist *s = &t->slots[i];
        if (s->v) {
            for (uint32_t j = 0; j < s->n; j++)
                pr_route_free_contents(&s->v[j]);
            free(s->v);
        }
    }
    free(t->slots);
    pr_trie_destroy(&t->trie);
    pr_table_lpm_drop(t);
}

void pr_table_unref(pr_table *t)
{
    if (t && atomic_fetch_sub_explicit(&t->refs, 1u, memory_order_acq_rel) == 1u) {
        table_destroy(t);
        free(t);
    }
}

/* A private deep copy of s (refs 1, no compiled copy), or NULL on ENOMEM. */
static pr_table *table_copy(const pr_table *s)
{
    pr_table *d = pr_calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    atomic_init(&d->refs, 1u);
    d->id = s->id;
    d->free_slot = s->free_slot;
    d->nroutes = s->nroutes;
    if (pr_trie_clone(&d->trie, &s->trie) < 0)
        goto fail;
    if (s->nslots) {
        d->slots = pr_calloc(s->nslots, sizeof(pr_rlist));
        if (!d->slots)
            goto fail;
        d->capslots = s->nslots;
    }
    d->nslots = s->nslots;
    for (uint32_t j = 0; j < s->nslots; j++) {
        const pr_rlist *sl = &s->slots[j];
        pr_rlist *dl = &d->slots[j];
        dl->cap = sl->cap;
        dl->n = 0;
        if (!sl->v)
            continue;
        dl->v = pr_calloc(sl->cap ? sl->cap : 1, sizeof(pr_route));
        if (!dl->v)
            goto fail;
        for (uint32_t k = 0; k < sl->n; k++) {
            if (pr_route_copy(&dl->v[k], &sl->v[k]) < 0)
                goto fail;
            dl->n = k + 1;
        }
    }
    return d;
fail:
    table_destroy(d);
    free(d);
    return NULL;
}

/* f->tables[pos] made private: 0 or -ENOMEM (then unchanged). */
static int table_own(pr_family *f, size_t pos)
{
    pr_table *t = f->tables[pos].t;
    if (atomic_load_explicit(&t->refs, memory_order_acquire) == 1u)
        return 0;
    pr_table *c = table_copy(t);
    if (!c)
        return -PR_ENOMEM;
    f->tables[pos].t = c;
    f->tslots[f->tables[pos].slot] = c;
    pr_table_unref(t);
    return 0;
}

pr_table *pr_table_get_oom(pr_family *f, uint32_t id, int *oom)
{
    size_t pos;
    if (!table_cmp_id(f, id, &pos))
        return NULL;
    if (table_own(f, pos) < 0) {
        if (oom)
            *oom = 1;
        return NULL;
    }
    return f->tables[pos].t;
}

pr_table *pr_table_get(pr_family *f, uint32_t id) { return pr_table_get_oom(f, id, NULL); }

const pr_table *pr_table_get_c(const pr_family *f, uint32_t id)
{
    size_t pos;
    return table_cmp_id(f, id, &pos) ? f->tables[pos].t : NULL;
}

pr_table *pr_table_new(pr_family *f, uint32_t id)
{
    size_t pos;
    if (table_cmp_id(f, id, &pos))
        return table_own(f, pos) < 0 ? NULL : f->tables[pos].t;
    /* rules name tables by slot: they stay as they are (and may stay shared) */
    int32_t slot = pr_table_slot(f, id);
    if (slot < 0)
        return NULL;
    pr_table *t = pr_calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    void *v = f->tables;
    pr_table_ref *ref = pr_gap_insert(&v, &f->tables_head, f->ntables, &f->captables, sizeof(pr_table_ref), pos);
    if (!ref) {
        free(t);
        return NULL;
    }
    f->tables = v;
    atomic_init(&t->refs, 1u);
    t->id = id;
    t->free_slot = SLOT_NONE;
    pr_trie_init(&t->trie, fam_bits(f->family));
    ref->id = id;
    ref->slot = (uint32_t)slot;
    ref->t = t;
    f->ntables++;
    f->tslots[slot] = t;
    return t;
}

void pr_family_free(pr_family *f)
{
    for (size_t i = 0; i < f->ntables; i++)
        pr_table_unref(f->tables[i].t);
    if (f->tables)
        free(f->tables - f->tables_head);
    free(f->tslots);
    free(f->tids);
    f->tslots = NULL;
    f->tids = NULL;
    f->ntslots = f->captslots = f->captids = 0;
    if (f->rshare) {
        pr_rshare_unref(f->rshare);
        f->rshare = NULL;
    } else {
        free(pr_rules_block(f));
        pr_rindex_free(&f->index);
    }
    f->tables = NULL;
    f->rules = NULL;
    memset(&f->index, 0, sizeof(f->index));
    f->ntables = f->captables = f->tables_head = f->nrules = f->caprules = f->rules_head = 0;
}

int pr_family_clone(pr_family *dst, const pr_family *src)
{
    memset(dst, 0, sizeof(*dst));
    dst->family = src->family;
    dst->rule_seq = src->rule_seq;
    if (src->nrules) {
        dst->rules = pr_malloc(src->nrules * sizeof(pr_rule));
        if (!dst->rules)
            return -PR_ENOMEM;
        memcpy(dst->rules, src->rules, src->nrules * sizeof(pr_rule));
        dst->nrules = dst->caprules = src->nrules;
    }
    if (pr_rindex_rebuild(&dst->index, dst->rules, dst->nrules) < 0)
        return -PR_ENOMEM;
    if (tids_copy(dst, src) < 0)
        return -PR_ENOMEM;
    if (src->ntables) {
        dst->tables = pr_calloc(src->ntables, sizeof(pr_table_ref));
        if (!dst->tables)
            return -PR_ENOMEM;
        dst->captables = src->ntables;
    }
    for (size_t i = 0; i < src->ntables; i++) {
        pr_table *d = table_copy(src->tables[i].t);
        if (!d)
            return -PR_ENOMEM;
        dst->tables[i].id = d->id;
        dst->tables[i].slot = src->tables[i].slot;
        dst->tables[i].t = d;
        dst->tslots[src->tables[i].slot] = d;
        dst->ntables = i + 1;
    }
    return 0;
}

int pr_family_share(pr_family *dst, pr_family *src)
{
    memset(dst, 0, sizeof(*dst));
    dst->family = src->family;
    if (!src->rshare) {
        pr_rshare *sh = pr_malloc(sizeof(*sh));
        if (!sh)
            return -PR_ENOMEM;
        atomic_init(&sh->refs, 1u);
        sh->rules = pr_rules_block(src);
        sh->index = src->index;
        src->rshare = sh;
        src->caprules = src->nrules;   /* the array is no longer src's to grow in place */
    }
    atomic_fetch_add_explicit(&src->rshare->refs, 1u, memory_order_relaxed);
    dst->rshare = src->rshare;
    dst->rules = src->rules;
    dst->nrules = dst->caprules = src->nrules;
    dst->rules_head = src->rules_head;   /* the block is the same: freed from its start */
    dst->rule_seq = src->rule_seq;
    dst->index = src->index;
    if (tids_copy(dst, src) < 0)
        return -PR_ENOMEM;   /* freed by pr_family_free as below */
    if (src->ntables) {
        dst->tables = pr_malloc(src->ntables * sizeof(pr_table_ref));
        if (!dst->tables)
            return -PR_ENOMEM;   /* dst's rules reference is dropped by pr_family_free */
        dst->captables = src->ntables;
    }
    for (size_t i = 0; i < src->ntables; i++) {
        atomic_fetch_add_explicit(&src->tables[i].t->refs, 1u, memory_order_relaxed);
        dst->tables[i] = src->tables[i];
        dst->tslots[src->tables[i].slot] = src->tables[i].t;
    }
    dst->ntables = src->ntables;
    return 0;
}

/* ---------------------------------------------------------------- routes */

void pr_route_free_contents(pr_route *r)
{
    free(r->nhx);
    r->nhx = NULL;
}

int pr_route_copy(pr_route *dst, const pr_route *src)
{
    *dst = *src;
    dst->nhx = NULL;
    if (src->nh_count > 1) {
        size_t n = src->nh_count - 1;
        dst->nhx = pr_malloc(n * sizeof(pr_nh));
        if (!dst->nhx)
            return -PR_ENOMEM;
        memcpy(dst->nhx, src->nhx, n * sizeof(pr_nh));
    }
    return 0;
}

static pr_rlist *slot_of(pr_table *t, const uint8_t *dst, unsigned len, int create)
{
    uint32_t *v = pr_trie_find(&t->trie, dst, len);
    if (v)
        return &t->slots[*v];
    if (!create)
        return NULL;
    uint32_t idx;
    if (t->free_slot != SLOT_NONE) {
        idx = t->free_slot;
        t->free_slot = t->slots[idx].cap;
        t->slots[idx].cap = 0;
    } else {
        size_t cap = t->capslots;
        pr_rlist *ns = pr_grow(t->slots, &cap, (size_t)t->nslots + 1, sizeof(pr_rlist));
        if (!ns)
            return NULL;
        t->slots = ns;
        t->capslots = (uint32_t)cap;
        idx = t->nslots++;
    }
    memset(&t->slots[idx], 0, sizeof(pr_rlist));
    if (pr_trie_insert(&t->trie, dst, len, idx) < 0) {
        t->slots[idx].cap = t->free_slot;
        t->free_slot = idx;
        return NULL;
    }
    pr_table_lpm_drop(t);
    return &t->slots[idx];
}

static void slot_release(pr_table *t, pr_rlist *s, const uint8_t *dst, unsigned len)
{
    uint32_t idx = (uint32_t)(s - t->slots);
    free(s->v);
    s->v = NULL;
    s->n = 0;
    s->cap = t->free_slot;
    t->free_slot = idx;
    pr_trie_delete(&t->trie, dst, len);
    pr_table_lpm_drop(t);
}

static int rlist_insert_at(pr_rlist *s, uint32_t pos, const pr_route *r)
{
    if (s->n == s->cap) {
        uint32_t ncap = s->cap ? s->cap * 2 : 1;
        pr_route *nv = pr_realloc(s->v, (size_t)ncap * sizeof(pr_route));
        if (!nv)
            return -PR_ENOMEM;
        s->v = nv;
        s->cap = ncap;
    }
    memmove(&s->v[pos + 1], &s->v[pos], (size_t)(s->n - pos) * sizeof(pr_route));
    s->v[pos] = *r;
    s->n++;
    return 0;
}

static void rlist_remove_at(pr_rlist *s, uint32_t pos)
{
    pr_route_free_contents(&s->v[pos]);
    memmove(&s->v[pos], &s->v[pos + 1], (size_t)(s->n - pos - 1) * sizeof(pr_route));
    s->n--;
}

/* Deletes route pos of slot s (the slot goes with its last route); 0. */
static int route_remove(pr_table *t, pr_rlist *s, uint32_t pos, const uint8_t *dst, unsigned len)
{
    rlist_remove_at(s, pos);
    t->nroutes--;
    if (s->n == 0)
        slot_release(t, s, dst, len);
    return 0;
}

/* Store nr at pos of its prefix's slot (s, or a new slot when NULL). */
static int table_insert_at(pr_table *t, pr_rlist *s, uint32_t pos, const pr_route *nr)
{
    if (!s) {
        s = slot_of(t, nr->dst, nr->dst_len, 1);
        if (!s)
            return -PR_ENOMEM;
        pos = 0;
    }
    if (rlist_insert_at(s, pos, nr) < 0)
        return -PR_ENOMEM;
    t->nroutes++;
    return 0;
}

void pr_route_drop_leg(pr_route *r, uint32_t k)
{
    if (r->nh_count <= 1)
        return;
    if (k == 0)
        r->nh0 = r->nhx[0];
    uint32_t from = k == 0 ? 1 : k;
    memmove(&r->nhx[from - 1], &r->nhx[from], (size_t)(r->nh_count - 1 - from) * sizeof(pr_nh));
    r->nh_count--;
    if (r->nh_count == 1) {
        free(r->nhx);
        r->nhx = NULL;
    }
}

static bool nh_equal(const pr_nh *a, const pr_nh *b)
{
    /* nh_comp: device, gateway, weight, flags except DEAD/LINKDOWN */
    return a->ifindex == b->ifindex && a->gw_family == b->gw_family &&
           memcmp(a->gw, b->gw, 16) == 0 && a->weight == b->weight &&
           ((a->flags ^ b->flags) & ~(PR_RTNH_F_DEAD | PR_RTNH_F_LINKDOWN)) == 0;
}

/* fib_find_info: the same fib_info is shared by identical routes. */
static bool same_info(const pr_route *a, const pr_route *b)
{
    if (a->protocol != b->protocol || a->scope != b->scope || a->has_prefsrc != b->has_prefsrc ||
        a->priority != b->priority || a->type != b->type || a->table != b->table ||
        a->nh_count != b->nh_count || a->nh_id != b->nh_id ||
        a->metrics_present != b->metrics_present)
        return false;
    if (a->has_prefsrc && memcmp(a->prefsrc, b->prefsrc, 16) != 0)
        return false;
    for (unsigned k = 0; k < 18; k++)
        if ((a->metrics_present >> k) & 1u)
            if (a->metrics[k] != b->metrics[k])
                return false;
    for (uint32_t i = 0; i < a->nh_count; i++)
        if (!nh_equal(route_nh_c(a, i), route_nh_c(b, i)))
            return false;
    return true;
}

/* IPv6: routes that can become ECMP siblings (rt6_qualify_for_ecmp). */
static bool v6_ecmp_ok(const pr_route *r)
{
    return !r->addrconf && r->nh_id == 0 && r->nh0.gw_family != 0 && r->type == PR_RTN_UNICAST;
}

static int insert_v4(pr_policy *p, pr_table *t, const pr_route *nr, int nlflags)
{
    pr_rlist *s = slot_of(t, nr->dst, nr->dst_len, 0);
    uint32_t pos = 0;
    if (s) {
        /* first entry with the same key (tos, priority), or the insertion point */
        uint32_t first = s->n;
        for (uint32_t i = 0; i < s->n; i++) {
            const pr_route *e = &s->v[i];
            if (e->tos > nr->tos)
                continue;
            if (e->tos < nr->tos || e->priority >= nr->priority) {
                first = i;
                break;
            }
        }
        pos = first;
        if (first < s->n && s->v[first].tos == nr->tos && s->v[first].priority == nr->priority) {
            if (nlflags & PR_NLM_F_EXCL)
                return pr_fail(p, PR_EEXIST, "");
            uint32_t match = UINT32_MAX, end = first;
            for (uint32_t i = first; i < s->n; i++) {
                const pr_route *e = &s->v[i];
                if (e->tos != nr->tos || e->priority != nr->priority)
                    break;
                end = i + 1;
                if (match == UINT32_MAX && e->type == nr->type && same_info(e, nr))
                    match = i;
            }
            if (end == first)
                end = first + 1;
            if (nlflags & PR_NLM_F_REPLACE) {
                if (match != UINT32_MAX)
                    return match == first ? 2 : pr_fail(p, PR_EEXIST, "");
                pr_route_free_contents(&s->v[first]);
                s->v[first] = *nr;
                return 0;
            }
            if (match != UINT32_MAX)
                return pr_fail(p, PR_EEXIST, "");
            /* APPEND: after the equal-key run; otherwise before its first entry */
            if (nlflags & PR_NLM_F_APPEND) {
                uint32_t i = first;
                while (i < s->n && s->v[i].tos == nr->tos && s->v[i].priority == nr->priority)
                    i++;
                pos = i;
            } else {
                pos = first;
            }
        }
    }
    if (!(nlflags & PR_NLM_F_CREATE))
        return pr_fail(p, PR_ENOENT, "");
    return table_insert_at(t, s, pos, nr);
}

static int insert_v6(pr_policy *p, pr_table *t, const pr_route *nr, int nlflags)
{
    /* fib6_add_rt2node */
    bool replace = (nlflags & PR_NLM_F_REPLACE) != 0;
    bool add = (nlflags & PR_NLM_F_CREATE) != 0;
    pr_rlist *s = slot_of(t, nr->dst, nr->dst_len, 0);
    uint32_t ins = s ? s->n : 0;
    if (s) {
        uint32_t fallback = UINT32_MAX;
        for (uint32_t i = 0; i < s->n; i++) {
            pr_route *e = &s->v[i];
            if (e->priority == nr->priority) {
                if (nlflags & PR_NLM_F_EXCL)
                    return pr_fail(p, PR_EEXIST, "");
                if (replace) {
                    if (v6_ecmp_ok(e) == v6_ecmp_ok(nr)) {
                        pr_route_free_contents(e);
                        *e = *nr;
                        return 0;
                    }
                    if (fallback == UINT32_MAX)
                        fallback = i;
                    continue;
                }
                /* rt6_duplicate_nexthop: with a nexthop object on either
                 * side, only the same object is a duplicate (nexthop_cmp) */
                if (e->nh_id || nr->nh_id) {
                    if (e->nh_id == nr->nh_id)
                        return pr_fail(p, PR_EEXIST, "");
                } else {
                    for (uint32_t k = 0; k < e->nh_count; k++) {
                        const pr_nh *a = route_nh_c(e, k);
                        if (a->ifindex == nr->nh0.ifindex && a->gw_family == nr->nh0.gw_family &&
                            memcmp(a->gw, nr->nh0.gw, 16) == 0)
                            return pr_fail(p, PR_EEXIST, "");
                    }
                }
                if (v6_ecmp_ok(e) && v6_ecmp_ok(nr) && nr->nh_count == 1 && e->nh_count < PR_MAX_NEXTHOPS) {
                    /* a sibling: the model keeps siblings as one multipath route */
                    pr_nh *nx = pr_realloc(e->nhx, (size_t)e->nh_count * sizeof(pr_nh));
                    if (!nx)
                        return -PR_ENOMEM;
                    e->nhx = nx;
                    e->nhx[e->nh_count - 1] = nr->nh0;
                    e->nh_count++;
                    return 2;
                }
            }
            if (e->priority > nr->priority) {
                ins = i;
                break;
            }
        }
        if (replace && fallback != UINT32_MAX) {
            /* no same-metric route of the same ECMP-ability: the first one goes */
            pr_route_free_contents(&s->v[fallback]);
            s->v[fallback] = *nr;
            return 0;
        }
        if (replace && !add)
            return pr_fail(p, PR_ENOENT, "");
    } else if (replace && !add) {
        return pr_fail(p, PR_ENOENT, "");
    }
    return table_insert_at(t, s, ins, nr);
}

/* Takes ownership of nr->nhx on success (and on failure frees it). */
int pr_route_insert(pr_policy *p, const pr_route *nr, int nlflags)
{
    pr_family *f = pr_fam(p, nr->family);
    pr_table *t = pr_table_new(f, nr->table);
    pr_route copy = *nr;
    if (!t) {
        pr_route_free_contents(&copy);
        return -PR_ENOMEM;
    }
    /* insert_*: 0 stored (ownership taken), 2 success without storing, <0 error */
    int rc = nr->family == PR_AF_INET ? insert_v4(p, t, nr, nlflags) : insert_v6(p, t, nr, nlflags);
    if (rc != 0)
        pr_route_free_contents(&copy);
    return rc < 0 ? rc : 0;
}

static bool del_filter_match(const pr_route *e, const pr_route_req *q)
{
    if (q->type && (e->nh_id ? e->fa_type : e->type) != q->type)
        return false;
    if (e->nh_id && !(q->present & (1u << PR_RTA_NH_ID)) &&
        (((q->present & (1u << PR_RTA_OIF)) && q->oif) || q->gw_family ||
         ((q->present & (1u << PR_RTA_MULTIPATH)) && q->nh_count)))
        return false;   /* fib_nh_match: a nexthop spec never matches an object's route */
    if (q->family == PR_AF_INET && q->scope != PR_SCOPE_NOWHERE && e->scope != q->scope)
        return false;
    if ((q->present & (1u << PR_RTA_PREFSRC)) &&
        (!e->has_prefsrc || memcmp(e->prefsrc, q->prefsrc, 16) != 0))
        return false;
    if (q->protocol && e->protocol != q->protocol)
        return false;
    if ((q->present & (1u << PR_RTA_PRIORITY)) && q->priority && e->priority != q->priority)
        return false;
    if ((q->present & (1u << PR_RTA_NH_ID)) && q->nh_id != e->nh_id)
        return false;
    bool has_oif = (q->present & (1u << PR_RTA_OIF)) && q->oif;
    if (has_oif || q->gw_family) {
        const pr_nh *nh = &e->nh0;
        if (has_oif && q->oif != nh->ifindex)
            return false;
        if (q->gw_family && (q->gw_family != nh->gw_family || memcmp(q->gw, nh->gw, 16) != 0))
            return false;
        return true;
    }
    if (q->nh_count && (q->present & (1u << PR_RTA_MULTIPATH))) {
        if (q->nh_count != e->nh_count)
            return false;
        for (uint32_t i = 0; i < q->nh_count; i++) {
            const pr_nh *nh = route_nh_c(e, i);
            const pr_nexthop_req *l = &q->nh[i];
            if (l->ifindex && l->ifindex != nh->ifindex)
                return false;
            if (l->gw_family && (l->gw_family != nh->gw_family || memcmp(l->gw, nh->gw, 16) != 0))
                return false;
        }
    }
    return true;
}

int pr_route_delete_req(pr_policy *p, const pr_route_req *q)
{
    pr_family *f = pr_fam(p, q->family);
    uint32_t tid = q->table ? q->table : PR_TABLE_MAIN;
    int oom = 0;
    pr_table *t = pr_table_get_oom(f, tid, &oom);
    if (oom)
        return pr_fail(p, PR_ENOMEM, "out of memory");
    if (!t)
        return pr_fail(p, PR_ESRCH, "FIB table does not exist");
    uint8_t key[16] = {0};
    addr_mask(key, q->dst, q->dst_len, fam_bytes(q->family));
    pr_rlist *s = slot_of(t, key, q->dst_len, 0);
    if (!s) {
        /* IPv6: the root node holds the null entry, and deleting it is ENOENT
         * unless a device, gateway or metric filter rules it out */
        if (q->family == PR_AF_INET6 && q->dst_len == 0 && !q->gw_family &&
            !((q->present & (1u << PR_RTA_OIF)) && q->oif) &&
            !((q->present & (1u << PR_RTA_PRIORITY)) && q->priority && q->priority != 0xFFFFFFFFu))
            return pr_fail(p, PR_ENOENT, "");
        return pr_fail(p, PR_ESRCH, "");
    }
    for (uint32_t i = 0; i < s->n; i++) {
        pr_route *e = &s->v[i];
        if (q->family == PR_AF_INET && e->tos != q->tos)
            continue;
        if (q->family == PR_AF_INET6) {
            /* ip6_route_del: metric given must match; oif/gateway filter legs */
            if ((q->present & (1u << PR_RTA_PRIORITY)) && q->priority && e->priority != q->priority)
                continue;
            bool want_id = (q->present & (1u << PR_RTA_NH_ID)) && q->nh_id;
            if (want_id && e->nh_id != q->nh_id)
                continue;
            if (e->nh_id) {
                /* a route through an object goes whole, whatever oif/gateway say */
                if (q->protocol && e->protocol != q->protocol)
                    continue;
                return route_remove(t, s, i, key, q->dst_len);
            }
            if ((q->present & (1u << PR_RTA_OIF)) && q->oif) {
                bool any = false;
                for (uint32_t k = 0; k < e->nh_count; k++)
                    any |= route_nh_c(e, k)->ifindex == q->oif;
                if (!any)
                    continue;
            }
            if (q->gw_family) {
                /* delete only the matching sibling of a multipath route */
                uint32_t k;
                for (k = 0; k < e->nh_count; k++) {
                    const pr_nh *nh = route_nh_c(e, k);
                    if (nh->gw_family == q->gw_family && memcmp(nh->gw, q->gw, 16) == 0 &&
                        (!q->oif || nh->ifindex == q->oif))
                        break;
                }
                if (k == e->nh_count)
                    continue;
                if (q->protocol && e->protocol != q->protocol)
                    continue;
                if (e->nh_count > 1) {
                    pr_route_drop_leg(e, k);   /* only that sibling goes */
                    return 0;
                }
            }
            if (q->protocol && e->protocol != q->protocol)
                continue;
            return route_remove(t, s, i, key, q->dst_len);
        }
        if (!del_filter_match(e, q))
            continue;
        return route_remove(t, s, i, key, q->dst_len);
    }
    return pr_fail(p, PR_ESRCH, "");
}

/* ---------------------------------------------------------------- editing */

typedef struct {
    uint8_t (*keys)[16];
    uint8_t *lens;
    uint32_t *slots;
    size_t n, cap;
    int oom;
} slot_vec;

static int slotvec_cb(void *ctx, const uint8_t key[16], unsigned plen, uint32_t value)
{
    slot_vec *v = ctx;
    if (v->n == v->cap) {
        size_t ncap = v->cap ? v->cap * 2 : 64;
        void *k = pr_realloc(v->keys, ncap * 16);
        if (!k) { v->oom = 1; return 1; }
        v->keys = k;
        void *l = pr_realloc(v->lens, ncap);
        if (!l) { v->oom = 1; return 1; }
        v->lens = l;
        void *s = pr_realloc(v->slots, ncap * sizeof(uint32_t));
        if (!s) { v->oom = 1; return 1; }
        v->slots = s;
        v->cap = ncap;
    }
    memcpy(v->keys[v->n], key, 16);
    v->lens[v->n] = (uint8_t)plen;
    v->slots[v->n] = value;
    v->n++;
    return 0;
}

void pr_routes_edit(pr_policy *p, uint8_t family, pr_route_edit_fn fn, void *ctx)
{
    pr_family *f = pr_fam(p, family);
    for (size_t ti = 0; ti < f->ntables; ti++) {
        /* callers made every table writable first (pr_policy_own); a table
         * still shared here (ENOMEM then) is left alone rather than written */
        if (table_own(f, ti) < 0)
            continue;
        pr_table *t = f->tables[ti].t;
        slot_vec v = {0};
        pr_trie_walk(&t->trie, slotvec_cb, &v);
        for (size_t i = 0; i < v.n; i++) {
            pr_rlist *s = &t->slots[v.slots[i]];
            for (uint32_t j = 0; j < s->n;) {
                if (fn(p, &s->v[j], ctx)) {
                    rlist_remove_at(s, j);
                    t->nroutes--;
                } else {
                    j++;
                }
            }
            if (s->n == 0)
                slot_release(t, s, v.keys[i], v.lens[i]);
        }
        free(v.keys);
        free(v.lens);
        free(v.slots);
    }
}

/* ---------------------------------------------------------------- dumps */

typedef struct {
    pr_policy *p;
    const pr_table *t;
    int oom;
} dump_ctx;

static int dump_cb(void *ctx, const uint8_t key[16], unsigned plen, uint32_t value)
{
    dump_ctx *d = ctx;
    (void)key;
    (void)plen;
    const pr_rlist *s = &d->t->slots[value];
    pr_policy *p = d->p;
    const pr_route **nd = pr_grow((void *)p->dump, &p->capdump, p->ndump + s->n, sizeof(*p->dump));
    if (!nd) {
        d->oom = 1;
        return 1;
    }
    p->dump = nd;
    for (uint32_t i = 0; i < s->n; i++)
        p->dump[p->ndump++] = &s->v[i];
    return 0;
}

size_t pr_route_dump(pr_policy *p, int family, uint32_t table)
{
    p->ndump = 0;
    if (family != PR_AF_INET && family != PR_AF_INET6)
        return 0;
    const pr_family *f = pr_fam_c(p, (uint8_t)family);
    for (size_t i = 0; i < f->ntables; i++) {
        const pr_table *t = f->tables[i].t;
        if (table && t->id != table)
            continue;
        dump_ctx d = {p, t, 0};
        pr_trie_walk(&t->trie, dump_cb, &d);
    }
    return p->ndump;
}

int pr_route_get_dumped(const pr_policy *p, size_t i, pr_route_info *out, pr_nexthop_info *nh, size_t nh_cap)
{
    if (i >= p->ndump)
        return -PR_ENOENT;
    const pr_route *r = p->dump[i];
    memset(out, 0, sizeof(*out));
    out->family = r->family;
    out->dst_len = r->dst_len;
    out->tos = r->tos;
    out->protocol = r->protocol;
    out->scope = r->scope;
    out->type = r->type;
    out->pref = r->pref;
    out->table = r->table;
    out->priority = r->priority;
    out->nh_id = r->nh_id;
    out->nh_count = r->nh_count;
    out->has_prefsrc = r->has_prefsrc;
    out->metrics_present = r->metrics_present;
    memcpy(out->metrics, r->metrics, sizeof(out->metrics));
    memcpy(out->dst, r->dst, 16);
    memcpy(out->prefsrc, r->prefsrc, 16);
    for (uint32_t k = 0; k < r->nh_count && k < nh_cap; k++) {
        const pr_nh *n = route_nh_c(r, k);
        nh[k].gw_family = n->gw_family;
        nh[k].flags = n->flags;
        nh[k].weight = n->weight;
        nh[k].ifindex = n->ifindex;
        memcpy(nh[k].gw, n->gw, 16);
    }
    return 0;
}

/* ---------------------------------------------------------------- lookups */

static bool nh_usable4(const pr_policy *p, const pr_nh *nh, const pr_flow4 *fl)
{
    if (nh->flags & PR_RTNH_F_DEAD)
        return false;
    if ((nh->flags & PR_RTNH_F_LINKDOWN) && !fl->ignore_linkstate) {
        const pr_link *l = pr_link_by_index_c(p, nh->ifindex);
        if (l && pr_conf_ignore_linkdown(p, l, PR_AF_INET))
            return false;
    }
    if (fl->oif && fl->oif != nh->ifindex)
        return false;
    return true;
}

static int route_error(uint8_t type)
{
    switch (type) {
    case PR_RTN_BLACKHOLE: return -PR_EINVAL;
    case PR_RTN_UNREACHABLE: return -PR_EHOSTUNREACH;
    case PR_RTN_PROHIBIT: return -PR_EACCES;
    case PR_RTN_THROW: return -PR_EAGAIN;
    case PR_RTN_NAT: case PR_RTN_XRESOLVE: return -PR_EINVAL;
    default: return 0;
    }
}

/* Try the routes of one slot; 1 = result set, 0 = nothing usable, 2 =
 * nothing usable and the leaf is done (res->route: the object's route),
 * <0 = error. */
static int try_slot4(const pr_policy *p, const pr_table *t, const pr_rlist *s, unsigned plen,
                     const pr_flow4 *fl, pr_fib_res *res)
{
    for (uint32_t i = 0; i < s->n; i++) {
        const pr_route *e = &s->v[i];
        if (e->tos && e->tos != (fl->tos & 0x1Cu))
            continue;
        if (e->scope < fl->scope)
            continue;
        int err = route_error(e->type);
        if (err) {
            res->slot = s;
            res->route = e;
            res->table = t->id;
            res->prefixlen = (uint8_t)plen;
            res->type = e->type;
            res->scope = e->scope;
            res->nh_index = 0;
            return err;
        }
        for (uint32_t k = 0; k < e->nh_count; k++) {
            if (!nh_usable4(p, route_nh_c(e, k), fl))
                continue;
            res->slot = s;
            res->route = e;
            res->table = t->id;
            res->prefixlen = (uint8_t)plen;
            res->type = e->type;
            res->scope = e->scope;
            res->nh_index = k;
            return 1;
        }
        /* fib_table_lookup: a route through a nexthop object without a
         * usable nexthop ends the trie leaf ("goto miss"): the routes after
         * it, and the shorter prefixes of the same key, which share the
         * leaf, are not tried (POLROUTE_SCENARIO=462:4) */
        if (e->nh_id) {
            res->route = e;
            return 2;
        }
    }
    return 0;
}

/* fast4.c asks each prefix of a table what a lookup landing on it gives. */
int pr_fib4_try_slot(const pr_policy *p, const pr_table *t, uint32_t slot, unsigned plen, const pr_flow4 *fl,
                     pr_fib_res *res)
{
    int rc = try_slot4(p, t, &t->slots[slot], plen, fl, res);
    /* a leaf ended by a nexthop object's route: reported as found, and a
     * route with nh_id is never a fast outcome (fast4.c outcome_of_route),
     * so such rows take the exact path */
    return rc == 2 ? 1 : rc;
}

/* The key of a slot's prefix (its routes' masked destination). */
static uint32_t slot_key4(const pr_rlist *s)
{
    return s->n ? v4_get(s->v[0].dst) : 0;
}

int pr_fib4_table_lookup(const pr_policy *p, const pr_table *t, const pr_flow4 *fl, pr_fib_res *res)
{
    uint8_t key[16] = {0};
    v4_put(key, fl->daddr);
    /* The longest match decides almost always: one pass down the trie (or
     * three loads in the compiled copy), and the full list of covering
     * prefixes only when its routes are unusable. */
    uint32_t v0;
    uint8_t l0;
    /* acquire: a compiled copy published by pr_policy_compile while this
     * (shared) table is being read is seen whole */
    const pr_lpm4 *lpm = atomic_load_explicit(&t->lpm, memory_order_acquire);
    if (lpm && (v0 = pr_lpm4_lookup(lpm, fl->daddr)) != PR_LPM4_NONE && t->slots[v0].n) {
        l0 = t->slots[v0].v[0].dst_len;
    } else if (lpm && v0 == PR_LPM4_NONE) {
        return -PR_EAGAIN;
    } else if (!pr_trie_lpm(&t->trie, key, &v0, &l0)) {
        return -PR_EAGAIN;
    }
    int rc0 = try_slot4(p, t, &t->slots[v0], l0, fl, res);
    if (rc0 == 1)
        return 0;
    if (rc0 < 0)
        return rc0;
    bool skip = rc0 == 2;
    uint32_t skip_key = skip ? slot_key4(&t->slots[v0]) : 0;
    uint32_t vals[PR_TRIE_MAX_MATCHES];
    uint8_t lens[PR_TRIE_MAX_MATCHES];
    size_t n = pr_trie_matches(&t->trie, key, vals, lens, PR_TRIE_MAX_MATCHES);
    for (size_t i = 1; i < n; i++) {
        if (skip && slot_key4(&t->slots[vals[i]]) == skip_key)
            continue;   /* the same trie leaf */
        int rc = try_slot4(p, t, &t->slots[vals[i]], lens[i], fl, res);
        if (rc == 1)
            return 0;
        if (rc < 0)
            return rc;
        if (rc == 2) {
            skip = true;
            skip_key = slot_key4(&t->slots[vals[i]]);
        }
    }
    return -PR_EAGAIN;
}

/* Local/main merged in one trie: same prefix length, local entries first. */
static int merged_walk(const pr_policy *p, const pr_flow4 *fl, pr_fib_res *res)
{
    const pr_family *f = &p->v4;
    const pr_table *lt = pr_table_get_c(f, PR_TABLE_LOCAL);
    const pr_table *mt = pr_table_get_c(f, PR_TABLE_MAIN);
    uint8_t key[16] = {0};
    v4_put(key, fl->daddr);
    uint32_t lv[PR_TRIE_MAX_MATCHES], mv[PR_TRIE_MAX_MATCHES];
    uint8_t ll[PR_TRIE_MAX_MATCHES], ml[PR_TRIE_MAX_MATCHES];
    size_t ln = lt ? pr_trie_matches(&lt->trie, key, lv, ll, PR_TRIE_MAX_MATCHES) : 0;
    size_t mn = mt ? pr_trie_matches(&mt->trie, key, mv, ml, PR_TRIE_MAX_MATCHES) : 0;
    size_t i = 0, j = 0;
    int rc = -PR_EAGAIN;
    bool skip = false;
    uint32_t skip_key = 0;
    while (i < ln || j < mn) {
        int use_local = j >= mn || (i < ln && ll[i] >= ml[j]);
        int r;
        const pr_rlist *sl = use_local ? &lt->slots[lv[i]] : &mt->slots[mv[j]];
        if (skip && slot_key4(sl) == skip_key) {
            r = 0;   /* the same trie leaf as a nexthop object's route that missed */
            use_local ? i++ : j++;
        } else if (use_local) {
            r = try_slot4(p, lt, &lt->slots[lv[i]], ll[i], fl, res);
            i++;
        } else {
            r = try_slot4(p, mt, &mt->slots[mv[j]], ml[j], fl, res);
            j++;
        }
        if (r == 2) {
            skip = true;
            skip_key = slot_key4(sl);
            continue;
        }
        if (r > 0) {
            res->table = PR_TABLE_MAIN;   /* one trie: reported as main */
            rc = 0;
            break;
        }
        if (r < 0) {
            res->table = PR_TABLE_MAIN;
            rc = r;
            break;
        }
    }
    return rc;
}

/* A lookup in the local table; while merged that table is main's trie. */
int pr_fib4_local_lookup(const pr_policy *p, const pr_flow4 *fl, pr_fib_res *res)
{
    if (!p->v4_custom_rules)
        return merged_walk(p, fl, res);
    const pr_table *lt = pr_table_get_c(&p->v4, PR_TABLE_LOCAL);
    return lt ? pr_fib4_table_lookup(p, lt, fl, res) : -PR_EAGAIN;
}

int pr_fib4_merged_lookup(const pr_policy *p, const pr_flow4 *fl, pr_fib_res *res)
{
    const pr_family *f = &p->v4;
    int rc = merged_walk(p, fl, res);
    if (rc == -PR_EAGAIN) {
        const pr_table *dt = pr_table_get_c(f, PR_TABLE_DEFAULT);
        if (dt)
            rc = pr_fib4_table_lookup(p, dt, fl, res);
    }
    if (rc == -PR_EAGAIN)
        rc = -PR_ENETUNREACH;
    return rc;
}

/* IPv6: rt6_select over one node, then backtrack to shorter prefixes. */
static bool nh_alive6(const pr_policy *p, const pr_nh *nh)
{
    if (nh->flags & PR_RTNH_F_DEAD)
        return false;
    if (nh->flags & PR_RTNH_F_LINKDOWN) {
        const pr_link *l = pr_link_by_index_c(p, nh->ifindex);
        if (l && pr_conf_ignore_linkdown(p, l, PR_AF_INET6))
            return false;
    }
    return true;
}

static int score6(const pr_route *e, const pr_nh *nh, const pr_flow6 *fl)
{
    int m = 0;
    uint32_t dev = e->type == PR_RTN_UNICAST || e->type == PR_RTN_LOCAL || e->type == PR_RTN_ANYCAST ||
                   e->type == PR_RTN_MULTICAST ? nh->ifindex : PR_LOOPBACK_IFINDEX;
    if (!fl->score_oif || dev == fl->score_oif)
        m = 2;
    if (!m && fl->strict_oif)
        return -1;
    /* router preference: medium (0) decodes to 2, high (1) to 3, low (3) to 1 */
    int pref = e->pref == 1 ? 3 : e->pref == 3 ? 1 : 2;
    m |= pref << 2;
    return m;
}

int pr_fib6_table_lookup(const pr_policy *p, const pr_table *t, const pr_flow6 *fl, pr_fib_res *res)
{
    uint32_t vals[PR_TRIE_MAX_MATCHES];
    uint8_t lens[PR_TRIE_MAX_MATCHES];
    size_t n = pr_trie_matches(&t->trie, fl->daddr, vals, lens, PR_TRIE_MAX_MATCHES);
    for (size_t i = 0; i < n; i++) {
        const pr_rlist *s = &t->slots[vals[i]];
        if (s->n == 0)
            continue;
        /* first metric group, then (if nothing matched) all the rest */
        uint32_t head_metric = s->v[0].priority;
        int best = -1;
        const pr_route *best_r = NULL;
        uint32_t best_k = 0;
        for (int pass = 0; pass < 2 && !best_r; pass++) {
            for (uint32_t j = 0; j < s->n; j++) {
                const pr_route *e = &s->v[j];
                if ((pass == 0) != (e->priority == head_metric))
                    continue;
                if (e->nh_id && e->type == PR_RTN_BLACKHOLE) {
                    /* __find_rr_leaf: a route through a blackhole object is
                     * taken at once, whatever the oif (POLROUTE_SCENARIO=14:6) */
                    best_r = e;
                    best_k = 0;
                    break;
                }
                for (uint32_t k = 0; k < e->nh_count; k++) {
                    const pr_nh *nh = route_nh_c(e, k);
                    if (!nh_alive6(p, nh))
                        continue;
                    int m = score6(e, nh, fl);
                    if (m < 0)
                        continue;
                    /* each leg is a sibling fib6_info of its own in the kernel's
                     * leaf list (__find_rr_leaf scores every one): with an oif to
                     * score by, the leg on that device wins over an earlier leg */
                    if (m > best) {
                        best = m;
                        best_r = e;
                        best_k = k;
                    }
                }
            }
        }
        if (best_r) {
            res->slot = s;
            res->route = best_r;
            res->nh_index = best_k;
            res->table = t->id;
            res->prefixlen = lens[i];
            res->type = best_r->type;
            res->scope = best_r->scope;
            int err = route_error(best_r->type);
            return err;
        }
    }
    return -PR_EAGAIN;
}

void pr_route_magic(pr_policy *p, int add, uint8_t family, uint8_t type, uint32_t table,
                    const uint8_t *dst, unsigned dst_len, const uint8_t *prefsrc,
                    uint32_t ifindex, uint32_t metric)
{
    if (add) {
        pr_route r;
        memset(&r, 0, sizeof(r));
        r.family = family;
        r.dst_len = (uint8_t)dst_len;
        addr_mask(r.dst, dst, dst_len, fam_bytes(family));
        r.protocol = PR_RTPROT_KERNEL;
        r.type = type;
        r.table = table;
        r.priority = metric;
        if (family == PR_AF_INET) {
            r.scope = type == PR_RTN_LOCAL ? PR_SCOPE_HOST : PR_SCOPE_LINK;
            r.nh0.scope = type == PR_RTN_LOCAL ? PR_SCOPE_NOWHERE : PR_SCOPE_HOST;
        } else {
            r.scope = PR_SCOPE_UNIVERSE;
            r.addrconf = 1;
        }
        if (prefsrc) {
            r.has_prefsrc = 1;
            memcpy(r.prefsrc, prefsrc, 16);
        }
        r.nh_count = 1;
        r.nh0.ifindex = ifindex;
        r.nh0.weight = 1;
        if (family == PR_AF_INET)
            pr_route_cache_saddr(p, &r);
        const pr_link *l = pr_link_by_index_c(p, ifindex);
        if (l && !pr_link_carrier(p, l) && type != PR_RTN_LOCAL && !(family == PR_AF_INET6 && type == PR_RTN_ANYCAST))
            r.nh0.flags |= PR_RTNH_F_LINKDOWN;
        char saved[sizeof(p->errmsg)];
        memcpy(saved, p->errmsg, sizeof(saved));
        (void)pr_route_insert(p, &r, PR_NLM_F_CREATE | PR_NLM_F_APPEND);
        memcpy(p->errmsg, saved, sizeof(saved));
        return;
    }
    pr_route_req q;
    memset(&q, 0, sizeof(q));
    q.family = family;
    q.dst_len = (uint8_t)dst_len;
    addr_mask(q.dst, dst, dst_len, fam_bytes(family));
    q.type = type;
    q.table = table;
    q.scope = PR_SCOPE_NOWHERE;
    q.protocol = PR_RTPROT_KERNEL;
    q.present = (1u << PR_RTA_OIF) | (1u << PR_RTA_PRIORITY);
    q.oif = ifindex;
    q.priority = metric;
    if (prefsrc && family == PR_AF_INET) {
        q.present |= 1u << PR_RTA_PREFSRC;
        memcpy(q.prefsrc, prefsrc, 16);
    }
    char saved[sizeof(p->errmsg)];
    memcpy(saved, p->errmsg, sizeof(saved));
    (void)pr_route_delete_req(p, &q);
    memcpy(p->errmsg, saved, sizeof(saved));
}
