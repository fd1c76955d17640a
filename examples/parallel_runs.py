"""Several training runs at a time: `run_all` runs `experiment.run` for
each `Config`, `jobs` at a time, each run in a process of its own with
the machine's cores shared among them.

A run's numbers do not depend on where it runs: `experiment.run` seeds
everything from its `Config` in each process (tests/test_parallel_runs.py
checks that the runs give the same accuracies one after the other in this
process and two at a time in their own). What changes is the time: on a CPU
a recurrent network's step at the demo's sizes is mostly the cost of its
loop, which one core runs about as fast as two, so two runs side by side on
two cores take about the time of the longer one.
"""

import multiprocessing
import os
import sys
from concurrent import futures

from examples import experiment
from examples.config import AUX_LOSSES, Config


def usable_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # Not on Linux.
        return os.cpu_count() or 1


def default_jobs(runs: int) -> int:
    """As many runs at a time as there are cores, at most `runs`."""
    return max(1, min(usable_cores(), runs))


def threads_per_run(jobs: int) -> int:
    """The threads each of `jobs` runs at a time gets: the cores shared."""
    return max(1, usable_cores() // jobs)


def run_all(configs: list[Config], jobs: int, labels: list[str] | None = None) -> list[dict]:
    """`experiment.run(config)` for each of `configs`, in their order.

    With `jobs` 1 they run one after the other in this process. Otherwise
    each runs in a process of its own (spawned: a fresh backend), `jobs` at
    a time, each limited to `threads_per_run(jobs)` threads; the runs with
    an auxiliary loss, the longer ones, start first. Each line a run prints
    starts with its label (`labels`, default each run's output directory's
    name), and each prints its accuracy as it ends. An error in a run is
    raised here once every run has ended.
    """
    if jobs < 1:
        raise ValueError(
            f"Received an invalid value for argument `jobs`, expected >= 1, got {jobs}."
        )
    if jobs == 1:
        return [experiment.run(config) for config in configs]
    labels = labels or [os.path.basename(config.output_dir or config.model) for config in configs]
    # Longest first: a short run then fills the gap while the last long one ends.
    order = sorted(range(len(configs)), key=lambda i: AUX_LOSSES[configs[i].model] is None)
    context = multiprocessing.get_context("spawn")
    with futures.ProcessPoolExecutor(
        jobs, mp_context=context, initializer=_limit_threads, initargs=(threads_per_run(jobs),)
    ) as pool:
        submitted = {pool.submit(_run_labelled, configs[i], labels[i]): i for i in order}
        for done in futures.as_completed(submitted):
            if done.exception() is None:
                result = done.result()
                print(
                    f"[{labels[submitted[done]]}] {result['evaluated_on']} accuracy "
                    f"{result['accuracy']:.4f} after {result['seconds']:.0f} s",
                    flush=True,
                )
        results = {i: future.result() for future, i in submitted.items()}
    return [results[i] for i in range(len(configs))]


def _limit_threads(threads: int) -> None:
    """Limits the backend's threads in a fresh worker, before its first op."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    elif backend == "torch":
        import torch

        torch.set_num_threads(threads)
    # JAX's CPU threads are fixed when it starts, by XLA_FLAGS; left as they are.


def _run_labelled(config: Config, label: str) -> dict:
    """`experiment.run(config)`, each line it prints starting with `label`."""
    stdout = sys.stdout = _Labelled(sys.stdout, f"[{label}] ")
    try:
        return experiment.run(config)
    finally:
        stdout.end_line()
        sys.stdout = stdout.stream


class _Labelled:
    """A text stream that starts each line written to `stream` with `label`."""

    def __init__(self, stream, label):
        self.stream, self.label, self.line = stream, label, ""

    def write(self, text):
        self.line += text
        *lines, self.line = self.line.split("\n")
        for line in lines:
            self.stream.write(f"{self.label}{line}\n")
        self.stream.flush()
        return len(text)

    def flush(self):
        self.stream.flush()

    def end_line(self):
        """Writes what is left of the last line, if anything."""
        if self.line:
            self.write("\n")

    def __getattr__(self, name):
        return getattr(self.stream, name)
