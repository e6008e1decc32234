/*
 * testutil.h - what every C test shares: checks that count and report, and
 * one seeded, reproducible random generator.  Header-only (static inline),
 * so each test stays one executable with no helper library.
 *
 * Checks.  CHECK(cond), CHECK_MSG(cond, fmt, ...) and CHECK_EQ(a, b) count
 * passes and failures; a failure prints file:line, the condition and, for
 * CHECK_EQ, both values (the first TU_MAX_REPORTS failures; the rest are
 * only counted).  CHECK_EQ compares integers as intmax_t, each side
 * evaluated once.  main ends with `return tu_summary("test_x");`.
 *
 * Random numbers.  splitmix64 on one global state (rnd, below), or on a
 * caller's state for threads (rnd_r).  tu_seed() takes the seed from argv[1]
 * when given, else the test's default, and prints it: a failing run is
 * replayed by passing the printed seed back.
 */
#ifndef POLROUTE_TESTUTIL_H
#define POLROUTE_TESTUTIL_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define TU_MAX_REPORTS 50ul

static unsigned long tu_passed, tu_failed;

/* 1 when cond held; reports a failure at file:line. */
static inline int tu_check(int cond, const char *file, int line, const char *text)
{
    if (cond) {
        tu_passed++;
        return 1;
    }
    if (++tu_failed <= TU_MAX_REPORTS)
        fprintf(stderr, "%s:%d: check failed: %s\n", file, line, text);
    return 0;
}

#define CHECK(cond) ((void)tu_check(!!(cond), __FILE__, __LINE__, #cond))

/* fmt and its arguments are only evaluated on failure */
#define CHECK_MSG(cond, ...)                                                        \
    do {                                                                            \
        if (!tu_check(!!(cond), __FILE__, __LINE__, #cond) && tu_failed <= TU_MAX_REPORTS) { \
            fprintf(stderr, "    ");                                                \
            fprintf(stderr, __VA_ARGS__);                                           \
            fputc('\n', stderr);                                                    \
        }                                                                           \
    } while (0)

static inline void tu_check_eq(intmax_t a, intmax_t b, const char *file, int line, const char *ta,
                               const char *tb)
{
    if (a == b) {
        tu_passed++;
        return;
    }
    if (++tu_failed <= TU_MAX_REPORTS)
        fprintf(stderr, "%s:%d: check failed: %s == %s (%jd vs %jd)\n", file, line, ta, tb, a, b);
}

#define CHECK_EQ(a, b) tu_check_eq((intmax_t)(a), (intmax_t)(b), __FILE__, __LINE__, #a, #b)

/* Prints the totals; the exit status of main. */
static inline int tu_summary(const char *name)
{
    printf("%s: %lu checks passed, %lu failed\n", name, tu_passed, tu_failed);
    return tu_failed ? 1 : 0;
}

/* ---- random numbers ---- */

static uint64_t rng_state;

static inline uint64_t rnd_r(uint64_t *st)
{
    /* splitmix64 */
    uint64_t z = (*st += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static inline uint64_t rnd(void) { return rnd_r(&rng_state); }

/* uniform enough in [0, n), n > 0 */
static inline uint32_t below(uint32_t n) { return (uint32_t)(rnd() % n); }

/* The run's seed: argv[1] (any strtoull base) when given, else dflt.  Seeds
 * the global state and prints it so that the run can be replayed. */
static inline uint64_t tu_seed(const char *name, int argc, char **argv, uint64_t dflt)
{
    uint64_t seed = argc > 1 ? (uint64_t)strtoull(argv[1], NULL, 0) : dflt;
    printf("%s: seed %" PRIu64 " (replay: %s %" PRIu64 ")\n", name, seed, name, seed);
    fflush(stdout);   /* still shown if the run crashes */
    rng_state = seed;
    return seed;
}

#endif
