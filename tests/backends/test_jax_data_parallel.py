"""JAX, several devices: Keras's `DataParallel` trains as one device does.

Runs under JAX with two host devices (`make test` sets
`XLA_FLAGS=--xla_force_host_platform_device_count=2`); skipped otherwise.
"""

import keras
import numpy as np
import pytest

from keras_auxloss import AuxLossLSTM

if keras.backend.backend() != "jax":
    pytest.skip("JAX only", allow_module_level=True)

import jax  # noqa: E402

if len(jax.devices()) < 2:
    pytest.skip(
        "needs two devices: XLA_FLAGS=--xla_force_host_platform_device_count=2",
        allow_module_level=True,
    )


def train(distribution):
    """Losses and weights after 3 epochs of 4 steps, global batch 8."""
    keras.backend.clear_session()  # Layer names, so metric names, start again.
    keras.distribution.set_distribution(distribution)
    try:
        keras.utils.set_random_seed(7)
        rng = np.random.default_rng(0)
        x = rng.integers(0, 10, size=(32, 48)).astype("int32")
        y = rng.integers(0, 3, size=(32,)).astype("int32")
        model = keras.Sequential(
            [
                keras.Input((48,), dtype="int32"),
                AuxLossLSTM(
                    16,
                    vocab_size=10,
                    embedding_dim=8,
                    bptt=8,
                    aux_length=10,
                    num_anchors=2,
                    aux_dropout=0.0,
                    seed=3,
                ),
                keras.layers.Dense(3),
            ]
        )
        model.compile(
            keras.optimizers.Adam(1e-2),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        history = model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0).history
        return history, [np.asarray(w) for w in model.get_weights()]
    finally:
        keras.distribution.set_distribution(None)


def test_data_parallel_over_two_devices_trains_as_one_device():
    one_history, one_weights = train(None)
    devices = keras.distribution.list_devices()[:2]
    two_history, two_weights = train(keras.distribution.DataParallel(devices=devices))
    np.testing.assert_allclose(two_history["loss"], one_history["loss"], rtol=1e-5)
    # The logged aux_loss is averaged on the host by callbacks, unordered
    # under a distribution (keras_auxloss/loss_tracker.py): a batch may
    # reach the epoch's mean late, so it matches to within a batch's share.
    np.testing.assert_allclose(two_history["aux_loss"], one_history["aux_loss"], rtol=1e-2)
    assert one_history["aux_loss"][-1] < one_history["aux_loss"][0]
    for two, one in zip(two_weights, one_weights):
        np.testing.assert_allclose(two, one, atol=2e-5)
