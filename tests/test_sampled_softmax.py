"""`aux_sampled_softmax`: the auxiliary head's cross entropy over a sample of
the vocabulary estimates the full one (from below, exactly when every token
is sampled), trains an output layer to the full one's solution, and trains
the decoder on its task."""

import keras
import numpy as np
import pytest
from support import numpy, repeating_tokens

from keras_auxloss import AuxLossLSTM
from keras_auxloss.sampled_softmax import sampled_cross_entropy
from keras_auxloss.testing import fix_window_starts

pytestmark = pytest.mark.any_backend

VOCAB, LENGTH = 16, 24


def layer(aux_sampled_softmax=None, **options):
    defaults = dict(
        vocab_size=VOCAB, embedding_dim=8, bptt=4, aux_length=8, num_anchors=2,
        aux_dropout=0.0, seed=0,
    )  # fmt: skip
    return AuxLossLSTM(16, aux_sampled_softmax=aux_sampled_softmax, **{**defaults, **options})


def aux_loss(layer, tokens, training=True):
    layer(tokens, training=training)
    return float(numpy(layer.losses[0]))


def test_sampling_every_token_gives_the_full_cross_entropy_and_fewer_a_lower_one():
    tokens = repeating_tokens(4, LENGTH, vocab=VOCAB)
    full = layer()
    full.build(tokens.shape)
    losses = {}
    for sampled in (None, VOCAB, 5):
        other = layer(sampled)
        other.build(tokens.shape)
        other.set_weights(full.get_weights())
        fix_window_starts(other, [[0, 9]] * 4)
        losses[sampled] = aux_loss(other, tokens)
    np.testing.assert_allclose(losses[VOCAB], losses[None], rtol=1e-5)
    # Each position's candidates are a subset of the vocabulary.
    assert losses[5] < losses[None]


class SoftmaxRegression(keras.layers.Layer):
    """The head's output layer on fixed features, trained on the full or
    the sampled cross entropy of its targets (added with `add_loss`)."""

    def __init__(self, vocab_size, num_sampled=None):
        super().__init__()
        self.output_layer = keras.layers.Dense(vocab_size, kernel_initializer="zeros")
        self.num_sampled, self.seed = num_sampled, keras.random.SeedGenerator(0)

    def call(self, inputs):
        features, targets = inputs
        logits = self.output_layer(features)
        if self.num_sampled is None:
            loss = keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)
        else:
            kernel, bias = self.output_layer.kernel, self.output_layer.bias
            sampled, seed = self.num_sampled, self.seed
            loss = sampled_cross_entropy(features, kernel, bias, targets, sampled, seed)
        self.add_loss(keras.ops.mean(loss))
        return logits


def test_the_sampled_loss_trains_the_output_layer_to_the_full_ones_solution():
    # Targets drawn from a softmax of the features: the full cross entropy
    # has one minimum, which the sampled one reaches too.
    rng = np.random.default_rng(0)
    vocab, features = 8, 6
    x = rng.normal(size=(512, features)).astype("float32")
    logits = x @ (2 * rng.normal(size=(features, vocab)))
    p = np.exp(logits - logits.max(-1, keepdims=True))
    y = np.array([rng.choice(vocab, p=row / row.sum()) for row in p], "int32")

    def full_cross_entropy(num_sampled):
        keras.utils.set_random_seed(0)
        head = SoftmaxRegression(vocab, num_sampled)
        inputs = [keras.Input((features,)), keras.Input((), dtype="int32")]
        model = keras.Model(inputs, head(inputs))
        model.compile(keras.optimizers.Adam(0.05))
        model.fit([x, y], epochs=40, batch_size=64, verbose=0)
        logits = numpy(model.predict([x, y], verbose=0))
        return float(numpy(keras.ops.mean(
            keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
        )))  # fmt: skip

    full, sampled = full_cross_entropy(None), full_cross_entropy(4)
    assert full < 0.5 * np.log(vocab)  # Learned: far below the uniform prediction.
    np.testing.assert_allclose(sampled, full, rtol=0.1)


def test_a_layer_with_a_sampled_head_learns_its_auxiliary_task():
    vocab = 8
    x = repeating_tokens(256, LENGTH, vocab=vocab)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((LENGTH,), dtype="int32")])
    model.add(layer(4, vocab_size=vocab))
    model.compile(keras.optimizers.Adam(3e-2))  # The auxiliary loss alone.
    model.fit(x, epochs=10, batch_size=16, verbose=0)
    # Measured with the full softmax, on held-out windows: far below the
    # cross entropy of a uniform prediction.
    full = layer(vocab_size=vocab)
    full.build(x.shape)
    full.set_weights(model.layers[0].get_weights())
    measured = keras.Sequential([keras.Input((LENGTH,), dtype="int32"), full])
    measured.compile()
    assert measured.evaluate(x, verbose=0, return_dict=True)["aux_loss"] < 0.8 * np.log(vocab)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"aux_sampled_softmax": VOCAB + 1}, "at most `vocab_size`"),
        ({"aux_sampled_softmax": 0}, "expected a positive integer, got 0"),
        ({"aux_sampled_softmax": 4, "vocab_size": None}, "token inputs only"),
        ({"aux_sampled_softmax": 4, "scheduled_sampling": 0.5}, "conflict"),
    ],
)
def test_bad_sampled_softmax_arguments_are_named(options, message):
    with pytest.raises(ValueError, match=message):
        layer(**options)
