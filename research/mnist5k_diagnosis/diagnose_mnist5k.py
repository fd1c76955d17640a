"""Diagnoses the r-LSTM's training on mnist5k: one run, with
per-step losses, gradient norms per part, update norms, classifier output
statistics, and per-epoch accuracy on a validation split carved from the
4,000 training digits. The 1,000 test digits are never read.

The model, data pipeline and two-phase schedule are those of
`examples.train` (`experiment.build_model`, mnist5k's fixed train/test
split from `input_pipeline`, `input_pipeline.batches`' shuffling with the
run's seed, batch 32, a fresh Adam per phase, the classifier frozen in
pretraining); the training loop is written out here so that every step's
gradients can be measured (`measures.make_step`). The supervised and
auxiliary gradients are measured apart (`g_aux = g_total - g_sup`), then
their sum is applied, as `fit` does.

    .venv/bin/python -m research.mnist5k_diagnosis.diagnose_mnist5k \
        --model=r-lstm --seed=0 --output=runs/diag/base-s0

Writes `<output>.json` (settings, per-epoch summary) and `<output>.npz`
(per-step records).
"""

import argparse
import json
import os
import time

import keras
import numpy as np

from examples import experiment
from keras_auxloss import AuxLossLSTM
from research.mnist5k_diagnosis import digits, measures


def argument_parser():
    """The command line's options, with the demo's mnist5k settings as defaults
    (but `--aux_weight`, 1 as in the paper)."""
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
    return parser


def parse_args(argv=None):
    """The parsed options; the plain LSTM gets as many joint epochs as both
    phases together, as `examples.demo` gives it, and no pretraining."""
    args = argument_parser().parse_args(argv)
    if args.model == "lstm":
        args.epochs += args.pretrain_epochs
        args.pretrain_epochs = 0
    return args


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
    """A fresh Adam for a phase, clipped and averaged as `args` say."""
    clip = {}
    if args.clipnorm:
        clip["clipnorm"] = args.clipnorm
    if args.global_clipnorm:
        clip["global_clipnorm"] = args.global_clipnorm
    if args.ema_momentum:
        clip.update(use_ema=True, ema_momentum=args.ema_momentum)
    return keras.optimizers.Adam(lr, **clip)


def phases(args):
    """`(phase, epochs)` in order: pretraining on the auxiliary loss alone
    (for the r-LSTM, with `--pretrain_epochs`), then the joint phase."""
    if args.model != "lstm" and args.pretrain_epochs:
        return [("pretrain", args.pretrain_epochs), ("joint", args.epochs)]
    return [("joint", args.epochs)]


def epoch_summary(epoch, phase, seconds, epoch_records):
    """An epoch's means of the step records, and the maxima of the
    gradients' and updates' norms by group."""
    summary = {"epoch": epoch, "phase": phase, "seconds": seconds}
    for key in epoch_records[0]:
        values = [r[key] for r in epoch_records]
        summary[key] = float(np.mean(values))
        if key.startswith("gv_"):
            continue
        if key.startswith("g_") or key.startswith("update_"):
            summary[key + "_max"] = float(np.max(values))
    return summary


def print_summary(epoch, phase, summary):
    """The epoch's line: losses, accuracies, gradient norms, seconds so far."""
    print(
        f"epoch {epoch:2d} {phase:8s} aux {summary['aux_loss']:.3f} "
        f"sup {summary['sup_loss']:.3f} acc {summary['acc']:.3f} "
        f"val_acc {summary['val']['acc']:.3f} val_loss {summary['val']['loss']:.3f} "
        f"g_sup_main {summary['g_sup_main']:.3f} g_aux_main {summary['g_aux_main']:.3f} "
        f"g_cls {summary['g_total_classifier']:.3f} "
        f"top {summary['val']['top_class_fraction']:.2f} "
        + (f"val_ema {summary['val_ema']['acc']:.3f} " if "val_ema" in summary else "")
        + f"{summary['seconds']:.0f}s",
        flush=True,
    )


class Diagnosis:
    """One run: the network, its measurements, and what it has recorded:
    every step's records, every epoch's summary, the validations within
    epochs (`--fine_val_epochs`) and the full-backpropagation probes."""

    def __init__(self, args):
        self.args = args
        keras.utils.set_random_seed(args.seed)
        self.dataset, x_val, y_val, self.steps_per_epoch = digits.diagnosis_data(
            args.batch_size, args.seed
        )
        self.model = experiment.build_model(
            args.model,
            digits.SIZE**2,
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
        layer, dense_hidden, self.probe = measures.probe_model(self.model)
        self.full_bp_probe = measures.make_full_bp_probe(self.model, layer, dense_hidden)
        self.validate = measures.Validator(self.probe, x_val, y_val)
        self.records, self.epochs, self.fine, self.probes = [], [], [], []

    def run(self):
        """Trains through both phases; returns the seconds it took."""
        start = time.perf_counter()
        total_epochs = sum(count for _, count in phases(self.args))
        epoch = 0
        for phase, count in phases(self.args):
            self.start_phase(phase)
            for _ in range(count):
                epoch += 1
                epoch_records = self.train_epoch(epoch, phase, total_epochs)
                summary = epoch_summary(epoch, phase, time.perf_counter() - start, epoch_records)
                summary["val"] = self.validate()
                if self.args.ema_momentum:
                    summary["val_ema"] = self.validate_moving_average()
                self.epochs.append(summary)
                print_summary(epoch, phase, summary)
            if self.args.ema_momentum:  # As fit does at its end.
                self.optimizer.finalize_variable_values(self.variables)
        return time.perf_counter() - start

    def start_phase(self, phase):
        """Sets up a phase: the classifier frozen in pretraining, a fresh
        optimizer (`self.optimizer`) of the trainable `self.variables`, and
        the step it takes (`self.step`)."""
        joint = phase == "joint"
        for model_layer in self.model.layers:
            if not isinstance(model_layer, AuxLossLSTM):
                model_layer.trainable = joint
        lr = learning_rate(self.args, self.steps_per_epoch) if joint else self.args.lr
        optimizer = make_optimizer(self.args, lr)
        variables = list(self.model.trainable_weights)
        optimizer.build(variables)
        self.optimizer, self.variables = optimizer, variables
        self.step = measures.make_step(
            self.probe, optimizer, variables, joint, self.args.aux_weight
        )

    def validate_moving_average(self):
        """The validation with the phase's moving averages of the weights."""
        return self.validate.with_moving_average(self.optimizer, self.variables)

    def train_epoch(self, epoch, phase, total_epochs):
        """One epoch of the phase's step, with the probes and the validations within
        it that the options ask for; returns its step records."""
        args, joint = self.args, phase == "joint"
        epoch_records = []
        for i, (x, y) in enumerate(self.dataset.take(args.max_steps or -1)):
            if joint and args.full_bp_probe_every and i % args.full_bp_probe_every == 0:
                point = {k: float(v) for k, v in self.full_bp_probe(x, y).items()}
                self.probes.append({"epoch": epoch, "step": i, **point})
            out = self.step(x, y)
            epoch_records.append({k: float(v) for k, v in out.items()})
            if epoch > total_epochs - args.fine_val_epochs and i % args.fine_val_every == 0:
                point = {"epoch": epoch, "step": i, "acc": self.validate()["acc"]}
                if args.ema_momentum:
                    point["ema_acc"] = self.validate_moving_average()["acc"]
                self.fine.append(point)
        for i, r in enumerate(epoch_records):
            r["epoch"], r["step"] = epoch, i
        self.records.extend(epoch_records)
        return epoch_records

    def result(self, seconds):
        """The contents of `<output>.json`."""
        key = "val_ema" if self.args.ema_momentum else "val"
        val = [e[key]["acc"] for e in self.epochs if e["phase"] == "joint"]
        result = {
            "args": vars(self.args),
            "seconds": seconds,
            "final_val_acc": val[-1],
            "best_val_acc": max(val),
            "best_epoch": int(np.argmax(val)) + 1 + (len(self.epochs) - len(val)),
            "final_raw_val_acc": self.epochs[-1]["val"]["acc"],
            "epochs": self.epochs,
            "fine_validation": self.fine,
            "full_bp_probes": self.probes,
        }
        if self.args.ema_momentum:
            result["final_val_acc_after_finalize"] = self.validate()["acc"]
        return result


def write_outputs(output, result, records):
    """`<output>.json` (`result`) and `<output>.npz` (every step's records,
    NaN where a step has no such record)."""
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with open(output + ".json", "w") as file:
        json.dump(result, file, indent=1)
    keys = list(dict.fromkeys(k for r in records for k in r))
    np.savez_compressed(
        output + ".npz",
        **{k: np.array([r.get(k, np.nan) for r in records]) for k in keys},
    )


def main(argv=None):
    args = parse_args(argv)
    diagnosis = Diagnosis(args)
    seconds = diagnosis.run()
    result = diagnosis.result(seconds)
    write_outputs(args.output, result, diagnosis.records)
    final, best = result["final_val_acc"], result["best_val_acc"]
    print(f"final val acc {final:.3f} best {best:.3f} in {seconds:.0f} s", flush=True)


if __name__ == "__main__":
    main()
