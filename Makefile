# asp-relay: one plain GNU Makefile.
#
#   make            build everything into build/
#   make SAN=1      the same with AddressSanitizer + UBSan, into build/san/
#   make run        install what is missing, build, start the relay
#   make test       install what is missing, build with sanitizers, run
#                   every test (unit, fuzz replay + short fuzz, end to end)
#   make fuzz       build the libFuzzer drivers with clang
#   make bench      run the benchmark suite (bench/README.md)
#   make soak       churn and soak the relay for SOAK_MINUTES (default 30)

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
	opus sqlite3 jansson
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

.PHONY: all deps run test unit e2e fuzz fuzz-run bench soak clean
all: $(RELAY_BIN) $(TOOLS) $(BENCH) $(UNIT)

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

# The relay serves its web page from the source tree it was built from.
$(BUILD)/obj/relay/relay_main.o: ALL_CFLAGS += -DASP_WEB_DIR='"$(CURDIR)/relay/www"'

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
		$(BUILD)/obj/relay/relay_store_sqlite.o \
		$(BUILD)/obj/relay/relay_alloc.o $(LIBCODEC) $(LIBPROTO)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS_ALL) $(shell pkg-config --libs cmocka)

# libFuzzer drivers: always clang, always with ASan + UBSan.
FUZZ_FLAGS = -std=c11 -D_GNU_SOURCE -g -O1 -I. $(WARN) \
	-fsanitize=fuzzer,address,undefined $(shell pkg-config --cflags $(PKGS))
build/fuzz/%: tests/fuzz/%.c $(PROTO_SRC) $(CODEC_SRC)
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_FLAGS) -o $@ $< $(PROTO_SRC) $(CODEC_SRC) $(LDLIBS_ALL)
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

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
