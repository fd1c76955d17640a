"""PyTorch's CPU kernels for Keras's own LSTM and GRU cells (`kernels.py`'s
`"onednn"`, on the CPU only: on a GPU they would run cuDNN):
`torch._VF.lstm` and `torch._VF.gru`, the kernels of
`torch.nn.LSTM` and `torch.nn.GRU` (oneDNN's on CPU), with the weights
laid out as PyTorch's. Their values are the loop's to float rounding, not
bit for bit.
"""

import keras
import torch
from keras.src.backend.torch.core import convert_to_tensor

# The dtypes the kernels run in: oneDNN's on CPU, with their gradient.
_FUSED_DTYPES = (torch.float32, torch.bfloat16)


def run(cell, kind, inputs, state, return_sequences):
    """`kernels.Kernel.run` for a Keras `LSTMCell` (`kind` `"lstm"`) or
    `GRUCell` (`"gru"`) over time-major `inputs`; raises
    `NotImplementedError` unless the state and the weights (as the layer's
    scope reads them) are all in the cell's compute dtype, float32 or
    bfloat16 (under `mixed_float16` the loop runs), and on a GPU."""
    state = tuple(convert_to_tensor(s) for s in state)
    if state[0].is_cuda:
        raise NotImplementedError("PyTorch's own kernels run cuDNN on a GPU (use_cudnn=False)")
    names = ("kernel", "recurrent_kernel") + (("bias",) if cell.use_bias else ())
    weights = [convert_to_tensor(getattr(cell, name)) for name in names]
    dtype = state[0].dtype
    same = all(t.dtype == dtype for t in (*state, *weights))
    in_cell_dtype = keras.backend.standardize_dtype(dtype) == cell.compute_dtype
    if dtype not in _FUSED_DTYPES or not same or not in_cell_dtype:
        raise NotImplementedError
    inputs = convert_to_tensor(inputs).to(dtype)  # As the cell's call casts them.
    fused = _lstm if kind == "lstm" else _gru
    return fused(inputs, state, weights, return_sequences)


def _train(*tensors):
    """Whether the kernel keeps what its backward pass needs."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def _lstm(inputs, state, weights, return_sequences):
    """Keras's gates are `i, f, c, o`, PyTorch's `i, f, g, o`, the same
    order; PyTorch's kernels are Keras's transposed, and its second bias
    (on the recurrent side) is zero."""
    hidden, carry = state
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


def _gru(inputs, state, weights, return_sequences):
    """Keras's gates are `z, r, h` with `h = z * h + (1 - z) * tanh(x_h +
    r * (h @ U_h + b_h))`, PyTorch's `r, z, n` with `h = (1 - z) * n + z *
    h`, the same equations once the first two gates are swapped; Keras's
    bias rows are PyTorch's input and recurrent biases."""
    (hidden,) = state
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
