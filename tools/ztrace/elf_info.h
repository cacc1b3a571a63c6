/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * elf_info.h - what ztrace reads from ELF files with libelf: whether a file
 * carries zmalloc USDT notes, its interpreter, and where a symbol lives.
 * Functions return 0 or -errno (-ENOENT: not there, -ENOEXEC: not ELF).
 */
#ifndef ZT_ELF_INFO_H
#define ZT_ELF_INFO_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

struct zt_elf_sym {
	__u64 value; /* st_value */
	__u64 size; /* st_size */
	__u64 load_base; /* lowest PT_LOAD p_vaddr, page aligned */
	bool is_dyn; /* ET_DYN: add the load bias */
};

/* 0 when PATH has a stapsdt note of PROVIDER, else -ENOENT or -errno. */
int elf_has_usdt_provider(const char *path, const char *provider);
int elf_interp(const char *path, char *buf, size_t len);
int elf_find_symbol(const char *path, const char *name, struct zt_elf_sym *sym);

#endif /* ZT_ELF_INFO_H */
