/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * zm_backend.h - the allocator under zmalloc, chosen here and only here.
 *
 * The build defines exactly one of ZM_BACKEND_LIBC, ZM_BACKEND_PREFIX and
 * ZM_BACKEND_JEMALLOC (make MALLOC=libc|prefix|jemalloc). Each provides:
 *
 *   zm_be_malloc(n), zm_be_calloc(n), zm_be_realloc(p, n), zm_be_free(p)
 *   zm_be_free_sized(p, usable)  free a block whose usable size is known
 *   zm_be_usable(p)              bytes the caller may use in block p
 *   zm_be_usable_new(p, n)       the same for a block just allocated for n
 *                                bytes, where the backend can tell cheaper
 *   ZM_BE_OVERHEAD               bytes a block costs beyond its usable size
 *   ZM_BE_SIZE_IN_HEADER         1 when a block records its own size
 *
 * and a block counts for zm_be_usable(p) + ZM_BE_OVERHEAD in used_memory,
 * which is also what zmalloc_size() returns. A request for 0 bytes is
 * served as ZM_MIN_SIZE(0), sizeof(long), as Valkey does, so every backend
 * may assume n > 0.
 */
#ifndef ZM_BACKEND_H
#define ZM_BACKEND_H

#include <stddef.h>
#include <stdlib.h>

#include "zmalloc_config.h" /* ZM_PREFIX_SIZE */

#if defined(ZM_BACKEND_LIBC) + defined(ZM_BACKEND_PREFIX) + \
		defined(ZM_BACKEND_JEMALLOC) !=             \
	1
#error "define exactly one ZM_BACKEND_*: build with make MALLOC=..."
#endif

#define ZM_MIN_SIZE(n) ((n) > 0 ? (n) : sizeof(long))

#if defined(ZM_BACKEND_LIBC)
/* glibc: malloc_usable_size() reads the chunk header, no bookkeeping. */
#include <malloc.h>

#define ZM_BE_OVERHEAD 0
#define ZM_BE_SIZE_IN_HEADER 0

static inline void *zm_be_malloc(size_t n)
{
	return malloc(n);
}

static inline void *zm_be_calloc(size_t n)
{
	return calloc(1, n);
}

static inline void *zm_be_realloc(void *p, size_t n)
{
	return realloc(p, n);
}

static inline void zm_be_free(void *p)
{
	free(p);
}

static inline void zm_be_free_sized(void *p, size_t usable)
{
	(void)usable;
	free(p);
}

static inline size_t zm_be_usable(void *p)
{
	return malloc_usable_size(p);
}

static inline size_t zm_be_usable_new(void *p, size_t n)
{
	(void)n;
	return malloc_usable_size(p);
}

#elif defined(ZM_BACKEND_PREFIX)
/*
 * The classic design for a libc without malloc_usable_size(): a header
 * before each block records the requested size. The header is padded to
 * malloc's alignment (16 bytes on x86-64) so the caller's block stays
 * aligned for any type, as the C standard requires of malloc.
 *
 * The usable size is exactly the requested size, not rounded up: rounding
 * to sizeof(long) as classic Redis did would let a caller write past what
 * it asked malloc for, which no libc promises to have given. used_memory
 * counts requested size plus PREFIX_SIZE per block.
 */
#define ZM_BE_OVERHEAD ZM_PREFIX_SIZE
#define ZM_BE_SIZE_IN_HEADER 1

_Static_assert(ZM_PREFIX_SIZE >= sizeof(size_t), "prefix holds a size_t");
_Static_assert(ZM_PREFIX_SIZE % _Alignof(max_align_t) == 0,
	       "prefix keeps malloc's alignment");

static inline void *zm_prefix_base(void *p)
{
	return (char *)p - ZM_PREFIX_SIZE;
}

static inline void *zm_prefix_block(void *base, size_t n)
{
	if (!base)
		return NULL;
	*(size_t *)base = n;
	return (char *)base + ZM_PREFIX_SIZE;
}

static inline void *zm_be_malloc(size_t n)
{
	return zm_prefix_block(malloc(n + ZM_PREFIX_SIZE), n);
}

static inline void *zm_be_calloc(size_t n)
{
	return zm_prefix_block(calloc(1, n + ZM_PREFIX_SIZE), n);
}

static inline void *zm_be_realloc(void *p, size_t n)
{
	return zm_prefix_block(realloc(zm_prefix_base(p), n + ZM_PREFIX_SIZE),
			       n);
}

static inline void zm_be_free(void *p)
{
	free(zm_prefix_base(p));
}

static inline void zm_be_free_sized(void *p, size_t usable)
{
	(void)usable;
	free(zm_prefix_base(p));
}

static inline size_t zm_be_usable(void *p)
{
	return *(size_t *)zm_prefix_base(p);
}

static inline size_t zm_be_usable_new(void *p, size_t n)
{
	(void)p;
	return n;
}

#elif defined(ZM_BACKEND_JEMALLOC)
/*
 * Debian's libjemalloc exports its API unprefixed. The standard names
 * (malloc, free) would bind to whichever library the dynamic linker finds
 * first, usually glibc, so only jemalloc's own entry points are called:
 * zmalloc's blocks always come from jemalloc, the rest of the process keeps
 * its malloc, as Valkey's je_-prefixed build does.
 */
#include <jemalloc/jemalloc.h>

#define ZM_BE_OVERHEAD 0
#define ZM_BE_SIZE_IN_HEADER 0

static inline void *zm_be_malloc(size_t n)
{
	return mallocx(n, 0);
}

static inline void *zm_be_calloc(size_t n)
{
	return mallocx(n, MALLOCX_ZERO);
}

static inline void *zm_be_realloc(void *p, size_t n)
{
	return rallocx(p, n, 0);
}

static inline void zm_be_free(void *p)
{
	dallocx(p, 0);
}

static inline void zm_be_free_sized(void *p, size_t usable)
{
	sdallocx(p, usable, 0);
}

static inline size_t zm_be_usable(void *p)
{
	return sallocx(p, 0);
}

/* The size class of the request: arithmetic, no lookup of the block. */
static inline size_t zm_be_usable_new(void *p, size_t n)
{
	(void)p;
	return nallocx(n, 0);
}

#endif

#endif /* ZM_BACKEND_H */
