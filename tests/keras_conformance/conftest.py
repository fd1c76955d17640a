"""What the ports of Keras's recurrent-layer tests run on: each Keras test
builds `keras.layers.LSTM(units, **kwargs)` (or `GRU`); here it builds the
layer under test instead, one of two flavours (our layer sized by `units`, or
`AuxLossRNN(cell)`) in one of three modes, and runs Keras's own checks and
harness (`keras.src.testing.TestCase`) on it.
"""

import inspect

import keras
import pytest
from keras.src import testing
from support import keras_release

from keras_auxloss import AuxLossGRU, AuxLossLSTM, AuxLossRNN

FLAVORS = {
    "AuxLossLSTM": (AuxLossLSTM, keras.layers.LSTMCell),
    "AuxLossRNN(LSTMCell)": (AuxLossRNN, keras.layers.LSTMCell),
    "AuxLossGRU": (AuxLossGRU, keras.layers.GRUCell),
    "AuxLossRNN(GRUCell)": (AuxLossRNN, keras.layers.GRUCell),
    # Where Keras's test wraps keras.layers.SimpleRNN (test_bidirectional.py).
    "AuxLossRNN(SimpleRNNCell)": (AuxLossRNN, keras.layers.SimpleRNNCell),
}

# plain: aux_loss=None, bptt=None, a plain recurrent layer.
# aux_inference: the auxiliary settings, called outside training.
# aux_training: the same layer called with training=True: truncation changes
#   gradients, never values, so Keras's expected values still hold.
MODES = ("plain", "aux_inference", "aux_training")


def cell_argument_names(cell_class):
    names = set(inspect.signature(cell_class.__init__).parameters) - {"self", "units", "kwargs"}
    return names | {"implementation"}  # Popped from **kwargs by Keras's cells.


class Subject:
    """The layer under test for one flavour and mode: `layer()` builds it
    from the arguments a Keras test gives `keras.layers.LSTM`, `call()`
    calls it as the mode says."""

    def __init__(self, flavor, mode):
        self.flavor, self.mode = flavor, mode
        self.layer_class, self.cell_class = FLAVORS[flavor]

    @property
    def sized_by_units(self):
        return self.layer_class is not AuxLossRNN

    def mode_kwargs(self, length):
        if self.mode == "plain":
            return {"aux_loss": None, "bptt": None}
        # Default auxiliary settings, with windows that fit Keras's short
        # sequences (2 to 10 steps): truncation inside the sequence.
        return {"aux_loss": "reconstruct", "bptt": max(1, length // 2), "aux_length": 2}

    def training(self, keras_training=False):
        """The `training` argument of a call whose Keras test passes
        `keras_training`."""
        if self.mode == "plain":
            return keras_training
        return self.mode == "aux_training"

    def split(self, kwargs):
        """Keras's layer arguments as `(cell_kwargs, layer_kwargs)`."""
        cell_names = cell_argument_names(self.cell_class)
        cell_kwargs = {k: v for k, v in kwargs.items() if k in cell_names}
        layer_kwargs = {k: v for k, v in kwargs.items() if k not in cell_names}
        return cell_kwargs, layer_kwargs

    def make(self, units, cell_kwargs, layer_kwargs):
        """Our layer sized by `units` takes Keras's cell arguments
        (initializers, `use_bias`, ...) as `keras.layers.LSTM` does;
        `AuxLossRNN` takes a cell made with them."""
        if self.sized_by_units:
            return self.layer_class(units, **cell_kwargs, **layer_kwargs)
        return AuxLossRNN(self.cell_class(units, **cell_kwargs), **layer_kwargs)

    def layer(self, units, input_shape, **kwargs):
        """Our layer standing in for `keras.layers.LSTM(units, **kwargs)`
        (or `GRU`), for inputs of `input_shape`."""
        cell_kwargs, layer_kwargs = self.split(kwargs)
        layer_kwargs = {**self.mode_kwargs(input_shape[1]), **layer_kwargs}
        return self.make(units, cell_kwargs, layer_kwargs)

    def call(self, layer, *args, training=False, **kwargs):
        output = layer(*args, training=self.training(training), **kwargs)
        if self.mode == "aux_training":  # The training path ran.
            assert layer.losses, "a training call added no auxiliary loss"
        return output

    def run_layer_test(
        self,
        case,
        init_kwargs,
        input_shape,
        call_kwargs=None,
        expected_num_trainable_weights=None,
        expected_num_non_trainable_weights=None,
        expected_num_losses=None,
        **harness_kwargs,
    ):
        """Keras's `run_layer_test` with Keras's arguments, on our layer."""
        init_kwargs = dict(init_kwargs)
        units = init_kwargs.pop("units")
        cell_kwargs, layer_kwargs = self.split(init_kwargs)
        mode_kwargs = self.mode_kwargs(input_shape[1])
        cell_names = set(cell_kwargs)

        def make_layer(**kwargs):
            # The harness builds the layer several times, once with
            # dtype="mixed_float16" added: the layer's policy, as for
            # keras.layers.RNN(cell, dtype=...); the cell is built anew each
            # time, since a layer owns its cell.
            cell = {k: kwargs.pop(k) for k in cell_names}
            return self.make(kwargs.pop("units"), cell, {**mode_kwargs, **kwargs})

        call_kwargs = dict(call_kwargs or {})
        call_kwargs["training"] = self.training(call_kwargs.get("training", False))
        if self.mode != "plain":
            # Adapted: with the auxiliary decoder the layer holds more weights
            # (and in training the auxiliary loss). Keras's counts are those
            # of the main network, checked on `layer.cell` below; the
            # harness counts the layer itself.
            inputs = keras.random.uniform(input_shape)
            layer = make_layer(units=units, **cell_kwargs, **layer_kwargs)
            layer(inputs, **call_kwargs)
            counts = (
                (expected_num_trainable_weights, len(layer.cell.trainable_weights)),
                (expected_num_non_trainable_weights, len(layer.cell.non_trainable_weights)),
                (expected_num_losses, len(layer.cell.losses)),
            )
            for expected, actual in counts:
                if expected is not None:
                    assert actual == expected, counts
            expected_num_trainable_weights = expected_num_non_trainable_weights = None
            expected_num_losses = None
        case.run_layer_test(
            make_layer,
            init_kwargs={"units": units, **cell_kwargs, **layer_kwargs},
            input_shape=input_shape,
            call_kwargs=call_kwargs,
            expected_num_trainable_weights=expected_num_trainable_weights,
            expected_num_non_trainable_weights=expected_num_non_trainable_weights,
            expected_num_losses=expected_num_losses,
            **harness_kwargs,
        )


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """tests/conftest.py's fixture of this name, without its garbage
    collection (most of a short test's time here), as Keras's own
    `TestCase.setUp` clears the session."""
    keras.backend.clear_session(free_memory=False)
    keras.utils.set_random_seed(1234)
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.fixture(params=MODES)
def mode(request):
    return request.param


@pytest.fixture
def subject(flavor, mode):
    """The layer under test; `flavor` is chosen by each test module."""
    return Subject(flavor, mode)


class TestCase(testing.TestCase):
    """Keras's `TestCase`. Its checks, copied verbatim, pass `tpu_atol` and
    `tpu_rtol` to `assertAllClose`, arguments Keras 3.13 added for TPUs:
    older Keras (`make test-oldest`) runs them without."""

    def assertAllClose(self, *args, **kwargs):
        if keras_release() < keras_release("3.13"):
            kwargs.pop("tpu_atol", None)
            kwargs.pop("tpu_rtol", None)
        return super().assertAllClose(*args, **kwargs)


@pytest.fixture
def case():
    """Keras's `TestCase`, for its `assertAllClose` and `run_layer_test`."""
    return TestCase()
