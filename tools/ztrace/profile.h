/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * profile.h - the heap of a traced process as the exports see it (pprof,
 * folded stacks, the SVG flame graph, ztrace top): one record per
 * allocating stack with what it allocated since attach and what it still
 * holds, its symbolized frames, and the target's mappings with their build
 * ids. Functions return 0 or -errno.
 */
#ifndef ZT_PROFILE_H
#define ZT_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <linux/types.h>

struct zt_session;
struct zt_sym_stack;

struct zt_prof_stack {
	__u32 stack_id; /* ZT_STACK_NONE: blocks whose stack was not kept */
	__u64 allocs; /* since attach (estimates when sampled) */
	__u64 alloc_bytes; /* requested */
	__u64 live_blocks; /* outstanding, at least --min-age old */
	__u64 live_bytes;
	const struct zt_sym_stack *st; /* NULL when not recorded */
};

struct zt_prof_mapping {
	__u64 start;
	__u64 limit;
	__u64 offset; /* file offset of start */
	char *path;
	char build_id[2 * 64 + 1]; /* hex; empty when none */
};

struct zt_profile {
	struct zt_prof_stack *v; /* largest live bytes first */
	size_t n;
	struct zt_prof_mapping *maps;
	size_t nmaps;
	__u64 time_ns; /* CLOCK_REALTIME of the snapshot */
	__u64 duration_ns; /* since attach */
	/*
	 * The sampling period, as Go writes it: 1 when every allocation is
	 * traced, else the mean bytes between samples; the values are then
	 * the estimates (already scaled by the samples' weights).
	 */
	__s64 period;
	pid_t pid;
	const char *comm;
	__u64 live_blocks; /* sums over v */
	__u64 live_bytes;
	bool incomplete; /* the report has drops */
};

/*
 * Snapshot session S: per-stack totals from the kernel's stack_totals, the
 * live figures from the live table (only blocks at least MIN_AGE_NS old),
 * stacks symbolized (while the target lives) and the mappings of the
 * target's modules. WITH_LIVE false skips the live table scan and takes
 * the live figures from stack_totals (ztrace top, once a second).
 */
int profile_collect(struct zt_session *s, __u64 min_age_ns, bool with_live,
		    struct zt_profile *p);
void profile_free(struct zt_profile *p);

/* The name of frame I of a stack for folded and SVG output, never NULL. */
const char *profile_frame_name(const struct zt_sym_stack *st, int i, char *buf,
			       size_t len);

#endif /* ZT_PROFILE_H */
