/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ztrace.h - the structs and constants shared by ztrace.bpf.c and the ztrace
 * command. Fixed-width fields and explicit padding only: this header is the
 * single definition of every layout that crosses the kernel boundary.
 */
#ifndef ZTRACE_H
#define ZTRACE_H

/*
 * Histogram buckets, bpftrace's hist() layout: bucket 0 holds the value 0,
 * bucket b >= 1 holds [2^(b-1), 2^b). A size below SIZE_MAX/2 fits in 64.
 */
#define ZT_HIST_BUCKETS 64

/* Histogram kinds, the outer index of the hist map. */
#define ZT_HIST_ALLOC 0 /* blocks that entered: alloc, realloc new */
#define ZT_HIST_FREE 1 /* tracked blocks that left: by requested */
#define ZT_HIST_FREE_UNTRACKED 2 /* blocks unknown to ztrace: by usable */
#define ZT_HIST_KINDS 3

/*
 * Sampled mode (ztrace --sample): one program, on sample_alloc, so that a
 * sample costs the target one kernel entry; every figure is an estimate: a
 * sample of s requested bytes with weight w stands for w bytes and w / s
 * blocks. The kernel keeps sums from which user space computes both
 * exactly: the weights, and w / s in thousandths of a block. Which samples
 * are still live, user space finds out by reading each sample's header in
 * the target (include/zmalloc_sampling.h; tools/ztrace/sample_live.c): the
 * FREE kind and every live figure are computed there, not here.
 */
#define ZT_SAMPLE_ARGS 5 /* ptr, requested, usable, weight, stack hash */
#define ZT_SAMPLE_ARGS_READ 0x1b /* all but usable: the program's use */
#define ZT_SHIST_ALLOC 0 /* sample_alloc, by requested size (sample_cpu) */
#define ZT_SHIST_FREE 1 /* samples found freed (user space only) */
#define ZT_SHIST_KINDS 2
#define ZT_MILLI 1000

/*
 * The live word of a sampled block's header, which the BPF side reads to
 * reuse the way of a freed sample (include/zmalloc_sampling.h; user space
 * checks these against it at build time).
 */
#define ZT_SAMPLE_LIVE 0x6576696c706d737aULL
#define ZT_SAMPLE_LIVE_OFFSET 8 /* bytes before the block */

/*
 * The allocating stack the library writes before a sampled block's header
 * (struct zmalloc_sample_stack), which sample_alloc's program reads in one
 * piece instead of walking the frames.
 */
#define ZT_SAMPLE_STACK 0x6b63617473706d7aULL
#define ZT_SAMPLE_FRAMES 31
#define ZT_SAMPLE_STACK_OFFSET (32 + 272) /* bytes before the block */
#define ZT_FNV_BASIS 0xcbf29ce484222325ULL /* the library's stack hash */
#define ZT_FNV_PRIME 0x100000001b3ULL

struct zt_sample_stack {
	__u64 check; /* ZT_SAMPLE_STACK ^ block address */
	__u64 nframes;
	__u64 next_fp;
	__u64 frames[ZT_SAMPLE_FRAMES];
};

/*
 * The per-CPU buffer a stack is walked or read into: a busy word, then the
 * frames from word ZT_SCRATCH_HEAD on; a sample's header is read so that
 * its check and nframes take the two words between (ztrace.bpf.c).
 */
#define ZT_SCRATCH_HEAD 3

/* Stack id of blocks whose allocating stack could not be recorded. */
#define ZT_STACK_NONE 0xffffffffU

/* Default sizes of the maps; each can be changed before load. */
#define ZT_DEFAULT_MAX_BLOCKS 1048576
#define ZT_DEFAULT_MAX_SAMPLES 65536 /* --sample: 32 GiB live at 512 KiB */
#define ZT_DEFAULT_MAX_STACKS 16384
#define ZT_DEFAULT_STACK_DEPTH 32
#define ZT_MAX_STACK_DEPTH 127

/* zt_block.flags */
#define ZT_BLOCK_REPLACED 1 /* took the key of a block whose free was missed */

/*
 * The live table: an array of buckets of ZT_LIVE_WAYS ways. A block's
 * address picks two buckets (two halves of one hash); it takes a free way
 * in the first, else in the second, and then marks the first "spilled" so
 * that lookups know to look on. A way whose ptr is 0 is free. Both buckets
 * full is a drop. Sized to twice the blocks asked for, the table rarely
 * drops before that many blocks are live.
 */
#define ZT_LIVE_WAYS 4

/* One hist map slot: key = kind * ZT_HIST_BUCKETS + bucket; per CPU. */
struct zt_hist_slot {
	__u64 count;
	__u64 bytes; /* requested bytes (usable for FREE_UNTRACKED) */
	__u64 frag; /* usable - requested bytes */
};

/* A tracked block, in a way of the live table. */
struct zt_block {
	__u64 requested;
	union {
		__u64 usable; /* exact probes */
		__u64 weight; /* sampled mode: the bytes the sample stands for */
	};
	__u64 ts_ns; /* birth: CLOCK_MONOTONIC, <= a jiffy behind */
	__u32 tid;
	__u32 stack_id; /* ZT_STACK_NONE when not recorded */
	__u32 flags; /* ZT_BLOCK_* */
	__u32 prev_tid; /* with ZT_BLOCK_REPLACED: thread of the stale block */
};

/*
 * A bucket's ways (the live map) and their blocks (live_blocks, at the
 * same index): apart, so that user space finds the taken ways by reading
 * 40 bytes a bucket instead of 200.
 */
struct zt_live_bucket {
	__u64 ptr[ZT_LIVE_WAYS]; /* block addresses; 0: free way */
	__u32 spilled; /* some block of this bucket is in its second */
	__u32 pad;
};

struct zt_live_blocks {
	struct zt_block blk[ZT_LIVE_WAYS];
};

/*
 * Sampled mode: bit i % 64 of word i / 64 of the live_used map is set once
 * bucket i holds a way. A sample's way is reused, never cleared, so user
 * space reads only the buckets marked instead of the whole table.
 */
#define ZT_USED_BITS 64

/* The stack_totals map's value; the key is a stack id (__u32); per CPU. */
struct zt_stack_totals {
	__u64 allocs;
	__u64 bytes; /* requested bytes allocated */
	__s64 live_blocks; /* per CPU parts may be negative; sum them */
	__s64 live_bytes; /* requested bytes still live */
};

/* A bucket of sampled mode's histogram (zt_sample_cpu), and user space's. */
struct zt_sample_slot {
	__u64 samples;
	__u64 requested; /* requested bytes of the samples themselves */
	__u64 weight; /* sum of weights: the estimated bytes */
	__u64 count_milli; /* sum of ZT_MILLI * weight / requested */
};

/* The clock as birth_ns() last read it on a CPU, its jiffy, events since. */
struct zt_clock {
	__u64 jiffies;
	__u64 ns;
	__u64 seq;
};

/*
 * Sampled mode's per-CPU state, the one slot of the sample_cpu map: the
 * clock, the probe hits, the allocation histogram (index = bucket). One
 * value, so that a sample, which finds the caches cold, touches one
 * per-CPU area: the clock's line and its bucket's. User space sums the
 * CPUs' hits and hist (the clock's sum means nothing).
 */
struct zt_sample_cpu {
	struct zt_clock clock;
	__u64 hits; /* sample_alloc hits */
	struct zt_sample_slot hist[ZT_HIST_BUCKETS];
};

/*
 * A stack id's slot, the stack_slots map's value: the key of the stack
 * stored under the id (0 while none is), and in sampled mode what its
 * samples allocated since attach (what is live, user space computes).
 * Not per CPU, so that a sample finds its stack and adds to its totals in
 * one line; samples come seldom enough that the line is not contended.
 */
struct zt_stack_slot {
	__u64 key;
	__u64 samples;
	__u64 weight;
	__u64 count_milli;
};

/*
 * Event and drop counters, the single slot of the counters map; per CPU.
 * "Tracked" blocks are those in the live map. A free of a block that is not
 * tracked was allocated before attach, or was itself dropped (drop_live_*).
 * Allocs, frees and the live figures are not counted here but derived from
 * the histograms, which see every block enter and leave: each atomic add
 * on the hot path costs.
 */
struct zt_counters {
	__u64 reallocs; /* realloc probe hits */
	__u64 reallocs_inplace; /* of which the block did not move */
	__u64 ooms; /* oom probe hits */
	__u64 oom_bytes;
	__u64 untracked_frees; /* frees and realloc olds of untracked blocks */
	__u64 untracked_free_bytes; /* their usable bytes */
	__u64 missed_frees; /* alloc of an address still tracked as live */
	__u64 missed_free_bytes; /* requested bytes of those stale blocks */
	__u64 realloc_races; /* realloc probe after its old address reused */
	__u64 drop_live_full; /* blocks not tracked: live map full */
	__u64 drop_live_error; /* blocks not tracked: other update error */
	__u64 drop_live_bytes; /* requested bytes of blocks not tracked */
	__u64 drop_live_usable; /* their usable bytes (sampled: weights) */
	__u64 drop_stack_collision; /* stack id bucket held another stack */
	__u64 drop_stack_error; /* user stack could not be walked or stored */
	__u64 drop_totals_full; /* no totals slot (stack_totals, stack_slots) */
	__u64 drop_args; /* probe hits whose arguments could not be read */
	__u64 sample_ways_reused; /* ways of freed samples taken, table full */
	__u64 sample_stacks_read; /* samples whose stack was not known by hash */
	__u64 sample_stacks_walked; /* of which walked: none written, or deeper */
	__u64 sample_hash_mismatches; /* samples: hash != its written frames' */
	__u64 stacks_stored; /* stacks that entered the stacks map */
};

#endif /* ZTRACE_H */
