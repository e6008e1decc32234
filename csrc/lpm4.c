/*
 * lpm4.c - a read-only IPv4 longest-prefix-match structure compiled from a
 * prefix list (poptrie-like; Asai & Ohara, SIGCOMM 2015).
 *
 * Why not DIR-24-8: polroute's values are per-prefix slot numbers (500,000
 * prefixes = 500,000 distinct values), so entries need 32 bits, and a 2^24
 * direct table of 32-bit entries is 64 MiB.  This layout keeps the speed of
 * a direct-pointing first step and compresses the rest:
 *
 *   top[2^18]   one 32-bit entry per /18: a leaf value (bit 31 clear) or
 *               bit 31 | index of a node covering the next 6 bits;
 *   node        64 children as two 64-bit bitmaps: `vector` marks children
 *               that are nodes (stored contiguously from base1), `leafvec`
 *               marks where a run of equal leaf values starts among the
 *               leaf children (runs stored contiguously from base0).  The
 *               child/leaf index is a popcount of the bitmap below the bit.
 *
 * A /24 lookup is three dependent loads (top, node, leaf); /25-/30 one more
 * node, /31-/32 two more.  Leaf pushing happens at build time: every leaf
 * holds the value of the longest prefix covering its whole range.
 *
 * The bulk lookup walks a group of addresses level by level and prefetches
 * each address's next load before touching any of them, so the cache misses
 * of a group overlap instead of queueing.
 *
 * popcount: baseline x86-64 has no POPCNT instruction and the compiler's
 * fallback is a call; the lookups are compiled twice (with and without
 * target("popcnt")) and the CPU is asked once.
 */
#define _DEFAULT_SOURCE 1   /* madvise(MADV_HUGEPAGE) */
#include "lpm4.h"

#include "alloc.h"

#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#define TOP_BITS 18u
#define STRIDE 6u
#define NODE_FLAG 0x80000000u

typedef struct lpm_node {
    uint64_t vector;   /* child k is a node */
    uint64_t leafvec;  /* a leaf run starts at child k */
    uint32_t base0;    /* first leaf of this node in leaves[] */
    uint32_t base1;    /* first child node in nodes[] */
} lpm_node;

struct pr_lpm4 {
    uint32_t *top;
    lpm_node *nodes;
    uint32_t nnodes, capnodes;
    uint32_t *leaves;
    uint32_t nleaves, capleaves;
    uint32_t nprefixes;
    void *region;      /* after the build: top, nodes and leaves in one block */
    size_t region_size;
};

/* The finished structure goes into one block aligned to 2 MiB and marked for
 * transparent huge pages: lookups touch random places of a ~10 MB structure
 * and 4 KiB pages would cost a TLB miss on most of them. */
#define REGION_ALIGN ((size_t)2 << 20)

void *pr_alloc_random_access(size_t *size)
{
    size_t align = *size >= REGION_ALIGN / 2 ? REGION_ALIGN : 64;
    size_t sz = (*size + align - 1) / align * align;
    void *r = pr_memalign(align, sz ? sz : align);
    if (!r)
        return NULL;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (align == REGION_ALIGN)
        (void)madvise(r, sz, MADV_HUGEPAGE);   /* a hint: failure only costs speed */
#endif
    *size = sz;
    return r;
}

static int pack_region(pr_lpm4 *t)
{
    size_t top_b = ((size_t)1 << TOP_BITS) * sizeof(uint32_t);
    size_t nodes_b = (size_t)t->nnodes * sizeof(lpm_node);
    size_t leaves_b = (size_t)t->nleaves * sizeof(uint32_t);
    size_t size = top_b + nodes_b + leaves_b;
    void *r = pr_alloc_random_access(&size);
    if (!r)
        return -1;
    char *c = r;
    memcpy(c, t->top, top_b);
    if (nodes_b)
        memcpy(c + top_b, t->nodes, nodes_b);
    if (leaves_b)
        memcpy(c + top_b + nodes_b, t->leaves, leaves_b);
    free(t->top);
    free(t->nodes);
    free(t->leaves);
    t->top = (uint32_t *)(void *)c;
    t->nodes = (lpm_node *)(void *)(c + top_b);
    t->leaves = (uint32_t *)(void *)(c + top_b + nodes_b);
    t->capnodes = t->nnodes;
    t->capleaves = t->nleaves;
    t->region = r;
    t->region_size = size;
    return 0;
}

/* One input prefix after sorting: (addr << 32) | (plen << 26) | input index,
 * so ties on (addr, plen) keep input order and the last one wins. */
#define IDX_BITS 26u

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static inline uint32_t key_addr(uint64_t k) { return (uint32_t)(k >> 32); }
static inline unsigned key_plen(uint64_t k) { return (unsigned)((k >> IDX_BITS) & 63u); }
static inline uint32_t key_idx(uint64_t k) { return (uint32_t)(k & ((1u << IDX_BITS) - 1u)); }

/* The STRIDE bits of addr starting at bit depth (bits past 32 read as zero). */
static inline unsigned chunk_at(uint32_t addr, unsigned depth)
{
    return (unsigned)((((uint64_t)addr << 32) >> (64u - depth - STRIDE)) & 63u);
}

static int grow_nodes(pr_lpm4 *t, uint32_t more)
{
    if (t->nnodes + (uint64_t)more > 0x7FFFFFFFu)
        return -1;
    if (t->nnodes + more <= t->capnodes)
        return 0;
    uint32_t cap = t->capnodes ? t->capnodes : 1024;
    while (cap < t->nnodes + more)
        cap *= 2;
    lpm_node *n = pr_realloc(t->nodes, (size_t)cap * sizeof(lpm_node));
    if (!n)
        return -1;
    t->nodes = n;
    t->capnodes = cap;
    return 0;
}

static int push_leaf(pr_lpm4 *t, uint32_t v)
{
    if (t->nleaves == t->capleaves) {
        uint32_t cap = t->capleaves ? t->capleaves * 2 : 4096;
        uint32_t *l = pr_realloc(t->leaves, (size_t)cap * sizeof(uint32_t));
        if (!l)
            return -1;
        t->leaves = l;
        t->capleaves = cap;
    }
    t->leaves[t->nleaves++] = v;
    return 0;
}

/* Fills node `ni` covering bits [depth, depth + STRIDE) below a prefix whose
 * covering value is def.  keys[lo, hi) hold every prefix longer than depth
 * inside this node's range (and possibly shorter ones, already applied above,
 * which are skipped). */
static int build_node(pr_lpm4 *t, uint32_t ni, unsigned depth, uint32_t def, const uint64_t *keys,
                      const uint32_t *vals, size_t lo, size_t hi)
{
    uint32_t slot[64];
    uint64_t vector = 0;
    for (unsigned k = 0; k < 64; k++)
        slot[k] = def;
    /* sorted by (addr, plen): an enclosing prefix comes before what it encloses */
    for (size_t i = lo; i < hi; i++) {
        unsigned plen = key_plen(keys[i]);
        if (plen <= depth)
            continue;
        unsigned c = chunk_at(key_addr(keys[i]), depth);
        if (plen > depth + STRIDE) {
            vector |= UINT64_C(1) << c;
            continue;
        }
        unsigned span = 1u << (depth + STRIDE - plen);
        for (unsigned k = c; k < c + span; k++)
            slot[k] = vals[key_idx(keys[i])];
    }
    uint32_t nchild = (uint32_t)__builtin_popcountll(vector);
    uint32_t base1 = t->nnodes;
    if (grow_nodes(t, nchild) < 0)
        return -1;
    t->nnodes += nchild;
    uint32_t base0 = t->nleaves;
    uint64_t leafvec = 0;
    bool have_prev = false;
    uint32_t prev = 0;
    for (unsigned k = 0; k < 64; k++) {
        if (vector & (UINT64_C(1) << k))
            continue;
        if (!have_prev || slot[k] != prev) {
            leafvec |= UINT64_C(1) << k;
            if (push_leaf(t, slot[k]) < 0)
                return -1;
            prev = slot[k];
            have_prev = true;
        }
    }
    t->nodes[ni].vector = vector;
    t->nodes[ni].leafvec = leafvec;
    t->nodes[ni].base0 = base0;
    t->nodes[ni].base1 = base1;
    /* children, in bit order: each one's prefixes are a contiguous run of the
     * longer-than-this-node ones */
    uint32_t child = base1;
    size_t i = lo;
    while (i < hi) {
        if (key_plen(keys[i]) <= depth + STRIDE) {
            i++;
            continue;
        }
        unsigned c = chunk_at(key_addr(keys[i]), depth);
        size_t j = i + 1;
        while (j < hi && (key_plen(keys[j]) <= depth || chunk_at(key_addr(keys[j]), depth) == c))
            j++;
        if (build_node(t, child++, depth + STRIDE, slot[c], keys, vals, i, j) < 0)
            return -1;
        i = j;
    }
    return 0;
}

void pr_lpm4_free(pr_lpm4 *t)
{
    if (!t)
        return;
    if (t->region) {
        free(t->region);
    } else {
        free(t->top);
        free(t->nodes);
        free(t->leaves);
    }
    free(t);
}

int pr_lpm4_build(pr_lpm4 **out, size_t n, const uint32_t *addr, const uint8_t *plen, const uint32_t *value)
{
    if (!out || (n && (!addr || !plen || !value)) || n >= (1u << IDX_BITS))
        return -PR_LPM4_EINVAL;
    *out = NULL;
    for (size_t i = 0; i < n; i++)
        if (plen[i] > 32 || value[i] >= PR_LPM4_NONE)
            return -PR_LPM4_EINVAL;
    pr_lpm4 *t = pr_calloc(1, sizeof(*t));
    uint64_t *keys = pr_malloc((n ? n : 1) * sizeof(uint64_t));
    if (t)
        t->top = pr_malloc(((size_t)1 << TOP_BITS) * sizeof(uint32_t));
    if (!t || !keys || !t->top)
        goto oom;
    for (size_t i = 0; i < n; i++) {
        uint32_t m = plen[i] ? (uint32_t)(0xFFFFFFFFu << (32u - plen[i])) : 0;
        keys[i] = ((uint64_t)(addr[i] & m) << 32) | ((uint64_t)plen[i] << IDX_BITS) | (uint64_t)i;
    }
    qsort(keys, n, sizeof(uint64_t), cmp_u64);
    /* duplicates of (addr, plen): keep the last given */
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m && (keys[m - 1] >> IDX_BITS) == (keys[i] >> IDX_BITS))
            m--;
        keys[m++] = keys[i];
    }
    t->nprefixes = (uint32_t)m;
    for (size_t k = 0; k < ((size_t)1 << TOP_BITS); k++)
        t->top[k] = PR_LPM4_NONE;
    for (size_t i = 0; i < m; i++) {
        unsigned pl = key_plen(keys[i]);
        if (pl > TOP_BITS)
            continue;
        size_t first = key_addr(keys[i]) >> (32u - TOP_BITS);
        size_t span = (size_t)1 << (TOP_BITS - pl);
        uint32_t v = value[key_idx(keys[i])];
        for (size_t k = first; k < first + span; k++)
            t->top[k] = v;
    }
    size_t i = 0;
    while (i < m) {
        if (key_plen(keys[i]) <= TOP_BITS) {
            i++;
            continue;
        }
        uint32_t c = key_addr(keys[i]) >> (32u - TOP_BITS);
        size_t j = i + 1;
        while (j < m && (key_plen(keys[j]) <= TOP_BITS || key_addr(keys[j]) >> (32u - TOP_BITS) == c))
            j++;
        if (grow_nodes(t, 1) < 0)
            goto oom;
        uint32_t ni = t->nnodes++;
        if (build_node(t, ni, TOP_BITS, t->top[c], keys, value, i, j) < 0)
            goto oom;
        t->top[c] = NODE_FLAG | ni;
        i = j;
    }
    free(keys);
    keys = NULL;
    if (pack_region(t) < 0)
        goto oom;
    *out = t;
    return 0;
oom:
    free(keys);
    pr_lpm4_free(t);
    return -PR_LPM4_ENOMEM;
}

size_t pr_lpm4_memory(const pr_lpm4 *t)
{
    if (!t)
        return 0;
    return sizeof(*t) + t->region_size;
}

size_t pr_lpm4_count(const pr_lpm4 *t) { return t ? t->nprefixes : 0; }

/* ---- lookups ---- */

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* Index of bit k among the set bits of v at or below k (k's rank, from 1). */
ALWAYS_INLINE uint32_t rank(uint64_t v, unsigned k)
{
    uint64_t below = (UINT64_C(2) << k) - 1u;   /* k = 63: wraps to all ones */
    return (uint32_t)__builtin_popcountll(v & below);
}

ALWAYS_INLINE uint32_t lookup_one(const pr_lpm4 *t, uint32_t a)
{
    uint32_t e = t->top[a >> (32u - TOP_BITS)];
    if (!(e & NODE_FLAG))
        return e;
    const lpm_node *nd = &t->nodes[e & ~NODE_FLAG];
    for (unsigned depth = TOP_BITS;; depth += STRIDE) {
        unsigned c = chunk_at(a, depth);
        if (!(nd->vector & (UINT64_C(1) << c)))
            return t->leaves[nd->base0 + rank(nd->leafvec, c) - 1u];
        nd = &t->nodes[nd->base1 + rank(nd->vector, c) - 1u];
    }
}

/* Lanes of one group: how many lookups are in flight at once.  The top
 * entries of the next group are prefetched one group ahead. */
#define GROUP 32u

ALWAYS_INLINE void lookup_bulk_body(const pr_lpm4 *t, size_t n, const uint32_t *addrs, uint32_t *values)
{
    const uint32_t *top = t->top;
    const lpm_node *nodes = t->nodes;
    const uint32_t *leaves = t->leaves;
    size_t g = 0;
    if (n >= GROUP)
        for (unsigned l = 0; l < GROUP; l++)
            __builtin_prefetch(&top[addrs[l] >> (32u - TOP_BITS)]);
    for (; g + GROUP <= n; g += GROUP) {
        const uint32_t *a = addrs + g;
        uint32_t *v = values + g;
        uint32_t node[GROUP];
        uint8_t act[GROUP], done[GROUP];
        unsigned nact = 0, ndone = 0;
        if (g + 2 * GROUP <= n)
            for (unsigned l = 0; l < GROUP; l++)
                __builtin_prefetch(&top[a[GROUP + l] >> (32u - TOP_BITS)]);
        for (unsigned l = 0; l < GROUP; l++) {
            uint32_t e = top[a[l] >> (32u - TOP_BITS)];
            v[l] = e;
            node[l] = e & ~NODE_FLAG;
            __builtin_prefetch(&nodes[node[l]]);
            act[nact] = (uint8_t)l;
            nact += e >> 31;
        }
        for (unsigned depth = TOP_BITS; nact; depth += STRIDE) {
            unsigned keep = 0;
            for (unsigned i = 0; i < nact; i++) {
                unsigned l = act[i];
                const lpm_node *nd = &nodes[node[l]];
                unsigned c = chunk_at(a[l], depth);
                if (nd->vector & (UINT64_C(1) << c)) {
                    node[l] = nd->base1 + rank(nd->vector, c) - 1u;
                    __builtin_prefetch(&nodes[node[l]]);
                    act[keep++] = (uint8_t)l;
                } else {
                    node[l] = nd->base0 + rank(nd->leafvec, c) - 1u;
                    __builtin_prefetch(&leaves[node[l]]);
                    done[ndone++] = (uint8_t)l;
                }
            }
            nact = keep;
        }
        for (unsigned i = 0; i < ndone; i++)
            v[done[i]] = leaves[node[done[i]]];
    }
    for (; g < n; g++)
        values[g] = lookup_one(t, addrs[g]);
}

static void lookup_bulk_generic(const pr_lpm4 *t, size_t n, const uint32_t *addrs, uint32_t *values)
{
    lookup_bulk_body(t, n, addrs, values);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("popcnt"))) static void lookup_bulk_popcnt(const pr_lpm4 *t, size_t n, const uint32_t *addrs,
                                                                  uint32_t *values)
{
    lookup_bulk_body(t, n, addrs, values);
}
__attribute__((target("popcnt"))) static uint32_t lookup_one_popcnt(const pr_lpm4 *t, uint32_t a)
{
    return lookup_one(t, a);
}
static int have_popcnt(void)
{
    static int cached = -1;   /* benign race: every thread computes the same value */
    int c = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (c < 0) {
        __builtin_cpu_init();
        c = __builtin_cpu_supports("popcnt") ? 1 : 0;
        __atomic_store_n(&cached, c, __ATOMIC_RELAXED);
    }
    return c;
}
#else
static int have_popcnt(void) { return 0; }
#define lookup_bulk_popcnt lookup_bulk_generic
static uint32_t lookup_one_popcnt(const pr_lpm4 *t, uint32_t a) { return lookup_one(t, a); }
#endif

uint32_t pr_lpm4_lookup(const pr_lpm4 *t, uint32_t addr)
{
    return have_popcnt() ? lookup_one_popcnt(t, addr) : lookup_one(t, addr);
}

/* The first load a lookup of addr makes (fast4.c overlaps its misses). */
void pr_lpm4_prefetch(const pr_lpm4 *t, uint32_t addr)
{
    __builtin_prefetch(&t->top[addr >> (32u - TOP_BITS)]);
}

void pr_lpm4_lookup_bulk(const pr_lpm4 *t, size_t n, const uint32_t *addrs, uint32_t *values)
{
    if (have_popcnt())
        lookup_bulk_popcnt(t, n, addrs, values);
    else
        lookup_bulk_generic(t, n, addrs, values);
}
