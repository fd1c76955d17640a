"""Checks of the layers' constructor arguments: each error names the
argument, the value received and what was expected."""

import numbers

AUX_LOSSES = ("reconstruct", "predict")


def check_cell(cell):
    """A Keras RNN cell: `state_size` and `call(inputs, states)`, no dropout."""
    if isinstance(cell, (list, tuple)):
        raise ValueError(
            "Received an invalid value for argument `cell`, expected one RNN cell, got a "
            f"list of {len(cell)}. To stack cells, pass keras.layers.StackedRNNCells(cells)."
        )
    if not (hasattr(cell, "state_size") and callable(getattr(cell, "call", None))):
        raise ValueError(
            "Received an invalid value for argument `cell`, expected an RNN cell with a "
            f"`state_size` attribute and a `call(inputs, states)` method, got {cell!r}."
        )
    for name in ("dropout", "recurrent_dropout"):
        if getattr(cell, name, 0):
            raise ValueError(
                f"The cell has {name}={getattr(cell, name)!r}, which this layer does not "
                "apply: its windows run the cell without dropout. Use a cell without "
                "dropout, and `aux_dropout` or a Dropout layer on the outputs."
            )


def check_arguments(
    *,
    units,
    aux_loss,
    num_anchors,
    aux_length,
    bptt,
    vocab_size,
    embedding_dim,
    aux_units,
    aux_layers,
    aux_hidden,
    aux_dropout,
    aux_weight,
    scheduled_sampling,
    return_sequences,
    return_state,
    mask_zero,
    validate_inputs,
    stateful,
    seed,
):
    """Checks every argument of `AuxLossRNN` (and so of its subclasses)."""
    if aux_loss not in AUX_LOSSES + (None,):
        raise ValueError(
            "Received an invalid value for argument `aux_loss`, expected "
            f"one of 'reconstruct', 'predict' or None, got {aux_loss!r}."
        )
    check_positive_int("num_anchors", num_anchors)
    check_positive_int("aux_length", aux_length)
    if aux_loss == "reconstruct" and aux_length < 2:
        raise ValueError(
            "Received an invalid value for argument `aux_length`, expected "
            "an integer of at least 2 with aux_loss='reconstruct' (the "
            "decoder is fed the window's first token and predicts the "
            f"rest), got {aux_length!r}."
        )
    if bptt is not None:
        check_positive_int("bptt", bptt)
    if vocab_size is not None:
        check_positive_int("vocab_size", vocab_size)
    check_positive_int("embedding_dim", embedding_dim)
    check_positive_int("aux_units", aux_units)
    if aux_loss == "reconstruct" and aux_units != units:
        raise ValueError(
            f"Arguments `aux_units`={aux_units} and `units`={units} conflict: "
            "with aux_loss='reconstruct' the decoder's bottom layer starts "
            "from the main network's state, so they must be equal."
        )
    check_positive_int("aux_layers", aux_layers)
    check_positive_int("aux_hidden", aux_hidden)
    check_number("aux_dropout", aux_dropout, 0.0, 1.0, "a float in [0, 1)", high_open=True)
    check_number("aux_weight", aux_weight, 0.0, float("inf"), "a non-negative float")
    check_number("scheduled_sampling", scheduled_sampling, 0.0, 1.0, "a float in [0, 1]")
    if scheduled_sampling and (aux_loss != "reconstruct" or vocab_size is None):
        raise ValueError(
            "Argument `scheduled_sampling` applies only to token inputs "
            "(`vocab_size` set) with aux_loss='reconstruct'; got "
            f"scheduled_sampling={scheduled_sampling!r} with "
            f"aux_loss={aux_loss!r} and vocab_size={vocab_size!r}."
        )
    for name, value in (
        ("return_sequences", return_sequences),
        ("return_state", return_state),
        ("mask_zero", mask_zero),
        ("validate_inputs", validate_inputs),
        ("stateful", stateful),
    ):
        if not isinstance(value, bool):
            raise ValueError(
                f"Received an invalid value for argument `{name}`, expected a bool, got {value!r}."
            )
    if mask_zero and vocab_size is None:
        raise ValueError(
            "Argument `mask_zero`=True masks the token id 0, so it needs token "
            "inputs: set `vocab_size`, or mask float inputs with keras.layers.Masking."
        )
    if seed is not None and not isinstance(seed, numbers.Integral):
        raise ValueError(
            "Received an invalid value for argument `seed`, expected an "
            f"integer or None, got {seed!r}."
        )


def check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(
            f"Received an invalid value for argument `{name}`, expected a "
            f"positive integer, got {value!r}."
        )


def check_number(name, value, low, high, expected, high_open=False):
    ok = (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and low <= value <= high
        and not (high_open and value == high)
    )
    if not ok:
        raise ValueError(
            f"Received an invalid value for argument `{name}`, expected {expected}, got {value!r}."
        )
