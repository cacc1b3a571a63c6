/* SPDX-License-Identifier: BSD-3-Clause */
/* probes.c - load and attach the BPF programs (see probes.h). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "options.h"
#include "output.h"
#include "probes.h"
#include "sample_live.h"
#include "ztrace_types.h"
#include "ztrace.skel.h"
#include "usdt_multi.h"
#include "zmalloc_probes.h"

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

static int libbpf_print(enum libbpf_print_level level, const char *fmt,
			va_list ap)
{
	if (level == LIBBPF_DEBUG && env.verbose < 2)
		return 0;
	if (level != LIBBPF_DEBUG && env.verbose < 1)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static bool has_cap(const struct __user_cap_data_struct *d, int cap)
{
	return d[cap / 32].effective & (1U << (cap % 32));
}

int probes_check_system(void)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[2] = {};

	if (syscall(SYS_capget, &hdr, data) == 0 &&
	    !has_cap(data, CAP_SYS_ADMIN) &&
	    !(has_cap(data, CAP_BPF) && has_cap(data, CAP_PERFMON))) {
		p_err("loading BPF programs needs root, or CAP_BPF and CAP_PERFMON (plus CAP_SYS_PTRACE to read the target): run ztrace with sudo");
		return -EPERM;
	}
	if (access("/sys/kernel/btf/vmlinux", R_OK)) {
		p_err("this kernel has no BTF (/sys/kernel/btf/vmlinux is missing): ztrace needs a kernel built with CONFIG_DEBUG_INFO_BTF=y");
		return -EOPNOTSUPP;
	}
	if (access("/sys/bus/event_source/devices/uprobe/type", R_OK)) {
		p_err("this kernel has no uprobes (/sys/bus/event_source/devices/uprobe is missing): ztrace needs CONFIG_UPROBE_EVENTS=y");
		return -EOPNOTSUPP;
	}
	libbpf_set_print(libbpf_print);
	return 0;
}

#define ZT_BPF_TRACE_UPROBE_MULTI 48 /* enum bpf_attach_type, Linux 6.6 */

static void set_prog(struct zt_probes *p, struct bpf_program *prog, bool load)
{
	bpf_program__set_autoload(prog, load);
	if (p->multi)
		bpf_program__set_expected_attach_type(
			prog, (enum bpf_attach_type)ZT_BPF_TRACE_UPROBE_MULTI);
}

static void set_autoload(struct zt_probes *p)
{
	struct ztrace_bpf *s = p->skel;
	bool exact = !p->noop && !p->sampled;

	set_prog(p, s->progs.zt_alloc, exact);
	set_prog(p, s->progs.zt_free, exact);
	set_prog(p, s->progs.zt_realloc, exact);
	set_prog(p, s->progs.zt_oom, !p->noop);
	set_prog(p, s->progs.zt_sample_alloc, !p->noop && p->sampled);
	set_prog(p, s->progs.zt_noop, p->noop);
}

/* Buckets for twice --max-blocks blocks, a power of 2. */
static __u32 live_buckets(void)
{
	__u64 want = (2ULL * env.max_blocks + ZT_LIVE_WAYS - 1) / ZT_LIVE_WAYS;
	__u32 n = 1;

	while (n < want)
		n <<= 1;
	return n;
}

static __u32 pow2_at_least(__u32 n)
{
	__u32 v = 1;

	while (v < n)
		v <<= 1;
	return v;
}

static int size_maps(struct zt_probes *p)
{
	struct ztrace_bpf *s = p->skel;
	__u32 nstacks = p->stacks ? env.max_stacks : 1;
	__u32 depth = p->stacks ? env.stack_depth : 1;
	__u32 nbuckets = p->noop ? 1 : live_buckets();
	int err;

	s->rodata->live_mask = nbuckets - 1;
	p->live_capacity = (__u64)nbuckets * ZT_LIVE_WAYS;
	err = bpf_map__set_max_entries(s->maps.live, nbuckets);
	if (!err)
		err = bpf_map__set_max_entries(s->maps.live_blocks, nbuckets);
	if (!err && p->sampled)
		err = bpf_map__set_max_entries(s->maps.live_used,
					       (nbuckets + ZT_USED_BITS - 1) /
						       ZT_USED_BITS);
	s->rodata->stack_depth = depth;
	s->rodata->stack_mask = pow2_at_least(nstacks) - 1;
	if (!err)
		err = bpf_map__set_max_entries(s->maps.stacks, nstacks);
	if (!err)
		err = bpf_map__set_value_size(s->maps.stacks,
					      depth * sizeof(__u64));
	if (!err)
		err = bpf_map__set_max_entries(s->maps.stack_slots,
					       pow2_at_least(nstacks) + 1);
	/* Its head (ztrace.h), then room for a sample's frames at any depth. */
	if (!err)
		err = bpf_map__set_value_size(
			s->maps.stack_scratch,
			(ZT_SCRATCH_HEAD + (depth > ZT_SAMPLE_FRAMES ?
						    depth :
						    ZT_SAMPLE_FRAMES + 1)) *
				sizeof(__u64));
	/*
	 * Per-stack totals of one kind: exact, or sampled estimates (in the
	 * stack slots). Both are indexed by stack id (a stack's hash masked
	 * to the stack map's size rounded up to a power of 2), plus one slot
	 * for blocks without a stack.
	 */
	s->rodata->totals_none_slot = pow2_at_least(nstacks);
	if (!err)
		err = bpf_map__set_max_entries(
			s->maps.stack_totals,
			p->sampled ? 1 : pow2_at_least(nstacks) + 1);
	return err;
}

void probes_init(struct zt_probes *p)
{
	int i;

	memset(p, 0, sizeof(*p));
	for (i = 0; i < ZT_NPROBES; i++)
		p->multi_fds[i] = -1;
}

/* Maps MAP, of VALUE-byte values, read-only; its length in *len. */
static const void *map_array(const struct bpf_map *map, size_t value,
			     size_t *len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	void *mem;

	*len = (bpf_map__max_entries(map) * value + page - 1) / page * page;
	mem = mmap(NULL, *len, PROT_READ, MAP_SHARED, bpf_map__fd(map), 0);
	if (mem == MAP_FAILED) {
		*len = 0;
		return NULL;
	}
	return mem;
}

static void unmap_live_table(struct zt_probes *p)
{
	if (p->live)
		munmap((void *)p->live, p->live_len);
	if (p->live_blocks)
		munmap((void *)p->live_blocks, p->live_blocks_len);
	if (p->live_used)
		munmap((void *)p->live_used, p->live_used_len);
	p->live = NULL;
	p->live_blocks = NULL;
	p->live_used = NULL;
}

/*
 * The live table is mmapable: mapped once, for the session, it is read in
 * place at every refresh (collect.c). Mapping it at each refresh cost more
 * than reading it: the kernel inserts every page of the mapping.
 */
static int map_live_table(struct zt_probes *p)
{
	int err;

	p->live = map_array(p->skel->maps.live, sizeof(*p->live), &p->live_len);
	if (p->live)
		p->live_blocks = map_array(p->skel->maps.live_blocks,
					   sizeof(*p->live_blocks),
					   &p->live_blocks_len);
	if (p->live_blocks && p->sampled)
		p->live_used = map_array(p->skel->maps.live_used,
					 sizeof(*p->live_used),
					 &p->live_used_len);
	if (p->live && p->live_blocks && (p->live_used || !p->sampled))
		return 0;
	err = -errno;
	p_err("cannot map the live table: %s", strerror(-err));
	unmap_live_table(p);
	return err;
}

/*
 * Sampled mode: sample_alloc's arguments straight from their registers
 * when the notes of PATH put them in the same ones at every site (the
 * program reads each site's spec otherwise, as it does with
 * ZTRACE_USDT_SPECS=1).
 */
static void fix_sample_regs(struct zt_probes *p, const char *path)
{
	const char *specs = getenv("ZTRACE_USDT_SPECS");
	struct ztrace_bpf *s = p->skel;
	short off[ZT_SAMPLE_ARGS];
	int i;

	p->sample_regs_fixed = false;
	if (!p->sampled || p->noop || (specs && !strcmp(specs, "1")) ||
	    usdt_fixed_regs(path, ZMALLOC_PROBE_PROVIDER,
			    ZMALLOC_PROBE_SAMPLE_ALLOC, ZT_SAMPLE_ARGS,
			    ZT_SAMPLE_ARGS_READ, off))
		return;
	for (i = 0; i < ZT_SAMPLE_ARGS; i++)
		s->rodata->sample_reg_off[i] = off[i];
	s->rodata->sample_regs_fixed = true;
	p->sample_regs_fixed = true;
}

/* With p->multi, a failure is quiet: the caller falls back. */
static int probes_load(struct zt_probes *p, const char *path)
{
	int err;

	p->ncpus = libbpf_num_possible_cpus();
	if (p->ncpus <= 0) {
		p_err("cannot count the possible CPUs: %s",
		      strerror(-p->ncpus));
		return p->ncpus ? p->ncpus : -EINVAL;
	}
	p->skel = ztrace_bpf__open();
	if (!p->skel) {
		err = -errno;
		p_err("cannot open the BPF object: %s", strerror(-err));
		return err;
	}
	p->skel->rodata->capture_stacks = p->stacks;
	fix_sample_regs(p, path);
	set_autoload(p);
	err = size_maps(p);
	if (err) {
		p_err("cannot size the BPF maps: %s", strerror(-err));
		goto out_destroy;
	}
	err = ztrace_bpf__load(p->skel);
	if (err && p->multi)
		goto out_destroy;
	if (err) {
		if (err == -EPERM)
			p_err("the kernel refused the BPF programs (EPERM): run ztrace as root, with CAP_BPF and CAP_PERFMON, and check kernel.unprivileged_bpf_disabled and lockdown");
		else if (err == -ENOMEM || err == -E2BIG)
			p_err("cannot create the BPF maps (%s): lower --max-blocks or --max-stacks",
			      strerror(-err));
		else
			p_err("cannot load the BPF programs: %s; run with -v for the verifier log",
			      strerror(-err));
		goto out_destroy;
	}
	err = map_live_table(p);
	if (err)
		goto out_destroy;
	return 0;
out_destroy:
	unmap_live_table(p);
	ztrace_bpf__destroy(p->skel);
	p->skel = NULL;
	return err;
}

void probes_destroy(struct zt_probes *p);

/*
 * The probes of each mode. Sampled mode leaves alloc, free and realloc
 * alone: their semaphores stay at zero, so an unsampled allocation or free
 * never enters the kernel. It leaves sample_free alone too: whether a
 * sample is still live is read from its header (sample_live.c), so that a
 * sample costs the target one kernel entry, not two.
 */
static const char *const exact_names[] = {
	ZMALLOC_PROBE_ALLOC,
	ZMALLOC_PROBE_FREE,
	ZMALLOC_PROBE_REALLOC,
	ZMALLOC_PROBE_OOM,
};

static const char *const sampled_names[] = {
	ZMALLOC_PROBE_SAMPLE_ALLOC,
	ZMALLOC_PROBE_OOM,
};

static int probe_count(const struct zt_probes *p)
{
	return p->sampled ? 2 : 4;
}

static const char *probe_name(const struct zt_probes *p, int i)
{
	return p->sampled ? sampled_names[i] : exact_names[i];
}

static struct bpf_program *probe_prog(struct zt_probes *p, int i)
{
	struct bpf_program *exact[] = {
		p->skel->progs.zt_alloc,
		p->skel->progs.zt_free,
		p->skel->progs.zt_realloc,
		p->skel->progs.zt_oom,
	};
	struct bpf_program *sampled[] = {
		p->skel->progs.zt_sample_alloc,
		p->skel->progs.zt_oom,
	};

	if (p->noop)
		return p->skel->progs.zt_noop;
	return p->sampled ? sampled[i] : exact[i];
}

static void attach_error(const struct zt_probes *p, int i, const char *path,
			 pid_t pid, int err)
{
	if (err == -ESRCH || err == -ENOENT)
		p_err("cannot attach to probe zmalloc:%s of %s in PID %d: %s; did the process exit while ztrace attached?",
		      probe_name(p, i), path, pid, strerror(-err));
	else
		p_err("cannot attach to probe zmalloc:%s of %s in PID %d: %s; run with -v for libbpf's reason%s",
		      probe_name(p, i), path, pid, strerror(-err),
		      p->sampled ?
			      " (--sample needs a libzmalloc with the sample_alloc probe)" :
			      "");
}

/* -EOPNOTSUPP: this kernel has no uprobe_multi; use libbpf's way. */
static int attach_multi(struct zt_probes *p, pid_t pid, const char *path)
{
	__u32 next_spec = 0;
	int i, fd;

	for (i = 0; i < probe_count(p); i++) {
		fd = usdt_multi_attach(probe_prog(p, i),
				       p->skel->maps.__bpf_usdt_specs,
				       &next_spec, pid, path,
				       ZMALLOC_PROBE_PROVIDER,
				       probe_name(p, i));
		if (fd == -EINVAL || fd == -EOPNOTSUPP || fd == -ENOSYS)
			return -EOPNOTSUPP;
		if (fd < 0) {
			attach_error(p, i, path, pid, fd);
			return fd;
		}
		p->multi_fds[i] = fd;
	}
	return 0;
}

static int attach_libbpf(struct zt_probes *p, pid_t pid, const char *path)
{
	int i, err;

	for (i = 0; i < probe_count(p); i++) {
		p->links[i] = bpf_program__attach_usdt(probe_prog(p, i), pid,
						       path,
						       ZMALLOC_PROBE_PROVIDER,
						       probe_name(p, i), NULL);
		if (!p->links[i]) {
			err = -errno;
			attach_error(p, i, path, pid, err);
			return err;
		}
	}
	return 0;
}

int probes_open(struct zt_probes *p, pid_t pid, const char *path, bool stacks,
		bool noop)
{
	const char *no_multi = getenv("ZTRACE_NO_UPROBE_MULTI");
	int err;

	p->stacks = stacks;
	p->noop = noop;
	p->sampled = env.sample;
	p->pid = pid;
	p->multi = !(no_multi && !strcmp(no_multi, "1"));
	if (p->multi) {
		err = probes_load(p, path);
		if (!err) {
			err = attach_multi(p, pid, path);
			if (err != -EOPNOTSUPP)
				goto out;
		}
		if (env.verbose)
			p_info("no uprobe_multi links on this kernel: attaching each probe site on its own");
		probes_destroy(p);
		p->multi = false;
	}
	err = probes_load(p, path);
	if (!err)
		err = attach_libbpf(p, pid, path);
out:
	if (!err && p->sampled) {
		p->live_check = calloc(1, sizeof(*p->live_check));
		if (!p->live_check)
			err = -ENOMEM;
	}
	return err;
}

/*
 * Closing a uprobe_multi link waits for an RCU grace period; closing the
 * four from their own threads lets the waits overlap.
 */
static void *close_thread(void *arg)
{
	close((int)(long)arg);
	return NULL;
}

static void close_multi_parallel(struct zt_probes *p)
{
	pthread_t th[ZT_NPROBES];
	bool started[ZT_NPROBES] = {};
	int i;

	for (i = 0; i < ZT_NPROBES; i++) {
		if (p->multi_fds[i] < 0)
			continue;
		started[i] = !pthread_create(&th[i], NULL, close_thread,
					     (void *)(long)p->multi_fds[i]);
		if (!started[i])
			close(p->multi_fds[i]);
		p->multi_fds[i] = -1;
	}
	for (i = 0; i < ZT_NPROBES; i++)
		if (started[i])
			pthread_join(th[i], NULL);
}

void probes_detach(struct zt_probes *p)
{
	int i;

	close_multi_parallel(p);
	for (i = 0; i < ZT_NPROBES; i++) {
		bpf_link__destroy(p->links[i]);
		p->links[i] = NULL;
	}
}

void probes_destroy(struct zt_probes *p)
{
	probes_detach(p);
	unmap_live_table(p);
	ztrace_bpf__destroy(p->skel);
	p->skel = NULL;
	if (p->live_check) {
		sample_live_free(p->live_check);
		free(p->live_check);
		p->live_check = NULL;
	}
}

/* Adds what the kernel says of PROG (a program not loaded adds 0). */
static void prog_stats(struct bpf_program *prog, struct zt_prog_stats *st)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	int fd = bpf_program__fd(prog);

	if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len))
		return;
	st->missed += info.recursion_misses;
	st->run_ns += info.run_time_ns;
	st->run_cnt += info.run_cnt;
}

void probes_stats(const struct zt_probes *p, struct zt_prog_stats *st)
{
	struct ztrace_bpf *s = p->skel;

	memset(st, 0, sizeof(*st));
	prog_stats(s->progs.zt_noop, st);
	prog_stats(s->progs.zt_alloc, st);
	prog_stats(s->progs.zt_free, st);
	prog_stats(s->progs.zt_realloc, st);
	prog_stats(s->progs.zt_oom, st);
	prog_stats(s->progs.zt_sample_alloc, st);
}

unsigned long long probes_missed(const struct zt_probes *p)
{
	struct zt_prog_stats st;

	probes_stats(p, &st);
	return st.missed;
}
