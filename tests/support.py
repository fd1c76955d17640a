"""Helpers shared by the tests: data that can be learned, gradients through
each backend's own autodiff, and Keras's own recurrent layers holding a
copy of a cell's weights (the reference the layers are checked against)."""

import keras
import numpy as np
import pytest
from keras import ops

BACKEND = keras.backend.backend()


def keras_release(version=None):
    """`(major, minor)` of `version` ("3.13"), or of the installed Keras."""
    return tuple(int(part) for part in (version or keras.version()).split(".")[:2])


def needs_keras(version, why):
    """Skips a test on a Keras older than `version` ("3.13"), saying why:
    `make test-oldest` runs the tests on the oldest Keras setup.py allows."""
    return pytest.mark.skipif(
        keras_release() < keras_release(version),
        reason=f"needs Keras >= {version} (installed: {keras.version()}): {why}",
    )


def repeating_tokens(batch=32, length=40, seed=0, vocab=8):
    """Sequences that repeat a 4-token motif of ids in `[1, vocab)`: easy to
    reconstruct, and 0 stays free for padding."""
    motifs = np.random.default_rng(seed).integers(1, vocab, size=(batch, 4))
    return np.tile(motifs, (1, -(-length // 4)))[:, :length].astype("int32")


def copy_task(num_examples=64, length=40, vocab=6, seed=0):
    """Token ids that count up and restart at random; the label is the
    parity of the first token."""
    rng = np.random.default_rng(seed)
    tokens = np.zeros((num_examples, length), dtype="int32")
    tokens[:, 0] = rng.integers(0, vocab, num_examples)
    restart = rng.random((num_examples, length)) < 0.2
    for t in range(1, length):
        tokens[:, t] = np.where(restart[:, t], 0, (tokens[:, t - 1] + 1) % vocab)
    return tokens, (tokens[:, 0] % 2).astype("int32")


def float_inputs(batch=2, length=40, features=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch, length, features)).astype("float32")


def gradient_per_step(layer, x, of, **call_kwargs):
    """`|d of(outputs, losses) / d x|` summed over features, `(batch, time)`,
    from a training call of `layer` on float inputs `x`, with the backend's
    own autodiff."""
    layer(x)  # Built (inference draws no anchors).
    if BACKEND == "tensorflow":
        import tensorflow as tf

        x = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            target = of(layer(x, training=True, **call_kwargs), layer.losses)
        grad = tape.gradient(target, x)
    elif BACKEND == "jax":
        import jax

        trainable = [v.value for v in layer.trainable_variables]
        non_trainable = [v.value for v in layer.non_trainable_variables]

        def target(x):
            outputs, updated, losses = layer.stateless_call(
                trainable, non_trainable, x, training=True, return_losses=True, **call_kwargs
            )
            return of(outputs, losses), updated

        grad, updated = jax.grad(target, has_aux=True)(x)
        # As a call on the other backends: the seed generators move on, so
        # the next call draws other anchors.
        for variable, value in zip(layer.non_trainable_variables, updated):
            variable.assign(value)
    else:
        import torch

        x = torch.tensor(x, requires_grad=True)
        of(layer(x, training=True, **call_kwargs), layer.losses).backward()
        grad = x.grad
    return np.abs(ops.convert_to_numpy(grad)).sum(axis=-1)


def output_sum(outputs, losses):
    return ops.sum(outputs)


def auxiliary_loss(outputs, losses):
    (loss,) = losses
    return loss


KERAS_LAYERS = {
    keras.layers.LSTMCell: keras.layers.LSTM,
    keras.layers.GRUCell: keras.layers.GRU,
    keras.layers.SimpleRNNCell: keras.layers.SimpleRNN,
}


def keras_rnn(cell, input_dim, **kwargs):
    """Keras's own layer for `cell` (`keras.layers.RNN` for a cell of its
    own), holding a copy of its weights."""
    if type(cell) in KERAS_LAYERS:
        layer = KERAS_LAYERS[type(cell)](cell.units, **kwargs)
    else:
        layer = keras.layers.RNN(type(cell).from_config(cell.get_config()), **kwargs)
    layer.build((None, None, input_dim))
    layer.set_weights(cell.get_weights())
    return layer


def numpy(x):
    return ops.convert_to_numpy(x)
