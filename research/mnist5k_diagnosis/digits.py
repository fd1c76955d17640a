"""The diagnosis's data: mnist5k's 4,000 training digits, split once into
3,500 to train and 500 to validate. The 1,000 test digits are never read.

The validation split is the diagnosis's own (50 digits a class, drawn with
`VALIDATION_SEED`), not that of `--evaluate_on=validation` in
`examples.train` and `examples.demo`.
"""

import math

import numpy as np
import tensorflow as tf

from examples import input_pipeline
from examples.config import Config

# The validation split: 50 of each class of mnist5k's 4,000 training digits,
# drawn once with this seed, whatever the run's seed.
VALIDATION_PER_CLASS = 50
VALIDATION_SEED = 0
# The digits shrunk to 14 x 14, 196 steps, as in the demo's mnist5k task.
SIZE = 14


def validation_split(labels):
    """`(train, validation)` positions in the 4,000 training digits: a fixed
    stratified draw of `VALIDATION_PER_CLASS` a class for validation (the
    training digits keep their order)."""
    rng = np.random.default_rng(VALIDATION_SEED)
    validation = []
    for label in range(10):
        indices = rng.permutation(np.flatnonzero(labels == label))
        validation.append(indices[:VALIDATION_PER_CLASS])
    validation = np.sort(np.concatenate(validation))
    train_positions = np.setdiff1d(np.arange(len(labels)), validation)
    return train_positions, validation


def load_mnist5k_training(size):
    """`(pixels, labels)` of mnist5k's 4,000 training digits, in the order of
    its fixed train/test split: uint8 pixels `(4000, size * size)` pooled as
    `examples.train` pools them, int32 labels. The test digits are dropped."""
    pixels, labels = input_pipeline.read_mnist5k()
    train_indices, _ = input_pipeline.mnist5k_split(labels)
    pixels = input_pipeline.pooled_pixels(pixels, size).numpy()
    return pixels[train_indices], labels[train_indices]


def diagnosis_data(batch_size, seed):
    """`(dataset, x_val, y_val, steps_per_epoch)`: the 3,500 training digits
    in batches, shuffled with `seed` as `examples.input_pipeline.batches`
    shuffles them, and the 500 validation digits, int32 tokens as a tensor
    and their labels."""
    pixels, labels = load_mnist5k_training(SIZE)
    train_positions, validation = validation_split(labels)
    x_train, y_train = pixels[train_positions], labels[train_positions].astype("int32")
    x_val = tf.constant(pixels[validation].astype("int32"))
    y_val = labels[validation]
    config = Config(dataset="mnist5k", batch_size=batch_size, seed=seed)
    dataset = input_pipeline.batches(
        tf.data.Dataset.from_tensor_slices((x_train, y_train)), config, training=True
    )
    steps_per_epoch = math.ceil(len(x_train) / batch_size)
    return dataset, x_val, y_val, steps_per_epoch
