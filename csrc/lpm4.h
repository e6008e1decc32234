/*
 * lpm4.h - compiled IPv4 longest-prefix match (internal header; the API is
 * declared in polroute.h).  See lpm4.c for the layout.
 */
#ifndef POLROUTE_LPM4_H
#define POLROUTE_LPM4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "polroute.h"

void pr_lpm4_prefetch(const pr_lpm4 *t, uint32_t addr);
/* A block for a read-only structure read at random places: from 1 MiB on
 * 2 MiB-aligned and marked for transparent huge pages (one TLB entry per
 * 2 MiB), else cache-line aligned.  *size is rounded up; free() it. */
void *pr_alloc_random_access(size_t *size);

#endif
