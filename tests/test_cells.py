"""`AuxLossRNN` with any Keras cell: Keras's LSTM, GRU and SimpleRNN cells
and a cell of our own with two state tensors of different sizes.

Values and gradients are checked against Keras's own recurrent layers
(`keras.layers.LSTM`, `GRU`, `SimpleRNN`, or `keras.layers.RNN(cell)`) run
window by window on copied weights; truncation by where gradients are
exactly zero. The gradients come from `tf.GradientTape`, so those tests run
on TensorFlow; the values at inference are checked on every backend.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops
from support import copy_task, float_inputs, keras_rnn, needs_keras, numpy

from keras_auxloss import AuxLossGRU, AuxLossRNN
from keras_auxloss.testing import fix_window_starts

LENGTH, FEATURES, UNITS = 30, 3, 5


@keras.saving.register_keras_serializable(package="keras_auxloss_tests")
class TwoStateCell(keras.layers.Layer):
    """A small cell with two state tensors of different sizes: `h`
    (`units`) and a slower memory `m` (`2 * units`)."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = [units, 2 * units]
        self.output_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3 * self.units), name="kernel")
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, 3 * self.units), name="recurrent_kernel"
        )
        self.memory_kernel = self.add_weight(shape=(2 * self.units, self.units), name="memory")

    def call(self, inputs, states):
        h, m = states
        z = ops.matmul(inputs, self.kernel) + ops.matmul(h, self.recurrent_kernel)
        m = 0.5 * m + 0.5 * ops.tanh(z[:, self.units :])
        h = ops.tanh(z[:, : self.units] + ops.matmul(m, self.memory_kernel))
        return h, [h, m]

    def get_config(self):
        return {**super().get_config(), "units": self.units}


CELLS = {
    "lstm": keras.layers.LSTMCell,
    "gru": keras.layers.GRUCell,
    "simple_rnn": keras.layers.SimpleRNNCell,
    "two_state": TwoStateCell,
}


def inputs():
    """Float inputs as a TensorFlow tensor, for `tf.GradientTape`."""
    return tf.constant(float_inputs(length=LENGTH, features=FEATURES))


def make_layer(kind, **options):
    defaults = dict(aux_length=8, bptt=4, aux_hidden=7, aux_dropout=0.0, seed=0)
    return AuxLossRNN(CELLS[kind](UNITS), **{**defaults, **options})


def zeros(cell):
    return [tf.zeros((1, size)) for size in keras.tree.flatten(cell.state_size)]


@pytest.mark.any_backend
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("kind", CELLS)
def test_inference_equals_the_keras_layer(kind, return_sequences):
    x = float_inputs(length=LENGTH, features=FEATURES)
    options = dict(return_sequences=return_sequences, return_state=True)
    layer = make_layer(kind, **options)
    ours = layer(x)
    theirs = keras_rnn(layer.cell, FEATURES, **options)(x)
    assert len(ours) == 1 + len(keras.tree.flatten(layer.cell.state_size))
    for got, want in zip(ours, theirs):
        np.testing.assert_allclose(numpy(got), numpy(want), atol=1e-6)


@pytest.mark.parametrize("kind", CELLS)
def test_supervised_window_equals_the_keras_layer_from_the_cut_state(kind):
    x, bptt = inputs(), 7
    layer = make_layer(kind, aux_loss=None, bptt=bptt)
    layer.build(x.shape)
    keras_layer = keras_rnn(layer.cell, FEATURES, return_state=True)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        output = layer(x, training=True)
        state = [tf.stop_gradient(t) for t in keras_layer(x[:, : LENGTH - bptt])[1:]]
        expected = keras_layer(x[:, LENGTH - bptt :], initial_state=state)[0]
        loss, expected_loss = tf.reduce_sum(output**2), tf.reduce_sum(expected**2)
    np.testing.assert_allclose(output, expected, atol=1e-6)
    np.testing.assert_allclose(tape.gradient(loss, x), tape.gradient(expected_loss, x), atol=1e-6)
    gradient = tape.gradient(loss, x).numpy()
    assert np.all(gradient[:, : LENGTH - bptt] == 0)
    for got, want in zip(
        tape.gradient(loss, layer.cell.trainable_weights),
        tape.gradient(expected_loss, keras_layer.trainable_weights),
    ):
        np.testing.assert_allclose(got, want, atol=1e-5)


def reference_aux_loss(layer, x, starts):
    """The auxiliary loss one window at a time with Keras's layers: each
    window runs the main network from the state before it, cut from the
    gradient; the reconstruction decoder's bottom layer, of the main cell's
    kind, starts from the main network's full state at the anchor."""
    span = layer.aux_length
    main = keras_rnn(layer.cell, FEATURES, return_sequences=True, return_state=True)
    decoder = []
    for i, cell in enumerate(layer.decoder_cells):
        input_dim = (
            (FEATURES if layer.aux_loss == "reconstruct" else layer.units) if i == 0 else UNITS
        )
        decoder.append(keras_rnn(cell, input_dim, return_sequences=True))
    per_token = []
    for b, example_starts in enumerate(starts):
        for s in example_starts:
            state = zeros(layer.cell)
            if s > 0:
                state = [tf.stop_gradient(t) for t in main(x[b : b + 1, :s])[1:]]
            outputs, *final = main(x[b : b + 1, s : s + span], initial_state=state)
            if layer.aux_loss == "reconstruct":
                window = tf.stop_gradient(x[b : b + 1, s : s + span - 1])
                hidden = decoder[0](window, initial_state=final)
                targets = x[b : b + 1, s + 1 : s + span]
            else:
                hidden = decoder[0](outputs)
                targets = x[b : b + 1, s + 1 : s + span + 1]
            for rnn in decoder[1:]:
                hidden = rnn(hidden)
            predictions = layer.head_output(layer.head_hidden(hidden))
            per_token.append(tf.reduce_mean(tf.square(predictions - tf.stop_gradient(targets)), -1))
    return tf.reduce_mean(tf.concat(per_token, axis=1)), main, decoder


@pytest.mark.parametrize("aux_loss", ["reconstruct", "predict"])
@pytest.mark.parametrize("kind", CELLS)
def test_auxiliary_loss_and_gradients_equal_keras_window_by_window(kind, aux_loss):
    # Overlapping, nested and repeated windows, one starting at step 0.
    starts = [[0, 2, 9], [12, 12, 3]]
    x = inputs()
    layer = make_layer(kind, aux_loss=aux_loss, num_anchors=3, aux_units=UNITS)
    layer.build(x.shape)
    fix_window_starts(layer, starts)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        layer(x, training=True)
        (loss,) = layer.losses
        expected, main, decoder = reference_aux_loss(layer, x, starts)

    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    gradient = tape.gradient(loss, x).numpy()
    np.testing.assert_allclose(gradient, tape.gradient(expected, x), atol=1e-6)
    # Exactly zero outside the windows, nonzero inside.
    inside = np.zeros(gradient.shape[:2], bool)
    for b, example_starts in enumerate(starts):
        for s in example_starts:
            inside[b, s : s + layer.aux_length] = True
    np.testing.assert_array_equal(np.abs(gradient).sum(-1) > 0, inside)
    pairs = [(layer.cell, main)] + list(zip(layer.decoder_cells, decoder))
    for ours, theirs in pairs:
        for got, want in zip(
            tape.gradient(loss, ours.trainable_weights),
            tape.gradient(expected, theirs.trainable_weights),
        ):
            np.testing.assert_allclose(got, want, atol=1e-6)


def test_reconstruction_decoder_starts_with_a_cell_of_the_main_kind():
    layer = make_layer("two_state")
    assert type(layer.decoder_cells[0]) is TwoStateCell
    assert [type(c) for c in layer.decoder_cells[1:]] == [keras.layers.LSTMCell]
    gru = AuxLossGRU(UNITS, aux_loss="predict")
    assert [type(c) for c in gru.decoder_cells] == [keras.layers.LSTMCell] * 2


def token_model(make):
    options = dict(
        vocab_size=6, embedding_dim=8, aux_length=10, bptt=6, aux_hidden=16, aux_dropout=0.0
    )
    model = keras.Sequential(
        [keras.Input((40,), dtype="int32"), make(options), keras.layers.Dense(2)]
    )
    model.compile(
        keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    return model


MODELS = {
    "gru": lambda options: AuxLossGRU(16, seed=0, **options),
    "two_state": lambda options: AuxLossRNN(TwoStateCell(16), seed=0, **options),
}


@pytest.mark.parametrize("kind", MODELS)
def test_fit_logs_and_lowers_aux_loss(kind):
    x, y = copy_task()
    history = token_model(MODELS[kind]).fit(x, y, epochs=8, batch_size=16, verbose=0).history
    assert history["aux_loss"][-1] < 0.8 * history["aux_loss"][0]


@pytest.mark.parametrize("kind", MODELS)
@needs_keras("3.6", "passes verbose= to Model.export, which Keras 3.6 added")
def test_keras_file_round_trip_and_saved_model_export(tmp_path, kind):
    x, y = copy_task(16)
    model = token_model(MODELS[kind])
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert type(loaded.layers[0].cell) is type(model.layers[0].cell)
    predictions = model.predict(x, verbose=0)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), predictions, atol=1e-6)
    for saved, restored in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(saved, restored)
    loaded.fit(x, y, epochs=1, verbose=0)

    model.export(str(tmp_path / "exported"), verbose=False)
    exported = tf.saved_model.load(str(tmp_path / "exported"))
    np.testing.assert_allclose(exported.serve(x), predictions, atol=1e-6)
    function = exported.serve.get_concrete_function(tf.TensorSpec((None, 40), tf.int32))
    assert not any("decoder" in v.name or "head" in v.name for v in function.variables)
