"""The recurrence on PyTorch: Python loops that read their inputs once, and
PyTorch's fused kernels for Keras's own LSTM and GRU cells.

`keras.ops.scan` on PyTorch reads step `t` of its inputs as `x[t]`; the
gradient of each such read is a zero tensor of the whole input's size with
one slice filled, so the backward pass of a run of `L` steps builds `L`
tensors of `L` steps each: its time grows with the square of the length.
The loops here read their inputs once, `torch.unbind(x, 0)`, whose gradient
is the steps' gradients stacked once: linear in the length. They run the
same ops as `portable.py`, so they give its values bit for bit.

A plain run (no mask, no capture, every step, inputs read as they are) of
a Keras `LSTMCell` or `GRUCell` with their default equations goes through
`torch._VF.lstm` / `torch._VF.gru`, the kernels of `torch.nn.LSTM` and
`torch.nn.GRU` (oneDNN's on CPU, cuDNN's on GPU), with the weights laid
out as PyTorch's: the windows and the decoder's layers. Their values are
those of the loop to float rounding, not bit for bit. The LSTM's fast path
steps on gates projected outside the loop, but the kernel projects its
inputs itself: `project` defers the projection (`Projected`) to where the
gates are read, so that a fused run reads the inputs instead.
"""

from collections.abc import Callable

import keras
import torch
from keras.src.backend.torch.core import convert_to_tensor

from keras_auxloss.backends import portable
from keras_auxloss.backends.portable import (  # noqa: F401 (the same on PyTorch)
    assert_batch_size,
    assert_finite,
    assert_token_ids,
)

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
    `cell` is the Keras cell `step` steps, if any: a plain run of Keras's
    `LSTMCell` or `GRUCell` goes through PyTorch's fused kernel."""
    state = tuple(convert_to_tensor(s) for s in state)
    plain = input_fn is None and mask is None and capture_after is None and num_steps is None
    if plain and cell is not None:
        fused = _fused_run(cell, inputs, state, return_sequences)
        if fused is not None:
            return fused
    inputs = inputs.value() if isinstance(inputs, Projected) else convert_to_tensor(inputs)
    return _run_loop(
        step,
        inputs,
        state,
        convert_to_tensor(initial_output),
        input_fn=input_fn,
        mask=mask,
        capture_after=capture_after,
        num_steps=num_steps,
        return_sequences=return_sequences,
        zero_output_for_mask=zero_output_for_mask,
    )


def _run_loop(
    step,
    inputs,
    state,
    output,
    *,
    input_fn,
    mask,
    capture_after,
    num_steps,
    return_sequences,
    zero_output_for_mask,
):
    """`run` as a loop over the steps of `inputs`, each read once."""
    length = inputs.shape[0]
    steps = length if num_steps is None else min(int(num_steps), length)
    step_inputs = torch.unbind(inputs[:steps], 0)
    keeps = [None] * steps
    if mask is not None:
        keeps = torch.unbind(convert_to_tensor(mask)[:steps, :, None], 0)
    captured, capture_steps = (), set()
    if capture_after is not None:
        capture_after = convert_to_tensor(capture_after)
        positions = capture_after.shape[1]
        captured = tuple(s[:, None, :].repeat(1, positions, 1) for s in (output, *state))
        # The steps where some example captures: the others skip the capture.
        capture_steps = set(torch.unique(capture_after).tolist())

    outputs = []
    for t, (x, keep) in enumerate(zip(step_inputs, keeps)):
        new_output, new = step(x if input_fn is None else input_fn(x), state)
        if keep is not None:
            masked_output = torch.zeros_like(output) if zero_output_for_mask else output
            new_output = torch.where(keep, new_output, masked_output)
            new = tuple(torch.where(keep, n, s) for n, s in zip(new, state))
        if t in capture_steps:
            hit = (capture_after == t)[:, :, None]
            captured = tuple(
                torch.where(hit, n[:, None, :], c) for n, c in zip((new_output, *new), captured)
            )
        output, state = new_output, tuple(new)
        if return_sequences:
            outputs.append(output)
    sequences = None
    if return_sequences:
        sequences = torch.stack(outputs) if outputs else output.new_zeros((0, *output.shape))
    return output, state, sequences, (captured if capture_after is not None else None)


def _fused_run(cell, inputs, state, return_sequences):
    """`run`'s result from PyTorch's fused kernel for `cell`, or `None`
    where the kernel does not apply: Keras's `LSTMCell` on the gates of
    `project`, its `GRUCell` on its inputs."""
    if isinstance(inputs, Projected):
        if not _is_keras_lstm(cell):
            return None
        inputs, fused = convert_to_tensor(inputs.inputs), _fused_lstm
    else:
        inputs, fused = convert_to_tensor(inputs), _fused_gru
        if not _is_keras_gru(cell):
            return None
    if inputs.shape[0] == 0:
        return None
    return fused(cell, inputs, state, return_sequences)


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
        torch.is_grad_enabled(),  # train: keep what the backward pass needs
        False,  # bidirectional
        False,  # batch_first
    )
    return hidden[0], (hidden[0], carry[0]), outputs if return_sequences else None, None


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
        torch.is_grad_enabled(),  # train
        False,  # bidirectional
        False,  # batch_first
    )
    return hidden[0], (hidden[0],), outputs if return_sequences else None, None


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
