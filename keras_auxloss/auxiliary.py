"""The auxiliary loss: the anchors' windows, the decoder and its loss.

At each anchor the main network runs over the anchor's window from its
state cut from the gradient (`truncation.py`), then the decoder either
reconstructs the window that ends at the anchor (`reconstruction_loss`, the
r-LSTM: its bottom layer, a cell of the main cell's kind, starts from the
main network's state at the anchor, is fed the window's first token and
predicts each next one) or predicts the window that follows the anchor
(`prediction_loss`, the p-LSTM: its bottom layer reads the main network's
outputs from the anchor on). Upper layers are LSTM cells that start from
zero; a two-layer feed-forward head (ReLU, dropout) maps the top layer's
outputs to logits over the vocabulary (cross entropy) or to the input
features (mean squared error). The loss is the mean over the predicted
tokens of every anchor.

`AuxiliaryDecoder` holds all of it: the layer makes the decoder's cells
(`decoder_cells`) and head (and saves their weights) and calls `AuxiliaryDecoder.loss` with
its main network.
"""

import keras
from keras import ops

from keras_auxloss import windows
from keras_auxloss.backends import current
from keras_auxloss.sampled_softmax import sampled_cross_entropy


def decoder_cells(main_cell, aux_loss, aux_units, aux_layers, dtype):
    """The decoder's `aux_layers` cells: LSTM cells of `aux_units`, the
    bottom one for reconstruction a cell of `main_cell`'s kind and size."""
    cells = [
        keras.layers.LSTMCell(aux_units, dtype=dtype, name=f"decoder_cell_{i}")
        for i in range(aux_layers)
    ]
    if aux_loss == "reconstruct":
        # The bottom layer starts from the main cell's full state: a cell
        # of its kind and size, without the regularizers, constraints and
        # dropout set for the main network (as in the paper, only the
        # decoder's head drops).
        config = unregularized(main_cell.get_config())
        cells[0] = type(main_cell).from_config({**config, "name": "decoder_cell_0"})
    return cells


def unregularized(config):
    """A cell's `config` without regularizers, constraints or dropout, and
    so the configs of the cells it stacks (`StackedRNNCells`' `cells`)."""
    config = {
        key: None if key.endswith(("_regularizer", "_constraint")) else value
        for key, value in config.items()
    }
    config.update({k: 0.0 for k in ("dropout", "recurrent_dropout") if k in config})
    if isinstance(config.get("cells"), list):
        config["cells"] = [
            {**cell, "config": unregularized(cell["config"])}
            if isinstance(cell, dict) and isinstance(cell.get("config"), dict)
            else cell
            for cell in config["cells"]
        ]
    return config


class AuxiliaryDecoder:
    """The auxiliary decoder and its loss.

    Args:
        kind: `"reconstruct"` or `"predict"` (the layer's `aux_loss`).
        runners: the runners of the decoder's cells, bottom first
            (`cells.runner_for`).
        head_hidden, head_output: the head's built `Dense` layers.
        aux_length, num_anchors: the anchors' windows, as the layer's.
        vocab_size: the vocabulary of token targets, `None` for features.
        scheduled_sampling: the probability of feeding a reconstruction
            decoder its own sampled tokens in training (token inputs).
        sampled_softmax: the negatives of a sampled softmax, or `None`.
        seed_generator: the layer's random stream (the head's dropout,
            scheduled sampling, the sampled softmax's negatives).
    """

    def __init__(
        self, kind, runners, head_hidden, head_output, *, aux_length, num_anchors, vocab_size,
        scheduled_sampling, sampled_softmax, seed_generator,
    ):  # fmt: skip
        self.kind, self.runners = kind, runners
        self.head_hidden, self.head_output = head_hidden, head_output
        self.aux_length, self.num_anchors, self.vocab_size = aux_length, num_anchors, vocab_size
        self.scheduled_sampling, self.sampled_softmax = scheduled_sampling, sampled_softmax
        self.seed_generator = seed_generator

    def loss(self, main, sequence, mask, located, start_states, *, training, dropout, cell_dropout):
        """`(loss, tokens)`: the mean per-token auxiliary loss over every
        anchor's window of a time-major `sequence`, and the number of tokens
        predicted. Windows of sequences too short for one (`located.fits`
        false) and masked targets count for nothing. The `main` network
        (`cells.MainNetwork`) reads each window from its `start_states`
        with its example's `cell_dropout` masks (or `None`); the head drops
        at the rate `dropout` (the layer's `aux_dropout`) in `training`."""
        span = windows.window_span(self.kind, self.aux_length)
        data = windows.gather_windows(sequence, located.window_starts, span)
        window_mask = None
        if mask is not None:
            window_mask = windows.gather_windows(mask, located.window_starts, span)
        # Examples and their anchors share one batch axis: (batch * anchors).
        state = tuple(ops.reshape(s, (-1, s.shape[-1])) for s in start_states)
        weights = ops.repeat(ops.cast(located.fits, "float32"), self.num_anchors)[None, :]
        if window_mask is not None:
            weights = weights * ops.cast(window_mask[1:], "float32")
        if cell_dropout is not None:
            cell_dropout = cell_dropout.per_anchor(self.num_anchors)
        loss = self.reconstruction_loss if self.kind == "reconstruct" else self.prediction_loss
        return loss(
            main, data, window_mask, state, weights,
            training=training, dropout=dropout, cell_dropout=cell_dropout,
        )  # fmt: skip

    def reconstruction_loss(
        self, main, data, window_mask, state, weights, *, training, dropout, cell_dropout=None
    ):
        """The r-LSTM's loss on windows `data` `(aux_length, windows, ...)`
        (`window_mask` their valid steps or `None`, `weights` where a target
        counts): the main network reads each window from its start `state`;
        from its state at the anchor, the window's last step, the decoder
        is fed the window's tokens and predicts each next one."""
        inputs, state, _ = _run_main_network(main, data, window_mask, state, False, cell_dropout)
        data = ops.stop_gradient(data)  # Targets and fed tokens are data, not paths for gradient.
        if inputs is None:
            inputs = data
        states = self.zero_states(ops.shape(data)[1])
        states[0] = state
        if self.scheduled_sampling and training:
            embeddings = main.embedding_table()
            logits = self.decode_with_sampling(
                data[:-1],
                states,
                embed=lambda ids: ops.take(embeddings, ids, axis=0),
                dropout=dropout,
            )
            return mean_token_loss(self._per_token_loss(logits, data[1:]), weights)
        hidden = self.decode(inputs[:-1], states, dropout=dropout, training=training)
        return mean_token_loss(self._head_loss(hidden, data[1:], training), weights)

    def prediction_loss(
        self, main, data, window_mask, state, weights, *, training, dropout, cell_dropout=None
    ):
        """The p-LSTM's loss on windows `data` `(aux_length + 1, windows,
        ...)`: the main network reads each window's first `aux_length` steps
        from its start `state`, the anchor being the first; the decoder
        reads its outputs and predicts each next token."""
        _, _, outputs = _run_main_network(main, data[:-1], window_mask, state, True, cell_dropout)
        states = self.zero_states(ops.shape(data)[1])
        hidden = self.decode(outputs, states, dropout=dropout, training=training)
        targets = ops.stop_gradient(data[1:])
        return mean_token_loss(self._head_loss(hidden, targets, training), weights)

    def zero_states(self, batch):
        return [runner.zero_state(batch) for runner in self.runners]

    def decode(self, inputs, states, *, dropout, training):
        """Runs the cells over time-major `inputs` from `states` (one per
        layer); returns the features that the head's output layer reads
        `(time, batch, aux_hidden)`, with `dropout` in training only."""
        outputs = inputs
        for i, (runner, state) in enumerate(zip(self.runners, states)):
            name = f"decoder layer {i}"
            outputs = runner.project(outputs)
            outputs = runner.run(outputs, state, return_sequences=True, name=name).sequences
        return self.hidden(outputs, dropout=dropout if training else 0.0)

    def hidden(self, outputs, *, dropout=0.0, dropout_mask=None):
        """The head's hidden layer, with dropout."""
        hidden = self.head_hidden(outputs)
        if dropout_mask is not None:
            return hidden * dropout_mask
        if dropout:
            return keras.random.dropout(hidden, dropout, seed=self.seed_generator)
        return hidden

    def decode_with_sampling(self, ids, states, *, embed, dropout):
        """Decodes token ids step by step, feeding back sampled predictions.

        At each step after the first, with probability
        `scheduled_sampling`, the bottom layer is fed the token it sampled
        at the previous step (embedded by `embed`) instead of the true one.
        All randomness is drawn before the loop. Returns the logits
        `(time, batch, vocab_size)`.
        """
        steps, batch = ops.shape(ids)[0], ops.shape(ids)[1]
        seed, vocab_size = self.seed_generator, self.vocab_size
        feed_sample = ops.logical_and(
            keras.random.uniform((steps, batch), seed=seed) < self.scheduled_sampling,
            ops.arange(steps)[:, None] > 0,
        )
        # Gumbel noise: argmax(logits + noise) samples from softmax(logits).
        uniform = keras.random.uniform(
            (steps, batch, vocab_size), minval=1e-20, maxval=1.0, seed=seed
        )
        noise = -ops.log(-ops.log(uniform))
        hidden = self.head_hidden.units
        dropout_mask = ops.ones((steps, batch, hidden), self.head_hidden.compute_dtype)
        if dropout:
            dropout_mask = keras.random.dropout(dropout_mask, dropout, seed=seed)

        def step(carry, x):
            sampled, states, _ = carry
            true_ids, use_sample, noise, mask = x
            outputs = embed(ops.where(use_sample, sampled, true_ids))
            new_states = []
            for runner, state in zip(self.runners, states):
                inputs, _ = runner.loop_inputs(runner.project(outputs), None)
                outputs, state = runner.step(inputs, state)
                new_states.append(state)
            logits = self.head_output(self.hidden(outputs, dropout_mask=mask))
            sampled = ops.argmax(ops.cast(logits, "float32") + noise, axis=-1)
            return ops.cast(sampled, true_ids.dtype), new_states, logits

        for i, runner in enumerate(self.runners):
            runner.take_the_loop(f"decoder layer {i}", "it is fed its own samples step by step")
        initial_logits = ops.zeros((batch, vocab_size), self.head_output.compute_dtype)
        _, _, logits = current.scan(
            step, (ids[0], states, initial_logits), (ids, feed_sample, noise, dropout_mask)
        )
        return logits

    def _head_loss(self, hidden, targets, training):
        """Per-token loss `(time, windows)` of the head's output layer on its
        `hidden` features: over a sample of the vocabulary with
        `sampled_softmax` (negatives drawn with the layer's seed in
        training, a fixed one on held-out data), else over its whole output."""
        if self.sampled_softmax is None:
            return self._per_token_loss(self.head_output(hidden), targets)
        output = self.head_output
        seed = self.seed_generator if training else windows.HELD_OUT_SEED
        return sampled_cross_entropy(
            hidden, output.kernel, output.bias, targets, self.sampled_softmax, seed
        )

    def _per_token_loss(self, predictions, targets):
        """Cross entropy on logits for token targets, mean squared error over
        the features for float targets; in float32."""
        predictions = ops.cast(predictions, "float32")
        if self.vocab_size is None:
            return ops.mean(ops.square(predictions - ops.cast(targets, "float32")), axis=-1)
        return keras.losses.sparse_categorical_crossentropy(targets, predictions, from_logits=True)


def _run_main_network(main, data, window_mask, state, return_sequences, dropout):
    """`(embedded, state, outputs)`: the `main` network over windows `data`
    from their start `state`, with its `dropout` masks. A token window is
    embedded once, and `embedded` returned for the reconstruction decoder
    to read too (`None` for float inputs): the decoder reads the tokens
    undropped."""
    embedded = None
    if main.embedding is None:
        inputs, input_fn = main.window_inputs(data, dropout)
    else:
        embedded = main.embed(data)
        inputs, input_fn = main.runner.project(embedded, dropout), None
    mask = None if window_mask is None else window_mask[: ops.shape(data)[0]]
    run = main.run(
        inputs,
        state,
        input_fn=input_fn,
        mask=mask,
        return_sequences=return_sequences,
        dropout=dropout,
        name="anchor windows",
    )
    return embedded, run.state, run.sequences


def mean_token_loss(per_token, weights):
    """The mean of `per_token` losses `(time, batch)` over the targets that
    count (`weights`, 0 or 1, broadcast to them), and their number."""
    weights = ops.broadcast_to(weights, ops.shape(per_token))
    tokens = ops.sum(weights)
    return ops.sum(per_token * weights) / ops.maximum(tokens, 1.0), tokens
