/* c_lpm4.c - the compiled IPv4 LPM (csrc/lpm4.c) in C alone: build time,
 * memory and lookups/s (bulk and one by one) on n random prefixes with a
 * BGP-like length mix, queried at 4M uniform random addresses.  Not a test:
 * timings are never asserted (tests/c/test_lpm4.c checks the answers).
 *
 *   cmake -S . -B build/c && cmake --build build/c --target bench_lpm4
 *   build/c/bench_lpm4 [prefixes=500000]
 *
 * Times are process CPU time, best of 5 runs. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench_util.h"
#include "polroute.h"

/* splitmix64 from a fixed seed: every run times the same table */
static uint64_t rng_state = 42;
static uint64_t rnd(void)
{
    uint64_t z = (rng_state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* BGP-like: mostly /24, some /16-/23, few /8-/15 and longer than /24 */
static unsigned draw_len(void)
{
    unsigned r = (unsigned)(rnd() % 1000);
    if (r < 600)
        return 24;
    if (r < 950)
        return 16 + (unsigned)(rnd() % 8);
    if (r < 985)
        return 8 + (unsigned)(rnd() % 8);
    return 25 + (unsigned)(rnd() % 8);
}

static double now(void)
{
    return bench_clock_s(CLOCK_PROCESS_CPUTIME_ID);
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? (size_t)strtoull(argv[1], NULL, 10) : 500000;
    uint32_t *addr = malloc((n ? n : 1) * sizeof(uint32_t));
    uint8_t *plen = malloc(n ? n : 1);
    uint32_t *val = malloc((n ? n : 1) * sizeof(uint32_t));
    size_t q = (size_t)1 << 22;
    uint32_t *qs = malloc(q * sizeof(uint32_t)), *out = malloc(q * sizeof(uint32_t));
    pr_lpm4 *t = NULL;
    int rc = 1;
    if (!addr || !plen || !val || !qs || !out) {
        fprintf(stderr, "out of memory\n");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        plen[i] = (uint8_t)draw_len();
        addr[i] = (uint32_t)rnd();
        val[i] = (uint32_t)i;
    }
    double t0 = now();
    if (pr_lpm4_build(&t, n, addr, plen, val) != 0) {
        fprintf(stderr, "pr_lpm4_build failed\n");
        goto done;
    }
    double t1 = now();
    for (size_t i = 0; i < q; i++)
        qs[i] = (uint32_t)rnd();
    double best = 1e9, best1 = 1e9;
    for (int r = 0; r < 5; r++) {
        double a = now();
        pr_lpm4_lookup_bulk(t, q, qs, out);
        double b = now();
        for (size_t i = 0; i < q; i++)
            out[i] = pr_lpm4_lookup(t, qs[i]);
        double c = now();
        if (b - a < best)
            best = b - a;
        if (c - b < best1)
            best1 = c - b;
    }
    printf("prefixes %zu (distinct %zu): build %.3f s CPU, memory %.1f MB; bulk %.1f M lookups/s (%.2f ns), "
           "one-by-one %.1f M/s\n", n, pr_lpm4_count(t), t1 - t0, (double)pr_lpm4_memory(t) / 1e6,
           (double)q / best / 1e6, best / (double)q * 1e9, (double)q / best1 / 1e6);
    rc = 0;
done:
    pr_lpm4_free(t);
    free(qs);
    free(out);
    free(addr);
    free(plen);
    free(val);
    return rc;
}
