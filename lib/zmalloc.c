/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * zmalloc.c - the allocation families: plain, try, usable, calloc, realloc,
 * free, and the size queries.
 *
 * Every path does the same three things around the backend call: account
 * the block in the calling thread's used_memory slot, fire the probe of the
 * operation (its arguments computed only while a tracer is attached), and,
 * on failure, fire oom and call the OOM handler unless it is a try call.
 *
 * The free probe fires before the block goes back to the backend: once it
 * is released another thread may be handed the same address, and a tracer
 * must see this free before that thread's alloc.
 *
 * While a sampling tracer is attached, a block chosen by the sampler comes
 * from the sample heap instead of the backend (zm_sampled.c); a block is
 * known to be sampled by its address, so every path below asks
 * zm_in_sample_heap() before it asks the backend about a block.
 *
 * Every entry point that allocates is a dispatcher and two copies of its
 * body (ZM_ENTRY): one that never samples, one with the countdown to the
 * next sample inline. The dispatcher tests sample_alloc's semaphore and
 * jumps to a copy before any frame is set up, so each copy runs straight
 * through, with its own frame and return: an untraced call pays one load,
 * a predicted branch and a jump; a call under a sampling tracer, the
 * countdown. (With the copies inside one function the sampling copy jumped
 * back to the shared return, and cost twice as much.)
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "zm_backend.h"
#include "zm_counters.h"
#include "zm_sample_heap.h"
#include "zm_sampled.h"
#include "zm_sampler.h"
#include "zm_usdt.h"
#include "zmalloc.h"

/*
 * The probe provider is the bare token zmalloc, which zmalloc.h maps to
 * zm_malloc; sdt.h would expand it. zm_malloc is defined by its own name.
 */
#undef zmalloc

#define ZM_API __attribute__((visibility("default")))

/*
 * The functions of the hot paths start on a cache line: otherwise where
 * they fall moves with any change elsewhere in the library, and a shift
 * of 48 bytes was seen to cost the untraced zmalloc + zfree 1-3%.
 */
#define ZM_HOT __attribute__((aligned(64)))

/* Valkey's limit: a request of half the address space or more fails. */
#define ZM_MAX_REQUEST (SIZE_MAX / 2)

ZM_PROBE_DEFINE(alloc);
ZM_PROBE_DEFINE(free);
ZM_PROBE_DEFINE(realloc);
ZM_PROBE_DEFINE(oom);
ZM_PROBE_DEFINE(sample_alloc);
ZM_PROBE_DEFINE(sample_free);

/* The one place the library writes: zmalloc's documented OOM behaviour. */
static void zm_default_oom(size_t size)
{
	fprintf(stderr, "zmalloc: Out of memory trying to allocate %zu bytes\n",
		size);
	fflush(stderr);
	abort();
}

static void (*zm_oom_handler)(size_t) = zm_default_oom;

static void zm_oom(size_t size)
{
	void (*handler)(size_t) =
		__atomic_load_n(&zm_oom_handler, __ATOMIC_ACQUIRE);

	handler(size);
}

static inline __attribute__((always_inline)) size_t zm_usable(void *ptr,
							      bool sampled)
{
	return sampled ? zm_sample_hdr_of(ptr)->usable : zm_be_usable(ptr);
}

static inline __attribute__((always_inline)) void *
zm_alloc_path(size_t size, bool zero, size_t *usable, bool sampling)
{
	uint64_t weight;
	size_t got;
	void *ptr;

	if (__builtin_expect(size >= ZM_MAX_REQUEST, 0))
		goto fail;
	if (sampling && zm_sample_tick(size, &weight)) {
		ptr = zm_sampled_alloc(size, zero, weight, &got);
	} else {
		ptr = zero ? zm_be_calloc(ZM_MIN_SIZE(size)) :
			     zm_be_malloc(ZM_MIN_SIZE(size));
		got = ptr ? zm_be_usable_new(ptr, ZM_MIN_SIZE(size)) : 0;
	}
	if (__builtin_expect(ptr == NULL, 0))
		goto fail;
	zm_account((int64_t)(got + ZM_BE_OVERHEAD));
	ZM_FIRE(alloc, ptr, size, got);
	if (usable)
		*usable = got;
	return ptr;
fail:
	ZM_FIRE(oom, size);
	if (usable)
		*usable = 0;
	return NULL;
}

/* usable is the block's usable size, known by the caller or looked up. */
static inline __attribute__((always_inline)) void
zm_release(void *ptr, size_t usable, bool sampled)
{
	zm_account(-(int64_t)(usable + ZM_BE_OVERHEAD));
	ZM_FIRE(free, ptr, usable);
	if (__builtin_expect(sampled, 0))
		zm_sampled_release(ptr);
	else
		zm_be_free_sized(ptr, usable);
}

/*
 * A realloc that involves a sampled block, old or new, cannot be done by
 * the backend: allocate, copy, release. Returns NULL with the old block
 * untouched when the new one cannot be had.
 */
static __attribute__((noinline, cold)) void *
zm_resize_by_copy(void *ptr, size_t size, size_t old_usable, bool old_sampled,
		  bool new_sampled, uint64_t weight, size_t *usable)
{
	void *moved;
	size_t got;

	if (new_sampled) {
		moved = zm_sampled_alloc(size, false, weight, &got);
	} else {
		moved = zm_be_malloc(size);
		got = moved ? zm_be_usable_new(moved, size) : 0;
	}
	if (moved == NULL)
		return NULL;
	memcpy(moved, ptr, old_usable < size ? old_usable : size);
	zm_account((int64_t)got - (int64_t)old_usable);
	ZM_FIRE(realloc, ptr, moved, old_usable, size, got);
	if (old_sampled)
		zm_sampled_release(ptr);
	else
		zm_be_free_sized(ptr, old_usable);
	*usable = got;
	return moved;
}

static inline __attribute__((always_inline)) void *
zm_resize(void *ptr, size_t size, size_t *usable, bool sampling)
{
	size_t old_usable, got;
	uintptr_t old_addr; /* for the probe: ptr is dead after a move */
	bool old_sampled, new_sampled;
	uint64_t weight = 0; /* read only when new_sampled, which sets it */
	void *moved;

	if (ptr == NULL)
		return zm_alloc_path(size, false, usable, sampling);
	old_sampled = zm_in_sample_heap(ptr);
	if (size == 0) {
		zm_release(ptr, zm_usable(ptr, old_sampled), old_sampled);
		if (usable)
			*usable = 0;
		return NULL;
	}
	if (__builtin_expect(size >= ZM_MAX_REQUEST, 0))
		goto fail;
	old_usable = zm_usable(ptr, old_sampled);
	new_sampled = sampling && zm_sample_tick(size, &weight);
	if (__builtin_expect(old_sampled || new_sampled, 0)) {
		moved = zm_resize_by_copy(ptr, size, old_usable, old_sampled,
					  new_sampled, weight, &got);
		if (moved == NULL)
			goto fail;
		goto done;
	}
	old_addr = (uintptr_t)ptr;
	/* Only the address is reported; hide its origin from -Wuse-after-free. */
	__asm__("" : "+r"(old_addr));
	moved = zm_be_realloc(ptr, size);
	if (__builtin_expect(moved == NULL, 0))
		goto fail; /* the old block is untouched and still counted */
	got = zm_be_usable_new(moved, size);
	zm_account((int64_t)got - (int64_t)old_usable);
	ZM_FIRE(realloc, old_addr, moved, old_usable, size, got);
done:
	if (usable)
		*usable = got;
	return moved;
fail:
	ZM_FIRE(oom, size);
	if (usable)
		*usable = 0;
	return NULL;
}

/*
 * ZM_ENTRY(ret, name, params, args...) defines the entry point name() from
 * name_body(sampling, args...), an always-inline body: the dispatcher and
 * its two copies (see the top of this file). The copies are named after
 * the exported name (zm_realloc_plain for zrealloc), so that they too are
 * zm_* functions: ztrace drops those from the stacks of a static link.
 * args must name params in order: the copies pass them on as they are.
 * Without probes there is nothing to sample, and name() is the body alone.
 */
#define ZM_PASTE_(a, b) a##b
#define ZM_PASTE(a, b) ZM_PASTE_(a, b) /* a macro-expanded first */

#ifdef ZM_NO_PROBES
#define ZM_ENTRY(ret, name, params, ...)                \
	ZM_API ret name params                          \
	{                                               \
		return name##_body(false, __VA_ARGS__); \
	}
#else
/* The two copies: hidden functions (-fvisibility=hidden) the dispatcher names. */
#define ZM_COPIES(ret, name, body, params, ...)                              \
	ZM_HOT __attribute__((noinline, used)) ret ZM_PASTE(name, _sampling) \
		params                                                       \
	{                                                                    \
		return body(true, __VA_ARGS__);                              \
	}                                                                    \
	ZM_HOT __attribute__((noinline, used)) ret ZM_PASTE(name, _plain)    \
		params                                                       \
	{                                                                    \
		return body(false, __VA_ARGS__);                             \
	}
#endif

#if !defined(ZM_NO_PROBES) && defined(__x86_64__)
/*
 * The dispatcher in assembly: a compare of the semaphore in memory and a
 * jump straight to the copy. GCC cannot make a tail call conditional (it
 * branches to a jmp), which gave the sampling copy two taken branches in a
 * row: sampling on without a tracer (bench-sample's method) cost
 * 1.0094-1.0099x with that, 1.0025-1.0038x with this, at one thread. Under
 * -fcf-protection it starts with the landing pad of an indirect call.
 */
#define ZM_STR_(x) #x
#define ZM_STR(x) ZM_STR_(x)
#if defined(__CET__) && (__CET__ & 1)
#define ZM_ENDBR "endbr64\n"
#else
#define ZM_ENDBR ""
#endif
/* One line of assembly to a line, which clang-format would reflow. */
/* clang-format off */
#define ZM_DISPATCH(name)						\
	__asm__(".pushsection .text\n"				\
		".globl " ZM_STR(name) "\n"				\
		".type " ZM_STR(name) ", @function\n"			\
		".p2align 6\n"						\
		ZM_STR(name) ":\n"					\
		".cfi_startproc\n"					\
		ZM_ENDBR						\
		"cmpw $0, "						\
		ZM_STR(ZM_PROBE_SEMAPHORE(sample_alloc)) "(%rip)\n"	\
		"jne " ZM_STR(ZM_PASTE(name, _sampling)) "\n"		\
		"jmp " ZM_STR(ZM_PASTE(name, _plain)) "\n"		\
		".cfi_endproc\n"					\
		".size " ZM_STR(name) ", .-" ZM_STR(name) "\n"		\
		".popsection\n")
/* clang-format on */

#define ZM_ENTRY(ret, name, params, ...)                       \
	ZM_COPIES(ret, name, name##_body, params, __VA_ARGS__) \
	ZM_API ret name params;                                \
	ZM_DISPATCH(name);
#elif !defined(ZM_NO_PROBES) /* the dispatch in C: a jump more when sampling */
#define ZM_ENTRY(ret, name, params, ...)                               \
	ZM_COPIES(ret, name, name##_body, params, __VA_ARGS__)         \
	ZM_API ret name params                                         \
	{                                                              \
		if (ZM_PROBE_ENABLED(sample_alloc))                    \
			return ZM_PASTE(name, _sampling)(__VA_ARGS__); \
		return ZM_PASTE(name, _plain)(__VA_ARGS__);            \
	}
#endif

/* An allocation that must not fail: zmalloc's OOM handler if it does. */
static inline __attribute__((always_inline)) void *zm_or_oom(void *ptr,
							     size_t size)
{
	if (!ptr)
		zm_oom(size);
	return ptr;
}

/* The bodies, each the whole of one entry point but for the dispatch. */
static inline __attribute__((always_inline)) void *zm_malloc_body(bool sampling,
								  size_t size)
{
	return zm_or_oom(zm_alloc_path(size, false, NULL, sampling), size);
}
ZM_ENTRY(void *, zm_malloc, (size_t size), size)

static inline __attribute__((always_inline)) void *zcalloc_body(bool sampling,
								size_t size)
{
	return zm_or_oom(zm_alloc_path(size, true, NULL, sampling), size);
}
ZM_ENTRY(void *, zcalloc, (size_t size), size)

/* As Valkey: a zero size or a product that wraps is an OOM of SIZE_MAX. */
static inline __attribute__((always_inline)) void *
zcalloc_num_body(bool sampling, size_t num, size_t size)
{
	if (size == 0 || num > SIZE_MAX / size) {
		ZM_FIRE(oom, SIZE_MAX);
		zm_oom(SIZE_MAX);
		return NULL;
	}
	return zm_or_oom(zm_alloc_path(num * size, true, NULL, sampling),
			 num * size);
}
ZM_ENTRY(void *, zcalloc_num, (size_t num, size_t size), num, size)

static inline __attribute__((always_inline)) void *
zrealloc_body(bool sampling, void *ptr, size_t size)
{
	void *moved = zm_resize(ptr, size, NULL, sampling);

	if (!moved && size != 0)
		zm_oom(size);
	return moved;
}
ZM_ENTRY(void *, zrealloc, (void *ptr, size_t size), ptr, size)

static inline __attribute__((always_inline)) void *
ztrymalloc_body(bool sampling, size_t size)
{
	return zm_alloc_path(size, false, NULL, sampling);
}
ZM_ENTRY(void *, ztrymalloc, (size_t size), size)

static inline __attribute__((always_inline)) void *
ztrycalloc_body(bool sampling, size_t size)
{
	return zm_alloc_path(size, true, NULL, sampling);
}
ZM_ENTRY(void *, ztrycalloc, (size_t size), size)

static inline __attribute__((always_inline)) void *
ztryrealloc_body(bool sampling, void *ptr, size_t size)
{
	return zm_resize(ptr, size, NULL, sampling);
}
ZM_ENTRY(void *, ztryrealloc, (void *ptr, size_t size), ptr, size)

static inline __attribute__((always_inline)) void *
zmalloc_usable_body(bool sampling, size_t size, size_t *usable)
{
	return zm_or_oom(zm_alloc_path(size, false, usable, sampling), size);
}
ZM_ENTRY(void *, zmalloc_usable, (size_t size, size_t *usable), size, usable)

static inline __attribute__((always_inline)) void *
zcalloc_usable_body(bool sampling, size_t size, size_t *usable)
{
	return zm_or_oom(zm_alloc_path(size, true, usable, sampling), size);
}
ZM_ENTRY(void *, zcalloc_usable, (size_t size, size_t *usable), size, usable)

static inline __attribute__((always_inline)) void *
zrealloc_usable_body(bool sampling, void *ptr, size_t size, size_t *usable)
{
	void *moved = zm_resize(ptr, size, usable, sampling);

	if (!moved && size != 0)
		zm_oom(size);
	return moved;
}
ZM_ENTRY(void *, zrealloc_usable, (void *ptr, size_t size, size_t *usable), ptr,
	 size, usable)

static inline __attribute__((always_inline)) void *
ztrymalloc_usable_body(bool sampling, size_t size, size_t *usable)
{
	return zm_alloc_path(size, false, usable, sampling);
}
ZM_ENTRY(void *, ztrymalloc_usable, (size_t size, size_t *usable), size, usable)

static inline __attribute__((always_inline)) void *
ztrycalloc_usable_body(bool sampling, size_t size, size_t *usable)
{
	return zm_alloc_path(size, true, usable, sampling);
}
ZM_ENTRY(void *, ztrycalloc_usable, (size_t size, size_t *usable), size, usable)

static inline __attribute__((always_inline)) void *
ztryrealloc_usable_body(bool sampling, void *ptr, size_t size, size_t *usable)
{
	return zm_resize(ptr, size, usable, sampling);
}
ZM_ENTRY(void *, ztryrealloc_usable, (void *ptr, size_t size, size_t *usable),
	 ptr, size, usable)

ZM_API char *zstrdup(const char *s)
{
	size_t len = strlen(s) + 1;
	char *copy = zm_malloc(len);

	memcpy(copy, s, len);
	return copy;
}

ZM_API ZM_HOT void zfree(void *ptr)
{
	bool sampled;

	if (ptr == NULL)
		return;
	sampled = zm_in_sample_heap(ptr);
	zm_release(ptr, zm_usable(ptr, sampled), sampled);
}

ZM_API ZM_HOT void zfree_usable(void *ptr, size_t *usable)
{
	size_t size = 0;
	bool sampled;

	if (ptr != NULL) {
		sampled = zm_in_sample_heap(ptr);
		size = zm_usable(ptr, sampled);
		zm_release(ptr, size, sampled);
	}
	if (usable)
		*usable = size;
}

ZM_API ZM_HOT void zfree_with_size(void *ptr, size_t size)
{
	bool sampled;

	if (ptr == NULL)
		return;
	sampled = zm_in_sample_heap(ptr);
	/* A header is authoritative and costs nothing to read here. */
	if (ZM_BE_SIZE_IN_HEADER || sampled)
		size = zm_usable(ptr, sampled);
	zm_release(ptr, size, sampled);
}

ZM_API size_t zmalloc_size(void *ptr)
{
	return zm_usable(ptr, zm_in_sample_heap(ptr)) + ZM_BE_OVERHEAD;
}

ZM_API size_t zmalloc_usable_size(void *ptr)
{
	return zm_usable(ptr, zm_in_sample_heap(ptr));
}

ZM_API void *extend_to_usable(void *ptr, size_t size)
{
	(void)size;
	return ptr;
}

ZM_API size_t zmalloc_used_memory(void)
{
	int64_t sum = zm_counters_sum();

	/* Racing reads of other threads' slots can dip below zero. */
	return sum > 0 ? (size_t)sum : 0;
}

ZM_API void zmalloc_set_oom_handler(void (*oom_handler)(size_t))
{
	__atomic_store_n(&zm_oom_handler,
			 oom_handler ? oom_handler : zm_default_oom,
			 __ATOMIC_RELEASE);
}

ZM_API void zmalloc_enable_thread_safeness(void)
{
	/* Always thread-safe: kept so that classic callers still link. */
}

ZM_API float zmalloc_get_fragmentation_ratio(size_t rss)
{
	size_t used = zmalloc_used_memory();

	return used ? (float)rss / (float)used : 0;
}
