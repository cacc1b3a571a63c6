/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_allocator.c - the allocator's controls and statistics, the calls
 * that reach libc's allocator directly, the backend's public facts
 * (ZMALLOC_LIB, HAVE_MALLOC_SIZE, PREFIX_SIZE) and the alignment of blocks.
 *
 * Which backend is running is found without the library's word for it:
 * jemalloc is loaded only in its variant (found with dlsym), the prefix
 * backend's header sits before each block, libc's malloc_usable_size()
 * answers for the rest.
 */
#include <stdio.h>
#include <sys/mman.h>

#include "zm_test.h"

typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);
typedef size_t (*sallocx_fn)(void *, int);

enum backend {
	BE_LIBC,
	BE_PREFIX,
	BE_JEMALLOC,
};

/*
 * The prefix backend's header: the 16 bytes before the block, which libc
 * allocated as one with it. Reached through an address the compiler cannot
 * follow, since for it they lie outside the object zmalloc() returned.
 */
static char *prefix_base(void *p)
{
	uintptr_t a = (uintptr_t)p;

	__asm__("" : "+r"(a));
	return (char *)(a - 16);
}

static enum backend detect_backend(void)
{
	sallocx_fn je_sallocx = (sallocx_fn)zm_test_je_sym("sallocx");
	enum backend be;
	char *p = zmalloc(100);

	if (je_sallocx) {
		assert_int_equal(je_sallocx(p, 0), zmalloc_usable_size(p));
		be = BE_JEMALLOC;
	} else if (zmalloc_size(p) - zmalloc_usable_size(p) == 16 &&
		   *(size_t *)prefix_base(p) == 100) {
		assert_true(malloc_usable_size(prefix_base(p)) >= 100 + 16);
		be = BE_PREFIX;
	} else {
		assert_int_equal(malloc_usable_size(p), zmalloc_usable_size(p));
		be = BE_LIBC;
	}
	zfree(p);
	return be;
}

static mallctl_fn je_mallctl(void)
{
	return (mallctl_fn)zm_test_je_sym("mallctl");
}

/* A size_t statistic of jemalloc, after refreshing them. */
static size_t je_stat(const char *name)
{
	uint64_t epoch = 1;
	size_t v = 0, sz = sizeof(epoch);

	assert_int_equal(je_mallctl()("epoch", &epoch, &sz, &epoch, sz), 0);
	sz = sizeof(v);
	assert_int_equal(je_mallctl()(name, &v, &sz, NULL, 0), 0);
	return v;
}

struct info {
	size_t allocated, active, resident, retained, muzzy, frag;
};

static struct info get_info(void)
{
	struct info in;

	/* Garbage first: every figure must be written. */
	memset(&in, 0x5a, sizeof(in));
	assert_int_equal(zmalloc_get_allocator_info(&in.allocated, &in.active,
						    &in.resident, &in.retained,
						    &in.muzzy, &in.frag),
			 1);
	return in;
}

static void test_allocator_info_figures(void **state)
{
	bool je = detect_backend() == BE_JEMALLOC;
	void *big, *small[64];
	struct info a, b;
	int i;

	for (i = 0; i < 64; i++)
		small[i] = zmalloc((size_t)i * 40 + 1);
	a = get_info();
	if (!je) {
		assert_int_equal(a.allocated, 0);
		assert_int_equal(a.active, 0);
		assert_int_equal(a.resident, 0);
		assert_int_equal(a.retained, 0);
		assert_int_equal(a.muzzy, 0);
		assert_int_equal(a.frag, 0);
	} else {
		assert_true(a.allocated >= zmalloc_used_memory());
		assert_true(a.active >= a.allocated);
		assert_true(a.resident >= a.active);
		assert_true(a.frag < a.active);
		/* A large block bypasses the thread cache: counted exactly. */
		big = zmalloc(4 << 20);
		b = get_info();
		assert_int_equal(b.allocated - a.allocated, zmalloc_size(big));
		assert_true(b.active - a.active >= zmalloc_size(big));
		zfree(big);
		b = get_info();
		assert_int_equal(b.allocated, a.allocated);
	}
	for (i = 0; i < 64; i++)
		zfree(small[i]);
}

static void test_allocator_purge(void **state)
{
	void *p = zmalloc(2 << 20);
	char name[64];

	memset(p, 1, 2 << 20);
	zfree(p);
	assert_int_equal(jemalloc_purge(), 0);
	if (detect_backend() != BE_JEMALLOC)
		return;
	/* Every arena's dirty and muzzy pages went back to the system. */
	snprintf(name, sizeof(name), "stats.arenas.%u.pdirty", 4096u);
	assert_int_equal(je_stat(name), 0);
	assert_int_equal(get_info().muzzy, 0);
}

static void test_allocator_bg_thread(void **state)
{
	size_t start = zmalloc_used_memory(), sz = sizeof(bool);
	bool on = false;

	set_jemalloc_bg_thread(1);
	if (detect_backend() == BE_JEMALLOC) {
		assert_int_equal(je_mallctl()("background_thread", &on, &sz,
					      NULL, 0),
				 0);
		assert_true(on);
	}
	set_jemalloc_bg_thread(0);
	if (detect_backend() == BE_JEMALLOC) {
		assert_int_equal(je_mallctl()("background_thread", &on, &sz,
					      NULL, 0),
				 0);
		assert_false(on);
	} else {
		assert_null(je_mallctl());
	}
	assert_int_equal(zmalloc_used_memory(), start);
}

/* The classic no-op: nothing it could disturb changes. */
static void test_allocator_thread_safeness_noop(void **state)
{
	size_t start = zmalloc_used_memory();
	char *p = zstrdup("kept");

	zmalloc_enable_thread_safeness();
	zmalloc_enable_thread_safeness();
	assert_string_equal(p, "kept");
	assert_int_equal(zmalloc_used_memory(), start + zmalloc_size(p));
	zfree(p);
	assert_int_equal(zmalloc_used_memory(), start);
}

/*
 * zlibc_free() gives a block of libc's malloc back to libc: used_memory
 * does not move (zfree() would subtract it, or crash on it), and libc's own
 * count of bytes in use returns to where it was: uordblks for heap chunks
 * (above the thread cache's 1032 bytes, which mallinfo counts as in use),
 * hblkhd for mmapped ones. Under ASan and valgrind both stay constant.
 */
static void test_allocator_zlibc_free(void **state)
{
	static const size_t sizes[] = { 2000, 5000, 20000, 300000, 1 << 20 };
	size_t start = zmalloc_used_memory(), i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct mallinfo2 before = mallinfo2(), after;
		char *p = malloc(sizes[i]);

		assert_non_null(p);
		memset(p, 0xcc, sizes[i]);
		zlibc_free(p);
		after = mallinfo2();
		assert_int_equal(after.uordblks, before.uordblks);
		assert_int_equal(after.hblkhd, before.hblkhd);
		assert_int_equal(zmalloc_used_memory(), start);
	}
}

/* glibc's heap is the test's malloc: not under ASan's or valgrind's. */
static bool glibc_heap_in_use(void)
{
#if defined(__SANITIZE_ADDRESS__)
	return false;
#else
	size_t before = mallinfo2().uordblks, after;
	void *p;

	if (zm_test_under_valgrind())
		return false;
	p = malloc(5000); /* past the thread cache, below mmap */
	__asm__ volatile("" : : "r"(p) : "memory"); /* keep the pair */
	after = mallinfo2().uordblks;
	free(p);
	return after > before;
#endif
}

#define TRIM_BLOCKS 128
#define TRIM_BLOCK (64 * 1024) /* below glibc's mmap threshold */

/*
 * Frees 8 MiB of heap below a block that pins the top of the heap, where
 * free() cannot give it back; zlibc_trim() (malloc_trim) can.
 */
static void test_allocator_zlibc_trim(void **state)
{
	static void *blocks[TRIM_BLOCKS];
	size_t before, after, start = zmalloc_used_memory();
	void *pin;
	int i;

	if (!glibc_heap_in_use()) {
		zlibc_trim(); /* still callable */
		skip(); /* no glibc heap to trim under ASan or valgrind */
	}
	for (i = 0; i < TRIM_BLOCKS; i++) {
		blocks[i] = malloc(TRIM_BLOCK);
		assert_non_null(blocks[i]);
		memset(blocks[i], 0x42, TRIM_BLOCK);
		/* The pages must be touched: no dead store before free(). */
		__asm__ volatile("" : : "r"(blocks[i]) : "memory");
	}
	/* Carved from the top after them, as they were: it pins the top. */
	pin = malloc(TRIM_BLOCK);
	__asm__ volatile("" : : "r"(pin) : "memory");
	for (i = 0; i < TRIM_BLOCKS; i++)
		free(blocks[i]);
	before = zmalloc_get_rss();
	zlibc_trim();
	after = zmalloc_get_rss();
	free(pin);
	assert_true(before > after);
	assert_true(before - after >= (size_t)(TRIM_BLOCKS - 16) * TRIM_BLOCK);
	assert_int_equal(zmalloc_used_memory(), start);
}

/*
 * Under jemalloc the whole pages inside the block read back as zero and
 * the block stays allocated and counted; elsewhere nothing changes.
 */
static void test_allocator_madvise_dontneed(void **state)
{
	size_t n = 1 << 20, page = (size_t)sysconf(_SC_PAGESIZE), i, size;
	size_t start = zmalloc_used_memory();
	unsigned char *p = zmalloc(n), *small = zmalloc(64);
	uintptr_t lo, hi;
	bool je = detect_backend() == BE_JEMALLOC;

	memset(p, 0xab, n);
	memset(small, 0xcd, 64);
	size = zmalloc_size(p);
	zmadvise_dontneed(p);
	zmadvise_dontneed(small); /* no whole page inside it */
	zmadvise_dontneed(NULL);
	lo = ((uintptr_t)p + page - 1) & ~(uintptr_t)(page - 1);
	hi = ((uintptr_t)p + n) & ~(uintptr_t)(page - 1);
	/*
	 * jemalloc starts a large block at a random cache line of its first
	 * page (cache-oblivious layout): the partial first and last pages
	 * keep their bytes, the 255 or 256 whole pages are given back.
	 */
	assert_true(hi - lo >= n - page);
	for (i = 0; i < n; i++) {
		bool inside = (uintptr_t)(p + i) >= lo &&
			      (uintptr_t)(p + i) < hi;
		unsigned char want = je && inside ? 0 : 0xab;

		if (p[i] != want)
			fail_msg("byte %zu is %#x, not %#x", i, p[i], want);
	}
	for (i = 0; i < 64; i++)
		assert_int_equal(small[i], 0xcd);
	assert_int_equal(zmalloc_size(p), size);
	assert_int_equal(zmalloc_used_memory(),
			 start + size + zmalloc_size(small));
	memset(p, 0x12, n); /* still the caller's */
	zfree(p);
	zfree(small);
	assert_int_equal(zmalloc_used_memory(), start);
}

/* The backend's public facts match the backend that is running. */
static void test_allocator_config_matches_backend(void **state)
{
#ifdef HAVE_MALLOC_SIZE
	bool have_malloc_size = true;
#else
	bool have_malloc_size = false;
#endif
	char want[64];

	switch (detect_backend()) {
	case BE_LIBC:
		assert_string_equal(ZMALLOC_LIB, "libc");
		assert_true(have_malloc_size);
		assert_int_equal(PREFIX_SIZE, 0);
		break;
	case BE_PREFIX:
		assert_string_equal(ZMALLOC_LIB, "libc-prefix");
		assert_false(have_malloc_size);
		assert_int_equal(PREFIX_SIZE, 16);
		break;
	case BE_JEMALLOC: {
		const char *version = NULL;
		size_t sz = sizeof(version);

		assert_int_equal(
			je_mallctl()("version", &version, &sz, NULL, 0), 0);
		/* "5.3.0-0-g54eaed1d..." names jemalloc-5.3.0 */
		snprintf(want, sizeof(want), "jemalloc-%.*s",
			 (int)strcspn(version, "-"), version);
		assert_string_equal(ZMALLOC_LIB, want);
		assert_true(have_malloc_size);
		assert_int_equal(PREFIX_SIZE, 0);
		break;
	}
	}
}

static void check_aligned(void *p, size_t n, bool je)
{
	/*
	 * jemalloc serves 1 to 8 bytes from its 8-byte size class, aligned
	 * to 8: enough for any object that fits, which is all C asks.
	 */
	uintptr_t align = je && (n ? n : sizeof(long)) <= 8 ? 8 : 16;

	assert_non_null(p);
	if ((uintptr_t)p % align != 0)
		fail_msg("block of %zu bytes at %p is not %lu-byte aligned", n,
			 p, (unsigned long)align);
}

static void test_allocator_alignment(void **state)
{
	bool je = detect_backend() == BE_JEMALLOC;
	size_t n, u;

	for (n = 0; n <= 600; n += n < 64 ? 1 : 37) {
		void *p[8];
		int k;

		p[0] = zmalloc(n);
		p[1] = zcalloc(n);
		p[2] = ztrymalloc(n);
		p[3] = ztrycalloc(n);
		p[4] = zmalloc_usable(n, &u);
		p[5] = zcalloc_num(1, n ? n : 1);
		p[6] = zrealloc(NULL, n);
		p[7] = zrealloc(zmalloc(1), n ? n : 1);
		for (k = 0; k < 8; k++) {
			check_aligned(p[k], k == 5 || k == 7 ? (n ? n : 1) : n,
				      je);
			zfree(p[k]);
		}
	}
	for (n = 4096; n <= (4 << 20); n *= 4) {
		void *p = zmalloc(n);

		check_aligned(p, n, je);
		zfree(p);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_allocator_info_figures),
		cmocka_unit_test(test_allocator_purge),
		cmocka_unit_test(test_allocator_bg_thread),
		cmocka_unit_test(test_allocator_thread_safeness_noop),
		cmocka_unit_test(test_allocator_zlibc_free),
		cmocka_unit_test(test_allocator_zlibc_trim),
		cmocka_unit_test(test_allocator_madvise_dontneed),
		cmocka_unit_test(test_allocator_config_matches_backend),
		cmocka_unit_test(test_allocator_alignment),
	};

	return cmocka_run_group_tests_name("allocator", tests, NULL, NULL);
}
