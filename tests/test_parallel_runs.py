"""`examples.parallel_runs`: how many runs at a time, and each line a run
in a process of its own prints names it. That a run gives the same numbers
there as here is checked on the demo (tests/test_demo.py)."""

import io

import pytest

from examples import parallel_runs


def test_jobs_default_to_the_cores_and_share_them():
    cores = parallel_runs.usable_cores()
    assert cores >= 1
    assert parallel_runs.default_jobs(1) == 1
    assert parallel_runs.default_jobs(100) == cores
    assert parallel_runs.threads_per_run(1) == cores
    assert parallel_runs.threads_per_run(cores) == 1
    assert parallel_runs.threads_per_run(cores + 1) == 1


def test_jobs_below_one_are_refused():
    with pytest.raises(ValueError, match="argument `jobs`, expected >= 1, got 0"):
        parallel_runs.run_all([], 0)


def test_each_line_starts_with_the_label_and_a_last_partial_line_is_ended():
    stream = io.StringIO()
    labelled = parallel_runs._Labelled(stream, "[r-lstm seed 0] ")
    assert labelled.write("Epoch 1/2\n12/12 - 3s") == len("Epoch 1/2\n12/12 - 3s")
    labelled.flush()  # A partial line waits for its end.
    assert stream.getvalue() == "[r-lstm seed 0] Epoch 1/2\n"
    labelled.write(" - loss: 2.3\n\nEpoch 2/2")
    labelled.end_line()
    assert stream.getvalue().splitlines() == [
        "[r-lstm seed 0] Epoch 1/2",
        "[r-lstm seed 0] 12/12 - 3s - loss: 2.3",
        "[r-lstm seed 0] ",
        "[r-lstm seed 0] Epoch 2/2",
    ]
    assert labelled.getvalue() == stream.getvalue()  # Anything else is the stream's.
