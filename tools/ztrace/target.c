/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * target.c - find a running process's zmalloc probes: the first executable
 * mapping whose file has a stapsdt note of provider "zmalloc".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "elf_info.h"
#include "output.h"
#include "procfs.h"
#include "target.h"
#include "zmalloc_probes.h"

void target_init(struct zt_target *t)
{
	memset(t, 0, sizeof(*t));
	t->pidfd = -1;
	t->go_fd = -1;
	t->statm_fd = -1;
}

void target_close(struct zt_target *t)
{
	if (t->pidfd >= 0)
		close(t->pidfd);
	if (t->go_fd >= 0)
		close(t->go_fd);
	if (t->statm_fd >= 0)
		close(t->statm_fd);
	t->pidfd = -1;
	t->go_fd = -1;
	t->statm_fd = -1;
}

int target_rss(struct zt_target *t, __u64 *bytes)
{
	int fd;

	if (t->statm_fd < 0) {
		fd = proc_statm_open(t->pid);
		if (fd < 0)
			return fd;
		t->statm_fd = fd;
	}
	return proc_rss_fd(t->statm_fd, bytes);
}

struct probe_search {
	struct zt_target *t;
	const char *exe;
	char last[PATH_MAX];
};

/* Open the file as the target sees it, also across mount namespaces. */
static void resolve_path(pid_t pid, const struct zt_map *m, char *out,
			 size_t len)
{
	struct stat st;
	int n;

	if (!stat(m->path, &st) && st.st_ino == m->inode) {
		snprintf(out, len, "%s", m->path);
		return;
	}
	n = snprintf(out, len, "/proc/%d/root%s", pid, m->path);
	if (n < 0 || (size_t)n >= len)
		out[0] = '\0';
}

static int probe_search_map(const struct zt_map *m, void *ctx)
{
	struct probe_search *s = ctx;
	char path[PATH_MAX];

	if (m->path[0] != '/' || m->perms[2] != 'x' ||
	    !strcmp(m->path, s->last))
		return 0;
	snprintf(s->last, sizeof(s->last), "%s", m->path);
	resolve_path(s->t->pid, m, path, sizeof(path));
	if (elf_has_usdt_provider(path, ZMALLOC_PROBE_PROVIDER))
		return 0;
	snprintf(s->t->probe_path, sizeof(s->t->probe_path), "%s", path);
	snprintf(s->t->map_path, sizeof(s->t->map_path), "%s", m->path);
	s->t->probes_in_exe = s->exe && !strcmp(s->exe, m->path);
	return 1;
}

int target_open_pid(struct zt_target *t, pid_t pid)
{
	struct probe_search s = { .t = t };
	char exe_link[64], exe[PATH_MAX];
	ssize_t n;
	int err;

	if (!proc_alive(pid)) {
		p_err("no process with PID %d: check the PID with ps or pgrep",
		      pid);
		return -ESRCH;
	}
	t->pid = proc_tgid(pid); /* a thread id means its process */
	pid = t->pid;
	proc_comm(pid, t->comm, sizeof(t->comm));
	snprintf(exe_link, sizeof(exe_link), "/proc/%d/exe", pid);
	n = readlink(exe_link, exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		s.exe = exe;
	}
	err = proc_maps_foreach(pid, probe_search_map, &s);
	if (err < 0) {
		p_err("cannot read /proc/%d/maps: %s; ztrace needs root or CAP_SYS_PTRACE over the process",
		      pid, strerror(-err));
		return err;
	}
	if (err == 0) {
		p_err("process %d (%s) does not use libzmalloc: no library or executable it maps has zmalloc USDT probes; link it with libzmalloc built with probes (not ZM_NO_PROBES=1)",
		      pid, t->comm);
		return -ENOENT;
	}
	t->pidfd = syscall(SYS_pidfd_open, pid, 0);
	if (t->pidfd < 0) {
		err = -errno;
		p_err("cannot watch PID %d (pidfd_open): %s", pid,
		      strerror(-err));
		return err;
	}
	return 0;
}

struct mapping_search {
	const char *path;
	__u64 base, lo, hi;
	bool found;
};

static int mapping_search_map(const struct zt_map *m, void *ctx)
{
	struct mapping_search *s = ctx;

	if (strcmp(m->path, s->path))
		return 0;
	if (!s->found || m->start < s->lo)
		s->lo = m->start;
	if (!s->found || m->end > s->hi)
		s->hi = m->end;
	if (m->offset == 0 && (!s->found || m->start < s->base))
		s->base = m->start;
	s->found = true;
	return 0;
}

int target_probe_mapping(const struct zt_target *t, __u64 *base, __u64 *lo,
			 __u64 *hi)
{
	struct mapping_search s = { .path = t->map_path };
	int err;

	err = proc_maps_foreach(t->pid, mapping_search_map, &s);
	if (err < 0)
		return err;
	if (!s.found)
		return -EAGAIN;
	*base = s.base;
	*lo = s.lo;
	*hi = s.hi;
	return 0;
}
