"""Seams for tests: fix where a layer's anchors' windows lie, and run the
fused kernels' plumbing without a GPU.

Anchors are drawn at random in every training step; a test that compares
the layer with a reference computed window by window, or two runs that
must see the same windows, fixes them here instead of reaching into the
layer. cuDNN needs a GPU; `reference_cudnn` puts a reference kernel in its
place, so that the runs the layer would hand cuDNN (cut into segments,
from their start states) run, and can be checked, on a CPU.
"""

import contextlib
from unittest import mock

import numpy as np
from keras import ops
from keras.src import backend as keras_backend


def fix_window_starts(layer, starts):
    """Makes `layer` (an `AuxLossRNN`) use `starts` as its anchors' window
    starts in every training and evaluation call, instead of drawing them.

    Args:
        layer: The layer, built or not.
        starts: `(batch, num_anchors)` integer first steps of the windows
            (for reconstruction a window ends at its anchor, for prediction
            the anchor is its first step); or a function from the
            sequences' ends `(batch,)` (one past each sequence's last valid
            step) to them; or `None` to draw them at random again.
    """
    if starts is not None and not callable(starts):
        starts = np.asarray(starts, "int32")
    layer._fixed_window_starts = starts


@contextlib.contextmanager
def reference_cudnn(record=None):
    """A scope in which Keras's cuDNN kernels (`keras.src.backend.lstm` and
    `gru`) are a reference, Keras's generic loop over time
    (`keras.src.backend.rnn`) with the LSTM's and GRU's equations, and serve
    on any device, so that layers built inside it take `"cudnn"` for their
    kernel (`use_cudnn` `"auto"` or `True`) and hand it every run cuDNN
    would get. Like Keras's own kernels on JAX and PyTorch, it refuses a
    mask (`NotImplementedError`): the layer never hands it one.

    Args:
        record: a list, or `None`; each call appends the number of steps it
            was given (`None` where a traced call does not know it).
    """

    def lstm(inputs, initial_state_h, initial_state_c, mask, kernel, recurrent_kernel, bias,
             activation, recurrent_activation, return_sequences=False, **unused):  # fmt: skip
        def step(x, states):
            z = ops.matmul(x, kernel) + ops.matmul(states[0], recurrent_kernel) + bias
            i, f, g, o = ops.split(z, 4, axis=-1)
            c = recurrent_activation(f) * states[1] + recurrent_activation(i) * activation(g)
            h = recurrent_activation(o) * activation(c)
            return h, [h, c]

        return _reference(step, inputs, [initial_state_h, initial_state_c], mask)

    def gru(inputs, initial_state, mask, kernel, recurrent_kernel, bias, activation,
            recurrent_activation, return_sequences=False, **unused):  # fmt: skip
        def step(x, states):
            x_z, x_r, x_h = ops.split(ops.matmul(x, kernel) + bias[0], 3, axis=-1)
            h = states[0]
            h_z, h_r, h_h = ops.split(ops.matmul(h, recurrent_kernel) + bias[1], 3, axis=-1)
            z, r = recurrent_activation(x_z + h_z), recurrent_activation(x_r + h_r)
            h = z * h + (1 - z) * activation(x_h + r * h_h)
            return h, [h]

        return _reference(step, inputs, [initial_state], mask)

    def _reference(step, inputs, states, mask):
        if mask is not None:
            raise NotImplementedError
        if record is not None:
            record.append(inputs.shape[1])
        return keras_backend.rnn(step, inputs, states)

    with mock.patch.multiple(
        keras_backend, lstm=lstm, gru=gru, cudnn_ok=lambda *args, **kwargs: True
    ):
        yield
