/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * record.c - "ztrace record": the heap by allocating stack, written as a
 * gzipped pprof profile (-o FILE, or --pprof FILE), folded stacks
 * (--folded FILE, or -o FILE.folded) and an SVG flame graph (--svg FILE,
 * or -o FILE.svg) when tracing ends, and at every -i interval.
 */
#include <errno.h>
#include <string.h>

#include "export.h"
#include "leaks.h"
#include "modes.h"
#include "output.h"
#include "session.h"

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && !strcmp(s + n - k, suffix);
}

static void record_report(struct zt_session *s, bool final)
{
	__u64 min_age_ns = (__u64)(env.min_age * 1e9);

	if (export_write(s, min_age_ns))
		return;
	if (final)
		p_info("wrote%s%s%s%s%s%s: PID %d (%s), %.2f s traced",
		       env.pprof ? " " : "", env.pprof ? env.pprof : "",
		       env.folded ? " " : "", env.folded ? env.folded : "",
		       env.svg ? " " : "", env.svg ? env.svg : "",
		       s->target.pid, s->target.comm,
		       (s->cur.mono_ns - s->attach_ns) / 1e9);
}

static const struct zt_mode_ops record_ops = {
	.stacks = true,
	.report = record_report,
	.refresh = leaks_refresh,
};

/* -o names the profile; its extension picks the format. */
static int record_outputs(void)
{
	const char *o = env.output;

	env.output = NULL; /* reports are files, not text on zt_out */
	if (o && ends_with(o, ".svg"))
		env.svg = o;
	else if (o && (ends_with(o, ".folded") || ends_with(o, ".txt")))
		env.folded = o;
	else if (o)
		env.pprof = o;
	if (!export_wanted()) {
		p_err("record: nothing to write: give -o FILE.pb.gz (pprof), --folded FILE or --svg FILE");
		return -EINVAL;
	}
	return 0;
}

int do_record(int argc, char **argv)
{
	int err = parse_options(argc, argv, ZT_MODE_RECORD);

	if (err)
		return err > 0 ? 0 : 2;
	if (record_outputs())
		return 2;
	return session_run(&record_ops);
}
