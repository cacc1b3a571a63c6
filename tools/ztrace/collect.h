/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * collect.h - read the BPF maps into plain structs: a snapshot of the
 * counters and histograms (summed over CPUs) with the target's own figures,
 * and the outstanding blocks grouped by allocating stack. Functions return
 * 0 or -errno.
 */
#ifndef ZT_COLLECT_H
#define ZT_COLLECT_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "ztrace_types.h"

struct zt_probes;

/* Figures derived from the histograms and counters (see collect.c). */
struct zt_derived {
	__u64 allocs; /* alloc probe hits */
	__u64 frees; /* free probe hits */
	__s64 live_blocks; /* tracked blocks now live */
	__s64 live_bytes; /* their requested bytes */
	__s64 live_usable; /* their usable bytes */
};

struct zt_snapshot {
	__u64 mono_ns; /* CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns() */
	struct zt_counters c;
	struct zt_derived d;
	struct zt_hist_slot hist[ZT_HIST_KINDS][ZT_HIST_BUCKETS];
	/*
	 * Sampled mode: what the samples stand for (see estimate.h); FREE is
	 * derived from the live check (sample_live.h), with its caveats.
	 */
	struct zt_sample_slot shist[ZT_SHIST_KINDS][ZT_HIST_BUCKETS];
	__u64 sample_alloc_hits; /* sampled mode: zt_sample_cpu.hits, summed */
	__u64 live_unverified; /* samples taken as live, target unreadable */
	__u64 live_headers_read; /* sample headers read by the live checks */
	__u64 live_checks; /* live checks that read the target */
	int live_check_err; /* why the target could not be read, or 0 */
	unsigned long long prog_missed;
	unsigned long long prog_run_ns; /* kernel.bpf_stats_enabled=1 */
	unsigned long long prog_run_cnt;

	/* The target's own figures, read from outside it. */
	__s64 used_memory;
	int used_memory_err; /* 0 when used_memory is valid */
	__u64 rss;
	int rss_err;
	bool stale; /* target gone: the figures are the last ones read */
};

struct zt_leak {
	__u32 stack_id;
	__u32 pad;
	__u64 blocks;
	__u64 bytes; /* requested */
	__u64 usable;
	__u64 oldest_ns;
	__u64 total_allocs; /* since attach, from stack_totals */
	__u64 total_bytes;
	__s64 total_live_blocks; /* live now, whatever their age */
	__s64 total_live_bytes;
	/*
	 * Sampled mode: blocks and bytes above count the samples themselves
	 * (total_* from the stack slots: samples and weights); these are the
	 * estimates of what they stand for.
	 */
	__u64 est_bytes; /* sum of the weights */
	__u64 est_milli; /* estimated blocks, in thousandths */
	__u64 total_est_milli; /* blocks allocated since attach, likewise */
	__s64 total_live_est_milli;
};

struct zt_leak_set {
	struct zt_leak *v; /* largest bytes first */
	size_t n;
	__u64 blocks; /* in v */
	__u64 bytes;
	__u64 young_blocks; /* live but younger than --min-age */
	__u64 young_bytes;
	bool sampled; /* the figures are samples: see struct zt_leak */
	__u64 est_bytes; /* sums of v's estimates */
	__u64 est_milli;
	__u64 young_est_bytes;
};

__u64 mono_now_ns(void);
int collect_counters(const struct zt_probes *p, struct zt_snapshot *s);
/* d = a - b, field by field, none below 0. */
void sample_slot_sub(struct zt_sample_slot *d, const struct zt_sample_slot *a,
		     const struct zt_sample_slot *b);
int collect_leaks(const struct zt_probes *p, __u64 now_ns, __u64 min_age_ns,
		  struct zt_leak_set *set);
void leak_set_free(struct zt_leak_set *set);
/*
 * fn(arg, address, block) for every tracked block; stops at an error. In
 * sampled mode, for every sample the live check finds live.
 */
int collect_each_block(const struct zt_probes *p,
		       int (*fn)(void *arg, __u64 ptr,
				 const struct zt_block *b),
		       void *arg);
struct zt_live_entry;
/*
 * Sampled mode: every entry of the live table, with its live verdict, as
 * of AS_OF (a snapshot's mono_ns; 0: now). A report's counters and its
 * leaks ask for the same AS_OF: the second gets the first's entries and
 * verdicts, without reading the target again. *V is the probes' own,
 * valid until the next call: not to be freed.
 */
int collect_live_samples(const struct zt_probes *p, __u64 as_of,
			 const struct zt_live_entry **v, size_t *n);
/* The user stack of STACK_ID, leaf first; returns the frame count. */
int collect_stack(const struct zt_probes *p, __u32 stack_id, __u64 *ips,
		  int max);
/* Sampled mode: a stack's slot, with what its samples allocated. */
int collect_stack_slot(const struct zt_probes *p, __u32 stack_id,
		       struct zt_stack_slot *t);
/* The key of a stack's exact totals in the stack_totals array. */
__u32 totals_slot(const struct zt_probes *p, __u32 stack_id);
/* Ids of every stack stored so far, for symbolizing ahead of time. */
int collect_stack_ids(const struct zt_probes *p, __u32 **ids, size_t *n);
/* How many stacks have entered the stacks map: one syscall, no walk. */
int collect_stacks_stored(const struct zt_probes *p, __u64 *n);

#endif /* ZT_COLLECT_H */
