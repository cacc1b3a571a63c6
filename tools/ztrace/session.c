/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * session.c - the life of one ztrace run (see session.h).
 *
 * Signals (SIGINT, SIGTERM, SIGHUP, SIGCHLD) are blocked and read from a
 * signalfd, with a pidfd for a -p target and timers from poll(), so the
 * loop below is the only place that reacts to anything.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "output.h"
#include "procfs.h"
#include "session.h"

#define ZT_REFRESH_NS 1000000000ULL

static void read_target_figures(struct zt_session *s)
{
	if (!s->alive)
		return;
	s->last_used_memory_err =
		used_memory_read(&s->um, &s->target, &s->last_used_memory);
	s->last_rss_err = target_rss(&s->target, &s->last_rss);
	if (env.sample)
		sample_ctl_read(&s->sc, &s->target);
}

static void session_report(struct zt_session *s, bool final)
{
	if (s->final_done)
		return;
	if (collect_counters(&s->probes, &s->cur))
		return;
	read_target_figures(s);
	s->cur.used_memory = s->last_used_memory;
	s->cur.used_memory_err = s->last_used_memory_err;
	s->cur.rss = s->last_rss;
	s->cur.rss_err = s->last_rss_err;
	s->cur.stale = !s->alive;
	s->ops->report(s, final);
	s->prev = s->cur;
	s->seq++;
	if (final)
		s->final_done = true;
}

/*
 * Sampled mode: check which samples are live while the target can still
 * be read, so that a report after its exit (-p) leaves out the samples it
 * had freed (sample_live.h).
 */
static void check_live_samples(struct zt_session *s)
{
	const struct zt_live_entry *v;
	size_t n;

	if (s->probes.sampled && s->probes.skel && !s->ops->noop)
		collect_live_samples(&s->probes, 0, &v, &n);
}

/* The mode's own refresh: symbolizing stacks while the target runs. */
static void refresh_mode(struct zt_session *s)
{
	if (s->alive && s->ops->refresh)
		s->ops->refresh(s);
}

static void refresh(struct zt_session *s)
{
	if (!s->alive)
		return;
	read_target_figures(s);
	check_live_samples(s);
	refresh_mode(s);
}

/* The child is stopped at its exit: its memory is still readable. */
static void on_exit_stop(void *ctx)
{
	struct zt_session *s = ctx;

	if (!s->final_done) {
		s->end_reason = "exited";
		refresh_mode(s);
		session_report(s, true);
	}
	s->alive = false;
}

static int setup_pid(struct zt_session *s)
{
	int err;

	err = target_open_pid(&s->target, env.pid);
	if (err)
		return err;
	if (env.sample) {
		sample_ctl_init(&s->sc, &s->target, false);
		sample_ctl_read(&s->sc, &s->target); /* drops before now */
	}
	if (env.sample_bytes) {
		err = sample_ctl_set(&s->sc, &s->target, env.sample_bytes);
		if (err)
			return err;
	}
	err = probes_open(&s->probes, s->target.pid, s->target.probe_path,
			  s->ops->stacks, s->ops->noop);
	if (err)
		return err;
	if (!proc_alive(s->target.pid)) {
		p_err("process %d exited while ztrace was attaching to it: nothing was traced",
		      s->target.pid);
		return -ESRCH;
	}
	p_info("tracing PID %d (%s), probes in %s; Ctrl-C to stop",
	       s->target.pid, s->target.comm, s->target.probe_path);
	return 0;
}

static int setup_cmd(struct zt_session *s)
{
	struct zt_target *t = &s->target;
	int err;

	err = spawn_prepare(t, env.cmd);
	if (!err && env.sample)
		sample_ctl_init(&s->sc, t, true);
	if (!err && env.sample_bytes)
		err = sample_ctl_set_env(env.sample_bytes);
	if (err)
		return err;
	err = spawn_start(t, env.cmd);
	if (err)
		return err;
	err = probes_open(&s->probes, t->pid, t->probe_path, s->ops->stacks,
			  s->ops->noop);
	if (!err)
		err = spawn_release(t);
	if (err) {
		spawn_abort(t);
		return err;
	}
	if (env.verbose)
		p_info("running %s as PID %d, probes in %s", t->exe, t->pid,
		       t->probe_path);
	return 0;
}

static int setup_signals(sigset_t *old)
{
	sigset_t mask;
	int fd;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGUSR1);
	if (sigprocmask(SIG_BLOCK, &mask, old))
		return -errno;
	fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (fd < 0)
		return -errno;
	return fd;
}

static int ms_until(__u64 now, __u64 when)
{
	__u64 ms;

	if (when <= now)
		return 0;
	ms = (when - now + 999999) / 1000000;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

/* Returns true when the loop should end now. */
static bool handle_signals(struct zt_session *s, int sfd, bool *stop,
			   int *interrupts)
{
	struct signalfd_siginfo si;
	bool done = false;
	int r;

	while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGUSR1) {
			/* On demand: a report now, with a scan in leaks. */
			s->report_now = true;
			s->scan_requested = env.mode == ZT_MODE_LEAKS;
			continue;
		}
		if (si.ssi_signo != SIGCHLD) {
			*stop = true;
			(*interrupts)++;
			if (!s->end_reason)
				s->end_reason = "interrupted";
			continue;
		}
		if (!s->target.spawned)
			continue;
		r = spawn_wait(&s->target, on_exit_stop, s);
		if (r != 0) {
			s->alive = false;
			s->end_reason = "exited";
			done = true;
		}
	}
	return done;
}

/* A key for the mode (ztrace top): it may end tracing. */
static void handle_input(struct zt_session *s, struct pollfd *fd, bool *stop)
{
	int r = s->ops->input(s);

	if (r < 0)
		fd->fd = -1;
	if (r > 0 && !*stop) {
		*stop = true;
		if (!s->end_reason)
			s->end_reason = "quit";
	}
}

static void run_loop(struct zt_session *s, int sfd)
{
	__u64 now = mono_now_ns(), next_report = ULLONG_MAX, end = ULLONG_MAX;
	__u64 next_refresh = now + ZT_REFRESH_NS;
	struct pollfd fds[3] = {
		{ .fd = sfd, .events = POLLIN },
		{ .fd = s->target.spawned ? -1 : s->target.pidfd,
		  .events = POLLIN },
		{ .fd = s->ops->input ? STDIN_FILENO : -1, .events = POLLIN },
	};
	bool stop = false, stopped = false;
	int interrupts = 0;

	if (env.interval > 0)
		next_report = now + (__u64)(env.interval * 1e9);
	if (env.duration > 0)
		end = now + (__u64)(env.duration * 1e9);
	for (;;) {
		__u64 when = next_refresh;

		if (!stopped) {
			when = next_report < when ? next_report : when;
			when = end < when ? end : when;
		}
		poll(fds, 3, ms_until(now, when));
		if (handle_signals(s, sfd, &stop, &interrupts))
			return;
		if (fds[2].revents)
			handle_input(s, &fds[2], &stop);
		if (s->report_now && !stopped) {
			s->report_now = false;
			refresh_mode(s);
			session_report(s, false);
		}
		if (fds[1].revents) {
			s->alive = false;
			s->end_reason = "exited";
			return;
		}
		now = mono_now_ns();
		if (now >= end && !stop) {
			stop = true;
			s->end_reason = "duration elapsed";
		}
		if (stop && !stopped) {
			refresh_mode(s);
			session_report(s, true);
			if (!s->target.spawned || s->target.exited)
				return;
			/* Leave the command running untraced, to its end. */
			probes_detach(&s->probes);
			p_info("stopped tracing; waiting for PID %d to exit (^C again to leave it running)",
			       s->target.pid);
			stopped = true;
		}
		if (stopped && interrupts > 1)
			return;
		/* A report due now is itself a refresh. */
		if (now >= next_refresh) {
			if (!stopped && now < next_report)
				refresh(s);
			else if (!stopped)
				refresh_mode(s);
			next_refresh = now + ZT_REFRESH_NS;
		}
		if (!stopped && now >= next_report) {
			session_report(s, false);
			next_report += (__u64)(env.interval * 1e9);
			if (next_report < now)
				next_report = now + (__u64)(env.interval * 1e9);
		}
	}
}

static void session_init(struct zt_session *s, const struct zt_mode_ops *ops)
{
	memset(s, 0, sizeof(*s));
	s->ops = ops;
	target_init(&s->target);
	probes_init(&s->probes);
	s->last_used_memory_err = -EAGAIN;
	s->last_rss_err = -EAGAIN;
}

int session_run(const struct zt_mode_ops *ops)
{
	struct zt_session s;
	sigset_t old;
	int sfd, err, code = 1;

	session_init(&s, ops);
	if (output_open(env.output, env.json))
		return 1;
	err = probes_check_system();
	if (err)
		goto out_close_output;
	sfd = setup_signals(&old);
	if (sfd < 0) {
		p_err("cannot set up signal handling: %s", strerror(-sfd));
		goto out_close_output;
	}
	err = env.pid ? setup_pid(&s) : setup_cmd(&s);
	if (err)
		goto out_destroy;
	s.attach_ns = mono_now_ns();
	s.prev.mono_ns = s.attach_ns;
	s.alive = true;
	if (!ops->noop)
		used_memory_init(&s.um, &s.target);
	if (ops->stacks &&
	    symbolizer_init(&s.sym, &s.target, env.max_stacks * 2 + 1))
		goto out_destroy;
	if (ops->stacks && env.pid)
		symbolizer_refresh(&s.sym, &s.target);
	run_loop(&s, sfd);
	if (!ops->noop)
		session_report(&s, true);
	code = s.target.spawned ? spawn_exit_code(&s.target) : 0;
	if (s.target.spawned && !s.target.exited)
		code = 128 + SIGINT;
	if (ops->stacks)
		symbolizer_free(&s.sym);
out_destroy:
	probes_destroy(&s.probes);
	if (!s.target.spawned)
		sample_ctl_restore(&s.sc, &s.target);
	target_close(&s.target);
	close(sfd);
	sigprocmask(SIG_SETMASK, &old, NULL);
out_close_output:
	output_close();
	return code;
}
