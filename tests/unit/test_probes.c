/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_probes.c - the USDT contract as a tracer reads it from the built
 * libzmalloc.so.1: every stapsdt note of provider zmalloc, the set of
 * probes and their argument counts (zmalloc_probes.h), each site the
 * 5-byte nop 0f 1f 44 00 00 inside a zm_ function, and each probe's
 * semaphore inside .probes.
 * Built with ZM_NO_PROBES, the library has no note at all.
 *
 * A stapsdt note (type 3, name "stapsdt") holds three 8-byte addresses,
 * pc, base and semaphore, then provider\0 name\0 args\0. The pc is as
 * linked; if the file was moved since (prelink), the actual site is
 * pc + (address of .stapsdt.base - base).
 */
#include "zm_test.h"
#include "zmalloc_probes.h"

#define NT_STAPSDT 3
#define LIB_PATH ZM_TEST_BUILD_DIR "/libzmalloc.so.1"
#define MAX_PROBES 8

struct probe_spec {
	const char *name;
	int nargs; /* from the table in zmalloc_probes.h */
	int sites; /* notes seen */
	uint64_t semaphore;
};

static struct probe_spec specs[] = {
	{ ZMALLOC_PROBE_ALLOC, 3, 0, 0 },
	{ ZMALLOC_PROBE_FREE, 2, 0, 0 },
	{ ZMALLOC_PROBE_REALLOC, 5, 0, 0 },
	{ ZMALLOC_PROBE_OOM, 1, 0, 0 },
#ifdef ZMALLOC_PROBE_SAMPLE_ALLOC
	{ ZMALLOC_PROBE_SAMPLE_ALLOC, 5, 0, 0 },
	{ ZMALLOC_PROBE_SAMPLE_FREE, 3, 0, 0 },
#endif
};

#define NSPECS ((int)(sizeof(specs) / sizeof(specs[0])))

struct lib {
	Elf *elf;
	int fd;
	GElf_Addr base; /* address of .stapsdt.base, 0 if none */
	GElf_Addr probes_lo, probes_hi; /* .probes, the semaphores' section */
	int notes;
};

static struct probe_spec *find_spec(const char *name)
{
	int i;

	for (i = 0; i < NSPECS; i++)
		if (strcmp(specs[i].name, name) == 0)
			return &specs[i];
	return NULL;
}

/* Arguments are separated by single spaces; each is 8-byte unsigned. */
static int count_args(const char *args)
{
	int n = 0;

	while (*args) {
		if (strncmp(args, "8@", 2) != 0)
			fail_msg("argument \"%s\" is not 8-byte unsigned",
				 args);
		n++;
		args += strcspn(args, " ");
		args += strspn(args, " ");
	}
	return n;
}

/* The 5 bytes of the file at address pc, found through its PT_LOAD. */
static void read_site(struct lib *lib, GElf_Addr pc, unsigned char out[5])
{
	size_t nphdr, i;
	GElf_Phdr ph;

	assert_int_equal(elf_getphdrnum(lib->elf, &nphdr), 0);
	for (i = 0; i < nphdr; i++) {
		assert_non_null(gelf_getphdr(lib->elf, (int)i, &ph));
		if (ph.p_type != PT_LOAD || pc < ph.p_vaddr ||
		    pc + 5 > ph.p_vaddr + ph.p_filesz)
			continue;
		assert_true(ph.p_flags & PF_X);
		assert_int_equal(pread(lib->fd, out, 5,
				       (off_t)(ph.p_offset + pc - ph.p_vaddr)),
				 5);
		return;
	}
	fail_msg("probe site %#llx is in no loadable segment",
		 (unsigned long long)pc);
}

/* The site also lies in an executable section, at the same bytes. */
static void check_site_section(struct lib *lib, GElf_Addr pc,
			       const unsigned char site[5])
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;

	while ((scn = elf_nextscn(lib->elf, scn)) != NULL) {
		Elf_Data *data;

		assert_non_null(gelf_getshdr(scn, &sh));
		if (sh.sh_type != SHT_PROGBITS || pc < sh.sh_addr ||
		    pc + 5 > sh.sh_addr + sh.sh_size)
			continue;
		assert_true(sh.sh_flags & SHF_EXECINSTR);
		data = elf_getdata(scn, NULL);
		assert_non_null(data);
		assert_memory_equal((unsigned char *)data->d_buf +
					    (pc - sh.sh_addr),
				    site, 5);
		return;
	}
	fail_msg("probe site %#llx is in no section", (unsigned long long)pc);
}

/*
 * The function that holds the site pc, from .symtab; NULL if none. In a
 * static link ztrace tells the library's frames by their zm_ prefix, so
 * every function with a probe site must have it.
 */
struct site_function {
	GElf_Addr pc;
	const char *name;
};

static void match_site(const GElf_Sym *sym, const char *name, void *arg)
{
	struct site_function *f = arg;

	if (GELF_ST_TYPE(sym->st_info) == STT_FUNC && f->pc >= sym->st_value &&
	    f->pc < sym->st_value + sym->st_size)
		f->name = name;
}

static const char *site_function(struct lib *lib, GElf_Addr pc)
{
	struct site_function f = { .pc = pc };
	GElf_Shdr sh;
	Elf_Scn *scn = zm_test_elf_section(lib->elf, ".symtab", &sh);

	if (scn)
		zm_test_for_each_symbol(lib->elf, scn, &sh, match_site, &f);
	return f.name;
}

static void check_note(struct lib *lib, const unsigned char *desc, size_t len)
{
	static const unsigned char nop5[5] = { 0x0f, 0x1f, 0x44, 0x00, 0x00 };
	uint64_t pc, base, sema;
	const char *provider, *name, *args, *end = (const char *)desc + len;
	struct probe_spec *spec;
	unsigned char site[5];
	const char *fn;

	assert_true(len > 24 + 3);
	memcpy(&pc, desc, 8);
	memcpy(&base, desc + 8, 8);
	memcpy(&sema, desc + 16, 8);
	provider = (const char *)desc + 24;
	name = provider + strnlen(provider, (size_t)(end - provider)) + 1;
	assert_true(name < end);
	args = name + strnlen(name, (size_t)(end - name)) + 1;
	assert_true(args < end);
	assert_true(memchr(args, '\0', (size_t)(end - args)) != NULL);

	assert_string_equal(provider, ZMALLOC_PROBE_PROVIDER);
	spec = find_spec(name);
	if (!spec)
		fail_msg("unexpected probe zmalloc:%s", name);
	assert_int_equal(count_args(args), spec->nargs);

	assert_true(lib->base != 0);
	pc += lib->base - base;
	read_site(lib, pc, site);
	if (memcmp(site, nop5, 5) != 0)
		fail_msg("zmalloc:%s at %#llx is %02x %02x %02x %02x %02x, not "
			 "the 5-byte nop",
			 name, (unsigned long long)pc, site[0], site[1],
			 site[2], site[3], site[4]);
	check_site_section(lib, pc, site);
	fn = site_function(lib, pc);
	if (!fn || strncmp(fn, "zm_", 3) != 0)
		fail_msg("zmalloc:%s at %#llx is in %s, not a zm_ function",
			 name, (unsigned long long)pc, fn ? fn : "no function");

	/* One semaphore per probe, a 2-byte counter inside .probes. */
	assert_true(sema != 0);
	assert_true(sema >= lib->probes_lo && sema + 2 <= lib->probes_hi);
	assert_int_equal(sema % 2, 0);
	if (spec->sites == 0)
		spec->semaphore = sema;
	assert_int_equal(sema, spec->semaphore);
	spec->sites++;
	lib->notes++;
}

/* Walks every note of .note.stapsdt; lib->notes counts them. */
static void read_notes(struct lib *lib)
{
	GElf_Shdr sh;
	Elf_Scn *scn;
	Elf_Data *data;
	GElf_Nhdr nh;
	size_t off = 0, name_off, desc_off;

	if (zm_test_elf_section(lib->elf, ".stapsdt.base", &sh))
		lib->base = sh.sh_addr;
	if (zm_test_elf_section(lib->elf, ".probes", &sh)) {
		lib->probes_lo = sh.sh_addr;
		lib->probes_hi = sh.sh_addr + sh.sh_size;
	}
	scn = zm_test_elf_section(lib->elf, ".note.stapsdt", &sh);
	if (!scn)
		return;
	assert_int_equal(sh.sh_type, SHT_NOTE);
	data = elf_getdata(scn, NULL);
	assert_non_null(data);
	while ((off = gelf_getnote(data, off, &nh, &name_off, &desc_off)) > 0) {
		const char *owner = (const char *)data->d_buf + name_off;

		assert_int_equal(nh.n_type, NT_STAPSDT);
		assert_int_equal(nh.n_namesz, sizeof("stapsdt"));
		assert_string_equal(owner, "stapsdt");
		check_note(lib, (const unsigned char *)data->d_buf + desc_off,
			   nh.n_descsz);
	}
}

static int open_lib(void **state)
{
	static struct lib lib;

	memset(&lib, 0, sizeof(lib));
	lib.elf = zm_test_elf_open(LIB_PATH, &lib.fd);
	if (!lib.elf)
		return -1;
	*state = &lib;
	return 0;
}

static int close_lib(void **state)
{
	struct lib *lib = *state;

	zm_test_elf_close(lib->elf, lib->fd);
	return 0;
}

#ifndef ZM_NO_PROBES

static void test_probes_notes_match_contract(void **state)
{
	struct lib *lib = *state;
	int i;

	read_notes(lib);
	assert_true(lib->probes_hi > lib->probes_lo);
	for (i = 0; i < NSPECS; i++)
		if (specs[i].sites == 0)
			fail_msg("probe zmalloc:%s has no site", specs[i].name);
	assert_true(lib->notes >= NSPECS);
}

/* Each probe has a semaphore of its own. */
static void test_probes_semaphores_distinct(void **state)
{
	struct lib *lib = *state;
	int i, j;

	read_notes(lib);
	for (i = 0; i < 4; i++)
		for (j = i + 1; j < 4; j++)
			assert_true(specs[i].semaphore != specs[j].semaphore);
}

/* Every allocating and freeing path has its site: more than one each. */
static void test_probes_every_family_has_sites(void **state)
{
	struct lib *lib = *state;

	read_notes(lib);
	/* malloc, calloc, try and usable forms, realloc(NULL, n)... */
	assert_true(find_spec(ZMALLOC_PROBE_ALLOC)->sites >= 4);
	/* zfree, zfree_usable, zfree_with_size, realloc(p, 0) */
	assert_true(find_spec(ZMALLOC_PROBE_FREE)->sites >= 4);
	assert_true(find_spec(ZMALLOC_PROBE_REALLOC)->sites >= 2);
	assert_true(find_spec(ZMALLOC_PROBE_OOM)->sites >= 4);
}

#else /* ZM_NO_PROBES */

static void test_probes_compiled_out(void **state)
{
	struct lib *lib = *state;
	GElf_Shdr sh;

	read_notes(lib);
	assert_int_equal(lib->notes, 0);
	assert_null(zm_test_elf_section(lib->elf, ".note.stapsdt", &sh));
	assert_null(zm_test_elf_section(lib->elf, ".probes", &sh));
}

#endif /* ZM_NO_PROBES */

static int reset_specs(void **state)
{
	struct lib *lib = *state;
	int i;

	for (i = 0; i < NSPECS; i++) {
		specs[i].sites = 0;
		specs[i].semaphore = 0;
	}
	lib->notes = 0;
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#ifndef ZM_NO_PROBES
		cmocka_unit_test_setup(test_probes_notes_match_contract,
				       reset_specs),
		cmocka_unit_test_setup(test_probes_semaphores_distinct,
				       reset_specs),
		cmocka_unit_test_setup(test_probes_every_family_has_sites,
				       reset_specs),
#else
		cmocka_unit_test_setup(test_probes_compiled_out, reset_specs),
#endif
	};

	return cmocka_run_group_tests_name("probes", tests, open_lib,
					   close_lib);
}
