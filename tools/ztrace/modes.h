/* SPDX-License-Identifier: BSD-3-Clause */
/* modes.h - the subcommands; each returns ztrace's exit status. */
#ifndef ZT_MODES_H
#define ZT_MODES_H

int do_hist(int argc, char **argv);
int do_leaks(int argc, char **argv);
int do_stat(int argc, char **argv);
int do_noop(int argc, char **argv);
int do_record(int argc, char **argv);
int do_serve(int argc, char **argv);
int do_top(int argc, char **argv);

#endif /* ZT_MODES_H */
