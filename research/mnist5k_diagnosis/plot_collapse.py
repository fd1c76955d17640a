"""Figure of a collapse: per-step records of one run around some epochs.

python -m research.mnist5k_diagnosis.plot_collapse runs/diag/base-s1 7 10 out.png
"""

import sys

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

PANELS = [
    (
        "global gradient norm (log)",
        [
            ("g_total_global", "all"),
            ("g_aux_main", "aux -> main LSTM"),
            ("g_sup_main", "sup -> main LSTM"),
        ],
        True,
    ),
    ("main LSTM update norm", [("update_main", "")], False),
    (
        "classifier",
        [("dead_relu", "dead ReLU fraction (Dense 256)"), ("logit_std", "logit std")],
        False,
    ),
    ("batch accuracy (10-step mean)", [("acc", "")], False),
]


def plot(path, first, last, output):
    """Draws `PANELS` from `<path>.npz` over epochs `first` to `last` into `output`."""
    d = np.load(path + ".npz")
    mask = (d["epoch"] >= first) & (d["epoch"] <= last)
    x = d["epoch"][mask] - 1 + d["step"][mask] / 110
    figure = Figure(figsize=(9, 9), layout="constrained")
    FigureCanvasAgg(figure)
    figure.suptitle(f"{path.split('/')[-1]}: epochs {first}-{last}, per step")
    for axes, (title, series, log) in zip(figure.subplots(len(PANELS), 1, sharex=True), PANELS):
        for key, label in series:
            y = d[key][mask]
            if key == "acc":
                smooth = np.convolve(y, np.ones(10) / 10, mode="valid")
                y = np.concatenate([np.full(9, np.nan), smooth])  # Trailing mean.
            axes.plot(x, y, lw=0.8, label=label or key)
        if log:
            axes.set_yscale("log")
        axes.set_title(title, fontsize="small")
        if len(series) > 1:
            axes.legend(fontsize="x-small")
    axes.set_xlabel("epoch")
    figure.savefig(output, dpi=90)


def main(argv=None):
    path, first, last, output = argv or sys.argv[1:]
    plot(path, int(first), int(last), output)


if __name__ == "__main__":
    main()
