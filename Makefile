# The README's two commands: `make demo` and `make test`. Both create the
# virtual environment in .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: demo test test-end-to-end test-jax test-torch test-oldest lint format docs docs-check benchmark peers clean

$(BIN)/activate: setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

demo: $(BIN)/activate
	$(BIN)/python -m examples.demo

# The suite on TensorFlow, in two worker processes (pytest-xdist): one
# alone keeps about one core of two busy. The tests that run a script end to
# end (the examples, the benchmark, the distributed workers; marked
# end_to_end) are left to test-end-to-end, which CI runs after it: with them,
# make test took 17 minutes on a two-core AMD EPYC without AVX-512.
test: $(BIN)/activate
	$(BIN)/python -m pytest -q -n 2 -m "not end_to_end" tests

test-end-to-end: $(BIN)/activate
	$(BIN)/python -m pytest -q -n 2 -m end_to_end tests

# On JAX, with two host devices and in processes of their own: the tests
# marked `any_backend` and the JAX-only DataParallel test (CI runs it after
# `make test`; with it in `make test`, that took over 10 minutes).
test-jax: $(BIN)/activate
	XLA_FLAGS=--xla_force_host_platform_device_count=2 KERAS_BACKEND=jax \
		$(BIN)/python -m pytest -q -n 2 -m any_backend tests
	XLA_FLAGS=--xla_force_host_platform_device_count=2 KERAS_BACKEND=jax \
		$(BIN)/python -m pytest -q tests/backends/test_jax_data_parallel.py

# The tests marked any_backend on PyTorch, in a virtual environment of its
# own (.venv-torch), so that `make test` never installs torch. Always the CPU
# build of torch (`+cpu`, from PyTorch's CPU index or a local wheel that pip
# finds): the default index's wheel would pull several GB of CUDA libraries.
# torch comes first, alone (the CPU index is asked for it only); its own
# dependencies come with the package's.
TORCH_VENV := .venv-torch
TORCH_BIN := $(TORCH_VENV)/bin
TORCH := torch==2.13.0+cpu
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu

$(TORCH_BIN)/activate: setup.py
	$(PYTHON) -m venv $(TORCH_VENV)
	$(TORCH_BIN)/pip install --quiet --upgrade pip
	$(TORCH_BIN)/pip install --quiet --no-deps --extra-index-url $(TORCH_INDEX) '$(TORCH)'
	$(TORCH_BIN)/pip install --quiet -e '.[dev]' '$(TORCH)'
	touch $@

test-torch: $(TORCH_BIN)/activate
	KERAS_BACKEND=torch $(TORCH_BIN)/python -m pytest -q -m any_backend tests

# The oldest versions setup.py allows (TensorFlow 2.16, Keras 3.3), pinned in
# requirements/oldest.txt, in a virtual environment of their own: on
# TensorFlow, the tests marked any_backend, then the TensorFlow-only tests of
# the cells' values and gradients, saving and export, masks and streams. A test that needs a newer
# Keras is skipped and says why (pytest -rs).
OLDEST := .venv-oldest
OLDEST_BIN := $(OLDEST)/bin
ANY_BACKEND_TESTS = $(shell grep -rl --include='test_*.py' any_backend tests | sort)
OLDEST_TF_TESTS := tests/test_cells.py tests/test_saving.py tests/test_masking.py \
	tests/test_streams.py

$(OLDEST_BIN)/activate: setup.py requirements/oldest.txt
	$(PYTHON) -m venv $(OLDEST)
	$(OLDEST_BIN)/pip install --quiet --upgrade pip
	$(OLDEST_BIN)/pip install --quiet -c requirements/oldest.txt -e . pytest
	touch $@

test-oldest: $(OLDEST_BIN)/activate
	$(OLDEST_BIN)/python -c 'import keras, tensorflow; print("TensorFlow", tensorflow.__version__, "Keras", keras.version())'
	$(OLDEST_BIN)/python -m pytest -q -rs -m any_backend $(ANY_BACKEND_TESTS)
	$(OLDEST_BIN)/python -m pytest -q -rs -m "not any_backend" $(OLDEST_TF_TESTS)

# The peers that examples/compare.py measures beside the package, into .venv
# (optional, never a dependency): keras-lmu, under its authors' licence, and
# keras-tcn, without its dependencies (it requires tensorflow-macos).
peers: $(BIN)/activate
	$(BIN)/pip install --quiet keras-lmu==0.9.0
	$(BIN)/pip install --quiet --no-deps keras-tcn==3.5.7

lint: $(BIN)/activate
	$(BIN)/ruff check keras_auxloss examples benchmarks research tests docs
	$(BIN)/ruff format --check keras_auxloss examples benchmarks research tests docs

# The API reference: the docstrings rendered to Markdown in docs/api, which
# is committed so that it reads without building. docs-check (CI) fails
# when the committed pages are not what the docstrings give.
docs: $(BIN)/activate
	$(BIN)/pip install --quiet -e '.[docs]'
	$(BIN)/sphinx-build -q -E -W -d build/doctrees -b markdown docs/sphinx docs/api

docs-check: docs
	@git diff --exit-code --stat -- docs/api && test -z "$$(git status --porcelain -- docs/api)" \
		|| { echo "docs/api is stale: run make docs and commit it."; exit 1; }

format: $(BIN)/activate
	$(BIN)/ruff format keras_auxloss examples benchmarks research tests docs

benchmark: $(BIN)/activate
	$(BIN)/python -m benchmarks.train_step

clean:
	rm -rf $(VENV) $(OLDEST) $(TORCH_VENV) *.egg-info runs
