"""PyTorch's fused kernels for Keras's own LSTM and GRU cells, for the loop
of `torch.py`.

Keras's `LSTMCell` and `GRUCell` (`reset_after=True`) with their default
activations run through `torch._VF.lstm` / `torch._VF.gru`, the kernels of
`torch.nn.LSTM` and `torch.nn.GRU` (oneDNN's on CPU, cuDNN's on GPU), with
the weights laid out as PyTorch's: a run is cut into segments that the
kernel runs whole, ending where some example's mask changes, where some
example captures its state, and every `chunk` steps of a pass that reads
its inputs through `input_fn`; a run whose mask changes too often takes
the loop. Their values are the loop's to float rounding, not bit for bit.
The kernels project their inputs themselves: the LSTM's gates are deferred
(`torch.project` returns a `Projected`) to where they are read, so that a
fused run reads the inputs instead, and there is no token table.
"""

from collections.abc import Callable

import keras
import torch
from keras.src.backend.torch.core import convert_to_tensor

# A masked run whose mask changes at more than one step in this many takes
# the loop: the fused kernel would run too few steps at a time.
_MASK_CHANGES = 8
# The dtypes the fused kernels run in: oneDNN's on CPU, with their gradient.
_FUSED_DTYPES = (torch.float32, torch.bfloat16)


class Projected:
    """The LSTM's input gates `gates(inputs)`, not computed yet (not a
    tuple, so that `keras.tree` takes it for a leaf)."""

    __slots__ = ("gates", "inputs")

    def __init__(self, gates: Callable, inputs):
        self.gates, self.inputs = gates, inputs

    def value(self):
        return convert_to_tensor(self.gates(self.inputs))


def as_tensor(x):
    """`x` as a `torch.Tensor` (Keras's conversion only where it is not one)."""
    return x if isinstance(x, torch.Tensor) else convert_to_tensor(x)


def is_fused_cell(cell):
    """Whether `cell` is one of Keras's cells that a fused kernel runs."""
    return _is_keras_lstm(cell) or _is_keras_gru(cell)


def run_fused(run, cell, inputs, steps, chunk):
    """`run` (a `torch.Run`) through the fused kernel for `cell`, over the
    first `steps` steps of `inputs`, in segments (of at most `chunk` steps
    where it reads its inputs through `input_fn`); `False` (nothing run)
    where the kernel does not apply."""
    ends = {steps} | {t + 1 for t in run.capture_steps if 0 <= t < steps - 1}
    if run.input_fn is not None:
        ends |= set(range(chunk, steps, chunk))
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
        pieces = (Projected(gates, p) for p in run.inputs(as_tensor(inputs.inputs)[:steps], sizes))
    else:
        pieces = run.inputs(as_tensor(inputs)[:steps], sizes)
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
        return _fused_lstm(cell, as_tensor(inputs.inputs), state, return_sequences)
    if _is_keras_gru(cell) and not isinstance(inputs, Projected):
        return _fused_gru(cell, as_tensor(inputs), state, return_sequences)
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
