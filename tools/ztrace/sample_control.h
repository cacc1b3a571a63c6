/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * sample_control.h - the target's sampling rate and drop counter, read and
 * set from outside it through the exported zm_sample_control
 * (include/zmalloc_sampling.h), found as used_memory.h finds zm_counters.
 * Functions return 0 or -errno; -EAGAIN means the library is not mapped
 * yet.
 */
#ifndef ZT_SAMPLE_CONTROL_H
#define ZT_SAMPLE_CONTROL_H

#include <stdbool.h>
#include <linux/types.h>

#include "elf_info.h"

struct zt_target;

struct zt_sample_ctl {
	struct zt_elf_sym sym;
	bool have_sym;
	__u64 addr; /* of zm_sample_control in the target; 0 until mapped */
	__u64 set_bytes; /* the rate ztrace wrote into the target, or 0 */
	__u64 old_bytes; /* the target's rate before that */

	/* Last read, shown in every report. */
	int err; /* 0 when the figures below are valid */
	__u64 mean_bytes; /* the rate in effect */
	__u64 lost; /* samples the target dropped: sample region full */
	__u64 lost_base; /* lost when tracing began */
	bool have_base;
};

/*
 * Find the symbol in the probe file; a missing one is only a warning.
 * FRESH: the target has not run yet, nothing was lost before tracing.
 */
int sample_ctl_init(struct zt_sample_ctl *sc, const struct zt_target *t,
		    bool fresh);
/* Read the rate and the drop counter into sc (the first read: its base). */
int sample_ctl_read(struct zt_sample_ctl *sc, const struct zt_target *t);
/* -p PID, before attaching: store BYTES as the target's mean_bytes. */
int sample_ctl_set(struct zt_sample_ctl *sc, const struct zt_target *t,
		   __u64 bytes);
/* Put back the rate that sample_ctl_set() replaced, if still ours. */
void sample_ctl_restore(struct zt_sample_ctl *sc, const struct zt_target *t);
/* -- CMD: the rate for the command's environment (before it starts). */
int sample_ctl_set_env(__u64 bytes);

#endif /* ZT_SAMPLE_CONTROL_H */
