"""Files saved by earlier versions still load and predict the same values.

`tests/data/aux_loss_lstm_0.1.0.keras` was written by keras-auxloss 0.1.0
(commit e16228b): `AuxLossLSTM(8, vocab_size=12, embedding_dim=4, bptt=6,
aux_length=10, num_anchors=2, aux_hidden=5, seed=3)` and a `Dense(3)`,
trained for one epoch; the `.npz` beside it holds its inputs and the
predictions 0.1.0 made.
"""

import os

import keras
import numpy as np

import keras_auxloss

DATA = os.path.join(os.path.dirname(__file__), "data")


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
