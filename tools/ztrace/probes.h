/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * probes.h - the BPF side seen from ztrace: check that this system can run
 * it, open and size the skeleton, load it and attach it to the zmalloc USDT
 * probes of one process. Functions return 0 or -errno and print what failed.
 */
#ifndef ZT_PROBES_H
#define ZT_PROBES_H

#include <stdbool.h>
#include <sys/types.h>

#define ZT_NPROBES 4

struct zt_probes {
	struct ztrace_bpf *skel;
	struct bpf_link *links[ZT_NPROBES];
	int ncpus;
	bool stacks;
	bool noop;
};

int probes_check_system(void);
int probes_load(struct zt_probes *p, pid_t tgid, bool stacks, bool noop);
int probes_attach(struct zt_probes *p, pid_t pid, const char *path);
void probes_detach(struct zt_probes *p);
void probes_destroy(struct zt_probes *p);

/* Runs of our programs the kernel skipped (recursion), summed. */
unsigned long long probes_missed(const struct zt_probes *p);

#endif /* ZT_PROBES_H */
