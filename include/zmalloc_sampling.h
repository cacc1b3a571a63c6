/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * zmalloc_sampling.h - sampled allocation probes, for production tracing.
 *
 * Exact tracing enters the kernel at every allocation. The sampled probes
 * (zmalloc_probes.h: sample_alloc, sample_free) fire for about one block
 * per ZMALLOC_SAMPLE_BYTES allocated instead, and only while a tracer holds
 * the semaphore of sample_alloc; with it at zero, sampling costs one load
 * and a predicted branch per allocation (and a direct jump: lib/zmalloc.c)
 * and is otherwise off.
 *
 * While on, each thread counts down the requested bytes it allocates to its
 * next sample; the intervals are drawn from an exponential distribution with
 * a mean of ZMALLOC_SAMPLE_BYTES bytes, so a block of s bytes is sampled
 * with probability p = 1 - exp(-s / mean), whatever came before it. Its
 * weight, the bytes it stands for, is s / p (Go's and tcmalloc's unbiased
 * heap-profile estimate); 1 / p blocks is weight / s. Summing the weights of
 * the samples estimates the bytes allocated, or still live, of any group.
 *
 * A sampled block lives in a region reserved for sampled blocks, so that a
 * free recognises one by its address: sample_free fires for sampled blocks
 * only, and the free of any other block costs one compare.
 *
 * A tracer need not trace sample_free at all: the ZMALLOC_SAMPLE_HDR_SIZE
 * bytes before a sampled block p are a struct zmalloc_sample_hdr, whose
 * live word is ZMALLOC_SAMPLE_LIVE ^ (uintptr_t)p while the block is
 * allocated and 0 once it is freed (the library clears it before the
 * block's memory can be handed out again). Reading that header from
 * outside (process_vm_readv) tells a tracer which of the samples it saw
 * are still live, and spares the process one kernel entry per sample.
 * Before the header, a struct zmalloc_sample_stack holds the block's
 * allocating stack, walked by the library along the frame pointers when it
 * took the sample, so that a tracer can read it in one piece rather than
 * walk it frame by frame from the kernel (see the struct).
 *
 * Settings:
 *   ZMALLOC_SAMPLE_BYTES  (environment) mean bytes between samples, default
 *                         524288; zmalloc_set_sample_bytes() changes it
 *   ZMALLOC_SAMPLE_SEED   (environment) seeds every thread's generator from
 *                         this number and the thread's order of starting to
 *                         sample, for reproducible runs
 *
 * A tracer may change the rate of a running process without calling into
 * it: find ZMALLOC_SAMPLE_SYMBOL as zmalloc_counters.h describes for its
 * counters, check magic, and store the new mean_bytes (an aligned 8-byte
 * write; above 2^62 it is taken as 2^62, and 0 as the default). Each thread takes it at its next
 * interval. lost counts samples that could not be placed in the sampled
 * region and were dropped (their blocks were served unsampled): a tracer
 * should report it.
 */
#ifndef ZMALLOC_SAMPLING_H
#define ZMALLOC_SAMPLING_H

#include <stdint.h>

#define ZMALLOC_SAMPLE_SYMBOL "zm_sample_control"
/*
 * Layout 3: the control below; the block header with its live word, and
 * the allocating stack before it.
 */
#define ZMALLOC_SAMPLE_MAGIC 0x33706d6173666d7aULL /* "zmfsamp3" */
#define ZMALLOC_SAMPLE_DEFAULT_BYTES 524288

struct zmalloc_sample_control {
	uint64_t magic; /* ZMALLOC_SAMPLE_MAGIC */
	uint64_t mean_bytes; /* mean interval between samples, > 0 */
	uint64_t lost; /* samples dropped: the sampled region was full */
	uint64_t pad;
};

#define ZMALLOC_SAMPLE_HDR_SIZE 32
#define ZMALLOC_SAMPLE_LIVE 0x6576696c706d737aULL /* "zsmplive" */

/* The header before every sampled block; the library's, read-only. */
struct zmalloc_sample_hdr {
	uint64_t npages; /* pages of the block, this header included */
	uint64_t usable; /* bytes the caller may use */
	uint64_t weight; /* the sample's weight, as sample_alloc gave it */
	uint64_t live; /* ZMALLOC_SAMPLE_LIVE ^ block address, or 0 */
};

#define ZMALLOC_SAMPLE_FRAMES 31
#define ZMALLOC_SAMPLE_STACK_SIZE 272
#define ZMALLOC_SAMPLE_STACK 0x6b63617473706d7aULL /* "zmpstack" */

/*
 * The ZMALLOC_SAMPLE_STACK_SIZE bytes before a sampled block's header: the
 * stack that allocated it, written before sample_alloc fires. frames[0] is
 * the return address of the function that fired sample_alloc (the probe's
 * own address is the tracer's to add), then its callers' in turn, as the
 * frame-pointer chain of the calling thread gives them: a frame pointer is
 * followed while it rises and stays on the thread's stack, and the walk
 * ends at a zero return address. nframes is 0 when the library found no
 * frame, or did not walk (the frame pointer was off the thread's known
 * stack: a signal stack, a coroutine's); the tracer walks then. next_fp is the frame pointer
 * where a walk deeper than frames[] would go on, or 0 at the chain's end;
 * the frames past nframes are 0.
 * check is ZMALLOC_SAMPLE_STACK ^ the block's address once it is written.
 */
struct zmalloc_sample_stack {
	uint64_t check;
	uint64_t nframes;
	uint64_t next_fp;
	uint64_t frames[ZMALLOC_SAMPLE_FRAMES];
};

/*
 * sample_alloc's stack argument: this hash of frames[0..nframes), or 0
 * when nframes is 0. A tracer that has read a stack once knows it again by
 * its hash, without reading the frames (a user read from the kernel cost
 * about as much as the rest of a sample's program here). FNV-1a over the
 * 64-bit words, with the low bit set so that no hash is 0.
 */
#define ZMALLOC_SAMPLE_HASH_BASIS 0xcbf29ce484222325ULL /* FNV-1a 64 */
#define ZMALLOC_SAMPLE_HASH_PRIME 0x100000001b3ULL

static inline uint64_t zmalloc_sample_stack_hash(const uint64_t *frames,
						 uint64_t nframes)
{
	uint64_t h = ZMALLOC_SAMPLE_HASH_BASIS, i;

	for (i = 0; i < nframes; i++)
		h = (h ^ frames[i]) * ZMALLOC_SAMPLE_HASH_PRIME;
	return nframes ? h | 1 : 0;
}

#endif /* ZMALLOC_SAMPLING_H */
