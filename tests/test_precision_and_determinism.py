"""Mixed precision and reproducible training."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from support import needs_keras

from keras_auxloss import AuxLossLSTM

LENGTH = 30


def data(vocab_size, seed=0):
    rng = np.random.default_rng(seed)
    if vocab_size:
        x = rng.integers(0, vocab_size, (16, LENGTH)).astype("int32")
    else:
        x = rng.normal(size=(16, LENGTH, 3)).astype("float32")
    return x, rng.integers(0, 3, 16).astype("int32")


def classifier(vocab_size, aux_loss="reconstruct", **options):
    inputs = keras.Input(
        (LENGTH,) if vocab_size else (LENGTH, 3), dtype="int32" if vocab_size else None
    )
    layer = AuxLossLSTM(
        8,
        aux_loss=aux_loss,
        vocab_size=vocab_size,
        aux_length=6,
        bptt=4,
        embedding_dim=4,
        aux_hidden=8,
        num_anchors=2,
        seed=5,
        **options,
    )
    # The logits in float32, as Keras recommends under mixed precision.
    outputs = keras.layers.Dense(3, dtype="float32")(layer(inputs))
    model = keras.Model(inputs, outputs)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model, layer


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize(
    "vocab_size, aux_loss", [(7, "reconstruct"), (7, "predict"), (None, "reconstruct")]
)
@needs_keras("3.6", "passes verbose= to Model.export, which Keras 3.6 added")
def test_mixed_precision_trains_and_round_trips(tmp_path, policy, vocab_size, aux_loss):
    keras.mixed_precision.set_global_policy(policy)
    x, y = data(vocab_size)
    model, layer = classifier(vocab_size, aux_loss)
    assert layer.compute_dtype == policy.split("_")[1]
    assert layer.cell.recurrent_kernel.dtype == "float32"
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0).history
    assert np.all(np.isfinite(history["loss"])) and np.all(np.isfinite(history["aux_loss"]))
    layer(x, training=True)
    (added,) = layer.losses
    assert added.dtype == tf.float32  # Computed and added in float32.

    predictions = model.predict(x, verbose=0)
    model.save(tmp_path / "model.keras")
    np.testing.assert_array_equal(
        keras.saving.load_model(tmp_path / "model.keras").predict(x, verbose=0), predictions
    )
    model.export(str(tmp_path / "exported"), verbose=False)
    exported = tf.saved_model.load(str(tmp_path / "exported"))
    # The serving graph may order half-precision arithmetic differently:
    # agree to half precision (bfloat16 keeps 8 bits of mantissa, float16 11).
    atol = 1e-2 if policy == "mixed_bfloat16" else 2e-3
    np.testing.assert_allclose(exported.serve(x), predictions, atol=atol)


@pytest.mark.parametrize("options", [{}, {"scheduled_sampling": 0.5}, {"aux_loss": "predict"}])
def test_seeded_training_is_reproducible(options):
    x, y = data(7)

    def train():
        keras.utils.set_random_seed(0)
        model, _ = classifier(7, **options)
        model.fit(x, y, epochs=2, batch_size=4, verbose=0)
        return model.get_weights()

    first, second = train(), train()
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
