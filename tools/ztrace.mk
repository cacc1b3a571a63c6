# SPDX-License-Identifier: BSD-3-Clause
#
# ztrace, its BPF programs, the demo, the BPF tests and the benchmark.
# Included by the top-level Makefile, which defines BUILD, LIBDIR, Q,
# CFLAGS_WARN and the phony target lib.
#
#   make ztrace        build/ztrace/ztrace
#   make demo          run ztrace hist and ztrace leaks on tools/demo
#   make test-bpf      the BPF suite (root; real programs, real processes)
#   make bench-ztrace  per-event cost of tracing, side by side, then
#                      bench-sample: exact against sampled (--sample)
#   make vmlinux       regenerate vmlinux/vmlinux.h from the running kernel
#   make install-ztrace  $(DESTDIR)$(PREFIX)/sbin/ztrace and its man page

CLANG ?= clang
BPFTOOL ?= bpftool
ZT_OUT := $(BUILD)/ztrace
ZT_TOUT := $(BUILD)/bpf-tests
ZT_ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
ZT_MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)

ZT_BPF_CFLAGS := -target bpf -mcpu=v3 -g -O2 -D__TARGET_ARCH_$(ZT_ARCH) -Wall \
	-Ivmlinux -Ibpf -idirafter /usr/include/$(ZT_MULTIARCH)
ZT_CFLAGS := -O2 -g -std=gnu11 -D_GNU_SOURCE $(CFLAGS_WARN) \
	-I$(ZT_OUT) -Ibpf -Iinclude -Itools/ztrace -Itools/scan
ZT_LIBS := -lbpf -ldw -lelf -lz -lm -lpthread -lmicrohttpd -lncursesw -ltinfo
# The reachability scanner behind "leaks --scan" (tools/scan.mk).
ZT_ZSCAN := $(BUILD)/scan/libzscan.a

ZT_SRCS := $(wildcard tools/ztrace/*.c)
ZT_OBJS := $(patsubst tools/ztrace/%.c,$(ZT_OUT)/%.o,$(ZT_SRCS))
ZT_HDRS := $(wildcard tools/ztrace/*.h) bpf/ztrace.h include/zmalloc_probes.h \
	include/zmalloc_counters.h tools/scan/zscan.h

# Test and demo programs: frame pointers, so BPF can walk their stacks.
ZT_PROG_CFLAGS := -g -O1 -fno-omit-frame-pointer -std=gnu11 -D_GNU_SOURCE \
	$(CFLAGS_WARN) -Iinclude -I$(LIBDIR)/include
ZT_PROG_LIBS := -L$(LIBDIR) -lzmalloc -Wl,-rpath,$(abspath $(LIBDIR)) -lpthread

.PHONY: ztrace demo demo-run test-bpf bench-ztrace bench-sample vmlinux install-ztrace

ztrace: $(ZT_OUT)/ztrace

$(ZT_OUT)/ztrace.bpf.o: bpf/ztrace.bpf.c bpf/ztrace.h vmlinux/vmlinux.h
	@mkdir -p $(@D)
	$(if $(Q),@echo "  BPF     $@")
	$(Q)$(CLANG) $(ZT_BPF_CFLAGS) -c $< -o $@

$(ZT_OUT)/ztrace.skel.h: $(ZT_OUT)/ztrace.bpf.o
	$(if $(Q),@echo "  GEN     $@")
	$(Q)$(BPFTOOL) gen skeleton $< name ztrace_bpf > $@.tmp && mv $@.tmp $@

$(ZT_OUT)/%.o: tools/ztrace/%.c $(ZT_HDRS) $(ZT_OUT)/ztrace.skel.h
	$(if $(Q),@echo "  CC      $@")
	$(Q)$(CC) $(ZT_CFLAGS) -c $< -o $@

$(ZT_OUT)/ztrace: $(ZT_OBJS) $(ZT_ZSCAN)
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CC) -o $@ $(ZT_OBJS) $(ZT_ZSCAN) $(ZT_LIBS)

# Man pages: ztrace.8 documents hist, leaks, stat and noop (ztrace-hist.8
# and the like link to it); record, serve and top have pages of their own.
ZT_MAN := $(DESTDIR)$(PREFIX)/share/man/man8
ZT_BASHCOMP := $(DESTDIR)$(PREFIX)/share/bash-completion/completions

install-ztrace: $(ZT_OUT)/ztrace
	install -d $(DESTDIR)$(PREFIX)/sbin $(ZT_MAN) $(ZT_BASHCOMP)
	install -m 0755 $(ZT_OUT)/ztrace $(DESTDIR)$(PREFIX)/sbin/
	install -m 0644 tools/ztrace/ztrace.8 tools/ztrace/ztrace-record.8 \
		tools/ztrace/ztrace-serve.8 tools/ztrace/ztrace-top.8 $(ZT_MAN)/
	for c in hist leaks stat noop; do \
		ln -sf ztrace.8 $(ZT_MAN)/ztrace-$$c.8; done
	install -m 0644 tools/ztrace/ztrace.bash-completion $(ZT_BASHCOMP)/ztrace

vmlinux:
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > vmlinux/vmlinux.h.tmp
	mv vmlinux/vmlinux.h.tmp vmlinux/vmlinux.h

# ------------------------------------------------------------------ demo
$(ZT_OUT)/demo: tools/demo/demo.c | lib
	@mkdir -p $(@D)
	$(if $(Q),@echo "  CC      $@")
	$(Q)$(CC) $(ZT_PROG_CFLAGS) $< -o $@ $(ZT_PROG_LIBS)

# The README's first command: the packages first, then the build and run.
demo: deps
	$(Q)$(MAKE) --no-print-directory demo-run

demo-run: lib $(ZT_OUT)/ztrace $(ZT_OUT)/demo
	$(Q)sh tools/demo/run_demo.sh $(ZT_OUT)

# ----------------------------------------------------------------- tests
$(ZT_TOUT)/%: tests/bpf/%.c | lib
	@mkdir -p $(@D)
	$(if $(Q),@echo "  CC      $@")
	$(Q)$(CC) $(ZT_PROG_CFLAGS) $< -o $@ $(ZT_PROG_LIBS)

# The same workload with libzmalloc linked in statically.
$(ZT_TOUT)/zt_workload_static: tests/bpf/zt_workload.c $(LIBDIR)/libzmalloc.a | lib
	@mkdir -p $(@D)
	$(if $(Q),@echo "  CC      $@")
	$(Q)$(CC) $(ZT_PROG_CFLAGS) $< -o $@ $(LIBDIR)/libzmalloc.a -lpthread -lm

# Each runner records its "passed failed skipped" in $(BUILD)/results for
# the summary of make test (tests/bpf/ztest.py).
ZT_RESULTS := $(BUILD)/results

test-bpf: lib $(ZT_OUT)/ztrace $(ZT_TOUT)/zt_workload $(ZT_TOUT)/zt_workload_static \
		$(BUILD)/scan/tests/leaky $(BUILD)/scan/tests/churn
	$(Q)mkdir -p $(ZT_RESULTS); status=0; \
	ZTEST_RESULTS=$(ZT_RESULTS)/bpf python3 tests/bpf/run_tests.py \
		$(ZT_OUT)/ztrace $(ZT_TOUT)/zt_workload $(LIBDIR) || status=1; \
	python3 tests/bpf/run_scan_tests.py $(ZT_OUT)/ztrace \
		$(BUILD)/scan/tests/leaky $(ZT_RESULTS)/bpf-scan || status=1; \
	ZTEST_RESULTS=$(ZT_RESULTS)/bpf-export python3 tests/bpf/run_export_tests.py \
		$(ZT_OUT)/ztrace $(ZT_TOUT)/zt_workload $(LIBDIR) || status=1; \
	exit $$status

# ------------------------------------------------------------- benchmark
$(BUILD)/bench/bench_ztrace_work: tests/bench/bench_ztrace_work.c | lib
	@mkdir -p $(@D)
	$(if $(Q),@echo "  CC      $@")
	$(Q)$(CC) $(ZT_PROG_CFLAGS) -O2 $< -o $@ $(ZT_PROG_LIBS)

bench-ztrace: lib $(ZT_OUT)/ztrace $(BUILD)/bench/bench_ztrace_work
	$(Q)sh tests/bench/bench_ztrace.sh $(ZT_OUT)/ztrace \
		$(BUILD)/bench/bench_ztrace_work $(LIBDIR)
	$(Q)$(MAKE) --no-print-directory bench-sample

$(BUILD)/bench/bench_sample_work: tests/bench/bench_sample_work.c | lib
	@mkdir -p $(@D)
	$(if $(Q),@echo "  CC      $@")
	$(Q)$(CC) $(ZT_PROG_CFLAGS) -O2 $< -o $@ $(ZT_PROG_LIBS)

bench-sample: lib $(ZT_OUT)/ztrace $(BUILD)/bench/bench_sample_work
	$(Q)python3 tests/bench/bench_sample.py $(ZT_OUT)/ztrace \
		$(BUILD)/bench/bench_sample_work
