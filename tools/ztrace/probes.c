/* SPDX-License-Identifier: BSD-3-Clause */
/* probes.c - load and attach the BPF programs (see probes.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "options.h"
#include "output.h"
#include "probes.h"
#include "ztrace_types.h"
#include "ztrace.skel.h"
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

static void set_autoload(struct zt_probes *p)
{
	struct ztrace_bpf *s = p->skel;

	bpf_program__set_autoload(s->progs.zt_alloc, !p->noop);
	bpf_program__set_autoload(s->progs.zt_free, !p->noop);
	bpf_program__set_autoload(s->progs.zt_realloc, !p->noop);
	bpf_program__set_autoload(s->progs.zt_oom, !p->noop);
	bpf_program__set_autoload(s->progs.zt_noop, p->noop);
}

static int size_maps(struct zt_probes *p)
{
	struct ztrace_bpf *s = p->skel;
	__u32 nstacks = p->stacks ? env.max_stacks : 1;
	__u32 depth = p->stacks ? env.stack_depth : 1;
	int err;

	err = bpf_map__set_max_entries(s->maps.live,
				       p->noop ? 1 : env.max_blocks);
	if (!err)
		err = bpf_map__set_max_entries(s->maps.stacks, nstacks);
	if (!err)
		err = bpf_map__set_value_size(s->maps.stacks,
					      depth * sizeof(__u64));
	if (!err)
		err = bpf_map__set_max_entries(s->maps.stack_totals,
					       nstacks + 1);
	return err;
}

int probes_load(struct zt_probes *p, pid_t tgid, bool stacks, bool noop)
{
	int err;

	p->stacks = stacks;
	p->noop = noop;
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
	p->skel->rodata->targ_tgid = tgid;
	p->skel->rodata->capture_stacks = stacks;
	set_autoload(p);
	err = size_maps(p);
	if (err) {
		p_err("cannot size the BPF maps: %s", strerror(-err));
		goto out_destroy;
	}
	err = ztrace_bpf__load(p->skel);
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
	return 0;
out_destroy:
	ztrace_bpf__destroy(p->skel);
	p->skel = NULL;
	return err;
}

int probes_attach(struct zt_probes *p, pid_t pid, const char *path)
{
	static const char *const names[ZT_NPROBES] = {
		ZMALLOC_PROBE_ALLOC,
		ZMALLOC_PROBE_FREE,
		ZMALLOC_PROBE_REALLOC,
		ZMALLOC_PROBE_OOM,
	};
	struct bpf_program *progs[ZT_NPROBES] = {
		p->skel->progs.zt_alloc,
		p->skel->progs.zt_free,
		p->skel->progs.zt_realloc,
		p->skel->progs.zt_oom,
	};
	int i, err;

	for (i = 0; i < ZT_NPROBES; i++) {
		struct bpf_program *prog = p->noop ? p->skel->progs.zt_noop :
						     progs[i];

		p->links[i] = bpf_program__attach_usdt(
			prog, pid, path, ZMALLOC_PROBE_PROVIDER, names[i],
			NULL);
		if (!p->links[i]) {
			err = -errno;
			goto out_detach;
		}
	}
	return 0;
out_detach:
	if (err == -ESRCH || err == -ENOENT)
		p_err("cannot attach to probe zmalloc:%s of %s in PID %d: %s; did the process exit while ztrace attached?",
		      names[i], path, pid, strerror(-err));
	else
		p_err("cannot attach to probe zmalloc:%s of %s in PID %d: %s; run with -v for libbpf's reason",
		      names[i], path, pid, strerror(-err));
	probes_detach(p);
	return err;
}

void probes_detach(struct zt_probes *p)
{
	int i;

	for (i = 0; i < ZT_NPROBES; i++) {
		bpf_link__destroy(p->links[i]);
		p->links[i] = NULL;
	}
}

void probes_destroy(struct zt_probes *p)
{
	probes_detach(p);
	ztrace_bpf__destroy(p->skel);
	p->skel = NULL;
}

static unsigned long long prog_missed(struct bpf_program *prog)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	int fd = bpf_program__fd(prog);

	if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len))
		return 0;
	return info.recursion_misses;
}

unsigned long long probes_missed(const struct zt_probes *p)
{
	struct ztrace_bpf *s = p->skel;

	if (p->noop)
		return prog_missed(s->progs.zt_noop);
	return prog_missed(s->progs.zt_alloc) + prog_missed(s->progs.zt_free) +
	       prog_missed(s->progs.zt_realloc) + prog_missed(s->progs.zt_oom);
}
