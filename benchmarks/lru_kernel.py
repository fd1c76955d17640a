"""The `LinearRecurrentUnitCell`'s kernel against the loop: one training
step of the r-LRU of `examples/compare.py` (64 units, 128 complex state
units, `r_min` 0.99, embedding 32, batch 32; `bptt` 20 and 1 x 100 at 196
steps, 300 and 1 x 600 from 784 on), on the backend Keras runs, with its
runs on its kernel (`"lru"`) and on the loop (`kernels.set_kernel`); the
median of 5 steps after a warm-up step, each way in a process of its own.

    python -m benchmarks.lru_kernel --lengths=196,784

With `--recurrence` it times instead the linear recurrence alone over one
window of 640 steps (forward and backward, TensorFlow), computed two ways:
stepped elementwise (the kernel's way) and in parallel within chunks of 16
steps by powers of lambda (`recurrence_forms.py`).
"""

import json
import os
import statistics
import subprocess
import sys
import time

from absl import app, flags

from examples.machine import cpu_model

FLAGS = flags.FLAGS
flags.DEFINE_list("lengths", ["196", "784"], "Sequence lengths.")
flags.DEFINE_bool("recurrence", False, "Time the linear recurrence's three forms instead.")
flags.DEFINE_string("worker", None, "Internal: `fused` or `loop`, one step's time as JSON.")
flags.DEFINE_integer("length", 196, "Internal: the worker's length.")

TRUNCATION = {196: (20, 100)}


def training_step_seconds(kernel, length):
    """The median seconds of the r-LRU's training step, `kernel` `"fused"` or `"loop"`."""
    import keras
    import numpy as np

    from keras_auxloss import AuxLossRNN, LinearRecurrentUnitCell, kernels

    kernels.set_kernel(kernel)
    bptt, aux_length = TRUNCATION.get(length, (300, 600))
    keras.utils.set_random_seed(0)
    cell = LinearRecurrentUnitCell(64, state_dim=128, r_min=0.99, max_timescale=length, seed=0)
    layer = AuxLossRNN(cell, vocab_size=256, embedding_dim=32, bptt=bptt, aux_length=aux_length,
                       aux_weight=5.0, seed=0)  # fmt: skip
    inputs = keras.Input((length,), dtype="int32", batch_size=32)
    model = keras.Model(inputs, keras.layers.Dense(10)(layer(inputs)))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (32, length)), rng.integers(0, 10, 32)
    model.train_on_batch(x, y)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - start)
    return statistics.median(times), layer.kernels_used


def recurrence_forms(steps=640, batch=32, size=128):
    """`{form: (seconds, difference)}`: each form's seconds forward and
    backward, and how far its states are from the stepped form's."""
    import tensorflow as tf

    from benchmarks import recurrence_forms as forms

    tf.random.set_seed(0)
    b = tf.random.normal((steps, 2, batch, size))
    angle = tf.random.uniform((size,), 0, 6.28)
    lam = tf.Variable(tf.stack([0.99 * tf.cos(angle), 0.99 * tf.sin(angle)]))
    results, reference = {}, forms.stepped(lam, b)
    for name, form in forms.FORMS.items():
        difference = float(tf.reduce_max(tf.abs(form(lam, b) - reference)))

        @tf.function
        def step(form=form):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(form(lam, b))
            return tape.gradient(loss, lam)

        step()
        times = []
        for _ in range(7):
            start = time.perf_counter()
            step().numpy()
            times.append(time.perf_counter() - start)
        results[name] = (statistics.median(times), difference)
    return results


def main(argv):
    del argv
    if FLAGS.worker:
        seconds, used = training_step_seconds(FLAGS.worker, FLAGS.length)
        print(json.dumps({"seconds": seconds, "kernels_used": used}))
        return
    print(f"CPU: {cpu_model()}")
    if FLAGS.recurrence:
        for name, (seconds, difference) in recurrence_forms().items():
            print(f"{name}: {seconds:.4f} s (differs from stepped by {difference:.1e} at most)")
        return
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    print("| backend | length | kernel s / step | loop s / step | loop / kernel |")
    print("|---|---:|---:|---:|---:|")
    for length in FLAGS.lengths:
        seconds = {}
        for kernel in ("fused", "loop"):
            command = [sys.executable, "-m", "benchmarks.lru_kernel", f"--worker={kernel}",
                       f"--length={length}"]  # fmt: skip
            out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            seconds[kernel] = json.loads(out.strip().splitlines()[-1])["seconds"]
        ratio = seconds["loop"] / seconds["fused"]
        print(f"| {backend} | {length} | {seconds['fused']:.3f} | {seconds['loop']:.3f} | "
              f"{ratio:.2f} |")  # fmt: skip


if __name__ == "__main__":
    app.run(main)
