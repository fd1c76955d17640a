"""`make demo`: the method's claim on a generated task, in minutes on a CPU.

Trains, on the task of `generated_task.py` (the evidence ends `gap` steps
before the end of each sequence), an LSTM and an r-LSTM truncated to the same
`bptt < gap` steps, and an LSTM with full backpropagation for reference, then
prints one row per model: model, bptt, anchors x l, test accuracy (mean and
spread over the seeds) and seconds. Nothing is downloaded.

    python examples/demo.py                       # one seed, the default models
    python examples/demo.py --seeds=0,1,2 --models=lstm,r-lstm,p-lstm,lstm-full-bp

Each run also writes its history, curves, TensorBoard logs and model under
`--output_dir` (see `train.py`).
"""

import os
import statistics
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train  # noqa: E402

# name: (train.py model, full backpropagation)
MODELS = {
    "lstm": ("lstm", False),
    "r-lstm": ("r-lstm", False),
    "p-lstm": ("p-lstm", False),
    "lstm-full-bp": ("lstm", True),
}

FLAGS = flags.FLAGS
flags.DEFINE_list("models", ["lstm", "r-lstm", "lstm-full-bp"], f"Some of {list(MODELS)}.")
flags.DEFINE_list("seeds", ["0"], "One run per model and seed.")
flags.DEFINE_integer("sequence_length", train.generated_task.LENGTH, "Steps per sequence.")
flags.DEFINE_integer("bptt", 10, "Supervised truncation of the truncated models.")
flags.DEFINE_integer("aux_length", 40, "Auxiliary subsequence length l.")
flags.DEFINE_integer("num_anchors", 4, "Anchors per example.")
flags.DEFINE_integer("epochs", 6, "Training epochs.")
flags.DEFINE_integer("train_size", 3000, "Training examples.")
flags.DEFINE_string("output_dir", "runs/demo", "Where each run writes its outputs.")


def config(model, seed):
    model_type, full_bp = MODELS[model]
    return train.Config(
        dataset="generated",
        model=model_type,
        sequence_length=FLAGS.sequence_length,
        generated_train_size=FLAGS.train_size,
        units=64,
        embedding_dim=16,
        bptt=None if full_bp else FLAGS.bptt,
        aux_length=FLAGS.aux_length,
        num_anchors=FLAGS.num_anchors,
        epochs=FLAGS.epochs,
        batch_size=32,
        learning_rate=1e-3,
        clipnorm=1.0,
        seed=seed,
        output_dir=os.path.join(FLAGS.output_dir, f"{model}-seed{seed}"),
        verbose=2,
    )


def row(model, results):
    accuracies = [r["test_accuracy"] for r in results]
    spread = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
    _, full_bp = MODELS[model]
    windows = "-" if model.startswith("lstm") else f"{FLAGS.num_anchors} x {FLAGS.aux_length}"
    return (
        f"| {model} | {'full' if full_bp else FLAGS.bptt} | {windows} | "
        f"{statistics.mean(accuracies):.3f} ± {spread:.3f} | "
        f"{statistics.mean(r['seconds'] for r in results):.0f} |"
    )


def main(argv):
    del argv
    unknown = set(FLAGS.models) - set(MODELS)
    if unknown:
        raise app.UsageError(
            f"Unknown --models {sorted(unknown)}; expected some of {list(MODELS)}."
        )
    results = {m: [train.run(config(m, int(seed))) for seed in FLAGS.seeds] for m in FLAGS.models}
    print(
        f"\nGenerated task: {FLAGS.sequence_length} steps, evidence ends "
        f"{train.generated_task.GAP} steps before the end; "
        f"chance is {1 / train.generated_task.NUM_CLASSES:.2f}. Seeds: {', '.join(FLAGS.seeds)}.\n"
    )
    print("| model | bptt | anchors x l | test accuracy | seconds |")
    print("|---|---:|---|---:|---:|")
    for model in FLAGS.models:
        print(row(model, results[model]))


if __name__ == "__main__":
    app.run(main)
