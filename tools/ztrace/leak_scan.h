/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * leak_scan.h - leak verdicts for "ztrace leaks --scan": the blocks the
 * BPF live table holds are zscan's candidates, and its verdicts are summed
 * by allocating stack and class. Functions return 0 or -errno.
 */
#ifndef ZT_LEAK_SCAN_H
#define ZT_LEAK_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <linux/types.h>

#include "zscan.h"

struct zt_probes;

/* One allocating stack's blocks in each class. */
struct zt_scan_row {
	__u32 stack_id;
	__u32 pad;
	uint64_t blocks[ZSCAN_NR_CLASSES];
	uint64_t bytes[ZSCAN_NR_CLASSES]; /* requested bytes, as memcheck */
	/* Sampled mode: what the blocks (samples) stand for, estimated. */
	uint64_t est_bytes[ZSCAN_NR_CLASSES]; /* sums of weights */
	uint64_t est_milli[ZSCAN_NR_CLASSES]; /* blocks, in thousandths */
};

struct zt_scan_result {
	struct zt_scan_row *rows; /* most lost bytes first */
	size_t n;
	__u64 candidates;
	__u64 changed; /* freed or replaced during the scan: no verdict */
	bool concurrent;
	bool snapshot;
	bool sampled; /* the candidates are samples: see est_* */
	struct zscan_stats st;
	uint64_t est_bytes[ZSCAN_NR_CLASSES];
	uint64_t est_milli[ZSCAN_NR_CLASSES];
};

/*
 * Scan process PID against the live blocks of P: stopped for the scan, or
 * concurrently (two scans must agree), on fork snapshots if SNAPSHOT.
 * HELD_TID (or 0) is a thread ztrace itself holds stopped (zscan.h).
 */
int leak_scan_run(const struct zt_probes *p, pid_t pid, bool concurrent,
		  bool snapshot, pid_t held_tid, struct zt_scan_result *r);
void leak_scan_free(struct zt_scan_result *r);
/* Release what the concurrent mode keeps between scans. */
void leak_scan_end(void);

/* Bytes definitely and indirectly lost: what the report leads with. */
static inline __u64 scan_row_lost(const struct zt_scan_row *row)
{
	return row->bytes[ZSCAN_DEFINITELY_LOST] +
	       row->bytes[ZSCAN_INDIRECTLY_LOST];
}

#endif /* ZT_LEAK_SCAN_H */
