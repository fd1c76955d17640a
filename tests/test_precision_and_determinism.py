"""Mixed precision and reproducible training, on every backend; the
SavedModel export under mixed precision, on TensorFlow."""

import keras
import numpy as np
import pytest
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


def classifier(vocab_size, aux_loss="reconstruct", seed=5, **options):
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
        seed=seed,
        **options,
    )
    # The logits in float32, as Keras recommends under mixed precision.
    outputs = keras.layers.Dense(3, dtype="float32")(layer(inputs))
    model = keras.Model(inputs, outputs)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model, layer


POLICIES = pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
MODELS = pytest.mark.parametrize(
    "vocab_size, aux_loss", [(7, "reconstruct"), (7, "predict"), (None, "reconstruct")]
)


@pytest.mark.any_backend
@POLICIES
@MODELS
def test_mixed_precision_trains_and_round_trips(tmp_path, policy, vocab_size, aux_loss):
    keras.mixed_precision.set_global_policy(policy)
    x, y = data(vocab_size)
    model, layer = classifier(vocab_size, aux_loss)
    assert layer.compute_dtype == policy.split("_")[1]
    assert layer.cell.kernel.dtype == layer.cell.recurrent_kernel.dtype == "float32"
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0).history
    assert np.all(np.isfinite(history["loss"])) and np.all(np.isfinite(history["aux_loss"]))
    assert history["aux_loss"][0] > 0
    # Outputs in the policy's dtype; the loss computed and added in float32.
    assert keras.backend.standardize_dtype(layer(x).dtype) == layer.compute_dtype
    layer(x, training=True)
    (added,) = layer.losses
    assert keras.backend.standardize_dtype(added.dtype) == "float32"

    predictions = model.predict(x, verbose=0)
    model.save(tmp_path / "model.keras")
    np.testing.assert_array_equal(
        keras.saving.load_model(tmp_path / "model.keras").predict(x, verbose=0), predictions
    )


@needs_keras("3.6", "passes verbose= to Model.export, which Keras 3.6 added")
@POLICIES
@MODELS
def test_mixed_precision_saved_model_serves_the_predictions(tmp_path, policy, vocab_size, aux_loss):
    import tensorflow as tf

    keras.mixed_precision.set_global_policy(policy)
    x, y = data(vocab_size)
    model, _ = classifier(vocab_size, aux_loss)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    predictions = model.predict(x, verbose=0)
    model.export(str(tmp_path / "exported"), verbose=False)
    exported = tf.saved_model.load(str(tmp_path / "exported"))
    # The serving graph may order half-precision arithmetic differently:
    # agree to half precision (bfloat16 keeps 8 bits of mantissa, float16 11).
    atol = 1e-2 if policy == "mixed_bfloat16" else 2e-3
    np.testing.assert_allclose(exported.serve(x), predictions, atol=atol)


@pytest.mark.any_backend
@pytest.mark.parametrize("options", [{}, {"scheduled_sampling": 0.5}, {"aux_loss": "predict"}])
def test_seeded_training_is_reproducible(options):
    x, y = data(7)

    def train(seed):
        keras.utils.set_random_seed(seed)
        model, _ = classifier(7, seed=5 + seed, **options)
        model.fit(x, y, epochs=2, batch_size=4, verbose=0)
        return model.get_weights()

    first, second = train(0), train(0)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    if not options:  # The seed is what fixed it: another trains otherwise.
        other = train(1)
        assert any(not np.array_equal(a, c) for a, c in zip(first, other, strict=True))
