/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * options.c - parse and validate ztrace's command line into env.
 * Numbers go through strtod/strtoul with errno and end checks.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ztrace_types.h"
#include "options.h"
#include "output.h"

struct zt_env env = {
	.top = 10,
	.max_blocks = 0, /* the default of the mode, below */
	.max_stacks = ZT_DEFAULT_MAX_STACKS,
	.stack_depth = ZT_DEFAULT_STACK_DEPTH,
	.scan_pause_max = ZT_DEFAULT_SCAN_PAUSE_MAX_MS,
};

enum {
	OPT_MIN_AGE = 256,
	OPT_TOP,
	OPT_MAX_BLOCKS,
	OPT_MAX_STACKS,
	OPT_STACK_DEPTH,
	OPT_SAMPLE,
	OPT_PPROF,
	OPT_FOLDED,
	OPT_SVG,
	OPT_SCAN,
	OPT_SCAN_PAUSE_MAX,
};

/*
 * What each mode takes beyond -p, -d, --sample, -v and -h, which all of
 * them take: parse_options() refuses the rest, and --help lists only these.
 */
enum {
	TAKES_INTERVAL = 1 << 0,
	TAKES_JSON = 1 << 1,
	TAKES_OUTPUT = 1 << 2,
	TAKES_MAX_BLOCKS = 1 << 3,
	TAKES_MIN_AGE = 1 << 4,
	TAKES_TOP = 1 << 5,
	TAKES_STACKS = 1 << 6, /* --max-stacks, --stack-depth */
	TAKES_EXPORTS = 1 << 7, /* --pprof, --folded, --svg */
	TAKES_SCAN = 1 << 8, /* --scan, --scan-pause-max */
};

#define TAKES_REPORTS \
	(TAKES_INTERVAL | TAKES_JSON | TAKES_OUTPUT | TAKES_MAX_BLOCKS)

static const unsigned int mode_takes[] = {
	[ZT_MODE_HIST] = TAKES_REPORTS,
	[ZT_MODE_LEAKS] = TAKES_REPORTS | TAKES_MIN_AGE | TAKES_TOP |
			  TAKES_STACKS | TAKES_EXPORTS | TAKES_SCAN,
	[ZT_MODE_STAT] = TAKES_REPORTS,
	[ZT_MODE_NOOP] = 0, /* it reports nothing */
	/* Profiles in files (-o names one), not reports. */
	[ZT_MODE_RECORD] = TAKES_INTERVAL | TAKES_OUTPUT | TAKES_MAX_BLOCKS |
			   TAKES_MIN_AGE | TAKES_STACKS | TAKES_EXPORTS,
	/* It draws on the terminal, redrawn every -i. */
	[ZT_MODE_TOP] = TAKES_INTERVAL | TAKES_MAX_BLOCKS | TAKES_STACKS,
};

static const char *const mode_names[] = {
	[ZT_MODE_HIST] = "hist",     [ZT_MODE_LEAKS] = "leaks",
	[ZT_MODE_STAT] = "stat",     [ZT_MODE_NOOP] = "noop",
	[ZT_MODE_RECORD] = "record", [ZT_MODE_TOP] = "top",
};

static const struct option long_opts[] = {
	{ "pid", required_argument, NULL, 'p' },
	{ "interval", required_argument, NULL, 'i' },
	{ "duration", required_argument, NULL, 'd' },
	{ "json", no_argument, NULL, 'j' },
	{ "output", required_argument, NULL, 'o' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ "min-age", required_argument, NULL, OPT_MIN_AGE },
	{ "top", required_argument, NULL, OPT_TOP },
	{ "max-blocks", required_argument, NULL, OPT_MAX_BLOCKS },
	{ "max-stacks", required_argument, NULL, OPT_MAX_STACKS },
	{ "stack-depth", required_argument, NULL, OPT_STACK_DEPTH },
	{ "sample", optional_argument, NULL, OPT_SAMPLE },
	{ "pprof", required_argument, NULL, OPT_PPROF },
	{ "folded", required_argument, NULL, OPT_FOLDED },
	{ "svg", required_argument, NULL, OPT_SVG },
	{ "scan", optional_argument, NULL, OPT_SCAN },
	{ "scan-pause-max", required_argument, NULL, OPT_SCAN_PAUSE_MAX },
	{},
};

void print_usage(void)
{
	fprintf(stderr,
		"Usage: ztrace COMMAND [OPTIONS] [-p PID | [--] CMD [ARGS...]]\n"
		"\n"
		"Watch the allocations of a process that uses libzmalloc, from its\n"
		"zmalloc USDT probes, with eBPF.\n"
		"\n"
		"Commands:\n"
		"  hist    per-size log2 histograms of allocations and frees\n"
		"  leaks   stacks holding outstanding blocks, largest first\n"
		"  stat    event, live-block and drop counters\n"
		"  record  write the heap as pprof, folded stacks or SVG flame graph\n"
		"  serve   serve /metrics to Prometheus for one or more processes\n"
		"  top     full-screen live view: figures, sizes, top stacks\n"
		"  noop    attach programs that do nothing (the tracing floor)\n"
		"  help    this text; 'ztrace COMMAND --help' for a command\n"
		"\n"
		"See ztrace(8).\n");
}

static void print_mode_help(enum zt_mode mode)
{
	static const char *const what[] = {
		[ZT_MODE_HIST] =
			"Print per-size log2 histograms (count, requested bytes,\n"
			"usable-minus-requested bytes) of allocations and frees, for\n"
			"each interval and since attach.\n",
		[ZT_MODE_LEAKS] =
			"Print the allocating stacks of outstanding blocks older than\n"
			"--min-age, largest first: bytes, blocks, oldest age, and the\n"
			"stack as function, file and line, libzmalloc's frames dropped.\n",
		[ZT_MODE_STAT] =
			"Print allocation, free, realloc and oom counts, the live blocks\n"
			"ztrace tracks, and every drop counter.\n",
		[ZT_MODE_NOOP] =
			"Attach BPF programs that do nothing to the same probes: the\n"
			"cost floor of any uprobe-based tracer. Reports nothing.\n",
		[ZT_MODE_RECORD] =
			"Record the heap by allocating stack until the target exits,\n"
			"-d elapses or ^C (and at every -i), as a gzipped pprof profile\n"
			"(-o FILE.pb.gz), folded stacks or an SVG flame graph.\n",
		[ZT_MODE_TOP] =
			"A full-screen live view, redrawn every -i (1 s): used_memory,\n"
			"RSS and live bytes with their history, the size histogram and\n"
			"the stacks holding the most. Keys: s sort, p pause, q quit.\n",
	};

	unsigned int takes = mode_takes[mode];

	fprintf(stderr,
		"Usage: ztrace %s [OPTIONS] -p PID\n"
		"       ztrace %s [OPTIONS] [--] CMD [ARGS...]\n\n%s\n"
		"Target:\n"
		"  -p, --pid PID        attach to running process PID\n"
		"  CMD [ARGS...]        run CMD with the probes attached before its\n"
		"                       first instruction; exit with its status\n"
		"Options:\n",
		env.mode_name, env.mode_name, what[mode]);
	if (mode == ZT_MODE_RECORD)
		fprintf(stderr,
			"  -i, --interval SECS  also write the profile every SECS seconds\n");
	else if (mode == ZT_MODE_TOP)
		fprintf(stderr,
			"  -i, --interval SECS  redraw every SECS seconds (default 1)\n");
	else if (takes & TAKES_INTERVAL)
		fprintf(stderr,
			"  -i, --interval SECS  report every SECS seconds (default: once,\n"
			"                       at the end)\n");
	fprintf(stderr,
		"  -d, --duration SECS  stop tracing after SECS seconds\n");
	if (takes & TAKES_JSON)
		fprintf(stderr,
			"  -j, --json           one JSON document per report\n");
	if (mode == ZT_MODE_RECORD)
		fprintf(stderr,
			"  -o, --output FILE    the profile: FILE.svg a flame graph,\n"
			"                       FILE.folded or FILE.txt folded stacks,\n"
			"                       else pprof\n");
	else if (takes & TAKES_OUTPUT)
		fprintf(stderr,
			"  -o, --output FILE    write reports to FILE instead of stdout\n");
	if (takes & TAKES_MAX_BLOCKS)
		fprintf(stderr,
			"      --max-blocks N   size the live table for N blocks (default %u;\n"
			"                       %u samples with --sample)\n",
			ZT_DEFAULT_MAX_BLOCKS, ZT_DEFAULT_MAX_SAMPLES);
	fprintf(stderr,
		"      --sample[=BYTES] production mode: trace only the blocks the\n"
		"                       library samples, about one per BYTES\n"
		"                       allocated (default: the target's rate,\n"
		"                       524288 unless it set another; K, M, G\n"
		"                       suffixes); unsampled allocations and frees\n"
		"                       never enter the kernel%s\n"
		"  -v, --verbose        libbpf messages (twice: debug)\n"
		"  -h, --help           this text\n",
		mode == ZT_MODE_NOOP ?
			"" :
			", and every figure\n"
			"                       but used_memory and RSS is an estimate");
	if (takes & (TAKES_MIN_AGE | TAKES_TOP | TAKES_STACKS))
		fprintf(stderr, "Stacks:\n");
	if (takes & TAKES_MIN_AGE)
		fprintf(stderr,
			"      --min-age SECS   only blocks at least SECS old (default 0)\n");
	if (takes & TAKES_TOP)
		fprintf(stderr,
			"      --top N          the N largest stacks (default 10, 0: all)\n");
	if (takes & TAKES_STACKS)
		fprintf(stderr,
			"      --max-stacks N   distinct stacks kept (default %u)\n"
			"      --stack-depth N  frames per stack, at most %u (default %u;\n"
			"                       with --sample, any other depth reads\n"
			"                       every sample's stack from the target)\n",
			ZT_DEFAULT_MAX_STACKS, ZT_MAX_STACK_DEPTH,
			ZT_DEFAULT_STACK_DEPTH);
	if (takes & TAKES_SCAN)
		fprintf(stderr,
			"Verdicts (a reachability scan of the target's memory):\n"
			"      --scan[=stop]    at every report, stop the target for the\n"
			"                       scan and classify each live block as\n"
			"                       valgrind's memcheck does: definitely,\n"
			"                       indirectly or possibly lost, or still\n"
			"                       reachable; lost blocks lead the report\n"
			"      --scan=concurrent  scan while the target runs, stop it only\n"
			"                       to rescan the pages it wrote meanwhile\n"
			"                       (soft-dirty bits, or a userfaultfd it is\n"
			"                       made to create); a block is lost once two\n"
			"                       scans in a row agree\n"
			"      --scan=snapshot  the concurrent scan, on a fork snapshot\n"
			"                       the target makes while stopped (a clone\n"
			"                       injected into one thread): the pause is\n"
			"                       the clone's, for targets that rewrite\n"
			"                       most of their memory within a second;\n"
			"                       see ztrace(8) for what the target can\n"
			"                       notice\n"
			"      --scan-pause-max MS  the longest stop of a concurrent scan\n"
			"                       (default %g; 0: no bound): when the\n"
			"                       target wrote more than a stop that short\n"
			"                       can rescan, it is resumed at once and the\n"
			"                       scan gives no verdict (it says so; the\n"
			"                       next tries again)\n"
			"  SIGUSR1 to ztrace makes a report with a scan at once, with or\n"
			"  without --scan.\n",
			ZT_DEFAULT_SCAN_PAUSE_MAX_MS);
	if (takes & TAKES_EXPORTS)
		fprintf(stderr,
			"Exports (live bytes by allocating stack):\n"
			"      --pprof FILE     gzipped pprof heap profile (record: -o FILE)\n"
			"      --folded FILE    folded stacks, for flame-graph tools\n"
			"      --svg FILE       interactive SVG flame graph\n");
	fprintf(stderr, "\nSee ztrace(8).\n");
}

/* The TAKES_ bit of option OPT (getopt's value); 0: every mode takes it. */
static unsigned int opt_bit(int opt)
{
	switch (opt) {
	case 'i':
		return TAKES_INTERVAL;
	case 'j':
		return TAKES_JSON;
	case 'o':
		return TAKES_OUTPUT;
	case OPT_MAX_BLOCKS:
		return TAKES_MAX_BLOCKS;
	case OPT_MIN_AGE:
		return TAKES_MIN_AGE;
	case OPT_TOP:
		return TAKES_TOP;
	case OPT_MAX_STACKS:
	case OPT_STACK_DEPTH:
		return TAKES_STACKS;
	case OPT_PPROF:
	case OPT_FOLDED:
	case OPT_SVG:
		return TAKES_EXPORTS;
	case OPT_SCAN:
	case OPT_SCAN_PAUSE_MAX:
		return TAKES_SCAN;
	}
	return 0;
}

/* Refuses OPT in a mode that does not take it, naming those that do. */
static int refuse_option(int opt)
{
	const struct option *o = long_opts;
	unsigned int bit = opt_bit(opt), m, n = 0, k = 0;
	const char *sep;
	char modes[128] = "";
	size_t len = 0;

	while (o->name && o->val != opt)
		o++;
	for (m = 0; m < sizeof(mode_takes) / sizeof(mode_takes[0]); m++)
		n += !!(mode_takes[m] & bit);
	for (m = 0; m < sizeof(mode_takes) / sizeof(mode_takes[0]); m++) {
		if (!(mode_takes[m] & bit))
			continue;
		k++;
		sep = k == 1 ? "" : k == n ? " and " : ", ";
		len += snprintf(modes + len, sizeof(modes) - len, "%s%s", sep,
				mode_names[m]);
		if (len >= sizeof(modes))
			break; /* cut short: six modes never are */
	}
	p_err("'ztrace %s' does not take --%s (%s do%s): see 'ztrace %s --help'",
	      env.mode_name, o->name ? o->name : "?", modes, n == 1 ? "es" : "",
	      env.mode_name);
	return -EINVAL;
}

/* A duration in UNIT (finite, 0 to 1e9); EXAMPLE says what to give. */
static int parse_duration(const char *opt, const char *arg, const char *unit,
			  const char *example, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(arg, &end);
	if (errno || end == arg || *end || !isfinite(v) || v < 0 || v > 1e9) {
		p_err("invalid %s '%s': give a number of %s, such as %s", opt,
		      arg, unit, example);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int parse_secs(const char *opt, const char *arg, double *out)
{
	return parse_duration(opt, arg, "seconds", "1 or 0.5", out);
}

static int parse_u32(const char *opt, const char *arg, unsigned long min,
		     unsigned long max, __u32 *out)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(arg, &end, 0);
	if (errno || end == arg || *end || arg[0] == '-' || v < min ||
	    v > max) {
		p_err("invalid %s '%s': give a whole number from %lu to %lu",
		      opt, arg, min, max);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int parse_scan(const char *arg)
{
	if (!arg || !strcmp(arg, "stop")) {
		env.scan = ZT_SCAN_STOP;
		return 0;
	}
	if (!strcmp(arg, "concurrent")) {
		env.scan = ZT_SCAN_CONCURRENT;
		return 0;
	}
	if (!strcmp(arg, "snapshot")) {
		env.scan = ZT_SCAN_SNAPSHOT;
		return 0;
	}
	p_err("invalid --scan mode '%s': use --scan, --scan=stop, --scan=concurrent or --scan=snapshot",
	      arg);
	return -EINVAL;
}

/* --sample[=BYTES]: a whole number of bytes, with an optional K, M or G. */
int parse_sample(const char *arg)
{
	unsigned long long v;
	char *end;
	int shift = 0;

	env.sample = true;
	if (!arg)
		return 0;
	errno = 0;
	v = strtoull(arg, &end, 10);
	if (*end == 'K' || *end == 'k')
		shift = 10;
	else if (*end == 'M' || *end == 'm')
		shift = 20;
	else if (*end == 'G' || *end == 'g')
		shift = 30;
	if (shift)
		end++;
	if (errno || end == arg || *end || arg[0] == '-' || v == 0 ||
	    v > (1ULL << (40 - shift))) {
		p_err("invalid --sample '%s': give the mean bytes between samples, from 1 to 1T, such as --sample=512K",
		      arg);
		return -EINVAL;
	}
	env.sample_bytes = v << shift;
	return 0;
}

static int parse_one(int opt, const char *arg)
{
	__u32 v;
	int err;

	switch (opt) {
	case 'p':
		err = parse_u32("-p", arg, 1, INT_MAX, &v);
		env.pid = v;
		return err;
	case 'i':
		return parse_secs("-i", arg, &env.interval);
	case 'd':
		return parse_secs("-d", arg, &env.duration);
	case 'j':
		env.json = true;
		return 0;
	case 'o':
		env.output = arg;
		return 0;
	case 'v':
		env.verbose++;
		return 0;
	case OPT_MIN_AGE:
		return parse_secs("--min-age", arg, &env.min_age);
	case OPT_TOP:
		err = parse_u32("--top", arg, 0, INT_MAX, &v);
		env.top = v;
		return err;
	case OPT_MAX_BLOCKS:
		return parse_u32("--max-blocks", arg, 1, 1U << 28,
				 &env.max_blocks);
	case OPT_MAX_STACKS:
		return parse_u32("--max-stacks", arg, 1, 1U << 22,
				 &env.max_stacks);
	case OPT_STACK_DEPTH:
		return parse_u32("--stack-depth", arg, 1, ZT_MAX_STACK_DEPTH,
				 &env.stack_depth);
	case OPT_SAMPLE:
		return parse_sample(arg);
	case OPT_PPROF:
		env.pprof = arg;
		return 0;
	case OPT_FOLDED:
		env.folded = arg;
		return 0;
	case OPT_SVG:
		env.svg = arg;
		return 0;
	case OPT_SCAN:
		return parse_scan(arg);
	case OPT_SCAN_PAUSE_MAX:
		env.scan_pause_max_set = true;
		return parse_duration("--scan-pause-max", arg, "milliseconds",
				      "20 or 0.5 (0: no bound)",
				      &env.scan_pause_max);
	}
	return -EINVAL;
}

int parse_options(int argc, char **argv, enum zt_mode mode)
{
	int opt, err;

	env.mode = mode;
	env.mode_name = argv[0];
	optind = 1;
	/* "+": stop at the first non-option, the command to run. */
	while ((opt = getopt_long(argc, argv, "+p:i:d:jo:vh", long_opts,
				  NULL)) != -1) {
		if (opt == 'h') {
			print_mode_help(mode);
			return 1;
		}
		if (opt == '?') {
			p_err("unknown option for 'ztrace %s': see 'ztrace %s --help'",
			      env.mode_name, env.mode_name);
			return -EINVAL;
		}
		if (opt_bit(opt) & ~mode_takes[mode])
			return refuse_option(opt);
		err = parse_one(opt, optarg);
		if (err)
			return err;
	}
	if (optind < argc)
		env.cmd = &argv[optind];
	/* Samples are few: a smaller table costs ztrace less to read. */
	if (!env.max_blocks)
		env.max_blocks = env.sample ? ZT_DEFAULT_MAX_SAMPLES :
					      ZT_DEFAULT_MAX_BLOCKS;
	if (env.scan_pause_max_set && env.scan != ZT_SCAN_CONCURRENT) {
		p_err("--scan-pause-max bounds the stop of a concurrent scan: add --scan=concurrent");
		return -EINVAL;
	}
	if (!env.pid == !env.cmd) {
		p_err("%s: give either -p PID or a command to run after --, such as 'ztrace %s -- ./prog'",
		      env.pid ? "both -p and a command" : "no target",
		      env.mode_name);
		return -EINVAL;
	}
	return 0;
}
