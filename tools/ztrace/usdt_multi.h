/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * usdt_multi.h - attach a BPF program to every site of one USDT probe with
 * a single uprobe_multi link (Linux 6.6+). Functions return 0 or -errno;
 * -EOPNOTSUPP means "use libbpf's bpf_program__attach_usdt() instead".
 */
#ifndef ZT_USDT_MULTI_H
#define ZT_USDT_MULTI_H

#include <sys/types.h>
#include <linux/types.h>

struct bpf_program;
struct bpf_map;

/* Returns the link fd, or -errno. *next_spec is the next free spec id. */
int usdt_multi_attach(const struct bpf_program *prog,
		      const struct bpf_map *specs, __u32 *next_spec, pid_t pid,
		      const char *path, const char *provider, const char *name);

/*
 * When every site of the probe has each argument I < N whose bit is set
 * in NEED in the same 8-byte register, its byte offset in struct pt_regs
 * into OFF[I] (-1 for the others) and 0; else -ENOENT (or -errno when
 * the notes cannot be read). A program can then read those registers
 * without looking up its site's spec.
 */
int usdt_fixed_regs(const char *path, const char *provider, const char *name,
		    int n, unsigned int need, short *off);

#endif /* ZT_USDT_MULTI_H */
