/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * zm_usdt.h - the USDT probe sites of libzmalloc (contract: zmalloc_probes.h).
 *
 * ZM_FIRE(name, args...) fires probe zmalloc:name. The arguments are
 * evaluated only while a tracer holds the probe's semaphore, so an idle
 * probe costs one load and a predicted-not-taken branch.
 *
 * The note and argument encoding come from <sys/sdt.h>; only the probe
 * site's instruction is ours: the 5-byte nop 0f 1f 44 00 00 instead of
 * sdt.h's 1-byte nop, because the kernel can turn a uprobe on a 5-byte nop
 * into a call to a trampoline instead of a trap. That call pushes below the
 * stack pointer, which is why the library is built with -mno-red-zone.
 *
 * With ZM_NO_PROBES the probes compile to nothing, but their arguments are
 * still type-checked (inside sizeof, never evaluated).
 */
#ifndef ZM_USDT_H
#define ZM_USDT_H

#ifdef ZM_NO_PROBES

#define ZM_PROBE_DECLARE(name)
#define ZM_PROBE_DEFINE(name)
#define ZM_PROBE_ENABLED(name) 0
#define ZM_PROBE(name, ...)                                       \
	do {                                                      \
		(void)sizeof(zm_probe_typecheck(0, __VA_ARGS__)); \
	} while (0)

/* Accepts any scalar arguments; exists only to be named inside sizeof. */
static inline int zm_probe_typecheck(int unused, ...)
{
	return unused;
}

#else /* probes compiled in */

#define _SDT_HAS_SEMAPHORES 1
#define SDT_USE_VARIADIC 1
/*
 * Every argument in a register: a tracer then reads it from the saved
 * registers instead of from user memory, which costs a BPF program about
 * 250 ns per argument on this kernel. The arguments are computed only on
 * the probe's own (cold) path, so the register pressure costs nothing else.
 */
#define STAP_SDT_ARG_CONSTRAINT r
#include <sys/sdt.h>

/*
 * Replace sdt.h's probe-site instruction. sdt.h expands _SDT_NOP only when
 * a probe is used, so redefining it after the include takes effect.
 * ".nops 5" makes the assembler emit the single 5-byte nop; the unit test
 * test_probes checks the bytes of every site of the built library.
 */
#undef _SDT_NOP
#define _SDT_NOP .nops 5

#define ZM_PROBE_SEMAPHORE(name) zmalloc_##name##_semaphore

/* The semaphore sits in .probes, where tracers and the kernel expect it. */
#define ZM_PROBE_DECLARE(name)                         \
	extern unsigned short ZM_PROBE_SEMAPHORE(name) \
		__attribute__((visibility("hidden")))
#define ZM_PROBE_DEFINE(name)                                   \
	unsigned short ZM_PROBE_SEMAPHORE(name) __attribute__(( \
		section(".probes"), used, visibility("hidden"))) = 0

#define ZM_PROBE_ENABLED(name)                                      \
	__builtin_expect(__atomic_load_n(&ZM_PROBE_SEMAPHORE(name), \
					 __ATOMIC_RELAXED),         \
			 0)

#define ZM_PROBE(name, ...) STAP_PROBEV(zmalloc, name, __VA_ARGS__)

#endif /* ZM_NO_PROBES */

#define ZM_FIRE(name, ...)                           \
	do {                                         \
		if (ZM_PROBE_ENABLED(name))          \
			ZM_PROBE(name, __VA_ARGS__); \
	} while (0)

ZM_PROBE_DECLARE(alloc);
ZM_PROBE_DECLARE(free);
ZM_PROBE_DECLARE(realloc);
ZM_PROBE_DECLARE(oom);
ZM_PROBE_DECLARE(sample_alloc);
ZM_PROBE_DECLARE(sample_free);

#endif /* ZM_USDT_H */
