"""The primitives the layer is built of, each against a plain NumPy or
Keras reference: cutting and placing windows, drawing anchors, capturing
the state inside a run, the LSTM fast path, and the argument table."""

import inspect

import keras
import numpy as np
import pytest
from keras import ops
from support import float_inputs, numpy

from keras_auxloss import AuxLossGRU, AuxLossLSTM, AuxLossRNN, arguments, windows
from keras_auxloss.cells import CellRunner, LSTMRunner, runner_for

pytestmark = pytest.mark.any_backend


def test_gather_windows_cuts_each_examples_windows_example_major():
    sequence = np.arange(10 * 3 * 2).reshape(10, 3, 2).astype("float32")  # (time, batch, 2)
    starts = np.array([[0, 4], [7, 1], [3, 3]], "int32")
    got = numpy(windows.gather_windows(ops.convert_to_tensor(sequence), starts, 3))
    expected = np.stack(
        [sequence[s : s + 3, b] for b in range(3) for s in starts[b]], axis=1
    )  # (span, batch * windows, 2)
    np.testing.assert_array_equal(got, expected)


def test_place_window_writes_each_window_from_its_start():
    sequences = np.zeros((8, 2, 1), "float32")
    window = np.array([[[1.0], [10.0]], [[2.0], [20.0]], [[3.0], [30.0]]], "float32")
    got = numpy(windows.place_window(sequences, window, np.array([5, 0], "int32")))
    expected = sequences.copy()
    expected[5:8, 0], expected[0:3, 1] = window[:, 0], window[:, 1]
    np.testing.assert_array_equal(got, expected)


def test_sequence_ends_are_one_past_the_last_valid_step():
    mask = np.array([[1, 1, 0, 1, 0, 0], [1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0]], bool)
    np.testing.assert_array_equal(numpy(windows.sequence_ends(mask, 3, 6)), [4, 6, 0])
    np.testing.assert_array_equal(numpy(windows.sequence_ends(None, 2, 6)), [6, 6])


def test_anchors_are_uniform_over_each_sequences_valid_windows_and_independent():
    ends = np.array([30, 22, 17] * 4000, "int32")
    starts = numpy(windows.sample_window_starts(ends, 2, 10, keras.random.SeedGenerator(0)))
    for end in (30, 22, 17):
        drawn = starts[ends == end].ravel()
        room = end - 10 + 1  # Windows of 10 steps that end by the sequence's end.
        assert drawn.min() == 0 and drawn.max() == room - 1
        counts = np.bincount(drawn, minlength=room)
        expected = len(drawn) / room
        # Uniform: a chi-square statistic far below its 0.1% quantile (room - 1 <= 20 dof).
        assert ((counts - expected) ** 2 / expected).sum() < 50
        # Independent across an example's anchors and across examples.
        group = starts[ends == end]
        assert abs(np.corrcoef(group[:, 0], group[:, 1])[0, 1]) < 0.05
        assert abs(np.corrcoef(group[:-1, 0], group[1:, 0])[0, 1]) < 0.05
    # A sequence too short for any window gets start 0 (left out of the loss).
    short = numpy(windows.sample_window_starts(np.array([5], "int32"), 3, 10, 0))
    np.testing.assert_array_equal(short, [[0, 0, 0]])


def test_a_run_captures_the_output_and_state_after_the_steps_asked():
    x = float_inputs(batch=2, length=9)
    cell = keras.layers.GRUCell(4)
    cell.build((None, 3))
    runner = CellRunner(cell)
    state = runner.zero_state(2)
    capture_after = np.array([[2, -1, 8], [5, 5, 0]], "int32")
    _, _, sequences, captured = runner.run(
        ops.moveaxis(x, 1, 0), state, capture_after=capture_after, return_sequences=True
    )
    sequences = numpy(sequences)
    output, hidden = (numpy(c) for c in captured)
    for b in range(2):
        for p, step in enumerate(capture_after[b]):
            want = np.zeros(4) if step < 0 else sequences[step, b]  # GRU: output is h.
            np.testing.assert_allclose(output[b, p], want, atol=1e-6)
            np.testing.assert_allclose(hidden[b, p], want, atol=1e-6)


def test_the_lstm_fast_path_steps_as_keras_lstm_cell():
    cell = keras.layers.LSTMCell(5)
    cell.build((None, 3))
    x = float_inputs(batch=4, length=1)[:, 0]
    rng = np.random.default_rng(1)
    state = tuple(rng.normal(size=(4, 5)).astype("float32") for _ in range(2))
    fast = runner_for(cell, cell.compute_dtype)
    assert isinstance(fast, LSTMRunner)
    output, new = fast.step(fast.gates(x), state)
    expected_output, expected = CellRunner(cell).step(x, state)
    np.testing.assert_allclose(numpy(output), numpy(expected_output), atol=1e-6)
    for got, want in zip(new, expected):
        np.testing.assert_allclose(numpy(got), numpy(want), atol=1e-6)
    # Other activations, or another dtype than the layer's, take the generic path.
    assert type(runner_for(keras.layers.LSTMCell(5, activation="relu"), "float32")) is CellRunner
    assert type(runner_for(cell, "float16")) is CellRunner


def test_the_argument_table_gives_the_signatures_and_the_config():
    names = [name for name in inspect.signature(AuxLossRNN).parameters][1:-1]
    assert tuple(names) == arguments.NAMES
    for layer_class, first in ((AuxLossLSTM, "units"), (AuxLossGRU, "units"), (AuxLossRNN, "cell")):
        parameters = list(inspect.signature(layer_class).parameters.values())
        assert parameters[0].name == first and parameters[-1].kind is parameters[-1].VAR_KEYWORD
        defaults = {p.name: p.default for p in parameters[1:-1]}
        assert defaults == {a.name: a.default for a in arguments.ARGUMENTS}
        for argument in arguments.ARGUMENTS:  # Each documented, with its default.
            assert f"{argument.name}: " in layer_class.__doc__
    # The 0.2.0 signature is a public contract: its arguments keep their order.
    assert (
        names[:18]
        == (
            "aux_loss num_anchors aux_length bptt vocab_size embedding_dim aux_units aux_layers "
            "aux_hidden aux_dropout aux_weight scheduled_sampling return_sequences return_state "
            "mask_zero validate_inputs seed stateful"
        ).split()
    )
    layer = AuxLossLSTM(8, "predict", 2, 7, 5, 11)
    assert (layer.aux_loss, layer.num_anchors, layer.aux_length, layer.bptt) == ("predict", 2, 7, 5)
    assert layer.vocab_size == 11 and set(arguments.NAMES) <= set(layer.get_config())
