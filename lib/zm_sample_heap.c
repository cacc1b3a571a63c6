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
#define ZM_PAGES (ZM_SAMPLE_HEAP_LEN / ZM_PAGE)
#define ZM_WORDS (ZM_PAGES / 64)

/* The kernel half of the address space: no user pointer falls in it. */
uintptr_t zm_sample_heap_base = (uintptr_t)0 - ZM_SAMPLE_HEAP_LEN;

static uint64_t page_used[ZM_WORDS]; /* 2 MiB of bss, touched as used */
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
	void *region;

	/* Address space only: MAP_NORESERVE commits nothing until touched. */
	region = mmap(NULL, ZM_SAMPLE_HEAP_LEN, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (region == MAP_FAILED)
		return;
	if (pthread_atfork(heap_lock_prefork, heap_unlock_postfork,
			   heap_unlock_postfork) != 0) {
		munmap(region, ZM_SAMPLE_HEAP_LEN);
		return;
	}
	heap_ok = true;
	__atomic_store_n(&zm_sample_heap_base, (uintptr_t)region,
			 __ATOMIC_RELEASE);
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

/* First fit from where the last search ended; returns ZM_PAGES if none. */
static uint64_t pages_find(uint64_t n)
{
	uint64_t start = search_from * 64, scanned, run = 0, first = 0;

	for (scanned = 0; scanned < ZM_PAGES + n; scanned++) {
		uint64_t page = (start + scanned) % ZM_PAGES;

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
	return ZM_PAGES;
}

void *zm_sample_heap_alloc(size_t usable, uint64_t weight)
{
	uint64_t npages, first;
	struct zm_sample_hdr *hdr;

	pthread_once(&heap_once, heap_reserve);
	if (!heap_ok || usable > ZM_SAMPLE_HEAP_LEN / 2)
		return NULL;
	npages = (usable + ZM_SAMPLE_HDR_SIZE + ZM_PAGE - 1) / ZM_PAGE;
	pthread_mutex_lock(&heap_lock);
	first = pages_find(npages);
	if (first != ZM_PAGES) {
		pages_mark(first, npages, true);
		search_from = (first + npages) / 64 % ZM_WORDS;
	}
	pthread_mutex_unlock(&heap_lock);
	if (first == ZM_PAGES)
		return NULL;
	hdr = (struct zm_sample_hdr *)(zm_sample_heap_base + first * ZM_PAGE);
	hdr->npages = npages;
	hdr->usable = usable;
	hdr->weight = weight;
	return (char *)hdr + ZM_SAMPLE_HDR_SIZE;
}

void zm_sample_heap_free(void *p)
{
	struct zm_sample_hdr *hdr = zm_sample_hdr_of(p);
	uint64_t first = ((uintptr_t)hdr - zm_sample_heap_base) / ZM_PAGE;
	uint64_t npages = hdr->npages;

	/* Zero pages for the next block, and the memory goes back now. */
	madvise(hdr, npages * ZM_PAGE, MADV_DONTNEED);
	pthread_mutex_lock(&heap_lock);
	pages_mark(first, npages, false);
	pthread_mutex_unlock(&heap_lock);
}
