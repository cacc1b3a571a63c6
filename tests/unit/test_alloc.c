/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_alloc.c - the allocating families (plain, calloc, calloc_num, try,
 * strdup, usable), the frees and the size queries, with used_memory checked
 * to the byte against zmalloc_size() of every block.
 */
#include "zm_test.h"

#define ZM_SIZES_N 12
static const size_t zm_sizes[ZM_SIZES_N] = { 1,	   7,	 8,	15,
					     16,   24,	 100,	1000,
					     4095, 4096, 70000, 300000 };

/* Checks what every freshly allocated block of n bytes must satisfy. */
static void check_block(void *p, size_t n)
{
	size_t usable;

	assert_non_null(p);
	usable = zmalloc_usable_size(p);
	assert_int_equal(usable, zm_test_usable_of(p, n));
	assert_true(usable >= n);
	assert_int_equal(zmalloc_size(p), usable + PREFIX_SIZE);
}

/* Every usable byte of p is zero. */
static void check_zeroed(const void *p, size_t n)
{
	const unsigned char *b = p;
	size_t i;

	for (i = 0; i < n; i++)
		if (b[i] != 0)
			fail_msg("byte %zu of %zu is %#x, not 0", i, n, b[i]);
}

/*
 * Leaves a block of n bytes full of 0xa5 in the allocator's free lists, so
 * that a calloc that does not zero its block shows it.
 */
static void dirty_free_block(size_t n)
{
	void *p = zmalloc(n);

	p = extend_to_usable(p, zmalloc_usable_size(p));
	memset(p, 0xa5, zmalloc_usable_size(p));
	zfree(p);
}

static void test_alloc_zmalloc_counts_block(void **state)
{
	size_t start = zmalloc_used_memory();
	int i;

	for (i = 0; i < ZM_SIZES_N; i++) {
		size_t n = zm_sizes[i];
		void *p = zmalloc(n);

		check_block(p, n);
		assert_int_equal(zmalloc_used_memory(),
				 start + zmalloc_size(p));
		memset(p, 0x5a, n);
		zfree(p);
		assert_int_equal(zmalloc_used_memory(), start);
	}
}

static void test_alloc_zcalloc_zeroed(void **state)
{
	size_t start = zmalloc_used_memory();
	int i;

	for (i = 0; i < ZM_SIZES_N; i++) {
		size_t n = zm_sizes[i];
		void *p;

		dirty_free_block(n);
		p = zcalloc(n);
		check_block(p, n);
		check_zeroed(p, n);
		assert_int_equal(zmalloc_used_memory(),
				 start + zmalloc_size(p));
		zfree(p);
		assert_int_equal(zmalloc_used_memory(), start);
	}
}

static void test_alloc_zcalloc_num_zeroed(void **state)
{
	size_t start = zmalloc_used_memory();
	static const size_t dims[][2] = { { 1, 1 },   { 3, 5 },	    { 10, 24 },
					  { 100, 8 }, { 64, 1000 }, { 7, 13 } };
	size_t i;

	for (i = 0; i < sizeof(dims) / sizeof(dims[0]); i++) {
		size_t n = dims[i][0] * dims[i][1];
		void *p;

		dirty_free_block(n);
		p = zcalloc_num(dims[i][0], dims[i][1]);
		check_block(p, n);
		check_zeroed(p, n);
		assert_int_equal(zmalloc_used_memory(),
				 start + zmalloc_size(p));
		zfree(p);
		assert_int_equal(zmalloc_used_memory(), start);
	}
}

/* As Valkey: a zero count with a non-zero size is a valid empty block. */
static void test_alloc_zcalloc_num_zero_count(void **state)
{
	size_t start = zmalloc_used_memory();
	void *p = zcalloc_num(0, 16);

	check_block(p, 0);
	p = extend_to_usable(p, zmalloc_usable_size(p));
	check_zeroed(p, zmalloc_usable_size(p));
	assert_int_equal(zmalloc_used_memory(), start + zmalloc_size(p));
	zfree(p);
	assert_int_equal(zmalloc_used_memory(), start);
}

static void test_alloc_try_family_succeeds(void **state)
{
	size_t start = zmalloc_used_memory();
	void *p, *q;

	p = ztrymalloc(200);
	check_block(p, 200);
	dirty_free_block(300);
	q = ztrycalloc(300);
	check_block(q, 300);
	check_zeroed(q, 300);
	assert_int_equal(zmalloc_used_memory(),
			 start + zmalloc_size(p) + zmalloc_size(q));
	zfree(p);
	zfree(q);
	assert_int_equal(zmalloc_used_memory(), start);
}

static void test_alloc_zstrdup_copies(void **state)
{
	static const char *const strs[] = {
		"", "a", "zmalloc", "exactly fifteen",
		"a somewhat longer string that crosses a size class or two"
	};
	size_t start = zmalloc_used_memory();
	size_t i;

	for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		size_t len = strlen(strs[i]) + 1;
		char *s = zstrdup(strs[i]);

		check_block(s, len);
		assert_ptr_not_equal(s, strs[i]);
		assert_memory_equal(s, strs[i], len);
		assert_int_equal(zmalloc_used_memory(),
				 start + zmalloc_size(s));
		zfree(s);
		assert_int_equal(zmalloc_used_memory(), start);
	}
}

static void test_alloc_usable_family_reports_size(void **state)
{
	size_t start = zmalloc_used_memory();
	int i;

	for (i = 0; i < ZM_SIZES_N; i++) {
		size_t n = zm_sizes[i], u[4] = { 0, 0, 0, 0 }, sum = 0;
		void *p[4];
		int k;

		p[0] = zmalloc_usable(n, &u[0]);
		dirty_free_block(n);
		p[1] = zcalloc_usable(n, &u[1]);
		p[2] = ztrymalloc_usable(n, &u[2]);
		dirty_free_block(n);
		p[3] = ztrycalloc_usable(n, &u[3]);
		for (k = 0; k < 4; k++) {
			check_block(p[k], n);
			assert_int_equal(u[k], zmalloc_usable_size(p[k]));
			/* The whole usable size is the caller's to write. */
			p[k] = extend_to_usable(p[k], u[k]);
			if (k == 1 || k == 3)
				check_zeroed(p[k], n);
			memset(p[k], k, u[k]);
			sum += zmalloc_size(p[k]);
		}
		assert_int_equal(zmalloc_used_memory(), start + sum);
		for (k = 0; k < 4; k++)
			zfree(p[k]);
		assert_int_equal(zmalloc_used_memory(), start);
	}
}

/* The usable pointer may be NULL: the block is still counted. */
static void test_alloc_usable_null_out(void **state)
{
	size_t start = zmalloc_used_memory();
	void *p = zmalloc_usable(50, NULL);
	void *q = ztrycalloc_usable(60, NULL);

	check_block(p, 50);
	check_block(q, 60);
	assert_int_equal(zmalloc_used_memory(),
			 start + zmalloc_size(p) + zmalloc_size(q));
	zfree_usable(p, NULL);
	zfree_usable(q, NULL);
	assert_int_equal(zmalloc_used_memory(), start);
}

static void test_alloc_zfree_null_noop(void **state)
{
	size_t start = zmalloc_used_memory();
	size_t u = 12345;
	void *keep = zmalloc(40);

	zfree(NULL);
	zfree_with_size(NULL, 64);
	zfree_usable(NULL, &u);
	assert_int_equal(u, 0);
	assert_int_equal(zmalloc_used_memory(), start + zmalloc_size(keep));
	zfree(keep);
	assert_int_equal(zmalloc_used_memory(), start);
}

static void test_alloc_zfree_usable_reports_size(void **state)
{
	size_t start = zmalloc_used_memory();
	int i;

	for (i = 0; i < ZM_SIZES_N; i++) {
		void *p = zmalloc(zm_sizes[i]);
		size_t before = zmalloc_usable_size(p), size = zmalloc_size(p);
		size_t u = 0;

		assert_int_equal(zmalloc_used_memory(), start + size);
		zfree_usable(p, &u);
		assert_int_equal(u, before);
		assert_int_equal(zmalloc_used_memory(), start);
	}
}

static void test_alloc_zfree_with_size_exact(void **state)
{
	size_t start = zmalloc_used_memory();
	int i;

	for (i = 0; i < ZM_SIZES_N; i++) {
		size_t u;
		void *p = zmalloc_usable(zm_sizes[i], &u);
		void *q = zmalloc(zm_sizes[i]);

		assert_int_equal(zmalloc_used_memory(),
				 start + zmalloc_size(p) + zmalloc_size(q));
		zfree_with_size(p, u);
		assert_int_equal(zmalloc_used_memory(),
				 start + zmalloc_size(q));
		zfree_with_size(q, zmalloc_usable_size(q));
		assert_int_equal(zmalloc_used_memory(), start);
	}
}

/* A request for 0 bytes is a valid block of sizeof(long), as Valkey does. */
static void test_alloc_zero_size_valid(void **state)
{
	size_t start = zmalloc_used_memory(), sum = 0, u = 0;
	void *p[5];
	int k;

	p[0] = zmalloc(0);
	p[1] = zcalloc(0);
	p[2] = ztrymalloc(0);
	p[3] = ztrycalloc(0);
	p[4] = zmalloc_usable(0, &u);
	for (k = 0; k < 5; k++) {
		check_block(p[k], 0);
		assert_true(zmalloc_usable_size(p[k]) >= sizeof(long));
		p[k] = extend_to_usable(p[k], zmalloc_usable_size(p[k]));
		memset(p[k], 0x11, zmalloc_usable_size(p[k]));
		sum += zmalloc_size(p[k]);
	}
	assert_int_equal(u, zmalloc_usable_size(p[4]));
	assert_int_equal(zmalloc_used_memory(), start + sum);
	for (k = 0; k < 5; k++)
		zfree(p[k]);
	assert_int_equal(zmalloc_used_memory(), start);
}

/* extend_to_usable() hands back the same block, contents untouched. */
static void test_alloc_extend_to_usable_same_block(void **state)
{
	size_t start = zmalloc_used_memory();
	char *p = zmalloc(10), *q;
	size_t u = zmalloc_usable_size(p);

	memcpy(p, "0123456789", 10);
	q = extend_to_usable(p, u);
	assert_ptr_equal(q, p);
	assert_memory_equal(q, "0123456789", 10);
	memset(q + 10, 'x', u - 10);
	assert_int_equal(zmalloc_usable_size(q), u);
	assert_int_equal(zmalloc_used_memory(), start + zmalloc_size(q));
	zfree(q);
	assert_int_equal(zmalloc_used_memory(), start);
}

/* xorshift64: the same workload on every run and in every backend. */
static uint64_t rnd_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static size_t rnd_size(uint64_t *s)
{
	uint64_t r = rnd_next(s);

	switch (r % 16) {
	case 0:
		return 0;
	case 1 ... 8:
		return (r >> 8) % 128;
	case 9 ... 12:
		return (r >> 8) % 4096;
	case 13 ... 14:
		return (r >> 8) % 65536;
	default:
		return 100000 + (r >> 8) % 400000;
	}
}

static void *rnd_alloc(uint64_t *s, size_t n)
{
	size_t u;

	switch (rnd_next(s) % 10) {
	case 0:
		return zmalloc(n);
	case 1:
		return zcalloc(n);
	case 2:
		return n ? zcalloc_num(n % 7 + 1, n / (n % 7 + 1) + 1) :
			   zcalloc(0);
	case 3:
		return ztrymalloc(n);
	case 4:
		return ztrycalloc(n);
	case 5:
		return zmalloc_usable(n, &u);
	case 6:
		return zcalloc_usable(n, &u);
	case 7:
		return ztrymalloc_usable(n, &u);
	case 8:
		return ztrycalloc_usable(n, &u);
	default:
		return zrealloc(NULL, n);
	}
}

static void rnd_free(uint64_t *s, void *p)
{
	size_t u;

	switch (rnd_next(s) % 3) {
	case 0:
		zfree(p);
		break;
	case 1:
		zfree_usable(p, &u);
		break;
	default:
		zfree_with_size(p, zmalloc_usable_size(p));
		break;
	}
}

#define ZM_LIVE_MAX 256
#define ZM_OPS 3000

/*
 * Random allocations, reallocations and frees through every family, with
 * used_memory checked against the sum of zmalloc_size() of the live
 * blocks along the way, and back at its start value once all are freed.
 */
static void test_alloc_mixed_workload_exact(void **state)
{
	size_t start = zmalloc_used_memory(), sum;
	void *live[ZM_LIVE_MAX] = { NULL };
	uint64_t seed = 0x9e3779b97f4a7c15ULL;
	int op, i;

	for (op = 0; op < ZM_OPS; op++) {
		i = (int)(rnd_next(&seed) % ZM_LIVE_MAX);
		if (live[i] == NULL) {
			size_t n = rnd_size(&seed);

			live[i] = rnd_alloc(&seed, n);
			assert_non_null(live[i]);
			assert_true(zmalloc_usable_size(live[i]) >= n);
			memset(live[i], op & 0xff, n);
		} else if (rnd_next(&seed) % 4 == 0) {
			size_t n = rnd_size(&seed) + 1;

			live[i] = zrealloc(live[i], n);
			assert_non_null(live[i]);
			assert_true(zmalloc_usable_size(live[i]) >= n);
		} else {
			rnd_free(&seed, live[i]);
			live[i] = NULL;
		}
		if (op % 128 != 127)
			continue;
		for (sum = 0, i = 0; i < ZM_LIVE_MAX; i++)
			if (live[i])
				sum += zmalloc_size(live[i]);
		assert_int_equal(zmalloc_used_memory(), start + sum);
	}
	for (i = 0; i < ZM_LIVE_MAX; i++)
		zfree(live[i]);
	assert_int_equal(zmalloc_used_memory(), start);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alloc_zmalloc_counts_block),
		cmocka_unit_test(test_alloc_zcalloc_zeroed),
		cmocka_unit_test(test_alloc_zcalloc_num_zeroed),
		cmocka_unit_test(test_alloc_zcalloc_num_zero_count),
		cmocka_unit_test(test_alloc_try_family_succeeds),
		cmocka_unit_test(test_alloc_zstrdup_copies),
		cmocka_unit_test(test_alloc_usable_family_reports_size),
		cmocka_unit_test(test_alloc_usable_null_out),
		cmocka_unit_test(test_alloc_zfree_null_noop),
		cmocka_unit_test(test_alloc_zfree_usable_reports_size),
		cmocka_unit_test(test_alloc_zfree_with_size_exact),
		cmocka_unit_test(test_alloc_zero_size_valid),
		cmocka_unit_test(test_alloc_extend_to_usable_same_block),
		cmocka_unit_test(test_alloc_mixed_workload_exact),
	};

	return cmocka_run_group_tests_name("alloc", tests, NULL, NULL);
}
