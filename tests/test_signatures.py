"""The constructors' signatures, written out in the source, are those of the
table of arguments (`keras_auxloss.arguments.ARGUMENTS`): the same names in
the same order, with the same defaults, each kept as the attribute and the
`get_config` key of its name."""

import inspect

import keras
import pytest

from keras_auxloss import AuxLossGRU, AuxLossLSTM, AuxLossRNN, arguments

pytestmark = pytest.mark.any_backend

LAYERS = {AuxLossRNN: "cell", AuxLossLSTM: "units", AuxLossGRU: "units"}
Parameter = inspect.Parameter


def _first(layer_class):
    """The first argument: a cell for `AuxLossRNN`, `units` for the others."""
    return keras.layers.GRUCell(8) if layer_class is AuxLossRNN else 8


@pytest.mark.parametrize("layer_class", LAYERS, ids=lambda c: c.__name__)
def test_the_signature_is_the_tables(layer_class):
    parameters = list(inspect.signature(layer_class.__init__).parameters.values())
    self, first, *table, kwargs = parameters
    assert (self.name, first.name, kwargs.name) == ("self", LAYERS[layer_class], "kwargs")
    assert first.default is Parameter.empty and kwargs.kind is Parameter.VAR_KEYWORD
    assert [p.name for p in table] == list(arguments.NAMES)
    for parameter, argument in zip(table, arguments.ARGUMENTS):
        assert parameter.kind is Parameter.POSITIONAL_OR_KEYWORD, parameter.name
        # Equal and of the same type: a default of 0 for 0.0 is a difference.
        assert parameter.default == argument.default, parameter.name
        assert type(parameter.default) is type(argument.default), parameter.name
    # What help(), IDEs and the API reference show of the class.
    assert list(inspect.signature(layer_class).parameters)[1:-1] == list(arguments.NAMES)


# A valid value for each argument, other than its default where one is
# valid with the others: a constructor that keeps or passes on an argument
# under another name, or not at all, fails on it.
VALUES = {
    "aux_loss": "predict",
    "num_anchors": 2,
    "aux_length": 3,
    "bptt": 4,
    "vocab_size": 50,
    "embedding_dim": 6,
    "aux_units": 7,
    "aux_layers": 3,
    "aux_hidden": 9,
    "aux_dropout": 0.25,
    "aux_weight": 0.5,
    "scheduled_sampling": 0.0,  # Only with "reconstruct".
    "return_sequences": True,
    "return_state": True,
    "mask_zero": True,
    "validate_inputs": True,
    "seed": 11,
    "stateful": True,
    "zero_output_for_mask": True,
    "aux_sampled_softmax": 12,
    "go_backwards": True,
    "unroll": True,
    "use_cudnn": False,
}


@pytest.mark.parametrize("layer_class", LAYERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("by", ["name", "position"])
def test_each_argument_is_kept_under_its_name(layer_class, by):
    assert list(VALUES) == list(arguments.NAMES)
    if by == "name":
        layer = layer_class(_first(layer_class), **VALUES)
    else:
        layer = layer_class(_first(layer_class), *VALUES.values())
    assert {name: getattr(layer, name) for name in arguments.NAMES} == VALUES
    config = layer.get_config()
    assert {name: config[name] for name in arguments.NAMES} == VALUES
    # The table's arguments come in its order, after the base layer's keys.
    base = set(keras.layers.Layer().get_config())
    extra = {"cell"} if layer_class is AuxLossRNN else {"units"}
    keys = [key for key in config if key not in base | extra]
    assert keys == list(arguments.NAMES)


@pytest.mark.parametrize("layer_class", LAYERS, ids=lambda c: c.__name__)
def test_the_defaults_are_kept(layer_class):
    layer = layer_class(_first(layer_class))
    kept = {name: getattr(layer, name) for name in arguments.NAMES}
    defaults = {a.name: a.default for a in arguments.ARGUMENTS}
    assert kept == {**defaults, "aux_units": 8}  # `None`: the main network's size.
    # Ints given for the floats are kept as floats, as in every saved file.
    layer = layer_class(_first(layer_class), aux_dropout=0, aux_weight=2)
    assert type(layer.aux_dropout) is type(layer.aux_weight) is float


@pytest.mark.parametrize("layer_class", LAYERS, ids=lambda c: c.__name__)
def test_unknown_arguments_are_refused(layer_class):
    with pytest.raises(ValueError, match="Unrecognized keyword arguments"):
        layer_class(_first(layer_class), use_cudnn_kernel=True)
    with pytest.raises(TypeError):  # One more than the signature takes.
        layer_class(_first(layer_class), *VALUES.values(), None)
    with pytest.raises(TypeError, match="multiple values"):
        layer_class(_first(layer_class), "predict", aux_loss="predict")
