/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench_scan_heap.c - a target with MIB mebibytes of live heap shaped like
 * a key-value server's: a hash table of bucket arrays (16 KiB each), each
 * bucket a short chain of entries, each entry a key string and a value
 * (a string, or a short list of nodes). About 1% of the entries are
 * dropped on purpose (definitely lost, their key and value indirectly),
 * so the verdicts have something to find.
 *
 *   bench_scan_heap MIB CANDS_FILE wait|exit
 *
 * The candidates (every block, as ztrace would know them) go to
 * CANDS_FILE as struct { u64 addr, usable, req; }. "wait": a thread keeps
 * writing into entries (a busy server) until stdin closes; "exit": exit at
 * once, for valgrind to judge the same heap.
 *
 * The writer goes as fast as it can (millions of writes a second, all over
 * the heap: within half a second it has written most of its pages), or,
 * after a line "rate N" on stdin, N writes a second, spread evenly (a
 * server doing N updates a second to random keys); "rate 0" is full speed
 * again. Each rate line is answered "rate N".
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "zmalloc.h"

#define BUCKETS_PER_ARRAY 2048

struct rec {
	uint64_t addr, usable, req;
};

struct entry {
	struct entry *next;
	char *key;
	void *val;
	uint64_t hash;
	uint64_t hits;
	uint64_t ttl; /* 48 bytes: a multiple of 16, see tests/scan/leaky.c */
};

struct lnode {
	struct lnode *next;
	uint64_t data[3];
};

static FILE *cands;
static uint64_t seed = 88172645463325252ULL;
static size_t live;
struct entry ***tables; /* extern: a root */
static size_t ntables;
static volatile int stop;
static volatile long rate; /* writes a second; 0: as fast as it can */

static uint64_t rnd(void)
{
	seed ^= seed << 13;
	seed ^= seed >> 7;
	seed ^= seed << 17;
	return seed;
}

static void *alloc(size_t req)
{
	void *p = zmalloc(req);
	struct rec r = { (uintptr_t)p, zmalloc_usable_size(p), req };

	fwrite(&r, sizeof(r), 1, cands);
	live += req + 16; /* not usable: the same heap under valgrind */
	return p;
}

/* A string of text-like bytes: not pointers. */
static char *mkstr(size_t len)
{
	char *s = alloc(len);

	for (size_t i = 0; i + 1 < len; i++)
		s[i] = 'a' + (char)(rnd() % 26);
	s[len - 1] = '\0';
	return s;
}

static void *mkval(void)
{
	uint64_t r = rnd() % 100;
	struct lnode *head = NULL, *n;

	if (r < 70)
		return mkstr(16 + 16 * (rnd() % 24)); /* 16..384 bytes */
	if (r < 97) {
		for (int i = 0, k = 1 + rnd() % 4; i < k; i++) {
			n = alloc(sizeof(*n));
			n->next = head;
			n->data[0] = rnd();
			n->data[1] = rnd() & 0xffff;
			n->data[2] = i;
			head = n;
		}
		return head;
	}
	return mkstr(1024 + 1024 * (rnd() % 8)); /* 1..8 KiB */
}

static void build(size_t bytes)
{
	size_t cap = 64;

	tables = alloc(cap * sizeof(*tables));
	while (live < bytes) {
		struct entry **b = alloc(BUCKETS_PER_ARRAY * sizeof(*b));

		memset(b, 0, BUCKETS_PER_ARRAY * sizeof(*b));
		if (ntables == cap) {
			cap *= 2;
			tables = zrealloc(tables, cap * sizeof(*tables));
			/* The old block is freed: it is no candidate now. */
			fseek(cands, 0, SEEK_SET);
			struct rec r = { (uintptr_t)tables,
					 zmalloc_usable_size(tables),
					 cap * sizeof(*tables) };
			fwrite(&r, sizeof(r), 1, cands);
			fseek(cands, 0, SEEK_END);
		}
		tables[ntables++] = b;
		for (size_t i = 0;
		     i < BUCKETS_PER_ARRAY * 3 / 2 && live < bytes; i++) {
			struct entry *e = alloc(sizeof(*e));
			size_t h = rnd() % BUCKETS_PER_ARRAY;

			e->key = mkstr(16 + 16 * (rnd() % 3));
			e->val = mkval();
			e->hash = h;
			e->hits = 0;
			e->ttl = rnd() & 0xffffff;
			if (rnd() % 100 == 0) {
				e->next = NULL; /* dropped: a leak */
				continue;
			}
			e->next = b[h];
			b[h] = e;
		}
	}
}

/* Sleeps until the next batch of writes is due at the current rate. */
static void pace(struct timespec *due, long batch)
{
	long r = rate;

	if (!r) {
		clock_gettime(CLOCK_MONOTONIC, due);
		return;
	}
	due->tv_nsec += batch * 1000000000L / r;
	while (due->tv_nsec >= 1000000000L) {
		due->tv_nsec -= 1000000000L;
		due->tv_sec++;
	}
	clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, due, NULL);
}

/* A busy server: keeps writing counters into entries. */
static void *mutator(void *arg)
{
	struct timespec due;
	uint64_t s = 1;

	clock_gettime(CLOCK_MONOTONIC, &due);
	while (!stop) {
		for (int i = 0; i < 64; i++) {
			s = s * 6364136223846793005ULL + 1442695040888963407ULL;
			struct entry **b = tables[(s >> 33) % ntables];
			struct entry *e = b[(s >> 13) % BUCKETS_PER_ARRAY];

			if (e)
				e->hits++;
		}
		pace(&due, 64);
	}
	return arg;
}

int main(int argc, char **argv)
{
	char line[64];
	pthread_t t;

	if (argc != 4) {
		fprintf(stderr,
			"usage: bench_scan_heap MIB CANDS_FILE wait|exit\n");
		return 2;
	}
	cands = fopen(argv[2], "w");
	if (!cands) {
		perror(argv[2]);
		return 1;
	}
	build((size_t)atol(argv[1]) << 20);
	fclose(cands);
	if (!strcmp(argv[3], "exit"))
		exit(0);
	pthread_create(&t, NULL, mutator, NULL);
	printf("ready %d %zu\n", (int)getpid(), ntables);
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		if (sscanf(line, "rate %ld", &rate) == 1) {
			printf("rate %ld\n", rate);
			fflush(stdout);
		}
	}
	stop = 1;
	pthread_join(t, NULL);
	return 0;
}
