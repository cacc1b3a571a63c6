# SPDX-License-Identifier: BSD-3-Clause
#
# zscan, the reachability scanner ztrace links, its tests and benchmark.
# Included by the top-level Makefile, which defines BUILD, LIBDIR, Q,
# CFLAGS_WARN and the phony target lib.
#
#   make $(BUILD)/scan/libzscan.a
#   make test-scan     the scanner's suite (root: ptrace, pagemap)
#   make bench-scan    pause and throughput, 100 MiB to 4 GiB, vs valgrind

ZS_OUT := $(BUILD)/scan
ZS_CFLAGS := -O2 -g -std=gnu11 -D_GNU_SOURCE $(CFLAGS_WARN) -fPIC \
	-fvisibility=hidden -Itools/scan
ZS_SRCS := $(wildcard tools/scan/*.c)
ZS_OBJS := $(patsubst tools/scan/%.c,$(ZS_OUT)/obj/%.o,$(ZS_SRCS))
ZS_HDRS := $(wildcard tools/scan/*.h)
ZS_LIB := $(ZS_OUT)/libzscan.a

# Test programs: built against libzmalloc, frame pointers for valgrind.
ZS_PROG_CFLAGS := -g -O1 -fno-omit-frame-pointer -std=gnu11 -D_GNU_SOURCE \
	$(CFLAGS_WARN) -Iinclude -I$(LIBDIR)/include
ZS_PROG_LIBS := -L$(LIBDIR) -lzmalloc -Wl,-rpath,$(abspath $(LIBDIR)) -lpthread
ZS_TOOL_CFLAGS := -O2 -g -std=gnu11 -D_GNU_SOURCE $(CFLAGS_WARN) -Itools/scan

ZS_TEST_PROGS := $(ZS_OUT)/tests/leaky $(ZS_OUT)/tests/churn \
	$(ZS_OUT)/tests/mover $(ZS_OUT)/tests/scan_cli
ZS_BENCH_PROGS := $(ZS_OUT)/bench/bench_scan $(ZS_OUT)/bench/bench_scan_heap

.PHONY: zscan test-scan bench-scan

zscan: $(ZS_LIB)

$(ZS_OUT)/obj/%.o: tools/scan/%.c $(ZS_HDRS)
	@mkdir -p $(@D)
	$(if $(Q),@echo "  CC      $@")
	$(Q)$(CC) $(ZS_CFLAGS) -c $< -o $@

$(ZS_LIB): $(ZS_OBJS)
	$(if $(Q),@echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(ZS_OUT)/tests/leaky $(ZS_OUT)/tests/churn $(ZS_OUT)/tests/mover: \
		$(ZS_OUT)/tests/%: tests/scan/%.c tests/scan/put.h | lib
	@mkdir -p $(@D)
	$(if $(Q),@echo "  CC      $@")
	$(Q)$(CC) $(ZS_PROG_CFLAGS) $< -o $@ $(ZS_PROG_LIBS)

$(ZS_OUT)/tests/scan_cli: tests/scan/scan_cli.c $(ZS_LIB) tools/scan/zscan.h
	@mkdir -p $(@D)
	$(if $(Q),@echo "  CC      $@")
	$(Q)$(CC) $(ZS_TOOL_CFLAGS) $< -o $@ $(ZS_LIB)

$(ZS_OUT)/bench/bench_scan_heap: tests/bench/bench_scan_heap.c | lib
	@mkdir -p $(@D)
	$(if $(Q),@echo "  CC      $@")
	$(Q)$(CC) $(ZS_PROG_CFLAGS) -O2 $< -o $@ $(ZS_PROG_LIBS)

$(ZS_OUT)/bench/bench_scan: tests/bench/bench_scan.c $(ZS_LIB) tools/scan/zscan.h
	@mkdir -p $(@D)
	$(if $(Q),@echo "  CC      $@")
	$(Q)$(CC) $(ZS_TOOL_CFLAGS) $< -o $@ $(ZS_LIB)

test-scan: $(ZS_LIB) $(ZS_TEST_PROGS)
	$(Q)mkdir -p $(BUILD)/results
	$(Q)python3 tests/scan/run.py --build $(ZS_OUT) \
		--results $(BUILD)/results/scan

bench-scan: $(ZS_BENCH_PROGS)
	$(Q)python3 tests/bench/bench_scan.py --build $(ZS_OUT)
