"""The recurrent cells as the layer runs them: how a cell is stepped and
run over time (its runner), and the main network (the main cell's runner
with the embedding, and the two ways it reads its inputs).

`CellRunner` steps any Keras RNN cell through its `call(inputs, states)`, as
`keras.layers.RNN` does, in the cell's own compute dtype. Keras's own
`LSTMCell` gets a fast path, `LSTMRunner`: its input projection `x @ W + b`
is taken out of the loop (and, for token inputs, into a table of every
token's gates), and its step is written out in `current.lstm_step`. A
runner's state is a flat tuple of `(batch, size)` tensors; `CellRunner.run`
is the one place where a recurrent run is put together: through the
runner's fused kernel where it has one (`kernels.py`: cuDNN on a GPU,
PyTorch's own on its CPU; `current.fused_run` cuts the run into the
segments the kernel runs whole), else through the loop of the backend
Keras runs (`backends/`: `current.run`); either returns a `RunResult`. A
fused kernel reads the cell's inputs and projects them itself, so a runner
with one has no token table and projects nothing before the run; where the
kernel refuses a run (`NotImplementedError`), the loop runs it, projecting
its inputs then.

`MainNetwork` reads its inputs in two ways:

- A differentiable run over a window reads token ids through the layer's
  `keras.layers.Embedding`, one lookup per window (`window_inputs`), so the
  embedding's gradient is a `tf.IndexedSlices` with one slice per token
  read, as in a model built from `Embedding` and Keras's recurrent layers
  (Keras's optimizers update such a gradient differently from a dense one:
  Adam squares it slice by slice).
- A pass over a whole sequence (inference, and the capture pass outside the
  gradient) embeds one step at a time (`step_inputs`; a fused kernel a
  chunk of steps at a time), so no `(time, batch, embedding)` tensor is
  built for a long sequence; where the vocabulary is no larger than the
  batch's tokens, the loop looks each step's gates up in a table of every
  token's (`LSTMRunner.token_table`).
"""

import functools

import keras
from keras import ops

from keras_auxloss import dropout as cell_dropout
from keras_auxloss import kernels
from keras_auxloss.backends import current


def state_sizes(cell):
    """The sizes of a cell's state tensors, flattened: `(units, units)` for
    an LSTM cell, `(units,)` for a GRU cell."""
    return tuple(keras.tree.flatten(cell.state_size))


def output_size(cell):
    """The size of a cell's output, as `keras.layers.RNN` reads it."""
    size = getattr(cell, "output_size", None)
    return state_sizes(cell)[0] if size is None else size


class CellRunner:
    """Steps any Keras RNN cell, and runs it over time: through `kernel`
    (a `kernels.Kernel`) where it has one, else through the loop. With
    `use_cudnn=True` a run that cuDNN cannot take raises a `ValueError`
    that says why (`refusal`, or the kernel's own reason) instead of
    running the loop. `kernels_used` maps the name of each run to the
    kernel that last ran it (`"loop"` for the loop)."""

    def __init__(self, cell, kernel=None, *, use_cudnn="auto", refusal=None):
        self.cell, self.kernel = cell, kernel
        self.use_cudnn, self.refusal = use_cudnn, refusal
        self.kernels_used, self.kernels_logged = {}, {}

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
        """What a run reads of its inputs, computed outside the loop; the
        cell drops its inputs itself (`dropout`, a `DropoutMasks`, is
        applied in `run`)."""
        return inputs

    def token_table(self, embeddings):
        """Every token's projected embedding, or `None` where a table of
        them does not save work."""
        return None

    def loop_inputs(self, inputs, input_fn):
        """`(inputs, input_fn)` as the loop's step reads them, from those
        the fused kernel would have read."""
        return inputs, input_fn

    def take_the_loop(self, name, reason):
        """Records that the run `name` takes the loop, because of `reason`;
        with `use_cudnn=True`, raises a `ValueError` that says so instead."""
        if self.use_cudnn is True:
            raise ValueError(
                f"use_cudnn=True was specified, but cuDNN cannot run the {name}: {reason}. "
                "Pass use_cudnn='auto' to fall back to the loop where it cannot."
            )
        self.kernels_used[name] = "loop"

    def step(self, inputs, state, training=False):
        """`(output, state)` after one step; in `training`, the cell drops
        with the masks it holds (see `run`)."""
        states = keras.tree.pack_sequence_as(self.cell.state_size, list(state))
        if not keras.tree.is_nested(self.cell.state_size):
            states = [states]  # Keras's RNN always hands a cell a list.
        kwargs = {"training": training} if self.cell._call_has_training_arg else {}
        output, new = self.cell(inputs, states, **kwargs)
        return output, tuple(keras.tree.flatten(new))

    def run(
        self, inputs, state, *, input_fn=None, initial_output=None, dropout=None, name="run",
        **options,
    ):  # fmt: skip
        """Runs the cell over time-major `inputs` (`project`'s) from
        `state` and returns its `RunResult`; see `run` in
        `backends/tensorflow.py` for `options`. Each step reads
        `input_fn(inputs[t])` (`inputs[t]` if `None`); the output before
        the first step is `initial_output`, zeros if `None` (what a masked
        first step outputs). With `dropout` (a `DropoutMasks` for these
        rows) the cell drops with it at every step, as inside Keras's
        `RNN`, in the loop (a fused kernel would not drop). `name` names
        the run in `kernels_used`."""
        if initial_output is None:
            initial_output = ops.zeros((ops.shape(state[0])[0], self.output_size), self.dtype)
        with cell_dropout.applied(self.cell, dropout) as dropping:
            reason = self.refusal
            if dropping:
                reason = "the cell's dropout is applied inside its own call"
            elif self.kernel is not None:
                try:
                    result = current.fused_run(
                        self.kernel, inputs, tuple(state), initial_output, input_fn=input_fn,
                        **options,
                    )  # fmt: skip
                    self.kernels_used[name] = self.kernel.name
                    return result
                except NotImplementedError as refused:
                    reason = str(refused) or f"the {self.kernel.name} kernel refused it"
            self.take_the_loop(name, reason)
            inputs, input_fn = self.loop_inputs(inputs, input_fn)
            step = functools.partial(self.step, training=True) if dropping else self.step
            return current.run(
                step, inputs, tuple(state), initial_output, input_fn=input_fn, **options
            )


class LSTMRunner(CellRunner):
    """Keras's `LSTMCell`, its input projection taken out of the loop. With
    input dropout (one mask, as Keras's default `implementation=2` draws
    it) the inputs are dropped before the projection (or before the fused
    kernel), as Keras's LSTM does before its fused kernel; a cell with
    recurrent dropout, or one mask per gate, takes the generic runner
    (`runner_for`)."""

    def project(self, inputs, dropout=None):
        if dropout is not None and dropout.inputs is not None:
            inputs = inputs * ops.cast(dropout.inputs, inputs.dtype)
        return inputs if self.kernel is not None else self.gates(inputs)

    def run(self, inputs, state, *, dropout=None, **options):
        # Its inputs were dropped in `project`; nothing else drops.
        return super().run(inputs, state, **options)

    def token_table(self, embeddings):
        return None if self.kernel is not None else self.gates(embeddings)

    def loop_inputs(self, inputs, input_fn):
        if self.kernel is None:
            return inputs, input_fn  # `project` made the gates.
        if input_fn is None:
            return self.gates(inputs), None
        return inputs, lambda x: self.gates(input_fn(x))

    def gates(self, inputs):
        """The input's gate pre-activations `x @ W + b`."""
        return ops.matmul(ops.cast(inputs, self.dtype), self.cell.kernel) + self.cell.bias

    def step(self, gates, state):
        return current.lstm_step(gates, state, self.cell.recurrent_kernel)


def runner_for(cell, compute_dtype, use_cudnn="auto"):
    """The runner of `cell`, with the fused kernel that `use_cudnn` allows
    (`kernels.kernel_for`): the fast path for a Keras `LSTMCell` with its
    default equations that computes in `compute_dtype` (the owning layer's,
    whose scope casts the cell's weights) and drops at most its inputs with
    one mask, the generic runner for any other cell."""
    kernel, refusal = kernels.kernel_for(cell, use_cudnn, compute_dtype)
    options = dict(use_cudnn=use_cudnn, refusal=refusal)
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
        return LSTMRunner(cell, kernel, **options)
    return CellRunner(cell, kernel, **options)


class MainNetwork:
    """The layer's main network: the runner of its cell and its embedding
    (`None` for float inputs), whose weights the layer owns and saves, in
    the layer's `compute_dtype`; masked steps output zeros with
    `zero_output_for_mask`, as in Keras's `RNN`."""

    def __init__(self, runner, embedding, compute_dtype, zero_output_for_mask):
        self.runner, self.embedding, self.compute_dtype = runner, embedding, compute_dtype
        self.zero_output_for_mask = zero_output_for_mask

    def embed(self, ids):
        """Token ids' embeddings, read as `keras.layers.Embedding` reads them."""
        return self.embedding(ids)

    def embedding_table(self):
        """The embeddings of every token, in the compute dtype, read whole."""
        return ops.cast(self.embedding.embeddings, self.compute_dtype)

    def window_inputs(self, window, dropout=None):
        """`(inputs, input_fn)` for a differentiable run over a time-major
        `window`: token windows are embedded and projected before the loop;
        float inputs are projected step by step in the loop, as in
        `step_inputs`, so that a window gives bit for bit the values of the
        whole pass (a fused kernel reads them whole); a token window's, to
        float rounding (the pass may read a table of every token's gates). `dropout`: the cell's
        `DropoutMasks` for the window's rows, or `None`."""
        if self.embedding is not None:
            return self.runner.project(self.embed(window), dropout), None
        if self.runner.kernel is not None:
            return self.runner.project(window, dropout), None
        return window, functools.partial(self.runner.project, dropout=dropout)

    def step_inputs(self, length, batch, dropout=None):
        """A function from one step's input to what the cell's step reads,
        for a pass over a batch of `batch` sequences of `length` steps
        (either `None` if unknown). The table of every token's gates costs
        as many projections as there are tokens, the step by step path one
        per step and sequence: the table is used where it costs no more
        (and where no input dropout makes each sequence's gates its own)."""
        project = functools.partial(self.runner.project, dropout=dropout)
        if self.embedding is None:
            return project
        embeddings = self.embedding_table()
        dropped = dropout is not None and dropout.inputs is not None
        if not dropped and length is not None and self.embedding.input_dim <= length * (batch or 1):
            table = self.runner.token_table(embeddings)
            if table is not None:
                return lambda ids: ops.take(table, ids, axis=0)
        return lambda ids: project(ops.take(embeddings, ids, axis=0))

    def run(self, inputs, state, **options):
        """The cell over time-major `inputs` from `state`, as a `RunResult`;
        `options` as for `CellRunner.run`."""
        options.setdefault("zero_output_for_mask", self.zero_output_for_mask)
        return self.runner.run(inputs, state, **options)

    def run_whole(self, sequence, state, dropout=None, **options):
        """The cell over a whole time-major `sequence` from `state`, read
        step by step (`step_inputs`)."""
        input_fn = self.step_inputs(sequence.shape[0], sequence.shape[1], dropout)
        return self.run(sequence, state, input_fn=input_fn, dropout=dropout, **options)

    def frozen(self):
        """A scope in which the main network's weights (cell, embedding)
        are cut from the gradient."""
        layers = [self.runner.cell] + ([self.embedding] if self.embedding is not None else [])
        weights = [w for layer in layers for w in layer.weights]
        return keras.StatelessScope(
            state_mapping=[(w, ops.stop_gradient(w.value)) for w in weights]
        )
