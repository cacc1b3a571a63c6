/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * probes.h - the BPF side seen from ztrace: check that this system can run
 * it, open and size the skeleton, load it and attach it to the zmalloc USDT
 * probes of one process. Functions return 0 or -errno and print what failed.
 */
#ifndef ZT_PROBES_H
#define ZT_PROBES_H

#include <stdbool.h>
#include <sys/types.h>
#include <linux/types.h>

#define ZT_NPROBES 4

struct zt_live_blocks;
struct zt_live_bucket;
struct zt_sample_live;

struct zt_probes {
	struct ztrace_bpf *skel;
	struct bpf_link *links[ZT_NPROBES]; /* libbpf's USDT links */
	int multi_fds[ZT_NPROBES]; /* or uprobe_multi links */
	int ncpus;
	__u64 live_capacity; /* ways of the live table */
	bool stacks;
	bool noop;
	bool sampled; /* on sample_alloc (--sample) */
	bool multi; /* attached through uprobe_multi (usdt_multi.c) */
	bool sample_regs_fixed; /* sample_alloc's arguments from registers */
	pid_t pid; /* the target */
	/* The live table (ztrace.h), mapped at load: ways, their blocks. */
	const struct zt_live_bucket *live;
	const struct zt_live_blocks *live_blocks;
	const __u64 *live_used; /* sampled mode: buckets in use (ztrace.h) */
	size_t live_len, live_blocks_len, live_used_len; /* bytes mapped */
	struct zt_sample_live *live_check; /* sampled mode: sample_live.h */
};

void probes_init(struct zt_probes *p);
int probes_check_system(void);
/*
 * Load the programs and attach them to the zmalloc probes of PATH for
 * process PID alone (the sampled ones with env.sample): through one
 * uprobe_multi link per probe where the kernel has them (unless
 * ZTRACE_NO_UPROBE_MULTI=1), else libbpf's per-site USDT attachment. Both
 * filter by process: the programs do not check it again.
 */
int probes_open(struct zt_probes *p, pid_t pid, const char *path, bool stacks,
		bool noop);
void probes_detach(struct zt_probes *p);
void probes_destroy(struct zt_probes *p);

/* What the kernel counts of our programs, summed over them. */
struct zt_prog_stats {
	unsigned long long missed; /* runs skipped (recursion) */
	unsigned long long run_ns; /* with kernel.bpf_stats_enabled=1 */
	unsigned long long run_cnt;
};

void probes_stats(const struct zt_probes *p, struct zt_prog_stats *st);
/* Runs of our programs the kernel skipped (recursion), summed. */
unsigned long long probes_missed(const struct zt_probes *p);

#endif /* ZT_PROBES_H */
