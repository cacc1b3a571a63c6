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
_Static_assert(ZT_FNV_BASIS == ZMALLOC_SAMPLE_HASH_BASIS &&
		       ZT_FNV_PRIME == ZMALLOC_SAMPLE_HASH_PRIME,
	       "stack hash");
_Static_assert(ZT_SAMPLE_STACK_OFFSET ==
		       ZMALLOC_SAMPLE_HDR_SIZE + ZMALLOC_SAMPLE_STACK_SIZE,
	       "stack offset");

/*
 * An entry's verdict from its header. Live: the live word names the
 * entry's address, and the weight and size are its own. Gone for good:
 * the live word no longer names the address (the library clears it
 * before it frees the block, and a new sample there has another birth).
 * A live word with another weight or size is neither: a copy of the
 * entry taken while the BPF side rewrote it can give that, so it is not
 * live now and is read again at the next check.
 */
static void judge(struct zt_live_entry *e, const struct zmalloc_sample_hdr *h)
{
	e->gone = h->live != (ZMALLOC_SAMPLE_LIVE ^ e->ptr);
	e->live = !e->gone && h->weight == e->b.weight &&
		  h->usable >= e->b.requested;
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

/* (address, birth): a sample's identity; the table's slot for it. */
static size_t verdict_slot(__u64 ptr, __u64 ts_ns, size_t cap)
{
	__u64 h =
		(ptr ^ (ts_ns * 0x9e3779b97f4a7c15ULL)) * 0xff51afd7ed558ccdULL;

	return (size_t)(h >> 32) & (cap - 1);
}

/* The last check's verdict on an entry, or NULL if it had none. */
static const struct zt_live_verdict *verdict_of(const struct zt_sample_live *sl,
						const struct zt_live_entry *e)
{
	size_t i;

	if (!sl->cap)
		return NULL;
	for (i = verdict_slot(e->ptr, e->b.ts_ns, sl->cap); sl->v[i].ptr;
	     i = (i + 1) & (sl->cap - 1))
		if (sl->v[i].ptr == e->ptr && sl->v[i].ts_ns == e->b.ts_ns)
			return &sl->v[i];
	return NULL;
}

/* The target is gone: the last verdicts, and live for entries since. */
static void answer_from_cache(struct zt_sample_live *sl,
			      struct zt_live_entry *v, size_t n)
{
	const struct zt_live_verdict *hit;

	sl->unverified = 0;
	for (size_t i = 0; i < n; i++) {
		hit = verdict_of(sl, &v[i]);
		v[i].live = hit ? hit->live : true;
		v[i].gone = hit && hit->gone;
		sl->unverified += !hit;
	}
}

/*
 * This check's verdicts replace the last's: a hash table at most half
 * full, so that the next check finds each entry's in one or two probes
 * (a sorted array took a sort at every refresh, most of ztrace's CPU
 * with tens of thousands of samples in the table).
 */
static int remember(struct zt_sample_live *sl, const struct zt_live_entry *v,
		    size_t n)
{
	struct zt_live_verdict *nv;
	size_t cap = 16, i, j;

	while (cap < 2 * n)
		cap <<= 1;
	nv = calloc(cap, sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		for (j = verdict_slot(v[i].ptr, v[i].b.ts_ns, cap); nv[j].ptr;
		     j = (j + 1) & (cap - 1))
			;
		nv[j].ptr = v[i].ptr;
		nv[j].ts_ns = v[i].b.ts_ns;
		nv[j].live = v[i].live;
		nv[j].gone = v[i].gone;
	}
	free(sl->v);
	sl->v = nv;
	sl->cap = cap;
	return 0;
}

/*
 * Moves the entries still to be read, those not known gone, to the
 * front of v in their order, the others marked gone after them: a sample
 * once freed stays freed (a new sample at its address has another birth),
 * so its header is read once, not at every refresh. Returns how many are
 * to be read.
 */
static size_t unknown_first(const struct zt_sample_live *sl,
			    struct zt_live_entry *v, size_t n)
{
	const struct zt_live_verdict *hit;
	struct zt_live_entry e;
	size_t i, k = 0;

	for (i = 0; i < n; i++) {
		hit = verdict_of(sl, &v[i]);
		if (hit && hit->gone) {
			v[i].live = false;
			v[i].gone = true;
			continue;
		}
		e = v[i];
		v[i] = v[k];
		v[k++] = e;
	}
	return k;
}

int sample_live_check(struct zt_sample_live *sl, pid_t pid,
		      struct zt_live_entry *v, size_t n)
{
	struct zmalloc_sample_hdr *hdr;
	size_t done = 0, todo;
	long got;

	todo = unknown_first(sl, v, n);
	if (!todo) {
		/* Every entry is known gone: the target need not be asked. */
		sl->unverified = 0;
		return remember(sl, v, n);
	}
	hdr = malloc(ZT_IOV_BATCH * sizeof(*hdr));
	if (!hdr)
		return -ENOMEM;
	while (done < todo) {
		got = read_headers(pid, v + done, todo - done, hdr);
		if (got < 0 && got != -EFAULT) {
			/*
			 * Gone, a zombie (ESRCH, EPERM), or a failure of the
			 * read itself: nothing is judged on it.
			 */
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
			v[done].live = false;
			v[done++].gone = true;
			continue;
		}
		for (long i = 0; i < got; i++)
			judge(&v[done + i], &hdr[i]);
		sl->headers_read += got;
		done += got;
	}
	free(hdr);
	sl->checks++;
	sl->err = 0;
	sl->unverified = 0;
	return remember(sl, v, n);
}

void sample_live_free(struct zt_sample_live *sl)
{
	free(sl->v);
	free(sl->last);
	memset(sl, 0, sizeof(*sl));
}
