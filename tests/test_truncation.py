"""Where gradients flow: the supervised gradient through the last `bptt`
steps only, each auxiliary gradient through its own window only, on every
backend (gradients from each backend's own autodiff)."""

import numpy as np
import pytest
from support import auxiliary_loss, float_inputs, gradient_per_step, output_sum

from keras_auxloss import AuxLossGRU, AuxLossLSTM
from keras_auxloss.testing import fix_window_starts

pytestmark = pytest.mark.any_backend

LENGTH = 40


@pytest.mark.parametrize("aux_loss", ["reconstruct", "predict", None])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_supervised_gradient_reaches_only_the_last_bptt_steps(aux_loss, return_sequences):
    layer = AuxLossLSTM(
        8, aux_loss=aux_loss, bptt=10, aux_length=5, return_sequences=return_sequences, seed=0
    )
    grad = gradient_per_step(layer, float_inputs(length=LENGTH), output_sum)
    assert np.all(grad[:, : LENGTH - 10] == 0)
    assert np.all(grad[:, LENGTH - 10 :] > 0)


@pytest.mark.parametrize("aux_loss", ["reconstruct", None])
def test_full_backpropagation_reaches_every_step(aux_loss):
    layer = AuxLossLSTM(8, aux_loss=aux_loss, bptt=None, aux_length=5, seed=0)
    grad = gradient_per_step(layer, float_inputs(length=LENGTH), output_sum)
    assert np.all(grad > 0)


@pytest.mark.parametrize("layer_class", [AuxLossLSTM, AuxLossGRU])
@pytest.mark.parametrize("aux_loss", ["reconstruct", "predict"])
def test_auxiliary_gradient_reaches_only_its_windows(layer_class, aux_loss):
    # Example 0: two disjoint windows; example 1: the same window twice.
    starts, length = [[3, 20], [25, 25]], 6
    layer = layer_class(
        8, aux_loss=aux_loss, aux_length=length, bptt=5, num_anchors=2, aux_dropout=0.0, seed=0
    )
    fix_window_starts(layer, starts)
    grad = gradient_per_step(layer, float_inputs(length=LENGTH), auxiliary_loss)
    expected = np.zeros_like(grad, dtype=bool)
    for example, example_starts in enumerate(starts):
        for start in example_starts:
            expected[example, start : start + length] = True
    np.testing.assert_array_equal(grad > 0, expected)


@pytest.mark.parametrize("aux_loss", ["reconstruct", "predict"])
def test_random_windows_have_aux_length_steps_and_lie_inside(aux_loss):
    length = 7
    layer = AuxLossLSTM(8, aux_loss=aux_loss, aux_length=length, bptt=5, seed=3)
    # Sixteen examples, each with its own window, in one call.
    grad = gradient_per_step(layer, float_inputs(batch=16, length=LENGTH), auxiliary_loss)
    for example in grad:
        (steps,) = np.nonzero(example)
        assert len(steps) == length
        np.testing.assert_array_equal(steps, np.arange(steps[0], steps[0] + length))
        if aux_loss == "predict":  # The last window step still has a target after it.
            assert steps[-1] <= LENGTH - 2
