/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * snapshot.c - the fork snapshot: a copy-on-write copy of the target's
 * memory, made in one short stop, scanned while the target runs.
 *
 * 1. Stop every thread (stop.c) and read their registers: these are the
 *    register roots, as in a stop-the-world scan.
 * 2. Make one thread call clone(CLONE_FILES, exit signal 0) (inject.c).
 *    Without CLONE_VM the child gets a copy-on-write copy of the address
 *    space, i.e. the memory as it is at the stop; the kernel copies page
 *    tables, not pages, so this is the pause. With PTRACE_O_TRACECLONE
 *    the child starts traced by us and stopped before its first
 *    instruction; PTRACE_O_EXITKILL, set on it at once, makes the kernel
 *    kill it if we die. Exit signal 0: no SIGCHLD reaches the target, and
 *    its waitpid() without __WCLONE or __WALL never sees the child.
 *    CLONE_FILES: the child shares the fd table instead of holding a
 *    reference to every open file, so a socket or pipe the target closes
 *    meanwhile is closed for real. Stack pointer non-canonical, signals
 *    blocked (inherited from the injected thread's mask): if the child
 *    were ever let go (see the last paragraph) it would fault at its
 *    first stack access and die by the default action, never running a
 *    handler of the target.
 * 3. Scan the shared writable mappings (MAP_SHARED, shmem): the child
 *    sees their live contents, not a copy, so they are read now.
 * 4. Resume the target. Everything else is read from the stopped child:
 *    its mappings are the target's at the stop, except those the fork
 *    does not copy (MADV_DONTFORK: absent) or wipes (MADV_WIPEONFORK:
 *    zero); both count as unreadable roots, which withholds verdicts of
 *    lost rather than inventing one.
 * 5. SIGKILL the child; wait for it as its tracer (this detaches it, and
 *    leaves a zombie for its real parent, the target); then make one
 *    thread of the target reap it with wait4(child, NULL, __WALL |
 *    WNOHANG, NULL), injected again, stopping only that thread.
 *
 * Why reap by injection: the kernel lets only the real parent reap a
 * child (a tracer's wait hands the zombie back to it), and every other
 * choice is worse: CLONE_PARENT makes the target's own parent the parent,
 * and it would get a SIGCHLD and a stray pid from its waitpid(); leaving
 * the zombie costs a pid per scan and shows in the target's children. The
 * injected wait4 names our pid, writes no memory of the target and runs
 * in microseconds; its one trace is the child's few milliseconds of
 * system time (its exit, unmapping the copy) in the target's
 * RUSAGE_CHILDREN. A target that itself waits with __WALL may reap the
 * child first: our wait4 then finds nothing, which is fine.
 *
 * What the target can notice: a child process for the length of the scan
 * (ps, /proc/PID/task/TID/children, one more pid under its pids.max, one
 * more user of its fd table); copy-on-write faults, and the memory they
 * take, for pages it writes during the scan; two injected calls (each
 * thread paused, one of them for the length of a clone). Targets with a
 * seccomp filter are refused: the filter could kill the target for an
 * injected clone.
 *
 * Signals: the caller's asynchronous signals stay blocked from the stop
 * until the child is reaped, so ^C or SIGTERM lets the scan finish and
 * clean up. A SIGKILL cannot be blocked: during the scan of the child it
 * kills the child too (EXITKILL) and leaves its zombie, which the next
 * snapshot of the same target reaps (see reap_stale()); during the clone
 * itself, it would leave the injected thread with our registers, a window
 * of one system call that no tracer can close.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zscan_int.h"

/* Any user access at this stack pointer faults (not canonical). */
#define ZS_CHILD_SP 0xdead000000000000ULL
#define ZS_STALE_MAX 16

/* The thread to inject into: one in a system call, with no signal. */
static struct zs_thread *pick_thread(struct zs_world *w)
{
	struct zs_thread *best = NULL;

	for (size_t i = 0; i < w->n; i++) {
		struct zs_thread *th = &w->th[i];

		if (!zs_thread_injectable(w->pid, th))
			continue;
		if (!th->sig)
			return th;
		if (!best)
			best = th;
	}
	return best;
}

static int inject(struct zs_world *w, struct zs_snap *s, long nr,
		  const uint64_t a[6], unsigned int opts, long *ret,
		  pid_t *child, const struct zscan_opts *o)
{
	struct zs_thread *th = pick_thread(w);

	if (!th) {
		zs_log(o,
		       "no thread of process %d can run a system call for "
		       "the snapshot (seccomp filter, or inside an rseq "
		       "critical section)",
		       (int)w->pid);
		return -EBUSY;
	}
	s->tid = th->tid;
	return zs_inject(th, s->gadget, nr, a, opts, ret, child);
}

/*
 * A child we left behind when SIGKILLed: a zombie, exit signal 0, killed
 * by SIGKILL. The target's own children report with SIGCHLD and are not
 * SIGKILLed clones as a rule; this is a heuristic, and it only ever reaps
 * a zombie, never a live process.
 */
static bool stale_child(pid_t c)
{
	char path[64], buf[1024], *p, *tok;
	int field = 3, state = 0;
	long exit_signal = -1, exit_code = -1;
	FILE *fp;
	size_t len;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)c);
	fp = fopen(path, "re");
	if (!fp)
		return false;
	len = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[len] = '\0';
	p = strrchr(buf, ')');
	if (!p)
		return false;
	for (tok = strtok(p + 1, " \n"); tok; tok = strtok(NULL, " \n")) {
		if (field == 3)
			state = tok[0];
		else if (field == 38)
			exit_signal = strtol(tok, NULL, 10);
		else if (field == 52)
			exit_code = strtol(tok, NULL, 10);
		field++;
	}
	return state == 'Z' && exit_signal == 0 && exit_code == SIGKILL;
}

/* Reaps our stale zombies among the children of the stopped target. */
static void reap_stale(struct zs_world *w, struct zs_snap *s,
		       const struct zscan_opts *o)
{
	pid_t stale[ZS_STALE_MAX], c;
	size_t n = 0;
	char path[96];
	FILE *fp;

	for (size_t i = 0; i < w->n && n < ZS_STALE_MAX; i++) {
		snprintf(path, sizeof(path), "/proc/%d/task/%d/children",
			 (int)w->pid, (int)w->th[i].tid);
		fp = fopen(path, "re");
		if (!fp)
			continue;
		while (n < ZS_STALE_MAX && fscanf(fp, "%d", &c) == 1)
			if (stale_child(c))
				stale[n++] = c;
		fclose(fp);
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t a[6] = { (uint64_t)stale[i], 0, __WALL | WNOHANG };
		pid_t none;
		long ret = 0;

		if (!inject(w, s, SYS_wait4, a, 0, &ret, &none, o) &&
		    ret == stale[i])
			zs_log(o,
			       "reaped snapshot child %d of process %d, "
			       "left by a scanner that was killed",
			       (int)stale[i], (int)w->pid);
	}
}

/* Steps 1 to 3, with the target stopped. */
static int take_stopped(struct zs_snap *s, struct zs_mark *m,
			const struct zscan_opts *o, struct zscan_stats *st)
{
	struct zs_ranges roots = { 0 };
	struct zs_maps shared = { 0 };
	uint64_t a[6] = { CLONE_FILES, ZS_CHILD_SP };
	uint64_t t0;
	pid_t child = 0;
	long ret = 0;
	int err;

	err = zs_world_regs(&s->w, o);
	if (err)
		return err;
	if (o->stopped)
		o->stopped(o->stopped_arg, s->pid);
	for (size_t i = 0; i < s->w.n; i++)
		st->threads += !s->w.th[i].gone;
	/* Unmapped or remapped since we looked: look again. */
	if (!zs_gadget_valid(s->pid, s->gadget)) {
		err = zs_find_gadget(s->pid, &s->gadget);
		if (err)
			return err;
	}
	reap_stale(&s->w, s, o);
	t0 = zs_now_ns();
	err = inject(&s->w, s, SYS_clone, a, PTRACE_O_TRACECLONE, &ret, &child,
		     o);
	st->fork_ns = zs_now_ns() - t0;
	s->child = child ? child : (ret > 0 ? (pid_t)ret : 0);
	if (err)
		return err;
	if (ret < 0) {
		zs_log(o, "process %d could not fork its snapshot: %s",
		       (int)s->pid, strerror((int)-ret));
		return (int)ret;
	}
	err = zs_maps_read(s->pid, &s->maps);
	if (err)
		return err;
	for (size_t i = 0; i < s->maps.n && !err; i++) {
		const struct zs_map *mp = &s->maps.m[i];

		if ((mp->flags & ZS_M_SHARED) && (mp->flags & ZS_M_WRITE))
			err = zs_maps_add(&shared, mp);
	}
	if (!err)
		err = zs_roots(&shared, &s->w, false, o->flags, 0, &roots, st);
	if (!err && roots.n) {
		m->stopped = true;
		err = zs_mark_roots(m, &roots);
		m->stopped = false;
	}
	zs_ranges_free(&roots);
	zs_maps_free(&shared);
	return err;
}

/* Kills and reaps the child; always ends with no child left. */
void zs_snap_drop(struct zs_snap *s, const struct zscan_opts *o,
		  struct zscan_stats *st)
{
	struct zs_world w;
	uint64_t a[6] = { 0 };
	uint64_t t0 = zs_now_ns();
	int status, err = 0;
	pid_t none;
	long ret = 0;

	if (s->child > 0) {
		kill(s->child, SIGKILL);
		/* As its tracer: this detaches it, a zombie of the target. */
		while (waitpid(s->child, &status, __WALL) < 0 && errno == EINTR)
			;
		a[0] = (uint64_t)s->child;
		a[2] = __WALL | WNOHANG;
		for (int tries = 0; tries < 3; tries++) {
			pid_t tid = tries ? s->pid : s->tid;

			if (tid <= 0)
				continue;
			err = zs_world_stop_one(&w, s->pid, tid, o);
			if (!err)
				err = inject(&w, s, SYS_wait4, a, 0, &ret,
					     &none, o);
			zs_world_resume(&w);
			zs_world_free(&w);
			if (err == -ESRCH && kill(s->pid, 0) < 0)
				break; /* the target is gone: init reaps */
			if (!err)
				break;
		}
		if (err || ret != s->child)
			zs_log(o,
			       "could not reap snapshot child %d of process "
			       "%d (%s): the next snapshot will",
			       (int)s->child, (int)s->pid,
			       strerror(err	? -err :
					ret < 0 ? (int)-ret :
						  ECHILD));
		s->child = 0;
	}
	if (st)
		st->reap_ns = zs_now_ns() - t0;
	zs_maps_free(&s->maps);
	zs_world_free(&s->w);
	if (s->masked) {
		pthread_sigmask(SIG_SETMASK, &s->oldmask, NULL);
		s->masked = false;
	}
}

int zs_snap_take(struct zs_snap *s, pid_t pid, struct zs_mark *m,
		 const struct zscan_opts *o, struct zscan_stats *st)
{
	uint64_t gadget = s->gadget;
	int err;

	memset(s, 0, sizeof(*s));
	s->pid = pid;
	s->gadget = gadget;
	s->masked = zs_block_signals(&s->oldmask);
	if (!zs_gadget_valid(pid, s->gadget)) {
		/* Before the stop: reading code is not free. */
		err = zs_find_gadget(pid, &s->gadget);
		if (err) {
			zs_log(o,
			       "no syscall instruction found in process "
			       "%d: %s",
			       (int)pid, strerror(-err));
			goto out_drop;
		}
	}
	err = zs_world_stop(&s->w, pid, o);
	if (!err)
		err = take_stopped(s, m, o, st);
	zs_world_resume(&s->w);
	st->pause_ns = s->w.pause_ns;
	if (!err)
		return 0;
out_drop:
	zs_snap_drop(s, o, NULL);
	return err;
}

/* Is [lo, hi) mapped in the child, as it was in the target? */
static bool in_child(const struct zs_maps *cm, uint64_t lo, uint64_t hi)
{
	for (size_t i = 0; i < cm->n; i++)
		if (cm->m[i].lo <= lo && cm->m[i].hi >= hi)
			return true;
	return false;
}

int zs_snap_roots(struct zs_snap *s, struct zs_ranges *roots,
		  const struct zscan_opts *o, struct zscan_stats *st)
{
	struct zs_maps cm, priv = { 0 };
	int err;

	err = zs_maps_read_smaps(s->child, &cm);
	if (err)
		return err;
	for (size_t i = 0; i < s->maps.n && !err; i++) {
		const struct zs_map *mp = &s->maps.m[i];

		if ((mp->flags & (ZS_M_WRITE | ZS_M_SHARED)) != ZS_M_WRITE ||
		    !(mp->flags & ZS_M_READ) || in_child(&cm, mp->lo, mp->hi))
			continue;
		st->unreadable_bytes += mp->hi - mp->lo;
		zs_log(o,
		       "%#llx-%#llx of process %d is not copied by fork "
		       "(MADV_DONTFORK): no verdict of lost",
		       (unsigned long long)mp->lo, (unsigned long long)mp->hi,
		       (int)s->pid);
	}
	for (size_t i = 0; i < cm.n && !err; i++) {
		const struct zs_map *mp = &cm.m[i];

		if (mp->flags & ZS_M_SHARED)
			continue; /* scanned during the stop */
		if ((mp->flags & ZS_M_WIPE) && (mp->flags & ZS_M_WRITE)) {
			st->unreadable_bytes += mp->hi - mp->lo;
			zs_log(o,
			       "%#llx-%#llx of process %d is wiped by fork "
			       "(MADV_WIPEONFORK): no verdict of lost",
			       (unsigned long long)mp->lo,
			       (unsigned long long)mp->hi, (int)s->pid);
			continue;
		}
		err = zs_maps_add(&priv, mp);
	}
	if (!err)
		err = zs_roots(&priv, &s->w, false, o->flags, s->child, roots,
			       st);
	zs_maps_free(&priv);
	zs_maps_free(&cm);
	return err;
}

int zs_snap_scan(pid_t pid, uint64_t *gadget, struct zs_mark *m,
		 const struct zscan_opts *o, struct zscan_stats *st)
{
	struct zs_ranges roots = { 0 };
	struct zs_snap s = { .gadget = *gadget };
	char path[64];
	int err;

	err = zs_mark_copy_prepare(m, o->copy_bytes_max);
	if (err)
		return err;
	err = zs_snap_take(&s, pid, m, o, st);
	*gadget = s.gadget;
	if (err)
		return err;
	if (o->snapshot)
		o->snapshot(o->snapshot_arg, pid, s.child);
	/* From here on every read is of the frozen copy. */
	m->pid = s.child;
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)s.child);
	m->memfd = open(path, O_RDONLY | O_CLOEXEC);
	err = m->memfd < 0 ? -errno : 0;
	if (!err)
		err = zs_snap_roots(&s, &roots, o, st);
	if (!err)
		err = zs_mark_copy(m);
	if (!err)
		err = zs_mark_regs(m, &s.w);
	if (!err)
		err = zs_mark_roots(m, &roots);
	if (!err)
		err = zs_mark_drain(m);
	/* The cliques read unreached blocks: while the copy still exists. */
	if (!err)
		err = zs_mark_cliques(m);
	if (m->memfd >= 0)
		close(m->memfd);
	m->memfd = -1;
	zs_snap_drop(&s, o, st);
	m->pid = pid;
	zs_ranges_free(&roots);
	return err;
}
