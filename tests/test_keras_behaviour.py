"""Where the layers stand in for Keras's recurrent layers, they behave as
those do, on every backend: stateful batches, masks with gaps, masks of
shape `(batch, time, 1)`, mixed precision through a cell, the weights of a
stateful copy, short batches, negative token ids, the seed generator, bad
inputs. Each test fails on version 0.2.0."""

import keras
import numpy as np
import pytest
from keras import ops
from support import BACKEND, float_inputs, keras_rnn, numpy, repeating_tokens

from keras_auxloss import AuxLossGRU, AuxLossLSTM, AuxLossRNN
from keras_auxloss.testing import fix_window_starts

pytestmark = pytest.mark.any_backend

LENGTH = 20


def token_layer(layer_class=AuxLossLSTM, **options):
    defaults = dict(vocab_size=8, embedding_dim=4, bptt=5, aux_length=6, seed=0)
    return layer_class(6, **{**defaults, **options})


def test_a_stateful_layer_refuses_a_batch_of_another_size():
    layer = token_layer(stateful=True)
    inputs = keras.Input((LENGTH,), dtype="int32", batch_size=4)
    model = keras.Model(inputs, layer(inputs))
    model.predict(repeating_tokens(4, LENGTH), verbose=0)
    states = [numpy(v) for v in layer.states]
    with pytest.raises(ValueError, match="Expected batch size: 4; received batch size: 1"):
        layer(repeating_tokens(1, LENGTH))
    for variable, before in zip(layer.states, states):  # Left as they were.
        np.testing.assert_array_equal(numpy(variable), before)
    with pytest.raises(Exception, match="Expected batch size: 4"):
        model.predict(repeating_tokens(2, LENGTH), verbose=0)


@pytest.mark.parametrize("layer_class", [AuxLossLSTM, AuxLossGRU])
def test_a_mask_with_gaps_gives_the_same_outputs_in_training(layer_class):
    # Steps masked in the middle, where the supervised window starts.
    x = float_inputs(batch=2, length=12)
    mask = np.ones((2, 12), bool)
    mask[0, 6:9] = False  # The window (steps 7 to 11) opens on masked steps.
    mask[1, [2, 7, 8]] = False
    layer = layer_class(4, bptt=5, aux_length=4, return_sequences=True, seed=0)
    inference = numpy(layer(x, mask=mask))
    np.testing.assert_allclose(numpy(layer(x, mask=mask, training=True)), inference, atol=1e-6)
    expected = numpy(keras_rnn(layer.cell, 3, return_sequences=True)(x, mask=mask))
    np.testing.assert_allclose(inference, expected, atol=1e-6)


@pytest.mark.parametrize("training", [False, True])
def test_a_mask_of_shape_batch_time_1_is_a_mask_of_shape_batch_time(training):
    x = float_inputs(batch=3, length=12)
    mask = np.arange(12)[None, :] < np.array([[12], [9], [7]])
    layer = AuxLossLSTM(4, bptt=5, aux_length=4, aux_dropout=0.0, seed=0)
    fix_window_starts(layer, [[0], [1], [2]])
    expected = numpy(layer(x, mask=mask, training=training))
    got = layer(x, mask=mask[:, :, None], training=training)
    assert tuple(got.shape) == (3, 4)
    np.testing.assert_array_equal(numpy(got), expected)
    with pytest.raises(ValueError, match=r"mask of shape \(batch, time\) or \(batch, time, 1\)"):
        layer(x, mask=np.ones((3, 12, 2), bool))


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("training", [False, True])
def test_mixed_precision_through_a_cell_made_without_the_policy(return_sequences, training):
    # The cell computes in its own dtype (float32), the layer outputs its own
    # (float16), as keras.layers.RNN(cell, dtype="mixed_float16") does.
    x = float_inputs(batch=2, length=10)
    options = dict(return_sequences=return_sequences, bptt=4, aux_length=4, seed=0)
    layer = AuxLossRNN(keras.layers.GRUCell(8), dtype="mixed_float16", **options)
    output = layer(x, training=training)
    symbolic = layer.compute_output_spec(keras.KerasTensor(x.shape))
    assert keras.backend.standardize_dtype(output.dtype) == "float16" == symbolic.dtype
    keras_layer = keras.layers.RNN(
        keras.layers.GRUCell(8), dtype="mixed_float16", return_sequences=return_sequences
    )
    keras_layer.build(x.shape)
    keras_layer.set_weights(layer.cell.get_weights())
    np.testing.assert_allclose(numpy(output), numpy(keras_layer(x)), atol=1e-3)


def test_a_stateful_copy_takes_the_trained_weights():
    # Keras's way to serve a trained model on a stream.
    x = repeating_tokens(4, 3 * LENGTH)
    trained = keras.Sequential([keras.Input((3 * LENGTH,), dtype="int32"), token_layer()])
    inputs = keras.Input((LENGTH,), dtype="int32", batch_size=4)
    layer = token_layer(stateful=True)
    copy = keras.Model(inputs, layer(inputs))
    assert len(copy.get_weights()) == len(trained.get_weights())
    assert len(layer.weights) == len(trained.layers[0].weights)
    copy.set_weights(trained.get_weights())
    for start in range(0, 3 * LENGTH, LENGTH):
        last = copy.predict_on_batch(x[:, start : start + LENGTH])
    np.testing.assert_allclose(numpy(last), numpy(trained(x)), atol=1e-5)


def test_a_stateful_fit_carries_the_state_from_batch_to_batch():
    x = repeating_tokens(8, 2 * LENGTH)
    chunks = np.concatenate([x[:4, :LENGTH], x[:4, LENGTH:]])  # Batch 2 continues batch 1.
    inputs = keras.Input((LENGTH,), dtype="int32", batch_size=4)
    layer = token_layer(stateful=True, aux_dropout=0.0)
    model = keras.Model(inputs, layer(inputs))
    model.compile(keras.optimizers.SGD(0.0), lambda y, p: ops.mean(ops.square(p)))
    model.fit(chunks, np.zeros((8, 6)), batch_size=4, shuffle=False, epochs=1, verbose=0)
    whole = token_layer()
    whole.build((None, 2 * LENGTH))
    whole.set_weights(layer.get_weights())
    # After the second batch the state is that after the whole sequences.
    expected = numpy(whole(x[:4]))  # The LSTM's output is its state h.
    np.testing.assert_allclose(numpy(layer.states[0]), expected, atol=1e-5)


def test_without_an_auxiliary_loss_the_layer_holds_the_variables_of_keras_rnn():
    x = float_inputs(length=LENGTH)
    ours = AuxLossLSTM(4, aux_loss=None, bptt=None)
    ours(x)
    theirs = keras.layers.LSTM(4)
    theirs(x)
    assert len(ours.variables) == len(theirs.variables)
    assert len(ours.weights) == len(theirs.weights)


def test_a_model_on_input_none_trains_on_sequences_shorter_than_bptt():
    model = keras.Sequential(
        [keras.Input((None,), dtype="int32"), token_layer(bptt=10, aux_length=8)]
    )
    model.add(keras.layers.Dense(2))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    short, labels = repeating_tokens(8, 7), np.arange(8) % 2
    history = model.fit(short, labels, validation_data=(short, labels), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    # No room for an anchor's window: nothing to measure, not a failure.
    assert history.history["aux_loss"][0] == 0.0
    padded = np.pad(short, ((0, 0), (0, 13)))
    layer = model.layers[0]
    layer.mask_zero = True
    np.testing.assert_allclose(
        numpy(layer(short, training=True)), numpy(layer(padded, training=True)), atol=1e-6
    )


def test_negative_token_ids_train_as_the_embedding_reads_them():
    x, y = repeating_tokens(8, LENGTH), np.arange(8) % 2
    wrapped = np.where(x == 3, -5, x)  # -5 is read as 8 - 5 = 3.

    def trained(tokens):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((LENGTH,), dtype="int32"), token_layer()])
        model.add(keras.layers.Dense(2))
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        history = model.fit(tokens, y, epochs=2, batch_size=4, shuffle=False, verbose=0)
        return history.history, model.get_weights()

    (history, weights), (expected_history, expected_weights) = trained(wrapped), trained(x)
    np.testing.assert_allclose(history["aux_loss"], expected_history["aux_loss"], rtol=1e-6)
    for got, want in zip(weights, expected_weights):
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_an_infinite_aux_weight_is_refused():
    with pytest.raises(ValueError, match="argument `aux_weight`, expected a finite number"):
        token_layer(aux_weight=float("inf"))


def test_validate_inputs_stops_a_bad_batch_before_any_weight_changes():
    # One behaviour on every backend: the call fails with a message naming
    # the problem, before the bad batch's update; the error's type is the
    # backend runtime's (README, "Bad data").
    good, bad = repeating_tokens(4, LENGTH), repeating_tokens(4, LENGTH, seed=1)
    bad[2, 3] = 8

    def model():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((LENGTH,), dtype="int32")])
        model.add(token_layer(validate_inputs=True, aux_dropout=0.0))
        model.add(keras.layers.Dense(2))
        model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model

    # A good batch first, then the bad one.
    expected = model()
    expected.fit(good, np.zeros(4), batch_size=4, shuffle=False, verbose=0)
    stopped = model()
    errors = {"tensorflow": "InvalidArgumentError", "jax": "JaxRuntimeError"}
    with pytest.raises(Exception, match=r"got token ids outside \[0, vocab_size=8\)") as error:
        stopped.fit(
            np.concatenate([good, bad]), np.zeros(8), batch_size=4, shuffle=False, verbose=0
        )
    assert type(error.value).__name__ == errors.get(BACKEND, "ValueError")
    if BACKEND == "jax":
        return  # Keras's JAX trainer donated the weights to the failed step (README).
    for got, want in zip(stopped.get_weights(), expected.get_weights()):
        np.testing.assert_allclose(got, want, atol=1e-7)
