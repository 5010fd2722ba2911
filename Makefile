# bulkhead: network segmentation and egress firewall for Docker hosts.
# `make` builds ./bulkhead; `make test` runs every test; `make asan` runs
# them under AddressSanitizer and UndefinedBehaviorSanitizer. V=1 shows
# the commands.

PREFIX ?= /usr/local
DESTDIR ?=
BUILD ?= build
CC ?= cc
PKGS := libnftnl libmnl yaml-0.1 jansson libcurl libcap-ng libcares libnetfilter_conntrack libmicrohttpd
CFLAGS ?= -O2 -g
ALL_CFLAGS = $(CFLAGS) -std=gnu11 -Wall -Wextra -Werror -Wshadow \
	-Wstrict-prototypes -Iinclude -MMD -MP $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS += $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# the commit the build is from, when known (the release is main.c's)
COMMIT := $(shell git describe --always --dirty 2>/dev/null | sed 's/^/ (git /; s/$$/)/')
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)

ifeq ($(V),1)
Q :=
else
Q := @
endif

LIB_SRCS := $(filter-out src/main.c,$(wildcard src/*.c))
LIB_OBJS := $(LIB_SRCS:src/%.c=$(BUILD)/%.o)
UNIT_SRCS := $(wildcard tests/unit/*.c)
UNIT_OBJS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/unit/%.o)

all: bulkhead

bulkhead: $(BUILD)/bulkhead
	$(Q)cp $< $@

$(BUILD)/bulkhead: $(BUILD)/main.o $(LIB_OBJS)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: src/%.c | $(BUILD)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

# only main.c says the version: a new commit rebuilds nothing else
$(BUILD)/main.o: ALL_CFLAGS += -DBULKHEAD_COMMIT='"$(COMMIT)"'
$(BUILD)/main.o: $(wildcard .git/HEAD .git/index)

$(BUILD)/unit/%.o: tests/unit/%.c | $(BUILD)/unit
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(ALL_CFLAGS) -DFIXTURES='"tests/fixtures"' -c -o $@ $<

$(BUILD)/unit-tests: $(UNIT_OBJS) $(LIB_OBJS)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(CHECK_LIBS)

$(BUILD) $(BUILD)/unit:
	$(Q)mkdir -p $@

# Unit tests need nothing but the build; integration tests program
# nftables in throwaway network namespaces (root); they skip only when
# not root, and say so.
$(BUILD)/kernel-helper: tests/integration/kernel_helper.c $(LIB_OBJS)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/revoke-helper: tests/integration/revoke_helper.c $(LIB_OBJS)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

test: $(BUILD)/bulkhead $(BUILD)/unit-tests $(BUILD)/kernel-helper $(BUILD)/revoke-helper
	$(Q)BUILD=$(BUILD) SANITIZED=$(SANITIZED) tests/run.sh

asan:
	$(Q)$(MAKE) --no-print-directory BUILD=build/asan \
		CFLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all" \
		LDFLAGS="-fsanitize=address,undefined" SANITIZED=1 test

$(BUILD)/bench/delta: bench/delta.c $(LIB_OBJS)
	$(Q)mkdir -p $(BUILD)/bench
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bench/flowlog: bench/flowlog.c $(LIB_OBJS)
	$(Q)mkdir -p $(BUILD)/bench
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

bench: $(BUILD)/bulkhead $(BUILD)/bench/delta $(BUILD)/bench/flowlog $(BUILD)/bench/revoke
	$(Q)BUILD=$(BUILD) bench/plan.sh
	$(Q)BUILD=$(BUILD) bench/kernel.sh
	$(Q)BUILD=$(BUILD) bench/datapath.sh
	$(Q)BUILD=$(BUILD) bench/flowlog.sh
	$(Q)BUILD=$(BUILD) bench/revoke.sh

SYSCONFDIR ?= /etc
UNITDIR ?= $(PREFIX)/lib/systemd/system

# The binary, the systemd unit (paths filled in), the manual page, bash
# completion, the example policies and a logrotate snippet; an existing
# $(SYSCONFDIR)/bulkhead/policy.yaml is kept.
install: $(BUILD)/bulkhead
	install -D -m 0755 $(BUILD)/bulkhead $(DESTDIR)$(PREFIX)/sbin/bulkhead
	install -D -m 0644 scripts/man/bulkhead.8 $(DESTDIR)$(PREFIX)/share/man/man8/bulkhead.8
	install -D -m 0644 scripts/completion/bulkhead.bash \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions/bulkhead
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(PREFIX)/share/bulkhead/policies
	sed -e 's|@SBINDIR@|$(PREFIX)/sbin|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
		scripts/systemd/bulkhead.service.in >$(DESTDIR)$(UNITDIR)/bulkhead.service
	install -m 0644 policies/*.yaml $(DESTDIR)$(PREFIX)/share/bulkhead/policies/
	install -D -m 0644 scripts/logrotate/bulkhead $(DESTDIR)$(SYSCONFDIR)/logrotate.d/bulkhead
	[ -e $(DESTDIR)$(SYSCONFDIR)/bulkhead/policy.yaml ] || \
		install -D -m 0644 policies/three-tier.yaml $(DESTDIR)$(SYSCONFDIR)/bulkhead/policy.yaml

format:
	clang-format -i src/*.c include/bulkhead/*.h tests/unit/*.c

clean:
	rm -rf build bulkhead

.PHONY: all test asan bench install format clean

-include $(wildcard $(BUILD)/*.d $(BUILD)/unit/*.d)

# libFuzzer harnesses, one per parser (clang): FUZZ_SECONDS each, as many
# at a time as there are processors.
FUZZ_SECONDS ?= 30
FUZZ_JOBS ?= $(shell nproc 2>/dev/null || echo 1)
FUZZERS := policy inventory readback docker flowlog nftevents
FUZZ_SAN := address,undefined -fno-sanitize-recover=all
FUZZ_CC = clang -O1 -g -std=gnu11 -Wall -Wextra -Werror -Iinclude \
	$(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# the library is compiled once for every harness (instrumented for
# coverage, not linked with libFuzzer's main)
FUZZ_OBJS := $(LIB_SRCS:src/%.c=build/fuzz/obj/%.o)
fuzz: $(FUZZERS:%=build/fuzz/fuzz_%)
	$(Q)printf '%s\n' $(FUZZERS) | xargs -P $(FUZZ_JOBS) -I{} sh scripts/fuzz-one.sh {} $(FUZZ_SECONDS)

build/fuzz/obj/%.o: src/%.c
	$(Q)mkdir -p build/fuzz/obj
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(FUZZ_CC) -fsanitize=fuzzer-no-link,$(FUZZ_SAN) -MMD -MP -c -o $@ $<

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_OBJS)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)$(FUZZ_CC) -fsanitize=fuzzer,$(FUZZ_SAN) -o $@ $^ $(LDLIBS)

.SECONDARY: $(FUZZ_OBJS)
-include $(wildcard build/fuzz/obj/*.d)

.PHONY: fuzz

demo:
	$(Q)scripts/demo.sh

# The whole suite from a fresh machine (installs what it needs).
# 1,000 container start/stop cycles against a real dockerd (root).
soak: $(BUILD)/bulkhead
	$(Q)BUILD=$(BUILD) sh tests/soak/cycles.sh

check-all:
	$(Q)scripts/test.sh

# The daemon, flow-log, self-heal and demo end-to-end tests against the
# Docker and compose of Debian 12, 13 and sid, each in a root of its own
# (root; the roots are cached in build/compat).
compat: $(BUILD)/bulkhead
	$(Q)scripts/compat.sh

.PHONY: demo soak check-all compat

$(BUILD)/bench/revoke: bench/revoke.c $(LIB_OBJS)
	$(Q)mkdir -p $(BUILD)/bench
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)
