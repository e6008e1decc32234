/*
 * test_trie.c - checks csrc/trie.c against a brute-force reference.
 *
 * Usage: test_trie [seed]   (the seed is printed; pass it back to replay)
 * Exit status 0 when every check passed.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "trie.h"

static unsigned rnd_below(unsigned n) /* n > 0 */
{
    return (unsigned)(rnd() % n);
}

/* ---- key helpers ---- */

static void mask_key(uint8_t out[16], const uint8_t in[16], unsigned plen)
{
    memset(out, 0, 16);
    for (unsigned i = 0; i < 16 && 8u * i < plen; i++) {
        unsigned left = plen - 8u * i;
        uint8_t m = (uint8_t)(left >= 8 ? 0xFFu : 0xFFu << (8u - left));
        out[i] = (uint8_t)(in[i] & m);
    }
}

static void fmt_key(char *buf, size_t n, const uint8_t k[16], unsigned maxbits)
{
    size_t off = 0;
    if (maxbits == 32) {
        snprintf(buf, n, "%u.%u.%u.%u", k[0], k[1], k[2], k[3]);
        return;
    }
    for (unsigned i = 0; i < 16 && off + 3 < n; i++)
        off += (size_t)snprintf(buf + off, n - off, "%02x%s", k[i], (i & 1) && i < 15 ? ":" : "");
}

/* ---- brute-force reference ---- */

typedef struct {
    uint8_t key[16]; /* masked to plen, zero beyond maxbits */
    unsigned plen;
    uint32_t value;
} ref_ent;

typedef struct {
    ref_ent *e;
    size_t n, cap;
    unsigned maxbits;
} ref_t;

static long ref_find(const ref_t *r, const uint8_t mkey[16], unsigned plen)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->e[i].plen == plen && memcmp(r->e[i].key, mkey, 16) == 0)
            return (long)i;
    return -1;
}

/* 0 inserted, 1 overwrote: mirrors pr_trie_insert. */
static int ref_insert(ref_t *r, const uint8_t key[16], unsigned plen, uint32_t v)
{
    uint8_t m[16];
    long i;
    mask_key(m, key, plen);
    i = ref_find(r, m, plen);
    if (i >= 0) {
        r->e[i].value = v;
        return 1;
    }
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->e = realloc(r->e, r->cap * sizeof(*r->e));
        if (!r->e) {
            perror("realloc");
            exit(2);
        }
    }
    memcpy(r->e[r->n].key, m, 16);
    r->e[r->n].plen = plen;
    r->e[r->n].value = v;
    r->n++;
    return 0;
}

static int ref_delete(ref_t *r, const uint8_t key[16], unsigned plen)
{
    uint8_t m[16];
    long i;
    mask_key(m, key, plen);
    i = ref_find(r, m, plen);
    if (i < 0)
        return -ENOENT;
    r->e[i] = r->e[--r->n];
    return 0;
}

static int ref_dump_cmp(const void *pa, const void *pb)
{
    const ref_ent *a = pa, *b = pb;
    int c = memcmp(a->key, b->key, 16);
    if (c)
        return c;
    return a->plen > b->plen ? -1 : a->plen < b->plen ? 1 : 0; /* longer first */
}

/* Covering entries, longest first (plens are distinct among them). */
static size_t ref_matches(const ref_t *r, const uint8_t addr[16], ref_ent *out)
{
    size_t m = 0;
    for (unsigned plen = r->maxbits + 1; plen-- > 0;) {
        uint8_t k[16];
        long i;
        mask_key(k, addr, plen);
        i = ref_find(r, k, plen);
        if (i >= 0)
            out[m++] = r->e[i];
    }
    return m;
}

/* ---- comparing trie and reference ---- */

typedef struct {
    ref_ent *e;
    size_t n, cap;
    size_t stop_after; /* 0 = never stop */
} collect_t;

static int collect_cb(void *ctx, const uint8_t key[16], unsigned plen, uint32_t value)
{
    collect_t *c = ctx;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 64;
        c->e = realloc(c->e, c->cap * sizeof(*c->e));
        if (!c->e) {
            perror("realloc");
            exit(2);
        }
    }
    memcpy(c->e[c->n].key, key, 16);
    c->e[c->n].plen = plen;
    c->e[c->n].value = value;
    c->n++;
    if (c->stop_after && c->n == c->stop_after)
        return 42;
    return 0;
}

/* Full structural comparison: invariants, count, and the dump. */
static void compare_full(const pr_trie *t, const ref_t *r, const char *what)
{
    collect_t c = {0};
    ref_ent *sorted;
    int rc;

    CHECK_MSG(pr_trie_check(t) == 0, "%s: invariant %d", what, pr_trie_check(t));
    CHECK_MSG(pr_trie_count(t) == r->n, "%s: count %zu vs %zu", what, pr_trie_count(t), r->n);
    sorted = malloc((r->n + 1) * sizeof(*sorted));
    if (!sorted)
        exit(2);
    if (r->n)
        memcpy(sorted, r->e, r->n * sizeof(*sorted));
    qsort(sorted, r->n, sizeof(*sorted), ref_dump_cmp);
    rc = pr_trie_walk(t, collect_cb, &c);
    CHECK_MSG(rc == 0, "%s: walk rc %d", what, rc);
    CHECK_MSG(c.n == r->n, "%s: walk visited %zu of %zu", what, c.n, r->n);
    if (c.n == r->n) {
        size_t bad = r->n;
        for (size_t i = 0; i < r->n; i++) {
            if (memcmp(c.e[i].key, sorted[i].key, 16) || c.e[i].plen != sorted[i].plen ||
                c.e[i].value != sorted[i].value) {
                bad = i;
                break;
            }
        }
        CHECK_MSG(bad == r->n, "%s: walk order differs at %zu", what, bad);
    }
    free(sorted);
    free(c.e);
}

static void compare_lookup(const pr_trie *t, const ref_t *r, const uint8_t addr[16])
{
    ref_ent exp[PR_TRIE_MAX_MATCHES];
    uint32_t vals[PR_TRIE_MAX_MATCHES];
    uint8_t plens[PR_TRIE_MAX_MATCHES];
    size_t m = ref_matches(r, addr, exp), got, cap;
    uint32_t v = 0;
    uint8_t pl = 0;
    int hit;

    /* Sometimes a short buffer: the return value must still be the total. */
    cap = rnd_below(4) == 0 ? rnd_below(r->maxbits + 2) : PR_TRIE_MAX_MATCHES;
    memset(vals, 0xAB, sizeof(vals));
    memset(plens, 0xAB, sizeof(plens));
    got = pr_trie_matches(t, addr, vals, plens, cap);
    CHECK_MSG(got == m, "matches %zu vs %zu", got, m);
    for (size_t i = 0; i < m && i < cap && got == m; i++)
        CHECK_MSG(vals[i] == exp[i].value && plens[i] == exp[i].plen, "match %zu: /%u=%" PRIu32
              " vs /%u=%" PRIu32, i, plens[i], vals[i], exp[i].plen, exp[i].value);
    if (cap < PR_TRIE_MAX_MATCHES)
        CHECK_MSG(vals[cap] == 0xABABABABu && plens[cap] == 0xAB, "wrote past cap %zu", cap);

    hit = pr_trie_lpm(t, addr, &v, &pl);
    CHECK_MSG(hit == (m > 0), "lpm hit %d vs %zu", hit, m);
    if (hit && m)
        CHECK_MSG(v == exp[0].value && pl == exp[0].plen, "lpm /%u=%" PRIu32 " vs /%u=%" PRIu32,
              pl, v, exp[0].plen, exp[0].value);
}

/* ---- clustered key generation: prefixes nest a lot ---- */

typedef struct {
    unsigned maxbits;
    uint8_t base[6][16];
} keygen_t;

static void keygen_init(keygen_t *g, unsigned maxbits)
{
    g->maxbits = maxbits;
    for (unsigned b = 0; b < 6; b++)
        for (unsigned i = 0; i < 16; i++)
            g->base[b][i] = (uint8_t)rnd();
    memset(g->base[0], 0, 16); /* the all-zero key: /0 and 0.0.0.0/N collide */
}

/* A key near one of the bases, with garbage in host bits and beyond maxbits
 * (the trie must ignore both). */
static void gen_key(const keygen_t *g, uint8_t key[16])
{
    unsigned flips = rnd_below(4);
    memcpy(key, g->base[rnd_below(6)], 16);
    for (unsigned f = 0; f < flips; f++) {
        /* Flips land mostly late in the key so prefixes share long heads. */
        unsigned pos = g->maxbits - 1u - rnd_below(rnd_below(2) ? 8u : g->maxbits);
        key[pos / 8] ^= (uint8_t)(0x80u >> (pos % 8));
    }
    if (rnd_below(8) == 0)
        for (unsigned i = 0; i < 16; i++)
            key[i] = (uint8_t)rnd();
    for (unsigned i = g->maxbits / 8; i < 16; i++)
        key[i] = (uint8_t)rnd();
}

static unsigned gen_plen(const keygen_t *g)
{
    unsigned r = rnd_below(100);
    if (r < 5)
        return 0;
    if (r < 20)
        return g->maxbits;
    if (r < 40)
        return g->maxbits - rnd_below(6); /* dense nesting near the leaves */
    return rnd_below(g->maxbits + 1);
}

/* ---- tests ---- */

static void random_round(unsigned maxbits, unsigned ops)
{
    pr_trie t;
    ref_t r = {0};
    keygen_t g;
    uint8_t key[16];
    char kb[64];

    r.maxbits = maxbits;
    CHECK_MSG(pr_trie_init(&t, maxbits) == 0, "init %u", maxbits);
    keygen_init(&g, maxbits);

    for (unsigned op = 0; op < ops; op++) {
        unsigned kind = rnd_below(100), plen;
        gen_key(&g, key);
        plen = gen_plen(&g);
        if (kind < 40) {
            uint32_t v = (uint32_t)rnd();
            int e = ref_insert(&r, key, plen, v), got = pr_trie_insert(&t, key, plen, v);
            uint32_t *slot;
            fmt_key(kb, sizeof(kb), key, maxbits);
            CHECK_MSG(got == e, "insert %s/%u -> %d, expected %d", kb, plen, got, e);
            slot = pr_trie_find(&t, key, plen);
            CHECK_MSG(slot && *slot == v, "find after insert %s/%u", kb, plen);
        } else if (kind < 65) {
            int e, got;
            if (r.n && rnd_below(4) != 0) { /* mostly delete something that exists */
                const ref_ent *x = &r.e[rnd_below((unsigned)r.n)];
                plen = x->plen;
                memcpy(key, x->key, 16);
                /* host-bit garbage must not matter */
                if (plen < maxbits)
                    key[plen / 8] ^= (uint8_t)(rnd() & (0xFFu >> (plen % 8)));
            }
            e = ref_delete(&r, key, plen);
            got = pr_trie_delete(&t, key, plen);
            fmt_key(kb, sizeof(kb), key, maxbits);
            CHECK_MSG(got == e, "delete %s/%u -> %d, expected %d", kb, plen, got, e);
            CHECK_MSG(pr_trie_find(&t, key, plen) == NULL, "find after delete %s/%u", kb, plen);
        } else if (kind < 80) {
            uint8_t m[16];
            long i;
            uint32_t *slot = pr_trie_find(&t, key, plen);
            mask_key(m, key, plen);
            i = ref_find(&r, m, plen);
            CHECK_MSG((slot != NULL) == (i >= 0), "find presence /%u", plen);
            if (slot && i >= 0)
                CHECK_MSG(*slot == r.e[i].value, "find value /%u", plen);
        } else {
            compare_lookup(&t, &r, key);
        }
        if (op % 97 == 0)
            compare_full(&t, &r, "random");
    }
    compare_full(&t, &r, "random end");

    /* Clone, then churn the clone: the original must not notice. */
    {
        pr_trie c;
        ref_t rc = {0};
        rc.maxbits = maxbits;
        rc.n = rc.cap = r.n;
        rc.e = malloc((r.n + 1) * sizeof(*rc.e));
        if (!rc.e)
            exit(2);
        if (r.n)
            memcpy(rc.e, r.e, r.n * sizeof(*rc.e));
        CHECK_MSG(pr_trie_clone(&c, &t) == 0, "clone");
        compare_full(&c, &rc, "clone fresh");
        for (unsigned op = 0; op < ops / 4; op++) {
            gen_key(&g, key);
            unsigned plen = gen_plen(&g);
            if (rnd_below(2)) {
                uint32_t v = (uint32_t)rnd();
                CHECK_MSG(pr_trie_insert(&c, key, plen, v) == ref_insert(&rc, key, plen, v),
                      "clone insert");
            } else {
                if (rc.n && rnd_below(3)) {
                    const ref_ent *x = &rc.e[rnd_below((unsigned)rc.n)];
                    memcpy(key, x->key, 16);
                    plen = x->plen;
                }
                CHECK_MSG(pr_trie_delete(&c, key, plen) == ref_delete(&rc, key, plen),
                      "clone delete");
            }
            /* Overwrite through the find slot: must stay private to the clone. */
            if (rc.n && rnd_below(8) == 0) {
                ref_ent *x = &rc.e[rnd_below((unsigned)rc.n)];
                uint32_t *slot = pr_trie_find(&c, x->key, x->plen);
                CHECK_MSG(slot != NULL, "clone find");
                if (slot)
                    *slot = x->value = (uint32_t)rnd();
            }
        }
        compare_full(&c, &rc, "clone churned");
        compare_full(&t, &r, "original after clone churn");
        for (unsigned i = 0; i < 200; i++) {
            gen_key(&g, key);
            compare_lookup(&t, &r, key);
            compare_lookup(&c, &rc, key);
        }
        pr_trie_destroy(&c);
        free(rc.e);
    }

    /* Compaction relocates every node but must not change any answer. */
    {
        size_t mem = pr_trie_memory(&t);
        CHECK_MSG(pr_trie_compact(&t) == 0, "compact");
        CHECK_MSG(pr_trie_memory(&t) <= mem, "compact grew memory %zu > %zu", pr_trie_memory(&t), mem);
        compare_full(&t, &r, "compacted");
        for (unsigned i = 0; i < 200; i++) {
            gen_key(&g, key);
            compare_lookup(&t, &r, key);
        }
        /* and the compacted trie keeps working under updates */
        for (unsigned i = 0; i < 200; i++) {
            uint32_t v = (uint32_t)rnd();
            unsigned plen;
            gen_key(&g, key);
            plen = gen_plen(&g);
            CHECK_MSG(pr_trie_insert(&t, key, plen, v) == ref_insert(&r, key, plen, v),
                  "insert after compact");
        }
        compare_full(&t, &r, "compacted + inserts");
    }

    /* Delete everything in random order. */
    while (r.n) {
        size_t i = rnd_below((unsigned)r.n);
        ref_ent x = r.e[i];
        CHECK_MSG(pr_trie_delete(&t, x.key, x.plen) == 0, "drain delete /%u", x.plen);
        CHECK_MSG(pr_trie_delete(&t, x.key, x.plen) == -ENOENT, "drain double delete");
        r.e[i] = r.e[--r.n];
        if (r.n % 53 == 0)
            compare_full(&t, &r, "drain");
    }
    compare_full(&t, &r, "drained");
    CHECK_MSG(pr_trie_count(&t) == 0, "count after drain");
    CHECK_MSG(pr_trie_memory(&t) == 0, "memory after drain %zu", pr_trie_memory(&t));
    memset(key, 0, 16);
    CHECK_MSG(pr_trie_lpm(&t, key, NULL, NULL) == 0, "lpm on empty");
    CHECK_MSG(pr_trie_matches(&t, key, NULL, NULL, 0) == 0, "matches on empty");
    /* Usable again after draining. */
    CHECK_MSG(pr_trie_insert(&t, key, 0, 5) == 0, "reinsert after drain");
    CHECK_MSG(pr_trie_count(&t) == 1, "count after reinsert");
    pr_trie_destroy(&t);
    free(r.e);
}

static void v4(uint8_t k[16], unsigned a, unsigned b, unsigned c, unsigned d)
{
    memset(k, 0, 16);
    k[0] = (uint8_t)a;
    k[1] = (uint8_t)b;
    k[2] = (uint8_t)c;
    k[3] = (uint8_t)d;
}

static void test_walk_order(void)
{
    static const struct {
        unsigned a, b, c, d, plen;
    } want[] = {
        {0, 0, 0, 0, 1},   {0, 0, 0, 0, 0},      {10, 0, 0, 0, 24},    {10, 0, 0, 0, 8},
        {10, 0, 1, 0, 24}, {10, 1, 0, 0, 17},    {10, 1, 0, 0, 16},    {10, 1, 128, 0, 17},
        {192, 168, 0, 0, 16}, {255, 255, 255, 255, 32},
    };
    /* Inserted in a scrambled order; dump order must not depend on it. */
    static const unsigned order[] = {5, 9, 1, 3, 7, 0, 8, 2, 6, 4};
    size_t n = sizeof(want) / sizeof(want[0]);
    pr_trie t;
    collect_t c = {0};
    uint8_t k[16];

    CHECK_MSG(pr_trie_init(&t, 32) == 0, "init");
    for (size_t i = 0; i < n; i++) {
        unsigned j = order[i];
        v4(k, want[j].a, want[j].b, want[j].c, want[j].d);
        CHECK_MSG(pr_trie_insert(&t, k, want[j].plen, (uint32_t)j) == 0, "insert %u", j);
    }
    CHECK_MSG(pr_trie_walk(&t, collect_cb, &c) == 0, "walk");
    CHECK_MSG(c.n == n, "walk count %zu", c.n);
    for (size_t i = 0; i < n && i < c.n; i++) {
        v4(k, want[i].a, want[i].b, want[i].c, want[i].d);
        CHECK_MSG(memcmp(c.e[i].key, k, 16) == 0 && c.e[i].plen == want[i].plen &&
                  c.e[i].value == i,
              "walk[%zu] = %u.%u.%u.%u/%u", i, c.e[i].key[0], c.e[i].key[1], c.e[i].key[2],
              c.e[i].key[3], c.e[i].plen);
    }
    /* Early stop: the callback's value comes back, nothing more is visited. */
    c.n = 0;
    c.stop_after = 3;
    CHECK_MSG(pr_trie_walk(&t, collect_cb, &c) == 42, "early stop rc");
    CHECK_MSG(c.n == 3, "early stop visited %zu", c.n);
    c.n = 0;
    c.stop_after = 1;
    CHECK_MSG(pr_trie_walk(&t, collect_cb, &c) == 42 && c.n == 1, "stop on first");
    free(c.e);
    pr_trie_destroy(&t);
}

static void test_basics(void)
{
    pr_trie t;
    uint8_t k[16], k2[16];
    uint32_t v, vals[4], *slot;
    uint8_t pl, plens[4];

    CHECK_MSG(pr_trie_init(&t, 0) == -EINVAL, "maxbits 0");
    pr_trie_destroy(&t);
    CHECK_MSG(pr_trie_init(&t, 129) == -EINVAL, "maxbits 129");
    pr_trie_destroy(&t);

    CHECK_MSG(pr_trie_init(&t, 32) == 0, "init");
    CHECK_MSG(pr_trie_memory(&t) == 0, "empty trie holds no memory");
    v4(k, 10, 1, 2, 3);
    CHECK_MSG(pr_trie_insert(&t, k, 33, 1) == -EINVAL, "plen > maxbits");
    CHECK_MSG(pr_trie_delete(&t, k, 33) == -ENOENT, "delete plen > maxbits");
    CHECK_MSG(pr_trie_find(&t, k, 33) == NULL, "find plen > maxbits");
    /* Host bits are cleared on insert and ignored on find/delete. */
    CHECK_MSG(pr_trie_insert(&t, k, 8, 100) == 0, "insert 10.1.2.3/8");
    v4(k2, 10, 0, 0, 0);
    slot = pr_trie_find(&t, k2, 8);
    CHECK_MSG(slot && *slot == 100, "find 10/8");
    v4(k2, 10, 255, 0, 0);
    CHECK_MSG(pr_trie_insert(&t, k2, 8, 101) == 1, "overwrite via other host bits");
    slot = pr_trie_find(&t, k, 8);
    CHECK_MSG(slot && *slot == 101, "overwritten");
    if (slot)
        *slot = 102; /* the slot is writable in place */
    CHECK_MSG(pr_trie_lpm(&t, k, &v, &pl) == 1 && v == 102 && pl == 8, "lpm via slot");
    /* IPv4 ignores bytes 4..15 entirely. */
    memset(k2 + 4, 0xEE, 12);
    CHECK_MSG(pr_trie_lpm(&t, k2, &v, NULL) == 1 && v == 102, "v4 ignores tail bytes");
    CHECK_MSG(pr_trie_insert(&t, k, 32, 200) == 0, "insert /32");
    CHECK_MSG(pr_trie_insert(&t, k, 0, 300) == 0, "insert /0");
    CHECK_MSG(pr_trie_matches(&t, k, vals, plens, 4) == 3 && vals[0] == 200 && plens[0] == 32 &&
              vals[1] == 102 && plens[1] == 8 && vals[2] == 300 && plens[2] == 0,
          "matches longest first");
    CHECK_MSG(pr_trie_matches(&t, k, vals, NULL, 1) == 3 && vals[0] == 200, "matches cap 1");
    v4(k2, 11, 0, 0, 0);
    CHECK_MSG(pr_trie_lpm(&t, k2, &v, &pl) == 1 && v == 300 && pl == 0, "default route");
    CHECK_MSG(pr_trie_delete(&t, k, 0) == 0, "delete /0");
    CHECK_MSG(pr_trie_lpm(&t, k2, &v, &pl) == 0, "no default");
    CHECK_MSG(pr_trie_delete(&t, k, 0) == -ENOENT, "delete /0 again");
    CHECK_MSG(pr_trie_delete(&t, k, 16) == -ENOENT, "delete absent /16");
    CHECK_MSG(pr_trie_check(&t) == 0, "invariants");
    pr_trie_destroy(&t);

    /* Every prefix of one IPv6 address: a 129-deep chain. */
    CHECK_MSG(pr_trie_init(&t, 128) == 0, "init v6");
    for (unsigned i = 0; i < 16; i++)
        k[i] = (uint8_t)(0x5A ^ i * 37u);
    for (unsigned p = 0; p <= 128; p++)
        CHECK_MSG(pr_trie_insert(&t, k, p, p) == 0, "chain insert /%u", p);
    {
        uint32_t cv[PR_TRIE_MAX_MATCHES];
        uint8_t cp[PR_TRIE_MAX_MATCHES];
        size_t m = pr_trie_matches(&t, k, cv, cp, PR_TRIE_MAX_MATCHES);
        int ok = m == 129;
        for (size_t i = 0; ok && i < m; i++)
            ok = cv[i] == 128 - i && cp[i] == 128 - i;
        CHECK_MSG(ok, "129 matches longest first (m=%zu)", m);
    }
    CHECK_MSG(pr_trie_check(&t) == 0, "chain invariants");
    {
        pr_trie c;
        CHECK_MSG(pr_trie_clone(&c, &t) == 0, "clone chain");
        CHECK_MSG(pr_trie_memory(&c) > 0 && pr_trie_memory(&c) <= pr_trie_memory(&t), "clone memory");
        for (unsigned p = 0; p <= 128; p += 2)
            CHECK_MSG(pr_trie_delete(&c, k, p) == 0, "delete even /%u", p);
        CHECK_MSG(pr_trie_count(&c) == 64 && pr_trie_count(&t) == 129, "clone independent");
        CHECK_MSG(pr_trie_check(&c) == 0 && pr_trie_check(&t) == 0, "both sound");
        pr_trie_destroy(&c);
    }
    pr_trie_destroy(&t);
}

int main(int argc, char **argv)
{
    tu_seed("test_trie", argc, argv, UINT64_C(0x5eed0001));

    test_basics();
    test_walk_order();
    for (unsigned round = 0; round < 6; round++) {
        random_round(32, 6000);
        random_round(128, 6000);
    }
    return tu_summary("test_trie");
}
