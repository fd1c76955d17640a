"""The layer's values and gradients against plain Keras layers run on the
same weights, window by window."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_auxloss import AuxLossLSTM

LENGTH = 30


def keras_lstm(cell, **kwargs):
    """A `keras.layers.LSTM` holding a copy of `cell`'s weights."""
    lstm = keras.layers.LSTM(cell.units, **kwargs)
    lstm.build((None, None, cell.kernel.shape[0]))
    lstm.set_weights(cell.get_weights())
    return lstm


@pytest.mark.parametrize("return_sequences", [False, True])
def test_inference_equals_keras_embedding_and_lstm(return_sequences):
    tokens = np.random.default_rng(0).integers(0, 11, size=(3, LENGTH))
    layer = AuxLossLSTM(
        6,
        vocab_size=11,
        embedding_dim=4,
        bptt=5,
        aux_length=4,
        return_sequences=return_sequences,
        return_state=True,
    )
    output, h, c = layer(tokens)
    embedding = keras.layers.Embedding(11, 4)
    embedding.build((None, LENGTH))
    embedding.set_weights(layer.embedding.get_weights())
    lstm = keras_lstm(layer.cell, return_sequences=return_sequences, return_state=True)
    expected, expected_h, expected_c = lstm(embedding(tokens))
    np.testing.assert_allclose(output, expected, atol=1e-6)
    np.testing.assert_allclose(h, expected_h, atol=1e-6)
    np.testing.assert_allclose(c, expected_c, atol=1e-6)


def reference_aux_loss(layer, x, starts):
    """The auxiliary loss computed one window at a time with Keras layers.

    Each window runs the main LSTM from the state before it, cut from the
    gradient, so each window's loss has exactly its own truncation.
    """
    span = layer.aux_length
    main = keras_lstm(layer.cell, return_sequences=True, return_state=True)
    decoder = [keras_lstm(cell, return_sequences=True) for cell in layer.decoder_cells]
    per_token = []
    for b, example_starts in enumerate(starts):
        for s in example_starts:
            state = [tf.zeros((1, layer.units))] * 2
            if s > 0:
                state = [tf.stop_gradient(t) for t in main(x[b : b + 1, :s])[1:]]
            outputs, h, c = main(x[b : b + 1, s : s + span], initial_state=state)
            if layer.aux_loss == "reconstruct":
                hidden = decoder[0](
                    tf.stop_gradient(x[b : b + 1, s : s + span - 1]), initial_state=[h, c]
                )
                targets = x[b : b + 1, s + 1 : s + span]
            else:
                hidden = decoder[0](outputs)
                targets = x[b : b + 1, s + 1 : s + span + 1]
            for lstm in decoder[1:]:
                hidden = lstm(hidden)
            predictions = layer.head_output(layer.head_hidden(hidden))
            per_token.append(tf.reduce_mean(tf.square(predictions - tf.stop_gradient(targets)), -1))
    return tf.reduce_mean(tf.concat(per_token, axis=1)), main, decoder


@pytest.mark.parametrize("aux_loss", ["reconstruct", "predict"])
def test_overlapping_windows_each_get_their_own_truncation(aux_loss):
    # Overlapping, nested and repeated windows, one starting at step 0.
    starts = [[0, 2, 4, 9], [12, 12, 15, 3]]
    x = tf.constant(np.random.default_rng(1).normal(size=(2, LENGTH, 3)).astype("float32"))
    layer = AuxLossLSTM(
        5,
        aux_loss=aux_loss,
        aux_length=8,
        bptt=4,
        num_anchors=4,
        aux_dropout=0.0,
        aux_hidden=7,
        aux_layers=2,
        seed=0,
    )
    layer.build(x.shape)
    layer._sample_window_starts = lambda ends: tf.constant(starts, tf.int32)

    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        layer(x, training=True)
        (loss,) = layer.losses
        expected, main, decoder = reference_aux_loss(layer, x, starts)

    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    np.testing.assert_allclose(tape.gradient(loss, x), tape.gradient(expected, x), atol=1e-6)
    pairs = [(layer.cell, main)] + list(zip(layer.decoder_cells, decoder))
    for ours, theirs in pairs:
        for got, want in zip(
            tape.gradient(loss, ours.trainable_weights),
            tape.gradient(expected, theirs.trainable_weights),
        ):
            np.testing.assert_allclose(got, want, atol=1e-6)
    head = layer.head_hidden.trainable_weights + layer.head_output.trainable_weights
    for got, want in zip(tape.gradient(loss, head), tape.gradient(expected, head)):
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_supervised_gradient_equals_keras_lstm_on_the_last_window():
    x = tf.constant(np.random.default_rng(2).normal(size=(2, LENGTH, 3)).astype("float32"))
    bptt = 7
    layer = AuxLossLSTM(5, aux_loss=None, bptt=bptt)
    layer.build(x.shape)
    lstm = keras_lstm(layer.cell, return_state=True)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        output = layer(x, training=True)
        state = [tf.stop_gradient(t) for t in lstm(x[:, : LENGTH - bptt])[1:]]
        expected = lstm(x[:, LENGTH - bptt :], initial_state=state)[0]
        loss, expected_loss = tf.reduce_sum(output**2), tf.reduce_sum(expected**2)
    np.testing.assert_allclose(output, expected, atol=1e-6)
    np.testing.assert_allclose(tape.gradient(loss, x), tape.gradient(expected_loss, x), atol=1e-6)
    for got, want in zip(
        tape.gradient(loss, layer.cell.trainable_weights),
        tape.gradient(expected_loss, lstm.trainable_weights),
    ):
        np.testing.assert_allclose(got, want, atol=1e-5)
