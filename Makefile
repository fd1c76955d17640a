# The README's two commands: `make demo` and `make test`. Both create the
# virtual environment in .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: demo test lint format benchmark clean

$(BIN)/activate: setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

demo: $(BIN)/activate
	$(BIN)/python examples/demo.py

test: $(BIN)/activate
	$(BIN)/python -m pytest -q tests

lint: $(BIN)/activate
	$(BIN)/ruff check keras_auxloss examples benchmarks tests
	$(BIN)/ruff format --check keras_auxloss examples benchmarks tests

format: $(BIN)/activate
	$(BIN)/ruff format keras_auxloss examples benchmarks tests

benchmark: $(BIN)/activate
	$(BIN)/python benchmarks/train_step.py

clean:
	rm -rf $(VENV) *.egg-info runs
