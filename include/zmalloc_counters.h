/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * zmalloc_counters.h - where used_memory lives, for readers outside the
 * process.
 *
 * used_memory is kept in per-thread slots so the hot path never touches a
 * shared cache line or an atomic read-modify-write: each slot has a single
 * writer, the thread that owns it. A thread may free another thread's block,
 * so a slot can go negative; only the sum is meaningful. A thread that exits
 * gives its slot back with its balance intact and the next new thread takes
 * it over, so the sum stays exact for any number of threads.
 *
 * Slots live in a chain of chunks. The first chunk is the exported object
 * ZMALLOC_COUNTERS_SYMBOL (find it in the dynamic symbol table of
 * libzmalloc.so, or the symbol table of a statically linked executable).
 * To read used_memory from outside, without calling into the process:
 *
 *   addr = load address of ZMALLOC_COUNTERS_SYMBOL
 *   sum = 0
 *   while (addr) {
 *           read struct zmalloc_counter_chunk at addr (process_vm_readv)
 *           check magic == ZMALLOC_COUNTERS_MAGIC, version == 1
 *           read nused slots at addr + sizeof(struct zmalloc_counter_chunk)
 *           sum += slot.bytes for each of them
 *           addr = next
 *   }
 *
 * The sum equals zmalloc_used_memory() at any quiescent moment; while the
 * process allocates it is as close as a racing read can be. All fields are
 * fixed width and little-endian as the process writes them.
 */
#ifndef ZMALLOC_COUNTERS_H
#define ZMALLOC_COUNTERS_H

#include <stdint.h>

#define ZMALLOC_COUNTERS_SYMBOL "zm_counters"
#define ZMALLOC_COUNTERS_MAGIC 0x31737274636e6d7aULL /* "zmcntrs1" */
#define ZMALLOC_COUNTERS_VERSION 1

/* One thread's share of used_memory, alone on its cache line. */
struct zmalloc_counter_slot {
	int64_t bytes; /* this slot's part of used_memory */
	uint32_t owned; /* 1 while a live thread writes it */
	uint32_t pad0;
	uint8_t pad[48];
};

struct zmalloc_counter_chunk {
	uint64_t magic; /* ZMALLOC_COUNTERS_MAGIC */
	uint32_t version; /* ZMALLOC_COUNTERS_VERSION */
	uint32_t nslots; /* slots that follow this header */
	uint64_t next; /* address of the next chunk; 0 ends the chain */
	uint32_t nused; /* slots ever claimed; those past it are zero */
	uint8_t pad[36];
	/* struct zmalloc_counter_slot slots[nslots] follows */
};

#endif /* ZMALLOC_COUNTERS_H */
