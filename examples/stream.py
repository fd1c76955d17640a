"""One stream of a million steps, trained in chunks with flat memory.

A generated token stream (nothing downloaded) switches now and then between
`--regimes` hidden regimes; in each regime the tokens come mostly from the
regime's own group. The label of a chunk is the regime at its last step. A
stateful `AuxLossLSTM` (`stateful=True`, batch of one stream) reads the
stream chunk after chunk, carrying its state across chunks, cut from the
gradient at each chunk's start; each chunk is one training step on the
chunk's label and the reconstruction loss of anchors inside the chunk.

It prints, every `--log_every` chunks, the steps read, the seconds, the
resident memory and the running accuracy, and writes `results.json` to
`--output_dir`:

    python -m examples.stream                       # 1,000,000 steps
    python -m examples.stream --length=100000 --chunk=5000
"""

import json
import os
import time

import keras
import numpy as np
from absl import app, flags

from examples.resident_memory import resident_gib
from keras_auxloss import AuxLossLSTM

FLAGS = flags.FLAGS
flags.DEFINE_integer("length", 1_000_000, "Steps in the stream.", lower_bound=1)
flags.DEFINE_integer("chunk", 10_000, "Steps per chunk (one training step).", lower_bound=1)
flags.DEFINE_integer("regimes", 4, "Hidden regimes (classes).", lower_bound=2)
flags.DEFINE_integer("mean_regime_length", 20_000, "Mean steps between switches.", lower_bound=1)
flags.DEFINE_integer("units", 32, "LSTM units.", lower_bound=1)
flags.DEFINE_integer("bptt", 100, "Supervised truncation.", lower_bound=1)
flags.DEFINE_integer("aux_length", 100, "Auxiliary window length.", lower_bound=1)
flags.DEFINE_integer("num_anchors", 4, "Anchors per chunk.", lower_bound=1)
flags.DEFINE_integer("log_every", 10, "Chunks between progress lines.", lower_bound=1)
flags.DEFINE_integer("seed", 0, "Seed of the stream, the weights and the anchors.")
flags.DEFINE_string("output_dir", "runs/stream", "Where results.json goes.")

TOKENS_PER_REGIME = 4


def make_stream(length, regimes, mean_regime_length, seed):
    """`(tokens, regime)`, int32 arrays of `length`: in regime r a token is
    one of the group r's 4 tokens with probability 0.6, any token else."""
    rng = np.random.default_rng(seed)
    switches = rng.random(length) < 1.0 / mean_regime_length
    regime = (np.cumsum(switches) + rng.integers(regimes)) % regimes
    vocab = regimes * TOKENS_PER_REGIME
    own = regime * TOKENS_PER_REGIME + rng.integers(TOKENS_PER_REGIME, size=length)
    tokens = np.where(rng.random(length) < 0.6, own, rng.integers(vocab, size=length))
    return tokens.astype("int32"), regime.astype("int32")


def build_model(vocab_size, chunk):
    inputs = keras.Input((chunk,), dtype="int32", batch_size=1)
    features = AuxLossLSTM(
        FLAGS.units,
        vocab_size=vocab_size,
        embedding_dim=8,
        bptt=min(FLAGS.bptt, chunk),
        aux_length=min(FLAGS.aux_length, chunk - 1),
        num_anchors=FLAGS.num_anchors,
        aux_hidden=64,
        stateful=True,
        seed=FLAGS.seed,
    )(inputs)
    model = keras.Model(inputs, keras.layers.Dense(FLAGS.regimes)(features))
    model.compile(
        keras.optimizers.Adam(3e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def main(argv):
    del argv
    keras.utils.set_random_seed(FLAGS.seed)
    tokens, regime = make_stream(FLAGS.length, FLAGS.regimes, FLAGS.mean_regime_length, FLAGS.seed)
    chunks = FLAGS.length // FLAGS.chunk
    model = build_model(FLAGS.regimes * TOKENS_PER_REGIME, FLAGS.chunk)
    log, correct, start = [], 0, time.perf_counter()
    for i in range(chunks):
        window = slice(i * FLAGS.chunk, (i + 1) * FLAGS.chunk)
        x, y = tokens[None, window], regime[None, window.stop - 1]
        logs = model.train_on_batch(x, y, return_dict=True)
        # Measured on the prediction made before this chunk's update: the
        # model had not been trained on it yet.
        correct += int(logs["accuracy"])
        if (i + 1) % FLAGS.log_every == 0 or i + 1 == chunks:
            row = {
                "steps": (i + 1) * FLAGS.chunk,
                "seconds": round(time.perf_counter() - start, 1),
                "resident_gib": round(resident_gib(), 3),
                "accuracy_so_far": round(correct / (i + 1), 3),
                "aux_loss": round(float(logs["aux_loss"]), 3),
            }
            log.append(row)
            print(row, flush=True)
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    with open(os.path.join(FLAGS.output_dir, "results.json"), "w") as file:
        json.dump({"flags": FLAGS.flag_values_dict(), "log": log}, file, indent=1)


if __name__ == "__main__":
    app.run(main)
