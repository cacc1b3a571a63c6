# SPDX-License-Identifier: BSD-3-Clause
#
# libzmalloc and ztrace.
#
#   make demo        build everything, then watch a bundled program with ztrace
#   make test        install missing packages, build, run every test suite
#   make lib         libzmalloc.so and libzmalloc.a for MALLOC=libc|prefix|jemalloc
#   make bench       the benchmarks
#   make install     PREFIX=/usr/local DESTDIR=
#
# Knobs: MALLOC=libc|prefix|jemalloc, ZM_NO_PROBES=1, SANITIZE=1 (ASan and
# UBSan), V=1 (show commands), WERROR=1 (warnings are errors; on under CI).
# Every build output goes below build/, one folder per variant.

MALLOC ?= libc
BUILD ?= build
PREFIX ?= /usr/local
DESTDIR ?=
VERSION := 1.0.0
SOMAJOR := 1

ifeq ($(filter $(MALLOC),libc prefix jemalloc),)
$(error MALLOC=$(MALLOC) is not a backend: use libc, prefix or jemalloc)
endif

VARIANT := $(MALLOC)$(if $(filter 1,$(ZM_NO_PROBES)),-noprobes)$(if $(filter 1,$(SANITIZE)),-san)
O := $(BUILD)/$(VARIANT)
# ztrace, the demo and the BPF tests use the default library.
LIBDIR := $(BUILD)/libc

ifeq ($(V),1)
Q :=
else
Q := @
endif
ifeq ($(CI),true)
WERROR ?= 1
endif

CC ?= cc
CFLAGS_WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-unused-parameter
ifeq ($(WERROR),1)
CFLAGS_WARN += -Werror
endif
CFLAGS ?= -O2 -g
comma := ,
SAN_FLAGS := $(if $(filter 1,$(SANITIZE)),-fsanitize=address$(comma)undefined -fno-sanitize-recover=undefined)

# The library: no red zone because an optimised uprobe's call writes below
# the stack pointer; frame pointers so BPF can walk the callers' stacks.
LIB_CFLAGS := $(CFLAGS) $(CFLAGS_WARN) $(SAN_FLAGS) -std=gnu11 -fPIC \
	-fvisibility=hidden -mno-red-zone -fno-omit-frame-pointer -fno-plt \
	-D_GNU_SOURCE -DZM_BACKEND_$(shell echo $(MALLOC) | tr a-z A-Z) \
	$(if $(filter 1,$(ZM_NO_PROBES)),-DZM_NO_PROBES) \
	-Iinclude -I$(O)/include -Ilib
LIB_LIBS := -lpthread -lm $(if $(filter jemalloc,$(MALLOC)),-ljemalloc)

LIB_SRCS := $(wildcard lib/*.c)
LIB_OBJS := $(patsubst lib/%.c,$(O)/obj/%.o,$(LIB_SRCS))
LIB_HDRS := $(wildcard lib/*.h include/*.h) $(O)/include/zmalloc_config.h
SO_NAME := libzmalloc.so.$(SOMAJOR)
SO_FILE := $(O)/libzmalloc.so.$(VERSION)
AR_FILE := $(O)/libzmalloc.a

.PHONY: all lib test bench install clean deps format format-check \
	test-unit test-matrix test-summary bench-zmalloc
.DEFAULT_GOAL := all

all: lib

lib: $(SO_FILE) $(AR_FILE)

$(O)/include/zmalloc_config.h: lib/gen_config.sh
	@mkdir -p $(@D)
	$(Q)CC="$(CC)" sh lib/gen_config.sh $(MALLOC) > $@.tmp && mv $@.tmp $@

$(O)/obj/%.o: lib/%.c $(LIB_HDRS)
	@mkdir -p $(@D)
	$(if $(Q),@echo "  CC      $@")
	$(Q)$(CC) $(LIB_CFLAGS) -c $< -o $@

# -z nodelete: dlclose() leaves the library mapped, because a thread that
# used it runs its per-thread destructors (pthread keys) when it exits.
$(SO_FILE): $(LIB_OBJS) lib/libzmalloc.map
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CC) $(SAN_FLAGS) -shared -Wl,-soname,$(SO_NAME) \
		-Wl,--version-script=lib/libzmalloc.map -Wl,-z,now -Wl,-z,nodelete \
		-o $@ $(LIB_OBJS) $(LIB_LIBS)
	$(Q)ln -sf $(notdir $@) $(O)/$(SO_NAME)
	$(Q)ln -sf $(SO_NAME) $(O)/libzmalloc.so

# One relocatable object with every hidden symbol made local, so a static
# link exposes only the API, as the shared library does.
$(AR_FILE): $(LIB_OBJS)
	$(if $(Q),@echo "  AR      $@")
	$(Q)ld -r -o $(O)/zmalloc-all.o $(LIB_OBJS)
	$(Q)objcopy --localize-hidden $(O)/zmalloc-all.o
	$(Q)rm -f $@ && ar rcs $@ $(O)/zmalloc-all.o

install: lib $(if $(wildcard tools/ztrace.mk),install-ztrace)
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/lib/pkgconfig \
		$(DESTDIR)$(PREFIX)/include/zmalloc
	install -m 0755 $(SO_FILE) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libzmalloc.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/$(SO_NAME)
	ln -sf $(SO_NAME) $(DESTDIR)$(PREFIX)/lib/libzmalloc.so
	install -m 0644 $(AR_FILE) $(DESTDIR)$(PREFIX)/lib/
	install -m 0644 $(wildcard include/*.h) $(O)/include/zmalloc_config.h \
		$(DESTDIR)$(PREFIX)/include/zmalloc/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(PREFIX)/lib|' \
		-e 's|@INCLUDEDIR@|$(PREFIX)/include|' -e 's|@VERSION@|$(VERSION)|' \
		-e 's|@MALLOC@|$(MALLOC)|' \
		-e 's|@LIBS_PRIVATE@|$(if $(filter jemalloc,$(MALLOC)),-ljemalloc)|' \
		lib/zmalloc.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/zmalloc.pc

clean:
	rm -rf $(BUILD)

# ---------------------------------------------------------------- packages
# Debian packages the build, the tests and the demo need; deps installs
# only the missing ones.
DEPS_PKGS := make gcc clang llvm pkg-config binutils bpftool bpftrace \
	libbpf-dev libelf-dev zlib1g-dev libdw-dev libcmocka-dev \
	libjemalloc-dev systemtap-sdt-dev valgrind python3 clang-format \
	libmicrohttpd-dev libncurses-dev golang-go prometheus tmux librsvg2-bin

deps:
	$(Q)missing=$$(for p in $(DEPS_PKGS); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
			grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "deps: installing $$missing"; \
		if [ "$$(id -u)" != 0 ]; then \
			echo "deps: installing packages needs root: run as root or sudo make deps" >&2; \
			exit 1; \
		fi; \
		apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

# ------------------------------------------------------------------- tests
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(O)/tests/%,$(UNIT_SRCS))
UNIT_CFLAGS := $(CFLAGS) $(CFLAGS_WARN) $(SAN_FLAGS) -std=gnu11 \
	-fno-omit-frame-pointer -D_GNU_SOURCE -Iinclude -I$(O)/include \
	-Itests/unit -Ilib -DZM_TEST_BUILD_DIR='"$(abspath $(O))"' \
	$(if $(filter 1,$(ZM_NO_PROBES)),-DZM_NO_PROBES)
UNIT_LIBS := -L$(O) -lzmalloc -Wl,-rpath,$(abspath $(O)) -lcmocka -lelf -lz \
	-lpthread -lm
VALGRIND := valgrind -q --error-exitcode=99 --leak-check=full \
	--errors-for-leak-kinds=definite --track-fds=no
RESULTS := $(BUILD)/results

$(O)/tests/%: tests/unit/%.c tests/unit/zm_test.h $(SO_FILE) $(AR_FILE)
	@mkdir -p $(@D)
	$(if $(Q),@echo "  CC      $@")
	$(Q)$(CC) $(UNIT_CFLAGS) $< -o $@ $(UNIT_LIBS)

# The zlib link test also links both libraries statically.
$(O)/tests/test_zlib_static: tests/unit/test_zlib_link.c tests/unit/zm_test.h $(AR_FILE)
	@mkdir -p $(@D)
	$(if $(Q),@echo "  CC      $@")
	$(Q)$(CC) $(UNIT_CFLAGS) -DZM_TEST_STATIC $< -o $@ $(AR_FILE) \
		-Wl,-Bstatic -lz -Wl,-Bdynamic -lcmocka -lelf -lpthread -lm \
		$(if $(filter jemalloc,$(MALLOC)),-ljemalloc)

# Runs this variant's unit suite, under valgrind when UNDER_VALGRIND=1.
test-unit: $(UNIT_BINS) $(O)/tests/test_zlib_static
	$(Q)mkdir -p $(RESULTS)
	$(Q)sh tests/run_suite.sh $(RESULTS)/unit-$(VARIANT)$(if $(UNDER_VALGRIND),-valgrind) \
		"$(if $(UNDER_VALGRIND),$(VALGRIND))" $^

# Every backend and variant issue 2 asks for, the install check, the
# format check, then the BPF suites. A failing suite does not stop the others; the summary fails.
MATRIX := "MALLOC=libc" "MALLOC=prefix" "MALLOC=jemalloc" \
	"MALLOC=libc ZM_NO_PROBES=1" "MALLOC=libc SANITIZE=1" \
	"MALLOC=prefix SANITIZE=1" "MALLOC=libc UNDER_VALGRIND=1" \
	"MALLOC=prefix UNDER_VALGRIND=1"

test-matrix:
	$(Q)rm -rf $(RESULTS); status=0; \
	for v in $(MATRIX); do \
		$(MAKE) --no-print-directory $$v test-unit || status=1; \
	done; \
	for m in libc prefix jemalloc; do \
		sh tests/install/run.sh $(RESULTS)/install-$$m $$m || status=1; \
	done; \
	if $(MAKE) --no-print-directory format-check; then \
		echo "1 0 0" > $(RESULTS)/format; \
	else echo "0 1 0" > $(RESULTS)/format; status=1; fi; \
	if [ -f tools/ztrace.mk ]; then \
		$(MAKE) --no-print-directory MALLOC=libc test-bpf || status=1; \
	fi; \
	if [ -f tools/scan.mk ]; then \
		$(MAKE) --no-print-directory MALLOC=libc test-scan || status=1; \
	fi; \
	exit $$status

test-summary:
	$(Q)sh tests/summarize.sh $(RESULTS)

ifeq ($(SANITIZE),1)
# make test SANITIZE=1: the unit suite of each backend under ASan and UBSan.
test: deps
	$(Q)rm -rf $(RESULTS)
	$(Q)$(MAKE) --no-print-directory MALLOC=libc SANITIZE=1 test-unit
	$(Q)$(MAKE) --no-print-directory MALLOC=prefix SANITIZE=1 test-unit
	$(Q)$(MAKE) --no-print-directory test-summary
else
test: deps
	$(Q)status=0; $(MAKE) --no-print-directory test-matrix || status=$$?; \
	$(MAKE) --no-print-directory test-summary || status=1; exit $$status
endif

# --------------------------------------------------------------- benchmark
BENCH_CFLAGS := -O2 -g -std=gnu11 -D_GNU_SOURCE $(CFLAGS_WARN) -Iinclude \
	-I$(BUILD)/libc/include

$(BUILD)/bench/bench_zmalloc: tests/bench/bench_zmalloc.c
	@mkdir -p $(@D)
	$(if $(Q),@echo "  CC      $@")
	$(Q)$(CC) $(BENCH_CFLAGS) $< -o $@ -ldl -lpthread -lelf \
		-Wl,--no-as-needed -lc -ljemalloc

bench-zmalloc: $(BUILD)/bench/bench_zmalloc
	$(Q)$(MAKE) --no-print-directory MALLOC=libc lib
	$(Q)$(MAKE) --no-print-directory MALLOC=libc ZM_NO_PROBES=1 lib
	$(Q)$(MAKE) --no-print-directory MALLOC=jemalloc lib
	$(Q)mkdir -p $(BUILD)/bench-sampling && \
		cp $(BUILD)/libc/libzmalloc.so.1.0.0 $(BUILD)/bench-sampling/libzmalloc.so.1
	$(Q)$(BUILD)/bench/bench_zmalloc $(BUILD)

bench: deps
	$(Q)$(MAKE) --no-print-directory bench-zmalloc
	$(Q)if [ -f tools/ztrace.mk ]; then \
		$(MAKE) --no-print-directory bench-ztrace; fi
	$(Q)if [ -f tools/scan.mk ]; then \
		$(MAKE) --no-print-directory bench-scan; fi

# ------------------------------------------------------------------- style
FORMAT_SRCS = $(shell git ls-files '*.c' '*.h' 2>/dev/null | grep -v '^vmlinux/')

format:
	clang-format -i $(FORMAT_SRCS)

format-check:
	$(Q)clang-format --dry-run --Werror $(FORMAT_SRCS) && \
		echo "format-check: $(words $(FORMAT_SRCS)) files clean"

# ------------------------------------------------------- ztrace and BPF
-include tools/ztrace.mk
-include tools/scan.mk
