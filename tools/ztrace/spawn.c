/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * spawn.c - run "-- CMD ARGS" with the probes attached before its first
 * instruction.
 *
 * spawn_prepare() finds the file that will carry the probes: the executable
 * itself when it has zmalloc notes (statically linked), else the
 * libzmalloc its ELF interpreter resolves ("interp --list EXE", as ldd
 * does, in ztrace's own environment, which the command inherits).
 * spawn_start() forks a child that blocks on a pipe; ztrace then attaches
 * the USDT probes to that file for the child's PID (uprobes live on the
 * inode, so they apply when the child maps the library after execve()),
 * and spawn_release() seizes the child with ptrace for its exit event only
 * and lets it execve(). Stopped at its exit, the child's memory is still
 * there, so the final report reads it and symbolizes its stacks. If ztrace
 * dies, the kernel detaches it and the command runs on untraced.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "elf_info.h"
#include "output.h"
#include "target.h"
#include "zmalloc_probes.h"

extern char **environ;

/* Find CMD as execvp() would: as given if it has a '/', else in $PATH. */
static int resolve_exe(const char *cmd, char *out, size_t len)
{
	const char *path = getenv("PATH");
	char *copy, *dir, *save;

	if (strchr(cmd, '/')) {
		if (access(cmd, X_OK))
			return -errno;
		snprintf(out, len, "%s", cmd);
		return 0;
	}
	copy = strdup(path ? path : "/usr/local/bin:/usr/bin:/bin");
	if (!copy)
		return -ENOMEM;
	for (dir = strtok_r(copy, ":", &save); dir;
	     dir = strtok_r(NULL, ":", &save)) {
		snprintf(out, len, "%s/%s", *dir ? dir : ".", cmd);
		if (!access(out, X_OK)) {
			free(copy);
			return 0;
		}
	}
	free(copy);
	return -ENOENT;
}

/* Run "INTERP --list EXE" and return its output on a FILE. */
static FILE *run_list(const char *interp, const char *exe, pid_t *pid)
{
	int fds[2];
	FILE *f;

	if (pipe2(fds, O_CLOEXEC))
		return NULL;
	*pid = fork();
	if (*pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return NULL;
	}
	if (*pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		execl(interp, interp, "--list", exe, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	f = fdopen(fds[0], "r");
	if (!f)
		close(fds[0]);
	return f;
}

/*
 * Lines look like "\tlibzmalloc.so.1 => /path/libzmalloc.so.1 (0x...)";
 * the first resolved library with zmalloc notes wins.
 */
static int find_probe_lib(struct zt_target *t, const char *interp)
{
	char line[PATH_MAX + 128], missing[256] = "";
	int status, err = -ENOENT;
	pid_t pid;
	FILE *f;

	f = run_list(interp, t->exe, &pid);
	if (!f) {
		err = -errno;
		p_err("cannot run the dynamic loader %s to list the libraries of %s: %s",
		      interp, t->exe, strerror(-err));
		return err;
	}
	while (fgets(line, sizeof(line), f)) {
		char *arrow = strstr(line, " => "), *path, *end;

		if (!arrow)
			continue;
		path = arrow + 4;
		if (!strncmp(path, "not found", 9)) {
			*arrow = '\0';
			snprintf(missing, sizeof(missing), "%s",
				 line + strspn(line, " \t"));
			continue;
		}
		end = strstr(path, " (");
		if (end)
			*end = '\0';
		path[strcspn(path, "\n")] = '\0';
		if (err &&
		    !elf_has_usdt_provider(path, ZMALLOC_PROBE_PROVIDER)) {
			snprintf(t->probe_path, sizeof(t->probe_path), "%s",
				 path);
			err = 0;
		}
	}
	fclose(f);
	waitpid(pid, &status, 0);
	if (err && missing[0])
		p_err("%s needs %s, which the dynamic loader cannot find: set LD_LIBRARY_PATH or link it with -Wl,-rpath",
		      t->exe, missing);
	return err;
}

int spawn_prepare(struct zt_target *t, char **argv)
{
	char interp[PATH_MAX], real[PATH_MAX];
	int err;

	err = resolve_exe(argv[0], t->exe, sizeof(t->exe));
	if (err) {
		p_err("cannot run '%s': %s; check the command name and PATH",
		      argv[0], strerror(-err));
		return err;
	}
	if (!elf_has_usdt_provider(t->exe, ZMALLOC_PROBE_PROVIDER)) {
		snprintf(t->probe_path, sizeof(t->probe_path), "%s", t->exe);
		t->probes_in_exe = true;
	} else {
		err = elf_interp(t->exe, interp, sizeof(interp));
		if (err == -ENOEXEC && access(t->exe, R_OK) == 0)
			p_err("%s is not an ELF executable (a script?): run the program itself after --",
			      t->exe);
		if (!err)
			err = find_probe_lib(t, interp);
		if (err) {
			if (err == -ENOENT)
				p_err("%s does not use libzmalloc: neither it nor a library it loads has zmalloc USDT probes; link it with libzmalloc built with probes",
				      t->exe);
			return err;
		}
	}
	/* /proc/PID/maps names the file by its real path. */
	if (!realpath(t->probe_path, real)) {
		err = -errno;
		p_err("cannot resolve %s: %s", t->probe_path, strerror(-err));
		return err;
	}
	snprintf(t->map_path, sizeof(t->map_path), "%s", real);
	return 0;
}

static void child_run(int go_fd, const char *exe, char **argv,
		      const sigset_t *mask)
{
	char go;

	sigprocmask(SIG_SETMASK, mask, NULL);
	if (read(go_fd, &go, 1) != 1)
		_exit(127); /* ztrace gave up before releasing us */
	close(go_fd);
	execv(exe, argv);
	fprintf(stderr, "ztrace: cannot execute %s: %s\n", exe,
		strerror(errno));
	_exit(127);
}

int spawn_start(struct zt_target *t, char **argv)
{
	sigset_t none;
	int fds[2], err;

	if (pipe2(fds, O_CLOEXEC)) {
		err = -errno;
		p_err("cannot create a pipe to start %s: %s", t->exe,
		      strerror(-err));
		return err;
	}
	fflush(NULL);
	t->pid = fork();
	if (t->pid < 0) {
		err = -errno;
		close(fds[0]);
		close(fds[1]);
		p_err("cannot fork to start %s: %s", t->exe, strerror(-err));
		return err;
	}
	if (t->pid == 0) {
		sigemptyset(&none);
		close(fds[1]);
		child_run(fds[0], t->exe, argv, &none);
	}
	close(fds[0]);
	t->go_fd = fds[1];
	t->spawned = true;
	snprintf(t->comm, sizeof(t->comm), "%.31s",
		 strrchr(t->exe, '/') ? strrchr(t->exe, '/') + 1 : t->exe);
	t->pidfd = syscall(SYS_pidfd_open, t->pid, 0);
	return 0;
}

int spawn_release(struct zt_target *t)
{
	const long opts = PTRACE_O_TRACEEXIT;
	char go = 'g';
	int err = 0;

	/* Without ptrace the final report uses the last figures read. */
	if (ptrace(PTRACE_SEIZE, t->pid, NULL, (void *)opts) == 0)
		t->traced = true;
	else
		p_warn("cannot ptrace %s for its exit (%s): the final report will show the last figures read before it exited",
		       t->exe, strerror(errno));
	if (write(t->go_fd, &go, 1) != 1) {
		err = -errno;
		p_err("cannot start %s: %s", t->exe, strerror(-err));
	}
	close(t->go_fd);
	t->go_fd = -1;
	t->released = true;
	return err;
}

void spawn_abort(struct zt_target *t)
{
	if (!t->spawned || t->exited)
		return;
	if (!t->released) {
		/* Not yet the command: our own fork, blocked on the pipe. */
		close(t->go_fd);
		t->go_fd = -1;
		waitpid(t->pid, &t->wstatus, 0);
		t->exited = true;
	}
}

/* One wait status of the seized child. */
static int spawn_handle(struct zt_target *t, int status,
			void (*on_exit)(void *ctx), void *ctx)
{
	int sig, event;

	if (WIFEXITED(status) || WIFSIGNALED(status)) {
		t->wstatus = status;
		t->exited = true;
		t->status_known = true;
		return 1;
	}
	if (!WIFSTOPPED(status))
		return 0;
	sig = WSTOPSIG(status);
	event = status >> 16;
	if (event == PTRACE_EVENT_EXIT) {
		unsigned long msg;

		if (!ptrace(PTRACE_GETEVENTMSG, t->pid, NULL, &msg)) {
			t->wstatus = (int)msg;
			t->status_known = true;
		}
		t->at_exit = true;
		if (on_exit)
			on_exit(ctx);
		t->at_exit = false;
		ptrace(PTRACE_CONT, t->pid, NULL, NULL);
	} else if (event == PTRACE_EVENT_STOP) {
		/* Group stop (SIGSTOP and the like): stay stopped. */
		ptrace(PTRACE_LISTEN, t->pid, NULL, NULL);
	} else {
		/* A signal on its way to the child: deliver it. */
		ptrace(PTRACE_CONT, t->pid, NULL, (void *)(long)sig);
	}
	return 0;
}

int spawn_wait(struct zt_target *t, void (*on_exit)(void *ctx), void *ctx)
{
	int status, ret = 0;
	pid_t pid;

	if (t->exited)
		return 1;
	if (t->held_status) {
		/* A stop spawn_hold() took for us: handled as if just seen. */
		status = t->held_status;
		t->held_status = 0;
		ret = spawn_handle(t, status, on_exit, ctx);
	}
	while (ret == 0) {
		pid = waitpid(t->pid, &status, WNOHANG | __WALL);
		if (pid == 0)
			return 0;
		if (pid < 0)
			return errno == EINTR ? 0 : -errno;
		ret = spawn_handle(t, status, on_exit, ctx);
	}
	return ret;
}

/*
 * Holds the seized command in a ptrace-stop, for a caller that must read
 * it while it cannot run (a leak scan). Signals that arrive first are
 * delivered and waited past; an exit or group stop is kept in
 * t->held_status for spawn_wait(). Returns 0 with the command stopped, or
 * -errno (-ESRCH: it is gone).
 */
int spawn_hold(struct zt_target *t)
{
	int status, event;

	if (!t->traced || t->exited || t->at_exit)
		return t->at_exit ? 0 : -ESRCH;
	if (ptrace(PTRACE_INTERRUPT, t->pid, NULL, NULL))
		return -errno;
	for (;;) {
		if (waitpid(t->pid, &status, __WALL) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (!WIFSTOPPED(status)) {
			t->held_status =
				status; /* exited: spawn_wait() reaps */
			return -ESRCH;
		}
		event = status >> 16;
		if (event == PTRACE_EVENT_STOP && WSTOPSIG(status) == SIGTRAP)
			return 0; /* our interrupt */
		if (event == 0) {
			/* A signal on its way: deliver it, then our stop. */
			ptrace(PTRACE_CONT, t->pid, NULL,
			       (void *)(long)WSTOPSIG(status));
			continue;
		}
		/* Its exit, or a group stop: held, and left to spawn_wait(). */
		t->held_status = status;
		return 0;
	}
}

void spawn_unhold(struct zt_target *t)
{
	if (t->at_exit || t->held_status)
		return; /* spawn_wait() resumes it, as for any such stop */
	ptrace(PTRACE_CONT, t->pid, NULL, NULL);
}

int spawn_exit_code(const struct zt_target *t)
{
	if (!t->exited)
		return 0;
	if (WIFEXITED(t->wstatus))
		return WEXITSTATUS(t->wstatus);
	if (WIFSIGNALED(t->wstatus))
		return 128 + WTERMSIG(t->wstatus);
	return 1;
}
