"""Where gradients flow: the supervised gradient through the last `bptt`
steps only, each auxiliary gradient through its own window only."""

import numpy as np
import pytest
import tensorflow as tf

from keras_auxloss import AuxLossLSTM

LENGTH = 40
FEATURES = 3


def inputs(batch=2, seed=0):
    rng = np.random.default_rng(seed)
    return tf.constant(rng.normal(size=(batch, LENGTH, FEATURES)).astype("float32"))


def gradient_per_step(layer, x, of):
    """`|d of(layer outputs) / d x|` summed over features: `(batch, time)`."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        outputs = layer(x, training=True)
        target = of(layer, outputs)
    return np.abs(tape.gradient(target, x).numpy()).sum(axis=-1)


def output_sum(layer, outputs):
    return tf.reduce_sum(outputs)


def auxiliary_loss(layer, outputs):
    (loss,) = layer.losses
    return loss


@pytest.mark.parametrize("aux_loss", ["reconstruct", "predict", None])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_supervised_gradient_reaches_only_the_last_bptt_steps(aux_loss, return_sequences):
    layer = AuxLossLSTM(
        8, aux_loss=aux_loss, bptt=10, aux_length=5, return_sequences=return_sequences, seed=0
    )
    grad = gradient_per_step(layer, inputs(), output_sum)
    assert np.all(grad[:, : LENGTH - 10] == 0)
    assert np.all(grad[:, LENGTH - 10 :] > 0)


@pytest.mark.parametrize("aux_loss", ["reconstruct", None])
def test_full_backpropagation_reaches_every_step(aux_loss):
    layer = AuxLossLSTM(8, aux_loss=aux_loss, bptt=None, aux_length=5, seed=0)
    grad = gradient_per_step(layer, inputs(), output_sum)
    assert np.all(grad > 0)


# The auxiliary gradient's windows: tests/backends/test_core.py, on every backend.


@pytest.mark.parametrize("aux_loss", ["reconstruct", "predict"])
def test_random_windows_have_aux_length_steps_and_lie_inside(aux_loss):
    length = 7
    layer = AuxLossLSTM(8, aux_loss=aux_loss, aux_length=length, bptt=5, seed=3)
    for seed in range(4):
        grad = gradient_per_step(layer, inputs(batch=4, seed=seed), auxiliary_loss)
        for example in grad:
            (steps,) = np.nonzero(example)
            assert len(steps) == length
            np.testing.assert_array_equal(steps, np.arange(steps[0], steps[0] + length))
            if aux_loss == "predict":  # The last window step still has a target after it.
                assert steps[-1] <= LENGTH - 2
