# The README's two commands: `make demo` and `make test`. Both create the
# virtual environment in .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: demo test test-torch lint format benchmark clean

$(BIN)/activate: setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

demo: $(BIN)/activate
	$(BIN)/python examples/demo.py

# The whole suite on TensorFlow, then the core tests (tests/backends) on JAX
# with two host devices, in a process of its own.
test: $(BIN)/activate
	$(BIN)/python -m pytest -q tests
	XLA_FLAGS=--xla_force_host_platform_device_count=2 KERAS_BACKEND=jax \
		$(BIN)/python -m pytest -q tests/backends

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

lint: $(BIN)/activate
	$(BIN)/ruff check keras_auxloss examples benchmarks tests
	$(BIN)/ruff format --check keras_auxloss examples benchmarks tests

format: $(BIN)/activate
	$(BIN)/ruff format keras_auxloss examples benchmarks tests

benchmark: $(BIN)/activate
	$(BIN)/python benchmarks/train_step.py
	KERAS_BACKEND=jax $(BIN)/python benchmarks/train_step.py --output_dir=benchmarks/results_jax

clean:
	rm -rf $(VENV) $(TORCH_VENV) *.egg-info runs
