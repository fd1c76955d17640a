"""The arguments of `keras.layers.LSTM` and `GRU` beyond Keras's tests: the
layer arguments `AuxLossRNN` keeps (`go_backwards`, `unroll`), and the cell
arguments, which `AuxLossLSTM` and `AuxLossGRU` pass on to their cell as
`keras.layers.LSTM` and `GRU` do (dropout included).
"""

import keras
import pytest
from keras.src import initializers

from keras_auxloss import AuxLossGRU, AuxLossLSTM, AuxLossRNN

pytestmark = [
    pytest.mark.any_backend,
    pytest.mark.filterwarnings("ignore:.*logs its auxiliary loss as:UserWarning"),
]

LAYERS = {AuxLossLSTM: keras.layers.LSTMCell, AuxLossGRU: keras.layers.GRUCell}
CELLS = (keras.layers.LSTMCell, keras.layers.GRUCell)


@pytest.mark.parametrize("argument", ["go_backwards", "unroll"])
@pytest.mark.parametrize("cell_class", CELLS, ids=lambda c: c.__name__)
def test_rnn_takes_layer_argument(cell_class, argument):
    # Kept, and kept in the configuration, as keras.layers.RNN keeps them.
    layer = AuxLossRNN(cell_class(3), **{argument: True})
    revived = AuxLossRNN.from_config(layer.get_config())
    assert getattr(layer, argument) is getattr(revived, argument) is True


# The cell arguments Keras's lstm_test.py and gru_test.py give the layer.
CELL_ARGUMENTS = {
    "kernel_initializer": initializers.Constant(0.01),
    "recurrent_initializer": initializers.Constant(0.02),
    "bias_initializer": initializers.Constant(0.03),
    "use_bias": False,
    "kernel_regularizer": "l2",
    "recurrent_regularizer": "l2",
    "bias_regularizer": "l1",
    "implementation": 1,
    "dropout": 0.25,
    "recurrent_dropout": 0.125,
}
CASES = [(AuxLossLSTM, name) for name in [*CELL_ARGUMENTS, "unit_forget_bias"]]
CASES += [(AuxLossGRU, name) for name in [*CELL_ARGUMENTS, "reset_after"]]


@pytest.mark.parametrize(
    "layer_class, argument", CASES, ids=[f"{c.__name__}-{name}" for c, name in CASES]
)
def test_keras_cell_argument(layer_class, argument):
    # Users replacing keras.layers.LSTM(units, kernel_initializer=...) expect
    # the argument to reach the cell, and to survive the layer's config.
    value = CELL_ARGUMENTS.get(argument, False)
    expected = getattr(LAYERS[layer_class](3, **{argument: value}), argument)
    layer = layer_class(3, **{argument: value})
    revived = layer_class.from_config(layer.get_config())
    for cell in (layer.cell, revived.cell):
        assert keras.saving.serialize_keras_object(getattr(cell, argument)) == (
            keras.saving.serialize_keras_object(expected)
        ), argument
