"""Training parity: `AuxLossLSTM` trains step for step like the same model
built from `keras.layers.Embedding`, `keras.layers.LSTM` and `Dense` layers.

The reference below is what a user would write without this package: the
truncated LSTM run window by window, each window's state cut with
`stop_gradient`, each window embedded by `keras.layers.Embedding`. Both
models start from the same weights, see the same batches and the same fixed
anchors, and train with Adam through `fit`; their losses and weights must
stay equal to float tolerance over several epochs. One step is not enough:
Keras's Adam updates a `tf.IndexedSlices` gradient (what `Embedding` gives)
differently from a dense one, and the difference shows only over steps.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from keras_auxloss import AuxLossLSTM
from keras_auxloss.testing import fix_window_starts

LENGTH, VOCAB, CLASSES = 24, 7, 3
BATCH, EXAMPLES, EPOCHS = 4, 16, 5
BPTT, AUX_LENGTH = 5, 6
# Fixed anchors' window starts, per example of a batch: overlapping each
# other, the supervised window (steps 19 to 23) and the sequence's start.
STARTS = np.array([[0, 3], [2, 2], [7, 16], [17, 1]])


def data():
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, VOCAB, size=(EXAMPLES, LENGTH)).astype("int32")
    return tokens, (tokens[:, 3] % CLASSES).astype("int32")


class ReferenceModel(keras.Model):
    """The truncated (r- or p-) LSTM classifier from plain Keras layers."""

    def __init__(self, layer, classifier):
        super().__init__()
        self.aux_loss_kind, self.units = layer.aux_loss, layer.units
        self.embedding = keras.layers.Embedding(VOCAB, layer.embedding_dim)
        self.main = keras.layers.LSTM(layer.units, return_sequences=True, return_state=True)
        self.decoder = [
            keras.layers.LSTM(cell.units, return_sequences=True) for cell in layer.decoder_cells
        ]
        self.head = []
        if layer.aux_loss is not None:
            self.head = [
                keras.layers.Dense(layer.aux_hidden, activation="relu"),
                keras.layers.Dense(VOCAB),
            ]
        self.classifier = keras.layers.Dense(CLASSES)
        # Same initial weights as `layer` and `classifier`.
        self(np.zeros((BATCH, LENGTH), "int32"))
        for lstm, ours in zip(self.decoder, layer.decoder_cells):
            lstm.build((None, None, ours.kernel.shape[0]))
        if layer.aux_loss is not None:
            self.head[0].build((None, layer.aux_units))
            self.head[1].build((None, layer.aux_hidden))
        pairs = [(self.embedding, layer.embedding), (self.main, layer.cell)]
        pairs += list(zip(self.decoder, layer.decoder_cells))
        if layer.aux_loss is not None:
            pairs += [(self.head[0], layer.head_hidden), (self.head[1], layer.head_output)]
        for theirs, ours in pairs + [(self.classifier, classifier)]:
            theirs.set_weights(ours.get_weights())

    def state_before(self, tokens, step):
        """The main LSTM's state after `tokens[:, :step]`, cut from the gradient."""
        if step == 0:
            return [ops.zeros((ops.shape(tokens)[0], self.units))] * 2
        _, h, c = self.main(self.embedding(tokens[:, :step]))
        return [ops.stop_gradient(h), ops.stop_gradient(c)]

    def call(self, tokens, training=False):
        if not training:
            return self.classifier(self.main(self.embedding(tokens))[1])
        start = LENGTH - BPTT
        window = self.embedding(tokens[:, start:])
        _, h, _ = self.main(window, initial_state=self.state_before(tokens, start))
        if self.aux_loss_kind is not None:
            self.add_loss(self.auxiliary_loss(tokens))
        return self.classifier(h)

    def auxiliary_loss(self, tokens):
        losses = []
        for b, starts in enumerate(STARTS):
            example = tokens[b : b + 1]
            for s in starts:
                embedded = self.embedding(example[:, s : s + AUX_LENGTH])
                outputs, h, c = self.main(embedded, initial_state=self.state_before(example, s))
                if self.aux_loss_kind == "reconstruct":
                    hidden = self.decoder[0](embedded[:, :-1], initial_state=[h, c])
                    targets = example[:, s + 1 : s + AUX_LENGTH]
                else:
                    hidden = self.decoder[0](outputs)
                    targets = example[:, s + 1 : s + AUX_LENGTH + 1]
                for lstm in self.decoder[1:]:
                    hidden = lstm(hidden)
                logits = self.head[1](self.head[0](hidden))
                losses.append(
                    keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)
                )
        return ops.mean(ops.concatenate(losses, axis=1))


def our_model(aux_loss):
    layer = AuxLossLSTM(
        6,
        aux_loss=aux_loss,
        vocab_size=VOCAB,
        embedding_dim=4,
        bptt=BPTT,
        aux_length=AUX_LENGTH,
        num_anchors=STARTS.shape[1],
        aux_layers=2,
        aux_hidden=8,
        aux_dropout=0.0,
        seed=0,
    )
    # Fixed anchors, the same for both models.
    fix_window_starts(layer, STARTS)
    classifier = keras.layers.Dense(CLASSES)
    model = keras.Sequential([keras.Input((LENGTH,), dtype="int32"), layer, classifier])
    return model, layer, classifier


def train(model):
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x, y = data()
    history = model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, shuffle=False, verbose=0)
    return history.history["loss"]


def densify_embedding_gradient(layer):
    """Makes `layer` read its embedding through a dense product, as 0.1.0's
    `(vocab, 4 * units)` gate table did: same values, dense gradient."""
    layer.embedding.call = lambda ids: ops.matmul(
        ops.one_hot(ids, VOCAB), ops.convert_to_tensor(layer.embedding.embeddings)
    )


def paired_weights(layer, classifier, reference):
    """(ours, reference) variables, paired layer by layer."""
    pairs = [(layer.embedding, reference.embedding), (layer.cell, reference.main)]
    pairs += list(zip(layer.decoder_cells, reference.decoder))
    if layer.aux_loss is not None:
        pairs += [(layer.head_hidden, reference.head[0]), (layer.head_output, reference.head[1])]
    pairs.append((classifier, reference.classifier))
    return [(a, b) for ours, theirs in pairs for a, b in zip(ours.weights, theirs.weights)]


@pytest.mark.parametrize("aux_loss", [None, "reconstruct", "predict"])
def test_training_follows_the_keras_composition(aux_loss):
    model, layer, classifier = our_model(aux_loss)
    reference = ReferenceModel(layer, classifier)
    pairs = paired_weights(layer, classifier, reference)
    for ours, theirs in pairs:
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    initial = layer.embedding.embeddings.numpy()

    ours_loss, reference_loss = train(model), train(reference)

    np.testing.assert_allclose(ours_loss, reference_loss, rtol=1e-5)
    for ours, theirs in pairs:
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=2e-5, err_msg=ours.path)
    # The weights moved: equal because both trained alike, not because
    # neither trained.
    assert not np.allclose(layer.embedding.embeddings.numpy(), initial, atol=1e-2)


@pytest.mark.parametrize("aux_loss", [None])
def test_a_dense_embedding_gradient_trains_differently(aux_loss):
    # What the parity test guards against: with the same values but a dense
    # embedding gradient, Adam takes other steps.
    model, layer, classifier = our_model(aux_loss)
    reference = ReferenceModel(layer, classifier)
    densify_embedding_gradient(layer)
    train(model), train(reference)
    gap = np.abs(layer.embedding.embeddings.numpy() - reference.embedding.embeddings.numpy())
    assert gap.max() > 1e-3


@pytest.mark.parametrize("aux_loss", [None, "reconstruct", "predict"])
@pytest.mark.parametrize("bptt", [BPTT, None])
def test_embedding_gradient_is_sparse_with_one_slice_per_token_read(aux_loss, bptt):
    layer = our_model(aux_loss)[1]
    layer.bptt = bptt
    tokens = data()[0][:BATCH]
    with tf.GradientTape() as tape:
        loss = ops.sum(layer(tokens, training=True)) + sum(layer.losses)
    gradient = tape.gradient(loss, layer.embedding.embeddings)
    assert isinstance(gradient, tf.IndexedSlices)
    supervised = BATCH * (LENGTH if bptt is None else bptt)
    anchors = 0 if aux_loss is None else STARTS.size * AUX_LENGTH
    assert gradient.indices.shape[0] == supervised + anchors
