/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * zscan_int.h - what the files of the scanner share; not installed.
 *
 * Layer convention: every function returns 0 or -errno, except predicates
 * (bool) and lookups (an index, or -1). Nothing prints; zs_log() hands a
 * message to the caller's callback, if any.
 */
#ifndef ZSCAN_INT_H
#define ZSCAN_INT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "zscan.h"

#define ZS_HIDDEN __attribute__((visibility("hidden")))
#define ZS_PAGE 4096ULL
#define ZS_CHUNK_DEFAULT (4ULL << 20)
#define ZS_IOV_MAX 1024
/* Below SP, the ABI's red zone is live: amd64 has 128 bytes. */
#define ZS_RED_ZONE 128

__attribute__((format(printf, 2, 3))) ZS_HIDDEN void
zs_log(const struct zscan_opts *o, const char *fmt, ...);
ZS_HIDDEN uint64_t zs_now_ns(void);
/* Blocks and requested bytes per class. */
ZS_HIDDEN void zs_stats_count(struct zscan_stats *st,
			      const struct zscan_block *b, size_t n);
ZS_HIDDEN void zs_opts_copy(struct zscan_opts *dst,
			    const struct zscan_opts *src);

/* ---------------------------------------------------------- ranges */
struct zs_range {
	uint64_t lo, hi;
};

struct zs_ranges {
	struct zs_range *r;
	size_t n, cap;
};

ZS_HIDDEN int zs_ranges_add(struct zs_ranges *rs, uint64_t lo, uint64_t hi);
ZS_HIDDEN void zs_ranges_free(struct zs_ranges *rs);
/* Sorts and merges overlapping or touching ranges, in place. */
ZS_HIDDEN void zs_ranges_normalize(struct zs_ranges *rs);
/* out = a & b, a - b; both inputs normalized. */
ZS_HIDDEN int zs_ranges_and(const struct zs_ranges *a,
			    const struct zs_ranges *b, struct zs_ranges *out);
ZS_HIDDEN int zs_ranges_sub(const struct zs_ranges *a,
			    const struct zs_ranges *b, struct zs_ranges *out);

/* ----------------------------------------------------------- stop.c */
struct zs_thread {
	pid_t tid;
	int sig; /* signal to deliver again at detach */
	bool stopped; /* in a ptrace stop, waited for */
	bool gone; /* exited while we seized it */
	bool held; /* the caller's: stopped already, never resumed by us */
	uint64_t sp; /* stack pointer, once the registers are read */
	uint8_t *regs; /* every register set we could read, raw */
	size_t regs_len;
};

struct zs_world {
	pid_t pid;
	struct zs_thread *th;
	size_t n, cap;
	sigset_t oldmask;
	bool masked;
	uint64_t t_stop;
	uint64_t pause_ns;
};

/*
 * Blocks the asynchronous signals of the calling thread (faults stay
 * deliverable); false if the mask could not be changed.
 */
ZS_HIDDEN bool zs_block_signals(sigset_t *old);
/* Seizes and interrupts every thread, until no new thread appears. */
ZS_HIDDEN int zs_world_stop(struct zs_world *w, pid_t pid,
			    const struct zscan_opts *o);
/* The same for one thread only: the others run on. */
ZS_HIDDEN int zs_world_stop_one(struct zs_world *w, pid_t pid, pid_t tid,
				const struct zscan_opts *o);
ZS_HIDDEN int zs_world_regs(struct zs_world *w, const struct zscan_opts *o);
/* Detaches every thread (also on a half-done stop); always succeeds. */
ZS_HIDDEN void zs_world_resume(struct zs_world *w);
ZS_HIDDEN void zs_world_free(struct zs_world *w);

/* ----------------------------------------------------------- maps.c */
#define ZS_M_READ (1U << 0)
#define ZS_M_WRITE (1U << 1)
#define ZS_M_SHARED (1U << 2)
#define ZS_M_ANON (1U << 3)
#define ZS_M_DEVICE (1U << 4)
#define ZS_M_STACKLIKE (1U << 5) /* [stack], or rw just above a guard */
#define ZS_M_WIPE (1U << 6) /* MADV_WIPEONFORK (smaps only) */

struct zs_map {
	uint64_t lo, hi;
	unsigned int flags;
};

struct zs_maps {
	struct zs_map *m;
	size_t n, cap;
};

ZS_HIDDEN int zs_maps_read(pid_t pid, struct zs_maps *maps);
/* The same from smaps, with ZS_M_WIPE: slower, it walks page tables. */
ZS_HIDDEN int zs_maps_read_smaps(pid_t pid, struct zs_maps *maps);
ZS_HIDDEN void zs_maps_free(struct zs_maps *maps);
ZS_HIDDEN int zs_maps_add(struct zs_maps *maps, const struct zs_map *m);
/*
 * present.c: the pages of [lo, hi) (anonymous, private) that exist, added
 * to out; the rest, which reads as zeroes, is counted in *absent. With
 * fd < 0, or a kernel without PAGEMAP_SCAN, all of it is added.
 */
ZS_HIDDEN int zs_present_open(pid_t pid);
ZS_HIDDEN int zs_present_add(int fd, uint64_t lo, uint64_t hi,
			     struct zs_ranges *out, uint64_t *absent);

/*
 * The root ranges of a mapping set: what the process may keep pointers in.
 * With w (threads stopped, registers read), a stack's dead part below the
 * lowest SP in it is left out; without, stack-like mappings are left out
 * whole (skip_stacks) or kept whole. Counts device and unreadable bytes.
 * The pages of anonymous private mappings that do not exist in process
 * PID (whose page tables describe the memory that will be read; 0: do not
 * look) are left out too (present.c), counted in absent_bytes.
 */
ZS_HIDDEN int zs_roots(const struct zs_maps *maps, const struct zs_world *w,
		       bool skip_stacks, unsigned int flags, pid_t pid,
		       struct zs_ranges *out, struct zscan_stats *st);

/* --------------------------------------------------------- wtrack.c */
struct zs_wtrack {
	pid_t pid;
	unsigned int kind; /* enum zscan_tracker */
	bool chosen; /* kind chosen for this context */
	bool warned; /* the log was told of mappings left untracked */
	int uffd; /* ZSCAN_TRACK_UFFD_WP: ours, on the target's mm; or -1 */
	int pagemap; /* the target's /proc/PID/pagemap, or -1 */
	struct zs_ranges tracked; /* armed by the last zs_wtrack_arm() */
	void *vec; /* PAGEMAP_SCAN's output */
};

ZS_HIDDEN void zs_wtrack_init(struct zs_wtrack *t, pid_t pid);
/*
 * While the target runs, before a pass: starts tracking the writes to
 * maps, the target's mappings now. The first call chooses the backend;
 * making a userfaultfd stops one thread of the target, and that stop is
 * added to *pause_ns. Without a backend nothing is tracked, which is no
 * error: what is not tracked counts as written.
 */
ZS_HIDDEN int zs_wtrack_arm(struct zs_wtrack *t, const struct zs_maps *maps,
			    const struct zscan_opts *o, uint64_t *pause_ns);
/*
 * Adds to out the pages of within that may have been written since the
 * arming: every part of within that was not tracked, or is no longer a
 * trackable mapping of maps (the target's mappings now), is added whole.
 * With rearm (only where zs_wtrack_can_rearm()), only the tracked pages
 * are reported, and they are write-protected again in the same walk:
 * the next call reports what was written since this one.
 */
ZS_HIDDEN int zs_wtrack_written(struct zs_wtrack *t, const struct zs_maps *maps,
				const struct zs_ranges *within, bool rearm,
				struct zs_ranges *out);
ZS_HIDDEN bool zs_wtrack_can_rearm(const struct zs_wtrack *t);
/* Closes the userfaultfd: the kernel unprotects and unregisters all. */
ZS_HIDDEN void zs_wtrack_free(struct zs_wtrack *t);

/* -------------------------------------------------------- readmem.c */
/*
 * Reads remote [addr, addr + len) into buf, with process_vm_readv, or
 * from memfd (/proc/PID/mem) when it is >= 0. Pages that cannot be read
 * are zeroed (zero is no pointer) and added to *bad (and to badr, if
 * set). -ESRCH when the process is gone.
 */
ZS_HIDDEN int zs_read(pid_t pid, int memfd, uint64_t addr, void *buf,
		      size_t len, uint64_t *bad, struct zs_ranges *badr);
/* The same for n remote pieces, read back to back into buf. */
ZS_HIDDEN int zs_readv(pid_t pid, int memfd, const struct iovec *remote,
		       size_t n, void *buf, uint64_t *bad,
		       struct zs_ranges *badr);

/*
 * The same for n remote pieces, each into its own local piece of the same
 * length, in as few calls as the kernel allows.
 */
ZS_HIDDEN int zs_read_pieces(pid_t pid, int memfd, const struct iovec *local,
			     const struct iovec *remote, size_t n,
			     uint64_t *bad, struct zs_ranges *badr);

/* --------------------------------------------------------- inject.c */
/*
 * A `syscall' instruction in an executable mapping of the target (the
 * vDSO first, `syscall; ret' preferred), and a check that it is still
 * there.
 */
ZS_HIDDEN int zs_find_gadget(pid_t pid, uint64_t *addr);
ZS_HIDDEN bool zs_gadget_valid(pid_t pid, uint64_t addr);
/* Stopped, no seccomp filter, not inside an rseq critical section. */
ZS_HIDDEN bool zs_thread_injectable(pid_t pid, const struct zs_thread *th);
/*
 * Runs syscall nr(a[0..5]) in the stopped thread th, with ptrace_opts set
 * on it meanwhile, and restores its registers and signal mask; *ret is
 * the call's result. A clone reported on the way gives *child, stopped,
 * traced by us, with PTRACE_O_EXITKILL. th is left in a ptrace stop.
 */
ZS_HIDDEN int zs_inject(struct zs_thread *th, uint64_t gadget, long nr,
			const uint64_t a[6], unsigned int ptrace_opts,
			long *ret, pid_t *child);

/* ------------------------------------------------------- classify.c */
enum zs_state {
	ZS_UNREACHED,
	ZS_POSSIBLE,
	ZS_REACHABLE,
	ZS_INDIRECT,
	ZS_IGNORED, /* overlaps an earlier candidate */
};

/*
 * Local memory the span copies are carved from. Zero-filling fresh memory
 * costs more than reading the heap into it (about 0.6 s a GiB here), so a
 * context keeps its arena from one scan to the next; every byte of a span
 * copy is read (or zeroed, unreadable) at each scan, so what a previous
 * scan left there is never scanned.
 */
struct zs_arena {
	uint8_t *base;
	size_t len;
};

ZS_HIDDEN void zs_arena_free(struct zs_arena *a);

struct zs_span {
	uint64_t lo, hi; /* lo aligned to the granule */
	uint32_t first, end;
	uint32_t *table; /* per granule: first block ending above it */
	uint64_t cend; /* end of the last block's contents */
	uint8_t *copy; /* [lo, cend) read in one sweep, or NULL */
};

#define ZS_GROUP 32 /* words resolved together */

struct zs_mark {
	pid_t pid;
	int memfd; /* /proc/PID/mem of a snapshot, or -1 */
	const struct zscan_opts *o;
	struct zscan_stats *st;
	size_t n;
	struct zs_blk *blk; /* classify.c's block records, sorted */
	uint8_t *state;
	/*
	 * Block starts, a bit per 1 << sshift bytes from sbase, in pairs of
	 * (blocks before, 32 bits); sshift 0: none, some start is unaligned.
	 */
	uint32_t *smap;
	uint64_t sbase;
	unsigned int sshift;
	uint64_t lo_all, range; /* quick reject: p - lo_all >= range */
	struct zs_span *span;
	uint64_t *span_lo;
	size_t nspan;
	uint32_t *stack;
	size_t top, scap;
	/* Words that passed the quick reject, unresolved (classify.c). */
	uint64_t pend[ZS_GROUP];
	size_t npend;
	bool pend_definite;
	bool clique_mode;
	uint32_t clique;
	bool stopped; /* count reads as stopped_bytes */
	struct zs_ranges *badr; /* where unreadable ranges go, or NULL */
	uint8_t *buf;
	size_t buf_len;
	struct iovec *iov;
	uint32_t *batch;
	void *pieces; /* classify.c's read batch */
	size_t ncopied; /* spans held in local memory */
	struct zs_arena *arena; /* the copies': a context's, or own_arena */
	struct zs_arena own_arena;
};

ZS_HIDDEN int zs_mark_init(struct zs_mark *m, pid_t pid,
			   const struct zscan_block *b, size_t n,
			   const struct zscan_opts *o, struct zscan_stats *st);
ZS_HIDDEN void zs_mark_free(struct zs_mark *m);
ZS_HIDDEN int zs_mark_regs(struct zs_mark *m, const struct zs_world *w);
/* Scans remote root ranges, less the candidates' bytes. */
ZS_HIDDEN int zs_mark_roots(struct zs_mark *m, const struct zs_ranges *roots);
/* Rescans the parts of reached blocks that lie in the ranges. */
ZS_HIDDEN int zs_mark_rescan_blocks(struct zs_mark *m,
				    const struct zs_ranges *rs);
/*
 * Reads every span of blocks into local memory in large sequential reads
 * (when they fit in limit bytes), so that marking needs no more reads:
 * prepare allocates (before a stop), copy reads.
 */
ZS_HIDDEN int zs_mark_copy_prepare(struct zs_mark *m, uint64_t limit);
ZS_HIDDEN int zs_mark_copy(struct zs_mark *m);
/* Reads the ranges again into the copies (pages written since). */
ZS_HIDDEN int zs_mark_refresh(struct zs_mark *m, const struct zs_ranges *rs);
/* Scans the blocks on the mark stack until it is empty. */
ZS_HIDDEN int zs_mark_drain(struct zs_mark *m);
/* Unreached blocks: definitely or indirectly lost, memcheck's cliques. */
ZS_HIDDEN int zs_mark_cliques(struct zs_mark *m);
/* Writes cls into the caller's blocks. */
ZS_HIDDEN void zs_mark_classify(struct zs_mark *m, struct zscan_block *b,
				size_t n, bool undecided);

/*
 * zscan.c: what every scan does first with the world stopped: the
 * registers, the caller's stopped() callback, the threads counted, the
 * maps and their root ranges (freed on error).
 */
ZS_HIDDEN int zs_stopped_roots(struct zs_mark *m, struct zs_world *w,
			       const struct zscan_opts *o,
			       struct zscan_stats *st, struct zs_maps *maps,
			       struct zs_ranges *roots);

/* ------------------------------------------------------- snapshot.c */
struct zs_snap {
	pid_t pid; /* the target */
	pid_t child; /* its copy: stopped, traced by us; 0 when none */
	pid_t tid; /* the thread that made it */
	uint64_t gadget; /* a syscall instruction of the target */
	struct zs_world w; /* the registers at the stop (detached) */
	struct zs_maps maps; /* the target's mappings at the stop */
	sigset_t oldmask;
	bool masked;
};

/*
 * Stops the target, forks its copy, scans its shared writable mappings
 * into m, resumes it. On error nothing is left: no child, no stop.
 */
ZS_HIDDEN int zs_snap_take(struct zs_snap *s, pid_t pid, struct zs_mark *m,
			   const struct zscan_opts *o, struct zscan_stats *st);
/* The child's root ranges, less what the stop scanned. */
ZS_HIDDEN int zs_snap_roots(struct zs_snap *s, struct zs_ranges *roots,
			    const struct zscan_opts *o, struct zscan_stats *st);
/* Kills and reaps the child, restores the signal mask; st may be NULL. */
ZS_HIDDEN void zs_snap_drop(struct zs_snap *s, const struct zscan_opts *o,
			    struct zscan_stats *st);
/*
 * The whole scan of a snapshot, through the cliques; *gadget caches the
 * syscall instruction from one scan to the next (0: find one).
 */
ZS_HIDDEN int zs_snap_scan(pid_t pid, uint64_t *gadget, struct zs_mark *m,
			   const struct zscan_opts *o, struct zscan_stats *st);

#endif /* ZSCAN_INT_H */
