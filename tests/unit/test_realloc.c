/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_realloc.c - zrealloc and its try and usable forms: NULL allocates,
 * size 0 frees, contents survive a grow and a shrink, used_memory follows
 * to the byte, and a failed realloc leaves the old block valid and counted.
 */
#include "zm_test.h"

/*
 * 128 TiB: below SIZE_MAX / 2, so the library hands it to the backend,
 * which must fail it. glibc fails far smaller requests (the overcommit
 * heuristic refuses a mapping larger than RAM plus swap), but jemalloc maps
 * with MAP_NORESERVE, which the heuristic does not judge: 1 << 46 (64 TiB)
 * succeeds there when the address space has room. 1 << 47 is the whole of
 * x86-64's 47-bit user address space and cannot be mapped by anyone.
 */
#define ZM_HUGE ((size_t)1 << 47)

#if defined(__SANITIZE_ADDRESS__)
/* ASan aborts on a request above its limit unless told to return NULL. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "allocator_may_return_null=1";
}
#endif

static void fill(void *p, size_t n, unsigned char seed)
{
	unsigned char *b = p;
	size_t i;

	for (i = 0; i < n; i++)
		b[i] = (unsigned char)(seed + i * 31);
}

static void check_fill(const void *p, size_t n, unsigned char seed)
{
	const unsigned char *b = p;
	size_t i;

	for (i = 0; i < n; i++)
		if (b[i] != (unsigned char)(seed + i * 31))
			fail_msg("byte %zu of %zu changed", i, n);
}

static void test_realloc_null_allocates(void **state)
{
	size_t start = zmalloc_used_memory(), u = 0, sum;
	void *p, *q, *r, *s;

	p = zrealloc(NULL, 100);
	q = ztryrealloc(NULL, 5000);
	r = zrealloc_usable(NULL, 1, &u);
	assert_non_null(p);
	assert_non_null(q);
	assert_non_null(r);
	assert_int_equal(zmalloc_usable_size(p), zm_test_usable_of(p, 100));
	assert_int_equal(zmalloc_usable_size(q), zm_test_usable_of(q, 5000));
	assert_int_equal(u, zmalloc_usable_size(r));
	assert_int_equal(u, zm_test_usable_of(r, 1));
	s = ztryrealloc_usable(NULL, 0, &u);
	assert_non_null(s);
	assert_int_equal(u, zmalloc_usable_size(s));
	assert_int_equal(u, zm_test_usable_of(s, 0));
	sum = zmalloc_size(p) + zmalloc_size(q) + zmalloc_size(r) +
	      zmalloc_size(s);
	assert_int_equal(zmalloc_used_memory(), start + sum);
	zfree(p);
	zfree(q);
	zfree(r);
	zfree(s);
	assert_int_equal(zmalloc_used_memory(), start);
}

/* zrealloc(p, 0) frees p, returns NULL and never calls the OOM handler. */
static void test_realloc_zero_frees(void **state)
{
	size_t start = zmalloc_used_memory(), u = 777;
	void *p[4], *q;
	size_t size;
	int k;

	for (k = 0; k < 4; k++)
		p[k] = zmalloc(300 + k * 1000);
	for (k = 0; k < 4; k++) {
		size_t before = zmalloc_used_memory();

		size = zmalloc_size(p[k]);
		switch (k) {
		case 0:
			q = zrealloc(p[k], 0);
			break;
		case 1:
			q = ztryrealloc(p[k], 0);
			break;
		case 2:
			q = zrealloc_usable(p[k], 0, &u);
			assert_int_equal(u, 0);
			break;
		default:
			u = 777;
			q = ztryrealloc_usable(p[k], 0, &u);
			assert_int_equal(u, 0);
			break;
		}
		assert_null(q);
		assert_int_equal(zmalloc_used_memory(), before - size);
	}
	assert_int_equal(zmalloc_used_memory(), start);
}

/*
 * Grows through small, medium and mmap-sized blocks and shrinks back,
 * checking the contents kept and used_memory after every step.
 */
static void test_realloc_grow_shrink_exact(void **state)
{
	static const size_t steps[] = { 16,   100,    5000, 200000, 1 << 20,
					3000, 300000, 40,   8,	    1 };
	size_t start = zmalloc_used_memory(), kept = 16, i;
	void *p = zmalloc(16);

	fill(p, 16, 7);
	for (i = 1; i < sizeof(steps) / sizeof(steps[0]); i++) {
		size_t n = steps[i];

		p = zrealloc(p, n);
		assert_non_null(p);
		kept = kept < n ? kept : n;
		check_fill(p, kept, 7);
		assert_int_equal(zmalloc_usable_size(p),
				 zm_test_usable_of(p, n));
		assert_int_equal(zmalloc_size(p),
				 zmalloc_usable_size(p) + PREFIX_SIZE);
		assert_int_equal(zmalloc_used_memory(),
				 start + zmalloc_size(p));
		fill(p, n, 7);
		kept = n;
	}
	zfree(p);
	assert_int_equal(zmalloc_used_memory(), start);
}

static void test_realloc_usable_forms_report_size(void **state)
{
	static const size_t steps[] = { 10, 64, 1000, 70000, 500, 3 };
	size_t start = zmalloc_used_memory(), u, i;
	void *p = zmalloc_usable(1, &u), *q = zmalloc(1);

	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		size_t v = 0;

		p = zrealloc_usable(p, steps[i], &u);
		q = ztryrealloc_usable(q, steps[i] * 2, &v);
		assert_non_null(p);
		assert_non_null(q);
		assert_int_equal(u, zmalloc_usable_size(p));
		assert_int_equal(u, zm_test_usable_of(p, steps[i]));
		assert_int_equal(v, zmalloc_usable_size(q));
		assert_int_equal(v, zm_test_usable_of(q, steps[i] * 2));
		assert_int_equal(zmalloc_used_memory(),
				 start + zmalloc_size(p) + zmalloc_size(q));
		p = extend_to_usable(p, u);
		memset(p, 0x3c, u);
	}
	zfree_with_size(p, u);
	zfree(q);
	assert_int_equal(zmalloc_used_memory(), start);
}

/* A plain zrealloc grows into the same contents as the try form. */
static void test_realloc_try_grow_keeps_contents(void **state)
{
	size_t start = zmalloc_used_memory();
	void *p = ztrymalloc(50);

	fill(p, 50, 99);
	p = ztryrealloc(p, 90000);
	assert_non_null(p);
	check_fill(p, 50, 99);
	assert_int_equal(zmalloc_used_memory(), start + zmalloc_size(p));
	zfree(p);
	assert_int_equal(zmalloc_used_memory(), start);
}

/*
 * The backend refuses 128 TiB: the try forms return NULL, the old block
 * keeps its address, size, contents and its share of used_memory.
 */
static void test_realloc_failure_keeps_block(void **state)
{
	static const size_t sizes[] = { 24, 4000, 300000 };
	size_t i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i], u = 1, usable, size, used;
		void *p = zmalloc(n), *q;

		fill(p, n, (unsigned char)i);
		usable = zmalloc_usable_size(p);
		size = zmalloc_size(p);
		used = zmalloc_used_memory();
		q = ztryrealloc(p, zm_test_opaque(ZM_HUGE));
		assert_null(q);
		q = ztryrealloc_usable(p, zm_test_opaque(ZM_HUGE), &u);
		assert_null(q);
		assert_int_equal(u, 0);
		assert_int_equal(zmalloc_used_memory(), used);
		assert_int_equal(zmalloc_usable_size(p), usable);
		assert_int_equal(zmalloc_size(p), size);
		check_fill(p, n, (unsigned char)i);
		/* Still a live block: it grows and frees normally. */
		p = zrealloc(p, n + 1000);
		check_fill(p, n, (unsigned char)i);
		assert_int_equal(zmalloc_used_memory(),
				 used - size + zmalloc_size(p));
		zfree(p);
		assert_int_equal(zmalloc_used_memory(), used - size);
	}
}

/* Requests of SIZE_MAX / 2 or more fail before reaching the backend. */
static void test_realloc_half_address_space_fails(void **state)
{
	static const size_t huge[] = { SIZE_MAX / 2, SIZE_MAX / 2 + 1,
				       SIZE_MAX - 4096, SIZE_MAX };
	size_t i, start = zmalloc_used_memory();
	void *p = zmalloc(128);

	fill(p, 128, 42);
	for (i = 0; i < sizeof(huge) / sizeof(huge[0]); i++) {
		size_t u = 5;

		assert_null(ztryrealloc(p, zm_test_opaque(huge[i])));
		assert_null(ztryrealloc_usable(p, zm_test_opaque(huge[i]), &u));
		assert_int_equal(u, 0);
		assert_null(ztryrealloc(NULL, zm_test_opaque(huge[i])));
		assert_int_equal(zmalloc_used_memory(),
				 start + zmalloc_size(p));
		check_fill(p, 128, 42);
	}
	assert_null(ztryrealloc(NULL, zm_test_opaque(ZM_HUGE)));
	assert_int_equal(zmalloc_used_memory(), start + zmalloc_size(p));
	zfree(p);
	assert_int_equal(zmalloc_used_memory(), start);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_realloc_null_allocates),
		cmocka_unit_test(test_realloc_zero_frees),
		cmocka_unit_test(test_realloc_grow_shrink_exact),
		cmocka_unit_test(test_realloc_usable_forms_report_size),
		cmocka_unit_test(test_realloc_try_grow_keeps_contents),
		cmocka_unit_test(test_realloc_failure_keeps_block),
		cmocka_unit_test(test_realloc_half_address_space_fails),
	};

	return cmocka_run_group_tests_name("realloc", tests, NULL, NULL);
}
