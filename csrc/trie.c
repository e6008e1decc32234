/*
 * trie.c - path-compressed binary trie of address prefixes.
 *
 * Design
 * ======
 *
 * A routing table is a set of prefixes (key/plen) each carrying a value.  We
 * keep them in a binary trie over the key bits, most significant bit first,
 * with path compression: a node stores its whole prefix (key words plus plen)
 * rather than one bit, so chains of one-child nodes never exist and a lookup
 * jumps straight from one decision point to the next.  Every node is one of
 *
 *   - an entry node: holds a value; it may have 0, 1 or 2 children, because a
 *     prefix like 10.0.0.0/8 must exist even when it covers nothing, or only
 *     one more-specific route;
 *   - a glue node: holds no value and exists only because two subtrees part
 *     ways at bit plen; it always has exactly two children.
 *
 * Invariants (checked by pr_trie_check()):
 *
 *   1. Key bits at positions >= plen are zero in every node.
 *   2. A child c under link b of node n has c.plen > n.plen, agrees with n on
 *      the first n.plen bits, and has bit n.plen equal to b.  So a subtree
 *      holds exactly the entries that extend its root's prefix.
 *   3. Glue nodes have two children.  Together with 2 this means n entries
 *      need at most 2n - 1 nodes, and that deleting an entry removes at most
 *      two nodes (itself, and its parent if that was glue left with one child).
 *   4. count equals the number of entry nodes; the arena holds no other live
 *      nodes.
 *
 * The shape of the trie depends only on the set of prefixes, not on the order
 * of inserts and deletes, which keeps clone, walk and the tests predictable.
 *
 * Lookups walk down from the root, testing at each node whether the address
 * agrees with the node's prefix (one masked word compare for IPv4); entry
 * nodes passed on the way are exactly the covering prefixes, shortest first,
 * so longest-prefix match is "the last entry seen" and the full match list is
 * that path read backwards.  A path has at most maxbits + 1 nodes (plen grows
 * strictly), so insert, delete, find, lpm and matches are O(maxbits) with no
 * allocation on the lookup side; in practice depth is about log2(n) plus the
 * nesting of the table.  The walk is a pre-order traversal, which yields keys
 * ascending and, for equal keys (which lie on one root-to-leaf chain), shorter
 * prefixes first; it buffers each run of equal keys (at most maxbits + 1) and
 * emits the run reversed to get the kernel's longer-first dump order.
 *
 * Nodes live in a pr_arena and refer to each other by 32-bit index, keeping a
 * node at 20 bytes for IPv4 and 32 for IPv6, letting clone be a chunk-wise
 * memcpy, and leaving no per-node malloc.  By invariant 3 a table costs at
 * most 40 (IPv4) / 64 (IPv6) bytes per entry plus chunk slack; an emptied
 * table returns all of it.  Keys are stored as host-order 32-bit words
 * (converted from network byte order at the API boundary) so prefix tests and
 * first-difference searches are word operations.
 *
 * Large tables are bound by cache misses, one per level below the cached top
 * of the trie.  Nodes are placed in allocation order, so a table built by
 * scattered inserts has no locality; pr_trie_compact() re-lays it out in
 * pre-order (a child[0] right after its parent, subtrees contiguous).
 *
 * Nothing on the lookup side writes memory, so any number of threads may
 * look up concurrently as long as no writer runs.
 */
#include "trie.h"

#include <errno.h>
#include <string.h>

typedef struct trie_node {
    uint32_t child[2];  /* PR_ARENA_NIL when absent */
    uint32_t value;     /* meaningful only when has_value */
    uint8_t plen;
    uint8_t has_value;  /* 0: glue node */
    uint16_t pad_;
    uint32_t key[];     /* t->nwords host-order words, bits >= plen zero */
} trie_node;

#define NIL PR_ARENA_NIL
/* 32 nodes: 640 B (IPv4) / 1 KiB (IPv6) chunks.  A policy with a table per
 * tenant holds thousands of one-route tables (10k tenants: 6 MB of chunks
 * instead of 50 MB with 256-node chunks); large tables cost one malloc per
 * 32 nodes, and pr_trie_compact() lays them out contiguously anyway. */
#define NODES_PER_CHUNK 32u
/* A pre-order stack holds at most one pending right child per level of the
 * current path plus two fresh children: maxbits + 2 entries. */
#define WALK_STACK (PR_TRIE_MAX_MATCHES + 2)

static inline trie_node *node_at(const pr_trie *t, uint32_t idx)
{
    return (trie_node *)pr_arena_get(&t->arena, idx);
}

/* ---- word-level key helpers (keys: up to 4 host-order words) ---- */

static inline uint32_t load_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static inline void store_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* The top n bits set, 0 <= n <= 32.  Shifting a 64-bit value by 32 - n
 * (0..32, always < 64) avoids both UB and branches at the ends. */
static inline uint32_t mask_top(unsigned n)
{
    return (uint32_t)(UINT64_C(0xFFFFFFFF) << (32u - n));
}

static inline unsigned clz32(uint32_t x) /* x != 0 */
{
#if defined(__GNUC__) && __SIZEOF_INT__ == 4
    return (unsigned)__builtin_clz(x);
#else
    unsigned n = 0;
    if (!(x & 0xFFFF0000u)) { n += 16; x <<= 16; }
    if (!(x & 0xFF000000u)) { n += 8; x <<= 8; }
    if (!(x & 0xF0000000u)) { n += 4; x <<= 4; }
    if (!(x & 0xC0000000u)) { n += 2; x <<= 2; }
    if (!(x & 0x80000000u)) { n += 1; }
    return n;
#endif
}

/* Loads a key and clears the bits at positions >= plen (invariant 1). */
static void load_key(uint32_t w[4], const uint8_t key[16], unsigned nwords, unsigned plen)
{
    for (unsigned i = 0; i < 4; i++) {
        unsigned base = 32u * i;
        if (i >= nwords || plen <= base)
            w[i] = 0;
        else
            w[i] = load_be32(key + 4u * i) & mask_top(plen - base >= 32u ? 32u : plen - base);
    }
}

static inline unsigned bit_at(const uint32_t *w, unsigned pos)
{
    return (unsigned)(w[pos >> 5] >> (31u - (pos & 31u))) & 1u;
}

/* Does a agree with b on the first plen bits? */
static inline int prefix_eq(const uint32_t *a, const uint32_t *b, unsigned plen)
{
    unsigned full = plen >> 5;
    for (unsigned i = 0; i < full; i++)
        if (a[i] != b[i])
            return 0;
    if (plen & 31u)
        return ((a[full] ^ b[full]) & mask_top(plen & 31u)) == 0;
    return 1;
}

/* Length of the common prefix of a and b, capped at limit. */
static unsigned common_len(const uint32_t *a, const uint32_t *b, unsigned limit)
{
    for (unsigned i = 0; 32u * i < limit; i++) {
        uint32_t x = a[i] ^ b[i];
        if (x) {
            unsigned n = 32u * i + clz32(x);
            return n < limit ? n : limit;
        }
    }
    return limit;
}

/* ---- lifetime ---- */

int pr_trie_init(pr_trie *t, unsigned maxbits)
{
    memset(t, 0, sizeof(*t));
    t->root = NIL;
    if (maxbits == 0 || maxbits > 128)
        return -EINVAL;
    t->maxbits = (uint16_t)maxbits;
    t->nwords = (uint16_t)((maxbits + 31u) / 32u);
    return pr_arena_init(&t->arena, offsetof(trie_node, key) + t->nwords * sizeof(uint32_t),
                         NODES_PER_CHUNK);
}

void pr_trie_destroy(pr_trie *t)
{
    pr_arena_destroy(&t->arena);
    t->root = NIL;
    t->count = 0;
}

int pr_trie_clone(pr_trie *dst, const pr_trie *src)
{
    *dst = *src;
    if (pr_arena_clone(&dst->arena, &src->arena) != 0) {
        dst->root = NIL;
        dst->count = 0;
        return -ENOMEM;
    }
    return 0;
}

size_t pr_trie_count(const pr_trie *t)
{
    return t->count;
}

size_t pr_trie_memory(const pr_trie *t)
{
    return pr_arena_memory(&t->arena);
}

/* ---- updates ---- */

/* New node with key k (already masked to plen); NIL on ENOMEM. */
static uint32_t node_new(pr_trie *t, const uint32_t *k, unsigned plen, int has_value,
                         uint32_t value)
{
    uint32_t idx = pr_arena_alloc(&t->arena);
    trie_node *n;

    if (idx == NIL)
        return NIL;
    n = node_at(t, idx);
    n->child[0] = n->child[1] = NIL;
    n->value = has_value ? value : 0;
    n->plen = (uint8_t)plen;
    n->has_value = (uint8_t)(has_value != 0);
    n->pad_ = 0;
    memcpy(n->key, k, t->nwords * sizeof(uint32_t));
    return idx;
}

int pr_trie_insert(pr_trie *t, const uint8_t key[16], unsigned plen, uint32_t value)
{
    uint32_t k[4];
    uint32_t *link = &t->root;

    if (plen > t->maxbits)
        return -EINVAL;
    load_key(k, key, t->nwords, plen);

    /* Links point into arena chunks, which never move, so they survive the
     * allocations below. */
    for (;;) {
        uint32_t ni = *link, li, gi;
        trie_node *n, *g;
        unsigned c;

        if (ni == NIL) {
            /* Fell off the trie: the entry becomes a leaf here. */
            li = node_new(t, k, plen, 1, value);
            if (li == NIL)
                return -ENOMEM;
            *link = li;
            t->count++;
            return 0;
        }
        n = node_at(t, ni);
        c = common_len(k, n->key, plen < n->plen ? plen : n->plen);
        if (c == n->plen) {
            if (plen == n->plen) {
                int existed = n->has_value;
                n->value = value;
                n->has_value = 1; /* a glue node simply becomes an entry */
                if (existed)
                    return 1;
                t->count++;
                return 0;
            }
            link = &n->child[bit_at(k, n->plen)];
            continue;
        }
        if (c == plen) {
            /* The new prefix covers n: it takes n's place, n hangs below. */
            li = node_new(t, k, plen, 1, value);
            if (li == NIL)
                return -ENOMEM;
            node_at(t, li)->child[bit_at(n->key, plen)] = ni;
            *link = li;
            t->count++;
            return 0;
        }
        /* Key and n part ways at bit c, before either ends: glue node at c
         * with the new leaf and n as its two children.  Allocate both first
         * so a failure leaves the trie untouched. */
        li = node_new(t, k, plen, 1, value);
        if (li == NIL)
            return -ENOMEM;
        {
            uint32_t gk[4];
            load_key(gk, key, t->nwords, c);
            gi = node_new(t, gk, c, 0, 0);
        }
        if (gi == NIL) {
            pr_arena_free(&t->arena, li);
            return -ENOMEM;
        }
        g = node_at(t, gi);
        g->child[bit_at(k, c)] = li;
        g->child[bit_at(n->key, c)] = ni;
        *link = gi;
        t->count++;
        return 0;
    }
}

uint32_t *pr_trie_find(const pr_trie *t, const uint8_t key[16], unsigned plen)
{
    uint32_t k[4];
    uint32_t ni = t->root;

    if (plen > t->maxbits)
        return NULL;
    load_key(k, key, t->nwords, plen);
    while (ni != NIL) {
        trie_node *n = node_at(t, ni);
        if (n->plen > plen || !prefix_eq(k, n->key, n->plen))
            return NULL;
        if (n->plen == plen)
            return n->has_value ? &n->value : NULL;
        ni = n->child[bit_at(k, n->plen)];
    }
    return NULL;
}

int pr_trie_delete(pr_trie *t, const uint8_t key[16], unsigned plen)
{
    uint32_t k[4];
    uint32_t *link = &t->root, *plink = NULL;
    uint32_t ni, pi = NIL;
    trie_node *n;

    if (plen > t->maxbits)
        return -ENOENT;
    load_key(k, key, t->nwords, plen);
    for (;;) {
        ni = *link;
        if (ni == NIL)
            return -ENOENT;
        n = node_at(t, ni);
        if (n->plen > plen || !prefix_eq(k, n->key, n->plen))
            return -ENOENT;
        if (n->plen == plen)
            break;
        plink = link;
        pi = ni;
        link = &n->child[bit_at(k, n->plen)];
    }
    if (!n->has_value)
        return -ENOENT;
    t->count--;

    if (n->child[0] != NIL && n->child[1] != NIL) {
        /* Still a branching point: keep it as glue. */
        n->has_value = 0;
        n->value = 0;
    } else if (n->child[0] != NIL || n->child[1] != NIL) {
        /* One child: splice it up (invariant 2 still holds for it). */
        *link = n->child[0] != NIL ? n->child[0] : n->child[1];
        pr_arena_free(&t->arena, ni);
    } else {
        *link = NIL;
        pr_arena_free(&t->arena, ni);
        /* A glue parent now has one child and no reason to exist. */
        if (pi != NIL) {
            trie_node *p = node_at(t, pi);
            if (!p->has_value) {
                *plink = p->child[0] != NIL ? p->child[0] : p->child[1];
                pr_arena_free(&t->arena, pi);
            }
        }
    }
    /* Hand memory back when a table empties (tables come and go). */
    if (t->root == NIL)
        pr_arena_clear(&t->arena);
    return 0;
}

/* ---- lookups ---- */

/* Collects the entry nodes covering addr into path[], shortest first, and
 * returns how many.  Both lookups share this loop so they cannot disagree. */
static inline size_t lookup_path(const pr_trie *t, const uint8_t addr[16],
                                 uint32_t path[PR_TRIE_MAX_MATCHES])
{
    uint32_t ni = t->root;
    size_t m = 0;

    if (t->nwords == 1) {
        /* IPv4: one masked word compare per node; stopping at plen == maxbits
         * also keeps the shift below 32. */
        uint32_t a0 = load_be32(addr);
        while (ni != NIL) {
            const trie_node *n = node_at(t, ni);
            unsigned pl = n->plen;
            if ((a0 ^ n->key[0]) & mask_top(pl))
                break;
            if (n->has_value)
                path[m++] = ni;
            if (pl >= t->maxbits)
                break;
            ni = n->child[(a0 >> (31u - pl)) & 1u];
        }
    } else {
        uint32_t a[4];
        for (unsigned i = 0; i < 4; i++)
            a[i] = i < t->nwords ? load_be32(addr + 4u * i) : 0;
        while (ni != NIL) {
            const trie_node *n = node_at(t, ni);
            if (!prefix_eq(a, n->key, n->plen))
                break;
            if (n->has_value)
                path[m++] = ni;
            if (n->plen >= t->maxbits)
                break;
            ni = n->child[bit_at(a, n->plen)];
        }
    }
    return m;
}

size_t pr_trie_matches(const pr_trie *t, const uint8_t addr[16], uint32_t *values,
                       uint8_t *plens, size_t cap)
{
    uint32_t path[PR_TRIE_MAX_MATCHES];
    size_t m = lookup_path(t, addr, path);

    for (size_t i = 0; i < m && i < cap; i++) {
        const trie_node *n = node_at(t, path[m - 1 - i]);
        if (values)
            values[i] = n->value;
        if (plens)
            plens[i] = n->plen;
    }
    return m;
}

int pr_trie_lpm(const pr_trie *t, const uint8_t addr[16], uint32_t *value, uint8_t *plen)
{
    uint32_t path[PR_TRIE_MAX_MATCHES];
    size_t m = lookup_path(t, addr, path);
    const trie_node *best;

    if (m == 0)
        return 0;
    best = node_at(t, path[m - 1]);
    if (value)
        *value = best->value;
    if (plen)
        *plen = best->plen;
    return 1;
}

/* ---- walk ---- */

/* Emits a run of equal-key entries collected shortest first, longest first. */
static int flush_run(const pr_trie *t, const uint32_t *run, size_t rn, pr_trie_visit_fn cb,
                     void *ctx)
{
    uint8_t key[16];

    if (rn == 0)
        return 0;
    memset(key, 0, sizeof(key));
    {
        const trie_node *n = node_at(t, run[0]);
        /* "i < 4" is implied by nwords <= 4; spelled out for the optimiser's
         * bounds analysis. */
        for (unsigned i = 0; i < t->nwords && i < 4u; i++)
            store_be32(key + 4u * i, n->key[i]);
    }
    /* Bytes past maxbits/8 (e.g. IPv4's 4..15) stay zero as documented. */
    while (rn > 0) {
        const trie_node *n = node_at(t, run[--rn]);
        int rc = cb(ctx, key, n->plen, n->value);
        if (rc)
            return rc;
    }
    return 0;
}

int pr_trie_walk(const pr_trie *t, pr_trie_visit_fn cb, void *ctx)
{
    uint32_t stack[WALK_STACK];
    uint32_t run[PR_TRIE_MAX_MATCHES];
    size_t sp = 0, rn = 0;
    int rc;

    if (t->root == NIL)
        return 0;
    stack[sp++] = t->root;
    while (sp > 0) {
        uint32_t ni = stack[--sp];
        const trie_node *n = node_at(t, ni);

        if (n->has_value) {
            /* Pre-order sorts by key, then shorter first; equal keys are
             * consecutive, so a new key closes the run. */
            if (rn > 0 && memcmp(node_at(t, run[0])->key, n->key,
                                 t->nwords * sizeof(uint32_t)) != 0) {
                rc = flush_run(t, run, rn, cb, ctx);
                if (rc)
                    return rc;
                rn = 0;
            }
            run[rn++] = ni;
        }
        if (n->child[1] != NIL)
            stack[sp++] = n->child[1];
        if (n->child[0] != NIL)
            stack[sp++] = n->child[0];
    }
    return flush_run(t, run, rn, cb, ctx);
}

/* ---- invariant checker (tests) ---- */

int pr_trie_check(const pr_trie *t)
{
    /* Explicit stack of (node, parent) so the check has no recursion either. */
    uint32_t stack[WALK_STACK], parent[WALK_STACK];
    uint8_t side[WALK_STACK];
    size_t sp = 0, nodes = 0, entries = 0;

    if (t->root == NIL)
        return (t->count == 0 && pr_arena_live(&t->arena) == 0) ? 0 : -1;
    stack[sp] = t->root;
    parent[sp] = NIL;
    side[sp] = 0;
    sp++;
    while (sp > 0) {
        sp--;
        uint32_t ni = stack[sp], pi = parent[sp];
        unsigned b = side[sp];
        const trie_node *n = node_at(t, ni);
        uint32_t masked[4] = {0, 0, 0, 0};

        nodes++;
        if (nodes > pr_arena_live(&t->arena))
            return -2; /* cycle or foreign node */
        if (n->plen > t->maxbits)
            return -3;
        for (unsigned i = 0; i < t->nwords; i++)
            masked[i] = n->key[i];
        for (unsigned i = 0; i < t->nwords; i++) {
            unsigned base = 32u * i;
            uint32_t keep = n->plen <= base ? 0 : mask_top(n->plen - base >= 32u ? 32u : n->plen - base);
            if (masked[i] & ~keep)
                return -4; /* invariant 1 */
        }
        if (pi != NIL) {
            const trie_node *p = node_at(t, pi);
            if (n->plen <= p->plen || !prefix_eq(n->key, p->key, p->plen) ||
                bit_at(n->key, p->plen) != b)
                return -5; /* invariant 2 */
        }
        if (n->has_value)
            entries++;
        else if (n->child[0] == NIL || n->child[1] == NIL)
            return -6; /* invariant 3 */
        for (unsigned c = 0; c < 2; c++) {
            if (n->child[c] == NIL)
                continue;
            if (sp >= WALK_STACK)
                return -7;
            stack[sp] = n->child[c];
            parent[sp] = ni;
            side[sp] = (uint8_t)c;
            sp++;
        }
    }
    if (entries != t->count || nodes != pr_arena_live(&t->arena))
        return -8; /* invariant 4 */
    return 0;
}

/* ---- compaction ---- */

int pr_trie_compact(pr_trie *t)
{
    pr_arena na;
    uint32_t stack[WALK_STACK], parent[WALK_STACK];
    uint8_t side[WALK_STACK];
    size_t sp = 0;
    uint32_t nroot = NIL;
    size_t nodesz = offsetof(trie_node, key) + t->nwords * sizeof(uint32_t);

    if (t->root == NIL)
        return 0;
    if (pr_arena_init(&na, nodesz, NODES_PER_CHUNK) != 0)
        return -ENOMEM;
    stack[sp] = t->root;
    parent[sp] = NIL;
    side[sp] = 0;
    sp++;
    /* Pre-order copy: child[0] lands right after its parent, so the deep end
     * of a lookup path often shares a cache line, and subtrees are contiguous. */
    while (sp > 0) {
        sp--;
        uint32_t oi = stack[sp], pi = parent[sp], ni = pr_arena_alloc(&na);
        const trie_node *o = node_at(t, oi);
        trie_node *n;

        if (ni == NIL) {
            pr_arena_destroy(&na);
            return -ENOMEM;
        }
        n = (trie_node *)pr_arena_get(&na, ni);
        memcpy(n, o, nodesz);
        n->child[0] = n->child[1] = NIL;
        if (pi == NIL)
            nroot = ni;
        else
            ((trie_node *)pr_arena_get(&na, pi))->child[side[sp]] = ni;
        for (unsigned c = 2; c-- > 0;) {
            if (o->child[c] == NIL)
                continue;
            stack[sp] = o->child[c];
            parent[sp] = ni;
            side[sp] = (uint8_t)c;
            sp++;
        }
    }
    pr_arena_destroy(&t->arena);
    t->arena = na;
    t->root = nroot;
    return 0;
}
