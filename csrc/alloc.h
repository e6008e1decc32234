/*
 * alloc.h - the core's allocation wrappers and their test hook (internal
 * header, not part of the public API).
 *
 * Every allocation of the core goes through pr_malloc / pr_calloc /
 * pr_realloc / pr_memalign; their memory is released with plain free().
 * They behave exactly as the libc calls, except that a test can arm a
 * process-wide counter so that the n-th allocation from then on fails:
 * that is how every out-of-memory path of a constructor is exercised
 * (tests/c/test_fast4_alloc.c).
 *
 * The hook is compiled in always rather than under a test-only define, so
 * the C tests link the very core the wheel ships (one build, no second
 * configuration to keep working).  Disarmed, it costs one relaxed atomic load
 * per allocation, next to a malloc.  The symbols have hidden visibility:
 * the Python module does not export them.
 */
#ifndef POLROUTE_ALLOC_H
#define POLROUTE_ALLOC_H

#include <stddef.h>
#include <stdint.h>

void *pr_malloc(size_t size);
void *pr_calloc(size_t n, size_t size);
void *pr_realloc(void *ptr, size_t size);   /* on failure ptr is untouched, as realloc */
/* posix_memalign: align a power of two multiple of sizeof(void *); NULL on failure. */
void *pr_memalign(size_t align, size_t size);

/* Test hook.  pr_alloc_fail_nth(n), n > 0: counting from this call, the n-th
 * allocation through the wrappers (from any thread) returns NULL, once; the
 * others succeed as usual.  n = 0 disarms.  While armed the wrappers count
 * their calls: pr_alloc_calls() is that count since the last arming, so
 * pr_alloc_fail_nth(UINT64_MAX) also measures how many allocations a call
 * makes.  pr_alloc_failed() says whether the armed failure has happened. */
void pr_alloc_fail_nth(uint64_t n);
uint64_t pr_alloc_calls(void);
int pr_alloc_failed(void);

#endif
