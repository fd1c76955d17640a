"""The auxiliary decoder and its loss.

At each anchor the decoder either reconstructs the window that ends there
(r-LSTM: its bottom layer, a cell of the main cell's kind, starts from the
main network's state at the anchor, is fed the window's first token and
predicts each next one) or predicts the window that follows it (p-LSTM: its
bottom layer reads the main network's outputs from the anchor on). Upper
layers are LSTM cells that start from zero; a two-layer feed-forward head
(ReLU, dropout) maps the top layer's outputs to logits over the vocabulary
(cross entropy) or to the input features (mean squared error).
"""

import keras
from keras import ops

from keras_auxloss import recurrence
from keras_auxloss.cells import runner_for


class AuxiliaryDecoder:
    """The decoder's cells and head, owned (and saved) by the layer."""

    def __init__(self, cells, head_hidden, head_output, dropout, seed_generator):
        self.runners = [runner_for(cell) for cell in cells]
        self.head_hidden, self.head_output = head_hidden, head_output
        self.dropout, self.seed_generator = dropout, seed_generator

    def zero_states(self, batch, dtype):
        return [runner.zero_state(batch, dtype) for runner in self.runners]

    def decode(self, inputs, states, training=True):
        """Runs the cells over time-major `inputs` from `states` (one per
        layer); returns the head's predictions `(time, batch, outputs)`,
        with dropout in the head in training only."""
        outputs = inputs
        for runner, state in zip(self.runners, states):
            zero_output = ops.zeros((ops.shape(outputs)[1], runner.output_size), outputs.dtype)
            _, _, outputs, _ = recurrence.run(
                runner.step, runner.project(outputs), state, zero_output, return_sequences=True
            )
        return self.head(outputs, training=training)

    def head(self, outputs, dropout_mask=None, training=True):
        hidden = self.head_hidden(outputs)
        if dropout_mask is not None:
            hidden = hidden * dropout_mask
        elif self.dropout and training:
            hidden = keras.random.dropout(hidden, self.dropout, seed=self.seed_generator)
        return self.head_output(hidden)

    def decode_with_sampling(self, ids, states, embed, vocab_size, probability):
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
        if self.dropout:
            dropout_mask = keras.random.dropout(dropout_mask, self.dropout, seed=seed)

        def step(carry, x):
            sampled, states, _ = carry
            true_ids, use_sample, noise, mask = x
            outputs = embed(ops.where(use_sample, sampled, true_ids))
            new_states = []
            for runner, state in zip(self.runners, states):
                outputs, state = runner.step(runner.project(outputs), state)
                new_states.append(state)
            logits = self.head(outputs, mask)
            sampled = ops.argmax(ops.cast(logits, "float32") + noise, axis=-1)
            return ops.cast(sampled, true_ids.dtype), new_states, logits

        initial_logits = ops.zeros((batch, vocab_size), self.head_output.compute_dtype)
        _, _, logits = recurrence.scan(
            step, (ids[0], states, initial_logits), (ids, feed_sample, noise, dropout_mask)
        )
        return logits


def mean_token_loss(predictions, targets, weights, vocab_size):
    """Mean per-token loss, in float32, and the number of tokens counted.

    Token targets (`vocab_size` set) get cross entropy on logits, feature
    targets mean squared error; `weights` `(time, batch)` (0 or 1) say
    which targets count.
    """
    predictions = ops.cast(predictions, "float32")
    if vocab_size is None:
        per_token = ops.mean(ops.square(predictions - ops.cast(targets, "float32")), axis=-1)
    else:
        per_token = keras.losses.sparse_categorical_crossentropy(
            targets, predictions, from_logits=True
        )
    weights = ops.broadcast_to(weights, ops.shape(per_token))
    tokens = ops.sum(weights)
    return ops.sum(per_token * weights) / ops.maximum(tokens, 1.0), tokens
