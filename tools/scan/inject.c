/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * inject.c - making one stopped thread of the target run one system call
 * for us, and putting it back exactly as it was.
 *
 * The thread is in a ptrace stop (stop.c). We save its registers and its
 * signal mask, point rip at a `syscall' instruction that already exists
 * in its executable mappings (so no byte of the target is written), load
 * the call's number and arguments, block every signal, and single-step:
 * the kernel runs the call and reports the step with a SIGTRAP before the
 * thread executes anything else. Then the saved registers and mask go
 * back, and the thread sits in that SIGTRAP stop until the caller
 * detaches it (with its own pending signal, if it had one: the SIGTRAP is
 * ours and is never delivered).
 *
 * Why each step is safe:
 *  - orig_rax = -1 while injected: a thread stopped inside an interrupted
 *    call (rax -ERESTARTSYS and friends) would otherwise have that call's
 *    restart applied to our registers when it leaves the stop. The saved
 *    orig_rax comes back afterwards, so the restart happens then, as it
 *    would have without us.
 *  - Every signal blocked during the call: a pending signal would make
 *    clone fail with -ERESTARTNOINTR and stop the thread for delivery in
 *    the middle; blocked, it stays queued for the target. The child of a
 *    clone inherits that mask, so a fault in it (it never runs, but see
 *    snapshot.c) meets the default action, never a handler of the target.
 *  - No thread inside an rseq critical section: leaving the stop at our
 *    rip would make the kernel drop the section without its abort. A
 *    thread in a system call cannot be in one; any other is taken only
 *    when its rseq_cs is clear.
 *  - Threads with a seccomp filter are refused: the filter might answer
 *    our call with SECCOMP_RET_KILL.
 *
 * What cannot be made safe: if the scanner is SIGKILLed between loading
 * the registers and restoring them (the length of one system call), the
 * kernel detaches the thread with the injected registers. Every other
 * signal is blocked by the caller for that span (stop.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zscan_int.h"

#ifndef PTRACE_GET_RSEQ_CONFIGURATION
#define PTRACE_GET_RSEQ_CONFIGURATION 0x420f
#endif
#ifndef PTRACE_GETSIGMASK
#define PTRACE_GETSIGMASK 0x420a
#define PTRACE_SETSIGMASK 0x420b
#endif
#define ZS_ERESTARTNOINTR 513
#define ZS_INJECT_TRIES 8
#define ZS_GADGET_SCAN (1ULL << 20) /* bytes of a mapping searched */

struct rseq_config {
	uint64_t abi_pointer;
	uint32_t abi_size;
	uint32_t signature;
	uint32_t flags;
	uint32_t pad;
};

/* ------------------------------------------------------------ gadget */

static bool is_syscall(const uint8_t *p)
{
	return p[0] == 0x0f && p[1] == 0x05;
}

/*
 * Looks for `syscall' in [lo, hi) of the target; *exact when it is the
 * `syscall; ret' pair, which is preferred (see snapshot.c: a child that
 * ran would fault on its first instruction).
 */
static int search_map(pid_t pid, uint64_t lo, uint64_t hi, uint8_t *buf,
		      uint64_t *addr, bool *exact)
{
	uint64_t bad = 0, len = hi - lo;
	int err;

	if (len > ZS_GADGET_SCAN)
		len = ZS_GADGET_SCAN;
	err = zs_read(pid, -1, lo, buf, len, &bad, NULL);
	if (err)
		return err;
	for (uint64_t i = 0; i + 2 < len; i++) {
		if (!is_syscall(buf + i))
			continue;
		if (buf[i + 2] == 0xc3) {
			*addr = lo + i;
			*exact = true;
			return 0;
		}
		if (!*addr)
			*addr = lo + i;
	}
	return 0;
}

int zs_find_gadget(pid_t pid, uint64_t *addr)
{
	char path[64], line[4096], perms[8];
	unsigned long long lo, hi;
	bool exact = false;
	uint8_t *buf;
	int n, err = 0;
	FILE *fp;

	*addr = 0;
	buf = malloc(ZS_GADGET_SCAN);
	if (!buf)
		return -ENOMEM;
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	fp = fopen(path, "re");
	if (!fp) {
		err = errno == ENOENT ? -ESRCH : -errno;
		goto out_free;
	}
	/* The vDSO first: every process has it, and it is ours to read. */
	for (int pass = 0; pass < 2 && !exact && !err; pass++) {
		rewind(fp);
		while (!exact && !err && fgets(line, sizeof(line), fp)) {
			n = 0;
			if (sscanf(line, "%llx-%llx %7s %*x %*x:%*x %*u %n",
				   &lo, &hi, perms, &n) < 3 ||
			    perms[0] != 'r' || perms[2] != 'x')
				continue;
			if (!pass != !!strstr(line + n, "[vdso]"))
				continue;
			err = search_map(pid, lo, hi, buf, addr, &exact);
		}
	}
	fclose(fp);
	if (!err && !*addr)
		err = -ENOENT;
out_free:
	free(buf);
	return err;
}

bool zs_gadget_valid(pid_t pid, uint64_t addr)
{
	uint8_t b[2] = { 0 };
	uint64_t bad = 0;

	return addr && !zs_read(pid, -1, addr, b, 2, &bad, NULL) && !bad &&
	       is_syscall(b);
}

/* ---------------------------------------------------- thread choice */

static int status_field(pid_t pid, pid_t tid, const char *key, long *val)
{
	char path[96], line[256];
	size_t klen = strlen(key);
	int err = -ENOENT;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)pid,
		 (int)tid);
	fp = fopen(path, "re");
	if (!fp)
		return -errno;
	while (fgets(line, sizeof(line), fp)) {
		if (strncmp(line, key, klen) || line[klen] != ':')
			continue;
		*val = strtol(line + klen + 1, NULL, 10);
		err = 0;
		break;
	}
	fclose(fp);
	return err;
}

#if defined(__x86_64__)

/* True when the thread's rseq area names no critical section. */
static bool rseq_clear(pid_t pid, pid_t tid)
{
	struct rseq_config rc;
	uint64_t cs = 1, bad = 0;

	if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, tid, (void *)sizeof(rc),
		   &rc) != (long)sizeof(rc))
		return false;
	if (!rc.abi_pointer)
		return true; /* not registered */
	/* struct rseq: u32 cpu_id_start, u32 cpu_id, u64 rseq_cs. */
	if (zs_read(pid, -1, rc.abi_pointer + 8, &cs, 8, &bad, NULL) || bad)
		return false;
	return cs == 0;
}

bool zs_thread_injectable(pid_t pid, const struct zs_thread *th)
{
	struct user_regs_struct r;
	long seccomp = -1;

	if (th->gone || !th->stopped)
		return false;
	if (status_field(pid, th->tid, "Seccomp", &seccomp) || seccomp)
		return false;
	if (ptrace(PTRACE_GETREGS, th->tid, NULL, &r))
		return false;
	return (long)r.orig_rax >= 0 || rseq_clear(pid, th->tid);
}

/* Waits for the next stop of tid; -ESRCH if it died instead. */
static int wait_stop(pid_t tid, int *status)
{
	pid_t r;

	for (;;) {
		r = waitpid(tid, status, __WALL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -ESRCH;
		if (WIFEXITED(*status) || WIFSIGNALED(*status))
			return -ESRCH;
		if (WIFSTOPPED(*status))
			return 0;
	}
}

/*
 * Single-steps th through the call at the gadget. PTRACE_EVENT_CLONE
 * stops on the way give the child (waited for: it is stopped, traced by
 * us, before it runs one instruction); *ret is the call's result.
 */
static int step_call(struct zs_thread *th, uint64_t gadget, long *ret,
		     pid_t *child)
{
	struct user_regs_struct r;
	unsigned long msg;
	int status, cst, err;

	for (;;) {
		if (ptrace(PTRACE_SINGLESTEP, th->tid, NULL, NULL))
			return -errno;
		err = wait_stop(th->tid, &status);
		if (err)
			return err;
		if (status >> 8 == (SIGTRAP | (PTRACE_EVENT_CLONE << 8)) ||
		    status >> 8 == (SIGTRAP | (PTRACE_EVENT_FORK << 8))) {
			if (ptrace(PTRACE_GETEVENTMSG, th->tid, NULL, &msg))
				return -errno;
			*child = (pid_t)msg;
			/*
			 * At once: the tracer's death must take the child
			 * along, never release it. If it died already, the
			 * caller still reaps it.
			 */
			if (wait_stop(*child, &cst) == 0)
				ptrace(PTRACE_SETOPTIONS, *child, NULL,
				       (void *)PTRACE_O_EXITKILL);
			continue;
		}
		if (status >> 16) /* group-stop, interrupt: keep stepping */
			continue;
		if (WSTOPSIG(status) != SIGTRAP) {
			/* Only SIGSTOP-like ones get through the mask. */
			if (!th->sig)
				th->sig = WSTOPSIG(status);
			continue;
		}
		if (ptrace(PTRACE_GETREGS, th->tid, NULL, &r))
			return -errno;
		if (r.rip != gadget + 2)
			return -EIO; /* not our step: give up, restore */
		*ret = (long)r.rax;
		return 0;
	}
}

int zs_inject(struct zs_thread *th, uint64_t gadget, long nr,
	      const uint64_t a[6], unsigned int ptrace_opts, long *ret,
	      pid_t *child)
{
	struct user_regs_struct saved, r;
	uint64_t mask, all = ~0ULL;
	int err, tries = 0;

	*child = 0;
	if (ptrace(PTRACE_GETREGS, th->tid, NULL, &saved))
		return -errno;
	if (ptrace(PTRACE_GETSIGMASK, th->tid, (void *)sizeof(mask), &mask))
		return -errno;
	if (ptrace(PTRACE_SETSIGMASK, th->tid, (void *)sizeof(all), &all))
		return -errno;
	if (ptrace_opts && ptrace(PTRACE_SETOPTIONS, th->tid, NULL,
				  (void *)(uintptr_t)ptrace_opts)) {
		err = -errno;
		goto out_restore_mask;
	}
	do {
		r = saved;
		r.rip = gadget;
		r.rax = (uint64_t)nr;
		r.orig_rax = (uint64_t)-1;
		r.rdi = a[0];
		r.rsi = a[1];
		r.rdx = a[2];
		r.r10 = a[3];
		r.r8 = a[4];
		r.r9 = a[5];
		if (ptrace(PTRACE_SETREGS, th->tid, NULL, &r)) {
			err = -errno;
			break;
		}
		err = step_call(th, gadget, ret, child);
		/* Only a fatal signal gets clone to say this now; retry. */
	} while (!err && *ret == -ZS_ERESTARTNOINTR && !*child &&
		 ++tries < ZS_INJECT_TRIES);
	if (err == -ESRCH) {
		th->gone = true; /* the target died under us */
		return err;
	}
	if (ptrace(PTRACE_SETREGS, th->tid, NULL, &saved) && !err)
		err = -errno;
	if (ptrace_opts)
		ptrace(PTRACE_SETOPTIONS, th->tid, NULL, NULL);
out_restore_mask:
	if (ptrace(PTRACE_SETSIGMASK, th->tid, (void *)sizeof(mask), &mask) &&
	    !err)
		err = -errno;
	th->stopped = true;
	return err;
}

#else /* !__x86_64__ */

bool zs_thread_injectable(pid_t pid, const struct zs_thread *th)
{
	return false;
}

int zs_inject(struct zs_thread *th, uint64_t gadget, long nr,
	      const uint64_t a[6], unsigned int ptrace_opts, long *ret,
	      pid_t *child)
{
	*child = 0;
	return -EOPNOTSUPP;
}

#endif
