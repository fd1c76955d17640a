"""The figures of the examples and the benchmark, in one style.

Each figure is a row of panels on a matplotlib `Figure` drawn by its own
Agg canvas (no display, no global backend), saved at 100 dpi:
`plot_run_curves` (one run of `experiment.py`), `plot_mean_curves` (the
demo's models, mean over seeds) and `plot_step_costs` (the benchmark's
time and memory against sequence length).
"""

import statistics

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

DPI = 100
# The benchmark's line style per backend, its color per configuration.
BACKEND_STYLES = {"tensorflow": "o-", "jax": "s--", "torch": "^:"}


def new_figure(columns: int, size: tuple[float, float], title: str | None = None):
    """`(figure, panels)`: a figure of `size` inches with `columns` panels in a row."""
    figure = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(figure)  # Renders with Agg: no display, no global backend.
    if title:
        figure.suptitle(title)
    return figure, list(figure.subplots(1, columns, squeeze=False)[0])


def _epoch_points(history: dict, name: str, phase: str | None = None) -> list[tuple]:
    """`(epoch, value)` of metric `name` where it was logged, in `phase`
    only if given; `history` is columns, as in `history.json`."""
    values = history.get(name, [None] * len(history["epoch"]))
    rows = zip(history["epoch"], values, history.get("phase", [None] * len(values)))
    return [
        (epoch, value)
        for epoch, value, in_phase in rows
        if value is not None and phase in (None, in_phase)
    ]


def plot_run_curves(history: dict, path: str, title: str) -> None:
    """Loss, auxiliary loss (when logged) and accuracy against epochs, one
    line per phase: in pretraining the loss is the auxiliary loss alone."""
    names = [
        name
        for name in ("loss", "aux_loss", "accuracy")
        if any(value is not None for value in history.get(name, ()))
    ]
    figure, panels = new_figure(max(len(names), 1), (4.5 * max(len(names), 1), 3.5), title)
    phases = list(dict.fromkeys(history.get("phase", ())))
    for axes, name in zip(panels, names):
        for color, phase in enumerate(phases):
            points = _epoch_points(history, name, phase)
            if points:
                axes.plot(*zip(*points), f"C{color}o-", markersize=3, label=phase)
        if len(phases) > 1:
            axes.legend()
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xlabel("epoch")
        axes.set_title(name)
    figure.savefig(path, dpi=DPI)


def plot_mean_curves(results: dict, path: str, title: str) -> None:
    """Training loss and accuracy against epochs, mean over seeds, a line a
    model; `results` maps a model to its runs' results (with `history`)."""
    figure, panels = new_figure(2, (9, 3.5), title)
    for axes, name in zip(panels, ("loss", "accuracy")):
        for color, (model, runs) in enumerate(results.items()):
            columns = [_epoch_points(run["history"], name) for run in runs]
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
    figure.savefig(path, dpi=DPI)


def plot_step_costs(results: dict, lengths, backends, configs, path: str) -> None:
    """Seconds per step and peak memory increase against sequence length,
    log-log, a line per configuration and backend; `results[backend]
    [config][length]` as the benchmark's `results.json`, plotted where its
    status is "ok"."""
    figure, (time_axes, memory_axes) = new_figure(2, (11, 4.5))
    for backend in backends:
        for color, config in enumerate(configs):
            runs = results[backend][config]
            ok = [n for n in lengths if runs[n].get("status") == "ok"]
            x, style = [int(n) for n in ok], f"C{color}{BACKEND_STYLES.get(backend, 'x-')}"
            label = f"{config} ({backend})"
            time_axes.plot(x, [runs[n]["seconds"] for n in ok], style, label=label)
            memory_axes.plot(x, [max(runs[n]["increase_gib"], 1e-3) for n in ok], style)
    for axes, label in ((time_axes, "seconds per step"), (memory_axes, "peak RSS increase, GiB")):
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xlabel("sequence length")
        axes.set_ylabel(label)
        axes.grid(True, which="both", alpha=0.3)
    time_axes.legend(fontsize="x-small")
    figure.savefig(path, dpi=DPI)
