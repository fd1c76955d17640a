"""TensorFlow's own fused LSTM op on the CPU, `tf.raw_ops.BlockLSTMV2`,
against the package's TensorFlow loop (`keras_auxloss/backends/tensorflow.py`):
600 steps of an LSTM with batch 32, 128 inputs and 128 units, forward and
backward (the gradient of the outputs' and the last cell state's sum with
respect to the weights), each in a `tf.function`; the median of 7 calls
after a warm-up. Checks first that both give the same outputs. It is why
TensorFlow's CPU keeps the loop (`keras_auxloss/kernels.py`).

    python -m benchmarks.block_lstm
"""

import statistics
import time

import tensorflow as tf
from absl import app, flags

from examples.machine import cpu_model
from keras_auxloss.backends import tensorflow as loop

FLAGS = flags.FLAGS
flags.DEFINE_integer("steps", 600, "Steps of the LSTM.")
flags.DEFINE_integer("repetitions", 7, "Timed calls after a warm-up call.")

BATCH, FEATURES, UNITS = 32, 128, 128


def main(argv):
    del argv
    tf.random.set_seed(0)
    x = tf.random.normal((FLAGS.steps, BATCH, FEATURES))
    kernel = tf.Variable(tf.random.normal((FEATURES, 4 * UNITS)) / 12)
    recurrent = tf.Variable(tf.random.normal((UNITS, 4 * UNITS)) / 12)
    bias = tf.Variable(tf.random.normal((4 * UNITS,)) / 10)
    zeros = tf.zeros((BATCH, UNITS))
    weights = [kernel, recurrent, bias]

    def block():
        # xh = [x, h] @ w + b, the gates in Keras's order (i, f, c, o).
        _, cells, _, _, _, _, outputs = tf.raw_ops.BlockLSTMV2(
            seq_len_max=tf.cast(FLAGS.steps, tf.int64), x=x, cs_prev=zeros, h_prev=zeros,
            w=tf.concat([kernel, recurrent], 0), wci=tf.zeros(UNITS), wcf=tf.zeros(UNITS),
            wco=tf.zeros(UNITS), b=bias, cell_clip=0.0, use_peephole=False,
        )  # fmt: skip
        return outputs, cells[-1]

    def package_loop():
        gates = tf.einsum("tbe,eg->tbg", x, kernel) + bias
        run = loop.run(
            lambda g, s: loop.lstm_step(g, s, recurrent), gates, (zeros, zeros), zeros,
            return_sequences=True,
        )  # fmt: skip
        return run.sequences, run.state[1]

    def training(forward):
        @tf.function
        def step():
            with tf.GradientTape() as tape:
                outputs, cell = forward()
                loss = tf.reduce_sum(outputs) + tf.reduce_sum(cell)
            return tape.gradient(loss, weights)

        return step

    difference = tf.reduce_max(tf.abs(block()[0] - package_loop()[0]))
    print(f"CPU: {cpu_model()}; outputs differ by at most {float(difference):.1e}")
    seconds = {}
    for name, forward in (("BlockLSTMV2", block), ("loop", package_loop)):
        step = training(forward)
        step()
        times = []
        for _ in range(FLAGS.repetitions):
            start = time.perf_counter()
            [g.numpy() for g in step()]
            times.append(time.perf_counter() - start)
        seconds[name] = statistics.median(times)
        print(f"{name}: {seconds[name]:.3f} s forward and backward")
    print(f"BlockLSTMV2 / loop: {seconds['BlockLSTMV2'] / seconds['loop']:.2f}")


if __name__ == "__main__":
    app.run(main)
