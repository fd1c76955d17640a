"""What a backend's `run` returns."""

from typing import NamedTuple


class RunResult(NamedTuple):
    """The result of one recurrent run over time (every backend's `run`)."""

    output: object  # (batch, output_size): the output after the last step run.
    state: tuple  # The state after the last step run, (batch, size) each.
    sequences: object  # (steps, batch, output_size), every step's output; or None.
    captured: tuple  # The output, then each state tensor, (batch, positions, size)
    # each, after the steps of `capture_after`; or None without it.
