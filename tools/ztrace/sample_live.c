/* SPDX-License-Identifier: BSD-3-Clause */
/* sample_live.c - the live check of sampled mode (see sample_live.h). */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "sample_live.h"
#include "zmalloc_sampling.h"

#define ZT_IOV_BATCH 1024 /* UIO_MAXIOV */

/* The BPF side's copy of the layout (bpf/ztrace.h). */
_Static_assert(ZT_SAMPLE_LIVE == ZMALLOC_SAMPLE_LIVE, "live tag");
_Static_assert(ZMALLOC_SAMPLE_HDR_SIZE -
			       __builtin_offsetof(struct zmalloc_sample_hdr,
						  live) ==
		       ZT_SAMPLE_LIVE_OFFSET,
	       "live word offset");
_Static_assert(ZT_SAMPLE_STACK == ZMALLOC_SAMPLE_STACK, "stack tag");
_Static_assert(ZT_SAMPLE_FRAMES == ZMALLOC_SAMPLE_FRAMES, "stack frames");
_Static_assert(sizeof(struct zt_sample_stack) ==
		       sizeof(struct zmalloc_sample_stack),
	       "stack size");
_Static_assert(ZT_SAMPLE_STACK_OFFSET ==
		       ZMALLOC_SAMPLE_HDR_SIZE + ZMALLOC_SAMPLE_STACK_SIZE,
	       "stack offset");

static bool header_says_live(const struct zmalloc_sample_hdr *h,
			     const struct zt_live_entry *e)
{
	return h->live == (ZMALLOC_SAMPLE_LIVE ^ e->ptr) &&
	       h->weight == e->b.weight && h->usable >= e->b.requested;
}

/*
 * Reads the headers of v[0..n) into hdr, one iovec each; returns how many
 * were read, from the first (process_vm_readv stops at the first it cannot
 * read), or -errno when not even the first could be.
 */
static long read_headers(pid_t pid, const struct zt_live_entry *v, size_t n,
			 struct zmalloc_sample_hdr *hdr)
{
	struct iovec local[ZT_IOV_BATCH], remote[ZT_IOV_BATCH];
	size_t i;
	ssize_t got;

	if (n > ZT_IOV_BATCH)
		n = ZT_IOV_BATCH;
	for (i = 0; i < n; i++) {
		local[i].iov_base = &hdr[i];
		local[i].iov_len = sizeof(hdr[i]);
		remote[i].iov_base =
			(void *)(uintptr_t)(v[i].ptr - ZMALLOC_SAMPLE_HDR_SIZE);
		remote[i].iov_len = sizeof(hdr[i]);
	}
	got = process_vm_readv(pid, local, n, remote, n, 0);
	if (got < 0)
		return -errno;
	return got / (ssize_t)sizeof(*hdr);
}

static int by_ptr(const void *a, const void *b)
{
	const struct zt_live_verdict *x = a, *y = b;

	if (x->ptr != y->ptr)
		return x->ptr < y->ptr ? -1 : 1;
	return x->ts_ns < y->ts_ns ? -1 : x->ts_ns > y->ts_ns;
}

/* The target is gone: the last verdicts, and live for entries since. */
static void answer_from_cache(struct zt_sample_live *sl,
			      struct zt_live_entry *v, size_t n)
{
	struct zt_live_verdict key, *hit;

	sl->unverified = 0;
	for (size_t i = 0; i < n; i++) {
		key.ptr = v[i].ptr;
		key.ts_ns = v[i].b.ts_ns;
		hit = sl->n ? bsearch(&key, sl->v, sl->n, sizeof(key), by_ptr) :
			      NULL;
		v[i].live = hit ? hit->live : true;
		sl->unverified += !hit;
	}
}

static int remember(struct zt_sample_live *sl, const struct zt_live_entry *v,
		    size_t n)
{
	struct zt_live_verdict *nv;

	nv = malloc((n ? n : 1) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		nv[i].ptr = v[i].ptr;
		nv[i].ts_ns = v[i].b.ts_ns;
		nv[i].live = v[i].live;
	}
	qsort(nv, n, sizeof(*nv), by_ptr);
	free(sl->v);
	sl->v = nv;
	sl->n = n;
	return 0;
}

int sample_live_check(struct zt_sample_live *sl, pid_t pid,
		      struct zt_live_entry *v, size_t n)
{
	struct zmalloc_sample_hdr *hdr;
	size_t done = 0;
	long got;

	hdr = malloc(ZT_IOV_BATCH * sizeof(*hdr));
	if (!hdr)
		return -ENOMEM;
	while (done < n) {
		got = read_headers(pid, v + done, n - done, hdr);
		if (got == -ESRCH || got == -EPERM) {
			/* Gone, or a zombie: nothing of it can be read. */
			free(hdr);
			sl->err = (int)got;
			answer_from_cache(sl, v, n);
			return 0;
		}
		if (got <= 0) {
			/*
			 * This header cannot be read: no sample's block is
			 * there any more (the sample heap is never unmapped
			 * while the process lives).
			 */
			v[done++].live = false;
			continue;
		}
		for (long i = 0; i < got; i++)
			v[done + i].live =
				header_says_live(&hdr[i], &v[done + i]);
		done += got;
	}
	free(hdr);
	sl->err = 0;
	sl->unverified = 0;
	return remember(sl, v, n);
}

void sample_live_free(struct zt_sample_live *sl)
{
	free(sl->v);
	memset(sl, 0, sizeof(*sl));
}
