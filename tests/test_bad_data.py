"""Bad data at run time: clear errors with `validate_inputs`, and what
happens without it."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_auxloss import AuxLossLSTM

LENGTH = 20


def token_layer(**options):
    return AuxLossLSTM(6, vocab_size=5, bptt=4, aux_length=5, aux_hidden=8, seed=0, **options)


@pytest.mark.parametrize("bad_id", [5, 99, -1])
@pytest.mark.parametrize("training", [False, True])
def test_token_ids_outside_the_vocabulary_are_named(bad_id, training):
    tokens = np.ones((2, LENGTH), "int32")
    tokens[1, 7] = bad_id
    layer = token_layer(validate_inputs=True)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"outside \[0, vocab_size=5\)"):
        layer(tokens, training=training)
    layer(np.ones((2, LENGTH), "int32"), training=training)  # Good ids pass.


def test_unchecked_negative_ids_are_read_from_the_end_of_the_table():
    # The reason for validate_inputs: Keras's `take` wraps negative indices.
    layer = token_layer()
    tokens = np.ones((1, LENGTH), "int32")
    wrapped = tokens.copy()
    tokens[0, 3], wrapped[0, 3] = -1, 4
    np.testing.assert_array_equal(layer(tokens), layer(wrapped))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_float_inputs_are_named(bad):
    x = np.zeros((2, LENGTH, 3), "float32")
    x[0, 5, 1] = bad
    layer = AuxLossLSTM(6, bptt=4, aux_length=5, validate_inputs=True)
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN or infinite inputs"):
        layer(x, training=True)


def test_terminate_on_nan_stops_training_on_unchecked_nan_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, LENGTH, 3)).astype("float32")
    x[9, 4, 0] = np.nan  # In the third batch of four.
    model = keras.Sequential(
        [keras.Input((LENGTH, 3)), AuxLossLSTM(6, bptt=4, aux_length=5), keras.layers.Dense(2)]
    )
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = [w.copy() for w in model.get_weights()]
    model.fit(
        x,
        np.zeros(16),
        batch_size=4,
        epochs=3,
        shuffle=False,
        verbose=0,
        callbacks=[keras.callbacks.TerminateOnNaN()],
    )
    # Training stopped in the first epoch, at the bad batch, whose update
    # has already made the weights NaN: TerminateOnNaN stops the damage from
    # spreading but cannot undo it; validate_inputs fails before the update.
    assert model.stop_training
    assert any(np.isnan(w).any() for w in model.get_weights())
    assert not any(np.isnan(w).any() for w in before)
