/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * zmalloc_probes.h - the USDT probe contract of libzmalloc.
 *
 * This is a stable interface: bpftrace, ztrace and any other USDT tracer may
 * rely on it. Provider "zmalloc". Every probe fires once its operation has
 * succeeded, with the real pointers the caller sees. All sizes are in bytes,
 * all arguments are 8-byte unsigned integers (pointers as addresses).
 *
 *   probe    arg0      arg1       arg2        arg3       arg4
 *   -------  --------  ---------  ----------  ---------  ----------
 *   alloc    ptr       requested  usable
 *   free     ptr       usable
 *   realloc  old ptr   new ptr    old usable  requested  new usable
 *   oom      requested
 *
 *   sample_alloc  ptr  requested  usable  weight  stack
 *   sample_free   ptr  usable     weight
 *
 * - "requested" is the size the caller asked for (num * size for calloc,
 *   strlen + 1 for strdup); "usable" is zmalloc_usable_size() of the block.
 * - Every allocating call (plain, calloc, calloc_num, strdup, try, usable)
 *   fires alloc. A realloc that moves or resizes a block fires one realloc
 *   event, never a free plus an alloc. zrealloc(NULL, n) fires alloc;
 *   zrealloc(p, 0) fires free.
 * - oom fires for every failed request, try family included, before the
 *   OOM handler (if any) is called; a failed realloc fires only oom.
 * - A failed allocation fires nothing else.
 * - sample_alloc and sample_free fire for sampled blocks only, beside the
 *   exact probes above, and only while a tracer holds sample_alloc's
 *   semaphore (see zmalloc_sampling.h). weight is the number of bytes the
 *   sample stands for; sample_free repeats the weight given at allocation.
 *   A realloc into a sampled block fires sample_alloc for the new block; a
 *   realloc or free of a sampled block fires sample_free for it. stack is
 *   the hash of the allocating stack the library wrote before the block
 *   (zmalloc_sample_stack_hash), or 0 if it wrote none.
 *
 * Cost: each probe has its own semaphore (the kernel's uprobe reference
 * counter), so no argument is computed while no tracer is attached. Each
 * probe site is the 5-byte nop 0f 1f 44 00 00, which the kernel turns into
 * a call after the first hit instead of a trap; the library is built with
 * -mno-red-zone because that call writes below the stack pointer.
 *
 * Example, bytes allocated by size (bpftrace):
 *   bpftrace -e 'usdt:/usr/lib/libzmalloc.so.1:zmalloc:alloc
 *       { @bytes = hist(arg1); }'
 */
#ifndef ZMALLOC_PROBES_H
#define ZMALLOC_PROBES_H

#define ZMALLOC_PROBE_PROVIDER "zmalloc"
#define ZMALLOC_PROBE_ALLOC "alloc"
#define ZMALLOC_PROBE_FREE "free"
#define ZMALLOC_PROBE_REALLOC "realloc"
#define ZMALLOC_PROBE_OOM "oom"
#define ZMALLOC_PROBE_SAMPLE_ALLOC "sample_alloc"
#define ZMALLOC_PROBE_SAMPLE_FREE "sample_free"

#endif /* ZMALLOC_PROBES_H */
