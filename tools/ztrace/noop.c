/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * noop.c - "ztrace noop": attach BPF programs that do nothing to the same
 * probes, the cost floor of any uprobe-based tracer; reports nothing.
 */
#include <stdbool.h>

#include "modes.h"
#include "session.h"

static void noop_report(struct zt_session *s, bool final)
{
}

static const struct zt_mode_ops noop_ops = {
	.noop = true,
	.report = noop_report,
};

int do_noop(int argc, char **argv)
{
	int err = parse_options(argc, argv, ZT_MODE_NOOP);

	if (err)
		return err > 0 ? 0 : 2;
	return session_run(&noop_ops);
}
