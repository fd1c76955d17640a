"""The recurrence on PyTorch: Python loops that read their inputs once, and
the fused kernels' runs cut into segments.

`keras.ops.scan` on PyTorch reads step `t` of its inputs as `x[t]`; the
gradient of each such read is a zero tensor of the whole input's size with
one slice filled, so the backward pass of a run of `L` steps builds `L`
tensors of `L` steps each: its time grows with the square of the length.
The loop here reads its inputs once (`torch.unbind`, `torch.split`), whose
gradient is the steps' gradients joined once: linear in the length. It
runs the steps as `portable.py` does (the same values, bit for bit, for
the same step).

`fused_run` runs a fused kernel (`kernels.py`: cuDNN through Keras on a
GPU, PyTorch's own on the CPU, `torch_fused.py`) over a run cut into
segments that the kernel runs whole: ending where some example captures
its state, where some example's mask changes, and every `_CHUNK` steps of
a pass that reads its inputs through `input_fn`.
"""

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
from keras_auxloss.backends.run_result import RunResult

# The steps whose inputs a pass through `input_fn` computes at once: the
# embedding lookup and projection of a chunk (8 MiB of float32 inputs at
# batch 32 and 256 features), one matrix product for all its steps.
_CHUNK = 256
# A masked run whose mask changes at more than one step in this many takes
# the loop rather than PyTorch's CPU kernel: the kernel would run too few
# steps at a time.
_MASK_CHANGES = 8
# The dtypes `lstm_step` computes in with plain `torch` ops (Keras's
# `matmul` on CPU computes float16 in float32: that goes through
# `portable.lstm_step`).
_PLAIN_DTYPES = (torch.float32, torch.bfloat16, torch.float64)


def lstm_step(gates, state, recurrent_kernel):
    """`portable.lstm_step` in `torch` ops (the same values, without
    Keras's per-op conversions)."""
    gates = as_tensor(gates)
    hidden, cell = (as_tensor(s) for s in state)
    kernel = convert_to_tensor(recurrent_kernel)  # A variable: read in its scope.
    dtype = gates.dtype
    if dtype not in _PLAIN_DTYPES or not (hidden.dtype == cell.dtype == kernel.dtype == dtype):
        return portable.lstm_step(gates, (hidden, cell), kernel)
    z = gates + torch.matmul(hidden, kernel)
    i, f, g, o = torch.split(z, z.shape[-1] // 4, dim=-1)
    cell = torch.sigmoid(f) * cell + torch.sigmoid(i) * torch.tanh(g)
    hidden = torch.sigmoid(o) * torch.tanh(cell)
    return hidden, (hidden, cell)


def as_tensor(x):
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
):
    """Runs one recurrent layer over time-major `inputs`, as a `RunResult`;
    see `backends/tensorflow.py` for the arguments. `input_fn` may be
    given several steps at once (`(steps, batch, ...)`)."""
    run, steps = _start(inputs, state, initial_output, input_fn, mask, capture_after, num_steps,
                        return_sequences, zero_output_for_mask)  # fmt: skip
    _run_loop(run, step, as_tensor(inputs), steps)
    return run.result()


def fused_run(
    kernel,
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
):
    """`run` through a fused `kernel` (`kernels.Kernel`) instead of a step:
    the run cut into segments that the kernel runs whole, each from the
    state the one before left. Raises `NotImplementedError`, having run
    nothing, where the kernel refuses or, on PyTorch's CPU, where the mask
    changes too often for its segments to pay."""
    run, steps = _start(inputs, state, initial_output, input_fn, mask, capture_after, num_steps,
                        return_sequences, zero_output_for_mask)  # fmt: skip
    if steps == 0:
        return run.result()
    ends = {steps} | {t + 1 for t in run.capture_steps if 0 <= t < steps - 1}
    if input_fn is not None:
        ends |= set(range(_CHUNK, steps, _CHUNK))
    mask = None if run.mask is None else run.mask[:steps]
    if mask is not None:
        changes = torch.nonzero(torch.any(mask[1:] != mask[:-1], dim=1))[:, 0] + 1
        if kernel.name != "cudnn" and len(changes) * _MASK_CHANGES > steps:
            raise NotImplementedError
        ends |= set(changes.tolist())
    ends = sorted(ends)
    sizes = [end - start for start, end in zip([0, *ends], ends)]
    start = 0
    for piece, end in zip(run.inputs(as_tensor(inputs)[:steps], sizes), ends):
        output, new, sequences = kernel.run(piece, run.state, return_sequences)
        output = as_tensor(output).to(run.output.dtype)
        new = [as_tensor(n).to(s.dtype) for n, s in zip(new, run.state)]
        if sequences is not None:
            sequences = as_tensor(sequences).to(run.output.dtype)
        keep = None if mask is None else mask[start, :, None]
        run.advance(output, new, sequences, keep, end - 1)
        start = end
    return run.result()


def _start(inputs, state, initial_output, input_fn, mask, capture_after, num_steps,
           return_sequences, zero_output_for_mask):  # fmt: skip
    """`(run, steps)`: a `Run` and how many of the `inputs`' steps it runs."""
    run = Run(
        state=tuple(as_tensor(s) for s in state),
        output=as_tensor(initial_output),
        input_fn=input_fn,
        mask=None if mask is None else as_tensor(mask).bool(),
        capture_after=None if capture_after is None else as_tensor(capture_after),
        return_sequences=return_sequences,
        zero_output_for_mask=zero_output_for_mask,
    )
    length = inputs.shape[0]
    return run, length if num_steps is None else min(int(num_steps), length)


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
        """The `RunResult` that `run` returns."""
        sequences = None
        if self.return_sequences and not self.outputs:
            sequences = self.output.new_zeros((0, *self.output.shape))
        elif self.return_sequences and self.outputs[0].dim() == self.output.dim():
            sequences = torch.stack(self.outputs)  # A step each: the loop's.
        elif self.return_sequences:
            sequences = torch.cat(self.outputs)  # Segments of steps: the fused kernel's.
        return RunResult(self.output, self.state, sequences, self.captured)


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
        for x in torch.unbind(as_tensor(chunk), 0):
            output, state = step(x, run.state)
            run.advance(output, state, None, keeps[t], t)
            t += 1


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
