"""The layers' arguments, written once: each one's name, default, check and
documentation (`ARGUMENTS`). The constructors, whose signatures are written
out in the same order with the same defaults (`tests/test_signatures.py`
ties them), check their values with `check_all` and `check_combination`;
`get_config` reads them through `NAMES`, and the `Args:` sections of the
docstrings are made from them (`documentation.documented`). Every error
names the argument, the value received and what was expected."""

import dataclasses
import math
import numbers
from collections.abc import Callable
from typing import Any

AUX_LOSSES = ("reconstruct", "predict")


def check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(
            f"Received an invalid value for argument `{name}`, expected a "
            f"positive integer, got {value!r}."
        )


def _optional(check):
    def check_optional(name, value):
        if value is not None:
            check(name, value)

    return check_optional


def _number(low, high, expected, high_open=False):
    def check_number(name, value):
        ok = (
            isinstance(value, numbers.Real)
            and not isinstance(value, bool)
            and low <= value <= high
            and not (high_open and value == high)
        )
        if not ok:
            raise ValueError(
                f"Received an invalid value for argument `{name}`, expected {expected}, "
                f"got {value!r}."
            )

    return check_number


def _finite(check):
    def check_finite(name, value):
        check(name, value)
        if not math.isfinite(value):
            raise ValueError(
                f"Received an invalid value for argument `{name}`, expected a finite "
                f"number, got {value!r}."
            )

    return check_finite


def _boolean(name, value):
    if not isinstance(value, bool):
        raise ValueError(
            f"Received an invalid value for argument `{name}`, expected a bool, got {value!r}."
        )


def _aux_loss(name, value):
    if value not in AUX_LOSSES + (None,):
        raise ValueError(
            f"Received an invalid value for argument `{name}`, expected "
            f"one of 'reconstruct', 'predict' or None, got {value!r}."
        )


def _use_cudnn(name, value):
    if value != "auto" and not isinstance(value, bool):
        raise ValueError(
            f"Received an invalid value for argument `{name}`, expected one of "
            f"'auto', True or False, got {value!r}."
        )


def _seed(name, value):
    if value is not None and not isinstance(value, numbers.Integral):
        raise ValueError(
            f"Received an invalid value for argument `{name}`, expected an "
            f"integer or None, got {value!r}."
        )


@dataclasses.dataclass(frozen=True)
class Argument:
    """One argument: `check(name, value)` raises a `ValueError` for a bad
    value."""

    name: str
    default: Any
    check: Callable[[str, Any], None]
    doc: str


ARGUMENTS = (
    Argument(
        "aux_loss",
        "reconstruct",
        _aux_loss,
        '`"reconstruct"` (the paper\'s r-LSTM), `"predict"` (p-LSTM), or `None` for a plain '
        "recurrent network truncated to `bptt` steps (the paper's baseline).",
    ),
    Argument(
        "num_anchors",
        1,
        check_positive_int,
        "Positive int, anchors drawn per example and step. Windows may overlap; each gets "
        "its own truncation.",
    ),
    Argument(
        "aux_length",
        600,
        check_positive_int,
        "Int, the subsequence length `l`: tokens reconstructed before an anchor (anchor "
        'included) or predicted after it. At least 2 for `"reconstruct"` (the decoder is '
        "fed the first token of the window and predicts the other `l - 1`).",
    ),
    Argument(
        "bptt",
        300,
        _optional(check_positive_int),
        "Positive int, how many final steps the supervised gradient flows through, or "
        '`None` for full backpropagation ("Full BP"). The auxiliary gradient stays truncated '
        "either way.",
    ),
    Argument(
        "vocab_size",
        None,
        _optional(check_positive_int),
        "Int or `None`. An int means inputs are integer token ids `(batch, time)` in "
        "`[0, vocab_size)`, embedded by the layer, and the auxiliary head predicts token ids "
        "with cross entropy. `None` means inputs are floats `(batch, time, features)` and "
        "the head regresses the input vectors with mean squared error.",
    ),
    Argument(
        "embedding_dim",
        128,
        check_positive_int,
        "Positive int, size of the token embedding (token inputs only).",
    ),
    Argument(
        "aux_units",
        None,
        _optional(check_positive_int),
        "Positive int, size of the decoder's upper LSTM layers (and of its bottom one for "
        '`"predict"`). `None` means the main network\'s output size (`units`); with '
        '`"reconstruct"` it must equal it, since the decoder\'s bottom layer starts from '
        "the main network's state.",
    ),
    Argument(
        "aux_layers",
        2,
        check_positive_int,
        "Positive int, number of decoder layers. The bottom one starts from the main state "
        "at the anchor (reconstruct) or reads the main network's outputs (predict); the "
        "others start at zero.",
    ),
    Argument(
        "aux_hidden",
        256,
        check_positive_int,
        "Positive int, width of the decoder's feed-forward head.",
    ),
    Argument(
        "aux_dropout",
        0.5,
        _number(0.0, 1.0, "a float in [0, 1)", high_open=True),
        "Float in `[0, 1)`, dropout in the head (in training only).",
    ),
    Argument(
        "aux_weight",
        1.0,
        _finite(_number(0.0, math.inf, "a non-negative float")),
        "Non-negative finite float, weight of the auxiliary loss in the total loss.",
    ),
    Argument(
        "scheduled_sampling",
        0.0,
        _number(0.0, 1.0, "a float in [0, 1]"),
        "Float in `[0, 1]`, the probability of feeding the reconstruction decoder its own "
        "sampled prediction instead of the true token at each step after the first. Token "
        'inputs with `"reconstruct"` only; its embedding gradient is dense. `0.0` is '
        "teacher forcing.",
    ),
    Argument(
        "return_sequences",
        False,
        _boolean,
        "Bool, return every step's output instead of the last one. In training, outputs "
        "before the last `bptt` steps carry no gradient.",
    ),
    Argument(
        "return_state",
        False,
        _boolean,
        "Bool, also return the final state tensors (for an LSTM `h` and `c`, for a GRU `h`).",
    ),
    Argument(
        "mask_zero",
        False,
        _boolean,
        "Bool, treat token id 0 as padding and mask it (token inputs only), as "
        "`keras.layers.Embedding(mask_zero=True)` does.",
    ),
    Argument(
        "validate_inputs",
        False,
        _boolean,
        "Bool, check every batch at run time: token ids must lie in `[0, vocab_size)`, "
        "float inputs must be finite; a bad batch stops the call with an error naming the "
        'problem, on every backend (see "Bad data" in `docs/guide.md`). Unchecked, an id of '
        "`vocab_size` or more fails in the embedding lookup on TensorFlow and PyTorch and "
        "reads NaN on JAX; a negative id `-k` is read as `vocab_size - k`, as "
        "`keras.layers.Embedding` reads it, and a NaN input makes the loss NaN (stop "
        "training on it with `keras.callbacks.TerminateOnNaN`). XLA drops the checks.",
    ),
    Argument(
        "seed",
        None,
        _seed,
        "Int or `None`, seed of the anchors, the head's dropout and scheduled sampling, "
        "and (`AuxLossLSTM`, `AuxLossGRU`) of the cell's dropout, drawn from a stream of "
        "its own (`seed + 2_000_003`). A layer with `go_backwards=True` draws its anchors "
        "from `seed + 1_000_003`, so that `keras.layers.Bidirectional`'s backward copy "
        "draws its own.",
    ),
    Argument(
        "stateful",
        False,
        _boolean,
        "Bool, carry the final state of each sequence in a batch over to the same row of "
        "the next batch (streams read in chunks), cut from the gradient; `reset_state()` "
        "zeroes it. Needs a fixed batch size.",
    ),
    Argument(
        "zero_output_for_mask",
        False,
        _boolean,
        "Bool, output zeros at masked steps instead of the previous step's output, as "
        "`keras.layers.RNN(zero_output_for_mask=True)` does (so a sequence whose last steps "
        "are masked ends with a zero output).",
    ),
    Argument(
        "aux_sampled_softmax",
        None,
        _optional(check_positive_int),
        "Int or `None`. An int `K` makes the auxiliary head score each position's target "
        "against `K` negative tokens drawn uniformly per step (a sampled softmax) instead "
        "of the whole vocabulary: for large vocabularies (words, subwords), where the full "
        "softmax over every predicted position dominates the step's time and memory. The "
        "logged `aux_loss` is then the sampled loss, which underestimates the full cross "
        "entropy. Token inputs only, at most `vocab_size`, not with `scheduled_sampling` "
        "(which samples from the full softmax). `None` is the full softmax.",
    ),
    Argument(
        "go_backwards",
        False,
        _boolean,
        "Bool, read each sequence from its last step to its first (masks included), as "
        "`keras.layers.LSTM(go_backwards=True)` does; with `return_sequences` the outputs "
        "come in the order read. The method follows the reading order: the supervised "
        "window is the last `bptt` steps read (the first `bptt` of the sequence as given), "
        "reconstruction looks back and prediction ahead in that order. "
        "`keras.layers.Bidirectional` sets it on its backward copy (see `seed`).",
    ),
    Argument(
        "unroll",
        False,
        _boolean,
        "Bool, accepted as `keras.layers.LSTM` takes it; it changes no value. The layer "
        "always runs its own loop over time (never unrolled: the windows start at steps "
        "drawn when the batch runs), so it is kept in the configuration only.",
    ),
    Argument(
        "use_cudnn",
        "auto",
        _use_cudnn,
        '`"auto"`, `True` or `False`, as `keras.layers.LSTM` takes it: whether the runs of '
        "Keras's `LSTMCell` and `GRUCell` (default activations, `reset_after=True`, with a "
        'bias) use cuDNN. `"auto"` runs cuDNN where it can serve (a GPU), PyTorch\'s own '
        "fused kernel on its CPU, and the loop elsewhere; `True` raises a `ValueError` that "
        "says why wherever a run cannot take cuDNN (no GPU, another cell, recurrent "
        "dropout, on JAX a run cut at steps known only at run time, a decoder fed its own "
        "samples); `False` never uses cuDNN. `kernels_used` tells which kernel ran each "
        "run.",
    ),
)
NAMES = tuple(argument.name for argument in ARGUMENTS)


def check_all(values):
    """Checks the value of each argument of the table, in the table's
    order: `values` maps the names to the values received (a constructor's
    `locals()`)."""
    for argument in ARGUMENTS:
        argument.check(argument.name, values[argument.name])


def check_combination(
    units,
    *,
    aux_loss,
    aux_length,
    aux_units,
    scheduled_sampling,
    vocab_size,
    aux_sampled_softmax,
    mask_zero,
):
    """Checks the arguments that constrain each other, once each is valid;
    `units` is the cell's output size."""
    if aux_loss == "reconstruct" and aux_length < 2:
        raise ValueError(
            "Received an invalid value for argument `aux_length`, expected "
            "an integer of at least 2 with aux_loss='reconstruct' (the "
            "decoder is fed the window's first token and predicts the "
            f"rest), got {aux_length!r}."
        )
    if aux_loss == "reconstruct" and aux_units != units:
        raise ValueError(
            f"Arguments `aux_units`={aux_units} and `units`={units} conflict: "
            "with aux_loss='reconstruct' the decoder's bottom layer starts "
            "from the main network's state, so they must be equal."
        )
    if scheduled_sampling and (aux_loss != "reconstruct" or vocab_size is None):
        raise ValueError(
            "Argument `scheduled_sampling` applies only to token inputs "
            "(`vocab_size` set) with aux_loss='reconstruct'; got "
            f"scheduled_sampling={scheduled_sampling!r} with "
            f"aux_loss={aux_loss!r} and vocab_size={vocab_size!r}."
        )
    if aux_sampled_softmax is not None and (vocab_size is None or aux_sampled_softmax > vocab_size):
        raise ValueError(
            "Received an invalid value for argument `aux_sampled_softmax`, expected a "
            "number of negative tokens of at most `vocab_size` (token inputs only), got "
            f"aux_sampled_softmax={aux_sampled_softmax!r} with vocab_size={vocab_size!r}."
        )
    if aux_sampled_softmax is not None and scheduled_sampling:
        raise ValueError(
            f"Arguments `aux_sampled_softmax`={aux_sampled_softmax} and `scheduled_sampling`="
            f"{scheduled_sampling} conflict: scheduled sampling draws the "
            "decoder's inputs from the full softmax. Use one of them."
        )
    if mask_zero and vocab_size is None:
        raise ValueError(
            "Argument `mask_zero`=True masks the token id 0, so it needs token "
            "inputs: set `vocab_size`, or mask float inputs with keras.layers.Masking."
        )
