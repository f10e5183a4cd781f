# tasklease: the front door. `make deps build test e2e bench lint` (DESIGN.md §8).
# Every target that needs packages depends on `deps`, which is idempotent and quick when
# everything is present.

BUILD_DIR   ?= build
BUILD_TYPE  ?= RelWithDebInfo
WERROR      ?= OFF
JOBS        ?= 2
PYTHON      := /usr/bin/python3
CTEST_ARGS  ?=
PYTEST_ARGS ?=
SAN_DIR     ?= build-asan
# Sanitizers for the main build (CI: address,undefined), e.g. `make test SANITIZE=address`.
SANITIZE    ?=
SANITIZE_FLAGS ?=

export PATH := $(CURDIR)/.tools/bin:$(PATH)

FUZZ_DIR    ?= build-fuzz
FUZZ_SECONDS ?= 60

# The real control plane (DESIGN.md §7-§8, docs/kubesim.md): where `make cluster-up` keeps its
# state, logs and kubeconfig.
CLUSTER_DIR ?= .cluster

.PHONY: all deps configure build test unit e2e e2e-real bench demo demo-up demo-real image image-demo lint format sanitize fuzz clean cluster-up cluster-down

all: build

deps:
	@scripts/deps.sh

configure: deps
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
	  -DTASKLEASE_WERROR=$(WERROR) -DTASKLEASE_SANITIZE=$(SANITIZE) \
	  -DTASKLEASE_SANITIZE_FLAGS="$(SANITIZE_FLAGS)" >/dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j$(JOBS)

# Every suite: C++ (ctest) then end-to-end (pytest). Both run and both summaries print even
# when the first fails; the target fails if either did.
test: build
	@scripts/run-tests.sh $(BUILD_DIR) "$(CTEST_ARGS)" "$(PYTEST_ARGS)"

unit: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j$(JOBS) $(CTEST_ARGS)

e2e: build
	@cd e2e && $(PYTHON) -m pytest $(PYTEST_ARGS)

# The same suite against the real control plane: started in $(E2E_REAL_DIR) as cluster-up starts
# it, named to the tests by E2E_KUBECONFIG, stopped when they end (docs/kubesim.md).
E2E_REAL_DIR ?= $(BUILD_DIR)/e2e-real-cluster
e2e-real: build
	@ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  TASKLEASE_BUILD_DIR=$(abspath $(BUILD_DIR)) \
	  $(PYTHON) e2e/realcluster.py run $(E2E_REAL_DIR) --cwd e2e -- $(PYTHON) -m pytest $(PYTEST_ARGS)

# The real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, KWOK with one node) in the background; returns once the API serves and the
# node is Ready. $(CLUSTER_DIR)/kubeconfig is cluster-admin.
cluster-up: deps
	@$(PYTHON) e2e/realcluster.py up $(CLUSTER_DIR)

# Stops every process cluster-up started from $(CLUSTER_DIR).
cluster-down:
	@$(PYTHON) e2e/realcluster.py down $(CLUSTER_DIR)

# AddressSanitizer + UndefinedBehaviorSanitizer build of every C++ test.
sanitize: deps
	@cmake -S . -B $(SAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DTASKLEASE_WERROR=$(WERROR) \
	  -DTASKLEASE_SANITIZE=address,undefined >/dev/null
	@cmake --build $(SAN_DIR) -j$(JOBS)
	@cd $(SAN_DIR) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j$(JOBS) $(CTEST_ARGS)

# libFuzzer over the webhook's AdmissionReview decoder and rules (clang), for FUZZ_SECONDS.
fuzz: deps
	@CXX=clang++ cmake -S . -B $(FUZZ_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DTASKLEASE_FUZZ=ON >/dev/null
	@cmake --build $(FUZZ_DIR) -j$(JOBS) --target webhook_review_fuzzer
	@mkdir -p $(FUZZ_DIR)/corpus
	@$(FUZZ_DIR)/bin/webhook_review_fuzzer -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 \
	  -max_len=65536 -print_final_stats=1 $(FUZZ_DIR)/corpus webhook/fuzz/corpus \
	  > $(FUZZ_DIR)/fuzz.log 2>&1; rc=$$?; tail -15 $(FUZZ_DIR)/fuzz.log; exit $$rc

bench: build
	@scripts/run-bench.sh $(BUILD_DIR)

# The whole system against kubesim, told as a story; stops everything it started.
demo: build
	@$(PYTHON) scripts/demo.py --build $(BUILD_DIR)

# The same control plane, kept running until Ctrl-C; prints how to point kubectl at it.
demo-up: build
	@$(PYTHON) scripts/demo.py --build $(BUILD_DIR) --up

# The same story on the real control plane (`make deps` builds it), the chart installed by helm.
demo-real: build
	@$(PYTHON) scripts/demo.py --build $(BUILD_DIR) --real

# The container image from the Dockerfile: docker when an engine runs, else buildah (daemonless,
# base images from Debian's archive when no registry is reachable); checked and saved as a tarball.
image:
	@scripts/image.sh $(IMAGE)

# `make demo` with the webhook and operator of that image (its filesystem, its libraries).
image-demo: build
	@$(PYTHON) scripts/image_demo.py --build $(BUILD_DIR)

lint: configure
	@scripts/lint.sh $(BUILD_DIR)

format:
	@git ls-files '*.cpp' '*.h' | xargs -r clang-format -i

clean:
	rm -rf $(BUILD_DIR) $(SAN_DIR) $(FUZZ_DIR)
