/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench_scan.c - times zscan on a running target, the three modes side by
 * side: stop-the-world, concurrent (soft-dirty) and fork snapshot.
 *
 *   bench_scan PID CANDS_FILE ROUNDS
 *
 * CANDS_FILE holds struct { u64 addr, usable, req; } per block. Prints one
 * line per scan: "scan MODE ROUND pause_ns total_ns scanned_bytes
 * stopped_bytes threads fork_ns" and, for the last scan of each mode,
 * "class MODE NAME BLOCKS BYTES".
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
	printf("scan %s %d %llu %llu %llu %llu %u %llu\n", mode, r,
	       (unsigned long long)st->pause_ns,
	       (unsigned long long)st->total_ns,
	       (unsigned long long)st->scanned_bytes,
	       (unsigned long long)st->stopped_bytes, st->threads,
	       (unsigned long long)st->fork_ns);
	fflush(stdout);
}

static void classes(const char *mode, const struct zscan_stats *st)
{
	for (int c = 0; c < ZSCAN_NR_CLASSES; c++)
		printf("class %s %s %llu %llu\n", mode, zscan_class_name(c),
		       (unsigned long long)st->blocks[c],
		       (unsigned long long)st->bytes[c]);
}

int main(int argc, char **argv)
{
	struct zscan_opts o = { .sz = sizeof(o), .log = on_log };
	struct zscan_block *b;
	struct zscan_stats st;
	struct zscan_ctx *ctx;
	struct rec r;
	size_t n = 0, cap = 1 << 20;
	int rounds, err;
	FILE *fp;
	pid_t pid;

	if (argc != 4) {
		fprintf(stderr, "usage: bench_scan PID CANDS_FILE ROUNDS\n");
		return 2;
	}
	pid = atoi(argv[1]);
	rounds = atoi(argv[3]);
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
	for (int i = 0; i < rounds; i++) {
		err = zscan_scan(pid, b, n, &o, &st);
		if (err) {
			fprintf(stderr, "bench_scan: scan of %d failed: %s\n",
				(int)pid, strerror(-err));
			return 1;
		}
		print("stw", i, &st);
	}
	classes("stw", &st);
	err = zscan_ctx_new(pid, &o, &ctx);
	for (int i = 0; !err && i < rounds; i++) {
		err = zscan_ctx_scan(ctx, b, n, &st);
		if (!err)
			print("concurrent", i, &st);
	}
	if (err) {
		fprintf(stderr,
			"bench_scan: concurrent scan of %d failed: %s\n",
			(int)pid, strerror(-err));
		return 1;
	}
	classes("concurrent", &st);
	zscan_ctx_free(ctx);
	o.flags |= ZSCAN_F_SNAPSHOT;
	err = zscan_ctx_new(pid, &o, &ctx);
	for (int i = 0; !err && i < rounds; i++) {
		err = zscan_ctx_scan(ctx, b, n, &st);
		if (!err)
			print("snapshot", i, &st);
	}
	if (err) {
		fprintf(stderr, "bench_scan: snapshot scan of %d failed: %s\n",
			(int)pid, strerror(-err));
		return 1;
	}
	classes("snapshot", &st);
	zscan_ctx_free(ctx);
	free(b);
	return 0;
}
