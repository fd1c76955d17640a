"""The recurrence on PyTorch (`keras_auxloss/backends/torch.py`) against the
generic one, `backends/portable.py` (`keras.ops.scan`), and against Keras's
own recurrent layers on copied weights: values and gradients (with
PyTorch's autograd) of the loop, of the fused LSTM and GRU kernels and of
the whole layer in training, with masks, captures, initial states and
mixed precision. PyTorch only (skipped on the other backends); marked
`any_backend` so that `make test-torch` runs it.
"""

import keras
import numpy as np
import pytest

if keras.backend.backend() != "torch":
    pytest.skip("PyTorch's recurrence", allow_module_level=True)

import contextlib  # noqa: E402
import functools  # noqa: E402
from unittest import mock  # noqa: E402

import torch  # noqa: E402
from keras import ops  # noqa: E402

from keras_auxloss import AuxLossGRU, AuxLossLSTM, AuxLossRNN, kernels  # noqa: E402
from keras_auxloss.backends import portable  # noqa: E402
from keras_auxloss.backends import torch as torch_backend  # noqa: E402
from keras_auxloss.cells import CellRunner, LSTMRunner, runner_for  # noqa: E402
from keras_auxloss.testing import fix_window_starts  # noqa: E402

pytestmark = pytest.mark.any_backend

LENGTH, BATCH, FEATURES, UNITS = 13, 3, 4, 5


class TwoStateCell(keras.layers.Layer):
    """A cell of its own, two state tensors of different sizes and an output
    of a third size."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = [units, 2 * units]
        self.output_size = units + 1

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3 * self.units), name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(self.units, 3 * self.units), name="rec")
        self.memory_kernel = self.add_weight(shape=(2 * self.units, self.units + 1), name="mem")

    def call(self, inputs, states):
        h, m = states
        z = ops.matmul(inputs, self.kernel) + ops.matmul(h, self.recurrent_kernel)
        m = 0.5 * m + 0.5 * ops.tanh(z[:, self.units :])
        output = ops.tanh(ops.matmul(m, self.memory_kernel))
        return output, [ops.tanh(z[:, : self.units]), m]

    def get_config(self):
        return {**super().get_config(), "units": self.units}


# Each cell made in a dtype; the weights are set afterwards, so the recurrent
# kernel starts at zeros (an orthogonal one needs a QR, which PyTorch has no
# bfloat16 kernel for).
_KERAS = dict(recurrent_initializer="zeros")
CELLS = {
    "lstm": lambda dtype: keras.layers.LSTMCell(UNITS, dtype=dtype, **_KERAS),
    "gru": lambda dtype: keras.layers.GRUCell(UNITS, dtype=dtype, **_KERAS),
    "gru_reset_before": lambda dtype: keras.layers.GRUCell(
        UNITS, reset_after=False, dtype=dtype, **_KERAS
    ),
    "simple_rnn": lambda dtype: keras.layers.SimpleRNNCell(UNITS, dtype=dtype, **_KERAS),
    "two_state": lambda dtype: TwoStateCell(UNITS, dtype=dtype),
}


def make_runner(name, fast=True, dtype="float32"):
    """A runner for a built cell (weights and computations in `dtype`)
    whose weights, biases included, are all random and nonzero:
    `LSTMRunner` for an LSTM cell if `fast`."""
    cell = CELLS[name](dtype)
    cell.build((None, FEATURES))
    rng = np.random.default_rng(len(name))
    cell.set_weights([0.5 * rng.normal(size=w.shape).astype("float32") for w in cell.weights])
    runner = runner_for(cell, cell.compute_dtype) if fast else CellRunner(cell)
    assert isinstance(runner, LSTMRunner) == (name == "lstm" and fast)
    return runner


def tensor(value, dtype="float32"):
    return torch.tensor(np.asarray(value), dtype=getattr(torch, dtype), requires_grad=True)


def coefficients(shape, seed):
    """Fixed random weights for a scalar loss over an output of `shape`."""
    return torch.tensor(np.random.default_rng(seed).normal(size=tuple(shape)), dtype=torch.float32)


def run_with_gradients(how, runner, options, *, dtype="float32", seed=0):
    """Runs `runner` over fixed data, `how` `"loop"` (`torch.py`'s),
    `"scan"` (`portable.py`'s) or `"fused"` (its kernel through
    `torch.py`'s `fused_run`), and returns every result and the gradient of
    a random linear function of them with respect to the inputs, the
    initial state and output and the cell's weights, as float64 NumPy
    arrays."""
    rng = np.random.default_rng(seed)
    x = tensor(rng.normal(size=(LENGTH, BATCH, FEATURES)), dtype)
    state = [tensor(rng.normal(size=(BATCH, size)), dtype) for size in runner.state_sizes]
    initial_output = tensor(rng.normal(size=(BATCH, runner.output_size)), dtype)
    weights = [v.value for v in runner.cell.trainable_variables]
    lstm = isinstance(runner, LSTMRunner)
    inputs, input_fn = x, None
    if options.pop("input_fn", False):  # Projected step by step, as float inputs are.
        input_fn = runner.gates if lstm and how != "fused" else (lambda x: x * 1.0)
    elif lstm and how != "fused":
        inputs = runner.gates(x)
    if how == "fused":
        result = torch_backend.fused_run(
            runner.kernel, inputs, tuple(state), initial_output, input_fn=input_fn, **options
        )
    else:
        run = torch_backend.run if how == "loop" else portable.run
        result = run(
            runner.step, inputs, tuple(state), initial_output, input_fn=input_fn, **options
        )
    output, final, sequences, captured = result
    results = [output, *final]
    results += [] if sequences is None else [sequences]
    results += [] if captured is None else list(captured)
    loss = sum(
        (r.float() * coefficients(r.shape, i)).sum() for i, r in enumerate(results)
    )  # Every result counts.
    sources = [x, *state, initial_output, *weights]
    grads = torch.autograd.grad(loss, sources, allow_unused=True)
    grads = [torch.zeros_like(s) if g is None else g for g, s in zip(grads, sources)]
    as_numpy = [r.detach().double().numpy() for r in results]
    return as_numpy, [g.detach().double().numpy() for g in grads]


@contextlib.contextmanager
def fused_segments(runner):
    """Records the length of each segment the runner's fused kernel runs."""
    ran, kernel = [], runner.kernel

    def recorded(inputs, state, return_sequences):
        ran.append(inputs.shape[0])
        return kernel.run(inputs, state, return_sequences)

    runner.kernel = kernels.Kernel(kernel.name, recorded)
    try:
        yield ran
    finally:
        runner.kernel = kernel


MASK = np.ones((LENGTH, BATCH), bool)
MASK[[0, 4, 5, 12], 0] = False  # The first step, a gap and the last step.
MASK[:, 2] = False  # A sequence with no valid step.
CAPTURE_AFTER = np.array([[2, -1, 12], [0, 7, 7], [5, 11, 40]], "int32")

OPTIONS = {
    "plain": {},
    "sequences": {"return_sequences": True},
    "mask": {"mask": MASK, "return_sequences": True},
    "mask_zero_output": {"mask": MASK, "return_sequences": True, "zero_output_for_mask": True},
    "captures": {"capture_after": CAPTURE_AFTER},
    "captures_mask": {"capture_after": CAPTURE_AFTER, "mask": MASK},
    "num_steps": {"num_steps": torch.tensor(8), "capture_after": CAPTURE_AFTER, "mask": MASK},
    "input_fn": {"input_fn": True, "return_sequences": True},
}


def options_for(name):
    """`OPTIONS[name]`, its tensors fresh."""
    options = dict(OPTIONS[name])
    for key in ("mask", "capture_after"):
        if key in options:
            options[key] = torch.tensor(options[key])
    return options


@pytest.mark.parametrize("options", sorted(OPTIONS))
@pytest.mark.parametrize("name", sorted(CELLS))
def test_the_loop_gives_the_scan_run_bit_for_bit(name, options):
    """The loop reads each step's input once where `keras.ops.scan` indexes
    it; the ops are the same, so are values and gradients, to the bit."""
    runner = make_runner(name)
    got = run_with_gradients("loop", runner, options_for(options))
    want = run_with_gradients("scan", runner, options_for(options))
    compare = np.testing.assert_array_equal
    if (name, options) == ("lstm", "input_fn"):
        # The loop projects the LSTM's gates for many steps at once: one
        # matrix product, its rounding not the step-by-step products'.
        compare = functools.partial(np.testing.assert_allclose, rtol=1e-6, atol=1e-6)
    for ours, theirs in zip(got[0] + got[1], want[0] + want[1]):
        compare(ours, theirs)


@pytest.mark.parametrize("chunk", [256, 4])
@pytest.mark.parametrize("options", sorted(OPTIONS))
@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_the_fused_kernels_give_the_loops_values_and_gradients(name, options, chunk, monkeypatch):
    """A run through PyTorch's CPU kernel, cut into segments where the mask
    changes, after each step where some example captures, and every
    `_CHUNK` steps read through `input_fn` (4 here, to cut the 13 steps)."""
    monkeypatch.setattr(torch_backend, "_CHUNK", chunk)
    monkeypatch.setattr(torch_backend, "_MASK_CHANGES", 1)  # MASK changes at 4 of 13 steps.
    runner = make_runner(name)
    assert runner.kernel.name == "onednn"
    with fused_segments(runner) as fused:
        got = run_with_gradients("fused", runner, options_for(options))
    assert fused
    want = run_with_gradients("loop", runner, options_for(options))
    for ours, theirs in zip(got[0] + got[1], want[0] + want[1]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_a_mask_that_changes_often_takes_the_loop(name):
    runner = make_runner(name)
    assert 4 * torch_backend._MASK_CHANGES > LENGTH  # MASK changes at 4 of 13 steps.
    with fused_segments(runner) as fused, pytest.raises(NotImplementedError):
        run_with_gradients("fused", runner, options_for("mask"))
    assert fused == []
    state = runner.zero_state(BATCH)
    inputs = runner.project(ops.ones((LENGTH, BATCH, FEATURES)))
    runner.run(inputs, state, mask=options_for("mask")["mask"], name="masked")
    assert runner.kernels_used == {"masked": "loop"}


@pytest.mark.parametrize("name", ["gru_reset_before", "simple_rnn", "two_state"])
def test_other_cells_have_no_fused_kernel(name):
    assert make_runner(name).kernel is None


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_the_fused_kernels_in_bfloat16_give_the_loops_values_to_its_precision(name):
    runner = make_runner(name, dtype="bfloat16")
    with fused_segments(runner) as fused:
        got = run_with_gradients("fused", runner, options_for("sequences"), dtype="bfloat16")
    assert fused == [LENGTH]
    want = run_with_gradients("loop", runner, options_for("sequences"), dtype="bfloat16")
    for ours, theirs in zip(got[0] + got[1], want[0] + want[1]):
        scale = max(1.0, float(np.abs(theirs).max()))
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=0.05 * scale)


def keras_layer(cell, **kwargs):
    """Keras's own layer for `cell` (`keras.layers.RNN` for a cell of its
    own), holding a copy of its weights."""
    layers = {
        keras.layers.LSTMCell: keras.layers.LSTM,
        keras.layers.GRUCell: keras.layers.GRU,
        keras.layers.SimpleRNNCell: keras.layers.SimpleRNN,
    }
    if type(cell) in layers:
        config = {k: v for k, v in cell.get_config().items() if k not in ("name", "seed")}
        layer = layers[type(cell)](**config, **kwargs)
    else:
        layer = keras.layers.RNN(type(cell).from_config(cell.get_config()), **kwargs)
    layer.build((None, None, FEATURES))
    layer.set_weights(cell.get_weights())
    return layer


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("name", sorted(CELLS))
def test_a_run_gives_keras_own_layers_values_and_gradients(name, masked):
    """`CellRunner.run` as the layer calls it (fused where it applies), from
    a given state, against Keras's own layer on copied weights with the same
    initial state: every output, the final state and their gradients with
    respect to the inputs and the initial state."""
    runner = make_runner(name)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(BATCH, LENGTH, FEATURES)).astype("float32")
    state = [rng.normal(size=(BATCH, size)).astype("float32") for size in runner.state_sizes]
    mask = MASK.T if masked else None

    def ours(x, state):
        inputs = ops.moveaxis(x, 1, 0)
        inputs = runner.project(inputs)
        options = {"mask": ops.convert_to_tensor(MASK)} if masked else {}
        _, final, sequences, _ = runner.run(inputs, state, return_sequences=True, **options)
        return ops.moveaxis(sequences, 0, 1), list(final)

    layer = keras_layer(runner.cell, return_sequences=True, return_state=True)

    def theirs(x, state):
        sequences, *final = layer(x, initial_state=list(state), mask=mask)
        return sequences, final

    results = []
    for fn in (ours, theirs):
        xt, st = tensor(x), [tensor(s) for s in state]
        sequences, final = fn(xt, st)
        outs = [sequences, *final]
        loss = sum((o * coefficients(o.shape, i)).sum() for i, o in enumerate(outs))
        grads = torch.autograd.grad(loss, [xt, *st])
        results.append([o.detach().numpy() for o in (*outs, *grads)])
    for got, want in zip(*results):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def tokens(batch=4, length=48, vocab=11, seed=0):
    return np.random.default_rng(seed).integers(1, vocab, size=(batch, length)).astype("int32")


def make_layer(kind, **kwargs):
    settings = {"bptt": 10, "aux_length": 8, "num_anchors": 2, "seed": 0, **kwargs}
    if kind == "lstm":
        return AuxLossLSTM(6, **settings)
    if kind == "gru":
        return AuxLossGRU(6, **settings)
    return AuxLossRNN(TwoStateCell(6), **settings)


def generic_recurrence():
    """The generic recurrence in place of PyTorch's: `keras.ops.scan`, and
    no fused kernel."""

    def refused(*args, **kwargs):
        raise NotImplementedError

    return mock.patch.multiple(
        torch_backend,  # The backend's module, `keras_auxloss.backends.current`.
        run=portable.run,
        scan=portable.scan,
        lstm_step=portable.lstm_step,
        fused_run=refused,
    )


def training_gradients(layer, x, **call_kwargs):
    """The layer's outputs, auxiliary loss and the gradients of their sum
    with respect to every trainable weight, in one training call."""
    outputs = layer(x, training=True, **call_kwargs)
    (aux_loss,) = layer.losses
    weights = [v.value for v in layer.trainable_variables]
    total = (outputs.float() * coefficients(outputs.shape, 0)).sum() + aux_loss
    grads = torch.autograd.grad(total, weights, allow_unused=True)
    grads = [torch.zeros_like(w) if g is None else g for g, w in zip(grads, weights)]
    values = [outputs, aux_loss, *grads]
    return [ops.convert_to_numpy(ops.cast(v.detach(), "float32")) for v in values]


@pytest.mark.parametrize(
    "case",
    ["reconstruct", "predict", "mask", "initial_state", "sequences", "sampling", "full_bp"],
)
@pytest.mark.parametrize("kind", ["lstm", "gru", "two_state"])
def test_the_layer_trains_as_on_the_generic_recurrence(kind, case):
    """A training call of the layer, its outputs, auxiliary loss and every
    weight's gradient, on PyTorch's recurrence and on the generic one
    (`keras.ops.scan`), with the same anchors."""
    settings = {
        "predict": {"aux_loss": "predict"},
        "sequences": {"return_sequences": True},
        "sampling": {"scheduled_sampling": 0.5},
        "full_bp": {"bptt": None},
    }.get(case, {})
    x = tokens()
    call_kwargs = {}
    if case == "mask":
        mask = np.ones((4, 48), bool)
        mask[0, 30:], mask[2, 5:9], mask[3, 0] = False, False, False
        call_kwargs["mask"] = mask
    if case == "initial_state":
        rng = np.random.default_rng(5)
        sizes = [6, 6] if kind == "lstm" else [6] if kind == "gru" else [6, 12]
        call_kwargs["initial_state"] = [
            rng.normal(size=(4, size)).astype("float32") for size in sizes
        ]
    if kind != "two_state":
        settings["vocab_size"] = 11
    else:
        x = np.random.default_rng(1).normal(size=(4, 48, 3)).astype("float32")
        settings.pop("scheduled_sampling", None)  # Token inputs only.
    results, fused = train_both_ways(kind, settings, x, call_kwargs)
    for got, want in zip(*results):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5)
    # The decoder's layers (and, unmasked, the windows) ran fused.
    assert fused >= (0 if kind == "two_state" or case == "sampling" else 2)


def train_both_ways(kind, settings, x, call_kwargs):
    """`training_gradients` of a fresh layer on PyTorch's recurrence, then on
    the generic one, and the number of fused runs on PyTorch's."""
    results = []
    for generic in (False, True):
        keras.utils.set_random_seed(0)
        layer = make_layer(kind, **settings)
        layer(x[:, :20])  # Built.
        fix_window_starts(layer, [[3, 20], [12, 0], [25, 5], [38, 17]])
        with generic_recurrence() if generic else contextlib.nullcontext():
            results.append(training_gradients(layer, x, **call_kwargs))
        if not generic:
            count = sum(k != "inference" and v == "onednn" for k, v in layer.kernels_used.items())
        else:
            trained = {k: v for k, v in layer.kernels_used.items() if k != "inference"}
            assert set(trained.values()) == {"loop"}
    return results, count


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_the_layer_in_mixed_precision_trains_as_on_the_generic_recurrence(kind):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")  # Reset by conftest.py.
    results, fused = train_both_ways(kind, {"vocab_size": 11}, tokens(), {})
    assert fused >= 3
    for got, want in zip(*results):
        scale = max(1.0, float(np.abs(want).max()))
        np.testing.assert_allclose(got, want, rtol=0, atol=0.05 * scale)


def autograd_nodes(tensor):
    """The names of the autograd nodes `tensor` was computed by."""
    seen, names, todo = set(), set(), [tensor.grad_fn]
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.add(type(node).__name__)
        todo.extend(next_node for next_node, _ in node.next_functions)
    return names


def test_the_loop_reads_its_inputs_once_where_keras_scan_indexes_each_step():
    """The cause of `keras.ops.scan`'s quadratic backward pass on PyTorch:
    each step's read `x[t]` is a `SelectBackward0` node, whose gradient is
    a zero tensor of `x`'s size. The loop reads `x` once (`unbind`). (If
    the second assertion fails, Keras's scan changed upstream and the
    workaround may no longer be needed.)"""
    runner = make_runner("simple_rnn")
    x = tensor(np.ones((LENGTH, BATCH, FEATURES)))
    state = (runner.zero_state(BATCH)[0],)
    ours = torch_backend.run(runner.step, x, state, state[0], return_sequences=True)[2]
    scan = portable.run(runner.step, x, state, state[0], return_sequences=True)[2]
    assert "UnbindBackward0" in autograd_nodes(ours)
    assert "SelectBackward0" not in autograd_nodes(ours)
    assert "SelectBackward0" in autograd_nodes(scan)


def test_scan_gives_the_generic_scans_values_and_gradients_bit_for_bit():
    """`scan` over nested inputs and carries, as the decoder's scheduled
    sampling runs it."""
    rng = np.random.default_rng(0)
    a = tensor(rng.normal(size=(LENGTH, BATCH, 2)))
    b = tensor(rng.normal(size=(LENGTH, BATCH)))
    carry0 = tensor(rng.normal(size=(BATCH, 2)))

    def step(carry, inputs):
        x, (y,) = inputs
        h, (count, pair) = carry
        h = ops.tanh(h * x + y[:, None])
        return h, (count + 1, [pair[0] + h, pair[1] * 0.5])

    results = []
    for scan in (torch_backend.scan, portable.scan):
        carry = (carry0, (torch.zeros(()), [carry0 * 0, carry0]))
        stacked = keras.tree.flatten(scan(step, carry, (a, (b,))))
        loss = sum((s * coefficients(s.shape, i)).sum() for i, s in enumerate(stacked))
        grads = torch.autograd.grad(loss, [a, b, carry0])
        results.append([t.detach().numpy() for t in (*stacked, *grads)])
    for got, want in zip(*results):
        np.testing.assert_array_equal(got, want)
