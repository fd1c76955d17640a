"""Cell dropout (`dropout`, `recurrent_dropout`): applied as Keras's `RNN`
applies it (one mask per sequence and call, in training only), the same
masks in the pass outside the gradient and in every window run again, so
that truncation changes gradients and never values; the decoder's cells
take none."""

import keras
import numpy as np
import pytest
from keras import ops
from support import float_inputs, gradient_per_step, numpy, output_sum

import keras_auxloss.arguments
import keras_auxloss.dropout
from keras_auxloss import AuxLossGRU, AuxLossLSTM, AuxLossRNN
from keras_auxloss.cells import LSTMRunner, runner_for

pytestmark = pytest.mark.any_backend

LAYERS = {"lstm": (AuxLossLSTM, keras.layers.LSTM), "gru": (AuxLossGRU, keras.layers.GRU)}
RATES = [
    {"dropout": 0.4},
    {"recurrent_dropout": 0.3},
    {"dropout": 0.3, "recurrent_dropout": 0.3},
]


def fixed_masks(cell, batch, input_dim, seed=0):
    """Masks of the shapes and scale the cell draws (one per gate where it
    draws several), from a NumPy generator."""
    rng = np.random.default_rng(seed)
    count = getattr(cell, "dropout_mask_count", None)

    def masks(rate, size):
        if not 0.0 < rate < 1.0:
            return None
        one = [(rng.random((batch, size)) > rate) / (1 - rate) for _ in range(count or 1)]
        one = [ops.convert_to_tensor(m.astype("float32")) for m in one]
        return one if count else one[0]

    return keras_auxloss.dropout.DropoutMasks(
        masks(cell.dropout, input_dim), masks(cell.recurrent_dropout, cell.units)
    )


@pytest.fixture
def fixed_draw(monkeypatch):
    """The layers draw `fixed_masks`; returns the masks of the last draw."""
    drawn = []

    def draw(cell, batch, input_dim, dtype):
        masks = fixed_masks(cell, int(batch), input_dim)
        drawn.append(masks)
        return masks

    monkeypatch.setattr(keras_auxloss.dropout, "draw", draw)
    return drawn


# Each rate, auxiliary loss, output and cell at least once (the LSTM's
# fast path takes input dropout alone; the others run the cell's call).
VALUE_CASES = [
    (kind, return_sequences, aux_loss, rates)
    for kind in LAYERS
    for return_sequences, aux_loss, rates in [
        (False, None, RATES[0]),
        (True, "reconstruct", RATES[0]),
        (False, "predict", RATES[1]),
        (True, None, RATES[1]),
        (False, "reconstruct", RATES[2]),
        (True, "predict", RATES[2]),
    ]
]


@pytest.mark.parametrize(
    "kind, return_sequences, aux_loss, rates",
    VALUE_CASES,
    ids=[f"{k}-{'seq' if r else 'last'}-{a}-{'-'.join(d)}" for k, r, a, d in VALUE_CASES],
)
def test_training_values_are_keras_with_the_same_masks(
    kind, return_sequences, aux_loss, rates, fixed_draw
):
    # Truncated to 4 steps, with two anchors a sequence, on a right-padded
    # batch: the output is Keras's layer's with the same masks.
    ours_class, keras_class = LAYERS[kind]
    x = float_inputs(batch=4, length=12)
    mask = np.ones((4, 12), bool)
    mask[1, 9:] = False
    layer = ours_class(
        5, bptt=4, aux_loss=aux_loss, aux_length=3, num_anchors=2,
        return_sequences=return_sequences, seed=1, **rates,
    )  # fmt: skip
    reference = keras_class(5, return_sequences=return_sequences, **rates)
    layer(x, mask=mask)
    reference(x, mask=mask)
    reference.cell.set_weights(layer.cell.get_weights())
    ours = numpy(layer(x, mask=mask, training=True))
    (masks,) = fixed_draw
    reference.cell._dropout_mask, reference.cell._recurrent_dropout_mask = masks
    theirs = numpy(reference(x, mask=mask, training=True))
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    # And the masks changed the values: dropout really applied.
    assert np.abs(ours - numpy(layer(x, mask=mask))).max() > 1e-3


@pytest.mark.parametrize("kind", list(LAYERS))
def test_masks_are_drawn_once_per_training_call_by_the_cell(kind, monkeypatch):
    # Seeded: on PyTorch an unseeded generator draws from torch's own.
    layer = LAYERS[kind][0](4, bptt=3, aux_length=3, num_anchors=3, dropout=0.2,
                            recurrent_dropout=0.2, seed=0)  # fmt: skip
    x = float_inputs(batch=3, length=10)
    layer(x)
    drawn = []
    draw = keras_auxloss.dropout.draw
    monkeypatch.setattr(
        keras_auxloss.dropout, "draw", lambda *args: drawn.append(draw(*args)) or drawn[-1]
    )

    def draws():  # The cell's seed generator moves on once a mask.
        return int(numpy(layer.cell.seed_generator.state.value)[-1])

    before = draws()
    layer(x, training=True)
    # Once for the whole call, by the cell: one mask per sequence (of one
    # per gate, as the cell draws them with recurrent dropout).
    (masks,) = drawn
    count = getattr(layer.cell, "dropout_mask_count", None) or 1  # Keras 3.3: 1.
    assert [tuple(m.shape) for m in keras.tree.flatten(masks.inputs)] == [(3, 3)] * count
    assert [tuple(m.shape) for m in keras.tree.flatten(masks.recurrent)] == [(3, 4)] * count
    assert draws() - before == 2 * count
    layer(x, training=False)
    keras.Sequential([layer]).predict(x, verbose=0)
    assert len(drawn) == 1 and draws() - before == 2 * count
    # Nothing is left cached for the next call.
    assert layer.cell._dropout_mask is None and layer.cell._recurrent_dropout_mask is None


@pytest.mark.parametrize("rates", RATES, ids=lambda r: "-".join(r))
@pytest.mark.parametrize("kind", list(LAYERS))
def test_dropout_leaves_truncation_intact(kind, rates):
    layer = LAYERS[kind][0](8, aux_loss=None, bptt=10, seed=0, **rates)
    grad = gradient_per_step(layer, float_inputs(length=40), output_sum)
    assert np.all(grad[:, :30] == 0)
    assert np.all(grad[:, 30:].sum(axis=1) > 0)


@pytest.mark.parametrize("kind", list(LAYERS))
def test_no_dropout_outside_training(kind):
    layer = LAYERS[kind][0](4, bptt=3, aux_length=3, dropout=0.5, recurrent_dropout=0.5)
    x = float_inputs(length=10)
    first = numpy(layer(x))
    np.testing.assert_array_equal(first, numpy(layer(x)))
    np.testing.assert_allclose(first, keras.Sequential([layer]).predict(x, verbose=0), atol=1e-6)


def test_decoder_cells_take_no_dropout():
    # As in the paper, only the decoder's head drops (aux_dropout).
    for aux_loss in ("reconstruct", "predict"):
        layer = AuxLossLSTM(4, aux_loss=aux_loss, dropout=0.3, recurrent_dropout=0.2)
        for cell in layer.decoder_cells:
            assert (cell.dropout, cell.recurrent_dropout) == (0.0, 0.0)
    assert (layer.cell.dropout, layer.cell.recurrent_dropout) == (0.3, 0.2)


def test_a_stacked_cells_decoder_copy_takes_no_regularizer_or_constraint_in_any_cell():
    # As for a single cell, in each cell of a stack (a stack's cells take no
    # dropout: `cell_checks` refuses it).
    stacked = keras.layers.StackedRNNCells(
        [
            keras.layers.SimpleRNNCell(4, kernel_regularizer="l2"),
            keras.layers.LSTMCell(4, bias_constraint="non_neg"),
        ]
    )
    layer = AuxLossRNN(stacked, bptt=3, aux_length=3)
    layer(float_inputs(length=10), training=True)
    first, second = layer.decoder_cells[0].cells
    assert (first.kernel_regularizer, second.bias_constraint) == (None, None)
    main_first, main_second = layer.cell.cells  # The main network's keep theirs.
    assert main_first.kernel_regularizer is not None and main_second.bias_constraint is not None
    # Only the main network's regularizer adds a loss.
    assert len(main_first.losses) == 1 and not first.losses


def test_lstm_with_input_dropout_keeps_its_fast_path():
    cell = keras.layers.LSTMCell(4, dropout=0.3)
    assert isinstance(runner_for(cell, "float32"), LSTMRunner)
    cell = keras.layers.LSTMCell(4, dropout=0.3, recurrent_dropout=0.3)
    assert not isinstance(runner_for(cell, "float32"), LSTMRunner)


@pytest.mark.parametrize(
    "cell",
    [
        lambda: keras.layers.LSTMCell(4, dropout=0.3, recurrent_dropout=0.2),
        lambda: keras.layers.GRUCell(4, dropout=0.3, recurrent_dropout=0.2),
        lambda: keras.layers.SimpleRNNCell(4, dropout=0.3, recurrent_dropout=0.2),
    ],
    ids=["LSTMCell", "GRUCell", "SimpleRNNCell"],
)
def test_rnn_takes_cells_with_dropout(cell):
    layer = AuxLossRNN(cell(), bptt=3, aux_length=3, aux_loss="predict")
    reference = keras.layers.RNN(type(layer.cell).from_config(layer.cell.get_config()))
    x = float_inputs(length=10)
    layer(x)
    reference(x)
    reference.set_weights(layer.cell.get_weights())
    # Outside training, Keras's values; in training, something dropped.
    np.testing.assert_allclose(numpy(layer(x)), numpy(reference(x)), atol=1e-6)
    assert np.abs(numpy(layer(x, training=True)) - numpy(layer(x))).max() > 1e-3


def test_dropout_in_a_stack_of_cells_is_refused():
    cells = keras.layers.StackedRNNCells(
        [keras.layers.LSTMCell(4), keras.layers.LSTMCell(4, dropout=0.2)]
    )
    with pytest.raises(ValueError, match="StackedRNNCells.*dropout"):
        AuxLossRNN(cells, aux_loss=None)


def test_a_cell_with_dropout_it_cannot_draw_is_refused():
    class Cell(keras.layers.Layer):
        state_size = 4
        dropout = 0.5

        def call(self, inputs, states):
            return inputs, states

    with pytest.raises(ValueError, match="dropout=0.5.*DropoutRNNCell"):
        AuxLossRNN(Cell(), aux_loss=None)


@pytest.mark.parametrize("kind", list(LAYERS))
def test_seed_seeds_the_cells_dropout_apart_from_the_anchors(kind):
    # As keras.layers.LSTM(seed=...) seeds its cell's dropout; a stream of
    # its own, so that the masks do not follow the anchors' draws.
    layer_class = LAYERS[kind][0]
    layer = layer_class(4, seed=5, dropout=0.3)
    assert layer.cell.seed == 5 + 2_000_003
    assert layer_class(4, seed=5, dropout=0.3).cell.seed == layer.cell.seed
    assert layer_class(4, dropout=0.3).cell.seed is None
    # Without dropout the cell is unseeded, as before: the weights' initial
    # values follow Python's generator, which a seeded cell would not draw from.
    assert layer_class(4, seed=5).cell.seed is None
    # Positional too: `seed` is the layer's argument wherever it is given.
    position = [a.name for a in keras_auxloss.arguments.ARGUMENTS].index("seed")
    arguments = [a.default for a in keras_auxloss.arguments.ARGUMENTS[:position]] + [5]
    assert layer_class(4, *arguments, dropout=0.3).cell.seed == 5 + 2_000_003


@pytest.mark.parametrize("kind", list(LAYERS))
def test_dropout_survives_the_config(kind):
    layer = LAYERS[kind][0](4, dropout=0.25, recurrent_dropout=0.125)
    revived = type(layer).from_config(layer.get_config())
    assert (revived.cell.dropout, revived.cell.recurrent_dropout) == (0.25, 0.125)


def test_fit_with_dropout_logs_the_auxiliary_loss():
    tokens = np.random.default_rng(0).integers(0, 8, size=(16, 24))
    model = keras.Sequential(
        [
            keras.Input((24,), dtype="int32"),
            AuxLossLSTM(8, vocab_size=8, embedding_dim=4, bptt=4, aux_length=5,
                        dropout=0.2, recurrent_dropout=0.2),
            keras.layers.Dense(2),
        ]
    )  # fmt: skip
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(tokens, tokens[:, 0] % 2, epochs=2, verbose=0).history
    assert sorted(history) == ["aux_loss", "loss"]
    assert all(np.isfinite(history["aux_loss"])) and history["aux_loss"][0] > 0
