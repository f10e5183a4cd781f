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

export PATH := $(CURDIR)/.tools/bin:$(PATH)

.PHONY: all deps configure build test unit e2e bench lint format sanitize clean

all: build

deps:
	@scripts/deps.sh

configure: deps
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
	  -DTASKLEASE_WERROR=$(WERROR) >/dev/null

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

# AddressSanitizer + UndefinedBehaviorSanitizer build of every C++ test.
sanitize: deps
	@cmake -S . -B $(SAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DTASKLEASE_WERROR=$(WERROR) \
	  -DTASKLEASE_SANITIZE=address,undefined >/dev/null
	@cmake --build $(SAN_DIR) -j$(JOBS)
	@cd $(SAN_DIR) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j$(JOBS) $(CTEST_ARGS)

bench: build
	@scripts/run-bench.sh $(BUILD_DIR)

lint: configure
	@scripts/lint.sh $(BUILD_DIR)

format:
	@git ls-files '*.cpp' '*.h' | xargs -r clang-format -i

clean:
	rm -rf $(BUILD_DIR) $(SAN_DIR)
