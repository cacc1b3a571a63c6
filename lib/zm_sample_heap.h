/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * zm_sample_heap.h - where sampled blocks live, so that a free can tell a
 * sampled block from any other by its address alone.
 *
 * Sampled blocks (one per ZMALLOC_SAMPLE_BYTES allocated, on average) are
 * not taken from the backend but from one region of address space reserved
 * for them. zm_in_sample_heap(p) is then a subtraction and a compare
 * against two words written once, when the region is reserved: no lookup,
 * no lock, no kernel entry and no cache line that anybody writes, whatever
 * the backend. Before the region exists its length is 0: no pointer is in
 * it.
 *
 * Each sampled block takes whole pages: its allocating stack (272 bytes)
 * at the start of its first page, a 32-byte header, then the caller's
 * bytes (ZM_SAMPLE_PREFIX after the page). The header keeps what the free
 * needs: the page count, the usable size and the sample's weight; and its
 * live word tells a tracer whether the block is still allocated. Both are
 * part of the library's interface (zmalloc_sampling.h). Freed
 * pages are kept for the next samples, up to a bound, and only those are
 * zeroed for a calloc; pages never used are zero already. Page runs are
 * found in a bitmap under a mutex: this path runs for one allocation in
 * hundreds or thousands. A one-page sample, the common case, usually takes
 * a page its thread freed instead, without the lock (zm_sample_heap.c).
 */
#ifndef ZM_SAMPLE_HEAP_H
#define ZM_SAMPLE_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZM_SAMPLE_HEAP_MAX ((uintptr_t)64 << 30) /* reserved, not committed */
/* One-page samples a thread keeps (zm_sample_heap.c). */
#define ZM_STASH_PAGES 8
#include "zmalloc_sampling.h"

#define ZM_SAMPLE_HDR_SIZE ZMALLOC_SAMPLE_HDR_SIZE
#define ZM_SAMPLE_PREFIX (ZMALLOC_SAMPLE_STACK_SIZE + ZM_SAMPLE_HDR_SIZE)

struct zm_sample_region {
	uintptr_t base;
	uintptr_t len; /* 0 until reserved */
} __attribute__((aligned(16)));

#define zm_sample_hdr zmalloc_sample_hdr

_Static_assert(sizeof(struct zm_sample_hdr) == ZM_SAMPLE_HDR_SIZE,
	       "header keeps 16-byte alignment");
_Static_assert(sizeof(struct zmalloc_sample_stack) == ZMALLOC_SAMPLE_STACK_SIZE,
	       "the stack keeps 16-byte alignment");

extern struct zm_sample_region zm_sample_region
	__attribute__((visibility("hidden")));

#ifdef ZM_NO_PROBES
/* Without probes nothing is ever sampled. */
static inline bool zm_in_sample_heap(const void *p)
{
	(void)p;
	return false;
}
#else
/*
 * len first, with acquire: it pairs with the release that publishes it
 * after base, so a nonzero len is never seen with the old base (0), which
 * would take every pointer below len for a sample. On x86 both are plain
 * loads still.
 */
static inline bool zm_in_sample_heap(const void *p)
{
	uintptr_t len =
		__atomic_load_n(&zm_sample_region.len, __ATOMIC_ACQUIRE);
	uintptr_t base =
		__atomic_load_n(&zm_sample_region.base, __ATOMIC_RELAXED);

	return __builtin_expect((uintptr_t)p - base < len, 0);
}
#endif

static inline struct zm_sample_hdr *zm_sample_hdr_of(void *p)
{
	return (struct zm_sample_hdr *)((char *)p - ZM_SAMPLE_HDR_SIZE);
}

static inline struct zmalloc_sample_stack *zm_sample_stack_of(void *p)
{
	return (struct zmalloc_sample_stack *)((char *)p - ZM_SAMPLE_PREFIX);
}

/* A block of usable bytes (zeroed if asked), or NULL: the region is full. */
void *zm_sample_heap_alloc(size_t usable, uint64_t weight, bool zero)
	__attribute__((visibility("hidden")));

void zm_sample_heap_free(void *p) __attribute__((visibility("hidden")));

#endif /* ZM_SAMPLE_HEAP_H */
