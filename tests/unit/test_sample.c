/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_sample.c - the sampler and the sample heap, without a tracer.
 *
 * A tracer turns sampling on by incrementing the semaphore of the
 * sample_alloc probe, which is what the kernel does on attach; this test
 * does the same from inside the process, finding the semaphore through the
 * library's symbol table. It then checks what a tracer would rely on:
 * sampled blocks behave as any other block (sizes, contents, calloc zeroes,
 * realloc both ways, used_memory), the weights are unbiased estimates, and
 * nothing is sampled while the semaphore is zero.
 *
 * The run is reproducible: tests/run_suite.sh sets ZMALLOC_SAMPLE_SEED,
 * which the library reads when it loads; run by hand without it, main()
 * re-executes the test with it set.
 */
#include <link.h>
#include <math.h>
#include <pthread.h>

#include "zm_test.h"
#include "zm_sample_heap.h"
#include "zmalloc_sampling.h"

#define MIB (1024 * 1024)

extern struct zmalloc_sample_control zm_sample_control;

static volatile unsigned short *sample_semaphore;
static volatile uintptr_t *sample_region; /* base, len */

struct find_lib {
	const char *suffix;
	uintptr_t bias;
	bool found;
};

static int find_lib_cb(struct dl_phdr_info *info, size_t size, void *data)
{
	struct find_lib *f = data;
	size_t nlen = strlen(info->dlpi_name), slen = strlen(f->suffix);

	(void)size;
	if (nlen >= slen &&
	    strcmp(info->dlpi_name + nlen - slen, f->suffix) == 0) {
		f->bias = info->dlpi_addr;
		f->found = true;
		return 1;
	}
	return 0;
}

/* Address of a symbol of the loaded libzmalloc, from its .symtab. */
struct named_symbol {
	const char *name;
	uintptr_t value; /* 0 until found */
};

static void match_name(const GElf_Sym *sym, const char *name, void *arg)
{
	struct named_symbol *s = arg;

	if (!s->value && strcmp(name, s->name) == 0)
		s->value = sym->st_value;
}

static uintptr_t lib_symbol(const char *name)
{
	struct find_lib f = { .suffix = "libzmalloc.so.1" };
	struct named_symbol s = { .name = name };
	GElf_Shdr shdr;
	Elf_Scn *scn;
	Elf *elf;
	int fd;

	dl_iterate_phdr(find_lib_cb, &f);
	if (!f.found)
		return 0;
	elf = zm_test_elf_open(ZM_TEST_BUILD_DIR "/libzmalloc.so.1", &fd);
	if (!elf)
		return 0;
	scn = zm_test_elf_section(elf, ".symtab", &shdr);
	if (scn)
		zm_test_for_each_symbol(elf, scn, &shdr, match_name, &s);
	zm_test_elf_close(elf, fd);
	return s.value ? f.bias + s.value : 0;
}

static void sampling(bool on)
{
	if (on)
		(*sample_semaphore)++;
	else
		(*sample_semaphore)--;
}

static int setup(void **state)
{
	(void)state;
	sample_semaphore =
		(unsigned short *)lib_symbol("zmalloc_sample_alloc_semaphore");
	sample_region = (uintptr_t *)lib_symbol("zm_sample_region");
	return sample_semaphore && sample_region ? 0 : -1;
}

/* The library's own test, read through its hidden symbol. */
static bool is_sampled(void *p)
{
	return (uintptr_t)p - sample_region[0] < sample_region[1];
}

/* The bytes a set of blocks is estimated at, from the sampled ones. */
static double estimate(void **blocks, int n, int *samples)
{
	double bytes = 0;
	int i;

	*samples = 0;
	for (i = 0; i < n; i++) {
		if (!is_sampled(blocks[i]))
			continue;
		bytes += (double)zm_sample_hdr_of(blocks[i])->weight;
		(*samples)++;
	}
	return bytes;
}

static void test_sample_off_without_tracer(void **state)
{
	void *blocks[4096];
	int i, samples;

	(void)state;
	for (i = 0; i < 4096; i++)
		blocks[i] = zmalloc(4096);
	estimate(blocks, 4096, &samples);
	assert_int_equal(samples, 0);
	for (i = 0; i < 4096; i++)
		zfree(blocks[i]);
}

/* 32 MiB in each of three size classes: each estimate within 10%. */
static void test_sample_estimates_unbiased(void **state)
{
	static const size_t sizes[] = { 48, 3000, 200000 };
	size_t c;

	(void)state;
	zmalloc_set_sample_bytes(16 * 1024);
	sampling(true);
	for (c = 0; c < 3; c++) {
		int n = (int)(32 * MIB / sizes[c]), i, samples;
		void **blocks = calloc(n, sizeof(*blocks));
		double est, truth = (double)n * sizes[c];

		for (i = 0; i < n; i++)
			blocks[i] = zmalloc(sizes[c]);
		est = estimate(blocks, n, &samples);
		print_message("size %zu: %d samples, estimate %.0f of %.0f\n",
			      sizes[c], samples, est, truth);
		assert_true(samples >= 100);
		assert_true(est > truth * 0.9 && est < truth * 1.1);
		for (i = 0; i < n; i++)
			zfree(blocks[i]);
		free(blocks);
	}
	sampling(false);
	zmalloc_set_sample_bytes(0);
	assert_int_equal(zmalloc_get_sample_bytes(),
			 ZMALLOC_SAMPLE_DEFAULT_BYTES);
	assert_int_equal(zm_sample_control.lost, 0);
}

/* The header a tracer reads (zmalloc_sampling.h), given a sampled block. */
static const struct zmalloc_sample_hdr *public_hdr(const void *p)
{
	/* Through an integer: the header is outside the block's bytes. */
	return (const struct zmalloc_sample_hdr *)((uintptr_t)p -
						   ZMALLOC_SAMPLE_HDR_SIZE);
}

/*
 * The live word: the block's address under the tag while allocated, 0 once
 * freed or moved by a realloc; what ztrace reads instead of sample_free.
 */
static void test_sample_live_word(void **state)
{
	void *blocks[4096], *moved[8];
	int i, n = 0;

	(void)state;
	zmalloc_set_sample_bytes(4096);
	sampling(true);
	for (i = 0; i < 4096 && n < 8; i++) {
		blocks[i] = zmalloc(512 + i);
		if (!is_sampled(blocks[i]))
			continue;
		assert_int_equal(public_hdr(blocks[i])->live,
				 ZMALLOC_SAMPLE_LIVE ^ (uintptr_t)blocks[i]);
		assert_int_equal(public_hdr(blocks[i])->usable, 512 + i);
		assert_true(public_hdr(blocks[i])->weight >= 512 + (unsigned)i);
		moved[n++] = blocks[i];
	}
	sampling(false);
	assert_int_equal(n, 8);
	for (int j = 0; j < i; j++)
		if (!is_sampled(blocks[j]))
			zfree(blocks[j]);
	/* Freed: the word is cleared, and the page stays in the region. */
	zfree(moved[0]);
	assert_int_equal(public_hdr(moved[0])->live, 0);
	/* Moved by a realloc (not sampling now): the old one is dead too. */
	for (int j = 1; j < 8; j++) {
		void *old = moved[j];

		moved[j] = zrealloc(old, 100000);
		assert_false(is_sampled(moved[j]));
		assert_int_equal(public_hdr(old)->live, 0);
		zfree(moved[j]);
	}
	zmalloc_set_sample_bytes(0);
}

/* The stack a tracer reads (zmalloc_sampling.h), given a sampled block. */
static const struct zmalloc_sample_stack *public_stack(const void *p)
{
	return (const struct zmalloc_sample_stack *)((uintptr_t)p -
						     ZMALLOC_SAMPLE_HDR_SIZE -
						     ZMALLOC_SAMPLE_STACK_SIZE);
}

/* A call site the stack must show: *ret is where this function returns. */
static __attribute__((noinline)) void *alloc_here(size_t size, uintptr_t *ret)
{
	void *p = zmalloc(size);

	*ret = (uintptr_t)__builtin_return_address(0);
	__asm__ volatile("" ::: "memory"); /* not a tail call */
	return p;
}

/* In a thread of its own, with a stack of its own: its first sample. */
static void *sample_in_thread(void *arg)
{
	uintptr_t *ret = arg;
	void *p;

	for (int i = 0; i < 100000; i++) {
		p = alloc_here(600, ret);
		if (is_sampled(p))
			return p;
		zfree(p);
	}
	return NULL;
}

static void check_stack(const void *p, uintptr_t ret)
{
	const struct zmalloc_sample_stack *st = public_stack(p);
	uint64_t k;

	assert_int_equal(st->check, ZMALLOC_SAMPLE_STACK ^ (uintptr_t)p);
	assert_in_range(st->nframes, 3, ZMALLOC_SAMPLE_FRAMES);
	/* zmalloc's frames come first, then alloc_here's caller, exactly. */
	for (k = 0; k < st->nframes && st->frames[k] != ret; k++)
		;
	assert_in_range(k, 1, st->nframes - 1);
}

/*
 * The allocating stack the library writes before sample_alloc fires: the
 * return addresses along the frame pointers, alloc_here's among them, on
 * the main thread and on another.
 */
static void test_sample_stack(void **state)
{
	uintptr_t ret = 0;
	pthread_t th;
	void *p = NULL, *q = NULL;
	int i;

	(void)state;
	zmalloc_set_sample_bytes(4096);
	sampling(true);
	for (i = 0; i < 100000 && !p; i++) {
		p = alloc_here(600, &ret);
		if (!is_sampled(p)) {
			zfree(p);
			p = NULL;
		}
	}
	assert_non_null(p);
	check_stack(p, ret);
	assert_int_equal(pthread_create(&th, NULL, sample_in_thread, &ret), 0);
	assert_int_equal(pthread_join(th, &q), 0);
	sampling(false);
	assert_non_null(q);
	check_stack(q, ret);
	zfree(p);
	zfree(q);
	zmalloc_set_sample_bytes(0);
}

/* Sampled blocks are ordinary blocks to the caller and to used_memory. */
static void test_sample_blocks_behave(void **state)
{
	size_t start = zmalloc_used_memory(), sum = 0, usable;
	void *blocks[512];
	int i, sampled = 0;

	(void)state;
	zmalloc_set_sample_bytes(4096);
	sampling(true);
	for (i = 0; i < 512; i++) {
		unsigned char *p = i % 2 ? zcalloc(1000 + i) :
					   zmalloc(1000 + i);

		if (i % 2) {
			size_t j;

			for (j = 0; j < (size_t)(1000 + i); j++)
				assert_int_equal(p[j], 0);
		}
		memset(p, i & 0xff, 1000 + i);
		blocks[i] = p;
		sum += zmalloc_size(p);
		if (is_sampled(p)) {
			sampled++;
			assert_int_equal(zmalloc_usable_size(p), 1000 + i);
			assert_int_equal((uintptr_t)p % 16, 0);
		}
	}
	assert_true(sampled > 50 && sampled < 512);
	assert_int_equal(zmalloc_used_memory() - start, sum);
	/* Grow every block: sampled ones move out or stay sampled. */
	for (i = 0; i < 512; i++) {
		unsigned char *p =
			zrealloc_usable(blocks[i], 3000 + i, &usable);
		int j;

		for (j = 0; j < 1000 + i; j++)
			assert_int_equal(p[j], i & 0xff);
		assert_int_equal(usable, zmalloc_usable_size(p));
		blocks[i] = p;
	}
	sampling(false);
	for (i = 0, sum = 0; i < 512; i++)
		sum += zmalloc_size(blocks[i]);
	assert_int_equal(zmalloc_used_memory() - start, sum);
	/* Sampled blocks are still known after the tracer has gone. */
	for (i = 0; i < 512; i++)
		zfree_with_size(blocks[i], zmalloc_usable_size(blocks[i]));
	assert_int_equal(zmalloc_used_memory(), start);
	zmalloc_set_sample_bytes(0);
}

/* A 50-byte block taken with sampling off, resized to 100 by RESIZE. */
static void *grow_unsampled(void *(*resize)(void *, size_t))
{
	unsigned short on = *sample_semaphore;
	void *p;

	*sample_semaphore = 0;
	p = zmalloc(50);
	*sample_semaphore = on;
	memset(p, 7, 50);
	return resize(p, 100);
}

/*
 * Every allocating entry point: N blocks of 100 bytes, zeroed by calloc,
 * the last one grown by RESIZE.
 */
static int alloc_each_way(void **b, size_t *usable,
			  void *(*resize)(void *, size_t))
{
	int n = 0;

	b[n++] = zmalloc(100);
	b[n++] = zcalloc(100);
	b[n++] = zcalloc_num(4, 25);
	b[n++] = ztrymalloc(100);
	b[n++] = ztrycalloc(100);
	b[n++] = zmalloc_usable(100, &usable[0]);
	b[n++] = zcalloc_usable(100, &usable[1]);
	b[n++] = ztrymalloc_usable(100, &usable[2]);
	b[n++] = ztrycalloc_usable(100, &usable[3]);
	b[n++] = zrealloc(NULL, 100);
	b[n++] = ztryrealloc(NULL, 100);
	b[n++] = zrealloc_usable(NULL, 100, &usable[4]);
	b[n++] = ztryrealloc_usable(NULL, 100, &usable[5]);
	b[n++] = zstrdup("a string of its own"); /* through zmalloc */
	b[n++] = grow_unsampled(resize);
	return n;
}

/*
 * In both copies: a request too large fails without the OOM handler from
 * a try call and leaves the block it would resize untouched, and the
 * usable resizes of a block (not NULL) give its new usable size.
 */
static void check_failures_and_resizes(bool on)
{
	size_t start = zmalloc_used_memory(), usable = 1;
	unsigned char *p, *q;
	int j;

	if (on) {
		sampling(true);
		zfree(zmalloc(1 << 20)); /* ends the last interval */
	}
	assert_null(ztrymalloc(SIZE_MAX / 2));
	assert_null(ztrycalloc_usable(SIZE_MAX / 2, &usable));
	assert_int_equal(usable, 0);
	p = zmalloc(40);
	memset(p, 3, 40);
	assert_null(ztryrealloc(p, SIZE_MAX / 2));
	usable = 1;
	assert_null(ztryrealloc_usable(p, SIZE_MAX / 2, &usable));
	assert_int_equal(usable, 0);
	for (j = 0; j < 40; j++)
		assert_int_equal(p[j], 3);
	q = zrealloc_usable(p, 300, &usable);
	assert_int_equal(usable, zmalloc_usable_size(q));
	assert_int_equal(is_sampled(q), on);
	p = ztryrealloc_usable(q, 3000, &usable);
	assert_non_null(p);
	assert_int_equal(usable, zmalloc_usable_size(p));
	assert_int_equal(is_sampled(p), on);
	for (j = 0; j < 40; j++)
		assert_int_equal(p[j], 3);
	if (on)
		sampling(false);
	zfree(p);
	assert_int_equal(zmalloc_used_memory(), start);
}

/*
 * Each entry point is a dispatcher and two copies of its body, one of
 * them sampling: every one of them samples while the semaphore is up (at
 * one byte, every request), none while it is down, and each gives a block
 * of the size asked, zeroed if asked, counted exactly in used_memory.
 */
static void test_sample_every_entry_point(void **state)
{
	void *(*resizes[])(void *, size_t) = { zrealloc, ztryrealloc };
	static const int usable_at[6] = { 5, 6, 7, 8, 11, 12 };
	size_t start = zmalloc_used_memory(), sum, usable[6];
	void *b[16];
	int on, r, i, j, n;

	(void)state;
	zmalloc_set_sample_bytes(1);
	for (on = 1; on >= 0; on--) {
		for (r = 0; r < 2; r++) {
			if (on) {
				sampling(true);
				/* Ends the interval drawn at the last rate. */
				zfree(zmalloc(1 << 20));
			}
			/* Dirty blocks (pages) for the next to reuse. */
			for (i = 0; i < 16; i++)
				b[i] = zmalloc(100);
			for (i = 0; i < 16; i++) {
				memset(b[i], 0xa5, 100);
				zfree(b[i]);
			}
			memset(usable, 0xff, sizeof(usable));
			n = alloc_each_way(b, usable, resizes[r]);
			if (on)
				sampling(false);
			assert_int_equal(n, 15);
			for (i = 0, sum = 0; i < n; i++) {
				assert_non_null(b[i]);
				assert_int_equal(is_sampled(b[i]), on);
				sum += zmalloc_size(b[i]);
			}
			/* The blocks given with their usable size, in order. */
			for (i = 0; i < 6; i++)
				assert_int_equal(
					usable[i],
					zmalloc_usable_size(b[usable_at[i]]));
			for (i = 0; i < n; i++) {
				bool zeroed = i == 1 || i == 2 || i == 4 ||
					      i == 6 || i == 8;
				/* A sample is as large as asked, no larger. */
				size_t want = i == 13 ? strlen(b[13]) + 1 : 100;

				if (on)
					assert_int_equal(
						zmalloc_usable_size(b[i]),
						want);
				for (j = 0; zeroed && j < 100; j++)
					assert_int_equal(
						((unsigned char *)b[i])[j], 0);
			}
			assert_string_equal(b[13], "a string of its own");
			for (j = 0; j < 50; j++)
				assert_int_equal(((unsigned char *)b[14])[j],
						 7);
			assert_int_equal(zmalloc_used_memory() - start, sum);
			for (i = 0; i < n; i++)
				zfree(b[i]);
			assert_int_equal(zmalloc_used_memory(), start);
		}
		check_failures_and_resizes(on);
	}
	zmalloc_set_sample_bytes(0);
}

/* The sampler's logarithm against libm's, over (0, 1] and its corners. */
static void test_sample_ln_matches_libm(void **state)
{
	double (*ln)(double) = (double (*)(double))lib_symbol("zm_sample_ln");
	static const double corners[] = { 0x1p-53,
					  0.25,
					  0.5,
					  0.7071067811865475,
					  0.7071067811865476,
					  0.75,
					  0.9999,
					  1 - 0x1p-53,
					  1 };
	uint64_t r = 88172645463325252ULL;
	double u, want, got;
	int i;

	(void)state;
	assert_non_null(ln);
	for (i = 0; i < 200000 + (int)(sizeof(corners) / sizeof(corners[0]));
	     i++) {
		if (i < 200000) {
			r ^= r << 13, r ^= r >> 7, r ^= r << 17;
			u = (double)((r >> 11) + 1) * 0x1p-53;
		} else {
			u = corners[i - 200000];
		}
		want = log(u);
		got = ln(u);
		if (fabs(got - want) > 3e-9 * fabs(want))
			fail_msg("ln(%.17g) = %.17g, libm %.17g", u, got, want);
	}
}

/*
 * A sample's weight is s / (1 - exp(-s / mean)), to the byte: small blocks
 * (its series, to mean / 64, where its x^2 term is 20 bytes and more) and
 * the blocks past that (expm1).
 */
static void test_sample_weights_exact(void **state)
{
	static const size_t sizes[] = { 1,     16,    100,   1000,
					4000,  16000, 16383, 16384,
					16385, 65536, 262144 };
	const double mean = 1 << 20;
	int small = 0, large = 0; /* samples under and over mean / 64 */
	size_t s, i;
	void *p;

	(void)state;
	zmalloc_set_sample_bytes((size_t)mean);
	sampling(true);
	/* Ends the interval drawn at the last rate: a weight is at its own. */
	zfree(zmalloc(1 << 30));
	for (i = 0; (small < 20 || large < 20) && i < 1000000; i++) {
		s = sizes[i % (sizeof(sizes) / sizeof(sizes[0]))];
		p = zmalloc(s);
		if (is_sampled(p)) {
			uint64_t want = (uint64_t)llround(
				(double)s / -expm1(-(double)s / mean));
			uint64_t got = public_hdr(p)->weight;

			if (got + 1 < want || got > want + 1)
				fail_msg("weight of %zu bytes: %llu, want %llu",
					 s, (unsigned long long)got,
					 (unsigned long long)want);
			if (s < mean / 64)
				small++;
			else
				large++;
		}
		zfree(p);
	}
	sampling(false);
	assert_true(small >= 20 && large >= 20);
	zmalloc_set_sample_bytes(0);
}

/* A tracer that stores a mean of 0 gets the default, not a stalled sampler. */
static void test_sample_zero_mean_is_default(void **state)
{
	int i, samples = 0;
	void *p;

	(void)state;
	sampling(true);
	zfree(zmalloc(1 << 30)); /* ends the last interval */
	__atomic_store_n(&zm_sample_control.mean_bytes, 0, __ATOMIC_RELAXED);
	zfree(zmalloc(1 << 30)); /* draws one at the mean stored: 0 */
	for (i = 0; i < 16384; i++) { /* 16 MiB: about 32 samples */
		p = zmalloc(1024);
		samples += is_sampled(p);
		zfree(p);
	}
	sampling(false);
	zmalloc_set_sample_bytes(0);
	assert_true(samples >= 8 && samples <= 96);
}

static void *alloc_for_other_thread(void *arg)
{
	void **blocks = arg;
	int i;

	for (i = 0; i < 2000; i++)
		blocks[i] = zmalloc(512);
	return NULL;
}

static void test_sample_cross_thread_free(void **state)
{
	size_t start = zmalloc_used_memory();
	void *blocks[2000];
	pthread_t tid;
	int i, samples;

	(void)state;
	zmalloc_set_sample_bytes(8192);
	sampling(true);
	assert_int_equal(
		pthread_create(&tid, NULL, alloc_for_other_thread, blocks), 0);
	pthread_join(tid, NULL);
	estimate(blocks, 2000, &samples);
	assert_true(samples > 0);
	for (i = 0; i < 2000; i++)
		zfree(blocks[i]);
	sampling(false);
	assert_int_equal(zmalloc_used_memory(), start);
	zmalloc_set_sample_bytes(0);
}

/* A thread's ZM_STASH_PAGES one-page samples, freed: its stash, then exit. */
static void *fill_stash_and_exit(void *arg)
{
	void **blocks = arg;
	int i;

	zfree(zmalloc(100)); /* arms this thread's sampler, unsampled */
	for (i = 0; i < ZM_STASH_PAGES; i++)
		blocks[i] = zmalloc(100);
	for (i = 0; i < ZM_STASH_PAGES; i++)
		zfree(blocks[i]);
	return NULL;
}

/*
 * A one-page sample takes the page its thread freed last, without the
 * heap's lock (first fit would take the lowest); a thread's stash goes
 * back to the heap when it exits, so its pages are free again.
 */
static void test_sample_stash(void **state)
{
	void *mine[ZM_STASH_PAGES * 2], *theirs[ZM_STASH_PAGES], *p, *q;
	size_t start = zmalloc_used_memory();
	pthread_t tid;
	int i, j, found;

	(void)state;
	zmalloc_set_sample_bytes(1);
	sampling(true);
	/* Ends the interval drawn at the last test's rate, whatever it is. */
	zfree(zmalloc(1 << 20));
	/*
	 * Freed lower first, the higher page is taken next: from the stash,
	 * last in first out, where first fit would take the lower.
	 */
	p = zmalloc(100);
	q = zmalloc(100);
	assert_true(is_sampled(p) && is_sampled(q));
	if (p > q) {
		void *t = p;

		p = q;
		q = t;
	}
	zfree(p);
	zfree(q);
	p = zmalloc(100);
	assert_ptr_equal(p, q);
	zfree(p);
	assert_int_equal(
		pthread_create(&tid, NULL, fill_stash_and_exit, theirs), 0);
	pthread_join(tid, NULL);
	for (i = 0; i < ZM_STASH_PAGES; i++)
		assert_true(is_sampled(theirs[i]));
	/* Past this thread's own stash: the heap's lowest free pages. */
	for (i = 0; i < ZM_STASH_PAGES * 2; i++) {
		mine[i] = zmalloc(100);
		assert_true(is_sampled(mine[i]));
	}
	for (i = 0; i < ZM_STASH_PAGES; i++) {
		for (j = 0, found = 0; j < ZM_STASH_PAGES * 2; j++)
			found += mine[j] == theirs[i];
		assert_int_equal(found, 1);
	}
	for (i = 0; i < ZM_STASH_PAGES * 2; i++)
		zfree(mine[i]);
	sampling(false);
	assert_int_equal(zmalloc_used_memory(), start);
	zmalloc_set_sample_bytes(0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sample_off_without_tracer),
		cmocka_unit_test(test_sample_estimates_unbiased),
		cmocka_unit_test(test_sample_blocks_behave),
		cmocka_unit_test(test_sample_every_entry_point),
		cmocka_unit_test(test_sample_ln_matches_libm),
		cmocka_unit_test(test_sample_weights_exact),
		cmocka_unit_test(test_sample_zero_mean_is_default),
		cmocka_unit_test(test_sample_live_word),
		cmocka_unit_test(test_sample_stack),
		cmocka_unit_test(test_sample_cross_thread_free),
		cmocka_unit_test(test_sample_stash),
	};

	(void)argc;
	if (!getenv("ZMALLOC_SAMPLE_SEED")) {
		setenv("ZMALLOC_SAMPLE_SEED", "12345", 1);
		execv(argv[0], argv);
		return 1;
	}
#ifdef ZM_NO_PROBES
	/* Sampling is compiled out with the probes: nothing to test. */
	return 0;
#endif
	return cmocka_run_group_tests(tests, setup, NULL);
}
