"""The auxiliary loss's randomness: anchors drawn anew at each step and
reproducibly from the layer's `seed` alone, the head's dropout in training
only, and scheduled sampling, which feeds the decoder its own samples."""

import keras
import numpy as np
import pytest
from support import float_inputs, numpy, repeating_tokens

from keras_auxloss import AuxLossLSTM
from keras_auxloss.testing import fix_window_starts


def training_losses(layer, x, steps=4):
    losses = []
    for _ in range(steps):
        layer(x, training=True)
        losses.append(float(numpy(layer.losses[0])))
    return losses


@pytest.mark.any_backend
def test_anchors_are_drawn_anew_at_each_step_and_reproducibly_from_the_seed_alone():
    x = float_inputs(batch=4, length=30)
    layers = []
    for global_seed in (1, 2):  # The layer's seed alone fixes the anchors.
        keras.utils.set_random_seed(global_seed)
        layer = AuxLossLSTM(4, bptt=5, aux_length=6, aux_dropout=0.0, seed=7)
        layer(x)
        layers.append(layer)
    layers[1].set_weights(layers[0].get_weights())
    first, second = (training_losses(layer, x) for layer in layers)
    assert len(set(first)) == len(first)  # Other anchors at each step.
    np.testing.assert_allclose(first, second, rtol=1e-6)
    other = AuxLossLSTM(4, bptt=5, aux_length=6, aux_dropout=0.0, seed=8)
    other(x)
    other.set_weights(layers[0].get_weights())
    assert not np.allclose(training_losses(other, x), first)


@pytest.mark.any_backend
@pytest.mark.parametrize("aux_dropout", [0.0, 0.5])
def test_the_heads_dropout_applies_in_training_only(aux_dropout):
    model = keras.Sequential([keras.Input((30,), dtype="int32")])
    layer = AuxLossLSTM(4, vocab_size=8, bptt=5, aux_length=6, aux_dropout=aux_dropout, seed=0)
    model.add(layer)
    model.compile("sgd")
    x = repeating_tokens(4, 30)
    fix_window_starts(layer, [[3], [10], [0], [20]])  # Only dropout may vary.
    losses = training_losses(layer, x)
    assert (len(set(losses)) > 1) == (aux_dropout > 0)
    evaluations = [model.evaluate(x, return_dict=True, verbose=0) for _ in range(3)]
    assert len({logs["aux_loss"] for logs in evaluations}) == 1


def test_scheduled_sampling_feeds_the_decoder_its_own_samples():
    import tensorflow as tf

    tokens = repeating_tokens(4, 30, vocab=7)  # Ids 1 to 6: id 7 never appears.

    def embedding_gradient(scheduled_sampling):
        keras.utils.set_random_seed(0)
        layer = AuxLossLSTM(
            4, vocab_size=8, bptt=5, aux_length=8, seed=0, scheduled_sampling=scheduled_sampling
        )
        layer(tokens)
        # The head predicts id 7 whatever it reads: every sample is 7.
        kernel, bias = layer.head_output.get_weights()
        layer.head_output.set_weights([kernel, np.where(np.arange(8) == 7, 100.0, 0.0)])
        with tf.GradientTape() as tape:
            layer(tokens, training=True)
        gradient = tape.gradient(layer.losses[0], layer.embedding.embeddings)
        return numpy(tf.convert_to_tensor(gradient))

    # Fed its own samples, the decoder reads the embedding of id 7.
    assert np.abs(embedding_gradient(1.0)[7]).sum() > 0
    assert np.abs(embedding_gradient(0.0)[7]).sum() == 0
