# qemu-fph top-level Makefile: builds the configured base and runs our
# checks.  Run ./configure first.

-include build/config.mk

# The system's Python and meson, whatever comes first on the caller's PATH.
export PATH := /usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin:$(PATH)
# ccache hits across clones: paths under the repository are rewritten to
# relative ones and the build folder's name is not hashed.
export CCACHE_BASEDIR := $(TOP)
export CCACHE_NOHASHDIR := 1
PYTHON := /usr/bin/python3
NINJA := ninja
QEMU_BUILD := $(BUILD)/qemu
QEMU := $(QEMU_BUILD)/qemu-system-x86_64

.PHONY: all qemu prepare check lint unit-tests demo soak bench help clean \
	distclean check-series fuzz fuzz-build inflate-bench install uninstall \
	deb libvirt-demo prove-rearm

all: qemu

help:
	@echo "make            build $(or $(QEMU),build/qemu/qemu-system-x86_64)"
	@echo "make check      lint, unit tests, qtests, guest end-to-end; one summary"
	@echo "make lint       checkpatch.pl on our files and patches"
	@echo "make fuzz       every fuzzer, FUZZ_SECONDS (600) each"
	@echo "make check-series  build every prefix of patches/series"
	@echo "make prove-rearm   fph-kvm-dirty-test against a build without the re-arm (KVM)"
	@echo "make demo       the main job: migrate real guests, print results"
	@echo "make soak       20 migrations of the stock guest with stock hints"
	@echo "make soak SOAK_MODE=fph-churn  20 runs of the qemu-fph guest under churn"
	@echo "make bench      the benchmark matrix, results into docs/"
	@echo "make bench BENCH_SCENARIOS=ballooned  that scenario only"
	@echo "make bench BENCH_SIZES=1024 BENCH_REPS=1  one size, one run each"
	@echo "make bench BENCH_BIG_SIZES=  without the 16 and 64 GiB guests"
	@echo "make inflate-bench  balloon inflate, stock against bulk, into docs/"
	@echo "make install    install as PREFIX/bin/qemu-fph-system-x86_64 (PREFIX=$(PREFIX), DESTDIR=)"
	@echo "make uninstall  remove what make install installed"
	@echo "make deb        the Debian package qemu-fph-system-x86, into build/deb/"
	@echo "make libvirt-demo  virsh save, restore and migrate --live of the installed package"
	@echo "make distclean  remove build/ (the fetched base included)"

# The libFuzzer targets (docs/fuzzing.rst): our pure files and the
# balloon's queue handler built with clang, without the QEMU tree, so they
# need no ./configure.
FUZZ_SECONDS ?= 600
FUZZ_DIR := build/fuzz
FUZZ_CC := clang
FUZZ_CFLAGS := -g -O1 -std=gnu11 -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined -Wall -Wextra -Wno-unused-parameter \
	-Werror
FUZZ_INC := -Itests/fph-unit/fake-qemu -Iinclude -Imigration
FUZZ_HEADERS := $(wildcard tests/fuzz/*.h tests/fuzz/fake-qemu/*.h \
	tests/fuzz/fake-qemu/*/*.h tests/fuzz/fake-qemu/*/*/*.h \
	tests/fph-unit/fake-qemu/qemu/*.h include/*/*/*.h include/*/*.h \
	migration/*.h)
FUZZ_PURE := hw/virtio/free-page-bitmap.c migration/guest-ram-map.c

fuzz-build: $(FUZZ_DIR)/fuzz-free-page-bitmap $(FUZZ_DIR)/fuzz-balloon-queue \
	$(FUZZ_DIR)/fuzz-bulk-balloon

$(FUZZ_DIR)/fuzz-free-page-bitmap: tests/fuzz/fuzz-free-page-bitmap.c \
		$(FUZZ_PURE) $(FUZZ_HEADERS)
	@mkdir -p $(FUZZ_DIR)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_INC) -o $@ $< $(FUZZ_PURE)

$(FUZZ_DIR)/fuzz-bulk-balloon: tests/fuzz/fuzz-bulk-balloon.c \
		hw/virtio/bulk-balloon.c $(FUZZ_HEADERS)
	@mkdir -p $(FUZZ_DIR)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_INC) -o $@ $< hw/virtio/bulk-balloon.c

# The device's file against the stand-ins of tests/fuzz/fake-qemu
$(FUZZ_DIR)/fuzz-balloon-queue: tests/fuzz/fuzz-balloon-queue.c \
		hw/virtio/virtio-balloon-fpb.c $(FUZZ_PURE) $(FUZZ_HEADERS)
	@mkdir -p $(FUZZ_DIR)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Itests/fuzz/fake-qemu $(FUZZ_INC) \
	    $$(pkg-config --cflags glib-2.0) -o $@ $< \
	    hw/virtio/virtio-balloon-fpb.c $(FUZZ_PURE) \
	    $$(pkg-config --libs glib-2.0)

fuzz: fuzz-build
	@$(PYTHON) scripts/run-fuzz.py --seconds $(FUZZ_SECONDS)

# make install: PREFIX/lib/qemu-fph holds the binary and links to Debian's
# firmware, PREFIX/bin/qemu-fph-system-x86_64 links to it
# (scripts/install.sh says why not PREFIX/bin/qemu-system-x86_64).
PREFIX ?= /usr/local
DESTDIR ?=

ifeq ($(BUILD),)
qemu prepare check lint unit-tests demo soak bench check-series \
inflate-bench install deb libvirt-demo prove-rearm:
	@echo "Run ./configure first (see README.md)." >&2; exit 1
else

# Cheap and idempotent: new or removed files of ours and changed patches
# reach the base tree on every make.
prepare:
	@scripts/overlay.sh $(TOP) $(BUILD)/src
	@scripts/apply-patches.sh $(TOP) $(BUILD)

qemu: prepare
	$(NINJA) -C $(QEMU_BUILD) qemu-system-x86_64
	@scripts/link-firmware.sh $(QEMU_BUILD)/qemu-bundle
	@ln -sfn qemu/qemu-system-x86_64 $(BUILD)/qemu-system-x86_64

unit-tests:
	@[ -f $(BUILD)/unit/build.ninja ] || \
	    meson setup $(BUILD)/unit $(TOP) >/dev/null
	$(NINJA) -C $(BUILD)/unit

lint: prepare
	@$(PYTHON) scripts/run-checks.py --only lint

# Every prefix of the series builds (slow; not part of make check)
check-series: prepare
	@scripts/check-series.sh $(TOP) $(BUILD)

prove-rearm: prepare
	@scripts/prove-rearm.sh $(PROVE_RUNS)

check: qemu unit-tests fuzz-build
	@$(PYTHON) scripts/run-checks.py

demo: qemu
	@$(PYTHON) scripts/demo.py

# 20 migrations of the stock guest with stock hinting; SOAK_MODE=fph-churn:
# 20 runs of the qemu-fph guest under churn, with cancels and ping-pong (see
# the soak script)
SOAK_MODE ?= stock
soak: qemu
	@$(PYTHON) scripts/soak.py --mode $(SOAK_MODE)

# The full matrix (both links, big idle guests); regenerates docs/benchmark.*.
# BENCH_SCENARIOS=ballooned (comma-separated) runs only those scenarios and
# replaces only their runs; BENCH_SIZES=1024 (MiB, comma-separated) and
# BENCH_REPS=1 narrow it more; BENCH_BIG_SIZES= (empty) leaves out the big
# idle guests, 16384,65536 by default.
BENCH_SCENARIOS ?=
BENCH_SIZES ?=
BENCH_BIG_SIZES ?= 16384,65536
BENCH_REPS ?=
bench: qemu
	@$(PYTHON) scripts/bench.py \
	    $(if $(BENCH_SCENARIOS),--scenarios $(BENCH_SCENARIOS)) \
	    $(if $(BENCH_SIZES),--sizes $(BENCH_SIZES)) \
	    --big-sizes '$(BENCH_BIG_SIZES)' \
	    $(if $(BENCH_REPS),--reps $(BENCH_REPS))

# Balloon inflate speed, stock protocol against bulk messages; writes its
# section of docs/benchmark.md
inflate-bench: qemu
	@$(PYTHON) scripts/inflate-speed.py

install: qemu
	@scripts/install.sh install $(QEMU) "$(DESTDIR)" "$(PREFIX)"

deb: qemu
	@scripts/make-deb.sh $(TOP) $(BUILD)

# Installs the .deb for its run (and Debian's libvirt when missing)
libvirt-demo: qemu
	@$(PYTHON) scripts/libvirt-demo.py

endif

uninstall:
	@scripts/install.sh uninstall "$(DESTDIR)" "$(PREFIX)"

clean:
	[ ! -d build/qemu ] || $(NINJA) -C build/qemu clean
	rm -rf build/unit build/fuzz/fuzz-*

distclean:
	rm -rf build
