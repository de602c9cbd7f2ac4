# asp-relay: one plain GNU Makefile.
#
#   make            build everything into build/
#   make SAN=1      the same with AddressSanitizer + UBSan, into build/san/
#   make run        install what is missing, build, start the relay
#   make cluster    the same with two relay nodes through one Redis
#   make test       install what is missing, build with sanitizers, run
#                   every test (unit, fuzz replay + short fuzz, end to end)
#   make fuzz       build the libFuzzer drivers with clang
#   make bench      run the benchmark suite (bench/README.md)
#   make soak       churn and soak the relay for SOAK_MINUTES (default 30)
#   make install    install under $(DESTDIR)$(PREFIX) (default /usr/local):
#                   programs, web page, man pages, example config, the
#                   systemd unit; make uninstall removes them again

SAN ?= 0
ifeq ($(SAN),1)
BUILD ?= build/san
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all
else
BUILD ?= build
SANFLAGS :=
endif

CC ?= cc
CLANG ?= clang
PKGS := libwebsockets openssl libavcodec libavformat libavutil libswscale \
	opus sqlite3 jansson inih hiredis
WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wformat=2 -Wvla -Wpointer-arith -Wundef
CFLAGS ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(CFLAGS) $(WARN) -fno-omit-frame-pointer \
	-MMD -MP -I. $(SANFLAGS) $(shell pkg-config --cflags $(PKGS))
LDLIBS_ALL = $(shell pkg-config --libs $(PKGS)) -lm
ALL_LDFLAGS = $(LDFLAGS) $(SANFLAGS)

PROTO_SRC := $(wildcard protocol/*.c)
CODEC_SRC := $(wildcard codec/*.c)
RELAY_SRC := $(wildcard relay/*.c)
CLIENT_SRC := $(wildcard tools/common/*.c)
PROTO_OBJ := $(PROTO_SRC:%.c=$(BUILD)/obj/%.o)
CODEC_OBJ := $(CODEC_SRC:%.c=$(BUILD)/obj/%.o)
RELAY_OBJ := $(RELAY_SRC:%.c=$(BUILD)/obj/%.o)
CLIENT_OBJ := $(CLIENT_SRC:%.c=$(BUILD)/obj/%.o)

LIBPROTO := $(BUILD)/libaspproto.a
LIBCODEC := $(BUILD)/libaspcodec.a
LIBCLIENT := $(BUILD)/libaspclient.a

TOOLS := $(patsubst tools/%.c,$(BUILD)/%,$(wildcard tools/asp-*.c))
BENCH := $(patsubst bench/%.c,$(BUILD)/%,$(wildcard bench/asp-*.c))
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))

ifneq ($(RELAY_SRC),)
RELAY_BIN := $(BUILD)/asp-relay
endif

.PHONY: all deps run test unit e2e fuzz fuzz-run bench soak clean install \
	uninstall
all: $(RELAY_BIN) $(TOOLS) $(BENCH) $(UNIT) $(BUILD)/www

deps:
	@sh tools/install-deps.sh

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(LIBPROTO): $(PROTO_OBJ)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^
$(LIBCODEC): $(CODEC_OBJ)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^
$(LIBCLIENT): $(CLIENT_OBJ)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

# The version /metrics and --version report.  The revision is kept in a
# file rewritten only when it changes, so a new commit rebuilds the one
# object that holds it and nothing else.
VERSION := 0.1.0
REVISION := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
REVISION_FILE := $(BUILD)/revision
$(shell mkdir -p $(BUILD) && { [ "$$(cat $(REVISION_FILE) 2>/dev/null)" = "$(REVISION)" ] || \
	echo "$(REVISION)" >$(REVISION_FILE); })
$(BUILD)/obj/relay/relay_config.o: $(REVISION_FILE)
$(BUILD)/obj/relay/relay_config.o: ALL_CFLAGS += -DASP_VERSION='"$(VERSION)"' \
	-DASP_REVISION='"$(REVISION)"'

# The relay looks for its page next to itself (relay_config.c): in the
# build tree that is this link to the sources, so nothing in the binary
# names the source tree and an installed copy finds its installed page.
$(BUILD)/www:
	@mkdir -p $(@D)
	ln -sfn $$(realpath --relative-to=$(@D) relay/www) $@

# The relay's event loop is libev (Debian ships no libev.pc).
RELAY_LDLIBS := -lev
$(BUILD)/asp-relay: $(RELAY_OBJ) $(LIBCODEC) $(LIBPROTO)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS_ALL) $(RELAY_LDLIBS)
$(BUILD)/asp-%: $(BUILD)/obj/tools/asp-%.o $(LIBCLIENT) $(LIBCODEC) $(LIBPROTO)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS_ALL)
BENCH_HELPERS := $(patsubst %.c,$(BUILD)/obj/%.o,$(filter-out bench/asp-%.c,$(wildcard bench/*.c)))
$(BUILD)/asp-bench: $(BUILD)/obj/bench/asp-bench.o $(BENCH_HELPERS) $(LIBCODEC) $(LIBPROTO)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS_ALL)
$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(LIBCLIENT) $(LIBCODEC) $(LIBPROTO)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS_ALL) $(shell pkg-config --libs cmocka)
# Unit tests of relay modules link those modules too, ahead of the
# libraries they call into (hence a recipe of their own).
$(BUILD)/tests/test_relay_store: $(BUILD)/obj/tests/unit/test_relay_store.o \
		$(BUILD)/obj/relay/relay_store.o \
		$(BUILD)/obj/relay/relay_store_sqlite.o \
		$(BUILD)/obj/relay/relay_store_redis.o \
		$(BUILD)/obj/relay/relay_redis.o \
		$(BUILD)/obj/relay/relay_alloc.o $(LIBCODEC) $(LIBPROTO)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS_ALL) $(shell pkg-config --libs cmocka)

$(BUILD)/tests/test_relay_guard: $(BUILD)/obj/tests/unit/test_relay_guard.o \
		$(BUILD)/obj/relay/relay_guard.o $(BUILD)/obj/relay/relay_map.o \
		$(BUILD)/obj/relay/relay_audit.o $(BUILD)/obj/relay/relay_events.o \
		$(BUILD)/obj/relay/relay_clock.o \
		$(BUILD)/obj/relay/relay_log.o $(BUILD)/obj/relay/relay_alloc.o \
		$(LIBCODEC) $(LIBPROTO)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS_ALL) $(shell pkg-config --libs cmocka)

$(BUILD)/tests/test_relay_config: $(BUILD)/obj/tests/unit/test_relay_config.o \
		$(BUILD)/obj/relay/relay_config.o $(BUILD)/obj/relay/relay_hist.o \
		$(BUILD)/obj/relay/relay_log.o $(BUILD)/obj/relay/relay_alloc.o \
		$(LIBPROTO)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS_ALL) $(shell pkg-config --libs cmocka)

# libFuzzer drivers: always clang, always with ASan + UBSan.
FUZZ_FLAGS = -std=c11 -D_GNU_SOURCE -g -O1 -I. $(WARN) \
	-fsanitize=fuzzer,address,undefined $(shell pkg-config --cflags $(PKGS))
build/fuzz/%: tests/fuzz/%.c $(PROTO_SRC) $(CODEC_SRC)
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_FLAGS) -o $@ $< $(PROTO_SRC) $(CODEC_SRC) $(LDLIBS_ALL)
# fuzz_relay drives the relay itself: every relay module but main.
FUZZ_RELAY_SRC := $(filter-out relay/relay_main.c,$(RELAY_SRC))
build/fuzz/fuzz_relay: tests/fuzz/fuzz_relay.c $(FUZZ_RELAY_SRC) $(PROTO_SRC) \
		$(CODEC_SRC)
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_FLAGS) -o $@ $^ $(LDLIBS_ALL) $(RELAY_LDLIBS)
fuzz: $(FUZZ)

# Each driver replays its committed corpus, then fuzzes for FUZZ_SECONDS.
FUZZ_SECONDS ?= 20
fuzz-run: $(FUZZ)
	@sh tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ)

# The sub-makes build on every core.
JOBS := -j$(shell nproc 2>/dev/null || echo 2)

run: deps
	@$(MAKE) --no-print-directory $(JOBS) all
	@sh tools/run-demo.sh $(BUILD)

.PHONY: cluster
cluster: deps
	@$(MAKE) --no-print-directory $(JOBS) all
	@sh tools/run-cluster.sh $(BUILD)

test: deps
	@$(MAKE) --no-print-directory $(JOBS) SAN=1 all
	@$(MAKE) --no-print-directory $(JOBS) fuzz
	@sh tests/run.sh build/san

# Churn and soak against the sanitizer build (tests/soak/soak.mjs).
SOAK_MINUTES ?= 30
soak: deps
	@$(MAKE) --no-print-directory $(JOBS) SAN=1 all
	@test -d tests/node_modules || npm ci --prefix tests
	@node tests/soak/soak.mjs --build build/san --seconds $$(( $(SOAK_MINUTES) * 60 ))

bench: deps
	@$(MAKE) --no-print-directory $(JOBS) all
	@sh bench/run.sh $(BUILD)

clean:
	rm -rf build

# FHS paths.  With PREFIX=/usr the configuration goes to /etc and the
# unit to /usr/lib/systemd/system, as Debian's packages do.  An existing
# configuration file is never overwritten.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share/asp-relay
MANDIR ?= $(PREFIX)/share/man
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
UNITDIR ?= $(PREFIX)/lib/systemd/system
STATEDIR ?= /var/lib/asp-relay
INSTALL ?= install
INSTALLED_TOOLS := asp-host asp-view asp-admin
MAN1 := $(INSTALLED_TOOLS:%=dist/man/%.1)
SUBST = sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@DATADIR@|$(DATADIR)|g' \
	-e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' -e 's|@STATEDIR@|$(STATEDIR)|g' \
	-e 's|@VERSION@|$(VERSION)|g'

install: $(BUILD)/asp-relay $(INSTALLED_TOOLS:%=$(BUILD)/%)
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR)/www \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(SYSCONFDIR)/asp-relay $(DESTDIR)$(UNITDIR)
	$(INSTALL) -m 755 $(BUILD)/asp-relay $(INSTALLED_TOOLS:%=$(BUILD)/%) \
		$(DESTDIR)$(BINDIR)
	$(INSTALL) -m 644 relay/www/* $(DESTDIR)$(DATADIR)/www
	$(INSTALL) -m 644 $(MAN1) $(DESTDIR)$(MANDIR)/man1
	$(INSTALL) -m 644 dist/man/asp-relay.8 $(DESTDIR)$(MANDIR)/man8
	$(SUBST) dist/asp-relay.service.in >$(DESTDIR)$(UNITDIR)/asp-relay.service
	chmod 644 $(DESTDIR)$(UNITDIR)/asp-relay.service
	@conf=$(DESTDIR)$(SYSCONFDIR)/asp-relay/asp-relay.conf; \
	if [ -e "$$conf" ]; then echo "keeping $$conf"; else \
		$(SUBST) dist/asp-relay.conf.in >"$$conf" && chmod 644 "$$conf"; fi

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/asp-relay $(INSTALLED_TOOLS:%=$(DESTDIR)$(BINDIR)/%)
	rm -rf $(DESTDIR)$(DATADIR)
	rm -f $(INSTALLED_TOOLS:%=$(DESTDIR)$(MANDIR)/man1/%.1) \
		$(DESTDIR)$(MANDIR)/man8/asp-relay.8
	rm -f $(DESTDIR)$(UNITDIR)/asp-relay.service
	@echo "left $(DESTDIR)$(SYSCONFDIR)/asp-relay and $(STATEDIR): your settings and data"

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
