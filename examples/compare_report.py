r"""The table and plot of `compare.py`'s results: every JSON under the
folders of `--results` (a comma-separated list), grouped by model and
length, as a Markdown table (accuracy mean ± standard deviation over
seeds, seconds per epoch and peak memory, their medians: the process's
peak and what `fit` added to it) and, with `--plot`, accuracy and peak
memory (`--panels`) against the length, one line per model:

    python -m examples.compare_report \
        --results=examples/results/compare/test,examples/results/compare/test784 \
        --plot=docs/figures/compare-accuracy.png
"""

import collections
import glob
import json
import math
import os

import numpy as np
from absl import app, flags

from examples.compare_models import OURS

FLAGS = flags.FLAGS
flags.DEFINE_list(
    "results", None, "Folders of compare.py's JSON files (each searched recursively)."
)
flags.DEFINE_string("plot", None, "Where the plot goes (a PNG); no plot without it.")
flags.DEFINE_list(
    "panels", ["accuracy", "memory"], "The plot's panels: accuracy, memory, growth, seconds."
)
flags.mark_flag_as_required("results")


def label(result: dict) -> str:
    """The model's name, with the settings of the package's layers where
    they are not the comparison's defaults (`r-lru (r_min 0.99, state 128)`,
    `r-lstm (4 x 25)`)."""
    settings, model = result["settings"], result["model"]
    ours = model in OURS
    given = []
    if ours and (settings.get("num_anchors", 1) != 1 or settings.get("aux_length")):
        given.append(f"{settings['num_anchors']} x {settings['truncation'][1]}")
    if ours and settings.get("aux_weight", 5.0) != 5.0:
        given.append(f"weight {settings['aux_weight']:g}")
    if ours and settings.get("bptt"):
        given.append(f"bptt {settings['bptt']}")
    if ours and settings.get("pretrain_epochs"):
        given.append(f"{settings['pretrain_epochs']} pretraining")
    if ours and settings.get("scheduled_sampling"):
        given.append(f"sampling {settings['scheduled_sampling']:g}")
    if "lru" in model:
        fourier = settings.get("lru_eigenvalue_init") == "fourier" or settings.get("lru_fourier")
        ring = not fourier
        given += [
            "fourier" if fourier else "",
            f"r_min {settings['lru_r_min']:g}" if ring and settings["lru_r_min"] != 0.9 else "",
            f"state {settings['lru_state_dim']}" if settings["lru_state_dim"] else "",
            f"max_phase {settings['lru_max_phase']:.3g}"
            if ring and abs(settings["lru_max_phase"] - 2 * math.pi) > 1e-6
            else "",
            f"timescales x{settings['lru_timescales']:g}"
            if settings.get("lru_timescales", 1.0) != 1.0
            else "",
            "fixed dynamics" if not settings.get("lru_train_dynamics", True) else "",
            f"dropout {settings['lru_dropout']:g}" if settings.get("lru_dropout") else "",
            f"{settings['lru_layers']} layers" if settings.get("lru_layers", 1) > 1 else "",
            f"{settings['lru_reader']} reader" if settings.get("lru_reader") else "",
            f"input rank {settings['lru_input_rank']}" if settings.get("lru_input_rank") else "",
        ]
    given = [text for text in given if text]
    return f"{model} ({', '.join(given)})" if given else model


def read_results(folders: list[str]) -> dict:
    """`{(label, length): [result, ...]}`, results sorted by seed."""
    groups = collections.defaultdict(list)
    paths = [
        path
        for folder in folders
        for path in sorted(glob.glob(os.path.join(folder, "**", "*.json"), recursive=True))
    ]
    for path in paths:
        with open(path) as file:
            result = json.load(file)
        groups[label(result), result["length"]].append(result)
    return {key: sorted(runs, key=lambda r: r["seed"]) for key, runs in groups.items()}


def summary(runs: list[dict]) -> dict:
    budgets = sorted({(run["epochs"], run["train_digits"]) for run in runs})
    if len(budgets) > 1:
        raise ValueError(
            f"The runs of {label(runs[0])} at {runs[0]['length']} steps have different "
            f"budgets (epochs x digits: {', '.join(f'{e} x {d}' for e, d in budgets)}); "
            "pass the folders of one budget to --results."
        )
    accuracies = np.array([run["accuracy"] for run in runs])
    return dict(
        seeds=len(runs),
        mean=float(accuracies.mean()),
        spread=float(accuracies.std(ddof=1)) if len(runs) > 1 else 0.0,
        seconds=float(np.median([run["seconds_per_epoch"] for run in runs])),
        memory=float(np.median([run["peak_rss_gib"] for run in runs])),
        growth=float(np.median([run["rss_growth_gib"] for run in runs])),
        epochs=runs[0]["epochs"],
        digits=runs[0]["train_digits"],
    )


def table(groups: dict) -> list[str]:
    lines = [
        "| model | steps | seeds | accuracy (mean ± sd) | epochs x digits | s / epoch "
        "| peak GiB | GiB in fit |",
        "|---|---:|---:|---|---|---:|---:|---:|",
    ]
    for model, length in sorted(groups, key=lambda key: (key[1], key[0])):
        s = summary(groups[model, length])
        accuracy = f"{s['mean']:.3f} ± {s['spread']:.3f}"
        lines.append(
            f"| {model} | {length} | {s['seeds']} | {accuracy} | {s['epochs']} x {s['digits']} "
            f"| {s['seconds']:.1f} | {s['memory']:.2f} | {s['growth']:.2f} |"
        )
    return lines


# What a panel of the plot shows: (the summary's key, the axis's label).
PANELS = {
    "accuracy": ("mean", "accuracy"),
    "memory": ("memory", "peak memory of the process (GiB)"),
    "growth": ("growth", "memory fit added to the peak (GiB)"),
    "seconds": ("seconds", "seconds per epoch"),
}


def plot(groups: dict, path: str, panels: list[str]) -> None:
    """One panel per name of `PANELS` in `panels`, against the length."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes_list = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    for axes, panel in zip(axes_list[0], panels):
        key, label = PANELS[panel]
        for i, model in enumerate(sorted({model for model, _ in groups})):
            lengths = sorted(length for m, length in groups if m == model)
            stats = [summary(groups[model, length]) for length in lengths]
            spread = [s["spread"] for s in stats] if key == "mean" else None
            style = dict(marker="os^D"[i // 10 % 4], color=plt.get_cmap("tab10")(i % 10))
            axes.errorbar(lengths, [s[key] for s in stats], spread, label=model, **style)
        axes.set_xscale("log", base=2)
        axes.set_xlabel("sequence length (steps)")
        axes.set_ylabel(label)
        axes.grid(alpha=0.3)
    # The legend below the panels, where it hides no point.
    handles, labels = axes_list[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, fontsize=8, loc="lower center", ncol=3, frameon=False)
    figure.tight_layout(rect=(0, 0.06 * (1 + len(labels) // 3), 1, 1))
    figure.savefig(path, dpi=120)


def main(argv):
    del argv
    groups = read_results(FLAGS.results)
    held_out = sorted({run["evaluated_on"] for runs in groups.values() for run in runs})
    cpus = sorted({run["cpu"] for runs in groups.values() for run in runs})
    print(f"Accuracy on the {' and '.join(held_out)} digits; {'; '.join(cpus)}.\n")
    print("\n".join(table(groups)))
    if FLAGS.plot:
        plot(groups, FLAGS.plot, FLAGS.panels)


if __name__ == "__main__":
    app.run(main)
