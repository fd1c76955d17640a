"""Training-step time and memory of AuxLossLSTM against Keras's LSTM.

For each sequence length, six configurations run one at a time, each in a
subprocess of its own so that its peak memory is its own:

- `r_lstm`: AuxLossLSTM, reconstruction loss, bptt 300, 1 anchor x 600;
- `truncated_lstm`: the same layer with `aux_loss=None`;
- `keras_full_bp`: `keras.layers.Embedding` + `keras.layers.LSTM`, full
  backpropagation, the baseline users would otherwise pick;
- `forward_floor`: `predict_on_batch` of the r-LSTM model, i.e. its main
  LSTM read once over the sequence: no training step can beat it;
- `r_lstm_words`: `r_lstm` on a word-level vocabulary
  (`--word_vocab_size`, 50,000): the windows' embedding gradient is sparse,
  but the auxiliary head's full softmax over every predicted position
  dominates the step;
- `r_lstm_words_sampled`: `r_lstm_words` with `aux_sampled_softmax`
  (`--sampled_softmax` negatives, 512);
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
as such.

Each also reports how far its step is from the machine's limit: its
FLOPs (the matrix products of the step, forward and backward, counted from
the shapes by `flops.py`), the rate it reaches, and its bound, those FLOPs
at the limit's rate. The limit is one step's recurrent product
`(batch, units) x (units, 4 * units)` alone, in a loop of `LIMIT_STEPS`
through `keras.ops`, timed in a subprocess of its own before each backend's
configurations at each length. A table then splits the r_lstm step's FLOPs
by part (capture pass, supervised window, anchors' windows, decoder, head),
forward and backward, with its bound on each backend.

Results go to `--output_dir` as `results.json`, `results.md` (a markdown
table per backend with the ratios r_lstm / forward_floor,
r_lstm / keras_full_bp, r_lstm_words(_sampled) / r_lstm and r_gru / r_lstm, and the
r_lstm step's FLOPs by part) and `results.png` (log-log plots).

Run it with:

    .venv/bin/python -m benchmarks.train_step --output_dir=benchmarks/results

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

from benchmarks import flops
from examples.machine import cpu_model, gpu_peak_gib
from examples.resident_memory import peak_resident_gib, resident_gib

# The repository's root: each configuration's worker process runs this
# module from there (`python -m benchmarks.train_step`).
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CONFIGS = (
    "r_lstm",
    "truncated_lstm",
    "keras_full_bp",
    "forward_floor",
    "r_lstm_words",
    "r_lstm_words_sampled",
    "r_gru",
)
WORD_CONFIGS = ("r_lstm_words", "r_lstm_words_sampled")
# The limit's worker: one step's recurrent product alone, in a loop, which
# runs before the configurations of each backend and length.
LIMIT = "recurrent_product"
# Steps of that loop: a few tenths of a second on a CPU.
LIMIT_STEPS = 5000
# Classes of the models' classifier.
CLASSES = 10

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
flags.DEFINE_integer("word_vocab_size", 50_000, "Vocabulary of the `r_lstm_words*` configs.")
flags.DEFINE_integer(
    "sampled_softmax", 512, "Negatives of `r_lstm_words_sampled`'s sampled softmax."
)
flags.DEFINE_integer("embedding_dim", 128, "Token embedding size.")
flags.DEFINE_integer("bptt", 300, "Supervised truncation of the AuxLossLSTM configurations.")
flags.DEFINE_integer("aux_length", 600, "Auxiliary subsequence length.")
flags.DEFINE_integer("num_anchors", 1, "Anchors per example.")
flags.DEFINE_integer("repetitions", 3, "Timed steps after the warm-up step.")
flags.DEFINE_enum(
    "use_cudnn",
    "auto",
    ["auto", "false"],
    "`use_cudnn` of every recurrent layer (Keras's LSTM too): `false` keeps "
    "them off cuDNN on a GPU.",
)
flags.DEFINE_float("time_limit", 1800, "Seconds one configuration may take in all.")
flags.DEFINE_float("memory_limit_gib", 18, "Resident memory one configuration may use.")
flags.DEFINE_string("output_dir", "benchmarks/results", "Where the results go.")
flags.DEFINE_string("worker", None, "Internal: run one configuration and print JSON.")
flags.DEFINE_integer("length", None, "Internal: the worker's sequence length.")


def run_worker(config, length):
    """Times one configuration (or the limit's loop) in this process;
    returns a result dict."""
    import keras

    baseline = resident_gib()
    keras.utils.set_random_seed(0)
    if config == LIMIT:
        step, model = recurrent_product_loop(), None
    else:
        step, model = training_step(config, length)
    step()  # Traces and compiles.
    seconds = []
    for _ in range(FLAGS.repetitions):
        start = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - start)
    peak = peak_resident_gib()
    result = {
        "seconds": statistics.median(seconds),
        "peak_gib": peak,
        "increase_gib": peak - baseline,
        "kernel": "" if model is None else kernel_of(model),
    }
    gpu_peak = gpu_peak_gib()
    if gpu_peak is not None:
        result["gpu_peak_gib"] = gpu_peak
    return result


def kernel_of(model):
    """Which kernel ran the model's recurrent layer: its `kernels_used`,
    the kernel most of its runs took and the runs that took another; for
    Keras's LSTM, cuDNN where Keras's `cudnn_ok` says it runs it."""
    import keras
    from keras.src import backend as keras_backend

    for layer in model.layers:
        if hasattr(layer, "kernels_used"):
            used = layer.kernels_used
            kernels = sorted(set(used.values()), key=list(used.values()).count, reverse=True)
            others = [f"{run}: {kernel}" for run, kernel in used.items() if kernel != kernels[0]]
            return "; ".join([kernels[0], *others])
        if isinstance(layer, keras.layers.LSTM):
            cell = layer.cell
            cudnn = keras_backend.cudnn_ok(cell.activation, cell.recurrent_activation, False, True)
            return "cudnn" if cudnn and layer.use_cudnn else "loop"
    return ""


def training_step(config, length):
    """`(step, model)`: the step of `config` on a batch of `length` steps,
    as a function, and the model it steps."""
    import keras
    import numpy as np

    from keras_auxloss import AuxLossGRU, AuxLossLSTM

    vocab_size = FLAGS.word_vocab_size if config in WORD_CONFIGS else FLAGS.vocab_size
    use_cudnn = {"auto": "auto", "false": False}[FLAGS.use_cudnn]
    inputs = keras.Input((length,), dtype="int32", batch_size=FLAGS.batch_size)
    if config == "keras_full_bp":
        features = keras.layers.Embedding(vocab_size, FLAGS.embedding_dim)(inputs)
        features = keras.layers.LSTM(FLAGS.units, use_cudnn=use_cudnn)(features)
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
            aux_sampled_softmax=_sampled_softmax(config),
            use_cudnn=use_cudnn,
            seed=0,
        )(inputs)
    model = keras.Model(inputs, keras.layers.Dense(CLASSES)(features))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x = rng.integers(0, vocab_size, (FLAGS.batch_size, length)).astype("int32")
    y = rng.integers(0, CLASSES, FLAGS.batch_size).astype("int32")

    def step():
        if config == "forward_floor":
            model.predict_on_batch(x)
        else:
            model.train_on_batch(x, y)

    return step, model


def recurrent_product_loop():
    """The machine's limit for the recurrence, as a function: one step's
    recurrent product `(batch, units) x (units, 4 * units)` alone,
    `LIMIT_STEPS` times in a `keras.ops.fori_loop`, each step's product
    read by the next, compiled as Keras compiles `predict_on_batch` on
    this backend (the loop the recurrence runs, without its gates)."""
    import keras
    import numpy as np
    from keras import ops

    units, width = FLAGS.units, 4 * FLAGS.units
    rng = np.random.default_rng(0)
    # Orthogonal first `units` columns: the state keeps its norm, so the
    # loop runs on normal floats, neither overflowing nor subnormal.
    orthogonal, _ = np.linalg.qr(rng.standard_normal((units, units)))
    rest = rng.standard_normal((units, width - units)) / np.sqrt(units)
    kernel = np.concatenate([orthogonal, rest], axis=1).astype("float32")

    class RecurrentProducts(keras.layers.Layer):
        def build(self, input_shape):
            self.kernel = self.add_weight(
                shape=kernel.shape,
                initializer=keras.initializers.Constant(kernel),
                trainable=False,
            )

        def call(self, gates):
            def body(_, gates):
                return ops.matmul(gates[:, :units], self.kernel)

            return ops.fori_loop(0, LIMIT_STEPS, body, gates)

    inputs = keras.Input((width,), batch_size=FLAGS.batch_size)
    model = keras.Model(inputs, RecurrentProducts()(inputs))
    model.compile()
    x = rng.standard_normal((FLAGS.batch_size, width)).astype("float32")
    return lambda: model.predict_on_batch(x)


def run_in_subprocess(config, length, backend):
    """Runs one configuration on `backend` in a child process, watching
    its memory."""
    command = [
        sys.executable,
        "-m",
        "benchmarks.train_step",
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
            "use_cudnn",
        )
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND=backend)
    child = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True, cwd=ROOT
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


def step_terms(config, length):
    """The FLOP terms of `config`'s step at `length` (`flops.py`)."""
    net = flops.Network(
        cell="gru" if config == "r_gru" else "lstm",
        batch_size=FLAGS.batch_size,
        units=FLAGS.units,
        input_dim=FLAGS.embedding_dim,
        vocab_size=FLAGS.word_vocab_size if config in WORD_CONFIGS else FLAGS.vocab_size,
        classes=CLASSES,
        bptt=FLAGS.bptt,
        aux_loss=None if config == "truncated_lstm" else "reconstruct",
        aux_length=FLAGS.aux_length,
        num_anchors=FLAGS.num_anchors,
        aux_sampled_softmax=_sampled_softmax(config),
    )
    if config == "keras_full_bp":
        return flops.full_backpropagation_step(net, length)
    if config == "forward_floor":
        return flops.inference_step(net, length)
    return flops.aux_step(net, length)


def _sampled_softmax(config):
    return FLAGS.sampled_softmax if config == "r_lstm_words_sampled" else None


def limit_flops():
    """FLOPs of one step's recurrent product, `(batch, units) x (units, 4 * units)`."""
    return flops.mm(FLAGS.batch_size, FLAGS.units, 4 * FLAGS.units)


def add_flops(results):
    """Adds to `results[backend][config][length]` the step's FLOPs, the
    rate it reached, and its bound: its FLOPs at the rate of the limit's
    loop on that backend at that length (`results[backend][LIMIT]`, whose
    results get their rate)."""
    for runs in results.values():
        limits = runs.get(LIMIT, {})
        for limit in limits.values():
            if limit.get("status") == "ok":
                limit["gflop_per_s"] = LIMIT_STEPS * limit_flops() / limit["seconds"] / 1e9
        for config in FLAGS.configs:
            for length, result in runs[config].items():
                result["flops"] = flops.total(step_terms(config, int(length)))
                if result.get("status") == "ok":
                    result["gflop_per_s"] = result["flops"] / result["seconds"] / 1e9
                rate = limits.get(length, {}).get("gflop_per_s")
                if rate:
                    result["bound_seconds"] = result["flops"] / rate / 1e9


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
        f"({FLAGS.word_vocab_size} for r_lstm_words, with {FLAGS.sampled_softmax} "
        "negatives for r_lstm_words_sampled), "
        f"embedding {FLAGS.embedding_dim}; AuxLossLSTM bptt {FLAGS.bptt}, "
        f"{FLAGS.num_anchors} x {FLAGS.aux_length}; median of {FLAGS.repetitions} steps "
        "after a warm-up step"
        + ("; cuDNN off (use_cudnn=False)." if FLAGS.use_cudnn == "false" else "."),
        "",
        f"CPU: {cpu_model()}.",
    ]
    for backend in FLAGS.backends:
        lines += ["", f"### {backend}", "", _limit_line(results[backend].get(LIMIT, {}), lengths)]
        lines += [""] + _backend_table(results[backend], lengths)
    others = [b for b in FLAGS.backends if b != "tensorflow"]
    if "tensorflow" in FLAGS.backends and others and "r_lstm" in FLAGS.configs:
        r_lstm = {backend: results[backend]["r_lstm"] for backend in FLAGS.backends}
        lines += _ratio_table(r_lstm, lengths, others, "tensorflow", "r_lstm {} / tensorflow")
    if "r_lstm" in FLAGS.configs:
        lines += ["", "### Where the r_lstm step's work goes", ""] + _breakdown(results, lengths)
    text = "\n".join(lines) + "\n"
    with open(path, "w") as table:
        table.write(text)
    return text


def _limit_line(limits, lengths):
    """The sentence that gives a backend's limit at each length."""
    rates = []
    for length in lengths:
        limit = limits.get(length, {})
        if "gflop_per_s" in limit:
            micros = limit["seconds"] / LIMIT_STEPS * 1e6
            rates.append(
                f"{limit['gflop_per_s']:.1f} GFLOP/s ({micros:.3g} µs a product) at {length}"
            )
        else:
            rates.append(f"{limit.get('status', 'not measured')} at {length}")
    return (
        f"The limit, one step's recurrent product ({FLAGS.batch_size}, {FLAGS.units}) x "
        f"({FLAGS.units}, {4 * FLAGS.units}), {limit_flops() / 1e6:.2f} MFLOP, "
        f"{LIMIT_STEPS} times in a loop: " + "; ".join(rates) + " steps. "
        "bound: the step's FLOPs at that rate."
    )


def _number(result, key, digits, scale=1.0):
    return f"{result[key] * scale:.{digits}f}" if key in result else "n/a"


def _backend_table(results, lengths):
    gpu = any("gpu_peak_gib" in results[c].get(n, {}) for c in FLAGS.configs for n in lengths)
    lines = [
        "| length | configuration | kernel | s / step | peak RSS GiB | increase GiB "
        + ("| peak GPU GiB " if gpu else "")
        + "| FLOPs (G) | GFLOP/s | bound (s) | step / bound |",
        "|---:|---|---|---:|---:|---:|" + ("---:|" if gpu else "") + "---:|---:|---:|---:|",
    ]
    for length in lengths:
        for config in FLAGS.configs:
            result = results[config][length]
            ratio = "n/a"
            if result.get("status") == "ok" and "bound_seconds" in result:
                ratio = f"{result['seconds'] / result['bound_seconds']:.2f}"
            gpu_peak = f"{_number(result, 'gpu_peak_gib', 2)} | " if gpu else ""
            lines.append(
                f"| {length} | {config} | {result.get('kernel', '')} | "
                f"{_cell(result, 'seconds', 3)} | "
                f"{_cell(result, 'peak_gib', 2)} | {_cell(result, 'increase_gib', 2)} | {gpu_peak}"
                f"{_number(result, 'flops', 2, 1e-9)} | {_number(result, 'gflop_per_s', 1)} | "
                f"{_number(result, 'bound_seconds', 3)} | {ratio} |"
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
    others = [c for c in ("r_lstm_words", "r_lstm_words_sampled", "r_gru") if c in FLAGS.configs]
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


def _breakdown(results, lengths):
    """The r_lstm step's FLOPs by part (`flops.breakdown_table`), then on
    each backend its bound, for all its FLOPs and for those run in a loop,
    and the step measured."""
    terms = {n: step_terms("r_lstm", int(n)) for n in lengths}
    lines = ["GFLOP forward / backward, and on each backend the step against its bound:", ""]
    lines += flops.breakdown_table(terms)
    for backend in FLAGS.backends:
        runs = results[backend]
        bounds, steps = [], []
        for n in lengths:
            limit = runs.get(LIMIT, {}).get(n, {})
            if "gflop_per_s" in limit:
                rate = limit["gflop_per_s"] * 1e9
                everything = flops.total(terms[n]) / rate
                in_loop = flops.total(terms[n], in_loop=True) / rate
                bounds.append(f"{everything:.3f} / {in_loop:.3f}")
            else:
                bounds.append("n/a")
            steps.append(_cell(runs["r_lstm"][n], "seconds", 3))
        lines.append(f"| {backend}: bound s, all / in a loop | " + " | ".join(bounds) + " |")
        lines.append(f"| {backend}: step s | " + " | ".join(steps) + " |")
    return lines


def write_plot(results, lengths, path):
    # Imported here, not at the top: the worker processes, whose memory is
    # measured, never load matplotlib.
    from examples import plots

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
    results = {
        backend: {config: {} for config in (LIMIT, *FLAGS.configs)} for backend in FLAGS.backends
    }
    for length in FLAGS.lengths:
        for backend in FLAGS.backends:
            for config in (LIMIT, *FLAGS.configs):
                result = run_in_subprocess(config, int(length), backend)
                results[backend][config][length] = result
                print(f"{backend:>10} {config:>17} {length:>6}: {result}", flush=True)
    add_flops(results)
    with open(os.path.join(FLAGS.output_dir, "results.json"), "w") as out:
        json.dump(results, out, indent=2)
    print(write_table(results, FLAGS.lengths, os.path.join(FLAGS.output_dir, "results.md")))
    write_plot(results, FLAGS.lengths, os.path.join(FLAGS.output_dir, "results.png"))


if __name__ == "__main__":
    app.run(main)
