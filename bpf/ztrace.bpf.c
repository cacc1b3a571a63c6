/* SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause */
/*
 * ztrace.bpf.c - the kernel side of ztrace: programs on the zmalloc USDT
 * probes (contract: include/zmalloc_probes.h) that keep per-size histograms,
 * every outstanding block, per-stack totals and a counter for everything
 * that could not be recorded. Layouts: ztrace.h.
 *
 * Every counter lives in a per-CPU slot and is updated with an atomic add:
 * a per-CPU slot is never contended, and the add stays correct when a
 * preempted program shares its CPU with another one. Sampled mode's
 * per-stack totals (stack_slots) and bucket marks (live_used) are shared:
 * samples come seldom enough that their lines are not contended.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

#ifndef READ_ONCE
#define READ_ONCE(x) (*(volatile typeof(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile typeof(x) *)&(x) = (v))
#endif

#include "ztrace.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Configuration, set by ztrace between open and load. */
const volatile bool capture_stacks = false;
const volatile __u32 totals_none_slot = ZT_DEFAULT_MAX_STACKS;
const volatile __u32 stack_depth = ZT_DEFAULT_STACK_DEPTH; /* frames kept */
const volatile __u32 stack_mask = ZT_DEFAULT_MAX_STACKS - 1; /* ids' range */
const volatile __u32 live_mask = 0; /* live buckets - 1, a power of 2 - 1 */
/*
 * sample_alloc's arguments, when every site of the probe has them in the
 * same 8-byte registers (ztrace reads the notes before load): their byte
 * offsets in pt_regs, -1 for usable, which the program does not read
 * (ZT_SAMPLE_ARGS_READ). Without them each hit looks up its site's spec
 * (usdt_args()), which on a cold sample cost about 800 ns of the
 * program's 2.2 us here.
 */
const volatile bool sample_regs_fixed = false;
const volatile short sample_reg_off[ZT_SAMPLE_ARGS] = {};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct zt_counters);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, (ZT_HIST_KINDS * ZT_HIST_BUCKETS));
	__type(key, __u32);
	__type(value, struct zt_hist_slot);
} hist SEC(".maps");

/*
 * The live table (see ztrace.h), sized by --max-blocks before load. An
 * array rather than a hash map: claiming or releasing a way is one
 * compare-and-swap or store, where a hash map update or delete took a
 * bucket lock and a free list (about 150 ns a block here).
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct zt_live_bucket);
} live SEC(".maps");

/* The blocks of the live table's ways, at their bucket's index. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct zt_live_blocks);
} live_blocks SEC(".maps");

/* Sampled mode's marks of the buckets in use (ztrace.h); sized to match. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} live_used SEC(".maps");

/*
 * The allocating stacks, walked by walk_stack() or read from a sample's
 * header (read_sample_stack()): key a stack id, below
 * stack_mask + 1; value its return addresses, leaf first, 0-terminated
 * unless they fill it.
 * Sized by --max-stacks and --stack-depth before load, as is the per-CPU
 * buffer a stack is walked into (its head, ztrace.h, then the frames).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ZT_DEFAULT_MAX_STACKS);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, ZT_DEFAULT_STACK_DEPTH * sizeof(__u64));
} stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size,
	       (ZT_SCRATCH_HEAD + ZT_DEFAULT_STACK_DEPTH) * sizeof(__u64));
} stack_scratch SEC(".maps");

/*
 * Each stack id's slot (ztrace.h): the key (stack_key()) of the stack
 * stored under it, by which a stack seen before is known by one word
 * instead of its frames, and a sample's by the hash the library hands
 * sample_alloc, without reading its frames from the target at all; and
 * sampled mode's per-stack totals. Sized to the ids' range plus the slot
 * of the samples without a stack (totals_none_slot) before load.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ZT_DEFAULT_MAX_STACKS + 1);
	__type(key, __u32);
	__type(value, struct zt_stack_slot);
} stack_slots SEC(".maps");

/*
 * Exact mode's per-stack totals (sampled mode's are in stack_slots, and
 * this is sized to 1): indexed by stack id, below stack_mask + 1, and the
 * slot after them holds the blocks whose stack was not recorded
 * (totals_none_slot). An array lookup is inlined by the verifier, where a
 * hash lookup costs a hash and a walk.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ZT_DEFAULT_MAX_STACKS + 1);
	__type(key, __u32);
	__type(value, struct zt_stack_totals);
} stack_totals SEC(".maps");

/* Sampled mode's per-CPU state (ztrace.h): samples enter only. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct zt_sample_cpu);
} sample_cpu SEC(".maps");

#define ADD(field, val) __sync_fetch_and_add(&(field), (val))

/* Exact mode's clock per CPU (sampled mode's is in sample_cpu). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct zt_clock);
} clock_cache SEC(".maps");

/*
 * A block's birth: CLOCK_MONOTONIC at most a jiffy behind, for its age,
 * and with its address the block's identity across reports and scans
 * (leak_scan.c, concurrent.c, sample_live.c), so unique. The clock itself
 * (bpf_ktime_get_ns) cost 100-280 ns here, a sixth of a sampled event, and
 * the jiffies counter is a load: so the clock is read once a jiffy per
 * CPU. The low byte holds the CPU (no two CPUs give the same birth), and
 * each event in the jiffy adds 256 ns (no two events of a CPU do; an event
 * costs more, so a birth is not ahead of the clock). CK: this CPU's clock.
 */
static __always_inline __u64 birth_ns(struct zt_clock *ck)
{
	__u64 j = bpf_jiffies64(), seq;

	if (!ck)
		return bpf_ktime_get_ns();
	if (ck->jiffies != j || !ck->ns) {
		/* The CPU in the low byte, once a jiffy. */
		ck->ns = (bpf_ktime_get_ns() & ~0xffULL) |
			 (bpf_get_smp_processor_id() & 0xff);
		ck->jiffies = j;
		ck->seq = 0;
	}
	/* Atomic: a preempted program on this CPU may be between the two. */
	seq = __sync_fetch_and_add(&ck->seq, 1);
	return ck->ns + (seq << 8);
}

/*
 * USDT arguments, as libbpf describes them in __bpf_usdt_specs (see
 * <bpf/usdt.bpf.h>), read the cheap way: one spec lookup per event rather
 * than one per argument, and registers loaded from the context rather than
 * through bpf_probe_read_kernel(). bpf_usdt_arg() cost about 80 ns an
 * argument here, most of what these programs cost.
 */
#define ZT_NREGS (sizeof(struct pt_regs) / sizeof(__u64))

/* regs: a copy of the context (constant-offset loads, which it allows). */
static __always_inline __u64 reg_value(const __u64 *regs, short off)
{
	__u32 i = (__u32)off / sizeof(__u64);

	return i < ZT_NREGS ? regs[i] : 0;
}

/* N arguments into OUT; those past the probe's own (at least NEED) are 0. */
static __always_inline int usdt_args(struct pt_regs *ctx, __u64 *out, int need,
				     int n)
{
	struct __bpf_usdt_arg_spec *a;
	struct __bpf_usdt_spec *spec;
	__u64 val, regs[ZT_NREGS];
	int spec_id, i;

	spec_id = __bpf_usdt_spec_id(ctx);
	if (spec_id < 0)
		return -ESRCH;
	spec = bpf_map_lookup_elem(&__bpf_usdt_specs, &spec_id);
	if (!spec || spec->arg_cnt < need)
		return -ENOENT;
	__builtin_memcpy(regs, ctx, sizeof(regs));
#pragma unroll
	for (i = 0; i < n; i++) {
		/* Optional arguments (n > need: sample_alloc's hash) only. */
		if (i >= need && i >= spec->arg_cnt) {
			out[i] = 0;
			continue;
		}
		a = &spec->args[i];
		switch (a->arg_type) {
		case BPF_USDT_ARG_CONST:
			val = a->val_off;
			break;
		case BPF_USDT_ARG_REG:
			val = reg_value(regs, a->reg_off);
			break;
		case BPF_USDT_ARG_REG_DEREF:
			if (bpf_probe_read_user(
				    &val, sizeof(val),
				    (void *)(reg_value(regs, a->reg_off) +
					     a->val_off)))
				return -EFAULT;
			break;
		default:
			return -EINVAL;
		}
		val <<= a->arg_bitshift;
		if (a->arg_signed)
			val = (__u64)((__s64)val >> a->arg_bitshift);
		else
			val >>= a->arg_bitshift;
		out[i] = val;
	}
	return 0;
}

static __always_inline struct zt_counters *get_counters(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&counters, &zero);
}

/* bpftrace's hist() bucket: 0 for 0, else 1 + floor(log2(v)). */
static __always_inline __u32 log2_bucket(__u64 v)
{
	__u32 b = 0;

	if (!v)
		return 0;
	if (v >> 32) {
		v >>= 32;
		b += 32;
	}
	if (v >> 16) {
		v >>= 16;
		b += 16;
	}
	if (v >> 8) {
		v >>= 8;
		b += 8;
	}
	if (v >> 4) {
		v >>= 4;
		b += 4;
	}
	if (v >> 2) {
		v >>= 2;
		b += 2;
	}
	if (v >> 1)
		b += 1;
	/* 2^63 and up share the last bucket, as user space counts them. */
	return b + 1 < ZT_HIST_BUCKETS ? b + 1 : ZT_HIST_BUCKETS - 1;
}

static __always_inline void hist_add(__u32 kind, __u64 bytes, __u64 usable)
{
	struct zt_hist_slot *slot;
	__u32 key;

	key = kind * ZT_HIST_BUCKETS + log2_bucket(bytes);
	slot = bpf_map_lookup_elem(&hist, &key);
	if (!slot)
		return;
	ADD(slot->count, 1);
	ADD(slot->bytes, bytes);
	/* An untracked free's frag is 0: no locked add for nothing. */
	if (usable > bytes)
		ADD(slot->frag, usable - bytes);
}

/* The blocks a sample stands for, in thousandths: weight / requested. */
static __always_inline __u64 sample_milli(__u64 requested, __u64 weight)
{
	return weight * ZT_MILLI / (requested ? requested : 1);
}

/* MILLI: sample_milli() of the sample, which its stack's totals add too. */
static __always_inline void sample_hist_add(struct zt_sample_cpu *sc,
					    __u64 requested, __u64 weight,
					    __u64 milli)
{
	struct zt_sample_slot *slot =
		&sc->hist[log2_bucket(requested) & (ZT_HIST_BUCKETS - 1)];

	ADD(slot->samples, 1);
	ADD(slot->requested, requested);
	ADD(slot->weight, weight);
	ADD(slot->count_milli, milli);
}

static __always_inline struct zt_stack_slot *
get_sample_totals(struct zt_counters *c, __u32 stack_id)
{
	__u32 slot = stack_id == ZT_STACK_NONE ? totals_none_slot : stack_id;
	struct zt_stack_slot *t;

	t = bpf_map_lookup_elem(&stack_slots, &slot);
	if (!t)
		ADD(c->drop_totals_full, 1);
	return t;
}

static __always_inline struct zt_stack_totals *get_totals(struct zt_counters *c,
							  __u32 stack_id)
{
	__u32 slot = stack_id == ZT_STACK_NONE ? totals_none_slot : stack_id;
	struct zt_stack_totals *t;

	t = bpf_map_lookup_elem(&stack_totals, &slot);
	if (!t)
		ADD(c->drop_totals_full, 1);
	return t;
}

/* Frames further than this above the stack pointer are not believed. */
#define ZT_STACK_SPAN (256ULL << 20)

/* A walk in progress (walk_step). */
struct zt_walk {
	__u64 *ips;
	__u64 fp, sp;
	__u64 frame[2]; /* here: a callback's own stack trips the verifier */
};

/*
 * Frame I + 1: one bpf_loop callback, verified once, where a loop over
 * the frames was verified once per frame, and past --stack-depth 32 went
 * over the verifier's budget. At the chain's end it writes the 0 that
 * ends the stack (every reader stops there) and ends the loop.
 */
static long walk_step(__u64 i, void *arg)
{
	struct zt_walk *w = arg;
	__u64 fp = w->fp;

	i++;
	if (i >= ZT_MAX_STACK_DEPTH || i >= stack_depth)
		return 1;
	if (fp < w->sp || fp - w->sp > ZT_STACK_SPAN || (fp & 7) ||
	    bpf_probe_read_user(w->frame, sizeof(w->frame), (void *)fp) ||
	    !w->frame[1]) {
		w->ips[i] = 0;
		return 1;
	}
	w->ips[i] = w->frame[1];
	w->fp = w->frame[0] > fp ? w->frame[0] : 0;
	return 0;
}

/*
 * The caller's stack by its frame pointers, into IPS (leaf first, a 0
 * after the last frame unless it fills the depth). The kernel's walker
 * (bpf_get_stackid) reads the frame above main too, whose saved frame
 * pointer is whatever glibc left in rbp, and takes a fault on it at every
 * allocation, about 800 ns here. A frame pointer is followed only while it
 * rises and stays within ZT_STACK_SPAN of the stack pointer, so the walk
 * ends there without touching memory.
 */
static __always_inline void walk_stack(struct pt_regs *ctx, __u64 *ips)
{
	struct zt_walk w = {
		.ips = ips,
		.fp = PT_REGS_FP(ctx),
		.sp = PT_REGS_SP(ctx),
	};

	ips[0] = PT_REGS_IP(ctx);
	bpf_loop(stack_depth - 1, walk_step, &w, 0);
}

/*
 * A stack's key, never 0: the hash of its frames after the first, as the
 * library hashes a sample's (zmalloc_sample_stack_hash: FNV-1a, low bit
 * set, 0 for none), then its first address, the probe's.
 */
static __always_inline __u64 stack_key_of(__u64 frames_hash, __u64 ip)
{
	return ((frames_hash ^ ip) * ZT_FNV_PRIME) | 1;
}

static __always_inline __u64 stack_key(const __u64 *ips)
{
	__u64 h = ZT_FNV_BASIS;
	__u32 i;

	for (i = 1; i < ZT_MAX_STACK_DEPTH && i < stack_depth; i++) {
		if (!ips[i])
			break;
		h = (h ^ ips[i]) * ZT_FNV_PRIME;
	}
	return stack_key_of(i > 1 ? h | 1 : 0, ips[0]);
}

/* The first id a stack's key tries (store_stack). */
static __always_inline __u32 stack_slot(__u64 key)
{
	return (__u32)(key ^ (key >> 32)) & stack_mask;
}

static __always_inline bool same_stack(const __u64 *a, const __u64 *b)
{
	__u32 i;

	for (i = 0; i < ZT_MAX_STACK_DEPTH && i < stack_depth; i++) {
		if (a[i] != b[i])
			return false;
		if (!a[i])
			break;
	}
	return true;
}

/* Slots tried after a stack's own, before calling it a collision. */
#define ZT_STACK_PROBES 4

/*
 * The id of the stack with KEY when it is stored, and its slot in *SLOT;
 * else ZT_STACK_NONE: the ids store_stack() would try, up to the first
 * that holds no key.
 */
static __always_inline __u32 known_stack(__u64 key, struct zt_stack_slot **slot)
{
	__u32 id = stack_slot(key), k;
	struct zt_stack_slot *known;

	for (k = 0; k < ZT_STACK_PROBES; k++, id = (id + 1) & stack_mask) {
		known = bpf_map_lookup_elem(&stack_slots, &id);
		if (!known || !known->key)
			break;
		if (known->key == key) {
			*slot = known;
			return id;
		}
	}
	return ZT_STACK_NONE;
}

/*
 * The id of the stack in IPS, whose key is KEY, stored if new;
 * ZT_STACK_NONE on failure. A stack's first id is its key, masked; when
 * that id holds another stack, the next ids are tried (open addressing),
 * so that two stacks of a program sharing a masked key, one run in a
 * hundred with ASLR, both keep theirs. An id's key is set once its frames
 * are stored: until then another CPU compares the frames.
 */
static __always_inline __u32 store_stack(struct zt_counters *c,
					 const __u64 *ips, __u64 key)
{
	struct zt_stack_slot *known;
	__u32 id = stack_slot(key), k;
	__u64 *old;
	long err;

	for (k = 0; k < ZT_STACK_PROBES; k++, id = (id + 1) & stack_mask) {
		known = bpf_map_lookup_elem(&stack_slots, &id);
		if (!known)
			goto out_error;
		if (known->key == key)
			return id;
		if (known->key)
			continue; /* another stack's id */
		old = bpf_map_lookup_elem(&stacks, &id);
		if (!old) {
			err = bpf_map_update_elem(&stacks, &id, ips,
						  BPF_NOEXIST);
			if (!err) {
				WRITE_ONCE(known->key, key);
				ADD(c->stacks_stored, 1);
				return id;
			}
			if (err != -EEXIST)
				goto out_error;
			/* Another CPU stored a stack under this id first. */
			old = bpf_map_lookup_elem(&stacks, &id);
			if (!old)
				goto out_error;
		}
		if (same_stack(ips, old)) {
			WRITE_ONCE(known->key, key);
			return id;
		}
	}
	ADD(c->drop_stack_collision, 1);
	return ZT_STACK_NONE;
out_error:
	ADD(c->drop_stack_error, 1);
	return ZT_STACK_NONE;
}

/* Read two words before ips: next_fp is ips[0], the frames ips[1] on. */
_Static_assert(__builtin_offsetof(struct zt_sample_stack, next_fp) ==
		       2 * sizeof(__u64),
	       "next_fp lands at ips[0]");
_Static_assert(ZT_SCRATCH_HEAD >= 3, "room for check and nframes");

/*
 * A sampled block's stack from the frames the library wrote before its
 * header: one user read for the lot, where walking costs one a frame. The
 * header lands in place, two words before IPS (the scratch buffer's head,
 * probes.c), so that its frames are ips[1] on and its next_fp, once read,
 * gives way to the probe's address; the frames past nframes are 0
 * (zmalloc_sampling.h). A stack the library did not walk (off the
 * thread's known stack) is walked here, as is one deeper than its frames
 * when --stack-depth asks for more.
 */
static __always_inline bool read_sample_stack(struct pt_regs *ctx, __u64 *ips,
					      __u64 ptr)
{
	struct zt_sample_stack *st = (struct zt_sample_stack *)(ips - 2);

	if (bpf_probe_read_user(st, sizeof(*st),
				(void *)(ptr - ZT_SAMPLE_STACK_OFFSET)) ||
	    st->check != (ZT_SAMPLE_STACK ^ ptr) || !st->nframes)
		return false;
	/* Deeper than the library's frames: the whole walk (rare). */
	if (st->next_fp && stack_depth > ZT_SAMPLE_FRAMES + 1)
		return false;
	ips[0] = PT_REGS_IP(ctx);
	/* The 0 after 31 frames, where --stack-depth leaves room for it. */
	if (stack_depth > ZT_SAMPLE_FRAMES + 1)
		ips[ZT_SAMPLE_FRAMES + 1] = 0;
	return true;
}

/*
 * The walk goes into this CPU's scratch buffer, whose first word says it
 * is in use: a uprobe program can be preempted, and another thread's
 * program on the same CPU then runs to its end before the first resumes.
 * That one finds the buffer busy and drops its stack (counted) rather than
 * overwrite a walk half done. A sample's stack is read, not walked, when
 * SAMPLE is its block's address; KEY, when not 0, is the key the library's
 * hash gave it (get_stack()), checked against the frames read.
 */
static __noinline __u32 read_stack(struct pt_regs *ctx, struct zt_counters *c,
				   __u64 sample, __u64 key)
{
	__u64 *buf, *ips, frames_key;
	__u32 zero = 0, id;
	bool read = false;

	buf = bpf_map_lookup_elem(&stack_scratch, &zero);
	if (!buf || buf[0]) {
		ADD(c->drop_stack_error, 1);
		return ZT_STACK_NONE;
	}
	WRITE_ONCE(buf[0], 1);
	ips = buf + ZT_SCRATCH_HEAD;
	if (sample) {
		ADD(c->sample_stacks_read, 1);
		read = read_sample_stack(ctx, ips, sample);
	}
	if (!read) {
		if (sample)
			ADD(c->sample_stacks_walked, 1);
		walk_stack(ctx, ips);
	}
	/*
	 * Stored by the frames' own key: they are the truth. The library's
	 * hash is checked against the frames it wrote, not against a walk.
	 */
	frames_key = stack_key(ips);
	if (key && read && frames_key != key)
		ADD(c->sample_hash_mismatches, 1);
	id = store_stack(c, ips, frames_key);
	WRITE_ONCE(buf[0], 0);
	return id;
}

/*
 * The stack's id. A sample's known by its hash is the fast path, inline,
 * which also gives the id's slot in *SLOT (else it is left NULL); the
 * rest, a walk or a read and a store, is read_stack(), a subprogram out of
 * the way: a sample runs cold, and the code it runs is then lines to fetch
 * too. The library's hash covers its frames, so it stands for the stack
 * only when --stack-depth keeps exactly those and the probe's address.
 */
static __always_inline __u32 get_stack(struct pt_regs *ctx,
				       struct zt_counters *c, __u64 sample,
				       __u64 hash, struct zt_stack_slot **slot)
{
	__u64 key = 0;
	__u32 id;

	*slot = NULL;
	if (hash && stack_depth == ZT_SAMPLE_FRAMES + 1) {
		key = stack_key_of(hash, PT_REGS_IP(ctx));
		id = known_stack(key, slot);
		if (id != ZT_STACK_NONE)
			return id;
	}
	return read_stack(ctx, c, sample, key);
}

/* Account a tracked block that is leaving (freed, moved, or stale). */
static __always_inline void account_leave(struct zt_counters *c,
					  const struct zt_block *b)
{
	struct zt_stack_totals *t;

	hist_add(ZT_HIST_FREE, b->requested, b->usable);
	if (!capture_stacks)
		return;
	t = get_totals(c, b->stack_id);
	if (!t)
		return;
	ADD(t->live_blocks, -1);
	ADD(t->live_bytes, -(__s64)b->requested);
}

/* A bucket of the live table: its ways, and their blocks. */
struct zt_bucket {
	struct zt_live_bucket *ways; /* NULL: no bucket */
	struct zt_live_blocks *blocks;
	__u32 index;
};

static __always_inline void bucket_at(__u32 i, struct zt_bucket *b)
{
	b->index = i;
	b->ways = bpf_map_lookup_elem(&live, &i);
	b->blocks = bpf_map_lookup_elem(&live_blocks, &i);
	if (!b->blocks)
		b->ways = NULL;
}

/* Way W's block, or NULL. */
static __always_inline struct zt_block *block_of(const struct zt_bucket *b,
						 int w)
{
	return b->blocks ? &b->blocks->blk[w & (ZT_LIVE_WAYS - 1)] : NULL;
}

/* The two candidate buckets of an address. */
static __always_inline void live_buckets(__u64 ptr, struct zt_bucket *b1,
					 struct zt_bucket *b2)
{
	__u64 h = ptr;
	__u32 i1, i2;

	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	i1 = (__u32)h & live_mask;
	i2 = (__u32)(h >> 32) & live_mask;
	if (i2 == i1)
		i2 = (i1 + 1) & live_mask;
	bucket_at(i1, b1);
	bucket_at(i2, b2);
}

/* The way of PTR in bucket B, or -1. */
static __always_inline int live_way(const struct zt_bucket *b, __u64 ptr)
{
	int w;

	if (!b->ways)
		return -1;
#pragma unroll
	for (w = 0; w < ZT_LIVE_WAYS; w++)
		if (READ_ONCE(b->ways->ptr[w]) == ptr)
			return w;
	return -1;
}

/* PTR's block, its bucket and way; b1 and b2 are PTR's buckets. */
static __always_inline struct zt_block *
live_find(__u64 ptr, const struct zt_bucket *b1, const struct zt_bucket *b2,
	  const struct zt_bucket **bp, int *wp)
{
	int w;

	if (!b1->ways)
		return NULL;
	w = live_way(b1, ptr);
	if (w >= 0) {
		*bp = b1;
		*wp = w;
		return block_of(b1, w);
	}
	if (!READ_ONCE(b1->ways->spilled))
		return NULL;
	w = live_way(b2, ptr);
	if (w >= 0) {
		*bp = b2;
		*wp = w;
		return block_of(b2, w);
	}
	return NULL;
}

/* Claim a free way of B for PTR; its block, or NULL when B is full. */
static __always_inline struct zt_block *live_claim(const struct zt_bucket *b,
						   __u64 ptr)
{
	int w;

	if (!b->ways)
		return NULL;
#pragma unroll
	for (w = 0; w < ZT_LIVE_WAYS; w++)
		if (!READ_ONCE(b->ways->ptr[w]) &&
		    __sync_val_compare_and_swap(&b->ways->ptr[w], 0, ptr) == 0)
			return block_of(b, w);
	return NULL;
}

/*
 * A free way for PTR in its first bucket, else its second; or NULL. *BP
 * is the bucket it is in.
 */
static __always_inline struct zt_block *live_insert(const struct zt_bucket *b1,
						    const struct zt_bucket *b2,
						    __u64 ptr,
						    const struct zt_bucket **bp)
{
	struct zt_block *blk = live_claim(b1, ptr);

	*bp = b1;
	if (!blk && b1->ways) {
		WRITE_ONCE(b1->ways->spilled, 1);
		blk = live_claim(b2, ptr);
		*bp = b2;
	}
	return blk;
}

/* Sampled mode: mark bucket B in use, once (see ztrace.h). */
static __always_inline void mark_used(const struct zt_bucket *b)
{
	__u32 word = b->index / ZT_USED_BITS;
	__u64 bit = 1ULL << (b->index % ZT_USED_BITS), *w;

	w = bpf_map_lookup_elem(&live_used, &word);
	if (w && !(READ_ONCE(*w) & bit))
		__sync_fetch_and_or(w, bit);
}

/* TID: the allocating thread's, or 0 (a sample: nothing asks). */
static __always_inline void block_fill(struct zt_block *blk, __u64 requested,
				       __u64 usable, __u64 ts, __u32 tid,
				       __u32 stack_id, __u32 flags,
				       __u32 prev_tid)
{
	blk->requested = requested;
	blk->usable = usable;
	blk->ts_ns = ts;
	blk->tid = tid;
	blk->stack_id = stack_id;
	blk->flags = flags;
	blk->prev_tid = prev_tid;
}

/*
 * A block enters. If its address is still tracked, the free of the block
 * that had it was missed (a realloc releases its old block before its probe
 * fires, so another thread can be handed that address first): the stale
 * block leaves, counted as a missed free, and the new one takes its way.
 */
static __always_inline void block_enter(struct pt_regs *ctx,
					struct zt_counters *c, __u64 ptr,
					__u64 requested, __u64 usable,
					__u32 tid)
{
	const struct zt_bucket *bk;
	struct zt_bucket b1, b2;
	struct zt_stack_totals *t = NULL;
	struct zt_stack_slot *slot; /* sampled mode's: not used here */
	struct zt_block *blk;
	__u32 stack_id = ZT_STACK_NONE, flags = 0, prev_tid = 0, zero = 0;
	__u64 ts = 0;
	int w;

	hist_add(ZT_HIST_ALLOC, requested, usable);
	if (capture_stacks) {
		/* Only leaks needs ages; hist and stat spare the clock. */
		ts = birth_ns(bpf_map_lookup_elem(&clock_cache, &zero));
		stack_id = get_stack(ctx, c, 0, 0, &slot);
		t = get_totals(c, stack_id);
		if (t) {
			ADD(t->allocs, 1);
			ADD(t->bytes, requested);
		}
	}

	live_buckets(ptr, &b1, &b2);
	blk = live_find(ptr, &b1, &b2, &bk, &w);
	if (blk) {
		ADD(c->missed_frees, 1);
		ADD(c->missed_free_bytes, blk->requested);
		account_leave(c, blk);
		flags = ZT_BLOCK_REPLACED;
		prev_tid = blk->tid;
	} else {
		blk = live_insert(&b1, &b2, ptr, &bk);
	}
	if (!blk) {
		ADD(c->drop_live_full, 1);
		ADD(c->drop_live_bytes, requested);
		ADD(c->drop_live_usable, usable);
		return;
	}
	block_fill(blk, requested, usable, ts, tid, stack_id, flags, prev_tid);
	if (t) {
		ADD(t->live_blocks, 1);
		ADD(t->live_bytes, requested);
	}
}

/*
 * Both buckets of a sample are full: take a way whose sample the library
 * has freed since, as its header's live word says. The program runs in
 * the target, so that word is one user read away. A word that cannot be
 * read is on a page the sample heap gave back (MADV_DONTNEED, past its
 * cache of freed pages), or on a live sample's page swapped out: such a
 * way is taken only when no way is known freed.
 */
static __noinline int sample_evict(const struct zt_bucket *b, __u64 ptr)
{
	__u64 old, live, gone = 0;
	int w, gone_way = 0;

	if (!b->ways)
		return -1;
#pragma unroll
	for (w = 0; w < ZT_LIVE_WAYS; w++) {
		old = READ_ONCE(b->ways->ptr[w]);
		if (!old)
			continue;
		if (bpf_probe_read_user(&live, sizeof(live),
					(void *)(old - ZT_SAMPLE_LIVE_OFFSET))) {
			gone = old;
			gone_way = w;
			continue;
		}
		if (live == (ZT_SAMPLE_LIVE ^ old))
			continue;
		if (__sync_val_compare_and_swap(&b->ways->ptr[w], old, ptr) ==
		    old)
			return w;
	}
	gone_way &= ZT_LIVE_WAYS - 1;
	if (gone && __sync_val_compare_and_swap(&b->ways->ptr[gone_way], gone,
						ptr) == gone)
		return gone_way;
	return -1;
}

/*
 * A sample enters. Nothing leaves here: the free of a sample is not traced
 * (user space reads whether it is live), so a sample under an address that
 * is still in the table has replaced a freed one, which takes no more
 * accounting than its way. Every sample gets a birth, in every mode: with
 * its address it is the sample's identity, by which user space tells a
 * new sample from the freed one it replaced (sample_live.c).
 */
static __always_inline void sample_enter(struct pt_regs *ctx,
					 struct zt_counters *c,
					 struct zt_sample_cpu *sc, __u64 ptr,
					 __u64 requested, __u64 weight,
					 __u64 stack_hash)
{
	const struct zt_bucket *bk;
	struct zt_bucket b1, b2;
	struct zt_stack_slot *st;
	struct zt_block *blk;
	__u64 ts, milli = sample_milli(requested, weight);
	__u32 stack_id = ZT_STACK_NONE;
	int w;

	sample_hist_add(sc, requested, weight, milli);
	ts = birth_ns(&sc->clock);
	if (capture_stacks) {
		stack_id = get_stack(ctx, c, ptr, stack_hash, &st);
		if (!st)
			st = get_sample_totals(c, stack_id);
		if (st) {
			ADD(st->samples, 1);
			ADD(st->weight, weight);
			ADD(st->count_milli, milli);
		}
	}
	live_buckets(ptr, &b1, &b2);
	blk = live_find(ptr, &b1, &b2, &bk, &w);
	if (!blk) {
		blk = live_insert(&b1, &b2, ptr, &bk);
		if (blk)
			mark_used(bk);
	}
	if (!blk) {
		/* Both full: b1 is marked spilled, b2 holds ways too. */
		bk = &b1;
		w = sample_evict(bk, ptr);
		if (w < 0) {
			bk = &b2;
			w = sample_evict(bk, ptr);
		}
		if (w >= 0) {
			blk = block_of(bk, w);
			ADD(c->sample_ways_reused, 1);
		}
	}
	if (!blk) {
		ADD(c->drop_live_full, 1);
		ADD(c->drop_live_bytes, requested);
		ADD(c->drop_live_usable, weight);
		return;
	}
	/* usable is the weight's field (struct zt_block). */
	block_fill(blk, requested, weight, ts, 0, stack_id, 0, 0);
}

/*
 * A block leaves. From a realloc (realloc_tid != 0): if the entry under the
 * old address replaced a stale block of this very thread, this is the late
 * probe of that stale block, which has already left: count the race and
 * keep the new owner's entry.
 */
static __always_inline void block_leave(struct zt_counters *c, __u64 ptr,
					__u64 usable, __u32 realloc_tid)
{
	const struct zt_bucket *bk;
	struct zt_bucket b1, b2;
	struct zt_block *b;
	int w;

	live_buckets(ptr, &b1, &b2);
	b = live_find(ptr, &b1, &b2, &bk, &w);
	if (!b) {
		ADD(c->untracked_frees, 1);
		ADD(c->untracked_free_bytes, usable);
		hist_add(ZT_HIST_FREE_UNTRACKED, usable, usable);
		return;
	}
	if (realloc_tid && (b->flags & ZT_BLOCK_REPLACED) &&
	    b->prev_tid == realloc_tid && b->tid != realloc_tid) {
		b->flags = 0;
		ADD(c->realloc_races, 1);
		return;
	}
	account_leave(c, b);
	if (bk->ways)
		WRITE_ONCE(bk->ways->ptr[w & (ZT_LIVE_WAYS - 1)], 0);
}

static __always_inline int on_alloc(struct pt_regs *ctx, __u64 ptr,
				    __u64 requested, __u64 usable)
{
	struct zt_counters *c = get_counters();

	if (!c)
		return 0;
	block_enter(ctx, c, ptr, requested, usable,
		    (__u32)bpf_get_current_pid_tgid());
	return 0;
}

static __always_inline int on_free(__u64 ptr, __u64 usable)
{
	struct zt_counters *c = get_counters();

	if (!c)
		return 0;
	block_leave(c, ptr, usable, 0);
	return 0;
}

static __always_inline int on_realloc(struct pt_regs *ctx, __u64 old, __u64 new,
				      __u64 old_usable, __u64 requested,
				      __u64 new_usable)
{
	struct zt_counters *c = get_counters();
	__u32 tid;

	if (!c)
		return 0;
	ADD(c->reallocs, 1);
	if (old == new)
		ADD(c->reallocs_inplace, 1);
	tid = (__u32)bpf_get_current_pid_tgid();
	block_leave(c, old, old_usable, tid);
	block_enter(ctx, c, new, requested, new_usable, tid);
	return 0;
}

static __always_inline int on_oom(__u64 requested)
{
	struct zt_counters *c = get_counters();

	if (!c)
		return 0;
	ADD(c->ooms, 1);
	ADD(c->oom_bytes, requested);
	return 0;
}

/*
 * The programs: read the arguments, hand them over. A hit whose arguments
 * cannot be read is counted, never dropped silently. The links run them
 * for the target process only (uprobe_multi's pid, a perf event's target
 * task), so they do not ask again: in sampled mode, where each run finds
 * the caches cold, asking cost a task_struct line, about 400 ns.
 */
static __always_inline int read_args(struct pt_regs *ctx, __u64 *args, int need,
				     int n)
{
	struct zt_counters *c;

	if (!usdt_args(ctx, args, need, n))
		return 0;
	c = get_counters();
	if (c)
		ADD(c->drop_args, 1);
	return -1;
}

SEC("usdt")
int zt_alloc(struct pt_regs *ctx)
{
	__u64 a[3];

	if (read_args(ctx, a, 3, 3))
		return 0;
	return on_alloc(ctx, a[0], a[1], a[2]);
}

SEC("usdt")
int zt_free(struct pt_regs *ctx)
{
	__u64 a[2];

	if (read_args(ctx, a, 2, 2))
		return 0;
	return on_free(a[0], a[1]);
}

SEC("usdt")
int zt_realloc(struct pt_regs *ctx)
{
	__u64 a[5];

	if (read_args(ctx, a, 5, 5))
		return 0;
	return on_realloc(ctx, a[0], a[1], a[2], a[3], a[4]);
}

SEC("usdt")
int zt_oom(struct pt_regs *ctx)
{
	__u64 a[1];

	if (read_args(ctx, a, 1, 1))
		return 0;
	return on_oom(a[0]);
}

/* Out of line: only a library whose sites disagree takes it. */
static __noinline int sample_args_by_spec(struct pt_regs *ctx, __u64 *out)
{
	return usdt_args(ctx, out, 4, ZT_SAMPLE_ARGS);
}

/*
 * sample_alloc's arguments into OUT[ZT_SAMPLE_ARGS]; 0 or -errno. Past
 * the fourth they are 0 when the probe has only four: the stack's hash is
 * the fifth, and a library that passes none has its samples' stacks read.
 */
static __always_inline int sample_args(struct pt_regs *ctx, __u64 *out)
{
	__u64 regs[ZT_NREGS];
	int i;

	if (!sample_regs_fixed)
		return sample_args_by_spec(ctx, out);
	__builtin_memcpy(regs, ctx, sizeof(regs));
#pragma unroll
	for (i = 0; i < ZT_SAMPLE_ARGS; i++)
		out[i] = (ZT_SAMPLE_ARGS_READ & (1U << i)) ?
				 reg_value(regs, sample_reg_off[i]) :
				 0;
	return 0;
}

/* Sampled mode: one program hit per sampled block, at its allocation. */
SEC("usdt")
int zt_sample_alloc(struct pt_regs *ctx)
{
	struct zt_sample_cpu *sc;
	struct zt_counters *c;
	__u64 a[ZT_SAMPLE_ARGS];
	__u32 zero = 0;

	c = get_counters();
	sc = bpf_map_lookup_elem(&sample_cpu, &zero);
	if (!c || !sc)
		return 0;
	if (sample_args(ctx, a)) {
		ADD(c->drop_args, 1);
		return 0;
	}
	ADD(sc->hits, 1);
	sample_enter(ctx, c, sc, a[0], a[1], a[3], a[4]);
	return 0;
}

/*
 * Programs that do nothing, attached instead of the above by "ztrace noop":
 * the floor any uprobe-based tracer pays on these probes.
 */
SEC("usdt")
int zt_noop(struct pt_regs *ctx)
{
	return 0;
}
