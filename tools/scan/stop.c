/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * stop.c - freezing every thread of the target, reading its registers,
 * and letting it go.
 *
 * PTRACE_SEIZE plus PTRACE_INTERRUPT stops a thread without a signal that
 * the target could see (SIGSTOP would show in its wait status and its
 * job control), and works on a thread that is already in group-stop. New
 * threads may appear while we seize: /proc/PID/task is listed again until
 * a listing brings nothing new once every known thread is stopped (a
 * stopped thread cannot clone). A signal that arrives meanwhile shows as a
 * signal-delivery-stop; it is handed back at detach, so the target loses
 * nothing. PTRACE_DETACH restarts each thread. If the scanning process
 * dies, the kernel detaches every tracee: the target runs on.
 *
 * While the target is stopped, the asynchronous signals of the calling
 * thread are blocked, so that ^C or a SIGTERM cannot end the scan between
 * stop and resume; they are delivered when the old mask comes back.
 */
#include <dirent.h>
#include <elf.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>

#include "zscan_int.h"

#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif
#define ZS_XSTATE_MAX 16384

bool zs_block_signals(sigset_t *old)
{
	sigset_t all;

	sigfillset(&all);
	/* Faults stay deliverable: a crash must kill us (and detach). */
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGILL);
	sigdelset(&all, SIGTRAP);
	sigdelset(&all, SIGABRT);
	sigdelset(&all, SIGSYS);
	return pthread_sigmask(SIG_BLOCK, &all, old) == 0;
}

static struct zs_thread *find_thread(struct zs_world *w, pid_t tid)
{
	for (size_t i = 0; i < w->n; i++)
		if (w->th[i].tid == tid)
			return &w->th[i];
	return NULL;
}

static int add_thread(struct zs_world *w, pid_t tid)
{
	struct zs_thread *th;
	size_t cap;

	if (w->n == w->cap) {
		cap = w->cap ? w->cap * 2 : 16;
		th = realloc(w->th, cap * sizeof(*th));
		if (!th)
			return -ENOMEM;
		w->th = th;
		w->cap = cap;
	}
	memset(&w->th[w->n], 0, sizeof(w->th[w->n]));
	w->th[w->n].tid = tid;
	w->n++;
	return 0;
}

/* Waits for one seized thread to stop, or to be gone. */
static void wait_stopped(struct zs_thread *th)
{
	int status;
	pid_t r;

	while (!th->stopped && !th->gone) {
		r = waitpid(th->tid, &status, __WALL);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			th->gone = true; /* ECHILD: exited and reaped */
			break;
		}
		if (WIFEXITED(status) || WIFSIGNALED(status)) {
			th->gone = true;
			break;
		}
		if (!WIFSTOPPED(status))
			continue;
		th->stopped = true;
		/* A signal-delivery-stop: the signal goes back at detach. */
		if ((status >> 16) == 0)
			th->sig = WSTOPSIG(status);
	}
}

/*
 * PTRACE_SEIZE fails with EPERM on a thread that has exited but is not
 * reaped yet, as on one that another tracer holds: tell them apart.
 */
static bool thread_exited(pid_t pid, pid_t tid)
{
	char path[64], buf[512], *p;
	FILE *f;
	bool gone = true;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid,
		 (int)tid);
	f = fopen(path, "re");
	if (!f)
		return true;
	if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) && p[1])
		gone = p[2] == 'Z' || p[2] == 'X';
	fclose(f);
	return gone;
}

/* Seizes the threads of the listing not seized yet; *added counts them. */
static int seize_new(struct zs_world *w, const struct zscan_opts *o, int *added)
{
	char path[64];
	struct dirent *de;
	DIR *dir;
	pid_t tid;
	int err = 0;

	*added = 0;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)w->pid);
	dir = opendir(path);
	if (!dir)
		return errno == ENOENT ? -ESRCH : -errno;
	while ((de = readdir(dir))) {
		tid = (pid_t)strtol(de->d_name, NULL, 10);
		if (tid <= 0 || find_thread(w, tid))
			continue;
		if (tid == o->held_tid) {
			err = add_thread(w, tid);
			if (err)
				break;
			w->th[w->n - 1].held = true;
			w->th[w->n - 1].stopped = true;
			continue;
		}
		if (ptrace(PTRACE_SEIZE, tid, NULL, NULL) < 0) {
			int e = errno;

			if (e == ESRCH ||
			    (e == EPERM && thread_exited(w->pid, tid)))
				continue; /* exited meanwhile */
			err = -e;
			zs_log(o, "cannot seize thread %d of process %d: %s%s",
			       (int)tid, (int)w->pid, strerror(e),
			       e == EPERM ? " (another tracer? run as root)" :
					    "");
			break;
		}
		err = add_thread(w, tid);
		if (err) {
			/* Not in the table: let it go at once. */
			ptrace(PTRACE_DETACH, tid, NULL, NULL);
			break;
		}
		ptrace(PTRACE_INTERRUPT, tid, NULL, NULL);
		(*added)++;
	}
	closedir(dir);
	return err;
}

int zs_world_stop(struct zs_world *w, pid_t pid, const struct zscan_opts *o)
{
	size_t live = 0;
	int added, err;

	memset(w, 0, sizeof(*w));
	w->pid = pid;
	w->masked = zs_block_signals(&w->oldmask);
	w->t_stop = zs_now_ns();
	do {
		err = seize_new(w, o, &added);
		if (err)
			return err; /* the caller resumes what was seized */
		for (size_t i = 0; i < w->n; i++)
			wait_stopped(&w->th[i]);
	} while (added);
	for (size_t i = 0; i < w->n; i++)
		live += !w->th[i].gone;
	return live ? 0 : -ESRCH;
}

int zs_world_stop_one(struct zs_world *w, pid_t pid, pid_t tid,
		      const struct zscan_opts *o)
{
	int err;

	memset(w, 0, sizeof(*w));
	w->pid = pid;
	w->masked = zs_block_signals(&w->oldmask);
	w->t_stop = zs_now_ns();
	if (ptrace(PTRACE_SEIZE, tid, NULL, NULL) < 0) {
		err = -errno;
		if (err != -ESRCH)
			zs_log(o, "cannot seize thread %d of process %d: %s",
			       (int)tid, (int)pid, strerror(errno));
		return err;
	}
	err = add_thread(w, tid);
	if (err) {
		ptrace(PTRACE_DETACH, tid, NULL, NULL);
		return err;
	}
	ptrace(PTRACE_INTERRUPT, tid, NULL, NULL);
	wait_stopped(&w->th[0]);
	return w->th[0].gone ? -ESRCH : 0;
}

static uint64_t regs_sp(const void *regs)
{
#if defined(__x86_64__)
	return ((const struct user_regs_struct *)regs)->rsp;
#elif defined(__aarch64__)
	return ((const struct user_regs_struct *)regs)->sp;
#else
	(void)regs;
	return 0; /* unknown: the whole stack mapping is scanned */
#endif
}

/* Reads one register set into th->regs; false when it is not there. */
static bool read_regset(struct zs_thread *th, unsigned int type, size_t max)
{
	struct iovec iov;
	uint8_t *p;

	p = realloc(th->regs, th->regs_len + max);
	if (!p)
		return false;
	th->regs = p;
	iov.iov_base = p + th->regs_len;
	iov.iov_len = max;
	if (ptrace(PTRACE_GETREGSET, th->tid, (void *)(uintptr_t)type, &iov))
		return false;
	th->regs_len += iov.iov_len;
	return true;
}

int zs_world_regs(struct zs_world *w, const struct zscan_opts *o)
{
	struct zs_thread *th;

	for (size_t i = 0; i < w->n; i++) {
		th = &w->th[i];
		if (th->gone)
			continue;
		if (!read_regset(th, NT_PRSTATUS,
				 sizeof(struct user_regs_struct))) {
			if (errno == ESRCH) {
				th->gone = true;
				continue;
			}
			zs_log(o, "cannot read the registers of thread %d: %s",
			       (int)th->tid, strerror(errno));
			return -errno;
		}
		th->sp = regs_sp(th->regs);
		/*
		 * Vector registers can hold pointers too (copies, spills):
		 * memcheck ignores them, but a root we skip could make a
		 * false verdict of lost. The full xsave area when there is
		 * one, else the classic FP set.
		 */
		if (!read_regset(th, NT_X86_XSTATE, ZS_XSTATE_MAX))
			read_regset(th, NT_PRFPREG, 1024);
	}
	return 0;
}

void zs_world_resume(struct zs_world *w)
{
	struct zs_thread *th;
	uint64_t t;

	for (size_t i = 0; i < w->n; i++) {
		th = &w->th[i];
		if (th->held)
			continue; /* the caller's to resume */
		/* Detach needs a stopped tracee: finish a half-done stop. */
		wait_stopped(th);
		if (!th->gone)
			ptrace(PTRACE_DETACH, th->tid, NULL,
			       (void *)(uintptr_t)th->sig);
		th->stopped = false;
		th->gone = true;
	}
	if (w->t_stop) {
		t = zs_now_ns();
		w->pause_ns += t - w->t_stop;
		w->t_stop = 0;
	}
	if (w->masked) {
		pthread_sigmask(SIG_SETMASK, &w->oldmask, NULL);
		w->masked = false;
	}
}

void zs_world_free(struct zs_world *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->th[i].regs);
	free(w->th);
	w->th = NULL;
	w->n = w->cap = 0;
}
