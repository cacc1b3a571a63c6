/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_zlib_link.c - zlib and libzmalloc in one program. zlib has a
 * zcalloc() of its own; libzmalloc's zcalloc is a macro onto zm_calloc, so
 * both live side by side. Built twice: against libzmalloc.so and the
 * shared libz, and with -DZM_TEST_STATIC against libzmalloc.a and libz.a,
 * where the link succeeding already proves no symbol is defined twice.
 */
#include "zm_test.h"

/*
 * After zmalloc.h: its zfree macro also renames z_stream's zfree member,
 * consistently for this whole file, as in any Valkey-style program.
 */
#include <zlib.h>

#define DATA_LEN (256 * 1024)

/* Half text, half noise, so that deflate has real work both ways. */
static void make_input(unsigned char *buf, size_t n)
{
	static const char text[] = "zmalloc and zlib, side by side. ";
	uint32_t x = 2463534242u;
	size_t i;

	for (i = 0; i < n; i++) {
		if ((i / 4096) % 2 == 0) {
			buf[i] = (unsigned char)text[i % (sizeof(text) - 1)];
			continue;
		}
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = (unsigned char)x;
	}
}

/* Compresses in into out, through zlib's own allocator or ours. */
static size_t deflate_buf(const unsigned char *in, size_t n, unsigned char *out,
			  size_t cap, z_stream *zs)
{
	assert_int_equal(deflateInit(zs, Z_BEST_COMPRESSION), Z_OK);
	zs->next_in = (unsigned char *)in;
	zs->avail_in = (uInt)n;
	zs->next_out = out;
	zs->avail_out = (uInt)cap;
	assert_int_equal(deflate(zs, Z_FINISH), Z_STREAM_END);
	return zs->total_out;
}

static size_t inflate_buf(const unsigned char *in, size_t n, unsigned char *out,
			  size_t cap, z_stream *zs)
{
	assert_int_equal(inflateInit(zs), Z_OK);
	zs->next_in = (unsigned char *)in;
	zs->avail_in = (uInt)n;
	zs->next_out = out;
	zs->avail_out = (uInt)cap;
	assert_int_equal(inflate(zs, Z_FINISH), Z_STREAM_END);
	return zs->total_out;
}

static void check_zeroed(const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != 0)
			fail_msg("zcalloc'd byte %zu is %#x", i, p[i]);
}

/*
 * zlib allocates with its internal zcalloc (the default z_stream hooks),
 * which must not be ours: used_memory counts only the blocks this test
 * allocates through zmalloc, exactly, while zlib works.
 */
static void test_zlib_link_roundtrip_beside_zcalloc(void **state)
{
	size_t start = zmalloc_used_memory(), ours, clen, dlen;
	unsigned char *in, *comp, *back;
	z_stream zs;

	in = zmalloc(DATA_LEN);
	comp = zmalloc(DATA_LEN * 2);
	back = zcalloc(DATA_LEN + 1);
	check_zeroed(back, DATA_LEN + 1);
	make_input(in, DATA_LEN);
	ours = zmalloc_size(in) + zmalloc_size(comp) + zmalloc_size(back);
	assert_int_equal(zmalloc_used_memory(), start + ours);

	memset(&zs, 0, sizeof(zs)); /* Z_NULL hooks: zlib's own zcalloc */
	clen = deflate_buf(in, DATA_LEN, comp, DATA_LEN * 2, &zs);
	assert_true(clen > 0 && clen < DATA_LEN);
	assert_int_equal(zmalloc_used_memory(), start + ours);
	assert_int_equal(deflateEnd(&zs), Z_OK);

	memset(&zs, 0, sizeof(zs));
	dlen = inflate_buf(comp, clen, back, DATA_LEN + 1, &zs);
	assert_int_equal(zmalloc_used_memory(), start + ours);
	assert_int_equal(inflateEnd(&zs), Z_OK);
	assert_int_equal(dlen, DATA_LEN);
	assert_memory_equal(back, in, DATA_LEN);
	assert_int_equal(back[DATA_LEN], 0);

	zfree(in);
	zfree(comp);
	zfree(back);
	assert_int_equal(zmalloc_used_memory(), start);
}

/* zlib's hooks pointed at zmalloc: every block zlib holds is counted. */
static size_t zlib_held; /* zmalloc_size() of the blocks zlib holds */

static voidpf zm_zalloc(voidpf opaque, uInt items, uInt size)
{
	void *p = zcalloc_num(items, size);

	zlib_held += zmalloc_size(p);
	return p;
}

static void zm_zfree(voidpf opaque, voidpf p)
{
	zlib_held -= zmalloc_size(p);
	zfree(p);
}

static void test_zlib_link_hooks_through_zmalloc(void **state)
{
	size_t start = zmalloc_used_memory(), ours, clen;
	unsigned char *in, *comp, *back;
	z_stream zs;

	in = zmalloc(DATA_LEN);
	comp = zmalloc(DATA_LEN * 2);
	back = zmalloc(DATA_LEN);
	make_input(in, DATA_LEN);
	ours = zmalloc_size(in) + zmalloc_size(comp) + zmalloc_size(back);

	memset(&zs, 0, sizeof(zs));
	zs.zalloc = zm_zalloc;
	zs.zfree = zm_zfree;
	zlib_held = 0;
	clen = deflate_buf(in, DATA_LEN, comp, DATA_LEN * 2, &zs);
	assert_true(zlib_held > 0);
	assert_int_equal(zmalloc_used_memory(), start + ours + zlib_held);
	assert_int_equal(deflateEnd(&zs), Z_OK);
	assert_int_equal(zlib_held, 0);

	memset(&zs, 0, sizeof(zs));
	zs.zalloc = zm_zalloc;
	zs.zfree = zm_zfree;
	assert_int_equal(inflate_buf(comp, clen, back, DATA_LEN, &zs),
			 DATA_LEN);
	assert_true(zlib_held > 0);
	assert_int_equal(zmalloc_used_memory(), start + ours + zlib_held);
	assert_int_equal(inflateEnd(&zs), Z_OK);
	assert_int_equal(zlib_held, 0);
	assert_memory_equal(back, in, DATA_LEN);

	zfree(in);
	zfree(comp);
	zfree(back);
	assert_int_equal(zmalloc_used_memory(), start);
}

#ifndef ZM_TEST_STATIC

#define MAX_VERDEFS 8

struct dynsym_check {
	const char *verdefs[MAX_VERDEFS]; /* version nodes, e.g. ZMALLOC_1 */
	int nverdefs;
	int exported;
	bool have_zm_calloc, have_zm_counters;
};

/*
 * The names of the version nodes, which ld also lists as absolute
 * symbols; not the base one, which names the file itself.
 */
static void read_verdefs(Elf *elf, struct dynsym_check *c)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr shdr;

	while ((scn = elf_nextscn(elf, scn)) != NULL) {
		Elf_Data *data;
		GElf_Verdef vd;
		GElf_Verdaux va;
		size_t off = 0, i;

		assert_non_null(gelf_getshdr(scn, &shdr));
		if (shdr.sh_type != SHT_GNU_verdef)
			continue;
		data = elf_getdata(scn, NULL);
		assert_non_null(data);
		for (i = 0; i < shdr.sh_info; i++) {
			assert_non_null(gelf_getverdef(data, (int)off, &vd));
			assert_non_null(gelf_getverdaux(
				data, (int)(off + vd.vd_aux), &va));
			off += vd.vd_next;
			if (vd.vd_flags & VER_FLG_BASE)
				continue;
			assert_true(c->nverdefs < MAX_VERDEFS);
			c->verdefs[c->nverdefs++] =
				elf_strptr(elf, shdr.sh_link, va.vda_name);
		}
	}
}

static void check_dynsym(const GElf_Sym *sym, const char *name, void *arg)
{
	struct dynsym_check *c = arg;
	int i;

	if (sym->st_shndx == SHN_UNDEF)
		return; /* an import: malloc, free... */
	for (i = 0; i < c->nverdefs; i++)
		if (sym->st_shndx == SHN_ABS &&
		    strcmp(name, c->verdefs[i]) == 0)
			return;
	if (strncmp(name, "zm_", 3) != 0)
		fail_msg("libzmalloc.so exports \"%s\", not zm_ prefixed",
			 name);
	c->exported++;
	c->have_zm_calloc |= strcmp(name, "zm_calloc") == 0;
	c->have_zm_counters |= strcmp(name, "zm_counters") == 0;
}

/* Every symbol libzmalloc.so defines for others starts with zm_. */
static void test_zlib_link_exports_only_zm(void **state)
{
	struct dynsym_check c = { .nverdefs = 0 };
	GElf_Shdr shdr;
	Elf_Scn *scn;
	Elf *elf;
	int fd = -1;

	elf = zm_test_elf_open(ZM_TEST_BUILD_DIR "/libzmalloc.so.1", &fd);
	assert_non_null(elf);
	read_verdefs(elf, &c);
	assert_int_equal(c.nverdefs, 1);
	assert_string_equal(c.verdefs[0], "ZMALLOC_1");
	scn = zm_test_elf_section(elf, ".dynsym", &shdr);
	assert_non_null(scn);
	zm_test_for_each_symbol(elf, scn, &shdr, check_dynsym, &c);
	zm_test_elf_close(elf, fd);
	assert_true(c.have_zm_calloc);
	assert_true(c.have_zm_counters);
	assert_true(c.exported >= 30);
}

/* At run time no loaded object offers a zcalloc; ours is zm_calloc. */
static void test_zlib_link_no_zcalloc_at_runtime(void **state)
{
	void *zm = dlsym(RTLD_DEFAULT, "zm_calloc");

	assert_null(dlsym(RTLD_DEFAULT, "zcalloc"));
	assert_non_null(zm);
	assert_ptr_equal(zm, (void *)zcalloc);
	assert_non_null(dlsym(RTLD_DEFAULT, "deflate")); /* the shared libz */
}

#else /* ZM_TEST_STATIC */

struct symtab_check {
	int zm_calloc_defs; /* definitions of zm_calloc, visible */
	GElf_Addr zm_calloc_value; /* and its address */
	int zcalloc_defs; /* definitions of zcalloc */
	int zcalloc_visible; /* of which global with default visibility */
	GElf_Addr zcalloc_value;
	int deflate_defs;
};

static bool is_visible(const GElf_Sym *sym)
{
	return GELF_ST_BIND(sym->st_info) != STB_LOCAL &&
	       GELF_ST_VISIBILITY(sym->st_other) == STV_DEFAULT;
}

static void check_symtab(const GElf_Sym *sym, const char *name, void *arg)
{
	struct symtab_check *c = arg;

	if (sym->st_shndx == SHN_UNDEF)
		return;
	if (strcmp(name, "zm_calloc") == 0 && is_visible(sym)) {
		c->zm_calloc_defs++;
		c->zm_calloc_value = sym->st_value;
	} else if (strcmp(name, "zcalloc") == 0) {
		c->zcalloc_defs++;
		c->zcalloc_visible += is_visible(sym);
		c->zcalloc_value = sym->st_value;
	} else if (strcmp(name, "deflate") == 0) {
		c->deflate_defs++;
	}
}

/*
 * The executable holds libz.a's deflate and its zcalloc (hidden: zlib's
 * own, ZLIB_INTERNAL), and libzmalloc.a's zm_calloc: two different
 * functions, and no zcalloc that anyone outside could bind to.
 */
static void test_zlib_link_static_symbols(void **state)
{
	struct symtab_check c = { 0 };
	GElf_Shdr shdr;
	Elf_Scn *scn;
	Elf *elf;
	int fd = -1;

	elf = zm_test_elf_open("/proc/self/exe", &fd);
	assert_non_null(elf);
	scn = zm_test_elf_section(elf, ".symtab", &shdr);
	assert_non_null(scn); /* the test is not stripped */
	zm_test_for_each_symbol(elf, scn, &shdr, check_symtab, &c);
	zm_test_elf_close(elf, fd);
	assert_int_equal(c.deflate_defs, 1);
	assert_int_equal(c.zm_calloc_defs, 1);
	assert_int_equal(c.zcalloc_defs, 1);
	assert_int_equal(c.zcalloc_visible, 0);
	assert_true(c.zcalloc_value != c.zm_calloc_value);
}

#endif /* ZM_TEST_STATIC */

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_zlib_link_roundtrip_beside_zcalloc),
		cmocka_unit_test(test_zlib_link_hooks_through_zmalloc),
#ifndef ZM_TEST_STATIC
		cmocka_unit_test(test_zlib_link_exports_only_zm),
		cmocka_unit_test(test_zlib_link_no_zcalloc_at_runtime),
#else
		cmocka_unit_test(test_zlib_link_static_symbols),
#endif
	};

#ifdef ZM_TEST_STATIC
	return cmocka_run_group_tests_name("zlib_static", tests, NULL, NULL);
#else
	return cmocka_run_group_tests_name("zlib_link", tests, NULL, NULL);
#endif
}
