/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * zm_sample_stack.c - the allocating stack of a sampled block
 * (zm_sample_stack.h).
 */
#include <pthread.h>

#include "zm_sample_stack.h"

/* The calling thread's stack, [lo, hi); known: 1, unknown: -1, unread: 0. */
struct zm_thread_stack {
	uintptr_t lo, hi;
	int known;
};

static __thread struct zm_thread_stack zm_thread_stack
	__attribute__((tls_model("initial-exec")));

static const struct zm_thread_stack *thread_stack(void)
{
	struct zm_thread_stack *ts = &zm_thread_stack;
	pthread_attr_t attr;
	size_t size;
	void *addr;

	if (ts->known)
		return ts;
	ts->known = -1;
	if (pthread_getattr_np(pthread_self(), &attr))
		return ts;
	if (!pthread_attr_getstack(&attr, &addr, &size) && size) {
		ts->lo = (uintptr_t)addr;
		ts->hi = (uintptr_t)addr + size;
		ts->known = 1;
	}
	pthread_attr_destroy(&attr);
	return ts;
}

void zm_sample_stack_fill(struct zmalloc_sample_stack *st, uintptr_t fp,
			  uintptr_t block)
{
	const struct zm_thread_stack *ts = thread_stack();
	const uintptr_t *frame;
	uint64_t n = 0;

	st->next_fp = 0;
	if (ts->known < 0 || fp < ts->lo || fp >= ts->hi)
		goto out; /* not on the thread's stack: the tracer walks */
	/* The rules of ztrace's own walk (bpf/ztrace.bpf.c, walk_stack). */
	while (fp && !(fp & 7) && fp + 16 <= ts->hi) {
		if (n == ZMALLOC_SAMPLE_FRAMES) {
			st->next_fp = fp;
			break;
		}
		frame = (const uintptr_t *)fp;
		if (!frame[1])
			break;
		st->frames[n++] = frame[1];
		fp = frame[0] > fp ? frame[0] : 0;
	}
out:
	st->nframes = n;
	while (n < ZMALLOC_SAMPLE_FRAMES)
		st->frames[n++] = 0;
	__atomic_store_n(&st->check, ZMALLOC_SAMPLE_STACK ^ block,
			 __ATOMIC_RELEASE);
}
