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
 * writing into values (a busy server) until stdin closes; "exit": exit at
 * once, for valgrind to judge the same heap.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* A busy server: keeps writing counters into entries. */
static void *mutator(void *arg)
{
	uint64_t s = 1;

	while (!stop) {
		s = s * 6364136223846793005ULL + 1442695040888963407ULL;
		struct entry **b = tables[(s >> 33) % ntables];
		struct entry *e = b[(s >> 13) % BUCKETS_PER_ARRAY];

		if (e)
			e->hits++;
	}
	return arg;
}

int main(int argc, char **argv)
{
	pthread_t t;
	char c;

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
	while (read(0, &c, 1) > 0)
		;
	stop = 1;
	pthread_join(t, NULL);
	return 0;
}
