/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * zm_sample_stack.h - the allocating stack of a sampled block, walked in
 * the process (zmalloc_sampling.h, struct zmalloc_sample_stack).
 *
 * A tracer's kernel program reading the stack one frame at a time cost
 * about 75 ns a frame here, most of what a sample cost it; in the process
 * a frame is two loads. The walk reads only the calling thread's own stack,
 * whose bounds pthread_getattr_np gives once per thread (the first sample
 * it takes), so a frame pointer that is garbage (a caller built without
 * frame pointers) ends the walk instead of faulting.
 */
#ifndef ZM_SAMPLE_STACK_H
#define ZM_SAMPLE_STACK_H

#include <stdint.h>

#include "zmalloc_sampling.h"

/*
 * Fills st for the block at block, walking from fp: the frame pointer of
 * the function that fires sample_alloc. Returns the stack's hash, for the
 * probe (zmalloc_sample_stack_hash).
 */
uint64_t zm_sample_stack_fill(struct zmalloc_sample_stack *st, uintptr_t fp,
			      uintptr_t block)
	__attribute__((visibility("hidden")));

#endif /* ZM_SAMPLE_STACK_H */
