/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * usdt_multi.c - one uprobe_multi link per USDT probe (see usdt_multi.h).
 *
 * Why: libbpf 1.1 attaches a USDT probe with one perf event per site, and
 * the kernel detaches each of those under a global mutex after an RCU
 * grace period, about 0.1 s per site here: 4 s for libzmalloc's 40 sites,
 * during which no other tracer can attach or detach. A uprobe_multi link
 * attaches all the sites of a probe at once and detaches them after one
 * grace period.
 *
 * How: the stapsdt notes give each site's address, semaphore and argument
 * locations ("8@%rbx 8@-24(%rbp)"). Each site's arguments are written to
 * libbpf's __bpf_usdt_specs map in the layout <bpf/usdt.bpf.h> reads, under
 * a spec id that becomes the site's BPF cookie, so the BPF_USDT() programs
 * work unchanged.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "usdt_multi.h"

#define ZT_BPF_TRACE_UPROBE_MULTI 48 /* enum bpf_attach_type, Linux 6.6 */
#define ZT_USDT_MAX_ARGS 12 /* BPF_USDT_MAX_ARG_CNT */
#define ZT_MAX_SITES 1024
#define NT_STAPSDT 3

/* <bpf/usdt.bpf.h>'s struct __bpf_usdt_spec, as libbpf 1.1 lays it out. */
enum { USDT_ARG_CONST, USDT_ARG_REG, USDT_ARG_REG_DEREF };

struct usdt_arg_spec {
	__u64 val_off;
	__u32 arg_type;
	short reg_off;
	bool arg_signed;
	char arg_bitshift;
};

struct usdt_spec {
	struct usdt_arg_spec args[ZT_USDT_MAX_ARGS];
	__u64 usdt_cookie;
	short arg_cnt;
};

/* BPF_LINK_CREATE's attr for uprobe_multi (include/uapi/linux/bpf.h). */
struct link_create_uprobe_multi {
	__u32 prog_fd;
	__u32 target_fd;
	__u32 attach_type;
	__u32 flags;
	__u64 path;
	__u64 offsets;
	__u64 ref_ctr_offsets;
	__u64 cookies;
	__u32 cnt;
	__u32 um_flags;
	__u32 pid;
	__u32 pad;
};

struct usdt_site {
	__u64 ip_off; /* file offset of the probe site */
	__u64 sema_off; /* file offset of the semaphore, or 0 */
	struct usdt_spec spec;
};

struct reg_name {
	const char *names[4];
	size_t off;
};

#define REG(a, b, c, d, field)                                           \
	{                                                                \
		{ a, b, c, d }, offsetof(struct user_regs_struct, field) \
	}

static const struct reg_name regs[] = {
	REG("rip", "eip", NULL, NULL, rip),
	REG("rax", "eax", "ax", "al", rax),
	REG("rbx", "ebx", "bx", "bl", rbx),
	REG("rcx", "ecx", "cx", "cl", rcx),
	REG("rdx", "edx", "dx", "dl", rdx),
	REG("rsi", "esi", "si", "sil", rsi),
	REG("rdi", "edi", "di", "dil", rdi),
	REG("rbp", "ebp", "bp", "bpl", rbp),
	REG("rsp", "esp", "sp", "spl", rsp),
	REG("r8", "r8d", "r8w", "r8b", r8),
	REG("r9", "r9d", "r9w", "r9b", r9),
	REG("r10", "r10d", "r10w", "r10b", r10),
	REG("r11", "r11d", "r11w", "r11b", r11),
	REG("r12", "r12d", "r12w", "r12b", r12),
	REG("r13", "r13d", "r13w", "r13b", r13),
	REG("r14", "r14d", "r14w", "r14b", r14),
	REG("r15", "r15d", "r15w", "r15b", r15),
};

static int reg_offset(const char *name)
{
	size_t i, j;

	for (i = 0; i < sizeof(regs) / sizeof(regs[0]); i++)
		for (j = 0; j < 4; j++)
			if (regs[i].names[j] && !strcmp(regs[i].names[j], name))
				return regs[i].off;
	return -ENOENT;
}

/* One "SIZE@LOCATION" argument, as libbpf's parse_usdt_arg() reads it. */
static int parse_arg(const char *s, struct usdt_arg_spec *a, int *len)
{
	char reg[16];
	long off;
	int sz, r;

	if (sscanf(s, " %d @ %ld ( %%%15[^)] ) %n", &sz, &off, reg, len) == 3) {
		a->arg_type = USDT_ARG_REG_DEREF;
		a->val_off = off;
	} else if (sscanf(s, " %d @ ( %%%15[^)] ) %n", &sz, reg, len) == 2) {
		a->arg_type = USDT_ARG_REG_DEREF;
		a->val_off = 0;
	} else if (sscanf(s, " %d @ %%%15s %n", &sz, reg, len) == 2) {
		a->arg_type = USDT_ARG_REG;
		a->val_off = 0;
	} else if (sscanf(s, " %d @ $%ld %n", &sz, &off, len) == 2) {
		a->arg_type = USDT_ARG_CONST;
		a->val_off = off;
		a->reg_off = 0;
		reg[0] = '\0';
	} else {
		return -EINVAL;
	}
	if (reg[0]) {
		r = reg_offset(reg);
		if (r < 0)
			return r;
		a->reg_off = r;
	}
	a->arg_signed = sz < 0;
	sz = sz < 0 ? -sz : sz;
	if (sz != 1 && sz != 2 && sz != 4 && sz != 8)
		return -EINVAL;
	a->arg_bitshift = 64 - sz * 8;
	return 0;
}

static int parse_args(const char *s, struct usdt_spec *spec)
{
	int len, err;

	memset(spec, 0, sizeof(*spec));
	while (*s) {
		while (*s == ' ')
			s++;
		if (!*s)
			break;
		if (spec->arg_cnt == ZT_USDT_MAX_ARGS)
			return -E2BIG;
		len = 0;
		err = parse_arg(s, &spec->args[spec->arg_cnt], &len);
		if (err || !len)
			return err ? err : -EINVAL;
		spec->arg_cnt++;
		s += len;
	}
	return 0;
}

/* File offset of a virtual address inside a PT_LOAD segment. */
static int vaddr_to_off(Elf *elf, __u64 vaddr, bool exec, __u64 *off)
{
	size_t i, n;

	if (elf_getphdrnum(elf, &n))
		return -ENOEXEC;
	for (i = 0; i < n; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, i, &ph) || ph.p_type != PT_LOAD)
			continue;
		if (exec && !(ph.p_flags & PF_X))
			continue;
		if (vaddr >= ph.p_vaddr && vaddr < ph.p_vaddr + ph.p_memsz) {
			*off = vaddr - ph.p_vaddr + ph.p_offset;
			return 0;
		}
	}
	return -ENOENT;
}

static Elf_Scn *find_section(Elf *elf, const char *want, GElf_Shdr *shdr)
{
	Elf_Scn *scn = NULL;
	size_t shstrndx;
	const char *name;

	if (elf_getshdrstrndx(elf, &shstrndx))
		return NULL;
	while ((scn = elf_nextscn(elf, scn))) {
		if (!gelf_getshdr(scn, shdr))
			continue;
		name = elf_strptr(elf, shstrndx, shdr->sh_name);
		if (name && !strcmp(name, want))
			return scn;
	}
	return NULL;
}

/* desc: pc, base, semaphore (3 x 8 bytes), provider\0 name\0 args\0. */
static int note_site(Elf *elf, const char *desc, size_t len, __u64 base,
		     const char *provider, const char *name,
		     struct usdt_site *site)
{
	const char *prov = desc + 24, *pname, *args, *end = desc + len;
	__u64 pc, note_base, sema;

	if (len < 27)
		return -ENOENT;
	pname = prov + strnlen(prov, end - prov) + 1;
	if (pname >= end || strcmp(prov, provider))
		return -ENOENT;
	args = pname + strnlen(pname, end - pname) + 1;
	if (args > end || strcmp(pname, name))
		return -ENOENT;
	memcpy(&pc, desc, 8);
	memcpy(&note_base, desc + 8, 8);
	memcpy(&sema, desc + 16, 8);
	if (base && note_base)
		pc += base - note_base; /* prelinked or moved */
	if (vaddr_to_off(elf, pc, true, &site->ip_off))
		return -ENOEXEC;
	site->sema_off = 0;
	if (sema && vaddr_to_off(elf, sema, false, &site->sema_off))
		return -ENOEXEC;
	return parse_args(args < end ? args : "", &site->spec);
}

static int read_sites(const char *path, const char *provider, const char *name,
		      struct usdt_site *sites, size_t *n)
{
	size_t off = 0, name_off, desc_off;
	GElf_Shdr shdr, bshdr;
	Elf_Data *data = NULL;
	Elf_Scn *scn;
	GElf_Nhdr nhdr;
	__u64 base = 0;
	int fd, err = 0;
	Elf *elf;

	*n = 0;
	if (elf_version(EV_CURRENT) == EV_NONE)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf) {
		close(fd);
		return -ENOEXEC;
	}
	if (find_section(elf, ".stapsdt.base", &bshdr))
		base = bshdr.sh_addr;
	scn = find_section(elf, ".note.stapsdt", &shdr);
	if (scn)
		data = elf_getdata(scn, NULL);
	while (data &&
	       (off = gelf_getnote(data, off, &nhdr, &name_off, &desc_off))) {
		const char *desc = (const char *)data->d_buf + desc_off;
		int r;

		if (nhdr.n_type != NT_STAPSDT)
			continue;
		if (*n == ZT_MAX_SITES) {
			err = -E2BIG;
			break;
		}
		r = note_site(elf, desc, nhdr.n_descsz, base, provider, name,
			      &sites[*n]);
		if (r == -ENOENT)
			continue;
		if (r) {
			err = r;
			break;
		}
		(*n)++;
	}
	elf_end(elf);
	close(fd);
	if (!err && !*n)
		err = -ENOENT;
	return err;
}

static int link_create(int prog_fd, const char *path, __u64 *offs,
		       __u64 *ref_ctrs, __u64 *cookies, size_t n, pid_t pid)
{
	struct link_create_uprobe_multi attr;
	int fd;

	memset(&attr, 0, sizeof(attr));
	attr.prog_fd = prog_fd;
	attr.attach_type = ZT_BPF_TRACE_UPROBE_MULTI;
	attr.path = (unsigned long)path;
	attr.offsets = (unsigned long)offs;
	attr.ref_ctr_offsets = (unsigned long)ref_ctrs;
	attr.cookies = (unsigned long)cookies;
	attr.cnt = n;
	attr.pid = pid;
	fd = syscall(__NR_bpf, BPF_LINK_CREATE, &attr, sizeof(attr));
	return fd < 0 ? -errno : fd;
}

int usdt_multi_attach(const struct bpf_program *prog,
		      const struct bpf_map *specs, __u32 *next_spec, pid_t pid,
		      const char *path, const char *provider, const char *name)
{
	__u64 *offs = NULL, *ref_ctrs = NULL, *cookies = NULL;
	struct usdt_site *sites;
	size_t i, n;
	int err, fd;

	if (bpf_map__value_size(specs) != sizeof(struct usdt_spec))
		return -EOPNOTSUPP; /* a libbpf with another spec layout */
	sites = calloc(ZT_MAX_SITES, sizeof(*sites));
	if (!sites)
		return -ENOMEM;
	err = read_sites(path, provider, name, sites, &n);
	if (err)
		goto out_free;
	offs = calloc(n, sizeof(*offs));
	ref_ctrs = calloc(n, sizeof(*ref_ctrs));
	cookies = calloc(n, sizeof(*cookies));
	if (!offs || !ref_ctrs || !cookies) {
		err = -ENOMEM;
		goto out_free;
	}
	for (i = 0; i < n; i++) {
		__u32 id = (*next_spec)++;

		if (id >= bpf_map__max_entries(specs)) {
			err = -E2BIG;
			goto out_free;
		}
		if (bpf_map_update_elem(bpf_map__fd(specs), &id, &sites[i].spec,
					BPF_ANY)) {
			err = -errno;
			goto out_free;
		}
		offs[i] = sites[i].ip_off;
		ref_ctrs[i] = sites[i].sema_off;
		cookies[i] = id;
	}
	fd = link_create(bpf_program__fd(prog), path, offs, ref_ctrs, cookies,
			 n, pid);
	err = fd;
out_free:
	free(offs);
	free(ref_ctrs);
	free(cookies);
	free(sites);
	return err;
}

/* Argument I of SPEC is a whole 8-byte register, at *off in pt_regs. */
static bool reg_arg(const struct usdt_spec *spec, int i, short *off)
{
	const struct usdt_arg_spec *a = &spec->args[i];

	if (i >= spec->arg_cnt || a->arg_type != USDT_ARG_REG ||
	    a->arg_bitshift || a->val_off)
		return false;
	*off = a->reg_off;
	return true;
}

int usdt_fixed_regs(const char *path, const char *provider, const char *name,
		    int n, unsigned int need, short *off)
{
	struct usdt_site *sites;
	size_t i, nsites;
	short o;
	int err, j;

	sites = calloc(ZT_MAX_SITES, sizeof(*sites));
	if (!sites)
		return -ENOMEM;
	for (j = 0; j < n; j++)
		off[j] = -1;
	err = read_sites(path, provider, name, sites, &nsites);
	for (i = 0; !err && i < nsites; i++)
		for (j = 0; !err && j < n; j++) {
			if (!(need & (1U << j)))
				continue;
			if (!reg_arg(&sites[i].spec, j, &o) ||
			    (i && o != off[j]))
				err = -ENOENT;
			else
				off[j] = o;
		}
	free(sites);
	return err;
}
