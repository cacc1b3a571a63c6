/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * zm_test.h - what several unit tests of libzmalloc share: cmocka's
 * includes in the order it needs them, an oracle for the usable size of a
 * block in each backend, a /proc field reader, valgrind detection, an
 * opaque size that keeps the compiler from judging huge requests, and
 * opening an ELF file with libelf.
 */
#ifndef ZM_TEST_H
#define ZM_TEST_H

/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dlfcn.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <valgrind/valgrind.h>

#include "zmalloc.h"

/*
 * Hides a constant from the optimiser, so that huge requests reach the
 * library instead of -Walloc-size-larger-than.
 */
static inline size_t zm_test_opaque(size_t v)
{
	__asm__("" : "+r"(v));
	return v;
}

static inline bool zm_test_under_valgrind(void)
{
	return RUNNING_ON_VALGRIND != 0;
}

/*
 * A symbol of jemalloc, found at run time: libjemalloc is loaded only in
 * the jemalloc variant, as a dependency of libzmalloc. NULL elsewhere.
 */
static inline void *zm_test_je_sym(const char *name)
{
	return dlsym(RTLD_DEFAULT, name);
}

static inline bool zm_test_is_jemalloc(void)
{
	return zm_test_je_sym("mallctl") != NULL;
}

/*
 * The usable size block p, allocated for n bytes by zmalloc, must have in
 * this backend, computed without the library: exactly the request (a
 * request of 0 is served as sizeof(long)) in the prefix backend, the size
 * class nallocx() gives under jemalloc, what libc says otherwise.
 */
static inline size_t zm_test_usable_of(void *p, size_t n)
{
	size_t (*je_nallocx)(size_t, int);
	size_t req = n ? n : sizeof(long);

	if (PREFIX_SIZE != 0)
		return req;
	je_nallocx = (size_t(*)(size_t, int))zm_test_je_sym("nallocx");
	if (je_nallocx)
		return je_nallocx(req, 0);
	return malloc_usable_size(p);
}

/*
 * Reads "Field: value [kB]" from a /proc file whose fields are one per
 * line (status, meminfo, smaps_rollup) into *value, in bytes when the line
 * says kB. Reads with read(2) into a stack buffer: no malloc, so that the
 * reading itself disturbs the memory figures as little as it can.
 * Returns 0, or -1 when the file or the field is missing.
 */
static inline int zm_test_proc_field(const char *path, const char *field,
				     unsigned long long *value)
{
	size_t flen = strlen(field), got = 0;
	char buf[16384], *line, *end;
	ssize_t len;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	while (got < sizeof(buf) - 1) {
		len = read(fd, buf + got, sizeof(buf) - 1 - got);
		if (len <= 0)
			break;
		got += (size_t)len;
	}
	close(fd);
	buf[got] = '\0';
	for (line = buf; line && *line; line = strchr(line, '\n')) {
		if (*line == '\n')
			line++;
		if (strncmp(line, field, flen) != 0)
			continue;
		*value = strtoull(line + flen, &end, 10);
		while (*end == ' ')
			end++;
		if (strncmp(end, "kB", 2) == 0)
			*value *= 1024;
		return 0;
	}
	return -1;
}

/* Opens path for reading with libelf; *fd is closed by zm_test_elf_close. */
static inline Elf *zm_test_elf_open(const char *path, int *fd)
{
	Elf *elf;

	if (elf_version(EV_CURRENT) == EV_NONE)
		return NULL;
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return NULL;
	elf = elf_begin(*fd, ELF_C_READ, NULL);
	if (!elf)
		close(*fd);
	return elf;
}

static inline void zm_test_elf_close(Elf *elf, int fd)
{
	elf_end(elf);
	close(fd);
}

/* The section named name, or NULL; *shdr is filled when found. */
static inline Elf_Scn *zm_test_elf_section(Elf *elf, const char *name,
					   GElf_Shdr *shdr)
{
	Elf_Scn *scn = NULL;
	size_t shstrndx;

	if (elf_getshdrstrndx(elf, &shstrndx) != 0)
		return NULL;
	while ((scn = elf_nextscn(elf, scn)) != NULL) {
		const char *sname;

		if (!gelf_getshdr(scn, shdr))
			return NULL;
		sname = elf_strptr(elf, shstrndx, shdr->sh_name);
		if (sname && strcmp(sname, name) == 0)
			return scn;
	}
	return NULL;
}

/* Calls fn(sym, name, arg) for every symbol of the table in section scn. */
static inline void
zm_test_for_each_symbol(Elf *elf, Elf_Scn *scn, const GElf_Shdr *shdr,
			void (*fn)(const GElf_Sym *, const char *, void *),
			void *arg)
{
	Elf_Data *data = elf_getdata(scn, NULL);
	size_t i, n;

	assert_non_null(data);
	n = shdr->sh_size / shdr->sh_entsize;
	for (i = 1; i < n; i++) {
		GElf_Sym sym;
		const char *name;

		assert_non_null(gelf_getsym(data, (int)i, &sym));
		name = elf_strptr(elf, shdr->sh_link, sym.st_name);
		assert_non_null(name);
		fn(&sym, name, arg);
	}
}

#endif /* ZM_TEST_H */
