"""What `help()` shows of the layers: the `Args:` sections of their
docstrings, made from the table of arguments (`arguments.ARGUMENTS`), and
the sections that every layer's docstring shares."""

import inspect
import textwrap

from keras_auxloss.arguments import ARGUMENTS

# Sections shared by the layers' docstrings, filled in by `documented`.
CALL_ARGUMENTS = """\
inputs: Token ids `(batch, time)` when `vocab_size` is set (float
    tensors are cast to int32, as `keras.layers.Embedding` does,
    since a Sequential model without an `Input` hands its layers
    floats), else floats `(batch, time, features)`.
mask: Optional boolean `(batch, time)` (or `(batch, time, 1)`)
    tensor marking the valid steps, as `keras.layers.RNN` takes it;
    usually passed on by an upstream layer.
training: Bool. Only in training are anchors drawn, the auxiliary
    loss added and gradients truncated (and in `evaluate`, which
    measures the auxiliary loss on held-out data).
initial_state: Optional list of tensors, the main network's state
    before the first step (one per state tensor of the cell; for an
    LSTM `[h, c]`), as in `keras.layers.LSTM`.
"""
MASKING = """\
A mask from an upstream layer (`keras.layers.Masking`, an
`Embedding` with `mask_zero=True`) or from `mask_zero` marks the
valid steps. A masked step leaves the state and output as they
were, so the output is that after each sequence's last valid step,
as in `keras.layers.RNN`, and a step masked in the middle of a
sequence outputs the previous step's output, in training too. In
training, the supervised window is the last `bptt` steps up to each
sequence's last valid one (its first `bptt` steps if it is
shorter), anchors fall on steps up to each sequence's last valid
one, and masked targets add nothing to the auxiliary loss. A
sequence shorter than one auxiliary window gets no anchor: it adds
nothing to the auxiliary loss, which averages over the tokens of
the other sequences (0 if none has room); a whole batch shorter
than a window trains the same way. With `return_sequences=True`
the mask is passed on.
"""


def documented(first, first_doc=None, kwargs_doc=None):
    """A class decorator for the layers, whose `__init__` takes `first`,
    then the table's arguments in its order, then `**kwargs`: fills the
    `{arguments}` field of the class docstring with an `Args:` entry per
    argument, `first` described by `first_doc` (and `**kwargs` by
    `kwargs_doc`, if given), and its `{call_arguments}` and `{masking}`
    fields with the sections that every layer shares."""

    def decorate(cls):
        if cls.__doc__ and "{arguments}" in cls.__doc__:
            entries = [(first, first_doc)] + [
                (a.name, f"{a.doc} Defaults to `{a.default!r}`.") for a in ARGUMENTS
            ]
            base = "Base layer keyword arguments, such as `name` and `dtype`."
            entries.append(("**kwargs", kwargs_doc or base))
            fields = {
                "{arguments}": "\n".join(_entry(name, doc) for name, doc in entries),
                "{call_arguments}": textwrap.indent(CALL_ARGUMENTS.rstrip(), "    "),
                "{masking}": textwrap.indent(MASKING.rstrip(), "    "),
            }
            doc = inspect.cleandoc(cls.__doc__)
            for field, text in fields.items():
                doc = doc.replace(field, text)
            cls.__doc__ = doc
        return cls

    return decorate


def _entry(name, doc):
    """One `Args:` entry, indented as Google-style docstrings are."""
    return textwrap.fill(
        f"{name}: {doc}", width=76, initial_indent="    ", subsequent_indent="        "
    )
