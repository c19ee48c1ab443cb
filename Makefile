# Thin wrapper over CMake + Ninja. `make` builds build/edgeflag; see README.md for the rest.
BUILD      ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
CMAKE      ?= cmake
JOBS       ?= $(shell nproc)

.PHONY: all build deps test-deps bench-deps run test unit asan tsan compat bench fuzz crash soak clean format demo demo-libsql demo-postgres install deb deploy-real

all: build

deps:
	@scripts/install-deps.sh build

test-deps:
	@scripts/install-deps.sh test

bench-deps:
	@scripts/install-deps.sh bench

$(BUILD)/build.ninja:
	$(CMAKE) -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/build.ninja
	$(CMAKE) --build $(BUILD) -j $(JOBS)

# The binary, libedgeflag (.so.N, .a, header, edgeflag.pc), man pages, the systemd unit, its user and
# an example config, under DESTDIR/PREFIX (scripts/build-install.sh, also the Dockerfile's build).
PREFIX  ?= /usr/local
DESTDIR ?=
install:
	BUILD=$(BUILD) PREFIX=$(PREFIX) DESTDIR=$(DESTDIR) scripts/build-install.sh

# Debian packages edgeflag, libedgeflag0, libedgeflag-dev in build/deb (debhelper, in a copy of the
# tree under build-deb/; lintian checks them). scripts/build-deb.sh.
deb:
	scripts/build-deb.sh build/deb

# The Dockerfile built and run by a real (private) dockerd, and the .deb's systemd unit under a real
# systemd in a systemd-nspawn container: root, the Debian mirror, minutes; not in `make test`.
# scripts/deploy-real.sh, docs/deploy.md "How this page is tested".
deploy-real:
	scripts/deploy-real.sh

run: build
	$(BUILD)/edgeflag serve

# The whole suite: unit tests (plain, ASan+UBSan, TSan) and the compatibility tests against Flipt's engine.
test: test-deps build
	scripts/test.sh

# The integration suites (Flipt clients, hostile input, cluster, JWT, OIDC, UI) against the
# ThreadSanitizer / ASan+UBSan builds, the web UI and edgeflag on libSQL, PostgreSQL and MariaDB
# included, failing on any report (scripts/sanitizer-suites.sh; `make test` runs its quick part
# under TSan). About 8 and 5 minutes.
tsan: test-deps
	scripts/sanitizer-suites.sh tsan all

asan: test-deps
	scripts/sanitizer-suites.sh asan all

bench: bench-deps build
	scripts/bench.sh

# A primary and two replicas ("iad", "dfw", "lhr") on three local ports; a write on one shows on the others.
demo: build
	scripts/demo.sh $(BUILD)/edgeflag

# The libSQL test server and two nodes ("iad", "lhr") on that one database; a change on one shows on the other.
demo-libsql: build
	scripts/demo-libsql.sh $(BUILD)/edgeflag

# A throwaway PostgreSQL and two nodes ("iad", "lhr") on that one database (LISTEN/NOTIFY pick-up).
demo-postgres: build
	scripts/demo-postgres.sh $(BUILD)/edgeflag

# libFuzzer on every trust boundary (tests/fuzz, scripts/fuzz.sh): FUZZ_SECONDS per target, then
# the executions and execs/s of each; FUZZ_TARGETS, FUZZ_JOBS and FUZZ_MERGE=1 as the script says.
FUZZ_SECONDS ?= 60
fuzz: test-deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh

# SIGKILL at scale (tests/crash, scripts/crash.sh): CRASH_CYCLES kills of a primary under write load,
# of a replica under replication load, and of the store alone; prints the counts.
CRASH_CYCLES ?= 1000
crash: build
	BUILD=$(BUILD) CRASH_CYCLES=$(CRASH_CYCLES) scripts/crash.sh

# A mixed load for SOAK_SECONDS (scripts/soak.sh, tests/crash/soak.mjs): RSS, descriptors, errors,
# p99s over time and the history invariants at the end.
SOAK_SECONDS ?= 3600
soak: build
	BUILD=$(BUILD) SOAK_SECONDS=$(SOAK_SECONDS) scripts/soak.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD)
