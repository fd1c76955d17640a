"""`go_backwards=True`: the layer reads the sequence from its last step to
its first, and the method follows the reading order. Reading `x` backward
is reading the reversed `x` (masks reversed too) forward: the same outputs,
the same auxiliary loss on the same windows in reading order, and
gradients that are each other's mirror; and it is what Keras's own layer
does with `go_backwards=True`, stateful streams included."""

import keras
import numpy as np
import pytest
from keras import ops
from support import numpy

from keras_auxloss import AuxLossGRU, AuxLossLSTM
from keras_auxloss.testing import fix_window_starts

pytestmark = pytest.mark.any_backend

LENGTH = 16


def right_padded_tokens():
    tokens = np.random.default_rng(0).integers(1, 9, size=(3, LENGTH)).astype("int32")
    tokens[1, 11:] = 0
    tokens[2, 7:] = 0
    return tokens


def pair(layer_class, **kwargs):
    """The layer reading backward, and the same layer reading forward with
    the same weights."""
    options = dict(vocab_size=9, embedding_dim=4, mask_zero=True, bptt=4, aux_length=3, **kwargs)
    backward = layer_class(6, go_backwards=True, **options)
    forward = layer_class(6, **options)
    tokens = right_padded_tokens()
    backward(tokens)
    forward(tokens)
    forward.set_weights(backward.get_weights())
    return backward, forward, tokens


@pytest.mark.parametrize("aux_loss", ["reconstruct", "predict", None])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("layer_class", [AuxLossLSTM, AuxLossGRU], ids=lambda c: c.__name__)
def test_reading_backward_is_reading_the_reversed_sequence(layer_class, return_sequences, aux_loss):
    backward, forward, tokens = pair(
        layer_class, aux_loss=aux_loss, return_sequences=return_sequences, aux_dropout=0.0,
        num_anchors=2,
    )  # fmt: skip
    # Windows in reading order, inside each sequence's valid steps read.
    for layer in (backward, forward):
        fix_window_starts(layer, [[9, 12], [6, 10], [10, 11]])
    reversed_tokens = np.ascontiguousarray(tokens[:, ::-1])
    for training in (False, True):
        ours = numpy(backward(tokens, training=training))
        theirs = numpy(forward(reversed_tokens, training=training))
        np.testing.assert_allclose(ours, theirs, atol=1e-6)
    if aux_loss is not None:
        np.testing.assert_allclose(
            numpy(backward.losses[0]), numpy(forward.losses[0]), rtol=1e-5, atol=1e-6
        )


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize(
    "layer_class, keras_class",
    [(AuxLossLSTM, keras.layers.LSTM), (AuxLossGRU, keras.layers.GRU)],
    ids=["lstm", "gru"],
)
def test_values_are_keras_go_backwards(layer_class, keras_class, return_sequences):
    x = np.random.default_rng(1).normal(size=(3, LENGTH, 2)).astype("float32")
    mask = np.ones((3, LENGTH), bool)
    mask[1, 10:] = False
    layer = layer_class(
        5, go_backwards=True, bptt=4, aux_length=3, return_sequences=return_sequences
    )
    reference = keras_class(5, go_backwards=True, return_sequences=return_sequences)
    layer(x, mask=mask)
    reference(x, mask=mask)
    reference.set_weights(layer.cell.get_weights())
    expected = numpy(reference(x, mask=mask))
    for training in (False, True):
        np.testing.assert_allclose(
            numpy(layer(x, mask=mask, training=training)), expected, atol=1e-5
        )


@pytest.mark.parametrize("training", [False, True])
def test_stateful_reads_each_batch_backward_and_carries_the_state(training):
    # As keras.layers.LSTM(go_backwards=True, stateful=True): each batch is
    # read backward, the state carried to the next.
    chunks = np.random.default_rng(2).normal(size=(2, 2, 8, 3)).astype("float32")
    layer = AuxLossLSTM(4, go_backwards=True, stateful=True, bptt=3, aux_length=3)
    reference = keras.layers.LSTM(4, go_backwards=True, stateful=True)
    inputs = keras.Input((8, 3), batch_size=2)
    ours, theirs = keras.Model(inputs, layer(inputs)), keras.Model(inputs, reference(inputs))
    reference.set_weights(layer.cell.get_weights())
    for chunk in chunks:
        np.testing.assert_allclose(
            numpy(ours(chunk, training=training)), numpy(theirs(chunk)), atol=1e-5
        )
    first = numpy(layer.states[0].value)
    assert np.abs(first).max() > 0
    layer.reset_state()
    assert np.all(numpy(layer.states[0].value) == 0)


def test_anchors_are_drawn_over_the_valid_steps_read():
    # Right-padded sequences read backward start with their padding: no
    # anchor's window may reach into it.
    layer = AuxLossLSTM(4, go_backwards=True, vocab_size=9, embedding_dim=4, mask_zero=True,
                        bptt=2, aux_length=3, num_anchors=50, seed=0)  # fmt: skip
    tokens = right_padded_tokens()
    layer(tokens)
    drawn = []
    fix_window_starts(layer, None)
    original = layer._locate_windows

    def spy(inputs, mask, training):
        located = original(inputs, mask, training)
        drawn.append(located.window_starts)
        return located

    layer._locate_windows = spy
    layer(tokens, training=True)
    starts = numpy(drawn[0])
    padding = (tokens[:, ::-1] == 0).sum(axis=1)  # Steps read before the first valid one.
    assert np.all(starts >= padding[:, None])
    assert np.all(starts + 3 <= LENGTH)
    # And they spread over the valid steps.
    assert len(np.unique(starts[0])) > 5
    assert ops.shape(drawn[0]) == (3, 50)
