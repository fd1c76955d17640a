"""Keras's own LSTM tests (`keras/src/layers/rnn/lstm_test.py`, Keras
3.15.1), run on `AuxLossLSTM` and `AuxLossRNN(keras.layers.LSTMCell(...))`
in three modes (conftest.py): plain, auxiliary at inference, and auxiliary in
training, where Keras's expected values must hold too.

Each Keras test is one test here, its sub-cases (one layer each in Keras)
its parameters; Keras's expected numbers and tolerances are copied verbatim.
"""

import numpy as np
import pytest
from keras.src import initializers

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


@pytest.fixture(params=["AuxLossLSTM", "AuxLossRNN(LSTMCell)"])
def flavor(request):
    return request.param


@pytest.mark.parametrize(
    "init_kwargs, call_kwargs, expected_output_shape, expected_num_losses",
    [
        pytest.param({"units": 3, "dropout": 0.5}, {"training": True}, (3, 3), None, id="dropout"),
        pytest.param(
            {"units": 3, "dropout": 0.5, "recurrent_dropout": 0.5},
            {"training": True},
            (3, 3),
            None,
            id="recurrent_dropout",
        ),
        pytest.param(
            {
                "units": 3,
                "return_sequences": True,
                "bias_regularizer": "l1",
                "kernel_regularizer": "l2",
                "recurrent_regularizer": "l2",
            },
            None,
            (3, 2, 3),
            3,
            id="regularizers",
        ),
    ],
)
def test_basics(
    subject, case, init_kwargs, call_kwargs, expected_output_shape, expected_num_losses
):
    subject.run_layer_test(
        case,
        init_kwargs=init_kwargs,
        input_shape=(3, 2, 4),
        call_kwargs=call_kwargs,
        expected_output_shape=expected_output_shape,
        expected_num_losses=expected_num_losses,
        expected_num_trainable_weights=3,
        expected_num_non_trainable_weights=0,
        supports_masking=True,
    )


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        pytest.param(
            {},
            [
                [0.6288687, 0.6288687, 0.6288687],
                [0.86899155, 0.86899155, 0.86899155],
                [0.9460773, 0.9460773, 0.9460773],
            ],
            id="default",
        ),
        pytest.param(
            {"go_backwards": True},
            [
                [0.35622165, 0.35622165, 0.35622165],
                [0.74789524, 0.74789524, 0.74789524],
                [0.8872726, 0.8872726, 0.8872726],
            ],
            id="go_backwards",
        ),
        pytest.param(
            {"unroll": True},
            [
                [0.6288687, 0.6288687, 0.6288687],
                [0.86899155, 0.86899155, 0.86899155],
                [0.9460773, 0.9460773, 0.9460773],
            ],
            id="unroll",
        ),
        pytest.param(
            {"unit_forget_bias": False},
            [
                [0.57019705, 0.57019705, 0.57019705],
                [0.8661914, 0.8661914, 0.8661914],
                [0.9459622, 0.9459622, 0.9459622],
            ],
            id="unit_forget_bias",
        ),
        pytest.param(
            {"use_bias": False},
            [
                [0.54986924, 0.54986924, 0.54986924],
                [0.86226785, 0.86226785, 0.86226785],
                [0.9443936, 0.9443936, 0.9443936],
            ],
            id="use_bias",
        ),
    ],
)
@pytest.mark.parametrize("implementation", [1, 2])
def test_correctness(subject, case, implementation, kwargs, expected):
    sequence = np.arange(72).reshape((3, 6, 4)).astype("float32")
    layer = subject.layer(
        3,
        sequence.shape,
        **CONSTANT_INITIALIZERS,
        **kwargs,
        implementation=implementation,
    )
    output = subject.call(layer, sequence)
    case.assertAllClose(
        output,
        np.array(expected),
        atol=1e-5,
        rtol=1e-5,
        tpu_atol=1e-3,
        tpu_rtol=1e-3,
    )


def test_statefulness(subject, case):
    sequence = np.arange(24).reshape((2, 3, 4)).astype("float32")
    layer = subject.layer(4, sequence.shape, stateful=True, **CONSTANT_INITIALIZERS)
    subject.call(layer, sequence)
    output = subject.call(layer, sequence)
    case.assertAllClose(
        output,
        np.array(
            [
                [0.3124785, 0.3124785, 0.3124785, 0.3124785],
                [0.6863672, 0.6863672, 0.6863672, 0.6863672],
            ]
        ),
        atol=1e-5,
        rtol=1e-5,
        tpu_atol=1e-3,
        tpu_rtol=1e-3,
    )
    layer.reset_state()
    subject.call(layer, sequence)
    output = subject.call(layer, sequence)
    case.assertAllClose(
        output,
        np.array(
            [
                [0.3124785, 0.3124785, 0.3124785, 0.3124785],
                [0.6863672, 0.6863672, 0.6863672, 0.6863672],
            ]
        ),
        atol=1e-5,
        rtol=1e-5,
        tpu_atol=1e-3,
        tpu_rtol=1e-3,
    )


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        pytest.param({}, [[0.20574439, 0.3558822], [0.64930826, 0.66276]], id="forward"),
        pytest.param(
            {"go_backwards": True},
            [[0.13281618, 0.2790356], [0.5839337, 0.5992567]],
            id="go_backwards",
        ),
    ],
)
def test_pass_initial_state(subject, case, kwargs, expected):
    sequence = np.arange(24).reshape((2, 4, 3)).astype("float32")
    initial_state = [
        np.arange(4).reshape((2, 2)).astype("float32"),
        np.arange(4).reshape((2, 2)).astype("float32"),
    ]
    layer = subject.layer(2, sequence.shape, **CONSTANT_INITIALIZERS, **kwargs)
    output = subject.call(layer, sequence, initial_state=initial_state)
    case.assertAllClose(
        output,
        np.array(expected),
        atol=1e-5,
        rtol=1e-5,
        tpu_atol=1e-3,
        tpu_rtol=1e-3,
    )


# Keras marks its test_masking xfail where TensorFlow runs LSTM on cuDNN
# ("Broken mask in CuDNN implementation"); our layers hand cuDNN unmasked
# runs only (a masked run is cut where its mask changes), so it holds there too.
MASK = [[True, True, True, False], [True, True, False, False]]
BACKWARDS_MASK = [[False, True, True, True], [False, False, True, True]]


@pytest.mark.parametrize(
    "kwargs, mask, expected",
    [
        pytest.param(
            {"unroll": True},
            MASK,
            [[0.11755939, 0.11755939], [0.28556206, 0.28556206]],
            id="unroll",
        ),
        pytest.param(
            {"return_sequences": True},
            MASK,
            [
                [
                    [0.01588910, 0.01588910],
                    [0.05552048, 0.05552048],
                    [0.11755939, 0.11755939],
                    [0.11755939, 0.11755939],
                ],
                [
                    [0.14185596, 0.14185596],
                    [0.28556206, 0.28556206],
                    [0.28556206, 0.28556206],
                    [0.28556206, 0.28556206],
                ],
            ],
            id="return_sequences",
        ),
        pytest.param(
            {"return_sequences": True, "zero_output_for_mask": True},
            MASK,
            [
                [
                    [0.01588910, 0.01588910],
                    [0.05552048, 0.05552048],
                    [0.11755939, 0.11755939],
                    [0.0, 0.0],
                ],
                [
                    [0.14185596, 0.14185596],
                    [0.28556206, 0.28556206],
                    [0.0, 0.0],
                    [0.0, 0.0],
                ],
            ],
            id="zero_output_for_mask",
        ),
        pytest.param(
            {"go_backwards": True},
            BACKWARDS_MASK,
            [[0.15341201, 0.15341201], [0.3844719, 0.3844719]],
            id="go_backwards",
        ),
    ],
)
def test_masking(subject, case, kwargs, mask, expected):
    sequence = np.arange(24).reshape((2, 4, 3)).astype("float32")
    mask = np.array(mask)
    layer = subject.layer(2, sequence.shape, **CONSTANT_INITIALIZERS, **kwargs)
    output = subject.call(layer, sequence, mask=mask)
    # Keras compares sequences example by example: output[0], then output[1].
    pairs = zip(output, expected) if kwargs.get("return_sequences") else [(output, expected)]
    for actual, desired in pairs:
        case.assertAllClose(
            actual,
            np.array(desired),
            atol=1e-5,
            rtol=1e-5,
            tpu_atol=1e-3,
            tpu_rtol=1e-3,
        )
