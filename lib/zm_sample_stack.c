/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * zm_sample_stack.c - the allocating stack of a sampled block
 * (zm_sample_stack.h).
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "zm_sample_stack.h"

/* The calling thread's stack, [lo, hi); known: 1, unknown: -1, unread: 0. */
struct zm_thread_stack {
	uintptr_t lo, hi;
	int known;
};

static __thread struct zm_thread_stack zm_thread_stack
	__attribute__((tls_model("initial-exec")));

/* The mapping holding addr, from /proc/self/maps; 0 if not found. */
static int mapping_of(uintptr_t addr, uintptr_t *lo, uintptr_t *hi)
{
	char buf[4096];
	size_t len = 0;
	ssize_t got;
	int fd, found = 0;

	fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	while (!found &&
	       (got = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0) {
		char *line = buf, *nl;

		len += (size_t)got;
		buf[len] = '\0';
		while (!found && (nl = strchr(line, '\n'))) {
			char *end;
			uintptr_t a = strtoull(line, &end, 16), b;

			b = *end == '-' ? strtoull(end + 1, NULL, 16) : 0;
			if (addr >= a && addr < b) {
				*lo = a;
				*hi = b;
				found = 1;
			}
			line = nl + 1;
		}
		/* Keep a line cut by the buffer's end for the next read. */
		len -= (size_t)(line - buf);
		memmove(buf, line, len);
		if (len == sizeof(buf) - 1)
			len = 0; /* a line longer than the buffer: skip it */
	}
	close(fd);
	return found;
}

/*
 * pthread_getattr_np's bounds. The main thread's are its rlimit below its
 * top, down to whatever was mapped below when it was asked: a stack mapped
 * into that gap later (a coroutine's) would pass for the main stack, and
 * a bad frame pointer on it could leave it for a hole. So the main
 * thread's are cut to the mapping that holds its stack now; a deeper
 * stack later is walked by the tracer instead (counted there).
 */
static const struct zm_thread_stack *thread_stack(void)
{
	struct zm_thread_stack *ts = &zm_thread_stack;
	uintptr_t here = (uintptr_t)__builtin_frame_address(0), lo, hi;
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
	if (ts->known > 0 && syscall(SYS_gettid) == getpid()) {
		if (!mapping_of(here, &lo, &hi) || lo >= ts->hi ||
		    hi <= ts->lo) {
			ts->known = -1;
			return ts;
		}
		if (lo > ts->lo)
			ts->lo = lo;
		if (hi < ts->hi)
			ts->hi = hi;
	}
	return ts;
}

uint64_t zm_sample_stack_fill(struct zmalloc_sample_stack *st, uintptr_t fp,
			      uintptr_t block)
{
	const struct zm_thread_stack *ts = thread_stack();
	const uintptr_t *frame;
	uint64_t n = 0, hash;

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
	hash = zmalloc_sample_stack_hash(st->frames, n);
	while (n < ZMALLOC_SAMPLE_FRAMES)
		st->frames[n++] = 0;
	__atomic_store_n(&st->check, ZMALLOC_SAMPLE_STACK ^ block,
			 __ATOMIC_RELEASE);
	return hash;
}
