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
"""

import functools

import keras
from keras import ops

from keras_auxloss import recurrence, windows
from keras_auxloss.sampled_softmax import sampled_cross_entropy


class AuxiliaryDecoder:
    """The decoder's cell runners and head, owned (and saved) by the layer."""

    def __init__(self, runners, head_hidden, head_output, seed_generator):
        self.runners = runners
        self.head_hidden, self.head_output = head_hidden, head_output
        self.seed_generator = seed_generator

    def zero_states(self, batch):
        return [runner.zero_state(batch) for runner in self.runners]

    def decode(self, inputs, states, *, dropout, training):
        """Runs the cells over time-major `inputs` from `states` (one per
        layer); returns the features that the head's output layer reads
        `(time, batch, aux_hidden)`, with `dropout` in training only."""
        outputs = inputs
        for runner, state in zip(self.runners, states):
            _, _, outputs, _ = runner.run(runner.project(outputs), state, return_sequences=True)
        return self.hidden(outputs, dropout=dropout if training else 0.0)

    def hidden(self, outputs, *, dropout=0.0, dropout_mask=None):
        """The head's hidden layer, with dropout."""
        hidden = self.head_hidden(outputs)
        if dropout_mask is not None:
            return hidden * dropout_mask
        if dropout:
            return keras.random.dropout(hidden, dropout, seed=self.seed_generator)
        return hidden

    def decode_with_sampling(self, ids, states, *, embed, vocab_size, probability, dropout):
        """Decodes token ids step by step, feeding back sampled predictions.

        At each step after the first, with `probability`, the bottom layer
        is fed the token it sampled at the previous step (embedded by
        `embed`) instead of the true one. All randomness is drawn before the
        loop. Returns the logits `(time, batch, vocab_size)`.
        """
        steps, batch = ops.shape(ids)[0], ops.shape(ids)[1]
        seed = self.seed_generator
        feed_sample = ops.logical_and(
            keras.random.uniform((steps, batch), seed=seed) < probability,
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
                outputs, state = runner.step(runner.project(outputs), state)
                new_states.append(state)
            logits = self.head_output(self.hidden(outputs, dropout_mask=mask))
            sampled = ops.argmax(ops.cast(logits, "float32") + noise, axis=-1)
            return ops.cast(sampled, true_ids.dtype), new_states, logits

        initial_logits = ops.zeros((batch, vocab_size), self.head_output.compute_dtype)
        _, _, logits = recurrence.scan(
            step, (ids[0], states, initial_logits), (ids, feed_sample, noise, dropout_mask)
        )
        return logits


def auxiliary_loss(layer, sequence, mask, located, start_states, training, dropout=None):
    """`(loss, tokens)`: the mean per-token auxiliary loss over every
    anchor's window of a time-major `sequence`, and the number of tokens
    predicted. Windows of sequences too short for one (`located.fits`
    false) and masked targets count for nothing. The main network reads
    each window with its example's cell `dropout` masks (or `None`)."""
    span = windows.window_span(layer.aux_loss, layer.aux_length)
    data = windows.gather_windows(sequence, located.window_starts, span)
    window_mask = None
    if mask is not None:
        window_mask = windows.gather_windows(mask, located.window_starts, span)
    # Examples and their anchors share one batch axis: (batch * anchors).
    state = tuple(ops.reshape(s, (-1, s.shape[-1])) for s in start_states)
    weights = ops.repeat(ops.cast(located.fits, "float32"), layer.num_anchors)[None, :]
    if window_mask is not None:
        weights = weights * ops.cast(window_mask[1:], "float32")
    if dropout is not None:
        dropout = dropout.per_anchor(layer.num_anchors)
    loss = reconstruction_loss if layer.aux_loss == "reconstruct" else prediction_loss
    return loss(layer, data, window_mask, state, weights, training, dropout)


def reconstruction_loss(layer, data, window_mask, state, weights, training, dropout=None):
    """The r-LSTM's loss on windows `data` `(aux_length, windows, ...)`: the
    main network reads each window from its start `state`; from its state
    at the anchor, the window's last step, the decoder is fed the window's
    tokens and predicts each next one."""
    inputs, state, _ = _run_main_network(layer, data, window_mask, state, False, dropout)
    data = ops.stop_gradient(data)  # Targets and fed tokens are data, not paths for gradient.
    if inputs is None:
        inputs = data
    states = layer.decoder.zero_states(ops.shape(data)[1])
    states[0] = state
    if layer.scheduled_sampling and training:
        embeddings = ops.cast(layer.embedding.embeddings, layer.compute_dtype)
        logits = layer.decoder.decode_with_sampling(
            data[:-1],
            states,
            embed=lambda ids: ops.take(embeddings, ids, axis=0),
            vocab_size=layer.vocab_size,
            probability=layer.scheduled_sampling,
            dropout=layer.aux_dropout,
        )
        return mean_token_loss(_per_token_loss(layer, logits, data[1:]), weights)
    hidden = layer.decoder.decode(inputs[:-1], states, dropout=layer.aux_dropout, training=training)
    return mean_token_loss(_head_loss(layer, hidden, data[1:], training), weights)


def prediction_loss(layer, data, window_mask, state, weights, training, dropout=None):
    """The p-LSTM's loss on windows `data` `(aux_length + 1, windows, ...)`:
    the main network reads each window's first `aux_length` steps from its
    start `state`, the anchor being the first; the decoder reads its
    outputs and predicts each next token."""
    _, _, outputs = _run_main_network(layer, data[:-1], window_mask, state, True, dropout)
    states = layer.decoder.zero_states(ops.shape(data)[1])
    hidden = layer.decoder.decode(outputs, states, dropout=layer.aux_dropout, training=training)
    targets = ops.stop_gradient(data[1:])
    return mean_token_loss(_head_loss(layer, hidden, targets, training), weights)


def _run_main_network(layer, data, window_mask, state, return_sequences, dropout):
    """`(embedded, state, outputs)`: the main network over windows `data`
    from their start `state`, with its `dropout` masks. A token window is
    embedded once, and `embedded` returned for the reconstruction decoder
    to read too (`None` for float inputs): the decoder reads the tokens
    undropped."""
    main = layer.main_network
    embedded = None
    if layer.vocab_size is None:
        inputs, input_fn = data, functools.partial(main.runner.project, dropout=dropout)
    else:
        embedded = main.embed(data)
        inputs, input_fn = main.runner.project(embedded, dropout), None
    mask = None if window_mask is None else window_mask[: ops.shape(data)[0]]
    _, state, outputs, _ = main.run(
        inputs,
        state,
        input_fn=input_fn,
        mask=mask,
        return_sequences=return_sequences,
        dropout=dropout,
    )
    return embedded, state, outputs


def _head_loss(layer, hidden, targets, training):
    """Per-token loss `(time, windows)` of the head's output layer on its
    `hidden` features: over a sample of the vocabulary with
    `aux_sampled_softmax` (negatives drawn with the layer's seed in
    training, a fixed one on held-out data), else over its whole output."""
    if layer.aux_sampled_softmax is None:
        return _per_token_loss(layer, layer.head_output(hidden), targets)
    output = layer.head_output
    seed = layer.seed_generator if training else windows.HELD_OUT_SEED
    return sampled_cross_entropy(
        hidden, output.kernel, output.bias, targets, layer.aux_sampled_softmax, seed
    )


def _per_token_loss(layer, predictions, targets):
    """Cross entropy on logits for token targets, mean squared error over
    the features for float targets; in float32."""
    predictions = ops.cast(predictions, "float32")
    if layer.vocab_size is None:
        return ops.mean(ops.square(predictions - ops.cast(targets, "float32")), axis=-1)
    return keras.losses.sparse_categorical_crossentropy(targets, predictions, from_logits=True)


def mean_token_loss(per_token, weights):
    """The mean of `per_token` losses `(time, batch)` over the targets that
    count (`weights`, 0 or 1, broadcast to them), and their number."""
    weights = ops.broadcast_to(weights, ops.shape(per_token))
    tokens = ops.sum(weights)
    return ops.sum(per_token * weights) / ops.maximum(tokens, 1.0), tokens
