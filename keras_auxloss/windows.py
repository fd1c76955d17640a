"""Where the windows lie, and how they are cut from a sequence.

In training, the gradient flows through windows only: the supervised window
(the last `bptt` valid steps of each sequence) and one window per anchor,
drawn here at random among each sequence's valid steps. Sequences are
time-major, `(time, batch, ...)`; windows of several anchors share the batch
axis, example-major: `(span, batch * anchors, ...)`.
"""

import keras
from keras import ops


def sequence_ends(mask, batch, length):
    """`(batch,)` int32: one past each sequence's last valid step."""
    if mask is None:
        return ops.full((batch,), length, "int32")
    valid = ops.cast(mask, "int32") * ops.arange(1, length + 1, dtype="int32")[None, :]
    return ops.max(valid, axis=1)


def supervised_starts(ends, bptt):
    """`(batch,)` first step of each sequence's last `bptt` valid steps (its
    first `bptt` steps if it is shorter)."""
    return ops.maximum(ends - bptt, 0)


def sample_window_starts(ends, num_anchors, span, seed_generator):
    """Draws the anchors: the first steps of their windows, uniform over
    the windows of `span` steps that end before each sequence's end.

    A sequence too short for any window gets start 0 (its windows are left
    out of the loss). Returns `(batch, num_anchors)` int32.
    """
    room = ops.maximum(ends - span + 1, 1)[:, None]
    uniform = keras.random.uniform((ops.shape(ends)[0], num_anchors), seed=seed_generator)
    starts = ops.cast(ops.floor(uniform * ops.cast(room, "float32")), "int32")
    return ops.minimum(starts, room - 1)


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
