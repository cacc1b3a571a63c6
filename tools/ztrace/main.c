/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * main.c - ztrace's entry point: dispatch to the subcommand, bpftool-style.
 *
 * Error convention of the tool: internal functions return 0 or -errno and
 * print what failed through p_err() where the failure is first understood;
 * do_<command>() returns the process exit status.
 */
#include <stdio.h>
#include <string.h>

#include "modes.h"
#include "options.h"
#include "output.h"

struct cmd {
	const char *name;
	int (*func)(int argc, char **argv);
};

static int do_help(int argc, char **argv)
{
	print_usage();
	return 0;
}

static const struct cmd cmds[] = {
	{ "hist", do_hist }, { "leaks", do_leaks },   { "stat", do_stat },
	{ "noop", do_noop }, { "record", do_record }, { "serve", do_serve },
	{ "top", do_top },   { "help", do_help },     {},
};

int main(int argc, char **argv)
{
	const struct cmd *c;

	if (argc < 2) {
		print_usage();
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))
		return do_help(argc - 1, argv + 1);
	for (c = cmds; c->name; c++)
		if (!strcmp(argv[1], c->name))
			return c->func(argc - 1, argv + 1);
	p_err("unknown command '%s': use hist, leaks, stat, record, serve, top or noop (see 'ztrace help')",
	      argv[1]);
	return 2;
}
