/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * zm_sample_heap.c - the page-run allocator of the sampled blocks
 * (design: zm_sample_heap.h).
 */
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include "zm_sample_heap.h"

#define ZM_PAGE 4096UL
#define ZM_MAX_PAGES (ZM_SAMPLE_HEAP_MAX / ZM_PAGE)
#define ZM_MIN_LEN ((uintptr_t)128 << 20)

/* The only writer is heap_reserve(); base is published before len. */
struct zm_sample_region zm_sample_region;

static uint64_t page_used[ZM_MAX_PAGES / 64]; /* 2 MiB of bss, as used */
static uint64_t npages;			      /* pages in the region */
static uint64_t search_from;	     /* word where the last run was found */
static pthread_mutex_t heap_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t heap_once = PTHREAD_ONCE_INIT;
static bool heap_ok;

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
	npages = len / ZM_PAGE;
	heap_ok = true;
	__atomic_store_n(&zm_sample_region.base, (uintptr_t)region,
			 __ATOMIC_RELAXED);
	__atomic_store_n(&zm_sample_region.len, len, __ATOMIC_RELEASE);
}

static bool page_is_used(uint64_t page)
{
	return page_used[page / 64] & (1ULL << (page % 64));
}

static void pages_mark(uint64_t first, uint64_t n, bool used)
{
	uint64_t page;

	for (page = first; page < first + n; page++) {
		if (used)
			page_used[page / 64] |= 1ULL << (page % 64);
		else
			page_used[page / 64] &= ~(1ULL << (page % 64));
	}
}

/* First fit from where the last search ended; returns npages if none. */
static uint64_t pages_find(uint64_t n)
{
	uint64_t start = search_from * 64, scanned, run = 0, first = 0;

	for (scanned = 0; scanned < npages + n; scanned++) {
		uint64_t page = (start + scanned) % npages;

		if (page == 0)
			run = 0; /* a run cannot wrap around the end */
		if (run == 0 && page % 64 == 0 && page_used[page / 64] == ~0ULL) {
			scanned += 63;
			continue;
		}
		if (page_is_used(page)) {
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

void *zm_sample_heap_alloc(size_t usable, uint64_t weight)
{
	uint64_t want, first;
	struct zm_sample_hdr *hdr;

	pthread_once(&heap_once, heap_reserve);
	if (!heap_ok || usable > zm_sample_region.len / 2)
		return NULL;
	want = (usable + ZM_SAMPLE_HDR_SIZE + ZM_PAGE - 1) / ZM_PAGE;
	pthread_mutex_lock(&heap_lock);
	first = pages_find(want);
	if (first != npages) {
		pages_mark(first, want, true);
		search_from = (first + want) / 64 % (npages / 64);
	}
	pthread_mutex_unlock(&heap_lock);
	if (first == npages)
		return NULL;
	hdr = (struct zm_sample_hdr *)(zm_sample_region.base + first * ZM_PAGE);
	hdr->npages = want;
	hdr->usable = usable;
	hdr->weight = weight;
	return (char *)hdr + ZM_SAMPLE_HDR_SIZE;
}

void zm_sample_heap_free(void *p)
{
	struct zm_sample_hdr *hdr = zm_sample_hdr_of(p);
	uint64_t first = ((uintptr_t)hdr - zm_sample_region.base) / ZM_PAGE;
	uint64_t n = hdr->npages;

	/* Zero pages for the next block, and the memory goes back now. */
	madvise(hdr, n * ZM_PAGE, MADV_DONTNEED);
	pthread_mutex_lock(&heap_lock);
	pages_mark(first, n, false);
	pthread_mutex_unlock(&heap_lock);
}
