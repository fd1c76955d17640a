"""Sphinx configuration of the API reference: `make docs` renders the
docstrings of the public classes and functions to Markdown in `docs/api/`,
which is committed, so that it reads without building; `make docs-check`
(run by CI) fails when it is stale."""

import inspect
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

project = "keras-auxloss"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx_markdown_builder"]
root_doc = "index"
exclude_patterns = []
default_role = "literal"  # Docstrings write `code` in single backquotes.
smartquotes = False
autodoc_member_order = "bysource"
autodoc_typehints = "none"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_custom_sections = [
    ("Call arguments", "params_style"),
    ("Output shape", "notes_style"),
    ("Masking", "notes_style"),
    ("Reference", "notes_style"),
]


def _init_signature(app, what, name, obj, options, signature, return_annotation):
    """Keras layers define `__new__(cls, *args, **kwargs)`: show `__init__`'s."""
    if what == "class" and signature == "(*args, **kwargs)":
        parameters = list(inspect.signature(obj.__init__).parameters.values())[1:]
        return str(inspect.Signature(parameters)), return_annotation
    return None


def setup(app):
    app.connect("autodoc-process-signature", _init_signature)
