/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * sample_live.h - which of the samples in the live table are still live.
 *
 * Sampled mode traces sample_alloc only: a sample costs the target one
 * kernel entry instead of two. The free of a sample is read from the
 * target instead: the library keeps a live word in the header before each
 * sampled block (include/zmalloc_sampling.h) and clears it before the
 * block is freed. An entry of the live table is live while its header's
 * live word names its address and the header's weight is the sample's
 * own; a freed entry stays in the table until a later sample takes its
 * address (the sample heap reuses its lowest pages first, so the table
 * holds about as many entries as the sample heap ever held blocks).
 *
 * The verdicts of the last check that could read the target are kept, so
 * that a report made once the target is gone (-p, after its exit) still
 * leaves out the samples known freed; an entry the target could not be
 * asked about counts as live and is counted in unverified.
 */
#ifndef ZT_SAMPLE_LIVE_H
#define ZT_SAMPLE_LIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <linux/types.h>

#include "ztrace_types.h"

struct zt_live_entry {
	__u64 ptr;
	struct zt_block b;
	bool live;
	bool gone; /* freed for good: not read again (sample_live.c) */
};

struct zt_live_verdict {
	__u64 ptr;
	__u64 ts_ns;
	bool live;
	bool gone;
};

struct zt_sample_live {
	/* The last readable check's: a hash table of cap slots, ptr 0 free. */
	struct zt_live_verdict *v;
	size_t cap;
	__u64 unverified; /* entries of the last check taken as live unread */
	__u64 headers_read; /* since the first check: each live or new one */
	__u64 checks; /* checks that read the target */
	/* The last check's entries, as of last_as_of (0: now), collect.c's. */
	struct zt_live_entry *last;
	size_t last_n;
	__u64 last_as_of;
	int err; /* why the last check could not read the target, or 0 */
};

/*
 * Sets v[i].live for the n entries of PID's live table; 0, or -ENOMEM.
 * It may reorder v. An entry the last check found freed is not read
 * again. When PID cannot be read, the cached verdicts answer (sl->err
 * says why).
 */
int sample_live_check(struct zt_sample_live *sl, pid_t pid,
		      struct zt_live_entry *v, size_t n);
void sample_live_free(struct zt_sample_live *sl);

#endif /* ZT_SAMPLE_LIVE_H */
