/*
 * compile.c - compiled copies of IPv4 tables (lpm4.c) next to their tries.
 *
 * The trie stays the structure that is edited; a table that holds enough
 * prefixes also gets a read-only pr_lpm4 mapping prefix -> slot index, built
 * by pr_policy_compile() and dropped by any trie insert or delete (slot
 * contents may change freely: the copy only maps prefixes to slots).
 */
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "core.h"

/* Only on a table this thread owns alone (refs 1) or is freeing. */
void pr_table_lpm_drop(pr_table *t)
{
    pr_lpm4 *l = atomic_load_explicit(&t->lpm, memory_order_relaxed);
    if (l) {
        atomic_store_explicit(&t->lpm, NULL, memory_order_relaxed);
        pr_lpm4_free(l);
    }
}

typedef struct {
    uint32_t *addr, *value;
    uint8_t *plen;
    size_t n;
} collect;

static int collect_entry(void *ctx, const uint8_t key[16], unsigned plen, uint32_t value)
{
    collect *c = ctx;
    c->addr[c->n] = v4_get(key);
    c->plen[c->n] = (uint8_t)plen;
    c->value[c->n] = value;
    c->n++;
    return 0;
}

static int table_compile(pr_table *t)
{
    size_t n = pr_trie_count(&t->trie);
    collect c = {pr_malloc(n * sizeof(uint32_t) + 4), pr_malloc(n * sizeof(uint32_t) + 4), pr_malloc(n + 1), 0};
    int rc = -PR_LPM4_ENOMEM;
    if (c.addr && c.value && c.plen) {
        pr_trie_walk(&t->trie, collect_entry, &c);
        pr_lpm4 *l = NULL;
        rc = pr_lpm4_build(&l, c.n, c.addr, c.plen, c.value);
        /* release: readers of snapshots sharing this table see it built */
        if (rc == 0)
            atomic_store_explicit(&t->lpm, l, memory_order_release);
    }
    free(c.addr);
    free(c.value);
    free(c.plen);
    return rc;
}

/* One compiler at a time, process-wide (compiling is rare and short when
 * there is nothing to do). */
static atomic_flag compile_lock = ATOMIC_FLAG_INIT;

int pr_policy_compile(pr_policy *p, size_t min_prefixes)
{
    if (!p)
        return -PR_LPM4_EINVAL;
    while (atomic_flag_test_and_set_explicit(&compile_lock, memory_order_acquire))
        sched_yield();   /* another thread is compiling (rare, up to ~0.2 s for 500k prefixes) */
    int rc = 0;
    pr_family *f = &p->v4;
    for (size_t i = 0; i < f->ntables && rc == 0; i++) {
        pr_table *t = f->tables[i].t;   /* possibly shared: only its lpm is set, once */
        if (!atomic_load_explicit(&t->lpm, memory_order_relaxed) && pr_trie_count(&t->trie) >= (min_prefixes ? min_prefixes : 1))
            rc = table_compile(t);
    }
    atomic_flag_clear_explicit(&compile_lock, memory_order_release);
    return rc;
}
