/* SPDX-License-Identifier: BSD-3-Clause */
/* elf_info.c - libelf readers (see elf_info.h). */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <string.h>
#include <unistd.h>

#include "elf_info.h"

#define NT_STAPSDT 3

static int elf_open(const char *path, int *fd, Elf **elf)
{
	if (elf_version(EV_CURRENT) == EV_NONE)
		return -EINVAL;
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return -errno;
	*elf = elf_begin(*fd, ELF_C_READ_MMAP, NULL);
	if (!*elf || elf_kind(*elf) != ELF_K_ELF) {
		if (*elf)
			elf_end(*elf);
		close(*fd);
		return -ENOEXEC;
	}
	return 0;
}

static void elf_close(int fd, Elf *elf)
{
	elf_end(elf);
	close(fd);
}

/* A stapsdt note's desc: pc, base, semaphore, then "provider\0name\0args". */
static bool note_has_provider(Elf_Data *data, const char *provider)
{
	size_t off = 0, name_off, desc_off;
	GElf_Nhdr nhdr;

	while ((off = gelf_getnote(data, off, &nhdr, &name_off, &desc_off))) {
		const char *desc = (const char *)data->d_buf + desc_off;
		size_t plen = strlen(provider);

		if (nhdr.n_type != NT_STAPSDT || nhdr.n_descsz < 3 * 8 + 1)
			continue;
		if (nhdr.n_descsz - 3 * 8 > plen &&
		    !memcmp(desc + 3 * 8, provider, plen + 1))
			return true;
	}
	return false;
}

int elf_has_usdt_provider(const char *path, const char *provider)
{
	Elf_Scn *scn = NULL;
	size_t shstrndx;
	int fd, err;
	Elf *elf;

	err = elf_open(path, &fd, &elf);
	if (err)
		return err;
	err = -ENOENT;
	if (elf_getshdrstrndx(elf, &shstrndx))
		goto out_close;
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr shdr;
		const char *name;
		Elf_Data *data;

		if (!gelf_getshdr(scn, &shdr) || shdr.sh_type != SHT_NOTE)
			continue;
		name = elf_strptr(elf, shstrndx, shdr.sh_name);
		if (!name || strcmp(name, ".note.stapsdt"))
			continue;
		data = elf_getdata(scn, NULL);
		if (data && note_has_provider(data, provider)) {
			err = 0;
			break;
		}
	}
out_close:
	elf_close(fd, elf);
	return err;
}

int elf_interp(const char *path, char *buf, size_t len)
{
	size_t i, nphdr;
	int fd, err;
	Elf *elf;

	err = elf_open(path, &fd, &elf);
	if (err)
		return err;
	err = -ENOENT;
	if (elf_getphdrnum(elf, &nphdr))
		goto out_close;
	for (i = 0; i < nphdr; i++) {
		GElf_Phdr phdr;
		char *raw;
		size_t rawlen;

		if (!gelf_getphdr(elf, i, &phdr) || phdr.p_type != PT_INTERP)
			continue;
		raw = elf_rawfile(elf, &rawlen);
		if (!raw || phdr.p_offset + phdr.p_filesz > rawlen ||
		    phdr.p_filesz == 0 || phdr.p_filesz >= len) {
			err = -ENOEXEC;
			break;
		}
		memcpy(buf, raw + phdr.p_offset, phdr.p_filesz);
		buf[phdr.p_filesz - 1] = '\0';
		err = 0;
		break;
	}
out_close:
	elf_close(fd, elf);
	return err;
}

static int load_base(Elf *elf, __u64 *base)
{
	size_t i, nphdr;
	bool found = false;

	if (elf_getphdrnum(elf, &nphdr))
		return -ENOEXEC;
	for (i = 0; i < nphdr; i++) {
		GElf_Phdr phdr;

		if (!gelf_getphdr(elf, i, &phdr) || phdr.p_type != PT_LOAD)
			continue;
		if (!found || phdr.p_vaddr < *base)
			*base = phdr.p_vaddr;
		found = true;
	}
	*base &= ~(__u64)0xfff;
	return found ? 0 : -ENOEXEC;
}

static bool symtab_find(Elf *elf, Elf_Scn *scn, const char *name, GElf_Sym *out)
{
	Elf_Data *data = elf_getdata(scn, NULL);
	GElf_Shdr shdr;
	size_t i, n;

	if (!data || !gelf_getshdr(scn, &shdr) || !shdr.sh_entsize)
		return false;
	n = shdr.sh_size / shdr.sh_entsize;
	for (i = 0; i < n; i++) {
		const char *sname;
		GElf_Sym sym;

		if (!gelf_getsym(data, i, &sym) || sym.st_shndx == SHN_UNDEF)
			continue;
		sname = elf_strptr(elf, shdr.sh_link, sym.st_name);
		if (sname && !strcmp(sname, name)) {
			*out = sym;
			return true;
		}
	}
	return false;
}

int elf_find_symbol(const char *path, const char *name, struct zt_elf_sym *sym)
{
	Elf_Scn *scn = NULL;
	GElf_Ehdr ehdr;
	GElf_Sym gsym;
	int fd, err;
	Elf *elf;

	err = elf_open(path, &fd, &elf);
	if (err)
		return err;
	err = -ENOEXEC;
	if (!gelf_getehdr(elf, &ehdr) || load_base(elf, &sym->load_base))
		goto out_close;
	sym->is_dyn = ehdr.e_type == ET_DYN;
	err = -ENOENT;
	/* .dynsym first (shared libraries), then .symtab (static links). */
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr shdr;

		if (!gelf_getshdr(scn, &shdr) || shdr.sh_type != SHT_DYNSYM)
			continue;
		if (symtab_find(elf, scn, name, &gsym))
			goto out_found;
	}
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr shdr;

		if (!gelf_getshdr(scn, &shdr) || shdr.sh_type != SHT_SYMTAB)
			continue;
		if (symtab_find(elf, scn, name, &gsym))
			goto out_found;
	}
	goto out_close;
out_found:
	sym->value = gsym.st_value;
	sym->size = gsym.st_size;
	err = 0;
out_close:
	elf_close(fd, elf);
	return err;
}
