# Thin wrapper over CMake (SPEC §13). `make` builds build/sealgated and build/sealgate;
# `make check` runs every test (normal build, then ASan+UBSan build, fuzz smoke);
# `make run` starts the gateway on its embedded defaults.
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps build check check-fast run clean bench

all: build

deps:
	@./scripts/install-deps

build:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

check: deps
	@./scripts/check

check-fast: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -L unit

# `make run` builds only the two programs (not every test), then starts.
run: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) --target sealgated sealgate
	@./scripts/run

bench: deps build
	@./bench/run-all

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
