/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * zm_sampled.h - the life of a sampled block: taken from the sample heap
 * with its weight, announced by sample_alloc, retired by sample_free.
 * Accounting and the exact probes stay with the caller, as for any block.
 */
#ifndef ZM_SAMPLED_H
#define ZM_SAMPLED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A block for a request of size bytes chosen as a sample; *usable gets its
 * usable size. When the sample heap is full the block comes from the
 * backend unsampled and the loss is counted. NULL only if both fail.
 */
void *zm_sampled_alloc(size_t size, bool zero, uint64_t weight, size_t *usable)
	__attribute__((noinline, cold, visibility("hidden")));

void zm_sampled_release(void *ptr)
	__attribute__((noinline, cold, visibility("hidden")));

#endif /* ZM_SAMPLED_H */
