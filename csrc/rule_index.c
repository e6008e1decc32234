/*
 * rule_index.c - finding the first matching rule without scanning the list.
 *
 * The kernel walks its rule list from the head and every "continue" (a miss,
 * a throw, a suppressed result, nop, goto) resumes the walk at some position.
 * So the question the walk asks is "the first rule at or after position i that
 * matches this flow".  This index answers it in time that grows with the
 * number of distinct rule *shapes*, not the number of rules - the idea of
 * tuple space search (Open vSwitch's classifier): rules whose selectors have
 * the same shape (source length, destination length, iif present, oif
 * present, fwmark mask) are exact-match lookups once the flow is masked the
 * same way, so each shape is a hash table from masked values to the rules
 * with those values.
 *
 * Positions move when rules are inserted, so rules are identified by an
 * order key instead: (priority << 32) | insertion serial.  List order is
 * exactly ascending order key (equal priorities keep insertion order), keys
 * never change, and the walk maps a key back to a position by binary search
 * in the sorted rule array.  Each bucket keeps its keys sorted, so "first at
 * or after" is a lower bound; the answer is the smallest candidate over all
 * shapes.
 *
 * An exact destination port and a tos (without DSCP) are exact matches too:
 * they are shape dimensions.  Which selectors the index keys is an
 * allow-list (rindex_keys below, by row of the rule field table, fields.c):
 * a rule is "simple" only if every selector it carries is on it - the OVS
 * classifier's minimask idea, a subtable covers only the fields it masks.
 * Every other rule (not, uid ranges, source ports, port ranges or masks,
 * ipproto, dscp, tunnel ids, l3mdev, flow labels, and any selector added to
 * the table later) is "complex": they sit in one sorted list that the caller
 * tests one by one with the full matcher, stopping at the best simple
 * candidate.  Their cost is linear in their own number only.
 */
#include <stdlib.h>
#include <string.h>

#include "fields.h"
#include "rule_index.h"

#define BIT(x) (1u << (x))
#define EMPTY UINT64_C(0)

static uint64_t key_hash(const pr_rkey *k)
{
    /* every key word in, two multiplies and a finalizer: probing hashes one
     * key per shape per walk step, so this is on the per-flow path */
    uint64_t a, b, c, d;
    memcpy(&a, k->src, 8);
    memcpy(&b, k->src + 8, 8);
    memcpy(&c, k->dst, 8);
    memcpy(&d, k->dst + 8, 8);
    uint64_t e = ((uint64_t)(uint32_t)k->iif << 32) | (uint32_t)k->oif;
    e ^= ((uint64_t)k->dport << 8 | k->tos) * UINT64_C(0xD6E8FEB86659FD93);
    uint64_t h = (a ^ (b << 17 | b >> 47) ^ e) * UINT64_C(0x9E3779B97F4A7C15);
    h ^= (c ^ (d << 29 | d >> 35) ^ k->mark) * UINT64_C(0xC2B2AE3D27D4EB4F);
    h = (h ^ (h >> 31)) * UINT64_C(0xBF58476D1CE4E5B9);
    h ^= h >> 29;
    return h | 1;   /* never EMPTY */
}

static bool key_eq(const pr_rkey *a, const pr_rkey *b)
{
    return a->iif == b->iif && a->oif == b->oif && a->mark == b->mark && a->dport == b->dport &&
           a->tos == b->tos && memcmp(a->src, b->src, 16) == 0 &&
           memcmp(a->dst, b->dst, 16) == 0;
}

/* A destination port selector that is one exact port (no mask, start == end). */
static bool exact_dport(const pr_rule_req *r)
{
    return !r->dport_mask && r->dport_start == r->dport_end && r->dport_start != 0;
}

/* The allow-list: how this index keys each rule selector row.  Rows not
 * listed (PR_IK_NONE) cannot be keyed; a rule carrying one is complex.  List
 * a row here only together with its place in pr_rkey, rule_key, shape_find
 * and pr_rindex_first_simple. */
static const uint8_t rindex_keys[PR_RF_COUNT] = {
    [PR_RF_FROM] = PR_IK_PREFIX,
    [PR_RF_TO] = PR_IK_PREFIX,
    [PR_RF_TOS] = PR_IK_EXACT,        /* without DSCP: the flow's tos masked as rule_match does */
    [PR_RF_IIF] = PR_IK_IFINDEX,
    [PR_RF_OIF] = PR_IK_IFINDEX,
    [PR_RF_FWMARK] = PR_IK_MASKED,
    [PR_RF_FWMASK] = PR_IK_MASKED,    /* the shape's mask */
    [PR_RF_DPORT] = PR_IK_SINGLE,     /* one port; a range or a mask is complex */
};

uint8_t pr_rindex_key_kind(size_t row)
{
    return row < PR_RF_COUNT ? rindex_keys[row] : (uint8_t)PR_IK_NONE;
}

bool pr_rindex_is_simple(const pr_rule_req *r)
{
    uint64_t carried = pr_rule_selectors(r);
    for (unsigned i = 0; i < PR_RF_COUNT; i++) {
        if (!(carried & PR_RF_BIT(i)))
            continue;
        if (rindex_keys[i] == PR_IK_NONE)
            return false;
        if (rindex_keys[i] == PR_IK_SINGLE) {
            /* a range row holds start then end, each half the row */
            const pr_field_info *f = &pr_rule_fields[i];
            const unsigned char *v = (const unsigned char *)r + f->offset;
            if (memcmp(v, v + f->size / 2, f->size / 2) != 0)
                return false;
        }
    }
    return true;
}

static void rule_key(const pr_rule_req *r, int32_t iif_index, int32_t oif_index, pr_rkey *k)
{
    unsigned nb = r->family == PR_AF_INET ? 4u : 16u;
    memset(k, 0, sizeof(*k));
    addr_mask(k->src, r->src, r->src_len, nb);
    addr_mask(k->dst, r->dst, r->dst_len, nb);
    k->iif = iif_index;
    k->oif = oif_index;
    k->mark = r->fwmark & r->fwmask;
    k->dport = exact_dport(r) ? r->dport_start : 0;
    k->tos = r->tos;
}

static pr_rshape *shape_find(pr_rindex *ix, const pr_rule_req *r, bool has_iif, bool has_oif, bool create)
{
    bool has_dport = exact_dport(r), has_tos = r->tos != 0;
    for (uint32_t i = 0; i < ix->nshapes; i++) {
        pr_rshape *s = &ix->shapes[i];
        if (s->src_len == r->src_len && s->dst_len == r->dst_len && s->has_iif == has_iif &&
            s->has_oif == has_oif && s->fwmask == r->fwmask && s->has_dport == has_dport && s->has_tos == has_tos)
            return s;
    }
    if (!create)
        return NULL;
    if (ix->nshapes == ix->capshapes) {
        uint32_t ncap = ix->capshapes ? ix->capshapes * 2 : 8;
        pr_rshape *ns = pr_realloc(ix->shapes, (size_t)ncap * sizeof(pr_rshape));
        if (!ns)
            return NULL;
        ix->shapes = ns;
        ix->capshapes = ncap;
    }
    pr_rshape *s = &ix->shapes[ix->nshapes++];
    memset(s, 0, sizeof(*s));
    s->src_len = r->src_len;
    s->dst_len = r->dst_len;
    s->has_iif = has_iif;
    s->has_oif = has_oif;
    s->has_dport = has_dport;
    s->has_tos = has_tos;
    s->fwmask = r->fwmask;
    return s;
}

static pr_rbucket *bucket_probe(const pr_rshape *s, const pr_rkey *k, uint64_t h)
{
    if (!s->cap)
        return NULL;
    uint32_t mask = s->cap - 1;
    for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
        pr_rbucket *b = &s->slots[i];
        if (b->hash == EMPTY)
            return b;
        if (b->hash == h && key_eq(&b->key, k))
            return b;
    }
}

static int shape_grow(pr_rshape *s)
{
    uint32_t ncap = s->cap ? s->cap * 2 : 16;
    pr_rbucket *old = s->slots;
    uint32_t ocap = s->cap;
    s->slots = pr_calloc(ncap, sizeof(pr_rbucket));
    if (!s->slots) {
        s->slots = old;
        return -1;
    }
    s->cap = ncap;
    for (uint32_t i = 0; i < ocap; i++) {
        if (old[i].hash == EMPTY)
            continue;
        pr_rbucket *b = bucket_probe(s, &old[i].key, old[i].hash);
        *b = old[i];
    }
    free(old);
    return 0;
}

static size_t keys_lower_bound(const uint64_t *v, size_t n, uint64_t key)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid] < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int keys_insert(uint64_t **v, uint32_t *n, uint32_t *cap, uint64_t key)
{
    if (*n == *cap) {
        uint32_t ncap = *cap ? *cap * 2 : 2;
        uint64_t *nv = pr_realloc(*v, (size_t)ncap * sizeof(uint64_t));
        if (!nv)
            return -1;
        *v = nv;
        *cap = ncap;
    }
    size_t pos = keys_lower_bound(*v, *n, key);
    memmove(&(*v)[pos + 1], &(*v)[pos], (*n - pos) * sizeof(uint64_t));
    (*v)[pos] = key;
    (*n)++;
    return 0;
}

static void keys_remove(uint64_t *v, uint32_t *n, uint64_t key)
{
    size_t pos = keys_lower_bound(v, *n, key);
    if (pos < *n && v[pos] == key) {
        memmove(&v[pos], &v[pos + 1], (*n - pos - 1) * sizeof(uint64_t));
        (*n)--;
    }
}

/* Refreshes the inline copies of a bucket's first two keys. */
static void bucket_sync(pr_rbucket *b)
{
    b->k0 = b->n > 0 ? b->keys[0] : UINT64_MAX;
    b->k1 = b->n > 1 ? b->keys[1] : UINT64_MAX;
}

/* A bucket whose keys live in the pool gets its own array before it grows. */
static int bucket_unpool(pr_rbucket *b)
{
    uint32_t cap = b->n ? b->n * 2 : 2;
    uint64_t *v = pr_malloc((size_t)cap * sizeof(uint64_t));
    if (!v)
        return -1;
    memcpy(v, b->keys, (size_t)b->n * sizeof(uint64_t));
    b->keys = v;
    b->capkeys = cap;
    return 0;
}

int pr_rindex_add(pr_rindex *ix, const pr_rule *rule)
{
    const pr_rule_req *r = &rule->r;
    {
        /* the whole list: rules built in descending priority all land at its head */
        size_t pos = keys_lower_bound(ix->all, ix->nall, rule->okey);
        void *v = ix->all;
        uint64_t *slot = pr_gap_insert(&v, &ix->headall, ix->nall, &ix->capall, sizeof(uint64_t), pos);
        if (!slot)
            return -1;
        ix->all = v;
        *slot = rule->okey;
        ix->nall++;
    }
    if (!pr_rindex_is_simple(r))
        return keys_insert(&ix->complex, &ix->ncomplex, &ix->capcomplex, rule->okey);
    pr_rkey k;
    rule_key(r, rule->iif_index, rule->oif_index, &k);
    pr_rshape *s = shape_find(ix, r, rule->iif_index != 0, rule->oif_index != 0, true);
    if (!s)
        return -1;
    if ((s->count + 1) * 4 > s->cap * 3 && shape_grow(s) < 0)
        return -1;
    uint64_t h = key_hash(&k);
    pr_rbucket *b = bucket_probe(s, &k, h);
    if (b->hash == EMPTY) {
        b->hash = h;
        b->key = k;
        s->count++;
    }
    if (b->keys && b->capkeys == 0 && bucket_unpool(b) < 0)
        return -1;
    int rc = keys_insert(&b->keys, &b->n, &b->capkeys, rule->okey);
    bucket_sync(b);
    return rc;
}

void pr_rindex_del(pr_rindex *ix, const pr_rule *rule)
{
    const pr_rule_req *r = &rule->r;
    size_t apos = keys_lower_bound(ix->all, ix->nall, rule->okey);
    if (apos < ix->nall && ix->all[apos] == rule->okey) {
        void *v = ix->all;
        pr_gap_remove(&v, &ix->headall, ix->nall, &ix->capall, sizeof(uint64_t), apos);
        ix->all = v;
        ix->nall--;
    }
    if (!pr_rindex_is_simple(r)) {
        keys_remove(ix->complex, &ix->ncomplex, rule->okey);
        return;
    }
    pr_rkey k;
    rule_key(r, rule->iif_index, rule->oif_index, &k);
    pr_rshape *s = shape_find(ix, r, rule->iif_index != 0, rule->oif_index != 0, false);
    if (!s)
        return;
    pr_rbucket *b = bucket_probe(s, &k, key_hash(&k));
    if (b && b->hash != EMPTY) {
        keys_remove(b->keys, &b->n, rule->okey);
        bucket_sync(b);
    }
    /* empty buckets stay (tombstone-free probing stays correct) */
}

void pr_rindex_free(pr_rindex *ix)
{
    for (uint32_t i = 0; i < ix->nshapes; i++) {
        pr_rshape *s = &ix->shapes[i];
        for (uint32_t j = 0; j < s->cap; j++)
            if (s->slots[j].capkeys)   /* else NULL or inside the pool */
                free(s->slots[j].keys);
        free(s->slots);
    }
    free(ix->pool);
    free(ix->shapes);
    free(ix->complex);
    if (ix->all)
        free(ix->all - ix->headall);
    memset(ix, 0, sizeof(*ix));
}

int pr_rindex_clone(pr_rindex *dst, const pr_rindex *src)
{
    /* one block for every bucket's keys: a clone of a 10,000-rule index is a
     * few memcpys and four mallocs, not one malloc per bucket */
    memset(dst, 0, sizeof(*dst));
    size_t nkeys = 0;
    for (uint32_t i = 0; i < src->nshapes; i++)
        for (uint32_t j = 0; j < src->shapes[i].cap; j++)
            nkeys += src->shapes[i].slots[j].n;
    if (nkeys) {
        dst->pool = pr_malloc(nkeys * sizeof(uint64_t));
        if (!dst->pool)
            return -1;
    }
    if (src->nshapes) {
        dst->shapes = pr_calloc(src->nshapes, sizeof(pr_rshape));
        if (!dst->shapes)
            goto fail;
        dst->capshapes = src->nshapes;
    }
    size_t used = 0;
    for (uint32_t i = 0; i < src->nshapes; i++) {
        const pr_rshape *s = &src->shapes[i];
        pr_rshape *d = &dst->shapes[i];
        *d = *s;
        d->slots = NULL;
        d->cap = d->count = 0;
        dst->nshapes = i + 1;
        if (!s->cap)
            continue;
        d->slots = pr_malloc((size_t)s->cap * sizeof(pr_rbucket));
        if (!d->slots)
            goto fail;
        memcpy(d->slots, s->slots, (size_t)s->cap * sizeof(pr_rbucket));
        d->cap = s->cap;
        d->count = s->count;
        for (uint32_t j = 0; j < s->cap; j++) {
            pr_rbucket *b = &d->slots[j];
            uint64_t *k = b->n ? dst->pool + used : NULL;
            if (b->n)
                memcpy(k, b->keys, (size_t)b->n * sizeof(uint64_t));
            used += b->n;
            b->keys = k;
            b->capkeys = 0;   /* pooled (or none) */
        }
    }
    if (src->ncomplex) {
        dst->complex = pr_malloc((size_t)src->ncomplex * sizeof(uint64_t));
        if (!dst->complex)
            goto fail;
        memcpy(dst->complex, src->complex, (size_t)src->ncomplex * sizeof(uint64_t));
        dst->ncomplex = dst->capcomplex = src->ncomplex;
    }
    if (src->nall) {
        dst->all = pr_malloc((size_t)src->nall * sizeof(uint64_t));
        if (!dst->all)
            goto fail;
        memcpy(dst->all, src->all, (size_t)src->nall * sizeof(uint64_t));
        dst->nall = dst->capall = src->nall;
    }
    return 0;
fail:
    pr_rindex_free(dst);
    return -1;
}

int pr_rindex_rebuild(pr_rindex *ix, const pr_rule *rules, size_t n)
{
    pr_rindex_free(ix);
    for (size_t i = 0; i < n; i++)
        if (pr_rindex_add(ix, &rules[i]) < 0)
            return -1;
    return 0;
}

size_t pr_rindex_position(const pr_rindex *ix, uint64_t okey)
{
    return keys_lower_bound(ix->all, ix->nall, okey);
}

uint64_t pr_rindex_first_simple(const pr_rindex *ix, const pr_rflow *fl, uint64_t from)
{
    uint64_t best = UINT64_MAX;
    unsigned nb = fl->family == PR_AF_INET ? 4u : 16u;
    for (uint32_t i = 0; i < ix->nshapes; i++) {
        const pr_rshape *s = &ix->shapes[i];
        if (s->count == 0)
            continue;
        /* IPv6: a rule with a source never matches a flow without one */
        if (fl->family == PR_AF_INET6 && s->src_len && !fl->has_saddr)
            continue;
        pr_rkey k;
        memset(&k, 0, sizeof(k));
        if (nb == 4) {
            /* the same bytes addr_mask would give, without its byte loop */
            v4_put(k.src, fl->saddr4 & (s->src_len ? (uint32_t)(0xFFFFFFFFu << (32 - s->src_len)) : 0));
            v4_put(k.dst, fl->daddr4 & (s->dst_len ? (uint32_t)(0xFFFFFFFFu << (32 - s->dst_len)) : 0));
        } else {
            addr_mask(k.src, fl->saddr, s->src_len, nb);
            addr_mask(k.dst, fl->daddr, s->dst_len, nb);
        }
        k.iif = s->has_iif ? (int32_t)fl->iif : 0;
        k.oif = s->has_oif ? (int32_t)fl->oif : 0;
        k.mark = fl->mark & s->fwmask;
        k.dport = s->has_dport ? fl->dport : 0;
        k.tos = s->has_tos ? (uint8_t)(fl->tos & (nb == 4 ? 0x1Cu : 0xFCu)) : 0;
        const pr_rbucket *b = bucket_probe(s, &k, key_hash(&k));
        if (!b || b->hash == EMPTY || b->n == 0)
            continue;
        uint64_t cand;
        if (from <= b->k0) {
            cand = b->k0;
        } else if (from <= b->k1) {
            cand = b->k1;
        } else {
            size_t pos = keys_lower_bound(b->keys, b->n, from);
            cand = pos < b->n ? b->keys[pos] : UINT64_MAX;
        }
        if (cand < best)
            best = cand;
    }
    return best;
}
