"""Truncated backpropagation, as the paper does it: every cut of the
recurrent state is made here.

- The capture pass runs the main network over the whole sequence outside
  the gradient (its weights frozen, its inputs cut) and keeps the output
  and state after the step before each window starts.
- The supervised window is run again, differentiably, from its captured
  state cut with `stop_gradient`; with `return_sequences`, the outputs
  before it are the capture pass's, cut.
- Each anchor's window starts from its captured state, cut
  (`TruncatedRun.window_start_states`; `auxiliary.py` runs the windows).
- A stateful layer's final state is carried to the next batch cut (`carry`).

With `bptt=None` the supervised loss backpropagates through the whole
sequence: one differentiable pass, which also captures the anchors' states.
"""

from typing import NamedTuple

from keras import ops

from keras_auxloss import windows


class TruncatedRun(NamedTuple):
    """What the main network's run in training gives."""

    output: object  # (batch, output_size): the output at each sequence's last valid step.
    state: tuple  # The final state, (batch, size) each.
    sequences: object  # (time, batch, output_size) with return_sequences, else None.
    window_start_states: tuple  # (batch, num_anchors, size) each, cut; None without anchors.


def truncated_run(main, sequence, mask, initial, located, *, bptt, return_sequences, dropout=None):
    """The main network over a time-major `sequence` (`mask` `(time, batch)`
    or `None`) from `initial`, in training, truncated at the windows of
    `located` (a `windows.Windows`), as `TruncatedRun`. Every run drops
    with the same `dropout` masks (`DropoutMasks`, or `None`), so that the
    windows run again give the capture pass's values."""
    captures = [] if bptt is None else [located.supervised_starts[:, None] - 1]
    if located.window_starts is not None:
        captures.append(located.window_starts - 1)
    capture_after = ops.concatenate(captures, axis=1) if captures else None
    if bptt is None:
        inputs, input_fn = main.window_inputs(sequence, dropout)
        run = main.run(
            inputs,
            initial,
            input_fn=input_fn,
            dropout=dropout,
            mask=mask,
            capture_after=capture_after,
            return_sequences=return_sequences,
            zero_output_for_mask=_zero_output_for_mask(main, return_sequences),
            name="whole sequence",
        )
        captured, sequences = run.captured, run.sequences
    else:
        capture = _capture_pass(
            main, sequence, mask, initial, capture_after, return_sequences, dropout
        )
        captured = capture.captured
        run = _supervised_window(
            main, sequence, mask, located.supervised_starts, captured, bptt, return_sequences,
            dropout,
        )  # fmt: skip
        sequences = run.sequences
        if return_sequences:
            sequences = windows.place_window(
                ops.stop_gradient(capture.sequences), sequences, located.supervised_starts
            )
    start_states = None
    if located.window_starts is not None:
        anchors = ops.shape(located.window_starts)[1]
        start_states = tuple(ops.stop_gradient(s[:, -anchors:]) for s in captured[1:])
    return TruncatedRun(run.output, run.state, sequences, start_states)


def _capture_pass(main, sequence, mask, initial, capture_after, return_sequences, dropout):
    """The pass outside the gradient, as a `RunResult`: its `sequences`,
    every output (with `return_sequences`), and its `captured`, the output
    and states after the steps of `capture_after`. It stops where the last
    window starts unless every output is wanted."""
    with main.frozen():
        return main.run_whole(
            ops.stop_gradient(sequence),
            initial,
            dropout=dropout,
            mask=mask,
            capture_after=capture_after,
            # `initial`: an empty batch captures nothing and runs no step.
            num_steps=None if return_sequences else ops.max(capture_after, initial=-1) + 1,
            return_sequences=return_sequences,
            name="capture pass",
        )


def _supervised_window(main, sequence, mask, starts, captured, bptt, return_sequences, dropout):
    """The supervised window's `RunResult`, run from the output and state
    captured before it, cut from the gradient."""
    initial_output, *initial = (ops.stop_gradient(s[:, 0]) for s in captured)
    window = windows.gather_windows(sequence, starts[:, None], bptt)
    inputs, input_fn = main.window_inputs(window, dropout)
    window_mask = None if mask is None else windows.gather_windows(mask, starts[:, None], bptt)
    return main.run(
        inputs,
        initial,
        input_fn=input_fn,
        dropout=dropout,
        initial_output=initial_output,
        mask=window_mask,
        return_sequences=return_sequences,
        zero_output_for_mask=_zero_output_for_mask(main, return_sequences),
        name="supervised window",
    )


def _zero_output_for_mask(main, return_sequences):
    """Whether a differentiable run zeroes the outputs of masked steps:
    only in the sequences. The output is each sequence's last valid step's
    (a short sequence's supervised window, or a batch padded to fit the
    windows, ends in masked steps); the layer zeroes it where the
    sequence's own last step is masked."""
    return main.zero_output_for_mask and return_sequences


def carry(variables, state):
    """Writes a stateful layer's final `state` into its state `variables`,
    cut from the gradient: the next batch starts from it."""
    for variable, value in zip(variables, state):
        variable.assign(ops.cast(ops.stop_gradient(value), variable.dtype))
