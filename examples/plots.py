"""The figures of the examples and the benchmark, in one style.

Each figure is a row of panels on a matplotlib `Figure` drawn by its own
Agg canvas (no display, no global backend), saved at 100 dpi:
`plot_step_costs` (the benchmark's time and memory against sequence
length).
"""

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

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
