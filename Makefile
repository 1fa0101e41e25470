# gridsync - one non-recursive Makefile.  Outputs go under $(BUILD).
#
#   make            build gridagent, gridplatform and the tools
#   make test       build and run every test; ends with "N passed, N failed"
#   make check      the same suite under AddressSanitizer + UBSan
#   make demo       the main job end to end on loopback (see README)
#   make bench      the benchmarks under bench/
#   make V=1        show the commands
#
# Missing Debian packages are installed first when run as root
# (scripts/deps.sh); otherwise it says what to install.

BUILD ?= build
CC ?= cc
V ?= 0

PKGS := sqlite3 zlib libdeflate libsodium libcurl libmicrohttpd jansson
TEST_PKGS := cmocka

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wpointer-arith -Wundef -Wvla -Wcast-align \
	-Wno-format-nonliteral
WERROR ?= -Werror
OPT ?= -O2 -g
SAN ?=
ifeq ($(SAN),1)
OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
	-fno-sanitize-recover=undefined
endif

# Recursive (=) on purpose: expanded when a recipe runs, which is after
# scripts/deps.sh has installed the packages.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS = $(shell pkg-config --libs $(PKGS))
TEST_CFLAGS = $(shell pkg-config --cflags $(TEST_PKGS))
TEST_LIBS = $(shell pkg-config --libs $(TEST_PKGS))

ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) $(WERROR) -MMD -MP \
	-Isync -Iagent -Iplatform -I$(BUILD)/gen $(PKG_CFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(OPT) $(LDFLAGS)

ifeq ($(V),1)
Q :=
say :=
else
Q := @
say = @printf '  %-6s %s\n' $(1) $(2);
endif

# ---------------------------------------------------------------- sources
# Objects are listed one per line.  Each block has an owner; keep to yours.

CORE_SRCS := \
	sync/core/buf.c \
	sync/core/error.c \
	sync/core/log.c \
	sync/core/mem.c \
	sync/core/progress.c \
	sync/core/util.c

# records, forms, code tables and validation
SCHEMA_SRCS := \
	sync/db.c \
	sync/embedded.c \
	sync/ids.c \
	sync/schema.c \
	sync/validate.c

# the wire: deflate, crypto, envelope, receipts, batch encoding
WIRE_SRCS := \
	sync/attachment.c \
	sync/batch.c \
	sync/crypto.c \
	sync/deflate.c \
	sync/enroll.c \
	sync/keybundle.c \
	sync/envelope.c \
	sync/json.c \
	sync/feed.c \
	sync/merge.c \
	sync/receipt.c \
	sync/uuid.c

SYNC_SRCS := $(CORE_SRCS) $(SCHEMA_SRCS) $(WIRE_SRCS)

# the agent library (everything but main)
AGENT_SRCS := \
	agent/cli.c \
	agent/status.c \
	agent/store.c \
	agent/cli_sync.c \
	agent/device.c \
	agent/enroll.c \
	agent/outbox.c \
	agent/pull.c \
	agent/reference.c \
	agent/rootkeys.c \
	agent/rekey.c \
	agent/tasks.c \
	agent/attach.c \
	agent/attach_sync.c \
	agent/sync.c \
	agent/uploader.c \
	agent/crypt.c \
	agent/unlock.c \
	agent/pii.c \
	agent/cli_pii.c

AGENT_MAIN := agent/main.c

# the platform library (everything but main)
PLATFORM_SRCS := \
	platform/api.c \
	platform/attachments.c \
	platform/enroll.c \
	platform/export.c \
	platform/http.c \
	platform/ingest.c \
	platform/keys.c \
	platform/rotate.c \
	platform/root.c \
	platform/rekey.c \
	platform/admin.c \
	platform/pull.c \
	platform/reference.c \
	platform/recon_sql.c \
	platform/reconcile.c \
	platform/store_sqlite.c

PLATFORM_MAIN := platform/main.c

TOOL_SRCS := \
	tools/gridgen.c

# benchmark programs: bench/NAME.c -> $(BUILD)/bench/NAME (linked with the
# project's libraries, which they may or may not use)
BENCH_SRCS := \
	bench/naive.c \
	bench/pii.c \
	bench/save.c \
	bench/wire.c

# test-only programs (no project library): tests/tools/NAME.c -> $(BUILD)/tools/NAME
TEST_TOOLS := \
	tests/tools/gsproxy.c
FREESCAN := $(BUILD)/tools/freescan.so
GSCLOCK := $(BUILD)/tools/gsclock.so

# cmocka unit tests: tests/unit/NAME.c -> $(BUILD)/tests/NAME
UNIT_TESTS := \
	tests/unit/agent-attach.c \
	tests/unit/agent-store.c \
	tests/unit/agent-crypt.c \
	tests/unit/agent-outbox.c \
	tests/unit/agent-pull.c \
	tests/unit/agent-uploader.c \
	tests/unit/fuzz-regressions.c \
	tests/unit/sync-torture.c \
	tests/unit/agent-powerloss.c \
	tests/unit/platform-ingest.c \
	tests/unit/sync-attachment.c \
	tests/unit/sync-batch.c \
	tests/unit/sync-core.c \
	tests/unit/sync-crypto.c \
	tests/unit/sync-db.c \
	tests/unit/sync-db-sync.c \
	tests/unit/sync-deflate.c \
	tests/unit/sync-enroll.c \
	tests/unit/sync-envelope.c \
	tests/unit/sync-feed.c \
	tests/unit/sync-ids.c \
	tests/unit/sync-keybundle.c \
	tests/unit/sync-json.c \
	tests/unit/sync-merge.c \
	tests/unit/sync-receipt.c \
	tests/unit/sync-schema.c \
	tests/unit/sync-uuid.c \
	tests/unit/sync-validate.c \
	tests/unit/sync-vectors.c

# ---------------------------------------------------------------- rules

SCHEMA_FILES := $(sort $(wildcard schema/agent/*.sql schema/platform/*.sql \
	schema/forms/*.json schema/codes/*.json))
EMBED_C := $(BUILD)/gen/embedded_data.c

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

SYNC_LIB := $(BUILD)/libgridsync.a
AGENT_LIB := $(BUILD)/libgridagent.a
PLATFORM_LIB := $(BUILD)/libgridplatform.a
GRIDAGENT := $(BUILD)/gridagent
GRIDPLATFORM := $(BUILD)/gridplatform
GRIDGEN := $(BUILD)/gridgen
EMBED := $(BUILD)/tools/embed
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_TESTS))
TEST_TOOL_BINS := $(patsubst tests/tools/%.c,$(BUILD)/tools/%,$(TEST_TOOLS)) \
	$(FREESCAN) $(GSCLOCK)
BENCH_BINS := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRCS))

DEPS_STAMP := $(BUILD)/.deps-ok

.PHONY: FORCE all test check unit demo bench bench-save bench-e2e bench-link bench-pull clean format deps valgrind
.DEFAULT_GOAL := all
.SECONDARY:

all: $(GRIDAGENT) $(GRIDPLATFORM) $(GRIDGEN)

deps: $(DEPS_STAMP)
$(DEPS_STAMP): scripts/deps.sh
	@mkdir -p $(@D)
	$(Q)sh scripts/deps.sh
	@touch $@

$(EMBED): tools/embed.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(call say,HOSTCC,$@)$(CC) -O1 -o $@ $<

# The list of embedded files, rewritten only when it changes: a file
# removed from schema/ (a scratch migration, say) leaves the build too,
# which its mere absence from the prerequisites would not make happen.
SCHEMA_LIST := $(BUILD)/gen/schema.list
$(SCHEMA_LIST): FORCE
	@mkdir -p $(@D)
	@echo '$(SCHEMA_FILES)' | cmp -s - $@ 2>/dev/null || \
		echo '$(SCHEMA_FILES)' >$@

$(EMBED_C): $(EMBED) $(SCHEMA_FILES) $(SCHEMA_LIST)
	@mkdir -p $(@D)
	$(call say,EMBED,$@)$(EMBED) $@ schema/ $(SCHEMA_FILES)

FORCE:

$(BUILD)/obj/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(call say,CC,$<)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/obj/gen/embedded_data.o: $(EMBED_C)
	@mkdir -p $(@D)
	$(call say,CC,$<)$(CC) $(ALL_CFLAGS) -Wno-missing-prototypes -c -o $@ $<

$(SYNC_LIB): $(call obj,$(SYNC_SRCS)) $(BUILD)/obj/gen/embedded_data.o
	$(call say,AR,$@)rm -f $@ && ar rcs $@ $^

$(AGENT_LIB): $(call obj,$(AGENT_SRCS))
	$(call say,AR,$@)rm -f $@ && ar rcs $@ $^

$(PLATFORM_LIB): $(call obj,$(PLATFORM_SRCS))
	$(call say,AR,$@)rm -f $@ && ar rcs $@ $^

$(GRIDAGENT): $(call obj,$(AGENT_MAIN)) $(AGENT_LIB) $(SYNC_LIB)
	$(call say,LD,$@)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) -lpthread

$(GRIDPLATFORM): $(call obj,$(PLATFORM_MAIN)) $(PLATFORM_LIB) $(SYNC_LIB)
	$(call say,LD,$@)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) -lpthread

$(GRIDGEN): $(call obj,$(TOOL_SRCS)) $(SYNC_LIB)
	$(call say,LD,$@)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/obj/tests/unit/%.o: tests/unit/%.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(call say,CC,$<)$(CC) $(ALL_CFLAGS) $(TEST_CFLAGS) \
		-Wno-missing-prototypes -c -o $@ $<

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(PLATFORM_LIB) $(AGENT_LIB) \
		$(SYNC_LIB)
	@mkdir -p $(@D)
	$(call say,LD,$@)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) \
		$(TEST_LIBS) -lpthread

$(BUILD)/tools/%: tests/tools/%.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(call say,CC,$<)$(CC) $(ALL_CFLAGS) -o $@ $<

# the LD_PRELOAD scanner of freed memory (tests/integration/pii-heap.sh):
# never with the sanitizers, whose allocator must come first (the test
# skips itself under them)
$(FREESCAN): tests/tools/freescan.c
	@mkdir -p $(@D)
	$(call say,CC,$<)$(CC) -std=c11 -D_GNU_SOURCE -O2 -g $(WARN) $(WERROR) \
		-shared -fPIC -o $@ $<

# the LD_PRELOAD wall clock set to another time
# (tests/integration/clock-reset.sh; skipped under the sanitizers too)
$(GSCLOCK): tests/tools/gsclock.c
	@mkdir -p $(@D)
	$(call say,CC,$<)$(CC) -std=c11 -D_GNU_SOURCE -O2 -g $(WARN) $(WERROR) \
		-shared -fPIC -o $@ $< -ldl

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(AGENT_LIB) $(SYNC_LIB)
	@mkdir -p $(@D)
	$(call say,LD,$@)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) -lpthread

# the in-process field simulator (tests/sim/sim.c): the real agent and
# platform code in one process, only the transport simulated
SIM := $(BUILD)/tools/gssim
$(SIM): $(call obj,tests/sim/sim.c) $(PLATFORM_LIB) $(AGENT_LIB) $(SYNC_LIB)
	@mkdir -p $(@D)
	$(call say,LD,$@)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) -lpthread

unit: $(UNIT_BINS)

# The whole suite: unit programs, then CLI and integration scripts that
# drive the built binaries.  tests/run.sh prints "N passed, N failed".
test: all $(UNIT_BINS) $(TEST_TOOL_BINS) $(SIM)
	$(Q)BUILD=$(BUILD) sh tests/run.sh

# The same suite with sanitizers, in its own build tree.
check:
	$(Q)$(MAKE) --no-print-directory BUILD=build/san SAN=1 test

# Every unit program under valgrind memcheck (errors and definite or
# indirect leaks fail it); about 8 minutes, so not part of `make test`.
valgrind: $(UNIT_BINS)
	$(Q)BUILD=$(BUILD) sh tests/valgrind.sh

demo: all
	$(Q)BUILD=$(BUILD) sh scripts/demo.sh

bench: all $(BENCH_BINS) $(TEST_TOOL_BINS)
	$(Q)BUILD=$(BUILD) sh bench/run.sh

# End to end on loopback against the naive baseline: its section of
# bench/RESULTS.md.
bench-e2e: all $(BUILD)/bench/naive $(BUILD)/bench/wire $(BUILD)/tools/gsproxy
	$(Q)BUILD=$(BUILD) sh bench/e2e.sh

# A sync over a slow link, one batch under way at a time against two: its
# section of bench/RESULTS.md.
bench-link: all $(BUILD)/tools/gsproxy
	$(Q)BUILD=$(BUILD) sh bench/link.sh

# A new device's first pull of a grid: time, bytes, connections; its
# section of bench/RESULTS.md.
bench-pull: all $(BUILD)/tools/gsproxy
	$(Q)BUILD=$(BUILD) sh bench/pull.sh

# The agent's saves alone (single save latency, bulk import rate); writes
# its section of bench/RESULTS.md.
bench-save: $(BUILD)/bench/save $(GRIDGEN)
	$(Q)BUILD=$(BUILD) sh bench/bench-save.sh

format:
	clang-format -i $(CORE_SRCS) $(SCHEMA_SRCS) $(WIRE_SRCS) \
		$(AGENT_SRCS) $(PLATFORM_SRCS)

clean:
	rm -rf build

# ---------------------------------------------------------------- fuzzing
# (issue 7) libFuzzer harnesses: tests/fuzz/NAME.c -> $(BUILD)/fuzz/NAME.
# `make fuzz` builds them with clang (ASan + UBSan + libFuzzer) in
# $(FUZZ_BUILD) and runs each for FUZZ_SECONDS on a copy of its seed
# corpus (tests/fuzz/run.sh); tests/unit/fuzz-regressions.c replays the
# corpora and every saved crash on each `make test`.
FUZZ_HARNESSES := \
	tests/fuzz/attachment.c \
	tests/fuzz/batch.c \
	tests/fuzz/enroll.c \
	tests/fuzz/envelope.c \
	tests/fuzz/feed.c \
	tests/fuzz/http.c \
	tests/fuzz/inflate.c \
	tests/fuzz/json.c \
	tests/fuzz/receipt.c \
	tests/fuzz/reference.c

FUZZ_BUILD ?= build/fuzz
FUZZ_SECONDS ?= 60
FUZZ_JOBS ?= 1
FUZZ_OPT := -O1 -g -fno-omit-frame-pointer \
	-fsanitize=fuzzer-no-link,address,undefined \
	-fno-sanitize-recover=undefined
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_HARNESSES))

$(BUILD)/fuzz/%: tests/fuzz/%.c tests/fuzz/fuzz.h $(PLATFORM_LIB) \
		$(AGENT_LIB) $(SYNC_LIB)
	@mkdir -p $(@D)
	$(call say,FUZZ,$@)$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer -o $@ $< \
		$(PLATFORM_LIB) $(AGENT_LIB) $(SYNC_LIB) $(PKG_LIBS) -lpthread

.PHONY: fuzz fuzz-bins campaign
fuzz-bins: $(FUZZ_BINS)

fuzz:
	$(Q)$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=clang \
		OPT='$(FUZZ_OPT)' WERROR= fuzz-bins
	$(Q)FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_JOBS=$(FUZZ_JOBS) \
		sh tests/fuzz/run.sh

# The long campaign (issue 7): 1,000+ kill points, every-KiB cuts,
# CAMPAIGN_SEEDS simulation seeds, FUZZ_SECONDS of fuzzing per harness;
# writes tests/CAMPAIGN.md.  `make campaign CAMPAIGN=quick` is a reduced
# run.
CAMPAIGN ?= full
campaign: all $(TEST_TOOL_BINS) $(SIM)
	$(Q)BUILD=$(BUILD) FUZZ_BUILD=$(FUZZ_BUILD) CAMPAIGN=$(CAMPAIGN) \
		sh tests/checker/campaign.sh

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
