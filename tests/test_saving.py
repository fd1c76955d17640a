"""Config round trip, `.keras` saving (every backend) and SavedModel export
(TensorFlow)."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from support import needs_keras, numpy

from keras_auxloss import AuxLossLSTM

LENGTH = 30
VOCAB = 7


def trained_model(**layer_options):
    options = dict(
        vocab_size=VOCAB,
        embedding_dim=4,
        aux_length=6,
        bptt=4,
        num_anchors=2,
        aux_hidden=8,
        seed=3,
    )
    options.update(layer_options)
    model = keras.Sequential(
        [keras.Input((LENGTH,), dtype="int32"), AuxLossLSTM(8, **options), keras.layers.Dense(3)]
    )
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x = rng.integers(0, VOCAB, (16, LENGTH)).astype("int32")
    model.fit(x, rng.integers(0, 3, 16), epochs=1, batch_size=8, verbose=0)
    return model, x


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"aux_loss": "predict", "aux_units": 5, "aux_layers": 1, "bptt": None},
        {"aux_loss": None, "vocab_size": None, "return_sequences": True, "return_state": True},
        {
            "scheduled_sampling": 0.3,
            "vocab_size": 5,
            "aux_weight": 0.5,
            "aux_dropout": 0.0,
            "seed": None,
        },
    ],
)
def test_config_round_trip(options):
    layer = AuxLossLSTM(8, name="lstm", **options)
    config = layer.get_config()
    assert {key: config[key] for key in options} == options
    clone = AuxLossLSTM.from_config(config)
    assert clone.get_config() == config


@pytest.mark.any_backend
@pytest.mark.parametrize("aux_loss", ["reconstruct", "predict", None])
def test_keras_file_round_trip_predicts_the_same(tmp_path, aux_loss):
    model, x = trained_model(aux_loss=aux_loss)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    # Every weight, decoder included, comes back, and training goes on.
    for saved, restored in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(numpy(saved), numpy(restored))
    loaded.fit(x, np.zeros(len(x)), epochs=1, verbose=0)


@needs_keras("3.6", "passes verbose= to Model.export, which Keras 3.6 added")
def test_saved_model_export_serves_predict_values_without_the_decoder(tmp_path):

    model, x = trained_model()
    model.export(str(tmp_path / "exported"), verbose=False)
    exported = tf.saved_model.load(str(tmp_path / "exported"))
    np.testing.assert_allclose(exported.serve(x), model.predict(x, verbose=0), atol=1e-6)

    function = exported.serve.get_concrete_function(tf.TensorSpec((None, LENGTH), tf.int32))
    names = {v.name for v in function.variables}
    assert not any("decoder" in name or "head" in name for name in names)
    assert {n.split("/")[-1] for n in names} == {
        "embeddings:0",
        "kernel:0",
        "recurrent_kernel:0",
        "bias:0",
    }
    # One recurrent loop: the main LSTM over the whole sequence.
    loops = [name for name in function.graph._functions if "while_body" in name]
    assert len(loops) == 1
