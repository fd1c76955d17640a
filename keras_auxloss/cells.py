"""How a recurrent cell is stepped through a sequence.

`CellRunner` steps any Keras RNN cell through its `call(inputs, states)`, as
`keras.layers.RNN` does, in the cell's own compute dtype. Keras's own
`LSTMCell` gets a fast path, `LSTMRunner`: its input projection `x @ W + b`
is taken out of the loop (and, for token inputs, into a table of every
token's gates), and its step is written out in `recurrence.lstm_step`. A
runner's state is a flat tuple of `(batch, size)` tensors; `run` is the one
place where a recurrent run is put together. It hands `recurrence.run` the
cell too: on PyTorch, Keras's LSTM and GRU cells run through PyTorch's
fused kernels, which project their inputs themselves, so there the
projection (`recurrence.project`) is deferred and there is no token table
(`backends/torch.py`).
"""

import functools

import keras
from keras import ops

from keras_auxloss import dropout as cell_dropout
from keras_auxloss import recurrence


def state_sizes(cell):
    """The sizes of a cell's state tensors, flattened: `(units, units)` for
    an LSTM cell, `(units,)` for a GRU cell."""
    return tuple(keras.tree.flatten(cell.state_size))


def output_size(cell):
    """The size of a cell's output, as `keras.layers.RNN` reads it."""
    size = getattr(cell, "output_size", None)
    return state_sizes(cell)[0] if size is None else size


class CellRunner:
    """Steps any Keras RNN cell."""

    def __init__(self, cell):
        self.cell = cell

    @property
    def state_sizes(self):
        return state_sizes(self.cell)

    @property
    def output_size(self):
        return output_size(self.cell)

    @property
    def dtype(self):
        """The dtype of the state and outputs: the cell's compute dtype."""
        return self.cell.compute_dtype

    def zero_state(self, batch):
        return tuple(ops.zeros((batch, size), self.dtype) for size in self.state_sizes)

    def project(self, inputs, dropout=None):
        """What a step reads of its inputs, computed outside the loop; the
        cell drops its inputs itself (`dropout`, a `DropoutMasks`, is
        applied in `run`)."""
        return inputs

    def token_table(self, embeddings):
        """Every token's projected embedding, or `None` where a table of
        them does not save work."""
        return None

    def step(self, inputs, state, training=False):
        """`(output, state)` after one step; in `training`, the cell drops
        with the masks it holds (see `run`)."""
        states = keras.tree.pack_sequence_as(self.cell.state_size, list(state))
        if not keras.tree.is_nested(self.cell.state_size):
            states = [states]  # Keras's RNN always hands a cell a list.
        kwargs = {"training": training} if self.cell._call_has_training_arg else {}
        output, new = self.cell(inputs, states, **kwargs)
        return output, tuple(keras.tree.flatten(new))

    def run(self, inputs, state, *, input_fn=None, initial_output=None, dropout=None, **options):
        """Runs the cell over time-major `inputs` from `state`; see
        `recurrence.run` for `options` and what it returns. Each step reads
        `input_fn(inputs[t])` (`inputs[t]` if `None`); the output before the
        first step is `initial_output`, zeros if `None` (what a masked first
        step outputs). With `dropout` (a `DropoutMasks` for these rows) the
        cell drops with it at every step, as inside Keras's `RNN`, and
        takes the loop (a fused kernel would not drop)."""
        if initial_output is None:
            initial_output = ops.zeros((ops.shape(state[0])[0], self.output_size), self.dtype)
        with cell_dropout.applied(self.cell, dropout) as dropping:
            return recurrence.run(
                functools.partial(self.step, training=True) if dropping else self.step,
                inputs,
                tuple(state),
                initial_output,
                input_fn=input_fn,
                cell=None if dropping else self.cell,
                **options,
            )


class LSTMRunner(CellRunner):
    """Keras's `LSTMCell`, its input projection taken out of the loop. With
    input dropout (one mask, as Keras's default `implementation=2` draws
    it) the inputs are dropped before the projection, as Keras's LSTM does
    before its fused kernel; a cell with recurrent dropout, or one mask per
    gate, takes the generic runner (`runner_for`)."""

    def project(self, inputs, dropout=None):
        if dropout is not None and dropout.inputs is not None:
            inputs = inputs * ops.cast(dropout.inputs, inputs.dtype)
        return recurrence.project(self.gates, inputs)

    def run(self, inputs, state, *, dropout=None, **options):
        # Its inputs were dropped in `project`; nothing else drops.
        return super().run(inputs, state, **options)

    def token_table(self, embeddings):
        return recurrence.token_table(self.gates, embeddings)

    def gates(self, inputs):
        """The input's gate pre-activations `x @ W + b`."""
        return ops.matmul(ops.cast(inputs, self.dtype), self.cell.kernel) + self.cell.bias

    def step(self, gates, state):
        return recurrence.lstm_step(gates, state, self.cell.recurrent_kernel)


def runner_for(cell, compute_dtype):
    """The fast path for a Keras `LSTMCell` with its default equations that
    computes in `compute_dtype` (the owning layer's, whose scope casts the
    cell's weights) and drops at most its inputs with one mask, the generic
    runner for any other cell."""
    lstm = keras.layers.LSTMCell
    if (
        type(cell) is lstm
        and cell.activation is keras.activations.tanh
        and cell.recurrent_activation is keras.activations.sigmoid
        and cell.use_bias
        and cell.compute_dtype == compute_dtype
        and not 0.0 < cell.recurrent_dropout < 1.0
        and (not 0.0 < cell.dropout < 1.0 or getattr(cell, "dropout_mask_count", None) is None)
    ):
        return LSTMRunner(cell)
    return CellRunner(cell)
