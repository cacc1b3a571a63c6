/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * zm_counters.h - per-thread used_memory counters (layout: zmalloc_counters.h).
 *
 * zm_account(delta) adds delta bytes to the calling thread's own slot: a
 * thread-local load, a relaxed load and a relaxed store to a cache line no
 * other thread writes. No lock, no atomic read-modify-write.
 */
#ifndef ZM_COUNTERS_H
#define ZM_COUNTERS_H

#include <stdint.h>

#include "zmalloc_counters.h"

extern __thread struct zmalloc_counter_slot *zm_thread_slot
	__attribute__((tls_model("initial-exec"), visibility("hidden")));

/* Claims a slot for this thread, or accounts delta in the shared slot. */
void zm_account_slow(int64_t delta) __attribute__((visibility("hidden")));

/* Sum of every slot: the library's used_memory. */
int64_t zm_counters_sum(void) __attribute__((visibility("hidden")));

static inline void zm_account(int64_t delta)
{
	struct zmalloc_counter_slot *slot = zm_thread_slot;

	if (__builtin_expect(slot == NULL, 0)) {
		zm_account_slow(delta);
		return;
	}
	/* Single writer: a plain add, published with relaxed atomics. */
	__atomic_store_n(&slot->bytes,
			 __atomic_load_n(&slot->bytes, __ATOMIC_RELAXED) +
				 delta,
			 __ATOMIC_RELAXED);
}

#endif /* ZM_COUNTERS_H */
