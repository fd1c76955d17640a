"""Training-step time and memory of AuxLossLSTM against Keras's LSTM.

For each sequence length, four configurations run one at a time, each in a
subprocess of its own so that its peak memory is its own:

- `r_lstm`: AuxLossLSTM, reconstruction loss, bptt 300, 1 anchor x 600;
- `truncated_lstm`: the same layer with `aux_loss=None`;
- `keras_full_bp`: `keras.layers.Embedding` + `keras.layers.LSTM`, full
  backpropagation, the baseline users would otherwise pick;
- `forward_floor`: `predict_on_batch` of the r-LSTM model, i.e. its main
  LSTM read once over the sequence: no training step can beat it;
- `r_lstm_words`: `r_lstm` on a word-level vocabulary
  (`--word_vocab_size`, 50,000): the windows' embedding gradient is sparse
  and no `(vocabulary, 4 * units)` gate table enters the gradient, so this
  should cost little more than `r_lstm`;
- `r_gru`: `AuxLossGRU` with the settings of `r_lstm` (a GRU cell, run
  through its own Keras `call`, where the LSTM has a fast path).

Every configuration runs on each backend of `--backends` (Keras's
`KERAS_BACKEND` in the subprocess; by default TensorFlow and whichever of
JAX and PyTorch are installed), with `keras_full_bp` on that backend as its
baseline, and one more table compares each backend's r-LSTM step with
TensorFlow's in the same run.

Each reports the median seconds per step after a warm-up step (which
traces and compiles), the peak resident memory, and its increase over the
process's own resident memory after importing Keras and its backend. A configuration
that passes `--memory_limit_gib` or `--time_limit` is stopped and reported
as such. Results go to `--output_dir` as `results.json`, `results.md` (a
markdown table with the ratios r_lstm / forward_floor,
r_lstm / keras_full_bp, r_lstm_words / r_lstm and r_gru / r_lstm) and `results.png` (log-log plots).

Run it with:

    .venv/bin/python benchmarks/train_step.py --output_dir=benchmarks/results

or `make benchmark`. A quick look: `--lengths=784 --repetitions=1`.
"""

import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time

from absl import app, flags

# The resident-memory reading and the figures' style are shared with the
# examples. examples/ is a folder of scripts that import each other by plain
# module name (Python puts a script's own folder first on its path), not a
# package, so this script puts that folder first on its path the same way:
# `resident_memory` and `plots` then resolve to the same files whichever
# script imports them, and nothing needs installing.
EXAMPLES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
sys.path.insert(0, EXAMPLES_DIR)
from resident_memory import peak_resident_gib, resident_gib  # noqa: E402

CONFIGS = ("r_lstm", "truncated_lstm", "keras_full_bp", "forward_floor", "r_lstm_words", "r_gru")

FLAGS = flags.FLAGS
flags.DEFINE_list("lengths", ["784", "4096", "16384", "65536"], "Sequence lengths.")
flags.DEFINE_list("configs", list(CONFIGS), "Configurations to run.")
flags.DEFINE_list(
    "backends",
    ["tensorflow"] + [b for b in ("jax", "torch") if importlib.util.find_spec(b)],
    "Keras backends to run each configuration on.",
)
flags.DEFINE_integer("batch_size", 32, "Batch size.")
flags.DEFINE_integer("units", 128, "LSTM units.")
flags.DEFINE_integer("vocab_size", 256, "Token vocabulary.")
flags.DEFINE_integer("word_vocab_size", 50_000, "Vocabulary of the `r_lstm_words` configuration.")
flags.DEFINE_integer("embedding_dim", 128, "Token embedding size.")
flags.DEFINE_integer("bptt", 300, "Supervised truncation of the AuxLossLSTM configurations.")
flags.DEFINE_integer("aux_length", 600, "Auxiliary subsequence length.")
flags.DEFINE_integer("num_anchors", 1, "Anchors per example.")
flags.DEFINE_integer("repetitions", 3, "Timed steps after the warm-up step.")
flags.DEFINE_float("time_limit", 1800, "Seconds one configuration may take in all.")
flags.DEFINE_float("memory_limit_gib", 18, "Resident memory one configuration may use.")
flags.DEFINE_string("output_dir", "benchmarks/results", "Where the results go.")
flags.DEFINE_string("worker", None, "Internal: run one configuration and print JSON.")
flags.DEFINE_integer("length", None, "Internal: the worker's sequence length.")


def run_worker(config, length):
    """Times one configuration in this process; returns a result dict."""
    import keras
    import numpy as np

    from keras_auxloss import AuxLossGRU, AuxLossLSTM

    baseline = resident_gib()
    keras.utils.set_random_seed(0)
    vocab_size = FLAGS.word_vocab_size if config == "r_lstm_words" else FLAGS.vocab_size
    inputs = keras.Input((length,), dtype="int32", batch_size=FLAGS.batch_size)
    if config == "keras_full_bp":
        features = keras.layers.Embedding(vocab_size, FLAGS.embedding_dim)(inputs)
        features = keras.layers.LSTM(FLAGS.units)(features)
    else:
        layer = AuxLossGRU if config == "r_gru" else AuxLossLSTM
        features = layer(
            FLAGS.units,
            aux_loss=None if config == "truncated_lstm" else "reconstruct",
            vocab_size=vocab_size,
            embedding_dim=FLAGS.embedding_dim,
            bptt=FLAGS.bptt,
            aux_length=FLAGS.aux_length,
            num_anchors=FLAGS.num_anchors,
            seed=0,
        )(inputs)
    model = keras.Model(inputs, keras.layers.Dense(10)(features))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x = rng.integers(0, vocab_size, (FLAGS.batch_size, length)).astype("int32")
    y = rng.integers(0, 10, FLAGS.batch_size).astype("int32")

    def step():
        if config == "forward_floor":
            model.predict_on_batch(x)
        else:
            model.train_on_batch(x, y)

    step()  # Traces and compiles.
    seconds = []
    for _ in range(FLAGS.repetitions):
        start = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - start)
    peak = peak_resident_gib()
    return {
        "seconds": statistics.median(seconds),
        "peak_gib": peak,
        "increase_gib": peak - baseline,
    }


def run_in_subprocess(config, length, backend):
    """Runs one configuration on `backend` in a child process, watching
    its memory."""
    command = [
        sys.executable,
        os.path.abspath(__file__),
        f"--worker={config}",
        f"--length={length}",
    ]
    command += [
        f"--{name}={FLAGS[name].value}"
        for name in (
            "batch_size",
            "units",
            "vocab_size",
            "word_vocab_size",
            "embedding_dim",
            "bptt",
            "aux_length",
            "num_anchors",
            "repetitions",
        )
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND=backend)
    child = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True
    )
    start = time.monotonic()
    status = None
    while child.poll() is None:
        time.sleep(0.2)
        rss = resident_gib(child.pid)
        if rss is None:  # It has just exited.
            continue
        if rss > FLAGS.memory_limit_gib:
            status = f"out of memory (> {FLAGS.memory_limit_gib:g} GiB)"
        elif time.monotonic() - start > FLAGS.time_limit:
            status = f"over the time limit ({FLAGS.time_limit:g} s)"
        if status:
            child.kill()
            child.wait()
            return {"status": status}
    stdout, stderr = child.communicate()
    if child.returncode != 0:
        last = (stderr.strip().splitlines() or ["no output"])[-1]
        killed = child.returncode < 0
        return {"status": "killed (out of memory?)" if killed else f"failed: {last}"}
    return {"status": "ok", **json.loads(stdout.strip().splitlines()[-1])}


def _cell(result, key, digits):
    return f"{result[key]:.{digits}f}" if result.get("status") == "ok" else result["status"]


def _ratio(results, length, numerator, denominator):
    a, b = results[numerator].get(length, {}), results[denominator].get(length, {})
    if a.get("status") == "ok" and b.get("status") == "ok":
        return f"{a['seconds'] / b['seconds']:.2f}"
    return "n/a"


def write_table(results, lengths, path):
    """`results[backend][config][length]` as markdown: a table per backend,
    then each backend's r-LSTM step against TensorFlow's."""
    lines = [
        f"batch {FLAGS.batch_size}, {FLAGS.units} units, vocabulary {FLAGS.vocab_size} "
        f"({FLAGS.word_vocab_size} for r_lstm_words), "
        f"embedding {FLAGS.embedding_dim}; AuxLossLSTM bptt {FLAGS.bptt}, "
        f"{FLAGS.num_anchors} x {FLAGS.aux_length}; median of {FLAGS.repetitions} steps "
        "after a warm-up step.",
    ]
    for backend in FLAGS.backends:
        lines += ["", f"### {backend}", ""] + _backend_table(results[backend], lengths)
    others = [b for b in FLAGS.backends if b != "tensorflow"]
    if "tensorflow" in FLAGS.backends and others and "r_lstm" in FLAGS.configs:
        r_lstm = {backend: results[backend]["r_lstm"] for backend in FLAGS.backends}
        lines += _ratio_table(r_lstm, lengths, others, "tensorflow", "r_lstm {} / tensorflow")
    text = "\n".join(lines) + "\n"
    with open(path, "w") as table:
        table.write(text)
    return text


def _backend_table(results, lengths):
    lines = [
        "| length | configuration | s / step | peak RSS GiB | increase GiB |",
        "|---:|---|---:|---:|---:|",
    ]
    for length in lengths:
        for config in FLAGS.configs:
            result = results[config][length]
            lines.append(
                f"| {length} | {config} | {_cell(result, 'seconds', 3)} | "
                f"{_cell(result, 'peak_gib', 2)} | {_cell(result, 'increase_gib', 2)} |"
            )
    if {"r_lstm", "forward_floor", "keras_full_bp"} <= set(FLAGS.configs):
        lines += [
            "",
            "| length | r_lstm / forward_floor | r_lstm / keras_full_bp |",
            "|---:|---:|---:|",
        ]
        for length in lengths:
            lines.append(
                f"| {length} | {_ratio(results, length, 'r_lstm', 'forward_floor')} | "
                f"{_ratio(results, length, 'r_lstm', 'keras_full_bp')} |"
            )
    others = [c for c in ("r_lstm_words", "r_gru") if c in FLAGS.configs]
    if "r_lstm" in FLAGS.configs and others:
        lines += _ratio_table(results, lengths, others, "r_lstm", "{} / r_lstm")
    return lines


def _ratio_table(results, lengths, numerators, denominator, heading):
    """A blank line and a table of step-time ratios, a column per numerator
    (`heading` formats its title), `results[name][length]` as elsewhere."""
    lines = [
        "",
        "| length | " + " | ".join(heading.format(n) for n in numerators) + " |",
        "|---:|" + "---:|" * len(numerators),
    ]
    for length in lengths:
        ratios = " | ".join(_ratio(results, length, n, denominator) for n in numerators)
        lines.append(f"| {length} | {ratios} |")
    return lines


def write_plot(results, lengths, path):
    # Imported here, not at the top: the worker processes, whose memory is
    # measured, never load matplotlib.
    import plots

    plots.plot_step_costs(results, lengths, FLAGS.backends, FLAGS.configs, path)


def main(argv):
    del argv
    if FLAGS.worker:
        print(json.dumps(run_worker(FLAGS.worker, FLAGS.length)))
        return
    unknown = set(FLAGS.configs) - set(CONFIGS)
    if unknown:
        raise app.UsageError(f"Unknown --configs {sorted(unknown)}; expected some of {CONFIGS}.")
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    results = {backend: {config: {} for config in FLAGS.configs} for backend in FLAGS.backends}
    for length in FLAGS.lengths:
        for backend in FLAGS.backends:
            for config in FLAGS.configs:
                result = run_in_subprocess(config, int(length), backend)
                results[backend][config][length] = result
                print(f"{backend:>10} {config:>15} {length:>6}: {result}", flush=True)
    with open(os.path.join(FLAGS.output_dir, "results.json"), "w") as out:
        json.dump(results, out, indent=2)
    print(write_table(results, FLAGS.lengths, os.path.join(FLAGS.output_dir, "results.md")))
    write_plot(results, FLAGS.lengths, os.path.join(FLAGS.output_dir, "results.png"))


if __name__ == "__main__":
    app.run(main)
