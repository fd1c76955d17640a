"""Files saved by earlier versions still load and predict the same values.

`tests/data/aux_loss_lstm_0.1.0.keras` was written by keras-auxloss 0.1.0
(commit e16228b): `AuxLossLSTM(8, vocab_size=12, embedding_dim=4, bptt=6,
aux_length=10, num_anchors=2, aux_hidden=5, seed=3)` and a `Dense(3)`,
trained for one epoch on TensorFlow; the `.npz` beside it holds its inputs
and the predictions 0.1.0 made. Every file here loads on every backend.
"""

import os

import keras
import numpy as np
import pytest
from support import needs_keras

import keras_auxloss

DATA = os.path.join(os.path.dirname(__file__), "data")

# The files were written with Keras 3.15.1, whose configurations hold
# arguments that older Keras refuses to load.
SAVED_BY_KERAS_3_15 = needs_keras(
    "3.15",
    "the file was saved by Keras 3.15.1, whose configs hold arguments older Keras "
    "refuses (Dense's quantization_config, from 3.13; GlorotUniform's input_axes, from 3.15)",
)


@pytest.mark.any_backend
@SAVED_BY_KERAS_3_15
def test_a_keras_file_saved_by_0_1_0_loads_and_predicts_the_same():
    model = keras.saving.load_model(os.path.join(DATA, "aux_loss_lstm_0.1.0.keras"))
    saved = np.load(os.path.join(DATA, "aux_loss_lstm_0.1.0.npz"))
    layer = model.get_layer("aux_loss_lstm")
    assert isinstance(layer, keras_auxloss.AuxLossLSTM)
    np.testing.assert_allclose(
        model.predict(saved["x"], verbose=0), saved["predictions"], atol=1e-6
    )
    # It also trains on.
    y = np.zeros(len(saved["x"]), "int32")
    history = model.fit(saved["x"], y, epochs=1, batch_size=8, verbose=0).history
    assert np.isfinite(history["loss"][0]) and history["aux_loss"][0] > 0


# Saved by keras-auxloss 0.2.0 (commit 321ed59), on TensorFlow:
# - `aux_loss_lstm_stateful_0.2.0.keras`: `AuxLossLSTM(8, vocab_size=12,
#   embedding_dim=4, bptt=5, aux_length=6, aux_hidden=5, stateful=True,
#   seed=3)` on batches of 8 chunks of 10 steps and a `Dense(3)`, trained for
#   one epoch on the first chunks, saved after predicting them: its carried
#   state (then among the weights) is in the file;
# - `aux_loss_gru_plain_0.2.0.keras`: `AuxLossGRU(8, aux_loss=None,
#   vocab_size=12, embedding_dim=4, bptt=5)` and a `Dense(3)` (0.2.0 gave it
#   a seed generator, which 0.3.0 no longer makes);
# - `files_0.2.0.npz`: the inputs `x`, the stateful model's carried states
#   and its predictions on the second chunks, the plain model's predictions.


@pytest.mark.any_backend
@SAVED_BY_KERAS_3_15
def test_a_stateful_file_saved_by_0_2_0_loads_with_its_carried_state():
    model = keras.saving.load_model(os.path.join(DATA, "aux_loss_lstm_stateful_0.2.0.keras"))
    saved = np.load(os.path.join(DATA, "files_0.2.0.npz"))
    layer = model.layers[1]
    for variable, state in zip(layer.states, saved["stateful_states"]):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), state, atol=1e-6)
    second = model.predict_on_batch(saved["x"][:, 10:])
    np.testing.assert_allclose(second, saved["stateful_second_chunk"], atol=1e-5)


@pytest.mark.any_backend
@SAVED_BY_KERAS_3_15
def test_a_plain_file_saved_by_0_2_0_loads_and_predicts_the_same():
    model = keras.saving.load_model(os.path.join(DATA, "aux_loss_gru_plain_0.2.0.keras"))
    saved = np.load(os.path.join(DATA, "files_0.2.0.npz"))
    np.testing.assert_allclose(
        model.predict(saved["x"], verbose=0), saved["plain_predictions"], atol=1e-5
    )
