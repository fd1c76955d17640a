"""The everyday workflow: any input, held-out auxiliary loss, several layers."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from support import repeating_tokens

from keras_auxloss import AuxLossLSTM, auxiliary
from keras_auxloss.aux_loss_rnn import HELD_OUT_SEED
from keras_auxloss.testing import fix_window_starts
from keras_auxloss.windows import sample_window_starts

LENGTH = 40


def token_layer(units=8, **options):
    options = {
        "vocab_size": 8,
        "embedding_dim": 4,
        "bptt": 10,
        "aux_length": 12,
        "num_anchors": 2,
        "seed": 0,
        **options,
    }
    return AuxLossLSTM(units, **options)


def token_model(**options):
    return keras.Sequential(
        [keras.Input((LENGTH,), dtype="int32"), token_layer(**options), keras.layers.Dense(3)]
    )


# ------------------------------------------------------------------- inputs


@pytest.mark.parametrize("training", [False, True])
def test_a_variable_input_gives_the_tensor_output_and_gradient(training):
    layer = AuxLossLSTM(8, bptt=10, aux_length=12, aux_dropout=0.0, seed=0)
    values = np.random.default_rng(0).normal(size=(2, LENGTH, 3)).astype("float32")
    variable, tensor = tf.Variable(values), tf.constant(values)
    with tf.GradientTape() as tape:  # A variable is watched without asking.
        from_variable = tf.reduce_sum(layer(variable, training=training))
    variable_gradient = tape.gradient(from_variable, variable)
    with tf.GradientTape() as tape:
        tape.watch(tensor)
        from_tensor = tf.reduce_sum(layer(tensor, training=training))
    np.testing.assert_array_equal(from_variable.numpy(), from_tensor.numpy())
    np.testing.assert_array_equal(variable_gradient, tape.gradient(from_tensor, tensor))
    assert np.any(variable_gradient.numpy() != 0)


@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int16", "uint32", "int64"])
def test_token_ids_of_any_integer_dtype_read_as_int32(dtype):
    layer = token_layer(mask_zero=True)
    tokens = repeating_tokens(4)
    tokens[1, 30:] = 0
    expected = layer(tokens).numpy()
    np.testing.assert_array_equal(layer(tokens.astype(dtype)).numpy(), expected)
    np.testing.assert_array_equal(layer(tf.constant(tokens.astype(dtype))).numpy(), expected)


def test_uint8_pixels_train_in_fit():
    model = token_model()
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = repeating_tokens(16).astype("uint8")
    history = model.fit(x, np.arange(16) % 3, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0]) and history["aux_loss"][0] > 0


# -------------------------------------------------------- held-out aux loss


@pytest.mark.any_backend
def test_pretraining_fit_lowers_the_aux_loss_and_the_held_out_aux_loss():
    model = token_model(units=16, embedding_dim=8, aux_dropout=0.0)
    model.compile(keras.optimizers.Adam(1e-2))  # The auxiliary loss alone.
    x = repeating_tokens()
    history = model.fit(x, validation_data=(x[:8],), epochs=6, batch_size=8, verbose=0).history
    assert len(history["aux_loss"]) == 6
    # Held out: measured in evaluation, not a zero.
    assert history["val_aux_loss"][-1] < history["val_aux_loss"][0]
    assert history["aux_loss"][-1] < 0.9 * history["aux_loss"][0]
    np.testing.assert_allclose(history["aux_loss"], history["loss"], rtol=1e-5)


def test_pretraining_fit_logs_the_held_out_aux_loss_and_early_stopping_stops():
    model = token_model()
    model.compile(keras.optimizers.Adam(1e-2))  # The auxiliary loss alone.
    x = repeating_tokens(32)
    stop = keras.callbacks.EarlyStopping("val_aux_loss", mode="min", patience=0, min_delta=10.0)
    history = model.fit(
        x, validation_data=(x[:8],), epochs=5, batch_size=8, verbose=0, callbacks=[stop]
    ).history
    assert len(history["val_aux_loss"]) == 2  # Stopped: no gain of 10 nats.
    assert all(value > 0 for value in history["val_aux_loss"])
    np.testing.assert_allclose(history["val_loss"], history["val_aux_loss"], rtol=1e-6)


def test_evaluate_measures_the_aux_loss_as_training_would_without_dropout():
    model = token_model(aux_dropout=0.5)
    layer = model.layers[0]
    x = repeating_tokens(8)
    model.compile("adam")
    first = model.evaluate(x, batch_size=8, return_dict=True, verbose=0)
    again = model.evaluate(x, batch_size=8, return_dict=True, verbose=0)
    assert first["aux_loss"] > 0 and first["aux_loss"] == again["aux_loss"]
    # The same anchors and no dropout in a training call measure the same.
    ends = tf.fill((8,), LENGTH)
    starts = sample_window_starts(ends, 2, 12, HELD_OUT_SEED)
    fix_window_starts(layer, starts)
    layer.aux_dropout = 0.0
    layer(x, training=True)
    (training_loss,) = layer.losses
    np.testing.assert_allclose(first["aux_loss"], float(training_loss), rtol=1e-5)


def test_predict_and_direct_calls_run_no_decoder(monkeypatch):
    model = token_model()
    layer = model.layers[0]
    calls = []
    measure = auxiliary.AuxiliaryDecoder.loss
    monkeypatch.setattr(
        auxiliary.AuxiliaryDecoder,
        "loss",
        lambda *args, **kwargs: calls.append(1) or measure(*args, **kwargs),
    )
    x = repeating_tokens(8)
    model.compile("adam")
    model.predict(x, verbose=0)
    layer(x)
    assert calls == []
    model.evaluate(x, verbose=0)
    assert calls


# --------------------------------------------------------- several layers


def test_two_layers_log_two_names_and_the_loss_adds_both():
    tokens = keras.Input((LENGTH,), dtype="int32")
    first = token_layer(return_sequences=True)
    second = AuxLossLSTM(8, bptt=10, aux_length=12, aux_dropout=0.0, seed=1)
    model = keras.Model(tokens, keras.layers.Dense(3)(second(first(tokens))))
    cross_entropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile("adam", cross_entropy)
    x, y = repeating_tokens(8), np.arange(8) % 3
    history = model.fit(x, y, epochs=1, batch_size=8, verbose=0).history
    assert history["aux_loss"][0] > 0 and history["aux_loss_1"][0] > 0
    assert (first.aux_loss_metric_name, second.aux_loss_metric_name) == ("aux_loss", "aux_loss_1")
    logs = model.evaluate(x, y, batch_size=8, return_dict=True, verbose=0)
    supervised = float(cross_entropy(y, model.predict(x, verbose=0)))
    total = supervised + logs["aux_loss"] + logs["aux_loss_1"]
    np.testing.assert_allclose(logs["loss"], total, rtol=1e-5)


def test_a_named_layer_logs_under_its_name():
    assert token_layer(name="encoder").aux_loss_metric_name == "encoder_aux_loss"


def test_metric_names_do_not_depend_on_what_the_process_built_before():
    x, y = repeating_tokens(8), np.arange(8) % 3
    names = []
    for _ in range(3):  # A loop over seeds, without clear_session.
        model = token_model()
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        history = model.fit(x, y, validation_data=(x, y), epochs=1, verbose=0).history
        names.append(sorted(history))
    assert model.layers[0].name != "aux_loss_lstm"  # Keras numbered it...
    assert names[0] == names[1] == names[2]  # ... but it logs as the first did.
    assert {"aux_loss", "val_aux_loss"} <= set(names[0])


def test_early_stopping_on_val_aux_loss_stops_in_a_process_that_built_a_model_before():
    token_model()  # Another model first: its layer took Keras's default name.
    model = token_model()
    model.compile(keras.optimizers.Adam(1e-2))  # Pretraining: the auxiliary loss alone.
    x = repeating_tokens(32)
    stop = keras.callbacks.EarlyStopping("val_aux_loss", mode="min", patience=0, min_delta=10.0)
    history = model.fit(
        x, validation_data=(x[:8],), epochs=5, batch_size=8, verbose=0, callbacks=[stop]
    ).history
    assert len(history["val_aux_loss"]) == 2 and stop.stopped_epoch == 1
