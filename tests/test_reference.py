"""Token inputs: the layer's values equal `keras.layers.Embedding` and
`keras.layers.LSTM` on the same weights, on every backend. Values and
gradients window by window, for every kind of cell, are in `test_cells.py`."""

import keras
import numpy as np
import pytest
from support import keras_rnn, numpy

from keras_auxloss import AuxLossLSTM

LENGTH = 30


@pytest.mark.any_backend
@pytest.mark.parametrize("return_sequences", [False, True])
def test_inference_equals_keras_embedding_and_lstm(return_sequences):
    tokens = np.random.default_rng(0).integers(0, 11, size=(3, LENGTH))
    layer = AuxLossLSTM(
        6,
        vocab_size=11,
        embedding_dim=4,
        bptt=5,
        aux_length=4,
        return_sequences=return_sequences,
        return_state=True,
    )
    output, h, c = layer(tokens)
    embedding = keras.layers.Embedding(11, 4)
    embedding.build((None, LENGTH))
    embedding.set_weights(layer.embedding.get_weights())
    lstm = keras_rnn(layer.cell, 4, return_sequences=return_sequences, return_state=True)
    expected, expected_h, expected_c = lstm(embedding(tokens))
    np.testing.assert_allclose(numpy(output), numpy(expected), atol=1e-6)
    np.testing.assert_allclose(numpy(h), numpy(expected_h), atol=1e-6)
    np.testing.assert_allclose(numpy(c), numpy(expected_c), atol=1e-6)
