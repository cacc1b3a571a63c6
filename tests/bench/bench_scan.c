/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench_scan.c - times zscan on a running target, the three modes side by
 * side: stop-the-world, concurrent (with the write tracker it finds) and
 * fork snapshot.
 *
 *   bench_scan PID CANDS_FILE ROUNDS [MODES]
 *
 * CANDS_FILE holds struct { u64 addr, usable, req; } per block. MODES is a
 * comma-separated list of stw, concurrent, bounded (concurrent with its
 * stop bounded at 20 ms, ztrace's default --scan-pause-max) and snapshot
 * (default: stw,concurrent,snapshot). Prints one line per scan: "scan MODE
 * ROUND pause_ns total_ns scanned_bytes stopped_bytes threads fork_ns
 * dirty_bytes preclean_bytes TRACKER outran_bytes outran_ns index_ns" and,
 * for the
 * last scan of each mode, "class MODE NAME BLOCKS BYTES".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zscan.h"

struct rec {
	uint64_t addr, usable, req;
};

static void on_log(void *arg, const char *fmt, va_list ap)
{
	static int once;

	if (once++)
		return;
	fprintf(stderr, "zscan: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static void print(const char *mode, int r, const struct zscan_stats *st)
{
	printf("scan %s %d %llu %llu %llu %llu %u %llu %llu %llu %s %llu %llu "
	       "%llu\n",
	       mode, r, (unsigned long long)st->pause_ns,
	       (unsigned long long)st->total_ns,
	       (unsigned long long)st->scanned_bytes,
	       (unsigned long long)st->stopped_bytes, st->threads,
	       (unsigned long long)st->fork_ns,
	       (unsigned long long)st->dirty_bytes,
	       (unsigned long long)st->preclean_bytes,
	       zscan_tracker_name(st->tracker),
	       (unsigned long long)st->outran_bytes,
	       (unsigned long long)st->outran_ns,
	       (unsigned long long)st->index_ns);
	fflush(stdout);
}

static void classes(const char *mode, const struct zscan_stats *st)
{
	for (int c = 0; c < ZSCAN_NR_CLASSES; c++)
		printf("class %s %s %llu %llu\n", mode, zscan_class_name(c),
		       (unsigned long long)st->blocks[c],
		       (unsigned long long)st->bytes[c]);
}

/* Rounds of one mode; 0, or 1 after saying what failed. */
static int run(const char *mode, pid_t pid, struct zscan_block *b, size_t n,
	       int rounds)
{
	struct zscan_opts o = { .sz = sizeof(o), .log = on_log };
	struct zscan_ctx *ctx = NULL;
	struct zscan_stats st;
	int err = 0;

	if (strcmp(mode, "stw") && strcmp(mode, "concurrent") &&
	    strcmp(mode, "bounded") && strcmp(mode, "snapshot")) {
		fprintf(stderr, "bench_scan: no mode %s\n", mode);
		return 1;
	}
	if (!strcmp(mode, "snapshot"))
		o.flags |= ZSCAN_F_SNAPSHOT;
	if (!strcmp(mode, "bounded"))
		o.pause_max_ns = 20000000;
	if (strcmp(mode, "stw"))
		err = zscan_ctx_new(pid, &o, &ctx);
	for (int i = 0; !err && i < rounds; i++) {
		err = ctx ? zscan_ctx_scan(ctx, b, n, &st) :
			    zscan_scan(pid, b, n, &o, &st);
		if (!err)
			print(mode, i, &st);
	}
	zscan_ctx_free(ctx);
	if (err) {
		fprintf(stderr, "bench_scan: %s scan of %d failed: %s\n", mode,
			(int)pid, strerror(-err));
		return 1;
	}
	classes(mode, &st);
	return 0;
}

int main(int argc, char **argv)
{
	char modes[64] = "stw,concurrent,snapshot", *mode, *save;
	struct zscan_block *b;
	struct rec r;
	size_t n = 0, cap = 1 << 20;
	int rounds, err = 0;
	FILE *fp;
	pid_t pid;

	if (argc != 4 && argc != 5) {
		fprintf(stderr,
			"usage: bench_scan PID CANDS_FILE ROUNDS [MODES]\n");
		return 2;
	}
	pid = atoi(argv[1]);
	rounds = atoi(argv[3]);
	if (argc == 5)
		snprintf(modes, sizeof(modes), "%s", argv[4]);
	fp = fopen(argv[2], "r");
	b = malloc(cap * sizeof(*b));
	if (!fp || !b) {
		perror(argv[2]);
		return 1;
	}
	while (fread(&r, sizeof(r), 1, fp) == 1) {
		if (n == cap) {
			cap *= 2;
			b = realloc(b, cap * sizeof(*b));
			if (!b)
				return 1;
		}
		memset(&b[n], 0, sizeof(*b));
		b[n].addr = r.addr;
		b[n].size = r.usable;
		b[n].req = r.req;
		n++;
	}
	fclose(fp);
	printf("blocks %zu\n", n);
	for (mode = strtok_r(modes, ",", &save); mode && !err;
	     mode = strtok_r(NULL, ",", &save))
		err = run(mode, pid, b, n, rounds);
	free(b);
	return err;
}
