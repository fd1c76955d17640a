"""The core behaviour on whichever backend Keras runs (`KERAS_BACKEND`).

`make test` runs this file under TensorFlow with the rest of the suite and
again under JAX in a process of its own; `make test-torch` runs it under
PyTorch. Gradients come from each backend's own autodiff (`gradient_per_step`).
"""

import os

import keras
import numpy as np
import pytest
from keras import ops
from support import needs_keras

from keras_auxloss import AuxLossGRU, AuxLossLSTM
from keras_auxloss.testing import fix_window_starts

BACKEND = keras.backend.backend()
DATA = os.path.join(os.path.dirname(__file__), os.pardir, "data")
LENGTH = 40
FEATURES = 3


def float_inputs(batch=2, length=LENGTH, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch, length, FEATURES)).astype("float32")


def gradient_per_step(layer, x, of):
    """`|d of(outputs, losses) / d x|` summed over features, `(batch, time)`,
    from a training call of `layer`, with the backend's own autodiff."""
    layer(x)  # Built (inference draws no anchors).
    if BACKEND == "tensorflow":
        import tensorflow as tf

        x = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            target = of(layer(x, training=True), layer.losses)
        grad = tape.gradient(target, x)
    elif BACKEND == "jax":
        import jax

        trainable = [v.value for v in layer.trainable_variables]
        non_trainable = [v.value for v in layer.non_trainable_variables]

        def target(x):
            outputs, _, losses = layer.stateless_call(
                trainable, non_trainable, x, training=True, return_losses=True
            )
            return of(outputs, losses)

        grad = jax.grad(target)(x)
    else:
        import torch

        x = torch.tensor(x, requires_grad=True)
        of(layer(x, training=True), layer.losses).backward()
        grad = x.grad
    return np.abs(ops.convert_to_numpy(grad)).sum(axis=-1)


def output_sum(outputs, losses):
    return ops.sum(outputs)


def auxiliary_loss(outputs, losses):
    (loss,) = losses
    return loss


@pytest.mark.parametrize("aux_loss", ["reconstruct", "predict", None])
def test_supervised_gradient_reaches_only_the_last_bptt_steps(aux_loss):
    layer = AuxLossLSTM(8, aux_loss=aux_loss, bptt=10, aux_length=5, seed=0)
    grad = gradient_per_step(layer, float_inputs(), output_sum)
    assert np.all(grad[:, : LENGTH - 10] == 0)
    assert np.all(grad[:, LENGTH - 10 :] > 0)


@pytest.mark.parametrize("layer_class", [AuxLossLSTM, AuxLossGRU])
@pytest.mark.parametrize("aux_loss", ["reconstruct", "predict"])
def test_auxiliary_gradient_reaches_only_its_windows(layer_class, aux_loss):
    # Example 0: two disjoint windows; example 1: the same window twice.
    starts, length = [[3, 20], [25, 25]], 6
    layer = layer_class(
        8, aux_loss=aux_loss, aux_length=length, bptt=5, num_anchors=2, aux_dropout=0.0, seed=0
    )
    fix_window_starts(layer, starts)
    grad = gradient_per_step(layer, float_inputs(), auxiliary_loss)
    expected = np.zeros_like(grad, dtype=bool)
    for example, example_starts in enumerate(starts):
        for start in example_starts:
            expected[example, start : start + length] = True
    np.testing.assert_array_equal(grad > 0, expected)


@pytest.mark.parametrize("return_sequences", [False, True])
def test_values_equal_keras_lstm(return_sequences):
    x = float_inputs(batch=3)
    layer = AuxLossLSTM(
        6, aux_loss="reconstruct", bptt=8, aux_length=5, return_sequences=return_sequences
    )
    keras_lstm = keras.layers.LSTM(6, return_sequences=return_sequences)
    ours = ops.convert_to_numpy(layer(x))
    keras_lstm(x)
    keras_lstm.set_weights(layer.cell.get_weights())
    np.testing.assert_allclose(ours, ops.convert_to_numpy(keras_lstm(x)), atol=1e-5)


def test_token_values_equal_keras_embedding_and_lstm():
    tokens = np.random.default_rng(1).integers(0, 11, size=(3, 30)).astype("int32")
    layer = AuxLossLSTM(6, vocab_size=11, embedding_dim=4, bptt=8, aux_length=5)
    ours = ops.convert_to_numpy(layer(tokens))
    embedding, keras_lstm = keras.layers.Embedding(11, 4), keras.layers.LSTM(6)
    keras_lstm(embedding(tokens))
    embedding.set_weights(layer.embedding.get_weights())
    keras_lstm.set_weights(layer.cell.get_weights())
    np.testing.assert_allclose(ours, ops.convert_to_numpy(keras_lstm(embedding(tokens))), atol=1e-5)


def token_model(aux_loss="reconstruct", seed=0, **options):
    return keras.Sequential(
        [
            keras.Input((LENGTH,), dtype="int32"),
            AuxLossLSTM(
                16,
                vocab_size=8,
                embedding_dim=8,
                aux_loss=aux_loss,
                bptt=10,
                aux_length=12,
                num_anchors=2,
                aux_dropout=0.0,
                seed=seed,
                **options,
            ),
            keras.layers.Dense(3),
        ]
    )


def repeating_tokens(batch=32):
    """Sequences that repeat a 4-token motif: easy to reconstruct."""
    rng = np.random.default_rng(0)
    motifs = rng.integers(1, 8, size=(batch, 4))
    return np.tile(motifs, (1, LENGTH // 4)).astype("int32")


def test_fit_logs_and_lowers_aux_loss():
    model = token_model()
    model.compile(keras.optimizers.Adam(1e-2))  # The auxiliary loss alone.
    x = repeating_tokens()
    history = model.fit(x, validation_data=(x[:8],), epochs=6, batch_size=8, verbose=0).history
    assert len(history["aux_loss"]) == 6
    # Held out: measured in evaluation, not a zero.
    assert history["val_aux_loss"][-1] < history["val_aux_loss"][0]
    assert history["aux_loss"][-1] < 0.9 * history["aux_loss"][0]
    np.testing.assert_allclose(history["aux_loss"], history["loss"], rtol=1e-5)


@pytest.mark.parametrize("training", [False, True])
def test_padded_outputs_equal_each_sequence_alone(training):
    lengths = [LENGTH, 30]
    tokens = repeating_tokens(batch=2)
    tokens[1, lengths[1] :] = 0
    layer = token_model(aux_loss=None, mask_zero=True).layers[0]
    padded = ops.convert_to_numpy(layer(tokens, training=training))
    for i, length in enumerate(lengths):
        alone = ops.convert_to_numpy(layer(tokens[i : i + 1, :length], training=training))
        np.testing.assert_allclose(padded[i : i + 1], alone, atol=1e-5)


def test_keras_file_round_trip_predicts_the_same(tmp_path):
    model = token_model()
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = repeating_tokens(8)
    model.fit(x, np.zeros(8, "int32"), epochs=1, verbose=0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


@needs_keras(
    "3.15",
    "the file was saved by Keras 3.15.1, whose configs hold arguments older Keras "
    "refuses (Dense's quantization_config, from 3.13; GlorotUniform's input_axes, from 3.15)",
)
def test_a_file_saved_on_tensorflow_loads_and_predicts_the_same():
    """Written by keras-auxloss 0.1.0 on TensorFlow (see test_compatibility)."""
    model = keras.saving.load_model(os.path.join(DATA, "aux_loss_lstm_0.1.0.keras"))
    saved = np.load(os.path.join(DATA, "aux_loss_lstm_0.1.0.npz"))
    np.testing.assert_allclose(
        model.predict(saved["x"], verbose=0), saved["predictions"], atol=1e-5
    )


def fitted_weights(seed):
    keras.utils.set_random_seed(seed)
    model = token_model(seed=seed)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = repeating_tokens(16)
    model.fit(x, np.arange(16) % 3, epochs=2, batch_size=8, verbose=0)
    return model.get_weights()


def test_seeded_training_is_deterministic():
    first, again, other = fitted_weights(5), fitted_weights(5), fitted_weights(6)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, c) for a, c in zip(first, other))


def test_mixed_precision_trains_and_outputs_the_policy_dtype():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    model = token_model()
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = repeating_tokens(16)
    history = model.fit(x, np.arange(16) % 3, epochs=2, batch_size=8, verbose=0).history
    assert np.all(np.isfinite(history["loss"])) and history["aux_loss"][0] > 0
    layer = model.layers[0]
    assert keras.backend.standardize_dtype(layer(x).dtype) == "bfloat16"
    assert layer.cell.kernel.dtype == "float32"


def test_stateful_chunks_equal_the_whole_sequence():
    x = repeating_tokens(batch=4)
    whole = token_model(aux_loss="reconstruct").layers[0]
    expected = ops.convert_to_numpy(whole(x))
    inputs = keras.Input((LENGTH // 4,), dtype="int32", batch_size=4)
    layer = AuxLossLSTM(
        16, vocab_size=8, embedding_dim=8, bptt=4, aux_length=4, stateful=True, seed=0
    )
    model = keras.Model(inputs, layer(inputs))
    layer.embedding.set_weights(whole.embedding.get_weights())
    layer.cell.set_weights(whole.cell.get_weights())
    for start in range(0, LENGTH, LENGTH // 4):
        last = model.predict_on_batch(x[:, start : start + LENGTH // 4])
    np.testing.assert_allclose(last, expected, atol=1e-5)
    layer.reset_state()
    assert all(np.abs(ops.convert_to_numpy(v)).max() == 0 for v in layer.states)
