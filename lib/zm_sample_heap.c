/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * zm_sample_heap.c - the page-run allocator of the sampled blocks
 * (design: zm_sample_heap.h).
 *
 * First fit from the lowest free page, so that freed pages are taken again
 * at once: they are already faulted in and mapped in the TLB. Freed pages
 * are kept as they are, dirty, up to ZM_DIRTY_MAX of them, and given back
 * to the kernel with MADV_DONTNEED past that: a sampled free then costs no
 * system call and, with threads, no TLB shootdown. A block made of dirty
 * pages is zeroed only when the caller asked for zeroes.
 *
 * A sample of one page (most of them: up to 3792 usable bytes) does not
 * take the lock at all: each thread keeps a stash of up to
 * ZM_STASH_PAGES single pages it freed, for its next one-page samples.
 * With threads, the lock and the bitmap words would otherwise pass
 * between CPUs at every sample. Stashed pages are dirty too, outside
 * ZM_DIRTY_MAX: up to ZM_STASH_PAGES a thread. The stash goes back to the
 * heap when its thread exits. A child of fork() has only the forking
 * thread's: the other threads' stashed pages stay taken in the child.
 */
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "zm_sample_heap.h"

#define ZM_PAGE 4096UL
#define ZM_MAX_PAGES (ZM_SAMPLE_HEAP_MAX / ZM_PAGE)
#define ZM_MIN_LEN ((uintptr_t)128 << 20)
#define ZM_DIRTY_MAX 2048 /* 8 MiB of freed pages kept */

_Static_assert(ZM_MAX_PAGES <= UINT32_MAX, "a page index fits a stash slot");

/* The only writer is heap_reserve(); base is published before len. */
struct zm_sample_region zm_sample_region;

/* 2 MiB of bss each, touched as the region is used. */
static uint64_t page_used[ZM_MAX_PAGES / 64];
static uint64_t page_dirty[ZM_MAX_PAGES / 64]; /* free, not zero */
static uint64_t npages; /* pages in the region */
static uint64_t low_word; /* every word below it is fully used */
static uint64_t dirty_pages; /* free pages kept dirty */
static pthread_mutex_t heap_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t heap_once = PTHREAD_ONCE_INIT;
static bool heap_ok;

/*
 * A thread's single free pages, by page index; see above. Small: static
 * TLS (initial-exec) has little room when copies of the library are
 * dlopen()ed, as bench_zmalloc does.
 */
struct zm_page_stash {
	uint32_t page[ZM_STASH_PAGES];
	uint32_t n;
	bool registered; /* stash_key holds it: returned at thread exit */
	bool closed; /* returned: the thread is exiting */
};

static __thread struct zm_page_stash zm_page_stash
	__attribute__((tls_model("initial-exec")));
static pthread_key_t stash_key;
static bool stash_key_ok;

static void stash_return(void *arg);

static void heap_lock_prefork(void)
{
	pthread_mutex_lock(&heap_lock);
}

static void heap_unlock_postfork(void)
{
	pthread_mutex_unlock(&heap_lock);
}

static void heap_reserve(void)
{
	uintptr_t len;
	void *region = MAP_FAILED;

	/* Address space only: MAP_NORESERVE commits nothing until touched. */
	for (len = ZM_SAMPLE_HEAP_MAX; len >= ZM_MIN_LEN; len /= 8) {
		region = mmap(NULL, len, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
			      0);
		if (region != MAP_FAILED)
			break;
	}
	if (region == MAP_FAILED)
		return;
	if (pthread_atfork(heap_lock_prefork, heap_unlock_postfork,
			   heap_unlock_postfork) != 0) {
		munmap(region, len);
		return;
	}
	stash_key_ok = pthread_key_create(&stash_key, stash_return) == 0;
	npages = len / ZM_PAGE;
	heap_ok = true;
	__atomic_store_n(&zm_sample_region.base, (uintptr_t)region,
			 __ATOMIC_RELAXED);
	__atomic_store_n(&zm_sample_region.len, len, __ATOMIC_RELEASE);
}

static bool bit_test(const uint64_t *map, uint64_t page)
{
	return map[page / 64] & (1ULL << (page % 64));
}

static void bit_set(uint64_t *map, uint64_t page, bool on)
{
	if (on)
		map[page / 64] |= 1ULL << (page % 64);
	else
		map[page / 64] &= ~(1ULL << (page % 64));
}

/* First fit from the lowest free page; returns npages if none. */
static uint64_t pages_find(uint64_t n)
{
	uint64_t page, run = 0, first = 0;

	for (page = low_word * 64; page < npages; page++) {
		if (run == 0 && page % 64 == 0 &&
		    page_used[page / 64] == ~0ULL) {
			page += 63;
			continue;
		}
		if (bit_test(page_used, page)) {
			run = 0;
			continue;
		}
		if (run++ == 0)
			first = page;
		if (run == n)
			return first;
	}
	return npages;
}

/* Takes pages [first, first + n); returns how many of them were dirty. */
static uint64_t pages_take(uint64_t first, uint64_t n)
{
	uint64_t page, dirty = 0;

	for (page = first; page < first + n; page++) {
		bit_set(page_used, page, true);
		if (bit_test(page_dirty, page)) {
			bit_set(page_dirty, page, false);
			dirty++;
		}
	}
	dirty_pages -= dirty;
	while (low_word < npages / 64 && page_used[low_word] == ~0ULL)
		low_word++;
	return dirty;
}

static void pages_give(uint64_t first, uint64_t n, bool dirty)
{
	uint64_t page;

	for (page = first; page < first + n; page++) {
		bit_set(page_used, page, false);
		bit_set(page_dirty, page, dirty);
	}
	if (dirty)
		dirty_pages += n;
	if (first / 64 < low_word)
		low_word = first / 64;
}

/*
 * Pages [first, first + n) are free again: kept dirty for the next
 * samples while under ZM_DIRTY_MAX, else given back to the kernel.
 */
static void pages_release(uint64_t first, uint64_t n)
{
	bool keep;

	pthread_mutex_lock(&heap_lock);
	keep = dirty_pages + n <= ZM_DIRTY_MAX;
	if (keep)
		pages_give(first, n, true);
	pthread_mutex_unlock(&heap_lock);
	if (keep)
		return;
	/* Past the cache: the memory goes back, and the pages read as zero. */
	madvise((void *)(zm_sample_region.base + first * ZM_PAGE), n * ZM_PAGE,
		MADV_DONTNEED);
	pthread_mutex_lock(&heap_lock);
	pages_give(first, n, false);
	pthread_mutex_unlock(&heap_lock);
}

/* The thread exits (a stash_key destructor): its stash goes back. */
static void stash_return(void *arg)
{
	struct zm_page_stash *st = arg;

	st->closed = true;
	while (st->n)
		pages_release(st->page[--st->n], 1);
}

/* A page for a one-page sample from the stash, or false. */
static bool stash_take(uint64_t *page)
{
	struct zm_page_stash *st = &zm_page_stash;

	if (!st->n)
		return false;
	*page = st->page[--st->n];
	return true;
}

/* Keeps a freed one-page sample's page in the stash, or says false. */
static bool stash_keep(uint64_t page)
{
	struct zm_page_stash *st = &zm_page_stash;

	if (st->closed || st->n == ZM_STASH_PAGES)
		return false;
	if (!st->registered) {
		/* Once per thread: the destructor is what returns the stash. */
		if (!stash_key_ok || pthread_setspecific(stash_key, st))
			return false;
		st->registered = true;
	}
	st->page[st->n++] = page;
	return true;
}

void *zm_sample_heap_alloc(size_t usable, uint64_t weight, bool zero)
{
	uint64_t want, first, dirty = 0;
	struct zm_sample_hdr *hdr;
	char *block;

	want = (usable + ZM_SAMPLE_PREFIX + ZM_PAGE - 1) / ZM_PAGE;
	if (want == 1 && stash_take(&first)) {
		dirty = 1;
		goto place;
	}
	pthread_once(&heap_once, heap_reserve);
	if (!heap_ok || usable > zm_sample_region.len / 2)
		return NULL;
	pthread_mutex_lock(&heap_lock);
	first = pages_find(want);
	if (first != npages)
		dirty = pages_take(first, want);
	pthread_mutex_unlock(&heap_lock);
	if (first == npages)
		return NULL;
place:
	block = (char *)(zm_sample_region.base + first * ZM_PAGE +
			 ZM_SAMPLE_PREFIX);
	hdr = zm_sample_hdr_of(block);
	if (zero && dirty)
		memset(block, 0, usable);
	hdr->npages = want;
	hdr->usable = usable;
	hdr->weight = weight;
	/* Before sample_alloc fires: the tracer may read it at once. */
	hdr->live = ZMALLOC_SAMPLE_LIVE ^ (uintptr_t)block;
	return block;
}

void zm_sample_heap_free(void *p)
{
	struct zm_sample_hdr *hdr = zm_sample_hdr_of(p);
	uint64_t first =
		((uintptr_t)zm_sample_stack_of(p) - zm_sample_region.base) /
		ZM_PAGE;
	uint64_t n = hdr->npages;

	/* Dead to a tracer before another thread can be given the pages. */
	__atomic_store_n(&hdr->live, 0, __ATOMIC_RELEASE);
	if (n == 1 && stash_keep(first))
		return;
	pages_release(first, n);
}
