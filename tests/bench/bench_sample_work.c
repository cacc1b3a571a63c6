/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench_sample_work.c - the malloc-heavy work bench_sample.py times:
 * THREADS threads share OPS zmalloc() calls, each thread in batches of
 * BATCH allocations of a fixed mix of sizes (16-256 bytes mostly, 1 in 16
 * up to 4 KiB) then their zfree().
 *
 * The work runs in phases, one per line "go OPS" on stdin, so that the
 * benchmark can time untraced and traced phases in the same process (same
 * heap layout, same pages) and attach or detach a tracer between them
 * with -p. It prints "ZT_BENCH ready pid=N" first, then after each phase,
 * measured inside the process:
 *
 *   ZT_BENCH ops=N bytes=B wall_ns=W cpu_ns=C
 *
 * bytes: requested bytes allocated; cpu_ns: user + system time of every
 * thread over the phase (getrusage), the BPF programs' run time included.
 * "go OPS MIBPS" holds each thread to its share of MIBPS MiB a second of
 * allocation, sleeping between batches (a service's pace, not a
 * benchmark's).
 *
 * "toggle OPS PAIRS ADDR" runs PAIRS pairs of phases of OPS operations,
 * with the 16-bit word at ADDR (sample_alloc's semaphore, as the kernel
 * set it) as it is in one phase and 0 in the other, the order
 * alternating, and puts it back; the threads stay up across phases, so a
 * phase costs no thread start. After each pair it prints
 *
 *   ZT_BENCH pair ops=N on_ns=A off_ns=B on_bytes=C off_bytes=D
 *
 * on_ns and off_ns: the threads' CPU time over the phase
 * (CLOCK_THREAD_CPUTIME_ID, barrier waits left out). It exits at end of
 * input or on a line "quit".
 *
 * Usage: bench_sample_work THREADS
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "zmalloc.h"

#define BATCH 256

struct worker {
	pthread_t th;
	long ops;
	double ns_per_byte; /* the pace; 0: as fast as it goes */
	unsigned int seed;
	unsigned long long bytes;
	unsigned long long cpu_ns; /* toggle: this thread's, last phase */
	struct toggle *tg; /* toggle: the phases it takes part in */
};

/* "toggle": the phases' start and end, shared by the threads and main. */
struct toggle {
	pthread_barrier_t start, done;
	long ops; /* per thread and phase */
	int stop;
};

static unsigned long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static unsigned long long cpu_ns(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ULL +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ULL;
}

static size_t next_size(unsigned int *seed)
{
	*seed = *seed * 1103515245U + 12345U;
	if (((*seed >> 16) & 15) == 0)
		return 512 + (*seed >> 8) % 3584;
	return 16 + (*seed >> 8) % 241;
}

/* Sleeps until the thread's bytes so far are due at its pace. */
static void keep_pace(const struct worker *w, unsigned long long t0)
{
	unsigned long long due =
		t0 + (unsigned long long)(w->bytes * w->ns_per_byte);
	struct timespec ts = { .tv_sec = due / 1000000000ULL,
			       .tv_nsec = due % 1000000000ULL };

	if (due > now_ns())
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

static unsigned long long thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* The operations run_ops() runs for OPS: whole batches. */
static long ops_run(long ops)
{
	return (ops + BATCH - 1) / BATCH * BATCH;
}

/* W's OPS allocations, in batches, then their frees, at W's pace. */
static void run_ops(struct worker *w, long ops)
{
	unsigned long long t0 = now_ns();
	void *v[BATCH];
	long done;
	int i;

	for (done = 0; done < ops; done += BATCH) {
		for (i = 0; i < BATCH; i++) {
			size_t n = next_size(&w->seed);

			w->bytes += n;
			v[i] = zmalloc(n);
		}
		for (i = 0; i < BATCH; i++)
			zfree(v[i]);
		if (w->ns_per_byte)
			keep_pace(w, t0);
	}
}

static void *work(void *arg)
{
	struct worker *w = arg;

	run_ops(w, w->ops);
	return NULL;
}

static void *toggle_work(void *arg)
{
	struct worker *w = arg;
	unsigned long long c0;

	for (;;) {
		pthread_barrier_wait(&w->tg->start);
		if (w->tg->stop)
			return NULL;
		c0 = thread_cpu_ns();
		run_ops(w, w->tg->ops);
		w->cpu_ns = thread_cpu_ns() - c0;
		pthread_barrier_wait(&w->tg->done);
	}
}

/* One phase of a toggle: the threads' CPU time and bytes. */
static void toggle_phase(struct worker *w, int nthreads,
			 unsigned long long *cpu, unsigned long long *bytes)
{
	int i;

	for (i = 0; i < nthreads; i++)
		w[i].bytes = 0;
	pthread_barrier_wait(&w->tg->start);
	pthread_barrier_wait(&w->tg->done);
	*cpu = *bytes = 0;
	for (i = 0; i < nthreads; i++) {
		*cpu += w[i].cpu_ns;
		*bytes += w[i].bytes;
	}
}

static int toggle(struct worker *w, int nthreads, long ops, long pairs,
		  volatile uint16_t *word)
{
	unsigned long long cpu[2], bytes[2];
	uint16_t set = *word;
	struct toggle tg = { .ops = ops / nthreads };
	long k;
	int i, j, on;

	if (pthread_barrier_init(&tg.start, NULL, nthreads + 1) ||
	    pthread_barrier_init(&tg.done, NULL, nthreads + 1))
		return 1;
	for (i = 0; i < nthreads; i++) {
		w[i].tg = &tg;
		w[i].ns_per_byte = 0;
		if (pthread_create(&w[i].th, NULL, toggle_work, &w[i]))
			return 1;
	}
	for (k = 0; k < pairs; k++) {
		for (j = 0; j < 2; j++) {
			on = (k & 1) ? !j : j;
			*word = on ? set : 0;
			toggle_phase(w, nthreads, &cpu[on], &bytes[on]);
		}
		printf("ZT_BENCH pair ops=%ld on_ns=%llu off_ns=%llu on_bytes=%llu off_bytes=%llu\n",
		       ops_run(tg.ops) * nthreads, cpu[1], cpu[0], bytes[1],
		       bytes[0]);
	}
	*word = set;
	tg.stop = 1;
	pthread_barrier_wait(&tg.start);
	for (i = 0; i < nthreads; i++)
		pthread_join(w[i].th, NULL);
	pthread_barrier_destroy(&tg.start);
	pthread_barrier_destroy(&tg.done);
	fflush(stdout);
	return 0;
}

/* One phase: the threads' work, timed; 0, or 1 if a thread failed. */
static int phase(struct worker *w, int nthreads, long ops, double mibps)
{
	unsigned long long t0, c0, wall, cpu, bytes = 0;
	int i;

	t0 = now_ns();
	c0 = cpu_ns();
	for (i = 0; i < nthreads; i++) {
		w[i].ops = ops / nthreads;
		w[i].ns_per_byte =
			mibps > 0 ? 1e9 * nthreads / (mibps * 1048576) : 0;
		w[i].bytes = 0;
		if (pthread_create(&w[i].th, NULL, work, &w[i]))
			return 1;
	}
	for (i = 0; i < nthreads; i++) {
		pthread_join(w[i].th, NULL);
		bytes += w[i].bytes;
	}
	wall = now_ns() - t0;
	cpu = cpu_ns() - c0;
	printf("ZT_BENCH ops=%ld bytes=%llu wall_ns=%llu cpu_ns=%llu\n",
	       ops_run(ops / nthreads) * nthreads, bytes, wall, cpu);
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	int nthreads = argc > 1 ? atoi(argv[1]) : 1, i, err = 0;
	struct worker *w;
	unsigned long addr;
	double mibps;
	char line[128];
	long ops, pairs;

	if (nthreads < 1)
		return 2;
	w = calloc(nthreads, sizeof(*w));
	if (!w)
		return 1;
	/* Each thread keeps its seed: every phase allocates new sizes. */
	for (i = 0; i < nthreads; i++)
		w[i].seed = 42 + i;
	printf("ZT_BENCH ready pid=%d\n", (int)getpid());
	fflush(stdout);
	while (!err && fgets(line, sizeof(line), stdin)) {
		mibps = 0;
		if (sscanf(line, "toggle %ld %ld %lx", &ops, &pairs, &addr) ==
		    3) {
			err = ops < BATCH * nthreads ?
				      2 :
				      toggle(w, nthreads, ops, pairs,
					     (volatile uint16_t *)addr);
			continue;
		}
		if (sscanf(line, "go %ld %lf", &ops, &mibps) < 1)
			break;
		if (ops < BATCH * nthreads) {
			err = 2;
			break;
		}
		err = phase(w, nthreads, ops, mibps);
	}
	free(w);
	return err;
}
