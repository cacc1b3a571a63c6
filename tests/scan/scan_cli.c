/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * scan_cli.c - drives zscan for the tests: scans PID with the candidates
 * listed in FILE ("cand ADDR REQ USABLE TAG ..." lines, as leaky prints).
 *
 *   scan_cli [-cNPRs] [-n SCANS] [-H MS] [-S MS] [-B MS] PID FILE
 *
 *   -c      concurrent mode (one context for all the scans)
 *   -B MS   concurrent: the longest stop (opts.pause_max_ns)
 *   -s      fork snapshot (ZSCAN_F_SNAPSHOT), in either mode
 *   -S MS   snapshot: once the target runs again, print "snapshot PID
 *           CHILD" and hold MS milliseconds before scanning the copy
 *   -n N    scan N times (default 1); the verdicts printed are the last's
 *   -H MS   hold the target stopped MS milliseconds, after printing
 *           "stopped" (the signal and SIGKILL tests)
 *   -N      no copy of the heap: read block by block
 *   -R      before each scan, print "round R" and wait for a line on stdin
 *   -P      concurrent: once the running pass is done, and after each
 *           round of precleaning, print "passed R K" (scan R, round K: 0
 *           for the pass) and wait for a line on stdin (the tracker tests:
 *           the target writes meanwhile)
 *
 * Prints "blk ADDR CLASS TAG" per block, "class NAME BLOCKS BYTES" per
 * class and one "stats ..." line per scan.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "zscan.h"

struct cand_file {
	struct zscan_block *b;
	char (*tag)[48];
	size_t n;
};

static int hold_ms;
static int round_now;

static void on_log(void *arg, const char *fmt, va_list ap)
{
	fprintf(stderr, "zscan: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static void on_stopped(void *arg, pid_t pid)
{
	struct timespec ts = { hold_ms / 1000, (hold_ms % 1000) * 1000000L };

	printf("stopped %d\n", (int)pid);
	fflush(stdout);
	nanosleep(&ts, NULL);
}

static void on_snapshot(void *arg, pid_t pid, pid_t child)
{
	int ms = (int)(intptr_t)arg;
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	printf("snapshot %d %d\n", (int)pid, (int)child);
	fflush(stdout);
	nanosleep(&ts, NULL);
}

/* A line on stdin: the test's go-ahead. */
static void wait_line(void)
{
	char line[64];

	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		exit(3);
}

static void on_passed(void *arg, pid_t pid, unsigned int round)
{
	printf("passed %d %u\n", round_now, round);
	wait_line();
}

static int read_cands(const char *path, struct cand_file *cf)
{
	unsigned long long addr;
	size_t req, usable, cap = 0;
	char line[512], tag[48];
	FILE *fp = fopen(path, "r");

	if (!fp) {
		fprintf(stderr, "scan_cli: cannot open %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), fp)) {
		if (sscanf(line, "cand %llx %zu %zu %47s", &addr, &req, &usable,
			   tag) != 4)
			continue;
		if (cf->n == cap) {
			cap = cap ? cap * 2 : 1024;
			cf->b = realloc(cf->b, cap * sizeof(*cf->b));
			cf->tag = realloc(cf->tag, cap * sizeof(*cf->tag));
			if (!cf->b || !cf->tag) {
				fprintf(stderr, "scan_cli: out of memory\n");
				fclose(fp);
				return -1;
			}
		}
		memset(&cf->b[cf->n], 0, sizeof(cf->b[0]));
		cf->b[cf->n].addr = addr;
		cf->b[cf->n].req = req;
		cf->b[cf->n].size = usable;
		cf->b[cf->n].user = (uint32_t)cf->n;
		snprintf(cf->tag[cf->n], sizeof(cf->tag[0]), "%s", tag);
		cf->n++;
	}
	fclose(fp);
	return 0;
}

static void print_stats(const struct zscan_stats *st, int round)
{
	printf("stats round=%d pause_ns=%llu total_ns=%llu scanned=%llu "
	       "root=%llu stopped=%llu unreadable=%llu dirty=%llu "
	       "threads=%u fork_ns=%llu reap_ns=%llu tracker=%s "
	       "preclean=%llu absent=%llu outran=%llu outran_ns=%llu\n",
	       round, (unsigned long long)st->pause_ns,
	       (unsigned long long)st->total_ns,
	       (unsigned long long)st->scanned_bytes,
	       (unsigned long long)st->root_bytes,
	       (unsigned long long)st->stopped_bytes,
	       (unsigned long long)st->unreadable_bytes,
	       (unsigned long long)st->dirty_bytes, st->threads,
	       (unsigned long long)st->fork_ns, (unsigned long long)st->reap_ns,
	       zscan_tracker_name(st->tracker),
	       (unsigned long long)st->preclean_bytes,
	       (unsigned long long)st->absent_bytes,
	       (unsigned long long)st->outran_bytes,
	       (unsigned long long)st->outran_ns);
}

int main(int argc, char **argv)
{
	struct zscan_opts o = { .sz = sizeof(o), .log = on_log };
	struct zscan_ctx *ctx = NULL;
	struct zscan_stats st;
	struct cand_file cf = { 0 };
	int opt, scans = 1, concurrent = 0, rounds = 0, err = 0;
	pid_t pid;

	while ((opt = getopt(argc, argv, "B:cn:H:NPRsS:")) != -1) {
		switch (opt) {
		case 'B':
			o.pause_max_ns = (uint64_t)(atof(optarg) * 1e6);
			break;
		case 'c':
			concurrent = 1;
			break;
		case 'n':
			scans = atoi(optarg);
			break;
		case 'N':
			o.copy_bytes_max = UINT64_MAX;
			break;
		case 's':
			o.flags |= ZSCAN_F_SNAPSHOT;
			break;
		case 'S':
			o.flags |= ZSCAN_F_SNAPSHOT;
			o.snapshot = on_snapshot;
			o.snapshot_arg = (void *)(intptr_t)atoi(optarg);
			break;
		case 'P':
			o.passed = on_passed;
			break;
		case 'R':
			rounds = 1;
			break;
		case 'H':
			hold_ms = atoi(optarg);
			o.stopped = on_stopped;
			break;
		default:
			return 2;
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr,
			"usage: scan_cli [-cNPRs] [-n SCANS] [-H MS] [-S MS] "
			"[-B MS] PID FILE\n");
		return 2;
	}
	pid = (pid_t)atoi(argv[optind]);
	if (read_cands(argv[optind + 1], &cf))
		return 1;
	if (concurrent) {
		err = zscan_ctx_new(pid, &o, &ctx);
		if (err) {
			fprintf(stderr, "scan_cli: %s\n", strerror(-err));
			return 1;
		}
	}
	for (int r = 0; r < scans; r++) {
		round_now = r;
		if (rounds) {
			printf("round %d\n", r);
			wait_line();
		}
		err = concurrent ? zscan_ctx_scan(ctx, cf.b, cf.n, &st) :
				   zscan_scan(pid, cf.b, cf.n, &o, &st);
		if (err) {
			fprintf(stderr,
				"scan_cli: scan %d of process %d failed: %s\n",
				r, (int)pid, strerror(-err));
			printf("error %d\n", -err);
			break;
		}
		print_stats(&st, r);
	}
	if (!err) {
		for (size_t i = 0; i < cf.n; i++)
			printf("blk %#llx %s %s\n",
			       (unsigned long long)cf.b[i].addr,
			       zscan_class_name(cf.b[i].cls), cf.tag[i]);
		for (int c = 0; c < ZSCAN_NR_CLASSES; c++)
			printf("class %s %llu %llu\n", zscan_class_name(c),
			       (unsigned long long)st.blocks[c],
			       (unsigned long long)st.bytes[c]);
	}
	zscan_ctx_free(ctx);
	free(cf.b);
	free(cf.tag);
	return err ? 1 : 0;
}
