/*
 * arena.c - fixed-size object pool (see arena.h).
 */
#include "arena.h"
#include "alloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Keep slots-per-chunk sane: at least 1, at most 2^24 (so a chunk of even
 * large objects stays a reasonable single malloc). */
#define ARENA_MAX_SHIFT 24u
/* Cap object size so chunk byte sizes cannot overflow size_t on 32-bit hosts. */
#define ARENA_MAX_OBJSIZE 4096u

int pr_arena_init(pr_arena *a, size_t objsize, size_t per_chunk)
{
    uint32_t shift = 0;

    memset(a, 0, sizeof(*a));
    a->free_head = PR_ARENA_NIL;
    if (objsize == 0 || objsize > ARENA_MAX_OBJSIZE)
        return -EINVAL;
    /* Multiple of 4: the free-list link is a uint32_t stored in the slot. */
    a->objsize = (uint32_t)((objsize + 3u) & ~(size_t)3u);
    while (shift < ARENA_MAX_SHIFT && ((size_t)1 << shift) < per_chunk)
        shift++;
    a->shift = shift;
    return 0;
}

void pr_arena_clear(pr_arena *a)
{
    for (uint32_t i = 0; i < a->nchunks; i++)
        free(a->chunks[i]);
    free(a->chunks);
    a->chunks = NULL;
    a->nchunks = a->chunks_cap = 0;
    a->bump = 0;
    a->free_head = PR_ARENA_NIL;
    a->live = 0;
}

void pr_arena_destroy(pr_arena *a)
{
    pr_arena_clear(a);
}

static size_t chunk_bytes(const pr_arena *a)
{
    return ((size_t)1 << a->shift) * a->objsize;
}

int pr_arena_clone(pr_arena *dst, const pr_arena *src)
{
    size_t cb = chunk_bytes(src);

    *dst = *src;
    dst->chunks = NULL;
    dst->nchunks = dst->chunks_cap = 0;
    if (src->nchunks == 0)
        return 0;
    dst->chunks = pr_malloc(src->nchunks * sizeof(*dst->chunks));
    if (!dst->chunks)
        goto nomem;
    dst->chunks_cap = src->nchunks;
    for (uint32_t i = 0; i < src->nchunks; i++) {
        dst->chunks[i] = pr_malloc(cb);
        if (!dst->chunks[i])
            goto nomem;
        dst->nchunks = i + 1;
        /* Copies free slots too: the free list is part of the image. */
        memcpy(dst->chunks[i], src->chunks[i], cb);
    }
    return 0;

nomem:
    pr_arena_clear(dst);
    return -ENOMEM;
}

/* Adds one chunk; 0 or -ENOMEM. */
static int arena_grow(pr_arena *a)
{
    uint32_t per = UINT32_C(1) << a->shift;
    uint8_t *chunk;

    /* Index space: the last index must stay below PR_ARENA_NIL. */
    if ((uint64_t)(a->nchunks + 1u) * per > (uint64_t)PR_ARENA_NIL)
        return -ENOMEM;
    if (a->nchunks == a->chunks_cap) {
        uint32_t ncap = a->chunks_cap ? a->chunks_cap * 2u : 4u;
        size_t bytes = (size_t)ncap * sizeof(uint8_t *);
        uint8_t **nc;
        /* Doubling must not wrap (only reachable with tiny chunks). */
        if (a->chunks_cap > UINT32_MAX / 2u || bytes / sizeof(uint8_t *) != ncap)
            return -ENOMEM;
        nc = pr_realloc(a->chunks, bytes);
        if (!nc)
            return -ENOMEM;
        a->chunks = nc;
        a->chunks_cap = ncap;
    }
    chunk = pr_malloc(chunk_bytes(a));
    if (!chunk)
        return -ENOMEM;
    a->chunks[a->nchunks++] = chunk;
    return 0;
}

uint32_t pr_arena_alloc(pr_arena *a)
{
    uint32_t idx;

    if (a->free_head != PR_ARENA_NIL) {
        idx = a->free_head;
        /* memcpy: the slot is only known to be 4-aligned; no type punning. */
        memcpy(&a->free_head, pr_arena_get(a, idx), sizeof(uint32_t));
        a->live++;
        return idx;
    }
    if (a->bump == (uint32_t)((uint64_t)a->nchunks << a->shift) && arena_grow(a) != 0)
        return PR_ARENA_NIL;
    idx = a->bump++;
    a->live++;
    return idx;
}

void pr_arena_free(pr_arena *a, uint32_t idx)
{
    memcpy(pr_arena_get(a, idx), &a->free_head, sizeof(uint32_t));
    a->free_head = idx;
    a->live--;
}

size_t pr_arena_memory(const pr_arena *a)
{
    return (size_t)a->nchunks * chunk_bytes(a) + (size_t)a->chunks_cap * sizeof(*a->chunks);
}
