"""Keras's own Bidirectional tests (`keras/src/layers/rnn/bidirectional_test.py`,
Keras 3.15.1), with our layers inside `keras.layers.Bidirectional` in place
of Keras's recurrent layer, in three modes (conftest.py): plain, auxiliary at
inference, and auxiliary in training, where Keras's expected values must
hold too. Where Keras wraps `layers.LSTM` the layer is `AuxLossLSTM` or
`AuxLossRNN(keras.layers.LSTMCell(...))`, where it wraps `layers.GRU`
`AuxLossGRU` or `AuxLossRNN(keras.layers.GRUCell(...))`, and where it wraps
`layers.SimpleRNN` `AuxLossRNN(keras.layers.SimpleRNNCell(...))`.

Each Keras test is one test here, its sub-cases (one Bidirectional layer
each in Keras) its parameters; Keras's expected numbers and tolerances are
copied verbatim. Keras's tests of its fused cuDNN path check, for its own
LSTM and GRU, that Bidirectional takes the path; here they check that it
never does for our layers (it would run Keras's kernel in place of the
layer, with no auxiliary loss), and that ours give the values of Keras's
layers on whichever path those take.
"""

import keras
import numpy as np
import pytest
from keras.src import initializers, layers

pytestmark = [
    pytest.mark.any_backend,
    # Each test builds several unnamed layers in one Keras session.
    pytest.mark.filterwarnings("ignore:.*logs its auxiliary loss as:UserWarning"),
    # Keras's harness fits on a generator with fit's default shuffle=True.
    pytest.mark.filterwarnings("ignore:`shuffle=True` was passed:UserWarning"),
]

CONSTANT_INITIALIZERS = dict(
    kernel_initializer=initializers.Constant(0.01),
    recurrent_initializer=initializers.Constant(0.02),
    bias_initializer=initializers.Constant(0.03),
)
SIMPLE_RNN = ["AuxLossRNN(SimpleRNNCell)"]
LSTMS = ["AuxLossLSTM", "AuxLossRNN(LSTMCell)"]
GRUS = ["AuxLossGRU", "AuxLossRNN(GRUCell)"]


def sub_case(name, names):
    """A Keras sub-case's parameters, one per flavour in `names`."""
    return [pytest.param(flavor, name, id=f"{name}-{flavor}") for flavor in names]


def flavors(names):
    return pytest.mark.parametrize("flavor", names)


def assert_close(case, actual, expected):
    # Keras's tolerances in every check of its test.
    case.assertAllClose(
        actual,
        np.array(expected),
        atol=1e-5,
        rtol=1e-5,
        tpu_atol=1e-3,
        tpu_rtol=1e-3,
    )


def main_network_weights(bidirectional):
    """The cells' weights of both directions: what Keras's layers hold (the
    auxiliary decoder's weights come on top of them)."""
    cells = (bidirectional.forward_layer.cell, bidirectional.backward_layer.cell)
    return [len(c.trainable_weights) for c in cells], [len(c.non_trainable_weights) for c in cells]


@flavors(SIMPLE_RNN)
@pytest.mark.parametrize(
    "backward, merge_mode, expected_output_shape",
    [
        pytest.param(False, "concat", (3, 8), id="default"),
        pytest.param(True, "sum", (3, 4), id="backward_layer_sum"),
    ],
)
def test_basics(subject, case, flavor, backward, merge_mode, expected_output_shape):
    input_shape = (3, 2, 4)
    init_kwargs = {"layer": subject.layer(4, input_shape), "merge_mode": merge_mode}
    if backward:
        init_kwargs["backward_layer"] = subject.layer(4, input_shape, go_backwards=True)
    call_kwargs = {"training": subject.training(False)}
    expected_num_trainable_weights, expected_num_non_trainable_weights = 6, 0
    if subject.mode != "plain":
        # Adapted as conftest.py's run_layer_test: with the auxiliary
        # decoders the layer holds more weights; Keras's counts are those of
        # the two cells.
        bidirectional = layers.Bidirectional(**init_kwargs)
        subject.call(bidirectional, keras.random.uniform(input_shape))
        trainable, non_trainable = main_network_weights(bidirectional)
        assert sum(trainable) == expected_num_trainable_weights
        assert sum(non_trainable) == expected_num_non_trainable_weights
        expected_num_trainable_weights = expected_num_non_trainable_weights = None
    case.run_layer_test(
        layers.Bidirectional,
        init_kwargs=init_kwargs,
        input_shape=input_shape,
        call_kwargs=call_kwargs,
        expected_output_shape=expected_output_shape,
        expected_num_trainable_weights=expected_num_trainable_weights,
        expected_num_non_trainable_weights=expected_num_non_trainable_weights,
        supports_masking=True,
    )


BACKWARD_INITIALIZERS = dict(
    kernel_initializer=initializers.Constant(0.03),
    recurrent_initializer=initializers.Constant(0.02),
    bias_initializer=initializers.Constant(0.01),
)
GRU_SUM = [
    [
        [0.20937867, 0.20937867],
        [0.34462988, 0.34462988],
        [0.40290534, 0.40290534],
    ],
    [
        [0.59829646, 0.59829646],
        [0.6734641, 0.6734641],
        [0.6479671, 0.6479671],
    ],
]


@pytest.mark.parametrize(
    "flavor, kwargs, backward_kwargs, merge_mode, expected",
    [
        pytest.param(
            *SIMPLE_RNN,
            {},
            None,
            "concat",
            [
                [0.39687276, 0.39687276, 0.10004295, 0.10004295],
                [0.7237238, 0.7237238, 0.53391594, 0.53391594],
            ],
            id="concat",
        ),
        pytest.param(
            *SIMPLE_RNN,
            {},
            None,
            "ave",
            [[0.24845785, 0.24845785], [0.6288199, 0.6288199]],
            id="ave",
        ),
        pytest.param(
            *SIMPLE_RNN,
            {},
            None,
            None,
            (
                [[0.39687276, 0.39687276], [0.7237238, 0.7237238]],
                [[0.10004295, 0.10004295], [0.53391594, 0.53391594]],
            ),
            id="merge_mode_none",
        ),
        pytest.param(
            *SIMPLE_RNN,
            {},
            {**BACKWARD_INITIALIZERS, "go_backwards": True},
            "mul",
            [[0.08374989, 0.08374989], [0.6740834, 0.6740834]],
            id="backward_layer_mul",
        ),
        *[
            pytest.param(
                flavor,
                {"return_sequences": True},
                None,
                "sum",
                GRU_SUM,
                id=f"gru_return_sequences_sum-{flavor}",
            )
            for flavor in GRUS
        ],
    ],
)
def test_correctness(subject, case, flavor, kwargs, backward_kwargs, merge_mode, expected):
    sequence = np.arange(24).reshape((2, 3, 4)).astype("float32")
    forward_layer = subject.layer(2, sequence.shape, **CONSTANT_INITIALIZERS, **kwargs)
    backward_layer = None
    if backward_kwargs is not None:
        backward_layer = subject.layer(2, sequence.shape, **backward_kwargs)
    layer = layers.Bidirectional(
        layer=forward_layer, backward_layer=backward_layer, merge_mode=merge_mode
    )
    output = subject.call(layer, sequence)
    if merge_mode is None:
        output1, output2 = output
        assert_close(case, output1, expected[0])
        assert_close(case, output2, expected[1])
    else:
        assert_close(case, output, expected)


@flavors(LSTMS)
def test_statefulness(subject, case, flavor):
    sequence = np.arange(24).reshape((2, 4, 3)).astype("float32")
    forward_layer = subject.layer(2, sequence.shape, **CONSTANT_INITIALIZERS, stateful=True)
    layer = layers.Bidirectional(layer=forward_layer)
    expected = [
        [0.26234663, 0.26234663, 0.16959146, 0.16959146],
        [0.6137073, 0.6137073, 0.5381646, 0.5381646],
    ]
    subject.call(layer, sequence)
    output = subject.call(layer, sequence)
    assert_close(case, output, expected)
    layer.reset_state()
    subject.call(layer, sequence)
    output = subject.call(layer, sequence)
    assert_close(case, output, expected)


@flavors(LSTMS)
def test_pass_initial_state(subject, case, flavor):
    sequence = np.arange(24).reshape((2, 4, 3)).astype("float32")
    initial_state = [
        np.arange(4).reshape((2, 2)).astype("float32") * 1,
        np.arange(4).reshape((2, 2)).astype("float32") * 2,
        np.arange(4).reshape((2, 2)).astype("float32") * 3,
        np.arange(4).reshape((2, 2)).astype("float32") * 4,
    ]
    forward_layer = subject.layer(2, sequence.shape, **CONSTANT_INITIALIZERS)
    layer = layers.Bidirectional(layer=forward_layer)
    output = subject.call(layer, sequence, initial_state=initial_state)
    assert_close(
        case,
        output,
        [
            [0.20794602, 0.4577124, 0.14046375, 0.48191673],
            [0.6682636, 0.6711909, 0.60943645, 0.60950446],
        ],
    )


@flavors(GRUS)
def test_masking(subject, case, flavor):
    sequence = np.arange(24).reshape((2, 4, 3)).astype("float32")
    forward_layer = subject.layer(2, sequence.shape, **CONSTANT_INITIALIZERS)
    layer = layers.Bidirectional(layer=forward_layer)
    mask = np.array([[True, True, False, True], [True, False, False, True]])
    output = subject.call(layer, sequence, mask=mask)
    assert_close(
        case,
        output,
        [
            [0.19393763, 0.19393763, 0.11669192, 0.11669192],
            [0.30818558, 0.30818558, 0.28380975, 0.28380975],
        ],
    )


@flavors(LSTMS)
def test_return_state(subject, case, flavor):
    sequence = np.arange(24).reshape((2, 4, 3)).astype("float32")
    forward_layer = subject.layer(2, sequence.shape, **CONSTANT_INITIALIZERS, return_state=True)
    layer = layers.Bidirectional(layer=forward_layer)
    output, h1, c1, h2, c2 = subject.call(layer, sequence)
    assert_close(
        case,
        output,
        [
            [0.1990008, 0.1990008, 0.12659755, 0.12659755],
            [0.52335435, 0.52335435, 0.44717982, 0.44717982],
        ],
    )
    assert_close(case, h1, [[0.1990008, 0.1990008], [0.52335435, 0.52335435]])
    assert_close(case, c1, [[0.35567185, 0.35567185], [1.0492687, 1.0492687]])
    assert_close(case, h2, [[0.12659755, 0.12659755], [0.44717982, 0.44717982]])
    assert_close(case, c2, [[0.2501858, 0.2501858], [0.941473, 0.941473]])


@flavors(LSTMS)
@pytest.mark.parametrize(
    "return_state, merge_modes",
    [
        pytest.param(True, ["ave", "concat", "mul", "sum", None], id="return_state"),
        pytest.param(False, ["concat", "ave", "mul", "sum"], id="merged"),
        pytest.param(False, [None], id="merge_mode_none"),
    ],
)
def test_output_shape(subject, case, flavor, return_state, merge_modes):
    x = np.array([[[101, 202], [303, 404]]])
    for merge_mode in merge_modes:
        sub_layer = subject.layer(2, x.shape, return_state=return_state)
        layer = layers.Bidirectional(sub_layer, merge_mode=merge_mode)
        output = subject.call(layer, x)
        output_shape = layer.compute_output_shape(x.shape)
        if return_state or merge_mode is None:
            for out, shape in zip(output, output_shape):
                case.assertEqual(out.shape, shape)
        else:
            case.assertEqual(output.shape, output_shape)


@pytest.mark.parametrize(
    "flavor, sub_case",
    [
        *sub_case("use_cudnn", GRUS + LSTMS),
        *sub_case("none", SIMPLE_RNN + GRUS + LSTMS),
    ],
)
def test_keeps_use_cudnn(subject, case, flavor, sub_case):
    if sub_case == "use_cudnn":
        # Keep use_cudnn if the layer has it (Keras's GRU and LSTM).
        for use_cudnn in [True, False, "auto"]:
            rnn = subject.layer(1, (None, 2, 1), use_cudnn=use_cudnn)
            bidi = layers.Bidirectional(rnn)
            case.assertEqual(bidi.forward_layer.use_cudnn, use_cudnn)
            case.assertEqual(bidi.backward_layer.use_cudnn, use_cudnn)
        return
    # Adapted: Keras's SimpleRNN has no `use_cudnn`, so Bidirectional adds
    # none; every one of our layers has it (AuxLossRNN for any cell, cuDNN
    # serving Keras's LSTM and GRU cells only), and the copies keep its default.
    rnn = subject.layer(1, (None, 2, 1))
    bidi = layers.Bidirectional(rnn)
    case.assertEqual(bidi.forward_layer.use_cudnn, "auto")
    case.assertEqual(bidi.backward_layer.use_cudnn, "auto")


def needs_fused_path():
    if not hasattr(layers.Bidirectional, "_can_attempt_fused_lstm"):
        pytest.skip(f"Keras {keras.version()}'s Bidirectional has no fused cuDNN path")


@pytest.mark.parametrize(
    "flavor, sub_case",
    [
        *sub_case("lstm", LSTMS),
        *sub_case("gru", GRUS),
        *sub_case("simple_rnn", SIMPLE_RNN),
        *sub_case("use_cudnn_false", LSTMS),
        *sub_case("dropout", LSTMS),
        *sub_case("mask", LSTMS),
        *sub_case("wrong_state", LSTMS),
    ],
)
def test_fused_lstm_eligibility(subject, case, flavor, sub_case):
    needs_fused_path()
    kwargs = {"dropout": 0.1} if sub_case == "dropout" else {}
    if sub_case == "use_cudnn_false":
        kwargs = {"use_cudnn": False}
    bidi = layers.Bidirectional(subject.layer(4, (None, 5, 3), **kwargs))
    bidi.build((None, 5, 3))
    # Adapted: Keras asserts True for LSTM(4, use_cudnn="auto") without a
    # mask; ours must never be eligible, whatever the case (Bidirectional's
    # fused path is for Keras's own LSTM; each of our copies runs its own
    # kernels, `use_cudnn` included).
    if sub_case == "mask":
        mask = np.ones((2, 5), dtype="bool")
        case.assertFalse(bidi._can_attempt_fused_lstm(mask=mask))
    elif sub_case == "wrong_state":
        wrong_state = [np.zeros((2, 4), dtype="float32")] * 2
        case.assertFalse(bidi._can_attempt_fused_lstm(mask=None, initial_state=wrong_state))
    else:
        case.assertFalse(bidi._can_attempt_fused_lstm(mask=None))


def fused_matches_unfused(subject, case, keras_class):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 6, 4)).astype("float32")
    initializers_ = dict(
        kernel_initializer=initializers.GlorotUniform(seed=1),
        recurrent_initializer=keras.initializers.Orthogonal(seed=2),
    )
    # The reference is ours; Keras's layer, with use_cudnn="auto", takes the
    # fused path where its backend has one (else its two calls).
    ref = layers.Bidirectional(subject.layer(5, x.shape, return_sequences=True, **initializers_))
    ref.build(x.shape)
    fused = layers.Bidirectional(
        keras_class(5, use_cudnn="auto", return_sequences=True, **initializers_)
    )
    fused.build(x.shape)
    for ours, theirs in [
        (ref.forward_layer, fused.forward_layer),
        (ref.backward_layer, fused.backward_layer),
    ]:
        for rv, fv in zip(ours.cell.weights, theirs.cell.weights, strict=True):
            fv.assign(rv.value)
    case.assertAllClose(subject.call(ref, x), fused(x), atol=1e-5)


@flavors(LSTMS)
def test_fused_lstm_matches_unfused(subject, case, flavor):
    fused_matches_unfused(subject, case, layers.LSTM)


@pytest.mark.parametrize(
    "flavor, sub_case",
    [
        *sub_case("gru", GRUS),
        *sub_case("lstm", LSTMS),
        *sub_case("reset_after", GRUS),
        *sub_case("wrong_state", GRUS),
    ],
)
def test_fused_gru_eligibility(subject, case, flavor, sub_case):
    needs_fused_path()
    kwargs = {"reset_after": False} if sub_case == "reset_after" else {}
    bidi = layers.Bidirectional(subject.layer(4, (None, 5, 3), **kwargs))
    bidi.build((None, 5, 3))
    # Adapted: Keras asserts True for GRU(4, use_cudnn="auto"); ours must
    # never be eligible.
    if sub_case == "wrong_state":
        wrong_state = [np.zeros((2, 4), dtype="float32")] * 4
        case.assertFalse(bidi._can_attempt_fused_gru(mask=None, initial_state=wrong_state))
    else:
        case.assertFalse(bidi._can_attempt_fused_gru(mask=None))


@flavors(GRUS)
def test_fused_gru_matches_unfused(subject, case, flavor):
    fused_matches_unfused(subject, case, layers.GRU)


def test_torch_cudnn_bidirectional_gru_dispatch_fires():
    pytest.skip(
        "checks that Keras's own GRU inside Bidirectional reaches torch's cuDNN kernel "
        "(torch._VF.gru); our layers run their own loop over time and never dispatch "
        "to it (test_fused_gru_eligibility checks that Bidirectional never tries)"
    )
