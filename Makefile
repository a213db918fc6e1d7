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
# make image / make test-deploy (deploy/, issue 21), installed by deploy-deps only: buildah and debootstrap
# build the image without a registry, dockerd runs it, systemd-analyze checks the units, the Debian Python
# packages check the YAML (python3-kubernetes: the API's field names and types), docker-compose the compose file
DEPLOY_PACKAGES := buildah debootstrap docker.io skopeo systemd python3-yaml python3-kubernetes docker-compose \
	openssl apache2-utils curl jq iproute2 util-linux

BUILD := build
BUILD_ASAN := build-asan
BUILD_FUZZ := build-fuzz
PLURA_BIN := $(BUILD)/tools/plura
MESON_FLAGS := $(if $(CI),--werror,)
FUZZ_SECONDS ?= 10

.PHONY: run test deps bench-deps build build-asan build-fuzz unit fuzz clean bench deploy-deps image test-deploy

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		SUDO=$$( [ $$(id -u) -eq 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

deploy-deps: deps
	@missing=$$(for p in $(DEPLOY_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then SUDO=$$( [ $$(id -u) -eq 0 ] || echo sudo ); echo "installing: $$missing"; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; fi

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

# ---- the container image, from git (deploy/Dockerfile): the OCI labels come from here.
#   make image                                  buildah, base: the Dockerfile's pinned default
#   make image BASE_IMAGE=localhost/plura-base@sha256:...   a base made by tools/make-debian-base.sh
# Tag: VERSION_<commit> (an immutable release tag of plura's own policy); with uncommitted changes
# VERSION-dirty.<time>_<commit>, and the revision label says -dirty. Never latest.
IMAGE ?= localhost/plura
BUILDAH ?= buildah
BASE_IMAGE ?=
# empty: computed from git in the recipe (once: the time in a dirty tag is the build's)
IMAGE_TAG ?=
IMAGE_SOURCE ?=
RELEASE_ID ?=
BUILD_ID ?=
# IMAGE_REF_FILE=FILE: also write the image reference there (make test-deploy reads it)
IMAGE_REF_FILE ?=
# JOBS=N: ninja -jN in the build stage (default: ninja's, the number of CPUs + 2)
JOBS ?=

image:
	@command -v $(firstword $(BUILDAH)) >/dev/null || { echo "make image needs buildah (make deploy-deps installs it)"; exit 1; }
	@set -e; \
	commit=$$(git rev-parse HEAD) || { echo "make image labels the image from git: run it in plura's git checkout"; exit 1; }; \
	version=$$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" meson.build | head -n1); \
	now=$$(date -u +%Y-%m-%dT%H:%M:%SZ); dirty=; \
	[ -z "$$(git status --porcelain)" ] || dirty=-dirty; \
	tag='$(IMAGE_TAG)'; [ -n "$$tag" ] || \
		tag=$$version$${dirty:+-dirty.$$(date -u -d "$$now" +%Y%m%d%H%M%S)}_$$(git rev-parse --short=12 HEAD); \
	source='$(IMAGE_SOURCE)'; [ -n "$$source" ] || source=$$(git remote get-url origin 2>/dev/null) || source=file://$(CURDIR); \
	release='$(RELEASE_ID)'; build_id='$(BUILD_ID)'; \
	base='$(BASE_IMAGE)'; base_args=(); \
	[ -z "$$base" ] || base_args=(--build-arg "BASE_IMAGE=$$base" --build-arg "BASE_NAME=$${base%@*}" --build-arg "BASE_DIGEST=$${base#*@}"); \
	set -x; \
	$(BUILDAH) build --isolation chroot --format docker --pull=false "$${base_args[@]}" $(if $(JOBS),--build-arg JOBS=$(JOBS)) \
		--build-arg VERSION=$$version --build-arg REVISION=$$commit$$dirty --build-arg CREATED=$$now \
		--build-arg SOURCE=$$source --build-arg RELEASE_ID=$${release:-$$version} \
		--build-arg BUILD_ID=$${build_id:-local-$$(date -u -d "$$now" +%Y%m%dT%H%M%SZ)} \
		-f deploy/Dockerfile -t $(IMAGE):$$tag .; \
	{ set +x; } 2>/dev/null; \
	echo "image: $(IMAGE):$$tag"; \
	$(if $(IMAGE_REF_FILE),echo "$(IMAGE):$$tag" >$(IMAGE_REF_FILE);) :

# ---- the deployment files as shipped, built and run (tests/deploy/test-deploy.sh says what it checks).
# Runs after `make test` in .ci/run. The debootstrap base (and buildah's storage with it) is cached in
# DEPLOY_CACHE between runs (a clean machine builds everything: see the script).
DEPLOY_CACHE ?= /var/cache/plura-test-deploy
test-deploy:
	@t0=$$(date +%s); rc=0; \
	$(MAKE) --no-print-directory deploy-deps build || { echo "make test-deploy: set-up failed"; echo "0 passed, 1 failed"; exit 1; }; \
	PLURA=$(CURDIR)/$(PLURA_BIN) PLURA_SOURCE_ROOT=$(CURDIR) PLURA_DEPLOY_CACHE=$(DEPLOY_CACHE) \
		tests/deploy/test-deploy.sh | tee $(BUILD)/test-deploy.log; rc=$${PIPESTATUS[0]}; \
	n=$$(grep -c '^ok - ' $(BUILD)/test-deploy.log); f=$$(grep -c '^not ok - ' $(BUILD)/test-deploy.log); \
	[ $$rc = 0 ] || [ $$f -gt 0 ] || f=1; \
	echo "== make test-deploy: $$(( $$(date +%s) - t0 )) s"; \
	echo "$$n passed, $$f failed"; \
	exit $$rc
