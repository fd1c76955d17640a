"""Edge cases: masked last steps with `zero_output_for_mask`, the logs of
`train_on_batch` and `test_on_batch`, masks that do not fit the inputs,
empty batches, token ids past the vocabulary, and inputs that are not
dense tensors."""

import re

import keras
import numpy as np
import pytest
from support import BACKEND, numpy

from keras_auxloss import AuxLossGRU, AuxLossLSTM, AuxLossRNN

pytestmark = pytest.mark.any_backend

KERAS_LAYERS = {AuxLossLSTM: keras.layers.LSTM, AuxLossGRU: keras.layers.GRU}


def features(batch=2, length=8, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, length, 3)).astype("float32")


def keras_twin(layer, batch_size=None):
    """Keras's own layer with `layer`'s settings and main weights."""
    twin = KERAS_LAYERS[type(layer)](
        layer.units,
        zero_output_for_mask=layer.zero_output_for_mask,
        return_sequences=layer.return_sequences,
        stateful=layer.stateful,
    )
    twin.build((batch_size, None, 3))
    twin.set_weights(layer.cell.get_weights())
    return twin


@pytest.mark.parametrize("layer_class", [AuxLossLSTM, AuxLossGRU])
@pytest.mark.parametrize("aux_loss", [None, "reconstruct"])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("stateful", [False, True])
def test_zero_output_for_mask_gives_keras_values_in_training(
    layer_class, aux_loss, return_sequences, stateful
):
    # Masked last steps (5 and 8 valid steps of 8), longer than bptt.
    x = features(2, 8)
    mask = np.arange(8)[None, :] < np.array([5, 8])[:, None]
    layer = layer_class(
        4,
        bptt=3,
        aux_loss=aux_loss,
        aux_length=3,
        zero_output_for_mask=True,
        return_sequences=return_sequences,
        stateful=stateful,
        seed=0,
    )
    layer.build((2, 8, 3))
    twin = keras_twin(layer, batch_size=2 if stateful else None)
    # Two batches in a row: a stateful layer carries its state between them.
    expected = [numpy(twin(x, mask=mask)) for _ in range(2)]
    for training in (False, True):
        if stateful:
            layer.reset_state()
        for want in expected:
            got = numpy(layer(x, mask=mask, training=training))
            np.testing.assert_allclose(got, want, atol=1e-6, err_msg=f"training={training}")
    if not return_sequences:
        np.testing.assert_array_equal(expected[0][0], 0.0)


@pytest.mark.parametrize("layer_class", [AuxLossLSTM, AuxLossGRU])
@pytest.mark.parametrize("bptt", [3, 10, None])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_zero_output_for_mask_in_a_batch_padded_to_fit_the_windows(
    layer_class, bptt, return_sequences
):
    # Built for any length: a batch of 8 steps is padded to the 10 steps of
    # an anchor's window (or of bptt=10), and outputs what its own last step does.
    x = features(2, 8)
    mask = np.arange(8)[None, :] < np.array([5, 8])[:, None]
    layer = layer_class(
        4,
        bptt=bptt,
        aux_length=10,
        zero_output_for_mask=True,
        return_sequences=return_sequences,
        seed=0,
    )
    layer.build((None, None, 3))
    twin = keras_twin(layer)
    for m in (mask, None):
        want = numpy(twin(x, mask=m))
        for training in (False, True):
            got = numpy(layer(x, mask=m, training=training))
            np.testing.assert_allclose(got, want, atol=1e-6, err_msg=f"training={training}")


def token_model(aux_weight):
    model = keras.Sequential(
        [
            keras.Input((12,), dtype="int32"),
            AuxLossLSTM(
                8, vocab_size=8, bptt=4, aux_length=4, aux_weight=aux_weight, aux_dropout=0.0
            ),
            keras.layers.Dense(2),
        ]
    )
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


@pytest.mark.parametrize("method", ["train_on_batch", "test_on_batch"])
def test_on_batch_logs_the_auxiliary_loss_included_in_the_loss(method):
    x = np.random.default_rng(0).integers(1, 8, size=(4, 12)).astype("int32")
    y = np.array([0, 1, 0, 1])
    model = token_model(aux_weight=0.5)
    for _ in range(2):
        # Truncation changes no value: the supervised loss is the inference one.
        supervised = float(model.loss(y, model(x)))
        model.reset_metrics()  # Keras before 3.4 kept the means across calls.
        logs = getattr(model, method)(x, y, return_dict=True)
        assert logs["aux_loss"] > 0.1
        np.testing.assert_allclose(
            logs["loss"] - supervised, 0.5 * logs["aux_loss"], rtol=1e-4, atol=1e-5
        )


def test_fit_logs_the_mean_of_the_logged_batches():
    x = np.random.default_rng(0).integers(1, 8, size=(8, 12)).astype("int32")
    y = np.array([0, 1] * 4)
    model = token_model(aux_weight=0.5)
    batches = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            batches.append(logs["aux_loss"])

    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[Record()])
    assert len(batches) == 2 and batches[0] > 0.1
    # Each batch's logs hold the running mean: the last one is the epoch's.
    np.testing.assert_allclose(batches[-1], history.history["aux_loss"][0], rtol=1e-5)


MASK_LAYERS = {
    "lstm": lambda: AuxLossLSTM(4, bptt=3, aux_length=3),
    "gru_sequences": lambda: AuxLossGRU(4, bptt=3, aux_length=3, return_sequences=True),
    "simple_rnn": lambda: AuxLossRNN(keras.layers.SimpleRNNCell(4), bptt=3, aux_length=3),
}


@pytest.mark.parametrize("make", MASK_LAYERS.values(), ids=MASK_LAYERS.keys())
@pytest.mark.parametrize("mask_shape", [(2, 6), (2, 10), (3, 8), (2, 6, 1)])
@pytest.mark.parametrize("training", [False, True])
def test_a_mask_that_does_not_fit_the_inputs_is_named(make, mask_shape, training):
    x = features(2, 8)
    layer = make()
    expected = re.escape(f"got a mask of shape {mask_shape} for inputs of shape (2, 8, 3)")
    with pytest.raises(ValueError, match=expected):
        layer(x, mask=np.ones(mask_shape, bool), training=training)
    layer(x, mask=np.ones((2, 8), bool), training=training)  # A mask that fits passes.


def test_a_token_mask_that_does_not_fit_the_ids_is_named():
    layer = AuxLossLSTM(4, vocab_size=5, bptt=3, aux_length=3, mask_zero=True)
    with pytest.raises(ValueError, match=r"mask of shape \(2, 6\).*inputs of shape \(2, 8\)"):
        layer(np.ones((2, 8), "int32"), mask=np.ones((2, 6), bool))


@pytest.mark.skipif(BACKEND != "tensorflow", reason="TensorFlow alone traces unknown lengths")
def test_a_mask_of_a_length_known_only_at_run_time_is_checked_when_it_runs():
    import tensorflow as tf

    layer = AuxLossLSTM(4, bptt=3, aux_length=3)
    layer.build((None, None, 3))
    call = tf.function(
        lambda x, mask: layer(x, mask=mask),
        input_signature=[
            tf.TensorSpec((None, None, 3), "float32"),
            tf.TensorSpec((None, None), "bool"),
        ],
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match="Expected a mask of shape"):
        call(features(2, 8), np.ones((2, 6), bool))
    call(features(2, 8), np.ones((2, 8), bool))


EMPTY_LAYERS = {
    "lstm_features": (lambda: AuxLossLSTM(4, bptt=3, aux_length=3), (0, 8, 3), (0, 4)),
    "lstm_tokens": (
        lambda: AuxLossLSTM(4, vocab_size=5, bptt=3, aux_length=3, mask_zero=True),
        (0, 8),
        (0, 4),
    ),
    "gru_predict_full_bptt": (
        lambda: AuxLossGRU(
            4, vocab_size=5, bptt=None, aux_loss="predict", aux_length=3, return_sequences=True
        ),
        (0, 8),
        (0, 8, 4),
    ),
    "simple_rnn": (
        lambda: AuxLossRNN(keras.layers.SimpleRNNCell(4), bptt=3, aux_length=3),
        (0, 8, 3),
        (0, 4),
    ),
}


@pytest.mark.parametrize("case", EMPTY_LAYERS.values(), ids=EMPTY_LAYERS.keys())
def test_an_empty_batch_trains_to_an_empty_output_and_no_auxiliary_loss(case):
    make, input_shape, output_shape = case
    layer = make()
    dtype = "float32" if len(input_shape) == 3 else "int32"
    inputs = np.zeros(input_shape, dtype)
    for training in (False, True):
        output = layer(inputs, training=training)
        assert tuple(output.shape) == output_shape
    (added,) = layer.losses
    assert float(numpy(added)) == 0.0
    assert float(numpy(layer.aux_loss_tracker.result())) == 0.0


def test_token_ids_past_the_vocabulary_unchecked_and_checked():
    tokens = np.ones((2, 8), "int32")
    tokens[1, 3] = 5  # vocab_size.
    unchecked = AuxLossLSTM(4, vocab_size=5, bptt=3, aux_length=3)
    if BACKEND == "jax":
        # As Keras's Embedding on JAX: the lookup fills the row with NaN.
        output = numpy(unchecked(tokens))
        assert np.isnan(output[1]).all() and np.isfinite(output[0]).all()
    elif BACKEND == "tensorflow":
        import tensorflow as tf

        with pytest.raises(tf.errors.InvalidArgumentError, match=r"5 is not in \[0, 5\)"):
            unchecked(tokens)
    else:
        with pytest.raises(IndexError, match="index out of range"):
            unchecked(tokens)
    checked = AuxLossLSTM(4, vocab_size=5, bptt=3, aux_length=3, validate_inputs=True)
    with pytest.raises(Exception, match=r"outside \[0, vocab_size=5\)"):
        checked(tokens)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="ragged and sparse tensors are TensorFlow's")
@pytest.mark.parametrize("kind", ["ragged", "sparse"])
def test_ragged_and_sparse_inputs_are_refused_with_what_to_pass(kind):
    import tensorflow as tf

    ragged = tf.ragged.constant([[1, 2, 3], [4, 1]], dtype="int32")
    inputs = ragged if kind == "ragged" else tf.sparse.from_dense(ragged.to_tensor())
    layer = AuxLossLSTM(4, vocab_size=5, bptt=2, aux_length=2)
    with pytest.raises(ValueError, match=f"(?i){kind}tensor.*dense.*mask"):
        layer(inputs)
