"""Right-padded batches: each sequence is trained as if it were alone."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from support import numpy

from keras_auxloss import AuxLossLSTM
from keras_auxloss.testing import fix_window_starts
from keras_auxloss.windows import sample_window_starts

LENGTHS = [30, 22, 17]
PADDED = 30


def padded_batch(features=None, seed=0):
    """Sequences of `LENGTHS` steps, right-padded with zeros, and the mask."""
    rng = np.random.default_rng(seed)
    mask = np.arange(PADDED)[None, :] < np.array(LENGTHS)[:, None]
    if features is None:
        x = rng.integers(1, 9, (len(LENGTHS), PADDED)).astype("int32")
    else:
        x = rng.normal(size=(len(LENGTHS), PADDED, features)).astype("float32")
    x[~mask] = 0
    return x, mask


def layer(**options):
    defaults = dict(
        units=6,
        vocab_size=9,
        embedding_dim=4,
        bptt=5,
        aux_length=8,
        num_anchors=2,
        aux_hidden=8,
        aux_dropout=0.0,
        seed=0,
    )
    return AuxLossLSTM(**{**defaults, **options})


@pytest.mark.any_backend
@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_padded_outputs_equal_each_sequence_alone(training, return_sequences):
    x, mask = padded_batch()
    lstm = layer(mask_zero=False, return_sequences=return_sequences)
    lstm.build(x.shape)
    padded = numpy(lstm(x, training=training, mask=mask))
    for example, length in enumerate(LENGTHS):
        alone = numpy(lstm(x[example : example + 1, :length], training=training))
        if return_sequences:
            np.testing.assert_allclose(padded[example, :length], alone[0], atol=1e-6)
            # Past its end a sequence's output stays its last one.
            np.testing.assert_allclose(
                padded[example, length:], np.repeat(alone[0, -1:], PADDED - length, 0), atol=1e-6
            )
        else:
            np.testing.assert_allclose(padded[example], alone[0], atol=1e-6)


@pytest.mark.parametrize("aux_loss", ["reconstruct", "predict"])
def test_padded_aux_loss_equals_each_sequence_alone(aux_loss):
    x, mask = padded_batch()
    starts = [[0, 21], [5, 13], [2, 8]]  # Every window inside its sequence.
    lstm = layer(aux_loss=aux_loss)
    lstm.build(x.shape)
    fix_window_starts(lstm, starts)
    lstm(x, training=True, mask=mask)
    (padded,) = lstm.losses
    alone = []
    for example, length in enumerate(LENGTHS):
        fix_window_starts(lstm, [starts[example]])
        lstm(x[example : example + 1, :length], training=True)
        alone.append(lstm.losses[0])
    # All windows have as many tokens: the batch's mean is the mean of means.
    np.testing.assert_allclose(padded, np.mean(alone), rtol=1e-5)


@pytest.mark.parametrize("aux_loss", ["reconstruct", "predict", None])
def test_gradients_never_reach_padded_steps(aux_loss):
    x, mask = padded_batch(features=3)
    inputs = keras.Input((PADDED, 3))
    outputs = layer(vocab_size=None, aux_loss=aux_loss, num_anchors=3)(
        keras.layers.Masking(0.0)(inputs)
    )
    model = keras.Model(inputs, outputs)
    x = tf.constant(x)
    for _ in range(3):  # A few draws of anchors.
        with tf.GradientTape() as tape:
            tape.watch(x)
            total = tf.reduce_sum(model(x, training=True)) + sum(model.losses)
        grad = np.abs(tape.gradient(total, x).numpy()).sum(-1)
        assert np.all(grad[~mask] == 0)
        # The supervised gradient reaches each sequence's own last bptt steps.
        for example, length in enumerate(LENGTHS):
            assert np.all(grad[example, length - 5 : length] > 0)


def test_supervised_window_counts_back_from_each_end():
    x, mask = padded_batch(features=3)
    lstm = layer(vocab_size=None, aux_loss=None)
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(lstm(x, training=True, mask=mask))
    grad = np.abs(tape.gradient(total, x).numpy()).sum(-1)
    for example, length in enumerate(LENGTHS):
        expected = np.zeros(PADDED, bool)
        expected[length - 5 : length] = True
        np.testing.assert_array_equal(grad[example] > 0, expected)


def test_sequences_shorter_than_a_window_get_no_anchor():
    x, mask = padded_batch()
    lstm = layer(aux_length=20)  # Room in the first two sequences only.
    lstm.build(x.shape)
    lstm(x, training=True, mask=mask)
    (with_short,) = lstm.losses
    assert np.isfinite(with_short) and with_short > 0
    # Only sequences too short for any window: no loss, no NaN.
    lstm(x[2:], training=True, mask=mask[2:])
    (only_short,) = lstm.losses
    assert float(only_short) == 0.0
    # Random anchors always land inside the sequences that have room.
    ends = tf.constant([30, 22, 17])
    for _ in range(20):
        starts = sample_window_starts(ends, 2, 20, lstm.seed_generator).numpy()
        assert np.all(starts[0] <= 30 - 20) and np.all(starts[1] <= 22 - 20)
        assert np.all(starts >= 0)


@pytest.mark.any_backend
@pytest.mark.parametrize("training", [False, True])
def test_mask_zero_equals_an_explicit_mask(training):
    x, mask = padded_batch()
    lstm = layer(mask_zero=True, return_sequences=True)
    explicit = layer(return_sequences=True)
    lstm.build(x.shape)
    explicit.build(x.shape)
    explicit.set_weights(lstm.get_weights())
    np.testing.assert_array_equal(
        numpy(lstm(x, training=training)), numpy(explicit(x, mask=mask, training=training))
    )
    np.testing.assert_array_equal(numpy(lstm.compute_mask(x)), mask)


def test_fit_on_padded_batches_with_mask_zero():
    x, _ = padded_batch()
    model = keras.Sequential([keras.Input((PADDED,), dtype="int32"), layer(mask_zero=True)])
    model.add(keras.layers.Dense(2))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(np.tile(x, (4, 1)), np.arange(12) % 2, epochs=2, verbose=0).history
    assert np.all(np.isfinite(history["loss"])) and history["aux_loss"][0] > 0
