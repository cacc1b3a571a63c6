/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * zscan.h - reachability scan of a live process: memcheck's leak verdicts
 * for the heap blocks a tracer knows, with a pause of milliseconds.
 *
 * The caller names the candidate blocks (ztrace: the live blocks its BPF
 * maps hold). The roots are everything else the process could reach them
 * from: every thread's registers and every writable mapping, less the bytes
 * of the candidates themselves (a candidate's contents count only once the
 * block is reached, so a cycle of lost blocks stays lost). Heap memory that
 * is not a candidate (blocks allocated before attach, allocator metadata)
 * is a root. Memory that cannot be read is a root that could not be
 * scanned: the blocks it might have held get ZSCAN_UNDECIDED, never a
 * verdict of lost.
 *
 * Classes follow valgrind memcheck's definitions, and its algorithm, so
 * that both give the same verdict on the same state (heuristics off):
 * a start pointer from a root or a reachable block makes a block still
 * reachable; a chain with an interior pointer, or through a possibly lost
 * block, makes it possibly lost; blocks pointed to only from unreached
 * blocks are indirectly lost, and the rest definitely lost (of a lost
 * cycle, the block with the lowest address).
 *
 * Two modes:
 *   zscan_scan()       stops every thread (ptrace), scans, resumes: an
 *                      exact snapshot; the pause grows with the heap.
 *   zscan_ctx_scan()   scans while the target runs, then stops it briefly
 *                      to rescan registers, stacks and the pages written
 *                      since, as a write tracker reports them (soft-dirty
 *                      bits, or a userfaultfd that write-protects the
 *                      target's memory: wtrack.c; with the latter, the
 *                      pages written during the pass are rescanned while
 *                      it runs, and the stop rescans those written since);
 *                      the pause grows with what the target writes, not
 *                      with the heap. A block is reported lost only when
 *                      two consecutive scans agree (kmemleak's rule).
 *
 * With ZSCAN_F_SNAPSHOT, either mode takes a fork snapshot instead: the
 * target is stopped only to read its registers and to make one of its
 * threads fork a copy-on-write copy of itself (the pause is the copy of
 * its page tables: ~15 ms per GiB of 4 KiB pages, far less with huge
 * pages), then runs on while the copy is scanned; the copy is killed and
 * reaped at the end. Exact like a stop-the-world scan, and it needs no
 * soft-dirty; zscan_ctx_scan() keeps the two-scan rule. x86-64 only; a
 * target with a seccomp filter is refused (-EBUSY). snapshot.c says what
 * the target can notice.
 *
 * Every function returns 0 or -errno. The library prints nothing: messages
 * go to opts->log when set. ptrace binds the target to the calling thread:
 * call a scan from one thread; it blocks the asynchronous signals of that
 * thread while the target is stopped and restores them before returning.
 * The target is never left stopped or traced, on any path; if the scanning
 * process dies, the kernel detaches it and the target runs on. A context
 * may hold a userfaultfd of the target's memory (its write tracker): the
 * target keeps no descriptor of it, and the kernel drops its
 * write-protection when the context is freed or the scanner dies. A
 * context also keeps, from one scan to the next, the memory it copies the
 * heap into (about the candidates' span): fresh memory costs a zero-fill
 * that is slower than the copy itself.
 */
#ifndef ZSCAN_H
#define ZSCAN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ZSCAN_API __attribute__((visibility("default")))

enum zscan_class {
	ZSCAN_DEFINITELY_LOST,
	ZSCAN_INDIRECTLY_LOST,
	ZSCAN_POSSIBLY_LOST,
	ZSCAN_STILL_REACHABLE,
	/*
	 * Not reachable in this scan, but no verdict yet: the previous scan
	 * (concurrent mode) did not find it lost too, or some memory of the
	 * target could not be read.
	 */
	ZSCAN_UNDECIDED,
	ZSCAN_NR_CLASSES,
};

struct zscan_block {
	uint64_t addr; /* start, as the allocator returned it */
	uint64_t size; /* usable bytes: scanned once the block is reached */
	/*
	 * Requested bytes (0: same as size). A pointer refers to the block
	 * when it falls in [addr, addr + req), as for memcheck; the slack of
	 * a glibc chunk holds the next chunk's header, which the allocator's
	 * own lists point to.
	 */
	uint64_t req;
	uint64_t birth; /* identity across scans, e.g. time of allocation */
	uint32_t user; /* the caller's tag, e.g. a stack id; not touched */
	uint8_t cls; /* out: enum zscan_class */
	uint8_t pad[3];
};

struct zscan_stats {
	uint64_t pause_ns; /* time the target was stopped */
	uint64_t total_ns; /* time the whole scan took */
	uint64_t scanned_bytes; /* roots and blocks read and scanned */
	uint64_t root_bytes; /* of which roots */
	uint64_t stopped_bytes; /* of which read while stopped */
	uint64_t unreadable_bytes; /* roots or reached blocks not readable */
	uint64_t device_bytes; /* device mappings, not read */
	uint64_t dirty_bytes; /* concurrent: rescanned at the stop as written */
	uint64_t copied_bytes; /* heap copied in sequential reads */
	uint64_t blocks[ZSCAN_NR_CLASSES];
	uint64_t bytes[ZSCAN_NR_CLASSES]; /* requested bytes, as memcheck */
	uint32_t threads;
	uint32_t overlaps; /* candidates overlapping another: trimmed */
	uint64_t fork_ns; /* snapshot: the clone, within pause_ns */
	/*
	 * snapshot: killing and reaping the copy, after the scan; one
	 * thread of the target is stopped for an injected wait4 meanwhile.
	 */
	uint64_t reap_ns;
	uint32_t tracker; /* concurrent: enum zscan_tracker, the one used */
	uint32_t pad;
	/*
	 * concurrent: pages written during the pass, rescanned before the
	 * stop (precleaning; dirty_bytes is what was left for the stop)
	 */
	uint64_t preclean_bytes;
	/*
	 * Anonymous memory with no page (never written, or given back):
	 * zeroes, not read
	 */
	uint64_t absent_bytes;
	/*
	 * concurrent, with pause_max_ns: the bytes the stop found to rescan
	 * when that would have taken too long; non-zero: no verdicts (every
	 * candidate not reached is ZSCAN_UNDECIDED).
	 */
	uint64_t outran_bytes;
	uint64_t outran_ns; /* and how long the stop would have lasted */
	/*
	 * Building the index of the candidates (sorting them, the lookup
	 * tables), before anything is read: within total_ns, grows with the
	 * number of candidates, not with the bytes scanned
	 */
	uint64_t index_ns;
};

/* How the concurrent mode finds the pages written during its pass. */
enum zscan_tracker {
	ZSCAN_TRACK_NONE, /* none: the stop rescans all memory */
	ZSCAN_TRACK_SOFT_DIRTY, /* the kernel's soft-dirty bits */
	ZSCAN_TRACK_UFFD_WP, /* userfaultfd write-protection, PAGEMAP_SCAN */
	ZSCAN_NR_TRACKERS,
};

/* Flags for zscan_opts.flags. */
#define ZSCAN_F_FULL_STACKS (1U << 0) /* scan below each thread's SP too */
#define ZSCAN_F_SNAPSHOT (1U << 1) /* fork snapshot: see above */

struct zscan_opts {
	size_t sz; /* sizeof(struct zscan_opts), for growing it safely */
	unsigned int flags;
	size_t chunk_bytes; /* bytes per read; 0: 4 MiB */
	/*
	 * Memory the scanner may use to copy the heap in sequential reads
	 * (much faster than reading block by block); 0: half of the
	 * available memory; -1: never copy.
	 */
	uint64_t copy_bytes_max;
	void (*log)(void *arg, const char *fmt, va_list ap);
	void *log_arg;
	/*
	 * Called with every thread of the target stopped, its registers
	 * read, before the memory is: for tests, and for a caller that
	 * wants to look at the frozen target. Keep it short.
	 */
	void (*stopped)(void *arg, pid_t pid);
	void *stopped_arg;
	/*
	 * ZSCAN_F_SNAPSHOT: called once the target runs again, with the
	 * pid of its stopped copy, before the copy is scanned (tests).
	 */
	void (*snapshot)(void *arg, pid_t pid, pid_t child);
	void *snapshot_arg;
	/*
	 * A thread of the target that the caller already traces and holds
	 * in a ptrace-stop (a debugger, or ztrace holding a command at its
	 * exit): zscan reads its registers but does not seize, wait for or
	 * resume it. 0: none. Not with ZSCAN_F_SNAPSHOT or a context.
	 */
	pid_t held_tid;
	/*
	 * Concurrent mode: called while the target runs, once the pass over
	 * it is done (round 0) and after each round of precleaning (1, 2,
	 * ...), before the stop (tests: a write the pass cannot have seen,
	 * which only the write tracker can show to what follows).
	 */
	void (*passed)(void *arg, pid_t pid, unsigned int round);
	void *passed_arg;
	/*
	 * Concurrent mode: the longest the stop may last. Once stopped, if
	 * rescanning what the target wrote since it was last looked at
	 * would take longer (at the rate the running rescans went), the
	 * target is resumed at once and the scan gives no verdict
	 * (stats.outran_bytes; the previous scan's lost blocks stay the
	 * evidence the next must agree with): a writer faster than the
	 * scanner cannot lengthen the pause. What comes before the rescan
	 * (stopping, the registers, the tracker's query) is not bounded.
	 * 0: no bound.
	 */
	uint64_t pause_max_ns;
};

/*
 * Stop the world, classify blocks[0..n) (each cls set), resume. blocks
 * may be in any order and is not reordered. st may be NULL.
 */
ZSCAN_API int zscan_scan(pid_t pid, struct zscan_block *blocks, size_t n,
			 const struct zscan_opts *opts, struct zscan_stats *st);

/* Concurrent mode: a context keeps the previous verdicts of a target. */
struct zscan_ctx;

ZSCAN_API int zscan_ctx_new(pid_t pid, const struct zscan_opts *opts,
			    struct zscan_ctx **ctxp);
ZSCAN_API int zscan_ctx_scan(struct zscan_ctx *ctx, struct zscan_block *blocks,
			     size_t n, struct zscan_stats *st);
ZSCAN_API void zscan_ctx_free(struct zscan_ctx *ctx);

/* "definitely lost", ... as memcheck names them; "?" if out of range. */
ZSCAN_API const char *zscan_class_name(unsigned int cls);
/* "none", "soft-dirty", "uffd-wp"; "?" if out of range. */
ZSCAN_API const char *zscan_tracker_name(unsigned int tracker);

#ifdef __cplusplus
}
#endif

#endif /* ZSCAN_H */
