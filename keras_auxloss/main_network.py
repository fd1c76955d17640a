"""The main network: the cell (through its runner, `cells.py`) and the two
ways it reads its inputs.

- A differentiable run over a window reads token ids through the layer's
  `keras.layers.Embedding`, one lookup per window (`window_inputs`), so the
  embedding's gradient is a `tf.IndexedSlices` with one slice per token
  read, as in a model built from `Embedding` and Keras's recurrent layers
  (Keras's optimizers update such a gradient differently from a dense one:
  Adam squares it slice by slice).
- A pass over a whole sequence (inference, and the capture pass outside the
  gradient) embeds one step at a time (`step_inputs`), so no
  `(time, batch, embedding)` tensor is built for a long sequence; where the
  vocabulary is no larger than the batch's tokens, it looks each step's
  gates up in a table of every token's (`cells.LSTMRunner.token_table`).
"""

import functools

import keras
from keras import ops


class MainNetwork:
    """The layer's main cell runner and embedding (or `None` for float
    inputs), owned and saved by the layer."""

    def __init__(self, runner, embedding, compute_dtype, zero_output_for_mask):
        self.runner, self.embedding, self.compute_dtype = runner, embedding, compute_dtype
        self.zero_output_for_mask = zero_output_for_mask

    def embed(self, ids):
        """Token ids' embeddings, read as `keras.layers.Embedding` reads them."""
        return self.embedding(ids)

    def window_inputs(self, window, dropout=None):
        """`(inputs, input_fn)` for a differentiable run over a time-major
        `window`: token windows are embedded and projected before the loop;
        float inputs are projected step by step, as in `step_inputs`, so
        that a window gives bit for bit the values of the whole pass.
        `dropout`: the cell's `DropoutMasks` for the window's rows, or `None`."""
        if self.embedding is not None:
            return self.runner.project(self.embed(window), dropout), None
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
        embeddings = ops.cast(self.embedding.embeddings, self.compute_dtype)
        dropped = dropout is not None and dropout.inputs is not None
        if not dropped and length is not None and self.embedding.input_dim <= length * (batch or 1):
            table = self.runner.token_table(embeddings)
            if table is not None:
                return lambda ids: ops.take(table, ids, axis=0)
        return lambda ids: project(ops.take(embeddings, ids, axis=0))

    def run(self, inputs, state, **options):
        """The cell over time-major `inputs` from `state`; `options` as for
        `CellRunner.run`."""
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
