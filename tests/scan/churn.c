/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * churn.c - a threaded target that keeps allocating, freeing and moving
 * pointers while it is scanned, and checks its own data all along.
 *
 * NODES long-lived nodes sit on two lists; a mover thread moves them
 * from one list to the other without pause (the pointer to a node is, for
 * a moment, only in the mover's registers), two threads allocate, fill,
 * check and free short-lived blocks, and a spawner starts short-lived
 * threads, so threads appear while the scanner seizes them. The nodes are
 * the candidates: every scan must find each one still reachable.
 *
 * stdin: "check" answers "ok MOVES ALLOCS THREADS" or "bad WHAT"; end of
 * file stops the threads, checks once more and exits 0, or 3 if anything
 * was ever found corrupt.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zmalloc.h"

#define NODES 2000
#define RING 512
#define MAGIC 0x6e6f64656e6f6465ULL

struct node {
	struct node *next;
	uint64_t magic;
	uint64_t id;
	uint64_t sum; /* magic ^ id */
	char pad[32];
};

struct tmp {
	size_t len;
	uint8_t fill;
	uint8_t data[];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
struct node *list_a, *list_b;
static struct tmp *ring[2][RING];
static volatile int stop;
static volatile int corrupt;
static const char *corrupt_what = "";
static uint64_t moves, allocs, threads_run;

static void fail(const char *what)
{
	corrupt_what = what;
	corrupt = 1;
}

static void *mover(void *arg)
{
	struct node *n;
	uint64_t i = 0;

	while (!stop) {
		pthread_mutex_lock(&lock);
		struct node **from = (i & 1) ? &list_a : &list_b;
		struct node **to = (i & 1) ? &list_b : &list_a;

		n = *from;
		if (n) {
			*from = n->next;
			n->next = *to;
			*to = n;
		}
		moves++;
		pthread_mutex_unlock(&lock);
		i = (i * 7 + 3) % 11;
	}
	return arg;
}

static bool check_tmp(const struct tmp *t)
{
	for (size_t i = 0; i < t->len; i++)
		if (t->data[i] != t->fill)
			return false;
	return true;
}

static void *allocator(void *arg)
{
	int id = (int)(intptr_t)arg;
	unsigned int seed = 12345u + id;
	uint64_t k = 0;

	while (!stop) {
		size_t slot = k++ % RING, len = 16 + rand_r(&seed) % 4000;
		struct tmp *t = ring[id][slot];

		if (t) {
			if (!check_tmp(t))
				fail("a short-lived block changed");
			zfree(t);
		}
		t = zmalloc(sizeof(*t) + len);
		t->len = len;
		t->fill = (uint8_t)rand_r(&seed);
		memset(t->data, t->fill, len);
		ring[id][slot] = t;
		__atomic_fetch_add(&allocs, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void *short_lived(void *arg)
{
	void *p = zmalloc(256);

	memset(p, 1, 256);
	zfree(p);
	__atomic_fetch_add(&threads_run, 1, __ATOMIC_RELAXED);
	return arg;
}

static void *spawner(void *arg)
{
	pthread_t t;

	while (!stop) {
		if (pthread_create(&t, NULL, short_lived, NULL) == 0)
			pthread_join(t, NULL);
		usleep(500);
	}
	return arg;
}

static const char *check_lists(void)
{
	static char seen[NODES];
	size_t count = 0;

	memset(seen, 0, sizeof(seen));
	pthread_mutex_lock(&lock);
	for (int l = 0; l < 2; l++) {
		for (struct node *n = l ? list_b : list_a; n; n = n->next) {
			if (n->magic != MAGIC || n->sum != (MAGIC ^ n->id) ||
			    n->id >= NODES || seen[n->id]) {
				pthread_mutex_unlock(&lock);
				return "a node is corrupt";
			}
			seen[n->id] = 1;
			count++;
		}
	}
	pthread_mutex_unlock(&lock);
	return count == NODES ? NULL : "a node went missing";
}

int main(void)
{
	pthread_t th[4];
	char line[128];
	const char *bad;

	for (uint64_t i = 0; i < NODES; i++) {
		struct node *n = zcalloc(sizeof(*n));

		n->magic = MAGIC;
		n->id = i;
		n->sum = MAGIC ^ i;
		n->next = list_a;
		list_a = n;
		printf("cand %p %zu %zu node still\n", (void *)n, sizeof(*n),
		       zmalloc_usable_size(n));
	}
	pthread_create(&th[0], NULL, mover, NULL);
	pthread_create(&th[1], NULL, allocator, (void *)0);
	pthread_create(&th[2], NULL, allocator, (void *)1);
	pthread_create(&th[3], NULL, spawner, NULL);
	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		bad = check_lists();
		if (bad)
			fail(bad);
		if (corrupt)
			printf("bad %s\n", corrupt_what);
		else
			printf("ok %llu %llu %llu\n", (unsigned long long)moves,
			       (unsigned long long)__atomic_load_n(
				       &allocs, __ATOMIC_RELAXED),
			       (unsigned long long)__atomic_load_n(
				       &threads_run, __ATOMIC_RELAXED));
		fflush(stdout);
	}
	stop = 1;
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	bad = check_lists();
	if (bad)
		fail(bad);
	for (int r = 0; r < 2; r++)
		for (int i = 0; i < RING; i++)
			if (ring[r][i] && !check_tmp(ring[r][i]))
				fail("a short-lived block changed");
	if (corrupt)
		fprintf(stderr, "churn: %s\n", corrupt_what);
	return corrupt ? 3 : 0;
}
