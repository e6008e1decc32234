/* bench_util.h - what the C benchmarks (bench/c_*.c) share: a CPU clock in
 * seconds, an IPv4 address into the core's 16-byte form, and the seeded LCG
 * their tenant and flow draws use (same seed, same workload). */
#ifndef POLROUTE_BENCH_UTIL_H
#define POLROUTE_BENCH_UTIL_H

#include <stdint.h>
#include <string.h>
#include <time.h>

/* seconds of clock c (CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID ...) */
static inline double bench_clock_s(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* a (host order) into b[0..3] in network order, b[4..15] zero */
static inline void bench_put4(uint8_t *b, uint32_t a)
{
    memset(b, 0, 16);
    b[0] = (uint8_t)(a >> 24);
    b[1] = (uint8_t)(a >> 16);
    b[2] = (uint8_t)(a >> 8);
    b[3] = (uint8_t)a;
}

/* Knuth's MMIX LCG, high 32 bits */
static uint64_t bench_rng = 20261126;
static inline uint32_t bench_rnd(void)
{
    bench_rng = bench_rng * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
    return (uint32_t)(bench_rng >> 32);
}

#endif
