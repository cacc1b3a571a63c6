/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * zm_sampled.c - sampled blocks in and out of the sample heap, and their
 * probes (zm_sampled.h).
 */
#include "zm_backend.h"
#include "zm_sample_heap.h"
#include "zm_sample_stack.h"
#include "zm_sampled.h"
#include "zm_sampler.h"
#include "zm_usdt.h"

#undef zmalloc /* the probe provider's name, see zmalloc.c */

void *zm_sampled_alloc(size_t size, bool zero, uint64_t weight, size_t *usable)
{
	size_t want = ZM_MIN_SIZE(size);
	uint64_t stack;
	void *ptr;

	ptr = zm_sample_heap_alloc(want, weight, zero);
	if (ptr) {
		*usable = want;
		/* This function's frame is where the probe's walk would start. */
		stack = zm_sample_stack_fill(
			zm_sample_stack_of(ptr),
			(uintptr_t)__builtin_frame_address(0), (uintptr_t)ptr);
		ZM_FIRE(sample_alloc, ptr, size, want, weight, stack);
		return ptr;
	}
	__atomic_add_fetch(&zm_sample_control.lost, 1, __ATOMIC_RELAXED);
	ptr = zero ? zm_be_calloc(want) : zm_be_malloc(want);
	*usable = ptr ? zm_be_usable_new(ptr, want) : 0;
	return ptr;
}

void zm_sampled_release(void *ptr)
{
	struct zm_sample_hdr *hdr = zm_sample_hdr_of(ptr);

	ZM_FIRE(sample_free, ptr, hdr->usable, hdr->weight);
	zm_sample_heap_free(ptr);
}
