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

import functools
from collections.abc import Callable

import tensorflow as tf

from keras_auxloss.backends.portable import lstm_step  # noqa: F401 (one LSTM step for all)
from keras_auxloss.backends.run_result import RunResult

# The steps whose inputs a fused run through `input_fn` computes at once.
_CHUNK = 256


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

    Returns:
        A `RunResult(output, state, sequences, captured)`: `sequences` is
        `(num_steps, batch, output_size)` or `None`; `captured` is a tuple
        of `(batch, positions, size)` tensors, the output then each state
        tensor, or `None`.
    """
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


def fused_run(
    kernel,
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
):
    """`run` through a fused `kernel` (`kernels.Kernel`) instead of a step.

    A plain run (no `input_fn`, `mask`, `capture_after` or `num_steps`)
    is one call of the kernel. Any other is cut into segments, in a
    `tf.while_loop`, that the kernel runs whole, each from the state the
    one before left: a segment ends after each step where some example
    captures, where some example's mask changes (within a segment each
    example is either read or masked throughout), at `num_steps`, and every
    `_CHUNK` steps of a pass that reads its inputs through `input_fn` (so
    that the inputs of one chunk at a time are computed).
    """
    if input_fn is None and mask is None and capture_after is None and num_steps is None:
        output, state, sequences = kernel.run(inputs, tuple(state), return_sequences)
        return RunResult(output, tuple(state), sequences, None)
    length = tf.shape(inputs)[0]
    steps = length if num_steps is None else tf.minimum(tf.cast(num_steps, tf.int32), length)
    ends = _segment_ends(steps, mask, capture_after, _CHUNK if input_fn is not None else None)
    captured = ()
    if capture_after is not None:
        positions = tf.shape(capture_after)[1]
        captured = tuple(
            tf.repeat(s[:, None, :], positions, axis=1) for s in (initial_output, *state)
        )
    outputs_ta = ()
    if return_sequences:
        outputs_ta = tf.TensorArray(
            initial_output.dtype, size=tf.size(ends), infer_shape=False,
            element_shape=tf.TensorShape([None]).concatenate(initial_output.shape),
        )  # fmt: skip
    segment = functools.partial(
        _segment, kernel, inputs, input_fn=input_fn, mask=mask, capture_after=capture_after,
        return_sequences=return_sequences, zero_output_for_mask=zero_output_for_mask,
    )  # fmt: skip

    def body(i, start, output, state, captured, outputs_ta):
        end = ends[i]
        carry = (output, state, captured, outputs_ta)

        def skip():  # An empty segment: two ends at one step.
            if not return_sequences:
                return carry
            return (*carry[:3], outputs_ta.write(i, tf.zeros_like(output)[None][:0]))

        return (i + 1, end, *tf.cond(end > start, lambda: segment(i, start, end, *carry), skip))

    _, _, output, state, captured, outputs_ta = tf.while_loop(
        lambda i, *_: i < tf.size(ends),
        body,
        (tf.constant(0), tf.constant(0), initial_output, tuple(state), captured, outputs_ta),
    )
    sequences = outputs_ta.concat() if return_sequences else None
    return RunResult(output, state, sequences, captured if capture_after is not None else None)


def _segment(kernel, inputs, i, start, end, output, state, captured, outputs_ta, *, input_fn,
             mask, capture_after, return_sequences, zero_output_for_mask):  # fmt: skip
    """`fused_run`'s segment `i`, steps `start` to `end`: the kernel from
    `output` and `state`, then the mask, the captures and the outputs."""
    x = inputs[start:end]
    new_output, new, sequences = kernel.run(
        x if input_fn is None else input_fn(x), state, return_sequences
    )
    new = tuple(tf.cast(n, s.dtype) for n, s in zip(new, state))
    new_output = tf.cast(new_output, output.dtype)
    if mask is not None:  # Each example is read or masked throughout a segment.
        keep = mask[start][:, None]
        masked_output = tf.zeros_like(output) if zero_output_for_mask else output
        new_output = tf.where(keep, new_output, masked_output)
        new = tuple(tf.where(keep, n, s) for n, s in zip(new, state))
        if return_sequences:
            sequences = tf.where(keep[None], sequences, masked_output[None])
    if capture_after is not None:
        hit = tf.equal(capture_after, end - 1)[:, :, None]
        captured = tuple(
            tf.where(hit, n[:, None, :], c) for n, c in zip((new_output, *new), captured)
        )
    if return_sequences:
        outputs_ta = outputs_ta.write(i, tf.cast(sequences, output.dtype))
    return new_output, new, captured, outputs_ta


def _segment_ends(steps, mask, capture_after, chunk):
    """The steps where `fused_run`'s segments end, sorted, the last
    `steps`; repeated ends make empty segments, which it skips."""
    ends = [tf.reshape(steps, [1])]
    if capture_after is not None:
        ends.append(tf.reshape(tf.cast(capture_after, tf.int32), [-1]) + 1)
    if mask is not None:
        read = mask[:steps]
        changes = tf.where(tf.reduce_any(tf.not_equal(read[1:], read[:-1]), axis=1))[:, 0] + 1
        ends.append(tf.cast(changes, tf.int32))
    if chunk is not None:
        ends.append(tf.range(chunk, tf.maximum(steps, chunk), chunk))
    return tf.sort(tf.clip_by_value(tf.concat(ends, 0), 0, steps))


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
