"""The recurrence on TensorFlow: a `tf.while_loop` over time-major input.

Keras's own loop primitives on TensorFlow read their whole input up front,
and cannot stop after a number of steps known only at run time; a
`tf.while_loop` over TensorArrays reads each step's input lazily (the layer
never materialises a `(time, batch, embedding)` tensor for a long sequence),
captures the state at positions chosen per example only at the steps that
need it, and stops where the last window starts.

A step is any function `(step_input, state) -> (output, state)` on a state
that is a tuple of `(batch, size)` tensors: a Keras cell's `call`, or the
LSTM step below, whose gate layout is Keras's (`i, f, c, o`), so that the
weights of a `keras.layers.LSTMCell` give the same values as
`keras.layers.LSTM`.
"""

from collections.abc import Callable

import tensorflow as tf

from keras_auxloss.backends.portable import (  # noqa: F401 (one LSTM step for all)
    lstm_step,
    project,
    token_table,
)
from keras_auxloss.backends.run_result import RunResult


def run(
    step: Callable,
    inputs: tf.Tensor,
    state: tuple,
    initial_output: tf.Tensor,
    *,
    input_fn: Callable | None = None,
    mask: tf.Tensor | None = None,
    capture_after: tf.Tensor | None = None,
    num_steps: tf.Tensor | None = None,
    return_sequences: bool = False,
    zero_output_for_mask: bool = False,
    cell=None,
):
    """Runs one recurrent layer over time-major `inputs`.

    Args:
        step: `(step_input, state) -> (output, state)`.
        inputs: `(time, batch, ...)`. Step `t` reads `inputs[t]`.
        state: the initial state, a tuple of `(batch, size)` tensors.
        initial_output: the output before the first step, `(batch, output_size)`:
            what a masked first step outputs.
        input_fn: maps `inputs[t]` to the step's input; `None`: `inputs[t]`.
        mask: optional `(time, batch)` booleans; at a masked-out step the
            state and output are carried over unchanged, as in Keras.
        zero_output_for_mask: at a masked-out step, output zeros instead
            (and carry them over), as Keras's option of that name does.
        capture_after: optional `(batch, positions)` integer steps. The output
            and state after step `capture_after[b, p]` are returned at
            `[b, p]`; a position the loop never reaches (such as -1) returns
            the initial output and state.
        num_steps: how many steps to run, at most `time`; default all.
        return_sequences: also return every step's output.
        cell: the Keras cell that `step` steps, or `None`. A backend with a
            fused kernel for the cell may run a plain run through it (no
            `input_fn`, `mask`, `capture_after` or `num_steps`): PyTorch's
            for Keras's `LSTMCell` and `GRUCell`. Not read here.

    Returns:
        A `RunResult(output, state, sequences, captured)`: `sequences` is
        `(num_steps, batch, output_size)` or `None`; `captured` is a tuple
        of `(batch, positions, size)` tensors, the output then each state
        tensor, or `None`.
    """
    del cell  # No fused kernels here.
    length = tf.shape(inputs)[0]
    steps = length if num_steps is None else num_steps
    inputs_ta = tf.TensorArray(inputs.dtype, size=length).unstack(inputs)
    if mask is not None:
        mask_ta = tf.TensorArray(tf.bool, size=length).unstack(mask)
    outputs_ta = tf.TensorArray(initial_output.dtype, size=steps) if return_sequences else ()
    captured = ()
    if capture_after is not None:
        positions = tf.shape(capture_after)[1]
        captured = tuple(
            tf.repeat(s[:, None, :], positions, axis=1) for s in (initial_output, *state)
        )
        # Steps where some example captures: the rest skip the capture's ops.
        capture_steps = tf.reduce_any(
            tf.equal(tf.range(length)[:, None], tf.reshape(capture_after, (1, -1))), axis=1
        )

    def body(t, output, state, captured, outputs_ta):
        x = inputs_ta.read(t)
        new_output, new = step(x if input_fn is None else input_fn(x), state)
        if mask is not None:
            keep = mask_ta.read(t)[:, None]
            masked_output = tf.zeros_like(output) if zero_output_for_mask else output
            new_output = tf.where(keep, new_output, masked_output)
            new = tuple(tf.where(keep, n, s) for n, s in zip(new, state))
        if capture_after is not None:

            def capture():
                hit = tf.equal(capture_after, t)[:, :, None]
                new_values = (new_output, *new)
                return tuple(tf.where(hit, n[:, None, :], c) for n, c in zip(new_values, captured))

            captured = tf.cond(capture_steps[t], capture, lambda: captured)
        if return_sequences:
            outputs_ta = outputs_ta.write(t, new_output)
        return t + 1, new_output, tuple(new), captured, outputs_ta

    _, output, state, captured, outputs_ta = tf.while_loop(
        lambda t, *_: t < steps,
        body,
        (tf.constant(0), initial_output, tuple(state), captured, outputs_ta),
        maximum_iterations=length,
    )
    sequences = outputs_ta.stack() if return_sequences else None
    return RunResult(output, state, sequences, captured if capture_after is not None else None)


def scan(step, carry, inputs):
    """Applies `carry = step(carry, inputs[t])` over time; returns every
    step's carry stacked on a new leading axis (`tf.scan`)."""
    return tf.scan(step, inputs, initializer=carry)


def assert_token_ids(ids: tf.Tensor, vocab_size: int, owner: str) -> tf.Tensor:
    """`ids`, checked at run time to lie in `[0, vocab_size)`.

    Unchecked, a negative id would be read from the end of the embedding
    table (Keras's `take` wraps it) instead of failing.
    """
    message = f"{owner} got token ids outside [0, vocab_size={vocab_size}):"
    checks = [
        tf.debugging.assert_non_negative(ids, message=message),
        tf.debugging.assert_less(ids, tf.cast(vocab_size, ids.dtype), message=message),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(ids)


def assert_finite(inputs: tf.Tensor, owner: str) -> tf.Tensor:
    """`inputs`, checked at run time to hold no NaN or infinity."""
    return tf.debugging.assert_all_finite(inputs, f"{owner} got NaN or infinite inputs")


def assert_batch_size(inputs: tf.Tensor, expected: int, message: str) -> None:
    """Checks that `inputs` has `expected` rows: now if the batch size is
    static, else when the batch runs. `message` ends with the size found."""
    if inputs.shape[0] is not None:
        if inputs.shape[0] != expected:
            raise ValueError(f"{message} {inputs.shape[0]}.")
        return
    tf.debugging.assert_equal(tf.shape(inputs)[0], expected, message=message)


def assert_mask_fits(mask: tf.Tensor, inputs: tf.Tensor, message: str) -> tf.Tensor:
    """`mask` `(batch, time)`, checked when the batch runs to have the batch
    size and length of `inputs` (dimensions unknown when traced)."""
    check = tf.debugging.assert_equal(tf.shape(mask), tf.shape(inputs)[:2], message=message)
    with tf.control_dependencies([check]):
        return tf.identity(mask)
