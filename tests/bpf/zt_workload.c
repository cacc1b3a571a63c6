/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * zt_workload.c - a deterministic zmalloc workload for the BPF tests: every
 * allocation is known in advance (tests/bpf/expect.py holds the figures).
 *
 * Usage: zt_workload [--wait] SCENARIO [ARG]
 *
 *   basic     pre-attach blocks, a table of sizes freed in a known order,
 *             leaks from leak_alpha, leak_beta and (second thread)
 *             leak_in_thread, blocks moved by realloc_grow, cross-thread
 *             frees
 *   noleak    the same, with every leak freed before the end
 *   many N    N blocks of 32 bytes live at once, then all freed
 *   exit N    exit with status N; "signal N": die of signal N
 *   loop      allocate and free until stdin closes (attach/detach tests)
 *   missed    free a block behind zfree's back (zlibc_free, no probe),
 *             so that the next allocation reuses a still-tracked address
 *   sample    the shape the --sample tests know: churn of six sizes, all
 *             freed, and leaks of 64 MiB from leak_sample_a and 96 MiB
 *             from leak_sample_b (second thread), in small blocks; after
 *             its last sync point, with the tracer gone, it counts the
 *             blocks that still land in the sample region ("after" line)
 *   churn     the sample scenario's churn alone: 704 MiB, all freed
 *   spread N  N rounds of a block of round pages and a 4 KiB block just
 *             above it, both freed: with every block sampled, N addresses
 *             of samples, never more than 2 live
 *   deep N [K]  K 4 KiB blocks (default 1) leaked from deep_frame, N calls
 *             of it deep, all from one stack
 *   reuse N   after sync "start", N blocks of 64 bytes allocated and freed
 *             (sync "freed"), then N more held (sync "held", which also
 *             prints reused=K: K of them at an address of the first N;
 *             with every block sampled but the thread's first, at those
 *             of the first N - 1 samples), then freed (sync "end")
 *
 * At each sync point it prints "ZT_SYNC <name> used_memory=<bytes> pid=<pid>"
 * on stdout and, with --wait, reads a line from stdin before going on.
 */
#include <pthread.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zmalloc.h"

#define NOINLINE __attribute__((noinline))

static int wait_sync;

static void sync_point(const char *name)
{
	char line[64];

	printf("ZT_SYNC %s used_memory=%zu pid=%d\n", name,
	       zmalloc_used_memory(), (int)getpid());
	fflush(stdout);
	if (wait_sync && !fgets(line, sizeof(line), stdin))
		exit(3);
}

/* Keeps the compiler from dropping stores to blocks we never read. */
static void touch(void *p, size_t n)
{
	memset(p, 0x5a, n);
	__asm__ volatile("" : : "r"(p) : "memory");
}

/* Allocated before a -p attach, freed after it. */
#define PRE_BLOCKS 7
#define PRE_SIZE 48
static void *pre[PRE_BLOCKS];

static NOINLINE void pre_alloc(void)
{
	int i;

	for (i = 0; i < PRE_BLOCKS; i++)
		pre[i] = zmalloc(PRE_SIZE);
}

static NOINLINE void pre_free(void)
{
	int i;

	for (i = 0; i < PRE_BLOCKS; i++)
		zfree(pre[i]);
}

/* The size table, allocated through several API families, all freed. */
struct size_class {
	size_t size;
	int n;
};

static const struct size_class sizes[] = {
	{ 8, 10 },   { 24, 20 },  { 100, 30 },
	{ 1000, 5 }, { 4096, 3 }, { 70000, 2 },
};

#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))
#define MAX_PER_SIZE 30

static void *table[NSIZES][MAX_PER_SIZE];

static NOINLINE void *alloc_one(size_t k)
{
	static char text[1000];
	size_t size = sizes[k].size, usable;

	switch (k) {
	case 1:
		return zcalloc(size);
	case 2:
		return zcalloc_num(4, size / 4);
	case 3:
		memset(text, 'x', size - 1);
		return zstrdup(text);
	case 4:
		return ztrymalloc(size);
	case 5:
		return zmalloc_usable(size, &usable);
	default:
		return zmalloc(size);
	}
}

static NOINLINE void size_pass_alloc(void)
{
	size_t k;
	int i;

	for (k = 0; k < NSIZES; k++)
		for (i = 0; i < sizes[k].n; i++)
			table[k][i] = alloc_one(k);
}

/* Frees in a known order: largest sizes first, each row backwards. */
static NOINLINE void size_pass_free(void)
{
	size_t k, usable;
	int i;

	for (k = NSIZES; k-- > 0;) {
		for (i = sizes[k].n; i-- > 0;) {
			if (k == 0)
				zfree_usable(table[k][i], &usable);
			else if (k == 1)
				zfree_with_size(table[k][i],
						zmalloc_size(table[k][i]));
			else
				zfree(table[k][i]);
		}
	}
}

/* Leaks with known byte counts. */
#define ALPHA_BLOCKS 3
#define ALPHA_SIZE 1000
#define BETA_BLOCKS 5
#define BETA_SIZE 64
static void *alpha[ALPHA_BLOCKS], *beta[BETA_BLOCKS];

static NOINLINE void leak_alpha(void)
{
	int i;

	for (i = 0; i < ALPHA_BLOCKS; i++) {
		alpha[i] = zmalloc(ALPHA_SIZE);
		touch(alpha[i], ALPHA_SIZE);
	}
}

static NOINLINE void leak_beta(void)
{
	int i;

	for (i = 0; i < BETA_BLOCKS; i++)
		beta[i] = zmalloc(BETA_SIZE);
}

/* realloc moves: born in realloc_source, live as realloc_grow's. */
#define MOVED_BLOCKS 4
#define MOVED_FROM 16
#define MOVED_TO 20000
static void *moved[MOVED_BLOCKS];

static NOINLINE void realloc_source(void)
{
	int i;

	for (i = 0; i < MOVED_BLOCKS; i++)
		moved[i] = zmalloc(MOVED_FROM);
}

static NOINLINE void realloc_grow(void)
{
	int i;

	for (i = 0; i < MOVED_BLOCKS; i++)
		moved[i] = zrealloc(moved[i], MOVED_TO);
}

/* zrealloc(NULL, n) fires alloc, zrealloc(p, 0) fires free. */
static NOINLINE void realloc_edges(void)
{
	void *p = zrealloc(NULL, 200);

	touch(p, 200);
	p = zrealloc(p, 0);
	if (p)
		abort();
}

/* The second thread: blocks main frees, and a leak of its own. */
#define SHARED_BLOCKS 50
#define SHARED_SIZE 256
#define THREAD_LEAK_BLOCKS 2
#define THREAD_LEAK_SIZE 5000
static void *shared[SHARED_BLOCKS], *thread_leak[THREAD_LEAK_BLOCKS];

static NOINLINE void leak_in_thread(void)
{
	int i;

	for (i = 0; i < THREAD_LEAK_BLOCKS; i++)
		thread_leak[i] = zmalloc(THREAD_LEAK_SIZE);
}

static NOINLINE void *thread_main(void *arg)
{
	int i;

	for (i = 0; i < SHARED_BLOCKS; i++)
		shared[i] = zmalloc(SHARED_SIZE);
	leak_in_thread();
	return arg;
}

static NOINLINE void cross_thread(void)
{
	pthread_t th;
	int i;

	if (pthread_create(&th, NULL, thread_main, NULL))
		abort();
	pthread_join(th, NULL);
	for (i = 0; i < SHARED_BLOCKS; i++)
		zfree(shared[i]);
}

static NOINLINE void free_leaks(void)
{
	int i;

	for (i = 0; i < ALPHA_BLOCKS; i++)
		zfree(alpha[i]);
	for (i = 0; i < BETA_BLOCKS; i++)
		zfree(beta[i]);
	for (i = 0; i < MOVED_BLOCKS; i++)
		zfree(moved[i]);
	for (i = 0; i < THREAD_LEAK_BLOCKS; i++)
		zfree(thread_leak[i]);
}

static int run_basic(bool leak)
{
	pre_alloc();
	sync_point("pre");
	size_pass_alloc();
	size_pass_free();
	leak_alpha();
	leak_beta();
	realloc_source();
	realloc_grow();
	realloc_edges();
	pre_free();
	cross_thread();
	if (!leak)
		free_leaks();
	sync_point("end");
	return 0;
}

/* N blocks of SIZE bytes into v, sync point HELD, then all freed. */
static void hold_then_free(void **v, long n, size_t size, const char *held)
{
	long i;

	for (i = 0; i < n; i++)
		v[i] = zmalloc(size);
	sync_point(held);
	for (i = 0; i < n; i++)
		zfree(v[i]);
}

static NOINLINE int run_many(long n)
{
	void **v = calloc(n, sizeof(*v));

	if (!v)
		return 1;
	sync_point("pre");
	hold_then_free(v, n, 32, "full");
	free(v);
	sync_point("end");
	return 0;
}

/* A free the probes never see: the next block of that size reuses it. */
static NOINLINE int run_missed(void)
{
	void *p = zmalloc(40), *q;

	zlibc_free(p);
	q = zmalloc(40);
	printf("ZT_SYNC missed reused=%d used_memory=%zu pid=%d\n", p == q,
	       zmalloc_used_memory(), (int)getpid());
	zfree(q);
	return 0;
}

/* sample: each size's blocks, allocated and freed in batches. */
static const struct size_class churn[] = {
	{ 24, 2796202 }, { 200, 671088 }, { 1500, 89478 },
	{ 6000, 22369 }, { 40000, 3355 }, { 300000, 447 },
};

#define CHURN_BATCH 1024
#define SAMPLE_A_BLOCKS 262144 /* 64 MiB */
#define SAMPLE_A_SIZE 256
#define SAMPLE_B_BLOCKS 196608 /* 96 MiB */
#define SAMPLE_B_SIZE 512

static void *batch[CHURN_BATCH];

static NOINLINE void churn_pass(void)
{
	size_t k;
	int done, i, n;

	for (k = 0; k < sizeof(churn) / sizeof(churn[0]); k++) {
		for (done = 0; done < churn[k].n; done += n) {
			n = churn[k].n - done;
			n = n < CHURN_BATCH ? n : CHURN_BATCH;
			for (i = 0; i < n; i++)
				batch[i] = zmalloc(churn[k].size);
			for (i = 0; i < n; i++)
				zfree(batch[i]);
		}
	}
}

static NOINLINE void leak_sample_a(void)
{
	int i;

	for (i = 0; i < SAMPLE_A_BLOCKS; i++)
		zmalloc(SAMPLE_A_SIZE);
}

static NOINLINE void leak_sample_b(void)
{
	int i;

	for (i = 0; i < SAMPLE_B_BLOCKS; i++)
		zmalloc(SAMPLE_B_SIZE);
}

static NOINLINE void *sample_thread(void *arg)
{
	leak_sample_b();
	return arg;
}

/* The largest anonymous mapping: the sample region, once reserved. */
static void largest_anon(unsigned long *lo, unsigned long *hi)
{
	char line[512], path[256];
	unsigned long a, b;
	FILE *f = fopen("/proc/self/maps", "r");

	*lo = *hi = 0;
	while (f && fgets(line, sizeof(line), f)) {
		path[0] = '\0';
		if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %255s", &a, &b,
			   path) < 2 ||
		    path[0])
			continue;
		if (b - a > *hi - *lo) {
			*lo = a;
			*hi = b;
		}
	}
	if (f)
		fclose(f);
}

/* With no tracer left, no new block may be sampled. */
static NOINLINE void sample_after(void)
{
	unsigned long lo, hi, in = 0;
	int i;

	largest_anon(&lo, &hi);
	for (i = 0; i < 100000; i++) {
		void *p = zmalloc(SAMPLE_A_SIZE);

		in += (unsigned long)p - lo < hi - lo;
		zfree(p);
	}
	printf("ZT_SYNC after sampled=%lu region_mib=%lu sample_bytes=%zu pid=%d\n",
	       in, (hi - lo) >> 20, zmalloc_get_sample_bytes(), (int)getpid());
	fflush(stdout);
}

static NOINLINE int run_sample(void)
{
	pthread_t th;

	sync_point("pre");
	churn_pass();
	leak_sample_a();
	if (pthread_create(&th, NULL, sample_thread, NULL))
		abort();
	pthread_join(th, NULL);
	printf("ZT_SYNC rate sample_bytes=%zu pid=%d\n",
	       zmalloc_get_sample_bytes(), (int)getpid());
	sync_point("end");
	sample_after();
	return 0;
}

/*
 * spread: the sample heap gives a block of more than one page the lowest
 * free pages, so the second block lands one page higher each round. (A
 * one-page sample would take the page its thread freed last.)
 */
static NOINLINE int run_spread(long rounds)
{
	long i;

	for (i = 0; i < rounds; i++) {
		void *big = zmalloc((size_t)i * 4096 + 1);
		void *small = zmalloc(4096); /* two pages, with its header */

		zfree(big);
		zfree(small);
	}
	sync_point("end");
	return 0;
}

/* N frames of it, then the leak: the sampled stack tests. */
static NOINLINE void *deep_frame(long n)
{
	void *p = n > 1 ? deep_frame(n - 1) : zmalloc(4096);

	__asm__ volatile("" ::: "memory"); /* a frame each, no tail call */
	return p;
}

static NOINLINE int run_deep(long n, long k)
{
	long i;

	/* A thread's first allocation starts its sampler's count. */
	zfree(zmalloc(16));
	for (i = 0; i < k; i++)
		if (!deep_frame(n))
			return 1;
	sync_point("end");
	return 0;
}

/* Until stdin closes: the attach and detach tests. */
static NOINLINE int run_loop(void)
{
	char line[64];
	void *p;

	printf("ZT_SYNC loop used_memory=%zu pid=%d\n", zmalloc_used_memory(),
	       (int)getpid());
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		p = zmalloc(128);
		zfree(p);
		printf("ZT_SYNC tick used_memory=%zu pid=%d\n",
		       zmalloc_used_memory(), (int)getpid());
		fflush(stdout);
	}
	return 0;
}

static int run_reuse(long n)
{
	void **v = calloc(n, sizeof(*v)), **old = calloc(n, sizeof(*old));
	long i, j, reused = 0;
	char held[32];

	if (!v || !old)
		return 1;
	sync_point("start");
	for (i = 0; i < n; i++)
		old[i] = zmalloc(64);
	for (i = 0; i < n; i++)
		zfree(old[i]);
	sync_point("freed");
	for (i = 0; i < n; i++) {
		v[i] = zmalloc(64);
		for (j = 0; j < n && old[j] != v[i]; j++)
			;
		reused += j < n;
	}
	snprintf(held, sizeof(held), "held reused=%ld", reused);
	sync_point(held);
	for (i = 0; i < n; i++)
		zfree(v[i]);
	free(v);
	free(old);
	sync_point("end");
	return 0;
}

int main(int argc, char **argv)
{
	int arg = 1;

	if (arg < argc && !strcmp(argv[arg], "--wait")) {
		wait_sync = 1;
		arg++;
	}
	if (arg >= argc)
		goto out_usage;
	if (!strcmp(argv[arg], "basic"))
		return run_basic(true);
	if (!strcmp(argv[arg], "noleak"))
		return run_basic(false);
	if (!strcmp(argv[arg], "many") && arg + 1 < argc)
		return run_many(atol(argv[arg + 1]));
	if (!strcmp(argv[arg], "exit") && arg + 1 < argc)
		return atoi(argv[arg + 1]);
	if (!strcmp(argv[arg], "signal") && arg + 1 < argc) {
		void *p = zmalloc(10);

		touch(p, 10);
		raise(atoi(argv[arg + 1]));
		return 0;
	}
	if (!strcmp(argv[arg], "loop"))
		return run_loop();
	if (!strcmp(argv[arg], "missed"))
		return run_missed();
	if (!strcmp(argv[arg], "sample"))
		return run_sample();
	if (!strcmp(argv[arg], "spread") && arg + 1 < argc)
		return run_spread(atol(argv[arg + 1]));
	if (!strcmp(argv[arg], "deep") && arg + 1 < argc)
		return run_deep(atol(argv[arg + 1]),
				arg + 2 < argc ? atol(argv[arg + 2]) : 1);
	if (!strcmp(argv[arg], "reuse") && arg + 1 < argc)
		return run_reuse(atol(argv[arg + 1]));
	if (!strcmp(argv[arg], "churn")) {
		churn_pass();
		sync_point("end");
		return 0;
	}
out_usage:
	fprintf(stderr,
		"usage: zt_workload [--wait] basic|noleak|many N|exit N|signal N|loop|missed|sample|churn|spread N|deep N [K]|reuse N\n");
	return 2;
}
