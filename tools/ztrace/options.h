/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * options.h - the command line of ztrace: one env struct, filled and
 * validated by parse_options() for the subcommand being run.
 */
#ifndef ZT_OPTIONS_H
#define ZT_OPTIONS_H

#include <stdbool.h>
#include <sys/types.h>
#include <linux/types.h>

enum zt_mode {
	ZT_MODE_HIST,
	ZT_MODE_LEAKS,
	ZT_MODE_STAT,
	ZT_MODE_NOOP,
	ZT_MODE_RECORD,
	ZT_MODE_TOP,
};

/* A concurrent scan's longest stop, ms (issue 5's pause goal at 1 GiB). */
#define ZT_DEFAULT_SCAN_PAUSE_MAX_MS 20.0

enum zt_scan_mode {
	ZT_SCAN_NONE,
	ZT_SCAN_STOP, /* stop the world for each scan */
	ZT_SCAN_CONCURRENT, /* zscan's concurrent mode */
	ZT_SCAN_SNAPSHOT, /* concurrent, on fork snapshots of the target */
};

struct zt_env {
	enum zt_mode mode;
	const char *mode_name;
	pid_t pid; /* -p; 0 when a command is run */
	char **cmd; /* the command after --, NULL-terminated */
	double interval; /* -i seconds; 0: one report at the end */
	double duration; /* -d seconds; 0: until the target exits or ^C */
	double min_age; /* --min-age seconds */
	unsigned int top; /* --top; 0: all */
	__u32 max_blocks;
	__u32 max_stacks;
	__u32 stack_depth;
	enum zt_scan_mode scan; /* leaks --scan */
	double scan_pause_max; /* --scan-pause-max ms; concurrent scans */
	bool scan_pause_max_set;
	bool sample; /* --sample: the sampled probes, estimates */
	__u64 sample_bytes; /* --sample=BYTES; 0: the target's rate */
	bool json;
	const char *output; /* -o; NULL: stdout */
	const char *pprof; /* --pprof FILE (record: -o FILE) */
	const char *folded; /* --folded FILE */
	const char *svg; /* --svg FILE */
	int verbose;
};

extern struct zt_env env;

/* Returns 0, 1 when help was printed, or -EINVAL after an error message. */
int parse_options(int argc, char **argv, enum zt_mode mode);
/* --sample[=BYTES] into env (also for serve's own options). */
int parse_sample(const char *arg);
void print_usage(void);

#endif /* ZT_OPTIONS_H */
