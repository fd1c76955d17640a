"""A peer's cell through `AuxLossRNN`: keras-lmu's `LMUCell` (an optional
extra, never a dependency: `pip install keras-lmu`) trains with the
reconstruction loss, truncated, and saves; skipped where keras-lmu is not
installed. keras-lmu is under its authors' own licence: the package only
runs it, as a user would."""

import keras
import numpy as np
import pytest
from support import gradient_per_step, numpy, output_sum, repeating_tokens

from keras_auxloss import AuxLossRNN

keras_lmu = pytest.importorskip("keras_lmu", reason="keras-lmu is an optional extra")

LENGTH, BPTT = 24, 5


def lmu_layer(**kwargs):
    cell = keras_lmu.LMUCell(
        memory_d=1,
        order=8,
        theta=LENGTH,
        hidden_cell=keras.layers.SimpleRNNCell(8),
        hidden_to_memory=False,
        memory_to_memory=False,
        input_to_hidden=True,
    )
    options = dict(vocab_size=8, embedding_dim=4, bptt=BPTT, aux_length=6, seed=0)
    return AuxLossRNN(cell, **{**options, **kwargs})


def test_lmu_cell_trains_with_the_reconstruction_loss_and_saves(tmp_path):
    tokens = repeating_tokens(batch=32, length=LENGTH)
    labels = tokens[:, 0] % 2
    inputs = keras.Input((LENGTH,), dtype="int32")
    logits = keras.layers.Dense(2)(lmu_layer()(inputs))
    model = keras.Model(inputs, logits)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(tokens, labels, epochs=8, batch_size=8, verbose=0).history
    assert history["aux_loss"][-1] < history["aux_loss"][0]
    path = str(tmp_path / "lmu.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_allclose(
        numpy(restored.predict(tokens, verbose=0)), numpy(model.predict(tokens, verbose=0)), 1e-6
    )


def test_lmu_cell_gradient_stays_in_the_window():
    layer = lmu_layer(aux_loss=None, vocab_size=None)
    x = np.random.default_rng(0).normal(size=(2, LENGTH, 3)).astype("float32")
    per_step = gradient_per_step(layer, x, of=output_sum)
    assert np.all(per_step[:, : LENGTH - BPTT] == 0)
    assert np.all(per_step[:, LENGTH - BPTT :].sum(axis=0) > 0)
