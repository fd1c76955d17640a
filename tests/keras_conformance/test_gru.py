"""Keras's own GRU tests (`keras/src/layers/rnn/gru_test.py`, Keras
3.15.1), run on `AuxLossGRU` and `AuxLossRNN(keras.layers.GRUCell(...))` in
three modes (conftest.py): plain, auxiliary at inference, and auxiliary in
training, where Keras's expected values must hold too.

Each Keras test is one test here, its sub-cases (one layer each in Keras)
its parameters; Keras's expected numbers and tolerances are copied verbatim.
`test_torch_cudnn_dispatch_fires` checks that our layers reach cuDNN (Keras's
`torch._VF.gru`) on PyTorch with CUDA, and skips without it, as Keras's does.
"""

import keras
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


# Bugs of our layers that these ports show (issue 16), applied where they
# bite: the test is kept as it should pass.
@pytest.fixture(params=["AuxLossGRU", "AuxLossRNN(GRUCell)"])
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
                [0.5217289, 0.5217289, 0.5217289],
                [0.6371659, 0.6371659, 0.6371659],
                [0.39384964, 0.39384964, 0.3938496],
            ],
            id="default",
        ),
        pytest.param(
            {"go_backwards": True},
            [
                [0.24406259, 0.24406259, 0.24406259],
                [0.611516, 0.611516, 0.611516],
                [0.3928808, 0.3928808, 0.3928808],
            ],
            id="go_backwards",
        ),
        pytest.param(
            {"unroll": True},
            [
                [0.5217289, 0.5217289, 0.5217289],
                [0.6371659, 0.6371659, 0.6371659],
                [0.39384964, 0.39384964, 0.3938496],
            ],
            id="unroll",
        ),
        pytest.param(
            {"reset_after": False},
            [
                [0.51447755, 0.51447755, 0.51447755],
                [0.6426879, 0.6426879, 0.6426879],
                [0.40208298, 0.40208298, 0.40208298],
            ],
            id="reset_after",
        ),
        pytest.param(
            {"use_bias": False},
            [
                [0.49988455, 0.49988455, 0.49988455],
                [0.64701194, 0.64701194, 0.64701194],
                [0.4103359, 0.4103359, 0.4103359],
            ],
            id="use_bias",
        ),
    ],
)
@pytest.mark.parametrize("implementation", [1, 2])
def test_correctness(subject, case, implementation, kwargs, expected):
    # As in Keras's GRU test, `implementation` is a parameter the layers
    # are not given.
    sequence = np.arange(72).reshape((3, 6, 4)).astype("float32")
    layer = subject.layer(3, sequence.shape, **CONSTANT_INITIALIZERS, **kwargs)
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
                [0.29542392, 0.29542392, 0.29542392, 0.29542392],
                [0.5885018, 0.5885018, 0.5885018, 0.5885018],
            ]
        ),
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
                [0.29542392, 0.29542392, 0.29542392, 0.29542392],
                [0.5885018, 0.5885018, 0.5885018, 0.5885018],
            ]
        ),
        tpu_atol=1e-3,
        tpu_rtol=1e-3,
    )


FORWARD = [[0.23774096, 0.33508456], [0.83659905, 1.0227708]]
BACKWARD = [[0.13486053, 0.23261218], [0.78257304, 0.9691353]]


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        pytest.param({}, FORWARD, id="forward"),
        pytest.param({"go_backwards": True}, BACKWARD, id="go_backwards"),
    ],
)
def test_pass_initial_state(subject, case, kwargs, expected):
    sequence = np.arange(24).reshape((2, 4, 3)).astype("float32")
    initial_state = np.arange(4).reshape((2, 2)).astype("float32")
    layer = subject.layer(2, sequence.shape, **CONSTANT_INITIALIZERS, **kwargs)
    output = subject.call(layer, sequence, initial_state=initial_state)
    case.assertAllClose(
        output,
        np.array(expected),
        tpu_atol=1e-3,
        tpu_rtol=1e-3,
    )


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        pytest.param({}, FORWARD, id="forward"),
        pytest.param({"go_backwards": True}, BACKWARD, id="go_backwards"),
    ],
)
def test_pass_return_state(subject, case, kwargs, expected):
    sequence = np.arange(24).reshape((2, 4, 3)).astype("float32")
    initial_state = np.arange(4).reshape((2, 2)).astype("float32")
    layer = subject.layer(2, sequence.shape, **CONSTANT_INITIALIZERS, return_state=True, **kwargs)
    output, state = subject.call(layer, sequence, initial_state=initial_state)
    case.assertAllClose(
        output,
        np.array(expected),
        tpu_atol=1e-3,
        tpu_rtol=1e-3,
    )
    case.assertAllClose(
        output,
        state,
        tpu_atol=1e-3,
        tpu_rtol=1e-3,
    )


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        pytest.param(
            {"unroll": True},
            [[0.19393763, 0.19393763], [0.30818558, 0.30818558]],
            id="unroll",
        ),
        pytest.param(
            {"return_sequences": True},
            [
                [
                    [0.03606692, 0.03606692],
                    [0.09497581, 0.09497581],
                    [0.09497581, 0.09497581],
                    [0.19393763, 0.19393763],
                ],
                [
                    [0.16051409, 0.16051409],
                    [0.16051409, 0.16051409],
                    [0.16051409, 0.16051409],
                    [0.30818558, 0.30818558],
                ],
            ],
            id="return_sequences",
        ),
        pytest.param(
            {"return_sequences": True, "zero_output_for_mask": True},
            [
                [
                    [0.03606692, 0.03606692],
                    [0.09497581, 0.09497581],
                    [0.0, 0.0],
                    [0.19393763, 0.19393763],
                ],
                [
                    [0.16051409, 0.16051409],
                    [0.0, 0.0],
                    [0.0, 0.0],
                    [0.30818558, 0.30818558],
                ],
            ],
            id="zero_output_for_mask",
        ),
        pytest.param(
            {"go_backwards": True},
            [[0.11669192, 0.11669192], [0.28380975, 0.28380975]],
            id="go_backwards",
        ),
    ],
)
def test_masking(subject, case, kwargs, expected):
    sequence = np.arange(24).reshape((2, 4, 3)).astype("float32")
    # Unlike the LSTM test's, this mask has gaps: steps masked in the middle.
    mask = np.array([[True, True, False, True], [True, False, False, True]])
    layer = subject.layer(2, sequence.shape, **CONSTANT_INITIALIZERS, **kwargs)
    output = subject.call(layer, sequence, mask=mask)
    # Keras compares sequences example by example: output[0], then output[1].
    pairs = zip(output, expected) if kwargs.get("return_sequences") else [(output, expected)]
    for actual, desired in pairs:
        case.assertAllClose(
            actual,
            np.array(desired),
            tpu_atol=1e-3,
            tpu_rtol=1e-3,
        )


def test_legacy_implementation_argument(subject, case):
    sequence = np.arange(72).reshape((3, 6, 4)).astype("float32")
    layer = subject.layer(3, sequence.shape, **CONSTANT_INITIALIZERS)
    config = layer.get_config()
    # Add legacy argument: keras.layers.GRU hands it to its cell, as
    # AuxLossGRU does; AuxLossRNN's configuration holds the cell's.
    if subject.sized_by_units:
        config["implementation"] = 0
    else:
        config["cell"]["config"]["implementation"] = 0
    layer = type(layer).from_config(config)
    output = subject.call(layer, sequence)
    case.assertAllClose(
        output,
        np.array(
            [
                [0.5217289, 0.5217289, 0.5217289],
                [0.6371659, 0.6371659, 0.6371659],
                [0.39384964, 0.39384964, 0.3938496],
            ]
        ),
        tpu_atol=1e-3,
        tpu_rtol=1e-3,
    )


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="Test only applicable to fixing a bug with symbolic batch size for TensorFlow backend.",
)
def test_stateful_with_symbolic_batch_size(subject, case):
    layer = subject.layer(5, (2, 10, 10), stateful=True)

    x_concrete = np.ones((2, 10, 10), dtype=np.float32)
    _ = subject.call(layer, x_concrete, training=True)
    import tensorflow as tf  # The test is of tf.function's symbolic batch size.

    @tf.function(input_signature=[tf.TensorSpec(shape=(None, 10, 10), dtype=tf.float32)])
    def f(x):
        return subject.call(layer, x, training=True)

    y = f(x_concrete)
    case.assertEqual(y.shape, (2, 5))


@pytest.mark.skipif(
    keras.backend.backend() != "torch",
    reason="Guards the torch-backend cuDNN dispatch path.",
)
def test_torch_cudnn_dispatch_fires(subject, case):
    # The cuDNN path is Keras's `keras.src.backend.torch.rnn.gru`, which our
    # layers call through `kernels.py` on CUDA: that `torch._VF.gru` is
    # actually invoked, so that a run quietly on the loop fails loudly.
    import torch

    if not torch.cuda.is_available():
        pytest.skip("Requires a CUDA device.")

    from unittest import mock

    x = torch.randn(4, 6, 5, device="cuda")
    layer = subject.layer(8, (4, 6, 5), return_sequences=True)
    subject.call(layer, x)  # build on cuda

    real_vf_gru = torch._VF.gru
    calls = []

    def spy(*args, **kwargs):
        calls.append(True)
        return real_vf_gru(*args, **kwargs)

    with mock.patch.object(torch._VF, "gru", side_effect=spy):
        _ = subject.call(layer, x)

    case.assertGreaterEqual(
        len(calls),
        1,
        msg=(
            "torch._VF.gru was never invoked; cuDNN dispatch is silently "
            "inactive and every call is routing through the pure-torch "
            "fallback."
        ),
    )
