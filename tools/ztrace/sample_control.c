/* SPDX-License-Identifier: BSD-3-Clause */
/* sample_control.c - the target's zm_sample_control (see sample_control.h). */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "output.h"
#include "sample_control.h"
#include "target.h"
#include "zmalloc_sampling.h"

int sample_ctl_init(struct zt_sample_ctl *sc, const struct zt_target *t,
		    bool fresh)
{
	int err;

	memset(sc, 0, sizeof(*sc));
	sc->err = -EAGAIN;
	sc->have_base = fresh;
	err = elf_find_symbol(t->probe_path, ZMALLOC_SAMPLE_SYMBOL, &sc->sym);
	if (err) {
		sc->err = err;
		p_warn("no symbol %s in %s (%s): the sampling rate and the samples the target dropped will not be shown; is it an older libzmalloc?",
		       ZMALLOC_SAMPLE_SYMBOL, t->probe_path, strerror(-err));
		return err;
	}
	sc->have_sym = true;
	return 0;
}

static int remote_io(pid_t pid, __u64 addr, void *buf, size_t len, bool write)
{
	struct iovec local = { .iov_base = buf, .iov_len = len };
	struct iovec remote = { .iov_base = (void *)(unsigned long)addr,
				.iov_len = len };
	ssize_t n;

	if (write)
		n = process_vm_writev(pid, &local, 1, &remote, 1, 0);
	else
		n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EFAULT;
}

/* The control block, after checking that it is one. */
static int read_control(struct zt_sample_ctl *sc, const struct zt_target *t,
			struct zmalloc_sample_control *c)
{
	__u64 base, lo, hi;
	int err;

	if (!sc->have_sym)
		return -ENOENT;
	if (!sc->addr && !sc->sym.is_dyn) {
		sc->addr = sc->sym.value;
	} else if (!sc->addr) {
		err = target_probe_mapping(t, &base, &lo, &hi);
		if (err)
			return err;
		sc->addr = base - sc->sym.load_base + sc->sym.value;
	}
	err = remote_io(t->pid, sc->addr, c, sizeof(*c), false);
	if (err)
		return err;
	return c->magic == ZMALLOC_SAMPLE_MAGIC ? 0 : -EPROTO;
}

int sample_ctl_read(struct zt_sample_ctl *sc, const struct zt_target *t)
{
	struct zmalloc_sample_control c;

	sc->err = read_control(sc, t, &c);
	if (sc->err)
		return sc->err;
	sc->mean_bytes = c.mean_bytes;
	sc->lost = c.lost;
	if (!sc->have_base) {
		sc->lost_base = c.lost;
		sc->have_base = true;
	}
	return 0;
}

/* One aligned 8-byte store of mean_bytes, as zmalloc_sampling.h asks. */
static int write_mean(struct zt_sample_ctl *sc, const struct zt_target *t,
		      __u64 bytes)
{
	return remote_io(t->pid,
			 sc->addr + offsetof(struct zmalloc_sample_control,
					     mean_bytes),
			 &bytes, sizeof(bytes), true);
}

int sample_ctl_set(struct zt_sample_ctl *sc, const struct zt_target *t,
		   __u64 bytes)
{
	struct zmalloc_sample_control c;
	int err;

	err = read_control(sc, t, &c);
	if (!err)
		err = write_mean(sc, t, bytes);
	if (err) {
		p_err("cannot set the sampling rate of PID %d through %s: %s; run without =BYTES to use the target's own rate",
		      t->pid, ZMALLOC_SAMPLE_SYMBOL, strerror(-err));
		return err;
	}
	sc->old_bytes = c.mean_bytes;
	sc->set_bytes = bytes;
	p_info("set PID %d's sampling rate to one sample per %llu bytes on average (it was %llu; put back when ztrace ends)",
	       t->pid, (unsigned long long)bytes,
	       (unsigned long long)c.mean_bytes);
	return 0;
}

void sample_ctl_restore(struct zt_sample_ctl *sc, const struct zt_target *t)
{
	struct zmalloc_sample_control c;

	if (!sc->set_bytes || read_control(sc, t, &c))
		return;
	/* Another tracer may have set its own rate since: leave it. */
	if (c.mean_bytes == sc->set_bytes)
		write_mean(sc, t, sc->old_bytes);
	sc->set_bytes = 0;
}

int sample_ctl_set_env(__u64 bytes)
{
	char v[32];

	snprintf(v, sizeof(v), "%llu", (unsigned long long)bytes);
	if (setenv("ZMALLOC_SAMPLE_BYTES", v, 1)) {
		p_err("cannot set ZMALLOC_SAMPLE_BYTES for the command: %s",
		      strerror(errno));
		return -errno;
	}
	p_info("sampling one block per %s bytes on average: ZMALLOC_SAMPLE_BYTES=%s set for the command",
	       v, v);
	return 0;
}
