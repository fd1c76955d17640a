"""The recurrence on PyTorch: Python loops that read their inputs once, and
PyTorch's fused kernels for Keras's own LSTM and GRU cells.

`keras.ops.scan` on PyTorch reads step `t` of its inputs as `x[t]`; the
gradient of each such read is a zero tensor of the whole input's size with
one slice filled, so the backward pass of a run of `L` steps builds `L`
tensors of `L` steps each: its time grows with the square of the length.
The loop here reads its inputs once (`torch.unbind`, `torch.split`), whose
gradient is the steps' gradients joined once: linear in the length. It
runs the steps as `portable.py` does (the same values, bit for bit, for
the same step).

Keras's `LSTMCell` and `GRUCell` (`reset_after=True`) with their default
activations run through `torch._VF.lstm` / `torch._VF.gru`, the kernels of
`torch.nn.LSTM` and `torch.nn.GRU` (oneDNN's on CPU, cuDNN's on GPU), with
the weights laid out as PyTorch's: a run is cut into segments that the
kernel runs whole, ending where some example's mask changes, where some
example captures its state, and every `_CHUNK` steps of a pass that reads
its inputs through `input_fn`; a run whose mask changes too often takes
the loop. Their values are the loop's to float rounding, not bit for bit.
The kernels project their inputs themselves: the LSTM's gates are deferred
(`project` returns a `Projected`) to where they are read, so that a fused
run reads the inputs instead, and there is no token table.
"""

from collections.abc import Callable

import keras
import torch
from keras.src.backend.torch.core import convert_to_tensor

from keras_auxloss.backends import portable
from keras_auxloss.backends.portable import (  # noqa: F401 (the same on PyTorch)
    assert_batch_size,
    assert_finite,
    assert_mask_fits,
    assert_token_ids,
)

# The steps whose inputs a pass through `input_fn` computes at once: the
# embedding lookup and projection of a chunk (8 MiB of float32 inputs at
# batch 32 and 256 features), one matrix product for all its steps.
_CHUNK = 256
# A masked run whose mask changes at more than one step in this many takes
# the loop: the fused kernel would run too few steps at a time.
_MASK_CHANGES = 8
# The dtypes the fused kernels run in: oneDNN's on CPU, with their gradient.
_FUSED_DTYPES = (torch.float32, torch.bfloat16)
# The dtypes `lstm_step` computes in with plain `torch` ops (Keras's
# `matmul` on CPU computes float16 in float32: that goes through
# `portable.lstm_step`).
_PLAIN_DTYPES = (torch.float32, torch.bfloat16, torch.float64)


class Projected:
    """The LSTM's input gates `gates(inputs)`, not computed yet (not a
    tuple, so that `keras.tree` takes it for a leaf)."""

    __slots__ = ("gates", "inputs")

    def __init__(self, gates: Callable, inputs):
        self.gates, self.inputs = gates, inputs

    def value(self):
        return convert_to_tensor(self.gates(self.inputs))


def project(gates, inputs):
    """`gates(inputs)`, deferred to where `run` or `lstm_step` reads it."""
    return Projected(gates, inputs)


def token_table(gates, embeddings):
    """No table of every token's gates: a fused pass reads the embeddings
    (and the loop projects `_CHUNK` steps at once)."""
    return None


def lstm_step(gates, state, recurrent_kernel):
    """`portable.lstm_step` in `torch` ops (the same values, without
    Keras's per-op conversions)."""
    gates = gates.value() if isinstance(gates, Projected) else _tensor(gates)
    hidden, cell = (_tensor(s) for s in state)
    kernel = convert_to_tensor(recurrent_kernel)  # A variable: read in its scope.
    dtype = gates.dtype
    if dtype not in _PLAIN_DTYPES or not (hidden.dtype == cell.dtype == kernel.dtype == dtype):
        return portable.lstm_step(gates, (hidden, cell), kernel)
    z = gates + torch.matmul(hidden, kernel)
    i, f, g, o = torch.split(z, z.shape[-1] // 4, dim=-1)
    cell = torch.sigmoid(f) * cell + torch.sigmoid(i) * torch.tanh(g)
    hidden = torch.sigmoid(o) * torch.tanh(cell)
    return hidden, (hidden, cell)


def _tensor(x):
    """`x` as a `torch.Tensor` (Keras's conversion only where it is not one)."""
    return x if isinstance(x, torch.Tensor) else convert_to_tensor(x)


def run(
    step,
    inputs,
    state,
    initial_output,
    *,
    input_fn=None,
    mask=None,
    capture_after=None,
    num_steps=None,
    return_sequences=False,
    zero_output_for_mask=False,
    cell=None,
):
    """Runs one recurrent layer over time-major `inputs`; see
    `keras_auxloss.recurrence` and `backends/tensorflow.py` for the
    arguments and the returned `(output, state, sequences, captured)`.
    `cell` is the Keras cell `step` steps, if any: Keras's `LSTMCell` and
    `GRUCell` go through PyTorch's fused kernel. `input_fn` may be given
    several steps at once (`(steps, batch, ...)`)."""
    run = Run(
        state=tuple(_tensor(s) for s in state),
        output=_tensor(initial_output),
        input_fn=input_fn,
        mask=None if mask is None else _tensor(mask).bool(),
        capture_after=None if capture_after is None else _tensor(capture_after),
        return_sequences=return_sequences,
        zero_output_for_mask=zero_output_for_mask,
    )
    if isinstance(inputs, Projected) and input_fn is not None:
        inputs = inputs.value()  # `input_fn` reads the gates.
    length = (inputs.inputs if isinstance(inputs, Projected) else inputs).shape[0]
    steps = length if num_steps is None else min(int(num_steps), length)
    if cell is not None and steps > 0 and (_is_keras_lstm(cell) or _is_keras_gru(cell)):
        if _run_fused(run, cell, inputs, steps):
            return run.result()
    inputs = inputs.value() if isinstance(inputs, Projected) else _tensor(inputs)
    _run_loop(run, step, inputs, steps)
    return run.result()


class Run:
    """A run's options and what it has computed so far: the output and
    state after the steps run, the captures, the outputs of every step."""

    def __init__(
        self,
        *,
        state,
        output,
        input_fn,
        mask,
        capture_after,
        return_sequences,
        zero_output_for_mask,
    ):
        self.state, self.output, self.input_fn, self.mask = state, output, input_fn, mask
        self.capture_after, self.return_sequences = capture_after, return_sequences
        self.zero_output_for_mask = zero_output_for_mask
        self.outputs, self.captured, self.capture_steps = [], None, set()
        if capture_after is not None:
            positions = capture_after.shape[1]
            self.captured = tuple(s[:, None, :].repeat(1, positions, 1) for s in (output, *state))
            # The steps where some example captures: the others skip the capture.
            self.capture_steps = set(torch.unique(capture_after).tolist())

    def inputs(self, inputs, sizes):
        """`inputs` cut into pieces of `sizes` steps (`torch.split` reads
        them once), each through `input_fn` when it is reached: a pass
        holds the inputs of one piece at a time."""
        for piece in torch.split(inputs, sizes, dim=0):
            yield piece if self.input_fn is None else self.input_fn(piece)

    def advance(self, output, state, sequences, keep, last):
        """Takes the output and state after step `last` (and `sequences`,
        the outputs of the steps before, or `None`): examples whose `keep`
        is false keep their output and state, as Keras masks a step."""
        if keep is not None:
            masked = torch.zeros_like(self.output) if self.zero_output_for_mask else self.output
            if sequences is not None:
                sequences = torch.where(keep[None], sequences, masked[None])
            output = torch.where(keep, output, masked)
            state = tuple(torch.where(keep, n, s) for n, s in zip(state, self.state))
        if last in self.capture_steps:
            hit = (self.capture_after == last)[:, :, None]
            self.captured = tuple(
                torch.where(hit, n[:, None, :], c) for n, c in zip((output, *state), self.captured)
            )
        self.output, self.state = output, tuple(state)
        if self.return_sequences:
            self.outputs.append(output if sequences is None else sequences)

    def result(self):
        """`(output, state, sequences, captured)`, as `run` returns them."""
        sequences = None
        if self.return_sequences and not self.outputs:
            sequences = self.output.new_zeros((0, *self.output.shape))
        elif self.return_sequences and self.outputs[0].dim() == self.output.dim():
            sequences = torch.stack(self.outputs)  # A step each: the loop's.
        elif self.return_sequences:
            sequences = torch.cat(self.outputs)  # Segments of steps: the fused kernel's.
        return self.output, self.state, sequences, self.captured


def _run_loop(run, step, inputs, steps):
    """`run` as a loop over the first `steps` steps of `inputs`."""
    if steps == 0:
        return
    if run.input_fn is None:
        chunks = [steps]  # The inputs are what the step reads: read them at once.
    else:
        chunks = [_CHUNK] * (steps // _CHUNK) + ([steps % _CHUNK] if steps % _CHUNK else [])
    keeps = [None] * steps
    if run.mask is not None:
        keeps = torch.unbind(run.mask[:steps, :, None], 0)
    t = 0
    for chunk in run.inputs(inputs[:steps], chunks):
        chunk = chunk.value() if isinstance(chunk, Projected) else _tensor(chunk)
        for x in torch.unbind(chunk, 0):
            output, state = step(x, run.state)
            run.advance(output, state, None, keeps[t], t)
            t += 1


def _run_fused(run, cell, inputs, steps):
    """`run` through the fused kernel for `cell`, in segments; `False`
    (nothing run) where the kernel does not apply."""
    ends = {steps} | {t + 1 for t in run.capture_steps if 0 <= t < steps - 1}
    if run.input_fn is not None:
        ends |= set(range(_CHUNK, steps, _CHUNK))
    mask = None if run.mask is None else run.mask[:steps]
    if mask is not None:
        changes = torch.nonzero(torch.any(mask[1:] != mask[:-1], dim=1))[:, 0] + 1
        if len(changes) * _MASK_CHANGES > steps:
            return False
        ends |= set(changes.tolist())
    ends = sorted(ends)
    sizes = [end - start for start, end in zip([0, *ends], ends)]
    if isinstance(inputs, Projected):  # Cut before the projection.
        gates = inputs.gates
        pieces = (Projected(gates, p) for p in run.inputs(_tensor(inputs.inputs)[:steps], sizes))
    else:
        pieces = run.inputs(_tensor(inputs)[:steps], sizes)
    start = 0
    for piece, end in zip(pieces, ends):
        result = _fused_segment(cell, piece, run.state, run.return_sequences)
        if result is None:  # Refused for the cell, dtypes or inputs: at once.
            if start > 0:
                raise RuntimeError("The fused kernel refused a segment after the first.")
            return False
        output, state, sequences = result
        keep = None if mask is None else mask[start, :, None]
        run.advance(output, state, sequences, keep, end - 1)
        start = end
    return True


def _fused_segment(cell, inputs, state, return_sequences):
    """`(output, state, sequences)` of the fused kernel for `cell` over
    `inputs` (what a step of its runner reads: the LSTM's `Projected`
    gates, the GRU's inputs), or `None` where the kernel does not apply."""
    if _is_keras_lstm(cell) and isinstance(inputs, Projected):
        return _fused_lstm(cell, _tensor(inputs.inputs), state, return_sequences)
    if _is_keras_gru(cell) and not isinstance(inputs, Projected):
        return _fused_gru(cell, _tensor(inputs), state, return_sequences)
    return None


def _is_keras_lstm(cell):
    return (
        type(cell) is keras.layers.LSTMCell
        and cell.activation is keras.activations.tanh
        and cell.recurrent_activation is keras.activations.sigmoid
    )


def _is_keras_gru(cell):
    return (
        type(cell) is keras.layers.GRUCell
        and cell.reset_after
        and cell.activation is keras.activations.tanh
        and cell.recurrent_activation is keras.activations.sigmoid
    )


def _weights(cell, names, dtype):
    """`cell`'s weights as its step reads them here, or `None` unless all
    are in `dtype` (a weight cast otherwise inside the cell's own call)."""
    weights = [convert_to_tensor(getattr(cell, name)) for name in names]
    return weights if all(w.dtype == dtype for w in weights) else None


def _train(*tensors):
    """Whether the kernel keeps what its backward pass needs."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def _fused_lstm(cell, inputs, state, return_sequences):
    """A Keras `LSTMCell` over `inputs` (before the gates' projection):
    Keras's gates are `i, f, c, o`, PyTorch's `i, f, g, o`, the same
    order; PyTorch's kernels are Keras's transposed, and its second bias
    (on the recurrent side) is zero."""
    hidden, carry = state
    dtype = hidden.dtype
    names = ("kernel", "recurrent_kernel") + (("bias",) if cell.use_bias else ())
    weights = _weights(cell, names, dtype)
    if dtype not in _FUSED_DTYPES or weights is None or carry.dtype != dtype:
        return None
    inputs = inputs.to(dtype)  # As `LSTMRunner.gates` casts them.
    kernel, recurrent_kernel, *bias = weights
    bias = bias[0] if bias else kernel.new_zeros(kernel.shape[1])
    params = [kernel.T, recurrent_kernel.T, bias, torch.zeros_like(bias)]
    outputs, hidden, carry = torch._VF.lstm(
        inputs,
        (hidden[None], carry[None]),
        params,
        True,  # has_biases
        1,  # num_layers
        0.0,  # dropout
        _train(inputs, hidden, carry, *weights),
        False,  # bidirectional
        False,  # batch_first
    )
    return hidden[0], (hidden[0], carry[0]), outputs if return_sequences else None


def _fused_gru(cell, inputs, state, return_sequences):
    """A Keras `GRUCell` (`reset_after=True`) over `inputs`: Keras's gates
    are `z, r, h` with `h = z * h + (1 - z) * tanh(x_h + r * (h @ U_h +
    b_h))`, PyTorch's `r, z, n` with `h = (1 - z) * n + z * h`, the same
    equations once the first two gates are swapped; Keras's bias rows are
    PyTorch's input and recurrent biases."""
    (hidden,) = state
    dtype = hidden.dtype
    names = ("kernel", "recurrent_kernel") + (("bias",) if cell.use_bias else ())
    weights = _weights(cell, names, dtype)
    in_cell_dtype = keras.backend.standardize_dtype(dtype) == cell.compute_dtype
    if dtype not in _FUSED_DTYPES or weights is None or not in_cell_dtype:
        return None
    inputs = inputs.to(dtype)  # As the cell's call converts them.
    kernel, recurrent_kernel, *bias = weights
    units = recurrent_kernel.shape[0]
    bias = bias[0] if bias else kernel.new_zeros((2, 3 * units))

    def reorder(w):  # Keras's z, r, h along the last axis -> PyTorch's r, z, n.
        z, r, h = torch.split(w, units, dim=-1)
        return torch.cat([r, z, h], dim=-1)

    params = [reorder(kernel).T, reorder(recurrent_kernel).T, reorder(bias[0]), reorder(bias[1])]
    outputs, hidden = torch._VF.gru(
        inputs,
        hidden[None],
        params,
        True,  # has_biases
        1,  # num_layers
        0.0,  # dropout
        _train(inputs, hidden, *weights),
        False,  # bidirectional
        False,  # batch_first
    )
    return hidden[0], (hidden[0],), outputs if return_sequences else None


def scan(step, carry, inputs):
    """Applies `carry = step(carry, inputs[t])` over time; returns every
    step's carry stacked on a new leading axis. Each of `inputs` is read
    once (`torch.unbind`), as in `run`."""
    flat = [torch.unbind(convert_to_tensor(x), 0) for x in keras.tree.flatten(inputs)]
    nested = keras.tree.is_nested(inputs)
    carries = []
    for xs in zip(*flat):
        carry = step(carry, keras.tree.pack_sequence_as(inputs, list(xs)) if nested else xs[0])
        carries.append(keras.tree.flatten(carry))
    return keras.tree.pack_sequence_as(carry, [torch.stack(c) for c in zip(*carries)])
