/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * demo.c - a small program for "make demo": a key-value cache that serves
 * requests for about two seconds, allocating the way servers do (keys,
 * values of many sizes, request buffers grown with realloc), and leaking
 * from two call sites:
 *
 *   cache_set()    overwrites a value without freeing the old one, one
 *                  time in eight;
 *   log_request()  keeps a copy of each failed request's log line.
 *
 * Usage: demo [SECONDS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "zmalloc.h"

#define NKEYS 512

struct entry {
	char *key;
	char *value;
	size_t len;
};

static struct entry cache[NKEYS];
static char **failed_log;
static size_t nfailed, failed_cap;

static unsigned int rnd(unsigned int *seed)
{
	*seed = *seed * 1103515245U + 12345U;
	return *seed >> 8;
}

/* Mostly small values, some medium, a few large: a server's mix. */
static size_t value_size(unsigned int *seed)
{
	unsigned int r = rnd(seed) % 100;

	if (r < 70)
		return 8 + rnd(seed) % 120;
	if (r < 95)
		return 128 + rnd(seed) % 1900;
	return 4096 + rnd(seed) % 60000;
}

static __attribute__((noinline)) void cache_set(unsigned int *seed, int k)
{
	struct entry *e = &cache[k];
	size_t len = value_size(seed);
	char key[32];

	if (!e->key) {
		snprintf(key, sizeof(key), "user:%d", k);
		e->key = zstrdup(key);
	}
	/* The bug: one overwrite in eight forgets the old value. */
	if (e->value && rnd(seed) % 8)
		zfree(e->value);
	e->value = zmalloc(len);
	memset(e->value, 'v', len);
	e->len = len;
}

static __attribute__((noinline)) void log_request(int k, int failed)
{
	char *line = zmalloc(96);

	snprintf(line, 96, "GET user:%d %s", k, failed ? "500" : "200");
	if (!failed) {
		zfree(line);
		return;
	}
	/* The bug: failed requests are kept "for later" and never freed. */
	if (nfailed == failed_cap) {
		failed_cap = failed_cap ? failed_cap * 2 : 16;
		failed_log =
			zrealloc(failed_log, failed_cap * sizeof(*failed_log));
	}
	failed_log[nfailed++] = line;
}

/* A request buffer grown by realloc as the body arrives, then freed. */
static __attribute__((noinline)) void read_request(unsigned int *seed)
{
	size_t cap = 64, len = 0, want = 32 + rnd(seed) % 2000;
	char *buf = zmalloc(cap);

	while (len < want) {
		if (len + 64 > cap) {
			cap *= 2;
			buf = zrealloc(buf, cap);
		}
		memset(buf + len, 'b', 64);
		len += 64;
	}
	zfree(buf);
}

/* At exit the cache is emptied properly: what stays is what leaked. */
static void cache_clear(void)
{
	int k;

	for (k = 0; k < NKEYS; k++) {
		zfree(cache[k].key);
		zfree(cache[k].value);
	}
	zfree(failed_log); /* ... but not the lines it pointed to */
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 2.0, end = now_s() + secs;
	struct timespec pause = { 0, 2000000 };
	unsigned int seed = 1;
	long requests = 0;
	int k;

	while (now_s() < end) {
		for (k = 0; k < 200; k++) {
			int key = rnd(&seed) % NKEYS;

			read_request(&seed);
			cache_set(&seed, key);
			log_request(key, rnd(&seed) % 50 == 0);
			requests++;
		}
		nanosleep(&pause, NULL);
	}
	cache_clear();
	printf("demo: served %ld requests, used_memory %zu bytes at exit\n",
	       requests, zmalloc_used_memory());
	return 0;
}
