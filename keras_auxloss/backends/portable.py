"""The recurrence in `keras.ops`, for JAX (and the LSTM step of every
backend).

A run that may be differentiated is a `keras.ops.scan` over its window
(on JAX, `jax.lax.scan`: reverse-mode differentiable, compiled by XLA).
The pass outside the gradient that only finds the windows' states stops
where the last window starts, a number of steps known only at run time: a
`keras.ops.while_loop`, which reads one step's input at a time and keeps no
activations. A fused kernel runs only the runs it takes whole (`fused_run`):
JAX's shapes are static, so a run cannot be cut at steps known at run time.
"""

import keras
from keras import ops

from keras_auxloss.backends.run_result import RunResult


def lstm_step(gates, state, recurrent_kernel):
    """One LSTM step from the input's gate pre-activations `x @ W + b`;
    `state` is `(h, c)`. Returns `(h, (h, c))`."""
    hidden, cell = state
    z = gates + ops.matmul(hidden, recurrent_kernel)
    i, f, g, o = ops.split(z, 4, axis=-1)
    cell = ops.sigmoid(f) * cell + ops.sigmoid(i) * ops.tanh(g)
    hidden = ops.sigmoid(o) * ops.tanh(cell)
    return hidden, (hidden, cell)


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
    """Runs one recurrent layer over time-major `inputs`, as a
    `RunResult`; see `backends/tensorflow.py` for the arguments."""
    output, captured = initial_output, ()
    if capture_after is not None:
        positions = ops.shape(capture_after)[1]
        captured = tuple(ops.repeat(s[:, None, :], positions, axis=1) for s in (output, *state))

    def advance(t, x, keep, output, state, captured):
        new_output, new = step(x if input_fn is None else input_fn(x), state)
        if keep is not None:
            masked_output = ops.zeros_like(output) if zero_output_for_mask else output
            new_output = ops.where(keep[:, None], new_output, masked_output)
            new = tuple(ops.where(keep[:, None], n, s) for n, s in zip(new, state))
        if capture_after is not None:
            hit = ops.equal(capture_after, t)[:, :, None]
            captured = tuple(
                ops.where(hit, n[:, None, :], c) for n, c in zip((new_output, *new), captured)
            )
        return new_output, tuple(new), captured

    if num_steps is not None and not return_sequences:
        output, state, captured = _run_while(
            advance, inputs, mask, num_steps, output, state, captured
        )
        return RunResult(output, state, None, captured if capture_after is not None else None)

    def scan_step(carry, xs):
        t, x, keep = xs if mask is not None else (*xs, None)
        carry = advance(t, x, keep, *carry)
        return carry, (carry[0] if return_sequences else None)

    xs = (ops.arange(ops.shape(inputs)[0], dtype="int32"), inputs)
    (output, state, captured), sequences = ops.scan(
        scan_step, (output, tuple(state), captured), xs if mask is None else (*xs, mask)
    )
    # PyTorch's scan stacks placeholders where the step gives no output.
    sequences = sequences if return_sequences else None
    return RunResult(output, state, sequences, captured if capture_after is not None else None)


def fused_run(kernel, inputs, state, initial_output, *, input_fn=None, mask=None,
              capture_after=None, num_steps=None, return_sequences=False,
              zero_output_for_mask=False):  # fmt: skip
    """`run` through a fused `kernel` (`kernels.Kernel`): here only a run
    that the kernel runs whole, unmasked, over all its inputs. A run cut at
    steps known only at run time (captures, masks, a number of steps, its
    inputs read in chunks) needs shapes known only at run time, which JAX
    does not have: it raises `NotImplementedError` (the loop runs it)."""
    del initial_output, zero_output_for_mask
    if (
        input_fn is not None
        or mask is not None
        or capture_after is not None
        or num_steps is not None
    ):
        raise NotImplementedError(
            "JAX's shapes are static, so it cannot cut a run at steps known only at run time "
            "(captures, changes of mask, a number of steps) nor read a pass's inputs a chunk at "
            "a time"
        )
    output, state, sequences = kernel.run(inputs, tuple(state), return_sequences)
    return RunResult(output, tuple(state), sequences, None)


def _run_while(advance, inputs, mask, num_steps, output, state, captured):
    """`advance` for the first `num_steps` steps, read one at a time."""

    def body(t, output, state, captured):
        x = ops.take(inputs, t, axis=0)
        keep = None if mask is None else ops.take(mask, t, axis=0)
        return (t + 1, *advance(t, x, keep, output, state, captured))

    _, output, state, captured = ops.while_loop(
        lambda t, *_: t < num_steps,
        body,
        (ops.convert_to_tensor(0, "int32"), output, tuple(state), captured),
        maximum_iterations=ops.shape(inputs)[0],
    )
    return output, state, captured


def scan(step, carry, inputs):
    """Applies `carry = step(carry, inputs[t])` over time; returns every
    step's carry stacked on a new leading axis."""

    def scan_step(carry, x):
        carry = step(carry, x)
        return carry, carry

    return ops.scan(scan_step, carry, inputs)[1]


def assert_token_ids(ids, vocab_size, owner):
    """`ids`, checked to lie in `[0, vocab_size)` (when the batch runs)."""
    message = f"{owner} got token ids outside [0, vocab_size={vocab_size})"
    bad = ops.logical_or(ops.any(ids < 0), ops.any(ids >= vocab_size))
    return _check(ids, bad, message)


def assert_finite(inputs, owner):
    """`inputs`, checked to hold no NaN or infinity (when the batch runs)."""
    bad = ops.logical_not(ops.all(ops.isfinite(inputs)))
    return _check(inputs, bad, f"{owner} got NaN or infinite inputs")


def _check(value, bad, message):
    """Raises `ValueError(message)` if `bad` holds: at once on PyTorch
    (eager), from a host callback when the compiled step runs on JAX."""
    if keras.backend.backend() == "jax":
        import jax

        def fail(bad):
            if bad:
                raise ValueError(message)

        jax.debug.callback(fail, bad)
        return value
    if bool(ops.convert_to_numpy(bad)):
        raise ValueError(message)
    return value


def assert_batch_size(inputs, expected, message):
    """Checks that `inputs` has `expected` rows (its shape is static on
    these backends). `message` ends with the size found."""
    batch = int(ops.shape(inputs)[0])
    if batch != expected:
        raise ValueError(f"{message} {batch}.")


def assert_mask_fits(mask, inputs, message):
    """`mask`: its shape, static on these backends, was checked against the
    inputs' when the layer read it."""
    del inputs, message
    return mask
