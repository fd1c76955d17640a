"""Trains a small AuxLossLSTM model for a few steps under a tf.distribute
strategy and saves its final weights: run by tests/test_distributed.py in a
process of its own, since logical devices and TF_CONFIG must be set before
TensorFlow starts.

    python tests/distributed_fit.py --strategy=one_device|mirrored|multi_worker --output=W.npz
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_auxloss import AuxLossLSTM  # noqa: E402
from keras_auxloss.distribute import fix_multi_worker_fit  # noqa: E402
from keras_auxloss.testing import fix_window_starts  # noqa: E402

LENGTH, BATCH, STEPS = 24, 8, 3


def deterministic_window_starts(ends):
    """Anchors that do not depend on the random stream, which differs
    between one device and several replicas: the middle of each sequence."""
    starts = (ends - 7) // 2
    return tf.stack([starts, starts // 2], axis=1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--strategy", required=True)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()

    if args.strategy == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2
        )
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    elif args.strategy == "multi_worker":
        strategy = fix_multi_worker_fit(tf.distribute.MultiWorkerMirroredStrategy())
    else:
        strategy = tf.distribute.OneDeviceStrategy("/cpu:0")

    rng = np.random.default_rng(0)
    x = rng.integers(0, 6, (BATCH * STEPS, LENGTH)).astype("int32")
    y = rng.integers(0, 2, BATCH * STEPS).astype("int32")
    with strategy.scope():
        layer = AuxLossLSTM(
            8,
            vocab_size=6,
            embedding_dim=4,
            bptt=5,
            aux_length=7,
            num_anchors=2,
            aux_hidden=8,
            aux_dropout=0.0,
            seed=0,
        )
        fix_window_starts(layer, deterministic_window_starts)
        model = keras.Sequential([keras.Input((LENGTH,), dtype="int32"), layer])
        model.add(keras.layers.Dense(2))
        model.set_weights(
            [np.random.default_rng(i).normal(0, 0.3, w.shape) for i, w in enumerate(model.weights)]
        )
        model.compile(
            keras.optimizers.SGD(0.5), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        )
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH)
    history = model.fit(dataset, epochs=1, verbose=0).history
    weights = {f"weight_{i}": w for i, w in enumerate(model.get_weights())}
    np.savez(args.output, aux_loss=history["aux_loss"], loss=history["loss"], **weights)


if __name__ == "__main__":
    main()
