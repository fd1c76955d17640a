"""The examples in the package's docstrings run and print what they show,
on every backend: `doctest` over every module of `keras_auxloss`, the public
classes' docstrings (their `Args:` written at import) included."""

import doctest
import importlib
import pkgutil

import keras
import numpy as np
import pytest

import keras_auxloss

pytestmark = pytest.mark.any_backend

# `backends/torch.py` and `backends/torch_fused.py` import torch, which only
# `make test-torch` installs: they are read on PyTorch alone.
TORCH_MODULES = ("keras_auxloss.backends.torch", "keras_auxloss.backends.torch_fused")
MODULES = sorted(
    name
    for _, name, _ in pkgutil.walk_packages(keras_auxloss.__path__, "keras_auxloss.")
    if name not in TORCH_MODULES or keras.backend.backend() == "torch"
)
PUBLIC = {name: getattr(keras_auxloss, name) for name in keras_auxloss.__all__}
# What the examples may use without importing it, besides each module's names.
NAMESPACE = {"np": np, "keras": keras}


@pytest.mark.parametrize("name", ["keras_auxloss", *MODULES])
def test_docstring_examples_print_what_they_show(name):
    module = importlib.import_module(name)
    tests = doctest.DocTestFinder().find(module, extraglobs=NAMESPACE)
    runner = doctest.DocTestRunner()
    report = []
    for test in tests:
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)
    # Each public class defined here shows an example, and it ran.
    with_examples = {test.name for test in tests if test.examples}
    for layer_name, layer in PUBLIC.items():
        if layer.__module__ == name:
            assert f"{name}.{layer_name}" in with_examples, layer_name
