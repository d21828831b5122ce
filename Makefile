# Two entry points for a fresh machine (see README):
#   make demo  - set up, build, fetch the default model, generate with it
#   make test  - set up, build (warnings as errors), run the CPU tests (unit + model) and the server tests (pytest)
PRESET ?= cpu
BUILD_DIR = build/$(PRESET)
PROMPT ?= The capital of France is

.PHONY: setup build model demo test test-asan cuda clean

setup:
	scripts/setup

build: setup
	cmake --preset $(PRESET)
	cmake --build --preset $(PRESET) -j$$(nproc)

model:
	scripts/fetch-model

demo: build model
	$(BUILD_DIR)/bin/deltainfer generate --model models/SmolLM2-135M-Instruct.Q4_1.gguf \
	  --prompt "$(PROMPT)" --max-tokens 32 --temperature 0

test: setup model
	cmake --preset ci
	cmake --build --preset ci -j$$(nproc)
	ctest --preset ci -j$$(nproc)
	DELTAINFER_BINARY=build/ci/bin/deltainfer python3 -m pytest tests/server tests/scripts -q

test-asan: setup
	cmake --preset asan
	cmake --build --preset asan -j$$(nproc)
	ctest --preset asan -j$$(nproc)

cuda:
	cmake --preset cuda
	cmake --build --preset cuda -j$$(nproc)

clean:
	rm -rf build
