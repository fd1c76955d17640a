"""Cell dropout (`dropout`, `recurrent_dropout`), applied as Keras applies it.

Keras's `RNN` layer draws a cell's dropout masks once per call, through
the cell's own `get_dropout_mask` and `get_recurrent_dropout_mask` (Keras's
`DropoutRNNCell`, the cell's seed generator), and every step reuses them:
one mask per sequence and per call. Here they are drawn once per training
call too (`draw`), and every run of the main network in that call, the
capture pass outside the gradient and each window run again, reads the same
masks, so that truncation still changes gradients and never values. A
window of several anchors reads its example's masks
(`DropoutMasks.per_anchor`).

Outside training nothing is dropped. The auxiliary decoder's cells take no
dropout: as in the paper, only its head does (`aux_dropout`).
"""

from typing import NamedTuple

import keras
from keras import ops
from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell


class DropoutMasks(NamedTuple):
    """The masks of one call, `(batch, size)` each (a list of one per gate
    where the cell draws several), or `None` where that dropout is off."""

    inputs: object
    recurrent: object

    def per_anchor(self, num_anchors):
        """The masks for windows of `num_anchors` anchors per example: each
        example's own, repeated (example-major, as `windows.gather_windows`
        lays the windows out)."""

        def repeat(mask):
            return keras.tree.map_structure(lambda m: ops.repeat(m, num_anchors, axis=0), mask)

        return DropoutMasks(*(None if m is None else repeat(m) for m in self))


def has_dropout(cell):
    """Whether `cell` drops anything in training, as Keras's cells decide
    it (a Keras `DropoutRNNCell` with a rate strictly between 0 and 1)."""
    rates = (getattr(cell, name, 0.0) for name in ("dropout", "recurrent_dropout"))
    return isinstance(cell, DropoutRNNCell) and any(0.0 < rate < 1.0 for rate in rates)


def draw(cell, batch, input_dim, dtype):
    """The dropout masks of one training call for `cell` and a batch of
    `batch` sequences of `input_dim` features, drawn by the cell as
    Keras's `RNN` draws them (its input mask first), or `None` if the cell
    drops nothing."""
    if not has_dropout(cell):
        return None
    units = keras.tree.flatten(cell.state_size)[0]
    _reset(cell)
    inputs = recurrent = None
    if 0.0 < cell.dropout < 1.0:
        inputs = cell.get_dropout_mask(ops.ones((batch, input_dim), dtype))
    if 0.0 < cell.recurrent_dropout < 1.0:
        recurrent = cell.get_recurrent_dropout_mask(ops.ones((batch, units), dtype))
    _reset(cell)
    return DropoutMasks(inputs, recurrent)


class applied:
    """A scope in which `cell` drops with `masks` (a `DropoutMasks` for the
    run's rows), as it does inside Keras's `RNN`: its cached masks are
    these, and it is called in training (`as` gives whether it drops).
    With `masks` `None` a cell with dropout holds masks that drop nothing
    (1), so that a cell that asks for its masks outside training too
    (`SimpleRNNCell`) draws none inside the loop."""

    def __init__(self, cell, masks):
        self.cell, self.masks = cell, masks
        self.active = masks is not None or has_dropout(cell)

    def __enter__(self):
        if self.masks is not None:
            self.cell._dropout_mask, self.cell._recurrent_dropout_mask = self.masks
        elif self.active:
            count = getattr(self.cell, "dropout_mask_count", None)
            ones = 1.0 if count is None else [1.0] * count
            self.cell._dropout_mask = self.cell._recurrent_dropout_mask = ones
        return self.masks is not None

    def __exit__(self, *exc):
        if self.active:
            _reset(self.cell)


def _reset(cell):
    cell.reset_dropout_mask()
    cell.reset_recurrent_dropout_mask()
