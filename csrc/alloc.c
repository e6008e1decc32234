/*
 * alloc.c - the core's allocation wrappers and the failure-injection hook
 * (see alloc.h).
 */
#include "alloc.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

/* Atomics: tests arm the hook from one thread while others may allocate
 * (test_snapshot's readers), and a plain shared counter would be a race. */
static atomic_uint_fast64_t fail_at;   /* 0: disarmed */
static atomic_uint_fast64_t calls;     /* wrapper calls since arming */
static atomic_bool fired;

void pr_alloc_fail_nth(uint64_t n)
{
    atomic_store(&fail_at, 0);   /* no allocation sees a half-armed state */
    atomic_store(&calls, 0);
    atomic_store(&fired, false);
    atomic_store(&fail_at, n);
}

uint64_t pr_alloc_calls(void) { return atomic_load(&calls); }

int pr_alloc_failed(void) { return atomic_load(&fired); }

/* true: this allocation must fail */
static bool inject(void)
{
    uint_fast64_t at = atomic_load_explicit(&fail_at, memory_order_relaxed);
    if (__builtin_expect(at == 0, 1))
        return false;
    if (atomic_fetch_add(&calls, 1) + 1 != at)
        return false;
    atomic_store(&fired, true);
    return true;
}

void *pr_malloc(size_t size) { return inject() ? NULL : malloc(size); }

void *pr_calloc(size_t n, size_t size) { return inject() ? NULL : calloc(n, size); }

void *pr_realloc(void *ptr, size_t size) { return inject() ? NULL : realloc(ptr, size); }

void *pr_memalign(size_t align, size_t size)
{
    void *r = NULL;
    if (inject() || posix_memalign(&r, align, size) != 0)
        return NULL;
    return r;
}
