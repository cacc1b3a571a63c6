/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * zm_counters.c - per-thread used_memory slots, summed on demand.
 *
 * A thread claims a free slot on its first allocation and gives it back,
 * balance included, when it exits; the next new thread continues that
 * balance. Slots are never emptied, so the sum is exact whatever the number
 * of threads, and a chunk is appended to the chain when every slot is
 * taken. Claiming is lock-free (compare-and-swap on the slot's owner flag),
 * so a fork() while another thread claims cannot leave a lock held.
 *
 * Slot 0 of the first chunk is shared and updated with atomic adds: it takes
 * the allocations of a thread that runs after its slot was given back (in
 * late thread-exit destructors) or that could not get a slot at all.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/mman.h>

#include "zm_counters.h"

#define ZM_FIRST_CHUNK_SLOTS 64
#define ZM_MORE_CHUNK_SLOTS 255 /* with its header, 16 KiB */
#define ZM_SHARED_SLOT 0

struct zm_first_chunk {
	struct zmalloc_counter_chunk hdr;
	struct zmalloc_counter_slot slots[ZM_FIRST_CHUNK_SLOTS];
};

_Static_assert(sizeof(struct zmalloc_counter_slot) == 64, "slot is a line");
_Static_assert(sizeof(struct zmalloc_counter_chunk) == 64, "header is a line");

/* Exported for outside readers: see zmalloc_counters.h. */
__attribute__((visibility("default"), aligned(64))) struct zm_first_chunk
	zm_counters = {
		.hdr = {
			.magic = ZMALLOC_COUNTERS_MAGIC,
			.version = ZMALLOC_COUNTERS_VERSION,
			.nslots = ZM_FIRST_CHUNK_SLOTS,
			.nused = ZM_SHARED_SLOT + 1,
		},
		.slots[ZM_SHARED_SLOT] = { .owned = 1 },
	};

__thread struct zmalloc_counter_slot *zm_thread_slot
	__attribute__((tls_model("initial-exec")));
static __thread bool zm_thread_exited
	__attribute__((tls_model("initial-exec")));

static pthread_once_t zm_key_once = PTHREAD_ONCE_INIT;
static pthread_key_t zm_key;
static bool zm_key_ok;

static struct zmalloc_counter_slot *chunk_slots(struct zmalloc_counter_chunk *c)
{
	return (struct zmalloc_counter_slot *)(c + 1);
}

static struct zmalloc_counter_chunk *chunk_next(struct zmalloc_counter_chunk *c)
{
	return (struct zmalloc_counter_chunk *)(uintptr_t)__atomic_load_n(
		&c->next, __ATOMIC_ACQUIRE);
}

/* Slots past nused have never been written, so readers may stop there. */
static void chunk_mark_used(struct zmalloc_counter_chunk *c, uint32_t n)
{
	uint32_t cur = __atomic_load_n(&c->nused, __ATOMIC_RELAXED);

	while (cur < n &&
	       !__atomic_compare_exchange_n(&c->nused, &cur, n, true,
					    __ATOMIC_RELEASE, __ATOMIC_RELAXED))
		;
}

/* Appends a chunk after c, or returns the one another thread appended. */
static struct zmalloc_counter_chunk *chunk_grow(struct zmalloc_counter_chunk *c)
{
	size_t len = sizeof(*c) +
		     ZM_MORE_CHUNK_SLOTS * sizeof(struct zmalloc_counter_slot);
	struct zmalloc_counter_chunk *fresh;
	uint64_t expect = 0;

	/* mmap, not malloc: this runs inside the allocator. */
	fresh = mmap(NULL, len, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (fresh == MAP_FAILED)
		return chunk_next(c);
	fresh->magic = ZMALLOC_COUNTERS_MAGIC;
	fresh->version = ZMALLOC_COUNTERS_VERSION;
	fresh->nslots = ZM_MORE_CHUNK_SLOTS;
	if (__atomic_compare_exchange_n(&c->next, &expect, (uintptr_t)fresh,
					false, __ATOMIC_RELEASE,
					__ATOMIC_ACQUIRE))
		return fresh;
	munmap(fresh, len);
	return (struct zmalloc_counter_chunk *)(uintptr_t)expect;
}

static struct zmalloc_counter_slot *slot_claim(void)
{
	struct zmalloc_counter_chunk *c = &zm_counters.hdr;

	while (c) {
		struct zmalloc_counter_slot *slots = chunk_slots(c);
		uint32_t i;

		for (i = 0; i < c->nslots; i++) {
			uint32_t expect = 0;

			if (__atomic_load_n(&slots[i].owned, __ATOMIC_RELAXED))
				continue;
			if (__atomic_compare_exchange_n(
				    &slots[i].owned, &expect, 1, false,
				    __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
				chunk_mark_used(c, i + 1);
				return &slots[i];
			}
		}
		c = chunk_next(c) ?: chunk_grow(c);
	}
	return NULL;
}

/* Thread exit: the balance stays in the slot for the next thread. */
static void slot_release(void *arg)
{
	struct zmalloc_counter_slot *slot = arg;

	zm_thread_slot = NULL;
	zm_thread_exited = true;
	__atomic_store_n(&slot->owned, 0, __ATOMIC_RELEASE);
}

static void key_create(void)
{
	zm_key_ok = pthread_key_create(&zm_key, slot_release) == 0;
}

void zm_account_slow(int64_t delta)
{
	struct zmalloc_counter_slot *slot = NULL;

	pthread_once(&zm_key_once, key_create);
	if (!zm_thread_exited && zm_key_ok)
		slot = slot_claim();
	if (slot && pthread_setspecific(zm_key, slot) != 0) {
		__atomic_store_n(&slot->owned, 0, __ATOMIC_RELEASE);
		slot = NULL;
	}
	if (!slot) {
		__atomic_add_fetch(&zm_counters.slots[ZM_SHARED_SLOT].bytes,
				   delta, __ATOMIC_RELAXED);
		return;
	}
	zm_thread_slot = slot;
	zm_account(delta);
}

int64_t zm_counters_sum(void)
{
	struct zmalloc_counter_chunk *c;
	int64_t sum = 0;

	for (c = &zm_counters.hdr; c; c = chunk_next(c)) {
		struct zmalloc_counter_slot *slots = chunk_slots(c);
		uint32_t n = __atomic_load_n(&c->nused, __ATOMIC_ACQUIRE);
		uint32_t i;

		for (i = 0; i < n; i++)
			sum += __atomic_load_n(&slots[i].bytes,
					       __ATOMIC_RELAXED);
	}
	return sum;
}
