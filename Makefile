# refscan - build, test, benchmark, fuzz and install.
#
#   make            build ./refscan (release, build/release/)
#   make test       set up (apt packages, FAISS C API), build, run every test
#   make check      the same suite under AddressSanitizer + UBSan
#   make bench      benchmarks on generated data (prints figures)
#   make fuzz       libFuzzer targets, FUZZ_TIME seconds each
#   make demo       set up, generate a small library, run the main job on it
#   make install    PREFIX=/usr/local DESTDIR=
#
# Local overrides go in config.mak.  V=1 echoes commands, DEVELOPER=1 adds -Werror.

CC ?= cc
CXX ?= c++
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
DESTDIR ?=
CONFIG ?= release
FUZZ_TIME ?= 60
CPPFLAGS ?=
# -O3: GCC vectorises the describe loops (surface moments, histograms) and
# the readers' inner loops; without -ffast-math it reorders no sum, so the
# vectors are bit-identical to -O2's (make bench prints the time).
CFLAGS ?= -O3 -g
LDFLAGS ?=
LDLIBS ?=

-include config.mak

WARN = -std=c11 -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
       -Wvla -Wwrite-strings -Wconversion -Wno-sign-conversion
ifeq ($(DEVELOPER),1)
WARN += -Werror
endif

ifeq ($(V),1)
Q =
else
Q = @
endif

FAISS_C_DIR ?= build/faiss_c
FAISS_VERSION := $(shell cat $(FAISS_C_DIR)/VERSION 2>/dev/null)
FAISS_LIBS = -L$(FAISS_C_DIR) -lfaiss_c -lfaiss -llapack -lblas -lstdc++

SANFLAGS =
ifeq ($(CONFIG),sanitize)
SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
CFLAGS := -O1 -g
endif

B = build/$(CONFIG)
ALL_CPPFLAGS = -D_GNU_SOURCE -I. -Icommon -DFAISS_VERSION_STR=\"$(FAISS_VERSION)\" $(CPPFLAGS)
ALL_CFLAGS = $(WARN) -fopenmp $(SANFLAGS) $(CFLAGS)
ALL_LDFLAGS = -fopenmp $(SANFLAGS) $(LDFLAGS)
LIBS = $(FAISS_LIBS) -larchive -ljansson -lcrypto -lpng -ljpeg -llzf -lm -lpthread $(LDLIBS)

COMMON_SRC = $(sort $(wildcard common/*.c))
FORMATS_SRC = $(sort $(wildcard formats/*.c))
INDEXER_SRC = $(sort $(wildcard indexer/*.c))
QUERY_SRC = $(sort $(wildcard query/*.c))
LIB_SRC = $(COMMON_SRC) $(FORMATS_SRC) $(INDEXER_SRC) $(QUERY_SRC)
LIB_OBJ = $(LIB_SRC:%.c=$(B)/%.o)
LIB = $(B)/librefscan.a

UNIT_SRC = $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN = $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
TESTLIB_SRC = $(sort $(wildcard tests/lib/*.c))
TESTLIB_OBJ = $(TESTLIB_SRC:%.c=$(B)/%.o)
TOOL_SRC = $(sort $(wildcard tests/tools/*.c))
TOOL_BIN = $(TOOL_SRC:tests/tools/%.c=$(B)/%)
BENCH_SRC = $(sort $(wildcard tests/bench/*.c))
BENCH_BIN = $(BENCH_SRC:tests/bench/%.c=$(B)/%)
FUZZ_SRC = $(sort $(wildcard tests/fuzz/fuzz_*.c))

.PHONY: all setup test unit cli check bench fuzz fuzz-build build-tests demo install uninstall clean lint faiss-c
.DEFAULT_GOAL := all

all: refscan

refscan: $(B)/refscan
	$(Q)cp $< $@

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(FAISS_C_DIR)/libfaiss_c.a:
	scripts/setup --faiss-only

faiss-c: $(FAISS_C_DIR)/libfaiss_c.a

$(B)/refscan: $(B)/refscan.o $(LIB) $(FAISS_C_DIR)/libfaiss_c.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $(B)/refscan.o $(LIB) $(LIBS)

$(B)/tests/%: tests/unit/%.c $(LIB) $(TESTLIB_OBJ) $(FAISS_C_DIR)/libfaiss_c.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  TEST    $@")
	$(Q)$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) $(ALL_LDFLAGS) -MMD -MP -o $@ $< $(TESTLIB_OBJ) $(LIB) -lcmocka $(LIBS)

$(B)/%: tests/tools/%.c $(LIB) $(FAISS_C_DIR)/libfaiss_c.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  TOOL    $@")
	$(Q)$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) $(ALL_LDFLAGS) -MMD -MP -o $@ $< $(LIB) $(LIBS)

$(B)/%: tests/bench/%.c $(LIB) $(FAISS_C_DIR)/libfaiss_c.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  BENCH   $@")
	$(Q)$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) $(ALL_LDFLAGS) -MMD -MP -o $@ $< $(LIB) $(LIBS) -lassimp

setup:
	$(Q)scripts/setup

# Every test: unit tests (cmocka), then command-line tests.
test: setup
	$(Q)$(MAKE) --no-print-directory build-tests
	$(Q)scripts/run-tests $(B)

build-tests: $(B)/refscan refscan $(UNIT_BIN) $(filter-out $(B)/bench_%,$(TOOL_BIN))

unit: build-tests
	$(Q)scripts/run-tests --unit-only $(B)

check: setup
	$(Q)$(MAKE) --no-print-directory CONFIG=sanitize build-tests
	$(Q)ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		scripts/run-tests build/sanitize

bench: setup
	$(Q)$(MAKE) --no-print-directory $(B)/refscan $(TOOL_BIN) $(BENCH_BIN)
	$(Q)scripts/run-bench $(B)

# libFuzzer: formats/ and common/ built with clang and the sanitizers.
FUZZ_B = build/fuzz
FUZZ_CFLAGS = -g -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
FUZZ_LIB_SRC = $(COMMON_SRC) $(FORMATS_SRC)
FUZZ_LIB_OBJ = $(FUZZ_LIB_SRC:%.c=$(FUZZ_B)/%.o)
FUZZ_BIN = $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_B)/%)
# formats/ writes archives and manifests (libarchive, jansson, libcrypto)
FUZZ_LIBS = -larchive -ljansson -lcrypto -lpng -ljpeg -llzf -lm -lpthread

$(FUZZ_B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(Q)clang $(ALL_CPPFLAGS) -std=c11 $(FUZZ_CFLAGS) -c -o $@ $<

# an archive, so a target links only the objects it uses (not info.c's JSON)
$(FUZZ_B)/librefscan-fuzz.a: $(FUZZ_LIB_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^

$(FUZZ_B)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_B)/librefscan-fuzz.a
	$(Q)clang $(ALL_CPPFLAGS) -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -o $@ $< $(FUZZ_B)/librefscan-fuzz.a $(FUZZ_LIBS)

# keep the sanitizer objects between fuzz builds (they are intermediates)
.SECONDARY: $(FUZZ_LIB_OBJ)

fuzz-build: $(FUZZ_BIN)

fuzz: setup
	$(Q)$(MAKE) --no-print-directory fuzz-build
	$(Q)scripts/run-fuzz $(FUZZ_B) $(FUZZ_TIME)

demo: setup
	$(Q)$(MAKE) --no-print-directory $(B)/refscan refscan $(TOOL_BIN)
	$(Q)scripts/demo $(B)

install: $(B)/refscan
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 755 $(B)/refscan $(DESTDIR)$(BINDIR)/refscan
	install -m 644 docs/refscan.1 $(DESTDIR)$(MANDIR)/man1/refscan.1
	install -m 755 scripts/refscan-nightly $(DESTDIR)$(BINDIR)/refscan-nightly

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/refscan $(DESTDIR)$(BINDIR)/refscan-nightly $(DESTDIR)$(MANDIR)/man1/refscan.1

lint:
	$(Q)! grep -nE '\b(strcpy|strcat|sprintf|vsprintf|strtok|atoi|gets)\(' $(LIB_SRC) refscan.c | grep -v banned.h

clean:
	rm -rf build/release build/sanitize build/fuzz refscan

-include $(LIB_OBJ:.o=.d) $(B)/refscan.d $(UNIT_BIN:=.d) $(TESTLIB_OBJ:.o=.d)
