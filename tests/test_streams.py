"""Streams too long for one batch: `stateful=True`, `reset_state()` and the
`initial_state` call argument, as `keras.layers.LSTM` has them."""

import keras
import numpy as np
import pytest
from support import numpy

from keras_auxloss import AuxLossGRU, AuxLossLSTM

BATCH, CHUNK, CHUNKS = 4, 40, 3
OPTIONS = dict(vocab_size=8, embedding_dim=4, bptt=10, aux_length=12, aux_dropout=0.0, seed=0)


def stream(length=CHUNK * CHUNKS, seed=0):
    return np.random.default_rng(seed).integers(1, 8, size=(BATCH, length)).astype("int32")


def stateful_model(layer_class=AuxLossLSTM, **options):
    inputs = keras.Input((CHUNK,), dtype="int32", batch_size=BATCH)
    layer = layer_class(8, stateful=True, return_sequences=True, **{**OPTIONS, **options})
    return keras.Model(inputs, layer(inputs)), layer


def copy_main_network(source, target):
    target.embedding.set_weights(source.embedding.get_weights())
    target.cell.set_weights(source.cell.get_weights())


@pytest.mark.any_backend
@pytest.mark.parametrize("layer_class", [AuxLossLSTM, AuxLossGRU])
@pytest.mark.parametrize("training", [False, True])
def test_chunk_by_chunk_equals_the_whole_sequence(layer_class, training):
    x = stream()
    x[2, 100:] = 0  # Padding at the end of one stream, masked.
    whole = layer_class(8, return_sequences=True, mask_zero=True, **OPTIONS)
    expected = numpy(whole(x))
    _, layer = stateful_model(layer_class, mask_zero=True)
    layer(x[:, :CHUNK])
    copy_main_network(whole, layer)
    layer.reset_state()
    chunks = [
        numpy(layer(x[:, i : i + CHUNK], training=training)) for i in range(0, x.shape[1], CHUNK)
    ]
    np.testing.assert_allclose(np.concatenate(chunks, axis=1), expected, atol=1e-6)


@pytest.mark.any_backend
def test_reset_state_zeroes_the_state_and_sets_given_values():
    model, layer = stateful_model()
    model.predict_on_batch(stream()[:, :CHUNK])
    assert all(np.abs(numpy(v)).max() > 0 for v in layer.states)
    layer.reset_state()
    assert all(np.abs(numpy(v)).max() == 0 for v in layer.states)
    values = [np.full((BATCH, 8), 0.5, "float32")] * 2
    layer.reset_state(values)
    np.testing.assert_array_equal(numpy(layer.states[1]), values[1])


def test_a_stateful_model_trains_across_chunks_with_per_step_labels():
    model, layer = stateful_model()
    outputs = keras.layers.Dense(3)(model.outputs[0])
    model = keras.Model(model.inputs, outputs)
    model.compile(
        keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    x = stream(CHUNK * 6)
    labels = (np.cumsum(x, axis=1) % 3).astype("int32")  # Depends on the whole past.
    chunks = np.concatenate([x[:, i : i + CHUNK] for i in range(0, x.shape[1], CHUNK)])
    chunk_labels = np.concatenate([labels[:, i : i + CHUNK] for i in range(0, x.shape[1], CHUNK)])
    history = {"loss": [], "aux_loss": []}
    for _ in range(3):
        layer.reset_state()
        logs = model.fit(
            chunks, chunk_labels, batch_size=BATCH, shuffle=False, epochs=1, verbose=0
        ).history
        for name in history:
            history[name] += logs[name]
    assert history["loss"][-1] < history["loss"][0]
    assert history["aux_loss"][-1] < history["aux_loss"][0]
    assert all(np.abs(v.numpy()).max() > 0 for v in layer.states)


@pytest.mark.parametrize("return_sequences", [False, True])
def test_initial_state_gives_keras_lstm_values(return_sequences):
    x = stream()
    rng = np.random.default_rng(1)
    initial = [rng.normal(size=(BATCH, 8)).astype("float32") for _ in range(2)]
    layer = AuxLossLSTM(8, return_sequences=return_sequences, **OPTIONS)
    ours = layer(x, initial_state=initial).numpy()
    embedding, lstm = (
        keras.layers.Embedding(8, 4),
        keras.layers.LSTM(8, return_sequences=return_sequences),
    )
    lstm(embedding(x))
    copy_main_network(layer, type("Pair", (), {"embedding": embedding, "cell": lstm})())
    np.testing.assert_allclose(ours, lstm(embedding(x), initial_state=initial).numpy(), atol=1e-5)


@pytest.mark.parametrize("bptt", [10, None])
def test_the_initial_state_is_cut_from_the_gradient_where_truncation_starts(bptt):
    import tensorflow as tf

    layer = AuxLossLSTM(8, **{**OPTIONS, "bptt": bptt})
    initial = [tf.constant(np.full((BATCH, 8), 0.3, "float32")) for _ in range(2)]
    with tf.GradientTape() as tape:
        tape.watch(initial)
        output = tf.reduce_sum(layer(stream(), initial_state=initial, training=True))
    gradients = tape.gradient(output, initial)
    if bptt is None:  # Full backpropagation reaches it, as in keras.layers.LSTM.
        assert np.abs(gradients[0].numpy()).max() > 0
    else:
        assert all(g is None or np.abs(g.numpy()).max() == 0 for g in gradients)


def test_bad_initial_state_and_unknown_batch_size_are_named():
    layer = AuxLossLSTM(8, **OPTIONS)
    with pytest.raises(ValueError, match=r"initial_state.*2 tensors.*\(None, 8\).*got 1"):
        layer(stream(), initial_state=[np.zeros((BATCH, 8), "float32")])
    with pytest.raises(ValueError, match="stateful=True needs a fixed batch size"):
        AuxLossLSTM(8, stateful=True, **OPTIONS)(keras.Input((CHUNK,), dtype="int32"))
    with pytest.raises(AttributeError, match="not stateful"):
        layer.reset_state()


def test_a_stateful_model_round_trips_through_a_keras_file(tmp_path):
    model, layer = stateful_model()
    x = stream()[:, :CHUNK]
    model.predict_on_batch(x)
    path = str(tmp_path / "stateful.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.layers[1].stateful
    np.testing.assert_allclose(loaded.predict_on_batch(x), model.predict_on_batch(x), atol=1e-6)
