/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * session.h - one run of ztrace: find or start the target, load and attach
 * the programs, then report every interval and once at the end (the
 * target exited, -d elapsed, or SIGINT/SIGTERM). Each mode gives its
 * report and, optionally, work to do while the target is alive.
 */
#ifndef ZT_SESSION_H
#define ZT_SESSION_H

#include <stdbool.h>

#include "collect.h"
#include "options.h"
#include "probes.h"
#include "sample_control.h"
#include "symbolize.h"
#include "target.h"
#include "used_memory.h"

struct zt_session;

struct zt_mode_ops {
	bool stacks; /* record allocating stacks */
	bool noop; /* attach the do-nothing programs */
	void (*report)(struct zt_session *s, bool final);
	void (*refresh)(struct zt_session *s); /* target alive, ~1/s */
	/* stdin is readable: 1 stops tracing, -1 stops watching stdin. */
	int (*input)(struct zt_session *s);
};

struct zt_session {
	const struct zt_mode_ops *ops;
	struct zt_target target;
	struct zt_probes probes;
	struct zt_used_memory um;
	struct zt_sample_ctl sc; /* with --sample */
	struct zt_symbolizer sym;
	struct zt_snapshot prev; /* at the previous report */
	struct zt_snapshot cur; /* being reported */
	__u64 attach_ns;
	unsigned int seq; /* reports so far */
	__u64 stacks_symbolized; /* stacks stored at the last refresh's look */
	bool final_done;
	bool report_now; /* SIGUSR1: a report now */
	bool scan_requested; /* with a leak scan, in leaks */
	bool alive; /* the target's memory can be read */
	const char *end_reason;

	/* Last target figures read, shown once it has gone. */
	__s64 last_used_memory;
	int last_used_memory_err;
	__u64 last_rss;
	int last_rss_err;
};

int session_run(const struct zt_mode_ops *ops);

#endif /* ZT_SESSION_H */
