"""Bad arguments and inputs fail early with a message that names them."""

import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_auxloss import AuxLossLSTM
from keras_auxloss.testing import fix_window_starts


@pytest.mark.parametrize(
    "options, message",
    [
        ({"units": 0}, "argument `units`, expected a positive integer, got 0"),
        ({"units": 2.5}, "argument `units`, expected a positive integer, got 2.5"),
        ({"units": True}, "argument `units`, expected a positive integer, got True"),
        (
            {"aux_loss": "contrastive"},
            "argument `aux_loss`, expected one of 'reconstruct', "
            "'predict' or None, got 'contrastive'",
        ),
        ({"num_anchors": -1}, "argument `num_anchors`, expected a positive integer, got -1"),
        ({"aux_length": 0}, "argument `aux_length`, expected a positive integer, got 0"),
        (
            {"aux_length": 1},
            "argument `aux_length`, expected an integer of at least 2 with aux_loss='reconstruct'",
        ),
        ({"bptt": 0}, "argument `bptt`, expected a positive integer, got 0"),
        ({"vocab_size": -5}, "argument `vocab_size`, expected a positive integer, got -5"),
        ({"embedding_dim": 0}, "argument `embedding_dim`, expected a positive integer, got 0"),
        ({"aux_units": 0}, "argument `aux_units`, expected a positive integer, got 0"),
        ({"aux_units": 4}, "Arguments `aux_units`=4 and `units`=8 conflict"),
        ({"aux_layers": 0}, "argument `aux_layers`, expected a positive integer, got 0"),
        ({"aux_hidden": None}, "argument `aux_hidden`, expected a positive integer, got None"),
        ({"aux_dropout": 1.0}, "argument `aux_dropout`, expected a float in [0, 1), got 1.0"),
        ({"aux_dropout": -0.1}, "argument `aux_dropout`, expected a float in [0, 1), got -0.1"),
        ({"aux_weight": -1}, "argument `aux_weight`, expected a non-negative float, got -1"),
        (
            {"scheduled_sampling": 1.5, "vocab_size": 4},
            "argument `scheduled_sampling`, expected a float in [0, 1], got 1.5",
        ),
        ({"scheduled_sampling": 0.5}, "`scheduled_sampling` applies only to token inputs"),
        (
            {"scheduled_sampling": 0.5, "vocab_size": 4, "aux_loss": "predict"},
            "`scheduled_sampling` applies only to token inputs",
        ),
        ({"return_sequences": "yes"}, "argument `return_sequences`, expected a bool, got 'yes'"),
        ({"return_state": 1}, "argument `return_state`, expected a bool, got 1"),
        ({"seed": "abc"}, "argument `seed`, expected an integer or None, got 'abc'"),
    ],
)
def test_invalid_arguments_fail_at_construction(options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        AuxLossLSTM(**{"units": 8, **options})


def test_aux_units_may_differ_from_units_when_predicting():
    assert AuxLossLSTM(8, aux_loss="predict", aux_units=4).aux_units == 4


@pytest.mark.parametrize(
    "options, length, message",
    [
        ({"bptt": 50}, 40, "Received bptt=50, but the sequence length is 40"),
        (
            {"aux_length": 41, "bptt": 10},
            40,
            "Received aux_length=41 with aux_loss='reconstruct' "
            "and num_anchors=1, but the sequence length is 40",
        ),
        # A prediction window also needs the token after its last step.
        (
            {"aux_loss": "predict", "aux_length": 40, "bptt": 10},
            40,
            "Received aux_length=40 with aux_loss='predict'",
        ),
    ],
)
def test_windows_longer_than_the_sequence_fail_at_build(options, length, message):
    layer = AuxLossLSTM(8, vocab_size=5, **options)
    with pytest.raises(ValueError, match=re.escape(message)):
        keras.Sequential([keras.Input((length,), dtype="int32"), layer])


def test_windows_that_just_fit_build():
    layer = AuxLossLSTM(8, vocab_size=5, aux_length=40, bptt=40)
    keras.Sequential([keras.Input((40,), dtype="int32"), layer])
    layer = AuxLossLSTM(8, vocab_size=5, aux_loss="predict", aux_length=39, bptt=40)
    keras.Sequential([keras.Input((40,), dtype="int32"), layer])


def test_float_features_with_vocab_size_fail_at_build():
    with pytest.raises(
        ValueError,
        match=re.escape(
            "AuxLossLSTM with vocab_size=5 expects token ids of shape (batch, time), got inputs "
            "of shape (None, 40, 3)"
        ),
    ):
        keras.Sequential([keras.Input((40, 3)), AuxLossLSTM(8, vocab_size=5, bptt=10)])


def test_token_ids_without_vocab_size_fail_at_build():
    with pytest.raises(
        ValueError,
        match=re.escape(
            "AuxLossLSTM with vocab_size=None expects float inputs of shape (batch, time, "
            "features) with known features, got inputs of shape (None, 40)"
        ),
    ):
        keras.Sequential([keras.Input((40,), dtype="int32"), AuxLossLSTM(8, bptt=10)])


def test_integer_features_without_vocab_size_are_read_as_numbers():
    layer = AuxLossLSTM(8, bptt=10, aux_length=5)
    features = np.random.default_rng(0).integers(-3, 3, (2, 40, 3))
    np.testing.assert_array_equal(layer(features), layer(features.astype("float32")))


@pytest.mark.parametrize(
    "options, length",
    [
        ({"bptt": 20, "aux_length": 5}, 19),
        ({"bptt": 5, "aux_length": 20}, 19),
        ({"bptt": 5, "aux_length": 19, "aux_loss": "predict"}, 19),
    ],
)
@pytest.mark.parametrize("jit_compile", [False, True])
def test_a_batch_shorter_than_a_window_trains_as_padded_sequences(options, length, jit_compile):
    # With the time dimension unknown at build, a short batch trains as the
    # same sequences right-padded with masked steps: the supervised window is
    # each whole sequence, the anchors' windows find no room.
    layer = AuxLossLSTM(8, vocab_size=5, aux_dropout=0.0, seed=0, return_sequences=True, **options)
    layer.build((None, None))  # As in a model on keras.Input((None,)).
    fix_window_starts(layer, [[0], [0]])  # The same anchors in both runs.
    tokens = np.random.default_rng(0).integers(1, 5, (2, length)).astype("int32")
    padded = np.pad(tokens, ((0, 0), (0, 30 - length)))
    mask = padded != 0

    def train(x, mask=None):
        with tf.GradientTape() as tape:
            outputs = layer(x, training=True, mask=mask)[:, :length]
            total = tf.reduce_sum(outputs) + sum(layer.losses)
        return outputs, total, tape.gradient(total, layer.trainable_weights)

    short = tf.function(train, jit_compile=jit_compile, reduce_retracing=True)
    outputs, total, gradients = short(tf.constant(tokens))
    expected, expected_total, expected_gradients = train(tf.constant(padded), tf.constant(mask))
    np.testing.assert_allclose(outputs, expected[:, :length], atol=1e-6)
    np.testing.assert_allclose(total, expected_total, rtol=1e-6)
    for got, want in zip(gradients, expected_gradients):
        got, want = tf.convert_to_tensor(got), tf.convert_to_tensor(want)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)  # XLA orders sums anew.
    # Training values are inference values, as for any batch.
    np.testing.assert_allclose(outputs, layer(tokens), atol=1e-6)
