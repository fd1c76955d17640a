"""The checks of `AuxLossRNN`'s `cell` argument: one Keras RNN cell, whose
dropout, if any, this layer can apply as `keras.layers.RNN` does."""

from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell


def check_cell(cell):
    """A Keras RNN cell: `state_size` and `call(inputs, states)`; dropout
    only as Keras's `DropoutRNNCell` draws it, not inside a stack."""
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
    for inner in getattr(cell, "cells", None) or []:  # keras.layers.StackedRNNCells
        if any(getattr(inner, name, 0) for name in ("dropout", "recurrent_dropout")):
            raise ValueError(
                "Received an invalid value for argument `cell`: a StackedRNNCells whose "
                f"cell {inner.name!r} has dropout, which this layer cannot apply to the cells "
                "of a stack. Stack layers instead (one AuxLossRNN, or a Keras RNN layer, on "
                "another), or use cells without dropout."
            )
    for name in ("dropout", "recurrent_dropout"):
        if getattr(cell, name, 0) and not isinstance(cell, DropoutRNNCell):
            raise ValueError(
                f"Received an invalid value for argument `cell`: it has {name}="
                f"{getattr(cell, name)!r} but is not a Keras DropoutRNNCell, through whose "
                "masks this layer applies a cell's dropout as keras.layers.RNN does. "
                "Derive the cell from DropoutRNNCell (keras.src.layers.rnn.dropout_rnn_cell), "
                "as Keras's own cells are."
            )
