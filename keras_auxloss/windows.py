"""Where the windows lie, and how they are cut from a sequence.

In training, the gradient flows through windows only: the supervised window
(the last `bptt` valid steps of each sequence) and one window per anchor,
drawn here at random among each sequence's valid steps (`locate`). The rule
that every window fits in the sequence is written here once
(`shortest_length`). Sequences are time-major, `(time, batch, ...)`;
windows of several anchors share the batch axis, example-major:
`(span, batch * anchors, ...)`.
"""

from typing import NamedTuple

import keras
from keras import ops

# The seed of the anchors drawn on held-out data in `evaluate`: the same
# windows at every evaluation, so that evaluations compare.
HELD_OUT_SEED = 20180301


class Windows(NamedTuple):
    """Where a batch's windows lie, as int32 steps (and `fits`, bool)."""

    ends: object  # (batch,): one past each sequence's last valid step.
    supervised_starts: object  # (batch,), or None with bptt=None.
    window_starts: object  # (batch, num_anchors), or None without an auxiliary loss.
    fits: object  # (batch,): whether a sequence has room for a window, or None.


def window_span(aux_loss, aux_length):
    """Steps an anchor's window reads: a prediction window also reads the
    token after its last step, the target of its last prediction."""
    return aux_length + (aux_loss == "predict")


def shortest_length(bptt, aux_loss, aux_length):
    """The fewest steps in which the supervised window and one anchor's
    window fit."""
    return max(bptt or 1, window_span(aux_loss, aux_length) if aux_loss else 1)


def check_length(length, bptt, aux_loss, aux_length, num_anchors):
    """Raises a `ValueError` naming the argument whose window cannot fit in
    sequences of `length` steps, a length known when the layer is built."""
    if length is None:
        return
    if bptt is not None and bptt > length:
        raise ValueError(
            f"Received bptt={bptt}, but the sequence length is "
            f"{length}: the supervised window must lie inside the sequence. "
            "Use a smaller `bptt`, or bptt=None for full backpropagation."
        )
    span = window_span(aux_loss, aux_length)
    if aux_loss is not None and span > length:
        raise ValueError(
            f"Received aux_length={aux_length} with aux_loss={aux_loss!r} and "
            f"num_anchors={num_anchors}, but the sequence length is {length}: each "
            f"anchor's window spans {span} steps and must lie inside the sequence."
        )


def pad_to_fit(inputs, mask, shortest):
    """`(inputs, mask)` for a batch of fewer than `shortest` steps (known
    only when it runs): right-padded with masked steps, so that its
    sequences train as shorter sequences in a padded batch do (the
    supervised window is each whole sequence, no anchor). Unchanged when the
    batch is known to be long enough."""
    length = inputs.shape[1]
    if length is not None and length >= shortest:
        return inputs, mask
    batch, steps = ops.shape(inputs)[0], ops.shape(inputs)[1]
    # Known now (short), or only when the batch runs (TensorFlow's dynamic shapes).
    missing = shortest - length if length is not None else ops.maximum(shortest - steps, 0)
    if mask is None:
        mask = ops.ones((batch, steps), "bool")
    padding = ops.zeros((batch, missing, *inputs.shape[2:]), inputs.dtype)
    inputs = ops.concatenate([inputs, padding], axis=1)
    mask = ops.concatenate([mask, ops.zeros((batch, missing), "bool")], axis=1)
    return inputs, mask


def sequence_ends(mask, batch, length):
    """`(batch,)` int32: one past each sequence's last valid step, the
    number of steps up to it (those with a valid step at or after them).
    Counted, not a `max`, which an empty batch fails on TensorFlow and
    PyTorch."""
    if mask is None:
        return ops.full((batch,), length, "int32")
    valid_from_the_end = ops.cumsum(ops.flip(ops.cast(mask, "int32"), axis=1), axis=1)
    return ops.sum(ops.cast(valid_from_the_end > 0, "int32"), axis=1)


def sequence_firsts(mask, batch):
    """`(batch,)` int32: each sequence's first valid step (0 if none is)."""
    if mask is None:
        return ops.zeros((batch,), "int32")
    return ops.cast(ops.argmax(ops.cast(mask, "int32"), axis=1), "int32")


def sample_window_starts(ends, num_anchors, span, seed, firsts=None):
    """Draws the anchors' windows: their first steps, uniform over the
    windows of `span` steps that lie between each sequence's first valid
    step (`firsts`, 0 if `None`) and its end, each example and anchor
    independently. `seed` is a `keras.random.SeedGenerator` or an int.

    A sequence too short for any window gets its first valid step (its
    windows are left out of the loss). Returns `(batch, num_anchors)` int32.
    """
    ends = ops.convert_to_tensor(ends, "int32")
    firsts = ops.zeros_like(ends) if firsts is None else firsts
    room = ops.maximum(ends - firsts - span + 1, 1)[:, None]
    uniform = keras.random.uniform((ops.shape(ends)[0], num_anchors), seed=seed)
    starts = ops.cast(ops.floor(uniform * ops.cast(room, "float32")), "int32")
    return firsts[:, None] + ops.minimum(starts, room - 1)


def locate(mask, batch, length, *, bptt, aux_loss, aux_length, num_anchors, seed, fixed=None):
    """Every window of a training batch, as `Windows`: the supervised
    window's start (with `bptt` set) and the anchors' window starts (with
    an auxiliary loss), drawn with `seed` unless `fixed` gives them
    (`(batch, num_anchors)` steps, or a function of the ends that returns
    them: see `keras_auxloss.testing.fix_window_starts`)."""
    ends = sequence_ends(mask, batch, length)
    supervised = None if bptt is None else ops.maximum(ends - bptt, 0)
    if aux_loss is None:
        return Windows(ends, supervised, None, None)
    span = window_span(aux_loss, aux_length)
    # Left-padded sequences (and right-padded ones read backward) have their
    # valid steps at the end: the anchors are drawn over those steps only.
    firsts = sequence_firsts(mask, batch)
    if fixed is None:
        starts = sample_window_starts(ends, num_anchors, span, seed, firsts)
    else:
        starts = ops.convert_to_tensor(fixed(ends) if callable(fixed) else fixed, "int32")
    return Windows(ends, supervised, starts, ends - firsts >= span)


def gather_windows(sequence, starts, span):
    """Cuts windows of `span` steps from a time-major sequence.

    Args:
        sequence: `(time, batch, ...)`.
        starts: `(batch, windows)` first step of each window.

    Returns:
        `(span, batch * windows, ...)`, time-major, example-major on axis 1.
    """
    batch = ops.shape(sequence)[1]
    steps = ops.arange(span, dtype="int32")[:, None, None] + starts[None]
    flat_index = steps * batch + ops.arange(batch, dtype="int32")[None, :, None]
    flat = ops.reshape(sequence, (-1,) + tuple(sequence.shape[2:]))
    windows = ops.take(flat, ops.reshape(flat_index, (-1,)), axis=0)
    return ops.reshape(windows, (span, -1) + tuple(sequence.shape[2:]))


def place_window(sequences, window, starts):
    """`sequences` `(time, batch, units)` with each example's `window`
    `(span, batch, units)` written from its step `starts[b]` on."""
    span, batch = ops.shape(window)[0], ops.shape(window)[1]
    offset = ops.arange(ops.shape(sequences)[0], dtype="int32")[:, None] - starts[None, :]
    inside = ops.logical_and(offset >= 0, offset < span)
    index = ops.clip(offset, 0, span - 1) * batch + ops.arange(batch, dtype="int32")[None, :]
    flat = ops.reshape(window, (-1, window.shape[-1]))
    placed = ops.reshape(ops.take(flat, ops.reshape(index, (-1,)), axis=0), ops.shape(sequences))
    return ops.where(inside[:, :, None], placed, sequences)
