# plura: the two commands of the README's quick start.
#   make run    install what is missing, build, start the registry on 127.0.0.1:5000 (data in ./data)
#   make test   install what is missing, build (plain + ASan/UBSan + fuzzers), run every test suite
SHELL := /bin/bash
.DEFAULT_GOAL := run

DEB_PACKAGES := build-essential libmicrohttpd-dev librocksdb-dev libssl-dev libjansson-dev libzstd-dev \
	libfuse3-dev fuse3 zlib1g-dev libcurl4 meson ninja-build pkg-config clang \
	libclang-rt-14-dev curl skopeo python3 jq e2fsprogs util-linux libcrypt-dev \
	openssl apache2-utils
# native TLS: GnuTLS headers (registry-api/tls.c), openssl for the tests' certificates, the CA store plura reg verifies with
DEB_PACKAGES += libgnutls28-dev openssl ca-certificates
# tests/e2e/test-clients-auth.sh: podman and the docker CLI against dockerd (Debian's packages) logging in to plura over
# TLS; ip (iproute2) shows that dockerd created no interface
DEB_PACKAGES += podman docker.io iproute2
BENCH_PACKAGES := docker-registry wrk hyperfine time bc

BUILD := build
BUILD_ASAN := build-asan
BUILD_FUZZ := build-fuzz
PLURA_BIN := $(BUILD)/tools/plura
MESON_FLAGS := $(if $(CI),--werror,)
FUZZ_SECONDS ?= 10

.PHONY: run test deps bench-deps build build-asan build-fuzz unit fuzz clean bench

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		SUDO=$$( [ $$(id -u) -eq 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

bench-deps: deps
	@missing=$$(for p in $(BENCH_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then SUDO=$$( [ $$(id -u) -eq 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; fi

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(MESON_FLAGS)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

$(BUILD_ASAN)/build.ninja:
	meson setup $(BUILD_ASAN) $(MESON_FLAGS) -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug

build-asan: deps $(BUILD_ASAN)/build.ninja
	ninja -C $(BUILD_ASAN)

$(BUILD_FUZZ)/build.ninja:
	CC=clang meson setup $(BUILD_FUZZ) -Dfuzz=true -Db_lundef=false -Dbuildtype=debugoptimized

build-fuzz: deps $(BUILD_FUZZ)/build.ninja
	ninja -C $(BUILD_FUZZ)

run: build
	mkdir -p data
	./$(PLURA_BIN) serve --listen 127.0.0.1:5000 --data ./data

# Every suite: plain build and the same suites under ASan+UBSan at the same time, then each
# fuzzer for FUZZ_SECONDS. Within a suite the integration and e2e tests run one at a time
# (is_parallel: false) and mostly wait (fsync, process start-up, HTTP round trips): one suite
# after the other used 0.6 of two cores. The ASan suite's output follows the plain suite's.
test: build build-asan build-fuzz
	@./$(PLURA_BIN) serve --help >/dev/null  # the binary `make run` starts
	@rc=0; \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		meson test -C $(BUILD_ASAN) --print-errorlogs --num-processes 2 --suite unit --suite integration --suite e2e \
		>$(BUILD_ASAN)/meson-logs/make-test.txt 2>&1 & asan=$$!; \
	meson test -C $(BUILD) --print-errorlogs --num-processes 2 || rc=1; \
	wait $$asan || rc=1; \
	echo "== the same suites under ASan+UBSan ($(BUILD_ASAN))"; cat $(BUILD_ASAN)/meson-logs/make-test.txt; \
	tools/run-fuzzers.sh $(BUILD_FUZZ) $(FUZZ_SECONDS) || rc=1; \
	tools/test-summary.sh $(BUILD)/meson-logs/testlog.json $(BUILD_ASAN)/meson-logs/testlog.json $(BUILD_FUZZ)/fuzz-results.json; \
	exit $$rc

bench: bench-deps build
	tools/bench/run-all.sh

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ)
