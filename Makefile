# Thin wrapper over CMake presets. The two commands a newcomer needs:
#   make demo    install deps, build, run the main job on the embedded example
#   make check   install deps, build, run the whole test suite
.PHONY: all deps build check demo bench fuzz asan sanitize completions clean

JOBS ?= $(shell nproc)

all: build

deps:
	@scripts/install-deps

build: deps
	@cmake --preset default >/dev/null
	@cmake --build --preset default -j $(JOBS)

# The whole suite, then the sanitizer tier (ASan + UBSan build: every ctest tier, every
# fuzz target 30 s with a fixed seed).
check: build
	@ctest --preset default -j $(JOBS)
	@JOBS=$(JOBS) FUZZ_SECONDS=30 scripts/check-sanitizers

demo: build
	@scripts/demo

# Benchmarks are commands, never timed tests: medians of alternating runs against a peer or floor.
bench: build
	@tests/bench/run-all

# libFuzzer targets, each run for FUZZ_SECONDS (default 60).
FUZZ_SECONDS ?= 60
fuzz: deps
	@tests/fuzz/run $(FUZZ_SECONDS)

# ASan + UBSan build running the unit and CLI suites.
asan: deps
	@cmake --preset asan >/dev/null
	@cmake --build --preset asan -j $(JOBS)
	@ctest --preset asan -j $(JOBS)

# The sanitizer tier alone (also the end of check): one clang ASan + UBSan build runs every
# ctest tier (interop with real peers; bpf and netns as root) with EDGE_SLOW=3 scaling the
# tests' timing bounds, then every fuzz target for FUZZ_SECONDS (30 here).
sanitize: deps
	@FUZZ_SECONDS=$(or $(FUZZ_SECONDS),30) scripts/check-sanitizers

# Regenerate completions/ from the CLI definitions (a test fails when they are stale).
completions: build
	@scripts/gen-completions

clean:
	rm -rf build build-asan build-fuzz
