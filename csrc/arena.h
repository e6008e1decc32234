/*
 * arena.h - fixed-size object pool addressed by 32-bit indices (internal).
 *
 * Objects live in chunks of a power-of-two number of slots; the chunks never
 * move once allocated, so a pointer obtained with pr_arena_get() stays valid
 * until that object is freed or the arena is cleared/destroyed.  Freed slots
 * are threaded onto a free list stored inside the slots themselves and are
 * reused before the bump pointer advances.
 *
 * Indices instead of pointers: half the size of a pointer on 64-bit hosts
 * (denser nodes, better cache use), and a structure built from indices can be
 * deep-copied with one memcpy per chunk (pr_arena_clone).
 *
 * Not thread-safe for writers; pr_arena_get() on an unchanging arena may be
 * called from any number of threads.
 */
#ifndef POLROUTE_ARENA_H
#define POLROUTE_ARENA_H

#include <stddef.h>
#include <stdint.h>

/* "No object": returned by pr_arena_alloc() on failure, usable as a null link. */
#define PR_ARENA_NIL UINT32_MAX

typedef struct pr_arena {
    uint8_t **chunks;     /* chunk base pointers; each holds 1 << shift slots */
    uint32_t nchunks;     /* chunks allocated */
    uint32_t chunks_cap;  /* capacity of chunks[] */
    uint32_t objsize;     /* slot size in bytes (multiple of 4, >= 4) */
    uint32_t shift;       /* log2(slots per chunk) */
    uint32_t bump;        /* first never-used index */
    uint32_t free_head;   /* head of the free list, PR_ARENA_NIL if empty */
    uint32_t live;        /* objects currently allocated */
} pr_arena;

/* objsize: pass sizeof the object type; it is rounded up to a multiple of 4
 * and every slot is then aligned like its type (chunks come from malloc).
 * per_chunk is rounded up to a power of two.  Allocates nothing.
 * Returns 0, or -EINVAL for objsize 0 / absurd sizes. */
int pr_arena_init(pr_arena *a, size_t objsize, size_t per_chunk);
/* Frees every chunk; the arena may be reused after pr_arena_init(). */
void pr_arena_destroy(pr_arena *a);
/* Frees every chunk but keeps the geometry: the arena is empty and usable. */
void pr_arena_clear(pr_arena *a);
/* Deep copy into an uninitialised dst: same indices name the same objects.
 * 0 or -ENOMEM (dst is then left destroyed and empty, safe to destroy again). */
int pr_arena_clone(pr_arena *dst, const pr_arena *src);

/* Index of a fresh slot (contents unspecified), or PR_ARENA_NIL on ENOMEM. */
uint32_t pr_arena_alloc(pr_arena *a);
/* Returns a slot to the free list.  idx must be live. */
void pr_arena_free(pr_arena *a, uint32_t idx);

/* Bytes held (chunks plus the chunk table), not counting *a itself. */
size_t pr_arena_memory(const pr_arena *a);
static inline uint32_t pr_arena_live(const pr_arena *a) { return a->live; }

/* Address of slot idx (idx < a->bump).  Inline: it is on every lookup path. */
static inline void *pr_arena_get(const pr_arena *a, uint32_t idx)
{
    uint32_t mask = (UINT32_C(1) << a->shift) - 1u;
    return a->chunks[idx >> a->shift] + (size_t)(idx & mask) * a->objsize;
}

#endif /* POLROUTE_ARENA_H */
