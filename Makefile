# Two commands on a fresh machine: `make demo` and `make test`.
# Both create .venv, install everything and build the extension gandyn._C
# (CPU kernels always; CUDA kernels when torch is a CUDA build and nvcc is
# found — GANDYN_CUDA=0/1 forces either way).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEPS := $(VENV)/.deps

.PHONY: build test demo figures bench clean

$(DEPS): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q -U pip wheel "setuptools>=68"
	# torch first: the extension's build (no build isolation) imports it.
	$(BIN)/pip install -q torch ninja
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

clean:
	rm -rf build *.egg-info gandyn/_C*.so
