/*
 * trie.h - path-compressed binary (Patricia) trie of address prefixes
 * (internal).  One instance per (family, routing table).
 *
 * Maps (key, prefix length) -> uint32_t value; the value is opaque to the
 * trie (callers store an index into their own pools).  Keys are 16-byte
 * arrays in network byte order; a trie with maxbits 32 reads only the first
 * 4 bytes.  Bits of a key beyond the prefix length are ignored everywhere
 * (insert, find and delete mask them off).
 *
 * Writers need exclusive access.  Lookups (find, matches, lpm, count, walk)
 * do not allocate and may run concurrently from several threads on a trie
 * that is not being changed.  See trie.c for the design.
 */
#ifndef POLROUTE_TRIE_H
#define POLROUTE_TRIE_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"

/* Longest possible chain of nested prefixes: /0 .. /128. */
#define PR_TRIE_MAX_MATCHES 129

typedef struct pr_trie {
    pr_arena arena;    /* all nodes */
    uint32_t root;     /* node index, PR_ARENA_NIL when empty */
    uint32_t count;    /* entries (nodes holding a value) */
    uint16_t maxbits;  /* key width: 32 or 128 */
    uint16_t nwords;   /* 32-bit words per node key: ceil(maxbits / 32) */
} pr_trie;

/* maxbits: 32 or 128 (any 1..128 works).  Allocates nothing: an empty trie
 * costs only sizeof(pr_trie).  0, or -EINVAL for a bad maxbits. */
int pr_trie_init(pr_trie *t, unsigned maxbits);
void pr_trie_destroy(pr_trie *t);
/* Deep copy into an uninitialised dst.  0 or -ENOMEM (dst then empty but
 * initialised: destroying it is safe). */
int pr_trie_clone(pr_trie *dst, const pr_trie *src);

/* Insert or overwrite.  0 inserted, 1 overwrote, -ENOMEM (trie unchanged),
 * -EINVAL when plen > maxbits. */
int pr_trie_insert(pr_trie *t, const uint8_t key[16], unsigned plen, uint32_t value);
/* Value slot of the exact entry (key, plen), or NULL.  Valid until the next
 * insert/delete/destroy. */
uint32_t *pr_trie_find(const pr_trie *t, const uint8_t key[16], unsigned plen);
/* Remove the exact entry.  0 or -ENOENT. */
int pr_trie_delete(pr_trie *t, const uint8_t key[16], unsigned plen);

/* Every entry covering addr, longest prefix first: writes up to cap pairs
 * (values or plens may be NULL to skip that column) and returns the total
 * number of matches (<= maxbits + 1, may exceed cap). */
size_t pr_trie_matches(const pr_trie *t, const uint8_t addr[16], uint32_t *values,
                       uint8_t *plens, size_t cap);
/* Longest match: 1 with *value and *plen filled (either may be NULL), or 0. */
int pr_trie_lpm(const pr_trie *t, const uint8_t addr[16], uint32_t *value, uint8_t *plen);
size_t pr_trie_count(const pr_trie *t);

/* Dump order: ascending key as a big-endian number; for equal keys the longer
 * prefix first (Linux fib_trie order).  The key passed to cb has host bits
 * zero and, for maxbits 32, bytes 4..15 zero.  cb must not change the trie.
 * Stops at the first non-zero return of cb and returns it; 0 otherwise. */
typedef int (*pr_trie_visit_fn)(void *ctx, const uint8_t key[16], unsigned plen, uint32_t value);
int pr_trie_walk(const pr_trie *t, pr_trie_visit_fn cb, void *ctx);

/* Bytes held by the node arena (0 for an empty trie). */
size_t pr_trie_memory(const pr_trie *t);

/* Debug aid for tests: verifies every structural invariant listed in trie.c.
 * 0 if sound, otherwise a negative number identifying the broken rule. */
int pr_trie_check(const pr_trie *t);

/* Rebuilds the node arena in depth-first order (children next to parents,
 * free list gone).  Lookup results are unchanged; large tables built by
 * scattered inserts look up faster afterwards.  0 or -ENOMEM (t unchanged). */
int pr_trie_compact(pr_trie *t);

#endif /* POLROUTE_TRIE_H */
