"""Diagnoses the r-LSTM's training on mnist5k: one run, with
per-step losses, gradient norms per part, update norms, classifier output
statistics, and per-epoch accuracy on a validation split carved from the
4,000 training digits. The 1,000 test digits are never read.

The model, data pipeline and two-phase schedule are those of
`examples/train.py` (`experiment.build_model`, mnist5k's fixed train/test
split from `input_pipeline`, `input_pipeline.batches`' shuffling with the
run's seed, batch 32, a fresh Adam per phase, the classifier frozen in
pretraining); the training loop is written out here so that every step's
gradients can be measured. The supervised and auxiliary gradients are
measured apart (`g_aux = g_total - g_sup`), then their sum is applied, as
`fit` does.

    .venv/bin/python examples/diagnose/diagnose_mnist5k.py \
        --model=r-lstm --seed=0 --output=runs/diag/base-s0

Writes `<output>.json` (settings, per-epoch summary) and `<output>.npz`
(per-step records).
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # examples/, for train.py's modules

import experiment  # noqa: E402
import input_pipeline  # noqa: E402
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from config import Config  # noqa: E402

from keras_auxloss import AuxLossLSTM  # noqa: E402

# The validation split: 50 of each class of mnist5k's 4,000 training digits,
# drawn once with this seed, whatever the run's seed.
VALIDATION_PER_CLASS = 50
VALIDATION_SEED = 0
GROUPS = ("main", "decoder", "aux_head", "classifier")


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
    `train.py` pools them, int32 labels. The test digits are dropped."""
    pixels, labels = input_pipeline.read_mnist5k()
    train_indices, _ = input_pipeline.mnist5k_split(labels)
    pixels = input_pipeline.pooled_pixels(pixels, size).numpy()
    return pixels[train_indices], labels[train_indices]


def group_of(path):
    if path.startswith("aux_loss_lstm/"):
        name = path.split("/")[1]
        if name in ("embedding", "cell"):
            return "main"
        if name.startswith("decoder_cell"):
            return "decoder"
        if name.startswith("head_"):
            return "aux_head"
        raise ValueError(path)
    return "classifier"


def dense(gradient, variable):
    if gradient is None:
        return tf.zeros_like(variable)
    return tf.convert_to_tensor(gradient)


def norms(gradients, groups):
    """Global norm and the norm of each group."""
    squares = {g: tf.constant(0.0) for g in GROUPS}
    for gradient, group in zip(gradients, groups):
        squares[group] += tf.reduce_sum(tf.square(gradient))
    out = {g: tf.sqrt(s) for g, s in squares.items()}
    out["global"] = tf.sqrt(tf.add_n(list(squares.values())))
    return out


def learning_rate(args, steps_per_epoch):
    """The joint phase's learning rate (a float or a schedule)."""
    total = args.epochs * steps_per_epoch
    if args.schedule == "constant":
        return args.lr
    if args.schedule == "cosine":
        warmup = args.warmup_epochs * steps_per_epoch
        return keras.optimizers.schedules.CosineDecay(
            args.lr if not warmup else 0.0,
            decay_steps=total - warmup,
            alpha=args.final_lr_fraction,
            warmup_target=args.lr if warmup else None,
            warmup_steps=warmup,
        )
    if args.schedule == "step":  # x0.3 at 1/2 and at 3/4 of the joint phase
        boundaries = [total // 2, (3 * total) // 4]
        return keras.optimizers.schedules.PiecewiseConstantDecay(
            boundaries, [args.lr, args.lr * 0.3, args.lr * 0.09]
        )
    raise ValueError(args.schedule)


def make_optimizer(args, lr):
    clip = {}
    if args.clipnorm:
        clip["clipnorm"] = args.clipnorm
    if args.global_clipnorm:
        clip["global_clipnorm"] = args.global_clipnorm
    if args.ema_momentum:
        clip.update(use_ema=True, ema_momentum=args.ema_momentum)
    return keras.optimizers.Adam(lr, **clip)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="r-lstm", choices=["lstm", "r-lstm"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--schedule", default="constant", choices=["constant", "cosine", "step"])
    parser.add_argument("--final_lr_fraction", type=float, default=0.0)
    parser.add_argument("--warmup_epochs", type=int, default=0)
    parser.add_argument("--clipnorm", type=float, default=1.0)
    parser.add_argument("--global_clipnorm", type=float, default=None)
    parser.add_argument("--aux_weight", type=float, default=1.0)
    parser.add_argument("--num_anchors", type=int, default=1)
    parser.add_argument("--aux_length", type=int, default=100)
    parser.add_argument("--bptt", type=int, default=20)
    parser.add_argument("--units", type=int, default=64)
    parser.add_argument("--embedding_dim", type=int, default=32)
    parser.add_argument("--pretrain_epochs", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=28)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument(
        "--ema_momentum",
        type=float,
        default=None,
        help="Adam's use_ema: validation also on the moving average of the "
        "weights, which replace the weights at the end of each phase (as fit does)",
    )
    parser.add_argument(
        "--fine_val_epochs",
        type=int,
        default=0,
        help="in the last this many epochs, validate every --fine_val_every steps",
    )
    parser.add_argument("--fine_val_every", type=int, default=5)
    parser.add_argument(
        "--full_bp_probe_every",
        type=int,
        default=0,
        help="every this many steps (joint phase), also measure the supervised "
        "gradient on the main LSTM with full backpropagation, on the same batch "
        "without dropout, against the truncated one",
    )
    parser.add_argument("--max_steps", type=int, default=None, help="smoke tests only")
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    if args.model == "lstm":  # As many epochs as both phases, as demo.py does.
        args.epochs += args.pretrain_epochs
        args.pretrain_epochs = 0

    keras.utils.set_random_seed(args.seed)
    pixels, labels = load_mnist5k_training(14)
    train_positions, validation = validation_split(labels)
    x_train, y_train = pixels[train_positions], labels[train_positions].astype("int32")
    x_val = tf.constant(pixels[validation].astype("int32"))
    y_val = labels[validation]
    config = Config(dataset="mnist5k", batch_size=args.batch_size, seed=args.seed)
    dataset = input_pipeline.batches(
        tf.data.Dataset.from_tensor_slices((x_train, y_train)), config, training=True
    )
    steps_per_epoch = math.ceil(len(x_train) / args.batch_size)

    model = experiment.build_model(
        args.model,
        196,
        256,
        10,
        units=args.units,
        embedding_dim=args.embedding_dim,
        bptt=args.bptt,
        aux_length=args.aux_length,
        num_anchors=args.num_anchors,
        aux_weight=args.aux_weight,
        seed=args.seed,
    )
    layer = next(layer for layer in model.layers if isinstance(layer, AuxLossLSTM))
    dense_hidden = next(
        candidate for candidate in model.layers if isinstance(candidate, keras.layers.Dense)
    )
    probe = keras.Model(model.inputs, [layer.output, dense_hidden.output, model.output])
    has_aux = args.model != "lstm"

    def output_stats(features, hidden, logits, y):
        logits = tf.cast(logits, tf.float32)
        probs = tf.nn.softmax(logits)
        predicted = tf.argmax(logits, -1, output_type=tf.int32)
        counts = tf.math.bincount(predicted, minlength=10, maxlength=10)
        return {
            "acc": tf.reduce_mean(tf.cast(predicted == y, tf.float32)),
            "logit_std": tf.reduce_mean(tf.math.reduce_std(logits, -1)),
            "logit_maxabs": tf.reduce_max(tf.abs(logits)),
            "entropy": tf.reduce_mean(-tf.reduce_sum(probs * tf.math.log(probs + 1e-12), -1)),
            "top_class_fraction": tf.cast(tf.reduce_max(counts), tf.float32)
            / tf.cast(tf.shape(y)[0], tf.float32),
            "dead_relu": tf.reduce_mean(tf.cast(tf.reduce_max(hidden, 0) <= 0.0, tf.float32)),
            "h_absmean": tf.reduce_mean(tf.abs(features)),
            "h_saturated": tf.reduce_mean(tf.cast(tf.abs(features) > 0.95, tf.float32)),
        }

    def make_step(optimizer, variables, joint):
        groups = [group_of(v.path) for v in variables]

        @tf.function
        def step(x, y):
            before = [tf.identity(v) for v in variables]
            with tf.GradientTape(persistent=True) as tape:
                features, hidden, logits = probe(x, training=True)
                aux = tf.add_n(probe.losses) if probe.losses else tf.constant(0.0)
                sup = tf.reduce_mean(
                    keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
                )
                total = (sup if joint else 0.0) + aux
            g_total = [dense(g, v) for g, v in zip(tape.gradient(total, variables), variables)]
            if joint:
                g_sup = [dense(g, v) for g, v in zip(tape.gradient(sup, variables), variables)]
            else:
                g_sup = [tf.zeros_like(v) for v in variables]
            del tape
            g_aux = [t - s for t, s in zip(g_total, g_sup)]
            optimizer.apply(g_total, variables)
            out = {"sup_loss": sup, "aux_loss": aux / args.aux_weight if args.aux_weight else aux}
            for name, gradients in (("total", g_total), ("sup", g_sup), ("aux", g_aux)):
                for group, value in norms(gradients, groups).items():
                    out[f"g_{name}_{group}"] = value
            for name, gradients in (("sup", g_sup), ("aux", g_aux)):
                for v, g in zip(variables, gradients):  # Per variable, before clipping.
                    out[f"gv_{name}/{v.path}"] = tf.norm(g)
            # Cosine between the supervised and auxiliary gradients on the main LSTM.
            main = [i for i, g in enumerate(groups) if g == "main"]
            dot = tf.add_n([tf.reduce_sum(g_sup[i] * g_aux[i]) for i in main])
            out["cos_sup_aux_main"] = dot / (out["g_sup_main"] * out["g_aux_main"] + 1e-12)
            updates = [v - b for v, b in zip(variables, before)]
            for group, value in norms(updates, groups).items():
                out[f"update_{group}"] = value
            out.update(output_stats(features, hidden, logits, y))
            out["lr"] = tf.cast(optimizer.learning_rate, tf.float32)
            return out

        return step

    logits_layer = model.layers[-1]
    main_variables = [v for v in model.trainable_weights if group_of(v.path) == "main"]

    @tf.function
    def full_bp_probe(x, y):
        """Truncated and full supervised gradients on the main LSTM, same
        batch, classifier without dropout (the layer's values are the same
        in both calls; only the gradient path differs)."""

        def head(features):
            return logits_layer(dense_hidden(features))

        with tf.GradientTape(persistent=True) as tape:
            truncated = tf.reduce_mean(
                keras.losses.sparse_categorical_crossentropy(
                    y, head(layer(x, training=True)), from_logits=True
                )
            )
            full = tf.reduce_mean(
                keras.losses.sparse_categorical_crossentropy(
                    y, head(layer(x, training=False)), from_logits=True
                )
            )
        g_tr = [
            dense(g, v) for g, v in zip(tape.gradient(truncated, main_variables), main_variables)
        ]
        g_full = [dense(g, v) for g, v in zip(tape.gradient(full, main_variables), main_variables)]
        del tape
        flat_tr = tf.concat([tf.reshape(g, [-1]) for g in g_tr], 0)
        flat_full = tf.concat([tf.reshape(g, [-1]) for g in g_full], 0)
        flat_early = flat_full - flat_tr  # The part from the steps before the window.
        out = {
            "norm_truncated": tf.norm(flat_tr),
            "norm_full": tf.norm(flat_full),
            "norm_early": tf.norm(flat_early),
            "cos_truncated_full": tf.reduce_sum(flat_tr * flat_full)
            / (tf.norm(flat_tr) * tf.norm(flat_full) + 1e-12),
            "cos_truncated_early": tf.reduce_sum(flat_tr * flat_early)
            / (tf.norm(flat_tr) * tf.norm(flat_early) + 1e-12),
            "loss": full,
        }
        for v, a, b in zip(main_variables, g_tr, g_full):
            name = v.path.split("/")[-1]
            out[f"cos_{name}"] = tf.reduce_sum(a * b) / (tf.norm(a) * tf.norm(b) + 1e-12)
        return out

    probes = []

    @tf.function
    def evaluate(x):
        return probe(x, training=False)

    def validate():
        features, hidden, logits = evaluate(x_val)
        stats = {k: float(v) for k, v in output_stats(features, hidden, logits, y_val).items()}
        loss = keras.losses.sparse_categorical_crossentropy(y_val, logits, from_logits=True)
        stats["loss"] = float(np.mean(loss))
        return stats

    def validate_ema(optimizer, variables):
        """Validation with the moving averages in place of the weights."""
        saved = [v.numpy() for v in variables]
        for v, average in zip(variables, optimizer._model_variables_moving_average):
            v.assign(average)
        stats = validate()
        for v, value in zip(variables, saved):
            v.assign(value)
        return stats

    records, epochs_summary, fine = [], [], []
    total_epochs = (args.pretrain_epochs if has_aux else 0) + args.epochs
    start = time.perf_counter()
    phases = []
    if has_aux and args.pretrain_epochs:
        phases.append(("pretrain", args.pretrain_epochs))
    phases.append(("joint", args.epochs))
    epoch = 0
    for phase, count in phases:
        joint = phase == "joint"
        # Not `layer`: full_bp_probe reads the AuxLossLSTM by that name.
        for model_layer in model.layers:
            if not isinstance(model_layer, AuxLossLSTM):
                model_layer.trainable = joint
        lr = learning_rate(args, steps_per_epoch) if joint else args.lr
        optimizer = make_optimizer(args, lr)
        variables = list(model.trainable_weights)
        optimizer.build(variables)
        step = make_step(optimizer, variables, joint)
        for _ in range(count):
            epoch += 1
            epoch_records = []
            for i, (x, y) in enumerate(dataset.take(args.max_steps or -1)):
                if joint and args.full_bp_probe_every and i % args.full_bp_probe_every == 0:
                    point = {k: float(v) for k, v in full_bp_probe(x, y).items()}
                    probes.append({"epoch": epoch, "step": i, **point})
                out = step(x, y)
                epoch_records.append({k: float(v) for k, v in out.items()})
                if epoch > total_epochs - args.fine_val_epochs and i % args.fine_val_every == 0:
                    point = {"epoch": epoch, "step": i, "acc": validate()["acc"]}
                    if args.ema_momentum:
                        point["ema_acc"] = validate_ema(optimizer, variables)["acc"]
                    fine.append(point)
            for i, r in enumerate(epoch_records):
                r["epoch"], r["step"] = epoch, i
            records.extend(epoch_records)
            summary = {"epoch": epoch, "phase": phase, "seconds": time.perf_counter() - start}
            for key in epoch_records[0]:
                values = [r[key] for r in epoch_records]
                summary[key] = float(np.mean(values))
                if key.startswith("gv_"):
                    continue
                if key.startswith("g_") or key.startswith("update_"):
                    summary[key + "_max"] = float(np.max(values))
            summary["val"] = validate()
            if args.ema_momentum:
                summary["val_ema"] = validate_ema(optimizer, variables)
            epochs_summary.append(summary)
            print(
                f"epoch {epoch:2d} {phase:8s} aux {summary['aux_loss']:.3f} "
                f"sup {summary['sup_loss']:.3f} acc {summary['acc']:.3f} "
                f"val_acc {summary['val']['acc']:.3f} val_loss {summary['val']['loss']:.3f} "
                f"g_sup_main {summary['g_sup_main']:.3f} g_aux_main {summary['g_aux_main']:.3f} "
                f"g_cls {summary['g_total_classifier']:.3f} "
                f"top {summary['val']['top_class_fraction']:.2f} "
                + (f"val_ema {summary['val_ema']['acc']:.3f} " if args.ema_momentum else "")
                + f"{summary['seconds']:.0f}s",
                flush=True,
            )
        if args.ema_momentum:  # As fit does at its end.
            optimizer.finalize_variable_values(variables)
    seconds = time.perf_counter() - start
    key = "val_ema" if args.ema_momentum else "val"
    val = [e[key]["acc"] for e in epochs_summary if e["phase"] == "joint"]
    result = {
        "args": vars(args),
        "seconds": seconds,
        "final_val_acc": val[-1],
        "best_val_acc": max(val),
        "best_epoch": int(np.argmax(val)) + 1 + (len(epochs_summary) - len(val)),
        "final_raw_val_acc": epochs_summary[-1]["val"]["acc"],
        "epochs": epochs_summary,
        "fine_validation": fine,
        "full_bp_probes": probes,
    }
    if args.ema_momentum:
        result["final_val_acc_after_finalize"] = validate()["acc"]
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output + ".json", "w") as file:
        json.dump(result, file, indent=1)
    keys = list(dict.fromkeys(k for r in records for k in r))
    np.savez_compressed(
        args.output + ".npz",
        **{k: np.array([r.get(k, np.nan) for r in records]) for k in keys},
    )
    print(f"final val acc {val[-1]:.3f} best {max(val):.3f} in {seconds:.0f} s", flush=True)


if __name__ == "__main__":
    main()
