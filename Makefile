# Two commands on a fresh machine: `make demo` and `make test`.
# Both create .venv, install everything and build the extension gandyn._C
# (CPU kernels always; CUDA kernels when torch is a CUDA build and nvcc is
# found — GANDYN_CUDA=0/1 forces either way).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEPS := $(VENV)/.deps

.PHONY: build test demo figures bench device-check clean

$(DEPS): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q -U pip wheel "setuptools>=68"
	# torch first: the extension's build (no build isolation) imports it.
	$(BIN)/pip install -q torch torchvision ninja
	# The package, its dependencies and the `gandyn` script; the extension is built below.
	GANDYN_NO_EXT=1 $(BIN)/pip install -q --no-build-isolation -e '.[dev]'
	touch $@

# Incremental (ninja) in-place build; flock keeps concurrent builds apart.
build: $(DEPS)
	flock build.lock $(BIN)/python setup.py -q build_ext --inplace

test: build
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

demo: build
	$(BIN)/gandyn demo --out runs/demo --figures figures

figures: build
	$(BIN)/gandyn figures

bench: build
	$(BIN)/gandyn bench

# On a machine with a GPU and torch already installed, offline (the lent device):
# build in place with that torch, run the CUDA tests, again under compute-sanitizer,
# and the benchmarks. Every stage runs even if one before failed; the outputs land in
# device-check/ (record the numbers in BENCHMARKS.md).
device-check: SHELL := /bin/bash -o pipefail
device-check:
	GANDYN_CUDA=1 $(PY) setup.py -q build_ext --inplace
	mkdir -p device-check
	-nvidia-smi > device-check/nvidia-smi.txt
	-$(PY) -m pytest -q -p no:cacheprovider -m cuda tests 2>&1 | tee device-check/pytest-cuda.txt
	-compute-sanitizer --tool memcheck --error-exitcode 1 $(PY) -m pytest -q -p no:cacheprovider -m cuda \
		tests/ops 2>&1 | tee device-check/memcheck.txt
	-$(PY) -m gandyn.cli bench --json device-check/bench.json 2>&1 | tee device-check/bench.txt

clean:
	rm -rf build *.egg-info gandyn/_C*.so
