"""The LSTM recurrence, run as a TensorFlow while loop over time-major input.

This is the package's one TensorFlow-specific module. Keras's own loop
primitives cannot read a step's input lazily (the layer never materialises a
`(time, batch, embedding)` tensor for a long sequence), capture the state at
positions chosen per example, or stop after a number of steps known only at
run time; a `tf.while_loop` does all three.

The gate layout is Keras's (`i, f, c, o`), so the weights of a
`keras.layers.LSTMCell` run here give the same values as `keras.layers.LSTM`.
"""

from collections.abc import Callable
from typing import NamedTuple

import tensorflow as tf


class LSTMState(NamedTuple):
    """The recurrent state of an LSTM layer, each `(batch, units)`."""

    hidden: tf.Tensor
    cell: tf.Tensor


def lstm_step(gates: tf.Tensor, state: LSTMState, recurrent_kernel: tf.Tensor) -> LSTMState:
    """One LSTM step from the input's gate pre-activations `x @ W + b`."""
    z = gates + tf.matmul(state.hidden, recurrent_kernel)
    i, f, g, o = tf.split(z, 4, axis=-1)
    cell = tf.sigmoid(f) * state.cell + tf.sigmoid(i) * tf.tanh(g)
    hidden = tf.sigmoid(o) * tf.tanh(cell)
    return LSTMState(hidden, cell)


def run_lstm(
    inputs: tf.Tensor,
    input_gates: Callable[[tf.Tensor], tf.Tensor] | None,
    state: LSTMState,
    recurrent_kernel: tf.Tensor,
    *,
    mask: tf.Tensor | None = None,
    capture_after: tf.Tensor | None = None,
    num_steps: tf.Tensor | None = None,
    return_sequences: bool = False,
):
    """Runs one LSTM layer over time-major `inputs`.

    Args:
        inputs: `(time, batch, ...)`. Step `t` reads `inputs[t]`.
        input_gates: maps `inputs[t]` to its `(batch, 4 * units)` gate
            pre-activations. `None` means `inputs` already holds them.
        state: the initial `LSTMState`.
        recurrent_kernel: `(units, 4 * units)`.
        mask: optional `(time, batch)` booleans; at a masked-out step the
            state is carried over unchanged, as in Keras.
        capture_after: optional `(batch, positions)` integer steps. The state
            after step `capture_after[b, p]` is returned at `[b, p]`; a
            position the loop never reaches (such as -1) returns the initial
            state.
        num_steps: how many steps to run, at most `time`; default all.
        return_sequences: also return every step's hidden state.

    Returns:
        `(final_state, sequences, captured)`: `sequences` is
        `(num_steps, batch, units)` or `None`; `captured` is an `LSTMState` of
        `(batch, positions, units)` tensors, or `None`.
    """
    length = tf.shape(inputs)[0]
    steps = length if num_steps is None else num_steps
    inputs_ta = tf.TensorArray(inputs.dtype, size=length).unstack(inputs)
    if mask is not None:
        mask_ta = tf.TensorArray(tf.bool, size=length).unstack(mask)
    outputs_ta = tf.TensorArray(state.hidden.dtype, size=steps) if return_sequences else ()
    if capture_after is not None:
        captured = LSTMState(
            *(tf.repeat(s[:, None, :], tf.shape(capture_after)[1], axis=1) for s in state)
        )
        # Steps where some example captures: the rest skip the capture's ops.
        capture_steps = tf.reduce_any(
            tf.equal(tf.range(length)[:, None], tf.reshape(capture_after, (1, -1))), axis=1
        )
    else:
        captured = ()

    def body(t, state, captured, outputs_ta):
        x = inputs_ta.read(t)
        new = lstm_step(x if input_gates is None else input_gates(x), state, recurrent_kernel)
        if mask is not None:
            keep = mask_ta.read(t)[:, None]
            new = LSTMState(*(tf.where(keep, n, s) for n, s in zip(new, state)))
        if capture_after is not None:

            def capture():
                hit = tf.equal(capture_after, t)[:, :, None]
                return LSTMState(*(tf.where(hit, n[:, None, :], c) for n, c in zip(new, captured)))

            captured = tf.cond(capture_steps[t], capture, lambda: captured)
        if return_sequences:
            outputs_ta = outputs_ta.write(t, new.hidden)
        return t + 1, new, captured, outputs_ta

    _, state, captured, outputs_ta = tf.while_loop(
        lambda t, *_: t < steps,
        body,
        (tf.constant(0), state, captured, outputs_ta),
        maximum_iterations=length,
    )
    sequences = outputs_ta.stack() if return_sequences else None
    return state, sequences, (captured if capture_after is not None else None)


def scan(step, carry, inputs):
    """Applies `carry = step(carry, inputs[t])` over time; returns every
    step's carry stacked on a new leading axis (`tf.scan`)."""
    return tf.scan(step, inputs, initializer=carry)


def assert_at_least(value: tf.Tensor, minimum: int, message: str) -> tf.Tensor:
    """`value`, checked at run time: fails with `message` when it is below `minimum`."""
    check = tf.debugging.assert_greater_equal(value, minimum, message=message)
    with tf.control_dependencies([check]):
        return tf.identity(value)


def assert_token_ids(ids: tf.Tensor, vocab_size: int) -> tf.Tensor:
    """`ids`, checked at run time to lie in `[0, vocab_size)`.

    Unchecked, a negative id would be read from the end of the embedding
    table (Keras's `take` wraps it) instead of failing.
    """
    message = f"AuxLossLSTM got token ids outside [0, vocab_size={vocab_size}):"
    checks = [
        tf.debugging.assert_non_negative(ids, message=message),
        tf.debugging.assert_less(ids, tf.cast(vocab_size, ids.dtype), message=message),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(ids)


def assert_finite(inputs: tf.Tensor) -> tf.Tensor:
    """`inputs`, checked at run time to hold no NaN or infinity."""
    return tf.debugging.assert_all_finite(inputs, "AuxLossLSTM got NaN or infinite inputs")
