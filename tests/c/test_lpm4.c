/*
 * test_lpm4.c - checks the compiled IPv4 LPM (csrc/lpm4.c) against a
 * brute-force reference and against the Patricia trie on random tables.
 *
 * Usage: test_lpm4 [seed]   (the seed is printed; pass it back to replay)
 * Its speed is measured by bench/c_lpm4.c (bench_lpm4), not here.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "polroute.h"
#include "testutil.h"
#include "trie.h"

static uint32_t mask_of(unsigned plen) { return plen ? (uint32_t)(0xFFFFFFFFu << (32 - plen)) : 0; }

/* Length mixes: 0 = BGP-like (mostly /24, some /16-/23, few longer),
 * 1 = uniform 0..32, 2 = nested under few short prefixes, 3 = only long ones. */
static unsigned draw_len(int mix)
{
    unsigned r = (unsigned)(rnd() % 1000);
    switch (mix) {
    case 0:
        if (r < 600) return 24;
        if (r < 950) return 16 + (unsigned)(rnd() % 8);
        if (r < 985) return 8 + (unsigned)(rnd() % 8);
        return 25 + (unsigned)(rnd() % 8);
    case 1: return (unsigned)(rnd() % 33);
    case 2: return r < 50 ? (unsigned)(rnd() % 12) : 12 + (unsigned)(rnd() % 21);
    default: return 25 + (unsigned)(rnd() % 8);
    }
}

/* Addresses clustered under a few /8s for mixes 2 and 3 so prefixes nest. */
static uint32_t draw_addr(int mix)
{
    uint32_t a = (uint32_t)rnd();
    if (mix >= 2)
        a = (a & 0x00FFFFFFu) | ((uint32_t)(rnd() % 3) << 24) | 0x0A000000u;
    return a;
}

static uint32_t brute(size_t n, const uint32_t *addr, const uint8_t *plen, const uint32_t *val, uint32_t a)
{
    int best = -1;
    uint32_t v = PR_LPM4_NONE;
    for (size_t i = 0; i < n; i++) {
        uint32_t m = mask_of(plen[i]);
        /* >= : a later duplicate of the same (addr, plen) wins */
        if ((a & m) == (addr[i] & m) && (int)plen[i] >= best) {
            best = plen[i];
            v = val[i];
        }
    }
    return v;
}

static void random_table(int mix, size_t n, uint64_t seed)
{
    rng_state = seed;
    uint32_t *addr = malloc(n * sizeof(uint32_t) + 4);
    uint8_t *plen = malloc(n + 1);
    uint32_t *val = malloc(n * sizeof(uint32_t) + 4);
    pr_trie trie;
    pr_trie_init(&trie, 32);
    for (size_t i = 0; i < n; i++) {
        plen[i] = (uint8_t)draw_len(mix);
        /* some exact duplicates (same prefix, new value) */
        addr[i] = (i > 0 && rnd() % 20 == 0) ? addr[rnd() % i] : draw_addr(mix);
        if (i > 0 && addr[i] == addr[i - 1])
            plen[i] = plen[i - 1];
        val[i] = (uint32_t)(rnd() % 0x7FFFFFFFu);
        uint8_t key[16] = {0};
        uint32_t m = addr[i] & mask_of(plen[i]);
        key[0] = (uint8_t)(m >> 24); key[1] = (uint8_t)(m >> 16); key[2] = (uint8_t)(m >> 8); key[3] = (uint8_t)m;
        pr_trie_insert(&trie, key, plen[i], val[i]);
    }
    pr_lpm4 *t = NULL;
    int rc = pr_lpm4_build(&t, n, addr, plen, val);
    CHECK_MSG(rc == 0 && t, "build rc %d", rc);
    if (!t)
        goto done;
    CHECK_MSG(pr_lpm4_count(t) == pr_trie_count(&trie), "count %zu vs trie %zu", pr_lpm4_count(t), pr_trie_count(&trie));
    enum { Q = 3000 };
    uint32_t qs[Q], got[Q];
    for (size_t i = 0; i < Q; i++) {
        switch (rnd() % 4) {
        case 0: qs[i] = (uint32_t)rnd(); break;
        case 1: qs[i] = n ? (addr[rnd() % n] & mask_of(plen[rnd() % n])) : 0; break;   /* edges of prefixes */
        case 2: qs[i] = n ? addr[rnd() % n] ^ (uint32_t)(1u << (rnd() % 32)) : 0; break;
        default: qs[i] = draw_addr(mix); break;
        }
    }
    qs[0] = 0;
    qs[1] = 0xFFFFFFFFu;
    pr_lpm4_lookup_bulk(t, Q, qs, got);
    for (size_t i = 0; i < Q; i++) {
        uint32_t want = brute(n, addr, plen, val, qs[i]);
        uint32_t one = pr_lpm4_lookup(t, qs[i]);
        uint8_t key[16] = {0};
        key[0] = (uint8_t)(qs[i] >> 24); key[1] = (uint8_t)(qs[i] >> 16);
        key[2] = (uint8_t)(qs[i] >> 8); key[3] = (uint8_t)qs[i];
        uint32_t tv = PR_LPM4_NONE;
        pr_trie_lpm(&trie, key, &tv, NULL);
        CHECK_MSG(one == want, "mix %d n %zu seed %" PRIu64 " addr %08x: lpm4 %u brute %u", mix, n, seed, qs[i], one, want);
        CHECK_MSG(got[i] == want, "bulk mix %d n %zu addr %08x: %u vs %u", mix, n, qs[i], got[i], want);
        CHECK_MSG(tv == want, "trie mix %d addr %08x: %u vs %u", mix, qs[i], tv, want);
    }
    /* odd lengths: the bulk tail path */
    for (size_t k = 0; k < 40; k++) {
        size_t m = (size_t)(rnd() % 40);
        pr_lpm4_lookup_bulk(t, m, qs + k, got);
        for (size_t i = 0; i < m; i++)
            CHECK_MSG(got[i] == pr_lpm4_lookup(t, qs[k + i]), "bulk tail m %zu i %zu", m, i);
    }
done:
    pr_lpm4_free(t);
    pr_trie_destroy(&trie);
    free(addr);
    free(plen);
    free(val);
}

static void edge_cases(void)
{
    pr_lpm4 *t = NULL;
    CHECK_MSG(pr_lpm4_build(&t, 0, NULL, NULL, NULL) == 0 && t, "empty");
    CHECK_MSG(pr_lpm4_lookup(t, 0x01020304) == PR_LPM4_NONE, "empty answers none");
    pr_lpm4_free(t);
    uint32_t a[] = {0, 0x0A000000, 0x0A000001};
    uint8_t l[] = {0, 8, 32};
    uint32_t v[] = {1, 2, 3};
    CHECK_MSG(pr_lpm4_build(&t, 3, a, l, v) == 0, "build");
    CHECK_MSG(pr_lpm4_lookup(t, 0x0B000000) == 1, "default");
    CHECK_MSG(pr_lpm4_lookup(t, 0x0A000002) == 2, "/8");
    CHECK_MSG(pr_lpm4_lookup(t, 0x0A000001) == 3, "/32");
    pr_lpm4_free(t);
    uint8_t bad[] = {33};
    CHECK_MSG(pr_lpm4_build(&t, 1, a, bad, v) == -PR_LPM4_EINVAL && !t, "plen 33 refused");
    uint32_t badv[] = {PR_LPM4_NONE};
    CHECK_MSG(pr_lpm4_build(&t, 1, a, l, badv) == -PR_LPM4_EINVAL && !t, "value NONE refused");
}

int main(int argc, char **argv)
{
    uint64_t seed = tu_seed("test_lpm4", argc, argv, (uint64_t)time(NULL));
    edge_cases();
    size_t sizes[] = {0, 1, 2, 5, 30, 200, 1000, 5000};
    for (int mix = 0; mix < 4; mix++)
        for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
            for (int rep = 0; rep < 3; rep++)
                random_table(mix, sizes[s], seed + (uint64_t)(mix * 1000 + (int)s * 10 + rep));
    return tu_summary("test_lpm4");
}
